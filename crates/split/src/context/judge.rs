//! The judge: which cues reach a mention (forward, backward or both, within
//! their scope), the nearest one deciding its assertion and temporality, and
//! the change and side local to the mention ([`nearest_local`]). Hedged
//! mentions are graded by [`super::hedge`]; sides not stated next to the
//! mention come from [`super::side`].

use super::cues::Reach::{Backward, Both, Forward};
use super::cues::{CueHit, Polarity, Reach, ends_scope};
use super::hedge::{hedge_grade, link_negated};
use super::side::{
    compared_against, direction_after, direction_before, inherited_side, is_shift, opens_another,
    opens_its_place,
};
use crate::Certainty::High;
use crate::words::word_count;
use crate::{Assertion, Certainty, Change, Hedge, Laterality, Temporality};

/// What the context says about one mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Judgement {
    pub(crate) assertion: Assertion,
    pub(crate) temporality: Temporality,
    pub(crate) change: Option<Change>,
    pub(crate) laterality: Option<Laterality>,
    /// A shift ("midline shift", "herniation") whose side is its stated
    /// direction ("leftward midline shift", "shift to the right"): the side
    /// it has though the midline has none.
    pub(crate) directed_shift: bool,
    /// The certainty of the hedge that made the mention possible.
    pub(crate) certainty: Option<Certainty>,
    /// The kind of that hedge.
    pub(crate) hedge: Option<Hedge>,
}

/// Whether a "with" opens a list of alternatives ("no suspicious nodule
/// with microcalcification or extrathyroidal extension"): the features are
/// denied with the nodule. A "with" before one feature ("no cardiomegaly
/// with small effusions") still starts a statement of its own.
fn with_lists_alternatives(bytes: &[u8], cue: &CueHit) -> bool {
    if !bytes[cue.start..cue.end].eq_ignore_ascii_case(b"with") {
        return false;
    }
    let clause = &bytes[cue.end..];
    let clause = &clause[..clause
        .iter()
        .position(|b| matches!(b, b'.' | b';' | b':' | b','))
        .unwrap_or(clause.len())];
    clause.windows(4).any(|w| w.eq_ignore_ascii_case(b" or "))
}

/// A forward negation reaches at most this many words: far enough for a
/// list ("no focal consolidation, pleural effusion, or pneumothorax"), not
/// so far that it swallows the next clause.
const MAX_NEGATION_WORDS: usize = 12;

/// How many words may stand between a two-way cue and the mention it
/// modifies ("questionable small interstitial edema").
const MODIFIER_WORDS: usize = 2;

/// Judges the mention whose focus is `text[focus_start..focus_end]`, given
/// the sentence's cues (from
/// [`Words::scan_cues`](crate::lexicon::Words::scan_cues)) and the
/// starts/ends of the other mentions of the sentence (`others`, used to keep
/// laterality and change local to their own mention).
pub(crate) fn judge(
    text: &str,
    cues: &[CueHit],
    focus_start: usize,
    focus_end: usize,
    others: &[(usize, usize)],
) -> Judgement {
    let bytes = text.as_bytes();
    let terminated = |from: usize, to: usize| ends_scope(bytes, cues, from, to);
    let negation_ended = |from: usize, to: usize| {
        cues.iter().any(|c| {
            c.cue.ends_negation
                && c.start >= from
                && c.end <= to
                && !with_lists_alternatives(bytes, c)
        })
    };
    // Nearest cue (by byte gap) of each kind that reaches the focus.
    let reaches = |reach: Reach, hit: &CueHit| -> Option<usize> {
        if hit.end <= focus_start && matches!(reach, Forward | Both) {
            (!terminated(hit.end, focus_start)).then_some(focus_start - hit.end)
        } else if hit.start >= focus_end && matches!(reach, Backward | Both) {
            // A two-way cue right before another mention is that mention's
            // modifier: in "probable effusions and questionable edema" the
            // doubt is the edema's.
            let modifies_next = reach == Both
                && !hit.cue.alternative
                && others.iter().any(|&(s, _)| {
                    s >= hit.end
                        && word_count(&bytes[hit.end..s]) <= MODIFIER_WORDS
                        && !terminated(hit.end, s)
                });
            // "Versus" looks back to its first alternative only: in "left
            // basilar opacity, atelectasis versus aspiration" the opacity is
            // seen.
            let past_its_alternative = hit.cue.alternative
                && others
                    .iter()
                    .any(|&(s, e)| s >= focus_end && e <= hit.start);
            // A cue after a trailing "with ..." phrase is about that phrase:
            // in "joint effusion with lipohemarthrosis suspected" the
            // effusion is seen.
            let past_with = negation_ended(focus_end, hit.start);
            // A cue after another finding that has its own verb is that
            // finding's clause: in "the mass has decreased ..., and its
            // uptake has resolved" the mass is there.
            let past_own_clause = others
                .iter()
                .any(|&(s, e)| s >= focus_end && e <= hit.start && has_verb(&bytes[focus_end..s]));
            (!modifies_next
                && !past_its_alternative
                && !past_with
                && !past_own_clause
                && !terminated(focus_end, hit.start))
            .then_some(hit.start - focus_end)
        } else {
            None
        }
    };
    let mut polarity: Option<(usize, Polarity, &CueHit)> = None;
    // An affirmation only blocks a negation: in "possible stable nodule" the
    // nearest hedge further away still governs.
    let mut hedge: Option<(usize, Polarity, &CueHit)> = None;
    let mut temporality: Option<(usize, Temporality)> = None;
    for hit in cues {
        if let Some((reach, effect)) = hit.cue.polarity
            && let Some(gap) = reaches(reach, hit)
            && !(hit.cue.persists && negated_itself(bytes, cues, hit, others))
            && !(matches!(effect, Polarity::Hedge | Polarity::Link)
                && modifies_a_conjoined_neighbour(bytes, hit, focus_start, others))
        {
            if polarity.is_none_or(|(best, _, _)| gap < best)
                && !(effect == Polarity::Negate
                    && hit.end <= focus_start
                    && (word_count(&bytes[hit.end..focus_start]) > MAX_NEGATION_WORDS
                        || negation_ended(hit.end, focus_start)))
            {
                polarity = Some((gap, effect, hit));
            }
            if matches!(effect, Polarity::Hedge | Polarity::Link)
                && hedge.is_none_or(|(best, _, _)| gap < best)
            {
                hedge = Some((gap, effect, hit));
            }
        }
        if let Some((reach, when)) = hit.cue.temporality
            && let Some(gap) = reaches(reach, hit)
            && temporality.is_none_or(|(best, _)| gap < best)
        {
            temporality = Some((gap, when));
        }
    }
    if let Some((_, Polarity::Affirm, _)) = polarity {
        polarity = hedge.or(polarity);
    }
    let (assertion, grade) = match polarity {
        Some((_, Polarity::Negate, _)) => (Assertion::Absent, None),
        Some((_, Polarity::Link, _)) if link_negated(bytes, cues, focus_start) => {
            (Assertion::Absent, None)
        }
        Some((_, Polarity::Hedge | Polarity::Link, hedge)) => {
            let grade = hedge_grade(bytes, cues, hedge, (focus_start, focus_end), others);
            if hedge.cue.asserts && grade == (High, Hedge::Probability) {
                (Assertion::Present, None)
            } else {
                (Assertion::Possible, Some(grade))
            }
        }
        Some((_, Polarity::Affirm, _)) | None => (Assertion::Present, None),
    };
    let direction = direction_after(bytes, cues, focus_end, others)
        .or_else(|| direction_before(bytes, cues, focus_start));
    let shift = is_shift(&bytes[focus_start..focus_end]);
    Judgement {
        assertion,
        temporality: temporality.map_or(Temporality::Current, |(_, t)| t),
        change: nearest_local(bytes, cues, focus_start, focus_end, others, true, |c| {
            c.cue.change
        })
        .or_else(|| change_over_a_list(bytes, cues, focus_start, others)),
        directed_shift: shift && direction.is_some(),
        // A finding with no side of its own takes the side of the observation
        // it explains: "left basilar opacity compatible with atelectasis".
        laterality: direction
            .or_else(|| {
                nearest_local(bytes, cues, focus_start, focus_end, others, false, |c| {
                    c.cue
                        .side
                        .filter(|_| !c.cue.direction && !compared_against(bytes, c))
                })
                .map(|side| {
                    if both_sides_before(bytes, cues, focus_start, others) {
                        Laterality::Bilateral
                    } else {
                        side
                    }
                })
            })
            .or_else(|| {
                (!shift)
                    .then(|| inherited_side(bytes, cues, focus_start, focus_end, others))
                    .flatten()
            }),
        certainty: grade.map(|(certainty, _)| certainty),
        hedge: grade.map(|(_, kind)| kind),
    }
}

/// Whether the hedge `hit`, before the focus, is the modifier of another
/// mention that "and" joins to the focus: in "probable left endometrioma and
/// left hydrosalpinx" the doubt is the endometrioma's only (a hedge scopes
/// its own target, not its neighbours; "or" joins alternatives, which share
/// it).
fn modifies_a_conjoined_neighbour(
    bytes: &[u8],
    hit: &CueHit,
    focus_start: usize,
    others: &[(usize, usize)],
) -> bool {
    hit.end <= focus_start
        && ADJECTIVAL_HEDGES
            .iter()
            .any(|word| bytes[hit.start..hit.end].eq_ignore_ascii_case(word.as_bytes()))
        && others.iter().any(|&(s, e)| {
            s >= hit.end
                && e <= focus_start
                && word_count(&bytes[hit.end..s]) <= MODIFIER_WORDS
                && joined_by_and(&bytes[e..focus_start])
        })
}

/// Hedges written as an adjective of one noun phrase ("probable X"), unlike
/// a predicate over a list ("the differential includes X and Y").
const ADJECTIVAL_HEDGES: [&str; 5] = [
    "possible",
    "probable",
    "suspected",
    "questionable",
    "presumed",
];

/// Whether `between` holds the word "and" and no "or", "versus" or "vs".
fn joined_by_and(between: &[u8]) -> bool {
    let words = || between.split(|b| !b.is_ascii_alphabetic());
    words().any(|w| w.eq_ignore_ascii_case(b"and"))
        && !words().any(|w| {
            [&b"or"[..], b"versus", b"vs", b"and/or"]
                .iter()
                .any(|alt| w.eq_ignore_ascii_case(alt))
        })
}

/// Finite verbs that give a finding its own clause ("the mass has
/// decreased", "the nodule is stable").
const FINITE_VERBS: [&str; 7] = ["is", "are", "was", "were", "has", "have", "had"];

/// Whether `between` holds a finite verb of [`FINITE_VERBS`].
fn has_verb(between: &[u8]) -> bool {
    holds_a_word(between, &FINITE_VERBS)
}

/// Whether `between` holds one of `words` as a whole word, any case.
fn holds_a_word(between: &[u8], words: &[&str]) -> bool {
    between.split(|b| !b.is_ascii_alphabetic()).any(|w| {
        words
            .iter()
            .any(|word| w.eq_ignore_ascii_case(word.as_bytes()))
    })
}

/// Whether the two sides are both said of the focus, joined by "and", before
/// it: "mild right and moderate left neural foraminal narrowing".
fn both_sides_before(
    bytes: &[u8],
    cues: &[CueHit],
    focus_start: usize,
    others: &[(usize, usize)],
) -> bool {
    let reaching = |side: Laterality| {
        cues.iter().find(|c| {
            c.cue.side == Some(side)
                && !c.cue.direction
                && c.end <= focus_start
                && word_count(&bytes[c.end..focus_start]) <= MAX_LISTED_WORDS
                && !ends_scope(bytes, cues, c.end, focus_start)
                && !others.iter().any(|&(s, e)| s >= c.end && e <= focus_start)
        })
    };
    match (reaching(Laterality::Left), reaching(Laterality::Right)) {
        (Some(left), Some(right)) => {
            let (first, second) = if left.end <= right.start {
                (left, right)
            } else {
                (right, left)
            };
            let between = &bytes[first.end..second.start.max(first.end)];
            // Only a modifier of the second between: "right and moderate
            // left", not "right upper lobe and a small left".
            joined_by_and(between)
                && word_count(between) <= 3
                && !holds_a_word(between, &["a", "an", "the"])
        }
        _ => false,
    }
}

/// A change said before a list of findings is each one's: "Unchanged left
/// basilar atelectasis and small left effusion", "decreased size of the
/// pulmonary metastases and right hilar adenopathy". The nearest change
/// before the focus, with only "and"-joined findings and their modifiers
/// between (no verb, no "with", no other change, no "or").
fn change_over_a_list(
    bytes: &[u8],
    cues: &[CueHit],
    focus_start: usize,
    others: &[(usize, usize)],
) -> Option<Change> {
    let hit = cues
        .iter()
        .filter(|c| c.cue.change.is_some() && c.end <= focus_start)
        .max_by_key(|c| c.end)?;
    let between = &bytes[hit.end..focus_start];
    let listed = others
        .iter()
        .any(|&(s, e)| s >= hit.end && e <= focus_start);
    (listed
        && joined_by_and(between)
        && !has_verb(between)
        && !holds_a_word(between, &CLAUSE_PARTICIPLES)
        && word_count(between) <= MAX_LISTED_WORDS
        && !ends_scope(bytes, cues, hit.end, focus_start)
        && !cues
            .iter()
            .any(|c| c.cue.ends_negation && c.start >= hit.end && c.end <= focus_start))
    .then_some(hit.cue.change)
    .flatten()
}

/// Participles that open a clause of their own: in "new fracture and
/// epidural extension causing cord compression" the compression is not
/// said to be new.
const CLAUSE_PARTICIPLES: [&str; 8] = [
    "causing",
    "resulting",
    "leading",
    "producing",
    "compressing",
    "displacing",
    "extending",
    "involving",
];

/// The most words a change said before a list reaches over.
const MAX_LISTED_WORDS: usize = 12;

/// The value of the nearest cue in the mention's own clause that carries one:
/// not across a terminator, and not past another mention (which then owns
/// the cue: "increased right effusion and stable left atelectasis"). A cue
/// before the mention (a modifier: "stable left effusion") wins over one
/// after it ("effusion, unchanged"); a cue after it that opens another
/// finding's phrase is that finding's ("effusion and stable atelectasis").
/// With `kept_from_with`, a cue said after another finding does not reach
/// into a "with" phrase: in "effusion, increased since yesterday, with
/// blunting of the angle" only the effusion increased.
fn nearest_local<T: Copy>(
    bytes: &[u8],
    cues: &[CueHit],
    focus_start: usize,
    focus_end: usize,
    others: &[(usize, usize)],
    kept_from_with: bool,
    value: impl Fn(&CueHit) -> Option<T>,
) -> Option<T> {
    let mut before: Option<(usize, T)> = None;
    let mut after: Option<(usize, T)> = None;
    // A cue that opens the place phrase right after the mention ("small
    // cyst in the left lobe") is the mention's own, before any cue an
    // earlier phrase placed ("nodule in the right lobe and small cyst in
    // the left lobe").
    let mut placing_after: Option<T> = None;
    for hit in cues {
        let Some(v) = value(hit) else { continue };
        let (from, to, slot) = if hit.end <= focus_start {
            (hit.end, focus_start, &mut before)
        } else if hit.start >= focus_end {
            (focus_end, hit.start, &mut after)
        } else {
            // Inside the term ("left-sided effusion" matched as one term).
            (focus_start, focus_start, &mut before)
        };
        // After the mention, "with" starts the description of something else:
        // "heart failure with bilateral effusions".
        let with_between = hit.start >= focus_end
            && cues
                .iter()
                .any(|c| c.cue.ends_negation && c.start >= from && c.end <= to);
        let said_of_another_before_with = kept_from_with
            && hit.end <= focus_start
            && others.iter().any(|&(_, e)| e <= hit.start)
            && cues.iter().any(|c| {
                c.start >= from
                    && c.end <= to
                    && bytes[c.start..c.end].eq_ignore_ascii_case(b"with")
                    // "increased compared with the prior": the comparison's.
                    && !bytes[from..c.start]
                        .split(|b| !b.is_ascii_alphabetic())
                        .rfind(|w| !w.is_empty())
                        .is_some_and(|w| w.eq_ignore_ascii_case(b"compared"))
            });
        if with_between
            || said_of_another_before_with
            || (hit.start >= focus_end && opens_another(bytes, focus_end, hit, others))
            || ends_scope(bytes, cues, from, to)
            || others.iter().any(|&(s, e)| s >= from && e <= to)
        {
            continue;
        }
        let gap = to - from;
        if hit.start >= focus_end && placing_after.is_none() && opens_its_place(&bytes[from..to]) {
            placing_after = Some(v);
        }
        if slot.is_none_or(|(best, _)| gap < best) {
            *slot = Some((gap, v));
        }
    }
    placing_after
        .or(before.map(|(_, v)| v))
        .or(after.map(|(_, v)| v))
}

/// An affirming word that a negation governs in the same phrase ("no
/// persistent pneumothorax", "there is no evidence of stable nodule")
/// affirms nothing; after a clause mark it does ("no new consolidation,
/// stable atelectasis") or after another finding ("no effusion and no change
/// in the pneumothorax").
fn negated_itself(
    bytes: &[u8],
    cues: &[CueHit],
    affirm: &CueHit,
    others: &[(usize, usize)],
) -> bool {
    cues.iter().any(|c| {
        matches!(c.cue.polarity, Some((Forward | Both, Polarity::Negate)))
            && c.end <= affirm.start
            && !others.iter().any(|&(s, e)| s >= c.end && e <= affirm.start)
            && {
                let between = &bytes[c.end..affirm.start];
                !between
                    .iter()
                    .any(|b| matches!(b, b',' | b';' | b'.' | b':' | b'(' | b')'))
                    && word_count(between) <= MODIFIER_WORDS
            }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Judges the first occurrence of `term` in `sentence`, the only mention.
    pub(crate) fn judge_term(sentence: &str, term: &str) -> Judgement {
        let lexicon = crate::shared_lexicon();
        let mut hits = Vec::new();
        lexicon
            .words
            .scan_cues(sentence, 0, sentence.len(), &mut hits);
        let start = sentence
            .to_ascii_lowercase()
            .find(&term.to_ascii_lowercase())
            .expect("term in sentence");
        let end = start + term.len();
        hits.retain(|h| h.end <= start || h.start >= end);
        judge(sentence, &hits, start, end, &[])
    }

    pub(crate) fn assertion(sentence: &str, term: &str) -> Assertion {
        judge_term(sentence, term).assertion
    }

    #[test]
    fn plain_mention_is_present() {
        assert_eq!(
            assertion("Small left pleural effusion.", "effusion"),
            Assertion::Present
        );
    }

    #[test]
    fn forward_negations() {
        for (sentence, term) in [
            ("No pneumothorax.", "pneumothorax"),
            (
                "Lungs are clear without focal consolidation.",
                "consolidation",
            ),
            ("Negative for pulmonary embolism.", "embolism"),
            ("The abdomen is free of free fluid.", "fluid"),
            ("No evidence of fracture.", "fracture"),
            ("Resolved left effusion.", "effusion"),
            ("Atelectasis rather than pneumonia.", "pneumonia"),
            ("There is no pleural effusion.", "effusion"),
        ] {
            assert_eq!(assertion(sentence, term), Assertion::Absent, "{sentence}");
        }
    }

    #[test]
    fn backward_negations() {
        for (sentence, term) in [
            ("A pneumothorax is not seen.", "pneumothorax"),
            ("Focal consolidation is not identified.", "consolidation"),
            ("Pleural effusions are absent.", "effusions"),
            ("The previously noted effusion has resolved.", "effusion"),
            ("Pulmonary embolism was ruled out.", "embolism"),
        ] {
            assert_eq!(assertion(sentence, term), Assertion::Absent, "{sentence}");
        }
    }

    #[test]
    fn a_query_mark_asks_about_the_word_it_opens_or_the_one_it_ends() {
        for (sentence, term, expected) in [
            (
                "Small collection, ? early abscess.",
                "abscess",
                Assertion::Possible,
            ),
            (
                "Small collection, ? early abscess.",
                "collection",
                Assertion::Present,
            ),
            (
                "Irregular plaque, ?ulcerated.",
                "ulcerated",
                Assertion::Possible,
            ),
            (
                "Irregular plaque, ?ulcerated.",
                "plaque",
                Assertion::Present,
            ),
            ("Appendicitis?", "appendicitis", Assertion::Possible),
            (
                "Fluid in the pelvis s/o haemoperitoneum.",
                "haemoperitoneum",
                Assertion::Possible,
            ),
            (
                "Fluid in the pelvis s/o haemoperitoneum.",
                "fluid",
                Assertion::Present,
            ),
        ] {
            assert_eq!(assertion(sentence, term), expected, "{sentence} / {term}");
        }
    }

    #[test]
    fn the_reading_of_the_findings_is_a_clause_of_its_own() {
        let s = "In the absence of an appropriate history these findings are highly suspicious for non-accidental injury.";
        assert_eq!(assertion(s, "history"), Assertion::Absent);
        assert_eq!(assertion(s, "non-accidental injury"), Assertion::Possible);
        let s = "No effusion, the appearances are suggestive of atelectasis.";
        assert_eq!(assertion(s, "atelectasis"), Assertion::Possible);
    }

    #[test]
    fn a_side_compared_against_is_not_the_findings_after_it() {
        let s = "Testis enlarged compared with the right, with absent flow.";
        assert_eq!(judge_term(s, "absent flow").laterality, None);
        let s = "The left kidney is larger than the right with hydronephrosis.";
        assert_eq!(
            judge_term(s, "hydronephrosis").laterality,
            Some(Laterality::Left)
        );
        let s = "Less than 50% right ICA stenosis.";
        assert_eq!(
            judge_term(s, "stenosis").laterality,
            Some(Laterality::Right)
        );
    }

    #[test]
    fn a_nodal_station_names_its_side() {
        for (sentence, side) in [
            ("Station 4L node now 8 mm.", Laterality::Left),
            ("Station 10R (right hilar) node, 6 mm.", Laterality::Right),
            ("11L node: 5 mm.", Laterality::Left),
        ] {
            assert_eq!(
                judge_term(sentence, "node").laterality,
                Some(side),
                "{sentence}"
            );
        }
    }

    #[test]
    fn a_finding_named_after_from_prior_is_past() {
        let s = "Haemosiderin from prior intraventricular haemorrhage.";
        assert_eq!(
            judge_term(s, "intraventricular haemorrhage").temporality,
            Temporality::Historical
        );
        assert_eq!(
            judge_term(s, "haemosiderin").temporality,
            Temporality::Current
        );
        let s = "The nodule is unchanged from prior.";
        assert_eq!(judge_term(s, "nodule").temporality, Temporality::Current);
    }

    #[test]
    fn negation_reaches_every_item_of_a_list() {
        let s = "No focal consolidation, effusion, or pneumothorax.";
        for term in ["consolidation", "effusion", "pneumothorax"] {
            assert_eq!(assertion(s, term), Assertion::Absent, "{term}");
        }
    }

    #[test]
    fn negation_scope_ends_at_terminators() {
        for s in [
            "No pneumothorax, but there is a small effusion.",
            "No pneumothorax; small effusion.",
            "No acute disease, however an effusion is present.",
            "No new opacity other than the known effusion.",
        ] {
            assert_eq!(assertion(s, "effusion"), Assertion::Present, "{s}");
        }
    }

    #[test]
    fn pseudo_negations_affirm() {
        for (s, term) in [
            ("No change in moderate left pneumothorax.", "pneumothorax"),
            (
                "No significant interval change in the right effusion.",
                "effusion",
            ),
            (
                "No interval change in bibasilar atelectasis.",
                "atelectasis",
            ),
            ("No increase in the size of the nodule.", "nodule"),
            ("No interval increase in the right effusion.", "effusion"),
            ("No significant interval increase in the nodule.", "nodule"),
            ("No interval decrease in the left effusion.", "effusion"),
            ("No interval worsening of the pneumothorax.", "pneumothorax"),
            (
                "No improvement in the right lower lobe consolidation.",
                "consolidation",
            ),
            ("No further increase in the pneumothorax.", "pneumothorax"),
            (
                "Not only atelectasis but also consolidation.",
                "atelectasis",
            ),
            ("Cardiomegaly without change.", "Cardiomegaly"),
            (
                "No effusion and no change in the left pneumothorax.",
                "pneumothorax",
            ),
        ] {
            assert_eq!(assertion(s, term), Assertion::Present, "{s}");
        }
        assert_eq!(
            judge_term("No change in moderate left pneumothorax.", "pneumothorax").change,
            Some(Change::Stable)
        );
    }

    #[test]
    fn no_longer_is_resolved() {
        let j = judge_term("The effusion is no longer seen.", "effusion");
        assert_eq!(
            (j.assertion, j.change),
            (Assertion::Absent, Some(Change::Resolved))
        );
        // What is no longer is the word after it: the node is still there.
        let node = judge_term("The node has decreased and is no longer FDG-avid.", "node");
        assert_eq!(node.assertion, Assertion::Present);
        let avid = judge_term(
            "The node has decreased and is no longer FDG-avid.",
            "FDG-avid",
        );
        assert_eq!(
            (avid.assertion, avid.change),
            (Assertion::Absent, Some(Change::Resolved))
        );
    }

    #[test]
    fn temporality() {
        let t = |s: &str, term: &str| judge_term(s, term).temporality;
        assert_eq!(
            t("History of pneumonia.", "pneumonia"),
            Temporality::Historical
        );
        assert_eq!(
            t("Status post fracture fixation.", "fracture"),
            Temporality::Historical
        );
        assert_eq!(
            t("Old rib fractures.", "fractures"),
            Temporality::Historical
        );
        assert_eq!(
            t("Evaluate for pneumonia.", "pneumonia"),
            Temporality::Hypothetical
        );
        assert_eq!(
            t("Rule out pneumothorax.", "pneumothorax"),
            Temporality::Hypothetical
        );
        assert_eq!(t("Call if pain recurs.", "pain"), Temporality::Hypothetical);
        assert_eq!(
            t("Assess for effusion.", "effusion"),
            Temporality::Hypothetical
        );
        assert_eq!(
            t(
                "CT is more sensitive in detecting small nodules.",
                "nodules"
            ),
            Temporality::Hypothetical
        );
        assert_eq!(
            t(
                "Ultrasound is limited for the detection of stones.",
                "stones"
            ),
            Temporality::Hypothetical
        );
        assert_eq!(t("Left effusion.", "effusion"), Temporality::Current);
        assert_eq!(
            judge_term("Rule out pneumothorax.", "pneumothorax").assertion,
            Assertion::Possible
        );
    }

    #[test]
    fn a_trailing_negation_is_the_clause_of_its_own_finding() {
        fn judged(text: &str) -> Vec<(&str, Assertion)> {
            crate::extract(text, crate::shared_lexicon())
                .findings
                .iter()
                .map(|f| (f.term, f.assertion))
                .collect()
        }
        assert_eq!(
            judged("The mass has decreased in size, and its FDG uptake has resolved."),
            [
                ("mass", Assertion::Present),
                ("FDG uptake", Assertion::Absent)
            ]
        );
        assert_eq!(
            judged("The effusion and pneumothorax have resolved."),
            [
                ("effusion", Assertion::Absent),
                ("pneumothorax", Assertion::Absent)
            ]
        );
    }

    #[test]
    fn change() {
        let c = |s: &str, term: &str| judge_term(s, term).change;
        assert_eq!(c("New right effusion.", "effusion"), Some(Change::New));
        assert_eq!(
            c("Stable cardiomegaly.", "cardiomegaly"),
            Some(Change::Stable)
        );
        assert_eq!(
            c("Cardiomegaly is unchanged.", "Cardiomegaly"),
            Some(Change::Stable)
        );
        assert_eq!(
            c("Increased left effusion.", "effusion"),
            Some(Change::Increased)
        );
        assert_eq!(
            c("Improving pneumonia.", "pneumonia"),
            Some(Change::Decreased)
        );
        assert_eq!(
            c("Partially resolved effusion.", "effusion"),
            Some(Change::Decreased)
        );
        assert_eq!(c("Left effusion.", "effusion"), None);
        assert_eq!(
            c(
                "Presacral soft tissue thickening is smaller, now 18 mm.",
                "thickening"
            ),
            Some(Change::Decreased)
        );
        assert_eq!(
            c(
                "Marked reduction of left level II nodal disease.",
                "nodal disease"
            ),
            Some(Change::Decreased)
        );
        // A change word then a level in a "with" phrase: the change is there.
        assert_eq!(
            c(
                "A lymph node measures 9 mm, decreased, with uptake less than blood pool.",
                "lymph node"
            ),
            Some(Change::Decreased)
        );
        // Not a small organ: the change of what follows.
        assert_eq!(
            c(
                "Decreased size of the treated right cerebellar metastasis.",
                "metastasis"
            ),
            Some(Change::Decreased)
        );
        assert_eq!(
            assertion("Partially resolved effusion.", "effusion"),
            Assertion::Present
        );
    }

    #[test]
    fn a_change_before_a_list_is_each_ones() {
        let changes = |text: &str| -> Vec<(String, Option<Change>)> {
            crate::findings_of(text, |f| (f.term.to_string(), f.change))
        };
        assert_eq!(
            changes("IMPRESSION: Unchanged left basilar atelectasis and small left effusion."),
            [
                ("atelectasis".to_string(), Some(Change::Stable)),
                ("small left effusion".to_string(), Some(Change::Stable)),
            ]
        );
        // Not past a clause of its own.
        assert_eq!(
            changes("IMPRESSION: New T8 fracture and epidural tumour causing cord compression."),
            [
                ("fracture".to_string(), Some(Change::New)),
                ("tumour".to_string(), Some(Change::New)),
                ("cord compression".to_string(), None),
            ]
        );
    }

    #[test]
    fn a_change_said_after_a_finding_stays_out_of_its_with_phrase() {
        let changes = crate::findings_of(
            "FINDINGS: Small left pleural effusion, increased since yesterday, with blunting of the costophrenic angle. Lesions, increased compared with the prior study, in keeping with metastases.",
            |f| (f.term, f.change),
        );
        assert_eq!(
            changes,
            [
                ("Small left pleural effusion", Some(Change::Increased)),
                ("blunting of the costophrenic angle", None),
                ("Lesions", Some(Change::Increased)),
                ("metastases", Some(Change::Increased)),
            ]
        );
    }

    #[test]
    fn two_sides_joined_before_a_finding_are_both() {
        assert_eq!(
            judge_term(
                "Mild right and moderate left neural foraminal narrowing.",
                "neural foraminal narrowing"
            )
            .laterality,
            Some(Laterality::Bilateral)
        );
        let sides = crate::findings_of(
            "FINDINGS: Right effusion and left lower lobe atelectasis. A 2 cm nodule in the right upper lobe and a small left effusion.",
            |f| f.laterality,
        );
        use Laterality::{Left, Right};
        assert_eq!(sides, [Some(Right), Some(Left), Some(Right), Some(Left)]);
    }

    #[test]
    fn smaller_or_larger_than_it_was_is_a_change_than_the_other_side_is_not() {
        let c = |s: &str, term: &str| judge_term(s, term).change;
        assert_eq!(
            c("The treated metastasis is smaller.", "metastasis"),
            Some(Change::Decreased)
        );
        assert_eq!(
            c("The cysts are larger than the previous study.", "cysts"),
            Some(Change::Increased)
        );
        assert_eq!(c("The left cyst is smaller than the right.", "cyst"), None);
        assert_eq!(
            c("Partial response of the primary tumour.", "tumour"),
            Some(Change::Decreased)
        );
    }

    #[test]
    fn uptake_that_normalised_or_intensified_changed() {
        let j = judge_term("Splenic uptake has normalized.", "uptake");
        assert_eq!(
            (j.assertion, j.change),
            (Assertion::Absent, Some(Change::Resolved))
        );
        assert_eq!(
            judge_term("The T11 focus is also more intense.", "focus").change,
            Some(Change::Increased)
        );
    }

    #[test]
    fn change_and_side_stay_with_their_own_mention() {
        let lexicon = crate::shared_lexicon();
        let s = "Increased right effusion and stable left atelectasis.";
        let mut hits = Vec::new();
        lexicon.words.scan_cues(s, 0, s.len(), &mut hits);
        let effusion = (s.find("effusion").unwrap(), s.find("effusion").unwrap() + 8);
        let atelectasis = (s.find("atelectasis").unwrap(), s.len() - 1);
        let j = judge(s, &hits, atelectasis.0, atelectasis.1, &[effusion]);
        assert_eq!(j.change, Some(Change::Stable));
        assert_eq!(j.laterality, Some(Laterality::Left));
        let j = judge(s, &hits, effusion.0, effusion.1, &[atelectasis]);
        assert_eq!(j.change, Some(Change::Increased));
        assert_eq!(j.laterality, Some(Laterality::Right));
    }
}
