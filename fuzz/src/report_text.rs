//! The check of the `report_text` fuzz target, also run over the
//! committed corpus by `crates/fhir/tests/fuzz_corpus.rs`: text decoding
//! (`reportsplit_fhir::text::report_text`) on arbitrary bytes made into a
//! DiagnosticReport: base64 attachments with any charset, HTML narratives,
//! conclusions, or the bytes as the report's JSON itself. It must not panic,
//! must keep to its character limit, and its text must split.

use base64::Engine as _;
use reportsplit_fhir::limits::Limits;
use reportsplit_fhir::text::report_text;
use reportsplit_split::{Lexicon, extract_as};
use serde_json::{Value, json};

/// Content types servers send, with and without (odd) charsets.
const CONTENT_TYPES: &[&str] = &[
    "text/plain",
    "text/plain; charset=utf-8",
    "text/plain; charset=windows-1252",
    "text/plain; charset=ISO-8859-1",
    "text/plain; charset=utf-16",
    "text/plain; charset=\"latin1\"",
    "text/plain; charset=no-such-charset",
    "text/html",
    "text/html; charset=windows-1252",
    "application/xhtml+xml",
    "text/rtf",
    "application/pdf",
    "",
];

/// The first byte picks the shape of the report (and a content type), the
/// rest is its content.
pub fn check(data: &[u8], lexicon: &Lexicon) {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let lossy = String::from_utf8_lossy(rest);
    let content_type = CONTENT_TYPES[usize::from(shape >> 3) % CONTENT_TYPES.len()];
    let report = match shape % 6 {
        // The bytes are the report's JSON (any shape a server might send).
        0 => match serde_json::from_slice::<Value>(rest) {
            Ok(value) => value,
            Err(_) => return,
        },
        // An attachment: the bytes base64-encoded under some charset.
        1 => report(json!({"presentedForm": [{
            "contentType": content_type,
            "data": base64::engine::general_purpose::STANDARD.encode(rest),
        }]})),
        // An attachment whose `data` is not (or not only) base64.
        2 => report(json!({"presentedForm": [{"contentType": content_type, "data": lossy}]})),
        // An XHTML narrative.
        3 => report(json!({"text": {"status": "generated", "div": lossy}})),
        // A conclusion beside a narrative and an HTML attachment: the choice of source.
        4 => report(json!({
            "conclusion": lossy,
            "text": {"status": "generated", "div": format!("<div>{lossy}</div>")},
            "presentedForm": [{
                "contentType": "text/html",
                "data": base64::engine::general_purpose::STANDARD.encode(rest),
            }],
        })),
        // A small character limit against any attachment.
        _ => report(json!({"presentedForm": [{
            "contentType": content_type,
            "data": base64::engine::general_purpose::STANDARD.encode(rest),
        }]})),
    };
    // The other limits stay at their defaults.
    let limits = if shape % 6 == 5 {
        Limits {
            text_chars: 64,
            ..Limits::default()
        }
    } else {
        Limits::default()
    };
    if let Ok(text) = report_text(&report, &limits) {
        assert!(text.text.chars().count() <= limits.text_chars);
        assert!(text.element.starts_with("DiagnosticReport."));
        extract_as(&text.text, lexicon, text.headerless);
    }
}

/// A DiagnosticReport with `elements` added.
fn report(elements: Value) -> Value {
    let mut report = json!({
        "resourceType": "DiagnosticReport",
        "id": "fuzz",
        "status": "final",
        "code": {"text": "fuzz"},
    });
    if let (Some(report), Value::Object(elements)) = (report.as_object_mut(), elements) {
        report.extend(elements);
    }
    report
}
