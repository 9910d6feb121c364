//! Word-scanning primitives shared by the lexicon, the finding scan, the
//! grammar and the judge: whole-word selection of automaton matches, word
//! edges, and the word count that measures cue scopes. A leaf: it names no
//! other module of the crate.

/// The lexicon's words as an anchored trie over ASCII-case-folded bytes: a
/// walk from a word start follows one transition per byte until no pattern
/// goes on, and a state tells the pattern that ends there. That is all the
/// matching needs (every walk is anchored), so the failure links and the
/// determinisation of a general Aho-Corasick automaton are not built: for
/// the ~25,000 synonyms those were 0.2 s of every start-up, and walking this
/// table costs the same per byte.
#[derive(Debug)]
pub(crate) struct WordTrie {
    /// Byte → column of `next`; the two cases of an ASCII letter share one,
    /// and every byte no pattern holds shares column 0.
    class_of: [u8; 256],
    /// Columns per state.
    classes: usize,
    /// `next[state + class]`: the next state, as the index of its row (so a
    /// step is one addition), with [`ENDS_PATTERN`] set when a pattern ends
    /// there; 0 (the first row, all zeros) is the dead state.
    next: Vec<u32>,
    /// The pattern that ends at each state (by row number), if any: the
    /// first given, when two patterns are the same but for case.
    pattern: Vec<Option<u32>>,
}

/// Flag of a state id in [`WordTrie::next`]: a pattern ends at that state.
const ENDS_PATTERN: u32 = 1 << 31;
/// The root's row: right after the dead state.
const ROOT: usize = 1;

impl WordTrie {
    /// The trie of `patterns`; pattern `i` is reported as `i`.
    pub(crate) fn new<P: AsRef<[u8]>>(patterns: &[P]) -> Result<WordTrie, String> {
        let mut class_of = [0u8; 256];
        let mut classes = 1;
        for &byte in patterns.iter().flat_map(|p| p.as_ref()) {
            let byte = byte.to_ascii_lowercase();
            if class_of[usize::from(byte)] == 0 {
                let class = u8::try_from(classes)
                    .map_err(|_| "cannot build the term automaton: too many distinct bytes")?;
                class_of[usize::from(byte)] = class;
                class_of[usize::from(byte.to_ascii_uppercase())] = class;
                classes += 1;
            }
        }
        let mut trie = WordTrie {
            class_of,
            classes,
            next: vec![0; 2 * classes],
            pattern: vec![None; 2],
        };
        for (id, pattern) in patterns.iter().enumerate() {
            let mut row = ROOT;
            // The one transition into `row`: flagged when a pattern ends there.
            let mut into_row = None;
            for &byte in pattern.as_ref() {
                let cell = row * classes + usize::from(trie.class_of[usize::from(byte)]);
                into_row = Some(cell);
                row = match trie.next[cell] & !ENDS_PATTERN {
                    0 => {
                        let new_row = trie.pattern.len();
                        let id = u32::try_from(new_row * classes)
                            .ok()
                            .filter(|id| id & ENDS_PATTERN == 0)
                            .ok_or("cannot build the term automaton: too many states")?;
                        trie.next.resize(trie.next.len() + classes, 0);
                        trie.pattern.push(None);
                        trie.next[cell] = id;
                        new_row
                    }
                    id => id as usize / classes,
                };
            }
            if let Some(cell) = into_row
                && trie.pattern[row].is_none()
            {
                trie.pattern[row] = Some(id as u32);
                trie.next[cell] |= ENDS_PATTERN;
            }
        }
        Ok(trie)
    }
}

/// Calls `found(start, end, pattern)` for the whole-word matches of
/// `automaton` in `text[start..end]`, left to right, longest first at each
/// position, never overlapping. Only positions where a word may start are
/// tried, each by walking the trie from its root byte by byte until it
/// dies: the longest match there that ends on a word edge wins (`ich` of
/// `which` never matches), and the search goes on after it or at the next
/// word. Trying word starts only keeps the cost per sentence flat however
/// many short synonyms the tables hold.
pub(crate) fn select_words(
    automaton: &WordTrie,
    text: &str,
    start: usize,
    end: usize,
    mut found: impl FnMut(usize, usize, usize),
) {
    select_read_words(automaton, text, start, end, |s, e, pattern| {
        found(s, e, pattern);
        true
    });
}

/// [`select_words`], where `found` says whether it could read the match: a
/// match it cannot read gives way to the next shorter one at the same
/// position. "thickening of the" opens only the gapped synonym "thickening
/// of the ... fissure"; in "thickening of the bladder wall" that synonym's
/// tail never comes, and "thickening" is the finding.
pub(crate) fn select_read_words(
    automaton: &WordTrie,
    text: &str,
    start: usize,
    end: usize,
    mut found: impl FnMut(usize, usize, usize) -> bool,
) {
    let bytes = text.as_bytes();
    let end = end.min(bytes.len());
    let mut at = start;
    let mut matches = [(0usize, 0usize); MAX_MATCHES_AT_ONE_POSITION];
    while at < end {
        if is_word_edge(bytes, at, true) {
            let count = word_matches(automaton, bytes, at, end, &mut matches);
            if let Some(&(match_end, _)) = matches[..count]
                .iter()
                .rev()
                .find(|&&(match_end, pattern)| found(at, match_end, pattern))
            {
                at = match_end;
                continue;
            }
        }
        // On to the next position a word may start at (no synonym or cue
        // starts with a blank).
        if is_word_byte(bytes[at]) {
            while at < end && is_word_byte(bytes[at]) {
                at += 1;
            }
        } else {
            at += 1;
        }
        while at < end && matches!(bytes[at], b' ' | b'\n' | b'\r' | b'\t') {
            at += 1;
        }
    }
}

/// Whether a match at `at` (a word start) of an entry `is_finding` accepts
/// runs past `beyond`: "nodal disease" past the site "axillary nodal".
pub(crate) fn match_runs_past(
    automaton: &WordTrie,
    text: &str,
    at: usize,
    end: usize,
    beyond: usize,
    is_finding: impl Fn(usize) -> bool,
) -> bool {
    let mut matches = [(0usize, 0usize); MAX_MATCHES_AT_ONE_POSITION];
    let count = word_matches(automaton, text.as_bytes(), at, end, &mut matches);
    matches[..count]
        .iter()
        .any(|&(match_end, pattern)| match_end > beyond && is_finding(pattern))
}

/// How many nested whole-word matches at one position are kept, the
/// longest ("left", "left lower lobe": a handful at most).
const MAX_MATCHES_AT_ONE_POSITION: usize = 8;

/// The patterns that start at `at` and end by `end` on a word edge, shortest
/// first, into `out` (the longest [`MAX_MATCHES_AT_ONE_POSITION`]); how many.
fn word_matches(
    automaton: &WordTrie,
    bytes: &[u8],
    at: usize,
    end: usize,
    out: &mut [(usize, usize); MAX_MATCHES_AT_ONE_POSITION],
) -> usize {
    let mut count = 0;
    each_match_from(automaton, &bytes[..end], at, |match_end, pattern| {
        if is_word_edge(bytes, match_end, false) {
            if count == out.len() {
                out.rotate_left(1);
                count -= 1;
            }
            out[count] = (match_end, pattern);
            count += 1;
        }
    });
    count
}

/// Walks `automaton` from its root over `bytes[at..]`, calling
/// `found(end, pattern)` for each pattern that spans `at..end`, shortest
/// first.
fn each_match_from(
    automaton: &WordTrie,
    bytes: &[u8],
    at: usize,
    mut found: impl FnMut(usize, usize),
) {
    let WordTrie {
        class_of,
        classes,
        next,
        pattern,
    } = automaton;
    let mut state = ROOT * classes;
    for (offset, &byte) in bytes[at..].iter().enumerate() {
        let Some(&id) = next.get(state + usize::from(class_of[usize::from(byte)])) else {
            return;
        };
        if id == 0 {
            return;
        }
        state = (id & !ENDS_PATTERN) as usize;
        if id & ENDS_PATTERN != 0
            && let Some(Some(pattern)) = pattern.get(state / classes)
        {
            found(at + offset + 1, *pattern as usize);
        }
    }
}

/// Calls `found(pattern)` for every pattern of `automaton` that appears in
/// `text` as whole words, overlapping or not ("tension" and "tension
/// pneumothorax" both), each once per occurrence; like [`select_words`] it
/// tries only word starts, walking the trie from each.
pub(crate) fn each_word_pattern(automaton: &WordTrie, text: &str, mut found: impl FnMut(usize)) {
    let bytes = text.as_bytes();
    for at in 0..bytes.len() {
        if at > 0 && is_word_byte(bytes[at - 1]) {
            continue;
        }
        each_match_from(automaton, bytes, at, |end, pattern| {
            if is_word_edge(bytes, end, false) {
                found(pattern);
            }
        });
    }
}

/// The last run of ASCII letters in `text` ("cyst" of "simple cyst,"): the
/// head noun of a term.
pub(crate) fn last_word(text: &str) -> &str {
    text.rsplit(|c: char| !c.is_ascii_alphabetic())
        .find(|w| !w.is_empty())
        .unwrap_or("")
}

/// True when a match may start (`opening`) or end at `at`: the match edge
/// is not a word character, or the neighbour outside the match is not.
pub(crate) fn is_word_edge(bytes: &[u8], at: usize, opening: bool) -> bool {
    let (inside, outside) = if opening {
        (bytes.get(at), at.checked_sub(1).and_then(|i| bytes.get(i)))
    } else {
        (at.checked_sub(1).and_then(|i| bytes.get(i)), bytes.get(at))
    };
    match (inside, outside) {
        (Some(&inside), Some(&outside)) => !(is_word_byte(inside) && is_word_byte(outside)),
        _ => true,
    }
}

/// ASCII letters and digits, and any byte of a non-ASCII character (so a
/// term never matches inside an accented word).
pub(crate) fn is_word_byte(b: u8) -> bool {
    WORD_BYTES[usize::from(b)]
}

/// [`is_word_byte`] as one table lookup: every scan asks it of every byte.
static WORD_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < table.len() {
        table[byte] = (byte as u8).is_ascii_alphanumeric() || byte >= 0x80;
        byte += 1;
    }
    table
};

/// Words (runs with a letter or digit) in a stretch of text: the distance
/// measure for cue scopes and for attaching sizes to findings.
pub(crate) fn word_count(bytes: &[u8]) -> usize {
    bytes
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| w.iter().any(u8::is_ascii_alphanumeric))
        .count()
}
