//! Word-scanning primitives shared by the lexicon, the finding scan, the
//! grammar and the judge: whole-word selection of automaton matches, word
//! edges, and the word count that measures cue scopes. A leaf: it names no
//! other module of the crate.

use aho_corasick::Input;
use aho_corasick::automaton::Automaton as _;
use aho_corasick::dfa::DFA;

/// Calls `found(start, end, pattern)` for the whole-word matches of
/// `automaton` in `text[start..end]`, left to right, longest first at each
/// position, never overlapping. Only positions where a word may start are
/// tried, with an anchored search each: a match that does not end on a word
/// edge (`ich` of `which`) is skipped, and the search goes on at the next
/// word. Trying word starts only keeps the cost per sentence flat however
/// many short synonyms the tables hold (a scan for every match inside a word
/// would restart one byte later).
pub(crate) fn select_words(
    automaton: &DFA,
    text: &str,
    start: usize,
    end: usize,
    mut found: impl FnMut(usize, usize, usize),
) {
    let bytes = text.as_bytes();
    let mut at = start;
    while at < end {
        if is_word_edge(bytes, at, true)
            && let Ok(Some(m)) = automaton.try_find(
                &Input::new(bytes)
                    .span(at..end)
                    .anchored(aho_corasick::Anchored::Yes),
            )
            && is_word_edge(bytes, m.end(), false)
        {
            found(m.start(), m.end(), m.pattern().as_usize());
            at = m.end();
            continue;
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
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Words (runs with a letter or digit) in a stretch of text: the distance
/// measure for cue scopes and for attaching sizes to findings.
pub(crate) fn word_count(bytes: &[u8]) -> usize {
    bytes
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| w.iter().any(u8::is_ascii_alphanumeric))
        .count()
}
