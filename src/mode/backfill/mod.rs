//! `reportsplit backfill`: enrich every report of a past range, window by
//! window, with bounded concurrency, resumable after any interruption.
//!
//! # Windows: `_lastUpdated` (default) or the clinical `date`
//! The range is cut into windows of `--window` (default 1 day) over one of
//! two search parameters:
//! - `--by last-updated` (default): `meta.lastUpdated`. Every FHIR server
//!   indexes it and every report has it. A window in the past never gains
//!   reports while the backfill runs (an update moves a report to *now*, out
//!   of the window), and our own writes remove reports from it, which is
//!   why it is paged by **keyset** (see below) and not by the server's
//!   offset links. Its upper bound is clamped to the backfill's start: what
//!   changes after that is the scheduled sync's job.
//! - `--by date`: the report's clinical `effective[x]` (search `date`), the
//!   time users think in ("all CTs of 2019"). Our writes do not change it, so
//!   the server's `next` links (sorted `date,_id`) are stable. Reports without
//!   `effective[x]` are not found this way, and a window only resumes from its
//!   start (offset paging has no durable cursor).
//!
//! Windows overlap where reports straddle a boundary (a period, a partial
//! date); that is harmless: a report already tagged for its text is `Current`
//! and nothing is written.
//!
//! # Keyset paging over `_lastUpdated`
//! Each step searches `_lastUpdated ge <cursor>` (`lt` the window's end,
//! sorted `_lastUpdated,_id`) and reads the first page only; entries before
//! the cursor, or at the cursor and already handled, are passed over. After
//! a page, the cursor moves to its last timestamp. Written reports leave the
//! window, skipped/failed ones stay and are passed over, so nothing is lost
//! whatever our writes do to the server's offsets. When a whole page is
//! already handled (more reports than a page share one timestamp), the
//! search's own `next` links are followed until a page with new entries.
//!
//! Ties cost time, never data: the resume point is an instant, so reports
//! sharing it are read again after a restart (found current, nothing
//! written), and a tie group larger than a page is walked from its start at
//! each step. Data bulk-loaded with one `lastUpdated` for thousands of
//! reports is better backfilled `--by date`.
//!
//! # Progress, resume, memory
//! After each page the window's resume point (`reached`: every report updated
//! before it was handled) is saved in the state store; a finished window is
//! marked `done` and skipped by the next run. After `kill -9` the next run
//! re-reads at most one page per window in flight. Memory holds one page per
//! window in flight, however long the range.
//!
//! # Failures
//! A report that fails (refused transaction, unplannable report, a panic in
//! the extractor) goes to the dead-letter file and the backfill moves on
//! (`reportsplit reprocess` retries them). A server that stops answering
//! stops the whole backfill, with progress saved, instead of dead-lettering
//! every report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::Class;
use crate::metrics::Metrics;
use crate::pull::{Filters, rfc3339};
use crate::run::apply::Outcome;
use crate::run::dead_letter::{DeadLetter, DeadLetterFile};
use crate::run::progress::Progress;
pub use crate::run::progress::ProgressMode;
use crate::run::{
    Ending, Failure, RunError, StopLine, Tally, Worker, from_run_errors, per_second, reasons,
};
use crate::state::pg::{PgState, Range, WindowSpan};
use crate::state::{StateError, StateStore, WindowState, stream_key};

mod book;
mod cut;
mod export;
mod keyset;
mod progress;
mod range;
mod window;

use book::{Book, Leases};
pub use cut::RangeError;
pub(crate) use cut::{nonempty, window_span, windows};
use progress::log_progress;
use range::{Occupied, occupied_span, range_total};
use window::{WindowEnd, WindowError, run_window, window_key};

/// What `reportsplit backfill` is asked to do (see the command's help).
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// Start of the range (inclusive).
    pub since: OffsetDateTime,
    /// End of the range (exclusive); default: now.
    pub until: Option<OffsetDateTime>,
    /// Reports in flight at once (also the most windows worked on at once).
    pub concurrency: usize,
    /// Window length; progress is saved per window.
    pub window: Duration,
    pub by: WindowField,
    /// Default: dead-letter.ndjson in the state directory.
    pub dead_letter: Option<PathBuf>,
    /// Progress log interval when stderr is not a terminal.
    pub log_every: Duration,
    /// Serves Prometheus metrics and `/healthz` on this address while the backfill runs.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `postgres://…`: overrides `[state] url` (windows leased in PostgreSQL).
    pub state_url: Option<String>,
    /// How long a window's lease lasts without renewal (PostgreSQL state).
    pub lease: Duration,
    /// Read the reports from a Bulk Data `$export` (its files leased like
    /// windows), where the server exports; else the windowed search.
    pub from_export: bool,
}

/// The search parameter the windows are cut on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WindowField {
    LastUpdated,
    Date,
}

impl WindowField {
    fn search_param(self) -> &'static str {
        match self {
            WindowField::LastUpdated => "_lastUpdated",
            WindowField::Date => "date",
        }
    }
}

/// What a backfill is asked to do, once the config is loaded.
#[derive(Debug, Clone)]
pub struct BackfillPlan {
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
    pub window: Duration,
    pub by: WindowField,
    pub concurrency: usize,
    pub dead_letter: PathBuf,
    pub progress: ProgressMode,
    /// Where report outcomes are counted for Prometheus, if anywhere.
    pub metrics: Option<Metrics>,
    /// How long a window's lease lasts without renewal (PostgreSQL state):
    /// a dead worker's window is taken over this long after its last renewal.
    pub lease: Duration,
    /// Read the reports from a Bulk Data `$export` ([`export`]).
    pub from_export: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("cannot serve metrics on {address}")]
    MetricsListen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("--lease {0:?} is too short: a lease must last at least a second")]
    LeaseTooShort(Duration),
    #[error("cannot open the dead-letter file {path}: {source}")]
    DeadLetter {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

from_run_errors!(BackfillError);

impl BackfillError {
    /// See [`Class`].
    pub fn class(&self) -> Class {
        match self {
            BackfillError::Run(error) => error.class(),
            BackfillError::Range(_)
            | BackfillError::LeaseTooShort(_)
            | BackfillError::MetricsListen { .. } => Class::Config,
            BackfillError::DeadLetter { .. } => Class::Internal,
        }
    }
}

/// What a backfill did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackfillSummary {
    /// The reports; each failed one is in the dead-letter file.
    pub tally: Tally,
    pub windows: u64,
    /// Windows before the range's first report or after its last: not searched.
    pub windows_empty: u64,
    /// Windows finished by an earlier run, not read again.
    pub windows_already_done: u64,
    pub windows_done: u64,
    /// Windows claimed from a worker whose lease had expired (PostgreSQL state).
    pub windows_taken_over: u64,
    /// Windows this worker left because another took them over after its
    /// lease expired (it was paused or cut off past the lease).
    pub windows_lost: u64,
    /// Statements sent to the PostgreSQL state (each one round trip).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_round_trips: Option<u64>,
    /// Windows whose search failed (by reason); they are retried by the next run.
    pub windows_failed: BTreeMap<String, u64>,
    /// Stopped by a signal: finished windows and the resume points are saved.
    pub interrupted: bool,
    /// The server stopped answering; the backfill stopped with progress saved.
    pub unreachable: Option<String>,
    pub requests: u64,
    pub retries: u64,
    pub duration_secs: f64,
    pub dead_letter: String,
}

impl BackfillSummary {
    pub fn reports_per_second(&self) -> f64 {
        per_second(self.tally.seen, self.duration_secs)
    }

    /// How the backfill ended ([`Ending::of_batch`]); a failed window is a
    /// failure too.
    pub fn ending(&self) -> Ending {
        Ending::of_batch(
            self.unreachable.is_some(),
            self.interrupted,
            self.tally.failed_total() > 0 || !self.windows_failed.is_empty(),
        )
    }
}

impl std::fmt::Display for BackfillSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.tally)?;
        writeln!(
            f,
            "windows: {} in range, {} empty, {} done now, {} done before, {} failed{}",
            self.windows,
            self.windows_empty,
            self.windows_done,
            self.windows_already_done,
            self.windows_failed.values().sum::<u64>(),
            reasons(&self.windows_failed),
        )?;
        if let Some(trips) = self.state_round_trips {
            let per_report = if self.tally.seen > 0 {
                trips as f64 / self.tally.seen as f64
            } else {
                0.0
            };
            writeln!(
                f,
                "PostgreSQL state: {trips} round trips ({per_report:.3} per report); \
                 {} windows taken over, {} lost",
                self.windows_taken_over, self.windows_lost
            )?;
        }
        if self.tally.failed_total() > 0 {
            writeln!(
                f,
                "failed reports are in {} (retry: reportsplit reprocess)",
                self.dead_letter
            )?;
        }
        let stop = StopLine {
            unreachable: self.unreachable.as_deref(),
            interrupted: self.interrupted,
        };
        write!(
            f,
            "{stop}{} requests, {} retries; {:.1} s ({:.1} reports/s)",
            self.requests,
            self.retries,
            self.duration_secs,
            self.reports_per_second()
        )
    }
}

/// Everything the window tasks share.
struct Shared {
    worker: Worker,
    filters: Filters,
    page_size: u32,
    by: WindowField,
    /// Upper bound of every `_lastUpdated` query: the backfill's start.
    started_at: OffsetDateTime,
    reports_in_flight: Semaphore,
    concurrency: usize,
    summary: Mutex<BackfillSummary>,
    progress: Progress,
    dead_letter: DeadLetterFile,
    ledger: Ledger,
    /// Cancelled on a signal or when the server goes down.
    stop: CancellationToken,
    metrics: Option<Metrics>,
    /// The export whose files are the units (`--from-export`), if any.
    export: Option<export::ExportJob>,
}

impl Shared {
    fn record(&self, result: &Result<Outcome, Failure>) {
        lock(&self.summary).tally.record(result);
        if let Some(metrics) = &self.metrics {
            crate::run::to_metrics(metrics, result);
        }
        self.progress.advance();
    }

    /// Dead-letters a line of an export file that holds no report (and
    /// counts it as a failure); `Err`: the dead-letter file cannot be
    /// written, which stops the run like a server that is down.
    fn bad_line(&self, file: &str, line: u64, reason: &str) -> Result<(), String> {
        tracing::warn!(
            file,
            line,
            reason,
            "a bad line in an export file; dead-lettered"
        );
        if let Err(error) = self
            .dead_letter
            .write(&DeadLetter::bad_line(file, line, reason))
        {
            tracing::error!(error = %error, path = %self.dead_letter.path().display(), "cannot write the dead-letter file");
            return Err(format!("dead-letter file: {error}"));
        }
        lock(&self.summary).tally.record_bad_line();
        if let Some(metrics) = &self.metrics {
            metrics.failed(crate::run::BAD_LINE, 1);
        }
        Ok(())
    }

    /// Saves a window's progress; `false`: its lease was lost to another
    /// worker (PostgreSQL state), which goes on with it.
    async fn save(&self, key: &str, window: WindowState, urgent: bool) -> Result<bool, StateError> {
        match &self.ledger {
            Ledger::Book(book) => lock(book).save_window(key, window, urgent).map(|()| true),
            Ledger::Leases(leases) => leases.save(key, &window).await,
        }
    }

    /// The next window to work on: the next one of the range not done
    /// (embedded state), or one claimed under a lease (PostgreSQL state).
    async fn next_window(
        &self,
        pending: &mut impl Iterator<Item = WindowSpan>,
    ) -> Result<Next, StateError> {
        match &self.ledger {
            Ledger::Book(book) => Ok(match pending.next() {
                Some(WindowSpan { key, since, until }) => {
                    let resume = lock(book).window(&key).cloned().unwrap_or_default();
                    Next::Window {
                        key,
                        since,
                        until,
                        resume,
                    }
                }
                None => Next::Finished,
            }),
            Ledger::Leases(leases) => {
                let claimed = leases
                    .state
                    .claim(&leases.range, &leases.owner, leases.lease)
                    .await?;
                match claimed {
                    Some(claimed) => {
                        if let Some(from) = &claimed.taken_from {
                            tracing::info!(window = %claimed.span.key, from = %from, reached = ?claimed.state.reached, "taking over a window whose lease expired");
                            lock(&self.summary).windows_taken_over += 1;
                        }
                        Ok(Next::Window {
                            key: claimed.span.key,
                            since: claimed.span.since,
                            until: claimed.span.until,
                            resume: claimed.state,
                        })
                    }
                    None if leases
                        .state
                        .open_elsewhere(&leases.range, &leases.owner)
                        .await?
                        > 0 =>
                    {
                        Ok(Next::Wait)
                    }
                    None => Ok(Next::Finished),
                }
            }
        }
    }
}

/// Where the windows' progress is kept.
enum Ledger {
    /// The state directory (one process).
    Book(Mutex<Book>),
    /// PostgreSQL, shared with other workers under leases.
    Leases(Leases),
}

/// What to do next for the scheduler of windows.
enum Next {
    Window {
        key: String,
        since: OffsetDateTime,
        until: OffsetDateTime,
        resume: WindowState,
    },
    /// Nothing free now, but other workers hold leases that may expire
    /// (a dead worker's window is ours to take over then).
    Wait,
    Finished,
}

/// Runs `reportsplit backfill` as configured by `options`.
pub async fn run(
    options: &BackfillOptions,
    shutdown: CancellationToken,
) -> Result<BackfillSummary, BackfillError> {
    let config = Config::load(&options.config)?.with_state_url(options.state_url.as_deref())?;
    let plan = BackfillPlan {
        since: options.since,
        until: options.until.unwrap_or_else(OffsetDateTime::now_utc),
        window: options.window,
        by: options.by,
        concurrency: options.concurrency,
        dead_letter: options
            .dead_letter
            .clone()
            .unwrap_or_else(|| config.state.dir.join("dead-letter.ndjson")),
        progress: ProgressMode::for_stderr(options.log_every),
        metrics: match options.metrics_listen {
            Some(address) => Some(
                crate::metrics::export_on(address, shutdown.clone())
                    .await
                    .map_err(|source| BackfillError::MetricsListen { address, source })?,
            ),
            None => None,
        },
        lease: options.lease,
        from_export: options.from_export,
    };
    run_with(config, plan, shutdown).await
}

/// A backfill with a loaded config.
pub async fn run_with(
    config: Config,
    plan: BackfillPlan,
    shutdown: CancellationToken,
) -> Result<BackfillSummary, BackfillError> {
    let started = Instant::now();
    let started_at = OffsetDateTime::now_utc();
    nonempty(plan.since, plan.until)?;
    if config.state.url.is_some() && plan.lease < Duration::from_secs(1) {
        // Renewed every third of it: shorter would spin the heartbeat.
        return Err(BackfillError::LeaseTooShort(plan.lease));
    }
    let span = window_span(plan.since, plan.until, plan.window)?;
    let stream = stream_key(&config.fhir.url, &config.filters());
    let dead_letter =
        DeadLetterFile::append(&plan.dead_letter).map_err(|source| BackfillError::DeadLetter {
            path: plan.dead_letter.clone(),
            source,
        })?;
    // The state first: a second embedded backfill is refused before any request.
    let opened = match &config.state.url {
        None => {
            let store = StateStore::open(&config.state.dir)?;
            let state = store.load()?;
            Opened::Book(Book::new(store, state, stream.clone()))
        }
        // The window tasks, the scheduler and the heartbeat each use one at a time.
        Some(url) => Opened::Postgres(PgState::connect(url, plan.concurrency + 2).await?),
    };
    let mut opened = opened;
    let worker = Worker::connect(config, true).await?;
    let owner = Leases::owner_name();

    let job = if plan.from_export {
        match export::prepare(&mut opened, &stream, &worker, &plan, &owner, &shutdown).await? {
            export::Prepared::Job(job) => Some(job),
            export::Prepared::Unsupported => None,
            export::Prepared::Stopped => {
                return Ok(BackfillSummary {
                    interrupted: true,
                    dead_letter: plan.dead_letter.display().to_string(),
                    duration_secs: started.elapsed().as_secs_f64(),
                    ..BackfillSummary::default()
                });
            }
        }
    } else {
        None
    };
    // The units of work: the export's files, or the range's windows that
    // may hold reports (those before the first report or after the last
    // one are not searched).
    let (units, windows_total, windows_empty, range) = match &job {
        Some(job) => {
            let units = job.units();
            let count = units.len() as u64;
            (units, count, 0, job.range(&stream))
        }
        None => {
            let occupied = occupied_span(&worker, &plan, started_at).await;
            let holds_reports = move |since: OffsetDateTime, until: OffsetDateTime| match occupied {
                Occupied::Unknown => true,
                Occupied::Nothing => false,
                Occupied::Between(first, last) => until > first && since <= last,
            };
            let windows_total = windows(plan.since, plan.until, span).count() as u64;
            let units: Vec<WindowSpan> = windows(plan.since, plan.until, span)
                .filter(|(since, until)| holds_reports(*since, *until))
                .map(|(since, until)| WindowSpan {
                    key: window_key(plan.by, since, until),
                    since,
                    until,
                })
                .collect();
            let windows_empty = windows_total - units.len() as u64;
            let range = Range {
                stream: stream.clone(),
                field: plan.by.search_param().to_owned(),
                since: plan.since,
                until: plan.until,
            };
            (units, windows_total, windows_empty, range)
        }
    };
    let (ledger, already_done, reports_done_before) = match opened {
        Opened::Book(book) => {
            let mut already_done = 0u64;
            let mut reports_done_before = 0u64;
            for unit in &units {
                if let Some(saved) = book.window(&unit.key) {
                    if saved.done {
                        already_done += 1;
                    }
                    reports_done_before += saved.reports;
                }
            }
            (
                Ledger::Book(Mutex::new(book)),
                already_done,
                reports_done_before,
            )
        }
        Opened::Postgres(state) => {
            state.register_windows(&range, &units).await?;
            let counts = state.range_counts(&range).await?;
            let leases = Leases {
                state,
                range,
                owner,
                lease: plan.lease,
            };
            tracing::info!(owner = %leases.owner, state = %leases.state.shown(), lease_secs = plan.lease.as_secs_f64(), "windows leased in PostgreSQL");
            (Ledger::Leases(leases), counts.done, counts.reports)
        }
    };
    let total = match &job {
        Some(_) => None,
        None => range_total(&worker, &plan, started_at)
            .await
            .map(|t| t.saturating_sub(reports_done_before)),
    };
    tracing::info!(
        since = %rfc3339(plan.since),
        until = %rfc3339(plan.until),
        by = plan.by.search_param(),
        windows = windows_total,
        windows_empty,
        already_done,
        reports = ?total,
        concurrency = plan.concurrency,
        "backfill starting"
    );

    let shared = Arc::new(Shared {
        filters: worker.config.filters(),
        page_size: worker.config.pull.page_size,
        worker,
        by: plan.by,
        started_at,
        reports_in_flight: Semaphore::new(plan.concurrency),
        concurrency: plan.concurrency,
        summary: Mutex::new(BackfillSummary {
            windows: windows_total,
            windows_empty,
            windows_already_done: already_done,
            dead_letter: plan.dead_letter.display().to_string(),
            ..BackfillSummary::default()
        }),
        progress: Progress::new(plan.progress, total, "reports"),
        dead_letter,
        ledger,
        stop: shutdown.child_token(),
        metrics: plan.metrics.clone(),
        export: job,
    });
    let ticker = Ticker(match plan.progress {
        ProgressMode::Log(every) => Some(tokio::spawn(log_progress(
            shared.clone(),
            every,
            total,
            started,
        ))),
        ProgressMode::Bar => None,
    });
    let heartbeat = Ticker(match &shared.ledger {
        Ledger::Leases(_) => Some(tokio::spawn(renew_leases(shared.clone()))),
        Ledger::Book(_) => None,
    });

    let result = schedule(&shared, &plan, units, windows_total, windows_empty).await;
    heartbeat.stop().await;
    ticker.stop().await;
    shared.progress.finish();
    let released = match &shared.ledger {
        Ledger::Book(book) => lock(book).flush(),
        // Windows stopped mid-way are free for others at once, not after
        // their lease; their cursors were saved with their last page.
        Ledger::Leases(leases) => leases
            .state
            .release_all(&leases.range.stream, &leases.owner)
            .await
            .map(|_| ()),
    };
    result?;
    released?;
    if let Some(job) = &shared.export
        && !shared.stop.is_cancelled()
    {
        export::finish(&shared, job, &stream).await?;
    }
    let mut summary = lock(&shared.summary).clone();
    summary.interrupted = shutdown.is_cancelled();
    let stats = shared.worker.client.stats();
    summary.requests = stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    summary.retries = stats.retries.load(std::sync::atomic::Ordering::Relaxed);
    summary.duration_secs = started.elapsed().as_secs_f64();
    if let Ledger::Leases(leases) = &shared.ledger {
        summary.state_round_trips = Some(leases.state.round_trips());
    }
    Ok(summary)
}

/// The state opened, before the ledger is made of it.
enum Opened {
    Book(Book),
    Postgres(PgState),
}

/// Runs the windows, at most `plan.concurrency` at once, until none is left
/// (or a stop). With leases, a worker with nothing to claim while others
/// hold windows waits and claims again: a window whose worker died is taken
/// over when its lease expires.
async fn schedule(
    shared: &Arc<Shared>,
    plan: &BackfillPlan,
    units: Vec<WindowSpan>,
    windows_total: u64,
    windows_empty: u64,
) -> Result<(), StateError> {
    let already_done = lock(&shared.summary).windows_already_done;
    let mut pending = units.into_iter().filter(|unit| match &shared.ledger {
        Ledger::Book(book) => !lock(book).window(&unit.key).is_some_and(|w| w.done),
        Ledger::Leases(_) => true,
    });
    // How often a worker with nothing to claim looks again: a takeover
    // waits for the lease anyway, but the end of the range is seen within
    // this (a look is two statements, so once a second costs nothing).
    let poll = (plan.lease / 4).clamp(Duration::from_millis(200), Duration::from_secs(1));
    let mut tasks: JoinSet<(String, Result<WindowEnd, WindowError>)> = JoinSet::new();
    let mut windows_done = 0;
    let mut finished = false;
    loop {
        let mut waiting = false;
        while !finished && tasks.len() < plan.concurrency && !shared.stop.is_cancelled() {
            match shared.next_window(&mut pending).await {
                Ok(Next::Window {
                    key,
                    since,
                    until,
                    resume,
                }) => {
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        let result = run_window(&shared, &key, since, until, resume).await;
                        (key, result)
                    });
                }
                Ok(Next::Wait) => {
                    waiting = true;
                    break;
                }
                Ok(Next::Finished) => finished = true,
                Err(error) => {
                    shared.stop.cancel();
                    tasks.shutdown().await;
                    return Err(error);
                }
            }
        }
        let joined = if waiting {
            tokio::select! {
                joined = tasks.join_next(), if !tasks.is_empty() => joined,
                () = tokio::time::sleep(poll) => continue,
                () = shared.stop.cancelled(), if tasks.is_empty() => None,
            }
        } else {
            tasks.join_next().await
        };
        let Some(joined) = joined else {
            break;
        };
        let (key, result) = match joined {
            Ok(result) => result,
            Err(error) => {
                // A window task only panics on a bug outside the guarded report path.
                tracing::error!(error = %error, "a window task failed");
                let mut summary = lock(&shared.summary);
                *summary.windows_failed.entry("panic".into()).or_default() += 1;
                continue;
            }
        };
        match result {
            Ok(WindowEnd::Done) => {
                windows_done += 1;
                lock(&shared.summary).windows_done += 1;
                shared.progress.say(format!(
                    "windows {}/{windows_total}",
                    windows_done + already_done + windows_empty
                ));
                tracing::debug!(window = %key, "window done");
            }
            Ok(WindowEnd::Stopped) => {}
            Ok(WindowEnd::LeaseLost) => {
                tracing::warn!(window = %key, "the window's lease expired and another worker took it over; leaving it");
                lock(&shared.summary).windows_lost += 1;
                // The range is not done while the taker holds it: look
                // again, so that this worker takes the window back over if
                // the taker dies too, rather than ending the run with it
                // unfinished.
                finished = false;
            }
            Err(WindowError::ServerDown(reason)) => {
                tracing::error!(window = %key, %reason, "the server is unreachable; stopping the backfill (progress is saved)");
                let mut summary = lock(&shared.summary);
                summary.unreachable.get_or_insert(reason);
                shared.stop.cancel();
            }
            Err(WindowError::Search(reason)) => {
                tracing::error!(window = %key, %reason, "window failed; it is retried by the next run");
                *lock(&shared.summary)
                    .windows_failed
                    .entry(reason_key(&reason))
                    .or_default() += 1;
            }
            Err(WindowError::State(error)) => {
                shared.stop.cancel();
                tasks.shutdown().await;
                return Err(error);
            }
        }
    }
    Ok(())
}

/// Renews this worker's leases every third of a lease, so that only a
/// worker that stopped (or lost PostgreSQL) for a whole lease loses them.
async fn renew_leases(shared: Arc<Shared>) {
    let Ledger::Leases(leases) = &shared.ledger else {
        return;
    };
    loop {
        tokio::time::sleep(leases.lease / 3).await;
        if let Err(error) = leases
            .state
            .renew(&leases.range.stream, &leases.owner, leases.lease)
            .await
        {
            tracing::warn!(error = %crate::error::error_chain(&error), "cannot renew the window leases");
        }
    }
}

/// The progress log task or the lease heartbeat. It holds the state lock
/// (through `shared`), so it must not outlive the backfill: [`Ticker::stop`] aborts it and waits until
/// it is gone (an abort alone drops the task only later, and a reprocess
/// started right after the backfill would find the state directory locked);
/// dropped on an early return, it is at least aborted.
struct Ticker(Option<tokio::task::JoinHandle<()>>);

impl Ticker {
    async fn stop(mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            // A cancelled task's error is its cancellation: nothing to report.
            let _ = task.await;
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The head of an error message (before its first colon): a summary's reason key.
pub(crate) fn reason_key(reason: &str) -> String {
    reason
        .split_once(':')
        .map_or(reason, |(head, _)| head)
        .chars()
        .take(60)
        .collect()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::range::report_time;
    use super::window::window_query;
    use super::*;

    #[test]
    fn the_range_is_cut_into_windows_with_a_short_last_one() {
        let cut: Vec<_> = windows(
            datetime!(2024-01-01 0:00 UTC),
            datetime!(2024-01-03 12:00 UTC),
            time::Duration::DAY,
        )
        .collect();
        assert_eq!(
            cut,
            [
                (
                    datetime!(2024-01-01 0:00 UTC),
                    datetime!(2024-01-02 0:00 UTC)
                ),
                (
                    datetime!(2024-01-02 0:00 UTC),
                    datetime!(2024-01-03 0:00 UTC)
                ),
                (
                    datetime!(2024-01-03 0:00 UTC),
                    datetime!(2024-01-03 12:00 UTC)
                ),
            ]
        );
    }

    #[test]
    fn last_updated_windows_stop_at_the_start_of_the_backfill() {
        let filters = Filters::default();
        let started = datetime!(2026-06-01 0:00 UTC);
        let query = window_query(
            &filters,
            WindowField::LastUpdated,
            datetime!(2026-05-31 0:00 UTC),
            datetime!(2026-06-02 0:00 UTC),
            started,
            50,
        );
        let values: Vec<_> = query
            .iter()
            .filter(|(k, _)| k == "_lastUpdated")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(values, ["ge2026-05-31T00:00:00Z", "lt2026-06-01T00:00:00Z"]);
    }

    #[test]
    fn date_windows_have_no_last_updated_bound_and_a_stable_sort() {
        let query = window_query(
            &Filters::default(),
            WindowField::Date,
            datetime!(2019-01-01 0:00 UTC),
            datetime!(2019-01-08 0:00 UTC),
            datetime!(2026-06-01 0:00 UTC),
            50,
        );
        assert!(query.iter().all(|(k, _)| k != "_lastUpdated"), "{query:?}");
        let get = |name: &str| {
            query
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            get("date"),
            ["ge2019-01-01T00:00:00Z", "lt2019-01-08T00:00:00Z"]
        );
        assert_eq!(get("_sort"), ["date,_id"]);
        assert_eq!(get("_count"), ["50"]);
    }

    #[test]
    fn a_report_time_is_its_last_update_or_the_start_of_its_clinical_date() {
        let report = serde_json::json!({"meta": {"lastUpdated": "2026-11-28T05:00:00.120Z"},
            "effectiveDateTime": "2019-03-05T10:00:00+01:00"});
        assert_eq!(
            report_time(&report, WindowField::LastUpdated),
            Some(datetime!(2026-11-28 5:00:00.120 UTC))
        );
        assert_eq!(
            report_time(&report, WindowField::Date),
            Some(datetime!(2019-03-05 9:00 UTC))
        );
        for (partial, start) in [
            ("2019", datetime!(2019-01-01 0:00 UTC)),
            ("2019-03", datetime!(2019-03-01 0:00 UTC)),
            ("2019-03-05", datetime!(2019-03-05 0:00 UTC)),
        ] {
            let report = serde_json::json!({"effectivePeriod": {"start": partial}});
            assert_eq!(
                report_time(&report, WindowField::Date),
                Some(start),
                "{partial}"
            );
        }
        assert_eq!(report_time(&serde_json::json!({}), WindowField::Date), None);
    }

    #[test]
    fn window_keys_name_the_field_and_the_bounds() {
        assert_eq!(
            window_key(
                WindowField::Date,
                datetime!(2019-01-01 0:00 UTC),
                datetime!(2019-01-02 0:00 UTC)
            ),
            "date:2019-01-01T00:00:00Z/2019-01-02T00:00:00Z"
        );
    }

    /// A lease renewed every third of it must not be zero: refused before
    /// anything is opened or asked.
    #[tokio::test]
    async fn a_lease_under_a_second_is_refused() {
        let config = Config::parse(
            "[fhir]\nurl = \"http://127.0.0.1:9/fhir\"\n[state]\nurl = \"postgres://127.0.0.1:9/none\"\n",
        )
        .unwrap();
        let plan = BackfillPlan {
            since: datetime!(2024-01-01 0:00 UTC),
            until: datetime!(2024-01-02 0:00 UTC),
            window: Duration::from_secs(3600),
            by: WindowField::LastUpdated,
            concurrency: 1,
            dead_letter: std::env::temp_dir().join("reportsplit-unused-dead-letter.ndjson"),
            progress: ProgressMode::Log(Duration::from_secs(60)),
            metrics: None,
            lease: Duration::ZERO,
            from_export: false,
        };
        let error = run_with(config, plan, CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(error, BackfillError::LeaseTooShort(_)), "{error}");
        assert_eq!(error.class(), Class::Config);
    }

    #[test]
    fn the_ending_follows_the_outcome() {
        let mut summary = BackfillSummary::default();
        assert_eq!(summary.ending(), Ending::Complete);
        summary.tally.failed.insert("plan".into(), 1);
        assert_eq!(summary.ending(), Ending::Partial);
        summary.interrupted = true;
        assert_eq!(summary.ending(), Ending::Interrupted);
        summary.unreachable = Some("down".into());
        assert_eq!(summary.ending(), Ending::Unreachable);
    }
}
