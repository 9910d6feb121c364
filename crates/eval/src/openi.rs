//! `eval openi`: document-level "finding present" for the 14 NegBio labels,
//! and finding + laterality against the Open-i MeSH indexing (see the crate
//! docs for every definition).

use crate::labels::{Concepts, LABELS14, MeshMap};
use crate::score::{Counts, ScoreLine, f1, ratio};
use crate::text::one_line;
use crate::{Detail, EvalError, Options, Report};
use reportsplit_split::{
    Assertion, Certainty, Extraction, Finding, Hedge, Laterality, Lexicon, Temporality, extract,
};
use std::collections::HashMap;

const REPORTS: &str = "openi reports";
const LABELS: &str = "openi labels";
const SET: &str = "openi";

struct OpeniReport {
    uid: String,
    mesh: String,
    findings: String,
    impression: String,
}

impl OpeniReport {
    /// The report as a server would carry it: each part under its header.
    fn text(&self) -> String {
        let mut text = String::with_capacity(self.findings.len() + self.impression.len() + 26);
        for (header, body) in [
            ("FINDINGS", &self.findings),
            ("IMPRESSION", &self.impression),
        ] {
            if !body.trim().is_empty() {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(header);
                text.push_str(": ");
                text.push_str(body.trim());
            }
        }
        text
    }
}

fn reader(content: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(content.as_bytes())
}

fn column(
    headers: &csv::StringRecord,
    input: &'static str,
    name: &'static str,
) -> Result<usize, EvalError> {
    headers
        .iter()
        .position(|header| header.trim().eq_ignore_ascii_case(name))
        .ok_or(EvalError::MissingColumn {
            input,
            column: name,
        })
}

fn csv_error(input: &'static str, error: &csv::Error) -> EvalError {
    match error.position() {
        Some(position) => EvalError::Row {
            input,
            line: position.line(),
            message: error.to_string(),
        },
        None => EvalError::Input {
            input,
            message: error.to_string(),
        },
    }
}

fn parse_reports(content: &str) -> Result<Vec<OpeniReport>, EvalError> {
    let mut reader = reader(content);
    let headers = reader
        .headers()
        .map_err(|error| csv_error(REPORTS, &error))?
        .clone();
    let uid = column(&headers, REPORTS, "uid")?;
    let mesh = column(&headers, REPORTS, "MeSH")?;
    let findings = column(&headers, REPORTS, "findings")?;
    let impression = column(&headers, REPORTS, "impression")?;
    reader
        .records()
        .map(|record| {
            let record = record.map_err(|error| csv_error(REPORTS, &error))?;
            Ok(OpeniReport {
                uid: record[uid].trim().to_string(),
                mesh: record[mesh].to_string(),
                findings: record[findings].to_string(),
                impression: record[impression].to_string(),
            })
        })
        .collect()
}

/// `CXR<uid>` → the 14 gold labels, in [`LABELS14`] order.
fn parse_labels(content: &str) -> Result<HashMap<String, [bool; 14]>, EvalError> {
    let mut reader = reader(content);
    let headers = reader
        .headers()
        .map_err(|error| csv_error(LABELS, &error))?
        .clone();
    let filename = column(&headers, LABELS, "filename")?;
    let mut columns = [0; 14];
    for (slot, label) in columns.iter_mut().zip(LABELS14) {
        *slot = column(&headers, LABELS, label)?;
    }
    let mut labels = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|error| csv_error(LABELS, &error))?;
        let line = record.position().map_or(0, csv::Position::line);
        let mut gold = [false; 14];
        for ((value, column), label) in gold.iter_mut().zip(columns).zip(LABELS14) {
            *value = match record[column].trim() {
                "1" | "1.0" => true,
                "0" | "0.0" | "" => false,
                other => {
                    return Err(EvalError::Row {
                        input: LABELS,
                        line,
                        message: format!("{label} is {other:?}, expected 0 or 1"),
                    });
                }
            };
        }
        let key = record[filename].trim().to_string();
        if labels.insert(key.clone(), gold).is_some() {
            return Err(EvalError::Row {
                input: LABELS,
                line,
                message: format!("{key} is labelled twice"),
            });
        }
    }
    Ok(labels)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Side {
    Left,
    Right,
    Bilateral,
}

impl From<Laterality> for Side {
    fn from(laterality: Laterality) -> Side {
        match laterality {
            Laterality::Left => Side::Left,
            Laterality::Right => Side::Right,
            Laterality::Bilateral => Side::Bilateral,
        }
    }
}

type Item = (usize, Option<Side>);

/// Gold MeSH items of one report, and the headings that mapped to nothing.
fn mesh_items<'a>(
    mesh: &'a str,
    map: &MeshMap,
    unmapped: &mut HashMap<&'a str, usize>,
) -> Vec<Item> {
    let mut items = Vec::new();
    for term in mesh
        .split(';')
        .map(str::trim)
        .filter(|term| !term.is_empty())
    {
        let mut parts = term.split('/').map(str::trim);
        let heading = parts.next().unwrap_or_default();
        let qualifiers: Vec<&str> = parts.collect();
        if heading.eq_ignore_ascii_case("normal") || heading.eq_ignore_ascii_case("No Indexing") {
            continue;
        }
        let Some(concept) = map.concept(heading, &qualifiers) else {
            *unmapped.entry(heading).or_default() += 1;
            continue;
        };
        let has = |side: &str| qualifiers.iter().any(|q| q.eq_ignore_ascii_case(side));
        let side = match (has("right"), has("left"), has("bilateral")) {
            (_, _, true) | (true, true, _) => Some(Side::Bilateral),
            (true, false, false) => Some(Side::Right),
            (false, true, false) => Some(Side::Left),
            (false, false, false) => None,
        };
        items.push((concept, side));
    }
    items.sort_unstable();
    items.dedup();
    items
}

/// Which hedged (`possible`) findings count as positive mentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counting {
    /// Only findings asserted present.
    PresentOnly,
    /// Present, or possible the way the Open-i indexers coded hedged
    /// findings (crate docs): a likelihood stated with high certainty
    /// ("probable", "compatible with") or one of two alternatives
    /// ("atelectasis versus scarring"). The main lines.
    Indexed,
    /// Present, or possible with high certainty whatever the kind of hedge
    /// ("concerning for" too): the certainty grade alone.
    PresentOrHighCertainty,
    /// Present, or possible at any certainty.
    AnyPossible,
}

/// Whether a finding counts as a positive mention for document labels:
/// only findings of this examination (current), never a history or a
/// question.
fn asserted(finding: &Finding<'_>, counting: Counting) -> bool {
    let positive = match finding.assertion {
        Assertion::Present => true,
        Assertion::Possible => match counting {
            Counting::PresentOnly => false,
            Counting::Indexed => match finding.hedge {
                Some(Hedge::Alternative) => true,
                Some(Hedge::Probability) => finding.certainty == Some(Certainty::High),
                _ => false,
            },
            Counting::PresentOrHighCertainty => finding.certainty == Some(Certainty::High),
            Counting::AnyPossible => true,
        },
        Assertion::Absent => false,
    };
    positive && finding.temporality != Temporality::Hypothetical
}

/// Concepts mentioned positively, and (concept, side) items, of one extraction.
fn predicted(extraction: &Extraction<'_>, concepts: &Concepts, counting: Counting) -> Vec<Item> {
    let mut items: Vec<Item> = extraction
        .findings
        .iter()
        .filter(|finding| asserted(finding, counting))
        .filter_map(|finding| {
            let concept = concepts.of_code(&finding.code?.code)?;
            Some((concept, finding.laterality.map(Side::from)))
        })
        .collect();
    items.sort_unstable();
    items.dedup();
    items
}

fn has_concept(items: &[Item], concept: usize) -> bool {
    items.iter().any(|(known, _)| *known == concept)
}

/// Item-level matching of predicted against gold MeSH items (crate docs).
#[derive(Debug, Default, Clone, Copy)]
struct MeshScore {
    gold_items: usize,
    predicted_items: usize,
    matched_gold: usize,
    matched_predicted: usize,
}

impl MeshScore {
    fn add(&mut self, gold: &[Item], predicted: &[Item]) {
        self.gold_items += gold.len();
        self.predicted_items += predicted.len();
        self.matched_gold += gold
            .iter()
            .filter(|g| predicted.iter().any(|p| compatible(g, p)))
            .count();
        self.matched_predicted += predicted
            .iter()
            .filter(|p| gold.iter().any(|g| compatible(g, p)))
            .count();
    }

    fn line(&self, metric: &str, n: usize) -> ScoreLine {
        let precision = ratio(self.matched_predicted, self.predicted_items);
        let recall = ratio(self.matched_gold, self.gold_items);
        ScoreLine {
            set: SET,
            metric: metric.into(),
            precision,
            recall,
            f1: f1(precision, recall),
            n,
            extra: format!(
                "matched-predicted={}/{} matched-gold={}/{}",
                self.matched_predicted, self.predicted_items, self.matched_gold, self.gold_items
            ),
        }
    }
}

/// The items without their sides, for the concept-only MeSH score.
fn without_sides(items: &[Item]) -> Vec<Item> {
    let mut concepts: Vec<Item> = items.iter().map(|(concept, _)| (*concept, None)).collect();
    concepts.dedup();
    concepts
}

fn describe(items: &[&Item], concepts: &Concepts) -> String {
    let described: Vec<String> = items
        .iter()
        .map(|(concept, side)| match side {
            Some(side) => format!("{}/{side:?}", concepts.name(*concept)),
            None => concepts.name(*concept).to_string(),
        })
        .collect();
    format!("[{}]", described.join(","))
}

fn compatible(gold: &Item, predicted: &Item) -> bool {
    gold.0 == predicted.0 && (gold.1.is_none() || gold.1 == predicted.1)
}

/// One misclassified label, with the findings of that concept as evidence.
fn label_error(
    report: &OpeniReport,
    extraction: &Extraction<'_>,
    concepts: &Concepts,
    label: usize,
    gold: bool,
) -> String {
    let evidence: Vec<String> = extraction
        .findings
        .iter()
        .filter(|finding| finding.code.and_then(|code| concepts.of_code(&code.code)) == Some(label))
        .map(|finding| {
            format!(
                "[{:?}/{:?} term={:?} in {:?}]",
                finding.assertion,
                finding.temporality,
                finding.term,
                one_line(finding.text, 200)
            )
        })
        .collect();
    let evidence = if evidence.is_empty() {
        format!(
            "no finding coded {}; text={:?}",
            concepts.name(label),
            one_line(&report.text(), 600)
        )
    } else {
        evidence.join(" ")
    };
    format!(
        "error openi uid={} label={} gold={} predicted={} {}",
        report.uid,
        concepts.name(label),
        u8::from(gold),
        u8::from(!gold),
        evidence
    )
}

pub fn score(
    reports: &str,
    labels: &str,
    lexicon: &Lexicon,
    options: &Options,
) -> Result<Report, EvalError> {
    let reports = parse_reports(reports)?;
    let total = reports.len();
    let reports: Vec<OpeniReport> = reports
        .into_iter()
        .filter(|report| options.part.keeps(&report.uid))
        .collect();
    let mut gold_labels = parse_labels(labels)?;
    // A label row belongs to the part of its report (`CXR<uid>` → uid).
    gold_labels.retain(|filename, _| {
        options
            .part
            .keeps(filename.strip_prefix("CXR").unwrap_or(filename))
    });
    let concepts = Concepts::builtin()?;
    let mesh_map = MeshMap::builtin(&concepts)?;
    let label_concepts: Vec<usize> = LABELS14
        .iter()
        .map(|label| {
            concepts.index(label).ok_or_else(|| EvalError::Input {
                input: "concepts.tsv",
                message: format!("label {label} has no codes"),
            })
        })
        .collect::<Result<_, _>>()?;

    let mut per_label = [Counts::default(); 14];
    let mut present_only = Counts::default();
    let mut possible_as_present = Counts::default();
    let mut high_certainty = Counts::default();
    let (mut mesh, mut mesh_concepts) = (MeshScore::default(), MeshScore::default());
    let (mut mesh_present_only, mut mesh_any_possible) =
        (MeshScore::default(), MeshScore::default());
    let mut mesh_errors = Vec::new();
    let mut unmapped: HashMap<&str, usize> = HashMap::new();
    let mut without_labels = 0;
    // Reports whose label differs from what their own MeSH terms say.
    let mut gold_disagreements = [0usize; 14];
    let mut joined = 0;
    let mut errors = Vec::new();
    let mut actions = crate::ActionCounts::default();
    for report in &reports {
        let Some(gold) = gold_labels.get(&format!("CXR{}", report.uid)) else {
            without_labels += 1;
            continue;
        };
        joined += 1;
        let text = report.text();
        let extraction = extract(&text, lexicon);
        actions.add(&extraction);
        let items = predicted(&extraction, &concepts, Counting::Indexed);
        let strict_items = predicted(&extraction, &concepts, Counting::PresentOnly);
        let lenient_items = predicted(&extraction, &concepts, Counting::AnyPossible);
        let graded_items = predicted(&extraction, &concepts, Counting::PresentOrHighCertainty);
        for (index, &concept) in label_concepts.iter().enumerate() {
            let predicted_present = has_concept(&items, concept);
            per_label[index].add(gold[index], predicted_present);
            present_only.add(gold[index], has_concept(&strict_items, concept));
            possible_as_present.add(gold[index], has_concept(&lenient_items, concept));
            high_certainty.add(gold[index], has_concept(&graded_items, concept));
            if gold[index] != predicted_present && errors.len() < options.errors {
                errors.push(label_error(
                    report,
                    &extraction,
                    &concepts,
                    concept,
                    gold[index],
                ));
            }
        }
        let gold_mesh = mesh_items(&report.mesh, &mesh_map, &mut unmapped);
        for (index, &concept) in label_concepts.iter().enumerate() {
            if has_concept(&gold_mesh, concept) != gold[index] {
                gold_disagreements[index] += 1;
            }
        }
        mesh.add(&gold_mesh, &items);
        mesh_present_only.add(&gold_mesh, &strict_items);
        mesh_any_possible.add(&gold_mesh, &lenient_items);
        mesh_concepts.add(&without_sides(&gold_mesh), &without_sides(&items));
        let missed: Vec<&Item> = gold_mesh
            .iter()
            .filter(|g| !items.iter().any(|p| compatible(g, p)))
            .collect();
        let extra: Vec<&Item> = items
            .iter()
            .filter(|p| !gold_mesh.iter().any(|g| compatible(g, p)))
            .collect();
        if (!missed.is_empty() || !extra.is_empty()) && mesh_errors.len() < options.errors {
            mesh_errors.push(format!(
                "error openi-mesh uid={} missed={} not-in-mesh={} mesh={:?}",
                report.uid,
                describe(&missed, &concepts),
                describe(&extra, &concepts),
                report.mesh
            ));
        }
    }
    if joined == 0 {
        return Err(EvalError::Input {
            input: LABELS,
            message: "no report uid matched a label row (filename CXR<uid>)".into(),
        });
    }

    let mut details = vec![
        Detail::Note(format!(
            "openi part={} rows={} of={total}",
            options.part,
            reports.len()
        )),
        Detail::Note(format!(
            "openi reports={} labelled={} joined={joined} reports-without-labels={without_labels} labels-without-reports={}",
            reports.len(),
            gold_labels.len(),
            gold_labels.len().saturating_sub(joined),
        )),
        Detail::Note(actions.line("openi")),
    ];
    let mut micro = Counts::default();
    let mut macro_f1 = 0.0;
    for (label, counts) in LABELS14.iter().zip(per_label) {
        micro.merge(counts);
        macro_f1 += counts.f1();
        details.push(Detail::Score(
            ScoreLine::from_counts(SET, *label, counts, joined).with_extra(format!(
                "{} support={}",
                counts.summary(),
                counts.tp + counts.fn_
            )),
        ));
    }
    // A label whose gold column has no positive at all can only add false
    // positives (on the Open-i dev set: Hernia, though MeSH indexes hiatal
    // hernias); this line shows the micro score without such labels.
    let mut supported = Counts::default();
    let mut supported_labels = 0;
    for counts in per_label.iter().filter(|counts| counts.tp + counts.fn_ > 0) {
        supported.merge(*counts);
        supported_labels += 1;
    }
    details.push(Detail::Score(
        ScoreLine::from_counts(
            SET,
            format!("labels-with-gold-positives({supported_labels})"),
            supported,
            joined,
        )
        .with_extra(supported.summary()),
    ));
    details.push(Detail::Note(format!(
        "openi labels14-macro f1={:.3} micro {}",
        macro_f1 / LABELS14.len() as f64,
        micro.summary()
    )));
    details.push(Detail::Score(
        ScoreLine::from_counts(SET, "labels14-present-only", present_only, joined)
            .with_extra(present_only.summary()),
    ));
    details.push(Detail::Score(
        ScoreLine::from_counts(
            SET,
            "labels14-present-or-high-certainty",
            high_certainty,
            joined,
        )
        .with_extra(high_certainty.summary()),
    ));
    details.push(Detail::Score(
        ScoreLine::from_counts(
            SET,
            "labels14-possible-as-present",
            possible_as_present,
            joined,
        )
        .with_extra(possible_as_present.summary()),
    ));
    let disagreements: Vec<String> = LABELS14
        .iter()
        .zip(gold_disagreements)
        .filter(|(_, count)| *count > 0)
        .map(|(label, count)| format!("{label}:{count}"))
        .collect();
    details.push(Detail::Note(format!(
        "openi labels14-vs-mesh reports whose gold label differs from their MeSH terms as mesh.tsv maps them: {}",
        if disagreements.is_empty() { "none".to_string() } else { disagreements.join(",") }
    )));
    let mut unmapped: Vec<(&str, usize)> = unmapped.into_iter().collect();
    unmapped.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = unmapped
        .iter()
        .take(12)
        .map(|(heading, count)| format!("{heading}:{count}"))
        .collect();
    details.push(Detail::Note(format!(
        "openi mesh unmapped-terms={} top-unmapped={}",
        unmapped.iter().map(|(_, count)| count).sum::<usize>(),
        top.join(",")
    )));
    details.push(Detail::Score(
        mesh_concepts.line("mesh-concept-only", joined),
    ));
    details.push(Detail::Score(
        mesh_present_only.line("mesh-present-only", joined),
    ));
    details.push(Detail::Score(
        mesh_any_possible.line("mesh-possible-as-present", joined),
    ));
    details.push(Detail::Score(mesh.line("mesh", joined)));
    errors.extend(mesh_errors);
    Ok(Report {
        details,
        errors,
        summary: ScoreLine::from_counts(SET, "labels14", micro, joined),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL_HEADER: &str = "filename,Atelectasis,Cardiomegaly,Effusion,Infiltration,Mass,Nodule,Pneumonia,Pneumothorax,Consolidation,Edema,Emphysema,Fibrosis,Pleural_Thickening,Hernia,normal\n";

    fn reports_csv() -> String {
        "uid,MeSH,Problems,image,indication,comparison,findings,impression\n\
         10,Cardiomegaly/mild;Pleural Effusion/right,x,PA,Dyspnea.,None.,\"Mild cardiomegaly. Small right pleural effusion, no pneumothorax.\",Cardiomegaly with right effusion.\n\
         11,normal,normal,PA,Cough.,None.,The lungs are clear.,No acute disease.\n\
         12,Lung/hilum,x,PA,Cough.,None.,,Unlabelled report.\n"
            .to_string()
    }

    fn labels_csv() -> String {
        format!(
            "{LABEL_HEADER}CXR10,0,1,1,0,0,0,0,0,0,0,0,0,0,0,0\nCXR11,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1\n"
        )
    }

    #[test]
    fn report_text_puts_each_part_under_its_header() {
        let reports = parse_reports(&reports_csv()).unwrap();
        assert_eq!(reports.len(), 3);
        assert_eq!(
            reports[1].text(),
            "FINDINGS: The lungs are clear.\nIMPRESSION: No acute disease."
        );
        assert_eq!(reports[2].text(), "IMPRESSION: Unlabelled report.");
    }

    #[test]
    fn labels_parse_and_reject_bad_values() {
        let labels = parse_labels(&labels_csv()).unwrap();
        assert_eq!(labels["CXR10"][1..3], [true, true]);
        assert!(!labels["CXR11"].iter().any(|&value| value));
        let bad = format!("{LABEL_HEADER}CXR1,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n");
        let error = parse_labels(&bad).unwrap_err().to_string();
        assert_eq!(
            error,
            "openi labels: line 2: Atelectasis is \"2\", expected 0 or 1"
        );
        let error = parse_labels("filename,Atelectasis\nCXR1,0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "openi labels: no column \"Cardiomegaly\" in the header"
        );
    }

    #[test]
    fn mesh_terms_give_concept_and_side() {
        let concepts = Concepts::builtin().unwrap();
        let map = MeshMap::builtin(&concepts).unwrap();
        let mut unmapped = HashMap::new();
        let items = mesh_items(
            "Pleural Effusion/right/small;Opacity/lung/base/left/right;Cardiomegaly/mild;Lung/hilum;normal;Cardiomegaly",
            &map,
            &mut unmapped,
        );
        let effusion = concepts.index("Effusion").unwrap();
        let opacity = concepts.index("Opacity").unwrap();
        let cardiomegaly = concepts.index("Cardiomegaly").unwrap();
        let mut expected = vec![
            (effusion, Some(Side::Right)),
            (opacity, Some(Side::Bilateral)),
            (cardiomegaly, None),
        ];
        expected.sort_unstable();
        assert_eq!(items, expected);
        assert_eq!(unmapped.get("Lung"), Some(&1));
        assert!(!unmapped.contains_key("normal"));
    }

    #[test]
    fn sides_match_when_gold_states_none_or_the_same() {
        assert!(compatible(&(1, None), &(1, Some(Side::Left))));
        assert!(compatible(&(1, Some(Side::Left)), &(1, Some(Side::Left))));
        assert!(!compatible(&(1, Some(Side::Left)), &(1, Some(Side::Right))));
        assert!(!compatible(&(1, Some(Side::Left)), &(1, None)));
        assert!(!compatible(&(1, None), &(2, None)));
    }

    #[test]
    fn mesh_score_matches_items_and_separates_sides() {
        let gold = [(1, Some(Side::Left)), (2, None)];
        let predicted = [(1, Some(Side::Right)), (2, Some(Side::Left)), (3, None)];
        let mut with_sides = MeshScore::default();
        with_sides.add(&gold, &predicted);
        // Gold 2 (no side) matches; gold 1/left does not match 1/right.
        assert_eq!((with_sides.matched_gold, with_sides.gold_items), (1, 2));
        assert_eq!(
            (with_sides.matched_predicted, with_sides.predicted_items),
            (1, 3)
        );
        let mut concepts_only = MeshScore::default();
        concepts_only.add(&without_sides(&gold), &without_sides(&predicted));
        assert_eq!(
            (concepts_only.matched_gold, concepts_only.matched_predicted),
            (2, 2)
        );
        assert_eq!(
            concepts_only.line("mesh-concept-only", 1).to_string(),
            "openi mesh-concept-only precision=0.667 recall=1.000 f1=0.800 n=1 matched-predicted=2/3 matched-gold=2/2"
        );
    }

    /// Whether the finding `term` of `sentence` counts under `counting`.
    fn counted(sentence: &str, term: &str, counting: Counting) -> bool {
        let lexicon = Lexicon::builtin();
        let extraction = extract(sentence, &lexicon);
        let finding = extraction
            .findings
            .iter()
            .find(|finding| finding.term.eq_ignore_ascii_case(term))
            .unwrap_or_else(|| panic!("no {term:?} in {sentence:?}"));
        asserted(finding, counting)
    }

    #[test]
    fn hedged_findings_count_by_kind_and_hypothetical_never() {
        use Counting::{AnyPossible, Indexed, PresentOnly, PresentOrHighCertainty};
        let all = [PresentOnly, Indexed, PresentOrHighCertainty, AnyPossible];
        // (sentence, term, counted under each of `all`)
        let cases = [
            ("Right lower lobe pneumonia.", "pneumonia", [true; 4]),
            ("History of pneumonia.", "pneumonia", [true; 4]),
            ("No pneumothorax.", "pneumothorax", [false; 4]),
            ("Rule out pneumonia.", "pneumonia", [false; 4]),
            (
                "Probable pneumonia.",
                "pneumonia",
                [false, true, true, true],
            ),
            (
                "Opacity compatible with atelectasis.",
                "atelectasis",
                [true, true, true, true],
            ),
            (
                "Bibasilar atelectasis versus scarring.",
                "atelectasis",
                [false, true, false, true],
            ),
            (
                "Opacity compatible with scarring or atelectasis.",
                "atelectasis",
                [false, true, false, true],
            ),
            (
                "Opacity concerning for pneumonia.",
                "pneumonia",
                [false, false, true, true],
            ),
            (
                "Opacity may represent atelectasis versus pneumonia.",
                "pneumonia",
                [false, false, false, true],
            ),
            (
                "Pneumothorax cannot be excluded.",
                "pneumothorax",
                [false, false, false, true],
            ),
        ];
        for (sentence, term, expected) in cases {
            let got = all.map(|counting| counted(sentence, term, counting));
            assert_eq!(got, expected, "{sentence}");
        }
    }

    #[test]
    fn scores_joined_reports_and_prints_the_summary_last() {
        let report = score(
            &reports_csv(),
            &labels_csv(),
            &Lexicon::builtin(),
            &Options::default(),
        )
        .unwrap();
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        let last = lines.last().unwrap();
        assert!(last.starts_with("openi labels14 precision="), "{last}");
        assert!(last.ends_with(" n=2"), "{last}");
        assert!(
            lines[lines.len() - 2].starts_with("openi mesh precision="),
            "{text}"
        );
        assert!(text.contains("joined=2 reports-without-labels=1"), "{text}");
        assert!(text.contains("openi Cardiomegaly precision="), "{text}");
        assert!(text.contains("support=1"), "{text}");
        assert!(
            text.contains("openi labels-with-gold-positives(2) precision="),
            "{text}"
        );
    }

    #[test]
    fn no_join_is_an_error() {
        let labels = format!("{LABEL_HEADER}CXR99,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1\n");
        let error = score(
            &reports_csv(),
            &labels,
            &Lexicon::builtin(),
            &Options::default(),
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("no report uid matched"),
            "{error}"
        );
    }
}
