//! One sync pass: check the server, collect the window since the last
//! checkpoint, split and write each report, save the checkpoint.
//!
//! The checkpoint only moves forward over reports that were handled (written,
//! current or skipped for a reason that a retry cannot fix). When a report
//! fails (server error, conflict that persists), the checkpoint stops at the
//! earliest failed report's `meta.lastUpdated`, so the next run picks it up
//! again; reports after it are re-read too, and skipped by their tag.
//!
//! The window is `[checkpoint - pull.overlap_secs, now)`. It is read whole
//! before anything is written (see [`crate::pull::collect_window`]); one
//! holding more than `pull.max_window_reports` is split in time halves,
//! each read, written and checkpointed in turn.
//!
//! A stop request (SIGTERM, the daemon shutting down) ends a pass early: no
//! new report is started, those in flight finish, and the checkpoint stops
//! at the earliest report not started, so the next run goes on from there.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use futures::StreamExt as _;
use reportsplit_split::Lexicon;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::apply::{ApplyContext, Outcome, apply_report, reference};
use crate::config::{Config, ConfigError};
use crate::fhir::{Capabilities, CapabilityError, FhirClient, FhirError, Requirements};
use crate::pull::{
    Collected, Window, collect_window, collect_window_bounded, last_updated, rfc3339, split_window,
};
use crate::state::{StateError, StateStore, stream_key};
use reportsplit_fhir::map::RunInfo;

/// `reportsplit sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// The configuration file (TOML; see config/example.toml).
    #[arg(long, short = 'c', env = "REPORTSPLIT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// Run one pass and exit: the form for cron (resumes from the saved checkpoint).
    #[arg(long)]
    pub once: bool,
    /// Print the transactions that would be sent (NDJSON, one Bundle per line);
    /// write nothing to the server and leave the checkpoint where it is.
    #[arg(long)]
    pub dry_run: bool,
    /// Write the transaction Bundles (NDJSON) to FILE instead of stdout. With a
    /// real run it is an audit log of what was sent.
    #[arg(long, value_name = "FILE")]
    pub transactions_out: Option<PathBuf>,
    /// Run as a daemon: a pass every DURATION (5m, 1h...; ±10% jitter) until
    /// SIGTERM/SIGINT, which finish the pass in flight (see src/daemon.rs).
    #[arg(long, value_name = "DURATION", value_parser = crate::daemon::parse_duration, conflicts_with_all = ["once", "dry_run"])]
    pub every: Option<std::time::Duration>,
    /// With --every: serve Prometheus metrics (GET /metrics) on this address,
    /// e.g. 127.0.0.1:9464. Pass counts, outcomes by reason and checkpoint lag.
    #[arg(long, value_name = "ADDR", requires = "every")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// What a pass did. Counts are reports unless named otherwise.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncSummary {
    pub seen: u64,
    /// A transaction was committed (or, with --dry-run, planned).
    pub written: u64,
    /// Already done: tag matches the current text.
    pub current: u64,
    pub skipped: BTreeMap<String, u64>,
    pub failed: BTreeMap<String, u64>,
    pub observations_written: u64,
    pub observations_superseded: u64,
    /// Re-reads after a 412.
    pub conflicts: u64,
    /// Search entries seen twice (across pages or re-runs of the window).
    pub duplicates: u64,
    /// Time windows read (more than one when a backlog was split).
    pub windows: u64,
    pub requests: u64,
    pub retries: u64,
    pub json_patch_supported: bool,
    pub dry_run: bool,
    /// The checkpoint after the pass (RFC 3339).
    pub checkpoint: Option<String>,
    /// A stop request ended the pass before every report was started.
    pub interrupted: bool,
    pub duration_secs: f64,
}

impl SyncSummary {
    fn record_write(&mut self, observations: usize, superseded: usize) {
        self.written += 1;
        self.observations_written += observations as u64;
        self.observations_superseded += superseded as u64;
    }
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

impl std::fmt::Display for SyncSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reasons = |map: &BTreeMap<String, u64>| {
            if map.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    map.iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        writeln!(
            f,
            "{} reports seen, {} {}, {} already current, {} skipped{}, {} failed{}",
            self.seen,
            self.written,
            if self.dry_run {
                "planned (dry run)"
            } else {
                "written"
            },
            self.current,
            self.skipped_total(),
            reasons(&self.skipped),
            self.failed_total(),
            reasons(&self.failed),
        )?;
        write!(
            f,
            "{} Observations written, {} superseded; {} requests, {} retries, {} conflicts; {:.1} s ({:.1} reports/s)",
            self.observations_written,
            self.observations_superseded,
            self.requests,
            self.retries,
            self.conflicts,
            self.duration_secs,
            if self.duration_secs > 0.0 {
                self.seen as f64 / self.duration_secs
            } else {
                0.0
            },
        )?;
        if self.interrupted {
            write!(
                f,
                "\nstopped early; the next run goes on from the checkpoint"
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("CapabilityStatement {url}")]
    Capability {
        url: String,
        #[source]
        source: CapabilityError,
    },
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("mappings.dir")]
    Mappings(#[source] crate::tables::TablesError),
    #[error("cannot build reportsplit's Device resource")]
    Device(#[source] reportsplit_fhir::map::BuildError),
    #[error("cannot write the transactions to {path}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A connected worker: client, checked capabilities, extractor tables.
pub struct Worker {
    pub config: Config,
    pub client: FhirClient,
    pub capabilities: Capabilities,
    pub lexicon: Lexicon,
    pub run: RunInfo,
}

impl Worker {
    /// [`Worker::check`], then, when the run writes, creates this version's
    /// Device once before any concurrent transaction. Each transaction also
    /// creates it conditionally, but two concurrent first transactions on a
    /// server without transactional uniqueness could create it twice, after
    /// which every conditional create of it would fail.
    pub async fn connect(config: Config, write: bool) -> Result<Worker, SyncError> {
        let worker = Worker::check(config, write).await?;
        if write {
            worker.ensure_device().await?;
        }
        Ok(worker)
    }

    async fn ensure_device(&self) -> Result<(), SyncError> {
        let device = reportsplit_fhir::map::device(&self.run).map_err(SyncError::Device)?;
        let mut headers = reqwest::header::HeaderMap::new();
        let query = reportsplit_fhir::map::identifier_query(
            &reportsplit_fhir::map::device_identifier(&self.run),
        );
        let value = reqwest::header::HeaderValue::from_str(&query).map_err(|error| {
            SyncError::Device(reportsplit_fhir::map::BuildError::Invalid(format!(
                "identifier search {query:?}: {error}"
            )))
        })?;
        headers.insert("If-None-Exist", value);
        let url = self.client.url("Device")?;
        let body = serde_json::to_vec(&device).map_err(|source| FhirError::Json {
            method: reqwest::Method::POST,
            url: url.to_string(),
            source,
        })?;
        self.client
            .send(reqwest::Method::POST, url, headers, Some(body))
            .await?
            .success()?;
        Ok(())
    }

    /// Builds the client and checks the server's CapabilityStatement; writes nothing.
    pub async fn check(config: Config, write: bool) -> Result<Worker, SyncError> {
        // Tables first: a bad site table is a configuration error, found before any request.
        let lexicon = match &config.mappings.dir {
            Some(dir) => crate::tables::load_lexicon(dir).map_err(SyncError::Mappings)?,
            None => Lexicon::builtin(),
        };
        let client = FhirClient::new(&config.client_options()?, &config.auth)?;
        let metadata = client.get(client.url("metadata")?).await?.success()?;
        let needs = Requirements {
            search_params: config.filters().search_params(),
            write,
            json_patch: config.write.method == crate::config::WriteMethod::Patch,
        };
        let capabilities =
            crate::fhir::check_capabilities(&metadata.body, &needs).map_err(|source| {
                SyncError::Capability {
                    url: metadata.url.clone(),
                    source,
                }
            })?;
        if !capabilities.unlisted_search_params.is_empty() {
            tracing::warn!(params = ?capabilities.unlisted_search_params, "the server does not list these search parameters; relying on them anyway");
        }
        tracing::info!(fhir_version = %capabilities.fhir_version, json_patch = capabilities.json_patch, "server capabilities checked");
        Ok(Worker {
            config,
            client,
            capabilities,
            lexicon,
            run: RunInfo {
                extractor_version: env!("CARGO_PKG_VERSION").to_string(),
                recorded: OffsetDateTime::now_utc(),
            },
        })
    }

    pub fn apply_context(&self, dry_run: bool) -> ApplyContext<'_> {
        ApplyContext {
            client: &self.client,
            lexicon: &self.lexicon,
            run: &self.run,
            limits: self.config.text_limits(),
            conflict_retries: self.config.write.conflict_retries,
            dry_run,
            method: self.config.write.method,
        }
    }
}

/// Runs one pass as configured by `args`, ending early when `stop` is
/// cancelled.
pub async fn run(args: &SyncArgs, stop: CancellationToken) -> Result<SyncSummary, SyncError> {
    let config = Config::load(&args.config)?;
    let mut sink: Box<dyn std::io::Write + Send> = match &args.transactions_out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|source| SyncError::Output {
                path: path.display().to_string(),
                source,
            })?,
        )),
        None if args.dry_run => Box::new(std::io::stdout()),
        None => Box::new(std::io::sink()),
    };
    let summary = run_with(config, args.dry_run, &mut sink, &stop).await?;
    sink.flush().map_err(|source| SyncError::Output {
        path: "transactions output".into(),
        source,
    })?;
    Ok(summary)
}

/// One pass with a loaded config; each transaction (planned or sent) is
/// written to `transactions` as one NDJSON line. Once `stop` is cancelled no
/// new report is started (see the module docs).
pub async fn run_with(
    config: Config,
    dry_run: bool,
    transactions: &mut (dyn std::io::Write + Send),
    stop: &CancellationToken,
) -> Result<SyncSummary, SyncError> {
    let started = Instant::now();
    let store = StateStore::open(&config.state.dir)?;
    let stream = stream_key(&config.fhir.url, &config.filters());
    let saved = store
        .load()?
        .streams
        .get(&stream)
        .and_then(|s| s.checkpoint.clone());
    let overlap = time::Duration::seconds(config.pull.overlap_secs as i64);
    let since = match &saved {
        Some(checkpoint) => Some(
            OffsetDateTime::parse(checkpoint, &time::format_description::well_known::Rfc3339)
                .map_err(|e| StateError::Io {
                    path: store.path(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("checkpoint {checkpoint:?}: {e}"),
                    ),
                })?
                - overlap,
        ),
        None => config.since()?,
    };
    let window = Window {
        since,
        until: OffsetDateTime::now_utc(),
    };

    let worker = Worker::connect(config, !dry_run).await?;
    let mut summary = SyncSummary {
        dry_run,
        json_patch_supported: worker.capabilities.json_patch,
        ..SyncSummary::default()
    };
    let context = worker.apply_context(dry_run);
    let output = Mutex::new(transactions);
    let mut earliest_failure: Option<OffsetDateTime> = None;
    // Where a stop request left the pass: the earliest instant not done
    // (`Some(None)`: nothing done since the start of the window).
    let mut stopped_at: Option<Option<OffsetDateTime>> = None;
    // Windows still to do, the earliest last. A window holding more reports
    // than `pull.max_window_reports` is split in time halves, so a first run
    // over a large backlog keeps memory bounded and checkpoints as it goes.
    let mut pending = vec![window];
    while let Some(part) = pending.pop() {
        if stop.is_cancelled() {
            stopped_at = Some(part.since);
            break;
        }
        let collected = match collect_window_bounded(
            &worker.client,
            &worker.config.filters(),
            part,
            worker.config.pull.page_size,
            worker.config.pull.max_window_reports,
        )
        .await?
        {
            Collected::Reports(reports) => reports,
            Collected::TooLarge { total, earliest } => {
                if let Some((first, second)) = split_window(part, earliest) {
                    tracing::info!(total, "window too large; splitting it in time");
                    pending.push(second);
                    pending.push(first);
                    continue;
                }
                collect_window(
                    &worker.client,
                    &worker.config.filters(),
                    part,
                    worker.config.pull.page_size,
                )
                .await?
            }
        };
        summary.duplicates += collected.duplicates as u64;
        summary.windows += 1;
        tracing::info!(reports = collected.reports.len(), since = ?part.since.map(rfc3339), until = %rfc3339(part.until), "window collected");
        let done = process_window(
            &worker,
            &context,
            collected.reports,
            &mut summary,
            &output,
            stop,
        )
        .await?;
        if let Some(failed_at) = done.earliest_failure {
            earliest_failure = Some(earliest_failure.map_or(failed_at, |e| e.min(failed_at)));
        }
        if let Some(not_started) = done.earliest_not_started {
            stopped_at = Some(Some(not_started));
            break;
        }
        // Checkpoint after every window that leaves nothing failed behind it.
        if !dry_run && earliest_failure.is_none() && !pending.is_empty() {
            save_checkpoint(&store, &stream, part.until)?;
        }
    }

    summary.interrupted = stopped_at.is_some();
    let checkpoint = match stopped_at {
        None => Some(earliest_failure.unwrap_or(window.until)),
        Some(Some(resume)) => Some(earliest_failure.map_or(resume, |e| e.min(resume))),
        // Stopped before anything was read: the saved checkpoint stands.
        Some(None) => None,
    };
    if let Some(checkpoint) = checkpoint {
        summary.checkpoint = Some(rfc3339(checkpoint));
        if !dry_run {
            save_checkpoint(&store, &stream, checkpoint)?;
        }
    } else {
        summary.checkpoint = saved;
    }
    let stats = worker.client.stats();
    summary.requests = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    summary.retries = stats.retries.load(std::sync::atomic::Ordering::Relaxed);
    summary.duration_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn save_checkpoint(
    store: &StateStore,
    stream: &str,
    checkpoint: OffsetDateTime,
) -> Result<(), SyncError> {
    let saved_at = rfc3339(OffsetDateTime::now_utc());
    store.update_stream(stream, |s| {
        s.checkpoint = Some(rfc3339(checkpoint));
        s.saved_at = Some(saved_at);
    })?;
    Ok(())
}

/// Where a window's work stopped.
struct WindowDone {
    /// `meta.lastUpdated` of the earliest report that failed.
    earliest_failure: Option<OffsetDateTime>,
    /// `meta.lastUpdated` of the earliest report a stop request kept from
    /// starting; `None` when every report was started.
    earliest_not_started: Option<OffsetDateTime>,
}

/// Works on a window's reports, `write.concurrent_reports` at a time, and
/// counts the outcomes. Once `stop` is cancelled no new report starts; those
/// in flight finish.
async fn process_window(
    worker: &Worker,
    context: &ApplyContext<'_>,
    reports: Vec<Value>,
    summary: &mut SyncSummary,
    output: &Mutex<&mut (dyn std::io::Write + Send)>,
    stop: &CancellationToken,
) -> Result<WindowDone, SyncError> {
    // A report without meta.lastUpdated counts as the earliest possible.
    let updated: Vec<OffsetDateTime> = reports
        .iter()
        .map(|report| last_updated(report).unwrap_or(OffsetDateTime::UNIX_EPOCH))
        .collect();
    // Counted as the stream hands reports out, in order.
    let started = std::sync::atomic::AtomicUsize::new(0);
    let mut earliest_failure: Option<OffsetDateTime> = None;
    let mut results = std::pin::pin!(
        futures::stream::iter(reports.into_iter().zip(updated.iter().copied()))
            .take_until(stop.cancelled())
            .map(|(report, updated)| {
                started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async move {
                    let reference = reference(&report);
                    (reference, updated, apply_report(context, report).await)
                }
            })
            .buffer_unordered(worker.config.write.concurrent_reports)
    );
    while let Some((reference, updated, result)) = results.next().await {
        summary.seen += 1;
        match result {
            Ok(Outcome::Current) => summary.current += 1,
            Ok(Outcome::Skipped(reason)) => {
                *summary.skipped.entry(reason.key().to_string()).or_default() += 1
            }
            Ok(Outcome::Gone) => *summary.skipped.entry("deleted".to_string()).or_default() += 1,
            Ok(Outcome::Written {
                observations,
                superseded,
                conflicts,
                bundle,
                ..
            }) => {
                summary.conflicts += u64::from(conflicts);
                summary.record_write(observations, superseded);
                write_line(output, &bundle)?;
            }
            Ok(Outcome::Planned {
                observations,
                superseded,
                bundle,
            }) => {
                summary.record_write(observations, superseded);
                write_line(output, &bundle)?;
            }
            Err(error) => {
                tracing::warn!(report = %reference, error = %error_chain(&error), "report failed");
                *summary.failed.entry(error.key()).or_default() += 1;
                earliest_failure = Some(earliest_failure.map_or(updated, |e| e.min(updated)));
            }
        }
    }
    Ok(WindowDone {
        earliest_failure,
        earliest_not_started: updated[started.load(std::sync::atomic::Ordering::Relaxed)..]
            .iter()
            .copied()
            .min(),
    })
}

fn write_line(
    output: &Mutex<&mut (dyn std::io::Write + Send)>,
    bundle: &Value,
) -> Result<(), SyncError> {
    let mut output = output
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let io = |source| SyncError::Output {
        path: "transactions output".into(),
        source,
    };
    serde_json::to_writer(&mut **output, bundle).map_err(|e| io(std::io::Error::other(e)))?;
    output.write_all(b"\n").map_err(io)
}

/// An error and its causes, `a: b: c`. Our errors' messages leave the cause
/// out (so `{:#}` in the binary prints each once); logs want the whole chain.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
