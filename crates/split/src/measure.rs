//! Sizes written in a report: `3.5 cm`, `8mm`, `1.9 x 1.8 cm`,
//! `2.1 x 1.4 x 1.0 cm`, `1.9 cm x 1.8 cm`, `2 × 3 mm`, `2 by 3 cm`, `1.2-cm`.
//!
//! A hand-written byte scanner: a number, an optional unit, then up to two
//! more `x`/`×`/`by` dimensions; the last dimension must carry a length unit,
//! so `5 mg`, `2 views` and `20 mmHg` are not sizes.

use crate::Measurement;
use crate::layout::{byte_set, skip_to_any};

const DIGITS: [bool; 256] = byte_set(b"0123456789");

/// Length units a size may be written in, with their UCUM code and size in mm.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Unit {
    ucum: &'static str,
    mm: f64,
}

const MM: Unit = Unit {
    ucum: "mm",
    mm: 1.0,
};
const CM: Unit = Unit {
    ucum: "cm",
    mm: 10.0,
};

/// Spellings of each unit, longest first so `millimeters` wins over `mm`.
const UNIT_SPELLINGS: &[(&str, Unit)] = &[
    ("millimeters", MM),
    ("millimetres", MM),
    ("centimeters", CM),
    ("centimetres", CM),
    ("millimeter", MM),
    ("millimetre", MM),
    ("centimeter", CM),
    ("centimetre", CM),
    ("mm", MM),
    ("cm", CM),
];

/// At most three dimensions (length x width x height).
const MAX_DIMENSIONS: usize = 3;

/// Every size in `text[start..end]` (byte offsets in and out), in order.
pub(crate) fn measurements<'a>(text: &'a str, start: usize, end: usize) -> Vec<Measurement<'a>> {
    let bytes = text.as_bytes();
    let end = end.min(bytes.len());
    let mut found = Vec::new();
    let mut i = start;
    while i < end {
        // Digits are rare in prose: jump to the next one.
        i = skip_to_any(bytes, i, end, &DIGITS);
        if i >= end {
            break;
        }
        if i > start && is_word_byte(bytes[i - 1]) {
            i += 1;
            continue;
        }
        match size_at(text, i, end) {
            Some(measurement) => {
                i = measurement.end;
                found.push(measurement);
            }
            None => {
                // Skip the rest of this number (and its decimals).
                while i < end && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                    i += 1;
                }
            }
        }
    }
    found
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'_'
}

/// A size starting with the number at `at`, if one is written there.
fn size_at(text: &str, at: usize, end: usize) -> Option<Measurement<'_>> {
    let bytes = text.as_bytes();
    let mut dimensions: [(f64, Option<Unit>); MAX_DIMENSIONS] = [(0.0, None); MAX_DIMENSIONS];
    let (value, mut pos) = number_at(text, at, end)?;
    dimensions[0] = (value, None);
    let mut count = 1;
    // The number of dimensions and the end of the text up to the last unit seen.
    let mut with_unit: Option<(usize, usize)> = None;
    loop {
        // A hyphen may join a number to its unit when the size modifies a
        // noun ("a 1.2-cm cyst", "a 6-mm stone").
        let unit_from = if pos < end && bytes[pos] == b'-' {
            pos + 1
        } else {
            skip_blanks(bytes, pos, end)
        };
        if let Some((unit, unit_end)) = unit_at(bytes, unit_from, end) {
            dimensions[count - 1].1 = Some(unit);
            pos = unit_end;
            with_unit = Some((count, pos));
        }
        if count == MAX_DIMENSIONS {
            break;
        }
        let Some(after_separator) = separator_at(bytes, skip_blanks(bytes, pos, end), end) else {
            break;
        };
        let Some((value, number_end)) =
            number_at(text, skip_blanks(bytes, after_separator, end), end)
        else {
            break;
        };
        dimensions[count] = (value, None);
        count += 1;
        pos = number_end;
    }
    let (count, size_end) = with_unit?;
    let dimensions = &mut dimensions[..count];
    // A dimension without a unit takes the unit written after it (`1.9 x 1.8 cm`).
    let mut unit = dimensions[count - 1].1?;
    for dimension in dimensions.iter_mut().rev() {
        match dimension.1 {
            Some(own) => unit = own,
            None => dimension.1 = Some(unit),
        }
    }
    let last_unit = dimensions[count - 1].1?;
    let mut values = Vec::with_capacity(count);
    let mut max_mm: f64 = 0.0;
    for &(value, unit) in dimensions.iter() {
        let unit = unit.unwrap_or(last_unit);
        let in_mm = value * unit.mm;
        max_mm = max_mm.max(in_mm);
        // Keep the number as written when it is already in the size's unit.
        values.push(if unit == last_unit {
            value
        } else {
            in_mm / last_unit.mm
        });
    }
    Some(Measurement {
        values,
        unit: last_unit.ucum,
        text: &text[at..size_end],
        start: at,
        end: size_end,
        max_mm,
    })
}

fn skip_blanks(bytes: &[u8], mut at: usize, end: usize) -> usize {
    while at < end && (bytes[at] == b' ' || bytes[at] == b'\t') {
        at += 1;
    }
    at
}

/// `3`, `3.5`, `0.25`: digits with an optional decimal part; a decimal
/// comma as continental Europe writes it (`2,5 cm`) where one or two digits
/// follow it (`1,150` is a thousands separator).
fn number_at(text: &str, at: usize, end: usize) -> Option<(f64, usize)> {
    let bytes = text.as_bytes();
    let digits_from = |mut j: usize| {
        while j < end && bytes[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let j = digits_from(at);
    if j == at {
        return None;
    }
    if j + 1 < end && bytes[j] == b'.' && bytes[j + 1].is_ascii_digit() {
        let decimals_end = digits_from(j + 1);
        let value: f64 = text[at..decimals_end].parse().ok()?;
        return Some((value, decimals_end));
    }
    if j + 1 < end && bytes[j] == b',' && bytes[j + 1].is_ascii_digit() {
        let decimals_end = digits_from(j + 1);
        if decimals_end - (j + 1) <= 2 {
            let value: f64 = format!("{}.{}", &text[at..j], &text[j + 1..decimals_end])
                .parse()
                .ok()?;
            return Some((value, decimals_end));
        }
    }
    let value: f64 = text[at..j].parse().ok()?;
    Some((value, j))
}

/// A length unit at `at`, as a whole word (`8mm` yes, `mmHg` no).
fn unit_at(bytes: &[u8], at: usize, end: usize) -> Option<(Unit, usize)> {
    UNIT_SPELLINGS.iter().find_map(|&(spelling, unit)| {
        let unit_end = at + spelling.len();
        let matches = unit_end <= end
            && bytes[at..unit_end].eq_ignore_ascii_case(spelling.as_bytes())
            && bytes
                .get(unit_end)
                // "cm/s" is a velocity, "mm2" an area.
                .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'/');
        matches.then_some((unit, unit_end))
    })
}

/// `x`, `X`, `×`, `*` or `by` between two dimensions; returns the position after it.
fn separator_at(bytes: &[u8], at: usize, end: usize) -> Option<usize> {
    if at >= end {
        return None;
    }
    let followed_by_number_or_blank =
        |j: usize| j < end && (bytes[j] == b' ' || bytes[j] == b'\t' || bytes[j].is_ascii_digit());
    match bytes[at] {
        b'x' | b'X' | b'*' if followed_by_number_or_blank(at + 1) => Some(at + 1),
        0xC3 if bytes.get(at + 1) == Some(&0x97) => Some(at + 2),
        b'b' | b'B'
            if at + 2 < end
                && bytes[at + 1].eq_ignore_ascii_case(&b'y')
                && bytes[at + 2] == b' ' =>
        {
            Some(at + 2)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::measurements;

    fn sizes(text: &str) -> Vec<(String, Vec<f64>, &'static str, f64)> {
        measurements(text, 0, text.len())
            .into_iter()
            .map(|m| {
                assert_eq!(m.text, &text[m.start..m.end]);
                let unit: &'static str = if m.unit == "cm" { "cm" } else { "mm" };
                (m.text.to_owned(), m.values, unit, m.max_mm)
            })
            .collect()
    }

    #[test]
    fn single_and_multi_dimensional_sizes() {
        assert_eq!(
            sizes("a 3.5 cm mass"),
            vec![("3.5 cm".into(), vec![3.5], "cm", 35.0)]
        );
        assert_eq!(
            sizes("4 mm and 8mm nodules"),
            vec![
                ("4 mm".into(), vec![4.0], "mm", 4.0),
                ("8mm".into(), vec![8.0], "mm", 8.0)
            ]
        );
        assert_eq!(
            sizes("measures 1.9 x 1.8 cm"),
            vec![("1.9 x 1.8 cm".into(), vec![1.9, 1.8], "cm", 19.0)]
        );
        assert_eq!(
            sizes("2.1 x 1.4 x 1.0 cm"),
            vec![("2.1 x 1.4 x 1.0 cm".into(), vec![2.1, 1.4, 1.0], "cm", 21.0)]
        );
        assert_eq!(
            sizes("1.9 cm x 1.8 cm"),
            vec![("1.9 cm x 1.8 cm".into(), vec![1.9, 1.8], "cm", 19.0)]
        );
        // A decimal comma; three digits after a comma group thousands.
        assert_eq!(
            sizes("a Baker's cyst (2,5 x 1,2 cm)"),
            vec![("2,5 x 1,2 cm".into(), vec![2.5, 1.2], "cm", 25.0)]
        );
        assert_eq!(sizes("density 1,150 HU"), vec![]);
        assert_eq!(
            sizes("2×3 mm"),
            vec![("2×3 mm".into(), vec![2.0, 3.0], "mm", 3.0)]
        );
        assert_eq!(
            sizes("2 by 4 CM"),
            vec![("2 by 4 CM".into(), vec![2.0, 4.0], "cm", 40.0)]
        );
        assert_eq!(
            sizes("a 1.2-cm cyst, a 6-mm stone"),
            vec![
                ("1.2-cm".into(), vec![1.2], "cm", 12.0),
                ("6-mm".into(), vec![6.0], "mm", 6.0)
            ]
        );
        assert_eq!(
            sizes("12 millimeters"),
            vec![("12 millimeters".into(), vec![12.0], "mm", 12.0)]
        );
    }

    #[test]
    fn mixed_units_convert_to_the_last_one() {
        let found = sizes("1.5 cm x 9 mm");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1, vec![15.0, 9.0]);
        assert_eq!((found[0].2, found[0].3), ("mm", 15.0));
    }

    #[test]
    fn things_that_are_not_sizes() {
        assert!(sizes("5 mg of contrast, 2 views, 20 mmHg, T12, 3 cm2 area, 10 cc").is_empty());
        assert!(sizes("Peak systolic velocity 110 cm/s, 45 cm/sec.").is_empty());
        // An item number before a size is not a decimal.
        assert_eq!(
            sizes("2. 8 mm nodule"),
            vec![("8 mm".into(), vec![8.0], "mm", 8.0)]
        );
        // A trailing count after a size does not swallow it.
        assert_eq!(
            sizes("3.5 cm x 2 views"),
            vec![("3.5 cm".into(), vec![3.5], "cm", 35.0)]
        );
        // A range keeps its upper bound as the size.
        assert_eq!(sizes("3-4 mm"), vec![("4 mm".into(), vec![4.0], "mm", 4.0)]);
    }

    #[test]
    fn non_ascii_and_ranges_inside_the_text() {
        let text = "Café: 1,9 × 1.8 cm, µ 5mm";
        let found = measurements(text, 0, text.len());
        assert_eq!(
            found.iter().map(|m| m.text).collect::<Vec<_>>(),
            vec!["1,9 × 1.8 cm", "5mm"]
        );
        let within = measurements(text, 0, 10);
        assert!(within.is_empty());
    }
}
