//! The pass of `sync` over a Bulk Data `$export` instead of a search
//! (issue 14, item 4): for a first run over a long history, where paging a
//! search over millions of reports costs the server most. The server
//! exports the DiagnosticReports the filters select (`_typeFilter`, and
//! `_since` = `pull.since`); the NDJSON files are read in batches of
//! `pull.page_size` reports, each batch through the same engine as a search
//! window ([`super::Pass::window`]: bounded concurrency, dead letters, the
//! panic guard); the checkpoint goes to the manifest's `transactionTime`,
//! so the next scheduled pass searches `_lastUpdated` from there and finds
//! every change made since the export began.
//!
//! A line of a file that holds no report (not JSON, longer than
//! `limits.report_bytes`) is dead-lettered with its file and line number
//! and the pass goes on; the job is deleted on the server once every file
//! was read.
//!
//! The checkpoint rule is the search pass's: a report that failed for a
//! reason a retry may fix holds it at its `meta.lastUpdated` (the next pass
//! searches from there); a stop request holds it at `pull.since`, since the
//! files not yet read are unknown. A server that does not export (404, 405,
//! 501) is answered `None`: the caller runs the search pass instead.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{Checkpoint, Pass, PassSummary, save_checkpoint};
use crate::config::Config;
use crate::fhir::bulk::{
    BulkError, ExportRequest, Kickoff, NdjsonFile, delete_job, kick_off, wait_for_manifest,
};
use crate::pull::{Filters, rfc3339};
use crate::run::apply::apply_report;
use crate::run::{RunError, Worker};
use crate::state::{Checkpoints, stream_key};

/// The filters of a run as DiagnosticReport search parameters for `_typeFilter`.
pub fn export_filter(filters: &Filters) -> Vec<(String, String)> {
    let mut filter = Vec::new();
    if !filters.category.is_empty() {
        filter.push(("category".to_owned(), filters.category.join(",")));
    }
    if !filters.status.is_empty() {
        filter.push(("status".to_owned(), filters.status.join(",")));
    }
    for date in &filters.date {
        filter.push(("date".to_owned(), date.clone()));
    }
    if let Some(subject) = &filters.subject {
        filter.push(("subject".to_owned(), subject.clone()));
    }
    filter
}

/// One pass over an export; `Ok(None)` when the server does not export.
/// `max_wait` bounds the time the server may take to prepare the files.
pub async fn run_export_with(
    config: Config,
    dry_run: bool,
    transactions: &mut (dyn std::io::Write + Send),
    stop: &CancellationToken,
    max_wait: Duration,
) -> Result<Option<PassSummary>, RunError> {
    let started = Instant::now();
    let stream = stream_key(&config.fhir.url, &config.filters());
    // The same checkpoint store and leader lock as the search pass.
    let store = Checkpoints::open(&config.state, &stream).await?;
    let since = config.since()?;
    let dead_letter = config.state.dir.join("dead-letter.ndjson");
    let worker = Worker::connect(config, !dry_run).await?;
    if !worker.capabilities.bulk_export {
        tracing::info!("the server's CapabilityStatement lists no $export: paged search instead");
        return Ok(None);
    }
    let request = ExportRequest {
        filter: export_filter(&worker.config.filters()),
        since,
    };
    let status = match kick_off(&worker.client, &request)
        .await
        .map_err(export_error)?
    {
        Kickoff::Started { status } => status,
        Kickoff::Unsupported { status } => {
            tracing::info!(
                status,
                "the server does not export ($export): paged search instead"
            );
            return Ok(None);
        }
    };
    let manifest = wait_for_manifest(&worker.client, &status, max_wait)
        .await
        .map_err(export_error)?;
    tracing::info!(
        files = manifest.files.len(),
        transaction_time = %rfc3339(manifest.transaction_time),
        "$export ready"
    );
    let mut pass = Pass {
        summary: PassSummary {
            dry_run,
            json_patch_supported: worker.capabilities.json_patch,
            ..PassSummary::default()
        },
        checkpoint: Checkpoint::new(manifest.transaction_time),
        output: transactions,
        dead_letter: &dead_letter,
    };
    let context = worker.apply_context(dry_run);
    let batch_size = (worker.config.pull.page_size as usize).max(1);
    let concurrency = worker.config.write.concurrent_reports;
    'files: for url in &manifest.files {
        let mut file = NdjsonFile::open(&worker.client, url, worker.limits.report_bytes)
            .await
            .map_err(export_error)?;
        loop {
            let mut batch = Vec::with_capacity(batch_size);
            let mut lines = 0;
            while lines < batch_size {
                let Some(line) = file.next().await.map_err(export_error)? else {
                    break;
                };
                lines += 1;
                match line.resource {
                    Ok(report) => batch.push(report),
                    Err(reason) => {
                        if !pass.bad_line(file.url(), line.number, &reason) {
                            // Without its dead letter the line would be lost:
                            // the next pass reads from the start again.
                            pass.checkpoint
                                .failed(since.unwrap_or(time::OffsetDateTime::UNIX_EPOCH));
                        }
                    }
                }
            }
            if lines == 0 {
                break;
            }
            if batch.is_empty() {
                continue;
            }
            if stop.is_cancelled() {
                pass.checkpoint.stopped(since);
                break 'files;
            }
            pass.summary.windows += 1;
            let not_started = pass
                .window(batch, concurrency, stop, |report| {
                    apply_report(&context, report)
                })
                .await?;
            if not_started.is_some() {
                pass.checkpoint.stopped(since);
                break 'files;
            }
        }
    }
    let mut summary = pass.summary;
    summary.interrupted = pass.checkpoint.is_stopped();
    if !summary.interrupted && !dry_run {
        // Every file was read: the job's files need not wait for their expiry.
        if let Err(error) = delete_job(&worker.client, &status).await {
            tracing::warn!(error = %crate::error::error_chain(&error), "cannot delete the export job");
        }
    }
    if let Some(checkpoint) = pass.checkpoint.end() {
        summary.checkpoint = Some(rfc3339(checkpoint));
        if !dry_run {
            save_checkpoint(&store, &stream, checkpoint).await?;
        }
    }
    let stats = worker.client.stats();
    summary.requests = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    summary.retries = stats.retries.load(std::sync::atomic::Ordering::Relaxed);
    summary.duration_secs = started.elapsed().as_secs_f64();
    Ok(Some(summary))
}

/// A failed export as a run error: what the server said, or why its answer
/// cannot be used (a refusal: the run stops, the checkpoint stays).
fn export_error(error: BulkError) -> RunError {
    match error {
        BulkError::Fhir(error) => RunError::Fhir(error),
        other => RunError::Fhir(crate::fhir::FhirError::Unstable {
            url: "$export".into(),
            reason: other.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_filters_become_the_export_filter() {
        let filters = Filters {
            category: vec!["a|RAD".into(), "b|X".into()],
            status: vec!["final".into()],
            date: vec!["ge2024-01-01".into(), "lt2025-01-01".into()],
            subject: Some("Patient/p".into()),
        };
        let names: Vec<String> = export_filter(&filters)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            names,
            [
                "category=a|RAD,b|X",
                "status=final",
                "date=ge2024-01-01",
                "date=lt2025-01-01",
                "subject=Patient/p"
            ]
        );
        assert!(export_filter(&Filters::default()).is_empty());
    }
}
