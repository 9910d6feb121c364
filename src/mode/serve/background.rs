//! The background worker of `serve`: drains the queue of notified reports
//! through [`crate::run::drive`], reading each report from the server and
//! applying it like sync; a report that fails is dead-lettered. An entry
//! leaves the durable queue only then: written, current, gone, or its dead
//! letter written.

use std::future::Future;
use std::sync::Arc;

use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::enrich::{context, fresh_run};
use super::queue::Queue;
use crate::metrics::Metrics;
use crate::run::apply::{ApplyError, Outcome, apply_report};
use crate::run::dead_letter::{DeadLetter, DeadLetterFile};
use crate::run::{Failure, Panicked, Worker, drive, settle, to_metrics};
use crate::state::queue::Entry;

/// What the background worker shares between its tasks.
pub(super) struct Background {
    pub(super) metrics: Metrics,
    pub(super) queue: Queue,
    /// Where reports that failed are recorded for `reportsplit reprocess`.
    pub(super) dead_letters: DeadLetterFile,
}

/// What the work on one report answers: the report's `meta` (for its dead
/// letter) and the outcome.
pub(super) type Processed = (Option<Value>, Result<Outcome, ApplyError>);

/// The background worker: hands each queued report to `work` ([`process_one`];
/// tests give one that panics) through [`drive`], `concurrency` at a time.
/// Ends when the queue is closed and empty (a stop request closes it; what
/// is left is drained, see [`super::serve`]).
pub(super) async fn process_queue<F>(
    background: Arc<Background>,
    receiver: mpsc::UnboundedReceiver<Entry>,
    concurrency: usize,
    work: impl Fn(String) -> F + Send + Sync,
) where
    F: Future<Output = Processed> + Send,
{
    let background = &background;
    let work = &work;
    let entries = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|entry| (entry, receiver))
    });
    let jobs = entries.map(|Entry { seq, id }| {
        // Started: a notification from now on may be about a newer version.
        background.queue.started(&id);
        let job = work(id.clone());
        ((seq, id), job)
    });
    let queue_closes = CancellationToken::new();
    let mut results = std::pin::pin!(drive(jobs, concurrency, &queue_closes));
    while let Some(((seq, id), result)) = results.next().await {
        let (meta, result) = match result {
            Ok((meta, result)) => (meta, settle(Ok(result))),
            Err(Panicked) => (None, settle(Err(Panicked))),
        };
        // Counted before the dead letter is written: whoever sees the letter
        // sees the failure in /metrics too.
        to_metrics(&background.metrics, &result);
        let reference = format!("DiagnosticReport/{id}");
        match &result {
            Ok(Outcome::Gone) => {
                tracing::info!(report = %reference, "notified report is gone");
                background.queue.done(seq);
            }
            Ok(outcome) => {
                tracing::info!(report = %reference, outcome = outcome_name(outcome), "notified report done");
                background.queue.done(seq);
            }
            Err(failure) => {
                tracing::warn!(report = %reference, reason = %failure.key(), error = %failure, "notified report failed");
                if background.dead_letter(&id, meta, failure) {
                    background.queue.done(seq);
                }
            }
        }
    }
}

impl Background {
    /// Records a failed report for `reportsplit reprocess`: its reference,
    /// the version read (if any) and the reason; no report text. `false`
    /// when it could not be written: then the report stays in the queue,
    /// for the next start.
    fn dead_letter(&self, id: &str, meta: Option<Value>, failure: &Failure) -> bool {
        let mut stub = json!({"resourceType": "DiagnosticReport", "id": id});
        if let Some(meta) = meta {
            stub["meta"] = meta;
        }
        match self.dead_letters.write(&DeadLetter::new(&stub, failure)) {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(error = %error, path = %self.dead_letters.path().display(), "cannot write the dead-letter file; the report stays queued");
                false
            }
        }
    }
}

/// Reads a notified report (the server's copy: see the module doc) and
/// applies it; the report's `meta` comes back for its dead letter.
pub(super) async fn process_one(worker: &Worker, id: String) -> Processed {
    let report = match worker.client.read("DiagnosticReport", &id).await {
        Ok(Some(response)) => response.body,
        Ok(None) => return (None, Ok(Outcome::Gone)),
        Err(error) => return (None, Err(ApplyError::Fhir(error))),
    };
    let run = fresh_run(worker);
    let meta = report.get("meta").cloned();
    (
        meta,
        apply_report(&context(worker, &run, false), report).await,
    )
}

pub(super) fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Current => "current",
        Outcome::Skipped(reason) => reason.key(),
        Outcome::Gone => "deleted",
        Outcome::Written { .. } => "written",
        Outcome::Planned { .. } => "planned",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::queue::{Journal, QueueStore as _};

    /// A report whose work panics is a counted failure with a dead letter,
    /// leaves the queue like a written one, and the others go on.
    #[tokio::test]
    async fn a_panicking_report_is_dead_lettered_and_leaves_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new();
        let journal = Journal::open(dir.path()).unwrap();
        let (queue, committer, entries) =
            super::super::queue::open(Box::new(journal), 10, metrics.clone()).unwrap();
        let ids = ["r1", "poison", "r3"].map(str::to_owned).to_vec();
        assert_eq!(queue.enqueue(ids).await, Ok(3));
        committer.close();
        let letters = dir.path().join("dead.ndjson");
        let background = Background {
            metrics: metrics.clone(),
            queue,
            dead_letters: DeadLetterFile::append(&letters).unwrap(),
        };
        let work = |id: String| async move {
            assert!(id != "poison", "a bug that quotes report text");
            (None, Ok(Outcome::Current))
        };
        process_queue(Arc::new(background), entries, 2, work).await;
        committer.finish().await;

        let text = std::fs::read_to_string(&letters).unwrap();
        let (letter, id) = DeadLetter::parse(text.trim()).unwrap();
        assert_eq!((id.as_str(), letter.reason.as_str()), ("poison", "panic"));
        assert!(!text.contains("report text"), "{text}");
        let exported = metrics.encode();
        assert!(
            exported.contains("reportsplit_reports_failed_total{reason=\"panic\"} 1"),
            "{exported}"
        );
        assert!(
            exported.contains("reportsplit_reports_processed_total{outcome=\"current\"} 2"),
            "{exported}"
        );
        let left = Journal::open(dir.path()).unwrap().left_over();
        assert!(left.is_empty(), "{left:?}");
    }
}
