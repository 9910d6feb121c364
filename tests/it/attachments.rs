//! Report text in the forms hospitals send (issue 12, item 6), end to end
//! through `sync` against strict SEKMET: text only in a Binary on the same
//! server (relative and absolute URL), an RTF Binary, an inline PDF with a
//! text layer, a scanned PDF (skipped with its reason), an attachment on
//! another server (refused unread: that server sees no request) and a URL
//! to a Binary that does not exist (dead-lettered). Every report, Binary and
//! PDF here is written by this test.

use crate::common;
use crate::pdf_fixture;

use base64::Engine as _;
use common::Sekmet;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate};

const RAD: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn report(id: &str, patient: &str, forms: Value) -> Value {
    json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "status": "final",
        "category": [{"coding": [{"system": RAD, "code": "RAD"}]}],
        "code": {"text": "CT Chest"},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-03-02T08:00:00Z",
        "presentedForm": forms,
    })
}

/// The observations a report links, as (term text, derivation path).
async fn linked(fhir: &common::Fhir, report_id: &str) -> Vec<(String, String)> {
    let report = fhir.get(&format!("DiagnosticReport/{report_id}")).await;
    let mut out = Vec::new();
    for reference in report["result"].as_array().into_iter().flatten() {
        let observation = fhir.get(reference["reference"].as_str().unwrap()).await;
        let path = observation["extension"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|e| e["extension"].as_array().into_iter().flatten())
            .find(|e| e["url"] == "path")
            .and_then(|e| e["valueString"].as_str())
            .unwrap_or("")
            .to_owned();
        let term = observation["code"]["text"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        out.push((term.to_ascii_lowercase(), path));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_rtf_and_pdf_are_read_scans_and_foreign_urls_are_skipped_with_reasons() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let foreign = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&foreign)
        .await;

    let patient = common::seed::unique("attach");
    let plain = "FINDINGS: Moderate right pleural effusion.\nIMPRESSION: Right pleural effusion.";
    let rtf = br"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Arial;}}\f0{\b FINDINGS:}\par There is a 6 mm nodule in the left upper lobe.\par IMPRESSION:\par Left upper lobe nodule, 6 mm.\par}";
    let pdf = pdf_fixture::pdf(&[pdf_fixture::lines_with_td(&[
        "FINDINGS: Small left pneumothorax.",
        "IMPRESSION: Small left pneumothorax.",
    ])]);
    let scanned = pdf_fixture::pdf(&[pdf_fixture::scanned_page()]);
    let id = |name: &str| format!("{patient}-{name}");
    let resources = vec![
        common::seed::patient(&patient),
        json!({"resourceType": "Binary", "id": id("txt"), "contentType": "text/plain", "data": b64(plain.as_bytes())}),
        json!({"resourceType": "Binary", "id": id("rtf"), "contentType": "application/rtf", "data": b64(rtf)}),
        report(
            &id("binary"),
            &patient,
            json!([{"contentType": "text/plain", "url": format!("Binary/{}", id("txt"))}]),
        ),
        // Absolute on the configured base, content type from the Binary.
        report(
            &id("rtf"),
            &patient,
            json!([{"url": format!("{}/Binary/{}", server.base, id("rtf"))}]),
        ),
        report(
            &id("pdf"),
            &patient,
            json!([{"contentType": "application/pdf", "data": b64(&pdf)}]),
        ),
        report(
            &id("scan"),
            &patient,
            json!([{"contentType": "application/pdf", "data": b64(&scanned)}]),
        ),
        report(
            &id("foreign"),
            &patient,
            json!([{"contentType": "text/plain", "url": format!("{}/fhir/Binary/1", foreign.uri())}]),
        ),
        report(
            &id("missing"),
            &patient,
            json!([{"contentType": "text/plain", "url": "Binary/no-such-binary"}]),
        ),
    ];
    fhir.put_all(&resources).await;

    let state = common::temp_state();
    let subject = format!("Patient/{patient}");
    let config = common::config(&server.base, state.path(), Some(&subject), 20);
    let (summary, _) = common::sync(&config, false).await;
    let tally = &summary.tally;
    assert_eq!(tally.seen, 6, "{summary}");
    assert_eq!(tally.written, 3, "{summary}");
    assert_eq!(tally.skipped.get("pdf-without-text"), Some(&1), "{summary}");
    assert_eq!(
        tally.skipped.get("foreign-attachment"),
        Some(&1),
        "{summary}"
    );
    assert_eq!(
        tally.failed.get("attachment-missing"),
        Some(&1),
        "{summary}"
    );
    assert_eq!(tally.failed_total(), 1, "{summary}");

    // Never fetched: our credentials (none here, but the rule is the same) stay home.
    assert!(
        foreign
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );

    for (name, term) in [
        ("binary", "effusion"),
        ("rtf", "nodule"),
        ("pdf", "pneumothorax"),
    ] {
        let observations = linked(&fhir, &id(name)).await;
        assert!(
            observations
                .iter()
                .any(|(t, path)| t.contains(term) && path == "DiagnosticReport.presentedForm[0]"),
            "{name}: {observations:?}"
        );
    }
    for name in ["scan", "foreign"] {
        let report = fhir.get(&format!("DiagnosticReport/{}", id(name))).await;
        assert!(report.get("result").is_none(), "{name} was not written");
    }

    // The missing Binary is dead-lettered with its reason, and no report text.
    let dead = std::fs::read_to_string(state.path().join("dead-letter.ndjson")).unwrap_or_default();
    assert!(
        dead.contains(&id("missing")) && dead.contains("attachment-missing"),
        "{dead}"
    );
    assert!(!dead.contains("pleural"), "{dead}");
}
