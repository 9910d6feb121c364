//! Critical results: findings the radiologist must communicate now (tension
//! pneumothorax, free air, acute PE, intracranial hemorrhage...). The rules
//! are data (mappings/critical.tsv); a rule fires only for a finding that is
//! asserted present and current — never negated, hedged, historical or
//! hypothetical ("evaluate for free air" is not a critical result).

use crate::lexicon::Lexicon;
use crate::{Assertion, Critical, Finding, SectionKind, Temporality};

/// The critical results among `findings` (whose concept indexes are
/// `concepts`, parallel). Offsets are those of the findings.
pub(crate) fn critical<'a>(
    findings: &[Finding<'a>],
    concepts: &[u32],
    lexicon: &Lexicon,
) -> Vec<Critical<'a>> {
    let mut out = Vec::new();
    for (index, (finding, &concept)) in findings.iter().zip(concepts).enumerate() {
        if finding.assertion != Assertion::Present
            || finding.temporality != Temporality::Current
            || !reports_results(finding.section)
        {
            continue;
        }
        let fires = lexicon.critical.iter().any(|rule| {
            rule.concept == concept
                && (rule.requires.is_empty()
                    || rule.requires.iter().any(|w| contains_word(finding.text, w)))
                && !rule.excludes.iter().any(|w| contains_word(finding.text, w))
        });
        if fires {
            out.push(Critical {
                text: finding.text,
                term: finding.term,
                start: finding.start,
                end: finding.end,
                finding: index,
            });
        }
    }
    out
}

/// Sections that state the study's results. The indication, technique,
/// comparison and recommendation sections mention findings as questions,
/// methods, priors or plans ("INDICATION: pneumothorax?"), never as new
/// results to call in.
fn reports_results(section: SectionKind) -> bool {
    matches!(
        section,
        SectionKind::Findings
            | SectionKind::Impression
            | SectionKind::Addendum
            | SectionKind::Other
    )
}

/// Whether `text` holds `word` (lower case, may be several words) as whole
/// words, ignoring ASCII case.
pub(crate) fn contains_word(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    let word = word.as_bytes();
    if word.is_empty() || word.len() > bytes.len() {
        return false;
    }
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
    (0..=bytes.len() - word.len()).any(|at| {
        bytes[at..at + word.len()].eq_ignore_ascii_case(word)
            && (at == 0 || !is_word(bytes[at - 1]))
            && bytes.get(at + word.len()).is_none_or(|&b| !is_word(b))
    })
}

#[cfg(test)]
mod tests {
    use crate::{SectionKind, extract_as};

    fn critical_terms(text: &str) -> Vec<String> {
        let lexicon = crate::shared_lexicon();
        let out = extract_as(text, lexicon, SectionKind::Impression);
        out.critical
            .iter()
            .map(|c| c.term.to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn present_critical_findings_fire() {
        assert_eq!(
            critical_terms("Large right pneumothorax."),
            ["pneumothorax"]
        );
        assert_eq!(
            critical_terms("Tension pneumothorax on the left."),
            ["tension pneumothorax"]
        );
        assert_eq!(
            critical_terms("Free intraperitoneal air."),
            ["free intraperitoneal air"]
        );
        assert_eq!(
            critical_terms("Acute pulmonary embolism in the right lower lobe."),
            ["pulmonary embolism"]
        );
        assert_eq!(
            critical_terms("Acute subdural hematoma."),
            ["subdural hematoma"]
        );
        assert_eq!(
            critical_terms("Type A aortic dissection."),
            ["aortic dissection"]
        );
        assert_eq!(
            critical_terms("Acute infarct in the left MCA territory."),
            ["acute infarct"]
        );
        assert_eq!(critical_terms("Left ovarian torsion."), ["ovarian torsion"]);
        assert_eq!(
            critical_terms("Right tubal ectopic pregnancy."),
            ["ectopic pregnancy"]
        );
        assert_eq!(
            critical_terms("Epidural metastasis with cord compression at T8."),
            ["cord compression"]
        );
    }

    #[test]
    fn negated_hedged_hypothetical_or_mild_findings_do_not_fire() {
        for text in [
            "No pneumothorax.",
            "Small apical pneumothorax.",
            "Stable small pneumothorax.",
            "Possible pulmonary embolism.",
            "Evaluate for free air.",
            "No evidence of aortic dissection.",
            "Chronic pulmonary embolism.",
            "Old lacunar infarct.",
            "History of intracranial hemorrhage.",
            "INDICATION: Large pneumothorax.\nFINDINGS: Lungs are clear.",
        ] {
            assert!(critical_terms(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn whole_words_only() {
        assert!(super::contains_word("Large pneumothorax", "large"));
        assert!(!super::contains_word("Enlarged heart", "large"));
        assert!(super::contains_word(
            "a closed loop obstruction",
            "closed loop"
        ));
    }
}
