//! Every message in `tests/messages/` (written for these tests: several
//! sites and modalities, multi-OBX TX, FT with escapes, repetitions, custom
//! encoding characters, 8859/1 and UTF-8, ED, corrections, cancellations,
//! PID demographics, ignored and bad messages) through `evaluate` and `ack`, as one snapshot
//! each; and the parser against arbitrary input (proptest).

use std::collections::BTreeMap;

use base64::Engine as _;
use proptest::prelude::*;
use reportsplit_hl7::{AckCode, Hl7Settings, Verdict, ack, evaluate, split_messages};
use serde_json::{Value, json};
use time::macros::offset;

fn settings() -> Hl7Settings {
    let authorities: BTreeMap<String, String> = [
        ("NGH", "urn:oid:1.2.826.0.1.3680043.2.1001.1"),
        ("NGRIS", "urn:oid:1.2.826.0.1.3680043.2.1001.2"),
        ("NGORDER", "urn:oid:1.2.826.0.1.3680043.2.1001.3"),
        ("SVH", "https://southview.example/fhir/mrn"),
        ("EBH", "https://eastbay.example/ids/mrn"),
        ("WEH", "https://westend.example/ids"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Hl7Settings {
        service_sections: ["RAD", "CT", "MR", "US", "NMS", "RX"]
            .map(str::to_owned)
            .to_vec(),
        processing_ids: vec!["P".to_owned()],
        authorities,
        utc_offset: offset!(+01:00),
    }
}

/// The verdict as JSON, the presented text decoded so a snapshot shows it.
fn outcome(bytes: &[u8]) -> Value {
    let evaluation = evaluate(bytes, &settings());
    let (code, problem, body) = match &evaluation.verdict {
        Verdict::Accept(reports) => {
            let reports: Vec<Value> = reports
                .iter()
                .map(|mapped| {
                    let mut report = mapped.report.clone();
                    let text = report
                        .pointer("/presentedForm/0/data")
                        .and_then(Value::as_str)
                        .map(|data| {
                            let bytes = base64::engine::general_purpose::STANDARD
                                .decode(data)
                                .expect("our own base64");
                            String::from_utf8(bytes).expect("our own UTF-8")
                        });
                    if let Some(text) = text {
                        report["presentedForm"][0]["data"] =
                            json!(format!("<base64 of the text below>"));
                        report["presentedText"] = json!(text.split('\n').collect::<Vec<_>>());
                    }
                    json!({
                        "order_key": mapped.order_key,
                        "patient": mapped.patient_resource,
                        "report": report,
                    })
                })
                .collect();
            (AckCode::Accept, None, json!({"accept": reports}))
        }
        Verdict::Ignore(reason) => (AckCode::Accept, None, json!({"ignore": reason})),
        Verdict::Refuse(problem) => (
            problem.ack,
            Some(problem),
            json!({"refuse": {"key": problem.key(), "message": problem.message}}),
        ),
    };
    let ack = ack(
        evaluation.header.as_ref(),
        code,
        problem,
        "20260401120000",
        "ACK-1",
    );
    json!({"verdict": body, "ack": ack.split('\r').collect::<Vec<_>>()})
}

#[test]
fn every_message_maps_or_is_answered_as_expected() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/messages");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("the messages directory")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .into_string()
                .expect("a name")
        })
        .collect();
    names.sort();
    assert!(names.len() >= 15, "{names:?}");
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).expect("a message");
        insta::assert_json_snapshot!(name.trim_end_matches(".hl7").to_owned(), outcome(&bytes));
    }
}

#[test]
fn latin1_and_utf8_messages_give_the_same_text() {
    let message = |charset: &str, body: &[u8]| {
        let mut bytes = format!(
            "MSH|^~\\&|RIS|NORTHGEN|||202603180900||ORU^R01|N1|P|2.5.1|||||FRA|{charset}\rPID|1||M1^^^NGH\rOBR|1||F1^NGRIS|X^Os^L|||202603180830|||||||||||||||||RAD|F\rOBX|1|TX||1|"
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes.push(b'\r');
        bytes
    };
    let text = |bytes: &[u8]| match evaluate(bytes, &settings()).verdict {
        Verdict::Accept(reports) => reports[0].report["presentedForm"][0]["data"].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        text(&message("8859/1", b"Pas de l\xe9sion \xe0 droite.")),
        text(&message(
            "UNICODE UTF-8",
            "Pas de lésion à droite.".as_bytes()
        ))
    );
}

#[test]
fn a_batch_file_yields_each_message_once() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/messages");
    let one = std::fs::read(dir.join("xr-chest-multi-obx.hl7")).expect("a message");
    let two = std::fs::read(dir.join("mr-spine-repetitions.hl7")).expect("a message");
    let mut batch = b"FHS|^~\\&|RIS\r\nBHS|^~\\&|RIS\r\n".to_vec();
    batch.extend(
        String::from_utf8_lossy(&one)
            .replace('\r', "\r\n")
            .as_bytes(),
    );
    batch.extend(String::from_utf8_lossy(&two).replace('\r', "\n").as_bytes());
    batch.extend(b"BTS|2\r\nFTS|1\r\n");
    let messages = split_messages(&batch);
    assert_eq!(messages, vec![one, two]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever arrives, evaluating it and answering it never panics, and
    /// an accepted message always has a report with an order key.
    #[test]
    fn evaluate_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let evaluation = evaluate(&bytes, &settings());
        if let Verdict::Accept(reports) = &evaluation.verdict {
            prop_assert!(!reports.is_empty());
        }
        let _ = ack(evaluation.header.as_ref(), AckCode::Reject, None, "2026", "A");
    }

    /// A valid message with bytes of it replaced by delimiters, escapes and
    /// line ends: still no panic, and the ACK still parses.
    #[test]
    fn mutated_messages_are_answered(
        edits in proptest::collection::vec((0usize..400, prop::sample::select(vec![b'|', b'^', b'~', b'\\', b'&', b'\r', b'\n', 0xE9, b'X', b'.'])), 1..12)
    ) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/messages");
        let mut bytes = std::fs::read(dir.join("ct-abdomen-ft-escapes.hl7")).expect("a message");
        for (at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        let evaluation = evaluate(&bytes, &settings());
        let code = match &evaluation.verdict {
            Verdict::Refuse(problem) => problem.ack,
            _ => AckCode::Accept,
        };
        let text = ack(evaluation.header.as_ref(), code, None, "2026", "A");
        prop_assert!(hl7kit::Message::parse(text.as_str()).is_ok());
    }
}
