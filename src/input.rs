//! What `reportsplit extract` reads: plain text, a DiagnosticReport, a Bundle
//! of them, or NDJSON of reports. Pure: bytes in, inputs out.

use serde_json::Value;

/// One unit of work for the extractor.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Plain report text, as typed or exported.
    Text(String),
    /// A DiagnosticReport resource as JSON.
    Report(Value),
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("line {line}: not a JSON resource: {source}")]
    Ndjson {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{context}: expected a DiagnosticReport or a Bundle, found resourceType {found:?}")]
    ResourceType { context: String, found: String },
}

/// Reads `content` as JSON when it looks like JSON (a resource, a Bundle, or
/// NDJSON), otherwise as plain text. Text that merely starts with `{` but is
/// not JSON stays text.
pub fn parse(content: &str) -> Result<Vec<Input>, InputError> {
    let trimmed = content.trim_start_matches('\u{feff}').trim();
    if !trimmed.starts_with('{') {
        return Ok(vec![Input::Text(content.to_owned())]);
    }
    if let Ok(value) = serde_json::from_str::<Value>(trimmed) {
        return resources(value, "input");
    }
    let mut inputs = Vec::new();
    let mut any_json = false;
    for (index, line) in trimmed.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value) => {
                any_json = true;
                inputs.extend(resources(value, &format!("line {}", index + 1))?);
            }
            // Not NDJSON after all: the whole input is text that starts with a brace.
            Err(_) if !any_json => return Ok(vec![Input::Text(content.to_owned())]),
            Err(source) => {
                return Err(InputError::Ndjson {
                    line: index + 1,
                    source,
                });
            }
        }
    }
    Ok(inputs)
}

fn resources(value: Value, context: &str) -> Result<Vec<Input>, InputError> {
    match value.get("resourceType").and_then(Value::as_str) {
        Some("DiagnosticReport") => Ok(vec![Input::Report(value)]),
        Some("Bundle") => Ok(bundle_reports(value)),
        other => Err(InputError::ResourceType {
            context: context.to_owned(),
            found: other.unwrap_or("(none)").to_owned(),
        }),
    }
}

/// The DiagnosticReports of a Bundle (searchset, collection, transaction...);
/// other resources in it, such as included Patients, are not work.
fn bundle_reports(mut bundle: Value) -> Vec<Input> {
    let Some(Value::Array(entries)) = bundle.get_mut("entry").map(Value::take) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|mut entry| entry.get_mut("resource").map(Value::take))
        .filter(|resource| resource["resourceType"] == "DiagnosticReport")
        .map(Input::Report)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_text_stays_text() {
        let inputs = parse("FINDINGS: Clear lungs.\n").unwrap();
        assert_eq!(inputs, vec![Input::Text("FINDINGS: Clear lungs.\n".into())]);
    }

    #[test]
    fn text_starting_with_a_brace_is_text() {
        let text = "{dictation} IMPRESSION: Normal.";
        assert_eq!(parse(text).unwrap(), vec![Input::Text(text.into())]);
    }

    #[test]
    fn a_report_is_one_input() {
        let report = json!({"resourceType": "DiagnosticReport", "id": "a"});
        let inputs = parse(&report.to_string()).unwrap();
        assert_eq!(inputs, vec![Input::Report(report)]);
    }

    #[test]
    fn a_bundle_yields_its_reports_only() {
        let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "DiagnosticReport", "id": "a"}},
            {"resource": {"resourceType": "Patient", "id": "p"}},
            {"resource": {"resourceType": "DiagnosticReport", "id": "b"}}
        ]});
        let ids: Vec<_> = parse(&bundle.to_string())
            .unwrap()
            .into_iter()
            .map(|input| match input {
                Input::Report(report) => report["id"].as_str().unwrap().to_owned(),
                Input::Text(_) => panic!("a bundle entry became text"),
            })
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn ndjson_yields_one_input_per_line() {
        let ndjson = "{\"resourceType\":\"DiagnosticReport\",\"id\":\"a\"}\n\n{\"resourceType\":\"DiagnosticReport\",\"id\":\"b\"}\n";
        assert_eq!(parse(ndjson).unwrap().len(), 2);
    }

    #[test]
    fn a_broken_ndjson_line_is_an_error_naming_it() {
        let ndjson = "{\"resourceType\":\"DiagnosticReport\",\"id\":\"a\"}\n{broken\n";
        let error = parse(ndjson).unwrap_err().to_string();
        assert!(error.starts_with("line 2:"), "{error}");
    }

    #[test]
    fn other_resources_are_refused() {
        let error = parse(r#"{"resourceType":"Patient"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("\"Patient\""), "{error}");
    }
}
