//! Laterality discrepancies: the Impression states the other side than the
//! Findings for the same finding ("left effusion" in Findings, "right
//! effusion" in Impression) — a classic wrong-side error worth flagging.

use crate::{Assertion, Discrepancy, DiscrepancyKind, Finding, Laterality, SectionKind};

/// One discrepancy per concept: a present sided finding in the impression
/// whose concept the findings section states (present) only on the other
/// side. Bilateral statements and concepts stated on both sides are not
/// contradictions. A hedged mention is too weak to call a side wrong ("early
/// orchitis" read as left from "compared with the left"). Two findings are
/// the same when their concept and the head of their words agree: a broad
/// concept covers several findings (subdural and subarachnoid haemorrhage
/// share one), and a left subarachnoid haemorrhage must not hide a right
/// subdural haematoma that the findings called left.
///
/// The first finding of each (section, concept, side) is indexed once: a
/// search of every finding per impression finding was quadratic on a text
/// of thousands of sided findings (issue 11, item 3).
pub(crate) fn laterality<'a>(findings: &[Finding<'a>], concepts: &[u32]) -> Vec<Discrepancy<'a>> {
    let stated = |f: &Finding<'_>| f.assertion == Assertion::Present;
    let heads: Vec<u64> = findings.iter().map(|f| head_key(f.term)).collect();
    // A sorted list rather than a hash map: a report has a few dozen sided
    // findings, and hashing each key cost more than the search it saved.
    let key = |section: SectionKind, concept: u32, head: u64, side: Laterality| {
        (section as u8, concept, head, side as u8)
    };
    let mut first: Vec<((u8, u32, u64, u8), usize)> = findings
        .iter()
        .zip(concepts)
        .enumerate()
        .filter_map(|(index, (finding, &concept))| {
            let side = finding.laterality.filter(|_| stated(finding))?;
            Some((key(finding.section, concept, heads[index], side), index))
        })
        .collect();
    first.sort_unstable();
    first.dedup_by_key(|(key, _)| *key);
    let sided = |section: SectionKind, concept: u32, head: u64, side: Laterality| {
        let wanted = key(section, concept, head, side);
        first
            .binary_search_by_key(&wanted, |&(key, _)| key)
            .ok()
            .map(|at| first[at].1)
    };
    let mut out: Vec<Discrepancy<'a>> = Vec::new();
    let mut reported: Vec<(u32, u64)> = Vec::new();
    for (index, (finding, &concept)) in findings.iter().zip(concepts).enumerate() {
        if finding.section != SectionKind::Impression || !stated(finding) {
            continue;
        }
        let (impression_side, other) = match finding.laterality {
            Some(Laterality::Left) => (Laterality::Left, Laterality::Right),
            Some(Laterality::Right) => (Laterality::Right, Laterality::Left),
            _ => continue,
        };
        let head = heads[index];
        if reported.contains(&(concept, head))
            || sided(SectionKind::Findings, concept, head, impression_side).is_some()
            || sided(SectionKind::Impression, concept, head, other).is_some()
        {
            continue;
        }
        if let Some(findings_finding) = sided(SectionKind::Findings, concept, head, other) {
            reported.push((concept, head));
            out.push(Discrepancy {
                kind: DiscrepancyKind::Laterality,
                term: finding.term,
                findings_side: other,
                impression_side,
                findings_finding,
                impression_finding: index,
            });
        }
    }
    out
}

/// The head of a finding's words: its last word, lower case, side words
/// and a plural `s` left out ("crescentic subdural hematoma" and "Acute
/// subdural hematoma" agree; "subarachnoid hemorrhage" does not; "left
/// effusion" and "right pleural effusion" do), hashed (FNV-1a: no
/// allocation, stable across runs).
fn head_key(term: &str) -> u64 {
    const SIDES: [&str; 4] = ["left", "right", "bilateral", "both"];
    let mut words: Vec<&str> = term
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| !w.is_empty() && !SIDES.iter().any(|s| s.eq_ignore_ascii_case(w)))
        .collect();
    let keep = words.len().saturating_sub(1);
    words.drain(..keep);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (n, word) in words.iter().enumerate() {
        let word = word
            .strip_suffix(['s', 'S'])
            .filter(|w| w.len() > 2)
            .unwrap_or(word);
        if n > 0 {
            hash = (hash ^ u64::from(b' ')).wrapping_mul(0x100_0000_01b3);
        }
        for byte in word.bytes() {
            hash = (hash ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(0x100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use crate::{Laterality, extract};

    #[test]
    fn other_side_in_impression_is_a_discrepancy() {
        let lexicon = crate::shared_lexicon();
        let text = "FINDINGS: Moderate left pleural effusion. No pneumothorax.\nIMPRESSION: Moderate right pleural effusion.";
        let out = extract(text, lexicon);
        assert_eq!(out.discrepancies.len(), 1, "{:?}", out.discrepancies);
        let d = &out.discrepancies[0];
        assert_eq!(
            (d.findings_side, d.impression_side),
            (Laterality::Left, Laterality::Right)
        );
        assert_eq!(
            out.findings[d.findings_finding].laterality,
            Some(Laterality::Left)
        );
    }

    #[test]
    fn a_finding_of_a_shared_concept_on_the_impression_side_does_not_hide_another() {
        let lexicon = crate::shared_lexicon();
        let text = "FINDINGS: Subdural hematoma along the left convexity. \
                    Subarachnoid hemorrhage in the left sylvian fissure.\n\
                    IMPRESSION: 1. Acute subdural hematoma along the right convexity. \
                    2. Subarachnoid hemorrhage in the left sylvian fissure.";
        let out = extract(text, lexicon);
        assert_eq!(out.discrepancies.len(), 1, "{:?}", out.discrepancies);
        assert_eq!(out.discrepancies[0].impression_side, Laterality::Right);
        assert_eq!(
            super::head_key("Acute subdural hematoma"),
            super::head_key("crescentic subdural hematomas")
        );
        assert_ne!(
            super::head_key("subdural hematoma"),
            super::head_key("subarachnoid hemorrhage")
        );
        assert_eq!(
            super::head_key("right hydrocele"),
            super::head_key("Hydrocele")
        );
    }

    #[test]
    fn same_side_bilateral_or_negated_is_not() {
        let lexicon = crate::shared_lexicon();
        for text in [
            "FINDINGS: Left pleural effusion.\nIMPRESSION: Left pleural effusion.",
            "FINDINGS: Left pleural effusion. Right pleural effusion.\nIMPRESSION: Right pleural effusion.",
            "FINDINGS: Left pleural effusion.\nIMPRESSION: Bilateral pleural effusions.",
            "FINDINGS: Left pleural effusion.\nIMPRESSION: No right pleural effusion.",
            "FINDINGS: Left lower lobe atelectasis.\nIMPRESSION: Right pleural effusion.",
            // a hedged mention is not enough to call the side wrong
            "FINDINGS: Possible left pleural effusion.\nIMPRESSION: Right pleural effusion.",
        ] {
            assert!(extract(text, lexicon).discrepancies.is_empty(), "{text}");
        }
    }
}
