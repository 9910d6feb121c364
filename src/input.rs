//! What `reportsplit extract` reads: plain text, a DiagnosticReport, a Bundle
//! of them, or NDJSON of reports. Pure: bytes in, records (or per-record
//! errors) out; the reading, the threads and stdout are the binary's.
//!
//! The format is decided once, up front ([`detect`]), and never changed
//! half-way: JSON that does not parse is an error, not plain text, because
//! splitting a truncated resource as prose gives confident nonsense with
//! exit 0 (issue 11).

use serde_json::Value;

/// How the input is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The whole input is one report's text.
    Text,
    /// The whole input is one JSON value: a DiagnosticReport, a Bundle, or an array of them.
    Json,
    /// One JSON resource (a DiagnosticReport or a Bundle) per line; blank lines are skipped.
    Ndjson,
}

/// One resource that is work for the extractor, or why a record is not.
/// The reason names where the record is (line, Bundle entry) and what is
/// wrong, never its content: stderr goes to logs that must not hold report text.
pub type Record = Result<Value, String>;

/// Decides the format from the first non-blank line and the next non-blank
/// line after it, if any, so that NDJSON can be streamed without reading it
/// whole.
///
/// - Anything that does not start with `{` or `[` is text.
/// - `[` is JSON (an array of resources).
/// - A first line that is a complete JSON value: with nothing after it the
///   input is one JSON value ([`Format::Json`]); with more lines, NDJSON.
/// - A first line that is not a complete value (a pretty-printed resource, or
///   a broken first NDJSON record): NDJSON when the next line also starts
///   with `{` at its first column (pretty-printed JSON indents its inner
///   lines), JSON otherwise — and JSON that does not parse is then an error.
pub fn detect(first: &str, next: Option<&str>) -> Format {
    let first = first.trim_start_matches('\u{feff}').trim();
    match first.as_bytes().first() {
        Some(b'[') => Format::Json,
        Some(b'{') => {
            if serde_json::from_str::<serde::de::IgnoredAny>(first).is_ok() {
                if next.is_some() {
                    Format::Ndjson
                } else {
                    Format::Json
                }
            } else if next.is_some_and(|line| line.starts_with('{')) {
                Format::Ndjson
            } else {
                Format::Json
            }
        }
        _ => Format::Text,
    }
}

/// The records of a whole input read as one JSON value. Invalid JSON is one
/// failed record whose reason gives the position and suggests `--input text`.
pub fn json_records(content: &str) -> Vec<Record> {
    let content = content.trim_start_matches('\u{feff}');
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .flat_map(|(index, item)| resources(item, &format!("array item {}", index + 1)))
            .collect(),
        Ok(value) => resources(value, "input"),
        Err(error) => vec![Err(format!(
            "input: not valid JSON ({error}); use --input text to split it as plain text"
        ))],
    }
}

/// The records of one NDJSON line (`number` counts from 1, blank lines
/// included, as editors and `sed -n` do). A blank line yields nothing.
pub fn line_records(line: &[u8], number: usize) -> Vec<Record> {
    let Ok(text) = std::str::from_utf8(line) else {
        return vec![Err(format!("line {number}: not UTF-8"))];
    };
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Vec::new();
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) => resources(value, &format!("line {number}")),
        Err(error) => vec![Err(format!("line {number}: not a JSON resource ({error})"))],
    }
}

/// [`line_records`] for a reader of the report's text only (`extract`
/// without `--fhir`): of a resource, only the elements that its text, its id
/// and a Bundle's entries are read from ([`TextElements`]) are built as JSON
/// values; the others are checked and skipped while parsing, which spared
/// two fifths of the parse. A line this does not read (not an object, an
/// element given twice, invalid JSON) goes through [`line_records`], so its
/// error is the same.
pub fn text_line_records(line: &[u8], number: usize) -> Vec<Record> {
    let kept = std::str::from_utf8(line).ok().and_then(|text| {
        serde_json::from_str::<TextElements>(text.trim_start_matches('\u{feff}')).ok()
    });
    match kept {
        Some(kept) => resources(kept.into_value(), &format!("line {number}")),
        None => line_records(line, number),
    }
}

/// The elements of a resource that [`text_line_records`] keeps: what
/// `reportsplit_fhir::text` reads the text from, the id, and a Bundle's
/// entries (whose resources are kept whole). A `null` element is left out,
/// which reads the same as an absent one.
#[derive(Default)]
struct TextElements {
    resource_type: Option<Value>,
    id: Option<Value>,
    presented_form: Option<Value>,
    text: Option<Value>,
    conclusion: Option<Value>,
    entry: Option<Value>,
}

/// The names of [`TextElements`]; any other is `Other`.
#[derive(serde::Deserialize)]
#[serde(field_identifier)]
enum Element {
    #[serde(rename = "resourceType")]
    ResourceType,
    #[serde(rename = "id")]
    Id,
    #[serde(rename = "presentedForm")]
    PresentedForm,
    #[serde(rename = "text")]
    Text,
    #[serde(rename = "conclusion")]
    Conclusion,
    #[serde(rename = "entry")]
    Entry,
    #[serde(other)]
    Other,
}

impl<'de> serde::Deserialize<'de> for TextElements {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TextElementsVisitor)
    }
}

struct TextElementsVisitor;

impl<'de> serde::de::Visitor<'de> for TextElementsVisitor {
    type Value = TextElements;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<TextElements, A::Error> {
        let mut kept = TextElements::default();
        while let Some(element) = map.next_key::<Element>()? {
            let slot = match element {
                Element::ResourceType => &mut kept.resource_type,
                Element::Id => &mut kept.id,
                Element::PresentedForm => &mut kept.presented_form,
                Element::Text => &mut kept.text,
                Element::Conclusion => &mut kept.conclusion,
                Element::Entry => &mut kept.entry,
                Element::Other => {
                    map.next_value::<Checked>()?;
                    continue;
                }
            };
            // Given twice: left to the whole parse, which keeps the last.
            if slot.is_some() {
                return Err(serde::de::Error::custom("an element given twice"));
            }
            *slot = map.next_value::<Option<Value>>()?;
        }
        Ok(kept)
    }
}

/// An element [`text_line_records`] does not keep: parsed as strictly as
/// into a `Value` (escapes, numbers, depth), so a line passes or fails as
/// it did whole, but nothing is built.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Checked)
    }
}

impl<'de> serde::de::Visitor<'de> for Checked {
    type Value = Checked;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        while map.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

impl TextElements {
    fn into_value(self) -> Value {
        let elements = [
            ("resourceType", self.resource_type),
            ("id", self.id),
            ("presentedForm", self.presented_form),
            ("text", self.text),
            ("conclusion", self.conclusion),
            ("entry", self.entry),
        ];
        Value::Object(
            elements
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_owned(), value?)))
                .collect(),
        )
    }
}

/// A DiagnosticReport is one record; a Bundle one per entry; anything else an error.
fn resources(value: Value, context: &str) -> Vec<Record> {
    match value.get("resourceType").and_then(Value::as_str) {
        Some("DiagnosticReport") => vec![Ok(value)],
        Some("Bundle") => bundle_reports(value, context),
        other => vec![Err(format!(
            "{context}: expected a DiagnosticReport or a Bundle, found {}",
            describe(other)
        ))],
    }
}

/// The DiagnosticReports of a Bundle (searchset, collection, transaction...).
/// Entries a search included beside its matches (`search.mode` "include",
/// such as Patients from `_include`) are not work and are passed over; any
/// other entry that is not a DiagnosticReport is a failed record, so that a
/// Bundle of the wrong resources does not end with exit 0 and no output.
fn bundle_reports(mut bundle: Value, context: &str) -> Vec<Record> {
    let Some(Value::Array(entries)) = bundle.get_mut("entry").map(Value::take) else {
        return Vec::new();
    };
    let mut records = Vec::new();
    for (index, mut entry) in entries.into_iter().enumerate() {
        if entry.pointer("/search/mode").and_then(Value::as_str) == Some("include") {
            continue;
        }
        let resource = entry.get_mut("resource").map(Value::take);
        let kind = resource
            .as_ref()
            .and_then(|resource| resource.get("resourceType"))
            .and_then(Value::as_str);
        if kind == Some("DiagnosticReport")
            && let Some(resource) = resource
        {
            records.push(Ok(resource));
        } else {
            records.push(Err(format!(
                "{context}, Bundle entry {}: expected a DiagnosticReport, found {}",
                index + 1,
                describe(kind)
            )));
        }
    }
    records
}

/// A resource type for an error message: quoted and cut short, since it is
/// outside data that could be anything.
fn describe(kind: Option<&str>) -> String {
    match kind {
        None => "no resourceType".to_owned(),
        Some(kind) => {
            let short: String = kind.chars().take(40).collect();
            format!("resourceType {short:?}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REPORT: &str = r#"{"resourceType":"DiagnosticReport","id":"a"}"#;

    fn only(records: Vec<Record>) -> Record {
        assert_eq!(records.len(), 1, "{records:?}");
        records.into_iter().next().unwrap()
    }

    #[test]
    fn plain_text_is_text() {
        assert_eq!(detect("FINDINGS: Clear lungs.", None), Format::Text);
        assert_eq!(
            detect("\u{feff}IMPRESSION: Normal.", Some("{")),
            Format::Text
        );
    }

    #[test]
    fn one_json_value_is_json_even_on_one_line() {
        assert_eq!(detect(REPORT, None), Format::Json);
        assert_eq!(
            detect("{", Some("  \"resourceType\": \"Bundle\",")),
            Format::Json
        );
        assert_eq!(detect("[", Some("  {")), Format::Json);
    }

    #[test]
    fn lines_of_objects_are_ndjson_even_when_the_first_is_broken() {
        assert_eq!(detect(REPORT, Some(REPORT)), Format::Ndjson);
        assert_eq!(detect("{\"resourceType\":", Some(REPORT)), Format::Ndjson);
    }

    #[test]
    fn truncated_json_is_an_error_not_text() {
        let truncated = &REPORT[..20];
        assert_eq!(detect(truncated, None), Format::Json);
        let Err(reason) = only(json_records(truncated)) else {
            panic!("truncated JSON was accepted");
        };
        assert!(reason.starts_with("input: not valid JSON"), "{reason}");
        assert!(reason.contains("--input text"), "{reason}");
    }

    #[test]
    fn text_starting_with_a_brace_needs_input_text() {
        let text = "{dictation} IMPRESSION: Normal.";
        assert_eq!(detect(text, None), Format::Json);
        assert!(json_records(text)[0].is_err());
    }

    #[test]
    fn a_bundle_yields_its_reports_and_a_failure_per_foreign_entry() {
        let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "DiagnosticReport", "id": "a"}},
            {"resource": {"resourceType": "Patient", "id": "p"}, "search": {"mode": "include"}},
            {"resource": {"resourceType": "Observation", "id": "o"}},
            {"resource": {"resourceType": "DiagnosticReport", "id": "b"}}
        ]});
        let records = json_records(&bundle.to_string());
        let ids: Vec<_> = records
            .iter()
            .filter_map(|record| record.as_ref().ok())
            .map(|report| report["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let errors: Vec<_> = records.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(
            errors,
            [
                "input, Bundle entry 3: expected a DiagnosticReport, found resourceType \"Observation\""
            ]
        );
    }

    #[test]
    fn a_json_array_yields_each_resource() {
        let records = json_records(&format!("[{REPORT},{REPORT}]"));
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(Result::is_ok));
    }

    #[test]
    fn an_ndjson_line_fails_alone_naming_its_number() {
        assert_eq!(line_records(REPORT.as_bytes(), 1).len(), 1);
        assert!(line_records(b"  \r", 2).is_empty());
        let Err(reason) = only(line_records(b"{broken", 7)) else {
            panic!("a broken line was accepted");
        };
        assert!(
            reason.starts_with("line 7: not a JSON resource"),
            "{reason}"
        );
        let Err(reason) = only(line_records(b"\xff{}", 8)) else {
            panic!("bad UTF-8 was accepted");
        };
        assert_eq!(reason, "line 8: not UTF-8");
    }

    #[test]
    fn text_lines_read_as_whole_lines_do() {
        let lines: [&[u8]; 10] = [
            br#"{"resourceType":"DiagnosticReport","id":"a","status":"final","meta":{"versionId":"2"},"conclusion":"No effusion."}"#,
            br#"{"resourceType":"DiagnosticReport","id":null,"text":{"status":"generated","div":"<div>x</div>"},"presentedForm":[{"data":"eA=="}]}"#,
            br#"{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"DiagnosticReport","id":"b","code":{}}},{"resource":{"resourceType":"Patient"}}]}"#,
            br#"{"resourceType":"Patient","id":"p"}"#,
            br#"{"resourceType":"DiagnosticReport","id":"a","id":"b"}"#,
            br#"["not", "an", "object"]"#,
            br#"{"resourceType":"DiagnosticReport","status":"\ud800","conclusion":"x"}"#,
            br#"{"resourceType":"DiagnosticReport","conclusion":null,"conclusion":"x","n":1e400}"#,
            b"{broken",
            b"  ",
        ];
        for (number, line) in lines.into_iter().enumerate() {
            let whole = line_records(line, number);
            let text = text_line_records(line, number);
            assert_eq!(text.len(), whole.len(), "line {number}");
            for (text, whole) in text.iter().zip(&whole) {
                match (text, whole) {
                    (Ok(text), Ok(whole)) => {
                        for name in ["resourceType", "id", "presentedForm", "text", "conclusion"] {
                            assert_eq!(
                                text.get(name).filter(|v| !v.is_null()),
                                whole.get(name).filter(|v| !v.is_null()),
                                "line {number}, {name}"
                            );
                        }
                    }
                    (text, whole) => assert_eq!(text, whole, "line {number}"),
                }
            }
        }
    }

    #[test]
    fn other_resources_are_refused_without_their_content() {
        let Err(reason) = only(line_records(
            br#"{"resourceType":"Patient","name":"Secret"}"#,
            3,
        )) else {
            panic!("a Patient was accepted");
        };
        assert!(reason.contains("\"Patient\""), "{reason}");
        assert!(!reason.contains("Secret"), "{reason}");
    }
}
