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
//!
//! The parts, each with its unit tests:
//! * [`cues`]: the cue vocabulary — the [`cues::Cue`] type, its
//!   constructors, the typed table [`cues::CUES`], the hits found in a
//!   sentence and where a hit's scope ends;
//! * [`judge`]: the judge — which cues reach a mention, the nearest one
//!   deciding, and the change and side local to the mention;
//! * [`hedge`]: how sure a hedged mention is, and of what kind;
//! * [`side`]: which side a mention takes from directions and neighbours.
//!
//! The parts name each other only downwards: `judge` uses `hedge` and
//! `side`, and all three use `cues`, which names none of them.

pub(crate) mod cues;
mod hedge;
pub(crate) mod judge;
mod side;
