//! The codes reportsplit writes (mappings/fhir.tsv): parsed and validated
//! once, so a bad table stops the worker at start-up instead of producing
//! half-coded resources. A site can load its own copy with [`FhirCodes::parse`].

use std::sync::OnceLock;

use reportsplit_split::{
    Assertion, AssessmentSystem, Axis, Change, Code, Hedge, Laterality, MappingError, SectionKind,
    Temporality,
};

/// System of reportsplit's own codes (where no standard concept was verified).
pub const LOCAL_SYSTEM: &str = "urn:reportsplit:codes";

/// File name used in errors about the built-in table.
pub const BUILTIN_FILE: &str = "mappings/fhir.tsv";
const BUILTIN_TEXT: &str = include_str!("../../../../mappings/fhir.tsv");

macro_rules! keys {
    ($($variant:ident => $name:literal,)*) => {
        /// Every row the table must have.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Key { $($variant,)* }

        impl Key {
            pub const ALL: &'static [Key] = &[$(Key::$variant,)*];

            /// The key as written in the first column of the table.
            pub fn name(self) -> &'static str {
                match self { $(Key::$variant => $name,)* }
            }
        }
    };
}

keys! {
    CategoryImaging => "category.imaging",
    AssertionPresent => "assertion.present",
    AssertionAbsent => "assertion.absent",
    AssertionPossible => "assertion.possible",
    ComponentCertainty => "component.certainty",
    ComponentHedge => "component.hedge",
    HedgeProbability => "hedge.probability",
    HedgeSuspicion => "hedge.suspicion",
    HedgeAlternative => "hedge.alternative",
    HedgeDifferential => "hedge.differential",
    HedgeExclusion => "hedge.exclusion",
    HedgeQuestion => "hedge.question",
    ComponentLaterality => "component.laterality",
    LateralityLeft => "laterality.left",
    LateralityRight => "laterality.right",
    LateralityBilateral => "laterality.bilateral",
    ComponentSize => "component.size",
    ComponentChange => "component.change",
    ChangeNew => "change.new",
    ChangeStable => "change.stable",
    ChangeIncreased => "change.increased",
    ChangeDecreased => "change.decreased",
    ChangeResolved => "change.resolved",
    ComponentFindingSite => "component.finding-site",
    DescriptorSize => "descriptor.size",
    DescriptorShape => "descriptor.shape",
    DescriptorMargin => "descriptor.margin",
    DescriptorAttenuation => "descriptor.attenuation",
    DescriptorSignal => "descriptor.signal",
    DescriptorEchogenicity => "descriptor.echogenicity",
    DescriptorEnhancement => "descriptor.enhancement",
    DescriptorUptake => "descriptor.uptake",
    DescriptorNumber => "descriptor.number",
    DescriptorAcuity => "descriptor.acuity",
    DescriptorSeverity => "descriptor.severity",
    DescriptorDistribution => "descriptor.distribution",
    DescriptorComposition => "descriptor.composition",
    DescriptorNormal => "descriptor.normal",
    ComponentTemporality => "component.temporality",
    TemporalityCurrent => "temporality.current",
    TemporalityHistorical => "temporality.historical",
    TemporalityHypothetical => "temporality.hypothetical",
    StatementImpression => "statement.impression",
    StatementFindings => "statement.findings",
    StatementOther => "statement.other",
    StatementAddendum => "statement.addendum",
    StatementComparison => "statement.comparison",
    StatementIndication => "statement.indication",
    StatementTechnique => "statement.technique",
    StatementRecommendation => "statement.recommendation",
    Recommendation => "recommendation",
    ComponentFollowupInterval => "component.followup-interval",
    FollowUpCt => "followup.ct",
    FollowUpMri => "followup.mri",
    FollowUpUltrasound => "followup.ultrasound",
    FollowUpRadiograph => "followup.radiograph",
    FollowUpMammography => "followup.mammography",
    FollowUpPet => "followup.pet",
    FollowUpNuclearMedicine => "followup.nuclear-medicine",
    FollowUpBiopsy => "followup.biopsy",
    FollowUpImaging => "followup.imaging",
    FollowUpConditional => "followup.conditional",
    InterpretationCritical => "interpretation.critical",
    InterpretationActionable => "interpretation.actionable",
    CriticalTopic => "critical.topic",
    CommunicationCategory => "communication.category",
    FlagCategory => "flag.category",
    MediumPhone => "medium.phone",
    MediumInPerson => "medium.in-person",
    MediumVerbal => "medium.verbal",
    MediumElectronic => "medium.electronic",
    DiscrepancyLaterality => "discrepancy.laterality",
    DiscrepancySectionAbsent => "discrepancy.section-absent",
    DiscrepancyFollowUpMissing => "discrepancy.followup-missing",
    DiscrepancySex => "discrepancy.sex",
    DiscrepancyAge => "discrepancy.age",
    DiscrepancyOrder => "discrepancy.order",
    AssessmentBiRads => "assessment.birads",
    AssessmentLungRads => "assessment.lungrads",
    AssessmentLiRads => "assessment.lirads",
    AssessmentTiRads => "assessment.tirads",
    AssessmentPiRads => "assessment.pirads",
    AssessmentORads => "assessment.orads",
    AssessmentBosniak => "assessment.bosniak",
    AssessmentCadRads => "assessment.cadrads",
    AssessmentAspects => "assessment.aspects",
    AssessmentFleischner => "assessment.fleischner",
    ProvenanceAgent => "provenance.agent",
}

/// The validated table: one [`Code`] per [`Key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirCodes {
    /// Indexed by `Key as usize`; complete by construction.
    codes: Vec<Code>,
}

impl FhirCodes {
    /// The built-in table, parsed on first use. Its validity is checked by a
    /// unit test and again by [`FhirCodes::check_builtin`] at start-up.
    pub fn builtin() -> Result<&'static FhirCodes, MappingError> {
        static BUILTIN: OnceLock<Result<FhirCodes, MappingError>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| FhirCodes::parse(BUILTIN_FILE, BUILTIN_TEXT))
            .as_ref()
            .map_err(|e| MappingError {
                file: e.file.clone(),
                line: e.line,
                message: e.message.clone(),
            })
    }

    /// Start-up check of the compiled-in table (the binary calls it once).
    pub fn check_builtin() -> Result<(), MappingError> {
        FhirCodes::builtin().map(|_| ())
    }

    /// Parses a table in the mappings/fhir.tsv format. `file` names the
    /// source in errors.
    pub fn parse(file: &str, text: &str) -> Result<FhirCodes, MappingError> {
        let error = |line: usize, message: String| MappingError {
            file: file.to_owned(),
            line,
            message,
        };
        let mut slots: Vec<Option<(Code, usize)>> = vec![None; Key::ALL.len()];
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let row = raw.trim_end_matches('\r');
            if row.trim().is_empty() || row.starts_with('#') {
                continue;
            }
            let columns: Vec<&str> = row.split('\t').collect();
            let [key, system, code, display] = columns[..] else {
                return Err(error(
                    line,
                    format!(
                        "expected 4 tab-separated columns (key, system, code, display), found {}",
                        columns.len()
                    ),
                ));
            };
            let Some(position) = Key::ALL.iter().position(|k| k.name() == key) else {
                return Err(error(line, format!("unknown key `{key}`")));
            };
            check_system(system).map_err(|m| error(line, m))?;
            check_code(code).map_err(|m| error(line, m))?;
            if display.trim().is_empty() || display.trim() != display {
                return Err(error(
                    line,
                    "display must be non-empty without surrounding spaces".into(),
                ));
            }
            if let Some((_, first)) = &slots[position] {
                return Err(error(
                    line,
                    format!("key `{key}` repeated (first on line {first})"),
                ));
            }
            slots[position] = Some((
                Code {
                    system: system.to_owned(),
                    code: code.to_owned(),
                    display: display.to_owned(),
                },
                line,
            ));
        }
        let mut codes = Vec::with_capacity(slots.len());
        for (key, slot) in Key::ALL.iter().zip(slots) {
            match slot {
                Some((code, _)) => codes.push(code),
                None => {
                    let last_line = text.lines().count();
                    return Err(error(
                        last_line,
                        format!("missing required key `{}`", key.name()),
                    ));
                }
            }
        }
        Ok(FhirCodes { codes })
    }

    pub fn get(&self, key: Key) -> &Code {
        &self.codes[key as usize]
    }

    pub fn assertion(&self, assertion: Assertion) -> &Code {
        self.get(match assertion {
            Assertion::Present => Key::AssertionPresent,
            Assertion::Absent => Key::AssertionAbsent,
            Assertion::Possible => Key::AssertionPossible,
        })
    }

    /// Observation.code of a structured assessment: its system.
    pub fn assessment(&self, system: AssessmentSystem) -> &Code {
        self.get(match system {
            AssessmentSystem::BiRads => Key::AssessmentBiRads,
            AssessmentSystem::LungRads => Key::AssessmentLungRads,
            AssessmentSystem::LiRads => Key::AssessmentLiRads,
            AssessmentSystem::TiRads => Key::AssessmentTiRads,
            AssessmentSystem::PiRads => Key::AssessmentPiRads,
            AssessmentSystem::ORads => Key::AssessmentORads,
            AssessmentSystem::Bosniak => Key::AssessmentBosniak,
            AssessmentSystem::CadRads => Key::AssessmentCadRads,
            AssessmentSystem::Aspects => Key::AssessmentAspects,
            AssessmentSystem::Fleischner => Key::AssessmentFleischner,
        })
    }

    pub fn laterality(&self, laterality: Laterality) -> &Code {
        self.get(match laterality {
            Laterality::Left => Key::LateralityLeft,
            Laterality::Right => Key::LateralityRight,
            Laterality::Bilateral => Key::LateralityBilateral,
        })
    }

    pub fn change(&self, change: Change) -> &Code {
        self.get(match change {
            Change::New => Key::ChangeNew,
            Change::Stable => Key::ChangeStable,
            Change::Increased => Key::ChangeIncreased,
            Change::Decreased => Key::ChangeDecreased,
            Change::Resolved => Key::ChangeResolved,
        })
    }

    pub fn hedge(&self, hedge: Hedge) -> &Code {
        self.get(match hedge {
            Hedge::Probability => Key::HedgeProbability,
            Hedge::Suspicion => Key::HedgeSuspicion,
            Hedge::Alternative => Key::HedgeAlternative,
            Hedge::Differential => Key::HedgeDifferential,
            Hedge::Exclusion => Key::HedgeExclusion,
            Hedge::Question => Key::HedgeQuestion,
        })
    }

    /// The component code of a descriptor: what the words say about the
    /// observation (its margin, shape, echogenicity...).
    pub fn descriptor(&self, axis: Axis) -> &Code {
        self.get(match axis {
            Axis::Size => Key::DescriptorSize,
            Axis::Shape => Key::DescriptorShape,
            Axis::Margin => Key::DescriptorMargin,
            Axis::Attenuation => Key::DescriptorAttenuation,
            Axis::Signal => Key::DescriptorSignal,
            Axis::Echogenicity => Key::DescriptorEchogenicity,
            Axis::Enhancement => Key::DescriptorEnhancement,
            Axis::Uptake => Key::DescriptorUptake,
            Axis::Number => Key::DescriptorNumber,
            Axis::Acuity => Key::DescriptorAcuity,
            Axis::Severity => Key::DescriptorSeverity,
            Axis::Distribution => Key::DescriptorDistribution,
            Axis::Composition => Key::DescriptorComposition,
            Axis::Normal => Key::DescriptorNormal,
        })
    }

    pub fn temporality(&self, temporality: Temporality) -> &Code {
        self.get(match temporality {
            Temporality::Current => Key::TemporalityCurrent,
            Temporality::Historical => Key::TemporalityHistorical,
            Temporality::Hypothetical => Key::TemporalityHypothetical,
        })
    }

    /// The code of a statement-level Observation for a sentence or item of
    /// this section.
    pub fn statement(&self, section: SectionKind) -> &Code {
        self.get(match section {
            SectionKind::Impression => Key::StatementImpression,
            SectionKind::Findings => Key::StatementFindings,
            SectionKind::Other => Key::StatementOther,
            SectionKind::Addendum => Key::StatementAddendum,
            SectionKind::Comparison => Key::StatementComparison,
            SectionKind::Indication => Key::StatementIndication,
            SectionKind::Technique => Key::StatementTechnique,
            SectionKind::Recommendation => Key::StatementRecommendation,
        })
    }
}

/// A code system is an absolute URI (`http://snomed.info/sct`, `urn:...`).
fn check_system(system: &str) -> Result<(), String> {
    let scheme_ok = system.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.is_empty()
    });
    if scheme_ok && !system.chars().any(char::is_whitespace) {
        Ok(())
    } else {
        Err(format!("system `{system}` is not an absolute URI"))
    }
}

/// FHIR `code`: no leading/trailing whitespace, no runs of whitespace.
fn check_code(code: &str) -> Result<(), String> {
    let valid = !code.is_empty()
        && code.trim() == code
        && !code.contains("  ")
        && !code.contains(['\t', '\n', '\r']);
    if valid {
        Ok(())
    } else {
        Err(format!("code `{code}` is not a valid FHIR code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_is_valid_and_complete() {
        let codes = FhirCodes::builtin().expect("built-in mappings/fhir.tsv");
        assert_eq!(codes.get(Key::AssertionAbsent).code, "2667000");
        assert_eq!(codes.laterality(Laterality::Bilateral).code, "51440002");
        assert_eq!(codes.statement(SectionKind::Impression).code, "121073");
        assert_eq!(codes.descriptor(Axis::Shape).code, "300842002");
        assert_eq!(codes.descriptor(Axis::Margin).code, "descriptor-margin");
        assert_eq!(codes.get(Key::ComponentFindingSite).code, "363698007");
        assert_eq!(
            codes.get(Key::CategoryImaging).system,
            "http://terminology.hl7.org/CodeSystem/observation-category"
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let table = BUILTIN_TEXT.replacen(
            "assertion.absent\thttp://snomed.info/sct\t2667000\tAbsent",
            "assertion.absent\thttp://snomed.info/sct\t2667000",
            1,
        );
        let line = table
            .lines()
            .position(|l| l.starts_with("assertion.absent"))
            .map(|i| i + 1)
            .expect("row present");
        let err = FhirCodes::parse("site/fhir.tsv", &table).unwrap_err();
        assert_eq!((err.file.as_str(), err.line), ("site/fhir.tsv", line));
        assert!(
            err.to_string()
                .starts_with(&format!("site/fhir.tsv:{line}: expected 4"))
        );
    }

    #[test]
    fn rejects_unknown_repeated_missing_and_bad_values() {
        let unknown = format!("{BUILTIN_TEXT}assertion.maybe\thttp://snomed.info/sct\t1\tMaybe\n");
        let err = FhirCodes::parse("t", &unknown).unwrap_err();
        assert!(
            err.message.contains("unknown key `assertion.maybe`"),
            "{err}"
        );

        let repeated = format!("{BUILTIN_TEXT}laterality.left\thttp://snomed.info/sct\t1\tLeft\n");
        let err = FhirCodes::parse("t", &repeated).unwrap_err();
        assert!(err.message.contains("repeated"), "{err}");

        let missing: String = BUILTIN_TEXT
            .lines()
            .filter(|l| !l.starts_with("change.resolved"))
            .map(|l| format!("{l}\n"))
            .collect();
        let err = FhirCodes::parse("t", &missing).unwrap_err();
        assert!(
            err.message
                .contains("missing required key `change.resolved`"),
            "{err}"
        );

        let bad_system = BUILTIN_TEXT.replacen("http://snomed.info/sct", "snomed", 1);
        let err = FhirCodes::parse("t", &bad_system).unwrap_err();
        assert!(err.message.contains("not an absolute URI"), "{err}");

        let bad_code = BUILTIN_TEXT.replacen("\t52101004\t", "\t 52101004\t", 1);
        let err = FhirCodes::parse("t", &bad_code).unwrap_err();
        assert!(err.message.contains("not a valid FHIR code"), "{err}");
    }
}
