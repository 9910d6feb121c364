//! `reportsplit reprocess`: retry the reports of a dead-letter file.
//!
//! Each entry's report is read again (its *current* version: a report fixed
//! at the source since it failed is retried as fixed) and applied like a
//! sync would. Reports that now succeed, are already current, are skipped
//! for a counted reason or were deleted leave the file; the ones that still
//! fail stay, with their new reason and time. The file is rewritten
//! atomically ([`crate::atomic`]), so a crash leaves either the old or the
//! new list. Entries not reached (stopped by a signal, or the server went
//! down) are kept as they were.
//!
//! The state directory's lock is held while reprocessing, so a backfill or
//! a sync on the same state directory cannot run at the same time. `serve`
//! holds no state lock and may append meanwhile: the letters it appends are
//! copied, under the dead-letter file's own lock, before the file is replaced.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt as _;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::atomic::AtomicFile;
use crate::config::Config;
use crate::error::Class;
use crate::run::apply::{ApplyContext, ApplyError, Outcome, apply_report};
use crate::run::dead_letter::DeadLetter;
use crate::run::{Ending, Panicked, RunError, Tally, Worker, drive, settle};
use crate::state::StateStore;

/// What `reportsplit reprocess` is asked to do.
#[derive(Debug, Clone)]
pub struct ReprocessOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// The dead-letter file (NDJSON).
    pub dead_letter: PathBuf,
    /// Where the entries that still fail go; default: `dead_letter`, rewritten.
    pub output: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ReprocessError {
    /// See [`Class`]: a dead-letter file that cannot be read or written is
    /// the operator's to fix.
    pub fn class(&self) -> Class {
        match self {
            ReprocessError::Run(error) => error.class(),
            ReprocessError::File { .. } => Class::Config,
        }
    }
}

/// What a reprocess run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReprocessSummary {
    /// Dead-letter entries read (not counting unreadable lines).
    pub entries: u64,
    /// The reports retried; the failed ones remain in the output file.
    pub tally: Tally,
    /// Lines for a report that an earlier line already named.
    pub duplicates: u64,
    /// Lines that are not dead-letter entries; kept verbatim.
    pub unreadable: u64,
    /// Entries not tried (stopped early); kept as they were.
    pub not_tried: u64,
    pub interrupted: bool,
    pub unreachable: Option<String>,
    pub output: String,
    pub duration_secs: f64,
}

impl ReprocessSummary {
    /// How the run ended ([`Ending::of_batch`]): reports still failing are
    /// the failures.
    pub fn ending(&self) -> Ending {
        Ending::of_batch(
            self.unreachable.is_some(),
            self.interrupted,
            self.tally.failed_total() > 0,
        )
    }
}

impl std::fmt::Display for ReprocessSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} dead letters: {} duplicates, {} unreadable, {} not tried",
            self.entries, self.duplicates, self.unreadable, self.not_tried,
        )?;
        writeln!(f, "{}", self.tally)?;
        if let Some(reason) = &self.unreachable {
            writeln!(f, "stopped: the server is unreachable ({reason})")?;
        } else if self.interrupted {
            writeln!(f, "interrupted")?;
        }
        write!(
            f,
            "remaining entries in {}; {:.1} s",
            self.output, self.duration_secs
        )
    }
}

/// Runs `reportsplit reprocess` as configured by `options`.
pub async fn run(
    options: &ReprocessOptions,
    shutdown: CancellationToken,
) -> Result<ReprocessSummary, ReprocessError> {
    let config = Config::load(&options.config).map_err(RunError::from)?;
    let output = options.output.as_deref().unwrap_or(&options.dead_letter);
    run_with(config, &options.dead_letter, output, shutdown).await
}

/// What to do with one line.
enum Step {
    /// A dead letter: read its report again and apply it.
    Retry(String, DeadLetter),
    /// Not a dead-letter entry: copied as it is.
    Verbatim(String),
    /// A report an earlier line already named: dropped.
    Duplicate,
}

/// A retried report: the version read (for its new dead letter) and the result.
type Retried = (Option<String>, Result<Outcome, ApplyError>);

/// [`run`] with a loaded config; `output` may be `input` (atomic rewrite).
pub async fn run_with(
    config: Config,
    input: &Path,
    output: &Path,
    shutdown: CancellationToken,
) -> Result<ReprocessSummary, ReprocessError> {
    let started = Instant::now();
    let _lock = StateStore::open(&config.state.dir).map_err(RunError::from)?;
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReprocessError::File { path, source }
    };
    let reader = BufReader::new(File::open(input).map_err(file_error(input))?);
    let concurrency = config.write.concurrent_reports;
    let worker = Worker::connect(config, true).await?;
    let context = worker.apply_context(false);
    let context = &context;

    let mut out = AtomicFile::create(output).map_err(file_error(output))?;
    let temp = out.temp_path().to_path_buf();
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
        let jobs = futures::stream::iter(entries).map(|line| {
            let (step, id) = match DeadLetter::parse(&line) {
                None => (Step::Verbatim(line), None),
                Some((letter, _)) if !named.insert(letter.report.clone()) => {
                    (Step::Duplicate, None)
                }
                Some((letter, id)) => {
                    let version = letter.version_id.clone();
                    (Step::Retry(line, letter), Some((id, version)))
                }
            };
            let job = async move {
                match id {
                    Some((id, version)) => Some(retry(context, &id, version).await),
                    None => None,
                }
            };
            (step, job)
        });
        let mut results = std::pin::pin!(drive(jobs, concurrency, &stop));
        while let Some((step, retried)) = results.next().await {
            let writer = out.writer();
            match step {
                Step::Verbatim(line) => {
                    summary.unreadable += 1;
                    writeln!(writer, "{line}").map_err(file_error(&temp))?;
                }
                Step::Duplicate => {
                    summary.entries += 1;
                    summary.duplicates += 1;
                }
                Step::Retry(line, letter) => {
                    summary.entries += 1;
                    let (version, result) = match retried {
                        Ok(Some((version, result))) => (version, settle(Ok(result))),
                        Ok(None) | Err(Panicked) => {
                            (letter.version_id.clone(), settle(Err(Panicked)))
                        }
                    };
                    match &result {
                        Err(failure) if failure.class().is_server_down() => {
                            summary.not_tried += 1;
                            stop.cancel();
                            writeln!(writer, "{line}").map_err(file_error(&temp))?;
                            summary.unreachable.get_or_insert_with(|| {
                                "the server stopped answering; the remaining entries are kept"
                                    .into()
                            });
                            continue;
                        }
                        Err(failure) => {
                            tracing::warn!(report = %letter.report, reason = %failure.key(), "still failing");
                            let letter = DeadLetter {
                                version_id: version,
                                ..letter
                            }
                            .failed_again(failure);
                            write_json_line(writer, &letter).map_err(file_error(&temp))?;
                        }
                        Ok(_) => {}
                    }
                    summary.tally.record(&result);
                }
            }
        }
    }
    if let Some(error) = read_error {
        return Err(file_error(input)(error));
    }
    // Whatever was not reached stays as it was; so do the letters appended
    // meanwhile (serve writes beside a reprocess): they are copied under the
    // writers' lock, and the file replaced before it is released (see
    // [`crate::run::dead_letter::DeadLetterFile`]).
    let _writers = if input == output {
        let guard = File::open(input).map_err(file_error(input))?;
        guard.lock().map_err(file_error(input))?;
        Some(guard)
    } else {
        None
    };
    for line in lines {
        let line = line.map_err(file_error(input))?;
        if line.trim().is_empty() {
            continue;
        }
        summary.entries += 1;
        summary.not_tried += 1;
        writeln!(out.writer(), "{line}").map_err(file_error(&temp))?;
    }
    out.commit().map_err(file_error(output))?;
    summary.interrupted = shutdown.is_cancelled();
    summary.duration_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Reads the report again (its current version) and applies it. A report
/// gone since is [`Outcome::Gone`]; a failed read keeps the letter's version.
async fn retry(context: &ApplyContext<'_>, id: &str, version: Option<String>) -> Retried {
    let report = match context.client.read("DiagnosticReport", id).await {
        Ok(Some(response)) => response.body,
        Ok(None) => return (version, Ok(Outcome::Gone)),
        Err(error) => return (version, Err(ApplyError::Fhir(error))),
    };
    let version_read = report
        .pointer("/meta/versionId")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    (version_read, apply_report(context, report).await)
}

fn write_json_line(writer: &mut impl std::io::Write, letter: &DeadLetter) -> std::io::Result<()> {
    serde_json::to_writer(&mut *writer, letter).map_err(std::io::Error::other)?;
    writer.write_all(b"\n")
}
