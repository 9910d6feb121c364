//! RTF attachments to plain text.
//!
//! Read with the rtf-parser-tt crate: its lexer follows the RTF 1.9.1
//! specification, it drops control words and destination groups (font and
//! colour tables, pictures, `\*` extensions), turns `\par` and `\line` into
//! line breaks, decodes `\uN` escapes (with their `\ucN` fallback skipped)
//! and `\'hh` bytes in the code page the document declares (`\ansicpg`, a
//! font's `\fcharset`), and returns an error on malformed input. Page headers
//! and footers, footnotes and hidden text are left out: they are not the
//! report's body. The only work done here is to refuse what is not RTF and to
//! keep a panic of the reader from reaching the worker.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rtf_parser_tt::{RtfDocument, TextOptions};

/// Why an RTF document yields no text. Never any of its content: the
/// message goes to logs and dead letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtfError {
    #[error("the attachment does not start with {{\\rtf")]
    NotRtf,
    #[error("the RTF document is malformed")]
    Malformed,
    #[error("the RTF reader failed on this document")]
    ReaderFailed,
}

/// The body text of an RTF document: paragraphs one per line, trailing
/// blanks of each line removed (see the module doc for what is kept).
pub fn rtf_to_text(bytes: &[u8]) -> Result<String, RtfError> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    if !bytes[start..].starts_with(b"{\\rtf") {
        return Err(RtfError::NotRtf);
    }
    let document = catch_unwind(AssertUnwindSafe(|| RtfDocument::from_bytes(bytes)))
        .map_err(|_| RtfError::ReaderFailed)?
        .map_err(|_| RtfError::Malformed)?;
    let body = document.get_text_with(
        TextOptions::default()
            .notes(false)
            .headers_footers(false)
            .hidden_text(false),
    );
    Ok(tidy(&body))
}

/// One `\n` per line break whatever the document used, blanks at line ends
/// and blank lines at the start and end removed; blank lines between
/// paragraphs are kept (they separate sections).
fn tidy(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = unified.split('\n').map(str::trim_end).collect();
    lines.join("\n").trim_matches('\n').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn control_words_go_and_paragraphs_stay() {
        let rtf = br"{\rtf1\ansi\deff0{\fonttbl{\f0\fswiss Arial;}}{\colortbl;\red0\green0\blue0;}
\pard\plain\f0\fs20{\b FINDINGS:}\par
Small {\i left} pleural effusion.\par
\par
IMPRESSION:\par
1. Small left effusion.\line No pneumothorax.\par}";
        assert_eq!(
            rtf_to_text(rtf).unwrap(),
            "FINDINGS:\nSmall left pleural effusion.\n\nIMPRESSION:\n1. Small left effusion.\nNo pneumothorax."
        );
    }

    #[test]
    fn unicode_escapes_and_code_page_bytes_are_decoded() {
        // \u8805? is "≥" with "?" as the fallback that must not appear;
        // \'e9 is "é" and \'b0 is "°" in code page 1252; \'e4 is "ä" in 1250 too.
        let rtf =
            br"{\rtf1\ansi\ansicpg1252\uc1 Nodule \u8805?6 mm, caf\'e9 sign, 30\'b0 angle.\par}";
        assert_eq!(
            rtf_to_text(rtf).unwrap(),
            "Nodule ≥6 mm, café sign, 30° angle."
        );
        // Code page 1251: Cyrillic bytes.
        let rtf = br"{\rtf1\ansi\ansicpg1251 \'cf\'ee\'f0\'e0\par}";
        assert_eq!(rtf_to_text(rtf).unwrap(), "Пора");
    }

    #[test]
    fn headers_footers_and_hidden_text_are_not_the_body() {
        let rtf = br"{\rtf1\ansi{\header Radiology Dept page 1\par}{\footer Confidential\par}IMPRESSION: Normal study.{\v internal note}\par}";
        assert_eq!(rtf_to_text(rtf).unwrap(), "IMPRESSION: Normal study.");
    }

    #[test]
    fn what_is_not_rtf_is_refused_without_its_content() {
        assert_eq!(rtf_to_text(b"FINDINGS: none"), Err(RtfError::NotRtf));
        assert_eq!(rtf_to_text(b""), Err(RtfError::NotRtf));
        let malformed = rtf_to_text(br"{\rtf1 Secret name \'zz here}").unwrap_err();
        assert_eq!(malformed, RtfError::Malformed);
        assert!(!malformed.to_string().contains("Secret"));
    }

    proptest! {
        /// The reader never panics and never invents markup: whatever the
        /// bytes after `{\rtf1`, it returns text without `\` control words
        /// it understood, or an error.
        #[test]
        fn any_bytes_after_the_header_give_text_or_an_error(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut rtf = b"{\\rtf1\\ansi ".to_vec();
            rtf.extend_from_slice(&body);
            if let Ok(text) = rtf_to_text(&rtf) {
                prop_assert!(!text.contains("\\par"));
                prop_assert!(!text.starts_with('\n') && !text.ends_with('\n'));
            }
        }

        /// Plain words in paragraphs come out as lines, in order.
        #[test]
        fn paragraphs_of_plain_words_are_lines(lines in proptest::collection::vec("[A-Za-z][A-Za-z .,]{0,30}[A-Za-z.]", 1..8)) {
            let mut rtf = String::from("{\\rtf1\\ansi ");
            for line in &lines {
                rtf.push_str(line);
                rtf.push_str("\\par\n");
            }
            rtf.push('}');
            let expected: Vec<String> = lines.iter().map(|l| l.trim_end().to_owned()).collect();
            prop_assert_eq!(rtf_to_text(rtf.as_bytes()).unwrap(), expected.join("\n"));
        }
    }
}
