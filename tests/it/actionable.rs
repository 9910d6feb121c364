//! Actionable results (issue 12) through the worker against a strict
//! SEKMET: a follow-up recommendation becomes a ServiceRequest and a
//! laterality discrepancy a DetectedIssue, each found again by the report's
//! group tag; a second pass and a replayed bundle write nothing twice; an
//! amendment supersedes each with its own status (ServiceRequest `revoked`,
//! DetectedIssue `entered-in-error`); two workers on one report at once
//! leave one set.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common;
use crate::map_validate::actionable_report;

const SUBJECT_TAG: &str = "urn%3Areportsplit%3Areport";

/// `{Type}?_tag=urn:reportsplit:report|{report}` plus `more`.
fn owned(kind: &str, report: &str, more: &str) -> String {
    format!("{kind}?_tag={SUBJECT_TAG}|{report}{more}")
}

/// The report as stored on the server: no version yet, our own subject.
fn stored_report(id: &str, patient: &str) -> Value {
    let mut report = actionable_report(id);
    let object = report.as_object_mut().expect("a report object");
    object.remove("meta");
    object.insert(
        "subject".into(),
        json!({"reference": format!("Patient/{patient}")}),
    );
    report
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": "Test"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_ups_and_discrepancies_are_written_once_and_superseded_by_type() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    fhir.put(&patient("p-act")).await;
    fhir.put(&stored_report("act-1", "p-act")).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some("Patient/p-act"), 50);

    let (summary, _) = common::sync(&config, false).await;
    assert_eq!(summary.tally.written, 1, "{summary:?}");
    let requests = fhir.search_all(&owned("ServiceRequest", "act-1", "")).await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request["status"], "draft");
    assert_eq!(request["intent"], "proposal");
    assert_eq!(request["code"]["coding"][0]["code"], "followup-ct");
    assert_eq!(request["subject"]["reference"], "Patient/p-act");
    // 2026-11-20 plus 6 to 12 months (180 and 365 days): a range stays a range
    assert_eq!(
        request["occurrencePeriod"],
        json!({"start": "2027-05-19", "end": "2027-11-20"})
    );
    assert_eq!(
        request["asNeededCodeableConcept"]["text"],
        "if clinically indicated"
    );
    let reason = request["reasonReference"][0]["reference"]
        .as_str()
        .expect("a reason");
    assert!(reason.starts_with("Observation/"), "resolved: {reason}");
    assert!(
        fhir.get(reason).await["code"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("nodule")),
        "the follow-up follows from the nodule"
    );
    let issues = fhir.search_all(&owned("DetectedIssue", "act-1", "")).await;
    assert_eq!(issues.len(), 1, "{issues:?}");
    let issue = &issues[0];
    assert_eq!(issue["status"], "preliminary");
    assert_eq!(issue["code"]["coding"][0]["code"], "laterality-discrepancy");
    assert_eq!(issue["patient"]["reference"], "Patient/p-act");
    assert_eq!(
        issue["implicated"][0]["reference"],
        "DiagnosticReport/act-1"
    );
    let implicated = issue["implicated"][1]["reference"]
        .as_str()
        .expect("a finding");
    assert!(
        implicated.starts_with("Observation/"),
        "resolved: {implicated}"
    );
    let report = fhir.get("DiagnosticReport/act-1").await;
    let linked = report["result"].to_string();
    assert!(
        !linked.contains("ServiceRequest") && !linked.contains("DetectedIssue"),
        "only Observations go into result: {linked}"
    );
    let observations = common::one_set_per_report(&fhir, "Patient/p-act", &["act-1".into()]).await;

    // a second pass: the report is current, nothing is written
    let (again, _) = common::sync(&config, false).await;
    assert_eq!(again.tally.written, 0, "{again:?}");
    assert_eq!(fhir.count(&owned("ServiceRequest", "act-1", "")).await, 1);
    assert_eq!(fhir.count(&owned("DetectedIssue", "act-1", "")).await, 1);

    // amended: the sides agree now and the follow-up is an MRI in 3 months
    let text = "FINDINGS: There is a moderate left pleural effusion. \
                An 8 mm solid nodule in the right upper lobe.\n\
                IMPRESSION: 1. Moderate left pleural effusion. \
                2. 8 mm right upper lobe nodule.\n\
                RECOMMENDATION: Recommend MRI chest in 3 months.";
    let mut amended = fhir.get("DiagnosticReport/act-1").await;
    amended["status"] = json!("amended");
    amended["presentedForm"][0]["data"] = json!(base64_of(text));
    fhir.put(&amended).await;
    let (third, _) = common::sync(&config, false).await;
    assert_eq!(third.tally.written, 1, "{third:?}");
    assert_eq!(
        fhir.count(&owned("ServiceRequest", "act-1", "&status=revoked"))
            .await,
        1,
        "the old follow-up is revoked"
    );
    let live = fhir
        .search_all(&owned("ServiceRequest", "act-1", "&status=draft"))
        .await;
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["code"]["coding"][0]["code"], "followup-mri");
    assert_eq!(live[0]["occurrenceDateTime"], "2027-02-18");
    let issues = fhir.search_all(&owned("DetectedIssue", "act-1", "")).await;
    assert_eq!(
        issues.len(),
        1,
        "the amendment removed the discrepancy's ground"
    );
    assert_eq!(issues[0]["status"], "entered-in-error");
    assert_eq!(
        fhir.count("Observation?subject=Patient/p-act&status=entered-in-error")
            .await as usize,
        observations,
        "every earlier Observation superseded"
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// Two workers with their own state on the same new report at once: one
/// wins, the other re-reads after its 412 and finds the report current (or
/// its conditional creates match): one ServiceRequest, one DetectedIssue,
/// one set of Observations.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_on_one_report_leave_one_set() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    fhir.put(&patient("p-race")).await;
    fhir.put(&stored_report("act-race", "p-race")).await;
    let (a, b) = (common::temp_state(), common::temp_state());
    let first = common::config(&server.base, a.path(), Some("Patient/p-race"), 50);
    let second = common::config(&server.base, b.path(), Some("Patient/p-race"), 50);
    let ((one, _), (two, _)) =
        tokio::join!(common::sync(&first, false), common::sync(&second, false));
    assert_eq!(
        one.tally.failed_total() + two.tally.failed_total(),
        0,
        "{one:?} {two:?}"
    );
    assert_eq!(
        fhir.count(&owned("ServiceRequest", "act-race", "")).await,
        1
    );
    assert_eq!(fhir.count(&owned("DetectedIssue", "act-race", "")).await, 1);
    common::one_set_per_report(&fhir, "Patient/p-race", &["act-race".into()]).await;
}

/// The bundle `extract --fhir` prints for a report not stored yet, posted
/// twice: the ServiceRequest and the DetectedIssue exist once (conditional
/// on their identifier, the DetectedIssue's through its identity tag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_bundle_creates_each_follow_up_and_issue_once() {
    let server = common::Sekmet::start();
    let fhir = server.fhir();
    let mut report = actionable_report("ignored");
    let object = report.as_object_mut().expect("a report object");
    object.remove("meta");
    object.remove("id");
    object.insert(
        "identifier".into(),
        json!([{"system": "http://example.org/accession", "value": "ACC-ACT-1"}]),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_reportsplit"))
        .args(["extract", "--fhir"])
        .env("REPORTSPLIT_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start reportsplit");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{report}\n").as_bytes())
        .expect("write the report");
    let output = child.wait_with_output().expect("reportsplit ends");
    assert!(output.status.success(), "{}", common::stderr(&output));
    let bundle: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");
    for attempt in 0..2 {
        let response = fhir
            .request(reqwest::Method::POST, "", Some(&bundle), None)
            .await;
        assert_eq!(response.status, 200, "attempt {attempt}: {}", response.body);
    }
    assert_eq!(fhir.count("ServiceRequest").await, 1);
    assert_eq!(fhir.count("DetectedIssue").await, 1);
    let planned = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["resourceType"] == "Observation")
        .count();
    assert_eq!(fhir.count("Observation").await as usize, planned);
}
