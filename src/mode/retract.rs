//! `reportsplit retract`: take back everything one reportsplit release
//! wrote in a time range, when a site finds that release wrong.
//!
//! What the release wrote is found by its Device and our identifiers: the
//! Provenances whose agent is one of the release's Devices (`--version`:
//! every Device with its identifier, duplicates included; or `--device`),
//! `recorded` in the range, name each report and the Observations they
//! created, of every owned type ([`reportsplit_fhir::retract::written_by`]).
//! Each such report gets one transaction ([`apply_retract`]): those
//! resources superseded as an amendment supersedes them (each type its own
//! status: `map::owned`), its Observations dropped from `result`, and the
//! release's tag removed, so the next sync derives the report again.
//!
//! # Why `Provenance.recorded`
//! It is the writer's own record of when it wrote (the start of the sync
//! pass, backfill run or `$enrich` request), on the resource that names the
//! release: one search finds exactly the release's writes in the range. An
//! Observation's `issued` is the report's clinical time, not ours, and its
//! `meta.lastUpdated` moves whenever it is superseded or restatused.
//!
//! # Windows, resume, idempotence
//! The range (its end clamped to the start of this run, so the
//! retraction's own Provenances are never in it) is cut into windows, as a
//! backfill's. A window's Provenances are read whole, grouped by report,
//! then its reports are retracted with bounded concurrency. With `--apply`
//! a window whose every report was handled is saved as done in the state
//! store and skipped by a rerun; after a kill the rerun reads the unfinished
//! window again, and the reports already retracted plan nothing. A report
//! that fails keeps its window open (a rerun retries it): a dead letter
//! would send it to `reprocess`, which enriches, and does not retract.
//!
//! Without `--apply` nothing is written (the state included): each report
//! that would change is printed with what it would get, then the summary.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::Class;
use crate::fhir::SearchPager;
use crate::mode::backfill::{RangeError, nonempty, reason_key, window_span, windows};
use crate::pull::rfc3339;
use crate::run::apply::{Outcome, apply_retract};
use crate::run::{
    Ending, RunError, StopLine, Tally, Worker, drive, from_run_errors, reasons, settle,
};
use crate::state::{StateStore, WindowState, stream_key};
use reportsplit_fhir::map::{DEVICE_SYSTEM, SOFTWARE_NAME};
use reportsplit_fhir::retract::written_by;

/// Which release to retract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every Device with the identifier of this reportsplit version.
    Version(String),
    /// One Device (`Device/<id>`); its identifier says the version.
    Device(String),
}

/// What `reportsplit retract` is asked to do (see the command's help).
#[derive(Debug, Clone)]
pub struct RetractOptions {
    pub config: PathBuf,
    pub target: Target,
    /// Start of the range of `Provenance.recorded` (inclusive).
    pub since: OffsetDateTime,
    /// End of the range (exclusive); default, and at most: the start of this run.
    pub until: Option<OffsetDateTime>,
    /// Window length; progress is saved per window.
    pub window: Duration,
    /// Write; without it, print what would be done and write nothing.
    pub apply: bool,
}

/// At most this many Provenances are read for one window (a window is read
/// whole before any write, so this bounds its memory); more is an error
/// that asks for a shorter `--window`.
const MAX_WINDOW_PROVENANCES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum RetractError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error(
        "{device} is not a reportsplit Device (no identifier urn:reportsplit:device|reportsplit/<version>)"
    )]
    NotOurDevice { device: String },
    #[error("--device {0}: expected Device/<id>")]
    BadDevice(String),
    #[error("cannot print the retraction")]
    Output(#[source] std::io::Error),
}

from_run_errors!(RetractError);

impl RetractError {
    /// See [`Class`].
    pub fn class(&self) -> Class {
        match self {
            RetractError::Run(error) => error.class(),
            RetractError::Range(_)
            | RetractError::NotOurDevice { .. }
            | RetractError::BadDevice(_) => Class::Config,
            RetractError::Output(_) => Class::Internal,
        }
    }
}

/// What a retraction did (or, without `--apply`, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RetractSummary {
    pub version: String,
    /// The release's Devices searched for (`Device/<id>`).
    pub devices: Vec<String>,
    pub applied: bool,
    /// The reports: `written` (or `planned`) retracted, `current` had nothing
    /// left to retract, failed ones keep their window open.
    pub tally: Tally,
    /// Resources superseded (or that would be): Observations and every
    /// other owned type (ServiceRequest, DetectedIssue, Flag, Communication).
    pub superseded: u64,
    pub provenances: u64,
    pub windows: u64,
    pub windows_done: u64,
    pub windows_already_done: u64,
    /// Windows whose search failed, by reason; a rerun retries them.
    pub windows_failed: BTreeMap<String, u64>,
    pub interrupted: bool,
    pub unreachable: Option<String>,
    pub duration_secs: f64,
}

impl RetractSummary {
    /// How the retraction ended ([`Ending::of_batch`]); a failed window is
    /// a failure too.
    pub fn ending(&self) -> Ending {
        Ending::of_batch(
            self.unreachable.is_some(),
            self.interrupted,
            self.tally.failed_total() > 0 || !self.windows_failed.is_empty(),
        )
    }
}

impl std::fmt::Display for RetractSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let devices = if self.devices.is_empty() {
            "no Device on this server: it wrote nothing here".to_owned()
        } else {
            self.devices.join(", ")
        };
        writeln!(f, "retract {SOFTWARE_NAME} {} ({devices})", self.version)?;
        writeln!(f, "{}", self.tally)?;
        writeln!(
            f,
            "{} resources {}; {} Provenances read; windows: {} in range, {} done now, {} done before, {} failed{}",
            self.superseded,
            if self.applied {
                "retracted"
            } else {
                "to retract"
            },
            self.provenances,
            self.windows,
            self.windows_done,
            self.windows_already_done,
            self.windows_failed.values().sum::<u64>(),
            reasons(&self.windows_failed),
        )?;
        write!(
            f,
            "{}",
            StopLine {
                unreachable: self.unreachable.as_deref(),
                interrupted: self.interrupted,
            }
        )?;
        if !self.applied {
            writeln!(f, "dry run: nothing was written; add --apply to retract")?;
        }
        write!(f, "{:.1} s", self.duration_secs)
    }
}

/// Runs `reportsplit retract`; one line per report changed (or, without
/// `--apply`, that would change) goes to `out`.
pub async fn run(
    options: &RetractOptions,
    shutdown: CancellationToken,
    out: &mut (dyn Write + Send),
) -> Result<RetractSummary, RetractError> {
    let config = Config::load(&options.config)?;
    run_with(config, options, shutdown, out).await
}

/// [`run`] with a loaded config.
pub async fn run_with(
    config: Config,
    options: &RetractOptions,
    shutdown: CancellationToken,
    out: &mut (dyn Write + Send),
) -> Result<RetractSummary, RetractError> {
    let started = Instant::now();
    let started_at = OffsetDateTime::now_utc();
    let until = options.until.unwrap_or(started_at).min(started_at);
    nonempty(options.since, until)?;
    let span = window_span(options.since, until, options.window)?;
    if let Target::Device(device) = &options.target {
        device_id(device)?;
    }
    let store = StateStore::open(&config.state.dir)?;
    let stream = stream_key(&config.fhir.url, &config.filters());
    let concurrency = config.write.concurrent_reports;
    let page_size = config.pull.page_size;
    let worker = Worker::connect_with(config, options.apply, true).await?;
    let (version, devices) = match &options.target {
        Target::Version(version) => (version.clone(), worker.devices_of(version).await?),
        Target::Device(device) => (version_of(&worker, device).await?, vec![device.clone()]),
    };
    let mut summary = RetractSummary {
        version: version.clone(),
        devices: devices.clone(),
        applied: options.apply,
        ..RetractSummary::default()
    };
    tracing::info!(version = %version, devices = ?devices, since = %rfc3339(options.since), until = %rfc3339(until), apply = options.apply, "retract starting");
    let context = worker.apply_context(!options.apply);
    let stop = shutdown.child_token();
    for (since, until) in windows(options.since, until, span) {
        summary.windows += 1;
        if devices.is_empty() || stop.is_cancelled() {
            continue;
        }
        let key = format!(
            "retract:{}:{}/{}",
            devices.join(","),
            rfc3339(since),
            rfc3339(until)
        );
        let saved = store.load()?;
        if saved
            .streams
            .get(&stream)
            .and_then(|s| s.windows.get(&key))
            .is_some_and(|w| w.done)
        {
            summary.windows_already_done += 1;
            continue;
        }
        let written = match read_window(&worker, &devices, since, until, page_size).await {
            Ok(written) => written,
            Err(WindowError::ServerDown(reason)) => {
                summary.unreachable = Some(reason);
                break;
            }
            Err(WindowError::Search(reason)) => {
                tracing::error!(window = %key, %reason, "the window's search failed; a rerun retries it");
                *summary
                    .windows_failed
                    .entry(reason_key(&reason))
                    .or_default() += 1;
                continue;
            }
        };
        summary.provenances += written.provenances;
        let reports = written.reports.len() as u64;
        let mut handled = 0u64;
        let jobs = futures::stream::iter(written.reports.iter()).map(|(id, created)| {
            let job = apply_retract(&context, id, created, &version);
            (id.as_str(), job)
        });
        let mut results = std::pin::pin!(drive(jobs, concurrency, &stop));
        while let Some((id, result)) = results.next().await {
            let result = settle(result);
            match &result {
                Err(failure) if failure.class().is_server_down() => {
                    summary
                        .unreachable
                        .get_or_insert_with(|| failure.to_string());
                    stop.cancel();
                    continue;
                }
                Err(failure) => {
                    tracing::warn!(report = %id, reason = %failure.key(), error = %failure, "retraction failed; the window stays open for a rerun");
                }
                Ok(Outcome::Planned {
                    superseded, bundle, ..
                }) => {
                    summary.superseded += *superseded as u64;
                    writeln!(out, "would retract {}", describe(id, bundle))
                        .map_err(RetractError::Output)?;
                    handled += 1;
                }
                Ok(Outcome::Written {
                    superseded, bundle, ..
                }) => {
                    summary.superseded += *superseded as u64;
                    writeln!(out, "retracted {}", describe(id, bundle))
                        .map_err(RetractError::Output)?;
                    handled += 1;
                }
                Ok(_) => handled += 1,
            }
            summary.tally.record(&result);
        }
        if handled == reports && !stop.is_cancelled() {
            summary.windows_done += 1;
            if options.apply {
                store.update_stream(&stream, |s| {
                    s.windows.insert(
                        key,
                        WindowState {
                            done: true,
                            reached: None,
                            reports,
                        },
                    );
                })?;
            }
        }
    }
    summary.interrupted = shutdown.is_cancelled();
    summary.duration_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The version a Device stands for, from its reportsplit identifier.
async fn version_of(worker: &Worker, device: &str) -> Result<String, RetractError> {
    let id = device_id(device)?;
    let not_ours = || RetractError::NotOurDevice {
        device: device.to_owned(),
    };
    let read = worker
        .client
        .read("Device", id)
        .await
        .map_err(RunError::from)?
        .ok_or_else(not_ours)?;
    let prefix = format!("{SOFTWARE_NAME}/");
    read.body
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| i.get("system").and_then(Value::as_str) == Some(DEVICE_SYSTEM))
        .find_map(|i| {
            i.get("value")
                .and_then(Value::as_str)?
                .strip_prefix(&prefix)
        })
        .map(str::to_owned)
        .ok_or_else(not_ours)
}

/// The id of `Device/<id>`; anything else is a usage error, found before any request.
fn device_id(device: &str) -> Result<&str, RetractError> {
    device
        .strip_prefix("Device/")
        .filter(|id| reportsplit_fhir::map::is_fhir_id(id))
        .ok_or_else(|| RetractError::BadDevice(device.to_owned()))
}

/// What the release's Provenances of one window name.
struct WindowWrites {
    /// Report id → the Observations the release created for it.
    reports: BTreeMap<String, HashSet<String>>,
    provenances: u64,
}

enum WindowError {
    ServerDown(String),
    Search(String),
}

/// Reads a window's Provenances whole (our writes do not change this
/// search: no Provenance of ours is ever updated, and this run's own are
/// recorded after the range), grouped by report.
async fn read_window(
    worker: &Worker,
    devices: &[String],
    since: OffsetDateTime,
    until: OffsetDateTime,
    page_size: u32,
) -> Result<WindowWrites, WindowError> {
    let query = [
        ("agent".to_owned(), devices.join(",")),
        ("recorded".to_owned(), format!("ge{}", rfc3339(since))),
        ("recorded".to_owned(), format!("lt{}", rfc3339(until))),
        ("_count".to_owned(), page_size.to_string()),
    ];
    let failed = |error: crate::fhir::FhirError| {
        if error.class().is_server_down() {
            WindowError::ServerDown(error.to_string())
        } else {
            WindowError::Search(error.to_string())
        }
    };
    let mut pager =
        SearchPager::new(worker.client.clone(), "Provenance", &query).map_err(failed)?;
    let mut writes = WindowWrites {
        reports: BTreeMap::new(),
        provenances: 0,
    };
    while let Some(page) = pager.next_page().await.map_err(failed)? {
        for provenance in &page.resources {
            writes.provenances += 1;
            if writes.provenances as usize > MAX_WINDOW_PROVENANCES {
                return Err(WindowError::Search(format!(
                    "more than {MAX_WINDOW_PROVENANCES} Provenances: use a shorter --window"
                )));
            }
            if let Some(written) = written_by(provenance) {
                writes
                    .reports
                    .entry(written.report_id)
                    .or_default()
                    .extend(written.created);
            }
        }
    }
    Ok(writes)
}

/// `DiagnosticReport/<id>: supersede Observation/a, Observation/b; update
/// the report` from a retraction's transaction (references only, no content).
fn describe(id: &str, bundle: &Value) -> String {
    let superseded: Vec<&str> = bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.pointer("/request/method").and_then(Value::as_str) == Some("PUT"))
        .filter_map(|e| e.pointer("/request/url").and_then(Value::as_str))
        .filter(|url| !url.starts_with("DiagnosticReport/"))
        .collect();
    if superseded.is_empty() {
        format!("DiagnosticReport/{id}: update the report (result, tag)")
    } else {
        format!(
            "DiagnosticReport/{id}: supersede {}; update the report (result, tag)",
            superseded.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_names_what_is_superseded_and_no_content() {
        let bundle = json!({"entry": [
            {"request": {"method": "PUT", "url": "Observation/a", "ifMatch": "W/\"1\""},
             "resource": {"valueString": "report text"}},
            {"request": {"method": "POST", "url": "Provenance"}},
            {"request": {"method": "PUT", "url": "DiagnosticReport/r1", "ifMatch": "W/\"3\""}}]});
        assert_eq!(
            describe("r1", &bundle),
            "DiagnosticReport/r1: supersede Observation/a; update the report (result, tag)"
        );
        let unlink_only =
            json!({"entry": [{"request": {"method": "PUT", "url": "DiagnosticReport/r1"}}]});
        assert_eq!(
            describe("r1", &unlink_only),
            "DiagnosticReport/r1: update the report (result, tag)"
        );
    }

    #[test]
    fn only_a_device_reference_names_a_device() {
        assert_eq!(device_id("Device/a-1.b").ok(), Some("a-1.b"));
        for bad in ["Patient/1", "Device/", "Device/a/b", "1", "Device/a b"] {
            assert!(
                matches!(device_id(bad), Err(RetractError::BadDevice(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_ending_follows_the_outcome() {
        let mut summary = RetractSummary::default();
        assert_eq!(summary.ending(), Ending::Complete);
        summary.windows_failed.insert("http-400".into(), 1);
        assert_eq!(summary.ending(), Ending::Partial);
        summary.interrupted = true;
        assert_eq!(summary.ending(), Ending::Interrupted);
        summary.unreachable = Some("down".into());
        assert_eq!(summary.ending(), Ending::Unreachable);
    }
}
