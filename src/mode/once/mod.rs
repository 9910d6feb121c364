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
//!
//! A report whose work panics is written to the dead-letter file
//! (`dead-letter.ndjson` in the state directory; `reportsplit reprocess`
//! retries it) and counts as handled for the checkpoint: retrying it would
//! panic again, and holding the checkpoint before it would make every later
//! pass re-read everything after it. It still counts as failed (exit 3).

mod checkpoint;
pub mod export;

use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt as _;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::error_chain;
use crate::pull::{
    Collected, Window, collect_window, collect_window_bounded, last_updated, rfc3339, split_window,
};
use crate::run::apply::{ApplyError, Outcome, apply_report, reference};
use crate::run::dead_letter::{self, DeadLetter, DeadLetterFile};
use crate::run::{Ending, Failure, RunError, Tally, Worker, drive, per_second, settle};
use crate::state::{Checkpoints, StateError, stream_key};
pub use checkpoint::Checkpoint;

/// What a pass is asked to do.
#[derive(Debug, Clone)]
pub struct OnceOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// Print the transactions (or write them to `transactions_out`); write
    /// nothing to the server and leave the checkpoint where it is.
    pub dry_run: bool,
    /// Where the transaction Bundles go (NDJSON), instead of stdout.
    pub transactions_out: Option<PathBuf>,
    /// Read the reports from a Bulk Data `$export` (see [`export`]), falling
    /// back to the search pass where the server does not export.
    pub from_export: bool,
    /// `postgres://…`: overrides `[state] url`.
    pub state_url: Option<String>,
}

/// How long a server may take to prepare an export before the pass gives up
/// (its checkpoint unmoved).
pub const EXPORT_MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// What a pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassSummary {
    pub tally: Tally,
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
    /// Where reports that panicked were written, if any did.
    pub dead_letter: Option<String>,
    pub duration_secs: f64,
}

impl PassSummary {
    /// How the pass ended: failures outrank a stop request.
    pub fn ending(&self) -> Ending {
        if self.tally.failed_total() > 0 {
            Ending::Partial
        } else if self.interrupted {
            Ending::Interrupted
        } else {
            Ending::Complete
        }
    }
}

impl std::fmt::Display for PassSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.tally)?;
        write!(
            f,
            "{} windows, {} duplicates; {} requests, {} retries; {:.1} s ({:.1} reports/s)",
            self.windows,
            self.duplicates,
            self.requests,
            self.retries,
            self.duration_secs,
            per_second(self.tally.seen, self.duration_secs),
        )?;
        if let Some(path) = &self.dead_letter {
            write!(
                f,
                "\nreports that panicked are in {path} (retry: reportsplit reprocess)"
            )?;
        }
        if self.interrupted {
            write!(
                f,
                "\nstopped early; the next run goes on from the checkpoint"
            )?;
        }
        Ok(())
    }
}

/// Runs one pass as configured by `options`, ending early when `stop` is
/// cancelled.
pub async fn run(options: &OnceOptions, stop: CancellationToken) -> Result<PassSummary, RunError> {
    let config = Config::load(&options.config)?.with_state_url(options.state_url.as_deref())?;
    let mut sink: Box<dyn std::io::Write + Send> = match &options.transactions_out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|source| RunError::Output {
                path: path.display().to_string(),
                source,
            })?,
        )),
        None if options.dry_run => Box::new(std::io::stdout()),
        None => Box::new(std::io::sink()),
    };
    let exported = if options.from_export {
        export::run_export_with(
            config.clone(),
            options.dry_run,
            &mut sink,
            &stop,
            EXPORT_MAX_WAIT,
        )
        .await?
    } else {
        None
    };
    let summary = match exported {
        Some(summary) => summary,
        None => run_with(config, options.dry_run, &mut sink, &stop).await?,
    };
    sink.flush().map_err(|source| RunError::Output {
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
) -> Result<PassSummary, RunError> {
    let started = Instant::now();
    let stream = stream_key(&config.fhir.url, &config.filters());
    let store = Checkpoints::open(&config.state, &stream).await?;
    let saved = store.load(&stream).await?;
    let overlap = time::Duration::seconds(config.pull.overlap_secs as i64);
    let since = match &saved {
        Some(checkpoint) => Some(
            OffsetDateTime::parse(checkpoint, &time::format_description::well_known::Rfc3339)
                .map_err(|_| StateError::Checkpoint {
                    place: store.place(),
                    value: checkpoint.clone(),
                })?
                - overlap,
        ),
        None => config.since()?,
    };
    let window = Window {
        since,
        until: OffsetDateTime::now_utc(),
    };
    let dead_letter = config.state.dir.join("dead-letter.ndjson");

    let worker = Worker::connect(config, !dry_run).await?;
    let mut pass = Pass {
        summary: PassSummary {
            dry_run,
            json_patch_supported: worker.capabilities.json_patch,
            ..PassSummary::default()
        },
        checkpoint: Checkpoint::new(window.until),
        output: transactions,
        dead_letter: &dead_letter,
    };
    let context = worker.apply_context(dry_run);
    // Windows still to do, the earliest last. A window holding more reports
    // than `pull.max_window_reports` is split in time halves, so a first run
    // over a large backlog keeps memory bounded and checkpoints as it goes.
    let mut pending = vec![window];
    while let Some(part) = pending.pop() {
        if stop.is_cancelled() {
            pass.checkpoint.stopped(part.since);
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
        pass.summary.duplicates += collected.duplicates as u64;
        pass.summary.windows += 1;
        tracing::info!(reports = collected.reports.len(), since = ?part.since.map(rfc3339), until = %rfc3339(part.until), "window collected");
        let concurrency = worker.config.write.concurrent_reports;
        if let Some(not_started) = pass
            .window(collected.reports, concurrency, stop, |report| {
                apply_report(&context, report)
            })
            .await?
        {
            pass.checkpoint.stopped(Some(not_started));
            break;
        }
        // Checkpoint after every window that leaves nothing failed behind it.
        if !dry_run && pass.checkpoint.part_may_be_saved() && !pending.is_empty() {
            save_checkpoint(&store, &stream, part.until).await?;
        }
    }

    let mut summary = pass.summary;
    summary.interrupted = pass.checkpoint.is_stopped();
    if let Some(checkpoint) = pass.checkpoint.end() {
        summary.checkpoint = Some(rfc3339(checkpoint));
        if !dry_run {
            save_checkpoint(&store, &stream, checkpoint).await?;
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

async fn save_checkpoint(
    store: &Checkpoints,
    stream: &str,
    checkpoint: OffsetDateTime,
) -> Result<(), RunError> {
    let saved_at = rfc3339(OffsetDateTime::now_utc());
    store.save(stream, &rfc3339(checkpoint), &saved_at).await?;
    Ok(())
}

/// A pass in progress: its counts, its checkpoint and its outputs.
struct Pass<'o> {
    summary: PassSummary,
    checkpoint: Checkpoint,
    output: &'o mut (dyn std::io::Write + Send),
    /// Where a report that panics goes (opened only if one does).
    dead_letter: &'o Path,
}

impl Pass<'_> {
    /// Works on a window's reports through [`drive`], `work` being the
    /// work on one report ([`apply_report`]; tests give one that panics).
    /// Returns `meta.lastUpdated` of the earliest report a stop request kept
    /// from starting, if one did.
    async fn window<F>(
        &mut self,
        reports: Vec<Value>,
        concurrency: usize,
        stop: &CancellationToken,
        work: impl Fn(Value) -> F + Sync,
    ) -> Result<Option<OffsetDateTime>, RunError>
    where
        F: Future<Output = Result<Outcome, ApplyError>> + Send,
    {
        // A report without meta.lastUpdated counts as the earliest possible.
        let updated: Vec<OffsetDateTime> = reports
            .iter()
            .map(|report| last_updated(report).unwrap_or(OffsetDateTime::UNIX_EPOCH))
            .collect();
        // Counted as the stream hands reports out, in order.
        let started = std::sync::atomic::AtomicUsize::new(0);
        let jobs = futures::stream::iter(reports.into_iter().zip(updated.iter().copied())).map(
            |(report, updated)| {
                started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let key = (dead_letter::identity(&report), updated);
                (key, work(report))
            },
        );
        let mut results = std::pin::pin!(drive(jobs, concurrency, stop));
        while let Some(((identity, updated), result)) = results.next().await {
            let result = settle(result);
            match &result {
                Ok(Outcome::Written { bundle, .. } | Outcome::Planned { bundle, .. }) => {
                    self.write_line(bundle)?;
                }
                Ok(_) => {}
                Err(failure) => {
                    tracing::warn!(report = %reference(&identity), error = %error_chain(failure), "report failed");
                    if !self.dead_lettered(&identity, failure) {
                        self.checkpoint.failed(updated);
                    }
                }
            }
            self.summary.tally.record(&result);
        }
        Ok(
            updated[started.load(std::sync::atomic::Ordering::Relaxed)..]
                .iter()
                .copied()
                .min(),
        )
    }

    /// Writes a report that will fail again the same way (a panic, a report
    /// over a limit: [`Failure::is_permanent`]) to the dead-letter file;
    /// `false` for any other failure (the next pass retries it) or when the
    /// file cannot be written (then the checkpoint must hold it, or it would
    /// be lost).
    fn dead_lettered(&mut self, identity: &Value, failure: &Failure) -> bool {
        if !failure.is_permanent() {
            return false;
        }
        let written = DeadLetterFile::append(self.dead_letter)
            .and_then(|file| file.write(&DeadLetter::new(identity, failure)));
        match written {
            Ok(()) => {
                self.summary.dead_letter = Some(self.dead_letter.display().to_string());
                true
            }
            Err(error) => {
                tracing::error!(error = %error, path = %self.dead_letter.display(), "cannot write the dead-letter file");
                false
            }
        }
    }

    /// Dead-letters a line of an export file that holds no report and
    /// counts it; `false` when the file cannot be written (then the
    /// checkpoint must hold, or the line would be lost).
    fn bad_line(&mut self, file: &str, line: u64, reason: &str) -> bool {
        tracing::warn!(
            file,
            line,
            reason,
            "a bad line in an export file; dead-lettered"
        );
        self.summary.tally.record_bad_line();
        let written = DeadLetterFile::append(self.dead_letter)
            .and_then(|letters| letters.write(&DeadLetter::bad_line(file, line, reason)));
        match written {
            Ok(()) => {
                self.summary.dead_letter = Some(self.dead_letter.display().to_string());
                true
            }
            Err(error) => {
                tracing::error!(error = %error, path = %self.dead_letter.display(), "cannot write the dead-letter file");
                false
            }
        }
    }

    fn write_line(&mut self, bundle: &Value) -> Result<(), RunError> {
        let output = &mut *self.output;
        let io = |source| RunError::Output {
            path: "transactions output".into(),
            source,
        };
        serde_json::to_writer(&mut *output, bundle).map_err(|e| io(std::io::Error::other(e)))?;
        output.write_all(b"\n").map_err(io)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    const END: OffsetDateTime = datetime!(2026-01-02 0:00 UTC);

    /// A pass over five reports (`r0`..`r4`, a minute apart) whose work
    /// finds each current, except `r2`'s, which panics.
    pub(crate) async fn poisoned_pass(dead_letter: &Path) -> PassSummary {
        poisoned(dead_letter).await.0
    }

    async fn poisoned(dead_letter: &Path) -> (PassSummary, Checkpoint) {
        let reports: Vec<Value> = (0..5)
            .map(|i| {
                json!({"resourceType": "DiagnosticReport", "id": format!("r{i}"),
                    "meta": {"versionId": "1", "lastUpdated": format!("2026-01-01T00:0{i}:00Z")}})
            })
            .collect();
        let mut transactions = Vec::new();
        let mut pass = Pass {
            summary: PassSummary::default(),
            checkpoint: Checkpoint::new(END),
            output: &mut transactions,
            dead_letter,
        };
        let stop = CancellationToken::new();
        let not_started = pass
            .window(reports, 2, &stop, |report| async move {
                assert_ne!(report["id"], "r2", "a poison report");
                Ok::<_, ApplyError>(Outcome::Current)
            })
            .await
            .unwrap();
        assert_eq!(not_started, None);
        (pass.summary, pass.checkpoint)
    }

    #[tokio::test]
    async fn a_panicking_report_is_dead_lettered_and_the_pass_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead-letter.ndjson");
        let (summary, checkpoint) = poisoned(&path).await;
        assert_eq!(summary.tally.current, 4, "{summary}");
        assert_eq!(summary.tally.failed.get("panic"), Some(&1), "{summary}");
        assert_eq!(summary.ending(), Ending::Partial);
        assert_eq!(
            summary.dead_letter.as_deref(),
            Some(&*path.display().to_string())
        );
        // Dead-lettered, so it does not hold the checkpoint (or every later
        // pass would re-read everything after it).
        assert_eq!(checkpoint.end(), Some(END));
        let letters = std::fs::read_to_string(&path).unwrap();
        let (letter, id) = DeadLetter::parse(letters.trim()).unwrap();
        assert_eq!((id.as_str(), letter.reason.as_str()), ("r2", "panic"));
        assert_eq!(letter.version_id.as_deref(), Some("1"));
    }

    /// A line of an export file that holds no report: one failed record,
    /// dead-lettered by its file and line (no content), never `reprocess`ed
    /// as a report; without its letter the caller must hold the checkpoint.
    #[test]
    fn a_bad_export_line_is_dead_lettered_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead-letter.ndjson");
        let mut transactions = Vec::new();
        let mut pass = Pass {
            summary: PassSummary::default(),
            checkpoint: Checkpoint::new(END),
            output: &mut transactions,
            dead_letter: &path,
        };
        assert!(pass.bad_line(
            "http://fhir.test/fhir/files/1.ndjson",
            7,
            "not JSON (truncated)"
        ));
        assert_eq!(pass.summary.tally.failed.get("bad-line"), Some(&1));
        assert_eq!(pass.summary.tally.seen, 1);
        let letters = std::fs::read_to_string(&path).unwrap();
        let letter: Value = serde_json::from_str(letters.trim()).unwrap();
        assert_eq!(
            letter["report"],
            "http://fhir.test/fhir/files/1.ndjson#line=7"
        );
        assert_eq!(letter["reason"], "bad-line");
        assert_eq!(letter["message"], "not JSON (truncated)");
        assert!(
            DeadLetter::parse(letters.trim()).is_none(),
            "no report to retry"
        );

        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        pass.dead_letter = &blocked;
        assert!(!pass.bad_line("http://fhir.test/fhir/files/1.ndjson", 8, "not JSON"));
    }

    #[tokio::test]
    async fn without_its_dead_letter_a_panicking_report_holds_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: the letter cannot be written.
        let path = dir.path().join("dead-letter.ndjson");
        std::fs::create_dir(&path).unwrap();
        let (summary, checkpoint) = poisoned(&path).await;
        assert_eq!(summary.dead_letter, None);
        assert_eq!(checkpoint.end(), Some(datetime!(2026-01-01 0:02 UTC)));
    }
}
