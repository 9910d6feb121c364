//! The `reportsplit` command: a thin shell over the library (see ARCHITECTURE.md).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use reportsplit::input::{self, Input};
use reportsplit_fhir::map::RunInfo;
use reportsplit_fhir::plan::{self, Plan};
use reportsplit_fhir::text::{self, TextLimits};
use reportsplit_split::{Extraction, Lexicon, SectionKind};
use serde::Serialize;

const EXAMPLES: &str = "\
Examples:
  reportsplit extract report.txt                 split a plain-text report, print JSON
  reportsplit extract - < reports.ndjson          split NDJSON DiagnosticReports from stdin
  reportsplit sync --config config/site.toml --once
                                                 one incremental pass (the cron form)
  reportsplit sync --config config/site.toml --once --dry-run
                                                 print the transactions, write nothing
  reportsplit sync --config config/site.toml --every 5m
                                                 the same as a daemon (SIGTERM stops it cleanly)
  reportsplit backfill -c site.toml --since 2015-01-01 --until 2026-01-01 --concurrency 8
                                                 resumable backfill of a date range
  reportsplit reprocess -c site.toml --dead-letter state/dead-letter.ndjson
                                                 retry the reports that failed
  reportsplit serve -c site.toml --listen 127.0.0.1:8080
                                                 $enrich, Subscription endpoint, /healthz, /metrics
  reportsplit eval negex negex_annotations.tsv   score negation on the NegEx kit
  REPORTSPLIT_FHIR_URL=http://127.0.0.1:8080/fhir reportsplit sync -c site.toml --once";

/// Splits FHIR R4 radiology DiagnosticReports into sections, impression items
/// and coded findings, and writes them back as Observations linked to the report.
#[derive(Debug, Parser)]
#[command(name = "reportsplit", version, after_help = EXAMPLES)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "REPORTSPLIT_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter (tracing's EnvFilter syntax, e.g. `info` or `reportsplit=debug`).
    /// No level logs report text, patient data or credentials.
    #[arg(long, global = true, default_value = "info", env = "REPORTSPLIT_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Split report text and print the extraction as JSON (NDJSON for several reports).
    ///
    /// Reads plain text, a DiagnosticReport, a Bundle of DiagnosticReports, or NDJSON of
    /// them. The output is described in docs/extract-output.md.
    Extract(ExtractArgs),
    /// Incremental sync: pull new and changed DiagnosticReports, write coded Observations back.
    Sync(reportsplit::sync::SyncArgs),
    /// Enrich every report of a past range, window by window, resumably and in parallel;
    /// reports that fail go to a dead-letter file (docs/operations.md).
    Backfill(reportsplit::backfill::BackfillArgs),
    /// Retry the reports of a dead-letter file written by `backfill`, `sync` or `serve`.
    Reprocess(reportsplit::reprocess::ReprocessArgs),
    /// Serve `$enrich`, a FHIR Subscription rest-hook endpoint, /healthz and /metrics
    /// (docs/serve.md).
    Serve(reportsplit::serve::ServeArgs),
    /// Validate a configuration file (with its environment overrides) and probe the
    /// FHIR server: reachable, authorized, and offering what a sync needs.
    CheckConfig(CheckConfigArgs),
    /// Score the extractor on a public evaluation set. The last line printed is
    /// `<set> <metric> precision=<P> recall=<R> f1=<F> n=<N>`.
    Eval(EvalArgs),
}

#[derive(Debug, clap::Args)]
struct ExtractArgs {
    /// The input file, or `-` for standard input.
    #[arg(default_value = "-")]
    file: PathBuf,
    /// Print a single result as compact JSON instead of indented JSON.
    #[arg(long)]
    compact: bool,
    /// Interface-engine mode: read DiagnosticReports and print, per report, the
    /// transaction Bundle that `sync` would send (NDJSON). Works offline, so a report
    /// amended since an earlier run gets new Observations but the old ones are not
    /// superseded: use `sync` or `serve` for that. A report already tagged for its
    /// current text yields an empty transaction; one without text an OperationOutcome.
    #[arg(long)]
    fhir: bool,
    /// Read the code tables from this directory instead of the built-in ones
    /// (findings.tsv, body_sites.tsv, critical.tsv, sections.tsv; a missing file keeps
    /// the built-in table).
    #[arg(long, value_name = "DIR", env = "REPORTSPLIT_MAPPINGS")]
    mappings: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct CheckConfigArgs {
    /// The configuration file (TOML; see config/example.toml).
    #[arg(long, short = 'c', env = "REPORTSPLIT_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Also print the effective configuration (file plus environment overrides) as TOML.
    /// It names where secrets come from (variables, files), never the secrets.
    #[arg(long)]
    print_config: bool,
    /// Only validate the file; do not contact the server.
    #[arg(long)]
    offline: bool,
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    /// The set: `negex FILE`, `openi REPORTS LABELS` or `mtsamples FILE`.
    #[arg(value_parser = ["negex", "openi", "mtsamples"])]
    set: String,
    /// The set's files, in the order given above.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Also print up to N misclassified rows. They contain corpus text, so this is off by default.
    #[arg(long, value_name = "N", default_value_t = 0)]
    errors: usize,
}

fn main() -> ExitCode {
    // A panic message can quote the data being processed (a string slice of
    // report text); print only where it happened.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map_or_else(|| "an unknown place".to_owned(), ToString::to_string);
        eprintln!("reportsplit: internal error (panic) at {location}");
    }));
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log);
    match run(cli.command) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("reportsplit: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(command: Command) -> Result<ExitCode> {
    // The code tables are compiled in; checking them first turns a broken table
    // into a clear start-up error naming the file and line, not a failure mid-run.
    reportsplit_fhir::map::FhirCodes::check_builtin().context("checking mappings/fhir.tsv")?;
    match command {
        Command::Extract(args) => extract(&args),
        Command::Eval(args) => eval(&args),
        Command::CheckConfig(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            Ok(ExitCode::from(runtime.block_on(check_config(&args))))
        }
        Command::Backfill(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let result = runtime.block_on(async {
                reportsplit::backfill::run(&args, reportsplit::daemon::shutdown_on_signals()).await
            });
            Ok(ExitCode::from(finish(
                result,
                |summary| summary.exit_code(),
                |error| error.exit_code(),
            )))
        }
        Command::Reprocess(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let result = runtime.block_on(async {
                reportsplit::reprocess::run(&args, reportsplit::daemon::shutdown_on_signals()).await
            });
            Ok(ExitCode::from(finish(
                result,
                |summary| summary.exit_code(),
                |error| error.exit_code(),
            )))
        }
        Command::Serve(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let served = runtime.block_on(async {
                reportsplit::serve::run(&args, reportsplit::daemon::shutdown_on_signals()).await
            });
            match served {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(error) => {
                    eprintln!("reportsplit: {error}");
                    Ok(ExitCode::from(error.exit_code()))
                }
            }
        }
        Command::Sync(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            Ok(ExitCode::from(runtime.block_on(sync(&args))))
        }
    }
}

/// Prints a long-running command's summary, or its error with its causes, and
/// picks the exit code (docs/operations.md).
fn finish<S: std::fmt::Display, E: std::error::Error>(
    result: Result<S, E>,
    summary_code: impl Fn(&S) -> u8,
    error_code: impl Fn(&E) -> u8,
) -> u8 {
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            summary_code(&summary)
        }
        Err(error) => {
            eprintln!("reportsplit: {}", reportsplit::sync::error_chain(&error));
            error_code(&error)
        }
    }
}

/// `sync --once` (one pass) or `sync --every D` (the daemon); the exit codes are
/// documented in docs/operations.md.
async fn sync(args: &reportsplit::sync::SyncArgs) -> u8 {
    use reportsplit::daemon::{self, exit};
    let result = match args.every {
        Some(every) => daemon::run(args, every, daemon::shutdown_on_signals())
            .await
            .map(|summary| {
                eprintln!("{summary}");
                exit::OK
            }),
        None => reportsplit::sync::run(args, daemon::shutdown_on_signals())
            .await
            .map(|summary| {
                eprintln!("{summary}");
                if summary.failed_total() > 0 {
                    exit::PARTIAL
                } else if summary.interrupted {
                    exit::INTERRUPTED
                } else {
                    exit::OK
                }
            }),
    };
    result.unwrap_or_else(|error| {
        eprintln!("reportsplit: {}", reportsplit::sync::error_chain(&error));
        daemon::exit_code(&error)
    })
}

async fn check_config(args: &CheckConfigArgs) -> u8 {
    use reportsplit::daemon::{self, exit};
    let config = match reportsplit::config::Config::load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("reportsplit: {}", reportsplit::sync::error_chain(&error));
            return exit::CONFIG;
        }
    };
    println!("{}: valid", args.config.display());
    if args.print_config {
        match toml::to_string_pretty(&config) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("reportsplit: cannot print the configuration: {error}");
                return exit::INTERNAL;
            }
        }
    }
    if args.offline {
        return exit::OK;
    }
    let url = config.fhir.url.clone();
    match reportsplit::sync::Worker::check(config, true).await {
        Ok(worker) => {
            println!(
                "{url}: reachable, FHIR {}, transactions and conditional creates offered, JSON Patch {}",
                worker.capabilities.fhir_version,
                if worker.capabilities.json_patch {
                    "offered"
                } else {
                    "not offered"
                },
            );
            exit::OK
        }
        Err(error) => {
            eprintln!(
                "reportsplit: {url}: {}",
                reportsplit::sync::error_chain(&error)
            );
            daemon::exit_code(&error)
        }
    }
}

fn extract(args: &ExtractArgs) -> Result<ExitCode> {
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
                        tracing::warn!(report = %reportsplit::apply::reference(report), "cannot plan the report: {error}");
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
        ExitCode::from(3)
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

fn eval(args: &EvalArgs) -> Result<ExitCode> {
    let contents = args
        .files
        .iter()
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let options = reportsplit_eval::Options {
        errors: args.errors,
    };
    let report = reportsplit_eval::run(&args.set, &contents, &Lexicon::builtin(), &options)
        .with_context(|| format!("scoring {}", args.set))?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
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
