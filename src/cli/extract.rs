//! `reportsplit extract`: the extractor on text or reports from a file or
//! stdin, offline. Glue between the input formats, the pure crates and
//! stdout; nothing here touches the network.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use reportsplit::input::{self, Input};
use reportsplit_fhir::map::RunInfo;
use reportsplit_fhir::plan::{self, Plan};
use reportsplit_fhir::text::{self, TextLimits};
use reportsplit_split::{Extraction, Lexicon, SectionKind};
use serde::Serialize;

#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// The input file, or `-` for standard input.
    #[arg(default_value = "-")]
    pub file: PathBuf,
    /// Print a single result as compact JSON instead of indented JSON.
    #[arg(long)]
    pub compact: bool,
    /// Interface-engine mode: read DiagnosticReports and print, per report, the
    /// transaction Bundle that `sync` would send (NDJSON). Works offline, so a report
    /// amended since an earlier run gets new Observations but the old ones are not
    /// superseded: use `sync` or `serve` for that. A report already tagged for its
    /// current text yields an empty transaction; one without text an OperationOutcome.
    #[arg(long)]
    pub fhir: bool,
    /// Read the code tables from this directory instead of the built-in ones
    /// (findings.tsv, body_sites.tsv, critical.tsv, sections.tsv; a missing file keeps
    /// the built-in table).
    #[arg(long, value_name = "DIR", env = "REPORTSPLIT_MAPPINGS")]
    pub mappings: Option<PathBuf>,
}

pub fn extract(args: &ExtractArgs) -> Result<ExitCode> {
    let lexicon = load_lexicon(args.mappings.as_deref())?;
    let content = read_input(&args.file)?;
    let inputs =
        input::parse(&content).with_context(|| format!("reading {}", args.file.display()))?;
    if args.fhir {
        return transactions(&inputs, &lexicon);
    }
    let many = inputs.len() != 1;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for input in &inputs {
        let result = extract_one(input, &lexicon)?;
        if many || args.compact {
            serde_json::to_writer(&mut out, &result)?;
        } else {
            serde_json::to_writer_pretty(&mut out, &result)?;
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn extract_one(input: &Input, lexicon: &Lexicon) -> serde_json::Result<serde_json::Value> {
    let report = match input {
        Input::Text(text) => {
            return ExtractOutput::extracted(None, None, text, lexicon, SectionKind::Other);
        }
        Input::Report(report) => report,
    };
    let reference = report["id"]
        .as_str()
        .map(|id| format!("DiagnosticReport/{id}"));
    match text::report_text(report, TextLimits::default()) {
        Ok(text) => ExtractOutput::extracted(
            reference,
            Some(&text.element),
            &text.text,
            lexicon,
            text.headerless,
        ),
        Err(reason) => serde_json::to_value(ExtractOutput {
            report: reference,
            source: None,
            skipped: Some(reason.to_string()),
            extraction: None,
        }),
    }
}

/// `extract --fhir`: one transaction Bundle (or OperationOutcome) per report, as NDJSON.
/// A report that cannot be planned does not stop the others; it makes the exit code 3.
fn transactions(inputs: &[Input], lexicon: &Lexicon) -> Result<ExitCode> {
    let run = RunInfo {
        extractor_version: env!("CARGO_PKG_VERSION").to_owned(),
        recorded: time::OffsetDateTime::now_utc(),
    };
    let mut failed = 0;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for input in inputs {
        let Input::Report(report) = input else {
            anyhow::bail!(
                "--fhir reads DiagnosticReports (JSON, Bundle or NDJSON), not plain text"
            );
        };
        let line = match text::report_text(report, TextLimits::default()) {
            Err(reason) => outcome("information", "informational", &reason.to_string()),
            Ok(text) => {
                let extraction =
                    reportsplit_split::extract_as(&text.text, lexicon, text.headerless);
                match plan::plan(report, &text, &extraction, &[], &run) {
                    Ok(Plan::Write(set)) => set.bundle,
                    Ok(Plan::Current) => {
                        serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": []})
                    }
                    Err(error) => {
                        failed += 1;
                        tracing::warn!(report = %reportsplit::run::apply::reference(report), "cannot plan the report: {error}");
                        outcome("error", "processing", &error.to_string())
                    }
                }
            }
        };
        serde_json::to_writer(&mut out, &line)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::from(super::exit::PARTIAL)
    } else {
        ExitCode::SUCCESS
    })
}

fn outcome(severity: &str, code: &str, diagnostics: &str) -> serde_json::Value {
    serde_json::json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]
    })
}

/// One line of `extract` output: the extraction, with where it came from.
#[derive(Serialize)]
struct ExtractOutput<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    extraction: Option<Extraction<'a>>,
}

impl<'a> ExtractOutput<'a> {
    fn extracted(
        report: Option<String>,
        source: Option<&'a str>,
        text: &'a str,
        lexicon: &'a Lexicon,
        headerless: SectionKind,
    ) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(ExtractOutput {
            report,
            source,
            skipped: None,
            extraction: Some(reportsplit_split::extract_as(text, lexicon, headerless)),
        })
    }
}

fn read_input(path: &Path) -> Result<String> {
    if path == Path::new("-") {
        let mut content = String::new();
        std::io::stdin()
            .read_to_string(&mut content)
            .context("reading standard input")?;
        Ok(content)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    }
}

fn load_lexicon(dir: Option<&Path>) -> Result<Lexicon> {
    let Some(dir) = dir else {
        return Ok(Lexicon::builtin());
    };
    reportsplit::tables::load_lexicon(dir)
        .with_context(|| format!("loading mappings from {}", dir.display()))
}
