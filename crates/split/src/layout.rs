//! The structure of a report: sections (from mappings/sections.tsv), their
//! numbered/bulleted items or organ sub-headers, and sentences.
//!
//! Everything here works on BYTE offsets into the input; the orchestrator
//! turns them into char offsets once at the end (`offsets::to_char_offsets`).
//! The scanners are hand-written byte loops plus one Aho-Corasick automaton
//! built with the [`SectionTable`] (crate::sections), so a report costs a few
//! microseconds.

mod items;
mod sentences;

use crate::sections::SectionTable;
use crate::{Item, Section, SectionKind};

pub(crate) use sentences::Sentence;

/// The layout of one report, all spans in bytes.
#[derive(Debug)]
pub(crate) struct Layout<'a> {
    /// Public-model sections (kind, title, code, spans IN BYTES, items with spans IN BYTES).
    pub sections: Vec<Section<'a>>,
    /// Every sentence (or item/list fragment) in reading order, spans in bytes.
    pub sentences: Vec<Sentence>,
}

/// Where a candidate header (or item marker, or sub-header) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Boundary {
    /// Start of the text or of a line (leading blanks skipped).
    LineStart,
    /// After a flattened line break: `,` (exports turn newlines into ", ")
    /// or two or more spaces.
    Flattened,
    /// After a sentence end (`.`, `?`, `!`, `;`) and at most one space.
    SentenceEnd,
    /// After one space inside a run of UPPER CASE words that ends in a colon
    /// ("XR WRIST 3 VIEWS HX: FOOSH FINDINGS: ..."): run-together all-caps
    /// reports put their headers there. Headers only, never sub-headers.
    CapsRun,
}

/// One recognised section header.
struct Header {
    kind: SectionKind,
    /// Start of the header word(s).
    start: usize,
    /// End of the header word(s) (the title is `start..title_end`).
    title_end: usize,
    /// Just after the colon (or the header words when on its own line).
    end: usize,
    /// Capitalised (not UPPER CASE) and not at a line start: trusted only in
    /// reports that put no header at a line start (one-line exports).
    weak: bool,
}

/// Splits `text` into sections, items and sentences. Text without any header
/// is one section of kind `headerless`; text before the first header is an
/// `other` section.
pub(crate) fn layout<'a>(
    text: &'a str,
    table: &'a SectionTable,
    headerless: SectionKind,
) -> Layout<'a> {
    let marks = Marks::new(text);
    let headers = find_headers(text, table, &marks);
    let mut sections = Vec::with_capacity(headers.len() + 1);
    match headers.first() {
        None => {
            let (body_start, body_end) = trim_span(text, 0, text.len());
            if body_start < body_end {
                sections.push(new_section(
                    table, headerless, None, body_start, body_start, body_end,
                ));
            }
        }
        Some(first) => {
            let (body_start, body_end) = trim_span(text, 0, first.start);
            if body_start < body_end {
                sections.push(new_section(
                    table,
                    SectionKind::Other,
                    None,
                    body_start,
                    body_start,
                    body_end,
                ));
            }
        }
    }
    for (index, header) in headers.iter().enumerate() {
        let next_start = headers.get(index + 1).map_or(text.len(), |next| next.start);
        let (mut body_start, mut body_end) = trim_span(text, header.end, next_start);
        if body_start >= body_end {
            (body_start, body_end) = (header.end, header.end);
        }
        let mut section = new_section(
            table,
            header.kind,
            Some(&text[header.start..header.title_end]),
            header.start,
            body_start,
            body_end,
        );
        section.end = body_end.max(header.end);
        sections.push(section);
    }
    comment_as_conclusion(table, &mut sections);
    let mut sentences = Vec::with_capacity(8 * sections.len());
    for (index, section) in sections.iter_mut().enumerate() {
        let regions = items::find_items(text, section, &marks);
        let first = sentences.len();
        sentences::split_regions(text, index, &regions, &marks.colons, &mut sentences);
        if section.kind == SectionKind::Impression {
            if section.items.is_empty() {
                sentence_items(text, section, &mut sentences[first..]);
            } else if section.items.iter().all(|item| item.label.is_some()) {
                sentences_between_labels(text, section, &mut sentences[first..]);
            }
        }
    }
    Layout {
        sections,
        sentences,
    }
}

/// A "Comment:" right after the findings of a report with no impression is
/// its conclusion, as British reports write it ("Findings: ... Comment: 7 mm
/// gallbladder polyp; suggest repeat ultrasound in 12 months."). Elsewhere a
/// comment is a note and stays `other`.
fn comment_as_conclusion<'a>(table: &'a SectionTable, sections: &mut [Section<'a>]) {
    if sections.iter().any(|s| s.kind == SectionKind::Impression) {
        return;
    }
    let comment = sections.windows(2).position(|pair| {
        pair[0].kind == SectionKind::Findings
            && pair[1].kind == SectionKind::Other
            && pair[1].title.is_some_and(|t| {
                ["comment", "comments"]
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(t.trim()))
            })
    });
    if let Some(at) = comment {
        let section = &mut sections[at + 1];
        section.kind = SectionKind::Impression;
        section.code = table.code(SectionKind::Impression);
    }
}

/// An impression written as sentences, not a list, states one conclusion
/// per sentence: each becomes an item, numbered in order, as a numbered
/// list's entries are.
fn sentence_items<'a>(text: &'a str, section: &mut Section<'a>, sentences: &mut [Sentence]) {
    for (n, sentence) in (1..).zip(sentences.iter_mut()) {
        sentence.item = Some(n);
        section.items.push(Item {
            n,
            label: None,
            text: &text[sentence.start..sentence.end],
            start: sentence.start,
            end: sentence.end,
        });
    }
}

/// An unnumbered impression whose lines are partly sub-headed ("Right
/// breast new focal asymmetry (BI-RADS 0).\nLeft breast: benign.") states
/// one conclusion per sentence too: the sentences no label governs become
/// items among the labelled ones, all numbered again in text order.
fn sentences_between_labels<'a>(
    text: &'a str,
    section: &mut Section<'a>,
    sentences: &mut [Sentence],
) {
    // A labelled line of several sentences ("Resolving NEC: the pneumatosis
    // has resolved. No pneumoperitoneum.") states several conclusions: the
    // label's item keeps its first sentence, the others are items of their
    // own.
    // Each labelled item's position by its number (a numbered item keeps all
    // its sentences), found by a search per sentence, never a walk over the
    // items (an impression may hold thousands of lines).
    let mut labelled: Vec<(u32, usize)> = section
        .items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.label.is_some())
        .map(|(position, item)| (item.n, position))
        .collect();
    labelled.sort_unstable();
    // (item number, end of its first sentence, end of the item as found)
    let mut previous: Option<(u32, usize, usize)> = None;
    for sentence in sentences.iter_mut() {
        let Some(n) = sentence.item else {
            previous = None;
            continue;
        };
        let Some(&(_, position)) = labelled
            .get(labelled.partition_point(|&(number, _)| number < n))
            .filter(|&&(number, _)| number == n)
        else {
            previous = None;
            continue;
        };
        let item = &mut section.items[position];
        match previous {
            Some((kept, first_end, item_end))
                if kept == n
                    && item.start < first_end
                    && first_end <= sentence.start
                    && sentence.end <= item_end =>
            {
                sentence.item = None;
                item.end = first_end;
                item.text = &text[item.start..item.end];
            }
            Some((kept, ..)) if kept == n => {}
            _ => previous = Some((n, sentence.end, item.end)),
        }
    }
    if sentences.iter().all(|sentence| sentence.item.is_some()) {
        return;
    }
    // (the old number, none for a sentence no label governs; the item)
    let mut items: Vec<(Option<u32>, Item<'a>)> = std::mem::take(&mut section.items)
        .into_iter()
        .map(|item| (Some(item.n), item))
        .collect();
    items.extend(
        sentences
            .iter()
            .filter(|sentence| sentence.item.is_none())
            .map(|sentence| {
                let item = Item {
                    n: 0,
                    label: None,
                    text: &text[sentence.start..sentence.end],
                    start: sentence.start,
                    end: sentence.end,
                };
                (None, item)
            }),
    );
    items.sort_by_key(|(_, item)| item.start);
    // Each old number's new one, and each new item found by its start: a
    // search per sentence, never a walk over the items (an impression may
    // hold thousands of lines).
    let mut renumbered: Vec<Option<u32>> = Vec::new();
    for (n, (old, item)) in (1..).zip(items.iter_mut()) {
        item.n = n;
        if let Some(old) = *old {
            let old = old as usize;
            if renumbered.len() <= old {
                renumbered.resize(old + 1, None);
            }
            renumbered[old] = Some(n);
        }
    }
    for sentence in sentences.iter_mut() {
        sentence.item = match sentence.item {
            Some(was) => renumbered.get(was as usize).copied().flatten(),
            None => items
                .binary_search_by_key(&sentence.start, |(_, item)| item.start)
                .ok()
                .filter(|&at| items[at].0.is_none())
                .map(|at| items[at].1.n),
        };
    }
    section.items = items.into_iter().map(|(_, item)| item).collect();
}

fn new_section<'a>(
    table: &'a SectionTable,
    kind: SectionKind,
    title: Option<&'a str>,
    start: usize,
    body_start: usize,
    body_end: usize,
) -> Section<'a> {
    Section {
        kind,
        title,
        code: table.code(kind),
        start,
        end: body_end,
        body_start,
        body_end,
        items: Vec::new(),
    }
}

/// Narrows `start..end` past blanks and flattened-export commas on both sides.
pub(super) fn trim_span(text: &str, start: usize, end: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    let is_filler = |b: u8| b.is_ascii_whitespace() || b == b',';
    let mut s = start;
    while s < end && is_filler(bytes[s]) {
        s += 1;
    }
    let mut e = end;
    while e > s && is_filler(bytes[e - 1]) {
        e -= 1;
    }
    (s, e)
}

/// Where the colons and line breaks of a text are: headers and sub-headers
/// hinge on them, and reports have few, so finding them once (one pass)
/// spares every later scan a walk over all the text.
pub(super) struct Marks {
    pub colons: Vec<usize>,
    newlines: Vec<usize>,
}

/// How far before its colon a header or sub-header may start.
const MAX_BEFORE_COLON: usize = 64;

impl Marks {
    fn new(text: &str) -> Marks {
        // `match_indices(char)` runs on the standard library's word-at-a-time
        // memchr: two of those beat one byte loop testing two bytes.
        Marks {
            colons: text.match_indices(':').map(|(at, _)| at).collect(),
            newlines: text.match_indices('\n').map(|(at, _)| at).collect(),
        }
    }

    /// Whether `start..end` holds a colon (else it has no header or sub-header
    /// but an own-line header).
    pub(super) fn has_colon(&self, start: usize, end: usize) -> bool {
        self.colons
            .get(self.colons.partition_point(|&at| at < start))
            .is_some_and(|&at| at < end)
    }

    /// Calls `visit(position, boundary)`, in order, for every place in
    /// `start..end` where a header or sub-header may start: each line start
    /// (leading blanks skipped), and each word start shortly before a colon
    /// that follows a flattened or sentence boundary. Everything a header or
    /// sub-header needs, without walking the whole text.
    pub(super) fn for_each_boundary(
        &self,
        text: &str,
        start: usize,
        end: usize,
        mut visit: impl FnMut(usize, Boundary),
    ) {
        if start >= end {
            return;
        }
        let bytes = text.as_bytes();
        let skip_blanks = |mut at: usize| {
            while at < end && matches!(bytes[at], b' ' | b'\t' | b'\r') {
                at += 1;
            }
            at
        };
        let mut candidates: Vec<(usize, Boundary)> = Vec::new();
        candidates.push((skip_blanks(start), Boundary::LineStart));
        let within = |marks: &[usize]| {
            let first = marks.partition_point(|&at| at < start);
            let last = marks.partition_point(|&at| at < end);
            first..last
        };
        for &newline in &self.newlines[within(&self.newlines)] {
            candidates.push((skip_blanks(newline + 1), Boundary::LineStart));
        }
        for &colon in &self.colons[within(&self.colons)] {
            // Only the start of the run of label characters before the colon,
            // and words after two spaces inside it, follow a boundary.
            let floor = colon.saturating_sub(MAX_BEFORE_COLON).max(start);
            // `IMPRESSION,:` (a flattened break before the colon).
            let run_end = if colon > floor && bytes[colon - 1] == b',' {
                colon - 1
            } else {
                colon
            };
            let mut run_start = run_end;
            while run_start > floor
                && (bytes[run_start - 1].is_ascii_alphabetic()
                    || matches!(
                        bytes[run_start - 1],
                        b' ' | b'\t' | b'-' | b'/' | b'&' | b'\''
                    ))
            {
                run_start -= 1;
            }
            while run_start < run_end && !bytes[run_start].is_ascii_alphabetic() {
                run_start += 1;
            }
            for at in run_start..run_end {
                let word_start = bytes[at].is_ascii_alphabetic()
                    && (at == run_start
                        || (at >= 2 && bytes[at - 1] == b' ' && bytes[at - 2] == b' '));
                if let Some(boundary) = word_start
                    .then(|| boundary_before(bytes, start, at))
                    .flatten()
                {
                    candidates.push((at, boundary));
                } else if in_caps_run(bytes, run_start, at, run_end) {
                    candidates.push((at, Boundary::CapsRun));
                }
            }
        }
        candidates.sort_unstable_by_key(|&(at, _)| at);
        candidates.dedup_by_key(|&mut (at, _)| at);
        for (at, boundary) in candidates {
            if at < end {
                visit(at, boundary);
            }
        }
    }
}

/// Whether the word at `at` follows one space after an UPPER CASE word or a
/// number, and it and the words up to the colon at `run_end` are UPPER CASE.
fn in_caps_run(bytes: &[u8], run_start: usize, at: usize, run_end: usize) -> bool {
    at >= run_start + 2
        && bytes[at].is_ascii_uppercase()
        && bytes[at - 1] == b' '
        && (bytes[at - 2].is_ascii_uppercase() || bytes[at - 2].is_ascii_digit())
        && !bytes[at..run_end].iter().any(u8::is_ascii_lowercase)
}

/// What kind of boundary precedes `at` (looking no further back than `lo`):
/// a line start, a flattened break (`,` or two spaces), a sentence end, or
/// none (inside a sentence).
fn boundary_before(bytes: &[u8], lo: usize, at: usize) -> Option<Boundary> {
    let mut j = at;
    while j > lo && matches!(bytes[j - 1], b' ' | b'\t' | b'\r') {
        j -= 1;
    }
    let blanks = at - j;
    if j == lo {
        return Some(Boundary::LineStart);
    }
    match bytes[j - 1] {
        b'\n' => Some(Boundary::LineStart),
        b',' => Some(Boundary::Flattened),
        b'.' | b'?' | b'!' | b';' if blanks >= 2 => Some(Boundary::Flattened),
        b'.' | b'?' | b'!' | b';' => Some(Boundary::SentenceEnd),
        _ if blanks >= 2 => Some(Boundary::Flattened),
        _ => None,
    }
}

/// A 256-entry membership table for the bytes a scanner stops at.
pub(crate) const fn byte_set(members: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut i = 0;
    while i < members.len() {
        set[members[i] as usize] = true;
        i += 1;
    }
    set
}

/// The first position at or after `from` (before `end`) holding a byte of
/// `set`, or `end`. The scanners spend most of their time here, so it is a
/// tight table-driven loop.
pub(crate) fn skip_to_any(bytes: &[u8], from: usize, end: usize, set: &[bool; 256]) -> usize {
    let hit = |b: &u8| set[usize::from(*b)];
    let mut at = from;
    // Eight table lookups OR-ed without a branch each: most 8-byte blocks of
    // prose hold no stop byte at all.
    for block in bytes[from..end].chunks_exact(8) {
        if block.iter().fold(false, |any, b| any | hit(b)) {
            break;
        }
        at += 8;
    }
    bytes[at..end]
        .iter()
        .position(hit)
        .map_or(end, |offset| at + offset)
}

/// Finds the section headers in reading order.
///
/// The rules a reader can predict: a header variant from the table, as a
/// whole word, either at a line start followed by a colon or alone on its
/// line; or, in flattened text (after `,`, two spaces or a sentence end),
/// written Capitalised or in UPPER CASE and followed by a colon. So
/// "Impression:" opening a paragraph is a header, while "my impression: ..."
/// or "on exam: ..." inside a sentence is not.
fn find_headers(text: &str, table: &SectionTable, marks: &Marks) -> Vec<Header> {
    let bytes = text.as_bytes();
    let mut headers: Vec<Header> = Vec::new();
    let mut resume_at = 0;
    marks.for_each_boundary(text, 0, text.len(), |at, boundary| {
        if at < resume_at || !bytes[at].is_ascii_alphabetic() {
            return;
        }
        // Away from a line start a header is written Capitalised or in UPPER CASE.
        if boundary != Boundary::LineStart && !bytes[at].is_ascii_uppercase() {
            return;
        }
        let closes_header = |title_end: usize| -> Option<usize> {
            if title_end < bytes.len() && bytes[title_end].is_ascii_alphanumeric() {
                return None;
            }
            let mut after = title_end;
            while after < bytes.len() && (bytes[after] == b' ' || bytes[after] == b'\t') {
                after += 1;
            }
            if bytes.get(after) == Some(&b':') {
                Some(after + 1)
            } else if bytes.get(after) == Some(&b'/') {
                // `FINDINGS/IMPRESSION:` opens a section of the first kind named.
                let rest = &bytes[after..bytes.len().min(after + MAX_BEFORE_COLON)];
                let colon = rest
                    .iter()
                    .position(|&b| !(b.is_ascii_alphabetic() || b == b'/' || b == b' '))
                    .filter(|&offset| rest[offset] == b':')?;
                Some(after + colon + 1)
            } else if bytes.get(after..after + 2) == Some(b",:") {
                // Some exports put the flattened line break before the colon.
                Some(after + 2)
            } else if boundary == Boundary::LineStart
                && matches!(bytes.get(after), None | Some(b'\n' | b'\r'))
            {
                Some(title_end)
            } else {
                None
            }
        };
        let Some((kind, title_end, end)) = table
            .header_at(text, at)
            .and_then(|(kind, title_end)| {
                let end = closes_header(title_end).or_else(|| {
                    (kind == SectionKind::Addendum && boundary == Boundary::LineStart)
                        .then(|| dated_tag_end(bytes, title_end))
                        .flatten()
                })?;
                Some((kind, title_end, end))
            })
            .or_else(|| {
                let (kind, title_end) =
                    qualified_header_at(text, table, &marks.colons, at, boundary)?;
                // "Overall assessment: BI-RADS 4B." closing an impression
                // sums it up; it opens no second one.
                let restates_the_section = kind == SectionKind::Impression
                    && headers
                        .last()
                        .is_some_and(|h: &Header| h.kind == SectionKind::Impression);
                if restates_the_section {
                    return None;
                }
                Some((kind, title_end, closes_header(title_end)?))
            })
        else {
            return;
        };
        // The title runs to the colon (`FINDINGS/IMPRESSION`), blanks trimmed.
        let title_end = if end > title_end && bytes[end - 1] == b':' {
            text[..end - 1].trim_end_matches([' ', '\t', ',']).len()
        } else {
            title_end
        };
        let upper = !text[at..title_end].bytes().any(|b| b.is_ascii_lowercase());
        headers.push(Header {
            kind,
            start: at,
            title_end,
            end,
            weak: boundary != Boundary::LineStart && !upper,
        });
        resume_at = end;
    });
    // "History: negative per patient." inside a paragraph of a report that
    // puts its headers at line starts is running text, not a header; a
    // one-line export ("Comparison: None. Findings: ...") has one at most.
    let opens_a_line = |header: &Header| {
        let before = text[..header.start].trim_end_matches([' ', '\t', '\r']);
        before.is_empty() || before.ends_with('\n')
    };
    let line_start_headers = headers.iter().filter(|h| opens_a_line(h)).count();
    if line_start_headers >= 2 {
        // Except in the preamble, before the first Findings or Impression:
        // a title line or a header that goes on with more ("CT HEAD.
        // History: fall. Comparison: none." over "Findings:" on a line of
        // its own) writes its headers in a run.
        let body_start = headers
            .iter()
            .find(|h| matches!(h.kind, SectionKind::Findings | SectionKind::Impression))
            .map_or(0, |h| h.start);
        headers.retain(|header| !header.weak || header.start < body_start);
    }
    headers
}

/// Just after the colon of the date or number an addendum header carries at
/// a line start: `Addendum 12/1:`, `ADDENDUM #2:`, `Addendum (12/01/2026):`.
/// A few bytes of digits and date punctuation only, so "Addendum to follow"
/// stays text.
fn dated_tag_end(bytes: &[u8], title_end: usize) -> Option<usize> {
    const MAX_TAG: usize = 24;
    let rest = &bytes[title_end..bytes.len().min(title_end + MAX_TAG)];
    let colon = rest.iter().position(|&b| b == b':')?;
    let tag = &rest[..colon];
    let dated = tag.iter().any(u8::is_ascii_digit)
        && tag
            .iter()
            .all(|b| b.is_ascii_digit() || b" \t/.-#()".contains(b));
    dated.then_some(title_end + colon + 1)
}

/// A header variant qualified by up to two words before it, followed by a
/// colon: `CLINICAL IMPRESSION:`, `ANGIOGRAPHIC FINDINGS:`, `CT ABDOMEN FINDINGS:`.
/// Only in UPPER CASE, or Capitalised at a line start, so running text such
/// as "The findings: ..." never opens a section.
fn qualified_header_at(
    text: &str,
    table: &SectionTable,
    colons: &[usize],
    at: usize,
    boundary: Boundary,
) -> Option<(SectionKind, usize)> {
    const MAX_QUALIFIERS: usize = 2;
    let (label_end, _) = items::label_at(text, colons, at, text.len(), boundary)?;
    let label = &text[at..label_end];
    let upper = !label.bytes().any(|b| b.is_ascii_lowercase());
    if !(upper || boundary == Boundary::LineStart && text.as_bytes()[at].is_ascii_uppercase()) {
        return None;
    }
    label
        .match_indices(' ')
        .take(MAX_QUALIFIERS)
        .map(|(space, _)| at + space + 1)
        .find_map(|word_start| {
            table
                .header_at(text, word_start)
                .filter(|&(_, end)| end == label_end)
                .map(|(kind, _)| (kind, label_end))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SectionTable {
        SectionTable::builtin()
    }

    fn kinds(text: &str) -> Vec<(SectionKind, Option<String>, String)> {
        let table = table();
        let layout = layout(text, &table, SectionKind::Other);
        layout
            .sections
            .iter()
            .map(|s| {
                (
                    s.kind,
                    s.title.map(str::to_owned),
                    text[s.body_start..s.body_end].to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_comment_after_findings_is_the_conclusion_only_without_an_impression() {
        let kinds_only = |text: &str| kinds(text).into_iter().map(|k| k.0).collect::<Vec<_>>();
        assert_eq!(
            kinds_only("Findings: A 7 mm polyp.\nComment: Gallbladder polyp."),
            [SectionKind::Findings, SectionKind::Impression]
        );
        assert_eq!(
            kinds_only("FINDINGS: A 7 mm polyp.\nIMPRESSION: Polyp.\nCOMMENT: Called to Dr. A."),
            [
                SectionKind::Findings,
                SectionKind::Impression,
                SectionKind::Other
            ]
        );
    }

    #[test]
    fn parses_a_minimal_custom_table_with_crlf() {
        let table = SectionTable::parse(crate::table::Source {
            base: (
                "site.tsv",
                "kind\tsystem\tcode\tdisplay\theaders\r\nimpression\thttp://loinc.org\t19005-8\tImp\tBEFUND|IMPRESSION\r\n",
            ),
            site: None,
        })
        .expect("valid");
        assert_eq!(
            table
                .code(SectionKind::Impression)
                .map(|c| c.display.as_str()),
            Some("Imp")
        );
        let layout = layout("Befund: normal.", &table, SectionKind::Other);
        assert_eq!(layout.sections[0].kind, SectionKind::Impression);
    }

    #[test]
    fn line_broken_headers_in_any_case() {
        let text = "EXAM: CT chest\nclinical history: cough\n\nComparison:\nNone.\nFINDINGS\nThe lungs are clear.\n\nImpression:\n1. Normal.";
        assert_eq!(
            kinds(text),
            vec![
                (
                    SectionKind::Technique,
                    Some("EXAM".into()),
                    "CT chest".into()
                ),
                (
                    SectionKind::Indication,
                    Some("clinical history".into()),
                    "cough".into()
                ),
                (
                    SectionKind::Comparison,
                    Some("Comparison".into()),
                    "None.".into()
                ),
                (
                    SectionKind::Findings,
                    Some("FINDINGS".into()),
                    "The lungs are clear.".into()
                ),
                (
                    SectionKind::Impression,
                    Some("Impression".into()),
                    "1. Normal.".into()
                ),
            ]
        );
    }

    #[test]
    fn run_together_upper_case_headers() {
        // All-caps one-line reports put a header after one space; a
        // qualified header keeps its qualifier, and mixed case stays text.
        let got: Vec<SectionKind> = kinds(
            "XR LEFT WRIST 3 VIEWS HX: FOOSH FINDINGS: THERE IS A FRACTURE. IMPRESSION: FRACTURE.",
        )
        .into_iter()
        .map(|(kind, ..)| kind)
        .collect();
        assert_eq!(
            got,
            [
                SectionKind::Other,
                SectionKind::Indication,
                SectionKind::Findings,
                SectionKind::Impression
            ]
        );
        let got = kinds("CT ABDOMEN FINDINGS: Liver normal.");
        assert_eq!(got[0].1.as_deref(), Some("CT ABDOMEN FINDINGS"));
        let got = kinds("FINDINGS: The patient gave a history: fever.");
        assert_eq!(got.len(), 1, "{got:?}");
    }

    #[test]
    fn flattened_exports() {
        let text = "EXAM: , Chest two views.,REASON FOR EXAM: , Cough.,FINDINGS:  ,The lungs are clear.,IMPRESSION: ,Normal.";
        assert_eq!(
            kinds(text),
            vec![
                (
                    SectionKind::Technique,
                    Some("EXAM".into()),
                    "Chest two views.".into()
                ),
                (
                    SectionKind::Indication,
                    Some("REASON FOR EXAM".into()),
                    "Cough.".into()
                ),
                (
                    SectionKind::Findings,
                    Some("FINDINGS".into()),
                    "The lungs are clear.".into()
                ),
                (
                    SectionKind::Impression,
                    Some("IMPRESSION".into()),
                    "Normal.".into()
                ),
            ]
        );
        let text = "FINDINGS:  Heart size normal.  IMPRESSION:  No acute disease.";
        assert_eq!(kinds(text)[1].0, SectionKind::Impression);
        let text = "Comparison: None. Findings: Lungs clear. Impression: Normal.";
        assert_eq!(kinds(text).len(), 3);
        // In a report with line-start headers, a Capitalised one mid-paragraph is text.
        let text = "FINDINGS: Clear. History: negative per patient.\nIMPRESSION: Normal.";
        assert_eq!(kinds(text).len(), 2);
        let text = "FINDINGS: Clear. IMPRESSION: Normal.\nADDENDUM: None.";
        assert_eq!(kinds(text).len(), 3);
    }

    #[test]
    fn false_headers_stay_in_their_sentence() {
        let text = "FINDINGS: On today's exam: tender. The report: see above. my impression: fine, history: none.\nIMPRESSION: Normal.";
        let found = kinds(text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, SectionKind::Findings);
        // Lower-case header words after a sentence end are not headers either.
        let found = kinds("The lungs are clear. impression: normal");
        assert_eq!(found.len(), 1);
        // A header word that is only the start of a longer word is no header.
        assert_eq!(kinds("Reporting: done").len(), 1);
        assert_eq!(kinds("Reporting: done")[0].1, None);
    }

    #[test]
    fn an_impression_of_sentences_and_labelled_lines_has_an_item_for_each() {
        let table = table();
        let text = "FINDINGS: Mass.\nIMPRESSION:\nRight breast new focal asymmetry (BI-RADS 0); recall is advised.\nLeft breast: benign (BI-RADS 2).";
        let layout = layout(text, &table, SectionKind::Other);
        let impression = &layout.sections[1];
        let items: Vec<(u32, Option<&str>)> = impression
            .items
            .iter()
            .map(|item| (item.n, item.label))
            .collect();
        assert_eq!(items, [(1, None), (2, Some("Left breast"))]);
        let numbered: Vec<Option<u32>> = layout
            .sentences
            .iter()
            .filter(|s| s.section == 1)
            .map(|s| s.item)
            .collect();
        assert_eq!(numbered, [Some(1), Some(2)]);
        // A labelled line of two sentences states two conclusions.
        let text = "IMPRESSION:\nResolving NEC: the pneumatosis has resolved. No pneumoperitoneum.\nLiver: steatosis.";
        let labelled = super::layout(text, &table, SectionKind::Other);
        let items: Vec<(u32, Option<&str>, &str)> = labelled.sections[0]
            .items
            .iter()
            .map(|item| (item.n, item.label, item.text))
            .collect();
        assert_eq!(
            items,
            [
                (1, Some("Resolving NEC"), "the pneumatosis has resolved."),
                (2, None, "No pneumoperitoneum."),
                (3, Some("Liver"), "steatosis.")
            ]
        );
    }

    #[test]
    fn an_assessment_heads_the_conclusion_and_an_overall_one_sums_it_up() {
        let text = "Findings: Effusion.\nAssessment: Effusion.\nOverall assessment: BI-RADS 2.";
        let found: Vec<(SectionKind, Option<String>)> = kinds(text)
            .into_iter()
            .map(|(kind, title, _)| (kind, title))
            .collect();
        assert_eq!(
            found,
            [
                (SectionKind::Findings, Some("Findings".to_owned())),
                (SectionKind::Impression, Some("Assessment".to_owned()))
            ]
        );
    }

    #[test]
    fn a_preamble_line_of_headers_opens_each_section() {
        let text = "Exam: MRI brain. History: Fever, confusion. Technique: T1, FLAIR. Comparison: CT today.\nFindings: Swelling. History: none given by the patient.\nImpression: Encephalitis.";
        let titled = "CT HEAD WITHOUT CONTRAST   History: Fall. Comparison: CT 2024.\nFindings: No bleed.\nImpression: Normal.";
        let titled: Vec<SectionKind> = kinds(titled).into_iter().map(|(kind, ..)| kind).collect();
        assert_eq!(
            titled,
            [
                SectionKind::Other,
                SectionKind::Indication,
                SectionKind::Comparison,
                SectionKind::Findings,
                SectionKind::Impression
            ]
        );
        let found: Vec<SectionKind> = kinds(text).into_iter().map(|(kind, ..)| kind).collect();
        assert_eq!(
            found,
            [
                SectionKind::Technique,
                SectionKind::Indication,
                SectionKind::Technique,
                SectionKind::Comparison,
                SectionKind::Findings,
                SectionKind::Impression
            ]
        );
    }

    #[test]
    fn longest_variant_wins_and_preamble_is_other() {
        let text = "Patient: XXXX\nCLINICAL HISTORY: Fall.\nPRIOR STUDIES: None.";
        assert_eq!(
            kinds(text),
            vec![
                (SectionKind::Other, None, "Patient: XXXX".into()),
                (
                    SectionKind::Indication,
                    Some("CLINICAL HISTORY".into()),
                    "Fall.".into()
                ),
                (
                    SectionKind::Comparison,
                    Some("PRIOR STUDIES".into()),
                    "None.".into()
                ),
            ]
        );
    }

    #[test]
    fn qualified_headers_and_comma_before_colon() {
        let text = "CLINICAL IMPRESSION: ,Carpal tunnel.,ANGIOGRAPHIC FINDINGS:,1. Patent.,IMPRESSION,:,Normal.";
        assert_eq!(
            kinds(text),
            vec![
                (
                    SectionKind::Impression,
                    Some("CLINICAL IMPRESSION".into()),
                    "Carpal tunnel.".into()
                ),
                (
                    SectionKind::Findings,
                    Some("ANGIOGRAPHIC FINDINGS".into()),
                    "1. Patent.".into()
                ),
                (
                    SectionKind::Impression,
                    Some("IMPRESSION".into()),
                    "Normal.".into()
                ),
            ]
        );
        assert_eq!(
            kinds("Chest CT findings:\nClear.")[0].0,
            SectionKind::Findings
        );
        assert_eq!(kinds("The lungs are clear. The findings: stable.").len(), 1);
    }

    #[test]
    fn slash_headers_and_signature_blocks() {
        let text = "FINDINGS/IMPRESSION: No acute disease.\nElectronically signed by: Dr. XXXX";
        assert_eq!(
            kinds(text),
            vec![
                (
                    SectionKind::Findings,
                    Some("FINDINGS/IMPRESSION".into()),
                    "No acute disease.".into()
                ),
                (
                    SectionKind::Other,
                    Some("Electronically signed by".into()),
                    "Dr. XXXX".into()
                ),
            ]
        );
    }

    #[test]
    fn headerless_text_takes_the_callers_kind_and_code() {
        let table = table();
        let text = "  No acute cardiopulmonary process.\n";
        let layout = layout(text, &table, SectionKind::Impression);
        assert_eq!(layout.sections.len(), 1);
        let section = &layout.sections[0];
        assert_eq!(section.kind, SectionKind::Impression);
        assert_eq!(section.title, None);
        assert_eq!(section.code.map(|c| c.code.as_str()), Some("19005-8"));
        assert_eq!(
            &text[section.start..section.end],
            "No acute cardiopulmonary process."
        );
        assert!(
            crate::layout::layout("", &table, SectionKind::Other)
                .sections
                .is_empty()
        );
        assert!(
            crate::layout::layout(" ,\n ", &table, SectionKind::Other)
                .sections
                .is_empty()
        );
    }

    #[test]
    fn empty_section_body_sits_after_its_colon() {
        let text = "FINDINGS:\nIMPRESSION: Normal.";
        let table = table();
        let layout = layout(text, &table, SectionKind::Other);
        let findings = &layout.sections[0];
        assert_eq!((findings.body_start, findings.body_end), (9, 9));
        assert_eq!(&text[findings.start..findings.end], "FINDINGS:");
    }

    #[test]
    fn addendum_and_recommendation_sections() {
        let text = "IMPRESSION: Nodule.\nRECOMMENDATIONS: CT in 3 months.\nADDENDUM: Discussed with Dr. XXXX.";
        let found = kinds(text);
        assert_eq!(found[1].0, SectionKind::Recommendation);
        assert_eq!(found[2].0, SectionKind::Addendum);
        assert_eq!(found[2].2, "Discussed with Dr. XXXX.");
        for dated in ["Addendum 12/1:", "ADDENDUM #2:", "Addendum (12/01/2026):"] {
            let found = kinds(&format!("IMPRESSION: Nodule.\n{dated} The nodule is left."));
            assert_eq!(found[1].0, SectionKind::Addendum, "{dated}");
            assert_eq!(found[1].2, "The nodule is left.", "{dated}");
        }
        // Only a date or a number: words before the colon keep it text.
        let found = kinds("IMPRESSION: Nodule.\nAddendum to follow: none.");
        assert_eq!(found.len(), 1, "{found:?}");
    }
}

/// Corpus checks, run by hand: `REPORTSPLIT_REPORTS=file cargo test --release
/// -p reportsplit-split --lib layout::corpus -- --ignored --nocapture`, where
/// the file holds report texts separated by NUL bytes.
#[cfg(test)]
mod corpus {
    use super::*;

    fn reports() -> Option<String> {
        let path = std::env::var("REPORTSPLIT_REPORTS").ok()?;
        std::fs::read_to_string(path).ok()
    }

    #[test]
    #[ignore = "needs REPORTSPLIT_REPORTS"]
    fn print_structure() {
        let Some(all) = reports() else { return };
        let table = SectionTable::builtin();
        for text in all.split('\0') {
            let layout = layout(text, &table, SectionKind::Other);
            println!("=====");
            for section in &layout.sections {
                println!(
                    "## {:?} {:?} items={}",
                    section.kind,
                    section.title,
                    section.items.len()
                );
                for item in &section.items {
                    println!(
                        "   [{} {:?}] {}",
                        item.n,
                        item.label,
                        item.text.chars().take(60).collect::<String>()
                    );
                }
            }
            for sentence in &layout.sentences {
                println!(
                    "  s{}{:?}: {}",
                    sentence.section,
                    sentence.item,
                    &text[sentence.start..sentence.end]
                );
            }
        }
    }

    #[test]
    #[ignore = "needs REPORTSPLIT_REPORTS"]
    fn time_structure() {
        let Some(all) = reports() else { return };
        let table = SectionTable::builtin();
        let texts: Vec<&str> = all.split('\0').collect();
        let rounds = 20;
        let started = std::time::Instant::now();
        let mut count = 0usize;
        for _ in 0..rounds {
            for text in &texts {
                let layout = layout(text, &table, SectionKind::Other);
                for sentence in &layout.sentences {
                    count += crate::measure::measurements(text, sentence.start, sentence.end).len();
                }
                count += crate::recommend::recommendations(text, &layout).len();
            }
        }
        let elapsed = started.elapsed();
        let time = |f: &dyn Fn(&str) -> usize| {
            let started = std::time::Instant::now();
            let mut hits = 0;
            for _ in 0..rounds {
                for text in &texts {
                    hits += f(text);
                }
            }
            assert!(hits > 0);
            started.elapsed() / u32::try_from(texts.len() * rounds).unwrap_or(u32::MAX)
        };
        let layout_only = time(&|text| layout(text, &table, SectionKind::Other).sentences.len());
        let sizes_only = time(&|text| crate::measure::measurements(text, 0, text.len()).len());
        let layouts: Vec<Layout<'_>> = texts
            .iter()
            .map(|t| layout(t, &table, SectionKind::Other))
            .collect();
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            for (text, layout) in texts.iter().zip(&layouts) {
                count += crate::recommend::recommendations(text, layout).len();
            }
        }
        let recommendations_only =
            started.elapsed() / u32::try_from(texts.len() * rounds).unwrap_or(u32::MAX);
        println!(
            "per report: layout {layout_only:?}, sizes {sizes_only:?}, recommendations {recommendations_only:?}"
        );
        let per_report = elapsed / u32::try_from(texts.len() * rounds).unwrap_or(u32::MAX);
        println!(
            "{} reports x {rounds}: {:?} per report (layout + sizes + recommendations), {:.0} reports/s; {count} hits",
            texts.len(),
            per_report,
            1.0 / per_report.as_secs_f64()
        );
    }
}
