//! Sex and order discrepancies (issue 12, item 3) through the worker
//! against a strict SEKMET: the report's Patient (with a gender) and its
//! `basedOn` ServiceRequest read once and cached, a prostate finding in a
//! woman and a right-knee report for a left-knee order written as
//! DetectedIssues; an amendment that removes the ground makes the old
//! issue `entered-in-error`; switched-off kinds write none; a Patient that
//! cannot be read is counted, and the report is still written; two workers
//! on one report at once write each issue once.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common;
use reportsplit::run::Worker;
use reportsplit::run::apply::{Outcome, apply_report};

/// `{Type}?_tag=urn:reportsplit:report|{report}` plus `more`.
fn owned(kind: &str, report: &str, more: &str) -> String {
    format!("{kind}?_tag=urn%3Areportsplit%3Areport|{report}{more}")
}

fn patient(id: &str, gender: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": "Test"}],
           "gender": gender, "birthDate": "1971-04-02"})
}

fn order(id: &str, patient: &str) -> Value {
    json!({"resourceType": "ServiceRequest", "id": id, "status": "active", "intent": "order",
           "code": {"text": "MRI knee without contrast"},
           "bodySite": [{"text": "Left knee"}],
           "subject": {"reference": format!("Patient/{patient}")}})
}

/// A radiology report written for this test, stored without a version.
fn report(id: &str, patient: &str, code: &str, text: &str) -> Value {
    json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
        "code": {"text": code},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-12-01T09:00:00Z",
        "presentedForm": [{
            "contentType": "text/plain; charset=utf-8",
            "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
        }]
    })
}

const KNEE_RIGHT: &str = "EXAM: MRI RIGHT KNEE WITHOUT CONTRAST.\n\
    FINDINGS: Horizontal tear of the posterior horn of the medial meniscus of the right knee. \
    Small joint effusion.\n\
    IMPRESSION: Right medial meniscal tear.";
const KNEE_LEFT: &str = "EXAM: MRI LEFT KNEE WITHOUT CONTRAST.\n\
    FINDINGS: Horizontal tear of the posterior horn of the medial meniscus of the left knee. \
    Small joint effusion.\n\
    IMPRESSION: Left medial meniscal tear.";
const PELVIS: &str = "FINDINGS: The prostate is enlarged, measuring 5.8 cm, with a median lobe. \
    The urinary bladder is normal.\n\
    IMPRESSION: Enlarged prostate.";

async fn issue_codes(fhir: &common::Fhir, report: &str, more: &str) -> Vec<String> {
    fhir.search_all(&owned("DetectedIssue", report, more))
        .await
        .iter()
        .filter_map(|i| i["code"]["coding"][0]["code"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sex_and_order_mismatches_are_detected_issues_superseded_when_amended() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    fhir.put(&patient("p-dis", "female")).await;
    fhir.put(&order("sr-knee", "p-dis")).await;
    let mut knee = report("dis-knee", "p-dis", "MR Knee left WO contrast", KNEE_RIGHT);
    knee["basedOn"] = json!([{"reference": "ServiceRequest/sr-knee"}]);
    fhir.put(&knee).await;
    fhir.put(&report("dis-pelvis", "p-dis", "CT Pelvis", PELVIS))
        .await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some("Patient/p-dis"), 50);
    let worker = Worker::connect(config, true).await.expect("connect");

    for id in ["dis-knee", "dis-pelvis"] {
        let stored = fhir.get(&format!("DiagnosticReport/{id}")).await;
        let outcome = apply_report(&worker.apply_context(false), stored)
            .await
            .expect("applied");
        assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
    }
    // One read of the Patient for both reports, one of the order.
    assert_eq!((worker.facts.reads(), worker.facts.unread()), (2, 0));

    let order_issues = fhir
        .search_all(&owned("DetectedIssue", "dis-knee", ""))
        .await;
    assert_eq!(order_issues.len(), 1, "{order_issues:?}");
    let issue = &order_issues[0];
    assert_eq!(issue["status"], "preliminary");
    assert_eq!(issue["code"]["coding"][0]["code"], "order-discrepancy");
    assert_eq!(issue["patient"]["reference"], "Patient/p-dis");
    assert_eq!(
        issue["implicated"][0]["reference"],
        "DiagnosticReport/dis-knee"
    );
    let detail = issue["detail"].as_str().expect("a detail");
    assert!(
        detail.contains("left side was ordered") && detail.contains("right side"),
        "{detail}"
    );
    assert_eq!(
        issue_codes(&fhir, "dis-pelvis", "").await,
        ["sex-discrepancy"]
    );
    let sex_issue = &fhir
        .search_all(&owned("DetectedIssue", "dis-pelvis", ""))
        .await[0];
    let implicated = sex_issue["implicated"][1]["reference"]
        .as_str()
        .expect("the finding");
    assert!(
        implicated.starts_with("Observation/"),
        "resolved: {implicated}"
    );

    // amended: the report now describes the left knee, as ordered
    let mut amended = fhir.get("DiagnosticReport/dis-knee").await;
    amended["status"] = json!("amended");
    amended["presentedForm"][0]["data"] =
        json!(base64::engine::general_purpose::STANDARD.encode(KNEE_LEFT.as_bytes()));
    let amended = fhir.put(&amended).await;
    let outcome = apply_report(&worker.apply_context(false), amended)
        .await
        .expect("applied");
    assert!(matches!(outcome, Outcome::Written { .. }), "{outcome:?}");
    let issues = fhir
        .search_all(&owned("DetectedIssue", "dis-knee", ""))
        .await;
    assert_eq!(issues.len(), 1, "nothing new: {issues:?}");
    assert_eq!(issues[0]["status"], "entered-in-error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_kinds_and_an_unreadable_patient_write_no_issue() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    fhir.put(&patient("p-off", "female")).await;
    fhir.put(&report("off-pelvis", "p-off", "MR Knee left", PELVIS))
        .await;
    fhir.put(&report("off-gone", "p-gone", "CT Pelvis", PELVIS))
        .await;
    let state = common::temp_state();
    let mut config = common::config(&server.base, state.path(), None, 50);
    config.discrepancies.sex = false;
    config.discrepancies.order = false;
    let worker = Worker::connect(config.clone(), true)
        .await
        .expect("connect");
    let stored = fhir.get("DiagnosticReport/off-pelvis").await;
    apply_report(&worker.apply_context(false), stored)
        .await
        .expect("applied");
    assert!(issue_codes(&fhir, "off-pelvis", "").await.is_empty());

    // On again, but the Patient does not exist: no check, counted; the
    // report's Observations are written all the same.
    config.discrepancies.sex = true;
    let worker = Worker::connect(config, true).await.expect("connect");
    let stored = fhir.get("DiagnosticReport/off-gone").await;
    let outcome = apply_report(&worker.apply_context(false), stored)
        .await
        .expect("applied");
    let Outcome::Written { observations, .. } = outcome else {
        panic!("expected a write, got {outcome:?}");
    };
    assert!(observations > 0);
    assert_eq!(worker.facts.unread(), 1);
    assert!(issue_codes(&fhir, "off-gone", "").await.is_empty());
}

/// Two workers (their own state and caches) on the same report at once:
/// one sex DetectedIssue and one order DetectedIssue, never two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_on_one_report_write_each_issue_once() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    fhir.put(&patient("p-two", "female")).await;
    let text = format!("{KNEE_RIGHT} Enlarged prostate.");
    fhir.put(&report(
        "dis-two",
        "p-two",
        "MR Knee left WO contrast",
        &text,
    ))
    .await;
    let (a, b) = (common::temp_state(), common::temp_state());
    let first = common::config(&server.base, a.path(), Some("Patient/p-two"), 50);
    let second = common::config(&server.base, b.path(), Some("Patient/p-two"), 50);
    let ((one, _), (two, _)) =
        tokio::join!(common::sync(&first, false), common::sync(&second, false));
    assert_eq!(
        one.tally.failed_total() + two.tally.failed_total(),
        0,
        "{one:?} {two:?}"
    );
    let mut codes = issue_codes(&fhir, "dis-two", "").await;
    codes.sort();
    assert_eq!(codes, ["order-discrepancy", "sex-discrepancy"]);
    common::one_set_per_report(&fhir, "Patient/p-two", &["dis-two".into()]).await;
}
