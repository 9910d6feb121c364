//! The check of the `extract` fuzz target, also run over the committed
//! corpus by `crates/split/tests/fuzz_corpus.rs`: the extractor on any
//! UTF-8 must not panic, and every span it reports must slice the input
//! (the invariants of ARCHITECTURE.md).

use reportsplit_split::{Lexicon, SectionKind, extract_as};

pub fn check(text: &str, lexicon: &Lexicon) {
    // Headerless text read both ways the worker reads it.
    for headerless in [SectionKind::Other, SectionKind::Impression] {
        let extraction = extract_as(text, lexicon, headerless);
        let chars = text.chars().count();
        for section in &extraction.sections {
            assert!(section.start <= section.end && section.end <= chars);
        }
        for finding in &extraction.findings {
            assert!(finding.start <= finding.end && finding.end <= chars);
            assert_eq!(chars_of(text, finding.start, finding.end), finding.text);
            assert_eq!(
                chars_of(text, finding.term_start, finding.term_end),
                finding.term
            );
        }
        serde_json::to_vec(&extraction).expect("an extraction serialises");
    }
}

/// `text[start..end]` in characters (the public offsets count chars).
fn chars_of(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}
