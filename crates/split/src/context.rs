//! Context of a finding mention inside its sentence: assertion (negation and
//! hedging), temporality, change and laterality — a ConText-style cue
//! grammar tuned for radiology language.
//!
//! A sentence is scanned once with one automaton of cue phrases. Each cue
//! can act forward (`no pneumothorax`), backward (`pneumothorax is not seen`)
//! or both (`atelectasis versus pneumonia`). A cue's scope ends at a
//! terminator (`but`, `however`, `which`, `;` ...) or at the sentence end.
//! When several cues reach a mention, the nearest one decides: in
//! "No effusion. Possible atelectasis" or "no effusion, possible
//! atelectasis" the hedge, not the negation, governs atelectasis.
//! Pseudo-negations (`no change in`, `not only`) are longer cues that win
//! over `no`/`not` by leftmost-longest matching and affirm what follows.

use crate::words::word_count;
use crate::{Assertion, Certainty, Change, Hedge, Laterality, Temporality};

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
    /// Joins alternatives ("pneumonia or aspiration"); see [`judge`].
    pub(crate) alternative: bool,
    /// Ends every scope (`but`, `however`, `;`).
    pub(crate) terminates: bool,
    /// See [`NEGATION_TERMINATOR`].
    pub(crate) ends_negation: bool,
    /// Says a finding persists ("stable atelectasis"): see [`persists`].
    pub(crate) persists: bool,
    /// Makes the sentence's readings conditional on the clinical picture
    /// ("in the appropriate clinical setting"): see [`hedge_grade`].
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
    ("has been removed", negate(Backward)),
    ("have been removed", negate(Backward)),
    // --- negation that is also a change
    ("no longer", and_change(negate(Both), Change::Resolved)),
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
    (
        "indeterminate",
        kind(Hedge::Question, hedge(Backward, Moderate)),
    ),
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
    ("?", kind(Hedge::Question, hedge(Backward, Moderate))),
    // A hedge after its term: "nodule is a possibility".
    ("is a possibility", hedge(Backward, Moderate)),
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
    ("from prior", NONE),
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
    ("grown", change(Change::Increased)),
    ("enlarging", change(Change::Increased)),
    ("worsened", change(Change::Increased)),
    ("worsening", change(Change::Increased)),
    ("worse", change(Change::Increased)),
    ("progressed", change(Change::Increased)),
    ("progression", change(Change::Increased)),
    ("progressive", change(Change::Increased)),
    ("more prominent", change(Change::Increased)),
    ("more pronounced", change(Change::Increased)),
    ("decreased", change(Change::Decreased)),
    ("decreasing", change(Change::Decreased)),
    ("decrease in", change(Change::Decreased)),
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
    ("less prominent", change(Change::Decreased)),
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
    ("with", NEGATION_TERMINATOR),
    // "with" inside these phrases links, it does not start a new clause.
    ("consistent with", NONE),
    // Asserts like "consistent with": both state the reading the images
    // support (ACR reporting usage); "may be compatible with" stays a hedge.
    ("compatible with", supports()),
    ("in keeping with", NONE),
    ("not consistent with", negate(Forward)),
    ("not compatible with", negate(Forward)),
    (";", TERMINATOR),
    (":", TERMINATOR),
];

/// A cue found in a sentence (byte offsets).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CueHit {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) cue: &'static Cue,
}

/// What the context says about one mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Judgement {
    pub(crate) assertion: Assertion,
    pub(crate) temporality: Temporality,
    pub(crate) change: Option<Change>,
    pub(crate) laterality: Option<Laterality>,
    /// The certainty of the hedge that made the mention possible.
    pub(crate) certainty: Option<Certainty>,
    /// The kind of that hedge.
    pub(crate) hedge: Option<Hedge>,
}

/// A forward negation reaches at most this many words: far enough for a
/// list ("no focal consolidation, pleural effusion, or pneumothorax"), not
/// so far that it swallows the next clause.
const MAX_NEGATION_WORDS: usize = 12;

/// How many words may stand between a two-way cue and the mention it
/// modifies ("questionable small interstitial edema").
const MODIFIER_WORDS: usize = 2;

/// Judges the mention whose focus is `text[focus_start..focus_end]`, given
/// the sentence's cues (from [`Cues::scan`]) and the starts/ends of the other
/// mentions of the sentence (`others`, used to keep laterality and change
/// local to their own mention).
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
        cues.iter()
            .any(|c| c.cue.ends_negation && c.start >= from && c.end <= to)
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
            (!modifies_next
                && !past_its_alternative
                && !past_with
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
        Some((_, Polarity::Link, _)) if link_negated(cues, focus_start) => {
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
    Judgement {
        assertion,
        temporality: temporality.map_or(Temporality::Current, |(_, t)| t),
        change: nearest_local(bytes, cues, focus_start, focus_end, others, |c| c.change),
        // A finding with no side of its own takes the side of the observation
        // it explains: "left basilar opacity compatible with atelectasis".
        laterality: direction_after(bytes, cues, focus_end)
            .or_else(|| direction_before(bytes, cues, focus_start))
            .or_else(|| {
                nearest_local(bytes, cues, focus_start, focus_end, others, |c| {
                    c.side.filter(|_| !c.direction)
                })
            })
            .or_else(|| {
                (!is_shift(&bytes[focus_start..focus_end]))
                    .then(|| inherited_side(bytes, cues, focus_start, focus_end))
                    .flatten()
            }),
        certainty: grade.map(|(certainty, _)| certainty),
        hedge: grade.map(|(_, kind)| kind),
    }
}

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
fn hedge_grade(
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

/// A direction right before the mention, modifying it ("leftward midline
/// shift", "4 mm of leftward shift"): no word between, so the direction of
/// one shift is not passed on ("shift to the right and herniation").
fn direction_before(bytes: &[u8], cues: &[CueHit], focus_start: usize) -> Option<Laterality> {
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
fn is_shift(term: &[u8]) -> bool {
    [&b"shift"[..], b"herniation"].iter().any(|word| {
        term.len() >= word.len() && term[term.len() - word.len()..].eq_ignore_ascii_case(word)
    })
}

/// A direction phrase that is the first cue after the mention in its clause
/// ("shift to the right", "shift of 4 mm to the right"): it names the
/// mention's own side, whatever side the sentence named before.
fn direction_after(bytes: &[u8], cues: &[CueHit], focus_end: usize) -> Option<Laterality> {
    cues.iter()
        .find(|hit| hit.start >= focus_end)
        .filter(|hit| {
            hit.cue.direction
                && !bytes[focus_end..hit.start]
                    .iter()
                    .any(|b| matches!(b, b',' | b';' | b'.' | b':' | b'(' | b')'))
                && !names_a_place(bytes, hit)
        })
        .and_then(|hit| hit.cue.side)
}

/// Whether the nearest linking hedge before `focus_start` is itself under a
/// negation: "no focal opacity to suggest pneumonia".
fn link_negated(cues: &[CueHit], focus_start: usize) -> bool {
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
            Some((Forward | Both, polarity)) if polarity != Polarity::Link => Some(polarity),
            _ => None,
        })
        == Some(Polarity::Negate)
}

/// The value of the nearest cue in the mention's own clause that carries one:
/// not across a terminator, and not past another mention (which then owns
/// the cue: "increased right effusion and stable left atelectasis"). A cue
/// before the mention (a modifier: "stable left effusion") wins over one
/// after it ("effusion, unchanged").
fn nearest_local<T: Copy>(
    bytes: &[u8],
    cues: &[CueHit],
    focus_start: usize,
    focus_end: usize,
    others: &[(usize, usize)],
    value: impl Fn(&Cue) -> Option<T>,
) -> Option<T> {
    let mut before: Option<(usize, T)> = None;
    let mut after: Option<(usize, T)> = None;
    for hit in cues {
        let Some(v) = value(hit.cue) else { continue };
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
        if with_between
            || ends_scope(bytes, cues, from, to)
            || others.iter().any(|&(s, e)| s >= from && e <= to)
        {
            continue;
        }
        let gap = to - from;
        if slot.is_none_or(|(best, _)| gap < best) {
            *slot = Some((gap, v));
        }
    }
    before.or(after).map(|(_, v)| v)
}

/// The side of a finding that states none next to it: the nearest side cue
/// before it in the clause, whatever lies between ("left basilar opacity
/// compatible with atelectasis"), else the nearest after it in a coordinated
/// list ("opacity and atelectasis at the left base") but not across "with"
/// ("heart failure with bilateral effusions"). A direction ("rightward",
/// "to the left") is never inherited: it is the way something moved, not
/// where a finding lies ("left pneumothorax with rightward shift, compatible
/// with tension pneumothorax").
fn inherited_side(
    bytes: &[u8],
    cues: &[CueHit],
    focus_start: usize,
    focus_end: usize,
) -> Option<Laterality> {
    let before = cues
        .iter()
        .rev()
        .filter(|hit| hit.end <= focus_start && !hit.cue.direction)
        .find_map(|hit| hit.cue.side.map(|side| (hit, side)))
        .filter(|(hit, _)| !ends_scope(bytes, cues, hit.end, focus_start))
        .map(|(_, side)| side);
    let after = || {
        cues.iter()
            .filter(|hit| hit.start >= focus_end && !hit.cue.direction)
            .find_map(|hit| hit.cue.side.map(|side| (hit, side)))
            .filter(|(hit, _)| {
                !ends_scope(bytes, cues, focus_end, hit.start)
                    && !cues
                        .iter()
                        .any(|c| c.cue.ends_negation && c.start >= focus_end && c.end <= hit.start)
            })
            .map(|(_, side)| side)
    };
    before.or_else(after)
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

/// Whether a scope from `from` to `to` is cut: by a terminator cue, or by a
/// parenthesis that one end is inside and the other is not ("(slides not
/// submitted) indicate X", "the nodule (not seen on the lateral) is").
fn ends_scope(bytes: &[u8], cues: &[CueHit], from: usize, to: usize) -> bool {
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

    /// Judges the first occurrence of `term` in `sentence`, the only mention.
    fn judge_term(sentence: &str, term: &str) -> Judgement {
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

    fn assertion(sentence: &str, term: &str) -> Assertion {
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
    }

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
    fn every_hedge_cue_has_a_certainty_and_a_kind_and_no_other_cue_does() {
        for (phrase, cue) in CUES {
            let hedges = matches!(cue.polarity, Some((_, Polarity::Hedge | Polarity::Link)));
            assert_eq!(hedges, cue.certainty.is_some(), "{phrase:?}");
            assert_eq!(hedges, cue.hedge.is_some(), "{phrase:?}");
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
            assertion("Partially resolved effusion.", "effusion"),
            Assertion::Present
        );
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
        assert_eq!(
            l("Right lower lobe pneumonia; left effusion.", "pneumonia"),
            Some(Laterality::Right)
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
