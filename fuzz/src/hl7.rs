//! The check of the `hl7` fuzz target, also run over the committed corpus by
//! `crates/hl7/tests/fuzz_corpus.rs`: the HL7 v2 side (`reportsplit_hl7`) on
//! arbitrary bytes, as the `mllp` listener and the `hl7` files mode meet
//! them. Reading, filtering and mapping a message (`evaluate`) and answering
//! it (`ack`) never panic; an ACK always parses again and names the code it
//! was given; an accepted message yields DiagnosticReports keyed by their
//! filler order identifier, each with the Patient to create, and a text that
//! decodes.

use std::collections::BTreeMap;

use base64::Engine as _;
use reportsplit_hl7::{AckCode, Hl7Settings, Verdict, ack, evaluate, split_messages};
use serde_json::Value;
use time::UtcOffset;

fn settings() -> Hl7Settings {
    let authorities: BTreeMap<String, String> = [
        ("NGH", "urn:oid:1.2.826.0.1.3680043.2.1001.1"),
        ("NGRIS", "urn:oid:1.2.826.0.1.3680043.2.1001.2"),
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
        utc_offset: UtcOffset::UTC,
    }
}

/// The first byte picks the input's shape: an even byte, one message as an
/// MLLP frame carries it; an odd byte, a batch file cut into messages first.
pub fn check(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let settings = settings();
    if shape % 2 == 0 {
        check_message(rest, &settings);
    } else {
        let messages = split_messages(rest);
        // Each kept line comes out once, ended by one \r: at most the input and
        // the \r a last line without a line end gains.
        assert!(messages.iter().all(|m| m.ends_with(b"\r") && m.len() > 1));
        assert!(messages.iter().map(Vec::len).sum::<usize>() <= rest.len() + 1);
        for message in messages {
            check_message(&message, &settings);
        }
    }
}

fn check_message(bytes: &[u8], settings: &Hl7Settings) {
    let evaluation = evaluate(bytes, settings);
    let (code, problem) = match &evaluation.verdict {
        Verdict::Accept(reports) => {
            assert!(!reports.is_empty());
            for mapped in reports {
                check_report(mapped);
            }
            (AckCode::Accept, None)
        }
        Verdict::Ignore(_) => (AckCode::Accept, None),
        Verdict::Refuse(problem) => (problem.ack, Some(problem)),
    };
    let text = ack(
        evaluation.header.as_ref(),
        code,
        problem,
        "20260401120000",
        "ACK-1",
    );
    let parsed = hl7kit::Message::parse(text.as_str()).expect("an ACK always parses");
    let msa = parsed
        .get_decoded("MSA-1")
        .expect("an ACK always has MSA-1");
    assert_eq!(msa, code.as_str());
}

fn check_report(mapped: &reportsplit_hl7::MappedReport) {
    let report = &mapped.report;
    assert_eq!(report["resourceType"], "DiagnosticReport");
    let identifier = &report["identifier"][0];
    let (Some(system), Some(value)) = (identifier["system"].as_str(), identifier["value"].as_str())
    else {
        panic!("an accepted report has a filler order identifier");
    };
    assert!(!value.is_empty());
    assert_eq!(mapped.order_key, format!("{system}|{value}"));
    assert!(report["status"].as_str().is_some_and(|s| !s.is_empty()));
    let patient = &mapped.patient_resource;
    assert_eq!(patient["resourceType"], "Patient");
    assert_eq!(
        patient["identifier"][0]["value"],
        mapped.patient.value.as_str()
    );
    if let Some(gender) = patient.get("gender") {
        assert!(matches!(
            gender.as_str(),
            Some("male" | "female" | "other" | "unknown")
        ));
    }
    if let Some(data) = report
        .pointer("/presentedForm/0/data")
        .and_then(Value::as_str)
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("our own base64");
        assert!(String::from_utf8(bytes).is_ok(), "the text is UTF-8");
    }
}
