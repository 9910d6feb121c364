//! Sentence splitting inside the regions of a section (its items, or its
//! body around them), robust to abbreviations, decimals, missing spaces after
//! a period and flattened exports.

use super::Boundary;
use super::items::{Region, label_at};
use super::{byte_set, skip_to_any, trim_span};

/// A sentence (or list fragment), spans in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sentence {
    /// Bytes, trimmed of surrounding whitespace and flattened-export commas.
    pub start: usize,
    pub end: usize,
    /// Index into `Layout::sections`.
    pub section: usize,
    /// Number of the enclosing item, if any.
    pub item: Option<u32>,
    /// When the sentence begins with an organ sub-header (`LUNGS:`), the byte
    /// offset just after the colon (a negation right after it applies
    /// forward); otherwise `start`.
    pub body_start: usize,
}

/// How a period after a word behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abbreviation {
    /// Never ends a sentence: `Dr.`, `e.g.`, `approx.`, `vs.`
    Always,
    /// Ends a sentence only before a capital: `etc. The`, but `ant. wall`.
    Sometimes,
}

/// The abbreviation `word` is, if any (a `match` on the lower-cased bytes:
/// this runs at every period, so no list walk).
fn abbreviation(word: &str) -> Option<Abbreviation> {
    const LONGEST: usize = 6;
    if word.len() > LONGEST {
        return None;
    }
    let mut lower = [0u8; LONGEST];
    for (to, from) in lower.iter_mut().zip(word.bytes()) {
        *to = from.to_ascii_lowercase();
    }
    match &lower[..word.len()] {
        b"dr" | b"drs" | b"mr" | b"mrs" | b"ms" | b"prof" | b"vs" | b"v" | b"e.g" | b"i.e"
        | b"eg" | b"ie" | b"approx" | b"apprx" | b"cf" | b"fig" | b"figs" | b"incl" | b"viz"
        | b"ref" => Some(Abbreviation::Always),
        b"etc" | b"st" | b"ant" | b"post" | b"lat" | b"sup" | b"inf" | b"med" | b"resp"
        | b"est" | b"max" | b"min" | b"sq" | b"prox" | b"dist" | b"mult" | b"pt" | b"pts"
        | b"hx" | b"sx" | b"dx" | b"tx" | b"yr" | b"yrs" | b"wk" | b"wks" | b"mo" | b"mos"
        | b"ca" | b"lt" | b"rt" | b"bilat" | b"a.m" | b"p.m" => Some(Abbreviation::Sometimes),
        _ => None,
    }
}

/// A line ending before this many bytes followed by a line starting with a
/// capital is a line of its own (templates such as `Heart normal`), while a
/// longer line is a hard-wrapped paragraph that the next line continues.
const SHORT_LINE: usize = 60;

/// The longest sentence, in bytes: a longer run without a sentence end (no
/// real report has one; a pathological input does) is cut into pieces of at
/// most this size at a blank. The work on a sentence grows faster than its
/// length (every term looks at the others' scopes), so this cap is what keeps
/// the time per report linear in its length (issue 11, item 3).
pub(crate) const MAX_SENTENCE_BYTES: usize = 2_000;

/// `start..end` as pieces of at most [`MAX_SENTENCE_BYTES`], each cut after
/// the last blank of its window (or at a char boundary when it has none).
fn pieces(text: &str, start: usize, end: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let mut at = start;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let piece_start = at;
        if end - at <= MAX_SENTENCE_BYTES {
            at = end;
            return Some((piece_start, end));
        }
        let limit = at + MAX_SENTENCE_BYTES;
        let mut cut = match bytes[at + 1..limit].iter().rposition(|b| *b == b' ') {
            Some(blank) => at + 1 + blank + 1,
            None => limit,
        };
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        at = cut;
        Some((piece_start, cut))
    })
}

/// Splits every region into sentences, appending them to `out` in order.
pub(super) fn split_regions(
    text: &str,
    section: usize,
    regions: &[Region],
    colons: &[usize],
    out: &mut Vec<Sentence>,
) {
    for region in regions {
        split_region(text, *region, section, colons, out);
    }
}

fn split_region(
    text: &str,
    region: Region,
    section: usize,
    colons: &[usize],
    out: &mut Vec<Sentence>,
) {
    let bytes = text.as_bytes();
    let (a, b) = (region.start, region.end);
    let mut push_one = |start: usize, end: usize| {
        let (mut start, end) = trim_span(text, start, end);
        // A sub-bullet inside an item (`   - No fracture.`) keeps its marker out.
        if end - start > 2 && matches!(bytes[start], b'-' | b'*' | b'+') && bytes[start + 1] == b' '
        {
            start = trim_span(text, start + 1, end).0;
        }
        // A stray `. .` at the end of an export is no sentence.
        if bytes[start..end].iter().any(u8::is_ascii_alphanumeric) {
            let body_start = label_at(text, colons, start, end, Boundary::Flattened)
                .map_or(start, |(_, colon_end)| colon_end);
            out.push(Sentence {
                start,
                end,
                section,
                item: region.item,
                body_start,
            });
        }
    };
    let mut push = |start: usize, end: usize| {
        for (start, end) in pieces(text, start, end) {
            push_one(start, end);
        }
    };
    let skip_fillers = |mut at: usize| {
        while at < b && (bytes[at].is_ascii_whitespace() || bytes[at] == b',') {
            at += 1;
        }
        at
    };
    let mut s = a;
    const STOP_BYTES: [bool; 256] = byte_set(b".?!\n,");
    const STOP_BYTES_WITH_SPACE: [bool; 256] = byte_set(b".?!\n, ");
    // Spaces matter only where two follow each other (flattened exports).
    let stops = if text[a..b].contains("  ") {
        &STOP_BYTES_WITH_SPACE
    } else {
        &STOP_BYTES
    };
    let mut i = a;
    while i < b {
        i = skip_to_any(bytes, i, b, stops);
        if i >= b {
            break;
        }
        match bytes[i] {
            b'.' | b'?' | b'!' => {
                let mut j = i + 1;
                while j < b && matches!(bytes[j], b'.' | b'?' | b'!' | b')' | b'"' | b'\'') {
                    j += 1;
                }
                if j >= b {
                    break;
                }
                if bytes[j].is_ascii_whitespace() || bytes[j] == b',' {
                    let k = skip_fillers(j);
                    if k >= b {
                        break;
                    }
                    // `1. No fracture` inside a sentence-numbered list: the number
                    // stays with its sentence.
                    let bare_number = bytes[s..i].iter().all(u8::is_ascii_digit);
                    let ends = match bytes[i] {
                        b'.' => !bare_number && period_ends_sentence(text, s, i, bytes[k]),
                        b'?' => !opens_a_query(bytes, s, i, bytes[k]),
                        _ => true,
                    };
                    if ends {
                        push(s, j);
                        s = k;
                    }
                    i = k;
                } else if bytes[i] == b'.' && j == i + 1 && glued_sentence_start(text, s, i, b) {
                    push(s, i + 1);
                    s = i + 1;
                    i += 1;
                } else {
                    i = j;
                }
            }
            b'\n' => {
                let k = skip_fillers(i);
                if k >= b {
                    break;
                }
                let blank_line = bytes[i + 1..k].contains(&b'\n');
                let line_start = text[a..i].rfind('\n').map_or(a, |p| a + p + 1);
                let line = text[line_start..i].trim_end();
                let own_line = line.len() < SHORT_LINE || line.ends_with(':');
                if blank_line
                    || (own_line && (bytes[k].is_ascii_uppercase() || bytes[k].is_ascii_digit()))
                {
                    push(s, i);
                    s = k;
                }
                i = k;
            }
            // `,The`: exports flatten line breaks into commas without a space.
            b',' if i + 2 < b
                && bytes[i + 1].is_ascii_uppercase()
                && bytes[i + 2].is_ascii_lowercase() =>
            {
                push(s, i);
                s = i + 1;
                i += 1;
            }
            // Two spaces before a capital, not after a sub-header colon: a
            // flattened line break (`Heart normal  Lungs clear`).
            b' ' if i + 1 < b && bytes[i + 1] == b' ' => {
                let mut k = i;
                while k < b && bytes[k] == b' ' {
                    k += 1;
                }
                let after_colon = i > a && bytes[i - 1] == b':';
                if k < b && bytes[k].is_ascii_uppercase() && !after_colon {
                    push(s, i);
                    s = k;
                }
                i = k;
            }
            _ => i += 1,
        }
    }
    push(s, b);
}

/// The letters-and-dots word that ends just before `period` (not before `lo`).
fn word_before(text: &str, lo: usize, period: usize) -> &str {
    let bytes = text.as_bytes();
    let mut start = period;
    while start > lo && (bytes[start - 1].is_ascii_alphabetic() || bytes[start - 1] == b'.') {
        start -= 1;
    }
    while start < period && bytes[start] == b'.' {
        start += 1;
    }
    // Only ASCII letters and dots lie in `start..period`: a char boundary.
    &text[start..period]
}

/// Whether the period at `period`, followed (after blanks) by `next`, ends a sentence.
fn period_ends_sentence(text: &str, lo: usize, period: usize, next: u8) -> bool {
    let word = word_before(text, lo, period);
    if word.is_empty() {
        return true; // after a number, a bracket or XXXX-free punctuation
    }
    match abbreviation(word) {
        Some(Abbreviation::Always) => return false,
        Some(Abbreviation::Sometimes) => return next.is_ascii_uppercase(),
        None if word.contains('.') => return next.is_ascii_uppercase(),
        None => {}
    }
    // A single letter after a blank is an initial (`J. Smith`), not a word.
    let bytes = text.as_bytes();
    let start = period - word.len();
    if word.len() == 1 && (start == lo || bytes[start - 1] == b' ') {
        return !bytes[start].is_ascii_uppercase() && next.is_ascii_uppercase();
    }
    true
}

/// `lung.In the left lobe`: a period glued to the next sentence's capital.
fn glued_sentence_start(text: &str, lo: usize, period: usize, end: usize) -> bool {
    let bytes = text.as_bytes();
    if period + 2 >= end
        || !bytes[period + 1].is_ascii_uppercase()
        || !bytes[period + 2].is_ascii_alphabetic()
    {
        return false;
    }
    let word = word_before(text, lo, period);
    let glued_to_word =
        word.len() >= 2 && !word.contains('.') && bytes[period - 1].is_ascii_alphabetic();
    glued_to_word && abbreviation(word).is_none()
}

/// Whether the "?" at `at` opens a query inside the sentence rather than
/// ending a question: it stands after a space and before a lower-case word
/// ("collection, ? early abscess"), or after a separator and its space
/// ("haemoperitoneum – ? Leak").
fn opens_a_query(bytes: &[u8], start: usize, at: usize, next: u8) -> bool {
    if at <= start + 1 {
        return false;
    }
    match bytes[at - 1] {
        // "hydrocele (? early pyocele)"
        b'(' => next.is_ascii_alphanumeric(),
        b' ' => {
            next.is_ascii_lowercase()
                || (next.is_ascii_uppercase() && !bytes[at - 2].is_ascii_alphanumeric())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::SectionKind;
    use crate::layout::layout;
    use crate::sections::SectionTable;

    fn sentences(text: &str) -> Vec<String> {
        let table = SectionTable::builtin();
        let layout = layout(text, &table, SectionKind::Findings);
        layout
            .sentences
            .iter()
            .map(|s| text[s.start..s.end].to_owned())
            .collect()
    }

    #[test]
    fn a_run_without_sentence_end_is_cut_at_blanks_into_bounded_pieces() {
        use super::MAX_SENTENCE_BYTES;
        let words = "nodule in the right lung with effusion and ";
        let text = words.repeat(200);
        let pieces = sentences(&text);
        assert!(pieces.len() > 1);
        assert!(pieces.iter().all(|p| p.len() <= MAX_SENTENCE_BYTES));
        // Cut between words, and nothing lost.
        assert_eq!(pieces.join(" "), text.trim_end());
        // No blank at all: cut on char boundaries.
        let unbroken = "éa".repeat(MAX_SENTENCE_BYTES);
        let pieces = sentences(&unbroken);
        assert!(pieces.iter().all(|p| p.len() <= MAX_SENTENCE_BYTES));
        assert_eq!(pieces.concat(), unbroken);
        // A real sentence is untouched.
        assert_eq!(sentences(words.trim_end()), [words.trim_end()]);
    }

    #[test]
    fn abbreviations_and_decimals_do_not_end_sentences() {
        assert_eq!(
            sentences(
                "Discussed with Dr. XXXX at 10:30. Nodule measures approx. 3.5 cm, e.g. stable vs. smaller. Pneumonia, i.e. consolidation, etc. The end."
            ),
            vec![
                "Discussed with Dr. XXXX at 10:30.",
                "Nodule measures approx. 3.5 cm, e.g. stable vs. smaller.",
                "Pneumonia, i.e. consolidation, etc.",
                "The end.",
            ]
        );
        assert_eq!(
            sentences("Seen by J. Smith. Ant. wall normal. Post. The end."),
            vec![
                "Seen by J. Smith.",
                "Ant. wall normal.",
                "Post.",
                "The end."
            ]
        );
    }

    #[test]
    fn missing_space_after_period_and_all_caps() {
        assert_eq!(
            sentences("Opacity in the right lung.In the left lobe, a nodule.XXXX.The end."),
            vec![
                "Opacity in the right lung.",
                "In the left lobe, a nodule.",
                "XXXX.",
                "The end."
            ]
        );
        assert_eq!(
            sentences("THE LUNGS ARE CLEAR.NO EFFUSION. HEART NORMAL."),
            vec!["THE LUNGS ARE CLEAR.", "NO EFFUSION.", "HEART NORMAL."]
        );
    }

    #[test]
    fn a_query_mark_inside_a_sentence_does_not_end_it() {
        assert_eq!(
            sentences(
                "Small collection, ? early abscess. Leak – ? Rupture. Is it a cyst? Yes. Hydrocele (? early pyocele)."
            ),
            vec![
                "Small collection, ? early abscess.",
                "Leak – ? Rupture.",
                "Is it a cyst?",
                "Yes.",
                "Hydrocele (? early pyocele)."
            ]
        );
    }

    #[test]
    fn stray_periods_and_bare_numbers() {
        assert_eq!(sentences("No acute disease. ."), vec!["No acute disease."]);
        assert_eq!(
            sentences("1. Effusion.\n   - No fracture.\n   * No dislocation."),
            vec!["Effusion.", "No fracture.", "No dislocation."]
        );
        assert_eq!(
            sentences("1. Hip fracture. Femur. 1. No fracture."),
            vec!["Hip fracture.", "Femur.", "1. No fracture."]
        );
        assert!(sentences(" . , ").is_empty());
    }

    #[test]
    fn flattened_separators() {
        assert_eq!(
            sentences("FINDINGS: ,The lungs are clear.,There is no effusion.,IMPRESSION: ,Normal."),
            vec!["The lungs are clear.", "There is no effusion.", "Normal."]
        );
        assert_eq!(
            sentences("Heart size normal  Lungs clear  No effusion"),
            vec!["Heart size normal", "Lungs clear", "No effusion"]
        );
        assert_eq!(
            sentences("Placenta: Anterior,Fetal lie: Cephalic"),
            vec!["Placenta: Anterior", "Fetal lie: Cephalic"]
        );
    }

    #[test]
    fn line_breaks() {
        assert_eq!(
            sentences("Heart normal\nLungs clear\n\nthe effusion is gone"),
            vec!["Heart normal", "Lungs clear", "the effusion is gone"]
        );
        let wrapped = "There is a small opacity in the periphery of the right lower lobe which\nMay represent atelectasis.";
        assert_eq!(sentences(wrapped).len(), 1);
        assert_eq!(
            sentences("The lungs are\nclear."),
            vec!["The lungs are\nclear."]
        );
    }

    #[test]
    fn items_are_sentences_of_their_own_and_sub_headers_mark_their_body() {
        let text = "IMPRESSION: 1. Low lung volumes 2. Bibasilar atelectasis. No effusion.";
        let table = SectionTable::builtin();
        let listed = layout(text, &table, SectionKind::Other);
        let got: Vec<(&str, Option<u32>)> = listed
            .sentences
            .iter()
            .map(|s| (&text[s.start..s.end], s.item))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Low lung volumes", Some(1)),
                ("Bibasilar atelectasis.", Some(2)),
                ("No effusion.", Some(2))
            ]
        );
        let text = "FINDINGS:\nLUNGS: No focal consolidation.\nPLEURA: No effusion.";
        let labelled = layout(text, &table, SectionKind::Other);
        let first = labelled.sentences[0];
        assert_eq!(
            &text[first.start..first.end],
            "LUNGS: No focal consolidation."
        );
        assert_eq!(&text[first.start..first.body_start], "LUNGS:");
        assert_eq!((first.section, first.item), (0, Some(1)));
        let second = labelled.sentences[1];
        assert_eq!(&text[second.body_start..second.end], " No effusion.");
    }
}
