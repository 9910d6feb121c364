//! Unattended operation: `reportsplit sync --every 5m` (a pass, a jittered
//! pause, another pass... until SIGTERM/SIGINT), the signal handling shared
//! by the long-running commands, and the process exit codes (documented in
//! docs/operations.md).
//!
//! # Stopping
//! On SIGTERM or SIGINT the daemon starts no new pass, and the pass in
//! flight starts no new report: the reports in flight finish and the
//! checkpoint is saved at the earliest report not started (see
//! [`crate::sync`]). That takes [`SHUTDOWN_GRACE`] at most; a pass still
//! running after that is dropped: its open requests
//! are cancelled and its checkpoint stays where the previous pass left it.
//! That is safe because every transaction is idempotent (conditional creates,
//! `ifMatch` on the report): the next run re-reads the window and skips what
//! was committed by its tag. So the process exits 0 within
//! SHUTDOWN_GRACE + a second after the signal, whatever the server does.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::fhir::FhirError;
use crate::metrics::Metrics;
use crate::state::StateError;
use crate::sync::{SyncArgs, SyncError, SyncSummary};

/// How long a pass in flight may take to finish after SIGTERM/SIGINT. Below
/// the usual stop timeouts (Kubernetes 30 s, systemd 90 s), so the daemon is
/// never killed mid-checkpoint by its supervisor.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Relative jitter of the pause between passes (±10 %), so that many workers
/// started together do not hit the server in lockstep.
const JITTER: f64 = 0.10;

/// Process exit codes of `reportsplit` (see docs/operations.md).
pub mod exit {
    /// Everything was handled.
    pub const OK: u8 = 0;
    /// An unexpected error (I/O on an output file, a bug).
    pub const INTERNAL: u8 = 1;
    /// The configuration file or the command line is invalid (clap uses 2 for usage errors too).
    pub const CONFIG: u8 = 2;
    /// The run finished but some reports failed (see the summary / dead-letter file).
    pub const PARTIAL: u8 = 3;
    /// The FHIR server could not be reached (connection refused, DNS, timeouts after retries).
    pub const UNREACHABLE: u8 = 4;
    /// The server answered but refused the run: authorization, or a
    /// CapabilityStatement that lacks what the run needs.
    pub const REFUSED: u8 = 5;
    /// The state directory is locked by another reportsplit process, or unreadable.
    pub const STATE: u8 = 6;
    /// A `sync --once`, backfill or reprocess was stopped by a signal before
    /// it finished; run it again to resume.
    pub const INTERRUPTED: u8 = 7;
}

/// The exit code for a FHIR error that ended a run.
pub fn fhir_exit_code(error: &FhirError) -> u8 {
    match error {
        FhirError::Transport { .. } => exit::UNREACHABLE,
        FhirError::Auth(_) => exit::REFUSED,
        FhirError::Status { status, .. } => match status.as_u16() {
            401 | 403 => exit::REFUSED,
            502..=504 => exit::UNREACHABLE,
            _ => exit::INTERNAL,
        },
        FhirError::Url { .. } | FhirError::CaFile { .. } => exit::CONFIG,
        _ => exit::INTERNAL,
    }
}

/// The exit code for a sync error (a pass, or the daemon's start).
pub fn exit_code(error: &SyncError) -> u8 {
    match error {
        SyncError::Config(_) | SyncError::Mappings(_) => exit::CONFIG,
        SyncError::Capability { .. } => exit::REFUSED,
        SyncError::Fhir(error) => fhir_exit_code(error),
        SyncError::State(error) => state_exit_code(error),
        SyncError::Output { .. } | SyncError::Device(_) => exit::INTERNAL,
    }
}

pub fn state_exit_code(_error: &StateError) -> u8 {
    exit::STATE
}

/// A token cancelled on the first SIGTERM or SIGINT (Ctrl-C); the commands
/// then finish what is in flight and save their progress. Operators who
/// press Ctrl-C twice expect a hard stop: a second SIGINT exits at once with
/// 130 (safe too: every write is idempotent, progress is re-read).
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install the SIGTERM/SIGINT handlers");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(
                signal = name,
                "stopping: finishing the work in flight and saving progress"
            );
            cancel.cancel();
            if int.recv().await.is_some() {
                eprintln!("reportsplit: second interrupt, exiting without saving");
                std::process::exit(130);
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }
    });
    token
}

/// Parses a duration such as `90s`, `5m`, `2h`, `1d`, `7d`, `1w` (also
/// combined: `1h30m`). A bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => {
                return Err(format!(
                    "{text:?}: unknown unit {c:?} (use s, m, h, d or w, e.g. 5m or 7d)"
                ));
            }
        };
        let value: u64 = digits
            .parse()
            .map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
        digits.clear();
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?} is too long"))?;
    }
    if !digits.is_empty() {
        return Err(format!("{text:?}: the last number has no unit"));
    }
    if total == 0 {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(Duration::from_secs(total))
}

/// `every` scaled by a random factor in [1 − JITTER, 1 + JITTER].
pub fn jittered(every: Duration) -> Duration {
    every.mul_f64(1.0 + JITTER * (2.0 * rand::random::<f64>() - 1.0))
}

/// What the daemon did over its lifetime.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DaemonSummary {
    pub passes: u64,
    /// Passes that ended with an error (server unreachable...) and were retried at the next tick.
    pub failed_passes: u64,
    /// The pass in flight at shutdown did not finish within the grace period and was dropped.
    pub abandoned_pass: bool,
    pub seen: u64,
    pub written: u64,
    pub failed_reports: u64,
    pub observations_written: u64,
    pub duration_secs: f64,
}

impl DaemonSummary {
    fn add(&mut self, pass: &SyncSummary) {
        self.passes += 1;
        self.seen += pass.seen;
        self.written += pass.written;
        self.failed_reports += pass.failed_total();
        self.observations_written += pass.observations_written;
    }
}

impl std::fmt::Display for DaemonSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passes ({} failed{}), {} reports seen, {} written, {} failed, {} Observations written; up {:.1} s",
            self.passes,
            self.failed_passes,
            if self.abandoned_pass {
                ", the last one dropped at shutdown"
            } else {
                ""
            },
            self.seen,
            self.written,
            self.failed_reports,
            self.observations_written,
            self.duration_secs
        )
    }
}

/// Errors of a pass that the next pass may not have: the daemon logs them
/// and carries on. Everything else (configuration, capability, a broken
/// output file) stops it.
fn is_transient(error: &SyncError) -> bool {
    match error {
        SyncError::Fhir(error) => {
            matches!(fhir_exit_code(error), exit::UNREACHABLE | exit::INTERNAL)
        }
        // Another process (a backfill on the same state directory) holds the lock for now.
        SyncError::State(StateError::Locked(_)) => true,
        _ => false,
    }
}

/// Runs passes every `every` (jittered) until `shutdown` is cancelled.
/// Returns `Ok` after a clean stop; `Err` for errors that another pass cannot
/// fix (invalid configuration, a server without the needed capabilities...).
pub async fn run(
    args: &SyncArgs,
    every: Duration,
    shutdown: CancellationToken,
) -> Result<DaemonSummary, SyncError> {
    let config = Config::load(&args.config)?;
    let mut sink: Box<dyn std::io::Write + Send> = match &args.transactions_out {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| SyncError::Output {
                    path: path.display().to_string(),
                    source,
                })?,
        ),
        None => Box::new(std::io::sink()),
    };
    let metrics = match args.metrics_listen {
        Some(address) => Some(
            crate::metrics::export_on(address, shutdown.clone())
                .await
                .map_err(|source| SyncError::Output {
                    path: format!("metrics listener {address}"),
                    source,
                })?,
        ),
        None => None,
    };
    run_with(config, every, &mut sink, metrics.as_ref(), shutdown).await
}

/// [`run`] with a loaded config and an output for the transactions sent.
pub async fn run_with(
    config: Config,
    every: Duration,
    transactions: &mut (dyn std::io::Write + Send),
    metrics: Option<&Metrics>,
    shutdown: CancellationToken,
) -> Result<DaemonSummary, SyncError> {
    let started = Instant::now();
    let mut summary = DaemonSummary::default();
    tracing::info!(every_secs = every.as_secs_f64(), "sync daemon started");
    while !shutdown.is_cancelled() {
        let pass_started = Instant::now();
        let pass = run_pass(config.clone(), transactions, &shutdown);
        tokio::pin!(pass);
        let result = tokio::select! {
            result = &mut pass => result,
            () = shutdown.cancelled() => {
                tracing::info!(grace_secs = SHUTDOWN_GRACE.as_secs(), "waiting for the pass in flight to finish");
                match tokio::time::timeout(SHUTDOWN_GRACE, &mut pass).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!("the pass did not finish in time; dropped (its checkpoint stays at the previous pass, the next run re-reads the window)");
                        summary.abandoned_pass = true;
                        break;
                    }
                }
            }
        };
        match result {
            Ok(pass) => {
                tracing::info!(
                    seen = pass.seen,
                    written = pass.written,
                    current = pass.current,
                    skipped = pass.skipped_total(),
                    failed = pass.failed_total(),
                    observations = pass.observations_written,
                    checkpoint = pass.checkpoint.as_deref().unwrap_or(""),
                    secs = pass_started.elapsed().as_secs_f64(),
                    "pass done"
                );
                if let Some(metrics) = metrics {
                    metrics.record_sync(&pass);
                }
                summary.add(&pass);
            }
            Err(error) if is_transient(&error) => {
                summary.passes += 1;
                summary.failed_passes += 1;
                tracing::error!(error = %error, "pass failed; retrying at the next tick");
            }
            Err(error) => return Err(error),
        }
        let pause = jittered(every);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => {}
        }
    }
    summary.duration_secs = started.elapsed().as_secs_f64();
    tracing::info!(%summary, "sync daemon stopped");
    Ok(summary)
}

async fn run_pass(
    config: Config,
    transactions: &mut (dyn std::io::Write + Send),
    shutdown: &CancellationToken,
) -> Result<SyncSummary, SyncError> {
    let summary = crate::sync::run_with(config, false, transactions, shutdown).await?;
    transactions.flush().map_err(|source| SyncError::Output {
        path: "transactions output".into(),
        source,
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_forms_operators_write() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("90"), Ok(90));
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("5m"), Ok(300));
        assert_eq!(secs("2h"), Ok(7200));
        assert_eq!(secs("1d"), Ok(86_400));
        assert_eq!(secs("7d"), Ok(604_800));
        assert_eq!(secs("1w"), Ok(604_800));
        assert_eq!(secs("1h30m"), Ok(5400));
        for bad in ["", "5x", "m", "5m3", "0s", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let every = Duration::from_secs(300);
        for _ in 0..1000 {
            let pause = jittered(every).as_secs_f64();
            assert!((270.0..=330.0).contains(&pause), "{pause}");
        }
    }

    #[test]
    fn unreachable_servers_and_refusals_have_distinct_exit_codes() {
        let config = SyncError::Config(crate::config::ConfigError::Invalid {
            key: "fhir.url".into(),
            message: "bad".into(),
        });
        assert_eq!(exit_code(&config), exit::CONFIG);
        let locked = SyncError::State(StateError::Locked("/x".into()));
        assert_eq!(exit_code(&locked), exit::STATE);
        assert!(is_transient(&locked));
        let forbidden = SyncError::Fhir(FhirError::Status {
            method: reqwest::Method::GET,
            url: "http://x/metadata".into(),
            status: reqwest::StatusCode::FORBIDDEN,
            outcome: None,
        });
        assert_eq!(exit_code(&forbidden), exit::REFUSED);
        assert!(!is_transient(&forbidden));
        let unavailable = SyncError::Fhir(FhirError::Status {
            method: reqwest::Method::GET,
            url: "http://x/metadata".into(),
            status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
            outcome: None,
        });
        assert_eq!(exit_code(&unavailable), exit::UNREACHABLE);
        assert!(is_transient(&unavailable));
    }
}
