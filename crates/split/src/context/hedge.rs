//! Hedges: how sure a possible mention is and what kind of doubt it carries
//! ([`hedge_grade`]: stacked hedges, alternatives, conditional readings), the
//! hedge governing a pair of alternatives ([`pair_hedge`]), and whether a
//! linking hedge is itself negated ([`link_negated`]). Certainty follows the
//! radiology hedging lexicon (see [`Certainty`]).

use super::cues::Reach::{Both, Forward};
use super::cues::{CueHit, Polarity, ends_scope};
use crate::Certainty::{High, Moderate};
use crate::words::word_count;
use crate::{Certainty, Hedge};

/// The certainty and kind of a possible mention whose nearest hedge is
/// `hedge`. Four rules of hedged language refine the hedge's own grade:
/// - stacked hedges are as sure as the weakest, and of its kind: "may be
///   compatible with atelectasis" is a "may" (moderate), not a "compatible
///   with" (high);
/// - a probable diagnosis offered with an alternative ("concerning for
///   pneumonia or aspiration", "compatible with scarring or atelectasis") is
///   a two-item differential, like "A versus B": at most moderate, and of
///   kind alternative when the hedge stated a likelihood;
/// - a pair of alternatives under a weaker hedge ("may represent
///   atelectasis versus infiltrate", "question atelectasis versus
///   infiltrate") takes that hedge's kind;
/// - a probable reading on condition of the clinical picture ("in the
///   appropriate clinical setting, compatible with pneumonia") is moderate.
pub(super) fn hedge_grade(
    bytes: &[u8],
    cues: &[CueHit],
    hedge: &CueHit,
    (focus_start, focus_end): (usize, usize),
    others: &[(usize, usize)],
) -> (Certainty, Hedge) {
    // Stacked hedges lead up to the mention, with no other mention between
    // ("probable effusions and questionable edema": "questionable" is the
    // edema's).
    let reaches = |hit: &CueHit| match hit.cue.polarity {
        Some((Forward | Both, Polarity::Hedge | Polarity::Link)) if hit.end <= focus_start => {
            !ends_scope(bytes, cues, hit.end, focus_start)
                && !others
                    .iter()
                    .any(|&(s, e)| s >= hit.end && e <= focus_start)
        }
        _ => false,
    };
    // Certainty orders High < Moderate < Low: the weakest is the greatest;
    // on a tie the nearest hedge (last in the chain) names the kind.
    let weakest = cues
        .iter()
        .filter(|hit| reaches(hit))
        .chain(std::iter::once(hedge))
        .filter(|hit| hit.cue.certainty.is_some())
        .max_by_key(|hit| hit.cue.certainty)
        .unwrap_or(hedge);
    let certainty = weakest.cue.certainty.unwrap_or(Moderate);
    let kind = weakest.cue.hedge.unwrap_or(Hedge::Probability);
    let has_alternative = || {
        cues.iter().filter(|c| c.cue.alternative).any(|or| {
            if or.start >= hedge.end && or.end <= focus_start {
                true
            } else if or.start >= focus_end && hedge.end <= focus_start {
                // Right after the mention, before any other cue's clause.
                !ends_scope(bytes, cues, focus_end, or.start)
                    && !cues.iter().any(|c| {
                        c.cue.polarity.is_some() && c.start >= focus_end && c.end <= or.start
                    })
                    && word_count(&bytes[focus_end..or.start]) <= MAX_ALTERNATIVE_GAP_WORDS
            } else {
                false
            }
        })
    };
    let probable =
        |kind: Hedge, certainty: Certainty| kind == Hedge::Probability && certainty == High;
    if kind == Hedge::Alternative {
        return match pair_hedge(bytes, cues, focus_start, others) {
            Some(outer) if !probable(outer.0, outer.1) => (certainty.max(outer.1), outer.0),
            _ => (certainty, Hedge::Alternative),
        };
    }
    // A probable reading offered on condition of the clinical picture is no
    // more than an even chance.
    let conditional = cues.iter().filter(|c| c.cue.conditional).any(|c| {
        let (from, to) = if c.end <= focus_start {
            (c.end, focus_start)
        } else {
            (focus_end, c.start.max(focus_end))
        };
        !ends_scope(bytes, cues, from, to)
    });
    if certainty == High && conditional {
        return (Moderate, kind);
    }
    if certainty == High && has_alternative() {
        let kind = if probable(kind, certainty) {
            Hedge::Alternative
        } else {
            kind
        };
        return (Moderate, kind);
    }
    (certainty, kind)
}

/// The hedge governing a pair of alternatives the focus belongs to: the
/// nearest hedge before the focus in its clause with at most the focus's
/// partner between ("may represent atelectasis versus infiltrate").
fn pair_hedge(
    bytes: &[u8],
    cues: &[CueHit],
    focus_start: usize,
    others: &[(usize, usize)],
) -> Option<(Hedge, Certainty)> {
    cues.iter()
        .rev()
        .filter(|hit| {
            matches!(
                hit.cue.polarity,
                Some((Forward | Both, Polarity::Hedge | Polarity::Link))
            ) && !hit.cue.alternative
                && hit.end <= focus_start
        })
        .find(|hit| {
            let between = others
                .iter()
                .filter(|&&(s, e)| s >= hit.end && e <= focus_start)
                .count();
            !ends_scope(bytes, cues, hit.end, focus_start)
                && (between == 0
                    || between == 1
                        && cues.iter().any(|c| {
                            c.cue.alternative && c.start >= hit.end && c.end <= focus_start
                        }))
        })
        .and_then(|hit| Some((hit.cue.hedge?, hit.cue.certainty?)))
}

/// How many words may stand between a hedged mention and the "or" that
/// offers its alternative ("pneumonia in the right base or aspiration").
const MAX_ALTERNATIVE_GAP_WORDS: usize = 4;

/// Whether the nearest linking hedge before `focus_start` is itself under a
/// negation: "no focal opacity to suggest pneumonia". A "without" phrase
/// closed by a comma denies a feature of the observation, not the
/// observation the link reads: "a lesion without enhancement, compatible
/// with a cyst" offers a cyst.
pub(super) fn link_negated(bytes: &[u8], cues: &[CueHit], focus_start: usize) -> bool {
    let Some(link) = cues
        .iter()
        .rev()
        .find(|c| c.end <= focus_start && matches!(c.cue.polarity, Some((_, Polarity::Link))))
    else {
        return false;
    };
    // The nearest polarity cue before the link decides.
    cues.iter()
        .rev()
        .filter(|c| c.end <= link.start)
        .take_while(|c| !c.cue.terminates)
        .find_map(|c| match c.cue.polarity {
            // Chained links ("no line to suggest X or blunting to suggest Y")
            // pass the negation on.
            Some((Forward | Both, polarity)) if polarity != Polarity::Link => Some((polarity, c)),
            _ => None,
        })
        .is_some_and(|(polarity, negation)| {
            polarity == Polarity::Negate
                && !(bytes[negation.start..negation.end].eq_ignore_ascii_case(b"without")
                    && bytes[negation.end..link.end].contains(&b','))
                && !opens_after_comma(&bytes[negation.end..link.start])
        })
}

/// Whether a link opens right after a comma (at most one adverb between):
/// then it reads the whole statement before it, denial included, and is
/// not under that denial. "No intrauterine pregnancy, highly suspicious for
/// ectopic pregnancy" offers an ectopic pregnancy; "no residual
/// enhancement, consistent with complete resection" a complete resection.
/// A list ("no effusion, consolidation or mass to suggest malignancy") keeps
/// its denial: more than one word stands after its last comma.
fn opens_after_comma(between: &[u8]) -> bool {
    between
        .iter()
        .rposition(|&b| b == b',')
        .is_some_and(|comma| word_count(&between[comma + 1..]) <= 1)
}

#[cfg(test)]
mod tests {
    use crate::Certainty::{High, Low, Moderate};
    use crate::context::judge::tests::{assertion, judge_term};
    use crate::{Assertion, Certainty, Hedge};

    #[test]
    fn hedges_are_possible() {
        for (s, term) in [
            ("Pneumonia cannot be excluded.", "Pneumonia"),
            ("Cannot exclude pneumonia.", "pneumonia"),
            ("Cannot rule out a small pneumothorax.", "pneumothorax"),
            ("Mass is not excluded.", "Mass"),
            ("Opacity may represent atelectasis.", "atelectasis"),
            ("Likely atelectasis.", "atelectasis"),
            ("Atelectasis is likely.", "Atelectasis"),
            ("Probable pneumonia.", "pneumonia"),
            ("Possible small effusion.", "effusion"),
            ("Questionable nodule.", "nodule"),
            ("A small effusion is questionable.", "effusion"),
            ("Findings suspicious for malignancy.", "malignancy"),
            ("Opacity concerning for pneumonia.", "pneumonia"),
            ("Differential includes infection.", "infection"),
            ("Atelectasis versus pneumonia.", "pneumonia"),
            ("Atelectasis versus pneumonia.", "Atelectasis"),
            ("No effusion, possible atelectasis.", "atelectasis"),
        ] {
            assert_eq!(assertion(s, term), Assertion::Possible, "{s} / {term}");
        }
    }

    #[test]
    fn a_denied_feature_does_not_deny_the_reading() {
        // "without X," denies a feature of the observation; the reading the
        // link offers for the observation stands. Without the comma the
        // negation still passes on ("no opacity to suggest pneumonia").
        assert_eq!(
            assertion(
                "A 6 mm lesion without enhancement, compatible with a cyst.",
                "cyst"
            ),
            Assertion::Present
        );
        assert_eq!(
            assertion("No focal opacity to suggest pneumonia.", "pneumonia"),
            Assertion::Absent
        );
    }

    #[test]
    fn a_link_after_a_comma_reads_the_denial_rather_than_falling_under_it() {
        assert_eq!(
            assertion(
                "Left adnexal mass and no intrauterine gestation, highly suspicious for tubal ectopic pregnancy.",
                "ectopic pregnancy"
            ),
            Assertion::Possible
        );
        assert_eq!(
            assertion(
                "No residual nodular enhancement, consistent with gross total resection.",
                "gross total resection"
            ),
            Assertion::Present
        );
        // A denied list before the link keeps its denial.
        assert_eq!(
            assertion(
                "No effusion, consolidation or mass to suggest malignancy.",
                "malignancy"
            ),
            Assertion::Absent
        );
    }

    #[test]
    fn an_adjectival_hedge_scopes_its_own_noun_phrase() {
        // LABELLING: a hedge scopes only its own target; "or" offers
        // alternatives, which share it.
        fn findings(text: &str) -> Vec<(&str, Assertion)> {
            crate::extract(text, crate::shared_lexicon())
                .findings
                .into_iter()
                .map(|f| (f.term, f.assertion))
                .collect()
        }
        let got = findings("IMPRESSION: Probable left endometrioma and left hydrosalpinx.");
        assert_eq!(
            got,
            [
                ("endometrioma", Assertion::Possible),
                ("hydrosalpinx", Assertion::Present)
            ]
        );
        let got = findings("IMPRESSION: Possible pneumonia or atelectasis.");
        assert!(
            got.iter().all(|(_, a)| *a == Assertion::Possible),
            "{got:?}"
        );
        let got = findings("IMPRESSION: The differential includes round pneumonia and mass.");
        assert!(
            got.iter().all(|(_, a)| *a == Assertion::Possible),
            "{got:?}"
        );
    }

    fn certainty(sentence: &str, term: &str) -> (Assertion, Option<Certainty>) {
        let j = judge_term(sentence, term);
        (j.assertion, j.certainty)
    }

    #[test]
    fn near_certain_phrases_assert_and_unlikely_negates() {
        // "Compatible with" and "most consistent with" state the reading the
        // images support, as "consistent with" does; offered with an
        // alternative they hedge (see the alternatives test).
        for s in [
            "Opacity consistent with pneumonia.",
            "Findings in keeping with pneumonia.",
            "Opacity compatible with pneumonia.",
            "Findings most consistent with pneumonia.",
            "Most compatible with pneumonia.",
        ] {
            assert_eq!(certainty(s, "pneumonia"), (Assertion::Present, None), "{s}");
        }
        assert_eq!(
            certainty("Opacity may be compatible with pneumonia.", "pneumonia"),
            (Assertion::Possible, Some(Certainty::Moderate))
        );
        assert_eq!(
            certainty("Pneumonia is unlikely.", "Pneumonia"),
            (Assertion::Absent, None)
        );
    }

    #[test]
    fn probable_hedges_are_high() {
        for (s, term) in [
            ("Opacity suspicious for pneumonia.", "pneumonia"),
            ("Probably atelectasis.", "atelectasis"),
            ("Probable pneumonia.", "pneumonia"),
            ("Likely atelectasis.", "atelectasis"),
            ("Atelectasis is likely.", "Atelectasis"),
            ("Opacity concerning for pneumonia.", "pneumonia"),
            ("Opacity suggestive of pneumonia.", "pneumonia"),
        ] {
            assert_eq!(
                certainty(s, term),
                (Assertion::Possible, Some(Certainty::High)),
                "{s}"
            );
        }
    }

    #[test]
    fn even_chance_hedges_are_moderate() {
        for (s, term) in [
            ("Possibly atelectasis.", "atelectasis"),
            ("Possible small effusion.", "effusion"),
            ("Opacity may represent atelectasis.", "atelectasis"),
            ("Questionable nodule.", "nodule"),
            ("Cannot exclude pneumonia.", "pneumonia"),
            ("Cannot rule out a small pneumothorax.", "pneumothorax"),
            ("Atelectasis versus pneumonia.", "pneumonia"),
            ("Atelectasis versus pneumonia.", "Atelectasis"),
            ("Rule out pneumothorax.", "pneumothorax"),
            ("Nodule is a possibility.", "Nodule"),
        ] {
            assert_eq!(
                certainty(s, term),
                (Assertion::Possible, Some(Certainty::Moderate)),
                "{s}"
            );
        }
    }

    #[test]
    fn less_likely_hedges_are_low() {
        for (s, term) in [
            ("Pneumonia is less likely.", "Pneumonia"),
            ("Less likely pneumonia.", "pneumonia"),
            ("Pneumonia cannot be excluded.", "Pneumonia"),
            ("Mass is not excluded.", "Mass"),
            ("A small effusion is not entirely excluded.", "effusion"),
            ("Differential includes infection.", "infection"),
        ] {
            assert_eq!(
                certainty(s, term),
                (Assertion::Possible, Some(Certainty::Low)),
                "{s}"
            );
        }
    }

    #[test]
    fn hedges_after_a_list_and_run_together_maybe_are_moderate() {
        for (s, term) in [
            ("Aspiration or edema are also possible.", "edema"),
            ("Effusion is also possible.", "effusion"),
            ("Cardiomegaly and effusion are possible.", "cardiomegaly"),
            ("Perhaps a small left effusion.", "effusion"),
            // "due to" alone ends a scope; "maybe due to" is one hedge.
            ("Maybe due to fibrosis or atelectasis.", "atelectasis"),
            ("Maybe secondary to atelectasis.", "atelectasis"),
        ] {
            assert_eq!(
                certainty(s, term),
                (Assertion::Possible, Some(Certainty::Moderate)),
                "{s}"
            );
        }
    }

    #[test]
    fn stacked_hedges_take_the_weakest_and_alternatives_are_moderate() {
        for (s, term) in [
            ("Opacity may be compatible with atelectasis.", "atelectasis"),
            (
                "Opacity concerning for pneumonia or aspiration.",
                "pneumonia",
            ),
            (
                "Opacities suggestive of scarring or atelectasis.",
                "atelectasis",
            ),
            ("Likely atelectasis or pneumonia.", "pneumonia"),
        ] {
            assert_eq!(
                certainty(s, term),
                (Assertion::Possible, Some(Certainty::Moderate)),
                "{s}"
            );
        }
        assert_eq!(
            certainty("Possibly pneumonia, less likely edema.", "edema"),
            (Assertion::Possible, Some(Certainty::Low))
        );
        assert_eq!(
            certainty(
                "Opacity, likely atelectasis, without effusion or pneumothorax.",
                "atelectasis"
            ),
            (Assertion::Possible, Some(Certainty::High))
        );
    }

    #[test]
    fn certainty_is_none_unless_possible() {
        for (s, term) in [
            ("Small left pleural effusion.", "effusion"),
            ("No pneumothorax.", "pneumothorax"),
            ("No opacity to suggest pneumonia.", "pneumonia"),
        ] {
            assert_eq!(certainty(s, term).1, None, "{s}");
        }
    }

    #[test]
    fn hedges_name_their_kind_and_pairs_take_a_weaker_governing_hedge() {
        use Hedge::{Alternative, Differential, Exclusion, Probability, Question, Suspicion};
        let graded = |s: &str, term: &str| {
            let j = judge_term(s, term);
            assert_eq!(j.assertion, Assertion::Possible, "{s} / {term}");
            (j.certainty, j.hedge)
        };
        let cases = [
            ("Probable pneumonia.", "pneumonia", High, Probability),
            (
                "Opacity, likely atelectasis.",
                "atelectasis",
                High,
                Probability,
            ),
            (
                "Opacity concerning for pneumonia.",
                "pneumonia",
                High,
                Suspicion,
            ),
            ("Opacity suggestive of edema.", "edema", High, Suspicion),
            // The leading diagnosis, not a suspicion raised.
            (
                "Opacities most suggestive of edema.",
                "edema",
                High,
                Probability,
            ),
            (
                "Atelectasis versus scarring.",
                "atelectasis",
                Moderate,
                Alternative,
            ),
            (
                "Opacity, scarring versus atelectasis.",
                "atelectasis",
                Moderate,
                Alternative,
            ),
            // A probable reading offered with an alternative is a pair.
            (
                "Opacity compatible with scarring or atelectasis.",
                "atelectasis",
                Moderate,
                Alternative,
            ),
            (
                "Most compatible with atelectasis versus pneumonia.",
                "pneumonia",
                Moderate,
                Alternative,
            ),
            // A suspicion stays one, however many alternatives it names.
            (
                "Opacity suggestive of scarring or atelectasis.",
                "atelectasis",
                Moderate,
                Suspicion,
            ),
            (
                "Opacity suggestive of atelectasis versus pneumonia.",
                "pneumonia",
                Moderate,
                Suspicion,
            ),
            // A pair under a weaker hedge takes that hedge's kind.
            (
                "Opacity may represent atelectasis versus pneumonia.",
                "pneumonia",
                Moderate,
                Probability,
            ),
            (
                "Opacity may represent atelectasis versus pneumonia.",
                "atelectasis",
                Moderate,
                Probability,
            ),
            (
                "Question left atelectasis versus pneumonia.",
                "pneumonia",
                Moderate,
                Question,
            ),
            (
                "Question left atelectasis versus pneumonia.",
                "atelectasis",
                Moderate,
                Question,
            ),
            (
                "Differential includes atelectasis versus pneumonia.",
                "pneumonia",
                Low,
                Differential,
            ),
            (
                "Pneumothorax cannot be excluded.",
                "Pneumothorax",
                Low,
                Exclusion,
            ),
            (
                "Cannot exclude pneumothorax.",
                "pneumothorax",
                Moderate,
                Exclusion,
            ),
            (
                "A small effusion is questionable.",
                "effusion",
                Moderate,
                Question,
            ),
            // Holds only if the clinical picture fits.
            (
                "In the appropriate clinical setting, this is compatible with pneumonia.",
                "pneumonia",
                Moderate,
                Probability,
            ),
        ];
        for (sentence, term, certainty, kind) in cases {
            assert_eq!(
                graded(sentence, term),
                (Some(certainty), Some(kind)),
                "{sentence} / {term}"
            );
        }
        assert_eq!(
            graded(
                "In the appropriate clinical setting, the left opacity is compatible with pneumonia.",
                "pneumonia"
            ),
            (Some(Moderate), Some(Probability))
        );
        // What is seen stays seen.
        for (sentence, term) in [
            (
                "Left basilar opacity, atelectasis versus aspiration.",
                "opacity",
            ),
            (
                "In the appropriate clinical setting, the left opacity is compatible with pneumonia.",
                "opacity",
            ),
        ] {
            let extraction = crate::extract(sentence, crate::shared_lexicon());
            let finding = extraction
                .findings
                .iter()
                .find(|f| f.term == term)
                .expect("term found");
            assert_eq!(
                (finding.assertion, finding.hedge),
                (Assertion::Present, None),
                "{sentence}"
            );
        }
        assert_eq!(judge_term("No pneumothorax.", "pneumothorax").hedge, None);
        assert_eq!(judge_term("Small effusion.", "effusion").hedge, None);
    }
}
