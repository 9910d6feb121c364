//! The command line: clap's command tree, dispatch, and the process exit
//! code. The library takes plain option structs and returns typed errors
//! and summaries; turning those into text on stderr and an exit code
//! (docs/operations.md) happens here only.

mod args;
mod exit;
mod extract;
mod parse;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use reportsplit::error::{Class, error_chain};
use reportsplit::mode::{backfill, daemon, hl7, mllp, once, reprocess, retract, serve};
use reportsplit::run::Ending;
use reportsplit::signal::shutdown_on_signals;
use reportsplit_split::Lexicon;

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
  reportsplit retract -c site.toml --version 0.1.0 --since 2026-11-01
                                                 what release 0.1.0 wrote since then (dry run);
                                                 add --apply to retract it
  reportsplit serve -c site.toml --listen 127.0.0.1:8080
                                                 $enrich, Subscription endpoint, /healthz, /metrics
  reportsplit mllp -c site.toml --listen 127.0.0.1:2575
                                                 HL7 v2 ORU^R01 results over MLLP (docs/hl7.md)
  reportsplit hl7 -c site.toml archive/           an archive of HL7 v2 result messages
  reportsplit eval reports reports.json           score the extractor on our own labelled reports
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
    Extract(extract::ExtractArgs),
    #[command(flatten)]
    Online(Online),
    /// Score the extractor on a labelled set of our own reports. The last line printed is
    /// `<set> <metric> precision=<P> recall=<R> f1=<F> n=<N>`. The public-kit scorers
    /// (NegEx, Open-i, MTSamples) are the eval crate's own:
    /// `cargo run -p reportsplit-eval --example score -- negex FILE`.
    Eval(EvalArgs),
}

/// The commands that talk to a FHIR server (they run on the async runtime).
#[derive(Debug, Subcommand)]
enum Online {
    /// Incremental sync: pull new and changed DiagnosticReports, write coded Observations back.
    Sync(args::SyncArgs),
    /// Enrich every report of a past range, window by window, resumably and in parallel;
    /// reports that fail go to a dead-letter file (docs/operations.md).
    Backfill(args::BackfillArgs),
    /// Retry the reports of a dead-letter file written by `backfill`, `sync` or `serve`.
    Reprocess(args::ReprocessArgs),
    /// Take back what one reportsplit release wrote in a time range: its resources of
    /// every type superseded (Observations also unlinked), its reports untagged for the
    /// next sync. A dry run unless --apply is given; resumable (docs/operations.md,
    /// "Retract a release").
    Retract(args::RetractArgs),
    /// Serve `$enrich`, a FHIR Subscription rest-hook endpoint, /healthz and /metrics
    /// (docs/serve.md).
    Serve(args::ServeArgs),
    /// Listen for HL7 v2 ORU^R01 results over MLLP: acknowledged once spooled, then
    /// stored as DiagnosticReports and enriched like `sync` (docs/hl7.md).
    Mllp(args::MllpArgs),
    /// Store and enrich the ORU^R01 results of HL7 v2 files (an archive's backfill);
    /// refused or failed messages go to a dead-letter file (docs/hl7.md).
    Hl7(args::Hl7Args),
    /// Validate a configuration file (with its environment overrides) and probe the
    /// FHIR server: reachable, authorized, and offering what a sync needs.
    CheckConfig(CheckConfigArgs),
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
    /// The set: `reports FILE` (the kits are scored by the eval crate's example).
    #[arg(value_parser = ["reports"])]
    set: String,
    /// The set's file.
    #[arg(required = true, num_args = 1)]
    file: PathBuf,
    /// Also print up to N misclassified rows. They contain corpus text, so this is off by default.
    #[arg(long, value_name = "N", default_value_t = 0)]
    errors: usize,
}

/// Parses the command line, runs the command, and says how it went.
pub fn main() -> ExitCode {
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
    let online = match command {
        Command::Extract(args) => return extract::extract(&args),
        Command::Eval(args) => return eval(&args),
        Command::Online(online) => online,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let code = runtime.block_on(async {
        match online {
            Online::CheckConfig(args) => check_config(&args).await,
            Online::Sync(args) => match args.every {
                Some(every) => finish(
                    daemon::run(&args.daemon(every), shutdown_on_signals()).await,
                    |_| Ending::Complete,
                    daemon_class,
                ),
                None => finish(
                    once::run(&args.once(), shutdown_on_signals()).await,
                    once::PassSummary::ending,
                    daemon_class,
                ),
            },
            Online::Backfill(args) => finish(
                backfill::run(&(&args).into(), shutdown_on_signals()).await,
                backfill::BackfillSummary::ending,
                backfill::BackfillError::class,
            ),
            Online::Reprocess(args) => finish(
                reprocess::run(&(&args).into(), shutdown_on_signals()).await,
                reprocess::ReprocessSummary::ending,
                reprocess::ReprocessError::class,
            ),
            Online::Retract(args) => finish(
                retract::run(
                    &(&args).into(),
                    shutdown_on_signals(),
                    &mut std::io::stdout(),
                )
                .await,
                retract::RetractSummary::ending,
                retract::RetractError::class,
            ),
            Online::Hl7(args) => finish(
                hl7::run(&(&args).into(), shutdown_on_signals()).await,
                hl7::Hl7FilesSummary::ending,
                hl7::Hl7FilesError::class,
            ),
            Online::Mllp(args) => match mllp::run(&(&args).into(), shutdown_on_signals()).await {
                Ok(()) => exit::OK,
                Err(error) => {
                    eprintln!("reportsplit: {}", error_chain(&error));
                    exit::of_class(error.class())
                }
            },
            Online::Serve(args) => {
                let options = match serve::ServeOptions::try_from(&args) {
                    Ok(options) => options,
                    Err(error) => {
                        eprintln!("reportsplit: {error:#}");
                        return exit::CONFIG;
                    }
                };
                let served =
                    serve::run(args.listen, &args.config, options, shutdown_on_signals()).await;
                match served {
                    Ok(()) => exit::OK,
                    Err(error) => {
                        eprintln!("reportsplit: {error}");
                        exit::of_class(error.class())
                    }
                }
            }
        }
    });
    Ok(ExitCode::from(code))
}

fn daemon_class(error: &reportsplit::run::RunError) -> Class {
    error.class()
}

/// Prints a command's summary, or its error with its causes, and picks the
/// exit code (docs/operations.md).
fn finish<S: std::fmt::Display, E: std::error::Error>(
    result: Result<S, E>,
    ending: impl Fn(&S) -> Ending,
    class: impl Fn(&E) -> Class,
) -> u8 {
    match result {
        Ok(summary) => {
            eprintln!("{summary}");
            exit::of_ending(ending(&summary))
        }
        Err(error) => {
            eprintln!("reportsplit: {}", error_chain(&error));
            exit::of_class(class(&error))
        }
    }
}

async fn check_config(args: &CheckConfigArgs) -> u8 {
    let config = match reportsplit::config::Config::load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("reportsplit: {}", error_chain(&error));
            return exit::CONFIG;
        }
    };
    println!("{}: valid", args.config.display());
    let kinds = config.discrepancy_kinds();
    let names = reportsplit::config::discrepancy_names(kinds);
    let reads: Vec<&str> = [
        (kinds.sex || kinds.age, "the report's Patient"),
        (kinds.order, "its basedOn ServiceRequests"),
    ]
    .into_iter()
    .filter_map(|(on, what)| on.then_some(what))
    .collect();
    println!(
        "discrepancies written as DetectedIssues: {}{}",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        },
        if reads.is_empty() {
            String::new()
        } else {
            format!(" (reads {})", reads.join(" and "))
        }
    );
    if args.print_config {
        match toml::to_string_pretty(&config.redacted()) {
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
    let url = reportsplit::config::redact_url(&config.fhir.url);
    match reportsplit::run::Worker::check(config, true).await {
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
            let unlisted = &worker.capabilities.unlisted_types;
            let written: Vec<&str> = worker
                .config
                .write
                .optional_types()
                .into_iter()
                .filter(|kind| !unlisted.iter().any(|u| u == kind))
                .collect();
            if !written.is_empty() {
                println!(
                    "{url}: create, update and search offered for {}{}",
                    written.join(", "),
                    if worker.config.auth.scope().is_some() {
                        "; the SMART scopes requested cover them"
                    } else {
                        ""
                    }
                );
            }
            for kind in unlisted {
                println!(
                    "{url}: warning: {kind} is not listed in the CapabilityStatement; written anyway (switch it off in [write] if the server refuses it)"
                );
            }
            for param in &worker.capabilities.unlisted_search_params {
                println!(
                    "{url}: warning: search parameter {param} is not listed; relied on anyway"
                );
            }
            exit::OK
        }
        Err(error) => {
            eprintln!("reportsplit: {url}: {}", error_chain(&error));
            exit::of_class(error.class())
        }
    }
}

/// `eval reports FILE`: our own labelled reports, scored by the eval crate
/// built without its public-kit scorers (they stay out of the worker binary).
fn eval(args: &EvalArgs) -> Result<ExitCode> {
    let contents = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let options = reportsplit_eval::Options {
        errors: args.errors,
        ..Default::default()
    };
    let report = reportsplit_eval::run(&args.set, &[contents], &Lexicon::builtin(), &options)
        .with_context(|| format!("scoring {}", args.set))?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
