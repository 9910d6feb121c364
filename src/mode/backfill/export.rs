//! `backfill --from-export`: the reports of a Bulk Data `$export` instead of
//! a windowed search, with the embedded store or shared in PostgreSQL.
//!
//! - **One kick-off.** The export is recorded under its request (`_since`,
//!   `_typeFilter`) as soon as it is kicked off: in the state file, or in
//!   `reportsplit_export` under an advisory lock that one worker holds while
//!   it kicks off or polls. A restarted or second worker finds the record
//!   and polls the same job; once the manifest is read it is recorded too.
//! - **Files as windows.** Each NDJSON file is a unit of work under the
//!   windows' own machinery (claims with `SKIP LOCKED`, leases, takeover,
//!   or the state file's window records): its field is
//!   `$export@<transactionTime>` and its bounds are its place in the
//!   manifest (file `i` spans second `i` after the epoch), so the claim,
//!   save, renew and release statements serve both. Its cursor (`reached`)
//!   is the number of lines done: a file taken over is read again from its
//!   start and its first lines passed over unread.
//! - **Bad lines** (not JSON, not a DiagnosticReport, too long) are
//!   dead-lettered with their file and line number; the file goes on.
//! - **The end.** The worker that marks the export finished (one: an
//!   `UPDATE … WHERE NOT finished`) DELETEs the job on the server and moves
//!   the sync checkpoint to the `transactionTime` (never back; in
//!   PostgreSQL only while no sync holds the stream's leadership), so the
//!   scheduled sync searches from there.
//! - **Fallback.** A server whose CapabilityStatement lists no `$export`,
//!   or that answers the kick-off 404/405/501, gets the windowed search.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::window::{WindowEnd, WindowError};
use super::{BackfillError, BackfillPlan, Ledger, Opened, Shared, WindowField};
use crate::fhir::bulk::{
    BulkError, ExportRequest, Kickoff, Line, NdjsonFile, delete_job, kick_off, wait_for_manifest,
};
use crate::fhir::{FhirClient, FhirError};
use crate::mode::once::export::export_filter;
use crate::pull::rfc3339;
use crate::run::{RunError, Worker};
use crate::state::pg::{PgState, Range, WindowSpan};
use crate::state::{ExportRecord, StateError, WindowState};

/// An export whose manifest was read: its files are the backfill's units.
#[derive(Debug, Clone)]
pub(super) struct ExportJob {
    /// The request it was recorded under.
    pub request: String,
    pub status: Url,
    pub transaction_time: OffsetDateTime,
    pub files: Vec<Url>,
    /// Finished by an earlier run: nothing is left to do.
    pub finished: bool,
}

/// What preparing an export came to.
pub(super) enum Prepared {
    Job(ExportJob),
    /// The server does not export: the windowed search instead.
    Unsupported,
    /// A stop request came while the export was being prepared.
    Stopped,
}

impl ExportJob {
    /// The window field of this export's files.
    pub fn field(&self) -> String {
        format!("$export@{}", rfc3339(self.transaction_time))
    }

    /// One unit per file: its key, and its place as the window bounds.
    pub fn units(&self) -> Vec<WindowSpan> {
        let field = self.field();
        (0..self.files.len())
            .map(|index| {
                let (since, until) = file_span(index);
                WindowSpan {
                    key: format!("{field}#{index}"),
                    since,
                    until,
                }
            })
            .collect()
    }

    /// The range of the window table that holds this export's files.
    pub fn range(&self, stream: &str) -> Range {
        Range {
            stream: stream.to_owned(),
            field: self.field(),
            since: file_span(0).0,
            until: file_span(self.files.len()).0,
        }
    }

    /// The file a unit stands for (by the start of its bounds).
    pub fn file_at(&self, since: OffsetDateTime) -> Option<&Url> {
        let index = usize::try_from((since - OffsetDateTime::UNIX_EPOCH).whole_seconds()).ok()?;
        self.files.get(index)
    }
}

/// File `index`'s bounds: second `index` after the epoch.
fn file_span(index: usize) -> (OffsetDateTime, OffsetDateTime) {
    let at = |n: usize| {
        OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX))
    };
    (at(index), at(index + 1))
}

/// The export a backfill asks for: the run's filters, and its range as
/// `_since` (`--by last-updated`) or as `date` bounds in the `_typeFilter`
/// (`--by date`). An export has no upper `_lastUpdated` bound: it reaches to
/// its `transactionTime`.
pub(super) fn request(worker: &Worker, plan: &BackfillPlan) -> ExportRequest {
    let mut filter = export_filter(&worker.config.filters());
    let since = match plan.by {
        WindowField::LastUpdated => Some(plan.since),
        WindowField::Date => {
            filter.push(("date".to_owned(), format!("ge{}", rfc3339(plan.since))));
            filter.push(("date".to_owned(), format!("lt{}", rfc3339(plan.until))));
            None
        }
    };
    ExportRequest { filter, since }
}

/// Finds the export recorded for this request, or kicks one off and
/// records it, then waits for its manifest (one worker at a time with
/// PostgreSQL: the others wait for the lock and find the record).
pub(super) async fn prepare(
    opened: &mut Opened,
    stream: &str,
    worker: &Worker,
    plan: &BackfillPlan,
    owner: &str,
    stop: &CancellationToken,
) -> Result<Prepared, BackfillError> {
    if !worker.capabilities.bulk_export {
        tracing::info!(
            "the server's CapabilityStatement lists no $export: windowed search instead"
        );
        return Ok(Prepared::Unsupported);
    }
    let request = request(worker, plan);
    let key = request.key();
    // Another worker may hold the lock while it polls (up to an hour): a
    // stop request ends the wait.
    let _lock = match opened {
        Opened::Postgres(state) => tokio::select! {
            lock = state.lock_export(stream, &key) => Some(lock?),
            () = stop.cancelled() => return Ok(Prepared::Stopped),
        },
        Opened::Book(_) => None,
    };
    let recorded = match opened {
        Opened::Postgres(state) => state.export(stream, &key).await?,
        Opened::Book(book) => book.export(&key).cloned(),
    };
    let mut record = match recorded {
        Some(record) => {
            tracing::info!(
                finished = record.finished,
                "an export of this request was kicked off before: using it"
            );
            record
        }
        None => {
            let status = match kick_off(&worker.client, &request)
                .await
                .map_err(export_error)?
            {
                Kickoff::Started { status } => status,
                Kickoff::Unsupported { status } => {
                    tracing::info!(
                        status,
                        "the server does not export ($export): windowed search instead"
                    );
                    return Ok(Prepared::Unsupported);
                }
            };
            tracing::info!("$export kicked off");
            let record = ExportRecord {
                status: status.to_string(),
                ..ExportRecord::default()
            };
            save(opened, stream, &key, &record, owner).await?;
            record
        }
    };
    let status = own_url(&worker.client, &record.status)?;
    if record.transaction_time.is_none() {
        let manifest = tokio::select! {
            manifest = wait_for_manifest(&worker.client, &status, crate::mode::once::EXPORT_MAX_WAIT) => manifest.map_err(export_error)?,
            () = stop.cancelled() => return Ok(Prepared::Stopped),
        };
        record.transaction_time = Some(rfc3339(manifest.transaction_time));
        record.files = manifest.files.iter().map(Url::to_string).collect();
        save(opened, stream, &key, &record, owner).await?;
    }
    let time = record.transaction_time.as_deref().unwrap_or_default();
    let transaction_time =
        OffsetDateTime::parse(time, &Rfc3339).map_err(|_| StateError::Checkpoint {
            place: format!("the export record {key}"),
            value: time.to_owned(),
        })?;
    let files = record
        .files
        .iter()
        .map(|file| own_url(&worker.client, file))
        .collect::<Result<Vec<_>, _>>()?;
    tracing::info!(files = files.len(), transaction_time = %time, "$export ready");
    Ok(Prepared::Job(ExportJob {
        request: key,
        status,
        transaction_time,
        files,
        finished: record.finished,
    }))
}

async fn save(
    opened: &mut Opened,
    stream: &str,
    key: &str,
    record: &ExportRecord,
    owner: &str,
) -> Result<(), StateError> {
    match opened {
        Opened::Postgres(state) => state.save_export(stream, key, record, owner).await,
        Opened::Book(book) => book.save_export(key, record.clone()),
    }
}

/// A recorded URL, checked again to be on our server (a state file or
/// table edited by hand must not send our credentials elsewhere).
fn own_url(client: &FhirClient, url: &str) -> Result<Url, BackfillError> {
    let parsed = Url::parse(url).ok().filter(|u| client.is_own(u));
    parsed.ok_or_else(|| {
        BackfillError::Run(RunError::Fhir(FhirError::Unstable {
            url: "$export".into(),
            reason: format!("the recorded export URL {url} is not on the configured server"),
        }))
    })
}

/// A failed kick-off or poll as a run error.
fn export_error(error: BulkError) -> BackfillError {
    BackfillError::Run(match error {
        BulkError::Fhir(error) => RunError::Fhir(error),
        other => RunError::Fhir(FhirError::Unstable {
            url: "$export".into(),
            reason: other.to_string(),
        }),
    })
}

impl From<BulkError> for WindowError {
    fn from(error: BulkError) -> Self {
        match error {
            BulkError::Fhir(error) => error.into(),
            other => WindowError::Search(other.to_string()),
        }
    }
}

/// Reads one file of the export from its saved cursor, a batch of
/// `pull.page_size` lines at a time, saving the lines done after each.
pub(super) async fn read_file(
    shared: &Shared,
    key: &str,
    url: &Url,
    progress: &mut WindowState,
) -> Result<WindowEnd, WindowError> {
    let context = shared.worker.apply_context(false);
    let context = &context;
    read_file_with(shared, key, url, progress, |report| {
        crate::run::apply::apply_report(context, report)
    })
    .await
}

async fn read_file_with<F>(
    shared: &Shared,
    key: &str,
    url: &Url,
    progress: &mut WindowState,
    work: impl Fn(Value) -> F + Sync,
) -> Result<WindowEnd, WindowError>
where
    F: Future<Output = Result<crate::run::apply::Outcome, crate::run::apply::ApplyError>> + Send,
{
    let done_before: u64 = progress
        .reached
        .as_deref()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    let mut file = NdjsonFile::open(
        &shared.worker.client,
        url,
        shared.worker.limits.report_bytes,
    )
    .await?;
    let mut lines_done = file.skip(done_before).await?;
    let batch_size = (shared.page_size as usize).max(1);
    loop {
        if shared.stop.is_cancelled() {
            return Ok(WindowEnd::Stopped);
        }
        let mut batch: Vec<Line> = Vec::with_capacity(batch_size);
        while batch.len() < batch_size {
            match file.next().await? {
                Some(line) => batch.push(line),
                None => break,
            }
        }
        if batch.is_empty() {
            progress.done = true;
            progress.reached = Some(lines_done.to_string());
            return if shared
                .save(key, progress.clone(), true)
                .await
                .map_err(WindowError::State)?
            {
                Ok(WindowEnd::Done)
            } else {
                Ok(WindowEnd::LeaseLost)
            };
        }
        let last_line = batch.last().map_or(lines_done, |line| line.number);
        let mut reports = Vec::new();
        let mut bad = Vec::new();
        for line in batch {
            match line.resource.and_then(diagnostic_report) {
                Ok(report) => reports.push((line.number, report)),
                Err(reason) => bad.push((line.number, reason)),
            }
        }
        let numbers: Vec<u64> = reports.iter().map(|(number, _)| *number).collect();
        let (handled, down) = super::window::process_page_with(
            shared,
            reports.into_iter().map(|(_, report)| report),
            &work,
        )
        .await;
        progress.reports += handled.iter().filter(|h| **h).count() as u64;
        // The lines done end before the first report not handled; a bad
        // line past it is dead-lettered when its batch is read again.
        let first_open = handled.iter().position(|h| !*h).map(|index| numbers[index]);
        // A bad line whose dead letter cannot be written stays open too.
        let mut open = first_open;
        let mut letters_down = None;
        for (number, reason) in bad
            .iter()
            .filter(|(number, _)| first_open.is_none_or(|open| *number < open))
        {
            if let Err(error) = shared.bad_line(file.url(), *number, reason) {
                letters_down = Some(error);
                open = Some(*number);
                break;
            }
        }
        let Some(open) = open else {
            lines_done = last_line;
            progress.reached = Some(lines_done.to_string());
            if !shared
                .save(key, progress.clone(), true)
                .await
                .map_err(WindowError::State)?
            {
                return Ok(WindowEnd::LeaseLost);
            }
            continue;
        };
        progress.reached = Some((open - 1).max(lines_done).to_string());
        let kept = shared
            .save(key, progress.clone(), true)
            .await
            .map_err(WindowError::State)?;
        return match down.or(letters_down) {
            Some(reason) => Err(WindowError::ServerDown(reason)),
            None if kept => Ok(WindowEnd::Stopped),
            None => Ok(WindowEnd::LeaseLost),
        };
    }
}

/// A line's resource if it is a DiagnosticReport with an id.
fn diagnostic_report(resource: Value) -> Result<Value, String> {
    if resource.get("resourceType").and_then(Value::as_str) != Some("DiagnosticReport") {
        return Err("not a DiagnosticReport".to_owned());
    }
    if resource.get("id").and_then(Value::as_str).is_none() {
        return Err("a DiagnosticReport without an id".to_owned());
    }
    Ok(resource)
}

/// After the run: when every file of the export is done, the one worker
/// that marks it finished deletes the job on the server and moves the sync
/// checkpoint to the export's `transactionTime`.
pub(super) async fn finish(
    shared: &Shared,
    job: &ExportJob,
    stream: &str,
) -> Result<(), StateError> {
    if job.finished {
        return Ok(());
    }
    match &shared.ledger {
        Ledger::Book(book) => {
            let mut book = super::lock(book);
            let all_done = job
                .units()
                .iter()
                .all(|unit| book.window(&unit.key).is_some_and(|w| w.done));
            if !all_done {
                return Ok(());
            }
            let record = ExportRecord {
                status: job.status.to_string(),
                transaction_time: Some(rfc3339(job.transaction_time)),
                files: job.files.iter().map(Url::to_string).collect(),
                finished: true,
            };
            book.save_export(&job.request, record)?;
            book.raise_checkpoint(job.transaction_time)?;
        }
        Ledger::Leases(leases) => {
            let counts = leases.state.range_counts(&leases.range).await?;
            if counts.done < counts.windows {
                return Ok(());
            }
            if !leases.state.finish_export(stream, &job.request).await? {
                return Ok(());
            }
            raise_checkpoint(&leases.state, stream, job.transaction_time).await?;
        }
    }
    match delete_job(&shared.worker.client, &job.status).await {
        Ok(()) => tracing::info!("$export done: job deleted, checkpoint at its transactionTime"),
        // The server expires it by itself; nothing of ours depends on it.
        Err(error) => {
            tracing::warn!(error = %crate::error::error_chain(&error), "cannot delete the export job")
        }
    }
    Ok(())
}

/// Moves the sync checkpoint in PostgreSQL forward to `at` as the stream's
/// leader; a sync pass running now (it holds the leadership) is left to
/// save its own. Retried briefly, since a pass holds it only while it runs.
async fn raise_checkpoint(
    state: &PgState,
    stream: &str,
    at: OffsetDateTime,
) -> Result<(), StateError> {
    for _ in 0..10 {
        if let Some(_leader) = state.try_lead(stream).await? {
            let (saved, _) = state.checkpoint(stream).await?;
            let later = saved
                .as_deref()
                .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
                .is_none_or(|saved| saved < at);
            if later {
                state
                    .save_checkpoint(stream, &rfc3339(at), &rfc3339(OffsetDateTime::now_utc()))
                    .await?;
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::warn!(
        "a sync pass holds the stream's leadership: the checkpoint stays where that pass puts it"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn job(files: usize) -> ExportJob {
        ExportJob {
            request: "_type=DiagnosticReport".into(),
            status: Url::parse("http://fhir.test/fhir/bulk-status/1").unwrap(),
            transaction_time: datetime!(2026-03-04 05:06:07.089 UTC),
            files: (0..files)
                .map(|i| Url::parse(&format!("http://fhir.test/fhir/files/{i}.ndjson")).unwrap())
                .collect(),
            finished: false,
        }
    }

    #[test]
    fn each_file_is_a_unit_whose_bounds_are_its_place() {
        let job = job(3);
        let units = job.units();
        let keys: Vec<&str> = units.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "$export@2026-03-04T05:06:07.089Z#0",
                "$export@2026-03-04T05:06:07.089Z#1",
                "$export@2026-03-04T05:06:07.089Z#2"
            ]
        );
        for (unit, file) in units.iter().zip(&job.files) {
            assert_eq!(job.file_at(unit.since), Some(file));
        }
        let range = job.range("stream");
        assert_eq!(range.field, "$export@2026-03-04T05:06:07.089Z");
        assert_eq!((range.since, range.until), (units[0].since, units[2].until));
        assert_eq!(job.file_at(units[2].until), None, "past the last file");
    }

    #[test]
    fn a_line_is_a_report_only_as_a_diagnostic_report_with_an_id() {
        assert!(diagnostic_report(json!({"resourceType": "DiagnosticReport", "id": "a"})).is_ok());
        let other = diagnostic_report(json!({"resourceType": "Observation", "id": "a"}));
        assert_eq!(other.unwrap_err(), "not a DiagnosticReport");
        let anonymous = diagnostic_report(json!({"resourceType": "DiagnosticReport"}));
        assert_eq!(anonymous.unwrap_err(), "a DiagnosticReport without an id");
    }
}
