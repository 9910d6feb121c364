//! Properties of the extractor on any input: it never panics, and every span
//! it reports is in range and slices (in chars) exactly the text it claims.

use std::sync::LazyLock;

use proptest::prelude::*;
use reportsplit_split::{
    Assertion, Extraction, Lexicon, SectionKind, char_range_to_bytes, extract, extract_as,
};

/// Built once: building the automata per case would dominate the run.
static LEXICON: LazyLock<Lexicon> = LazyLock::new(Lexicon::builtin);

/// Fragments of report text, traps included, to build report-like inputs.
const FRAGMENTS: &[&str] = &[
    "FINDINGS:",
    "IMPRESSION:",
    "Impression:",
    "findings",
    "CONCLUSION:",
    "HISTORY:",
    "EXAM:",
    "RECOMMENDATION:",
    "ADDENDUM:",
    "COMPARISON: ,",
    "LUNGS:",
    "PLEURA:",
    "Heart:",
    "1.",
    "2.",
    "3)",
    "(4)",
    "#5",
    "- ",
    "* ",
    "• ",
    "No",
    "no evidence of",
    "pneumothorax",
    "effusion",
    "left",
    "right",
    "bilateral",
    "consolidation",
    "nodule",
    "mass",
    "cannot be excluded",
    "no change in",
    "stable",
    "increased",
    "new",
    "3.5 cm",
    "4 mm",
    "8mm",
    "1.9 x 1.8 cm",
    "2.1 x 1.4 x 1.0 cm",
    "2 × 3 mm",
    "2. 8 mm",
    "Dr.",
    "e.g.",
    "i.e.",
    "approx.",
    "vs.",
    "etc.",
    "lung.In",
    "XXXX",
    "Recommend CT in 6-12 months",
    "follow-up in 1 year",
    "tension",
    "free air",
    "acute",
    "infarct",
    "enlarged",
    "spleen",
    "hypoechoic",
    "lesion",
    "T2 hyperintense",
    "foci",
    "physiologic",
    "uptake",
    "suggestive of",
    "BI-RADS 4A",
    "LR-5",
    "Bosniak IIF",
    "ASPECTS 8",
    "absent flow",
    "Müller",
    "µm",
    "é",
    "—",
    "😀",
    "\u{0301}",
    ".",
    ",",
    ", ",
    "  ",
    "\n",
    "\r\n",
    "\t",
    ":",
    ";",
    "?",
    "(",
    ")",
    "0",
    "99.",
    "the",
    "is",
    "and",
];

fn report_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(FRAGMENTS),
            prop::sample::select(&[" ", "", "\n", ", ", "  ", "."][..]),
        ),
        0..60,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .flat_map(|(word, gap)| [word, gap])
            .collect()
    })
}

/// The chars `start..end` of `text`, checking the range first.
fn slice(chars: &[char], start: usize, end: usize, what: &str) -> String {
    assert!(
        start <= end && end <= chars.len(),
        "{what}: span {start}..{end} of {} chars",
        chars.len()
    );
    chars[start..end].iter().collect()
}

fn check_spans(text: &str, out: &Extraction<'_>) {
    let chars: Vec<char> = text.chars().collect();
    let same = |start: usize, end: usize, expected: &str, what: &str| {
        assert_eq!(
            slice(&chars, start, end, what),
            expected,
            "{what} {start}..{end}"
        );
        let bytes = char_range_to_bytes(text, start, end).expect("char range maps to bytes");
        assert_eq!(&text[bytes], expected, "{what} via char_range_to_bytes");
    };
    let mut previous_end = 0;
    for section in &out.sections {
        assert!(
            previous_end <= section.start,
            "sections overlap or are out of order"
        );
        assert!(
            section.start <= section.body_start,
            "section body starts before the section"
        );
        assert!(section.body_start <= section.body_end && section.body_end <= section.end);
        slice(&chars, section.start, section.end, "section");
        if let Some(title) = section.title {
            let title_chars = title.chars().count();
            same(
                section.start,
                section.start + title_chars,
                title,
                "section title",
            );
        }
        let mut previous_item_end = section.body_start;
        for item in &section.items {
            assert!(
                previous_item_end <= item.start,
                "items overlap or leave their section"
            );
            assert!(
                item.end <= section.body_end,
                "item ends after its section body"
            );
            same(item.start, item.end, item.text, "item");
            previous_item_end = item.end;
        }
        previous_end = section.end;
    }
    for finding in &out.findings {
        same(finding.start, finding.end, finding.text, "finding sentence");
        same(
            finding.term_start,
            finding.term_end,
            finding.term,
            "finding term",
        );
        assert!(
            finding.start <= finding.term_start && finding.term_end <= finding.end,
            "term outside its sentence"
        );
        // A possible finding is graded and its doubt named; nothing else is.
        let possible = finding.assertion == Assertion::Possible;
        assert_eq!(
            (finding.certainty.is_some(), finding.hedge.is_some()),
            (possible, possible),
            "certainty and hedge of a {:?} finding",
            finding.assertion
        );
        for measurement in &finding.measurements {
            same(
                measurement.start,
                measurement.end,
                measurement.text,
                "measurement",
            );
            assert!(measurement.max_mm >= 0.0 && !measurement.values.is_empty());
        }
        for site in &finding.body_site {
            same(site.start, site.end, site.text, "body site");
        }
        for descriptor in &finding.descriptors {
            same(
                descriptor.start,
                descriptor.end,
                descriptor.text,
                "descriptor",
            );
            // The noun phrase before the head: inside the term, or before a
            // descriptor that is itself the finding ("mildly dilated").
            assert!(
                finding.start <= descriptor.start && descriptor.end <= finding.term_end,
                "a descriptor after its finding or outside its sentence"
            );
        }
        for &suggested in &finding.suggests {
            assert!(
                suggested < out.findings.len(),
                "suggests a finding that is not there"
            );
        }
    }
    for assessment in &out.assessments {
        same(
            assessment.start,
            assessment.end,
            assessment.text,
            "assessment",
        );
        if let Some(site) = &assessment.body_site {
            same(site.start, site.end, site.text, "assessment site");
        }
    }
    for recommendation in &out.recommendations {
        same(
            recommendation.start,
            recommendation.end,
            recommendation.text,
            "recommendation",
        );
    }
    for critical in out.critical.iter().chain(&out.actionable) {
        same(critical.start, critical.end, critical.text, "critical");
        assert!(critical.finding < out.findings.len());
    }
    assert!(out.critical.iter().all(|c| c.urgency.is_critical()));
    for notification in &out.notifications {
        same(
            notification.start,
            notification.end,
            notification.text,
            "notification",
        );
        for said in notification
            .recipient
            .iter()
            .chain(notification.when.as_ref().map(|w| &w.said))
        {
            same(said.start, said.end, said.text, "notification part");
        }
    }
    assert!(out.actionable.iter().all(|c| !c.urgency.is_critical()));
    for discrepancy in &out.discrepancies {
        assert!(
            discrepancy
                .findings_finding
                .into_iter()
                .chain(discrepancy.impression_finding)
                .all(|i| i < out.findings.len())
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics_and_spans_slice(text in any::<String>()) {
        check_spans(&text, &extract(&text, &LEXICON));
    }

    #[test]
    fn report_like_text_spans_slice(text in report_like()) {
        check_spans(&text, &extract(&text, &LEXICON));
        check_spans(&text, &extract_as(&text, &LEXICON, SectionKind::Impression));
    }
}

#[test]
fn fixture_reports_spans_slice() {
    let lexicon = Lexicon::builtin();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for entry in std::fs::read_dir(&fixtures)
        .expect("fixtures directory")
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).expect("fixture is UTF-8");
        check_spans(&text, &extract(&text, &lexicon));
    }
}
