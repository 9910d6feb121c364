//! Every resource `reportsplit extract --fhir` writes for our own reports of
//! several modalities (CT, MRI, ultrasound, mammography, PET/NM: fixtures
//! 59–66 of crates/split) passes @medplum/core's `validateResource` against
//! the R4 StructureDefinitions (scripts/medplum.sh, pinned; installed into a
//! cache directory), and a broken resource fails it: the check can fail.
//! Skipped, with a message, only when node/npm are absent.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use serde_json::{Value, json};

const FIXTURES: &str = "crates/split/tests/fixtures";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("stdin accepts the input");
    child.wait_with_output().expect("the command ends")
}

/// The fixture reports 59–66, each as a DiagnosticReport with its text as a
/// plain-text attachment (the common way reports arrive).
fn fixture_reports() -> Vec<(String, Value)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join(FIXTURES))
        .expect("fixtures directory")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.get(..2))
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| (59..=66).contains(&n))
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|n| n.to_str())
                .expect("a file name")
                .to_owned();
            let text = std::fs::read_to_string(path).expect("fixture text");
            let id = name.replace('_', "-");
            let report = json!({
                "resourceType": "DiagnosticReport",
                "id": id,
                "meta": {"versionId": "1", "lastUpdated": "2026-11-20T10:00:00.000+00:00"},
                "status": "final",
                "code": {"text": name},
                "subject": {"reference": "Patient/p1"},
                "effectiveDateTime": "2026-11-20T09:00:00+01:00",
                "imagingStudy": [{"reference": format!("ImagingStudy/{id}")}],
                "presentedForm": [{
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
                }]
            });
            (name, report)
        })
        .collect()
}

/// `reportsplit extract --fhir` over the reports: one transaction Bundle a line.
fn transactions(reports: &[(String, Value)]) -> Vec<Value> {
    let input: String = reports.iter().map(|(_, r)| format!("{r}\n")).collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_reportsplit"));
    command
        .args(["extract", "--fhir"])
        .env("REPORTSPLIT_LOG", "warn");
    let output = run_with_stdin(command, &input);
    assert!(
        output.status.success(),
        "extract --fhir: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// Runs the validator over NDJSON; `None` when node/npm are absent.
pub(crate) fn validate(ndjson: &str) -> Option<(bool, Value)> {
    let mut command = Command::new("bash");
    command.arg(root().join("scripts/medplum.sh"));
    let output = run_with_stdin(command, ndjson);
    if output.status.code() == Some(3) {
        return None;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("validator summary ({e}); stderr: {stderr}"));
    Some((output.status.success(), summary))
}

fn observations(bundle: &Value) -> impl Iterator<Item = &Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Observation")
}

fn has_component(bundle: &Value, code: &str) -> bool {
    observations(bundle)
        .flat_map(|o| o["component"].as_array().into_iter().flatten())
        .any(|c| c["code"]["coding"][0]["code"] == code)
}

#[test]
fn every_written_resource_of_every_modality_is_valid_r4() {
    let reports = fixture_reports();
    assert_eq!(reports.len(), 8, "fixtures 59-66");
    let bundles = transactions(&reports);
    assert_eq!(bundles.len(), reports.len());
    for ((name, _), bundle) in reports.iter().zip(&bundles) {
        assert_eq!(bundle["resourceType"], "Bundle", "{name}: {bundle}");
        assert!(observations(bundle).count() > 0, "{name} has Observations");
    }
    // the new shapes are all there, so the validator sees each of them
    let descriptor = |b: &Value| {
        observations(b)
            .flat_map(|o| o["component"].as_array().into_iter().flatten())
            .any(|c| {
                c["code"]["coding"][0]["code"]
                    .as_str()
                    .is_some_and(|code| code.starts_with("descriptor-") || code == "300842002")
            })
    };
    assert!(
        bundles.iter().all(descriptor),
        "descriptors in every modality"
    );
    assert!(
        bundles.iter().any(|b| has_component(b, "363698007")),
        "a further site"
    );
    let derived_from_observation = bundles.iter().any(|b| {
        observations(b).any(|o| {
            o["derivedFrom"].as_array().into_iter().flatten().any(|r| {
                r["reference"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("urn:uuid:"))
            })
        })
    });
    assert!(
        derived_from_observation,
        "a diagnosis derived from an observation"
    );

    let assessment = |b: &Value| {
        observations(b).any(|o| {
            o["identifier"][0]["value"]
                .as_str()
                .is_some_and(|v| v.contains("/assessment/"))
                && o["valueCodeableConcept"]["coding"][0]["code"].is_string()
        })
    };
    assert!(
        bundles.iter().filter(|b| assessment(b)).count() >= 3,
        "assessments (BI-RADS, Bosniak, TI-RADS, Lung-RADS) in the fixtures"
    );

    let ndjson: String = bundles.iter().map(|b| format!("{b}\n")).collect();
    let Some((valid, summary)) = validate(&ndjson) else {
        eprintln!(
            "SKIPPED: node/npm not found; the FHIR validator (scripts/medplum.sh) did not run"
        );
        return;
    };
    assert!(valid, "invalid resources: {summary:#}");
    let validated = summary["validated"].as_u64().unwrap_or(0);
    let entries: usize = bundles
        .iter()
        .map(|b| b["entry"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(validated as usize, bundles.len() + entries, "{summary}");
    eprintln!("medplum validateResource: {summary}");

    // the check can fail: the same output with one broken component
    let mut broken = bundles[0].clone();
    let observation = broken["entry"]
        .as_array_mut()
        .and_then(|entries| {
            entries
                .iter_mut()
                .find(|e| e["resource"]["resourceType"] == "Observation")
        })
        .expect("an Observation entry");
    observation["resource"]["component"][0]
        .as_object_mut()
        .expect("a component")
        .remove("code");
    let Some((valid, summary)) = validate(&format!("{broken}\n")) else {
        return;
    };
    assert!(
        !valid,
        "a component without code must be refused: {summary}"
    );
    let errors = summary["errors"].to_string();
    assert!(errors.contains("component[0].code"), "{errors}");
}

/// The create-mode transaction of reports not stored yet (no
/// `meta.versionId`; with and without a business identifier): the created
/// report, its Observations and the Provenance are valid R4 too.
#[test]
fn the_transaction_creating_an_unstored_report_is_valid_r4() {
    let mut reports = fixture_reports();
    reports.truncate(2);
    for (index, (_, report)) in reports.iter_mut().enumerate() {
        let object = report.as_object_mut().expect("a report object");
        object.remove("meta");
        object.remove("id");
        if index == 0 {
            object.insert(
                "identifier".into(),
                json!([{"system": "http://example.org/accession", "value": "V-1"}]),
            );
        }
    }
    let bundles = transactions(&reports);
    for bundle in &bundles {
        let last = bundle["entry"]
            .as_array()
            .and_then(|e| e.last())
            .expect("entries");
        assert_eq!(last["request"]["method"], "POST", "{bundle}");
        assert_eq!(last["resource"]["resourceType"], "DiagnosticReport");
    }
    let ndjson: String = bundles.iter().map(|b| format!("{b}\n")).collect();
    let Some((valid, summary)) = validate(&ndjson) else {
        eprintln!("SKIPPED: node/npm not found; the FHIR validator did not run");
        return;
    };
    assert!(valid, "invalid resources: {summary:#}");
    assert_eq!(summary["byType"]["DiagnosticReport"], 2, "{summary}");
}

/// A report written for this test with a laterality discrepancy and a
/// hedged follow-up with a range: one line of `extract --fhir` input.
pub(crate) fn actionable_report(id: &str) -> Value {
    let text = "FINDINGS: There is a moderate left pleural effusion. \
                An 8 mm solid nodule in the right upper lobe.\n\
                IMPRESSION: 1. Moderate right pleural effusion. \
                2. 8 mm right upper lobe nodule.\n\
                RECOMMENDATION: Recommend CT chest in 6-12 months if clinically indicated.";
    json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "meta": {"versionId": "1", "lastUpdated": "2026-11-20T10:00:00.000+00:00"},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
        "code": {"text": "CT Chest"},
        "subject": {"reference": "Patient/p-act"},
        "effectiveDateTime": "2026-11-20T09:00:00+01:00",
        "presentedForm": [{
            "contentType": "text/plain; charset=utf-8",
            "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
        }]
    })
}

/// The ServiceRequest of a follow-up and the DetectedIssue of a laterality
/// discrepancy (issue 12) are valid R4 for @medplum/core, as written by
/// `extract --fhir`.
#[test]
fn follow_up_requests_and_detected_issues_are_valid_r4() {
    let bundles = transactions(&[("actionable".to_owned(), actionable_report("act-v1"))]);
    let resources: Vec<&Value> = bundles[0]["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .collect();
    let of_type = |kind: &str| {
        resources
            .iter()
            .filter(|r| r["resourceType"] == kind)
            .count()
    };
    assert_eq!(of_type("ServiceRequest"), 1, "{}", bundles[0]);
    assert_eq!(of_type("DetectedIssue"), 1, "{}", bundles[0]);
    let ndjson: String = bundles.iter().map(|b| format!("{b}\n")).collect();
    let Some((valid, summary)) = validate(&ndjson) else {
        eprintln!("SKIPPED: node/npm not found; the FHIR validator did not run");
        return;
    };
    assert!(valid, "invalid resources: {summary:#}");
    assert_eq!(summary["byType"]["ServiceRequest"], 1, "{summary}");
    assert_eq!(summary["byType"]["DetectedIssue"], 1, "{summary}");
}

/// A report written for this test whose text disagrees with what it holds:
/// a contained Patient (`gender`, `birthDate`) and a contained order, as an
/// interface engine may send it to `extract --fhir`.
fn contradicted_report(id: &str, text: &str, gender: &str, birth: &str) -> Value {
    json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "meta": {"versionId": "1", "lastUpdated": "2026-12-01T10:00:00.000+00:00"},
        "contained": [
            {"resourceType": "Patient", "id": "pt", "gender": gender, "birthDate": birth},
            {"resourceType": "ServiceRequest", "id": "order", "status": "active", "intent": "order",
             "code": {"text": "MRI knee without contrast"}, "bodySite": [{"text": "Left knee"}],
             "subject": {"reference": "#pt"}}
        ],
        "basedOn": [{"reference": "#order"}],
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
        "code": {"text": "MR Knee left WO contrast"},
        "subject": {"reference": "#pt"},
        "effectiveDateTime": "2026-12-01T09:00:00Z",
        "presentedForm": [{
            "contentType": "text/plain; charset=utf-8",
            "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
        }]
    })
}

/// The DetectedIssues of a sex, an age and an order discrepancy (issue 12,
/// item 3) are valid R4 for @medplum/core, as written by `extract --fhir`
/// from the facts the reports contain.
#[test]
fn sex_age_and_order_detected_issues_are_valid_r4() {
    let knee = "EXAM: MRI RIGHT KNEE.\nFINDINGS: Tear of the medial meniscus of the right knee.\n\
                IMPRESSION: Right medial meniscal tear.";
    let head = "EXAM: MRI LEFT KNEE.\nFINDINGS: Left knee joint effusion. \
                Grade 2 germinal matrix hemorrhage on the left.";
    let pelvis = "EXAM: MRI LEFT KNEE.\nFINDINGS: Left knee effusion. \
                  The prostate is enlarged, measuring 5.8 cm.";
    let bundles = transactions(&[
        (
            "order".to_owned(),
            contradicted_report("dis-order", knee, "male", "1970-01-01"),
        ),
        (
            "age".to_owned(),
            contradicted_report("dis-age", head, "male", "1960-05-05"),
        ),
        (
            "sex".to_owned(),
            contradicted_report("dis-sex", pelvis, "female", "1970-01-01"),
        ),
    ]);
    let codes: Vec<&str> = bundles
        .iter()
        .flat_map(|b| b["entry"].as_array().into_iter().flatten())
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "DetectedIssue")
        .filter_map(|r| r["code"]["coding"][0]["code"].as_str())
        .collect();
    assert_eq!(
        codes,
        ["order-discrepancy", "age-discrepancy", "sex-discrepancy"],
        "{bundles:?}"
    );
    let ndjson: String = bundles.iter().map(|b| format!("{b}\n")).collect();
    let Some((valid, summary)) = validate(&ndjson) else {
        eprintln!("SKIPPED: node/npm not found; the FHIR validator did not run");
        return;
    };
    assert!(valid, "invalid resources: {summary:#}");
    assert_eq!(summary["byType"]["DetectedIssue"], 3, "{summary}");
}

/// A report written for this test with a critical result, and `call` after
/// its impression.
fn critical_report(id: &str, call: &str) -> Value {
    let text = format!(
        "FINDINGS: Large left pneumothorax with rightward mediastinal shift.\n\
         IMPRESSION: Large left tension pneumothorax.{call}"
    );
    json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "meta": {"versionId": "1", "lastUpdated": "2026-12-03T10:00:00.000+00:00"},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}]}],
        "code": {"text": "XR Chest"},
        "subject": {"reference": "Patient/p-crit"},
        "effectiveDateTime": "2026-12-03T09:40:00Z",
        "presentedForm": [{
            "contentType": "text/plain; charset=utf-8",
            "data": base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
        }]
    })
}

/// The Communication of a documented critical call and the Flag of an
/// undocumented one (issue 12, item 2) are valid R4 for @medplum/core, as
/// written by `extract --fhir`.
#[test]
fn critical_communications_and_flags_are_valid_r4() {
    let bundles = transactions(&[
        (
            "called".to_owned(),
            critical_report(
                "crit-called",
                " Findings were called to the ordering physician, Dr. Okafor, on 12/3/2026 at 10:05 am.",
            ),
        ),
        ("uncalled".to_owned(), critical_report("crit-uncalled", "")),
    ]);
    let of_type = |bundle: &Value, kind: &str| -> Vec<Value> {
        bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["resource"].clone())
            .filter(|r| r["resourceType"] == kind)
            .collect()
    };
    let communications = of_type(&bundles[0], "Communication");
    assert_eq!(communications.len(), 1, "{}", bundles[0]);
    assert_eq!(communications[0]["status"], "completed");
    assert_eq!(communications[0]["sent"], "2026-12-03T10:05:00Z");
    assert_eq!(
        communications[0]["recipient"][0]["display"],
        "the ordering physician, Dr. Okafor"
    );
    assert!(of_type(&bundles[0], "Flag").is_empty());
    let flags = of_type(&bundles[1], "Flag");
    assert_eq!(flags.len(), 1, "{}", bundles[1]);
    assert_eq!(flags[0]["status"], "active");
    assert!(of_type(&bundles[1], "Communication").is_empty());
    let ndjson: String = bundles.iter().map(|b| format!("{b}\n")).collect();
    let Some((valid, summary)) = validate(&ndjson) else {
        eprintln!("SKIPPED: node/npm not found; the FHIR validator did not run");
        return;
    };
    assert!(valid, "invalid resources: {summary:#}");
    assert_eq!(summary["byType"]["Communication"], 1, "{summary}");
    assert_eq!(summary["byType"]["Flag"], 1, "{summary}");
}
