//! Items inside a section: numbered or bulleted list entries, or, in a
//! section without a list, organ sub-headers (`LUNGS: Clear.`).

use super::{Boundary, Marks, byte_set, skip_to_any, trim_span};
use crate::{Item, Section};

/// A stretch of a section body that sentences are split within; items never
/// share a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Region {
    pub start: usize,
    pub end: usize,
    pub item: Option<u32>,
}

/// The marker style of a list; a list keeps the style of its first item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// `1.`
    Dot,
    /// `1)`
    Paren,
    /// `(1)`
    Parens,
    /// `#1`
    Hash,
    /// `-`, `*`, `+` or `•`, by its first byte.
    Bullet(u8),
}

/// A list marker: its style, number (none for bullets) and where the item text may begin.
#[derive(Debug, Clone, Copy)]
struct Marker {
    style: Style,
    number: Option<u32>,
    start: usize,
    end: usize,
}

/// Where a possible marker stands relative to what precedes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    At(Boundary),
    /// After a blank inside a line: only the next number of a list in
    /// progress may start an item here (`1. Low volumes 2. Atelectasis`).
    MidLine,
}

/// Words after which a number is part of the sentence, not an item marker
/// (`image 2.`, `level 3.`).
const NUMBER_NOUNS: &[&str] = &[
    "series",
    "image",
    "images",
    "im",
    "se",
    "img",
    "level",
    "levels",
    "grade",
    "type",
    "stage",
    "segment",
    "segments",
    "phase",
    "view",
    "views",
    "slice",
    "slices",
    "number",
    "no",
    "of",
    "to",
    "and",
    "or",
    "at",
    "bi-rads",
    "birads",
    "category",
    "zone",
    "figure",
    "fig",
    "page",
    "lirads",
    "li-rads",
    "tirads",
    "ti-rads",
    "from",
    "by",
    "x",
    "than",
    "about",
    "approximately",
    "measures",
    "measuring",
    "score",
    "class",
    "gravida",
    "para",
    "week",
    "weeks",
    "day",
    "days",
    "rib",
    "ribs",
    "is",
    "are",
    "was",
    "were",
    "t",
    "c",
    "l",
    "s",
];

/// Finds the items of `section` (stored into it) and returns the regions
/// its body splits into for sentence splitting.
pub(super) fn find_items<'a>(
    text: &'a str,
    section: &mut Section<'a>,
    marks: &Marks,
) -> Vec<Region> {
    let (start, end) = (section.body_start, section.body_end);
    let markers = list_markers(text, start, end);
    let mut regions = Vec::with_capacity(markers.len() + 1);
    if markers.is_empty() {
        return label_items(text, section, marks, regions);
    }
    if start < markers[0].start {
        regions.push(Region {
            start,
            end: markers[0].start,
            item: None,
        });
    }
    // A sub-header on its own line after a list item (`Abdomen: ...` after
    // `2. No effusion.`) ends the item: it starts a paragraph of its own.
    let mut line_labels = Vec::new();
    let scan = if marks.has_colon(start, end) {
        end
    } else {
        start
    };
    marks.for_each_boundary(text, start, scan, |at, boundary| {
        if boundary == Boundary::LineStart
            && label_at(text, &marks.colons, at, end, boundary).is_some()
        {
            line_labels.push(at);
        }
    });
    let mut items = Vec::with_capacity(markers.len());
    for (index, marker) in markers.iter().enumerate() {
        let next_marker = markers.get(index + 1).map_or(end, |next| next.start);
        let region_end = line_labels
            .iter()
            .find(|&&label| label > marker.end && label < next_marker)
            .map_or(next_marker, |&label| label);
        let gap = (region_end < next_marker).then_some(Region {
            start: region_end,
            end: next_marker,
            item: None,
        });
        let (item_start, item_end) = trim_span(text, marker.end, region_end);
        if item_start >= item_end {
            regions.extend(gap);
            continue;
        }
        let n = marker
            .number
            .unwrap_or_else(|| u32::try_from(items.len() + 1).unwrap_or(u32::MAX));
        // "1. RIGHT KIDNEY: 9 mm calculus ... Additional 4 mm calculus.": the
        // organ sub-header opening a list item labels all of it.
        let label = label_at(
            text,
            &marks.colons,
            item_start,
            item_end,
            Boundary::LineStart,
        )
        .map(|(label_end, _)| &text[item_start..label_end]);
        items.push(Item {
            n,
            label,
            text: &text[item_start..item_end],
            start: item_start,
            end: item_end,
        });
        regions.push(Region {
            start: item_start,
            end: item_end,
            item: Some(n),
        });
        regions.extend(gap);
    }
    section.items = items;
    regions
}

/// Organ sub-header items (`LUNGS: ...`) of a section without a list.
fn label_items<'a>(
    text: &'a str,
    section: &mut Section<'a>,
    marks: &Marks,
    mut regions: Vec<Region>,
) -> Vec<Region> {
    let (start, end) = (section.body_start, section.body_end);
    let mut labels: Vec<(usize, usize, usize)> = Vec::new();
    let mut resume_at = start;
    let scan = if marks.has_colon(start, end) {
        end
    } else {
        start
    };
    marks.for_each_boundary(text, start, scan, |at, boundary| {
        if at < resume_at {
            return;
        }
        if let Some((label_end, colon_end)) = label_at(text, &marks.colons, at, end, boundary) {
            labels.push((at, label_end, colon_end));
            resume_at = colon_end;
        }
    });
    let Some(&(first_start, ..)) = labels.first() else {
        regions.push(Region {
            start,
            end,
            item: None,
        });
        return regions;
    };
    if start < first_start {
        regions.push(Region {
            start,
            end: first_start,
            item: None,
        });
    }
    for (index, &(label_start, label_end, colon_end)) in labels.iter().enumerate() {
        let next_label = labels.get(index + 1).map_or(end, |next| next.0);
        let (_, next_label) = trim_span(text, label_start, next_label);
        // A label whose body runs on its own line ("Left kidney: Normal.")
        // governs that line; the lines after it that no label opens are
        // the section's, not the kidney's ("Small hiatus hernia.").
        let paragraph = own_line_end(text, colon_end, next_label);
        let region_end = paragraph.unwrap_or(next_label);
        let (item_start, item_end) = trim_span(text, colon_end, region_end);
        if item_start >= item_end {
            // A heading over other sub-headers (`BIOMETRY:`): a sentence, no item.
            regions.push(Region {
                start: label_start,
                end: region_end,
                item: None,
            });
            continue;
        }
        let n = u32::try_from(section.items.len() + 1).unwrap_or(u32::MAX);
        section.items.push(Item {
            n,
            label: Some(&text[label_start..label_end]),
            text: &text[item_start..item_end],
            start: item_start,
            end: item_end,
        });
        regions.push(Region {
            start: label_start,
            end: region_end,
            item: Some(n),
        });
        if let Some(line_end) = paragraph {
            let (rest_start, rest_end) = trim_span(text, line_end, next_label);
            if rest_start < rest_end {
                regions.push(Region {
                    start: rest_start,
                    end: rest_end,
                    item: None,
                });
            }
        }
    }
    regions
}

/// Where the line of a label's body ends, when the body starts on the
/// label's line and a later line (before `end`) starts a new sentence: a
/// full stop ends the line and a capital opens the next. A body wrapped
/// mid-sentence onto the next line stays the label's.
fn own_line_end(text: &str, colon_end: usize, end: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let body = colon_end
        + bytes[colon_end..end]
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
    if body >= end || matches!(bytes[body], b'\n' | b'\r') {
        return None;
    }
    let mut at = body;
    while let Some(offset) = bytes[at..end].iter().position(|&b| b == b'\n') {
        let newline = at + offset;
        let before = text[body..newline].trim_end();
        let after = text[newline + 1..end].trim_start();
        if before.ends_with('.') && after.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Some(newline);
        }
        at = newline + 1;
    }
    None
}

/// The list markers that open items in `start..end`, in order.
fn list_markers(text: &str, start: usize, end: usize) -> Vec<Marker> {
    let bytes = text.as_bytes();
    let mut markers: Vec<Marker> = Vec::new();
    const MARKER_BYTES: [bool; 256] = byte_set(b"0123456789(#-*+\xE2");
    let mut i = start;
    while i < end {
        i = skip_to_any(bytes, i, end, &MARKER_BYTES);
        if i >= end {
            break;
        }
        let Some(place) = place_of(bytes, start, i) else {
            i += 1;
            continue;
        };
        let Some(marker) = marker_at(bytes, i, end) else {
            i += 1;
            continue;
        };
        if accepts(text, start, &markers, &marker, place) {
            i = marker.end;
            markers.push(marker);
        } else {
            i += 1;
        }
    }
    markers
}

/// Whether `marker` at `place` opens an item, given the markers before it.
fn accepts(
    text: &str,
    body_start: usize,
    markers: &[Marker],
    marker: &Marker,
    place: Place,
) -> bool {
    let bytes = text.as_bytes();
    let line_start = place == Place::At(Boundary::LineStart);
    if let Style::Bullet(_) = marker.style {
        let style_ok = markers
            .first()
            .is_none_or(|first| first.style == marker.style);
        return style_ok && (line_start || place == Place::At(Boundary::Flattened));
    }
    // "1,2. ..." is a list of numbers, not a flattened line break.
    if place == Place::At(Boundary::Flattened) {
        let mut j = marker.start;
        while j > body_start && bytes[j - 1] == b' ' {
            j -= 1;
        }
        if j >= body_start + 2 && bytes[j - 1] == b',' && bytes[j - 2].is_ascii_digit() {
            return false;
        }
    }
    let number = marker.number.unwrap_or(0);
    match markers.last() {
        None => line_start || (number == 1 && place != Place::MidLine),
        Some(last) if last.style != marker.style => false,
        Some(_) if line_start => true,
        Some(last) => {
            let follows = last.number.is_some_and(|n| n + 1 == number);
            follows
                && (place == Place::At(Boundary::Flattened)
                    || !after_number_noun(text, body_start, marker.start))
        }
    }
}

/// Whether the word before `at` (skipping blanks and a sentence end) makes
/// the number at `at` part of the sentence (`image 2.`).
fn after_number_noun(text: &str, lo: usize, at: usize) -> bool {
    let bytes = text.as_bytes();
    let mut end = at;
    while end > lo && bytes[end - 1] == b' ' {
        end -= 1;
    }
    let mut start = end;
    while start > lo && (bytes[start - 1].is_ascii_alphabetic() || bytes[start - 1] == b'-') {
        start -= 1;
    }
    if start == end {
        return false;
    }
    let word = &text[start..end];
    NUMBER_NOUNS
        .iter()
        .any(|noun| noun.eq_ignore_ascii_case(word))
}

/// Classifies what precedes position `i` (not before `lo`).
fn place_of(bytes: &[u8], lo: usize, i: usize) -> Option<Place> {
    let mut j = i;
    while j > lo && matches!(bytes[j - 1], b' ' | b'\t' | b'\r') {
        j -= 1;
    }
    let blanks = i - j;
    if j == lo || bytes[j - 1] == b'\n' {
        return Some(Place::At(Boundary::LineStart));
    }
    match bytes[j - 1] {
        b',' => Some(Place::At(Boundary::Flattened)),
        b'.' | b'?' | b'!' | b';' | b':' if blanks >= 2 => Some(Place::At(Boundary::Flattened)),
        b'.' | b'?' | b'!' | b';' | b':' if blanks == 1 => Some(Place::At(Boundary::SentenceEnd)),
        _ if blanks >= 2 => Some(Place::At(Boundary::Flattened)),
        _ if blanks == 1 => Some(Place::MidLine),
        _ => None,
    }
}

/// Parses a list marker at `at`: `1.`, `1)`, `(1)`, `#1`, or a bullet, and
/// the blanks after it. Decimals (`3.5`) are never markers.
fn marker_at(bytes: &[u8], at: usize, end: usize) -> Option<Marker> {
    let digits = |from: usize| -> Option<(u32, usize)> {
        let mut j = from;
        let mut value: u32 = 0;
        while j < end && j < from + 2 && bytes[j].is_ascii_digit() {
            value = value * 10 + u32::from(bytes[j] - b'0');
            j += 1;
        }
        let too_long = j < end && bytes[j].is_ascii_digit();
        (j > from && value > 0 && !too_long).then_some((value, j))
    };
    let byte = |j: usize| if j < end { Some(bytes[j]) } else { None };
    let (style, number, marker_end) = match bytes[at] {
        b'(' => {
            let (n, j) = digits(at + 1)?;
            (byte(j) == Some(b')')).then_some((Style::Parens, Some(n), j + 1))?
        }
        b'#' => {
            let (n, j) = digits(at + 1)?;
            let j = if matches!(byte(j), Some(b'.' | b')' | b':')) {
                j + 1
            } else {
                j
            };
            (Style::Hash, Some(n), j)
        }
        b'0'..=b'9' => {
            let (n, j) = digits(at)?;
            match byte(j) {
                Some(b'.') => (Style::Dot, Some(n), j + 1),
                Some(b')') => (Style::Paren, Some(n), j + 1),
                _ => return None,
            }
        }
        b'-' | b'*' | b'+' => (Style::Bullet(bytes[at]), None, at + 1),
        0xE2 if bytes.get(at + 1..at + 3) == Some(&[0x80, 0xA2]) => {
            (Style::Bullet(0xE2), None, at + 3)
        }
        _ => return None,
    };
    // What may follow a marker: blanks or the end; a letter only after
    // punctuation (`1.Low`, `1)Low`), never a digit (`3.5` is a decimal).
    match byte(marker_end) {
        None | Some(b' ' | b'\t' | b'\n' | b'\r') => {}
        Some(b)
            if b.is_ascii_alphabetic()
                && matches!(style, Style::Dot | Style::Paren | Style::Parens) => {}
        _ => return None,
    }
    Some(Marker {
        style,
        number,
        start: at,
        end: marker_end,
    })
}

/// Words that start a sentence with a colon in it but never a sub-header.
const NOT_LABEL_STARTS: &[&str] = &[
    "on", "in", "at", "the", "a", "an", "my", "its", "this", "these", "there", "of", "for", "with",
    "per", "as", "is", "are", "was", "were", "and", "or", "but", "if", "to", "by", "from",
];

/// Lower-case words no organ label holds (a label names places: "Heart and
/// mediastinum", "Bones/soft tissues").
const NOT_LABEL_WORDS: &[&str] = &["with", "without", "is", "are", "was", "were", "shows"];

/// Sides that open a placing label ("Left breast, 10 o'clock: ...").
const SIDE_WORDS: [&str; 6] = ["Left", "Right", "Bilateral", "LEFT", "RIGHT", "BILATERAL"];

/// The longest placing label, in bytes and words (words in brackets not
/// counted: "Right breast 10 o'clock, 4 cm from the nipple (site of
/// palpable concern):").
const MAX_SITED_LABEL_BYTES: usize = 96;
const MAX_SITED_LABEL_WORDS: usize = 10;

/// The words of `label` outside brackets.
fn words_outside_brackets(label: &str) -> usize {
    let mut depth = 0usize;
    let mut words = 0;
    let mut in_word = false;
    for c in label.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ' ' | ',' => in_word = false,
            _ if depth == 0 && !in_word => {
                in_word = true;
                words += 1;
            }
            _ => {}
        }
    }
    words
}

/// An organ sub-header (`LUNGS:`, `Heart and mediastinum:`) at `at`: returns
/// the end of the label and the position just after its colon.
///
/// UPPER CASE labels of up to five words count at any boundary; Capitalised
/// ones of up to four words at a line start or flattened break, of up to three
/// after a sentence end; lower-case ones only at a line start (all-lower-case
/// reports). A colon followed by a digit or `/` is a time, ratio or address.
/// A line opening with a side may place what follows at more length ("Left
/// breast, 10 o'clock, 4 cm from the nipple:").
pub(crate) fn label_at(
    text: &str,
    colons: &[usize],
    at: usize,
    end: usize,
    boundary: Boundary,
) -> Option<(usize, usize)> {
    const MAX_LABEL_BYTES: usize = 40;
    let bytes = text.as_bytes();
    if at >= end || !bytes[at].is_ascii_alphabetic() || boundary == Boundary::CapsRun {
        return None;
    }
    // Most positions have no colon nearby: look it up first.
    let j = *colons.get(colons.partition_point(|&colon| colon < at))?;
    if j >= end || j > at + MAX_SITED_LABEL_BYTES {
        return None;
    }
    let label_bytes =
        |b: &u8| b.is_ascii_alphabetic() || matches!(b, b' ' | b'/' | b'&' | b'-' | b'\'');
    // "Left breast, 10 o'clock, 4 cm from the nipple:" — a line that opens
    // with a side and places what follows is a label too.
    let sited = boundary == Boundary::LineStart
        && SIDE_WORDS
            .iter()
            .any(|side| text[at..j].split([' ', ',']).next() == Some(side))
        && bytes[at..j].iter().all(|b| {
            label_bytes(b) || b.is_ascii_digit() || matches!(b, b',' | b'.' | b'(' | b')')
        })
        && words_outside_brackets(&text[at..j]) <= MAX_SITED_LABEL_WORDS;
    if !sited && (j > at + MAX_LABEL_BYTES || !bytes[at..j].iter().all(label_bytes)) {
        return None;
    }
    if matches!(bytes.get(j + 1), Some(b) if b.is_ascii_digit() || *b == b'/') {
        return None;
    }
    let mut label_end = j;
    while label_end > at && bytes[label_end - 1] == b' ' {
        label_end -= 1;
    }
    let label = &text[at..label_end];
    let words = label.split(' ').filter(|w| !w.is_empty()).count();
    let upper = !label.bytes().any(|b| b.is_ascii_lowercase());
    let capitalised = bytes[at].is_ascii_uppercase();
    // "On today's exam:", "The impression:": sentences, not sub-headers.
    let first_word = label.split(' ').next().unwrap_or("");
    if NOT_LABEL_STARTS
        .iter()
        .any(|word| word.eq_ignore_ascii_case(first_word))
    {
        return None;
    }
    // "Cirrhosis with portal hypertension: splenomegaly, ...": a phrase
    // that joins findings is a conclusion, not an organ's label.
    if !upper && label.split(' ').any(|word| NOT_LABEL_WORDS.contains(&word)) {
        return None;
    }
    let fits = if sited {
        true
    } else if upper && label.len() >= 2 {
        words <= 5
    } else if capitalised {
        match boundary {
            Boundary::LineStart | Boundary::Flattened => words <= 4,
            Boundary::SentenceEnd => words <= 3,
            Boundary::CapsRun => false,
        }
    } else {
        boundary == Boundary::LineStart && words <= 3
    };
    fits.then_some((label_end, j + 1))
}

#[cfg(test)]
mod tests {
    use crate::SectionKind;
    use crate::layout::layout;
    use crate::sections::SectionTable;

    /// (n, label, item text) of every item of every section.
    fn items(text: &str) -> Vec<(u32, Option<String>, String)> {
        let table = SectionTable::builtin();
        let layout = layout(text, &table, SectionKind::Other);
        layout
            .sections
            .iter()
            .flat_map(|s| s.items.iter())
            .map(|item| {
                assert_eq!(item.text, &text[item.start..item.end]);
                (item.n, item.label.map(str::to_owned), item.text.to_owned())
            })
            .collect()
    }

    fn numbered(list: &[(u32, &str)]) -> Vec<(u32, Option<String>, String)> {
        list.iter()
            .map(|(n, t)| (*n, None, (*t).to_owned()))
            .collect()
    }

    #[test]
    fn every_list_style_on_separate_lines() {
        for marker in ["1.", "1)", "(1)", "#1"] {
            let text = format!(
                "IMPRESSION:\n{} Low lung volumes.\n{} Bibasilar atelectasis.",
                marker,
                marker.replace('1', "2")
            );
            assert_eq!(
                items(&text),
                numbered(&[(1, "Low lung volumes."), (2, "Bibasilar atelectasis.")]),
                "{text}"
            );
        }
        for bullet in ["-", "*", "•", "+"] {
            let text = format!("IMPRESSION:\n{bullet} Low lung volumes.\n{bullet} No effusion.");
            assert_eq!(
                items(&text),
                numbered(&[(1, "Low lung volumes."), (2, "No effusion.")]),
                "{text}"
            );
        }
    }

    #[test]
    fn run_together_items_and_sizes_after_numbers() {
        assert_eq!(
            items("1. Low lung volumes 2. Bibasilar atelectasis 3) not a new style"),
            numbered(&[
                (1, "Low lung volumes"),
                (2, "Bibasilar atelectasis 3) not a new style")
            ])
        );
        assert_eq!(
            items("IMPRESSION: 1. Stable. 2. 8 mm nodule in the right upper lobe. 3. 3.5 cm cyst."),
            numbered(&[
                (1, "Stable."),
                (2, "8 mm nodule in the right upper lobe."),
                (3, "3.5 cm cyst.")
            ])
        );
        assert_eq!(
            items("(1) Pneumonia (2) Small effusion"),
            numbered(&[(1, "Pneumonia"), (2, "Small effusion")])
        );
        assert_eq!(
            items("#1 Pneumonia #2 Effusion"),
            numbered(&[(1, "Pneumonia"), (2, "Effusion")])
        );
    }

    #[test]
    fn decimals_and_sentence_numbers_are_not_markers() {
        // No list markers: an unnumbered impression's items are its sentences.
        assert_eq!(
            items("IMPRESSION: Nodule measures 2.8 mm. Another 1.5 cm."),
            numbered(&[(1, "Nodule measures 2.8 mm."), (2, "Another 1.5 cm.")])
        );
        assert_eq!(
            items("1. Nodule on image 2. Unchanged.\n2. Effusion."),
            numbered(&[(1, "Nodule on image 2. Unchanged."), (2, "Effusion.")])
        );
        assert!(items("Chest, 2 views. 3 nodules.").is_empty());
        assert!(items("Levels 1,2. Normal.").is_empty());
        assert!(items("The lungs are clear - no effusion.").is_empty());
    }

    #[test]
    fn flattened_numbered_list() {
        assert_eq!(
            items("IMPRESSION:,1. Patent airway.,2. Slight asymmetry."),
            numbered(&[(1, "Patent airway."), (2, "Slight asymmetry.")])
        );
        assert_eq!(
            items("IMPRESSION:  1.  Normal heart.  2.  Clear lungs."),
            numbered(&[(1, "Normal heart."), (2, "Clear lungs.")])
        );
    }

    #[test]
    fn a_sub_header_line_ends_a_list_item() {
        let text =
            "FINDINGS:\nChest:\n1. Consolidation.\n2. No effusion.\nAbdomen: Normal gas pattern.";
        assert_eq!(
            items(text),
            numbered(&[(1, "Consolidation."), (2, "No effusion.")])
        );
        let table = SectionTable::builtin();
        let layout = layout(text, &table, SectionKind::Other);
        let last = layout.sentences.last().expect("sentences");
        assert_eq!(
            (&text[last.start..last.end], last.item),
            ("Abdomen: Normal gas pattern.", None)
        );
        let starts: Vec<usize> = layout.sentences.iter().map(|s| s.start).collect();
        assert!(starts.is_sorted(), "sentences in reading order");
    }

    #[test]
    fn an_organ_sub_header_opening_a_list_item_labels_it() {
        assert_eq!(
            items(
                "FINDINGS:\n1. RIGHT KIDNEY: 9 mm calculus. Additional 4 mm calculus.\n2. Bladder is normal."
            ),
            [
                (
                    1,
                    Some("RIGHT KIDNEY".to_owned()),
                    "RIGHT KIDNEY: 9 mm calculus. Additional 4 mm calculus.".to_owned()
                ),
                (2, None, "Bladder is normal.".to_owned())
            ]
        );
    }

    #[test]
    fn a_label_with_its_body_on_its_line_governs_that_line_only() {
        let table = SectionTable::builtin();
        let item_at = |text: &str, needle: &str| {
            let layout = layout(text, &table, SectionKind::Other);
            let at = text.find(needle).unwrap_or_default();
            layout
                .sentences
                .iter()
                .find(|s| s.start <= at && at < s.end)
                .and_then(|s| s.item)
        };
        let text = "FINDINGS:\nLeft kidney: Normal size. No mass.\nRenal veins are patent.\nSmall hiatus hernia.";
        assert_eq!(item_at(text, "No mass"), Some(1));
        assert_eq!(item_at(text, "Small hiatus hernia"), None);
        // A body wrapped mid-sentence stays the label's.
        let wrapped = "FINDINGS:\nLeft kidney: Normal size and\nenhancement. No mass.";
        assert_eq!(item_at(wrapped, "No mass"), Some(1));
    }

    #[test]
    fn organ_sub_headers_become_labelled_items() {
        let text = "FINDINGS:\nLUNGS: No focal consolidation.\nPLEURA: No effusion or pneumothorax.\nHeart and mediastinum: Normal.";
        let found = items(text);
        assert_eq!(
            found,
            vec![
                (1, Some("LUNGS".into()), "No focal consolidation.".into()),
                (
                    2,
                    Some("PLEURA".into()),
                    "No effusion or pneumothorax.".into()
                ),
                (3, Some("Heart and mediastinum".into()), "Normal.".into()),
            ]
        );
        let flat = items("FINDINGS: LUNGS: Clear. BONES: Intact. The time was 10:30.");
        assert_eq!(flat.len(), 2);
        assert_eq!(flat[1].2, "Intact. The time was 10:30.");
        assert!(items("FINDINGS: The following were noted in the chest: nothing.").is_empty());
        assert!(items("FINDINGS: On today's exam: nothing.").is_empty());
        // A phrase joining findings is a conclusion, not an organ's label.
        assert!(
            items("FINDINGS:\nCirrhosis with portal hypertension: splenomegaly and ascites.")
                .is_empty()
        );
    }
}
