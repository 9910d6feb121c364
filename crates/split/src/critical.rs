//! Critical results: findings the radiologist must communicate now (tension
//! pneumothorax, free air, acute PE, intracranial hemorrhage...). The rules
//! are data (mappings/critical.tsv); a rule fires only for a finding that is
//! current and asserted present or probable (possible with High certainty:
//! "most consistent with ectopic pregnancy" must be called in as much as a
//! certain one — the ACR communication guidance covers findings that
//! *suggest* a need for immediate action). Never negated, merely possible,
//! historical or hypothetical ("evaluate for free air" is not a critical
//! result).
//!
//! Each rule carries its ACR actionable category; the most urgent matching
//! rule decides. Categories 1 and 2 are critical results; category 3
//! (actionable, non-urgent) goes to a list of its own, so that it can never
//! be read as critical.
//!
//! A report has one entry per concept and side, however often the finding is
//! mentioned: the one in the impression (the radiologist's conclusion) when
//! there is one, else the first mention; its category is the most urgent of
//! all mentions.

use crate::lexicon::Lexicon;
use crate::words::each_word_pattern;
use crate::{Assertion, Certainty, Change, Critical, Finding, SectionKind, Temporality, Urgency};

/// One kept entry: its concept and side, the mention it points at, and how
/// urgent it is.
struct Entry {
    concept: u32,
    side: Option<crate::Laterality>,
    finding: usize,
    urgency: Urgency,
}

/// The critical results (categories 1 and 2) and the actionable, non-urgent
/// findings (category 3) among `findings` (whose concept indexes are
/// `concepts`, parallel). Offsets are those of the findings.
pub(crate) fn critical<'a>(
    findings: &[Finding<'a>],
    concepts: &[u32],
    lexicon: &Lexicon,
) -> (Vec<Critical<'a>>, Vec<Critical<'a>>) {
    let mut kept: Vec<Entry> = Vec::new();
    // Which qualifier words the sentence starting at `words_of` holds.
    let mut words_of: Option<usize> = None;
    let mut present: Vec<bool> = Vec::new();
    // What the report calls smaller or resolved anywhere, by concept and
    // side: the intussusception a reduction report first "identified at
    // the hepatic flexure" is the one it then reduced.
    // (The head word too: "ileocolic intussusception" is coded apart.)
    let improving: Vec<(u32, &str, Option<crate::Laterality>)> = findings
        .iter()
        .zip(concepts)
        .filter(|(f, _)| matches!(f.change, Some(Change::Decreased | Change::Resolved)))
        .map(|(f, &concept)| (concept, crate::words::last_word(f.term), f.laterality))
        .collect();
    for (index, (finding, &concept)) in findings.iter().zip(concepts).enumerate() {
        let asserted = match finding.assertion {
            Assertion::Present => true,
            Assertion::Possible => finding.certainty == Some(Certainty::High),
            Assertion::Absent => false,
        };
        // A finding the report calls smaller or resolved (here or in
        // another sentence) is known and improving: not a new result to
        // call in ("the haematoma has decreased in size").
        let improving = !improving.is_empty() && {
            let head = crate::words::last_word(finding.term);
            improving.iter().any(|&(c, h, side)| {
                side == finding.laterality && (c == concept || h.eq_ignore_ascii_case(head))
            })
        };
        if !asserted
            || improving
            || finding.temporality != Temporality::Current
            || !reports_results(finding.section)
        {
            continue;
        }
        let rules = lexicon.critical.of(concept);
        if rules.is_empty() {
            continue;
        }
        // The qualifier words of the finding's sentence, read once per
        // sentence for all rules (findings of one sentence are adjacent).
        let needs_words = rules
            .iter()
            .any(|rule| !rule.requires.is_empty() || !rule.excludes.is_empty());
        if needs_words && words_of != Some(finding.start) {
            words_of = Some(finding.start);
            present.clear();
            present.resize(lexicon.critical.words.len(), false);
            each_word_pattern(&lexicon.critical.automaton, finding.text, |word| {
                present[word] = true;
            });
        }
        let said = |word: &u32| present[*word as usize];
        let Some(urgency) = rules
            .iter()
            .filter(|rule| {
                (rule.requires.is_empty() || rule.requires.iter().any(said))
                    && !rule.excludes.iter().any(said)
            })
            .map(|rule| rule.urgency)
            .min()
        else {
            continue;
        };
        let side = finding.laterality;
        match kept
            .iter_mut()
            .find(|entry| entry.concept == concept && entry.side == side)
        {
            Some(entry) => {
                let first_in_impression =
                    findings[entry.finding].section == SectionKind::Impression;
                if finding.section == SectionKind::Impression && !first_in_impression {
                    entry.finding = index;
                }
                entry.urgency = entry.urgency.min(urgency);
            }
            None => kept.push(Entry {
                concept,
                side,
                finding: index,
                urgency,
            }),
        }
    }
    kept.sort_unstable_by_key(|entry| entry.finding);
    let (critical, actionable): (Vec<Entry>, Vec<Entry>) = kept
        .into_iter()
        .partition(|entry| entry.urgency.is_critical());
    let to_output = |entries: Vec<Entry>| -> Vec<Critical<'a>> {
        entries
            .into_iter()
            .map(|entry| {
                let finding = &findings[entry.finding];
                Critical {
                    text: finding.text,
                    term: finding.term,
                    start: finding.start,
                    end: finding.end,
                    finding: entry.finding,
                    urgency: entry.urgency,
                }
            })
            .collect()
    };
    (to_output(critical), to_output(actionable))
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
    fn a_neonatal_graded_or_birth_related_bleed_is_no_critical_result() {
        for text in [
            "There is intraventricular haemorrhage on the right, occupying less than 50% of the ventricular volume.",
            "Germinal matrix haemorrhage at the left caudothalamic groove.",
            "A thin subdural haemorrhage along the tentorium, as commonly seen after vaginal delivery.",
        ] {
            assert!(critical_terms(text).is_empty(), "{text}");
        }
        assert_eq!(
            critical_terms("Acute intraparenchymal haemorrhage occupying the left basal ganglia."),
            ["acute intraparenchymal haemorrhage"]
        );
    }

    #[test]
    fn an_intussusception_the_report_reduced_and_spondylotic_cord_flattening_are_not_critical() {
        assert!(
            critical_terms(
                "FINDINGS: The intussusception was identified at the hepatic flexure. It was reduced on the second attempt.\nIMPRESSION: Successful pneumatic reduction of ileocolic intussusception."
            )
            .is_empty()
        );
        assert!(
            critical_terms(
                "Moderate C5-C6 spinal canal stenosis with ventral cord flattening, no cord signal abnormality."
            )
            .is_empty()
        );
        assert_eq!(
            critical_terms(
                "Epidural tumour extension resulting in severe canal stenosis and spinal cord compression."
            ),
            ["spinal cord compression"]
        );
    }

    #[test]
    fn known_improving_and_look_alike_findings_are_not_critical() {
        // A haemorrhage the report calls smaller is known and improving.
        assert!(
            critical_terms("The left basal ganglia haematoma has decreased in size.").is_empty()
        );
        // A perforation of a fibrocartilage is no perforated viscus.
        assert!(
            critical_terms("Small central perforation of the triangular fibrocartilage.")
                .is_empty()
        );
        // Large ventricles are not hydrocephalus; hygromas are not blood.
        assert!(critical_terms("Mild ventriculomegaly, slightly increased.").is_empty());
        assert!(critical_terms("New small bilateral subdural hygromas.").is_empty());
        // Degenerative cord compression with myelopathy is not an emergency.
        assert!(
            critical_terms(
                "Canal stenosis with cord compression, consistent with compressive myelopathy."
            )
            .is_empty()
        );
        // An upper cervical fracture is; a transverse process fracture is not.
        assert_eq!(
            critical_terms("Acute type II odontoid fracture."),
            ["fracture"]
        );
        assert!(critical_terms("Nondisplaced fracture of the C1 transverse process.").is_empty());
        // Treated in the same procedure.
        assert!(
            critical_terms("Ileocolic intussusception, successfully reduced by air enema.")
                .is_empty()
        );
        assert!(critical_terms("Successful placement of a drain into a liver abscess.").is_empty());
        // A pneumothorax nobody calls known, residual or drained is new.
        assert!(critical_terms("Small right pneumothorax with a chest tube in place.").is_empty());
    }

    #[test]
    fn signs_of_emergencies_fire() {
        assert_eq!(
            critical_terms("Small left pneumothorax."),
            ["small left pneumothorax"]
        );
        assert_eq!(
            critical_terms("Absent lung sliding with a lung point."),
            ["absent lung sliding"]
        );
        assert_eq!(
            critical_terms("Hyperdense MCA sign consistent with M1 occlusion."),
            ["occlusion"]
        );
        assert_eq!(
            critical_terms("Early ischaemic change in the left insula."),
            ["early ischaemic change"]
        );
        assert_eq!(
            critical_terms("Positive FAST with free fluid in the hepatorenal pouch."),
            ["free fluid"]
        );
    }

    #[test]
    fn present_critical_findings_fire() {
        assert_eq!(
            critical_terms("Large right pneumothorax."),
            ["large right pneumothorax"]
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
            ["acute pulmonary embolism"]
        );
        assert_eq!(
            critical_terms("Acute subdural hematoma."),
            ["acute subdural hematoma"]
        );
        assert_eq!(
            critical_terms("Type A aortic dissection."),
            ["type a aortic dissection"]
        );
        assert_eq!(
            critical_terms("Acute infarct in the left MCA territory."),
            ["acute infarct"]
        );
        assert_eq!(critical_terms("Left ovarian torsion."), ["ovarian torsion"]);
        // The sign of a failing graft or a torted organ.
        assert_eq!(
            critical_terms("Absent hepatic arterial flow in the liver transplant."),
            ["absent hepatic arterial flow"]
        );
        assert!(critical_terms("Absent flow in the known occluded left ovarian vein.").is_empty());
        assert_eq!(
            critical_terms("Right tubal ectopic pregnancy."),
            ["tubal ectopic pregnancy"]
        );
        assert_eq!(
            critical_terms("Epidural metastasis with cord compression at T8."),
            ["cord compression"]
        );
        // New, however small (LABELLING: "pneumothorax under tension or new").
        assert_eq!(
            critical_terms("New small left pneumothorax following biopsy."),
            ["small left pneumothorax"]
        );
        assert_eq!(
            critical_terms("Findings highly suspicious for non-accidental injury."),
            ["non-accidental injury"]
        );
    }

    #[test]
    fn negated_hedged_hypothetical_or_mild_findings_do_not_fire() {
        for text in [
            "No pneumothorax.",
            "Stable small pneumothorax.",
            "Small residual apical pneumothorax.",
            "Possible pulmonary embolism.",
            "Evaluate for free air.",
            "No evidence of aortic dissection.",
            "Chronic pulmonary embolism.",
            "Normal perfusion scan. Pulmonary embolism is effectively excluded.",
            "Old lacunar infarct.",
            "History of intracranial hemorrhage.",
            "INDICATION: Large pneumothorax.\nFINDINGS: Lungs are clear.",
        ] {
            assert!(critical_terms(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn a_ruptured_aneurysm_fires_an_intact_one_does_not() {
        assert_eq!(
            critical_terms("7 mm ruptured anterior communicating artery aneurysm.").len(),
            1
        );
        assert_eq!(
            critical_terms(
                "Leaking infrarenal abdominal aortic aneurysm with retroperitoneal blood."
            )
            .len(),
            1
        );
        assert!(critical_terms("Stable 4.1 cm infrarenal abdominal aortic aneurysm.").is_empty());
        assert!(critical_terms("Unruptured 3 mm left MCA bifurcation aneurysm.").is_empty());
    }

    #[test]
    fn acute_cord_compression_fires_through_a_narrowed_canal() {
        assert_eq!(
            critical_terms(
                "Large L4-L5 disc extrusion with severe canal stenosis and compression of the cauda equina."
            )
            .len(),
            1
        );
    }

    #[test]
    fn a_probable_critical_finding_fires_a_merely_possible_one_does_not() {
        assert_eq!(
            critical_terms("Right adnexal mass, most consistent with ectopic pregnancy."),
            ["ectopic pregnancy"]
        );
        assert_eq!(
            critical_terms("Findings suspicious for free intraperitoneal air."),
            ["free intraperitoneal air"]
        );
        assert!(critical_terms("Ectopic pregnancy cannot be excluded.").is_empty());
        assert!(critical_terms("Possible ectopic pregnancy.").is_empty());
    }

    #[test]
    fn one_entry_per_concept_and_side_at_the_impression_mention() {
        let text = "FINDINGS: Acute right subdural hematoma. The right subdural hematoma \
                    measures 8 mm.\nIMPRESSION: Acute right subdural hematoma. Acute left \
                    subdural hematoma.";
        let lexicon = crate::shared_lexicon();
        let out = extract_as(text, lexicon, SectionKind::Other);
        let entries: Vec<(SectionKind, Option<crate::Laterality>)> = out
            .critical
            .iter()
            .map(|c| {
                let f = &out.findings[c.finding];
                (f.section, f.laterality)
            })
            .collect();
        assert_eq!(
            entries,
            [
                (SectionKind::Impression, Some(crate::Laterality::Right)),
                (SectionKind::Impression, Some(crate::Laterality::Left)),
            ]
        );
    }

    #[test]
    fn midline_shift_is_critical_through_its_cause_unless_it_progresses() {
        assert_eq!(
            critical_terms("Acute right subdural hematoma with 4 mm of midline shift."),
            ["acute right subdural hematoma"]
        );
        assert_eq!(
            critical_terms("New 9 mm midline shift to the left."),
            ["midline shift"]
        );
        assert!(critical_terms("Filling defects in the segmental arteries.").is_empty());
    }

    fn urgencies(text: &str) -> (Vec<crate::Urgency>, Vec<crate::Urgency>) {
        let out = extract_as(text, crate::shared_lexicon(), SectionKind::Impression);
        (
            out.critical.iter().map(|c| c.urgency).collect(),
            out.actionable.iter().map(|c| c.urgency).collect(),
        )
    }

    #[test]
    fn each_entry_carries_its_acr_category() {
        use crate::Urgency::{Days, Hours, Minutes};
        assert_eq!(urgencies("Tension pneumothorax."), (vec![Minutes], vec![]));
        assert_eq!(urgencies("Acute appendicitis."), (vec![Hours], vec![]));
        assert_eq!(
            urgencies("Endotracheal tube in the right mainstem bronchus."),
            (vec![Minutes], vec![])
        );
        // The nodule and the malignancy it is suspicious for: two entries.
        assert_eq!(
            urgencies("Spiculated right upper lobe nodule, suspicious for malignancy."),
            (vec![], vec![Days, Days])
        );
        assert_eq!(
            urgencies("New 8 mm spiculated nodule."),
            (vec![], vec![Days])
        );
    }

    #[test]
    fn a_non_urgent_actionable_finding_is_never_critical() {
        for text in [
            "3.5 cm solid renal mass.",
            "New 9 mm spiculated pulmonary nodule.",
            "5.2 cm infrarenal abdominal aortic aneurysm.",
        ] {
            let out = extract_as(text, crate::shared_lexicon(), SectionKind::Impression);
            assert!(out.critical.is_empty(), "{text}: {:?}", out.critical);
            assert_eq!(out.actionable.len(), 1, "{text}");
        }
        let (critical, actionable) = urgencies("No mass. Stable 4 mm nodule.");
        assert!(critical.is_empty() && actionable.is_empty());
    }

    #[test]
    fn a_denied_finding_is_never_flagged() {
        for text in [
            "Negative for pulmonary embolism.",
            "No evidence of pneumoperitoneum.",
            "Without intracranial hemorrhage.",
            "No mass.",
            "The endotracheal tube is not in the right mainstem bronchus.",
            "Testicular torsion is ruled out.",
        ] {
            let (critical, actionable) = urgencies(text);
            assert!(critical.is_empty() && actionable.is_empty(), "{text}");
        }
    }

    #[test]
    fn chronic_or_venous_readings_of_critical_words_are_not_critical() {
        for text in [
            "Severe canal stenosis at C4-C5 with cord compression and myelomalacia.",
            "New occlusive superficial thrombophlebitis of the left cephalic vein.",
        ] {
            assert!(critical_terms(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn qualifiers_are_whole_words() {
        let lexicon = crate::shared_lexicon();
        let said = |text: &str| {
            let mut words = Vec::new();
            crate::words::each_word_pattern(&lexicon.critical.automaton, text, |w| {
                words.push(lexicon.critical.words[w].to_string());
            });
            words
        };
        assert_eq!(said("Chronic embolism"), ["chronic"]);
        assert!(said("Chronically occluded").is_empty());
        let both = said("New acute infarct.");
        assert!(both.contains(&"new".to_string()) && both.contains(&"acute".to_string()));
    }
}
