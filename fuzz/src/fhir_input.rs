//! The check of the `fhir_input` fuzz target, also run over the committed
//! corpus by `tests/it/fuzz_corpus.rs`: FHIR input as `reportsplit extract`
//! reads it. The format is detected from the first two non-blank lines,
//! then one JSON value or NDJSON line by line (`src/input.rs`, the includer's
//! `input` module), each DiagnosticReport decoded, split and planned as the
//! transaction `extract --fhir` prints. Nothing may panic; a bad record is
//! an error that names where it is.

use reportsplit_fhir::limits::Limits;
use reportsplit_fhir::map::RunInfo;
use reportsplit_fhir::plan::plan;
use reportsplit_fhir::text::report_text;
use reportsplit_split::{Lexicon, extract_as};

use super::input;

pub fn check(data: &[u8], lexicon: &Lexicon) {
    let run = RunInfo {
        extractor_version: "0.0.0-fuzz".to_owned(),
        recorded: time::OffsetDateTime::UNIX_EPOCH,
        writes: Default::default(),
    };
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    let nonblank: Vec<String> = lines
        .iter()
        .map(|line| String::from_utf8_lossy(line).trim_end().to_owned())
        .filter(|line| !line.trim().trim_start_matches('\u{feff}').is_empty())
        .take(2)
        .collect();
    let format = match nonblank.as_slice() {
        [] => return,
        [first] => input::detect(first, None),
        [first, next, ..] => input::detect(first, Some(next)),
    };
    let records = match format {
        // Plain text is the `extract` target's.
        input::Format::Text => return,
        input::Format::Json => match std::str::from_utf8(data) {
            Ok(content) => input::json_records(content),
            Err(_) => return,
        },
        input::Format::Ndjson => lines
            .iter()
            .enumerate()
            .flat_map(|(index, line)| input::line_records(line, index + 1))
            .collect(),
    };
    for record in records {
        match record {
            Ok(report) => {
                let Ok(text) = report_text(&report, &Limits::default()) else {
                    continue;
                };
                let extraction = extract_as(&text.text, lexicon, text.headerless);
                // A report the mapping cannot take is a per-record error, not a panic.
                let _ = plan(&report, &text, &extraction, &[], &run);
            }
            Err(reason) => assert!(
                reason.starts_with("line ")
                    || reason.starts_with("input")
                    || reason.starts_with("array item "),
                "an error names where the record is: {reason}"
            ),
        }
    }
}
