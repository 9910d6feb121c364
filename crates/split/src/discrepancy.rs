//! Laterality discrepancies: the Impression states the other side than the
//! Findings for the same finding ("left effusion" in Findings, "right
//! effusion" in Impression) — a classic wrong-side error worth flagging.

use crate::{Assertion, Discrepancy, DiscrepancyKind, Finding, Laterality, SectionKind};

/// One discrepancy per concept: a present (or possible) sided finding in the
/// impression whose concept the findings section states only on the other
/// side. Bilateral statements and concepts stated on both sides are not
/// contradictions.
///
/// The first finding of each (section, concept, side) is indexed once: a
/// search of every finding per impression finding was quadratic on a text
/// of thousands of sided findings (issue 11, item 3).
pub(crate) fn laterality<'a>(findings: &[Finding<'a>], concepts: &[u32]) -> Vec<Discrepancy<'a>> {
    let stated = |f: &Finding<'_>| f.assertion != Assertion::Absent;
    // A sorted list rather than a hash map: a report has a few dozen sided
    // findings, and hashing each key cost more than the search it saved.
    let key =
        |section: SectionKind, concept: u32, side: Laterality| (section as u8, concept, side as u8);
    let mut first: Vec<((u8, u32, u8), usize)> = findings
        .iter()
        .zip(concepts)
        .enumerate()
        .filter_map(|(index, (finding, &concept))| {
            let side = finding.laterality.filter(|_| stated(finding))?;
            Some((key(finding.section, concept, side), index))
        })
        .collect();
    first.sort_unstable();
    first.dedup_by_key(|(key, _)| *key);
    let sided = |section: SectionKind, concept: u32, side: Laterality| {
        let wanted = key(section, concept, side);
        first
            .binary_search_by_key(&wanted, |&(key, _)| key)
            .ok()
            .map(|at| first[at].1)
    };
    let mut out: Vec<Discrepancy<'a>> = Vec::new();
    let mut reported: Vec<u32> = Vec::new();
    for (index, (finding, &concept)) in findings.iter().zip(concepts).enumerate() {
        if finding.section != SectionKind::Impression || !stated(finding) {
            continue;
        }
        let (impression_side, other) = match finding.laterality {
            Some(Laterality::Left) => (Laterality::Left, Laterality::Right),
            Some(Laterality::Right) => (Laterality::Right, Laterality::Left),
            _ => continue,
        };
        if reported.contains(&concept)
            || sided(SectionKind::Findings, concept, impression_side).is_some()
            || sided(SectionKind::Impression, concept, other).is_some()
        {
            continue;
        }
        if let Some(findings_finding) = sided(SectionKind::Findings, concept, other) {
            reported.push(concept);
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
    fn same_side_bilateral_or_negated_is_not() {
        let lexicon = crate::shared_lexicon();
        for text in [
            "FINDINGS: Left pleural effusion.\nIMPRESSION: Left pleural effusion.",
            "FINDINGS: Left pleural effusion. Right pleural effusion.\nIMPRESSION: Right pleural effusion.",
            "FINDINGS: Left pleural effusion.\nIMPRESSION: Bilateral pleural effusions.",
            "FINDINGS: Left pleural effusion.\nIMPRESSION: No right pleural effusion.",
            "FINDINGS: Left lower lobe atelectasis.\nIMPRESSION: Right pleural effusion.",
        ] {
            assert!(extract(text, lexicon).discrepancies.is_empty(), "{text}");
        }
    }
}
