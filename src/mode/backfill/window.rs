//! One window's work: its search (keyset paging over `_lastUpdated`, the
//! server's links over `date`), its reports through [`drive`], and its
//! progress saved after each page (see the module doc of [`super`]).

use std::future::Future;

use futures::StreamExt as _;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::keyset::{Keyset, id_of};
use super::{Shared, WindowField};
use crate::fhir::{FhirError, SearchPager};
use crate::pull::{Filters, Window, rfc3339, search_query};
use crate::run::apply::{ApplyError, Outcome, apply_report};
use crate::run::dead_letter::{self, DeadLetter};
use crate::run::{drive, settle};
use crate::state::{StateError, WindowState};

/// The name a window's progress is saved under.
pub(super) fn window_key(by: WindowField, since: OffsetDateTime, until: OffsetDateTime) -> String {
    format!(
        "{}:{}/{}",
        by.search_param(),
        rfc3339(since),
        rfc3339(until)
    )
}

/// How a window ended without error.
pub(super) enum WindowEnd {
    Done,
    /// Stopped by a signal or by another window's server failure; progress saved.
    Stopped,
    /// Its lease expired and another worker took it over (PostgreSQL state):
    /// this worker leaves it to that one.
    LeaseLost,
}

pub(super) enum WindowError {
    ServerDown(String),
    Search(String),
    State(StateError),
}

impl From<FhirError> for WindowError {
    fn from(error: FhirError) -> Self {
        if error.class().is_server_down() {
            WindowError::ServerDown(error.to_string())
        } else {
            WindowError::Search(error.to_string())
        }
    }
}

/// The search of one window. `_lastUpdated` windows never reach past the
/// backfill's start; `date` windows carry no `_lastUpdated` bound at all
/// (our writes change it, which would shift the offsets of the pages).
pub(super) fn window_query(
    filters: &Filters,
    by: WindowField,
    since: OffsetDateTime,
    until: OffsetDateTime,
    started_at: OffsetDateTime,
    count: u32,
) -> Vec<(String, String)> {
    match by {
        WindowField::LastUpdated => search_query(
            filters,
            Window {
                since: Some(since),
                until: until.min(started_at),
            },
            count,
        ),
        WindowField::Date => {
            let mut query = search_query(
                filters,
                Window {
                    since: None,
                    until: started_at,
                },
                count,
            );
            query.retain(|(k, _)| k != "_lastUpdated" && k != "_sort" && k != "_count");
            query.push(("date".into(), format!("ge{}", rfc3339(since))));
            query.push(("date".into(), format!("lt{}", rfc3339(until))));
            query.push(("_sort".into(), "date,_id".into()));
            query.push(("_count".into(), count.to_string()));
            query
        }
    }
}

/// Works through one window, saving its progress after each page.
pub(super) async fn run_window(
    shared: &Shared,
    key: &str,
    since: OffsetDateTime,
    until: OffsetDateTime,
    resume: WindowState,
) -> Result<WindowEnd, WindowError> {
    let mut progress = resume;
    if let Some(job) = &shared.export {
        let Some(file) = job.file_at(since) else {
            return Err(WindowError::Search(format!(
                "{key}: no such file in the export"
            )));
        };
        return super::export::read_file(shared, key, file, &mut progress).await;
    }
    match shared.by {
        WindowField::LastUpdated => {
            let resume_at = progress
                .reached
                .as_deref()
                .and_then(|r| OffsetDateTime::parse(r, &Rfc3339).ok())
                .filter(|r| *r > since)
                .unwrap_or(since);
            keyset_window(shared, key, resume_at, until, &mut progress).await
        }
        WindowField::Date => offset_window(shared, key, since, until, &mut progress).await,
    }
}

/// `_lastUpdated` windows: keyset paging (see the module doc and [`Keyset`]).
async fn keyset_window(
    shared: &Shared,
    key: &str,
    start: OffsetDateTime,
    until: OffsetDateTime,
    progress: &mut WindowState,
) -> Result<WindowEnd, WindowError> {
    let mut keyset = Keyset::new(start);
    loop {
        if shared.stop.is_cancelled() {
            return Ok(WindowEnd::Stopped);
        }
        let query = window_query(
            &shared.filters,
            WindowField::LastUpdated,
            keyset.at(),
            until,
            shared.started_at,
            shared.page_size,
        );
        let mut pager = SearchPager::new(shared.worker.client.clone(), "DiagnosticReport", &query)?;
        let new_entries = loop {
            let Some(page) = pager.next_page().await? else {
                break Vec::new();
            };
            let fresh = keyset.fresh(page.resources);
            if !fresh.is_empty() {
                break fresh;
            }
        };
        if new_entries.is_empty() {
            progress.done = true;
            progress.reached = None;
            if !shared
                .save(key, progress.clone(), false)
                .await
                .map_err(WindowError::State)?
            {
                return Ok(WindowEnd::LeaseLost);
            }
            return Ok(WindowEnd::Done);
        }
        let stamps: Vec<(OffsetDateTime, String)> = new_entries
            .iter()
            .map(|(at, r)| (*at, id_of(r).to_owned()))
            .collect();
        let (handled, down) = process_page(shared, new_entries.into_iter().map(|(_, r)| r)).await;
        progress.reports += handled.iter().filter(|h| **h).count() as u64;
        match handled.iter().position(|h| !*h) {
            None => {
                keyset.handled(stamps);
                progress.reached = Some(rfc3339(keyset.at()));
                if !shared
                    .save(key, progress.clone(), true)
                    .await
                    .map_err(WindowError::State)?
                {
                    return Ok(WindowEnd::LeaseLost);
                }
            }
            Some(index) => {
                // Resume from the first report not handled; those before it at
                // the same instant are re-read and found current.
                progress.reached = stamps.get(index).map(|(at, _)| rfc3339(*at));
                let kept = shared
                    .save(key, progress.clone(), true)
                    .await
                    .map_err(WindowError::State)?;
                return match down {
                    Some(reason) => Err(WindowError::ServerDown(reason)),
                    None if kept => Ok(WindowEnd::Stopped),
                    None => Ok(WindowEnd::LeaseLost),
                };
            }
        }
    }
}

/// `date` windows: the server's `next` links, stable under our own writes.
async fn offset_window(
    shared: &Shared,
    key: &str,
    since: OffsetDateTime,
    until: OffsetDateTime,
    progress: &mut WindowState,
) -> Result<WindowEnd, WindowError> {
    let query = window_query(
        &shared.filters,
        WindowField::Date,
        since,
        until,
        shared.started_at,
        shared.page_size,
    );
    let mut pager = SearchPager::new(shared.worker.client.clone(), "DiagnosticReport", &query)?;
    // A window that did not finish is read again from its start: offsets are no durable cursor.
    progress.reports = 0;
    while let Some(page) = pager.next_page().await? {
        if shared.stop.is_cancelled() {
            return Ok(WindowEnd::Stopped);
        }
        let (handled, down) = process_page(shared, page.resources.into_iter()).await;
        progress.reports += handled.iter().filter(|h| **h).count() as u64;
        if let Some(reason) = down {
            return Err(WindowError::ServerDown(reason));
        }
        if handled.iter().any(|h| !*h) {
            return Ok(WindowEnd::Stopped);
        }
        if !shared
            .save(key, progress.clone(), true)
            .await
            .map_err(WindowError::State)?
        {
            return Ok(WindowEnd::LeaseLost);
        }
    }
    progress.done = true;
    if !shared
        .save(key, progress.clone(), false)
        .await
        .map_err(WindowError::State)?
    {
        return Ok(WindowEnd::LeaseLost);
    }
    Ok(WindowEnd::Done)
}

/// Applies a page's reports, at most `concurrency` in flight across all
/// windows. Once stopped, no new report is started; those in flight finish.
/// Returns, per report in page order, whether it was handled, and the reason
/// the server is down if it is.
pub(super) async fn process_page(
    shared: &Shared,
    reports: impl Iterator<Item = Value>,
) -> (Vec<bool>, Option<String>) {
    let context = shared.worker.apply_context(false);
    let context = &context;
    process_page_with(shared, reports, |report| apply_report(context, report)).await
}

/// [`process_page`] with `work` as the work on one report ([`apply_report`];
/// tests give one that panics).
pub(super) async fn process_page_with<F>(
    shared: &Shared,
    reports: impl Iterator<Item = Value>,
    work: impl Fn(Value) -> F + Sync,
) -> (Vec<bool>, Option<String>)
where
    F: Future<Output = Result<Outcome, ApplyError>> + Send,
{
    let work = &work;
    let reports: Vec<Value> = reports.collect();
    let mut handled = vec![false; reports.len()];
    let mut down = None;
    let jobs = futures::stream::iter(reports.into_iter().enumerate()).map(|(index, report)| {
        let key = (index, dead_letter::identity(&report));
        let job = async move {
            let _permit = shared.reports_in_flight.acquire().await;
            work(report).await
        };
        (key, job)
    });
    let mut results = std::pin::pin!(drive(jobs, shared.concurrency, &shared.stop));
    while let Some(((index, identity), result)) = results.next().await {
        let result = settle(result);
        if let Err(failure) = &result {
            if failure.class().is_server_down() {
                down.get_or_insert_with(|| failure.to_string());
                shared.stop.cancel();
                continue;
            }
            tracing::warn!(report = %identity["id"].as_str().unwrap_or("?"), reason = %failure.key(), "report failed; dead-lettered");
            if let Err(error) = shared
                .dead_letter
                .write(&DeadLetter::new(&identity, failure))
            {
                // Without its dead letter the failure would be lost: do not pass it.
                tracing::error!(error = %error, path = %shared.dead_letter.path().display(), "cannot write the dead-letter file");
                down.get_or_insert_with(|| format!("dead-letter file: {error}"));
                shared.stop.cancel();
                continue;
            }
        }
        shared.record(&result);
        handled[index] = true;
    }
    (handled, down)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use serde_json::json;
    use tokio::sync::Semaphore;
    use tokio_util::sync::CancellationToken;

    use super::super::Ledger;
    use super::super::book::Book;
    use super::super::{BackfillSummary, ProgressMode, lock};
    use super::*;
    use crate::run::Worker;
    use crate::run::dead_letter::DeadLetterFile;
    use crate::run::progress::Progress;
    use crate::state::StateStore;

    /// A report that panics is dead-lettered and counted; the page goes on
    /// and the backfill does not stop.
    #[tokio::test]
    async fn a_panicking_report_is_dead_lettered_and_the_page_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config::parse(&format!(
            "[fhir]\nurl = \"http://127.0.0.1:9/fhir\"\n[state]\ndir = \"{}\"\n",
            dir.path().display()
        ))
        .unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let state = store.load().unwrap();
        let letters = dir.path().join("dead.ndjson");
        let shared = Shared {
            filters: config.filters(),
            page_size: 10,
            worker: Worker::offline(config),
            by: WindowField::LastUpdated,
            started_at: OffsetDateTime::now_utc(),
            reports_in_flight: Semaphore::new(2),
            concurrency: 2,
            summary: Mutex::new(BackfillSummary::default()),
            progress: Progress::new(
                ProgressMode::Log(Duration::from_secs(3600)),
                None,
                "reports",
            ),
            dead_letter: DeadLetterFile::append(&letters).unwrap(),
            ledger: Ledger::Book(Mutex::new(Book::new(store, state, "stream".into()))),
            stop: CancellationToken::new(),
            metrics: None,
            export: None,
        };
        let reports = (0..5).map(|i| {
            json!({"resourceType": "DiagnosticReport", "id": format!("r{i}"), "meta": {"versionId": "1"}})
        });
        let (handled, down) = process_page_with(&shared, reports, |report| async move {
            assert_ne!(report["id"], "r2", "a poison report");
            Ok::<_, ApplyError>(Outcome::Current)
        })
        .await;
        assert_eq!(handled, vec![true; 5]);
        assert_eq!(down, None);
        assert!(!shared.stop.is_cancelled());
        let tally = lock(&shared.summary).tally.clone();
        assert_eq!(tally.current, 4);
        assert_eq!(tally.failed.get("panic"), Some(&1));
        let text = std::fs::read_to_string(&letters).unwrap();
        let (letter, id) = DeadLetter::parse(text.trim()).unwrap();
        assert_eq!((id.as_str(), letter.reason.as_str()), ("r2", "panic"));
    }
}
