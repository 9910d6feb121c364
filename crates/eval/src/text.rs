//! Small text helpers: locating an annotated term in its sentence (or a
//! labelled sentence in its report), and shortening text for error lines.

use std::ops::Range;

/// Finds `term` in `sentence`, ignoring ASCII case and treating any run of
/// whitespace as one space, and returns its byte range in `sentence`.
///
/// Of several occurrences, the best is taken: a whole-word occurrence
/// written in capitals (the NegEx kit capitalises its target inside the
/// sentence), then any whole-word occurrence, then the first one.
#[cfg(feature = "kits")]
pub fn find_term(sentence: &str, term: &str) -> Option<Range<usize>> {
    let mut best: Option<(u8, Range<usize>)> = None;
    for range in find_all(sentence, term) {
        let rank = rank_occurrence(sentence, &range);
        if best.as_ref().is_none_or(|(best_rank, _)| rank > *best_rank) {
            best = Some((rank, range));
        }
    }
    best.map(|(_, range)| range)
}

/// Every occurrence of `needle` in `haystack`, ignoring ASCII case and
/// treating any run of whitespace as one space, as byte ranges of
/// `haystack` in order (an occurrence may start inside the previous one).
pub fn find_all(haystack: &str, needle: &str) -> Vec<Range<usize>> {
    let needle = fold(needle);
    if needle.is_empty() {
        return Vec::new();
    }
    let (folded, origin) = fold_with_origin(haystack);
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = folded[from..].find(&needle) {
        let start = from + at;
        let end = start + needle.len();
        found.push(origin[start]..origin[end - 1] + char_len_at(haystack, origin[end - 1]));
        from = start + folded[start..].chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// 2 = whole word in capitals, 1 = whole word, 0 = inside a word.
#[cfg(feature = "kits")]
fn rank_occurrence(sentence: &str, range: &Range<usize>) -> u8 {
    let before = sentence[..range.start].chars().next_back();
    let after = sentence[range.end..].chars().next();
    let whole_word =
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric);
    if !whole_word {
        return 0;
    }
    let text = &sentence[range.clone()];
    let has_letters = text.chars().any(char::is_alphabetic);
    if has_letters && !text.chars().any(char::is_lowercase) {
        2
    } else {
        1
    }
}

fn char_len_at(text: &str, byte: usize) -> usize {
    text[byte..].chars().next().map_or(0, char::len_utf8)
}

/// Lower-cases ASCII letters, collapses whitespace runs to one space and
/// trims.
fn fold(text: &str) -> String {
    fold_with_origin(text).0
}

/// Like [`fold`], plus for every byte of the result the byte offset in
/// `text` of the character it came from.
fn fold_with_origin(text: &str) -> (String, Vec<usize>) {
    let mut folded = String::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    let mut pending_space: Option<usize> = None;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            if !folded.is_empty() && pending_space.is_none() {
                pending_space = Some(at);
            }
            continue;
        }
        if let Some(space_at) = pending_space.take() {
            folded.push(' ');
            origin.push(space_at);
        }
        let lower = c.to_ascii_lowercase();
        folded.push(lower);
        origin.extend(std::iter::repeat_n(at, lower.len_utf8()));
    }
    (folded, origin)
}

/// Shortens `text` to at most `max` characters for one-line error output.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "kits")]
    fn finds_term_ignoring_case_and_spacing() {
        let sentence = "Incisions are dry and   intact.";
        let range = find_term(sentence, "incisions are dry and intact").unwrap();
        assert_eq!(&sentence[range], "Incisions are dry and   intact");
        let range = find_term(sentence, "Dry  and\tINTACT ").unwrap();
        assert_eq!(&sentence[range], "dry and   intact");
    }

    #[test]
    #[cfg(feature = "kits")]
    fn prefers_the_capitalised_whole_word_occurrence() {
        let sentence = "Pain in the knee; the patient rates the PAIN as mild.";
        let range = find_term(sentence, "pain").unwrap();
        assert_eq!(range.start, sentence.find("PAIN").unwrap());
        let sentence = "painful swelling, pain at rest";
        let range = find_term(sentence, "pain").unwrap();
        assert_eq!(range.start, sentence.find("pain at").unwrap());
    }

    #[test]
    #[cfg(feature = "kits")]
    fn missing_or_empty_term_is_none() {
        assert_eq!(find_term("CHEST: 1.", "CHEST: 1. SURGICAL CHANGES"), None);
        assert_eq!(find_term("anything", "   "), None);
    }

    #[test]
    #[cfg(feature = "kits")]
    fn handles_multibyte_text() {
        let sentence = "Résumé: no ÉDEMA seen";
        let range = find_term(sentence, "édema").unwrap_or(0..0);
        // Non-ASCII letters are matched exactly (no Unicode case folding).
        assert_eq!(range, 0..0);
        let range = find_term(sentence, "ÉDEMA").unwrap();
        assert_eq!(&sentence[range.clone()], "ÉDEMA");
        assert_eq!(sentence[..range.start].chars().count(), 11);
    }

    #[test]
    fn find_all_lists_every_occurrence_in_order() {
        let text = "No effusion.\nIMPRESSION: No   EFFUSION.";
        let found = find_all(text, "no effusion.");
        assert_eq!(found.len(), 2);
        assert_eq!(&text[found[0].clone()], "No effusion.");
        assert_eq!(&text[found[1].clone()], "No   EFFUSION.");
        assert!(find_all(text, "  ").is_empty());
        assert!(find_all(text, "pneumothorax").is_empty());
    }

    #[test]
    fn one_line_flattens_and_cuts() {
        assert_eq!(one_line("a\n b\t c", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
