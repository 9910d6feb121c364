//! Discrepancies between the text and what is known of the report from
//! outside it (issue 12, item 3): anatomy or a finding that the patient's
//! sex does not have, a finding impossible at the patient's age, and another
//! side or body region than the ordered procedure's. The facts come in as
//! plain data ([`crate::ReportFacts`]); the tables (`mappings/sex_specific.tsv`,
//! `age_specific.tsv`, `order_regions.tsv`) say which concepts and words count.
//!
//! Precision first (a wrong alert costs a reader's trust): only findings
//! stated present and current count, never a denied, hedged or historical
//! one ("absent uterus", "status post hysterectomy"); an obstetric report
//! (it speaks of a fetus) is not checked for sex or age, since its fetal
//! anatomy is not the patient's; an order compared with a report that names
//! the ordered side (or "bilateral") anywhere is no mismatch.

use crate::table::{MappingError, Row, Source, error, rows};
use crate::{
    Against, AgeYears, Assertion, Code, Discrepancy, DiscrepancyKind, Finding, Laterality, Said,
    SectionKind, Sex, Temporality,
};

use super::Inputs;

/// The rows of the three tables the checks read.
#[derive(Debug, Default)]
pub(crate) struct AgainstTables {
    sex: Vec<SexRow>,
    age: Vec<AgeRow>,
    regions: Vec<Region>,
}

#[derive(Debug)]
struct SexRow {
    system: String,
    code: String,
    sex: Sex,
    /// The concept's display, from findings.tsv or body_sites.tsv.
    display: String,
}

#[derive(Debug)]
struct AgeRow {
    system: String,
    code: String,
    min_age: Option<u32>,
    max_age: Option<u32>,
}

#[derive(Debug)]
struct Region {
    name: String,
    words: Vec<String>,
}

const SEX_HEADER: [&str; 4] = ["system", "code", "sex", "notes"];
const AGE_HEADER: [&str; 5] = ["system", "code", "min_age", "max_age", "notes"];
const REGION_HEADER: [&str; 3] = ["region", "words", "notes"];

/// Reads and checks the three tables: every concept must be one of
/// findings.tsv (or, for sex_specific.tsv, of body_sites.tsv too).
pub(crate) fn parse_tables(
    sex: Source<'_>,
    age: Source<'_>,
    regions: Source<'_>,
    findings: &[Code],
    sites: &[Code],
) -> Result<AgainstTables, MappingError> {
    let find = |codes: &[Code], system: &str, code: &str| {
        codes
            .iter()
            .find(|c| c.system == system && c.code == code)
            .map(|c| c.display.clone())
    };
    let mut tables = AgainstTables::default();
    for row in rows(sex, &SEX_HEADER, 2)? {
        let [system, code, sex, _notes] = row.columns[..] else {
            unreachable!("rows() checked the column count")
        };
        let sex = match sex {
            "female" => Sex::Female,
            "male" => Sex::Male,
            other => return Err(row.error(format!("sex {other:?} is not female or male"))),
        };
        let display = find(findings, system, code)
            .or_else(|| find(sites, system, code))
            .ok_or_else(|| {
                row.error(format!(
                    "{system}|{code} is not a concept of findings.tsv or body_sites.tsv"
                ))
            })?;
        tables.sex.push(SexRow {
            system: system.to_owned(),
            code: code.to_owned(),
            sex,
            display,
        });
    }
    for row in rows(age, &AGE_HEADER, 2)? {
        let [system, code, min_age, max_age, _notes] = row.columns[..] else {
            unreachable!("rows() checked the column count")
        };
        if find(findings, system, code).is_none() {
            return Err(row.error(format!("{system}|{code} is not a concept of findings.tsv")));
        }
        let (min_age, max_age) = (years(&row, min_age)?, years(&row, max_age)?);
        if min_age.is_none() && max_age.is_none() {
            return Err(row.error("a row needs a min_age or a max_age".into()));
        }
        if let (Some(min), Some(max)) = (min_age, max_age)
            && min > max
        {
            return Err(row.error(format!("min_age {min} is above max_age {max}")));
        }
        tables.age.push(AgeRow {
            system: system.to_owned(),
            code: code.to_owned(),
            min_age,
            max_age,
        });
    }
    let file = regions.base.0;
    for row in rows(regions, &REGION_HEADER, 1)? {
        let [name, words, _notes] = row.columns[..] else {
            unreachable!("rows() checked the column count")
        };
        let words: Vec<String> = words.split('|').map(str::to_owned).collect();
        if let Some(bad) = words
            .iter()
            .find(|w| w.is_empty() || !w.bytes().all(|b| b.is_ascii_lowercase()))
        {
            return Err(row.error(format!(
                "region word {bad:?} is not one lower-case word of letters"
            )));
        }
        if let Some(other) = tables
            .regions
            .iter()
            .find(|r| r.words.iter().any(|w| words.contains(w)))
        {
            return Err(row.error(format!(
                "region {name:?} shares a word with region {:?}",
                other.name
            )));
        }
        tables.regions.push(Region {
            name: name.to_owned(),
            words,
        });
    }
    if tables.regions.is_empty() {
        return Err(error(file, 0, "no region".into()));
    }
    Ok(tables)
}

/// An age column: whole years, or `-` for none.
fn years(row: &Row<'_>, column: &str) -> Result<Option<u32>, MappingError> {
    if column == "-" {
        return Ok(None);
    }
    column
        .parse::<u32>()
        .map(Some)
        .map_err(|_| row.error(format!("{column:?} is not an age in whole years or `-`")))
}

/// A finding that says the patient has it now: present, current, and stated
/// where the radiologist describes this study (not the indication or the
/// comparison, which may speak of family history or another study).
fn stated_now(finding: &Finding<'_>) -> bool {
    finding.assertion == Assertion::Present
        && finding.temporality == Temporality::Current
        && !matches!(
            finding.section,
            SectionKind::Indication | SectionKind::Comparison
        )
}

/// "The uterus is surgically absent": the organ is its site, and it is the
/// patient's no longer (like "status post hysterectomy", which the cue
/// makes historical).
fn names_a_removed_organ(finding: &Finding<'_>) -> bool {
    finding.code.is_some_and(|code| {
        code.system == "urn:reportsplit:codes" && code.code == "finding-surgically-absent"
    })
}

/// Words that make a report obstetric: its anatomy is partly a fetus's.
const OBSTETRIC: &[&str] = &[
    "fetus",
    "fetuses",
    "fetal",
    "foetus",
    "foetuses",
    "foetal",
    "gestation",
    "gestational",
    "pregnancy",
    "pregnant",
    "twin",
    "twins",
];

/// The one discrepancy of a kind for a report (a report on the wrong
/// patient is one error, however many findings show it): the first
/// finding that shows it, and the first of the other section kind
/// (Impression or not), so that both are implicated.
fn of_findings<'a>(
    kind: DiscrepancyKind,
    findings: &[Finding<'a>],
    shown: &[usize],
    against: Against<'a>,
) -> Option<Discrepancy<'a>> {
    let &first = shown.first()?;
    let in_impression = |i: &&usize| findings[**i].section == SectionKind::Impression;
    Some(Discrepancy {
        kind,
        term: findings[first].term,
        findings_side: None,
        impression_side: None,
        findings_finding: shown.iter().find(|i| !in_impression(i)).copied(),
        impression_finding: shown.iter().find(in_impression).copied(),
        against: Some(against),
    })
}

/// A finding stated now whose concept or one of whose sites only the other
/// sex has (a finding placed at sites of both sexes is left alone): one
/// discrepancy per report, naming the first such anatomy.
pub(super) fn sex<'a>(
    inputs: &Inputs<'_, 'a>,
    tables: &'a AgainstTables,
    sex: Sex,
) -> Option<Discrepancy<'a>> {
    if has_word(inputs.text, OBSTETRIC) {
        return None;
    }
    let row_of = |code: &Code| {
        tables
            .sex
            .iter()
            .find(|row| row.system == code.system && row.code == code.code)
    };
    let mut shown: Vec<usize> = Vec::new();
    let mut anatomy: Option<&SexRow> = None;
    for (index, finding) in inputs.findings.iter().enumerate() {
        if !stated_now(finding) || names_a_removed_organ(finding) {
            continue;
        }
        let rows: Vec<&SexRow> = finding
            .code
            .into_iter()
            .chain(finding.body_site.iter().filter_map(|site| site.code))
            .filter_map(row_of)
            .collect();
        let Some(&first) = rows.first() else { continue };
        if first.sex == sex || rows.iter().any(|row| row.sex != first.sex) {
            continue;
        }
        anatomy.get_or_insert(first);
        shown.push(index);
    }
    let anatomy = anatomy?;
    let against = Against::Sex {
        sex,
        anatomy_sex: anatomy.sex,
        anatomy: &anatomy.display,
    };
    of_findings(DiscrepancyKind::Sex, inputs.findings, &shown, against)
}

/// An age-specific concept stated now in a patient whose age is surely
/// outside its range: one discrepancy per report, with the first such
/// concept's range.
pub(super) fn age<'a>(
    inputs: &Inputs<'_, 'a>,
    tables: &'a AgainstTables,
    age: AgeYears,
) -> Option<Discrepancy<'a>> {
    if has_word(inputs.text, OBSTETRIC) {
        return None;
    }
    let mut shown: Vec<usize> = Vec::new();
    let mut range: Option<&AgeRow> = None;
    for (index, finding) in inputs.findings.iter().enumerate() {
        let Some(code) = finding.code.filter(|_| stated_now(finding)) else {
            continue;
        };
        let Some(row) = tables
            .age
            .iter()
            .find(|row| row.system == code.system && row.code == code.code)
        else {
            continue;
        };
        let too_old = row.max_age.is_some_and(|max| age.at_least > max);
        let too_young = row.min_age.is_some_and(|min| age.at_most < min);
        if too_old || too_young {
            range.get_or_insert(row);
            shown.push(index);
        }
    }
    let range = range?;
    let against = Against::Age {
        age,
        min_age: range.min_age,
        max_age: range.max_age,
    };
    of_findings(DiscrepancyKind::Age, inputs.findings, &shown, against)
}

/// Words that make a sentence speak of another study or the other side
/// rather than describe this one.
const COMPARING: &[&str] = &[
    "compare",
    "compared",
    "comparison",
    "prior",
    "previous",
    "previously",
    "contralateral",
    "opposite",
    "other",
];

/// The order's side and region against the report's (see the module doc):
/// * side: the order names one side (left/lt or right/rt, no bilateral),
///   the report never names it (nor lt/rt) nor "bilateral", and a sentence describing
///   this study (not a comparison) names the other side (with a word of
///   the ordered region, when the order names one);
/// * region: the order names one region of order_regions.tsv, the report
///   names none of its words, and names exactly one other region, twice
///   or more, in sentences describing this study.
pub(super) fn order<'a>(
    inputs: &Inputs<'_, 'a>,
    tables: &'a AgainstTables,
    ordered: &[String],
) -> Option<Discrepancy<'a>> {
    let ordered_words: Vec<String> = ordered
        .iter()
        .flat_map(|name| words(name).map(|(_, w)| w.to_ascii_lowercase()))
        .collect();
    let named = |list: &[&str]| ordered_words.iter().any(|w| list.contains(&w.as_str()));
    let ordered_side = match (
        named(&["left", "lt"]),
        named(&["right", "rt"]),
        named(&["bilateral", "bilat", "both"]),
    ) {
        (true, false, false) => Some(Laterality::Left),
        (false, true, false) => Some(Laterality::Right),
        _ => None,
    };
    let mut ordered_regions = tables
        .regions
        .iter()
        .filter(|region| region.words.iter().any(|w| ordered_words.contains(w)));
    let ordered_region = match (ordered_regions.next(), ordered_regions.next()) {
        (Some(region), None) => Some(region),
        _ => None,
    };
    if ordered_side.is_none() && ordered_region.is_none() {
        return None;
    }
    let text = inputs.text;
    // The sentences that describe this study, lower-cased words and all.
    let describing: Vec<(usize, Vec<String>)> = inputs
        .sentences
        .iter()
        .enumerate()
        .filter(|(_, s)| inputs.sections[s.section].kind != SectionKind::Comparison)
        .map(|(i, s)| {
            let lower: Vec<String> = words(&text[s.start..s.end])
                .map(|(_, w)| w.to_ascii_lowercase())
                .collect();
            (i, lower)
        })
        .filter(|(_, lower)| !lower.iter().any(|w| COMPARING.contains(&w.as_str())))
        .collect();
    let says = |lower: &[String], list: &[&str]| lower.iter().any(|w| list.contains(&w.as_str()));
    let in_region =
        |lower: &[String], region: &Region| lower.iter().any(|w| region.words.contains(w));

    let mut evidence: Vec<usize> = Vec::new();
    let mut described_side = None;
    if let Some(side) = ordered_side {
        let (own, own_short, other, other_side) = match side {
            Laterality::Left => ("left", "lt", "right", Laterality::Right),
            _ => ("right", "rt", "left", Laterality::Left),
        };
        if !has_word(text, &[own, own_short, "bilateral", "bilaterally"]) {
            let found: Vec<usize> = describing
                .iter()
                .filter(|(_, lower)| says(lower, &[other]))
                .filter(|(_, lower)| ordered_region.is_none_or(|r| in_region(lower, r)))
                .map(|&(i, _)| i)
                .collect();
            if !found.is_empty() {
                described_side = Some(other_side);
                evidence.extend(found);
            }
        }
    }
    let mut described_region = None;
    if let Some(region) = ordered_region
        && !words(text).any(|(_, w)| region.words.iter().any(|r| r.eq_ignore_ascii_case(w)))
    {
        let mentions = |other: &Region| {
            describing
                .iter()
                .map(|(_, lower)| lower.iter().filter(|w| other.words.contains(w)).count())
                .sum::<usize>()
        };
        let mut others = tables
            .regions
            .iter()
            .filter(|&other| other.name != region.name && mentions(other) >= 2);
        if let (Some(other), None) = (others.next(), others.next()) {
            described_region = Some(other);
            evidence.extend(
                describing
                    .iter()
                    .filter(|(_, lower)| in_region(lower, other))
                    .map(|&(i, _)| i),
            );
        }
    }
    if described_side.is_none() && described_region.is_none() {
        return None;
    }
    evidence.sort_unstable();
    evidence.dedup();
    evidence.truncate(MAX_EVIDENCE);
    let said: Vec<Said<'a>> = evidence
        .iter()
        .map(|&i| {
            let s = &inputs.sentences[i];
            Said {
                text: &text[s.start..s.end],
                start: s.start,
                end: s.end,
            }
        })
        .collect();
    // The findings stated in the evidence (on the described side, when the
    // side is what disagrees): the Observations the issue implicates.
    let within = |f: &Finding<'_>| said.iter().any(|s| s.start <= f.start && f.end <= s.end);
    let wanted =
        |f: &Finding<'_>| within(f) && described_side.is_none_or(|d| f.laterality == Some(d));
    let first_in = |impression: bool| {
        inputs
            .findings
            .iter()
            .position(|f| wanted(f) && (f.section == SectionKind::Impression) == impression)
    };
    Some(Discrepancy {
        kind: DiscrepancyKind::Order,
        term: said.first().map_or("", |s| s.text),
        findings_side: None,
        impression_side: None,
        findings_finding: first_in(false),
        impression_finding: first_in(true),
        against: Some(Against::Order {
            ordered: ordered.join("; "),
            ordered_side: described_side.and(ordered_side),
            described_side,
            ordered_region: described_region.and(ordered_region.map(|r| r.name.as_str())),
            described_region: described_region.map(|r| r.name.as_str()),
            evidence: said,
        }),
    })
}

/// At most this many sentences are kept as an order mismatch's evidence.
const MAX_EVIDENCE: usize = 3;

/// The ASCII words of `text` (runs of letters) with their byte offsets.
fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() && !bytes[at].is_ascii_alphabetic() {
            at += 1;
        }
        if at >= bytes.len() {
            return None;
        }
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_alphabetic() {
            at += 1;
        }
        Some((start, &text[start..at]))
    })
}

/// Whether `text` has one of `list` (lower case) as a whole word, in any case.
fn has_word(text: &str, list: &[&str]) -> bool {
    words(text).any(|(_, w)| list.iter().any(|l| l.eq_ignore_ascii_case(w)))
}

#[cfg(test)]
mod tests {
    use crate::{
        Against, AgeYears, DiscrepancyKind, DiscrepancyKinds, Laterality, ReportFacts, SectionKind,
        Sex, extract_with,
    };

    fn found(text: &str, facts: &ReportFacts) -> Vec<(DiscrepancyKind, String)> {
        extract_with(
            text,
            crate::shared_lexicon(),
            SectionKind::Other,
            DiscrepancyKinds::ALL,
            facts,
        )
        .discrepancies
        .into_iter()
        .filter(|d| d.against.is_some())
        .map(|d| (d.kind, d.term.to_owned()))
        .collect()
    }

    fn of_sex(sex: Sex) -> ReportFacts {
        ReportFacts {
            sex: Some(sex),
            ..ReportFacts::default()
        }
    }

    #[test]
    fn anatomy_of_the_other_sex_is_a_sex_mismatch() {
        let female = of_sex(Sex::Female);
        let male = of_sex(Sex::Male);
        for (text, facts) in [
            (
                "FINDINGS: The prostate is enlarged, 62 grams, with a median lobe.",
                &female,
            ),
            (
                "FINDINGS: A 2.1 cm hypoechoic mass in the right testis.",
                &female,
            ),
            ("IMPRESSION: Benign prostatic hyperplasia.", &female),
            ("FINDINGS: A 3 cm complex cyst in the left ovary.", &male),
            ("IMPRESSION: Intramural fibroid, 4 cm.", &male),
            ("FINDINGS: Endometrial thickening to 14 mm.", &male),
        ] {
            let kinds: Vec<_> = found(text, facts).into_iter().map(|(k, _)| k).collect();
            assert_eq!(kinds, [DiscrepancyKind::Sex], "{text}");
        }
        // One per report, implicating a finding of each section.
        let text = "FINDINGS: The prostate is enlarged, 62 grams.\nIMPRESSION: Enlarged prostate.";
        let out = extract_with(
            text,
            crate::shared_lexicon(),
            SectionKind::Other,
            DiscrepancyKinds::ALL,
            &female,
        );
        assert_eq!(out.discrepancies.len(), 1, "{:?}", out.discrepancies);
        let d = &out.discrepancies[0];
        assert!(d.findings_finding.is_some() && d.impression_finding.is_some());
    }

    #[test]
    fn the_same_sex_a_denied_or_past_finding_or_a_fetus_is_no_sex_mismatch() {
        let female = of_sex(Sex::Female);
        let male = of_sex(Sex::Male);
        for (text, facts) in [
            ("FINDINGS: A 3 cm complex cyst in the left ovary.", &female),
            ("FINDINGS: The prostate is enlarged, 62 grams.", &male),
            ("FINDINGS: No prostate enlargement.", &female),
            (
                "FINDINGS: Status post hysterectomy. No adnexal mass.",
                &male,
            ),
            ("FINDINGS: The uterus is surgically absent.", &male),
            ("INDICATION: Family history of prostate cancer.", &female),
            (
                "FINDINGS: Single live intrauterine pregnancy. The fetal testes are descended, with a small hydrocele.",
                &female,
            ),
            ("FINDINGS: Possible mass in the right testis.", &female),
        ] {
            assert!(
                found(text, facts).is_empty(),
                "{text}: {:?}",
                found(text, facts)
            );
        }
        // other/unknown sex: no fact, no check
        assert!(found("FINDINGS: Enlarged prostate.", &ReportFacts::default()).is_empty());
    }

    #[test]
    fn a_finding_impossible_at_the_patients_age_is_an_age_mismatch() {
        let adult = ReportFacts {
            age: Some(AgeYears {
                at_least: 54,
                at_most: 54,
            }),
            ..ReportFacts::default()
        };
        let child = ReportFacts {
            age: Some(AgeYears {
                at_least: 6,
                at_most: 7,
            }),
            ..ReportFacts::default()
        };
        let neonate = ReportFacts {
            age: Some(AgeYears {
                at_least: 0,
                at_most: 0,
            }),
            ..ReportFacts::default()
        };
        let gmh = "FINDINGS: Grade 2 germinal matrix hemorrhage on the left.";
        assert_eq!(found(gmh, &adult).len(), 1);
        assert!(found(gmh, &neonate).is_empty());
        let bph = "IMPRESSION: Benign prostatic hyperplasia.";
        assert_eq!(found(bph, &child)[0].0, DiscrepancyKind::Age);
        assert!(found(bph, &adult).is_empty());
        // an uncertain age (born in a year) is only trusted where it is sure
        let maybe_adult = ReportFacts {
            age: Some(AgeYears {
                at_least: 17,
                at_most: 18,
            }),
            ..ReportFacts::default()
        };
        assert!(found(bph, &maybe_adult).is_empty());
        // historical, or denied: no
        for text in [
            "FINDINGS: No germinal matrix hemorrhage.",
            "INDICATION: History of germinal matrix hemorrhage at birth.",
        ] {
            assert!(found(text, &adult).is_empty(), "{text}");
        }
    }

    fn ordered(name: &str) -> ReportFacts {
        ReportFacts {
            ordered: vec![name.to_owned()],
            ..ReportFacts::default()
        }
    }

    #[test]
    fn the_other_side_than_ordered_is_an_order_mismatch() {
        let text = "EXAM: MRI RIGHT KNEE WITHOUT CONTRAST.\nFINDINGS: Tear of the posterior horn of the medial meniscus of the right knee. Small joint effusion.\nIMPRESSION: Right medial meniscal tear.";
        let out = extract_with(
            text,
            crate::shared_lexicon(),
            SectionKind::Other,
            DiscrepancyKinds::ALL,
            &ordered("MR Knee left WO contrast"),
        );
        let order: Vec<_> = out
            .discrepancies
            .iter()
            .filter(|d| d.kind == DiscrepancyKind::Order)
            .collect();
        assert_eq!(order.len(), 1, "{:?}", out.discrepancies);
        let Some(Against::Order {
            ordered_side,
            described_side,
            evidence,
            ..
        }) = &order[0].against
        else {
            panic!("an order mismatch says what it was checked against");
        };
        assert_eq!(
            (*ordered_side, *described_side),
            (Some(Laterality::Left), Some(Laterality::Right))
        );
        assert!(evidence[0].text.contains("RIGHT KNEE"), "{evidence:?}");
        for said in evidence {
            let chars: String = text
                .chars()
                .skip(said.start)
                .take(said.end - said.start)
                .collect();
            assert_eq!(chars, said.text);
        }
    }

    #[test]
    fn both_sides_bilateral_or_a_comparison_is_no_order_mismatch() {
        for (order, text) in [
            // the ordered side is named
            (
                "MR Knee left",
                "EXAM: MRI LEFT KNEE.\nFINDINGS: Medial meniscal tear.",
            ),
            // both sides named: compared with the other knee
            (
                "XR Knee left",
                "FINDINGS: Moderate medial joint space narrowing of the left knee, worse than the right knee.",
            ),
            // a comparison with the other side only
            (
                "MR Knee left",
                "COMPARISON: MRI of the right knee 2019.\nFINDINGS: Medial meniscal tear of the knee.",
            ),
            // a bilateral order
            ("XR Knees bilateral", "FINDINGS: Right knee effusion."),
            // a bilateral report
            (
                "XR Knee left",
                "FINDINGS: Bilateral knee osteoarthritis, right greater.",
            ),
            // the ordered side abbreviated
            (
                "XR Knee left",
                "EXAM: LT KNEE 3 VIEWS.\nFINDINGS: Knee effusion. Right-sided patellar spur.",
            ),
            // the other side named outside the ordered region
            (
                "MR Knee left",
                "INDICATION: Right hip replacement.\nFINDINGS: Meniscal tear of the knee.",
            ),
        ] {
            let out = found(text, &ordered(order));
            assert!(out.is_empty(), "{order} / {text}: {out:?}");
        }
    }

    #[test]
    fn another_region_than_ordered_is_an_order_mismatch() {
        let text = "FINDINGS: Full-thickness tear of the supraspinatus tendon. Glenohumeral joint effusion.\nIMPRESSION: Rotator cuff tear.";
        let out = found(text, &ordered("MR Knee WO contrast"));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].0, DiscrepancyKind::Order);
        // a knee report that names the knee is not
        assert!(
            found(
                "FINDINGS: Knee joint effusion. Supraspinatus normal.",
                &ordered("MR Knee")
            )
            .is_empty()
        );
    }

    #[test]
    fn kinds_switched_off_are_not_looked_for() {
        let text = "FINDINGS: Moderate left pleural effusion.\nIMPRESSION: Moderate right pleural effusion. Enlarged prostate.";
        let facts = of_sex(Sex::Female);
        let all = extract_with(
            text,
            crate::shared_lexicon(),
            SectionKind::Other,
            DiscrepancyKinds::ALL,
            &facts,
        );
        let kinds: Vec<_> = all.discrepancies.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, [DiscrepancyKind::Laterality, DiscrepancyKind::Sex]);
        let none = extract_with(
            text,
            crate::shared_lexicon(),
            SectionKind::Other,
            DiscrepancyKinds {
                laterality: false,
                sex: false,
                ..DiscrepancyKinds::ALL
            },
            &facts,
        );
        assert!(none.discrepancies.is_empty(), "{:?}", none.discrepancies);
    }
}
