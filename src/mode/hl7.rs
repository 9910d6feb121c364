//! `reportsplit hl7 FILE|DIR|-`: the backfill of an HL7 v2 archive. Each
//! file (a directory's files, in name order; `-` is stdin) is cut into its
//! messages (FHS/BHS batches or plain streams), each message evaluated
//! (`reportsplit-hl7`), and each report it carries stored and enriched
//! through [`Ingest`], several at a time. Like `backfill`: a progress bar
//! (or log lines), a summary, and a dead-letter file (NDJSON: file and
//! position, MSH-10, reason; never the content) for every message that is
//! refused (AE/AR) or fails; a server that stops answering stops the run.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use reportsplit_hl7::{Verdict, evaluate, split_messages};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::Class;
use crate::hl7::dead_letter::{Hl7DeadLetter, Hl7DeadLetterFile};
use crate::hl7::{Hl7Tally, Ingest, IngestError};
use crate::pull::rfc3339;
use crate::run::progress::{Progress, ProgressMode};
use crate::run::{Ending, RunError, Worker, drive, from_run_errors, per_second};

/// What `reportsplit hl7` is asked to do.
#[derive(Debug, Clone)]
pub struct Hl7FilesOptions {
    pub config: PathBuf,
    /// Files, directories, or `-` for stdin.
    pub inputs: Vec<PathBuf>,
    /// Messages in flight at once.
    pub concurrency: usize,
    /// Default: hl7-dead-letter.ndjson in the state directory.
    pub dead_letter: Option<PathBuf>,
    /// Progress log interval when stderr is not a terminal.
    pub log_every: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Hl7FilesError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot read {path}")]
    Input {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the dead-letter file {path}")]
    DeadLetter {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

from_run_errors!(Hl7FilesError);

impl Hl7FilesError {
    pub fn class(&self) -> Class {
        match self {
            Hl7FilesError::Run(error) => error.class(),
            Hl7FilesError::Input { .. } => Class::Config,
            Hl7FilesError::DeadLetter { .. } => Class::State,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Hl7FilesSummary {
    pub tally: Hl7Tally,
    pub files: u64,
    pub interrupted: bool,
    /// The server stopped answering; the messages not done are not in the
    /// dead-letter file: run the same files again (every write is idempotent).
    pub unreachable: Option<String>,
    pub duration_secs: f64,
    pub dead_letter: String,
}

impl Hl7FilesSummary {
    pub fn messages_per_second(&self) -> f64 {
        per_second(self.tally.messages, self.duration_secs)
    }

    /// [`Ending::of_batch`]; a refused message is a failure too.
    pub fn ending(&self) -> Ending {
        Ending::of_batch(
            self.unreachable.is_some(),
            self.interrupted,
            self.tally.failed_total() > 0 || self.tally.refused_total() > 0,
        )
    }
}

impl std::fmt::Display for Hl7FilesSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.tally)?;
        write!(
            f,
            "{} files in {:.1}s ({:.1} messages/s)",
            self.files,
            self.duration_secs,
            self.messages_per_second()
        )?;
        if self.tally.failed_total() > 0 || self.tally.refused_total() > 0 {
            write!(f, "; dead letters in {}", self.dead_letter)?;
        }
        if self.interrupted {
            write!(f, "; interrupted: run the same files again to finish")?;
        }
        if let Some(reason) = &self.unreachable {
            write!(f, "; stopped, the server is unreachable: {reason}")?;
        }
        Ok(())
    }
}

/// The files named by `inputs`: a directory's regular files in name order.
fn files_of(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, Hl7FilesError> {
    let mut files = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" || !input.is_dir() {
            files.push(input.clone());
            continue;
        }
        let entries = std::fs::read_dir(input).map_err(|source| Hl7FilesError::Input {
            path: input.clone(),
            source,
        })?;
        let mut inside: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        inside.sort();
        files.extend(inside);
    }
    Ok(files)
}

fn read_input(path: &Path) -> Result<Vec<u8>, Hl7FilesError> {
    let error = |source| Hl7FilesError::Input {
        path: path.to_path_buf(),
        source,
    };
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(error)?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(error)
}

/// A run with the configuration file of `options`.
pub async fn run(
    options: &Hl7FilesOptions,
    shutdown: CancellationToken,
) -> Result<Hl7FilesSummary, Hl7FilesError> {
    let config = Config::load(&options.config)?;
    run_with(config, options, shutdown).await
}

/// One message's place, for dead letters and logs.
struct Place {
    source: String,
}

pub async fn run_with(
    config: Config,
    options: &Hl7FilesOptions,
    shutdown: CancellationToken,
) -> Result<Hl7FilesSummary, Hl7FilesError> {
    let started = Instant::now();
    let dead_letter_path = options
        .dead_letter
        .clone()
        .unwrap_or_else(|| config.state.dir.join("hl7-dead-letter.ndjson"));
    let dead_letter = Hl7DeadLetterFile::append(&dead_letter_path).map_err(|source| {
        Hl7FilesError::DeadLetter {
            path: dead_letter_path.clone(),
            source,
        }
    })?;
    let files = files_of(&options.inputs)?;
    let max_message_bytes = config.hl7.max_message_bytes;
    let worker = Worker::connect(config, true).await?;
    let ingest = Ingest::new(&worker)?;
    let summary = Mutex::new(Hl7FilesSummary {
        files: files.len() as u64,
        dead_letter: dead_letter_path.display().to_string(),
        ..Hl7FilesSummary::default()
    });
    let mode = ProgressMode::for_stderr(options.log_every);
    let progress = Progress::new(mode, None, "messages");
    let stop = shutdown.child_token();
    let mut last_log = Instant::now();
    for path in &files {
        if stop.is_cancelled() {
            break;
        }
        let bytes = read_input(path)?;
        let messages = split_messages(&bytes);
        drop(bytes);
        let name = path.display().to_string();
        let jobs =
            futures::stream::iter(messages.into_iter().enumerate()).map(|(index, message)| {
                let place = Place {
                    source: format!("{name}#{}", index + 1),
                };
                let ingest = &ingest;
                let job = async move { handle(ingest, &message, max_message_bytes).await };
                (place, job)
            });
        let mut results = drive(jobs, options.concurrency, &stop);
        while let Some((place, result)) = results.next().await {
            let handled = result.unwrap_or_else(|_| Handled {
                control_id: String::new(),
                verdict: Handling::Failed(vec![IngestFailure::Panic]),
            });
            let mut summary = summary.lock().unwrap_or_else(|e| e.into_inner());
            summary.tally.messages += 1;
            let letter = |reason: String, message: String| Hl7DeadLetter {
                source: place.source.clone(),
                control_id: handled.control_id.clone(),
                reason,
                message,
                time: rfc3339(time::OffsetDateTime::now_utc()),
            };
            match &handled.verdict {
                Handling::Ignored => summary.tally.ignored += 1,
                Handling::Refused { key, message } => {
                    *summary.tally.refused.entry(key.clone()).or_default() += 1;
                    write_letter(&dead_letter, &letter(key.clone(), message.clone()))?;
                }
                Handling::Done(results) => {
                    summary.tally.accepted += 1;
                    for result in results {
                        summary.tally.record(result);
                    }
                    for error in results.iter().filter_map(|r| r.as_ref().err()) {
                        if error.class().is_server_down() {
                            summary.unreachable.get_or_insert_with(|| error.to_string());
                            stop.cancel();
                        } else {
                            write_letter(&dead_letter, &letter(error.key(), error.to_string()))?;
                        }
                    }
                }
                Handling::Failed(failures) => {
                    for failure in failures {
                        *summary.tally.failed.entry(failure.key()).or_default() += 1;
                        write_letter(&dead_letter, &letter(failure.key(), failure.to_string()))?;
                    }
                }
            }
            progress.advance();
            if let ProgressMode::Log(every) = mode
                && last_log.elapsed() >= every
            {
                last_log = Instant::now();
                tracing::info!(messages = summary.tally.messages, file = %name, "hl7 progress");
            }
        }
    }
    progress.finish();
    let mut summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    summary.interrupted = shutdown.is_cancelled();
    summary.duration_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn write_letter(file: &Hl7DeadLetterFile, letter: &Hl7DeadLetter) -> Result<(), Hl7FilesError> {
    file.write(letter)
        .map_err(|source| Hl7FilesError::DeadLetter {
            path: file.path().to_path_buf(),
            source,
        })
}

/// A failure outside the store-and-enrich step.
#[derive(Debug, thiserror::Error)]
enum IngestFailure {
    #[error("the mapping or the writer panicked on this message")]
    Panic,
}

impl IngestFailure {
    fn key(&self) -> String {
        "panic".into()
    }
}

enum Handling {
    Ignored,
    Refused { key: String, message: String },
    Done(Vec<Result<crate::hl7::Ingested, IngestError>>),
    Failed(Vec<IngestFailure>),
}

struct Handled {
    control_id: String,
    verdict: Handling,
}

/// One message: evaluated, then each of its reports ingested in order.
async fn handle(ingest: &Ingest<'_>, message: &[u8], max_message_bytes: usize) -> Handled {
    if message.len() > max_message_bytes {
        return Handled {
            control_id: String::new(),
            verdict: Handling::Refused {
                key: "hl7-too-large".into(),
                message: format!(
                    "the message has {} bytes, over hl7.max_message_bytes ({max_message_bytes})",
                    message.len()
                ),
            },
        };
    }
    let evaluation = evaluate(message, &ingest.settings);
    let control_id = evaluation
        .header
        .as_ref()
        .map(|h| h.control_id.clone())
        .unwrap_or_default();
    let verdict = match evaluation.verdict {
        Verdict::Ignore(_) => Handling::Ignored,
        Verdict::Refuse(problem) => Handling::Refused {
            key: problem.key(),
            message: problem.message,
        },
        Verdict::Accept(reports) => {
            let mut results = Vec::with_capacity(reports.len());
            for report in &reports {
                results.push(ingest.ingest(report).await);
            }
            Handling::Done(results)
        }
    };
    Handled {
        control_id,
        verdict,
    }
}
