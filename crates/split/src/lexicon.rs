//! Code tables from mappings/: parsed and validated once, then shared by
//! every extraction. The built-in tables are compiled in; a site changes them
//! with overlays (rows added, replaced or removed; crate::table) loaded at
//! start-up with [`Lexicon::parse_with_site`].
//!
//! Finding terms, body-site terms and context cues share ONE automaton, built
//! here once: a sentence is scanned a single time, and extraction itself
//! never compiles a pattern.

use crate::context::cues::{CUES, Cue};
use crate::words::WordTrie;
use crate::{AssessmentSystem, Axis, Code};
use std::collections::HashMap;

pub use crate::table::MappingError;
use crate::table::{Source, error, rows};

/// The contents of the mapping files a [`Lexicon`] is built from, so a site
/// can replace any of them. `name` is only used in error messages.
#[derive(Debug, Clone, Copy)]
pub struct MappingFiles<'a> {
    pub findings: (&'a str, &'a str),
    pub body_sites: (&'a str, &'a str),
    pub descriptors: (&'a str, &'a str),
    pub assessments: (&'a str, &'a str),
    pub critical: (&'a str, &'a str),
    pub sections: (&'a str, &'a str),
    pub sex_specific: (&'a str, &'a str),
    pub age_specific: (&'a str, &'a str),
    pub order_regions: (&'a str, &'a str),
}

impl MappingFiles<'static> {
    /// The tables shipped in mappings/.
    pub const BUILTIN: MappingFiles<'static> = MappingFiles {
        findings: (
            "mappings/findings.tsv",
            include_str!("../../../mappings/findings.tsv"),
        ),
        body_sites: (
            "mappings/body_sites.tsv",
            include_str!("../../../mappings/body_sites.tsv"),
        ),
        descriptors: (
            "mappings/descriptors.tsv",
            include_str!("../../../mappings/descriptors.tsv"),
        ),
        assessments: (
            "mappings/assessments.tsv",
            include_str!("../../../mappings/assessments.tsv"),
        ),
        critical: (
            "mappings/critical.tsv",
            include_str!("../../../mappings/critical.tsv"),
        ),
        sections: (
            "mappings/sections.tsv",
            include_str!("../../../mappings/sections.tsv"),
        ),
        sex_specific: (
            "mappings/sex_specific.tsv",
            include_str!("../../../mappings/sex_specific.tsv"),
        ),
        age_specific: (
            "mappings/age_specific.tsv",
            include_str!("../../../mappings/age_specific.tsv"),
        ),
        order_regions: (
            "mappings/order_regions.tsv",
            include_str!("../../../mappings/order_regions.tsv"),
        ),
    };
}

/// A site's overlays of the tables (crate::table): each file, when given,
/// lists only the rows the site adds, replaces or removes (`-`), so a site
/// keeps the shipped rows it does not mention, and their later fixes.
#[derive(Debug, Clone, Copy, Default)]
pub struct SiteTables<'a> {
    pub findings: Option<(&'a str, &'a str)>,
    pub body_sites: Option<(&'a str, &'a str)>,
    pub descriptors: Option<(&'a str, &'a str)>,
    pub assessments: Option<(&'a str, &'a str)>,
    pub critical: Option<(&'a str, &'a str)>,
    pub sections: Option<(&'a str, &'a str)>,
    pub sex_specific: Option<(&'a str, &'a str)>,
    pub age_specific: Option<(&'a str, &'a str)>,
    pub order_regions: Option<(&'a str, &'a str)>,
}

/// All code tables the extractor needs, with their automata.
#[derive(Debug)]
pub struct Lexicon {
    /// Finding concepts, indexed by [`Reading::concept`].
    pub(crate) findings: Vec<Code>,
    /// Body-site concepts, indexed by [`Entry::site`].
    pub(crate) body_sites: Vec<Code>,
    /// Descriptor rows, indexed by [`Entry::descriptor`].
    pub(crate) descriptors: Vec<DescriptorRow>,
    /// Codes of assessment categories, by system and canonical category.
    assessments: HashMap<(AssessmentSystem, String), Code>,
    pub(crate) words: Words,
    /// Critical-result rules and their qualifier words.
    pub(crate) critical: CriticalRules,
    pub(crate) sections: crate::sections::SectionTable,
    /// Sex- and age-specific concepts and order regions (discrepancies).
    pub(crate) against: crate::discrepancy::AgainstTables,
}

/// The words the extractor looks for — finding synonyms, body-site synonyms
/// and context cues — in one trie, walked at word starts; the longest
/// synonym at a position wins (`pleural effusion` over `effusion`), ASCII
/// case-insensitively.
#[derive(Debug)]
pub(crate) struct Words {
    pub(crate) automaton: WordTrie,
    /// Indexed by pattern id.
    pub(crate) entries: Vec<Entry>,
}

/// Everything one pattern means. The same words can be several things:
/// `heart` is a body site and the head of `heart ... enlarged`; `bibasilar`
/// is a site and a laterality cue.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    /// Finding readings, tried in table order (gapped ones first match wins).
    pub(crate) readings: Vec<Reading>,
    pub(crate) site: Option<u32>,
    pub(crate) descriptor: Option<u32>,
    pub(crate) cue: Option<&'static Cue>,
}

/// One row of descriptors.tsv: what the words describe, and the finding
/// they assert when said of an organ with no observation head.
#[derive(Debug)]
pub(crate) struct DescriptorRow {
    pub(crate) axis: Axis,
    pub(crate) finding: Option<u32>,
}

/// One finding synonym starting with an entry's words.
#[derive(Debug)]
pub(crate) struct Reading {
    pub(crate) concept: u32,
    /// For a gapped synonym, the words that must follow the head.
    pub(crate) tail: Option<Box<str>>,
}

impl Words {
    fn build(
        findings: Vec<(String, Reading)>,
        sites: Vec<(String, u32)>,
        descriptors: Vec<(String, u32)>,
    ) -> Result<Words, String> {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        let mut entry = |key: &str| -> usize {
            *index.entry(key.to_string()).or_insert_with(|| {
                patterns.push(key.to_string());
                entries.push(Entry::default());
                entries.len() - 1
            })
        };
        let finding_slots: Vec<(usize, Reading)> = findings
            .into_iter()
            .map(|(key, r)| (entry(&key), r))
            .collect();
        let site_slots: Vec<(usize, u32)> =
            sites.into_iter().map(|(key, c)| (entry(&key), c)).collect();
        let descriptor_slots: Vec<(usize, u32)> = descriptors
            .into_iter()
            .map(|(key, d)| (entry(&key), d))
            .collect();
        let cue_slots: Vec<(usize, &'static Cue)> = CUES
            .iter()
            .map(|(phrase, cue)| (entry(phrase), cue))
            .collect();
        for (slot, reading) in finding_slots {
            entries[slot].readings.push(reading);
        }
        for (slot, concept) in site_slots {
            entries[slot].site = Some(concept);
        }
        for (slot, row) in descriptor_slots {
            entries[slot].descriptor = Some(row);
        }
        for (slot, cue) in cue_slots {
            entries[slot].cue = Some(cue);
        }
        Ok(Words {
            automaton: WordTrie::new(&patterns)?,
            entries,
        })
    }

    /// The context cues of `text[start..end]`, for judging a term the
    /// lexicon may not know.
    pub(crate) fn scan_cues(
        &self,
        text: &str,
        start: usize,
        end: usize,
        out: &mut Vec<crate::context::cues::CueHit>,
    ) {
        out.clear();
        crate::words::select_words(&self.automaton, text, start, end, |s, e, pattern| {
            if let Some(cue) = self.entries[pattern].cue
                && (!cue.abbreviated
                    || crate::context::cues::abbreviates_a_side(text.as_bytes(), s, e))
            {
                out.push(crate::context::cues::CueHit {
                    start: s,
                    end: e,
                    cue: crate::context::cues::oriented(cue, text.as_bytes(), s, e),
                });
            }
        });
    }
}

/// When a present finding of a concept is a critical result.
#[derive(Debug)]
pub(crate) struct CriticalRule {
    pub(crate) concept: u32,
    /// The ACR category of the rule (critical.tsv's `category` column).
    pub(crate) urgency: crate::Urgency,
    /// At least one of these words must qualify the finding in its sentence
    /// (empty: always critical); indexes of [`CriticalRules::words`].
    pub(crate) requires: Vec<u32>,
    /// None of these words may appear in the sentence (`chronic` PE).
    pub(crate) excludes: Vec<u32>,
}

/// The critical-result rules, and the words they name in one automaton, so
/// that a sentence is read once for all of them rather than once per word.
#[derive(Debug)]
pub(crate) struct CriticalRules {
    /// Sorted by concept ([`CriticalRules::of`]).
    pub(crate) rules: Vec<CriticalRule>,
    /// Each distinct qualifier word, lower case; pattern `i` is word `i`.
    pub(crate) words: Vec<Box<str>>,
    pub(crate) automaton: WordTrie,
}

impl CriticalRules {
    /// The rules of `concept`.
    pub(crate) fn of(&self, concept: u32) -> &[CriticalRule] {
        let start = self.rules.partition_point(|rule| rule.concept < concept);
        let len = self.rules[start..]
            .iter()
            .take_while(|rule| rule.concept == concept)
            .count();
        &self.rules[start..start + len]
    }
}

/// Code systems a table may use. `urn:reportsplit:codes` is for a concept
/// no standard code was verified for (mappings/README.md).
const SYSTEMS: [&str; 5] = [
    "http://snomed.info/sct",
    "http://www.radlex.org",
    "http://loinc.org",
    LOCAL_SYSTEM,
    "http://dicom.nema.org/resources/ontology/DCM",
];

const LOCAL_SYSTEM: &str = "urn:reportsplit:codes";

impl Lexicon {
    /// The tables shipped in mappings/, compiled into the binary. They are
    /// validated by the test suite, so this cannot fail at run time.
    pub fn builtin() -> Lexicon {
        match Lexicon::parse(MappingFiles::BUILTIN) {
            Ok(lexicon) => lexicon,
            Err(error) => panic!("built-in mapping tables are invalid: {error}"),
        }
    }

    /// The code of an assessment category, if mappings/assessments.tsv has one.
    pub(crate) fn assessment_code(
        &self,
        system: AssessmentSystem,
        category: &str,
    ) -> Option<&Code> {
        self.assessments.get(&(system, category.to_string()))
    }

    /// Builds a lexicon from whole tables (the shipped ones, or a test's).
    pub fn parse(files: MappingFiles<'_>) -> Result<Lexicon, MappingError> {
        Lexicon::parse_with_site(files, SiteTables::default())
    }

    /// Builds a lexicon from `files` with a site's overlays of them.
    pub fn parse_with_site(
        files: MappingFiles<'_>,
        site: SiteTables<'_>,
    ) -> Result<Lexicon, MappingError> {
        let source = |base, site| Source { base, site };
        let (findings, finding_synonyms) =
            parse_concepts(source(files.findings, site.findings), true)?;
        let (body_sites, site_synonyms) =
            parse_concepts(source(files.body_sites, site.body_sites), false)?;
        let critical = parse_critical(source(files.critical, site.critical), &findings)?;
        let sections = crate::sections::SectionTable::parse(source(files.sections, site.sections))?;
        let site_synonyms: Vec<(String, u32)> = site_synonyms
            .into_iter()
            .map(|(key, r)| (key, r.concept))
            .collect();
        let (descriptors, descriptor_synonyms) = parse_descriptors(
            source(files.descriptors, site.descriptors),
            &findings,
            &finding_synonyms,
            &site_synonyms,
        )?;
        let words = Words::build(finding_synonyms, site_synonyms, descriptor_synonyms)
            .map_err(|message| error(files.findings.0, 0, message))?;
        let assessments = parse_assessments(source(files.assessments, site.assessments))?;
        let against = crate::discrepancy::parse_tables(
            source(files.sex_specific, site.sex_specific),
            source(files.age_specific, site.age_specific),
            source(files.order_regions, site.order_regions),
            &findings,
            &body_sites,
        )?;
        Ok(Lexicon {
            findings,
            body_sites,
            descriptors,
            assessments,
            words,
            critical,
            sections,
            against,
        })
    }
}

const CONCEPT_HEADER: [&str; 5] = ["system", "code", "display", "synonyms", "notes"];

/// A table's codes, and its synonyms as (lower-case head, reading).
type Concepts = (Vec<Code>, Vec<(String, Reading)>);

/// Parses a concept table (findings.tsv, body_sites.tsv). Gapped synonyms
/// only where `gaps_allowed`.
fn parse_concepts(source: Source<'_>, gaps_allowed: bool) -> Result<Concepts, MappingError> {
    let file = source.base.0;
    let mut codes: Vec<Code> = Vec::new();
    let mut synonyms_out: Vec<(String, Reading)> = Vec::new();
    // Where each code and synonym was first read (a site's overlay is
    // another file): "file:line".
    let mut code_lines: HashMap<(String, String), String> = HashMap::new();
    let mut synonym_lines: HashMap<String, String> = HashMap::new();
    for row in rows(source, &CONCEPT_HEADER, 2)? {
        let (file, line, columns) = (row.file, row.line, row.columns);
        let [system, code, display, synonyms, _notes] = columns[..] else {
            unreachable!("rows() checked the column count")
        };
        if !SYSTEMS.contains(&system) {
            return Err(error(
                file,
                line,
                format!("unknown code system URI {system:?} (expected one of {SYSTEMS:?})"),
            ));
        }
        if code.trim().is_empty() || code.trim() != code {
            return Err(error(file, line, format!("bad code {code:?}")));
        }
        if system == SYSTEMS[0] && !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error(
                file,
                line,
                format!("SNOMED CT code {code:?} is not numeric"),
            ));
        }
        if system == LOCAL_SYSTEM
            && !code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(error(
                file,
                line,
                format!("reportsplit code {code:?} must be lower-case letters, digits and hyphens"),
            ));
        }
        if display.trim().is_empty() {
            return Err(error(file, line, "empty display".to_string()));
        }
        if let Some(first) = code_lines.insert(
            (system.to_string(), code.to_string()),
            format!("{file}:{line}"),
        ) {
            return Err(error(
                file,
                line,
                format!("duplicate code {code} (first at {first})"),
            ));
        }
        let concept = u32::try_from(codes.len())
            .map_err(|_| error(file, line, "too many concepts".to_string()))?;
        for synonym in synonyms.split('|') {
            if synonym.trim().is_empty() {
                return Err(error(file, line, "empty synonym".to_string()));
            }
            if synonym.trim() != synonym || synonym.contains("  ") {
                return Err(error(
                    file,
                    line,
                    format!("synonym {synonym:?} has stray spaces"),
                ));
            }
            let key = synonym.to_ascii_lowercase();
            if let Some(first) = synonym_lines.insert(key.clone(), format!("{file}:{line}")) {
                return Err(error(
                    file,
                    line,
                    format!("synonym {synonym:?} already names the concept at {first}"),
                ));
            }
            let (head, tail) = match key.split_once(" ... ") {
                Some(_) if !gaps_allowed => {
                    return Err(error(
                        file,
                        line,
                        format!("gapped synonym {synonym:?} is only allowed for findings"),
                    ));
                }
                Some((head, tail)) if !head.is_empty() && !tail.is_empty() => {
                    (head.to_string(), Some(tail.into()))
                }
                Some(_) => {
                    return Err(error(
                        file,
                        line,
                        format!("gapped synonym {synonym:?} needs words on both sides of ..."),
                    ));
                }
                None => (key, None),
            };
            synonyms_out.push((head, Reading { concept, tail }));
        }
        codes.push(Code {
            system: system.to_string(),
            code: code.to_string(),
            display: display.to_string(),
        });
    }
    if codes.is_empty() {
        return Err(error(file, 0, "no concepts".to_string()));
    }
    Ok((codes, synonyms_out))
}

const DESCRIPTOR_HEADER: [&str; 4] = ["axis", "synonyms", "finding", "notes"];

/// The axes of descriptors.tsv, by the name the table uses.
const AXES: [(&str, Axis); 14] = [
    ("size", Axis::Size),
    ("shape", Axis::Shape),
    ("margin", Axis::Margin),
    ("attenuation", Axis::Attenuation),
    ("signal", Axis::Signal),
    ("echogenicity", Axis::Echogenicity),
    ("enhancement", Axis::Enhancement),
    ("uptake", Axis::Uptake),
    ("number", Axis::Number),
    ("acuity", Axis::Acuity),
    ("severity", Axis::Severity),
    ("distribution", Axis::Distribution),
    ("composition", Axis::Composition),
    ("normal", Axis::Normal),
];

/// The descriptor rows, and their synonyms as (lower-case words, row).
type Descriptors = (Vec<DescriptorRow>, Vec<(String, u32)>);

/// Parses descriptors.tsv. A descriptor's words may be no finding's or
/// site's words: "calcified" is either a descriptor or a finding, never
/// both, so the table says which reading wins.
fn parse_descriptors(
    source: Source<'_>,
    findings: &[Code],
    finding_synonyms: &[(String, Reading)],
    site_synonyms: &[(String, u32)],
) -> Result<Descriptors, MappingError> {
    let taken: std::collections::HashSet<&str> = finding_synonyms
        .iter()
        .filter(|(_, reading)| reading.tail.is_none())
        .map(|(key, _)| key.as_str())
        .chain(site_synonyms.iter().map(|(key, _)| key.as_str()))
        .collect();
    let mut rows_out = Vec::new();
    let mut synonyms_out = Vec::new();
    let mut synonym_lines: HashMap<String, String> = HashMap::new();
    for row in rows(source, &DESCRIPTOR_HEADER, 2)? {
        let (file, line, columns) = (row.file, row.line, row.columns);
        let [axis, synonyms, finding, _notes] = columns[..] else {
            unreachable!("rows() checked the column count")
        };
        let axis = AXES
            .iter()
            .find(|(name, _)| *name == axis)
            .map(|&(_, axis)| axis)
            .ok_or_else(|| error(file, line, format!("unknown axis {axis:?}")))?;
        let finding = match finding {
            "-" => None,
            code => Some(
                findings
                    .iter()
                    .position(|c| c.code == code)
                    .ok_or_else(|| {
                        error(
                            file,
                            line,
                            format!("{code} is not a concept of findings.tsv"),
                        )
                    })? as u32,
            ),
        };
        let index = rows_out.len() as u32;
        for synonym in synonyms.split('|') {
            if synonym.trim().is_empty() || synonym.trim() != synonym || synonym.contains("  ") {
                return Err(error(file, line, format!("bad synonym {synonym:?}")));
            }
            let key = synonym.to_ascii_lowercase();
            if taken.contains(key.as_str()) {
                return Err(error(
                    file,
                    line,
                    format!("{synonym:?} is already a finding or body-site synonym"),
                ));
            }
            if let Some(first) = synonym_lines.insert(key.clone(), format!("{file}:{line}")) {
                return Err(error(
                    file,
                    line,
                    format!("synonym {synonym:?} is already at {first}"),
                ));
            }
            synonyms_out.push((key, index));
        }
        rows_out.push(DescriptorRow { axis, finding });
    }
    Ok((rows_out, synonyms_out))
}

const ASSESSMENT_HEADER: [&str; 6] = [
    "assessment",
    "category",
    "system",
    "code",
    "display",
    "notes",
];

/// The systems of assessments.tsv, by the name the table uses.
const ASSESSMENT_SYSTEMS: [(&str, AssessmentSystem); 10] = [
    ("BI-RADS", AssessmentSystem::BiRads),
    ("Lung-RADS", AssessmentSystem::LungRads),
    ("LI-RADS", AssessmentSystem::LiRads),
    ("TI-RADS", AssessmentSystem::TiRads),
    ("PI-RADS", AssessmentSystem::PiRads),
    ("O-RADS", AssessmentSystem::ORads),
    ("Bosniak", AssessmentSystem::Bosniak),
    ("CAD-RADS", AssessmentSystem::CadRads),
    ("ASPECTS", AssessmentSystem::Aspects),
    ("Fleischner", AssessmentSystem::Fleischner),
];

fn parse_assessments(
    source: Source<'_>,
) -> Result<HashMap<(AssessmentSystem, String), Code>, MappingError> {
    let mut codes = HashMap::new();
    for row in rows(source, &ASSESSMENT_HEADER, 2)? {
        let (file, line, columns) = (row.file, row.line, row.columns);
        let [assessment, category, system, code, display, _notes] = columns[..] else {
            unreachable!("rows() checked the column count")
        };
        let assessment = ASSESSMENT_SYSTEMS
            .iter()
            .find(|(name, _)| *name == assessment)
            .map(|&(_, a)| a)
            .ok_or_else(|| {
                error(
                    file,
                    line,
                    format!("unknown assessment system {assessment:?}"),
                )
            })?;
        if !SYSTEMS.contains(&system) {
            return Err(error(
                file,
                line,
                format!("unknown code system URI {system:?}"),
            ));
        }
        if category.is_empty() || code.is_empty() || display.is_empty() {
            return Err(error(
                file,
                line,
                "empty category, code or display".to_string(),
            ));
        }
        let code = Code {
            system: system.to_string(),
            code: code.to_string(),
            display: display.to_string(),
        };
        if codes
            .insert((assessment, category.to_string()), code)
            .is_some()
        {
            return Err(error(
                file,
                line,
                format!("category {category} is listed twice"),
            ));
        }
    }
    Ok(codes)
}

const CRITICAL_HEADER: [&str; 5] = ["system", "code", "category", "requires", "excludes"];

fn parse_critical(source: Source<'_>, findings: &[Code]) -> Result<CriticalRules, MappingError> {
    let file = source.base.0;
    let mut rules = Vec::new();
    let mut words: Vec<Box<str>> = Vec::new();
    let mut index: HashMap<Box<str>, u32> = HashMap::new();
    for row in rows(source, &CRITICAL_HEADER, 2)? {
        let (file, line, columns) = (row.file, row.line, row.columns);
        let [system, code, category, requires, excludes] = columns[..] else {
            unreachable!("rows() checked the column count")
        };
        let urgency = match category {
            "1" => crate::Urgency::Minutes,
            "2" => crate::Urgency::Hours,
            "3" => crate::Urgency::Days,
            _ => {
                return Err(error(
                    file,
                    line,
                    format!("category {category:?} is not an ACR actionable category (1, 2 or 3)"),
                ));
            }
        };
        let concept = findings
            .iter()
            .position(|c| c.system == system && c.code == code)
            .ok_or_else(|| {
                error(
                    file,
                    line,
                    format!("{system}|{code} is not a concept of findings.tsv"),
                )
            })?;
        let mut word_ids = |column: &str| -> Result<Vec<u32>, MappingError> {
            if column == "-" {
                return Ok(Vec::new());
            }
            column
                .split('|')
                .map(|word| {
                    if word.trim().is_empty() || word.trim() != word {
                        return Err(error(file, line, format!("bad qualifier {word:?}")));
                    }
                    let word: Box<str> = word.to_ascii_lowercase().into_boxed_str();
                    let id = *index.entry(word.clone()).or_insert_with(|| {
                        words.push(word);
                        (words.len() - 1) as u32
                    });
                    Ok(id)
                })
                .collect()
        };
        let requires = word_ids(requires)?;
        let excludes = word_ids(excludes)?;
        rules.push(CriticalRule {
            concept: concept as u32,
            urgency,
            requires,
            excludes,
        });
    }
    // By concept, so a finding finds its rules by binary search (the most
    // urgent matching rule decides: their order within a concept is moot).
    rules.sort_by_key(|rule| rule.concept);
    let patterns: Vec<&[u8]> = words.iter().map(|word| word.as_bytes()).collect();
    let automaton = WordTrie::new(&patterns).map_err(|message| error(file, 0, message))?;
    Ok(CriticalRules {
        rules,
        words,
        automaton,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_findings(content: &str) -> MappingFiles<'_> {
        MappingFiles {
            findings: ("site/findings.tsv", content),
            ..MappingFiles::BUILTIN
        }
    }

    #[test]
    fn builtin_tables_validate() {
        let lexicon = Lexicon::parse(MappingFiles::BUILTIN).expect("builtin tables");
        assert!(lexicon.findings.len() > 40);
        assert!(!lexicon.body_sites.is_empty());
        assert!(!lexicon.critical.rules.is_empty());
    }

    fn parse_error(content: &str) -> MappingError {
        match Lexicon::parse(with_findings(content)) {
            Ok(_) => panic!("expected an error for {content:?}"),
            Err(e) => e,
        }
    }

    const HEADER: &str = "system\tcode\tdisplay\tsynonyms\tnotes\n";

    #[test]
    fn duplicate_code_names_file_and_line() {
        let e = parse_error(&format!(
            "# comment\n{HEADER}http://snomed.info/sct\t1\tA\ta\t\nhttp://snomed.info/sct\t1\tB\tb\t\n"
        ));
        assert_eq!((e.file.as_str(), e.line), ("site/findings.tsv", 4));
        assert!(e.to_string().contains("duplicate code"), "{e}");
    }

    #[test]
    fn empty_synonym_is_an_error() {
        let e = parse_error(&format!("{HEADER}http://snomed.info/sct\t1\tA\ta||b\t\n"));
        assert_eq!(e.line, 2);
        assert!(e.message.contains("empty synonym"));
    }

    #[test]
    fn bad_system_uri_is_an_error() {
        let e = parse_error(&format!("{HEADER}snomed\t1\tA\ta\t\n"));
        assert!(e.message.contains("unknown code system"));
    }

    #[test]
    fn a_local_code_is_lower_case_words_and_hyphens() {
        let e = parse_error(&format!(
            "{HEADER}urn:reportsplit:codes\tFinding Torsion\tA\ta\t\n"
        ));
        assert!(e.message.contains("lower-case"), "{}", e.message);
        let e = parse_error(&format!("{HEADER}http://snomed.info/sct\tRID1\tA\ta\t\n"));
        assert!(e.message.contains("not numeric"), "{}", e.message);
    }

    #[test]
    fn wrong_column_count_is_an_error() {
        let e = parse_error(&format!("{HEADER}http://snomed.info/sct\t1\tA\n"));
        assert!(e.message.contains("columns"), "{e}");
    }

    #[test]
    fn synonym_shared_by_two_concepts_is_an_error() {
        let e = parse_error(&format!(
            "{HEADER}http://snomed.info/sct\t1\tA\tsame\t\nhttp://snomed.info/sct\t2\tB\tSame\t\n"
        ));
        assert_eq!(e.line, 3);
    }

    #[test]
    fn wrong_header_is_an_error() {
        let e = parse_error("system\tcode\n");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn critical_rule_must_name_a_known_concept() {
        let files = MappingFiles {
            critical: (
                "site/critical.tsv",
                "system\tcode\tcategory\trequires\texcludes\nhttp://snomed.info/sct\t999\t1\t-\t-\n",
            ),
            ..MappingFiles::BUILTIN
        };
        let e = Lexicon::parse(files).expect_err("unknown concept");
        assert_eq!((e.file.as_str(), e.line), ("site/critical.tsv", 2));
    }
}
