//! `eval reports FILE`: our own labelled report sets, scored by the rules of
//! `shared/corpus/LABELLING.md` ("How we score").
//!
//! # Input
//! A JSON array, one object per report: `id`, `modality`, `family`, `text`
//! and `gold` with `sections`, `impression_items`, `findings` (each: `term`,
//! `section`, `assertion`, `laterality`, `size_mm`, `change`, `sentence`),
//! `critical`, `laterality_discrepancy`, `recommendation`,
//! `followup_interval_days`. Unknown keys are ignored. `text`, `gold`,
//! `gold.findings` and each finding's `term`, `section`, `assertion` and
//! `sentence` are required; `id` defaults to `#<1-based position>`,
//! `modality` to `unknown`, and a report without `family` is left out of the
//! family lines only. A missing report-level label (`sections`,
//! `impression_items`, `critical`, `laterality_discrepancy`,
//! `recommendation`) leaves that report out of that one decision's count,
//! never scores it as false. Enumerations are checked (case-insensitive):
//! assertion present/absent/possible; laterality left/right/bilateral or
//! null; change new/stable/increased/decreased/resolved or null; section one
//! of the extractor's kinds; sizes and intervals non-negative numbers
//! (intervals whole days). A bad value is an error naming the report and
//! finding, not a silently unscored label.
//!
//! # Matching (one rule for found and for precision)
//! An extracted finding matches a gold finding when
//! 1. it lies in the same section kind (`Finding::section` against the gold
//!    `section`);
//! 2. its sentence span, `Finding::start..end` in chars, overlaps the gold
//!    sentence's span in the text (half-open ranges sharing at least one
//!    char). The gold `sentence` is located in `text`: its exact
//!    occurrences, or, when there are none, its occurrences ignoring ASCII
//!    case and treating whitespace runs as one space. Of several, the first
//!    that starts inside an extracted section of the gold finding's kind is
//!    taken ("No effusion." in Findings and again in Impression), else the
//!    first. A sentence that does not occur at all cannot be matched: the
//!    finding counts as missed, and is counted on the
//!    `gold-sentences-not-in-text` note;
//! 3. one term contains the other, case-insensitively: both are compared
//!    lower-cased (Unicode), whitespace runs as one space, trimmed. Gold
//!    "enlarged" matches "enlarged" and "testis is enlarged". An empty term
//!    matches nothing.
//!
//! The extracted term is `Finding::term` and its sentence is always sliced
//! from the text by chars (`Finding::text` is not used).
//!
//! - found (recall) = gold findings with at least one matching extracted
//!   finding / all gold findings.
//! - precision = extracted findings in Findings or Impression sections that
//!   match some gold finding of their report / all such extracted findings,
//!   support devices excluded. An extracted finding is a support device when
//!   the words of its term, with the one word before it in the text, contain
//!   a word of [`SUPPORT_DEVICE_WORDS`] or a phrase of
//!   [`SUPPORT_DEVICE_PHRASES`], and none of [`NOT_SUPPORT_DEVICE`] (findings
//!   that share a device word: "fallopian tube", "pleural line", "fracture
//!   line", "plate-like atelectasis", "lead point", "left-to-right
//!   shunt"...). Words are compared lower-cased with every non-alphanumeric
//!   character as a space, so "port-a-cath" is "port a cath". A device-worded
//!   extraction that matches a gold finding is counted (as correct): the
//!   gold labelled it, so it is not a support device in the labellers'
//!   reading, and the word list only keeps unlabelled devices from counting
//!   against precision ("neither rewarded nor counted against you").
//!   Excluded extractions are counted on the `devices-not-counted` note.
//! - F1 = harmonic mean of the two.
//!
//! # Matched pairs
//! Every found gold finding is paired with one matching extracted finding:
//! the best by, in order, (a) same sentence (one span contains the other),
//! (b) the extracted term's span overlaps the gold term's span, (c) longest
//! overlap of the two sentence spans, (d) nearest term start. Pairs are
//! taken greedily best first, then augmenting paths make the pairing
//! one-to-one wherever a one-to-one pairing exists ("small right effusion
//! and large left effusion" pairs each label with its own mention); a gold
//! finding left over (more labels than matching extractions) shares its best
//! candidate. The gold term's span is its occurrence in the located sentence
//! (the k-th label with the same section, sentence and term takes the k-th
//! occurrence); a term not in its sentence falls back to the sentence span.
//! On the pairs:
//! - assertion, laterality and change: accuracy = equal / pairs. A null gold
//!   laterality or change is equal only to none extracted.
//! - size: scored, per LABELLING, on the pairs where a measurement stands
//!   within 40 characters of the gold term (at most 40 chars between the
//!   term and the measurement, either side; overlapping counts as 0), inside
//!   the gold sentence: `size_mm` is labelled from "the sentence", so a size
//!   at the end of the previous sentence is not this finding's. A
//!   measurement is a number (decimal point allowed), optionally
//!   more numbers joined by `x`, `×`, `by`, `-`, `–` or `to`, then `mm`,
//!   `cm` or `millimet(er|re)(s)` / `centimet(er|re)(s)` not followed by a
//!   letter. The extracted size is the largest `max_mm` of the finding's
//!   measurements. Correct when both are null, or both set and
//!   |gold − extracted| ≤ 0.6 mm. The `size-stated` figures score the other
//!   reading (the pairs where the gold `size_mm` is set or the extracted
//!   finding has a measurement, same correctness rule), so a gap between
//!   the two shows sizes stated far from their term.
//!
//! # Report-level decisions
//! - sections: the extracted section kinds in order, `other` and
//!   `addendum` dropped (LABELLING lists neither among its kinds), then
//!   consecutive repeats merged; the gold list goes through the same
//!   normalisation (lower-cased); correct when equal.
//! - impression items: the extracted count is, over the Impression
//!   sections, the number of items of each, or 1 for a section without items
//!   whose body has an alphanumeric character. Correct when equal to the
//!   gold count. The gold counts one item per sentence of an unnumbered
//!   Impression, so an Impression the extractor leaves without items counts
//!   1 and is wrong when it has several sentences: the wrong reports with
//!   such an Impression and a gold count above 1 are counted as
//!   `unnumbered-multi-sentence` on the line.
//! - critical: extraction's `critical` non-empty against gold `critical`;
//!   laterality discrepancy: `discrepancies` non-empty against gold;
//!   recommendation: `recommendations` non-empty against gold. Accuracy with
//!   the confusion counts (positive class = gold true).
//! - follow-up interval: only reports whose gold has
//!   `followup_interval_days`; correct when the first extracted
//!   recommendation (in text order) that states an interval states exactly
//!   that many days.
//!
//! # Output
//! Detail lines, then error examples, then the summary line:
//! ```text
//! reports part=<all|tune|holdout> rows=<kept reports> of=<reports in file>
//! reports gold reports=<R> findings=<G> extracted=<E> counted=<C> devices-not-counted=<D> gold-sentences-not-in-text=<S>
//! reports <group> found=<f> precision=<p> assertion=<a> laterality=<l> size=<s> change=<c> n=<gold findings> reports=<R> matched=<found gold> extracted=<counted extracted> correct-extracted=<matching extracted> pairs=<P> size-n=<size-scored pairs> size-stated=<s'> size-stated-n=<n'>
//! reports assertion-confusion gold/extracted present/present=.. present/absent=.. ... possible/possible=..
//! reports sections accuracy=<a> n=<reports> correct=<k>
//! reports impression-items accuracy=<a> n=<reports> correct=<k> unnumbered-multi-sentence=<u>
//! reports critical accuracy=<a> n=<reports> tp=.. fp=.. fn=..
//! reports laterality-discrepancy accuracy=<a> n=<reports> tp=.. fp=.. fn=..
//! reports recommendation accuracy=<a> n=<reports> tp=.. fp=.. fn=..
//! reports critical recall=<r> precision=<p> tp=.. fp=.. fn=..
//! reports actions reports=<R> recommendations=.. (see crate::actions)
//! reports followup-interval accuracy=<a> n=<reports with a gold interval> correct=<k>
//! reports findings precision=<P> recall=<R> f1=<F> n=<gold findings>
//! ```
//! `<group>` is `all`, then each modality (as written in the file, sorted),
//! then each family (sorted). Every figure has three decimals; a figure whose
//! denominator is zero prints 0.000 (its count beside it says so).
//!
//! With [`Options::errors`] = N > 0, up to N lines of each kind come before
//! the summary: `kind=miss` (gold term, section, sentence, and the
//! extracted findings overlapping that sentence in any section),
//! `kind=invented` (extracted term, section, sentence), `kind=assertion`,
//! `kind=laterality`, `kind=change`, `kind=size` (gold and extracted values
//! of a pair), and `kind=report` (a wrong section list, item count or flag).
//!
//! [`Options::part`] keeps the reports whose `id` is (not) in the holdout
//! quarter, as for the kits (crate docs, "Holdout quarter").

use crate::score::{Counts, f1, ratio};
use crate::text::{find_all, one_line};
use crate::{Detail, EvalError, Options, Report, ScoreLine};
use reportsplit_split::{
    Assertion, Change, Extraction, Finding, Laterality, Lexicon, SectionKind, extract,
};
use serde::Deserialize;
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::Range;

const INPUT: &str = "reports gold";
const SET: &str = "reports";

/// Words (whole, lower case) that make an extracted term a support device.
pub const SUPPORT_DEVICE_WORDS: &[&str] = &[
    "tube",
    "tubes",
    "line",
    "lines",
    "catheter",
    "catheters",
    "wire",
    "wires",
    "clip",
    "clips",
    "stent",
    "stents",
    "pacemaker",
    "pacemakers",
    "pacer",
    "defibrillator",
    "aicd",
    "icd",
    "picc",
    "ett",
    "port",
    "ports",
    "drain",
    "drains",
    "lead",
    "leads",
    "electrode",
    "electrodes",
    "prosthesis",
    "prostheses",
    "prosthetic",
    "hardware",
    "screw",
    "screws",
    "plate",
    "plates",
    "rod",
    "rods",
    "nail",
    "nails",
    "anchor",
    "anchors",
    "cage",
    "cages",
    "coil",
    "coils",
    "filter",
    "filters",
    "shunt",
    "shunts",
    "sheath",
    "staples",
    "sutures",
    "implant",
    "implants",
    "expander",
    "expanders",
    "spacer",
    "reservoir",
    "pump",
    "cerclage",
    "iud",
    "device",
    "devices",
];

/// Phrases (lower case, words separated by one space) that make an
/// extracted term a support device.
pub const SUPPORT_DEVICE_PHRASES: &[&str] = &[
    "valve replacement",
    "valve replacements",
    "replaced valve",
    "sternotomy wires",
];

/// Phrases that share a device word but name a finding or an anatomical
/// structure; they override the two lists above.
pub const NOT_SUPPORT_DEVICE: &[&str] = &[
    "fallopian tube",
    "fallopian tubes",
    "eustachian tube",
    "uterine tube",
    "neural tube",
    "pleural line",
    "septal line",
    "septal lines",
    "kerley",
    "fracture line",
    "fracture lines",
    "lucent line",
    "sclerotic line",
    "plate like",
    "plate atelectasis",
    "end plate",
    "end plates",
    "growth plate",
    "cribriform plate",
    "pterygoid plate",
    "lead point",
    "left to right shunt",
    "right to left shunt",
    "intracardiac shunt",
    "intrapulmonary shunt",
    "implant rupture",
];

/// Whether `words` (an extracted term, with the word before it) name a
/// support device by the lists above.
pub fn is_support_device(words: &str) -> bool {
    let normal: String = words
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let tokens: Vec<&str> = normal.split_whitespace().collect();
    let padded = format!(" {} ", tokens.join(" "));
    let has = |phrase: &&str| padded.contains(&format!(" {phrase} "));
    if NOT_SUPPORT_DEVICE.iter().any(has) {
        return false;
    }
    tokens
        .iter()
        .any(|token| SUPPORT_DEVICE_WORDS.contains(token))
        || SUPPORT_DEVICE_PHRASES.iter().any(has)
}

/// Whether one term contains the other, case-insensitively (whitespace runs
/// as one space, trimmed; an empty term matches nothing).
pub fn terms_match(gold: &str, extracted: &str) -> bool {
    let (gold, extracted) = (normal_term(gold), normal_term(extracted));
    !gold.is_empty()
        && !extracted.is_empty()
        && (gold.contains(&extracted) || extracted.contains(&gold))
}

fn normal_term(term: &str) -> String {
    term.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------- input

#[derive(Deserialize)]
struct RawReport {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    modality: Option<String>,
    #[serde(default)]
    family: Option<String>,
    text: String,
    gold: RawGold,
}

#[derive(Deserialize)]
struct RawGold {
    #[serde(default)]
    sections: Option<Vec<String>>,
    #[serde(default)]
    impression_items: Option<f64>,
    findings: Vec<RawFinding>,
    #[serde(default)]
    critical: Option<bool>,
    #[serde(default)]
    laterality_discrepancy: Option<bool>,
    #[serde(default)]
    recommendation: Option<bool>,
    #[serde(default)]
    followup_interval_days: Option<f64>,
}

#[derive(Deserialize)]
struct RawFinding {
    term: String,
    section: String,
    assertion: String,
    #[serde(default)]
    laterality: Option<String>,
    #[serde(default)]
    size_mm: Option<f64>,
    #[serde(default)]
    change: Option<String>,
    sentence: String,
}

#[derive(Debug)]
struct GoldReport {
    id: String,
    modality: String,
    family: Option<String>,
    text: String,
    sections: Option<Vec<String>>,
    impression_items: Option<usize>,
    findings: Vec<GoldFinding>,
    critical: Option<bool>,
    laterality_discrepancy: Option<bool>,
    recommendation: Option<bool>,
    followup_interval_days: Option<u32>,
}

#[derive(Debug)]
struct GoldFinding {
    term: String,
    section: SectionKind,
    assertion: Assertion,
    laterality: Option<Laterality>,
    size_mm: Option<f64>,
    change: Option<Change>,
    sentence: String,
}

fn section_kind(name: &str) -> Option<SectionKind> {
    Some(match name {
        "indication" => SectionKind::Indication,
        "technique" => SectionKind::Technique,
        "comparison" => SectionKind::Comparison,
        "findings" => SectionKind::Findings,
        "impression" => SectionKind::Impression,
        "recommendation" => SectionKind::Recommendation,
        "addendum" => SectionKind::Addendum,
        "other" => SectionKind::Other,
        _ => return None,
    })
}

fn section_name(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Indication => "indication",
        SectionKind::Technique => "technique",
        SectionKind::Comparison => "comparison",
        SectionKind::Findings => "findings",
        SectionKind::Impression => "impression",
        SectionKind::Recommendation => "recommendation",
        SectionKind::Addendum => "addendum",
        SectionKind::Other => "other",
    }
}

fn assertion_name(assertion: Assertion) -> &'static str {
    match assertion {
        Assertion::Present => "present",
        Assertion::Absent => "absent",
        Assertion::Possible => "possible",
    }
}

fn laterality_name(side: Option<Laterality>) -> &'static str {
    match side {
        Some(Laterality::Left) => "left",
        Some(Laterality::Right) => "right",
        Some(Laterality::Bilateral) => "bilateral",
        None => "none",
    }
}

fn change_name(change: Option<Change>) -> &'static str {
    match change {
        Some(Change::New) => "new",
        Some(Change::Stable) => "stable",
        Some(Change::Increased) => "increased",
        Some(Change::Decreased) => "decreased",
        Some(Change::Resolved) => "resolved",
        None => "none",
    }
}

fn size_name(size: Option<f64>) -> String {
    size.map_or_else(|| "none".to_string(), |mm| format!("{mm}"))
}

fn parse(content: &str) -> Result<Vec<GoldReport>, EvalError> {
    let raw: Vec<RawReport> = serde_json::from_str(content).map_err(|error| EvalError::Input {
        input: INPUT,
        message: format!("not a JSON array of labelled reports: {error}"),
    })?;
    raw.into_iter()
        .enumerate()
        .map(|(index, report)| convert(index, report))
        .collect()
}

fn convert(index: usize, raw: RawReport) -> Result<GoldReport, EvalError> {
    let id = raw
        .id
        .filter(|id| !id.trim().is_empty())
        .unwrap_or_else(|| format!("#{}", index + 1));
    let bad = |message: String| EvalError::Input {
        input: INPUT,
        message: format!("report {} (id {id:?}): {message}", index + 1),
    };
    let count = |value: Option<f64>, what: &str| -> Result<Option<u32>, EvalError> {
        match value {
            None => Ok(None),
            Some(v)
                if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX) =>
            {
                Ok(Some(v as u32))
            }
            Some(v) => Err(bad(format!(
                "{what} {v} is not a whole non-negative number"
            ))),
        }
    };
    let impression_items = count(raw.gold.impression_items, "impression_items")?;
    let followup_interval_days = count(raw.gold.followup_interval_days, "followup_interval_days")?;
    let findings = raw
        .gold
        .findings
        .into_iter()
        .enumerate()
        .map(|(at, finding)| {
            let bad = |message: String| bad(format!("finding {}: {message}", at + 1));
            let lower = |text: &str| text.trim().to_lowercase();
            let section = section_kind(&lower(&finding.section)).ok_or_else(|| {
                bad(format!(
                    "section {:?} is not a section kind",
                    finding.section
                ))
            })?;
            let assertion = match lower(&finding.assertion).as_str() {
                "present" => Assertion::Present,
                "absent" => Assertion::Absent,
                "possible" => Assertion::Possible,
                _ => {
                    return Err(bad(format!(
                        "assertion {:?} is not present/absent/possible",
                        finding.assertion
                    )));
                }
            };
            let laterality = match finding.laterality.as_deref().map(lower).as_deref() {
                None => None,
                Some("left") => Some(Laterality::Left),
                Some("right") => Some(Laterality::Right),
                Some("bilateral") => Some(Laterality::Bilateral),
                Some(other) => {
                    return Err(bad(format!(
                        "laterality {other:?} is not left/right/bilateral/null"
                    )));
                }
            };
            let change = match finding.change.as_deref().map(lower).as_deref() {
                None => None,
                Some("new") => Some(Change::New),
                Some("stable") => Some(Change::Stable),
                Some("increased") => Some(Change::Increased),
                Some("decreased") => Some(Change::Decreased),
                Some("resolved") => Some(Change::Resolved),
                Some(other) => {
                    return Err(bad(format!(
                        "change {other:?} is not new/stable/increased/decreased/resolved/null"
                    )));
                }
            };
            if let Some(size) = finding.size_mm
                && !(size.is_finite() && size >= 0.0)
            {
                return Err(bad(format!("size_mm {size} is not a non-negative number")));
            }
            Ok(GoldFinding {
                term: finding.term,
                section,
                assertion,
                laterality,
                size_mm: finding.size_mm,
                change,
                sentence: finding.sentence,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GoldReport {
        modality: raw
            .modality
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "unknown".to_string()),
        family: raw
            .family
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty()),
        text: raw.text,
        sections: raw.gold.sections,
        impression_items: impression_items.map(|n| n as usize),
        findings,
        critical: raw.gold.critical,
        laterality_discrepancy: raw.gold.laterality_discrepancy,
        recommendation: raw.gold.recommendation,
        followup_interval_days,
        id,
    })
}

// ---------------------------------------------------------------- text

/// The report text with byte ↔ char conversion.
struct CharText<'a> {
    text: &'a str,
    /// Byte offset of every char, then `text.len()`.
    starts: Vec<usize>,
}

impl<'a> CharText<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts: Vec<usize> = text.char_indices().map(|(at, _)| at).collect();
        starts.push(text.len());
        CharText { text, starts }
    }

    fn chars(&self) -> usize {
        self.starts.len() - 1
    }

    /// Char index of a byte offset on a char boundary.
    fn char_at(&self, byte: usize) -> usize {
        self.starts.partition_point(|&start| start < byte)
    }

    fn chars_of(&self, bytes: Range<usize>) -> Range<usize> {
        self.char_at(bytes.start)..self.char_at(bytes.end)
    }

    /// The text of a char range (clamped to the text).
    fn slice(&self, chars: Range<usize>) -> &'a str {
        let end = chars.end.min(self.chars());
        let start = chars.start.min(end);
        &self.text[self.starts[start]..self.starts[end]]
    }

    /// The word (letters, digits, hyphens) just before char `at`.
    fn word_before(&self, at: usize) -> &'a str {
        let before = self.slice(0..at).trim_end();
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || *c == '-')
            .last()
            .map_or(before.len(), |(at, _)| at);
        &before[start..]
    }
}

fn overlap(a: &Range<usize>, b: &Range<usize>) -> usize {
    a.end.min(b.end).saturating_sub(a.start.max(b.start))
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Char spans of the measurements written in `text` (see the module docs).
fn measurement_spans(text: &str) -> Vec<Range<usize>> {
    const UNITS: [&str; 10] = [
        "millimeters",
        "millimetres",
        "millimeter",
        "millimetre",
        "centimeters",
        "centimetres",
        "centimeter",
        "centimetre",
        "mm",
        "cm",
    ];
    let chars: Vec<char> = text.chars().collect();
    let number = |at: usize| -> Option<usize> {
        let mut end = at;
        while end < chars.len() && chars[end].is_ascii_digit() {
            end += 1;
        }
        if end == at {
            return None;
        }
        if end + 1 < chars.len() && chars[end] == '.' && chars[end + 1].is_ascii_digit() {
            end += 1;
            while end < chars.len() && chars[end].is_ascii_digit() {
                end += 1;
            }
        }
        Some(end)
    };
    let spaces = |mut at: usize| {
        while at < chars.len() && chars[at] == ' ' {
            at += 1;
        }
        at
    };
    let word_at = |at: usize, word: &str| -> Option<usize> {
        let mut end = at;
        for expected in word.chars() {
            if end >= chars.len() || chars[end].to_ascii_lowercase() != expected {
                return None;
            }
            end += 1;
        }
        Some(end)
    };
    let mut spans = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let boundary = at == 0 || !(chars[at - 1].is_alphanumeric() || chars[at - 1] == '.');
        let Some(mut end) = boundary.then(|| number(at)).flatten() else {
            at += 1;
            continue;
        };
        // More dimensions or a range: "3.5 x 2.1", "5 to 7", "5-7".
        loop {
            let gap = spaces(end);
            let after_separator = ["x", "×", "by", "to", "-", "–"]
                .iter()
                .find_map(|separator| word_at(gap, separator));
            let next = after_separator.map(spaces).and_then(number);
            match next {
                Some(next_end) => end = next_end,
                None => break,
            }
        }
        let mut unit_at = spaces(end);
        if unit_at < chars.len() && chars[unit_at] == '-' {
            unit_at += 1;
        }
        let unit_end = UNITS.iter().find_map(|unit| {
            word_at(unit_at, unit).filter(|&e| e >= chars.len() || !chars[e].is_alphabetic())
        });
        match unit_end {
            Some(unit_end) => {
                spans.push(at..unit_end);
                at = unit_end;
            }
            None => at = end,
        }
    }
    spans
}

// ---------------------------------------------------------------- scoring

/// Finding-level counts for one group of reports.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    reports: usize,
    gold: usize,
    found: usize,
    /// Extracted findings in Findings/Impression counted for precision.
    extracted: usize,
    extracted_matched: usize,
    pairs: usize,
    assertion: usize,
    laterality: usize,
    change: usize,
    size_n: usize,
    size_ok: usize,
    stated_n: usize,
    stated_ok: usize,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.reports += other.reports;
        self.gold += other.gold;
        self.found += other.found;
        self.extracted += other.extracted;
        self.extracted_matched += other.extracted_matched;
        self.pairs += other.pairs;
        self.assertion += other.assertion;
        self.laterality += other.laterality;
        self.change += other.change;
        self.size_n += other.size_n;
        self.size_ok += other.size_ok;
        self.stated_n += other.stated_n;
        self.stated_ok += other.stated_ok;
    }

    fn precision(&self) -> f64 {
        ratio(self.extracted_matched, self.extracted)
    }

    fn recall(&self) -> f64 {
        ratio(self.found, self.gold)
    }

    fn line(&self, group: &str) -> String {
        format!(
            "{SET} {group} found={:.3} precision={:.3} assertion={:.3} laterality={:.3} size={:.3} change={:.3} n={} reports={} matched={} extracted={} correct-extracted={} pairs={} size-n={} size-stated={:.3} size-stated-n={}",
            self.recall(),
            self.precision(),
            ratio(self.assertion, self.pairs),
            ratio(self.laterality, self.pairs),
            ratio(self.size_ok, self.size_n),
            ratio(self.change, self.pairs),
            self.gold,
            self.reports,
            self.found,
            self.extracted,
            self.extracted_matched,
            self.pairs,
            self.size_n,
            ratio(self.stated_ok, self.stated_n),
            self.stated_n,
        )
    }
}

/// Report-level decisions over all reports.
#[derive(Debug, Default)]
struct Decisions {
    sections: (usize, usize),
    items: (usize, usize),
    unnumbered_multi: usize,
    critical: Counts,
    discrepancy: Counts,
    recommendation: Counts,
    interval: (usize, usize),
    /// gold × extracted assertion, in [present, absent, possible] order.
    assertion_confusion: [[usize; 3]; 3],
    devices_skipped: usize,
    extracted_all: usize,
    sentences_not_found: usize,
}

/// Error examples, up to `cap` of each kind.
#[derive(Debug, Default)]
struct Examples {
    cap: usize,
    misses: Vec<String>,
    inventions: Vec<String>,
    assertions: Vec<String>,
    sides: Vec<String>,
    changes: Vec<String>,
    sizes: Vec<String>,
    reports: Vec<String>,
}

impl Examples {
    fn push(cap: usize, list: &mut Vec<String>, line: impl FnOnce() -> String) {
        if list.len() < cap {
            list.push(line());
        }
    }

    fn into_lines(self) -> Vec<String> {
        [
            self.misses,
            self.inventions,
            self.assertions,
            self.sides,
            self.changes,
            self.sizes,
            self.reports,
        ]
        .concat()
    }
}

/// Where a gold finding stands in the text, in chars.
#[derive(Debug, Clone)]
struct Located {
    sentence: Option<Range<usize>>,
    term: Option<Range<usize>>,
}

fn locate(
    text: &CharText<'_>,
    extraction: &Extraction<'_>,
    findings: &[GoldFinding],
) -> Vec<Located> {
    let mut located: Vec<Located> = Vec::with_capacity(findings.len());
    for (index, gold) in findings.iter().enumerate() {
        let exact: Vec<Range<usize>> = text
            .text
            .match_indices(gold.sentence.as_str())
            .filter(|_| !gold.sentence.is_empty())
            .map(|(at, found)| at..at + found.len())
            .collect();
        let occurrences = if exact.is_empty() {
            find_all(text.text, &gold.sentence)
        } else {
            exact
        };
        let occurrences: Vec<Range<usize>> = occurrences
            .into_iter()
            .map(|bytes| text.chars_of(bytes))
            .collect();
        let in_section = occurrences.iter().find(|span| {
            extraction.sections.iter().any(|section| {
                section.kind == gold.section
                    && section.start <= span.start
                    && span.start < section.end
            })
        });
        let Some(sentence) = in_section.or(occurrences.first()).cloned() else {
            located.push(Located {
                sentence: None,
                term: None,
            });
            continue;
        };
        let term_key = normal_term(&gold.term);
        let ordinal = findings[..index]
            .iter()
            .zip(&located)
            .filter(|(earlier, place)| {
                earlier.section == gold.section
                    && place.sentence.as_ref() == Some(&sentence)
                    && normal_term(&earlier.term) == term_key
            })
            .count();
        let sentence_text = text.slice(sentence.clone());
        let terms = find_all(sentence_text, &gold.term);
        let term = terms.get(ordinal).or(terms.last()).map(|bytes| {
            text.chars_of(
                text.starts[sentence.start] + bytes.start..text.starts[sentence.start] + bytes.end,
            )
        });
        located.push(Located {
            sentence: Some(sentence),
            term,
        });
    }
    located
}

fn matches(gold: &GoldFinding, place: &Located, finding: &Finding<'_>) -> bool {
    let Some(sentence) = &place.sentence else {
        return false;
    };
    gold.section == finding.section
        && overlap(sentence, &(finding.start..finding.end)) > 0
        && terms_match(&gold.term, finding.term)
}

type PairKey = (bool, bool, usize, Reverse<usize>);

fn pair_key(place: &Located, finding: &Finding<'_>) -> PairKey {
    let span = finding.start..finding.end;
    let sentence = place.sentence.clone().unwrap_or(0..0);
    let term = place.term.clone().unwrap_or_else(|| sentence.clone());
    let extracted_term = finding.term_start..finding.term_end;
    (
        contains(&sentence, &span) || contains(&span, &sentence),
        overlap(&term, &extracted_term) > 0,
        overlap(&sentence, &span),
        Reverse(term.start.abs_diff(extracted_term.start)),
    )
}

/// Pairs each gold finding with one of its candidates (best first): greedy,
/// then augmenting paths for a one-to-one pairing where one exists, then
/// leftovers share their best candidate.
fn pair(candidates: &[Vec<(PairKey, usize)>], extracted: usize) -> Vec<Option<usize>> {
    let mut pairs: Vec<Option<usize>> = vec![None; candidates.len()];
    let mut owner: Vec<Option<usize>> = vec![None; extracted];
    let mut all: Vec<(PairKey, usize, usize)> = candidates
        .iter()
        .enumerate()
        .flat_map(|(gold, list)| list.iter().map(move |&(key, found)| (key, gold, found)))
        .collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    for (_, gold, found) in all {
        if pairs[gold].is_none() && owner[found].is_none() {
            pairs[gold] = Some(found);
            owner[found] = Some(gold);
        }
    }
    fn augment(
        gold: usize,
        candidates: &[Vec<(PairKey, usize)>],
        pairs: &mut [Option<usize>],
        owner: &mut [Option<usize>],
        visited: &mut [bool],
    ) -> bool {
        for &(_, found) in &candidates[gold] {
            if visited[found] {
                continue;
            }
            visited[found] = true;
            let free = match owner[found] {
                None => true,
                Some(other) => augment(other, candidates, pairs, owner, visited),
            };
            if free {
                owner[found] = Some(gold);
                pairs[gold] = Some(found);
                return true;
            }
        }
        false
    }
    for gold in 0..candidates.len() {
        if pairs[gold].is_none() && !candidates[gold].is_empty() {
            let mut visited = vec![false; extracted];
            augment(gold, candidates, &mut pairs, &mut owner, &mut visited);
        }
    }
    for (gold, list) in candidates.iter().enumerate() {
        if pairs[gold].is_none() {
            pairs[gold] = list.first().map(|&(_, found)| found);
        }
    }
    pairs
}

fn extracted_size(finding: &Finding<'_>) -> Option<f64> {
    finding
        .measurements
        .iter()
        .map(|m| m.max_mm)
        .fold(None, |best: Option<f64>, mm| {
            Some(best.map_or(mm, |b| b.max(mm)))
        })
}

fn size_correct(gold: Option<f64>, extracted: Option<f64>) -> bool {
    match (gold, extracted) {
        (None, None) => true,
        (Some(g), Some(e)) => (g - e).abs() <= 0.6 + 1e-9,
        _ => false,
    }
}

/// The section list as scored: `other`/`addendum` dropped, repeats merged.
fn normal_sections<'s>(kinds: impl IntoIterator<Item = &'s str>) -> Vec<&'s str> {
    let mut list: Vec<&str> = Vec::new();
    for kind in kinds {
        if kind == "other" || kind == "addendum" {
            continue;
        }
        if list.last() != Some(&kind) {
            list.push(kind);
        }
    }
    list
}

/// Impression items as the extraction gives them (module docs).
fn impression_items(text: &CharText<'_>, extraction: &Extraction<'_>) -> (usize, bool) {
    let mut count = 0;
    let mut unnumbered = false;
    for section in &extraction.sections {
        if section.kind != SectionKind::Impression {
            continue;
        }
        if section.items.is_empty() {
            if text
                .slice(section.body_start..section.body_end)
                .chars()
                .any(char::is_alphanumeric)
            {
                count += 1;
                unnumbered = true;
            }
        } else {
            count += section.items.len();
        }
    }
    (count, unnumbered)
}

fn quoted(text: &str, max: usize) -> String {
    format!("{:?}", one_line(text, max))
}

fn assertion_index(assertion: Assertion) -> usize {
    match assertion {
        Assertion::Present => 0,
        Assertion::Absent => 1,
        Assertion::Possible => 2,
    }
}

/// Scores one report's extraction against its gold labels.
fn evaluate(
    report: &GoldReport,
    extraction: &Extraction<'_>,
    decisions: &mut Decisions,
    examples: &mut Examples,
) -> Tally {
    let cap = examples.cap;
    let text = CharText::new(&report.text);
    let found = &extraction.findings;
    let located = locate(&text, extraction, &report.findings);
    decisions.sentences_not_found += located.iter().filter(|l| l.sentence.is_none()).count();
    let mut tally = Tally {
        reports: 1,
        gold: report.findings.len(),
        ..Tally::default()
    };

    let mut candidates: Vec<Vec<(PairKey, usize)>> = Vec::with_capacity(report.findings.len());
    let mut matched_any = vec![false; found.len()];
    for (gold, place) in report.findings.iter().zip(&located) {
        let mut list: Vec<(PairKey, usize)> = found
            .iter()
            .enumerate()
            .filter(|(_, finding)| matches(gold, place, finding))
            .map(|(index, finding)| (pair_key(place, finding), index))
            .collect();
        list.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, index) in &list {
            matched_any[index] = true;
        }
        candidates.push(list);
    }

    // Found (recall).
    for ((gold, place), list) in report.findings.iter().zip(&located).zip(&candidates) {
        if !list.is_empty() {
            tally.found += 1;
            continue;
        }
        Examples::push(cap, &mut examples.misses, || {
            let sentence = place.sentence.clone();
            let nearby: Vec<String> = sentence
                .as_ref()
                .map(|sentence| {
                    found
                        .iter()
                        .filter(|f| overlap(sentence, &(f.start..f.end)) > 0)
                        .map(|f| format!("{}:{}", section_name(f.section), quoted(f.term, 60)))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "error reports kind=miss id={} section={} term={} sentence={}{} extracted-here=[{}]",
                report.id,
                section_name(gold.section),
                quoted(&gold.term, 80),
                quoted(&gold.sentence, 300),
                if sentence.is_none() {
                    " (sentence not in text)"
                } else {
                    ""
                },
                nearby.join(", ")
            )
        });
    }

    // Precision.
    for (index, finding) in found.iter().enumerate() {
        if !matches!(
            finding.section,
            SectionKind::Findings | SectionKind::Impression
        ) {
            continue;
        }
        decisions.extracted_all += 1;
        if matched_any[index] {
            tally.extracted += 1;
            tally.extracted_matched += 1;
            continue;
        }
        let words = format!("{} {}", text.word_before(finding.term_start), finding.term);
        if is_support_device(&words) {
            decisions.devices_skipped += 1;
            continue;
        }
        tally.extracted += 1;
        Examples::push(cap, &mut examples.inventions, || {
            format!(
                "error reports kind=invented id={} section={} term={} assertion={} sentence={}",
                report.id,
                section_name(finding.section),
                quoted(finding.term, 80),
                assertion_name(finding.assertion),
                quoted(text.slice(finding.start..finding.end), 300)
            )
        });
    }

    // Matched pairs.
    let measurements = measurement_spans(&report.text);
    let pairs = pair(&candidates, found.len());
    for ((gold, place), paired) in report.findings.iter().zip(&located).zip(pairs) {
        let Some(index) = paired else { continue };
        let finding = &found[index];
        tally.pairs += 1;
        let describe = |kind: &str, gold_value: &str, extracted_value: &str| {
            format!(
                "error reports kind={kind} id={} section={} gold-term={} term={} gold={gold_value} extracted={extracted_value} sentence={}",
                report.id,
                section_name(gold.section),
                quoted(&gold.term, 80),
                quoted(finding.term, 80),
                quoted(&gold.sentence, 300)
            )
        };
        decisions.assertion_confusion[assertion_index(gold.assertion)]
            [assertion_index(finding.assertion)] += 1;
        if gold.assertion == finding.assertion {
            tally.assertion += 1;
        } else {
            Examples::push(cap, &mut examples.assertions, || {
                describe(
                    "assertion",
                    assertion_name(gold.assertion),
                    assertion_name(finding.assertion),
                )
            });
        }
        if gold.laterality == finding.laterality {
            tally.laterality += 1;
        } else {
            Examples::push(cap, &mut examples.sides, || {
                describe(
                    "laterality",
                    laterality_name(gold.laterality),
                    laterality_name(finding.laterality),
                )
            });
        }
        if gold.change == finding.change {
            tally.change += 1;
        } else {
            Examples::push(cap, &mut examples.changes, || {
                describe(
                    "change",
                    change_name(gold.change),
                    change_name(finding.change),
                )
            });
        }
        let size = extracted_size(finding);
        let correct = size_correct(gold.size_mm, size);
        let anchor = place
            .term
            .clone()
            .or_else(|| place.sentence.clone())
            .unwrap_or(0..0);
        let sentence = place.sentence.clone().unwrap_or(0..0);
        let near = measurements.iter().any(|m| {
            if !contains(&sentence, m) {
                return false;
            }
            let gap = if m.end <= anchor.start {
                anchor.start - m.end
            } else {
                m.start.saturating_sub(anchor.end)
            };
            gap <= 40
        });
        if near {
            tally.size_n += 1;
            tally.size_ok += usize::from(correct);
        }
        if gold.size_mm.is_some() || size.is_some() {
            tally.stated_n += 1;
            tally.stated_ok += usize::from(correct);
        }
        if (near || gold.size_mm.is_some() || size.is_some()) && !correct {
            Examples::push(cap, &mut examples.sizes, || {
                describe("size", &size_name(gold.size_mm), &size_name(size))
            });
        }
    }

    // Report-level decisions.
    let mut wrong: Vec<String> = Vec::new();
    if let Some(gold_sections) = &report.sections {
        let gold_lower: Vec<String> = gold_sections
            .iter()
            .map(|kind| kind.trim().to_lowercase())
            .collect();
        let gold_list = normal_sections(gold_lower.iter().map(String::as_str));
        let extracted_list = normal_sections(
            extraction
                .sections
                .iter()
                .map(|section| section_name(section.kind)),
        );
        decisions.sections.1 += 1;
        if gold_list == extracted_list {
            decisions.sections.0 += 1;
        } else {
            wrong.push(format!(
                "sections gold=[{}] extracted=[{}]",
                gold_list.join(","),
                extracted_list.join(",")
            ));
        }
    }
    if let Some(gold_items) = report.impression_items {
        let (items, unnumbered) = impression_items(&text, extraction);
        decisions.items.1 += 1;
        if items == gold_items {
            decisions.items.0 += 1;
        } else {
            if unnumbered && gold_items > 1 {
                decisions.unnumbered_multi += 1;
            }
            wrong.push(format!(
                "impression-items gold={gold_items} extracted={items}"
            ));
        }
    }
    let mut flag = |name: &str, gold: Option<bool>, predicted: bool, counts: &mut Counts| {
        if let Some(gold) = gold {
            counts.add(gold, predicted);
            if gold != predicted {
                wrong.push(format!("{name} gold={gold} extracted={predicted}"));
            }
        }
    };
    flag(
        "critical",
        report.critical,
        !extraction.critical.is_empty(),
        &mut decisions.critical,
    );
    flag(
        "laterality-discrepancy",
        report.laterality_discrepancy,
        extraction
            .discrepancies
            .iter()
            .any(|d| d.kind == reportsplit_split::DiscrepancyKind::Laterality),
        &mut decisions.discrepancy,
    );
    flag(
        "recommendation",
        report.recommendation,
        !extraction.recommendations.is_empty(),
        &mut decisions.recommendation,
    );
    if let Some(days) = report.followup_interval_days {
        let predicted = extraction
            .recommendations
            .iter()
            .find_map(|recommendation| recommendation.interval_days);
        decisions.interval.1 += 1;
        if predicted == Some(days) {
            decisions.interval.0 += 1;
        } else {
            wrong.push(format!(
                "followup-interval gold={days} extracted={}",
                predicted.map_or_else(|| "none".to_string(), |d| d.to_string())
            ));
        }
    }
    for what in wrong {
        Examples::push(cap, &mut examples.reports, || {
            format!("error reports kind=report id={} {what}", report.id)
        });
    }
    tally
}

fn accuracy(counts: &Counts) -> f64 {
    ratio(
        counts.tp + counts.tn,
        counts.tp + counts.tn + counts.fp + counts.fn_,
    )
}

/// Scores a gold JSON file of labelled reports (module docs).
pub fn score(content: &str, lexicon: &Lexicon, options: &Options) -> Result<Report, EvalError> {
    let reports = parse(content)?;
    if reports.is_empty() {
        return Err(EvalError::Input {
            input: INPUT,
            message: "no reports in the array".into(),
        });
    }
    let total = reports.len();
    let kept: Vec<&GoldReport> = reports
        .iter()
        .filter(|report| options.part.keeps(&report.id))
        .collect();
    if kept.is_empty() {
        return Err(EvalError::Input {
            input: INPUT,
            message: format!("no report in part {}", options.part),
        });
    }
    let mut decisions = Decisions::default();
    let mut examples = Examples {
        cap: options.errors,
        ..Examples::default()
    };
    let mut all = Tally::default();
    let mut by_modality: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut by_family: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut actions = crate::ActionCounts::default();
    for report in &kept {
        let extraction = extract(&report.text, lexicon);
        actions.add(&extraction);
        let tally = evaluate(report, &extraction, &mut decisions, &mut examples);
        all.add(&tally);
        by_modality
            .entry(report.modality.as_str())
            .or_default()
            .add(&tally);
        if let Some(family) = &report.family {
            by_family.entry(family.as_str()).or_default().add(&tally);
        }
    }

    let mut details = vec![
        Detail::Note(format!(
            "{SET} part={} rows={} of={total}",
            options.part,
            kept.len()
        )),
        Detail::Note(format!(
            "{SET} gold reports={} findings={} extracted={} counted={} devices-not-counted={} gold-sentences-not-in-text={}",
            kept.len(),
            all.gold,
            decisions.extracted_all,
            all.extracted,
            decisions.devices_skipped,
            decisions.sentences_not_found
        )),
        Detail::Note(all.line("all")),
    ];
    for (modality, tally) in &by_modality {
        details.push(Detail::Note(tally.line(modality)));
    }
    for (family, tally) in &by_family {
        details.push(Detail::Note(tally.line(family)));
    }
    let names = ["present", "absent", "possible"];
    let mut cells = Vec::new();
    for (g, row) in decisions.assertion_confusion.iter().enumerate() {
        for (e, count) in row.iter().enumerate() {
            cells.push(format!("{}/{}={count}", names[g], names[e]));
        }
    }
    details.push(Detail::Note(format!(
        "{SET} assertion-confusion gold/extracted {}",
        cells.join(" ")
    )));
    details.push(Detail::Note(format!(
        "{SET} sections accuracy={:.3} n={} correct={}",
        ratio(decisions.sections.0, decisions.sections.1),
        decisions.sections.1,
        decisions.sections.0
    )));
    details.push(Detail::Note(format!(
        "{SET} impression-items accuracy={:.3} n={} correct={} unnumbered-multi-sentence={}",
        ratio(decisions.items.0, decisions.items.1),
        decisions.items.1,
        decisions.items.0,
        decisions.unnumbered_multi
    )));
    for (name, counts) in [
        ("critical", &decisions.critical),
        ("laterality-discrepancy", &decisions.discrepancy),
        ("recommendation", &decisions.recommendation),
    ] {
        details.push(Detail::Note(format!(
            "{SET} {name} accuracy={:.3} n={} {}",
            accuracy(counts),
            counts.tp + counts.tn + counts.fp + counts.fn_,
            counts.summary()
        )));
    }
    details.push(Detail::Note(format!(
        "{SET} critical recall={:.3} precision={:.3} {}",
        decisions.critical.recall(),
        decisions.critical.precision(),
        decisions.critical.summary()
    )));
    details.push(Detail::Note(actions.line(SET)));
    details.push(Detail::Note(format!(
        "{SET} followup-interval accuracy={:.3} n={} correct={}",
        ratio(decisions.interval.0, decisions.interval.1),
        decisions.interval.1,
        decisions.interval.0
    )));
    let (precision, recall) = (all.precision(), all.recall());
    Ok(Report {
        details,
        errors: examples.into_lines(),
        summary: ScoreLine {
            set: SET,
            metric: "findings".into(),
            precision,
            recall,
            f1: f1(precision, recall),
            n: all.gold,
            extra: String::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Part;
    use reportsplit_split::Measurement;
    use std::sync::OnceLock;

    fn lexicon() -> &'static Lexicon {
        static LEXICON: OnceLock<Lexicon> = OnceLock::new();
        LEXICON.get_or_init(Lexicon::builtin)
    }

    /// A finding and a measurement to copy: every test finding is this one,
    /// moved and relabelled, so the tests do not depend on which terms the
    /// extractor knows.
    fn template() -> (Finding<'static>, Measurement<'static>) {
        let extraction = extract("FINDINGS: 5 mm nodule.", lexicon());
        let finding = extraction
            .findings
            .into_iter()
            .next()
            .expect("the template text has a finding");
        let measurement = finding
            .measurements
            .first()
            .cloned()
            .expect("the template finding has a size");
        (finding, measurement)
    }

    /// A finding in `section` whose sentence is the first occurrence of
    /// `sentence` at or after byte `from` of `text`, and whose term is the
    /// first `term` in that sentence.
    fn placed(
        text: &'static str,
        section: SectionKind,
        sentence: &str,
        term: &str,
        from: usize,
    ) -> Finding<'static> {
        let (mut finding, _) = template();
        let at = from + text[from..].find(sentence).expect("sentence in text");
        let term_at = at + text[at..].find(term).expect("term in sentence");
        let chars = |byte: usize| text[..byte].chars().count();
        finding.start = chars(at);
        finding.end = chars(at + sentence.len());
        finding.term = &text[term_at..term_at + term.len()];
        finding.term_start = chars(term_at);
        finding.term_end = chars(term_at + term.len());
        finding.section = section;
        finding.assertion = Assertion::Present;
        finding.laterality = None;
        finding.change = None;
        finding.measurements.clear();
        finding
    }

    fn sized(mut finding: Finding<'static>, mm: f64) -> Finding<'static> {
        let (_, mut measurement) = template();
        measurement.max_mm = mm;
        finding.measurements.push(measurement);
        finding
    }

    fn gold_report(json: &str) -> GoldReport {
        parse(json).expect("valid gold").remove(0)
    }

    /// The report's own extraction (its sections), with these findings.
    fn extraction_with(
        report: &GoldReport,
        findings: Vec<Finding<'static>>,
    ) -> Extraction<'static> {
        let text: &'static str = Box::leak(report.text.clone().into_boxed_str());
        let mut extraction = extract(text, lexicon());
        extraction.findings = findings;
        extraction.critical.clear();
        extraction.actionable.clear();
        extraction.discrepancies.clear();
        extraction
    }

    fn evaluate_one(
        report: &GoldReport,
        extraction: &Extraction<'_>,
    ) -> (Tally, Decisions, Vec<String>) {
        let mut decisions = Decisions::default();
        let mut examples = Examples {
            cap: 10,
            ..Examples::default()
        };
        let tally = evaluate(report, extraction, &mut decisions, &mut examples);
        (tally, decisions, examples.into_lines())
    }

    #[test]
    fn terms_match_when_either_contains_the_other() {
        assert!(terms_match("enlarged", "Spleen is  ENLARGED"));
        assert!(terms_match("Testicular torsion", "torsion"));
        assert!(terms_match("pleural\neffusion", "pleural effusion"));
        assert!(!terms_match("effusion", "edema"));
        assert!(!terms_match("", "effusion"));
        assert!(!terms_match("effusion", "  "));
    }

    #[test]
    fn containment_both_ways_and_a_wrong_section_score_found_and_precision() {
        const TEXT: &str = "EXAM: CT abdomen.\nFINDINGS: The spleen is enlarged. There is a small hiatal hernia.\nIMPRESSION: Splenomegaly.";
        let report = gold_report(
            r#"[{"id": "t1", "modality": "CT", "family": "abdomen",
                "text": "EXAM: CT abdomen.\nFINDINGS: The spleen is enlarged. There is a small hiatal hernia.\nIMPRESSION: Splenomegaly.",
                "gold": {"findings": [
                  {"term": "enlarged", "section": "findings", "assertion": "present", "laterality": null, "size_mm": null, "change": null, "sentence": "The spleen is enlarged."},
                  {"term": "hiatal hernia", "section": "findings", "assertion": "present", "laterality": null, "size_mm": null, "change": null, "sentence": "There is a small hiatal hernia."},
                  {"term": "Splenomegaly", "section": "impression", "assertion": "present", "laterality": null, "size_mm": null, "change": null, "sentence": "Splenomegaly."}]}}]"#,
        );
        assert_eq!(report.text, TEXT);
        let findings = SectionKind::Findings;
        let extraction = extraction_with(
            &report,
            vec![
                // Extracted term contains the gold term.
                placed(
                    TEXT,
                    findings,
                    "The spleen is enlarged.",
                    "spleen is enlarged",
                    0,
                ),
                // Gold term contains the extracted term.
                placed(
                    TEXT,
                    findings,
                    "There is a small hiatal hernia.",
                    "hernia",
                    0,
                ),
                // Right sentence and term, wrong section kind.
                placed(TEXT, findings, "Splenomegaly.", "Splenomegaly", 0),
            ],
        );
        let (tally, _, errors) = evaluate_one(&report, &extraction);
        assert_eq!((tally.gold, tally.found), (3, 2));
        assert_eq!((tally.extracted, tally.extracted_matched), (3, 2));
        assert_eq!(tally.pairs, 2);
        assert!(
            errors.iter().any(|e| e.contains("kind=miss")
                && e.contains("section=impression")
                && e.contains("extracted-here=[findings:\"Splenomegaly\"]")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("kind=invented")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_repeated_sentence_is_located_in_the_gold_section() {
        const TEXT: &str = "FINDINGS: No pleural effusion.\nIMPRESSION: No pleural effusion.";
        let report = gold_report(
            r#"[{"id": "t2", "modality": "XR", "text": "FINDINGS: No pleural effusion.\nIMPRESSION: No pleural effusion.",
                "gold": {"findings": [
                  {"term": "pleural effusion", "section": "findings", "assertion": "absent", "sentence": "No pleural effusion."},
                  {"term": "pleural effusion", "section": "impression", "assertion": "absent", "sentence": "No  PLEURAL effusion."}]}}]"#,
        );
        let impression_at = TEXT.find("IMPRESSION").unwrap();
        let mut in_findings = placed(
            TEXT,
            SectionKind::Findings,
            "No pleural effusion.",
            "pleural effusion",
            0,
        );
        in_findings.assertion = Assertion::Absent;
        let mut in_impression = placed(
            TEXT,
            SectionKind::Impression,
            "No pleural effusion.",
            "pleural effusion",
            impression_at,
        );
        in_impression.assertion = Assertion::Absent;
        let extraction = extraction_with(&report, vec![in_findings.clone(), in_impression]);
        let (tally, decisions, _) = evaluate_one(&report, &extraction);
        assert_eq!(
            decisions.sentences_not_found, 0,
            "case and spaces are folded"
        );
        assert_eq!(
            (tally.found, tally.extracted_matched, tally.assertion),
            (2, 2, 2)
        );

        // An impression finding whose span lies on the Findings sentence does
        // not overlap the gold Impression sentence.
        let mut misplaced = in_findings.clone();
        misplaced.section = SectionKind::Impression;
        let extraction = extraction_with(&report, vec![in_findings, misplaced]);
        let (tally, _, _) = evaluate_one(&report, &extraction);
        assert_eq!(
            (tally.found, tally.extracted, tally.extracted_matched),
            (1, 2, 1)
        );
    }

    #[test]
    fn support_devices_are_not_counted_unless_labelled() {
        const TEXT: &str = "FINDINGS: Endotracheal tube in good position. The left fallopian tube is dilated. Stent fracture is noted.";
        let report = gold_report(
            r#"[{"id": "t3", "modality": "CT", "text": "FINDINGS: Endotracheal tube in good position. The left fallopian tube is dilated. Stent fracture is noted.",
                "gold": {"findings": [
                  {"term": "dilated", "section": "findings", "assertion": "present", "laterality": "left", "sentence": "The left fallopian tube is dilated."},
                  {"term": "stent fracture", "section": "findings", "assertion": "present", "sentence": "Stent fracture is noted."}]}}]"#,
        );
        let findings = SectionKind::Findings;
        let mut dilated = placed(
            TEXT,
            findings,
            "The left fallopian tube is dilated.",
            "dilated",
            0,
        );
        dilated.laterality = Some(Laterality::Left);
        let extraction = extraction_with(
            &report,
            vec![
                placed(
                    TEXT,
                    findings,
                    "Endotracheal tube in good position.",
                    "Endotracheal tube",
                    0,
                ),
                // "tube" after "fallopian" is anatomy, not a device: an invention.
                placed(
                    TEXT,
                    findings,
                    "The left fallopian tube is dilated.",
                    "tube",
                    0,
                ),
                dilated,
                // A device word, but the gold labels it: counted, as correct.
                placed(
                    TEXT,
                    findings,
                    "Stent fracture is noted.",
                    "Stent fracture",
                    0,
                ),
            ],
        );
        let (tally, decisions, errors) = evaluate_one(&report, &extraction);
        assert_eq!(decisions.devices_skipped, 1);
        assert_eq!(decisions.extracted_all, 4);
        assert_eq!((tally.extracted, tally.extracted_matched), (3, 2));
        assert_eq!((tally.found, tally.laterality), (2, 2));
        assert!(
            errors
                .iter()
                .any(|e| e.contains("kind=invented") && e.contains("term=\"tube\"")),
            "{errors:?}"
        );
    }

    #[test]
    fn device_words_and_their_exceptions() {
        for device in [
            "endotracheal tube",
            "right PICC line",
            "Port-a-cath",
            "surgical clips",
            "aortic valve replacement",
            "IVC filter",
            "pacemaker leads",
            "VP shunt",
        ] {
            assert!(is_support_device(device), "{device}");
        }
        for finding in [
            "fallopian tube",
            "pleural line",
            "plate-like atelectasis",
            "fracture line",
            "portal vein thrombosis",
            "midline shift",
            "lead point",
            "left-to-right shunt",
            "pleural effusion",
        ] {
            assert!(!is_support_device(finding), "{finding}");
        }
    }

    #[test]
    fn sizes_are_scored_near_the_term_within_0_6_mm() {
        const TEXT: &str = "FINDINGS: An 8 mm nodule. A 12 mm mass. A 4 mm stone beside a renal cyst. The cyst in the liver, which is otherwise normal in its appearance and texture, measures 20 mm.";
        let report = gold_report(
            r#"[{"id": "t4", "modality": "CT", "text": "FINDINGS: An 8 mm nodule. A 12 mm mass. A 4 mm stone beside a renal cyst. The cyst in the liver, which is otherwise normal in its appearance and texture, measures 20 mm.",
                "gold": {"findings": [
                  {"term": "nodule", "section": "findings", "assertion": "present", "size_mm": 8, "sentence": "An 8 mm nodule."},
                  {"term": "mass", "section": "findings", "assertion": "present", "size_mm": 12, "sentence": "A 12 mm mass."},
                  {"term": "cyst", "section": "findings", "assertion": "present", "size_mm": null, "sentence": "A 4 mm stone beside a renal cyst."},
                  {"term": "cyst", "section": "findings", "assertion": "present", "size_mm": 20, "sentence": "The cyst in the liver, which is otherwise normal in its appearance and texture, measures 20 mm."}]}}]"#,
        );
        let findings = SectionKind::Findings;
        let extraction = extraction_with(
            &report,
            vec![
                sized(placed(TEXT, findings, "An 8 mm nodule.", "nodule", 0), 8.5),
                sized(placed(TEXT, findings, "A 12 mm mass.", "mass", 0), 12.7),
                placed(
                    TEXT,
                    findings,
                    "A 4 mm stone beside a renal cyst.",
                    "cyst",
                    0,
                ),
                placed(TEXT, findings, "The cyst in the liver", "cyst", 0),
            ],
        );
        let (tally, _, errors) = evaluate_one(&report, &extraction);
        assert_eq!(tally.pairs, 4);
        // Scored where a measurement stands within 40 chars of the term in
        // its sentence: the first three (the last cyst's "20 mm" is farther,
        // the stone's "4 mm" is in the sentence before); 8.5 is within 0.6
        // of 8, 12.7 is not, and no size for the cyst next to a stone's
        // size is right.
        assert_eq!((tally.size_n, tally.size_ok), (3, 2));
        // The other reading: gold size set or a size extracted.
        assert_eq!((tally.stated_n, tally.stated_ok), (3, 1));
        let sizes: Vec<&String> = errors.iter().filter(|e| e.contains("kind=size")).collect();
        assert_eq!(sizes.len(), 2, "{sizes:?}");
        assert!(sizes[0].contains("gold=12 extracted=12.7"), "{sizes:?}");
        assert!(size_correct(Some(7.5), Some(8.1)));
        assert!(!size_correct(Some(7.5), None));
        assert!(size_correct(None, None));
    }

    #[test]
    fn measurements_are_numbers_with_a_length_unit() {
        let text = "A 3.5 x 2.1 cm mass, a 5-mm stone, 5 to 7 mm nodes, 12 millimeters, 2.5cm. T2 signal, L4-5, 20 cmH2O, 3 x 4 images.";
        let found: Vec<String> = measurement_spans(text)
            .into_iter()
            .map(|span| text.chars().skip(span.start).take(span.len()).collect())
            .collect();
        assert_eq!(
            found,
            [
                "3.5 x 2.1 cm",
                "5-mm",
                "5 to 7 mm",
                "12 millimeters",
                "2.5cm"
            ]
        );
    }

    #[test]
    fn pairs_are_one_to_one_by_term_position() {
        const TEXT: &str = "FINDINGS: Small right effusion and large left effusion.";
        let report = gold_report(
            r#"[{"id": "t5", "modality": "XR", "text": "FINDINGS: Small right effusion and large left effusion.",
                "gold": {"findings": [
                  {"term": "effusion", "section": "findings", "assertion": "present", "laterality": "right", "sentence": "Small right effusion and large left effusion."},
                  {"term": "effusion", "section": "findings", "assertion": "present", "laterality": "left", "sentence": "Small right effusion and large left effusion."}]}}]"#,
        );
        let sentence = "Small right effusion and large left effusion.";
        let mut right = placed(TEXT, SectionKind::Findings, sentence, "effusion", 0);
        right.laterality = Some(Laterality::Right);
        let second = TEXT.find("left effusion").unwrap() + 5;
        let mut left = placed(TEXT, SectionKind::Findings, sentence, "effusion", 0);
        left.term_start = second;
        left.term_end = second + "effusion".len();
        left.term = &TEXT[second..second + 8];
        left.laterality = Some(Laterality::Left);
        // Listed in the opposite order to the gold labels.
        let extraction = extraction_with(&report, vec![left, right]);
        let (tally, _, errors) = evaluate_one(&report, &extraction);
        assert_eq!((tally.pairs, tally.laterality), (2, 2), "{errors:?}");
    }

    #[test]
    fn pairing_augments_to_one_to_one_and_shares_leftovers() {
        let key = |rank: usize| (true, true, rank, Reverse(0));
        // Gold 0 prefers extraction 0, but gold 1 can only have extraction 0.
        let candidates = vec![vec![(key(9), 0), (key(1), 1)], vec![(key(5), 0)]];
        assert_eq!(pair(&candidates, 2), [Some(1), Some(0)]);
        // More labels than extractions: the leftover shares its best one.
        let candidates = vec![vec![(key(9), 0)], vec![(key(5), 0)], vec![]];
        assert_eq!(pair(&candidates, 1), [Some(0), Some(0), None]);
    }

    #[test]
    fn section_lists_drop_other_and_merge_repeats() {
        assert_eq!(
            normal_sections([
                "other",
                "technique",
                "other",
                "technique",
                "findings",
                "findings",
                "impression",
                "addendum"
            ]),
            ["technique", "findings", "impression"]
        );
        let report = gold_report(
            r#"[{"id": "t6", "text": "EXAM: CT head.\nFINDINGS: Normal.\nIMPRESSION: Normal.",
                "gold": {"sections": ["Technique", "findings", "impression"], "impression_items": 1, "findings": []}}]"#,
        );
        let mut extraction = extraction_with(&report, Vec::new());
        let (_, decisions, _) = evaluate_one(&report, &extraction);
        assert_eq!(decisions.sections, (1, 1));
        assert_eq!(decisions.items, (1, 1));
        extraction
            .sections
            .retain(|s| s.kind != SectionKind::Technique);
        let (_, decisions, errors) = evaluate_one(&report, &extraction);
        assert_eq!(decisions.sections, (0, 1));
        assert!(
            errors.contains(&"error reports kind=report id=t6 sections gold=[technique,findings,impression] extracted=[findings,impression]".to_string()),
            "{errors:?}"
        );
    }

    #[test]
    fn impression_items_count_items_or_one_per_unitemised_section() {
        let numbered = gold_report(
            r#"[{"id": "t7", "text": "FINDINGS: See below.\nIMPRESSION:\n1. Small effusion.\n2. No pneumothorax.\n3. Cardiomegaly.",
                "gold": {"impression_items": 3, "findings": []}}]"#,
        );
        let extraction = extraction_with(&numbered, Vec::new());
        let text = CharText::new(&numbered.text);
        assert_eq!(impression_items(&text, &extraction), (3, false));
        let (_, decisions, _) = evaluate_one(&numbered, &extraction);
        assert_eq!(decisions.items, (1, 1));

        let unnumbered = gold_report(
            r#"[{"id": "t8", "text": "FINDINGS: See below.\nIMPRESSION: Small effusion. No pneumothorax.",
                "gold": {"impression_items": 2, "findings": []}}]"#,
        );
        let mut extraction = extraction_with(&unnumbered, Vec::new());
        // However the extractor splits it, an Impression without items is one.
        for section in &mut extraction.sections {
            section.items.clear();
        }
        let text = CharText::new(&unnumbered.text);
        assert_eq!(impression_items(&text, &extraction), (1, true));
        let (_, decisions, _) = evaluate_one(&unnumbered, &extraction);
        assert_eq!((decisions.items, decisions.unnumbered_multi), ((0, 1), 1));
    }

    #[test]
    fn flags_and_the_interval_are_scored_where_labelled() {
        let report = gold_report(
            r#"[{"id": "t9", "text": "FINDINGS: A 6 mm nodule in the right upper lobe.\nIMPRESSION: Right upper lobe nodule. Follow-up CT in 3 months is recommended.",
                "gold": {"findings": [], "critical": false, "laterality_discrepancy": false,
                         "recommendation": true, "followup_interval_days": 90}}]"#,
        );
        let mut extraction = extraction_with(&report, Vec::new());
        assert!(
            !extraction.recommendations.is_empty(),
            "the extractor finds the follow-up advice"
        );
        extraction.recommendations[0].interval_days = Some(90);
        let (_, decisions, _) = evaluate_one(&report, &extraction);
        assert_eq!(decisions.recommendation.tp, 1);
        assert_eq!(decisions.critical.tn, 1);
        assert_eq!(decisions.discrepancy.tn, 1);
        assert_eq!(decisions.interval, (1, 1));
        extraction.recommendations[0].interval_days = Some(180);
        let (_, decisions, errors) = evaluate_one(&report, &extraction);
        assert_eq!(decisions.interval, (0, 1));
        assert!(
            errors
                .iter()
                .any(|e| e.ends_with("followup-interval gold=90 extracted=180")),
            "{errors:?}"
        );
        extraction.recommendations.clear();
        let (_, decisions, _) = evaluate_one(&report, &extraction);
        assert_eq!(decisions.recommendation.fn_, 1);
        // A report without the labels is not counted for them.
        let unlabelled =
            gold_report(r#"[{"text": "FINDINGS: Normal.", "gold": {"findings": []}}]"#);
        let extraction = extraction_with(&unlabelled, Vec::new());
        let (_, decisions, _) = evaluate_one(&unlabelled, &extraction);
        assert_eq!(decisions.interval, (0, 0));
        assert_eq!(decisions.critical, Counts::default());
        assert_eq!(decisions.sections, (0, 0));
    }

    #[test]
    fn the_kth_label_of_a_repeated_term_takes_the_kth_occurrence() {
        let report = gold_report(
            r#"[{"text": "FINDINGS: Right cyst and left cyst.",
                "gold": {"findings": [
                  {"term": "cyst", "section": "findings", "assertion": "present", "sentence": "Right cyst and left cyst."},
                  {"term": "cyst", "section": "findings", "assertion": "present", "sentence": "Right cyst and left cyst."}]}}]"#,
        );
        let extraction = extraction_with(&report, Vec::new());
        let text = CharText::new(&report.text);
        let located = locate(&text, &extraction, &report.findings);
        let terms: Vec<usize> = located
            .iter()
            .map(|l| l.term.clone().unwrap().start)
            .collect();
        assert_eq!(terms, [16, 30]);
        assert_eq!(report.id, "#1");
        assert_eq!(report.modality, "unknown");
    }

    #[test]
    fn bad_gold_is_an_error_naming_report_and_finding() {
        let error = |json: &str| parse(json).unwrap_err().to_string();
        let finding = |field: &str| {
            format!(
                r#"[{{"id": "b1", "text": "x", "gold": {{"findings": [{{"term": "t", "section": "findings", "assertion": "present", "sentence": "x", {field}}}]}}}}]"#
            )
        };
        assert!(error("{}").contains("not a JSON array"));
        assert!(
            error(r#"[{"id": "b1", "gold": {"findings": []}}]"#).contains("missing field `text`")
        );
        let message = error(&finding(r#""laterality": "both""#));
        assert!(
            message.contains("report 1 (id \"b1\"): finding 1: laterality \"both\""),
            "{message}"
        );
        assert!(error(&finding(r#""change": "worse""#)).contains("change \"worse\""));
        assert!(error(&finding(r#""size_mm": -2"#)).contains("size_mm -2"));
        let bad_assertion = r#"[{"text": "x", "gold": {"findings": [{"term": "t", "section": "findings", "assertion": "maybe", "sentence": "x"}]}}]"#;
        assert!(error(bad_assertion).contains("assertion \"maybe\""));
        let bad_interval =
            r#"[{"text": "x", "gold": {"findings": [], "followup_interval_days": 90.5}}]"#;
        assert!(error(bad_interval).contains("followup_interval_days 90.5"));
    }

    const TWO_REPORTS: &str = r#"[
      {"id": "e1", "modality": "XR", "family": "chest",
       "text": "FINDINGS: Small right pleural effusion. No pneumothorax.\nIMPRESSION: Small right pleural effusion.",
       "gold": {"sections": ["findings", "impression"], "impression_items": 1,
                "findings": [
                  {"term": "pleural effusion", "section": "findings", "assertion": "present", "laterality": "right", "size_mm": null, "change": null, "sentence": "Small right pleural effusion."},
                  {"term": "pneumothorax", "section": "findings", "assertion": "absent", "laterality": null, "size_mm": null, "change": null, "sentence": "No pneumothorax."},
                  {"term": "pleural effusion", "section": "impression", "assertion": "present", "laterality": "right", "size_mm": null, "change": null, "sentence": "Small right pleural effusion."}],
                "critical": false, "laterality_discrepancy": false, "recommendation": false, "followup_interval_days": null}},
      {"id": "e2", "modality": "CT", "family": "abdomen",
       "text": "FINDINGS: The gallbladder is surgically absent.\nIMPRESSION: No acute abnormality.",
       "gold": {"sections": ["findings", "impression"], "impression_items": 1, "findings": [],
                "critical": false, "laterality_discrepancy": false, "recommendation": false, "followup_interval_days": null}}
    ]"#;

    #[test]
    fn scores_a_file_with_the_summary_last() {
        let report = crate::run(
            "reports",
            &[TWO_REPORTS.to_string()],
            lexicon(),
            &Options::default(),
        )
        .unwrap();
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "reports part=all rows=2 of=2");
        assert!(
            lines[1].starts_with("reports gold reports=2 findings=3 "),
            "{text}"
        );
        for group in ["all", "CT", "XR", "abdomen", "chest"] {
            let prefix = format!("reports {group} found=");
            assert!(
                lines.iter().any(|l| l.starts_with(&prefix)),
                "{group}: {text}"
            );
        }
        for name in [
            "sections",
            "impression-items",
            "critical",
            "laterality-discrepancy",
            "recommendation",
            "followup-interval",
        ] {
            let prefix = format!("reports {name} accuracy=");
            assert!(
                lines.iter().any(|l| l.starts_with(&prefix)),
                "{name}: {text}"
            );
        }
        assert!(!text.contains("error reports"), "no examples unless asked");
        let last = lines.last().unwrap();
        assert!(last.starts_with("reports findings precision="), "{last}");
        assert!(last.ends_with(" n=3"), "{last}");
        let order: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("reports "))
            .filter(|l| l.contains(" found="))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(order, ["all", "CT", "XR", "abdomen", "chest"]);
    }

    #[test]
    fn the_part_option_keeps_reports_by_id() {
        let reports: Vec<String> = (1..=40)
            .map(|n| {
                format!(r#"{{"id": "r{n}", "text": "FINDINGS: No effusion.", "gold": {{"findings": []}}}}"#)
            })
            .collect();
        let json = format!("[{}]", reports.join(","));
        let held = (1..=40).filter(|n| is_holdout_id(*n)).count();
        for (part, rows) in [
            (Part::Holdout, held),
            (Part::Tune, 40 - held),
            (Part::All, 40),
        ] {
            let report = score(
                &json,
                lexicon(),
                &Options {
                    part,
                    ..Options::default()
                },
            )
            .unwrap();
            assert_eq!(
                report.details[0].to_string(),
                format!("reports part={part} rows={rows} of=40")
            );
        }
    }

    fn is_holdout_id(n: usize) -> bool {
        crate::is_holdout(&format!("r{n}"))
    }

    #[test]
    fn empty_or_unmatched_input_is_an_error() {
        assert!(score("[]", lexicon(), &Options::default()).is_err());
    }
}
