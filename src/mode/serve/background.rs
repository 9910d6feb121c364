//! The background worker of `serve`: drains the queue of notified reports
//! through [`crate::run::drive`], reading each report from the server and
//! applying it like sync; a report that fails is dead-lettered.

use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::enrich::{context, fresh_run};
use super::queue::Waiting;
use crate::metrics::Metrics;
use crate::run::apply::{ApplyError, Outcome, apply_report};
use crate::run::dead_letter::{DeadLetter, DeadLetterFile};
use crate::run::{Failure, Panicked, Worker, drive, settle, to_metrics};

/// What the background worker shares between its tasks.
pub(super) struct Background {
    pub(super) worker: Arc<Worker>,
    pub(super) metrics: Metrics,
    pub(super) pending: Arc<Mutex<Waiting>>,
    /// Where reports that failed are recorded for `reportsplit reprocess`.
    pub(super) dead_letters: Option<DeadLetterFile>,
}

/// The background worker: reads each queued report from the server and
/// applies it like sync, through [`drive`], `concurrent_reports` at a time.
/// Ends when the queue is closed and empty (a stop request closes it; what
/// is left is drained, see [`serve`]).
pub(super) async fn process_queue(background: Arc<Background>, receiver: mpsc::Receiver<String>) {
    let concurrency = background.worker.config.write.concurrent_reports;
    let background = &background;
    let ids = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|id| (id, receiver))
    });
    let jobs = ids.map(|id| {
        {
            // Started: a notification from now on may be about a newer version.
            let mut waiting = background
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            waiting.started(&id);
            background.metrics.set_queue_depth(waiting.len());
        }
        let job = process_one(&background.worker, id.clone());
        (id, job)
    });
    let queue_closes = CancellationToken::new();
    let mut results = std::pin::pin!(drive(jobs, concurrency, &queue_closes));
    while let Some((id, result)) = results.next().await {
        let (meta, result) = match result {
            Ok((meta, result)) => (meta, settle(Ok(result))),
            Err(Panicked) => (None, settle(Err(Panicked))),
        };
        let reference = format!("DiagnosticReport/{id}");
        match &result {
            Ok(Outcome::Gone) => tracing::info!(report = %reference, "notified report is gone"),
            Ok(outcome) => {
                tracing::info!(report = %reference, outcome = outcome_name(outcome), "notified report done");
            }
            Err(failure) => {
                tracing::warn!(report = %reference, reason = %failure.key(), error = %failure, "notified report failed");
                background.dead_letter(&id, meta, failure);
            }
        }
        to_metrics(&background.metrics, &result);
    }
}

impl Background {
    /// Records a failed report for `reportsplit reprocess`: its reference,
    /// the version read (if any) and the reason; no report text.
    fn dead_letter(&self, id: &str, meta: Option<Value>, failure: &Failure) {
        let Some(file) = &self.dead_letters else {
            return;
        };
        let mut stub = json!({"resourceType": "DiagnosticReport", "id": id});
        if let Some(meta) = meta {
            stub["meta"] = meta;
        }
        if let Err(error) = file.write(&DeadLetter::new(&stub, failure)) {
            tracing::error!(error = %error, "cannot write the dead-letter file");
        }
    }
}

/// Reads a notified report (the server's copy: see the module doc) and
/// applies it; the report's `meta` comes back for its dead letter.
pub(super) async fn process_one(
    worker: &Worker,
    id: String,
) -> (Option<Value>, Result<Outcome, ApplyError>) {
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
