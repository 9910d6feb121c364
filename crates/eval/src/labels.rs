//! The evaluation's own data tables, compiled in: concept ↔ finding codes,
//! MeSH ↔ concept, and the NegEx kit's line → report table.

use crate::EvalError;
use std::collections::HashMap;

const CONCEPTS_TSV: &str = include_str!("../concepts.tsv");
const MESH_TSV: &str = include_str!("../mesh.tsv");
const NEGEX_KIT_TSV: &str = include_str!("../negex_kit_reports.tsv");

/// The 14 NegBio/ChestX-ray14 labels, in the column order of the gold file.
pub const LABELS14: [&str; 14] = [
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
];

/// Data rows of a compiled-in table: `#` comments and the header line
/// skipped, with their 1-based line numbers.
fn data_rows(table: &'static str) -> impl Iterator<Item = (u64, Vec<&'static str>)> {
    table
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.starts_with('#') && !line.trim().is_empty())
        .skip(1)
        .map(|(index, line)| (index as u64 + 1, line.split('\t').collect()))
}

fn table_error(input: &'static str, line: u64, message: impl Into<String>) -> EvalError {
    EvalError::Row {
        input,
        line,
        message: message.into(),
    }
}

/// Evaluation concepts and the finding codes that mention them.
#[derive(Debug)]
pub struct Concepts {
    names: Vec<&'static str>,
    /// Finding code → concept index. Matched on the code alone: SNOMED
    /// numbers and RadLex `RID` codes cannot collide, and system URIs are
    /// spelt in more than one way (`http://radlex.org`, `http://www.radlex.org`).
    by_code: HashMap<&'static str, usize>,
}

impl Concepts {
    pub fn builtin() -> Result<Concepts, EvalError> {
        let mut names: Vec<&'static str> = Vec::new();
        let mut by_code = HashMap::new();
        for (line, fields) in data_rows(CONCEPTS_TSV) {
            let [name, _system, code, _display] = fields[..] else {
                return Err(table_error(
                    "concepts.tsv",
                    line,
                    "expected 4 tab-separated columns",
                ));
            };
            let index = match names.iter().position(|known| *known == name) {
                Some(index) => index,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            if let Some(previous) = by_code.insert(code, index)
                && previous != index
            {
                return Err(table_error(
                    "concepts.tsv",
                    line,
                    format!("code {code} is listed under two concepts"),
                ));
            }
        }
        Ok(Concepts { names, by_code })
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|known| *known == name)
    }

    pub fn name(&self, index: usize) -> &'static str {
        self.names[index]
    }

    /// The concept a finding code mentions, if any.
    pub fn of_code(&self, code: &str) -> Option<usize> {
        self.by_code.get(code).copied()
    }

    #[cfg(test)]
    pub fn codes(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_code.keys().copied()
    }
}

/// MeSH heading (optionally `Heading/qualifier`) → concept index.
#[derive(Debug)]
pub struct MeshMap {
    by_heading: HashMap<String, usize>,
}

impl MeshMap {
    pub fn builtin(concepts: &Concepts) -> Result<MeshMap, EvalError> {
        let mut by_heading = HashMap::new();
        for (line, fields) in data_rows(MESH_TSV) {
            let [mesh, concept] = fields[..] else {
                return Err(table_error(
                    "mesh.tsv",
                    line,
                    "expected 2 tab-separated columns",
                ));
            };
            let index = concepts.index(concept).ok_or_else(|| {
                table_error(
                    "mesh.tsv",
                    line,
                    format!("concept {concept:?} is not in concepts.tsv"),
                )
            })?;
            by_heading.insert(mesh.to_ascii_lowercase(), index);
        }
        Ok(MeshMap { by_heading })
    }

    /// The concept of one MeSH term (`Heading/qual/qual`): a
    /// `heading/qualifier` row wins over the bare heading.
    pub fn concept(&self, heading: &str, qualifiers: &[&str]) -> Option<usize> {
        let heading = heading.to_ascii_lowercase();
        qualifiers
            .iter()
            .find_map(|qualifier| {
                self.by_heading
                    .get(&format!("{heading}/{}", qualifier.to_ascii_lowercase()))
            })
            .or_else(|| self.by_heading.get(&heading))
            .copied()
    }
}

/// The NegEx kit's line number → whether the line comes from a radiology
/// report, verified by a hash of the condition (see the crate docs).
#[derive(Debug)]
pub struct NegexKit {
    lines: HashMap<u64, (bool, u64)>,
}

impl NegexKit {
    pub fn builtin() -> Result<NegexKit, EvalError> {
        let mut lines = HashMap::new();
        for (line, fields) in data_rows(NEGEX_KIT_TSV) {
            let [kit_line, reports, hash] = fields[..] else {
                return Err(table_error(
                    "negex_kit_reports.tsv",
                    line,
                    "expected 3 tab-separated columns",
                ));
            };
            let bad =
                |what: &str| table_error("negex_kit_reports.tsv", line, format!("bad {what}"));
            let kit_line: u64 = kit_line.parse().map_err(|_| bad("line number"))?;
            let reports: Vec<u32> = reports
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| bad("report number"))?;
            let hash = u64::from_str_radix(hash, 16).map_err(|_| bad("hash"))?;
            let radiology = reports.iter().all(|report| report % 6 == 5);
            lines.insert(kit_line, (radiology, hash));
        }
        Ok(NegexKit { lines })
    }

    /// `Some(is_radiology)` when the row is a known kit row (line number and
    /// condition agree with the kit), `None` otherwise.
    pub fn radiology(&self, kit_line: u64, condition: &str) -> Option<bool> {
        let (radiology, hash) = self.lines.get(&kit_line)?;
        (condition_hash(condition) == *hash).then_some(*radiology)
    }
}

/// FNV-1a 64 of the condition trimmed, whitespace runs collapsed to one
/// space, ASCII lower case.
fn condition_hash(condition: &str) -> u64 {
    let normalised = condition
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    normalised
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_tables_load_and_cover_the_14_labels() {
        let concepts = Concepts::builtin().unwrap();
        for label in LABELS14 {
            let index = concepts
                .index(label)
                .unwrap_or_else(|| panic!("{label} missing"));
            assert_eq!(concepts.name(index), label);
        }
        let mesh = MeshMap::builtin(&concepts).unwrap();
        let effusion = concepts.index("Effusion");
        assert_eq!(mesh.concept("Pleural Effusion", &["right"]), effusion);
        assert_eq!(
            mesh.concept("thickening", &["mild", "pleura"]),
            concepts.index("Pleural_Thickening")
        );
        assert_eq!(mesh.concept("Thickening", &["bronchial"]), None);
        assert_eq!(mesh.concept("Lung", &["hilum"]), None);
    }

    #[test]
    fn negex_kit_table_verifies_the_condition() {
        let kit = NegexKit::builtin().unwrap();
        assert!(kit.lines.len() > 2300);
        // Line 1 of the kit is an "edema" row from a non-radiology report.
        assert_eq!(kit.radiology(1, "  EDEMA "), Some(false));
        assert_eq!(kit.radiology(1, "pneumothorax"), None);
        assert_eq!(kit.radiology(999_999, "edema"), None);
        let radiology_rows = kit
            .lines
            .values()
            .filter(|(radiology, _)| *radiology)
            .count();
        assert!((150..=170).contains(&radiology_rows), "{radiology_rows}");
    }

    #[test]
    fn condition_hash_ignores_case_and_spacing() {
        assert_eq!(
            condition_hash("Incisions are dry and   intact"),
            condition_hash("incisions are DRY and intact ")
        );
        // FNV-1a 64 of the empty string is its offset basis.
        assert_eq!(condition_hash(""), 0xcbf2_9ce4_8422_2325);
    }
}

#[cfg(test)]
mod mapping_alignment {
    use super::Concepts;

    /// The concept codes must be codes the extractor can emit, or a label can
    /// never be predicted.
    #[test]
    fn every_concept_code_is_in_the_findings_mapping() {
        let findings = include_str!("../../../mappings/findings.tsv");
        let known: Vec<&str> = findings
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split('\t').nth(1))
            .collect();
        let concepts = Concepts::builtin().unwrap();
        let missing: Vec<&str> = concepts
            .codes()
            .filter(|code| !known.contains(code))
            .collect();
        assert!(
            missing.is_empty(),
            "codes not in mappings/findings.tsv: {missing:?}"
        );
    }
}
