//! Developer tool: the same output as `reportsplit eval <set> FILES...`.
//!
//! ```text
//! cargo run -p reportsplit-eval --example score -- negex ../shared/corpus/negex/negex_annotations_dev.tsv
//! cargo run -p reportsplit-eval --example score -- openi REPORTS.csv LABELS.csv --errors 20
//! cargo run -p reportsplit-eval --example score -- reports crates/eval/devset/dev-a.json --errors 10
//! cargo run -p reportsplit-eval --example score -- negex FILE --part tune
//! ```
//!
//! `--part tune|holdout|all` scores the tuning three quarters, the holdout
//! quarter, or every row (the default); see the crate docs. `--mappings DIR`
//! scores with a directory's code tables instead of the built-in ones (each
//! table the directory lacks stays built in), as `reportsplit --mappings` does.

use reportsplit_eval::{Options, run};
use reportsplit_split::Lexicon;
use std::process::ExitCode;

fn main() -> ExitCode {
    match score(std::env::args().skip(1).collect()) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("score: {message}");
            ExitCode::from(2)
        }
    }
}

fn score(args: Vec<String>) -> Result<String, String> {
    let mut options = Options::default();
    let mut positional = Vec::new();
    let mut mappings = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--errors" {
            let value = args.next().ok_or("--errors needs a number")?;
            options.errors = value
                .parse()
                .map_err(|_| format!("--errors {value:?} is not a number"))?;
        } else if arg == "--mappings" {
            mappings = Some(args.next().ok_or("--mappings needs a directory")?);
        } else if arg == "--part" {
            let value = args.next().ok_or("--part needs tune, holdout or all")?;
            options.part = value.parse()?;
        } else {
            positional.push(arg);
        }
    }
    let Some((set, paths)) = positional.split_first() else {
        return Err("usage: score <reports|negex|openi|mtsamples> FILES... [--errors N] [--part tune|holdout|all]".into());
    };
    let contents = paths
        .iter()
        .map(|path| std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}")))
        .collect::<Result<Vec<_>, _>>()?;
    let lexicon = match mappings {
        Some(dir) => load_tables(&dir)?,
        None => Lexicon::builtin(),
    };
    let report = run(set, &contents, &lexicon, &options).map_err(|error| error.to_string())?;
    Ok(report.to_string())
}

/// The lexicon from `dir`'s tables, each missing one built in.
fn load_tables(dir: &str) -> Result<Lexicon, String> {
    let builtin = reportsplit_split::MappingFiles::BUILTIN;
    let read = |file: &str, fallback: (&'static str, &'static str)| {
        let path = std::path::Path::new(dir).join(file);
        match std::fs::read_to_string(&path) {
            Ok(content) => Ok((path.display().to_string(), content)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Ok((fallback.0.to_string(), fallback.1.to_string()))
            }
            Err(error) => Err(format!("{}: {error}", path.display())),
        }
    };
    let findings = read("findings.tsv", builtin.findings)?;
    let body_sites = read("body_sites.tsv", builtin.body_sites)?;
    let descriptors = read("descriptors.tsv", builtin.descriptors)?;
    let assessments = read("assessments.tsv", builtin.assessments)?;
    let critical = read("critical.tsv", builtin.critical)?;
    let sections = read("sections.tsv", builtin.sections)?;
    Lexicon::parse(reportsplit_split::MappingFiles {
        findings: (&findings.0, &findings.1),
        body_sites: (&body_sites.0, &body_sites.1),
        descriptors: (&descriptors.0, &descriptors.1),
        assessments: (&assessments.0, &assessments.1),
        critical: (&critical.0, &critical.1),
        sections: (&sections.0, &sections.1),
    })
    .map_err(|error| error.to_string())
}
