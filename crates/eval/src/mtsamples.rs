//! `eval mtsamples`: are the section headers of flattened transcriptions
//! found? (definitions in the crate docs)

use crate::score::{f1, ratio};
use crate::{Detail, EvalError, Options, Report, ScoreLine};
use reportsplit_split::{Extraction, Lexicon, SectionKind, extract};

const INPUT: &str = "mtsamples notes";
const SET: &str = "mtsamples";

struct Note {
    id: String,
    text: String,
}

fn parse(content: &str) -> Result<Vec<Note>, EvalError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(content.as_bytes());
    let headers = reader
        .headers()
        .map_err(|error| EvalError::Input {
            input: INPUT,
            message: error.to_string(),
        })?
        .clone();
    let find = |name: &str| {
        headers
            .iter()
            .position(|header| header.trim().eq_ignore_ascii_case(name))
    };
    let text = find("transcription").ok_or(EvalError::MissingColumn {
        input: INPUT,
        column: "transcription",
    })?;
    let id = find("note_id");
    reader
        .records()
        .enumerate()
        .map(|(index, record)| {
            let record = record.map_err(|error| EvalError::Row {
                input: INPUT,
                line: error.position().map_or(0, csv::Position::line),
                message: error.to_string(),
            })?;
            Ok(Note {
                id: id.map_or_else(|| (index + 1).to_string(), |id| record[id].to_string()),
                text: record[text].to_string(),
            })
        })
        .collect()
}

/// Byte offsets of header-looking tokens: capitals (with spaces, digits,
/// `/`, `&`, `-`, `'`, parentheses) ending in `:`, at the start of the text or
/// after a `,` or `.` (whitespace allowed in between).
fn header_tokens(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at_boundary = true;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if at_boundary && byte.is_ascii_uppercase() {
            let end = bytes[i..]
                .iter()
                .position(|&b| {
                    !(b.is_ascii_uppercase() || b.is_ascii_digit() || b" /&-'()".contains(&b))
                })
                .map_or(bytes.len(), |length| i + length);
            let letters = bytes[i..end]
                .iter()
                .filter(|b| b.is_ascii_uppercase())
                .count();
            if bytes.get(end) == Some(&b':') && letters >= 2 {
                tokens.push(i);
            }
            at_boundary = false;
            i = end.max(i + 1);
            continue;
        }
        if byte == b',' || byte == b'.' {
            at_boundary = true;
        } else if !byte.is_ascii_whitespace() {
            at_boundary = false;
        }
        i += 1;
    }
    tokens
}

/// Byte offset of `part` inside `whole`; `part` must borrow from `whole`.
fn offset_in(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize)
}

/// Byte offsets where the extractor put a section title or an item label.
fn detected_headers(text: &str, extraction: &Extraction<'_>) -> Vec<usize> {
    let mut offsets: Vec<usize> = extraction
        .sections
        .iter()
        .filter_map(|section| section.title)
        .chain(
            extraction
                .sections
                .iter()
                .flat_map(|section| section.items.iter().filter_map(|item| item.label)),
        )
        .map(|title| offset_in(text, title))
        .filter(|&offset| offset <= text.len())
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    offsets
}

fn contains_ignoring_case(text: &str, needle: &str) -> bool {
    text.as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The header word that starts at `offset`, for error output.
fn header_at(text: &str, offset: usize) -> &str {
    let rest = text.get(offset..).unwrap_or_default();
    let end = rest.find(':').unwrap_or(rest.len()).min(40);
    rest.get(..end).unwrap_or(rest)
}

pub fn score(content: &str, lexicon: &Lexicon, options: &Options) -> Result<Report, EvalError> {
    let all_notes = parse(content)?;
    if all_notes.is_empty() {
        return Err(EvalError::Input {
            input: INPUT,
            message: "no notes after the header".into(),
        });
    }
    let total = all_notes.len();
    // The key is the note's 1-based data-row number in the file.
    let notes: Vec<Note> = all_notes
        .into_iter()
        .enumerate()
        .filter(|(index, _)| options.part.keeps(&(index + 1).to_string()))
        .map(|(_, note)| note)
        .collect();
    if notes.is_empty() {
        return Err(EvalError::Input {
            input: INPUT,
            message: format!("no notes in part {}", options.part),
        });
    }
    let (mut tokens_total, mut detected_total, mut detected_at_token, mut tokens_detected) =
        (0, 0, 0, 0);
    let mut mixed_case_total = 0;
    let (
        mut with_header,
        mut findings_written,
        mut findings_found,
        mut impression_written,
        mut impression_found,
    ) = (0, 0, 0, 0, 0);
    let mut errors = Vec::new();
    let mut actions = crate::ActionCounts::default();
    for note in &notes {
        let extraction = extract(&note.text, lexicon);
        actions.add(&extraction);
        let tokens = header_tokens(&note.text);
        let (detected, mixed_case): (Vec<usize>, Vec<usize>) =
            detected_headers(&note.text, &extraction)
                .into_iter()
                .partition(|&offset| {
                    !header_at(&note.text, offset)
                        .chars()
                        .any(char::is_lowercase)
                });
        mixed_case_total += mixed_case.len();
        tokens_total += tokens.len();
        detected_total += detected.len();
        detected_at_token += detected
            .iter()
            .filter(|offset| tokens.contains(offset))
            .count();
        tokens_detected += tokens
            .iter()
            .filter(|offset| detected.contains(offset))
            .count();
        with_header += usize::from(
            extraction
                .sections
                .iter()
                .any(|section| section.title.is_some()),
        );
        let has_kind = |kind| {
            extraction
                .sections
                .iter()
                .any(|section| section.kind == kind)
        };
        if contains_ignoring_case(&note.text, "FINDINGS:") {
            findings_written += 1;
            findings_found += usize::from(has_kind(SectionKind::Findings));
        }
        if contains_ignoring_case(&note.text, "IMPRESSION:") {
            impression_written += 1;
            impression_found += usize::from(has_kind(SectionKind::Impression));
        }
        let missed: Vec<&str> = tokens
            .iter()
            .filter(|offset| !detected.contains(offset))
            .map(|&offset| header_at(&note.text, offset))
            .collect();
        let extra: Vec<&str> = detected
            .iter()
            .filter(|offset| !tokens.contains(offset))
            .map(|&offset| header_at(&note.text, offset))
            .collect();
        if (!missed.is_empty() || !extra.is_empty()) && errors.len() < options.errors {
            errors.push(format!(
                "error mtsamples note={} missed={missed:?} not-a-header={extra:?}",
                note.id
            ));
        }
    }
    let n = notes.len();
    let share = |part: usize, whole: usize| format!("{:.3} ({part}/{whole})", ratio(part, whole));
    let details = vec![
        Detail::Note(format!(
            "mtsamples part={} rows={n} of={total}",
            options.part
        )),
        Detail::Note(format!(
            "mtsamples notes={n} header-tokens={tokens_total} detected-headers={detected_total} detected-at-token={detected_at_token} mixed-case-headers-not-scored={mixed_case_total}"
        )),
        Detail::Note(format!(
            "mtsamples with-recognised-header share={}",
            share(with_header, n)
        )),
        Detail::Note(format!(
            "mtsamples findings-section-found share={} of notes writing FINDINGS:",
            share(findings_found, findings_written)
        )),
        Detail::Note(format!(
            "mtsamples impression-section-found share={} of notes writing IMPRESSION:",
            share(impression_found, impression_written)
        )),
        Detail::Note(actions.line("mtsamples")),
    ];
    let precision = ratio(detected_at_token, detected_total);
    let recall = ratio(tokens_detected, tokens_total);
    Ok(Report {
        details,
        errors,
        summary: ScoreLine {
            set: SET,
            metric: "sections".into(),
            precision,
            recall,
            f1: f1(precision, recall),
            n,
            extra: String::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tokens_are_capitals_with_colon_at_a_boundary() {
        let text = "EXAM: , Chest CT.,HISTORY:,  Cough.  REASON FOR EXAM: , pain.,FINDINGS:  ,The LEFT lung: clear. Size 3 x 4:5.,IMPRESSION: ,Normal.";
        let found: Vec<&str> = header_tokens(text)
            .into_iter()
            .map(|offset| header_at(text, offset))
            .collect();
        // "REASON FOR EXAM" follows "  " after a sentence without a comma: a
        // "." boundary still counts; "LEFT lung:" is mixed case and inside a sentence.
        assert_eq!(
            found,
            [
                "EXAM",
                "HISTORY",
                "REASON FOR EXAM",
                "FINDINGS",
                "IMPRESSION"
            ]
        );
        assert!(header_tokens("A: no, B: one letter each").is_empty());
    }

    #[test]
    fn offsets_of_borrowed_titles() {
        let text = "FINDINGS: clear.";
        assert_eq!(offset_in(text, &text[10..]), 10);
    }

    #[test]
    fn parses_notes_and_scores_with_summary_last() {
        let content = "note_id,description,medical_specialty,sample_name,transcription,keywords\n\
                       1,d,Radiology,s,\"EXAM: , Chest x-ray.,FINDINGS: ,Clear lungs.,IMPRESSION: ,Normal.\",k\n\
                       2,d,Radiology,s,No headers at all here.,k\n";
        let report = score(
            content,
            &Lexicon::builtin(),
            &Options {
                errors: 10,
                ..Options::default()
            },
        )
        .unwrap();
        let text = report.to_string();
        let last = text.lines().last().unwrap();
        assert!(last.starts_with("mtsamples sections precision="), "{last}");
        assert!(last.ends_with(" n=2"), "{last}");
        assert!(text.contains("header-tokens=3"), "{text}");
        assert!(text.contains("of notes writing FINDINGS:"), "{text}");
    }

    #[test]
    fn missing_transcription_column_is_an_error() {
        let error = score(
            "note_id,text\n1,x\n",
            &Lexicon::builtin(),
            &Options::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "mtsamples notes: no column \"transcription\" in the header"
        );
    }
}
