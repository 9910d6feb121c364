//! `reportsplit reprocess`: retry the reports of a dead-letter file.
//!
//! Each entry's report is read again (its *current* version: a report fixed
//! at the source since it failed is retried as fixed) and applied like a
//! sync would. Reports that now succeed, are already current, are skipped
//! for a counted reason or were deleted leave the file; the ones that still
//! fail stay, with their new reason and time. The file is rewritten
//! atomically (temp file, fsync, rename), so a crash leaves either the old
//! or the new list. Entries not reached (stopped by a signal, or the server
//! went down) are kept as they were.
//!
//! The state directory's lock is held while reprocessing, so a backfill that
//! appends to the same dead-letter file cannot run at the same time.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt as _;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::apply::{ApplyError, Outcome};
use crate::backfill::{DeadLetter, apply_guarded, is_server_down};
use crate::config::Config;
use crate::daemon::exit;
use crate::state::StateStore;
use crate::sync::{SyncError, Worker};

/// `reportsplit reprocess`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReprocessArgs {
    /// The configuration file (TOML; see config/example.toml).
    #[arg(long, short = 'c', env = "REPORTSPLIT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// The dead-letter file written by `reportsplit backfill` (NDJSON).
    #[arg(long, value_name = "FILE")]
    pub dead_letter: PathBuf,
    /// Write the entries that still fail to FILE and leave --dead-letter as it
    /// is. Default: rewrite --dead-letter in place (atomically).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ReprocessError {
    /// The process exit code (docs/operations.md).
    pub fn exit_code(&self) -> u8 {
        match self {
            ReprocessError::Sync(error) => crate::daemon::exit_code(error),
            ReprocessError::File { .. } => exit::CONFIG,
        }
    }
}

/// What a reprocess run did. Counts are dead-letter entries.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReprocessSummary {
    pub entries: u64,
    /// A transaction was committed: the report is enriched now.
    pub enriched: u64,
    /// Already tagged for its current text (done by another run meanwhile).
    pub current: u64,
    /// No text to split now, by reason (not failures: kept out of the file).
    pub skipped: BTreeMap<String, u64>,
    pub deleted: u64,
    /// Still failing, by reason; these remain in the output file.
    pub still_failing: BTreeMap<String, u64>,
    /// Lines for a report that an earlier line already named.
    pub duplicates: u64,
    /// Lines that are not dead-letter entries; kept verbatim.
    pub unreadable: u64,
    /// Entries not tried (stopped early); kept as they were.
    pub not_tried: u64,
    pub observations_written: u64,
    pub interrupted: bool,
    pub unreachable: Option<String>,
    pub output: String,
    pub duration_secs: f64,
}

impl ReprocessSummary {
    pub fn still_failing_total(&self) -> u64 {
        self.still_failing.values().sum()
    }
    pub fn exit_code(&self) -> u8 {
        if self.unreachable.is_some() {
            exit::UNREACHABLE
        } else if self.interrupted {
            exit::INTERRUPTED
        } else if self.still_failing_total() > 0 {
            exit::PARTIAL
        } else {
            exit::OK
        }
    }
}

impl std::fmt::Display for ReprocessSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reasons = |map: &BTreeMap<String, u64>| {
            let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            if parts.is_empty() {
                String::new()
            } else {
                format!(" ({})", parts.join(", "))
            }
        };
        writeln!(
            f,
            "{} dead letters: {} enriched, {} already current, {} skipped{}, {} deleted, {} still failing{}, {} duplicates, {} unreadable, {} not tried",
            self.entries,
            self.enriched,
            self.current,
            self.skipped.values().sum::<u64>(),
            reasons(&self.skipped),
            self.deleted,
            self.still_failing_total(),
            reasons(&self.still_failing),
            self.duplicates,
            self.unreadable,
            self.not_tried,
        )?;
        if let Some(reason) = &self.unreachable {
            writeln!(f, "stopped: the server is unreachable ({reason})")?;
        } else if self.interrupted {
            writeln!(f, "interrupted")?;
        }
        write!(
            f,
            "{} Observations written; remaining entries in {}; {:.1} s",
            self.observations_written, self.output, self.duration_secs
        )
    }
}

/// Runs `reportsplit reprocess` as configured by `args`.
pub async fn run(
    args: &ReprocessArgs,
    shutdown: CancellationToken,
) -> Result<ReprocessSummary, ReprocessError> {
    let config = Config::load(&args.config).map_err(SyncError::from)?;
    let output = args.output.as_deref().unwrap_or(&args.dead_letter);
    run_with(config, &args.dead_letter, output, shutdown).await
}

/// What to do with one line.
enum Step {
    Retry(String, DeadLetter, String),
    Verbatim(String),
    Duplicate,
}

/// What became of one line.
enum Retry {
    /// Not a dead-letter entry: copied as it is.
    Unreadable(String),
    /// A report an earlier line already named: dropped.
    Duplicate,
    /// Out of the file: enriched, current, skipped or deleted.
    Resolved(Result<Outcome, ()>),
    /// Still failing: the new entry.
    Failing(DeadLetter),
    /// Not decided (server down): the old line stays.
    Kept(String),
}

/// [`run`] with a loaded config; `output` may be `input` (atomic rewrite).
pub async fn run_with(
    config: Config,
    input: &Path,
    output: &Path,
    shutdown: CancellationToken,
) -> Result<ReprocessSummary, ReprocessError> {
    let started = Instant::now();
    let _lock = StateStore::open(&config.state.dir).map_err(SyncError::from)?;
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReprocessError::File { path, source }
    };
    let reader = BufReader::new(File::open(input).map_err(file_error(input))?);
    let concurrency = config.write.concurrent_reports;
    let worker = Worker::connect(config, true).await?;
    let context = worker.apply_context(false);
    let context = &context;

    let temp = temp_path(output);
    let mut writer = BufWriter::new(File::create(&temp).map_err(file_error(&temp))?);
    let mut summary = ReprocessSummary {
        output: output.display().to_string(),
        ..ReprocessSummary::default()
    };
    let stop = shutdown.child_token();
    let mut lines = reader.lines();
    let mut named: HashSet<String> = HashSet::new();
    let mut read_error = None;
    {
        let entries = lines
            .by_ref()
            .map_while(|line| match line {
                Ok(line) => Some(line),
                Err(error) => {
                    read_error = Some(error);
                    None
                }
            })
            .filter(|line| !line.trim().is_empty());
        let results = futures::stream::iter(entries)
            .take_until(stop.cancelled())
            .map(|line| {
                let step = match parse_entry(&line) {
                    None => Step::Verbatim(line),
                    Some((letter, _)) if !named.insert(letter.report.clone()) => Step::Duplicate,
                    Some((letter, id)) => Step::Retry(line, letter, id),
                };
                async move {
                    match step {
                        Step::Retry(line, letter, id) => retry(context, line, letter, id).await,
                        Step::Verbatim(line) => Retry::Unreadable(line),
                        Step::Duplicate => Retry::Duplicate,
                    }
                }
            })
            .buffer_unordered(concurrency);
        let mut results = std::pin::pin!(results);
        while let Some(retry) = results.next().await {
            match retry {
                Retry::Resolved(outcome) => {
                    summary.entries += 1;
                    match outcome {
                        Ok(Outcome::Current) => summary.current += 1,
                        Ok(Outcome::Skipped(reason)) => {
                            *summary.skipped.entry(reason.key().to_string()).or_default() += 1
                        }
                        Ok(Outcome::Gone) | Err(()) => summary.deleted += 1,
                        Ok(Outcome::Written { observations, .. })
                        | Ok(Outcome::Planned { observations, .. }) => {
                            summary.enriched += 1;
                            summary.observations_written += observations as u64;
                        }
                    }
                }
                Retry::Failing(letter) => {
                    summary.entries += 1;
                    *summary
                        .still_failing
                        .entry(letter.reason.clone())
                        .or_default() += 1;
                    write_json_line(&mut writer, &letter).map_err(file_error(&temp))?;
                }
                Retry::Kept(line) => {
                    summary.entries += 1;
                    summary.not_tried += 1;
                    stop.cancel();
                    writeln!(writer, "{line}").map_err(file_error(&temp))?;
                    summary.unreachable.get_or_insert_with(|| {
                        "the server stopped answering; the remaining entries are kept".into()
                    });
                }
                Retry::Unreadable(line) => {
                    summary.unreadable += 1;
                    writeln!(writer, "{line}").map_err(file_error(&temp))?;
                }
                Retry::Duplicate => {
                    summary.entries += 1;
                    summary.duplicates += 1;
                }
            }
        }
    }
    // Whatever was not reached stays as it was.
    for line in lines {
        let line = line.map_err(file_error(input))?;
        if line.trim().is_empty() {
            continue;
        }
        summary.entries += 1;
        summary.not_tried += 1;
        writeln!(writer, "{line}").map_err(file_error(&temp))?;
    }
    if let Some(error) = read_error {
        let _ = std::fs::remove_file(&temp);
        return Err(file_error(input)(error));
    }
    let file = writer
        .into_inner()
        .map_err(|e| file_error(&temp)(e.into_error()))?;
    file.sync_all().map_err(file_error(&temp))?;
    drop(file);
    std::fs::rename(&temp, output).map_err(file_error(output))?;
    if let Some(dir) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(file_error(dir))?;
    }
    summary.interrupted = shutdown.is_cancelled();
    summary.duration_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// A dead-letter entry and the report id it names; `None` for anything else.
fn parse_entry(line: &str) -> Option<(DeadLetter, String)> {
    let letter: DeadLetter = serde_json::from_str(line).ok()?;
    let id = letter.report.strip_prefix("DiagnosticReport/")?.to_string();
    reportsplit_fhir::map::is_fhir_id(&id).then_some((letter, id))
}

async fn retry(
    context: &crate::apply::ApplyContext<'_>,
    line: String,
    letter: DeadLetter,
    id: String,
) -> Retry {
    let report = match context.client.read("DiagnosticReport", &id).await {
        Ok(Some(response)) => response.body,
        Ok(None) => return Retry::Resolved(Err(())),
        Err(error) => {
            let error = ApplyError::Fhir(error);
            if is_server_down(&error) {
                return Retry::Kept(line);
            }
            return Retry::Failing(DeadLetter {
                reason: error.key(),
                message: error.to_string().chars().take(1000).collect(),
                time: crate::pull::rfc3339(time::OffsetDateTime::now_utc()),
                ..letter
            });
        }
    };
    let version_read = report
        .pointer("/meta/versionId")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    match apply_guarded(context, report).await {
        Ok(Ok(outcome)) => Retry::Resolved(Ok(outcome)),
        Ok(Err((reason, message))) => {
            tracing::warn!(report = %letter.report, %reason, "still failing");
            Retry::Failing(DeadLetter {
                version_id: version_read,
                reason,
                message: message.chars().take(1000).collect(),
                time: crate::pull::rfc3339(time::OffsetDateTime::now_utc()),
                ..letter
            })
        }
        Err(_) => Retry::Kept(line),
    }
}

fn write_json_line(writer: &mut impl std::io::Write, letter: &DeadLetter) -> std::io::Result<()> {
    serde_json::to_writer(&mut *writer, letter).map_err(std::io::Error::other)?;
    writer.write_all(b"\n")
}

fn temp_path(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dead-letter.ndjson".into());
    output.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
