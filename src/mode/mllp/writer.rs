//! The listener's writer: drains the spool to the FHIR server.
//!
//! Rounds: every message waiting (oldest first) is evaluated again (pure,
//! cheap) and its reports stored and enriched through [`Ingest`], several
//! messages at a time ([`crate::run::drive`]). A message whose order is
//! already in the round waits for the next one, so the messages of one
//! order are written in the order they arrived. A message written leaves
//! the spool; one that fails for good (its patient unknown, refused by the
//! server…) becomes a dead letter; one that meets a server down or
//! overloaded is tried again after a growing pause (1 s, doubling to 60 s).
//! A crash between a write and the spool's removal only causes a harmless
//! second pass: the report is found by its identifier, unchanged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use reportsplit_hl7::{Verdict, evaluate};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::MllpModeError;
use crate::hl7::{Hl7Tally, Ingest, IngestError, Ingested};
use crate::pull::rfc3339;
use crate::run::{Worker, drive};
use crate::state::spool::{DeadNote, Spool, SpoolEntry};

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

/// How one message went.
enum Written {
    Done,
    Bury(DeadNote),
    Retry(String),
}

/// Drains `spool` until `stop`; returns what it did.
pub async fn drain(
    worker: &Worker,
    spool: &Arc<Spool>,
    spooled: &Notify,
    concurrency: usize,
    retention: Duration,
    stop: &CancellationToken,
) -> Result<WriterSummary, MllpModeError> {
    let ingest = Ingest::new(worker)?;
    let mut summary = WriterSummary::default();
    let mut later: HashMap<SpoolEntry, (Instant, u32)> = HashMap::new();
    let mut last_prune = Instant::now();
    while !stop.is_cancelled() {
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = Instant::now();
            spool.prune_dead(retention)?;
        }
        let now = Instant::now();
        let pending = spool.pending()?;
        let waiting: HashSet<&SpoolEntry> = pending.iter().collect();
        later.retain(|entry, _| waiting.contains(entry));
        let mut round: Vec<(SpoolEntry, Vec<u8>)> = Vec::new();
        let mut orders: HashSet<String> = HashSet::new();
        for entry in pending {
            let bytes = match spool.read(&entry) {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::warn!(entry = %entry.0, error = %crate::error::error_chain(&error), "cannot read a spooled message");
                    continue;
                }
            };
            let keys = order_keys(&ingest, &bytes);
            let waits = later.get(&entry).is_some_and(|(at, _)| *at > now);
            let behind = keys.iter().any(|k| orders.contains(k));
            orders.extend(keys);
            if !waits && !behind {
                round.push((entry, bytes));
            }
        }
        if round.is_empty() {
            let wake = later
                .values()
                .map(|(at, _)| *at)
                .min()
                .unwrap_or(now + IDLE_LOOK)
                .min(now + IDLE_LOOK);
            tokio::select! {
                () = stop.cancelled() => break,
                () = spooled.notified() => {}
                () = tokio::time::sleep_until(wake) => {}
            }
            continue;
        }
        let ingest = &ingest;
        let jobs = futures::stream::iter(round).map(|(entry, bytes)| {
            let job = async move { write_message(ingest, &bytes).await };
            (entry, job)
        });
        let mut results = drive(jobs, concurrency, stop);
        while let Some((entry, result)) = results.next().await {
            let (written, results) = result.unwrap_or_else(|_| {
                (
                    Written::Bury(note(
                        "",
                        "panic".into(),
                        "the mapping or the writer panicked".into(),
                    )),
                    Vec::new(),
                )
            });
            summary.tally.messages += 1;
            for result in &results {
                summary.tally.record(result);
            }
            match written {
                Written::Done => {
                    summary.done += 1;
                    later.remove(&entry);
                    spool.done(&entry)?;
                }
                Written::Bury(note) => {
                    summary.buried += 1;
                    tracing::warn!(entry = %entry.0, control_id = %note.control_id, reason = %note.reason, "message is a dead letter");
                    later.remove(&entry);
                    spool.bury(&entry, &note)?;
                }
                Written::Retry(reason) => {
                    summary.retries += 1;
                    let attempts = later.get(&entry).map_or(0, |(_, a)| *a) + 1;
                    let pause = Duration::from_secs(1u64 << attempts.min(6)).min(MAX_BACKOFF);
                    tracing::info!(entry = %entry.0, %reason, attempts, pause_secs = pause.as_secs(), "message will be tried again");
                    later.insert(entry, (Instant::now() + pause, attempts));
                }
            }
        }
    }
    Ok(summary)
}

/// The order keys of a spooled message (none when it no longer maps).
fn order_keys(ingest: &Ingest<'_>, bytes: &[u8]) -> Vec<String> {
    match evaluate(bytes, &ingest.settings).verdict {
        Verdict::Accept(reports) => reports.into_iter().map(|r| r.order_key).collect(),
        _ => Vec::new(),
    }
}

fn note(control_id: &str, reason: String, message: String) -> DeadNote {
    DeadNote {
        control_id: control_id.to_owned(),
        reason,
        message,
        time: rfc3339(time::OffsetDateTime::now_utc()),
    }
}

/// Stores and enriches the reports of one message.
async fn write_message(
    ingest: &Ingest<'_>,
    bytes: &[u8],
) -> (Written, Vec<Result<Ingested, IngestError>>) {
    let evaluation = evaluate(bytes, &ingest.settings);
    let control_id = evaluation
        .header
        .as_ref()
        .map(|h| h.control_id.clone())
        .unwrap_or_default();
    let reports = match evaluation.verdict {
        Verdict::Accept(reports) => reports,
        Verdict::Ignore(_) => return (Written::Done, Vec::new()),
        // The configuration changed since the message was acknowledged.
        Verdict::Refuse(problem) => {
            return (
                Written::Bury(note(&control_id, problem.key(), problem.message)),
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
        (Some(error), _) => Written::Retry(error.key()),
        (None, Some(error)) => Written::Bury(note(&control_id, error.key(), error.to_string())),
        (None, None) => Written::Done,
    };
    (written, results)
}
