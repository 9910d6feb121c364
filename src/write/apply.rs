//! Applying a plan: POST the transaction, and on a version conflict re-read
//! the report and plan again.
//!
//! The planner puts `ifMatch` (the version read) on the report update, so a
//! report changed by someone else between our read and our write makes the
//! whole transaction fail with 412 and roll back: we never overwrite a newer
//! version. We then re-read the report, split its current text and re-plan,
//! a bounded number of times. The re-plan appends to whatever the other
//! writer left, so both edits survive.

use reportsplit_split::{Lexicon, extract_as};
use reqwest::StatusCode;
use serde_json::Value;

use crate::fhir::{FhirClient, FhirError};
use crate::map::RunInfo;
use crate::pull::{ReportText, SkipReason, TextLimits, report_text};
use crate::write::{Plan, PlanError, WriteSet, plan, previous_refs};

/// What is needed to work on one report.
pub struct ApplyContext<'a> {
    pub client: &'a FhirClient,
    pub lexicon: &'a Lexicon,
    pub run: &'a RunInfo,
    pub limits: TextLimits,
    /// Re-reads after a 412 before giving up on the report (until the next run).
    pub conflict_retries: u32,
    /// Plan only; hand the transactions to the caller instead of sending them.
    pub dry_run: bool,
}

/// What happened to one report.
#[derive(Debug)]
pub enum Outcome {
    /// The report's tag matches its current text: nothing to write.
    Current,
    /// No text that can be split.
    Skipped(SkipReason),
    /// The report was deleted between the search and the write.
    Gone,
    /// The transaction was committed; `response` is the server's transaction-response Bundle.
    Written {
        observations: usize,
        superseded: usize,
        conflicts: u32,
        bundle: Value,
        response: Value,
    },
    /// Dry run: the transaction that would have been sent.
    Planned {
        observations: usize,
        superseded: usize,
        bundle: Value,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error("planning failed: {0}")]
    Plan(#[from] PlanError),
    #[error("{reference}: still changing after {retries} re-reads (HTTP 412 each time)")]
    Conflict { reference: String, retries: u32 },
    #[error("{reference}: the server refused the transaction: {source}")]
    Rejected {
        reference: String,
        #[source]
        source: FhirError,
    },
}

impl ApplyError {
    /// A stable name for summaries and metrics.
    pub fn key(&self) -> String {
        match self {
            ApplyError::Fhir(FhirError::Status { status, .. }) => {
                format!("http-{}", status.as_u16())
            }
            ApplyError::Fhir(FhirError::Transport { .. }) => "unreachable".into(),
            ApplyError::Fhir(_) => "fhir".into(),
            ApplyError::Plan(_) => "plan".into(),
            ApplyError::Conflict { .. } => "conflict".into(),
            ApplyError::Rejected {
                source: FhirError::Status { status, .. },
                ..
            } => {
                format!("rejected-{}", status.as_u16())
            }
            ApplyError::Rejected { .. } => "rejected".into(),
        }
    }
}

/// `DiagnosticReport/<id>` of a report, for messages (no content).
pub fn reference(report: &Value) -> String {
    format!(
        "DiagnosticReport/{}",
        report.get("id").and_then(Value::as_str).unwrap_or("?")
    )
}

/// Plans and writes one report, re-reading it after each version conflict.
pub async fn apply_report(
    context: &ApplyContext<'_>,
    report: Value,
) -> Result<Outcome, ApplyError> {
    let reference = reference(&report);
    let mut report = report;
    let mut conflicts = 0;
    loop {
        let text = match report_text(&report, context.limits) {
            Ok(text) => text,
            Err(reason) => return Ok(Outcome::Skipped(reason)),
        };
        let set = match plan_report(context, &report, &text).await? {
            Plan::Current => return Ok(Outcome::Current),
            Plan::Write(set) => set,
        };
        let WriteSet {
            bundle,
            observations,
            superseded,
            ..
        } = set;
        if context.dry_run {
            return Ok(Outcome::Planned {
                observations,
                superseded,
                bundle,
            });
        }
        let response = context.client.transaction(&bundle).await?;
        match response.status {
            status if status.is_success() => {
                return Ok(Outcome::Written {
                    observations,
                    superseded,
                    conflicts,
                    bundle,
                    response: response.body,
                });
            }
            // 412 is what If-Match failures return; some servers say 409.
            StatusCode::PRECONDITION_FAILED | StatusCode::CONFLICT => {
                if conflicts >= context.conflict_retries {
                    return Err(ApplyError::Conflict {
                        reference,
                        retries: conflicts,
                    });
                }
                conflicts += 1;
                tracing::info!(report = %reference, conflicts, "the report changed since it was read; re-reading");
                match context
                    .client
                    .read("DiagnosticReport", id_of(&report))
                    .await?
                {
                    Some(fresh) => report = fresh.body,
                    None => return Ok(Outcome::Gone),
                }
            }
            _ => {
                return Err(ApplyError::Rejected {
                    reference,
                    source: response.into_error(),
                });
            }
        }
    }
}

async fn plan_report(
    context: &ApplyContext<'_>,
    report: &Value,
    text: &ReportText,
) -> Result<Plan, ApplyError> {
    let extraction = extract_as(&text.text, context.lexicon, text.headerless);
    let previous = read_previous(context.client, report).await?;
    Ok(plan(report, text, &extraction, &previous, context.run)?)
}

/// The Observations an earlier run linked to the report, which an amended
/// report's plan supersedes. Read concurrently (the client caps the number in
/// flight); ones deleted meanwhile are left out.
async fn read_previous(client: &FhirClient, report: &Value) -> Result<Vec<Value>, FhirError> {
    let reads = previous_refs(report)
        .into_iter()
        .map(|reference| async move {
            let url = client.url(&reference)?;
            let response = client.get(url).await?;
            match response.status {
                StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
                _ => response.success().map(|r| Some(r.body)),
            }
        });
    let results = futures::future::join_all(reads).await;
    results.into_iter().filter_map(Result::transpose).collect()
}

fn id_of(report: &Value) -> &str {
    report.get("id").and_then(Value::as_str).unwrap_or("")
}
