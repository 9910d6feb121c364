//! Addenda that correct a side: "ADDENDUM: The nodule is in the LEFT upper
//! lobe, not the right." The addendum overrides what it corrects, so the
//! corrected findings carry the addendum's side, and the laterality
//! discrepancy the error made between Findings and Impression is resolved
//! before discrepancies are looked for (it is not raised).
//!
//! A sentence of an addendum section corrects a side when it names one side
//! as the right one and:
//! - says so in words ("should read left", "not the right", "rather than
//!   right", "changed from right to left", "corrected", "error", or a
//!   section titled CORRECTION); it then corrects the findings it names, or,
//!   naming none ("'Right' in the impression should read 'left'"), every
//!   finding of the report on the other side; or
//! - restates a finding of the report on the other side only (the brief's
//!   "ADDENDUM: the nodule is in the LEFT upper lobe" when the report says
//!   right lower lobe nodule and no left one), unless it says the finding is
//!   new or additional ("also", "additional", "new", "further"...): then it
//!   is a finding of its own, not a correction.
//!
//! Pure, and linear in the addendum: each correcting sentence walks the
//! findings once.

use crate::layout::Sentence;
use crate::{Assertion, Finding, Laterality, Section, SectionKind};

/// Applies every side correction of the report's addenda to `findings`
/// (byte offsets, before they become char offsets). `concepts[i]` is the
/// concept of `findings[i]`.
pub(crate) fn correct_sides(
    text: &str,
    sections: &[Section<'_>],
    sentences: &[Sentence],
    findings: &mut [Finding<'_>],
    concepts: &[u32],
) {
    for sentence in sentences {
        let Some(section) = sections.get(sentence.section) else {
            continue;
        };
        if section.kind != SectionKind::Addendum {
            continue;
        }
        let Some(words) = text.get(sentence.start..sentence.end) else {
            continue;
        };
        let titled_correction = section
            .title
            .is_some_and(|title| title.to_ascii_lowercase().contains("correct"));
        let Some(correction) = Correction::read(words, titled_correction) else {
            continue;
        };
        let in_sentence =
            |f: &Finding<'_>| sentence.start <= f.term_start && f.term_start < sentence.end;
        let mut named: Vec<u32> = findings
            .iter()
            .zip(concepts)
            .filter(|(f, _)| in_sentence(f) && f.assertion != Assertion::Absent)
            .map(|(_, &concept)| concept)
            .collect();
        named.sort_unstable();
        named.dedup();
        if named.is_empty() && !correction.explicit {
            continue;
        }
        let corrects = |concept: u32| named.is_empty() || named.binary_search(&concept).is_ok();
        // Whether a section of the report states the concept on this side.
        let stated_on =
            |side: Laterality, concept: u32, section: SectionKind, findings: &[Finding<'_>]| {
                findings.iter().zip(concepts).any(|(f, &c)| {
                    c == concept
                        && f.section == section
                        && f.assertion != Assertion::Absent
                        && f.laterality == Some(side)
                })
            };
        let mut corrected = Vec::new();
        for index in 0..findings.len() {
            let (finding, concept) = (&findings[index], concepts[index]);
            if finding.section == SectionKind::Addendum
                || finding.laterality != Some(correction.from)
                || !corrects(concept)
            {
                continue;
            }
            // Without words saying it corrects, a concept one section states on
            // both sides (two lesions, one each side) is ambiguous: leave it.
            // Both sides in different sections is the error being corrected.
            if !correction.explicit && stated_on(correction.to, concept, finding.section, findings)
            {
                continue;
            }
            corrected.push(index);
        }
        if corrected.is_empty() {
            continue;
        }
        for index in corrected {
            findings[index].laterality = Some(correction.to);
        }
        for finding in findings.iter_mut().filter(|f| in_sentence(f)) {
            if finding.laterality.is_some() || finding.assertion != Assertion::Absent {
                finding.laterality = Some(correction.to);
            }
        }
    }
}

/// One sentence's correction: the side it says is right, the side it
/// replaces, and whether it says in words that it corrects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Correction {
    to: Laterality,
    from: Laterality,
    explicit: bool,
}

/// Words just before a side that mark it as the wrong one.
const WRONG_SIDE_BEFORE: &[&str] = &[
    "not",
    "than",
    "instead",
    "from",
    "word",
    "erroneously",
    "incorrectly",
    "mistakenly",
];
/// Words just before a side that mark it as the right one.
const RIGHT_SIDE_BEFORE: &[&str] = &["read", "reads", "be", "to"];
/// Words that say a sentence corrects something.
const CORRECTING: &[&str] = &[
    "correction",
    "corrected",
    "correct",
    "incorrect",
    "incorrectly",
    "error",
    "erroneous",
    "erroneously",
    "mistake",
    "mistakenly",
    "should",
    "read",
    "reads",
    "changed",
];
/// Words that say an addendum adds a finding rather than correcting one.
const ADDING: &[&str] = &[
    "also",
    "additional",
    "additionally",
    "another",
    "new",
    "further",
    "incidental",
    "incidentally",
];

impl Correction {
    fn read(sentence: &str, titled_correction: bool) -> Option<Correction> {
        let words: Vec<String> = sentence
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        let side_of = |word: &str| match word {
            "left" => Some(Laterality::Left),
            "right" => Some(Laterality::Right),
            _ => None,
        };
        // The nearest marker among the three words before a side decides its
        // role ("from right to left": "right" is the wrong side, "left" the right one).
        let marker = |at: usize| {
            words[at.saturating_sub(3)..at].iter().rev().find_map(|w| {
                if WRONG_SIDE_BEFORE.contains(&w.as_str()) {
                    Some(false)
                } else if RIGHT_SIDE_BEFORE.contains(&w.as_str()) {
                    Some(true)
                } else {
                    None
                }
            })
        };
        let (mut wrong, mut right, mut plain) = (None, None, None);
        let agree = |slot: &mut Option<Option<Laterality>>, side: Laterality| {
            *slot = match *slot {
                None => Some(Some(side)),
                Some(Some(seen)) if seen == side => Some(Some(side)),
                // Both sides in the same role: no single reading.
                Some(_) => Some(None),
            };
        };
        for (at, word) in words.iter().enumerate() {
            let Some(side) = side_of(word) else { continue };
            match marker(at) {
                Some(false) => agree(&mut wrong, side),
                Some(true) => agree(&mut right, side),
                None => agree(&mut plain, side),
            }
        }
        let wrong = wrong.flatten();
        let to = match (right, plain) {
            (Some(right), _) => right?,
            (None, Some(plain)) => plain?,
            (None, None) => return None,
        };
        let from = wrong.unwrap_or(match to {
            Laterality::Left => Laterality::Right,
            _ => Laterality::Left,
        });
        if from == to {
            return None;
        }
        let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
        // "to" or "be" alone ("secondary to left...") say nothing of a correction.
        let explicit = titled_correction || wrong.is_some() || has(CORRECTING);
        if !explicit && has(ADDING) {
            return None;
        }
        Some(Correction { to, from, explicit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{extract, shared_lexicon};

    fn read(sentence: &str) -> Option<Correction> {
        Correction::read(sentence, false)
    }

    #[test]
    fn the_phrasings_of_a_side_correction_are_read() {
        use Laterality::{Left, Right};
        let explicit = |to, from| {
            Some(Correction {
                to,
                from,
                explicit: true,
            })
        };
        assert_eq!(
            read("The nodule is in the LEFT upper lobe."),
            Some(Correction {
                to: Left,
                from: Right,
                explicit: false
            })
        );
        assert_eq!(
            read("The effusion is on the left, not the right."),
            explicit(Left, Right)
        );
        assert_eq!(
            read("The impression should read left pleural effusion."),
            explicit(Left, Right)
        );
        assert_eq!(
            read("'Right' in the impression should read 'left'."),
            explicit(Left, Right)
        );
        assert_eq!(read("Changed from right to left."), explicit(Left, Right));
        assert_eq!(
            read("Left kidney, rather than right."),
            explicit(Left, Right)
        );
        assert_eq!(
            read("The fracture is right sided, not left."),
            explicit(Right, Left)
        );
    }

    #[test]
    fn sentences_that_correct_nothing_are_not_read_as_corrections() {
        assert_eq!(read("Discussed with Dr. XXXX on 05/02."), None);
        assert_eq!(read("Also noted is a small left renal cyst."), None);
        assert_eq!(read("Bilateral effusions, left and right."), None);
    }

    #[test]
    fn an_addendum_restating_the_other_side_corrects_and_resolves_the_discrepancy() {
        let lexicon = shared_lexicon();
        let text = "FINDINGS: 6 mm nodule in the right upper lobe.\nIMPRESSION: Left upper lobe nodule.\n\nADDENDUM: The nodule is in the LEFT upper lobe.";
        let sides = |out: &crate::Extraction<'_>| {
            out.discrepancies
                .iter()
                .filter(|d| d.kind == crate::DiscrepancyKind::Laterality)
                .count()
        };
        let out = extract(text, lexicon);
        assert_eq!(sides(&out), 0, "{:?}", out.discrepancies);
        assert!(
            out.findings
                .iter()
                .filter(|f| f.term.to_ascii_lowercase().contains("nodule"))
                .all(|f| f.laterality == Some(Laterality::Left)),
            "{:?}",
            out.findings
        );
        // Without the addendum the discrepancy is there.
        let before = text.split("\n\nADDENDUM").next().unwrap();
        assert_eq!(sides(&extract(before, lexicon)), 1);
    }

    #[test]
    fn an_addendum_about_another_finding_changes_nothing() {
        let lexicon = shared_lexicon();
        let text = "FINDINGS: Right pleural effusion.\nIMPRESSION: Right pleural effusion.\n\nADDENDUM: Also noted is a left renal cyst.";
        let out = extract(text, lexicon);
        let effusions: Vec<_> = out
            .findings
            .iter()
            .filter(|f| f.term.to_ascii_lowercase().contains("effusion"))
            .map(|f| f.laterality)
            .collect();
        assert_eq!(
            effusions,
            [Some(Laterality::Right), Some(Laterality::Right)]
        );
    }
}
