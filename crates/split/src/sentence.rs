//! The working state of one sentence's extraction, shared by the finding
//! scan ([`crate::findings`]) and the grammar ([`crate::grammar`]): the
//! sentence's span, the terms found in it, and the reusable buffers. Holding
//! them here, not in findings, keeps the grammar from naming findings (which
//! calls the grammar).

use crate::SectionKind;
use crate::context::cues::CueHit;

/// A term found in a sentence (byte offsets). `focus` is the part that cues
/// are measured against: the whole term, or for a gapped synonym
/// (`heart is not enlarged`) its tail, so the negation inside the gap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mention {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) focus_start: usize,
    pub(crate) focus_end: usize,
    pub(crate) concept: u32,
}

/// Reusable buffers, so a sentence costs no allocation once warm.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) cues: Vec<CueHit>,
    pub(crate) mentions: Vec<Mention>,
    pub(crate) sites: Vec<(usize, usize, u32)>,
    /// Descriptor words (start, end, row of descriptors.tsv).
    pub(crate) descriptors: Vec<(usize, usize, u32)>,
    /// The other mentions' spans, while one mention is judged.
    pub(crate) spans: Vec<(usize, usize)>,
}

/// One sentence (or item fragment) as the layout found it, in bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SentenceSpan {
    pub(crate) start: usize,
    pub(crate) end: usize,
    /// After an organ sub-header colon (`LUNGS:`); cues and terms are only
    /// read from here on, so `LUNGS: No effusion` negates forward.
    pub(crate) body_start: usize,
    pub(crate) section: SectionKind,
    pub(crate) item: Option<u32>,
}
