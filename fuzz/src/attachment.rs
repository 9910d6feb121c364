//! The check of the `attachment` fuzz target, also run over the committed
//! corpus by `crates/fhir/tests/fuzz_corpus.rs`: the RTF and PDF readers
//! (`reportsplit_fhir::text::{rtf, pdf}`) on arbitrary bytes. Both read
//! untrusted documents inside the worker: neither may panic (a panic of the
//! PDF parser is caught and becomes an error, which is what is checked
//! here), and what they return is tidy text, bounded by the input.

use reportsplit_fhir::text::{pdf, rtf};

/// The bound on decompressed streams the check gives the PDF reader.
const MAX_BYTES: usize = 1 << 20;

/// The first byte picks the reader; the rest is the document. The RTF
/// reader also gets the bytes after an RTF header, where its work is.
pub fn check(data: &[u8]) {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    match shape % 3 {
        0 => check_rtf(rest),
        1 => {
            let mut document = b"{\\rtf1\\ansi ".to_vec();
            document.extend_from_slice(rest);
            check_rtf(&document);
        }
        _ => {
            if let Ok(text) = pdf::pdf_to_text(rest, MAX_BYTES) {
                assert!(!text.is_empty());
                assert!(
                    text.lines()
                        .all(|line| !line.is_empty() && line.trim() == line)
                );
            }
        }
    }
}

fn check_rtf(document: &[u8]) {
    if let Ok(text) = rtf::rtf_to_text(document) {
        // Every character comes from at least one byte of the document.
        assert!(text.chars().count() <= document.len());
        assert!(!text.starts_with('\n') && !text.ends_with('\n'));
        assert!(text.lines().all(|line| line.trim_end() == line));
    }
}
