//! Follow-up recommendations and their interval in days.
//!
//! A sentence is a recommendation when it stands in a recommendation section,
//! or when it recommends something: "recommend", "advised", "clinical
//! correlation", "... is warranted"; or "suggest"/"consider"/"follow-up"/
//! "repeat" used as an instruction (sentence-initial, followed by an imaging
//! or action noun, or with an interval). "Findings suggest pneumonia" is a
//! hedge, not a recommendation.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::Regex;

use crate::layout::Layout;
use crate::{Assertion, Finding, Procedure, Recommendation, SectionKind};

/// Phrases that make any sentence a recommendation.
const ALWAYS: &[&str] = &[
    "recommend",
    "advise",
    "advisable",
    "clinical correlation",
    "correlate clinically",
    "clinically correlate",
    "correlate with",
    "is warranted",
    "are warranted",
    "should be obtained",
    "should be performed",
    "could be obtained",
    "could be performed",
    "would be helpful",
    "may be helpful",
    "could be helpful",
    "is suggested",
    "are suggested",
    "could be considered",
    "may be considered",
    "should be considered",
    // Back to the screening schedule (BI-RADS 1-2): "Return to annual
    // screening mammography."
    "return to annual",
    "return to routine",
    "resume annual",
    "resume routine",
    "continue annual",
    "continue routine",
    // Onward care: a referral, a specialist's review, a multidisciplinary
    // meeting ("For discussion at the colorectal MDT", "Urgent surgical
    // review", "vascular clinic review in 6 weeks"), a rescan.
    "referral",
    "refer to",
    "for discussion",
    "to be discussed at",
    "discussion at",
    "mdt discussion",
    "tumour board",
    "tumor board",
    "surgical review",
    "surgical opinion",
    "clinic review",
    "clinical review",
    "urgent review",
    "specialist review",
    "specialist opinion",
    "orthopaedic review",
    "orthopedic review",
    "urology review",
    "urological review",
    "gynaecology review",
    "gynecology review",
    "rescan",
    "re-scan",
    // "attention on next restaging CT", "reassess on end-of-treatment
    // PET-CT", "a check chest radiograph has been requested".
    "attention on next",
    "attention at next",
    "attention on follow-up",
    "attention on subsequent",
    "reassess on",
    "reassess at",
    "reassess with",
    "re-assess on",
    "reassessment on",
    "reassessment with",
    "re-evaluate with",
    "re-evaluation with",
    "has been requested",
    "have been requested",
    "check radiograph",
    "check chest radiograph",
    "check x-ray",
    "check film",
];

/// Words that recommend only when used as an instruction.
const INSTRUCTION: &[&str] = &[
    "suggest",
    "suggested",
    "consider",
    "follow-up",
    "follow up",
    "followup",
    "repeat",
];

/// What a recommendation asks for; after "suggest"/"consider" they make it one.
const ACTIONS: &[&str] = &[
    "follow",
    "repeat",
    "ct",
    "cta",
    "mri",
    "mr",
    "mra",
    "ultrasound",
    "sonograph",
    "radiograph",
    "x-ray",
    "xray",
    "imaging",
    "biopsy",
    "correlation",
    "consult",
    "referral",
    "evaluation",
    "exam",
    "study",
    "comparison",
    "pet",
    "mammogra",
    "sampling",
    "dedicated",
    "nuclear",
    "scan",
    "surgical",
    "screening",
    "further",
];

/// Interval units and their length in hours ("repeat ultrasound in 48
/// hours" is 2 days).
const UNITS: &[(&str, u32)] = &[
    ("hours", 1),
    ("hour", 1),
    ("hrs", 1),
    ("days", 24),
    ("day", 24),
    ("weeks", 7 * 24),
    ("week", 7 * 24),
    ("wks", 7 * 24),
    ("wk", 7 * 24),
    ("months", 30 * 24),
    ("month", 30 * 24),
    ("years", YEAR_HOURS),
    ("year", YEAR_HOURS),
    ("yrs", YEAR_HOURS),
    ("yr", YEAR_HOURS),
    ("annually", YEAR_HOURS),
    ("annual", YEAR_HOURS),
    ("yearly", YEAR_HOURS),
];

const YEAR_HOURS: u32 = 365 * 24;

/// Number words an interval may be written with (`in one year`, `in a year`).
const NUMBER_WORDS: &[(&str, f64)] = &[
    ("a", 1.0),
    ("an", 1.0),
    ("one", 1.0),
    ("two", 2.0),
    ("three", 3.0),
    ("four", 4.0),
    ("five", 5.0),
    ("six", 6.0),
    ("seven", 7.0),
    ("eight", 8.0),
    ("nine", 9.0),
    ("ten", 10.0),
    ("eleven", 11.0),
    ("twelve", 12.0),
    ("eighteen", 18.0),
    ("twenty-four", 24.0),
];

/// Wording that makes a recommendation conditional or hedged: kept and
/// marked, so that a worklist does not read "could be considered" as an order.
const CONDITIONAL: &[&str] = &[
    "if clinically indicated",
    "if clinically warranted",
    "if clinically appropriate",
    "if clinically concerned",
    "if there is clinical concern",
    "if indicated",
    "if warranted",
    "if desired",
    "if needed",
    "if symptoms persist",
    "as clinically indicated",
    "as needed",
    "could be considered",
    "may be considered",
    "can be considered",
    "might be considered",
    "could be obtained",
    "could be performed",
    "may be helpful",
    "could be helpful",
    "would be helpful",
    "may be of value",
    "could be of value",
    "optional",
    "consider",
];

/// The words naming the procedure asked for, most specific first (a
/// "CT-guided biopsy" is a biopsy; "PET/CT" is PET).
const PROCEDURES: &[(&str, Procedure)] = &[
    ("biopsy", Procedure::Biopsy),
    ("tissue sampling", Procedure::Biopsy),
    ("fna", Procedure::Biopsy),
    ("pet", Procedure::Pet),
    ("mammogra", Procedure::Mammography),
    ("tomosynthesis", Procedure::Mammography),
    ("mri", Procedure::Mri),
    ("mra", Procedure::Mri),
    ("mr", Procedure::Mri),
    ("magnetic resonance", Procedure::Mri),
    ("cta", Procedure::Ct),
    ("ct", Procedure::Ct),
    ("computed tomography", Procedure::Ct),
    ("ultrasound", Procedure::Ultrasound),
    ("sonograph", Procedure::Ultrasound),
    ("us", Procedure::Ultrasound),
    ("doppler", Procedure::Ultrasound),
    ("radiograph", Procedure::Radiograph),
    ("x-ray", Procedure::Radiograph),
    ("xray", Procedure::Radiograph),
    ("film", Procedure::Radiograph),
    ("bone scan", Procedure::NuclearMedicine),
    ("scintigra", Procedure::NuclearMedicine),
    ("nuclear", Procedure::NuclearMedicine),
    ("imaging", Procedure::Imaging),
];

/// Words after an interval that make it a past time, not a follow-up.
const PAST_MARKERS: &[&str] = &["ago", "prior", "earlier", "old", "before", "previously"];

fn automaton(patterns: &[&str]) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .kind(Some(AhoCorasickKind::DFA))
        // The patterns start with common letters: a start-byte prefilter
        // would stop at most of them and cost more than the plain DFA walk.
        .prefilter(false)
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostLongest)
        .build(patterns)
        .unwrap_or_else(|error| panic!("constant pattern list: {error}"))
}

/// `ALWAYS`, `INSTRUCTION` and `UNITS` words in one case-insensitive regex:
/// one pass over the whole text finds the few sentences worth a closer look.
/// (The regex engine's SIMD literal prefilter scans prose several times
/// faster than a byte-at-a-time automaton; longest alternatives come first.)
static TRIGGER_MATCHER: LazyLock<Regex> = LazyLock::new(|| {
    let mut words: Vec<&str> = ALWAYS
        .iter()
        .chain(INSTRUCTION)
        .copied()
        .chain(UNITS.iter().map(|(word, _)| *word))
        .collect();
    words.sort_by_key(|word| std::cmp::Reverse(word.len()));
    let alternation: Vec<String> = words.iter().map(|word| regex::escape(word)).collect();
    Regex::new(&format!("(?i){}", alternation.join("|")))
        .unwrap_or_else(|error| panic!("constant pattern list: {error}"))
});
static ACTION_MATCHER: LazyLock<AhoCorasick> = LazyLock::new(|| automaton(ACTIONS));
static CONDITIONAL_MATCHER: LazyLock<AhoCorasick> = LazyLock::new(|| automaton(CONDITIONAL));
static PROCEDURE_MATCHER: LazyLock<AhoCorasick> =
    LazyLock::new(|| automaton(&PROCEDURES.iter().map(|(word, _)| *word).collect::<Vec<_>>()));
static UNIT_MATCHER: LazyLock<AhoCorasick> =
    LazyLock::new(|| automaton(&UNITS.iter().map(|(word, _)| *word).collect::<Vec<_>>()));

/// The recommendations among the layout's sentences, spans in bytes.
pub(crate) fn recommendations<'a>(text: &'a str, layout: &Layout<'a>) -> Vec<Recommendation<'a>> {
    let (Some(first), Some(last)) = (layout.sentences.first(), layout.sentences.last()) else {
        return Vec::new();
    };
    let triggers = triggers(text, first.start, last.end);
    let mut next_trigger = 0;
    layout
        .sentences
        .iter()
        .filter_map(|sentence| {
            // Triggers are sorted and do not overlap: those of this sentence
            // are a run of the list.
            while next_trigger < triggers.len() && triggers[next_trigger].start < sentence.start {
                next_trigger += 1;
            }
            let run = triggers[next_trigger..]
                .iter()
                .take_while(|trigger| trigger.end <= sentence.end)
                .count();
            let inside = &triggers[next_trigger..next_trigger + run];
            let kind = layout
                .sections
                .get(sentence.section)
                .map(|section| section.kind);
            // The request ("Follow-up of nodules" as the indication), the
            // technique and the comparison describe the past, not advice.
            let describes_request = matches!(
                kind,
                Some(SectionKind::Indication | SectionKind::Technique | SectionKind::Comparison)
            );
            let words = &text[sentence.start..sentence.end];
            let in_section =
                kind == Some(SectionKind::Recommendation) && !declines_follow_up(words);
            let recommends = in_section
                || (!describes_request && recommends_with(words, sentence.start, inside));
            recommends.then(|| {
                let range = interval(words);
                Recommendation {
                    text: words,
                    start: sentence.start,
                    end: sentence.end,
                    interval_days: range.map(|r| r.low_days),
                    interval_max_days: range.map(|r| r.high_days),
                    conditional: conditional_words(words),
                    procedure: procedure(words),
                    reasons: Vec::new(),
                }
            })
        })
        .collect()
}

/// A recommendation phrase or interval unit found in the text.
#[derive(Debug, Clone, Copy)]
struct Trigger {
    start: usize,
    end: usize,
    kind: TriggerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TriggerKind {
    /// From `ALWAYS`.
    Always,
    /// From `INSTRUCTION`.
    Instruction,
    /// From `UNITS`.
    Unit,
}

/// The triggers in `text[start..end]`, with offsets into `text`.
fn triggers(text: &str, start: usize, end: usize) -> Vec<Trigger> {
    let is_in =
        |list: &[&str], word: &str| list.iter().any(|listed| listed.eq_ignore_ascii_case(word));
    TRIGGER_MATCHER
        .find_iter(&text[start..end])
        .map(|m| {
            let word = m.as_str();
            let kind = if is_in(ALWAYS, word) {
                TriggerKind::Always
            } else if is_in(INSTRUCTION, word) {
                TriggerKind::Instruction
            } else {
                TriggerKind::Unit
            };
            Trigger {
                start: start + m.start(),
                end: start + m.end(),
                kind,
            }
        })
        .collect()
}

/// Whether `at` starts a word in `s`.
fn word_starts(s: &[u8], at: usize) -> bool {
    at == 0 || !s[at - 1].is_ascii_alphabetic()
}

fn word_ends(s: &[u8], at: usize) -> bool {
    at >= s.len() || !s[at].is_ascii_alphabetic()
}

/// Whether a sentence outside a recommendation section recommends something.
#[cfg(test)]
fn recommends(sentence: &str) -> bool {
    recommends_with(sentence, 0, &triggers(sentence, 0, sentence.len()))
}

/// Whether a sentence recommends something, given the triggers in it
/// (offsets into the text, where the sentence starts at `offset`).
fn recommends_with(sentence: &str, offset: usize, triggers: &[Trigger]) -> bool {
    let bytes = sentence.as_bytes();
    let mut has_interval = None;
    let recommends = triggers.iter().any(|trigger| {
        let (start, end) = (trigger.start - offset, trigger.end - offset);
        if trigger.kind == TriggerKind::Unit || !word_starts(bytes, start) {
            return false;
        }
        if denied_in_its_clause(sentence, start, end) {
            return false;
        }
        if trigger.kind == TriggerKind::Always {
            return true;
        }
        // Whole words only: "suggestive of" is a hedge.
        if !word_ends(bytes, end) {
            return false;
        }
        let imperative = sentence[..start].trim().is_empty();
        let word = &sentence[start..end];
        let is_suggest_or_consider =
            word.eq_ignore_ascii_case("suggest") || word.eq_ignore_ascii_case("consider");
        // "Cause not demonstrated; CT urogram suggested.": a study, then
        // "suggested" closing its clause.
        let suggested_study = word.eq_ignore_ascii_case("suggested")
            && sentence[end..]
                .trim_start()
                .chars()
                .next()
                .is_none_or(|c| matches!(c, '.' | ';' | ','))
            && asks_for_action(&sentence[..start]);
        imperative
            || suggested_study
            || (is_suggest_or_consider && asks_for_action(&sentence[end..]))
            || *has_interval.get_or_insert_with(|| interval_days(sentence).is_some())
    });
    let has_unit = || {
        triggers
            .iter()
            .any(|trigger| trigger.kind == TriggerKind::Unit)
    };
    recommends || (has_unit() && scheduled_follow_up(sentence))
}

/// Whether the clause of the trigger at `start..end` declines what it would
/// recommend: a "no" or "not" before it ("no follow-up imaging is
/// recommended"), or "not" and a word of need after it ("follow-up is not
/// required"). A clause after a comma or semicolon is another ("no acute
/// finding; clinical correlation recommended").
fn denied_in_its_clause(sentence: &str, start: usize, end: usize) -> bool {
    let is = |word: &str, options: &[&str]| options.iter().any(|o| word.eq_ignore_ascii_case(o));
    let before = &sentence[..start];
    let clause_start = before.rfind([',', ';', ':']).map_or(0, |i| i + 1);
    // A negation inside a condition states when to act: "if prior images
    // are not available, further evaluation with CT is recommended".
    // "and" or "but" opens another clause too: "fractures may not be
    // demonstrated and consider additional imaging".
    let clause_words: Vec<&str> = before[clause_start..]
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let own_clause = clause_words
        .iter()
        .rposition(|w| is(w, &["and", "but"]))
        .map_or(&clause_words[..], |at| &clause_words[at + 1..]);
    let denied_before = own_clause
        .iter()
        .take_while(|word| !is(word, &["if", "unless", "when", "should"]))
        .any(|word| is(word, &["no", "not", "nor"]));
    let after = &sentence[end..];
    let clause_end = after.find([',', ';', ':', '.']).unwrap_or(after.len());
    let mut words = after[..clause_end]
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .skip_while(|w| !is(w, &["not"]));
    let denied_after = words.next().is_some()
        && words.any(|w| {
            is(
                w,
                &[
                    "recommended",
                    "required",
                    "needed",
                    "necessary",
                    "indicated",
                    "warranted",
                    "advised",
                ],
            )
        });
    denied_before || denied_after
}

/// Whether a sentence of a recommendation section says that nothing needs
/// doing: "None.", "No follow-up required.", "No further imaging is
/// necessary."
fn declines_follow_up(sentence: &str) -> bool {
    let mut words = sentence
        .split(|c: char| !c.is_ascii_alphabetic() && c != '-')
        .filter(|w| !w.is_empty());
    let first = words.next().unwrap_or("");
    let is = |word: &str, options: &[&str]| options.iter().any(|o| word.eq_ignore_ascii_case(o));
    is(first, &["none", "nil"])
        || (is(first, &["no"])
            && words.any(|w| {
                is(
                    w,
                    &[
                        "follow-up",
                        "followup",
                        "further",
                        "imaging",
                        "required",
                        "needed",
                        "necessary",
                        "indicated",
                        "recommended",
                        "warranted",
                    ],
                )
            }))
}

/// The follow-up interval stated in `sentence`, in days: the lower bound of
/// a range (`6-12 months` → 180, `in 1 to 2 years` → 365).
pub(crate) fn interval_days(sentence: &str) -> Option<u32> {
    interval(sentence).map(|r| r.low_days)
}

/// An interval as stated: its bounds in days (equal for a single one) and
/// where its phrase (the first number) starts in the sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Interval {
    low_days: u32,
    high_days: u32,
    phrase_start: usize,
}

/// The conditional or hedging words of a recommendation, as written.
fn conditional_words(sentence: &str) -> Option<&str> {
    let bytes = sentence.as_bytes();
    CONDITIONAL_MATCHER
        .find_iter(sentence)
        .find(|m| word_starts(bytes, m.start()) && word_ends(bytes, m.end()))
        .map(|m| &sentence[m.start()..m.end()])
}

/// The most specific procedure the sentence names (whole words; a stem
/// such as "mammogra" may end inside a word): the one listed first in
/// `PROCEDURES`, wherever it stands ("CT-guided biopsy" is a biopsy).
fn procedure(sentence: &str) -> Option<Procedure> {
    let bytes = sentence.as_bytes();
    PROCEDURE_MATCHER
        .find_iter(sentence)
        .filter(|m| word_starts(bytes, m.start()))
        .filter(|m| {
            let word = PROCEDURES[m.pattern().as_usize()].0;
            word.ends_with("ogra") || word.ends_with("graph") || word_ends(bytes, m.end())
        })
        .map(|m| m.pattern().as_usize())
        .min()
        .map(|index| PROCEDURES[index].1)
}

/// Fills each recommendation's `reasons`: the findings stated (present or
/// possible) in its own sentence; else those of the nearest earlier
/// sentence that states any, outside the sections that describe the
/// request or the past. Findings are in text order, so each look-up is a
/// binary search plus the few findings of one sentence.
pub(crate) fn link_reasons(recommendations: &mut [Recommendation<'_>], findings: &[Finding<'_>]) {
    let counts = |f: &Finding<'_>| {
        f.assertion != Assertion::Absent
            && !matches!(
                f.section,
                SectionKind::Indication | SectionKind::Technique | SectionKind::Comparison
            )
    };
    for recommendation in recommendations.iter_mut() {
        let own: Vec<usize> = findings
            .iter()
            .enumerate()
            .skip(findings.partition_point(|f| f.start < recommendation.start))
            .take_while(|(_, f)| f.start < recommendation.end)
            .filter(|(_, f)| f.end <= recommendation.end && counts(f))
            .map(|(i, _)| i)
            .collect();
        if !own.is_empty() {
            recommendation.reasons = own;
            continue;
        }
        let before = findings.partition_point(|f| f.end <= recommendation.start);
        let Some(last) = (0..before).rev().find(|&i| counts(&findings[i])) else {
            continue;
        };
        let sentence = (findings[last].start, findings[last].end);
        let first = findings[..=last].partition_point(|f| f.start < sentence.0);
        recommendation.reasons = (first..=last)
            .filter(|&i| (findings[i].start, findings[i].end) == sentence && counts(&findings[i]))
            .collect();
    }
}

/// The first interval in `sentence`.
fn interval(sentence: &str) -> Option<Interval> {
    let bytes = sentence.as_bytes();
    UNIT_MATCHER.find_iter(sentence).find_map(|m| {
        if !word_ends(bytes, m.end())
            || (m.start() > 0 && bytes[m.start() - 1].is_ascii_alphabetic())
        {
            return None;
        }
        let unit_hours = UNITS[m.pattern().as_usize()].1;
        let next_word = sentence[m.end()..]
            .trim_start()
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("");
        if PAST_MARKERS
            .iter()
            .any(|past| past.eq_ignore_ascii_case(next_word))
        {
            return None;
        }
        let unit_word = &sentence[m.start()..m.end()];
        let standalone = ["annually", "annual", "yearly"]
            .iter()
            .any(|w| w.eq_ignore_ascii_case(unit_word));
        if standalone {
            return Some(Interval {
                low_days: unit_hours / 24,
                high_days: unit_hours / 24,
                phrase_start: m.start(),
            });
        }
        let (count, mut phrase_start) =
            number_before(sentence, skip_back(bytes, m.start(), b" -\t"))?;
        // "three times a day", "twice a week": a frequency of care, not when
        // to follow up.
        let word_before = sentence[..phrase_start]
            .split(|c: char| !c.is_ascii_alphabetic())
            .rfind(|w| !w.is_empty())
            .unwrap_or("");
        if ["times", "once", "twice", "per"]
            .iter()
            .any(|w| w.eq_ignore_ascii_case(word_before))
        {
            return None;
        }
        let mut low = count;
        // A range: `6-12 months`, `6 to 12 months`, `1 or 2 years`.
        let before = skip_back(bytes, phrase_start, b" \t");
        let connector = if before > 0 && bytes[before - 1] == b'-' {
            Some(before - 1)
        } else if sentence[..before].to_ascii_lowercase().ends_with(" to")
            || sentence[..before].to_ascii_lowercase().ends_with(" or")
        {
            Some(before - 2)
        } else if sentence[..before].ends_with('–') {
            Some(before - '–'.len_utf8())
        } else {
            None
        };
        if let Some(connector) = connector
            && let Some((low_bound, low_start)) =
                number_before(sentence, skip_back(bytes, connector, b" \t"))
        {
            low = count.min(low_bound);
            phrase_start = low_start;
        }
        let high = count.max(low);
        let low_days = days_of(low, unit_hours)?;
        let high_days = days_of(high, unit_hours)?;
        Some(Interval {
            low_days,
            high_days,
            phrase_start,
        })
    })
}

/// `count` units of `unit_hours` in whole days; `12 months` is a year (365
/// days), not 360.
fn days_of(count: f64, unit_hours: u32) -> Option<u32> {
    let hours = if unit_hours == 30 * 24 && count >= 12.0 && count % 12.0 == 0.0 {
        count / 12.0 * f64::from(YEAR_HOURS)
    } else {
        count * f64::from(unit_hours)
    };
    let days = (hours / 24.0).round();
    (days >= 0.0 && days <= f64::from(u32::MAX)).then_some(days as u32)
}

/// `Chest CT in 1 to 2 years.`: an imaging or action noun, then an interval
/// introduced by "in", "within" or "every", reads as a scheduled follow-up
/// even without "recommend". ("Stable for 2 years" has neither.)
/// Any interval of the sentence counts, not only the first: in "Annual
/// screening CT in 12 months" the "in 12 months" schedules the CT.
fn scheduled_follow_up(sentence: &str) -> bool {
    let bytes = sentence.as_bytes();
    let mut from = 0;
    while let Some(Interval { phrase_start, .. }) = sentence.get(from..).and_then(interval) {
        let phrase_start = from + phrase_start;
        let before = sentence[..phrase_start].trim_end();
        let introduced = ["in", "within", "every", "at", "after"].iter().any(|word| {
            before.len() >= word.len()
                && before
                    .get(before.len() - word.len()..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(word))
                && word_starts(before.as_bytes(), before.len() - word.len())
        });
        if introduced && asks_for_action(&sentence[..phrase_start]) {
            return true;
        }
        // On past this interval's first word.
        from = phrase_start
            + bytes[phrase_start..]
                .iter()
                .position(|&b| b == b' ')
                .map_or(sentence.len() - phrase_start, |i| i + 1);
    }
    false
}

/// Whether `text` names an imaging study or another follow-up action.
fn asks_for_action(text: &str) -> bool {
    let bytes = text.as_bytes();
    ACTION_MATCHER.find_iter(text).any(|action| {
        word_starts(bytes, action.start()) && (action.len() > 3 || word_ends(bytes, action.end()))
    })
}

fn skip_back(bytes: &[u8], mut at: usize, blanks: &[u8]) -> usize {
    while at > 0 && blanks.contains(&bytes[at - 1]) {
        at -= 1;
    }
    at
}

/// The number (digits or a number word) ending at `end`, and where it starts.
fn number_before(s: &str, end: usize) -> Option<(f64, usize)> {
    let bytes = s.as_bytes();
    let mut start = end;
    while start > 0 && (bytes[start - 1].is_ascii_digit() || bytes[start - 1] == b'.') {
        start -= 1;
    }
    if start < end {
        let value: f64 = s[start..end].trim_matches('.').parse().ok()?;
        return (start == 0 || !bytes[start - 1].is_ascii_alphabetic()).then_some((value, start));
    }
    while start > 0 && (bytes[start - 1].is_ascii_alphabetic() || bytes[start - 1] == b'-') {
        start -= 1;
    }
    let word = s[start..end].trim_start_matches('-');
    let start = end - word.len();
    NUMBER_WORDS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(word))
        .map(|&(_, value)| (value, start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::layout;
    use crate::sections::SectionTable;

    #[test]
    fn text_before_an_interval_may_end_in_any_character() {
        // The word before an interval is compared on char boundaries only.
        assert!(!scheduled_follow_up("\u{1FA80}0Wk\u{118A0}"));
        assert!(!scheduled_follow_up("é 2 weeks"));
    }

    #[test]
    fn any_interval_may_schedule_the_study() {
        // The first interval ("annual") is not introduced by "in"; the
        // second is.
        assert!(recommends("Annual screening CT in 12 months."));
        assert!(recommends("CT chest in 3 months."));
        assert!(!recommends("Stable for 2 years, annual growth 1 mm."));
        assert!(recommends("Return to annual screening mammography."));
        assert_eq!(
            interval_days("Return to annual screening mammography."),
            Some(365)
        );
    }

    #[test]
    fn intervals_take_the_lower_bound_in_days() {
        let cases = [
            ("Recommend CT in 6-12 months.", Some(180)),
            ("Follow-up in 1 year.", Some(365)),
            ("Repeat imaging in 3 months.", Some(90)),
            ("Chest radiograph in 6 weeks.", Some(42)),
            ("CT chest in 1 to 2 years.", Some(365)),
            ("A 6-month follow-up CT.", Some(180)),
            ("Follow-up in one year", Some(365)),
            ("Annual screening.", Some(365)),
            ("Ultrasound in 10 days", Some(10)),
            ("CT in 12 months", Some(365)),
            ("Suggest repeat ultrasound in 48 hours.", Some(2)),
            // A frequency of care is no interval; the follow-up after it is.
            (
                "Flush the drain three times a day; follow-up CT in 2 weeks.",
                Some(14),
            ),
            ("CT in 18 months", Some(540)),
            ("Ultrasound in 6–12 months", Some(180)),
            ("Recommend clinical correlation.", None),
            ("Compared with the study 2 years ago.", None),
            ("A 5 year old child.", None),
        ];
        for (sentence, days) in cases {
            assert_eq!(interval_days(sentence), days, "{sentence}");
        }
    }

    #[test]
    fn ranges_stay_ranges() {
        let bounds = |s: &str| interval(s).map(|r| (r.low_days, r.high_days));
        assert_eq!(bounds("Recommend CT in 6-12 months."), Some((180, 365)));
        assert_eq!(bounds("CT chest in 1 to 2 years."), Some((365, 730)));
        assert_eq!(bounds("Follow-up in 3 months."), Some((90, 90)));
        assert_eq!(bounds("Annual screening."), Some((365, 365)));
        assert_eq!(bounds("Recommend clinical correlation."), None);
    }

    #[test]
    fn conditional_wording_and_procedure_are_read() {
        let cases = [
            (
                "MRI could be considered if clinically indicated.",
                Some("could be considered"),
                Some(Procedure::Mri),
            ),
            (
                "Consider CT-guided biopsy.",
                Some("Consider"),
                Some(Procedure::Biopsy),
            ),
            ("Recommend chest CT in 3 months.", None, Some(Procedure::Ct)),
            (
                "Follow-up ultrasound in 6 weeks if symptoms persist.",
                Some("if symptoms persist"),
                Some(Procedure::Ultrasound),
            ),
            (
                "Recommend screening mammogram in 1 year.",
                None,
                Some(Procedure::Mammography),
            ),
            (
                "Follow-up ultrasound is advised.",
                None,
                Some(Procedure::Ultrasound),
            ),
            ("Recommend clinical correlation.", None, None),
            // "us" in a word is not ultrasound, "considerable" is not "consider"
            (
                "Recommend focused evaluation; considerable thus.",
                None,
                None,
            ),
        ];
        for (sentence, words, kind) in cases {
            assert_eq!(conditional_words(sentence), words, "{sentence}");
            assert_eq!(procedure(sentence), kind, "{sentence}");
        }
    }

    #[test]
    fn reasons_are_the_findings_the_recommendation_follows_from() {
        let lexicon = crate::shared_lexicon();
        let text = "INDICATION: Pulmonary nodule.\nIMPRESSION: 1. An 8 mm nodule in the right upper lobe. No pleural effusion. 2. Recommend CT chest in 6-12 months.";
        let out = crate::extract(text, lexicon);
        assert_eq!(out.recommendations.len(), 1, "{:?}", out.recommendations);
        let recommendation = &out.recommendations[0];
        let terms: Vec<&str> = recommendation
            .reasons
            .iter()
            .map(|&i| out.findings[i].term)
            .collect();
        assert_eq!(terms, ["nodule"]);
        assert_eq!(
            (
                recommendation.interval_days,
                recommendation.interval_max_days
            ),
            (Some(180), Some(365))
        );
        assert_eq!(recommendation.procedure, Some(Procedure::Ct));
    }

    #[test]
    fn recommendation_sentences() {
        for yes in [
            "Recommend short interval follow-up radiograph.",
            "Follow-up CT in 3 months is advised.",
            "Suggest MRI for further evaluation.",
            "Consider biopsy.",
            "Correlate clinically.",
            "MRI could be considered.",
            "Further evaluation with ultrasound is warranted.",
            "Follow-up chest radiograph in 6 weeks to document resolution.",
            "Chest CT in 1 to 2 years.",
            "Urgent surgical review.",
            "For discussion at the colorectal MDT.",
            "Results to be discussed at the breast MDT.",
            "Vascular clinic review in 6 weeks.",
            "Rescan for growth in 2 weeks suggested.",
            "Orthopaedic referral.",
            "Indeterminate 4 mm nodule; attention on next restaging CT.",
            "New 6 mm nodule, likely inflammatory; reassess on end-of-treatment PET-CT.",
            "Check chest radiograph has been requested.",
            "Cause not demonstrated; CT urogram suggested.",
            "No acute finding; clinical correlation is recommended.",
            "If no improvement, follow-up radiograph is recommended.",
            "If prior images are not available further evaluation with CT is recommended.",
            "Fractures may not be demonstrated and consider additional imaging if indicated.",
        ] {
            assert!(recommends(yes), "{yes}");
        }
        for no in [
            "Findings suggest pneumonia.",
            "The nodule is considered benign.",
            "On follow-up CT the nodule is stable.",
            "No pneumothorax.",
            "Suggestive of atelectasis.",
            "Nodule stable for 2 years.",
            "Unchanged from the CT 2 years ago.",
            "Discussed with the on-call surgical registrar at 21:10.",
            "Discussed at the vascular MDT.",
            "Reviewed with the prior study.",
            "The appearance on the prior CT suggested a cyst.",
            "Bosniak I renal cyst; no follow-up imaging is recommended.",
            "Follow-up of this lesion is not recommended.",
        ] {
            assert!(!recommends(no), "{no}");
        }
    }

    #[test]
    fn recommendation_section_sentences_all_count() {
        let table = SectionTable::builtin();
        let text = "INDICATION: Follow-up of nodule.\nIMPRESSION: 1. 8 mm nodule. Recommend CT in 6-12 months.\nRECOMMENDATION: Mammogram. Ultrasound in 1 year. No further imaging of the cyst is required.";
        let layout = layout(text, &table, SectionKind::Other);
        let found: Vec<(&str, Option<u32>)> = recommendations(text, &layout)
            .iter()
            .map(|r| (r.text, r.interval_days))
            .collect();
        assert_eq!(
            found,
            vec![
                ("Recommend CT in 6-12 months.", Some(180)),
                ("Mammogram.", None),
                ("Ultrasound in 1 year.", Some(365)),
            ]
        );
    }
}
