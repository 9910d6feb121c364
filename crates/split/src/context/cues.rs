//! The cue vocabulary: the [`Cue`] type, the constructors that give each
//! kind of cue its behaviour, the cue table [`CUES`], the [`CueHit`]s a
//! sentence yields, and where a hit's scope ends ([`ends_scope`]).
//!
//! Why the cue table stays typed Rust while the vocabulary tables (findings,
//! body sites, descriptors, sections) are data files in mappings/: a
//! vocabulary row names a concept and its synonyms and carries no behaviour,
//! so a site may add or edit rows without touching code. A cue is behaviour:
//! its reach (forward, backward, both), whether it ends a scope or only a
//! negation's, its hedge kind and certainty, whether it says a finding
//! persists, asserts a supported reading, joins alternatives or makes the
//! sentence conditional — and the judge's rules depend on how these combine
//! (a `persists` cue is an affirmation with a change; a hedge has a
//! certainty and a kind and no other cue does; `supports` asserts only at
//! high certainty). A TSV row could only name these effects, and a site
//! editing one could break the judge's invariants — a hedge without a
//! certainty or a kind, a certainty on a cue that is no hedge — which the
//! constructors here keep by construction and the unit tests below check on
//! every test run.

use crate::{Certainty, Change, Hedge, Laterality, Temporality};

/// Which way a cue reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    Forward,
    Backward,
    Both,
}

/// What a cue says about the mentions it reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Polarity {
    Negate,
    Hedge,
    /// A hedge that inherits a negation reaching it (see [`link`]).
    Link,
    /// Blocks a negation further away (pseudo-negations, `there is`).
    Affirm,
}

/// One cue phrase and its effects.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cue {
    pub(crate) polarity: Option<(Reach, Polarity)>,
    /// How sure a hedge is (see [`Certainty`]); `None` for every other cue.
    pub(crate) certainty: Option<Certainty>,
    /// The kind of doubt a hedge expresses (see [`Hedge`]); `None` for
    /// every other cue.
    pub(crate) hedge: Option<Hedge>,
    pub(crate) temporality: Option<(Reach, Temporality)>,
    /// Applies to the nearest mention in the same clause, either side.
    pub(crate) change: Option<Change>,
    pub(crate) side: Option<Laterality>,
    /// A side phrase that follows its finding and binds to it before any
    /// side named earlier: "hematoma on the left with midline shift to the
    /// right".
    pub(crate) direction: bool,
    /// A side written as one capital letter ("R lower lobe"): a cue only
    /// where [`abbreviates_a_side`] finds it written as a side.
    pub(crate) abbreviated: bool,
    /// Joins alternatives ("pneumonia or aspiration"); see
    /// [`judge`](super::judge::judge).
    pub(crate) alternative: bool,
    /// Ends every scope (`but`, `however`, `;`).
    pub(crate) terminates: bool,
    /// See [`NEGATION_TERMINATOR`].
    pub(crate) ends_negation: bool,
    /// Says a finding persists ("stable atelectasis"): see [`persists`].
    pub(crate) persists: bool,
    /// Makes the sentence's readings conditional on the clinical picture
    /// ("in the appropriate clinical setting"): see [`hedge_grade`](super::hedge::hedge_grade).
    pub(crate) conditional: bool,
    /// A reading the images support ("compatible with", "most consistent
    /// with"): it asserts its finding, unless it offers alternatives or a
    /// weaker hedge stacks on it, when it hedges like "probable".
    pub(crate) asserts: bool,
}

const NONE: Cue = Cue {
    polarity: None,
    certainty: None,
    hedge: None,
    direction: false,
    abbreviated: false,
    alternative: false,
    temporality: None,
    change: None,
    side: None,
    terminates: false,
    ends_negation: false,
    persists: false,
    conditional: false,
    asserts: false,
};

const fn negate(reach: Reach) -> Cue {
    Cue {
        polarity: Some((reach, Polarity::Negate)),
        ..NONE
    }
}

const fn hedge(reach: Reach, certainty: Certainty) -> Cue {
    Cue {
        polarity: Some((reach, Polarity::Hedge)),
        certainty: Some(certainty),
        hedge: Some(Hedge::Probability),
        ..NONE
    }
}

/// A hedge that links a finding to what it would explain ("opacity
/// suggestive of pneumonia"): under a negation it is negated too ("no
/// opacity to suggest pneumonia").
const fn link(reach: Reach, certainty: Certainty) -> Cue {
    Cue {
        polarity: Some((reach, Polarity::Link)),
        certainty: Some(certainty),
        hedge: Some(Hedge::Probability),
        ..NONE
    }
}

/// A reading the images support: see [`Cue::asserts`].
const fn supports() -> Cue {
    Cue {
        asserts: true,
        ..link(Forward, High)
    }
}

/// A hedge cue of another kind than a stated likelihood.
const fn kind(kind: Hedge, cue: Cue) -> Cue {
    Cue {
        hedge: Some(kind),
        ..cue
    }
}

const fn affirm(reach: Reach) -> Cue {
    Cue {
        polarity: Some((reach, Polarity::Affirm)),
        ..NONE
    }
}

const fn when(reach: Reach, temporality: Temporality) -> Cue {
    Cue {
        temporality: Some((reach, temporality)),
        ..NONE
    }
}

const fn change(change: Change) -> Cue {
    Cue {
        change: Some(change),
        ..NONE
    }
}

const fn side(side: Laterality) -> Cue {
    Cue {
        side: Some(side),
        ..NONE
    }
}

/// A side written as its initial: see [`Cue::abbreviated`].
const fn side_letter(side: Laterality) -> Cue {
    Cue {
        side: Some(side),
        abbreviated: true,
        ..NONE
    }
}

/// "A versus B": a hedge on both sides that joins two alternatives, each
/// an even chance.
const fn alternatives() -> Cue {
    Cue {
        alternative: true,
        ..kind(Hedge::Alternative, hedge(Both, Moderate))
    }
}

/// A word saying a finding persists, so it is there ("no new consolidation,
/// stable atelectasis"): it blocks a negation further away, unless a negation
/// governs the word itself ("no persistent pneumothorax").
const fn persists() -> Cue {
    Cue {
        persists: true,
        ..and_change(affirm(Forward), Change::Stable)
    }
}

/// A side stated after the finding as a direction ("shift to the right").
const fn direction(side: Laterality) -> Cue {
    Cue {
        side: Some(side),
        direction: true,
        ..NONE
    }
}

const fn and_change(cue: Cue, change: Change) -> Cue {
    Cue {
        change: Some(change),
        ..cue
    }
}

const fn and_when(cue: Cue, reach: Reach, temporality: Temporality) -> Cue {
    Cue {
        temporality: Some((reach, temporality)),
        ..cue
    }
}

/// See [`Cue::conditional`].
const CONDITIONAL: Cue = Cue {
    conditional: true,
    ..NONE
};

const TERMINATOR: Cue = Cue {
    terminates: true,
    ..NONE
};

/// Ends the scope of a negation only: "no cardiomegaly with small
/// effusions" negates the cardiomegaly alone, but "suggestive of a mass with
/// obstructive atelectasis" hedges both.
const NEGATION_TERMINATOR: Cue = Cue {
    ends_negation: true,
    ..NONE
};

use Certainty::{High, Low, Moderate};
use Reach::{Backward, Both, Forward};

/// The cue grammar. Hedges carry the certainty the radiology hedging
/// lexicon gives their phrase (Panicek & Hricak, AJR 2016; see
/// [`Certainty`]): "suspicious for", "probably", "likely" ~75% → High;
/// "possibly", "may represent", "questionable", "cannot exclude X" ~50% →
/// Moderate; "less likely", "X cannot be excluded", "not excluded" ~25% →
/// Low. "Consistent with", "most consistent with", "compatible with" and
/// "diagnostic of" state the reading the images support and assert (see
/// [`Cue::asserts`]); "unlikely" (< 10%) negates. "A versus B"
/// weighs two alternatives evenly → Moderate; a differential list spreads
/// the probability over three or more → Low. A "rule out" question states
/// no leaning → Moderate. Lower case; matched case-insensitively on word
/// boundaries, longest first, so `no change in` beats `no` and
/// `not excluded` beats `not`.
pub(crate) const CUES: &[(&str, Cue)] = &[
    // --- negation, forward
    ("no", negate(Forward)),
    ("not", negate(Forward)),
    ("without", negate(Forward)),
    ("negative for", negate(Forward)),
    ("free of", negate(Forward)),
    ("clear of", negate(Forward)),
    ("absence of", negate(Forward)),
    // Forward only: in "torsion with absent flow" the torsion is present;
    // "X is absent" has its own cue.
    ("absent", negate(Forward)),
    ("no evidence of", negate(Forward)),
    ("no evidence for", negate(Forward)),
    ("without evidence of", negate(Forward)),
    ("no sign of", negate(Forward)),
    ("no signs of", negate(Forward)),
    ("without signs of", negate(Forward)),
    ("no findings of", negate(Forward)),
    ("no findings to suggest", negate(Forward)),
    ("no findings suggestive of", negate(Forward)),
    // "there is no" is "there is" + "no": as one cue it would hide the
    // pseudo-negation in "there is no significant interval change in".
    ("no new", negate(Forward)),
    ("no further", negate(Forward)),
    ("no residual", negate(Forward)),
    ("no recurrent", negate(Forward)),
    ("never", negate(Forward)),
    ("neither", negate(Forward)),
    ("nor", negate(Forward)),
    ("none", negate(Backward)),
    ("denies", negate(Forward)),
    ("denied", negate(Forward)),
    ("deny", negate(Forward)),
    ("denying", negate(Forward)),
    ("rather than", negate(Forward)),
    ("instead of", negate(Forward)),
    ("fails to reveal", negate(Forward)),
    ("failed to reveal", negate(Forward)),
    ("does not demonstrate", negate(Forward)),
    ("did not demonstrate", negate(Forward)),
    ("unlikely", negate(Both)),
    ("is negative", negate(Backward)),
    // Longer than "is negative" (which reaches back): "This CT is negative
    // for pulmonary embolism" denies what follows, not the CT.
    ("is negative for", negate(Forward)),
    ("are negative for", negate(Forward)),
    ("was negative for", negate(Forward)),
    ("were negative for", negate(Forward)),
    ("be negative for", negate(Forward)),
    ("is free of", negate(Forward)),
    ("are free of", negate(Forward)),
    ("is without", negate(Forward)),
    ("are without", negate(Forward)),
    ("are negative", negate(Backward)),
    ("was negative", negate(Backward)),
    ("-ve for", negate(Forward)),
    ("positive for", affirm(Forward)),
    // --- not on the prior: there now, and new ("a lesion ..., not seen on
    // the prior CT")
    (
        "not seen on the prior",
        and_change(affirm(Backward), Change::New),
    ),
    (
        "not seen on prior",
        and_change(affirm(Backward), Change::New),
    ),
    (
        "not seen on the previous",
        and_change(affirm(Backward), Change::New),
    ),
    (
        "not present on the prior",
        and_change(affirm(Backward), Change::New),
    ),
    (
        "not visible on the prior",
        and_change(affirm(Backward), Change::New),
    ),
    (
        "not seen previously",
        and_change(affirm(Backward), Change::New),
    ),
    (
        "not previously seen",
        and_change(affirm(Backward), Change::New),
    ),
    // --- negation, backward ("X is not seen")
    ("not seen", negate(Backward)),
    ("not identified", negate(Backward)),
    ("not visualized", negate(Backward)),
    ("not visualised", negate(Backward)),
    ("not appreciated", negate(Backward)),
    ("not present", negate(Backward)),
    ("not demonstrated", negate(Backward)),
    ("not evident", negate(Backward)),
    ("not detected", negate(Backward)),
    ("not noted", negate(Backward)),
    ("not observed", negate(Backward)),
    ("not apparent", negate(Backward)),
    ("not definitely seen", negate(Backward)),
    ("is absent", negate(Backward)),
    ("are absent", negate(Backward)),
    ("ruled out", negate(Backward)),
    ("has been ruled out", negate(Backward)),
    ("was ruled out", negate(Backward)),
    ("is excluded", negate(Backward)),
    ("was excluded", negate(Backward)),
    ("are excluded", negate(Backward)),
    ("has been excluded", negate(Backward)),
    // "Pulmonary embolism is effectively excluded": an adverb of confidence
    // between the verb and "excluded" still denies.
    ("is effectively excluded", negate(Backward)),
    ("is essentially excluded", negate(Backward)),
    ("is reliably excluded", negate(Backward)),
    ("is confidently excluded", negate(Backward)),
    ("is reasonably excluded", negate(Backward)),
    ("are effectively excluded", negate(Backward)),
    ("can be excluded", negate(Backward)),
    ("is effectively ruled out", negate(Backward)),
    ("is essentially ruled out", negate(Backward)),
    ("has been removed", negate(Backward)),
    ("have been removed", negate(Backward)),
    // --- negation that is also a change
    // "The effusion is no longer seen": gone. "The node is no longer
    // FDG-avid": the node is there, its avidity gone.
    ("no longer", and_change(negate(Forward), Change::Resolved)),
    ("no longer seen", and_change(negate(Both), Change::Resolved)),
    (
        "no longer visible",
        and_change(negate(Both), Change::Resolved),
    ),
    (
        "no longer visualized",
        and_change(negate(Both), Change::Resolved),
    ),
    (
        "no longer visualised",
        and_change(negate(Both), Change::Resolved),
    ),
    (
        "no longer identified",
        and_change(negate(Both), Change::Resolved),
    ),
    (
        "no longer present",
        and_change(negate(Both), Change::Resolved),
    ),
    (
        "no longer evident",
        and_change(negate(Both), Change::Resolved),
    ),
    (
        "no longer demonstrated",
        and_change(negate(Both), Change::Resolved),
    ),
    (
        "no longer appreciated",
        and_change(negate(Both), Change::Resolved),
    ),
    (
        "no longer apparent",
        and_change(negate(Both), Change::Resolved),
    ),
    (
        "no longer detected",
        and_change(negate(Both), Change::Resolved),
    ),
    ("resolved", and_change(negate(Both), Change::Resolved)),
    (
        "has resolved",
        and_change(negate(Backward), Change::Resolved),
    ),
    (
        "have resolved",
        and_change(negate(Backward), Change::Resolved),
    ),
    (
        "interval resolution of",
        and_change(negate(Forward), Change::Resolved),
    ),
    (
        "resolution of",
        and_change(negate(Forward), Change::Resolved),
    ),
    (
        "complete resolution of",
        and_change(negate(Forward), Change::Resolved),
    ),
    ("resolution", and_change(negate(Backward), Change::Resolved)),
    ("cleared", and_change(negate(Backward), Change::Resolved)),
    // "Splenic uptake has normalized": what was abnormal is gone.
    (
        "has normalized",
        and_change(negate(Backward), Change::Resolved),
    ),
    (
        "has normalised",
        and_change(negate(Backward), Change::Resolved),
    ),
    (
        "have normalized",
        and_change(negate(Backward), Change::Resolved),
    ),
    (
        "have normalised",
        and_change(negate(Backward), Change::Resolved),
    ),
    (
        "has cleared",
        and_change(negate(Backward), Change::Resolved),
    ),
    ("clearing of", and_change(negate(Forward), Change::Resolved)),
    // --- partial resolution: a change, not a negation
    ("partially resolved", change(Change::Decreased)),
    (
        "partial resolution of",
        and_change(affirm(Forward), Change::Decreased),
    ),
    (
        "near complete resolution of",
        and_change(affirm(Forward), Change::Decreased),
    ),
    ("nearly resolved", change(Change::Decreased)),
    ("almost resolved", change(Change::Decreased)),
    ("incompletely resolved", change(Change::Decreased)),
    ("resolving", change(Change::Decreased)),
    // --- pseudo-negations: look like negation, are not
    // BI-RADS 3's words: the mass is there, its benignity is what is probable.
    ("probably benign", affirm(Forward)),
    ("no change", and_change(affirm(Forward), Change::Stable)),
    ("no change in", and_change(affirm(Forward), Change::Stable)),
    (
        "no significant change",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no significant change in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval change",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval change in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no significant interval change",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no significant interval change in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no appreciable change",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no substantial change",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no definite change",
        and_change(affirm(Forward), Change::Stable),
    ),
    ("no increase", and_change(affirm(Forward), Change::Stable)),
    (
        "no increase in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no significant increase in",
        and_change(affirm(Forward), Change::Stable),
    ),
    ("no decrease", and_change(affirm(Forward), Change::Stable)),
    (
        "no decrease in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no enlargement of",
        and_change(affirm(Forward), Change::Stable),
    ),
    // "No interval increase in the effusion": the effusion is still there.
    (
        "no interval increase",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval increase in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no significant interval increase",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no significant interval increase in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no further increase in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no significant decrease",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no significant decrease in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval decrease",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval decrease in",
        and_change(affirm(Forward), Change::Stable),
    ),
    ("no worsening", and_change(affirm(Forward), Change::Stable)),
    (
        "no worsening of",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval worsening",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval worsening of",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no improvement",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no improvement in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval improvement",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval improvement in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no significant improvement",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no significant improvement in",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval enlargement of",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval growth",
        and_change(affirm(Forward), Change::Stable),
    ),
    (
        "no interval growth of",
        and_change(affirm(Forward), Change::Stable),
    ),
    ("not changed", and_change(affirm(Both), Change::Stable)),
    (
        "not significantly changed",
        and_change(affirm(Both), Change::Stable),
    ),
    ("has not changed", and_change(affirm(Both), Change::Stable)),
    ("without change", and_change(affirm(Both), Change::Stable)),
    (
        "without significant change",
        and_change(affirm(Both), Change::Stable),
    ),
    (
        "without interval change",
        and_change(affirm(Both), Change::Stable),
    ),
    (
        "without significant interval change",
        and_change(affirm(Both), Change::Stable),
    ),
    ("not only", affirm(Forward)),
    ("not cause", affirm(Forward)),
    ("not drain", affirm(Forward)),
    ("not extend", affirm(Forward)),
    ("not necessarily", hedge(Forward, Low)),
    ("gram negative", affirm(Forward)),
    ("without difficulty", affirm(Forward)),
    ("there is", affirm(Forward)),
    ("there are", affirm(Forward)),
    ("there has been", affirm(Forward)),
    ("there have been", affirm(Forward)),
    // Technique phrases that would otherwise read as negation.
    ("without contrast", NONE),
    ("with and without contrast", NONE),
    ("without intravenous contrast", NONE),
    ("without iv contrast", NONE),
    ("without and with contrast", NONE),
    // --- hedges
    ("possible", hedge(Forward, Moderate)),
    ("possibly", hedge(Forward, Moderate)),
    ("possibility of", hedge(Forward, Moderate)),
    ("is possible", hedge(Backward, Moderate)),
    ("are possible", hedge(Backward, Moderate)),
    ("is also possible", hedge(Backward, Moderate)),
    ("are also possible", hedge(Backward, Moderate)),
    ("perhaps", hedge(Forward, Moderate)),
    ("probable", hedge(Forward, High)),
    ("probably", hedge(Forward, High)),
    // Forward only: in "opacity, likely atelectasis" the opacity is certain.
    ("likely", hedge(Forward, High)),
    ("most likely", hedge(Forward, High)),
    ("is likely", hedge(Backward, High)),
    ("are likely", hedge(Backward, High)),
    ("is probable", hedge(Backward, High)),
    (
        "is suspected",
        kind(Hedge::Suspicion, hedge(Backward, High)),
    ),
    (
        "are suspected",
        kind(Hedge::Suspicion, hedge(Backward, High)),
    ),
    ("is favored", hedge(Backward, High)),
    (
        "is a concern",
        kind(Hedge::Suspicion, hedge(Backward, High)),
    ),
    (
        "is of concern",
        kind(Hedge::Suspicion, hedge(Backward, High)),
    ),
    (
        "remains a concern",
        kind(Hedge::Suspicion, hedge(Backward, High)),
    ),
    ("is a consideration", hedge(Backward, Moderate)),
    ("is a possibility", hedge(Backward, Moderate)),
    ("less likely", hedge(Forward, Low)),
    ("is less likely", hedge(Backward, Low)),
    ("are less likely", hedge(Backward, Low)),
    ("more likely", hedge(Forward, High)),
    ("likely represents", hedge(Forward, High)),
    ("likely representing", hedge(Forward, High)),
    ("may", hedge(Forward, Moderate)),
    ("might", hedge(Forward, Moderate)),
    ("maybe", hedge(Forward, Moderate)),
    ("could", hedge(Forward, Moderate)),
    ("may represent", hedge(Forward, Moderate)),
    ("could represent", hedge(Forward, Moderate)),
    ("might represent", hedge(Forward, Moderate)),
    ("may reflect", hedge(Forward, Moderate)),
    ("could reflect", hedge(Forward, Moderate)),
    ("may be", hedge(Both, Moderate)),
    // Forward only: in "opacity may be compatible with atelectasis" the
    // opacity is certain.
    ("may be compatible with", link(Forward, Moderate)),
    ("may be consistent with", link(Forward, Moderate)),
    ("could be compatible with", link(Forward, Moderate)),
    ("could be consistent with", link(Forward, Moderate)),
    ("might be compatible with", link(Forward, Moderate)),
    ("could be", hedge(Both, Moderate)),
    ("questionable", kind(Hedge::Question, hedge(Both, Moderate))),
    ("question", kind(Hedge::Question, hedge(Forward, Moderate))),
    (
        "question of",
        kind(Hedge::Question, hedge(Forward, Moderate)),
    ),
    (
        "questioned",
        kind(Hedge::Question, hedge(Backward, Moderate)),
    ),
    ("equivocal", kind(Hedge::Question, hedge(Both, Moderate))),
    // "6 mm nodule, indeterminate": the nodule is there; what it is, is
    // open. Not a hedge of the finding, unlike "indeterminate for".
    ("indeterminate", NONE),
    (
        "suspicious for",
        kind(Hedge::Suspicion, link(Forward, High)),
    ),
    (
        "suspicious of",
        kind(Hedge::Suspicion, hedge(Forward, High)),
    ),
    ("suspicion of", kind(Hedge::Suspicion, hedge(Forward, High))),
    (
        "suspicion for",
        kind(Hedge::Suspicion, hedge(Forward, High)),
    ),
    ("suspect", kind(Hedge::Suspicion, hedge(Forward, High))),
    ("suspected", kind(Hedge::Suspicion, hedge(Both, High))),
    (
        "concerning for",
        kind(Hedge::Suspicion, link(Forward, High)),
    ),
    ("concern for", kind(Hedge::Suspicion, hedge(Forward, High))),
    ("worrisome for", kind(Hedge::Suspicion, link(Forward, High))),
    ("suggestive of", kind(Hedge::Suspicion, link(Forward, High))),
    // The radiologist's leading diagnosis, not a suspicion raised: "opacities
    // most suggestive of pulmonary edema".
    ("most suggestive of", link(Forward, High)),
    ("strongly suggestive of", link(Forward, High)),
    ("highly suggestive of", link(Forward, High)),
    // The abbreviation South Asian reports write for it: "fluid s/o
    // haemoperitoneum", "highly s/o Koch's".
    ("s/o", kind(Hedge::Suspicion, link(Forward, High))),
    ("most s/o", link(Forward, High)),
    ("strongly s/o", link(Forward, High)),
    ("highly s/o", link(Forward, High)),
    // A reading that holds only if the clinical picture fits: "in the
    // appropriate clinical setting, the opacity is compatible with
    // pneumonia" (the opacity itself is seen).
    ("in the appropriate clinical setting", CONDITIONAL),
    ("in the proper clinical setting", CONDITIONAL),
    ("in the right clinical setting", CONDITIONAL),
    ("in the correct clinical setting", CONDITIONAL),
    ("in the appropriate clinical context", CONDITIONAL),
    ("suggesting", kind(Hedge::Suspicion, link(Forward, High))),
    ("suggests", kind(Hedge::Suspicion, link(Forward, High))),
    ("suggest", kind(Hedge::Suspicion, link(Forward, High))),
    ("to suggest", kind(Hedge::Suspicion, link(Forward, High))),
    ("to indicate", kind(Hedge::Suspicion, link(Forward, High))),
    ("may be due to", hedge(Forward, Moderate)),
    ("could be due to", hedge(Forward, Moderate)),
    ("might be due to", hedge(Forward, Moderate)),
    ("possibly due to", hedge(Forward, Moderate)),
    // One word in careless typing; "due to" alone ends every scope.
    ("maybe due to", hedge(Forward, Moderate)),
    ("maybe secondary to", hedge(Forward, Moderate)),
    ("likely due to", hedge(Forward, High)),
    ("probably due to", hedge(Forward, High)),
    ("may be secondary to", hedge(Forward, Moderate)),
    ("could be secondary to", hedge(Forward, Moderate)),
    ("likely secondary to", hedge(Forward, High)),
    // "Most consistent with" states the reading, as "consistent with" does.
    ("most consistent with", supports()),
    ("most compatible with", supports()),
    // Scintigraphic probability categories (PIOPED): the category is the hedge.
    ("high probability for", hedge(Forward, High)),
    ("high probability of", hedge(Forward, High)),
    ("intermediate probability for", hedge(Forward, Moderate)),
    ("intermediate probability of", hedge(Forward, Moderate)),
    ("low probability for", hedge(Forward, Low)),
    ("low probability of", hedge(Forward, Low)),
    ("presumed", hedge(Forward, High)),
    ("presumably", hedge(Forward, High)),
    ("favor", hedge(Forward, High)),
    ("favored", hedge(Forward, High)),
    ("favoring", hedge(Forward, High)),
    (
        "differential includes",
        kind(Hedge::Differential, hedge(Forward, Low)),
    ),
    // "Differential for the fullness includes X".
    (
        "differential",
        kind(Hedge::Differential, hedge(Forward, Low)),
    ),
    (
        "differential diagnosis includes",
        kind(Hedge::Differential, hedge(Forward, Low)),
    ),
    (
        "differential diagnosis",
        kind(Hedge::Differential, hedge(Forward, Low)),
    ),
    (
        "differential considerations include",
        kind(Hedge::Differential, hedge(Forward, Low)),
    ),
    // Both alternatives are in doubt: "atelectasis versus scarring".
    ("versus", alternatives()),
    ("vs", alternatives()),
    // "X and/or Y" reports a combined observation, not a doubt.
    ("and/or", NONE),
    (
        "or",
        Cue {
            alternative: true,
            ..NONE
        },
    ),
    (
        "cannot exclude",
        kind(Hedge::Exclusion, hedge(Forward, Moderate)),
    ),
    (
        "can not exclude",
        kind(Hedge::Exclusion, hedge(Forward, Moderate)),
    ),
    (
        "cannot rule out",
        kind(Hedge::Exclusion, hedge(Forward, Moderate)),
    ),
    (
        "can not rule out",
        kind(Hedge::Exclusion, hedge(Forward, Moderate)),
    ),
    (
        "could not rule out",
        kind(Hedge::Exclusion, hedge(Forward, Moderate)),
    ),
    (
        "not rule out",
        kind(Hedge::Exclusion, hedge(Forward, Moderate)),
    ),
    (
        "difficult to exclude",
        kind(Hedge::Exclusion, hedge(Both, Low)),
    ),
    (
        "not exclude",
        kind(Hedge::Exclusion, hedge(Forward, Moderate)),
    ),
    (
        "cannot be excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "can not be excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "could not be excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "cannot be ruled out",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "not ruled out",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    ("not excluded", kind(Hedge::Exclusion, hedge(Backward, Low))),
    (
        "not entirely excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "not completely excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "not definitely excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "not be excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "cannot be entirely excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "cannot be completely excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "cannot be confidently excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "cannot be definitely excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "cannot be totally excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "can not be entirely excluded",
        kind(Hedge::Exclusion, hedge(Backward, Low)),
    ),
    (
        "difficult to entirely exclude",
        kind(Hedge::Exclusion, hedge(Both, Low)),
    ),
    // "Appendicitis?" asks about what it follows; see [`QUERY_AHEAD`] for
    // the "?" that opens a clause.
    ("?", kind(Hedge::Question, hedge(Backward, Moderate))),
    // A hedge after its term: "nodule is a possibility".
    ("a possibility", hedge(Backward, Moderate)),
    ("also a possibility", hedge(Backward, Moderate)),
    // --- temporality
    ("history of", when(Forward, Temporality::Historical)),
    ("h/o", when(Forward, Temporality::Historical)),
    ("hx of", when(Forward, Temporality::Historical)),
    (
        "past medical history",
        when(Forward, Temporality::Historical),
    ),
    ("status post", when(Forward, Temporality::Historical)),
    ("s/p", when(Forward, Temporality::Historical)),
    ("previous history", when(Forward, Temporality::Historical)),
    ("prior history", when(Forward, Temporality::Historical)),
    ("old", when(Forward, Temporality::Historical)),
    ("remote", when(Forward, Temporality::Historical)),
    ("healed", when(Forward, Temporality::Historical)),
    ("previous", when(Forward, Temporality::Historical)),
    ("prior", when(Forward, Temporality::Historical)),
    ("compared to prior", NONE),
    ("compared with prior", NONE),
    ("since prior", NONE),
    ("to prior", NONE),
    ("prior study", NONE),
    ("prior studies", NONE),
    ("prior exam", NONE),
    ("prior exams", NONE),
    ("prior examination", NONE),
    ("prior radiograph", NONE),
    ("prior radiographs", NONE),
    ("prior film", NONE),
    ("prior films", NONE),
    ("prior imaging", NONE),
    ("prior ct", NONE),
    ("prior mri", NONE),
    ("prior chest", NONE),
    ("prior x-ray", NONE),
    ("prior comparison", NONE),
    ("previous study", NONE),
    ("previous exam", NONE),
    ("previous examination", NONE),
    ("previous radiograph", NONE),
    ("previous film", NONE),
    ("previous ct", NONE),
    // Seen on an earlier study: "on a previous CT the lobe was consolidated".
    ("on a previous", when(Forward, Temporality::Historical)),
    ("on the previous", when(Forward, Temporality::Historical)),
    ("on prior", when(Forward, Temporality::Historical)),
    ("on the prior", when(Forward, Temporality::Historical)),
    // Not historical: the comparison study, not the finding.
    ("compared to previous", NONE),
    ("compared with previous", NONE),
    ("since previous", NONE),
    ("from previous", NONE),
    ("in the past", when(Backward, Temporality::Historical)),
    // History section labels inside a sentence (the colon is part of the
    // cue, so it does not end the scope it opens).
    (
        "past medical history:",
        when(Forward, Temporality::Historical),
    ),
    ("medical history:", when(Forward, Temporality::Historical)),
    ("past history:", when(Forward, Temporality::Historical)),
    ("social history:", when(Forward, Temporality::Historical)),
    ("surgical history:", when(Forward, Temporality::Historical)),
    ("pmh:", when(Forward, Temporality::Historical)),
    // Not historical: the present illness, and ages ("a 60-year-old").
    ("history of present illness", NONE),
    ("day history of", NONE),
    ("days history of", NONE),
    ("week history of", NONE),
    ("weeks history of", NONE),
    ("year-old", NONE),
    ("year old", NONE),
    ("years old", NONE),
    ("month-old", NONE),
    ("week-old", NONE),
    ("day-old", NONE),
    // Instructions for what may happen.
    ("call for", when(Forward, Temporality::Hypothetical)),
    ("call also for", when(Forward, Temporality::Hypothetical)),
    ("call if", when(Forward, Temporality::Hypothetical)),
    ("return if", when(Forward, Temporality::Hypothetical)),
    ("return for", when(Forward, Temporality::Hypothetical)),
    ("evaluate", when(Forward, Temporality::Hypothetical)),
    ("evaluate for", when(Forward, Temporality::Hypothetical)),
    ("evaluation for", when(Forward, Temporality::Hypothetical)),
    ("eval for", when(Forward, Temporality::Hypothetical)),
    ("assess for", when(Forward, Temporality::Hypothetical)),
    ("assessment for", when(Forward, Temporality::Hypothetical)),
    ("to assess", when(Forward, Temporality::Hypothetical)),
    ("screen for", when(Forward, Temporality::Hypothetical)),
    // What a test can show, not what it showed: "CT is more sensitive in
    // detecting small nodules".
    ("in detecting", when(Forward, Temporality::Hypothetical)),
    ("for detecting", when(Forward, Temporality::Hypothetical)),
    ("to detect", when(Forward, Temporality::Hypothetical)),
    ("for detection of", when(Forward, Temporality::Hypothetical)),
    (
        "for the detection of",
        when(Forward, Temporality::Hypothetical),
    ),
    (
        "in the detection of",
        when(Forward, Temporality::Hypothetical),
    ),
    ("correlate for", when(Forward, Temporality::Hypothetical)),
    (
        "correlate clinically for",
        when(Forward, Temporality::Hypothetical),
    ),
    (
        "clinical correlation for",
        when(Forward, Temporality::Hypothetical),
    ),
    ("screening for", when(Forward, Temporality::Hypothetical)),
    (
        "rule out",
        and_when(
            kind(Hedge::Question, hedge(Forward, Moderate)),
            Forward,
            Temporality::Hypothetical,
        ),
    ),
    (
        "to rule out",
        and_when(
            kind(Hedge::Question, hedge(Forward, Moderate)),
            Forward,
            Temporality::Hypothetical,
        ),
    ),
    (
        "r/o",
        and_when(
            kind(Hedge::Question, hedge(Forward, Moderate)),
            Forward,
            Temporality::Hypothetical,
        ),
    ),
    (
        "rule-out",
        and_when(
            kind(Hedge::Question, hedge(Forward, Moderate)),
            Forward,
            Temporality::Hypothetical,
        ),
    ),
    (
        "exclude",
        and_when(
            kind(Hedge::Question, hedge(Forward, Moderate)),
            Forward,
            Temporality::Hypothetical,
        ),
    ),
    (
        "to exclude",
        and_when(
            kind(Hedge::Question, hedge(Forward, Moderate)),
            Forward,
            Temporality::Hypothetical,
        ),
    ),
    ("if", when(Forward, Temporality::Hypothetical)),
    ("in case of", when(Forward, Temporality::Hypothetical)),
    ("should", when(Forward, Temporality::Hypothetical)),
    ("risk of", when(Forward, Temporality::Hypothetical)),
    ("risk for", when(Forward, Temporality::Hypothetical)),
    ("at risk for", when(Forward, Temporality::Hypothetical)),
    // --- change
    ("new", change(Change::New)),
    ("newly", change(Change::New)),
    ("interval development of", change(Change::New)),
    ("interval appearance of", change(Change::New)),
    ("development of", change(Change::New)),
    ("developing", change(Change::New)),
    ("increased", change(Change::Increased)),
    ("increasing", change(Change::Increased)),
    ("increase in", change(Change::Increased)),
    ("interval increase", change(Change::Increased)),
    // Not bare "larger"/"smaller": "effusions, larger on the right" compares
    // sides, not studies.
    ("larger than prior", change(Change::Increased)),
    ("larger than previously", change(Change::Increased)),
    ("now larger", change(Change::Increased)),
    ("has enlarged", change(Change::Increased)),
    // "observation in segment 6, enlarged since prior": a change, not an
    // organ's enlargement.
    ("enlarged since", change(Change::Increased)),
    ("grown", change(Change::Increased)),
    // Not bare "growth": "growth plate" is anatomy.
    ("interval growth", change(Change::Increased)),
    ("growth of", change(Change::Increased)),
    ("continued growth", change(Change::Increased)),
    ("grew", change(Change::Increased)),
    ("growing", change(Change::Increased)),
    ("enlarging", change(Change::Increased)),
    ("worsened", change(Change::Increased)),
    ("worsening", change(Change::Increased)),
    ("worse", change(Change::Increased)),
    ("progressed", change(Change::Increased)),
    ("progression", change(Change::Increased)),
    ("progressive", change(Change::Increased)),
    ("more prominent", change(Change::Increased)),
    ("more pronounced", change(Change::Increased)),
    // Tracer uptake compared with the prior scan: "the T11 focus is also
    // more intense".
    ("more intense", change(Change::Increased)),
    ("more avid", change(Change::Increased)),
    ("decreased", change(Change::Decreased)),
    ("decreasing", change(Change::Decreased)),
    ("decrease in", change(Change::Decreased)),
    // "Decreased size of the treated metastasis": a change of what follows.
    ("decreased size", change(Change::Decreased)),
    ("reduced size", change(Change::Decreased)),
    ("diminished size", change(Change::Decreased)),
    ("interval decrease", change(Change::Decreased)),
    ("smaller than prior", change(Change::Decreased)),
    ("smaller than previously", change(Change::Decreased)),
    ("now smaller", change(Change::Decreased)),
    ("improved", change(Change::Decreased)),
    ("improving", change(Change::Decreased)),
    ("improvement", change(Change::Decreased)),
    ("diminished", change(Change::Decreased)),
    ("diminishing", change(Change::Decreased)),
    ("regression", change(Change::Decreased)),
    ("regressed", change(Change::Decreased)),
    ("interval reduction", change(Change::Decreased)),
    ("reduction in size", change(Change::Decreased)),
    ("reduction in", change(Change::Decreased)),
    ("reduction of", change(Change::Decreased)),
    ("has reduced", change(Change::Decreased)),
    ("have reduced", change(Change::Decreased)),
    ("reduced markedly", change(Change::Decreased)),
    // Not bare "smaller": "the left kidney is smaller than the right"
    // compares sides.
    ("slightly smaller", change(Change::Decreased)),
    ("smaller than before", change(Change::Decreased)),
    ("is smaller, now", change(Change::Decreased)),
    ("are smaller, now", change(Change::Decreased)),
    ("is now smaller", change(Change::Decreased)),
    // "The treated metastasis is smaller.": smaller than it was; "smaller
    // than the left" compares sides, "than the prior" studies.
    ("is smaller", change(Change::Decreased)),
    ("are smaller", change(Change::Decreased)),
    ("is larger", change(Change::Increased)),
    ("are larger", change(Change::Increased)),
    ("is smaller than the", NONE),
    ("are smaller than the", NONE),
    ("is larger than the", NONE),
    ("are larger than the", NONE),
    ("is smaller than the prior", change(Change::Decreased)),
    ("are smaller than the prior", change(Change::Decreased)),
    ("is larger than the prior", change(Change::Increased)),
    ("are larger than the prior", change(Change::Increased)),
    ("is smaller than the previous", change(Change::Decreased)),
    ("are smaller than the previous", change(Change::Decreased)),
    ("is larger than the previous", change(Change::Increased)),
    ("are larger than the previous", change(Change::Increased)),
    // Response to treatment: "partial response of the primary tumour".
    ("partial response of", change(Change::Decreased)),
    ("partial response in", change(Change::Decreased)),
    ("larger than before", change(Change::Increased)),
    ("reduced in size", change(Change::Decreased)),
    ("shrunk", change(Change::Decreased)),
    ("shrinkage", change(Change::Decreased)),
    ("less prominent", change(Change::Decreased)),
    ("less intense", change(Change::Decreased)),
    ("less avid", change(Change::Decreased)),
    ("less pronounced", change(Change::Decreased)),
    // See [`persists`].
    ("stable", persists()),
    ("grossly stable", persists()),
    ("unchanged", persists()),
    ("persistent", persists()),
    ("persists", change(Change::Stable)),
    ("persisting", persists()),
    ("again seen", change(Change::Stable)),
    ("again noted", change(Change::Stable)),
    ("again demonstrated", change(Change::Stable)),
    ("again identified", change(Change::Stable)),
    ("redemonstrated", change(Change::Stable)),
    ("redemonstration of", change(Change::Stable)),
    ("similar", change(Change::Stable)),
    ("similar to prior", change(Change::Stable)),
    // --- laterality
    // A spinal curve is named by its convexity: dextroscoliosis is convex
    // to the right.
    ("dextroscoliosis", side(Laterality::Right)),
    ("dextroscoliotic", side(Laterality::Right)),
    ("dextrocurvature", side(Laterality::Right)),
    ("dextroconvex", side(Laterality::Right)),
    ("dextro", side(Laterality::Right)),
    ("levoscoliosis", side(Laterality::Left)),
    ("levoscoliotic", side(Laterality::Left)),
    ("levocurvature", side(Laterality::Left)),
    ("levoconvex", side(Laterality::Left)),
    ("levo", side(Laterality::Left)),
    ("left", side(Laterality::Left)),
    ("left-sided", side(Laterality::Left)),
    ("right", side(Laterality::Right)),
    ("right-sided", side(Laterality::Right)),
    ("r", side_letter(Laterality::Right)),
    ("l", side_letter(Laterality::Left)),
    // The abdominal quadrants and the lung lobes, abbreviated with their
    // side: "fluid in the RUQ", "RLL consolidation".
    ("ruq", side(Laterality::Right)),
    ("rlq", side(Laterality::Right)),
    ("luq", side(Laterality::Left)),
    ("llq", side(Laterality::Left)),
    ("rul", side(Laterality::Right)),
    ("rml", side(Laterality::Right)),
    ("rll", side(Laterality::Right)),
    ("lul", side(Laterality::Left)),
    ("lll", side(Laterality::Left)),
    // The mediastinal and hilar nodal stations name their side:
    // "station 4L node", "10R".
    ("1r", side(Laterality::Right)),
    ("1l", side(Laterality::Left)),
    ("2r", side(Laterality::Right)),
    ("2l", side(Laterality::Left)),
    ("4r", side(Laterality::Right)),
    ("4l", side(Laterality::Left)),
    ("10r", side(Laterality::Right)),
    ("10l", side(Laterality::Left)),
    ("11r", side(Laterality::Right)),
    ("11l", side(Laterality::Left)),
    ("12r", side(Laterality::Right)),
    ("12l", side(Laterality::Left)),
    ("station 1r", side(Laterality::Right)),
    ("station 1l", side(Laterality::Left)),
    ("station 2r", side(Laterality::Right)),
    ("station 2l", side(Laterality::Left)),
    ("station 4r", side(Laterality::Right)),
    ("station 4l", side(Laterality::Left)),
    ("station 10r", side(Laterality::Right)),
    ("station 10l", side(Laterality::Left)),
    ("bilateral", side(Laterality::Bilateral)),
    // "No hydronephrosis on either side", "in either breast".
    ("either side", side(Laterality::Bilateral)),
    ("on either side", side(Laterality::Bilateral)),
    ("both sides", side(Laterality::Bilateral)),
    ("either breast", side(Laterality::Bilateral)),
    ("both breasts", side(Laterality::Bilateral)),
    ("either kidney", side(Laterality::Bilateral)),
    ("both kidneys", side(Laterality::Bilateral)),
    ("either lung", side(Laterality::Bilateral)),
    ("either ovary", side(Laterality::Bilateral)),
    ("both ovaries", side(Laterality::Bilateral)),
    ("either testis", side(Laterality::Bilateral)),
    ("both testes", side(Laterality::Bilateral)),
    ("bilaterally", side(Laterality::Bilateral)),
    ("both", side(Laterality::Bilateral)),
    ("bibasilar", side(Laterality::Bilateral)),
    ("bibasal", side(Laterality::Bilateral)),
    ("biapical", side(Laterality::Bilateral)),
    ("left and right", side(Laterality::Bilateral)),
    ("right and left", side(Laterality::Bilateral)),
    ("left greater than right", side(Laterality::Bilateral)),
    ("right greater than left", side(Laterality::Bilateral)),
    ("right larger than left", side(Laterality::Bilateral)),
    ("left larger than right", side(Laterality::Bilateral)),
    ("right more than left", side(Laterality::Bilateral)),
    ("left more than right", side(Laterality::Bilateral)),
    ("right worse than left", side(Laterality::Bilateral)),
    ("left worse than right", side(Laterality::Bilateral)),
    ("lung bases", side(Laterality::Bilateral)),
    ("bases", side(Laterality::Bilateral)),
    ("lung apices", side(Laterality::Bilateral)),
    ("apices", side(Laterality::Bilateral)),
    ("both lungs", side(Laterality::Bilateral)),
    ("costophrenic angles", side(Laterality::Bilateral)),
    // Where a lesion lies, not where something moved.
    ("eccentric to the right", side(Laterality::Right)),
    ("eccentric to the left", side(Laterality::Left)),
    ("to the right", direction(Laterality::Right)),
    ("to the left", direction(Laterality::Left)),
    ("toward the right", direction(Laterality::Right)),
    ("toward the left", direction(Laterality::Left)),
    ("towards the right", direction(Laterality::Right)),
    ("towards the left", direction(Laterality::Left)),
    ("rightward", direction(Laterality::Right)),
    ("leftward", direction(Laterality::Left)),
    // --- scope terminators
    ("but", TERMINATOR),
    ("however", TERMINATOR),
    ("although", TERMINATOR),
    ("though", TERMINATOR),
    ("yet", TERMINATOR),
    ("nevertheless", TERMINATOR),
    ("still", TERMINATOR),
    ("except", TERMINATOR),
    ("except for", TERMINATOR),
    ("aside from", TERMINATOR),
    ("apart from", TERMINATOR),
    ("other than", TERMINATOR),
    ("with the exception of", TERMINATOR),
    ("otherwise", TERMINATOR),
    ("which", TERMINATOR),
    ("who", TERMINATOR),
    ("whereas", TERMINATOR),
    ("while", TERMINATOR),
    ("secondary to", TERMINATOR),
    ("due to", TERMINATOR),
    ("because of", TERMINATOR),
    ("cause of", TERMINATOR),
    ("source of", TERMINATOR),
    ("etiology of", TERMINATOR),
    ("and there", TERMINATOR),
    // A negated clause closed by its verb: "no effusion seen, mild
    // cardiomegaly".
    ("seen,", NEGATION_TERMINATOR),
    ("identified,", NEGATION_TERMINATOR),
    ("noted,", NEGATION_TERMINATOR),
    ("demonstrated,", NEGATION_TERMINATOR),
    ("visualized,", NEGATION_TERMINATOR),
    // A new subject starts a new clause: "no effusion, and the heart is
    // enlarged". Hedges still carry over ("possible effusion and the ...").
    ("and the", NEGATION_TERMINATOR),
    // The report's reading of what it has described is a clause of its own:
    // "in the absence of an appropriate history these findings are highly
    // suspicious for non-accidental injury".
    ("these findings", TERMINATOR),
    ("this finding", TERMINATOR),
    ("these appearances", TERMINATOR),
    ("the appearances", TERMINATOR),
    ("with", NEGATION_TERMINATOR),
    // "with" inside these phrases links, it does not start a new clause.
    ("consistent with", NONE),
    // Asserts like "consistent with": both state the reading the images
    // support (ACR reporting usage); "may be compatible with" stays a hedge.
    ("compatible with", supports()),
    ("in keeping with", NONE),
    // After a comma the reading is a clause of its own: in "in the absence
    // of an intrauterine pregnancy, consistent with an ectopic pregnancy"
    // the negation does not reach the ectopic pregnancy ("no findings
    // consistent with pneumonia", without the comma, still denies it).
    (", consistent with", NEGATION_TERMINATOR),
    (
        ", most consistent with",
        Cue {
            ends_negation: true,
            ..supports()
        },
    ),
    (
        ", compatible with",
        Cue {
            ends_negation: true,
            ..supports()
        },
    ),
    (", in keeping with", NEGATION_TERMINATOR),
    ("not consistent with", negate(Forward)),
    ("not compatible with", negate(Forward)),
    (";", TERMINATOR),
    (":", TERMINATOR),
];

/// Words that never follow a side letter: "L and R" names no place, and
/// a letter before one is something else.
const NOT_AFTER_A_SIDE: [&str; 12] = [
    "and", "or", "of", "to", "the", "in", "on", "at", "is", "was", "with", "for",
];

/// Whether the capital letter at `start..end` of `bytes` abbreviates a side
/// ("R lower lobe", "L cerebellar hemisphere", "R ICA", "L LOWER LOBE"): an
/// upper-case "R" or "L" standing alone, not after a number ("1.5 L of
/// fluid" is litres), followed by one space and a word in lower case or in
/// capitals (not a name: "Dr. R Smith"). Spine levels ("L4-5", "L1") are
/// one word with their digits, and "R/O" or "L-" have no space after the
/// letter, so neither is a side.
pub(crate) fn abbreviates_a_side(bytes: &[u8], start: usize, end: usize) -> bool {
    let letter = &bytes[start..end];
    if !matches!(letter, [b'R' | b'L']) {
        return false;
    }
    let before = bytes[..start].trim_ascii_end();
    let opens = bytes[..start]
        .last()
        .is_none_or(|&b| b.is_ascii_whitespace() || matches!(b, b'(' | b',' | b':' | b';'));
    if !opens || before.last().is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let Some(rest) = bytes[end..].strip_prefix(b" ") else {
        return false;
    };
    let word_len = rest.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let word = &rest[..word_len];
    let lower_or_capitals =
        word.iter().all(u8::is_ascii_lowercase) || word.iter().all(u8::is_ascii_uppercase);
    word_len >= 2
        && rest.get(word_len).is_none_or(|&b| !b.is_ascii_digit())
        && lower_or_capitals
        && !NOT_AFTER_A_SIDE
            .iter()
            .any(|w| word.eq_ignore_ascii_case(w.as_bytes()))
}

/// A "?" that opens a clause queries what follows it: "collection, ?
/// early abscess", "plaque, ?ulcerated", "haemoperitoneum – ? leak".
const QUERY_AHEAD: Cue = kind(Hedge::Question, hedge(Forward, Moderate));

/// The cue `cue` found at `start..end` of `bytes`, turned to face the way it
/// reads there: a "?" after a space or a separator and before a word asks
/// about that word, not about what came before it.
pub(crate) fn oriented(cue: &'static Cue, bytes: &[u8], start: usize, end: usize) -> &'static Cue {
    if &bytes[start..end] != b"?" {
        return cue;
    }
    let opens_a_clause = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
    let asks_ahead = bytes[end..]
        .iter()
        .find(|b| **b != b' ')
        .is_some_and(u8::is_ascii_alphanumeric);
    if opens_a_clause && asks_ahead {
        &QUERY_AHEAD
    } else {
        cue
    }
}

/// A cue found in a sentence (byte offsets).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CueHit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) cue: &'static Cue,
}

/// Whether a scope from `from` to `to` is cut: by a terminator cue, or by a
/// parenthesis that one end is inside and the other is not ("(slides not
/// submitted) indicate X", "the nodule (not seen on the lateral) is").
pub(super) fn ends_scope(bytes: &[u8], cues: &[CueHit], from: usize, to: usize) -> bool {
    crosses_parenthesis(&bytes[from..to])
        || cues
            .iter()
            .any(|c| c.cue.terminates && c.start >= from && c.end <= to)
}

fn crosses_parenthesis(span: &[u8]) -> bool {
    let mut depth: i32 = 0;
    for &b in span {
        match b {
            b'(' => depth += 1,
            b')' if depth == 0 => return true,
            b')' => depth -= 1,
            _ => {}
        }
    }
    depth != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cue_phrases_are_unique_and_lower_case() {
        let mut seen = std::collections::HashSet::new();
        for (phrase, _) in CUES {
            assert!(seen.insert(*phrase), "duplicate cue {phrase:?}");
            assert_eq!(*phrase, phrase.to_ascii_lowercase());
        }
    }

    #[test]
    fn a_capital_r_or_l_before_an_anatomical_word_is_a_side() {
        // The first `letter` standing as a word of `text`.
        let side = |text: &str, letter: &str| {
            let bytes = text.as_bytes();
            let alone = |at: usize| {
                (at == 0 || !bytes[at - 1].is_ascii_alphanumeric())
                    && bytes.get(at + 1).is_none_or(|b| !b.is_ascii_alphanumeric())
            };
            let start = text
                .match_indices(letter)
                .map(|(at, _)| at)
                .find(|&at| alone(at))
                .expect("letter in text");
            abbreviates_a_side(bytes, start, start + 1)
        };
        assert!(side("Consolidation in the R lower lobe.", "R"));
        assert!(side("L cerebellar infarct.", "L"));
        assert!(side("Plaque in the R ICA.", "R"));
        assert!(side("NODULE IN THE L LOWER LOBE.", "L"));
        assert!(side("Pain (R hip).", "R"));
        // Litres, names, "R/O", a letter before a function word, lower case.
        assert!(!side("1.5 L of fluid was drained.", "L"));
        assert!(!side("Thoracentesis, 1 L removed.", "L"));
        assert!(!side("Discussed with Dr. R Smith.", "R"));
        assert!(!side("Opacity, R/O pneumonia.", "R"));
        assert!(!side("Both kidneys, L and R, are normal.", "L"));
        assert!(!side("The r lower lobe.", "r"));
    }

    #[test]
    fn every_abbreviated_cue_is_a_side_letter() {
        for (phrase, cue) in CUES {
            if cue.abbreviated {
                assert!(phrase.len() == 1 && cue.side.is_some(), "{phrase:?}");
            }
        }
    }

    #[test]
    fn every_hedge_cue_has_a_certainty_and_a_kind_and_no_other_cue_does() {
        for (phrase, cue) in CUES {
            let hedges = matches!(cue.polarity, Some((_, Polarity::Hedge | Polarity::Link)));
            assert_eq!(hedges, cue.certainty.is_some(), "{phrase:?}");
            assert_eq!(hedges, cue.hedge.is_some(), "{phrase:?}");
        }
    }
}
