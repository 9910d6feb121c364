//! What tells two findings of the same name apart besides their side: the
//! size, the grade in percent ("70% stenosis", "30% loss of height"), the
//! severity ("small", "moderate", "large"), the change and the coded body
//! site ("distal radius" and "ulnar styloid" fractures), and the
//! appearance its descriptors give ("hypoechoic" and "heterogeneous"
//! plaque). When Findings
//! name a finding on both sides, the Impression restates one of them, and
//! these say which ("12 mm right upper lobe nodule" and "4 mm left upper lobe
//! nodule" in Findings: "12 mm left upper lobe nodule" restates the right one
//! on the wrong side).

use crate::{Change, Finding};

/// The particulars of one finding that another finding's may confirm or
/// contradict.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Particulars<'a> {
    /// The largest size measured, in millimetres.
    size_mm: Option<f64>,
    /// The percentages its sentence states.
    percents: Vec<u32>,
    /// Severity ranks named in its words (bits of
    /// [`crate::findings::severity_rank`]).
    severities: u8,
    change: Option<Change>,
    /// The codes of its body sites ("distal radial" and "distal radius" are
    /// one).
    sites: Vec<&'a str>,
    /// Its appearance: the words of its term that say how it looks, by
    /// class ([`APPEARANCES`]).
    appearance: Vec<(usize, usize)>,
}

/// Words that say how a lesion looks, by what they describe (acuity, echo,
/// density, signal, enhancement, content): two lesions of one name are
/// told apart by them ("hypoechoic" and "heterogeneous" plaque). Margin
/// words are not among them: "spiculated" is one kind of "irregular".
const APPEARANCES: [&[&str]; 6] = [
    // Acuity: an acute and an old infarct are two.
    &[
        "acute",
        "hyperacute",
        "subacute",
        "chronic",
        "old",
        "remote",
    ],
    &[
        "hypoechoic",
        "hyperechoic",
        "echogenic",
        "anechoic",
        "isoechoic",
        "heterogeneous",
        "homogeneous",
    ],
    &[
        "hypodense",
        "hyperdense",
        "isodense",
        "calcified",
        "noncalcified",
    ],
    &["hyperintense", "hypointense", "isointense"],
    &["enhancing", "nonenhancing"],
    &["cystic", "solid", "fatty"],
];

/// Sizes this close (1 mm, or a tenth of the larger) are one size written
/// twice; a restatement rounds ("7.6 mm" and "8 mm").
fn same_size(a: f64, b: f64) -> bool {
    (a - b).abs() <= f64::max(1.0, a.max(b) / 10.0)
}

impl<'a> Particulars<'a> {
    pub(super) fn of(finding: &Finding<'a>) -> Particulars<'a> {
        let size_mm = finding
            .measurements
            .iter()
            .map(|m| m.max_mm)
            .fold(None, |largest: Option<f64>, mm| {
                Some(largest.map_or(mm, |l| l.max(mm)))
            });
        let severities = finding
            .term
            .split(|c: char| !c.is_ascii_alphabetic())
            .fold(0, |bits, word| {
                crate::findings::severity_rank(word).map_or(bits, |rank| bits | 1 << rank)
            });
        Particulars {
            size_mm,
            percents: percents(finding.text),
            severities,
            change: finding.change,
            sites: finding
                .body_site
                .iter()
                .filter_map(|site| site.code.map(|code| code.code.as_str()))
                .collect(),
            appearance: finding
                .term
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter_map(|word| {
                    APPEARANCES.iter().enumerate().find_map(|(class, words)| {
                        words
                            .iter()
                            .position(|w| w.eq_ignore_ascii_case(word))
                            .map(|at| (class, at))
                    })
                })
                .collect(),
        }
    }

    /// Whether `other` states a particular that agrees with one of these
    /// (`.0`), and whether it states one that contradicts one (`.1`).
    pub(super) fn compare(&self, other: &Particulars<'_>) -> (bool, bool) {
        let mut agrees = false;
        let mut contradicts = false;
        let mut weigh = |same: Option<bool>| match same {
            Some(true) => agrees = true,
            Some(false) => contradicts = true,
            None => {}
        };
        weigh(
            self.size_mm
                .zip(other.size_mm)
                .map(|(a, b)| same_size(a, b)),
        );
        weigh(
            (!self.percents.is_empty() && !other.percents.is_empty())
                .then(|| self.percents.iter().any(|p| other.percents.contains(p))),
        );
        weigh(
            (self.severities != 0 && other.severities != 0)
                .then_some(self.severities & other.severities != 0),
        );
        weigh(self.change.zip(other.change).map(|(a, b)| a == b));
        weigh(
            (!self.sites.is_empty() && !other.sites.is_empty())
                .then(|| self.sites.iter().any(|s| other.sites.contains(s))),
        );
        // On an axis both describe, one shared word agrees; none contradicts.
        for class in 0..APPEARANCES.len() {
            let mine = || self.appearance.iter().filter(|(c, _)| *c == class);
            let theirs = || other.appearance.iter().filter(|(c, _)| *c == class);
            if mine().next().is_some() && theirs().next().is_some() {
                weigh(Some(mine().any(|word| theirs().any(|w| w == word))));
            }
        }
        (agrees, contradicts)
    }
}

/// The grades written with a percent sign ("70%", "less than 50 %"); a
/// range is one grade ("50-69%" is 50069, apart from 50 and 69). A grade it
/// changed from ("increased from less than 50%") is not the finding's.
fn percents(text: &str) -> Vec<u32> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    let mut range_low: Option<(u32, usize)> = None;
    while at < bytes.len() {
        // Not the decimals of a number ("4.6%").
        let inside_a_number = at > 0 && (bytes[at - 1].is_ascii_digit() || bytes[at - 1] == b'.');
        if !bytes[at].is_ascii_digit() || inside_a_number {
            at += 1;
            continue;
        }
        let digits = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let Ok(value) = text[at..at + digits].parse::<u32>() else {
            at += digits;
            continue;
        };
        let after = &bytes[at + digits..];
        let sign = after.iter().position(|&b| b != b' ');
        if sign.is_some_and(|gap| gap <= 1 && after[gap] == b'%') {
            let (grade, from) = match range_low {
                Some((low, low_at)) if low < value && value <= 100 => (low * 1000 + value, low_at),
                _ => (value, at),
            };
            if !changed_from(&text[..from]) {
                out.push(grade);
            }
            range_low = None;
        } else {
            // "50-69%", "50 to 69%": the low bound of a range.
            let joiner = text[at + digits..].trim_start();
            range_low =
                (joiner.starts_with('-') || joiner.starts_with('–') || joiner.starts_with("to "))
                    .then_some((value, at));
        }
        at += digits;
    }
    out
}

/// Whether the words right before a grade say it was the prior one ("from
/// less than 50%", "previously 30%").
fn changed_from(before: &str) -> bool {
    before
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .rev()
        .take(3)
        .any(|w| {
            ["from", "previously", "prior", "was"]
                .iter()
                .any(|p| p.eq_ignore_ascii_case(w))
        })
}

#[cfg(test)]
mod tests {
    use super::percents;

    #[test]
    fn percents_are_numbers_before_a_percent_sign() {
        assert_eq!(percents("ICA PSV 285 cm/s, 70% or greater stenosis."), [70]);
        assert_eq!(percents("Less than 50 % stenosis; ratio 4.6."), [50]);
        assert_eq!(
            percents("A 12 mm nodule, 4.5% of the volume."),
            Vec::<u32>::new()
        );
        assert_eq!(
            percents(
                "Velocities are consistent with 50-69% stenosis, increased from less than 50% on the prior study."
            ),
            [50069]
        );
        assert_eq!(percents("A 50 to 69 % stenosis."), [50069]);
    }
}
