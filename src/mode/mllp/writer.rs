//! The listener's writer: drains the spool to the FHIR server.
//!
//! Rounds: the writer claims up to `concurrency` messages from the spool
//! ([`MessageSpool::claim`]: oldest first, none whose order has an older
//! message waiting, so the messages of one order are written in the order
//! they arrived, one after another, in every replica sharing a PostgreSQL
//! spool), evaluates each again (pure, cheap) and stores and enriches its
//! reports through [`Ingest`] ([`crate::run::drive`]). A message written leaves
//! the spool; one that fails for good (its patient unknown, refused by the
//! server…) becomes a dead letter; one that meets a server down or
//! overloaded is tried again after a growing pause (1 s, doubling to 60 s).
//! A crash between a write and the spool's removal only causes a harmless
//! second pass: the report is found by its identifier, unchanged.

use std::time::Duration;

use futures::StreamExt as _;
use reportsplit_hl7::{Verdict, evaluate};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::MllpModeError;
use super::spool::MessageSpool;
use crate::hl7::{Hl7Tally, Ingest, IngestError, Ingested};
use crate::metrics::Metrics;
use crate::run::{Worker, drive};
use crate::state::spool::Finish;

/// Longest pause before a message is tried again.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often the writer looks at the spool without being woken.
const IDLE_LOOK: Duration = Duration::from_secs(1);
/// How often dead letters past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What the writer did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct WriterSummary {
    pub tally: Hl7Tally,
    /// Messages that left the spool written.
    pub done: u64,
    /// Messages that became dead letters.
    pub buried: u64,
    /// Attempts put off to be tried again.
    pub retries: u64,
}

impl std::fmt::Display for WriterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages written, {} dead letters, {} retries; {}",
            self.done, self.buried, self.retries, self.tally
        )
    }
}

/// Drains `spool` until `stop`; returns what it did.
pub async fn drain(
    worker: &Worker,
    spool: &MessageSpool,
    spooled: &Notify,
    metrics: &Metrics,
    concurrency: usize,
    retention: Duration,
    stop: &CancellationToken,
) -> Result<WriterSummary, MllpModeError> {
    let ingest = Ingest::new(worker)?;
    let mut summary = WriterSummary::default();
    let mut last_prune = Instant::now();
    while !stop.is_cancelled() {
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            spool.prune_dead(retention).await?;
        }
        let round = spool.claim(concurrency).await?;
        if round.is_empty() {
            tokio::select! {
                () = stop.cancelled() => break,
                () = spooled.notified() => {}
                () = tokio::time::sleep(IDLE_LOOK) => {}
            }
            continue;
        }
        let ingest = &ingest;
        let jobs = futures::stream::iter(round).map(|claim| {
            let body = claim.body.clone();
            let job = async move { write_message(ingest, &body).await };
            (claim, job)
        });
        let mut results = drive(jobs, concurrency, stop);
        while let Some((claim, result)) = results.next().await {
            let (finish, results) = result.unwrap_or_else(|_| {
                (
                    Finish::Dead {
                        reason: "panic".into(),
                        message: "the mapping or the writer panicked".into(),
                    },
                    Vec::new(),
                )
            });
            summary.tally.messages += 1;
            for result in &results {
                summary.tally.record(result);
            }
            let finish = match finish {
                Finish::Retry { reason, .. } => {
                    let attempts = claim.attempts + 1;
                    let pause = Duration::from_secs(1u64 << attempts.min(6)).min(MAX_BACKOFF);
                    summary.retries += 1;
                    metrics.hl7_message("retried");
                    tracing::info!(%reason, attempts, pause_secs = pause.as_secs(), "message will be tried again");
                    Finish::Retry { reason, pause }
                }
                Finish::Dead { reason, message } => {
                    summary.buried += 1;
                    metrics.hl7_message("dead");
                    tracing::warn!(%reason, "message is a dead letter");
                    Finish::Dead { reason, message }
                }
                Finish::Done => {
                    summary.done += 1;
                    metrics.hl7_message("written");
                    Finish::Done
                }
            };
            spool.finish(claim, &finish).await?;
        }
    }
    Ok(summary)
}

/// Stores and enriches the reports of one message.
async fn write_message(
    ingest: &Ingest<'_>,
    bytes: &[u8],
) -> (Finish, Vec<Result<Ingested, IngestError>>) {
    let evaluation = evaluate(bytes, &ingest.settings);
    let reports = match evaluation.verdict {
        Verdict::Accept(reports) => reports,
        Verdict::Ignore(_) => return (Finish::Done, Vec::new()),
        // The configuration changed since the message was acknowledged.
        Verdict::Refuse(problem) => {
            return (
                Finish::Dead {
                    reason: problem.key(),
                    message: problem.message,
                },
                Vec::new(),
            );
        }
    };
    let mut results = Vec::with_capacity(reports.len());
    for report in &reports {
        results.push(ingest.ingest(report).await);
    }
    let transient = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .find(|e| !e.is_permanent());
    let permanent = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .find(|e| e.is_permanent());
    let written = match (transient, permanent) {
        (Some(error), _) => Finish::Retry {
            reason: error.key(),
            pause: Duration::ZERO,
        },
        (None, Some(error)) => Finish::Dead {
            reason: error.key(),
            message: error.to_string(),
        },
        (None, None) => Finish::Done,
    };
    (written, results)
}
