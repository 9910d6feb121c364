//! Sides: a direction stated right before or after a mention ("leftward
//! shift", "shift to the right") names its own side; a "to the left" that
//! starts a place is no direction ([`names_a_place`]); a displacement never
//! inherits the lesion's side ([`is_shift`]); otherwise a mention with no
//! side of its own takes the side of its clause ([`inherited_side`]).

use super::cues::{CueHit, ends_scope};
use crate::Laterality;
use crate::words::word_count;

/// A direction right before the mention, modifying it ("leftward midline
/// shift", "4 mm of leftward shift"): no word between, so the direction of
/// one shift is not passed on ("shift to the right and herniation").
pub(super) fn direction_before(
    bytes: &[u8],
    cues: &[CueHit],
    focus_start: usize,
) -> Option<Laterality> {
    cues.iter()
        .rev()
        .find(|hit| hit.end <= focus_start && hit.cue.side.is_some())
        .filter(|hit| {
            hit.cue.direction
                && word_count(&bytes[hit.end..focus_start]) == 0
                && !ends_scope(bytes, cues, hit.end, focus_start)
        })
        .and_then(|hit| hit.cue.side)
}

/// Whether a "to the left/right" phrase is the start of a place, not a
/// direction: "extending to the left common iliac artery". Only a phrase
/// that ends its clause or is followed by a joining word is a direction
/// ("shift to the right and herniation", "shift to the right of 5 mm").
fn names_a_place(bytes: &[u8], hit: &CueHit) -> bool {
    if !bytes[hit.start].eq_ignore_ascii_case(&b't') {
        return false;
    }
    let rest = &bytes[hit.end..];
    let word_start = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    let word_end = rest[word_start..]
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .map_or(rest.len(), |end| word_start + end);
    let next = &rest[word_start..word_end];
    !next.is_empty()
        && ![
            "and",
            "or",
            "with",
            "of",
            "by",
            "measuring",
            "side",
            "which",
            "but",
        ]
        .iter()
        .any(|joining| next.eq_ignore_ascii_case(joining.as_bytes()))
}

/// Whether a term names a displacement — a shift (midline, mediastinal) or
/// a herniation: it has a direction, not a side, so it never inherits the
/// side of the lesion that causes it ("right subdural hemorrhage with
/// midline shift" shifts to the left). A side stated on the term itself
/// ("left paracentral disc herniation") still counts.
pub(super) fn is_shift(term: &[u8]) -> bool {
    [&b"shift"[..], b"herniation"].iter().any(|word| {
        term.len() >= word.len() && term[term.len() - word.len()..].eq_ignore_ascii_case(word)
    })
}

/// A direction phrase that is the first cue after the mention in its clause
/// ("shift to the right", "shift of 4 mm to the right"): it names the
/// mention's own side, whatever side the sentence named before.
/// A direction right before another finding is that one's ("edema results
/// in 6 mm of leftward midline shift": the shift's).
pub(super) fn direction_after(
    bytes: &[u8],
    cues: &[CueHit],
    focus_end: usize,
    others: &[(usize, usize)],
) -> Option<Laterality> {
    cues.iter()
        .find(|hit| hit.start >= focus_end)
        .filter(|hit| {
            hit.cue.direction
                && !bytes[focus_end..hit.start]
                    .iter()
                    .any(|b| matches!(b, b',' | b';' | b'.' | b':' | b'(' | b')'))
                && !names_a_place(bytes, hit)
                && !others
                    .iter()
                    .any(|&(start, _)| start >= hit.end && word_count(&bytes[hit.end..start]) == 0)
        })
        .and_then(|hit| hit.cue.side)
}

/// The side of a finding that states none next to it: the nearest side cue
/// before it in the clause, whatever lies between ("left basilar opacity
/// compatible with atelectasis"), else the nearest after it in a coordinated
/// list ("opacity and atelectasis at the left base") but not across "with"
/// ("heart failure with bilateral effusions"). A direction ("rightward",
/// "to the left") is never inherited: it is the way something moved, not
/// where a finding lies ("left pneumothorax with rightward shift, compatible
/// with tension pneumothorax"). A side after the finding that opens another
/// finding's noun phrase is that finding's ("disc bulge and bilateral facet
/// arthropathy"): only a side in a place after the list is shared.
pub(super) fn inherited_side(
    bytes: &[u8],
    cues: &[CueHit],
    focus_start: usize,
    focus_end: usize,
    others: &[(usize, usize)],
) -> Option<Laterality> {
    let before = cues
        .iter()
        .rev()
        .filter(|hit| hit.end <= focus_start && !hit.cue.direction)
        .filter(|hit| !compared_against(bytes, hit))
        .find_map(|hit| hit.cue.side.map(|side| (hit, side)))
        .filter(|(hit, _)| !ends_scope(bytes, cues, hit.end, focus_start))
        .map(|(_, side)| side);
    let after = || {
        cues.iter()
            .filter(|hit| hit.start >= focus_end && !hit.cue.direction)
            .filter(|hit| !opens_another(bytes, focus_end, hit, others))
            // "spur, concha bullosa left.": a bare side written right after
            // another finding is that finding's ("scarring or atelectasis
            // right midlung" names a place, which the list shares).
            .filter(|hit| {
                let bare = bytes[hit.end..]
                    .iter()
                    .find(|b| **b != b' ')
                    .is_none_or(|b| b.is_ascii_punctuation());
                !(bare
                    && others.iter().any(|&(s, e)| {
                        s >= focus_end
                            && e <= hit.start
                            && bytes[e..hit.start].iter().all(|b| *b == b' ')
                    }))
            })
            .find_map(|hit| hit.cue.side.map(|side| (hit, side)))
            .filter(|(hit, _)| {
                (!ends_scope(bytes, cues, focus_end, hit.start)
                    || places_in_parentheses(&bytes[focus_end..hit.start]))
                    && ((in_a_place(bytes, hit) && !compares(&bytes[focus_end..hit.start]))
                        || !cues.iter().any(|c| {
                            c.cue.ends_negation && c.start >= focus_end && c.end <= hit.start
                        }))
            })
            .map(|(_, side)| side)
    };
    before.or_else(after)
}

/// Whether a stretch after a finding opens a parenthesis that places it:
/// "Nodule 1 (mid right lobe)", "the mass (left)". Only a label may stand
/// before the parenthesis.
fn places_in_parentheses(between: &[u8]) -> bool {
    let Some(open) = between.iter().position(|&b| b == b'(') else {
        return false;
    };
    !between.contains(&b')')
        && between[open + 1..].iter().all(|&b| b != b'(')
        && word_count(&between[..open]) <= 1
        && word_count(&between[open + 1..]) <= 2
}

/// Whether a stretch compares with something else ("compared with the
/// left", "than on the right"): a side after it is the other thing's.
fn compares(between: &[u8]) -> bool {
    between.split(|b| !b.is_ascii_alphabetic()).any(|w| {
        [
            "compared",
            "comparison",
            "than",
            "versus",
            "vs",
            "relative",
            "contralateral",
        ]
        .iter()
        .any(|c| w.eq_ignore_ascii_case(c.as_bytes()))
    })
}

/// Whether a side is the other thing a comparison measures against
/// ("enlarged compared with the right, with absent flow", "larger than on
/// the left"): it says nothing of the findings after it. Only the words
/// right before the side count, so "less than 50% right stenosis" keeps its
/// side.
pub(super) fn compared_against(bytes: &[u8], hit: &CueHit) -> bool {
    let mut end = hit.start;
    let mut words = 0;
    while words < 3 {
        let spaces = bytes[..end]
            .iter()
            .rev()
            .take_while(|b| **b == b' ')
            .count();
        if spaces == 0 {
            return false;
        }
        end -= spaces;
        let start = bytes[..end]
            .iter()
            .rposition(|b| !b.is_ascii_alphabetic())
            .map_or(0, |i| i + 1);
        let word = &bytes[start..end];
        if compares(word) {
            return true;
        }
        let filler = ["the", "with", "to", "on", "in"]
            .iter()
            .any(|f| word.eq_ignore_ascii_case(f.as_bytes()));
        if !filler || start == end {
            return false;
        }
        end = start;
        words += 1;
    }
    false
}

/// Words that open the place a side names ("in the left breast", "of the
/// left lateral ventricle", "involving the left insula").
const PLACE_WORDS: [&str; 9] = [
    "the",
    "in",
    "of",
    "at",
    "within",
    "along",
    "involving",
    "into",
    "both",
];

/// Whether the words between a mention and a cue after it open the
/// mention's place phrase ("cyst | in the | left lobe").
pub(super) fn opens_its_place(between: &[u8]) -> bool {
    let mut words = between
        .split(|b| !b.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .peekable();
    words.peek().is_some()
        && !between.contains(&b',')
        && words.all(|w| {
            PLACE_WORDS
                .iter()
                .any(|p| w.eq_ignore_ascii_case(p.as_bytes()))
        })
}

/// Whether a side cue names the place where the whole clause lies, so a
/// "with" phrase before it does not stop it ("mass with calcifications in
/// the left breast", "mass effect with effacement of the left lateral
/// ventricle"). A side opening a finding ("with bilateral effusions") is
/// that finding's ([`opens_another`]).
fn in_a_place(bytes: &[u8], hit: &CueHit) -> bool {
    let before = &bytes[..hit.start];
    let word_end = before
        .iter()
        .rposition(|b| b.is_ascii_alphabetic())
        .map_or(0, |i| i + 1);
    let word_start = before[..word_end]
        .iter()
        .rposition(|b| !b.is_ascii_alphabetic())
        .map_or(0, |i| i + 1);
    let previous = &before[word_start..word_end];
    PLACE_WORDS
        .iter()
        .any(|w| previous.eq_ignore_ascii_case(w.as_bytes()))
}

/// Words that may stand between a side and the head of the noun phrase it
/// opens ("bilateral facet arthropathy", "left lower lobe nodule").
const MODIFIER_WORDS: usize = 3;

/// Whether a cue (a side, a change) after a finding opens the noun phrase of
/// another finding coordinated with it, so the cue is that finding's ("disc
/// bulge and bilateral facet arthropathy", "effusion and stable left
/// atelectasis"). A finding named inside a prepositional phrase of this one
/// is where it lies, and its side is shared ("changes of right upper
/// lobectomy", "uptake along the left rib fractures").
pub(super) fn opens_another(
    bytes: &[u8],
    focus_end: usize,
    hit: &CueHit,
    others: &[(usize, usize)],
) -> bool {
    let gap = &bytes[focus_end..hit.start.max(focus_end)];
    let first_word: Vec<u8> = gap
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_alphabetic())
        .map(u8::to_ascii_lowercase)
        .collect();
    let coordinated = gap.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b',')
        || [&b"and"[..], b"or", b"with", b"but"].contains(&first_word.as_slice());
    coordinated
        && others.iter().any(|&(start, _)| {
            // Inside the other finding's own term ("bilateral facet
            // arthropathy" matched whole), or opening its phrase.
            start == hit.start
                || (start >= hit.end && {
                    let between = &bytes[hit.end..start];
                    between
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
                        && word_count(between) <= MODIFIER_WORDS
                })
        })
}

#[cfg(test)]
mod tests {
    use crate::Laterality;
    use crate::context::judge::tests::judge_term;

    #[test]
    fn a_direction_after_the_finding_names_its_side() {
        let l = |s: &str, term: &str| judge_term(s, term).laterality;
        assert_eq!(
            l(
                "Left subdural hematoma with midline shift to the right.",
                "midline shift"
            ),
            Some(Laterality::Right)
        );
        assert_eq!(
            l(
                "Right subdural hematoma with 6 mm of midline shift to the left.",
                "midline shift"
            ),
            Some(Laterality::Left)
        );
        assert_eq!(
            l("Left subdural hematoma.", "hematoma"),
            Some(Laterality::Left)
        );
    }

    #[test]
    fn quadrant_and_lobe_abbreviations_carry_their_side() {
        let l = |s: &str, term: &str| judge_term(s, term).laterality;
        assert_eq!(l("Fluid in the RUQ.", "Fluid"), Some(Laterality::Right));
        assert_eq!(l("LLQ abscess.", "abscess"), Some(Laterality::Left));
        assert_eq!(
            l("RLL consolidation.", "consolidation"),
            Some(Laterality::Right)
        );
        assert_eq!(l("Nodule in the lul.", "Nodule"), Some(Laterality::Left));
    }

    #[test]
    fn a_side_letter_before_anatomy_is_a_side_and_a_spine_level_is_not() {
        let l = |s: &str, term: &str| judge_term(s, term).laterality;
        assert_eq!(
            l("Consolidation in the R lower lobe.", "Consolidation"),
            Some(Laterality::Right)
        );
        assert_eq!(
            l("L cerebellar infarct.", "infarct"),
            Some(Laterality::Left)
        );
        assert_eq!(l("Disc protrusion at L4-5.", "protrusion"), None);
        assert_eq!(l("Compression fracture of L1.", "fracture"), None);
        assert_eq!(l("Opacity, R/O pneumonia.", "Opacity"), None);
        assert_eq!(l("Effusion, 1.5 L drained.", "Effusion"), None);
    }

    #[test]
    fn laterality() {
        let l = |s: &str, term: &str| judge_term(s, term).laterality;
        assert_eq!(
            l("Left pleural effusion.", "effusion"),
            Some(Laterality::Left)
        );
        assert_eq!(
            l("Effusion on the right.", "Effusion"),
            Some(Laterality::Right)
        );
        assert_eq!(
            l("Bilateral effusions.", "effusions"),
            Some(Laterality::Bilateral)
        );
        assert_eq!(
            l("Bibasilar atelectasis.", "atelectasis"),
            Some(Laterality::Bilateral)
        );
        assert_eq!(
            l("Effusions on both sides.", "Effusions"),
            Some(Laterality::Bilateral)
        );
        assert_eq!(l("Cardiomegaly.", "Cardiomegaly"), None);
        // A side that opens the next finding is not shared back; one in a
        // place after the list is.
        let first_side = |s: &str| {
            crate::extract(s, crate::shared_lexicon())
                .findings
                .first()
                .and_then(|f| f.laterality)
        };
        assert_eq!(
            first_side("Disc bulge and bilateral facet arthropathy."),
            None
        );
        assert_eq!(
            first_side("Opacity and atelectasis at the left base."),
            Some(Laterality::Left)
        );
        // A place after a "with" phrase is the head's too; a side opening
        // the phrase's finding is not.
        assert_eq!(
            first_side("Mass with associated calcifications in the left breast."),
            Some(Laterality::Left)
        );
        assert_eq!(first_side("Heart failure with bilateral effusions."), None);
        assert_eq!(
            first_side("Joint effusion with capsular distension, compared with 3 mm on the left."),
            None
        );
        // Sites of both sides make a finding bilateral.
        assert_eq!(
            first_side(
                "Segmental perfusion defects in the right upper lobe, right lower lobe and left lower lobe."
            ),
            Some(Laterality::Bilateral)
        );
        assert_eq!(
            first_side("Right pleural effusion, left lower lobe atelectasis."),
            Some(Laterality::Right)
        );
        assert_eq!(
            l("Right lower lobe pneumonia; left effusion.", "pneumonia"),
            Some(Laterality::Right)
        );
    }
}
