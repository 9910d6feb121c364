//! Word-scanning primitives shared by the lexicon, the finding scan, the
//! grammar and the judge: whole-word selection of automaton matches, word
//! edges, and the word count that measures cue scopes. A leaf: it names no
//! other module of the crate.

use aho_corasick::Anchored;
use aho_corasick::automaton::{Automaton as _, StateID};
use aho_corasick::dfa::DFA;

/// Calls `found(start, end, pattern)` for the whole-word matches of
/// `automaton` in `text[start..end]`, left to right, longest first at each
/// position, never overlapping. Only positions where a word may start are
/// tried, each by walking the automaton's anchored states byte by byte until
/// it dies: the longest match there that ends on a word edge wins (`ich` of
/// `which` never matches), and the search goes on after it or at the next
/// word. Trying word starts only keeps the cost per sentence flat however
/// many short synonyms the tables hold, and walking the states directly
/// spares the per-search setup of `try_find`, which at ~50 word starts per
/// report was a third of this function's time.
pub(crate) fn select_words(
    automaton: &DFA,
    text: &str,
    start: usize,
    end: usize,
    mut found: impl FnMut(usize, usize, usize),
) {
    let bytes = text.as_bytes();
    let end = end.min(bytes.len());
    // A DFA built with anchored starts always has one; without, no match.
    let Ok(anchored_start) = automaton.start_state(Anchored::Yes) else {
        return;
    };
    let mut at = start;
    while at < end {
        if is_word_edge(bytes, at, true)
            && let Some((match_end, pattern)) =
                longest_word_match(automaton, anchored_start, bytes, at, end)
        {
            found(at, match_end, pattern);
            at = match_end;
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

/// The longest pattern that starts at `at`, ends by `end` on a word edge:
/// its end and pattern index.
fn longest_word_match(
    automaton: &DFA,
    anchored_start: StateID,
    bytes: &[u8],
    at: usize,
    end: usize,
) -> Option<(usize, usize)> {
    let mut state = anchored_start;
    let mut best = None;
    for (offset, &byte) in bytes[at..end].iter().enumerate() {
        state = automaton.next_state(Anchored::Yes, state, byte);
        if !automaton.is_special(state) {
            continue;
        }
        if automaton.is_dead(state) {
            break;
        }
        if automaton.is_match(state) {
            let match_end = at + offset + 1;
            // A match state also carries patterns that started later (the
            // automaton's failure matches); an anchored search keeps only
            // the one that starts here.
            let pattern = automaton.match_pattern(state, 0);
            if match_end - automaton.pattern_len(pattern) == at
                && is_word_edge(bytes, match_end, false)
            {
                best = Some((match_end, pattern.as_usize()));
            }
        }
    }
    best
}

/// Calls `found(pattern)` for every pattern of `automaton` that appears in
/// `text` as whole words, overlapping or not ("tension" and "tension
/// pneumothorax" both), each once per occurrence; like [`select_words`] it
/// tries only word starts, walking the anchored states from each.
pub(crate) fn each_word_pattern(automaton: &DFA, text: &str, mut found: impl FnMut(usize)) {
    let bytes = text.as_bytes();
    let Ok(anchored_start) = automaton.start_state(Anchored::Yes) else {
        return;
    };
    for at in 0..bytes.len() {
        if at > 0 && is_word_byte(bytes[at - 1]) {
            continue;
        }
        let mut state = anchored_start;
        for (offset, &byte) in bytes[at..].iter().enumerate() {
            state = automaton.next_state(Anchored::Yes, state, byte);
            if !automaton.is_special(state) {
                continue;
            }
            if automaton.is_dead(state) {
                break;
            }
            if automaton.is_match(state) {
                let end = at + offset + 1;
                let pattern = automaton.match_pattern(state, 0);
                if end - automaton.pattern_len(pattern) == at && is_word_edge(bytes, end, false) {
                    found(pattern.as_usize());
                }
            }
        }
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
