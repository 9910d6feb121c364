//! Byte offsets (what the scanners use) to char offsets (what the public
//! model and FHIR's derivation-reference promise), and back.

use std::ops::Range;

use crate::Extraction;

/// Rewrites every span of `extraction` from byte offsets into `text` to char
/// (Unicode scalar value) offsets. ASCII text, the common case, is left as is.
pub(crate) fn to_char_offsets(extraction: &mut Extraction<'_>, text: &str) {
    if text.is_ascii() {
        return;
    }
    let index = CharIndex::new(text);
    let convert = |offset: &mut usize| *offset = index.char_offset(*offset);
    for section in &mut extraction.sections {
        for offset in [
            &mut section.start,
            &mut section.end,
            &mut section.body_start,
            &mut section.body_end,
        ] {
            convert(offset);
        }
        for item in &mut section.items {
            convert(&mut item.start);
            convert(&mut item.end);
        }
    }
    for finding in &mut extraction.findings {
        for offset in [
            &mut finding.start,
            &mut finding.end,
            &mut finding.term_start,
            &mut finding.term_end,
        ] {
            convert(offset);
        }
        for measurement in &mut finding.measurements {
            convert(&mut measurement.start);
            convert(&mut measurement.end);
        }
        for site in &mut finding.body_site {
            convert(&mut site.start);
            convert(&mut site.end);
        }
        for descriptor in &mut finding.descriptors {
            convert(&mut descriptor.start);
            convert(&mut descriptor.end);
        }
    }
    for assessment in &mut extraction.assessments {
        convert(&mut assessment.start);
        convert(&mut assessment.end);
        if let Some(site) = &mut assessment.body_site {
            convert(&mut site.start);
            convert(&mut site.end);
        }
    }
    for recommendation in &mut extraction.recommendations {
        convert(&mut recommendation.start);
        convert(&mut recommendation.end);
    }
    for notification in &mut extraction.notifications {
        convert(&mut notification.start);
        convert(&mut notification.end);
        if let Some(recipient) = &mut notification.recipient {
            convert(&mut recipient.start);
            convert(&mut recipient.end);
        }
        if let Some(when) = &mut notification.when {
            convert(&mut when.said.start);
            convert(&mut when.said.end);
        }
    }
    for discrepancy in &mut extraction.discrepancies {
        if let Some(crate::Against::Order { evidence, .. }) = &mut discrepancy.against {
            for said in evidence {
                convert(&mut said.start);
                convert(&mut said.end);
            }
        }
    }
    for critical in extraction
        .critical
        .iter_mut()
        .chain(extraction.actionable.iter_mut())
    {
        convert(&mut critical.start);
        convert(&mut critical.end);
    }
}

/// For each byte offset, the number of chars before it.
struct CharIndex {
    chars_before: Vec<usize>,
}

impl CharIndex {
    fn new(text: &str) -> CharIndex {
        let mut chars_before = Vec::with_capacity(text.len() + 1);
        let mut count = 0;
        for &byte in text.as_bytes() {
            chars_before.push(count);
            // Every char has exactly one byte that is not a continuation byte.
            if byte & 0xC0 != 0x80 {
                count += 1;
            }
        }
        chars_before.push(count);
        // Offsets inside a multi-byte char round up to the next char, so a
        // span never starts or ends in the middle of one.
        for offset in (0..text.len()).rev() {
            if !text.is_char_boundary(offset) {
                chars_before[offset] = chars_before[offset + 1];
            }
        }
        CharIndex { chars_before }
    }

    fn char_offset(&self, byte_offset: usize) -> usize {
        let last = self.chars_before.len() - 1;
        self.chars_before[byte_offset.min(last)]
    }
}

/// The byte range of the char range `start..end` of `text` (the public
/// model's offsets), or `None` when the range is reversed or out of bounds.
///
/// ```
/// use reportsplit_split::char_range_to_bytes;
/// let text = "2 × 3 mm";
/// let bytes = char_range_to_bytes(text, 4, 8).unwrap();
/// assert_eq!(&text[bytes], "3 mm");
/// ```
pub fn char_range_to_bytes(text: &str, start: usize, end: usize) -> Option<Range<usize>> {
    if start > end {
        return None;
    }
    if text.is_ascii() {
        return (end <= text.len()).then_some(start..end);
    }
    let mut byte_start = None;
    for (chars, (byte, _)) in text.char_indices().enumerate() {
        if chars == start {
            byte_start = Some(byte);
        }
        if chars == end {
            return byte_start.map(|s| s..byte);
        }
    }
    let char_count = text.chars().count();
    if end != char_count {
        return None;
    }
    let byte_start = if start == char_count {
        Some(text.len())
    } else {
        byte_start
    };
    byte_start.map(|s| s..text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Extraction, Item, Recommendation, Section, SectionKind};

    #[test]
    fn char_ranges_map_back_to_bytes() {
        let text = "Café × 3 µm";
        assert_eq!(char_range_to_bytes(text, 0, 4), Some(0..5));
        assert_eq!(&text[char_range_to_bytes(text, 5, 6).unwrap()], "×");
        assert_eq!(&text[char_range_to_bytes(text, 9, 11).unwrap()], "µm");
        assert_eq!(
            char_range_to_bytes(text, 11, 11),
            Some(text.len()..text.len())
        );
        assert_eq!(char_range_to_bytes(text, 3, 12), None);
        assert_eq!(char_range_to_bytes(text, 4, 3), None);
        assert_eq!(char_range_to_bytes("abc", 1, 3), Some(1..3));
        assert_eq!(char_range_to_bytes("abc", 1, 4), None);
        assert_eq!(char_range_to_bytes("", 0, 0), Some(0..0));
    }

    #[test]
    fn every_span_is_converted() {
        let text = "Dr. Müller: 2 × 3 mm nódulo.";
        let byte = |s: &str| text.find(s).unwrap();
        let mm = byte("3 mm") + "3 mm".len();
        let mut extraction = Extraction {
            sections: vec![Section {
                kind: SectionKind::Other,
                title: None,
                code: None,
                start: 0,
                end: text.len(),
                body_start: byte("2 ×"),
                body_end: text.len(),
                items: vec![Item {
                    n: 1,
                    label: None,
                    text: &text[byte("nódulo")..],
                    start: byte("nódulo"),
                    end: text.len(),
                }],
            }],
            findings: Vec::new(),
            recommendations: vec![Recommendation {
                text,
                start: byte("2 ×"),
                end: mm,
                interval_days: None,
                interval_max_days: None,
                conditional: None,
                procedure: None,
                reasons: Vec::new(),
            }],
            critical: Vec::new(),
            actionable: Vec::new(),
            discrepancies: Vec::new(),
            notifications: Vec::new(),
            assessments: Vec::new(),
        };
        to_char_offsets(&mut extraction, text);
        let chars: Vec<char> = text.chars().collect();
        let slice = |s: usize, e: usize| chars[s..e].iter().collect::<String>();
        let section = &extraction.sections[0];
        assert_eq!(section.end, chars.len());
        assert_eq!(
            slice(section.body_start, section.body_end),
            "2 × 3 mm nódulo."
        );
        assert_eq!(
            slice(section.items[0].start, section.items[0].end),
            "nódulo."
        );
        let recommendation = &extraction.recommendations[0];
        assert_eq!(slice(recommendation.start, recommendation.end), "2 × 3 mm");
    }
}
