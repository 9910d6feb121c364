//! Critical results (issue 12, item 2) through the worker against a strict
//! SEKMET: a critical result the report does not document as communicated
//! gets an active Flag on the patient; a second pass writes nothing; an
//! amendment that documents the call closes the Flag (`inactive`) and
//! writes a completed Communication about the finding, with the recipient
//! and the time as the report states them. A report without a subject gets
//! no Flag, and the rest of it is still written.

use serde_json::{Value, json};

use crate::common;

const REPORT_TAG: &str = "urn%3Areportsplit%3Areport";

fn owned(kind: &str, report: &str, more: &str) -> String {
    format!("{kind}?_tag={REPORT_TAG}|{report}{more}")
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// A CT report written for this test: an acute pulmonary embolism, with
/// `call` appended to the impression.
fn report(id: &str, subject: Option<&str>, call: &str) -> Value {
    let text = format!(
        "FINDINGS: Filling defects in the right lower lobe segmental arteries.\n\
         IMPRESSION: Acute right lower lobe pulmonary embolism.{call}"
    );
    let mut report = json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
        "code": {"text": "CTA Chest"},
        "effectiveDateTime": "2026-12-03T13:20:00+01:00",
        "presentedForm": [{"contentType": "text/plain; charset=utf-8", "data": base64_of(&text)}]
    });
    if let Some(subject) = subject {
        report["subject"] = json!({ "reference": subject });
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undocumented_critical_result_is_flagged_until_an_amendment_documents_the_call() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    fhir.put(&json!({"resourceType": "Patient", "id": "p-crit", "name": [{"family": "Test"}]}))
        .await;
    fhir.put(&report("crit-1", Some("Patient/p-crit"), ""))
        .await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some("Patient/p-crit"), 50);

    let (summary, _) = common::sync(&config, false).await;
    assert_eq!(summary.tally.written, 1, "{summary:?}");
    let flags = fhir.search_all(&owned("Flag", "crit-1", "")).await;
    assert_eq!(flags.len(), 1, "{flags:?}");
    let flag = &flags[0];
    assert_eq!(flag["status"], "active");
    assert_eq!(flag["subject"]["reference"], "Patient/p-crit");
    assert_eq!(flag["code"]["coding"][0]["code"], "critical-result");
    assert!(
        flag["code"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("pulmonary embolism")),
        "{flag}"
    );
    assert!(
        flag["author"]["reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("Device/")),
        "{flag}"
    );
    let detail = flag["extension"]
        .as_array()
        .and_then(|e| {
            e.iter()
                .find(|x| x["url"] == "http://hl7.org/fhir/StructureDefinition/flag-detail")
        })
        .and_then(|x| x["valueReference"]["reference"].as_str())
        .expect("a flag-detail extension");
    let finding = fhir.get(detail).await;
    assert_eq!(finding["interpretation"][0]["coding"][0]["code"], "AA");
    assert_eq!(fhir.count(&owned("Communication", "crit-1", "")).await, 0);

    let (again, _) = common::sync(&config, false).await;
    assert_eq!(again.tally.written, 0, "{again:?}");
    assert_eq!(fhir.count(&owned("Flag", "crit-1", "")).await, 1);

    let mut amended = fhir.get("DiagnosticReport/crit-1").await;
    amended["status"] = json!("amended");
    let text = "FINDINGS: Filling defects in the right lower lobe segmental arteries.\n\
                IMPRESSION: Acute right lower lobe pulmonary embolism. \
                Discussed by telephone with Dr. Lena Ortiz at 14:05.";
    amended["presentedForm"][0]["data"] = json!(base64_of(text));
    fhir.put(&amended).await;
    let (third, _) = common::sync(&config, false).await;
    assert_eq!(third.tally.written, 1, "{third:?}");
    let flags = fhir.search_all(&owned("Flag", "crit-1", "")).await;
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0]["status"], "inactive", "the call closes the Flag");
    let communications = fhir.search_all(&owned("Communication", "crit-1", "")).await;
    assert_eq!(communications.len(), 1, "{communications:?}");
    let call = &communications[0];
    assert_eq!(call["status"], "completed");
    assert_eq!(call["recipient"][0]["display"], "Dr. Lena Ortiz");
    assert_eq!(call["sent"], "2026-12-03T14:05:00+01:00");
    assert_eq!(call["medium"][0]["coding"][0]["code"], "PHONE");
    assert_eq!(call["topic"]["coding"][0]["code"], "critical-result");
    assert_eq!(call["subject"]["reference"], "Patient/p-crit");
    let about: Vec<&str> = call["about"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["reference"].as_str())
        .collect();
    assert!(
        about.iter().any(|r| r.starts_with("Observation/"))
            && about.contains(&"DiagnosticReport/crit-1"),
        "{about:?}"
    );

    let (fourth, _) = common::sync(&config, false).await;
    assert_eq!(fourth.tally.written, 0, "{fourth:?}");
    assert_eq!(fhir.count(&owned("Communication", "crit-1", "")).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_without_a_subject_gets_no_flag_and_is_still_written() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    fhir.put(&report("crit-nosubject", None, "")).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), None, 50);
    let (summary, _) = common::sync(&config, false).await;
    assert_eq!(summary.tally.written, 1, "{summary:?}");
    assert_eq!(fhir.count(&owned("Flag", "crit-nosubject", "")).await, 0);
    let report = fhir.get("DiagnosticReport/crit-nosubject").await;
    assert!(
        report["result"].as_array().is_some_and(|r| !r.is_empty()),
        "the findings are written: {report}"
    );
}
