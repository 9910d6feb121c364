//! `eval negex`: negation and temporality of an annotated condition in its
//! sentence, on the NegEx test kit format (see the crate docs).

use crate::labels::NegexKit;
use crate::score::{Counts, ScoreLine};
use crate::text::{find_term, one_line};
use crate::{Detail, EvalError, Options, Report};
use reportsplit_split::{Assertion, Temporality, assert_term};

const INPUT: &str = "negex annotations";
const SET: &str = "negex";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoldTemporality {
    Recent,
    Historical,
    Hypothetical,
}

#[derive(Debug)]
struct Row {
    kit_line: u64,
    file_line: u64,
    condition: String,
    sentence: String,
    negated: bool,
    temporality: GoldTemporality,
}

fn parse(content: &str) -> Result<Vec<Row>, EvalError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quoting(false)
        .has_headers(true)
        .flexible(true)
        .from_reader(content.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| EvalError::Input {
            input: INPUT,
            message: error.to_string(),
        })?;
        let file_line = record.position().map_or(0, csv::Position::line);
        let bad = |message: String| EvalError::Row {
            input: INPUT,
            line: file_line,
            message,
        };
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        if record.len() < 5 {
            return Err(bad(format!(
                "expected at least 5 tab-separated columns (line number, condition, sentence, negation, temporality), got {}",
                record.len()
            )));
        }
        let kit_line = record[0]
            .trim()
            .parse()
            .map_err(|_| bad(format!("line number {:?} is not a number", &record[0])))?;
        let negated = match record[3].trim().to_ascii_lowercase().as_str() {
            "negated" => true,
            "affirmed" | "possible" => false,
            other => {
                return Err(bad(format!(
                    "negation status {other:?} is not Negated/Affirmed/Possible"
                )));
            }
        };
        let temporality = match record[4].trim().to_ascii_lowercase().as_str() {
            "recent" => GoldTemporality::Recent,
            "historical" => GoldTemporality::Historical,
            "not particular" | "hypothetical" => GoldTemporality::Hypothetical,
            other => {
                return Err(bad(format!(
                    "temporality {other:?} is not Recent/Historical/Not particular/Hypothetical"
                )));
            }
        };
        rows.push(Row {
            kit_line,
            file_line,
            condition: record[1].to_string(),
            sentence: record[2].to_string(),
            negated,
            temporality,
        });
    }
    Ok(rows)
}

pub fn score(content: &str, options: &Options) -> Result<Report, EvalError> {
    let all_rows = parse(content)?;
    if all_rows.is_empty() {
        return Err(EvalError::Input {
            input: INPUT,
            message: "no annotated rows after the header".into(),
        });
    }
    let total = all_rows.len();
    let rows: Vec<Row> = all_rows
        .into_iter()
        .filter(|row| options.part.keeps(&row.kit_line.to_string()))
        .collect();
    if rows.is_empty() {
        return Err(EvalError::Input {
            input: INPUT,
            message: format!("no annotated rows in part {}", options.part),
        });
    }
    let kit = NegexKit::builtin()?;
    let mut negation = Counts::default();
    let mut radiology = Counts::default();
    let mut historical = Counts::default();
    let mut hypothetical = Counts::default();
    let (mut not_found, mut radiology_rows, mut kit_rows) = (0, 0, 0);
    let (mut negation_errors, mut temporality_errors) = (Vec::new(), Vec::new());
    for row in &rows {
        let (assertion, temporality) = match find_term(&row.sentence, &row.condition) {
            Some(range) => assert_term(&row.sentence, range.start, range.end),
            None => {
                not_found += 1;
                (Assertion::Present, Temporality::Current)
            }
        };
        let predicted_negated = assertion == Assertion::Absent;
        negation.add(row.negated, predicted_negated);
        historical.add(
            row.temporality == GoldTemporality::Historical,
            temporality == Temporality::Historical,
        );
        hypothetical.add(
            row.temporality == GoldTemporality::Hypothetical,
            temporality == Temporality::Hypothetical,
        );
        if let Some(is_radiology) = kit.radiology(row.kit_line, &row.condition) {
            kit_rows += 1;
            if is_radiology {
                radiology_rows += 1;
                radiology.add(row.negated, predicted_negated);
            }
        }
        let gold_temporality = match row.temporality {
            GoldTemporality::Recent => Temporality::Current,
            GoldTemporality::Historical => Temporality::Historical,
            GoldTemporality::Hypothetical => Temporality::Hypothetical,
        };
        let wrong_negation = row.negated != predicted_negated;
        let wrong_temporality = gold_temporality != temporality;
        let (listed, cap) = if wrong_negation {
            (&mut negation_errors, options.errors)
        } else {
            (
                &mut temporality_errors,
                if wrong_temporality { options.errors } else { 0 },
            )
        };
        if listed.len() < cap {
            listed.push(format!(
                "error negex kind={} line={} file_line={} gold={}/{:?} predicted={:?}/{:?} condition={:?} sentence={:?}",
                if wrong_negation { "negation" } else { "temporality" },
                row.kit_line,
                row.file_line,
                if row.negated { "negated" } else { "affirmed" },
                gold_temporality,
                assertion,
                temporality,
                one_line(&row.condition, 80),
                one_line(&row.sentence, 400),
            ));
        }
    }
    let n = rows.len();
    let mut details = vec![
        Detail::Note(format!("negex part={} rows={n} of={total}", options.part)),
        Detail::Note(format!(
            "negex rows={n} condition-not-in-sentence={not_found} kit-rows={kit_rows} radiology-rows={radiology_rows}"
        )),
        Detail::Score(
            ScoreLine::from_counts(SET, "historical", historical, n)
                .with_extra(historical.summary()),
        ),
        Detail::Score(
            ScoreLine::from_counts(SET, "hypothetical", hypothetical, n)
                .with_extra(hypothetical.summary()),
        ),
    ];
    if radiology_rows == 0 {
        details.push(Detail::Note(
            "negex negation-radiology: no row of this file is a known radiology row of the NegEx kit".into(),
        ));
    } else {
        details.push(Detail::Score(
            ScoreLine::from_counts(SET, "negation-radiology", radiology, radiology_rows)
                .with_extra(radiology.summary()),
        ));
    }
    details.push(Detail::Note(format!(
        "negex negation counts {}",
        negation.summary()
    )));
    Ok(Report {
        details,
        errors: negation_errors
            .into_iter()
            .chain(temporality_errors)
            .collect(),
        summary: ScoreLine::from_counts(SET, "negation", negation, n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "line number\tCondition\tsentence\tnegation_status\ttemporality\texperiencer\n";

    fn file(rows: &[&str]) -> String {
        let mut content = HEADER.to_string();
        for row in rows {
            content.push_str(row);
            content.push('\n');
        }
        content
    }

    #[test]
    fn parses_rows_and_gold_values() {
        let content = file(&[
            "7\tcough\tShe denies COUGH.\tNegated\tRecent\tPatient",
            "8\tasthma\tHistory of ASTHMA.\tAffirmed\tHistorical\tPatient",
            "9\tfever\tReturn for any FEVER.\tPossible\tNot particular\tPatient",
            "",
        ]);
        let rows = parse(&content).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[0].kit_line, rows[0].negated), (7, true));
        assert_eq!(rows[1].temporality, GoldTemporality::Historical);
        assert!(!rows[2].negated);
        assert_eq!(rows[2].temporality, GoldTemporality::Hypothetical);
        assert_eq!(rows[2].file_line, 4);
    }

    #[test]
    fn bad_rows_name_the_line() {
        let error = parse(&file(&["1\tcough\tNo COUGH.\tmaybe\tRecent\tPatient"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "negex annotations: line 2: negation status \"maybe\" is not Negated/Affirmed/Possible"
        );
        let error = parse(&file(&["1\tcough"])).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("negex annotations: line 2: expected at least 5")
        );
        let error = parse(&file(&["x\tcough\tNo COUGH.\tNegated\tRecent\tPatient"])).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("line number \"x\" is not a number")
        );
    }

    #[test]
    fn scores_every_row_and_prints_the_summary_last() {
        let content = file(&[
            "101\tpneumothorax\tThere is no PNEUMOTHORAX.\tNegated\tRecent\tPatient",
            "102\tpleural effusion\tSmall right PLEURAL EFFUSION.\tAffirmed\tRecent\tPatient",
            "103\tmissing words\tThe sentence lost its condition.\tAffirmed\tRecent\tPatient",
        ]);
        let report = score(&content, &Options::default()).unwrap();
        let text = report.to_string();
        let last = text.lines().last().unwrap();
        assert!(last.starts_with("negex negation precision="), "{last}");
        assert!(last.ends_with(" n=3"), "{last}");
        assert!(text.contains("condition-not-in-sentence=1"), "{text}");
        // Private lines are unknown to the kit table, so no radiology score.
        assert!(
            text.contains("no row of this file is a known radiology row"),
            "{text}"
        );
        assert!(report.errors.is_empty());
    }

    #[test]
    fn plain_negation_and_affirmation_are_scored_through_the_core() {
        let content = file(&[
            "1\tpneumothorax\tThere is no PNEUMOTHORAX.\tNegated\tRecent\tPatient",
            "2\tpleural effusion\tSmall right PLEURAL EFFUSION.\tAffirmed\tRecent\tPatient",
        ]);
        let report = score(&content, &Options::default()).unwrap();
        assert_eq!(
            report.summary.to_string(),
            "negex negation precision=1.000 recall=1.000 f1=1.000 n=2"
        );
    }

    #[test]
    fn errors_are_listed_only_when_asked() {
        // Gold says negated, and a sentence whose condition is missing is
        // scored as affirmed: always one misclassification.
        let content =
            file(&["5\tcough\tThe sentence lost its condition.\tNegated\tRecent\tPatient"]);
        let quiet = score(&content, &Options::default()).unwrap();
        assert!(!quiet.to_string().contains("sentence lost"));
        let loud = score(
            &content,
            &Options {
                errors: 5,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(loud.errors.len(), 1);
        assert!(
            loud.errors[0].contains(
                "kind=negation line=5 file_line=2 gold=negated/Current predicted=Present/Current"
            ),
            "{}",
            loud.errors[0]
        );
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(score(HEADER, &Options::default()).is_err());
    }
}
