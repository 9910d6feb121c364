//! A hand-written report text and the extraction the extractor gives for
//! it, built by hand (the mapping tests are about mapping, not extraction).

#![allow(dead_code)] // each test binary uses a different part of this module

use reportsplit_split::{
    Assertion, Axis, BodySite, Certainty, Change, Code, Critical, Descriptor, Discrepancy,
    DiscrepancyKind, Extraction, Finding, Hedge, Item, Laterality, Measurement, Procedure,
    Recommendation, Section, SectionKind, Temporality, Urgency,
};

pub const TEXT: &str = "FINDINGS: There is a 3.50 x 2.1 cm mass in the left upper lobe, new since 2024. \
No pleural effusion.\nIMPRESSION:\n1. Right upper lobe mass, suspicious for malignancy.\n\
2. No effusion.\nRECOMMENDATION: CT chest in 3 months.";

/// Char span of the `nth` occurrence of `needle` in `text`.
pub fn span(text: &str, needle: &str, nth: usize) -> (usize, usize) {
    let (byte, _) = text.match_indices(needle).nth(nth).expect("needle in text");
    let start = text[..byte].chars().count();
    (start, start + needle.chars().count())
}

fn slice<'t>(text: &'t str, needle: &str, nth: usize) -> &'t str {
    let (byte, m) = text.match_indices(needle).nth(nth).expect("needle in text");
    &text[byte..byte + m.len()]
}

pub struct Codes {
    mass: Code,
    effusion: Code,
    lung: Code,
    findings: Code,
    impression: Code,
    thickening: Code,
    colitis: Code,
}

pub fn codes() -> Codes {
    let sct = |code: &str, display: &str| Code {
        system: "http://snomed.info/sct".into(),
        code: code.into(),
        display: display.into(),
    };
    let loinc = |code: &str, display: &str| Code {
        system: "http://loinc.org".into(),
        code: code.into(),
        display: display.into(),
    };
    Codes {
        mass: sct("4147007", "Mass"),
        effusion: sct("60046008", "Pleural effusion"),
        lung: sct("45653009", "Structure of upper lobe of lung"),
        findings: loinc("18782-3", "Radiology Study observation (narrative)"),
        impression: loinc(
            "19005-8",
            "Radiology Imaging study [Impression] (narrative)",
        ),
        thickening: Code {
            system: "urn:reportsplit:codes".into(),
            code: "finding-wall-thickening".into(),
            display: "Wall thickening".into(),
        },
        colitis: sct("64226004", "Colitis"),
    }
}

fn finding<'a>(
    text: &'a str,
    sentence: (&str, usize),
    term: (&str, usize),
    section: SectionKind,
    code: &'a Code,
    assertion: Assertion,
) -> Finding<'a> {
    let (start, end) = span(text, sentence.0, sentence.1);
    let (term_start, term_end) = span(text, term.0, term.1);
    Finding {
        text: slice(text, sentence.0, sentence.1),
        start,
        end,
        section,
        item: None,
        term: slice(text, term.0, term.1),
        term_start,
        term_end,
        code: Some(code),
        assertion,
        certainty: None,
        hedge: None,
        temporality: Temporality::Current,
        change: None,
        laterality: None,
        body_site: Vec::new(),
        measurements: Vec::new(),
        descriptors: Vec::new(),
        suggests: Vec::new(),
    }
}

/// What the extractor gives for [`TEXT`] (built by hand: the test is about mapping).
pub fn extraction<'a>(text: &'a str, c: &'a Codes) -> Extraction<'a> {
    let first = "There is a 3.50 x 2.1 cm mass in the left upper lobe, new since 2024.";
    let mut mass = finding(
        text,
        (first, 0),
        ("mass", 0),
        SectionKind::Findings,
        &c.mass,
        Assertion::Present,
    );
    mass.laterality = Some(Laterality::Left);
    mass.change = Some(Change::New);
    let (site_start, site_end) = span(text, "left upper lobe", 0);
    mass.body_site = vec![BodySite {
        text: slice(text, "left upper lobe", 0),
        code: Some(&c.lung),
        start: site_start,
        end: site_end,
    }];
    let (m_start, m_end) = span(text, "3.50 x 2.1 cm", 0);
    mass.measurements = vec![Measurement {
        values: vec![3.5, 2.1],
        unit: "cm",
        text: slice(text, "3.50 x 2.1 cm", 0),
        start: m_start,
        end: m_end,
        max_mm: 35.0,
    }];
    let effusion = finding(
        text,
        ("No pleural effusion.", 0),
        ("pleural effusion", 0),
        SectionKind::Findings,
        &c.effusion,
        Assertion::Absent,
    );
    let item1 = "Right upper lobe mass, suspicious for malignancy.";
    let mut imp_mass = finding(
        text,
        (item1, 0),
        ("mass", 1),
        SectionKind::Impression,
        &c.mass,
        Assertion::Possible,
    );
    imp_mass.item = Some(1);
    imp_mass.certainty = Some(Certainty::High);
    imp_mass.laterality = Some(Laterality::Right);
    let mut imp_effusion = finding(
        text,
        ("No effusion.", 0),
        ("effusion", 1),
        SectionKind::Impression,
        &c.effusion,
        Assertion::Absent,
    );
    imp_effusion.item = Some(2);
    let findings_section = span(text, "FINDINGS: There", 0).0;
    let impression_section = span(text, "IMPRESSION:", 0).0;
    let recommendation_section = span(text, "RECOMMENDATION:", 0).0;
    let chars = text.chars().count();
    let item = |n: u32, body: &str| {
        let (start, end) = span(text, body, 0);
        Item {
            n,
            label: None,
            text: slice(text, body, 0),
            start,
            end,
        }
    };
    let (rec_start, rec_end) = span(text, "CT chest in 3 months.", 0);
    Extraction {
        sections: vec![
            Section {
                kind: SectionKind::Findings,
                title: Some(slice(text, "FINDINGS", 0)),
                code: Some(&c.findings),
                start: findings_section,
                end: impression_section,
                body_start: findings_section + 10,
                body_end: impression_section,
                items: Vec::new(),
            },
            Section {
                kind: SectionKind::Impression,
                title: Some(slice(text, "IMPRESSION", 0)),
                code: Some(&c.impression),
                start: impression_section,
                end: recommendation_section,
                body_start: impression_section + 11,
                body_end: recommendation_section,
                items: vec![item(1, item1), item(2, "No effusion.")],
            },
            Section {
                kind: SectionKind::Recommendation,
                title: Some(slice(text, "RECOMMENDATION", 0)),
                code: None,
                start: recommendation_section,
                end: chars,
                body_start: recommendation_section + 15,
                body_end: chars,
                items: Vec::new(),
            },
        ],
        findings: vec![mass, effusion, imp_mass, imp_effusion],
        recommendations: vec![Recommendation {
            text: slice(text, "CT chest in 3 months.", 0),
            start: rec_start,
            end: rec_end,
            interval_days: Some(90),
            interval_max_days: Some(90),
            conditional: None,
            procedure: Some(Procedure::Ct),
            reasons: vec![2],
        }],
        critical: vec![Critical {
            text: slice(text, item1, 0),
            term: slice(text, "mass", 1),
            start: span(text, item1, 0).0,
            end: span(text, item1, 0).1,
            finding: 2,
            urgency: Urgency::Hours,
        }],
        actionable: Vec::new(),
        discrepancies: vec![Discrepancy {
            kind: DiscrepancyKind::Laterality,
            term: slice(text, "mass", 0),
            findings_side: Some(Laterality::Left),
            impression_side: Some(Laterality::Right),
            findings_finding: Some(0),
            impression_finding: Some(2),
            against: None,
        }],
        notifications: Vec::new(),
        assessments: Vec::new(),
    }
}

/// A report for the shapes of the grammar for every modality: descriptors,
/// several body sites, and an observation offered as evidence for a diagnosis.
pub const RICH_TEXT: &str = "FINDINGS: Spiculated rim-enhancing mass in the right upper lobe and hilum. \
Wall thickening of the sigmoid colon, suggestive of colitis.";

fn site<'a>(text: &'a str, words: &str, code: Option<&'a Code>) -> BodySite<'a> {
    let (start, end) = span(text, words, 0);
    BodySite {
        text: slice(text, words, 0),
        code,
        start,
        end,
    }
}

fn descriptor<'a>(text: &'a str, words: &str, axis: Axis) -> Descriptor<'a> {
    let (start, end) = span(text, words, 0);
    Descriptor {
        text: slice(text, words, 0),
        axis,
        start,
        end,
    }
}

/// What the extractor gives for [`RICH_TEXT`] (by hand): the mass with two
/// descriptors and two sites; the thickening suggests the colitis.
pub fn rich_extraction<'a>(text: &'a str, c: &'a Codes) -> Extraction<'a> {
    let first = "Spiculated rim-enhancing mass in the right upper lobe and hilum.";
    let second = "Wall thickening of the sigmoid colon, suggestive of colitis.";
    let mut mass = finding(
        text,
        (first, 0),
        ("mass", 0),
        SectionKind::Findings,
        &c.mass,
        Assertion::Present,
    );
    mass.laterality = Some(Laterality::Right);
    mass.body_site = vec![
        site(text, "right upper lobe", Some(&c.lung)),
        site(text, "hilum", None),
    ];
    mass.descriptors = vec![
        descriptor(text, "Spiculated", Axis::Margin),
        descriptor(text, "rim-enhancing", Axis::Enhancement),
    ];
    let mut thickening = finding(
        text,
        (second, 0),
        ("Wall thickening", 0),
        SectionKind::Findings,
        &c.thickening,
        Assertion::Present,
    );
    thickening.body_site = vec![site(text, "sigmoid colon", None)];
    thickening.suggests = vec![2];
    let mut colitis = finding(
        text,
        (second, 0),
        ("colitis", 0),
        SectionKind::Findings,
        &c.colitis,
        Assertion::Possible,
    );
    colitis.certainty = Some(Certainty::High);
    colitis.hedge = Some(Hedge::Suspicion);
    colitis.body_site = vec![site(text, "sigmoid colon", None)];
    let chars = text.chars().count();
    Extraction {
        sections: vec![Section {
            kind: SectionKind::Findings,
            title: Some(slice(text, "FINDINGS", 0)),
            code: Some(&c.findings),
            start: 0,
            end: chars,
            body_start: 10,
            body_end: chars,
            items: Vec::new(),
        }],
        findings: vec![mass, thickening, colitis],
        recommendations: Vec::new(),
        critical: Vec::new(),
        actionable: Vec::new(),
        discrepancies: Vec::new(),
        notifications: Vec::new(),
        assessments: Vec::new(),
    }
}
