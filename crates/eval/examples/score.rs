//! Developer tool: the same output as `reportsplit eval <set> FILES...`.
//!
//! ```text
//! cargo run -p reportsplit-eval --example score -- negex ../shared/corpus/negex/negex_annotations_dev.tsv
//! cargo run -p reportsplit-eval --example score -- openi REPORTS.csv LABELS.csv --errors 20
//! ```

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
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--errors" {
            let value = args.next().ok_or("--errors needs a number")?;
            options.errors = value
                .parse()
                .map_err(|_| format!("--errors {value:?} is not a number"))?;
        } else {
            positional.push(arg);
        }
    }
    let Some((set, paths)) = positional.split_first() else {
        return Err("usage: score <negex|openi|mtsamples> FILES... [--errors N]".into());
    };
    let contents = paths
        .iter()
        .map(|path| std::fs::read_to_string(path).map_err(|error| format!("{path}: {error}")))
        .collect::<Result<Vec<_>, _>>()?;
    let report =
        run(set, &contents, &Lexicon::builtin(), &options).map_err(|error| error.to_string())?;
    Ok(report.to_string())
}
