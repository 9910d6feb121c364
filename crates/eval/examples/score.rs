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
//! scores with a directory's overlays of the code tables (mappings/README.md,
//! "Site overlays"), as `reportsplit --mappings` does.

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

/// The built-in tables with `dir`'s overlays of them (each file adds,
/// replaces or removes rows; a table the directory lacks stays built in).
fn load_tables(dir: &str) -> Result<Lexicon, String> {
    let read = |file: &str| {
        let path = std::path::Path::new(dir).join(file);
        match std::fs::read_to_string(&path) {
            Ok(content) => Ok(Some((path.display().to_string(), content))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(format!("{}: {error}", path.display())),
        }
    };
    let tables = [
        read("findings.tsv")?,
        read("body_sites.tsv")?,
        read("descriptors.tsv")?,
        read("assessments.tsv")?,
        read("critical.tsv")?,
        read("sections.tsv")?,
    ];
    let overlay = |index: usize| {
        tables[index]
            .as_ref()
            .map(|(name, content)| (name.as_str(), content.as_str()))
    };
    Lexicon::parse_with_site(
        reportsplit_split::MappingFiles::BUILTIN,
        reportsplit_split::SiteTables {
            findings: overlay(0),
            body_sites: overlay(1),
            descriptors: overlay(2),
            assessments: overlay(3),
            critical: overlay(4),
            sections: overlay(5),
            ..reportsplit_split::SiteTables::default()
        },
    )
    .map_err(|error| error.to_string())
}
