//! The text layer of PDF attachments.
//!
//! The document is parsed with lopdf (maintained, pure Rust, hardened
//! against decompression bombs and deep nesting; its default features, a
//! thread pool and a clock, are off). lopdf's own `extract_text` starts a new
//! line only at `ET` and `T*`, which runs together the lines of generators
//! that move down with `Td` inside one text object and breaks lines at every
//! text object of others; the section splitter needs the report's lines, so
//! the page's content operators are walked here instead, with lopdf decoding
//! each string through its font's encoding (ToUnicode maps included), and a
//! line break wherever the text moves to another baseline.
//!
//! Untrusted input: every stream is bounded by the caller's byte limit
//! (`limits.attachment_bytes`), the pages' content in total too, and a panic
//! inside the parser is caught and reported as an unreadable document.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use lopdf::content::{Content, Operation};
use lopdf::{Document, Encoding, LoadOptions, Object};

/// Why a PDF yields no text. Never any of its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    /// Readable, but no page shows any text: a scanned image (no OCR).
    #[error("the PDF has no text layer")]
    NoText,
    #[error("{0}")]
    Unreadable(String),
}

/// Most pages read: a report is a few pages; a document far longer is not one.
const MAX_PAGES: usize = 1_000;

/// The text of every page, in page order, one line per baseline, lines
/// trimmed and blank ones dropped. `max_bytes` bounds each decompressed
/// stream and all the pages' content together.
pub fn pdf_to_text(bytes: &[u8], max_bytes: usize) -> Result<String, PdfError> {
    catch_unwind(AssertUnwindSafe(|| read(bytes, max_bytes))).unwrap_or_else(|_| {
        Err(PdfError::Unreadable(
            "the PDF reader failed on this document".into(),
        ))
    })
}

fn read(bytes: &[u8], max_bytes: usize) -> Result<String, PdfError> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(PdfError::Unreadable(
            "the attachment does not start with %PDF-".into(),
        ));
    }
    let options = LoadOptions {
        max_decompressed_size: Some(max_bytes),
        ..LoadOptions::default()
    };
    let document = Document::load_mem_with_options(bytes, options)
        .map_err(|e| PdfError::Unreadable(format!("cannot parse the document ({})", kind(&e))))?;
    let pages = document.get_pages();
    if pages.len() > MAX_PAGES {
        return Err(PdfError::Unreadable(format!(
            "{} pages, over the {MAX_PAGES} a report may have",
            pages.len()
        )));
    }
    let mut text = String::new();
    let mut content_bytes = 0usize;
    for page in pages.into_values() {
        let data = document
            .get_page_content_with_limit(page, max_bytes)
            .map_err(|e| PdfError::Unreadable(format!("a page's content ({})", kind(&e))))?;
        content_bytes = content_bytes.saturating_add(data.len());
        if content_bytes > max_bytes {
            return Err(PdfError::Unreadable(format!(
                "the pages' content is over {max_bytes} bytes (limits.attachment_bytes)"
            )));
        }
        let content = Content::decode(&data)
            .map_err(|e| PdfError::Unreadable(format!("a page's content ({})", kind(&e))))?;
        // A font whose encoding cannot be read shows nothing (as in lopdf).
        let encodings: BTreeMap<Vec<u8>, Encoding> = document
            .get_page_fonts(page)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, font)| {
                let encoding = font
                    .get_font_encoding_with_limit(&document, max_bytes)
                    .ok()?;
                Some((name, encoding))
            })
            .collect();
        page_text(&content.operations, &encodings, &mut text);
        text.push('\n');
    }
    let text = super::tidy_lines(&text);
    if text.is_empty() {
        Err(PdfError::NoText)
    } else {
        Ok(text)
    }
}

/// The kind of a lopdf error, without the bytes it may quote.
fn kind(error: &lopdf::Error) -> &'static str {
    match error {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => "encrypted",
        lopdf::Error::Decompress(_) => "compressed stream",
        _ => "malformed",
    }
}

/// Where text is being shown: the baseline's height on the page, from the
/// graphics state's vertical scale and offset (rotation and skew ignored: a
/// report's lines are horizontal) and the text line matrix.
#[derive(Debug, Clone, Copy)]
struct Place {
    /// Vertical scale and offset of the current transformation matrix.
    ctm_d: f32,
    ctm_f: f32,
    /// Vertical scale and offset of the text line matrix.
    tm_d: f32,
    tm_f: f32,
}

impl Place {
    const START: Place = Place {
        ctm_d: 1.0,
        ctm_f: 0.0,
        tm_d: 1.0,
        tm_f: 0.0,
    };

    fn baseline(&self) -> f32 {
        self.ctm_d * self.tm_f + self.ctm_f
    }
}

/// Appends the text one page's content operators show.
fn page_text(operations: &[Operation], encodings: &BTreeMap<Vec<u8>, Encoding>, out: &mut String) {
    let number = |operation: &Operation, index: usize| {
        operation
            .operands
            .get(index)
            .and_then(|o| o.as_float().ok())
            .filter(|f| f.is_finite())
    };
    let mut place = Place::START;
    let mut saved: Vec<Place> = Vec::new();
    let mut encoding: Option<&Encoding> = None;
    // The baseline of the last text shown, and whether the text position
    // moved since (a move on the same baseline is a gap between words).
    let mut last_baseline: Option<f32> = None;
    let mut moved = false;
    let mut next_line = false;
    for operation in operations {
        let mut shown: &[Object] = &[];
        match operation.operator.as_str() {
            "q" => {
                // Bounded like the stream: a hostile one cannot grow it past its operator count.
                saved.push(place);
            }
            "Q" => place = saved.pop().unwrap_or(Place::START),
            "cm" => {
                if let (Some(d), Some(f)) = (number(operation, 3), number(operation, 5)) {
                    place.ctm_f += f * place.ctm_d;
                    place.ctm_d *= d;
                }
            }
            "BT" => {
                place.tm_d = 1.0;
                place.tm_f = 0.0;
                moved = true;
            }
            "Tm" => {
                if let (Some(d), Some(f)) = (number(operation, 3), number(operation, 5)) {
                    place.tm_d = d;
                    place.tm_f = f;
                }
                moved = true;
            }
            "Td" | "TD" => {
                if let Some(ty) = number(operation, 1) {
                    place.tm_f += ty * place.tm_d;
                }
                moved = true;
            }
            "T*" => next_line = true,
            "Tf" => {
                encoding = operation
                    .operands
                    .first()
                    .and_then(|name| name.as_name().ok())
                    .and_then(|name| encodings.get(name));
            }
            "Tj" | "TJ" => shown = &operation.operands,
            "'" => {
                next_line = true;
                shown = &operation.operands;
            }
            "\"" => {
                next_line = true;
                shown = operation.operands.get(2..).unwrap_or_default();
            }
            _ => {}
        }
        if shown.is_empty() {
            continue;
        }
        let Some(encoding) = encoding else { continue };
        let baseline = place.baseline();
        let new_line = next_line || last_baseline.is_some_and(|last| (last - baseline).abs() > 0.5);
        if new_line {
            out.push('\n');
        } else if moved && !out.ends_with(char::is_whitespace) && !out.is_empty() {
            out.push(' ');
        }
        show(shown, encoding, out);
        last_baseline = Some(baseline);
        moved = false;
        next_line = false;
    }
}

/// The strings of a show operator through the font's encoding; in a `TJ`
/// array, a shift of more than a tenth of the font size is a word gap.
fn show(operands: &[Object], encoding: &Encoding, out: &mut String) {
    for operand in operands {
        match operand {
            // An undecodable string shows nothing rather than garbage.
            Object::String(bytes, _) => {
                let mut decoded = String::new();
                if encoding.write_to_string(bytes, &mut decoded).is_ok() {
                    out.push_str(&decoded);
                }
            }
            Object::Array(items) => show(items, encoding, out),
            Object::Integer(shift) if *shift < -100 => out.push(' '),
            Object::Real(shift) if *shift < -100.0 => out.push(' '),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdf_fixture::{lines_with_td, op, pdf, scanned_page, text};

    #[test]
    fn lines_moved_with_td_stay_lines() {
        let bytes = pdf(&[lines_with_td(&[
            "FINDINGS:",
            "Small left pleural effusion.",
            "IMPRESSION: Small left effusion, 30\u{b0}.",
        ])]);
        assert_eq!(
            pdf_to_text(&bytes, 1 << 20).unwrap(),
            "FINDINGS:\nSmall left pleural effusion.\nIMPRESSION: Small left effusion, 30\u{b0}."
        );
    }

    #[test]
    fn pieces_on_one_baseline_are_one_line_and_pages_follow_each_other() {
        // One text object per word on the same baseline (absolute Tm), a
        // TJ word gap, then a second page.
        let first = vec![
            op("BT", vec![]),
            op("Tf", vec!["F1".into(), 11.into()]),
            op(
                "Tm",
                vec![
                    1.into(),
                    0.into(),
                    0.into(),
                    1.into(),
                    72.into(),
                    700.into(),
                ],
            ),
            op("Tj", vec![text("No")]),
            op("ET", vec![]),
            op("BT", vec![]),
            op("Tf", vec!["F1".into(), 11.into()]),
            op(
                "Tm",
                vec![
                    1.into(),
                    0.into(),
                    0.into(),
                    1.into(),
                    90.into(),
                    700.into(),
                ],
            ),
            op(
                "TJ",
                vec![Object::Array(vec![
                    text("acute"),
                    (-250).into(),
                    text("disease."),
                ])],
            ),
            op("ET", vec![]),
        ];
        let bytes = pdf(&[first, lines_with_td(&["Page two."])]);
        assert_eq!(
            pdf_to_text(&bytes, 1 << 20).unwrap(),
            "No acute disease.\nPage two."
        );
    }

    #[test]
    fn a_scanned_pdf_has_no_text_layer() {
        let bytes = pdf(&[scanned_page()]);
        assert_eq!(pdf_to_text(&bytes, 1 << 20), Err(PdfError::NoText));
    }

    #[test]
    fn broken_and_hostile_documents_are_unreadable_not_a_panic() {
        let bytes = pdf(&[lines_with_td(&["IMPRESSION: Normal."])]);
        for cut in [10, bytes.len() / 3, bytes.len() / 2, bytes.len() - 20] {
            // Whatever a truncated document gives, it is an answer, not a panic.
            let _ = pdf_to_text(&bytes[..cut], 1 << 20);
        }
        assert!(matches!(
            pdf_to_text(b"not a pdf", 1 << 20),
            Err(PdfError::Unreadable(_))
        ));
        // The page content is bounded by the limit.
        let long: Vec<String> = (0..200)
            .map(|i| format!("Line {i} of a long report."))
            .collect();
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        let bytes = pdf(&[lines_with_td(&long)]);
        let error = pdf_to_text(&bytes, 1_000).unwrap_err();
        assert!(matches!(error, PdfError::Unreadable(_)), "{error:?}");
        assert!(!error.to_string().contains("Line"), "{error}");
    }
}
