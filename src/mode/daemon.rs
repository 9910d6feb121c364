//! Unattended operation: `reportsplit sync --every 5m` (a pass, a jittered
//! pause, another pass... until a stop request).
//!
//! # Stopping
//! On SIGTERM or SIGINT ([`crate::signal`]) the daemon starts no new pass,
//! and the pass in flight starts no new report: the reports in flight
//! finish and the checkpoint is saved at the earliest report not started
//! (see [`crate::mode::once`]). That takes [`SHUTDOWN_GRACE`] at most; a
//! pass still running after that is dropped: its open requests are
//! cancelled and its checkpoint stays where the previous pass left it.
//! That is safe because every transaction is idempotent (conditional creates,
//! `ifMatch` on the report): the next run re-reads the window and skips what
//! was committed by its tag. So the process exits 0 within
//! SHUTDOWN_GRACE + a second after the signal, whatever the server does.
//!
//! # Failures
//! A pass that fails with a transient error ([`crate::error::Class`]: the
//! server unreachable, the state directory locked by a backfill...) or
//! because the PostgreSQL state store cannot be reached or used (down,
//! restarting, its database renamed or not accepting connections) is
//! logged, counted (`reportsplit_passes_failed_total{reason}`) and tried
//! again later: at the next tick, then after a pause that doubles with each
//! failure in a row (up to [`MAX_BACKOFF`] ticks, and never more than
//! [`MAX_BACKOFF_PAUSE`] unless the tick itself is longer). After
//! [`crate::metrics::DEGRADED_AFTER`] failures in a row `/healthz` says
//! `degraded`. Anything else stops the daemon. A report that panics is
//! dead-lettered by its pass, which goes on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::mode::once::PassSummary;
use crate::run::{RunError, Tally};
use crate::state::StateError;

/// How long a pass in flight may take to finish after SIGTERM/SIGINT. Below
/// the usual stop timeouts (Kubernetes 30 s, systemd 90 s), so the daemon is
/// never killed mid-checkpoint by its supervisor.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Relative jitter of the pause between passes (±10 %), so that many workers
/// started together do not hit the server in lockstep.
const JITTER: f64 = 0.10;

/// The pause after failed passes grows to at most this many ticks.
const MAX_BACKOFF: u32 = 16;

/// ... and to at most this long (unless one tick is longer): an outage
/// that ends is noticed within this.
const MAX_BACKOFF_PAUSE: Duration = Duration::from_secs(300);

/// The pause before the next pass after `failed_in_a_row` failed ones: the
/// tick, doubled per failure after the first.
fn backoff(every: Duration, failed_in_a_row: u32) -> Duration {
    if failed_in_a_row <= 1 {
        return every;
    }
    let factor = 1u32 << (failed_in_a_row - 1).min(MAX_BACKOFF.trailing_zeros());
    every
        .saturating_mul(factor)
        .min(MAX_BACKOFF_PAUSE.max(every))
}

/// Why a failed pass may work at a later tick: its class is transient, or
/// the PostgreSQL state store failed (connection refused or lost, database
/// gone or closed to connections: an outage, not a mistake in the
/// configuration, which `validate` caught at start). The reason is the
/// metric's label.
fn retry_reason(error: &RunError) -> Option<&'static str> {
    match error {
        RunError::State(StateError::Postgres { .. } | StateError::Pool { .. }) => Some("state"),
        _ => match error.class() {
            crate::error::Class::Unreachable => Some("unreachable"),
            crate::error::Class::Locked => Some("locked"),
            crate::error::Class::Report => Some("server-error"),
            _ => None,
        },
    }
}

/// What the daemon is asked to do.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The configuration file.
    pub config: PathBuf,
    /// The pause between passes (jittered).
    pub every: Duration,
    /// Appends the transaction Bundles sent (NDJSON) to this file.
    pub transactions_out: Option<PathBuf>,
    /// Serves Prometheus metrics and `/healthz` on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// `postgres://…`: overrides `[state] url` (the checkpoint in
    /// PostgreSQL, advanced by one daemon at a time).
    pub state_url: Option<String>,
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
    /// Passes left to another daemon that leads the stream's checkpoint in
    /// PostgreSQL (this one stands by and tries again at the next tick).
    pub standby_passes: u64,
    /// The pass in flight at shutdown did not finish within the grace period and was dropped.
    pub abandoned_pass: bool,
    /// The reports of every pass that finished.
    pub tally: Tally,
    pub duration_secs: f64,
}

impl std::fmt::Display for DaemonSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} passes ({} failed, {} standing by for another leader{}); up {:.1} s",
            self.passes,
            self.failed_passes,
            self.standby_passes,
            if self.abandoned_pass {
                ", the last one dropped at shutdown"
            } else {
                ""
            },
            self.duration_secs
        )?;
        write!(f, "{}", self.tally)
    }
}

/// Runs passes every `options.every` (jittered) until `shutdown` is
/// cancelled. Returns `Ok` after a clean stop; `Err` for errors that another
/// pass cannot fix (invalid configuration, a server without the needed
/// capabilities...).
pub async fn run(
    options: &DaemonOptions,
    shutdown: CancellationToken,
) -> Result<DaemonSummary, RunError> {
    let config = Config::load(&options.config)?.with_state_url(options.state_url.as_deref())?;
    let mut sink: Box<dyn std::io::Write + Send> = match &options.transactions_out {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| RunError::Output {
                    path: path.display().to_string(),
                    source,
                })?,
        ),
        None => Box::new(std::io::sink()),
    };
    let metrics = match options.metrics_listen {
        Some(address) => Some(
            crate::metrics::export_on(address, shutdown.clone())
                .await
                .map_err(|source| RunError::Output {
                    path: format!("metrics listener {address}"),
                    source,
                })?,
        ),
        None => None,
    };
    run_with(config, options.every, &mut sink, metrics.as_ref(), shutdown).await
}

/// [`run`] with a loaded config and an output for the transactions sent.
pub async fn run_with(
    config: Config,
    every: Duration,
    transactions: &mut (dyn std::io::Write + Send),
    metrics: Option<&Metrics>,
    shutdown: CancellationToken,
) -> Result<DaemonSummary, RunError> {
    let mut passes = SyncPasses {
        config,
        transactions,
        stop: shutdown.clone(),
    };
    run_passes(every, metrics, &shutdown, &mut passes).await
}

/// What the daemon runs at each tick: a sync pass (tests give their own).
trait Passes {
    fn pass(&mut self) -> BoxFuture<'_, Result<PassSummary, RunError>>;
}

/// Sync passes over one configuration, their transactions to one output.
struct SyncPasses<'o> {
    config: Config,
    transactions: &'o mut (dyn std::io::Write + Send),
    stop: CancellationToken,
}

impl Passes for SyncPasses<'_> {
    fn pass(&mut self) -> BoxFuture<'_, Result<PassSummary, RunError>> {
        Box::pin(async move {
            let pass = crate::mode::once::run_with(
                self.config.clone(),
                false,
                self.transactions,
                &self.stop,
            )
            .await?;
            self.transactions
                .flush()
                .map_err(|source| RunError::Output {
                    path: "transactions output".into(),
                    source,
                })?;
            Ok(pass)
        })
    }
}

/// The daemon's loop over `passes`.
async fn run_passes(
    every: Duration,
    metrics: Option<&Metrics>,
    shutdown: &CancellationToken,
    passes: &mut impl Passes,
) -> Result<DaemonSummary, RunError> {
    let started = Instant::now();
    let mut summary = DaemonSummary::default();
    let mut failed_in_a_row = 0u32;
    tracing::info!(every_secs = every.as_secs_f64(), "sync daemon started");
    while !shutdown.is_cancelled() {
        let pass_started = Instant::now();
        let running = passes.pass();
        tokio::pin!(running);
        let result = tokio::select! {
            result = &mut running => result,
            () = shutdown.cancelled() => {
                tracing::info!(grace_secs = SHUTDOWN_GRACE.as_secs(), "waiting for the pass in flight to finish");
                match tokio::time::timeout(SHUTDOWN_GRACE, &mut running).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!("the pass did not finish in time; dropped (its checkpoint stays at the previous pass, the next run re-reads the window)");
                        summary.abandoned_pass = true;
                        break;
                    }
                }
            }
        };
        summary.passes += 1;
        match result {
            Ok(pass) => {
                let tally = &pass.tally;
                tracing::info!(
                    seen = tally.seen,
                    written = tally.written,
                    current = tally.current,
                    skipped = tally.skipped_total(),
                    failed = tally.failed_total(),
                    observations = tally.observations_written,
                    checkpoint = pass.checkpoint.as_deref().unwrap_or(""),
                    secs = pass_started.elapsed().as_secs_f64(),
                    "pass done"
                );
                if let Some(metrics) = metrics {
                    tally.add_to(metrics);
                    let checkpoint = pass.checkpoint.as_deref().and_then(|c| {
                        time::OffsetDateTime::parse(
                            c,
                            &time::format_description::well_known::Rfc3339,
                        )
                        .ok()
                    });
                    if let Some(checkpoint) = checkpoint {
                        metrics.set_checkpoint(checkpoint);
                    }
                }
                summary.tally += tally;
                failed_in_a_row = 0;
                if let Some(metrics) = metrics {
                    metrics.pass_worked();
                }
            }
            Err(RunError::State(StateError::Led(place))) => {
                summary.standby_passes += 1;
                failed_in_a_row = 0;
                if let Some(metrics) = metrics {
                    metrics.pass_worked();
                }
                tracing::info!(state = %place, "another worker leads this stream's checkpoint; standing by until the next tick");
            }
            Err(error) => {
                let Some(reason) = retry_reason(&error) else {
                    return Err(error);
                };
                summary.failed_passes += 1;
                failed_in_a_row = failed_in_a_row.saturating_add(1);
                if let Some(metrics) = metrics {
                    metrics.pass_failed(reason, u64::from(failed_in_a_row));
                }
                tracing::error!(
                    error = %crate::error::error_chain(&error),
                    reason,
                    failed_in_a_row,
                    retry_in_secs = backoff(every, failed_in_a_row).as_secs_f64(),
                    "pass failed; retrying later"
                );
            }
        }
        let pause = jittered(backoff(every, failed_in_a_row));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.cancelled() => {}
        }
    }
    summary.duration_secs = started.elapsed().as_secs_f64();
    tracing::info!(%summary, "sync daemon stopped");
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Class;
    use crate::fhir::FhirError;

    #[test]
    fn the_pause_doubles_with_each_failure_in_a_row_up_to_a_bound() {
        let tick = Duration::from_secs(10);
        let pauses: Vec<u64> = (1..=8).map(|n| backoff(tick, n).as_secs()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 160, 160, 160]);
        // Never past five minutes, unless the tick itself is longer.
        assert_eq!(backoff(Duration::from_secs(60), 9), MAX_BACKOFF_PAUSE);
        let hour = Duration::from_secs(3600);
        assert_eq!(backoff(hour, 9), hour);
    }

    #[test]
    fn a_state_store_outage_is_retried_a_bad_configuration_is_not() {
        let refused = RunError::State(StateError::Pool {
            url: "postgres://db/rs".into(),
            message: "connection refused".into(),
        });
        assert_eq!(retry_reason(&refused), Some("state"));
        let locked = RunError::State(StateError::Locked("/x".into()));
        assert_eq!(retry_reason(&locked), Some("locked"));
        let config = RunError::Config(crate::config::ConfigError::Invalid {
            key: "state.url".into(),
            message: "bad".into(),
        });
        assert_eq!(retry_reason(&config), None);
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
    fn unreachable_servers_and_locks_are_retried_refusals_are_not() {
        let config = RunError::Config(crate::config::ConfigError::Invalid {
            key: "fhir.url".into(),
            message: "bad".into(),
        });
        assert_eq!(config.class(), Class::Config);
        assert!(!config.class().is_transient());
        let locked = RunError::State(StateError::Locked("/x".into()));
        assert_eq!(locked.class(), Class::Locked);
        assert!(locked.class().is_transient());
        let status = |status| {
            RunError::Fhir(FhirError::Status {
                method: reqwest::Method::GET,
                url: "http://x/metadata".into(),
                status,
                outcome: None,
            })
        };
        let forbidden = status(reqwest::StatusCode::FORBIDDEN);
        assert_eq!(forbidden.class(), Class::Refused);
        assert!(!forbidden.class().is_transient());
        let unavailable = status(reqwest::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable.class(), Class::Unreachable);
        assert!(unavailable.class().is_transient());
        let failed = status(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed.class(), Class::Report);
        assert!(failed.class().is_transient());
    }

    /// A daemon whose stream another daemon leads (PostgreSQL state) stands
    /// by: its passes are neither failures nor a reason to stop.
    #[tokio::test]
    async fn a_daemon_that_does_not_lead_stands_by() {
        struct Follower {
            shutdown: CancellationToken,
            passes: u64,
        }
        impl Passes for Follower {
            fn pass(&mut self) -> BoxFuture<'_, Result<PassSummary, RunError>> {
                self.passes += 1;
                if self.passes == 3 {
                    self.shutdown.cancel();
                }
                Box::pin(async { Err(RunError::State(StateError::Led("postgres://db/rs".into()))) })
            }
        }
        let shutdown = CancellationToken::new();
        let mut passes = Follower {
            shutdown: shutdown.clone(),
            passes: 0,
        };
        let summary = run_passes(Duration::from_millis(10), None, &shutdown, &mut passes)
            .await
            .unwrap();
        assert_eq!(
            (
                summary.passes,
                summary.standby_passes,
                summary.failed_passes
            ),
            (3, 3, 0),
            "{summary}"
        );
    }

    /// The poison report: before the panic guard, it crashed the
    /// daemon, and the restarted daemon on it again. Now every pass
    /// dead-letters it and goes on, and the daemon keeps running.
    #[tokio::test]
    async fn a_panicking_report_is_dead_lettered_and_the_daemon_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let dead_letter = dir.path().join("dead-letter.ndjson");
        struct Poisoned<'p> {
            dead_letter: &'p std::path::Path,
            shutdown: CancellationToken,
            passes: u64,
        }
        impl Passes for Poisoned<'_> {
            fn pass(&mut self) -> BoxFuture<'_, Result<PassSummary, RunError>> {
                self.passes += 1;
                if self.passes == 3 {
                    self.shutdown.cancel();
                }
                Box::pin(async move {
                    Ok(crate::mode::once::tests::poisoned_pass(self.dead_letter).await)
                })
            }
        }
        let shutdown = CancellationToken::new();
        let mut passes = Poisoned {
            dead_letter: &dead_letter,
            shutdown: shutdown.clone(),
            passes: 0,
        };
        let summary = run_passes(Duration::from_millis(10), None, &shutdown, &mut passes)
            .await
            .unwrap();
        assert_eq!(summary.passes, 3, "{summary}");
        assert_eq!(summary.failed_passes, 0, "{summary}");
        assert_eq!(summary.tally.current, 12, "{summary}");
        assert_eq!(summary.tally.failed.get("panic"), Some(&3), "{summary}");
        let letters = std::fs::read_to_string(&dead_letter).unwrap();
        assert_eq!(letters.lines().count(), 3, "{letters}");
    }
}
