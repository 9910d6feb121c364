//! `reportsplit mllp --listen ADDR`: an HL7 v2 MLLP listener.
//!
//! Each connection reads MLLP frames ([`codec`]: bounded by
//! `hl7.max_message_bytes`), one message at a time; a connection idle for
//! `hl7.idle_timeout_secs` is closed, and at most `hl7.max_connections` are
//! served at once. A message is evaluated (`reportsplit-hl7`): unreadable →
//! AR, unusable → AE (with ERR), another processing id or service section →
//! AA and counted as ignored; a usable one is put in the spool
//! ([`spool::MessageSpool`]: a directory, or a PostgreSQL table that
//! replicas share when the state is there) and answered AA only once it is
//! durable there (if the spool cannot take it, no ACK: the connection
//! closes, and the sender sends it again). The [`writer`] drains the spool
//! to the FHIR server through [`crate::hl7::Ingest`], the path `sync` uses,
//! so a down server never stops the feed. `--metrics-listen` serves
//! `/metrics` and `/healthz` ([`crate::metrics::export`]).
//!
//! On a stop request (SIGTERM/SIGINT) the listener stops accepting, each
//! connection finishes the message it is on (its ACK included), the writer
//! finishes the reports in flight, and what is left waits in the spool for
//! the next start.

pub mod codec;
pub mod spool;
pub mod writer;

pub use spool::{MessageSpool, spool_dir};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use reportsplit_hl7::{AckCode, Hl7Settings, Verdict, ack, evaluate};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::error::Class;
use crate::hl7::serial_keys;
use crate::metrics::Metrics;
use crate::run::{RunError, Worker};
use crate::state::StateError;
use crate::state::spool::Put;
use codec::{MllpCodec, MllpError};

/// How often the spool depth gauge is refreshed.
const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// What `reportsplit mllp` is asked to do.
#[derive(Debug, Clone)]
pub struct MllpOptions {
    pub config: PathBuf,
    pub listen: SocketAddr,
    /// Reports the writer stores and enriches at once.
    pub concurrency: usize,
    /// Overrides `[state] url`: the spool in PostgreSQL (shared by replicas).
    pub state_url: Option<String>,
    /// Serves `/metrics` and `/healthz` on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// `false`: spool only, no FHIR server (to measure the listener alone,
    /// or to take a feed while the server is being set up).
    pub writer: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum MllpModeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen on {address}")]
    Listen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl MllpModeError {
    pub fn class(&self) -> Class {
        match self {
            MllpModeError::Config(_) => Class::Config,
            MllpModeError::Run(error) => error.class(),
            MllpModeError::State(error) => error.class(),
            MllpModeError::Listen { .. } => Class::Config,
        }
    }
}

/// What the listener answered, for the log line at the end and tests.
#[derive(Debug, Default, Serialize)]
pub struct ListenerCounts {
    pub connections: AtomicU64,
    /// AA after the spool took it.
    pub spooled: AtomicU64,
    /// AA, the same bytes already waiting in the (PostgreSQL) spool.
    pub already_spooled: AtomicU64,
    /// AA, not written.
    pub ignored: AtomicU64,
    /// AE.
    pub errors: AtomicU64,
    /// AR.
    pub rejected: AtomicU64,
    /// Not answered: the spool could not take the message.
    pub unanswered: AtomicU64,
}

/// What a connection needs.
struct Shared {
    settings: Hl7Settings,
    spool: Arc<MessageSpool>,
    /// Wakes the writer when a message is spooled.
    spooled: Arc<Notify>,
    counts: Arc<ListenerCounts>,
    metrics: Metrics,
    max_message_bytes: usize,
    idle_timeout: Duration,
    acks: AtomicU64,
}

/// A bound listener, ready to [`Listener::serve`].
pub struct Listener {
    listener: TcpListener,
    shared: Arc<Shared>,
    connections: Arc<Semaphore>,
}

impl Listener {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn counts(&self) -> Arc<ListenerCounts> {
        self.shared.counts.clone()
    }

    /// Accepts connections until `stop`; then waits for each connection to
    /// finish the message it is on.
    pub async fn serve(self, stop: CancellationToken) {
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            let permit = tokio::select! {
                () = stop.cancelled() => break,
                permit = self.connections.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = stop.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            self.shared
                .counts
                .connections
                .fetch_add(1, Ordering::Relaxed);
            let shared = self.shared.clone();
            let stop = stop.clone();
            tasks.spawn(async move {
                let _permit = permit;
                if let Err(error) = connection(&shared, stream, &stop).await {
                    tracing::info!(%peer, %error, "connection closed");
                }
            });
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// Binds the listener on `address` over `spool`.
pub async fn bind(
    address: SocketAddr,
    config: &Config,
    spool: Arc<MessageSpool>,
    spooled: Arc<Notify>,
    metrics: Metrics,
) -> Result<Listener, MllpModeError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| MllpModeError::Listen { address, source })?;
    Ok(Listener {
        listener,
        connections: Arc::new(Semaphore::new(config.hl7.max_connections)),
        shared: Arc::new(Shared {
            settings: config.hl7.settings()?,
            spool,
            spooled,
            counts: Arc::new(ListenerCounts::default()),
            max_message_bytes: config.hl7.max_message_bytes,
            idle_timeout: config.hl7.idle_timeout(),
            metrics,
            acks: AtomicU64::new(0),
        }),
    })
}

/// Serves one connection: a message, its ACK, the next.
async fn connection(
    shared: &Shared,
    stream: TcpStream,
    stop: &CancellationToken,
) -> Result<(), MllpError> {
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, MllpCodec::new(shared.max_message_bytes));
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            next = tokio::time::timeout(shared.idle_timeout, framed.next()) => next,
        };
        let frame = match next {
            Err(_) => return Ok(()),
            Ok(None) => return Ok(()),
            Ok(Some(Err(MllpError::TooLarge { max }))) => {
                // The rest of the frame cannot be read in bounded memory: say
                // why, then close (the sender must not resend it as it is).
                let read_at = Instant::now();
                shared.metrics.hl7_received();
                shared.counts.rejected.fetch_add(1, Ordering::Relaxed);
                let problem = reportsplit_hl7::Problem::unreadable(format!(
                    "the message is larger than {max} bytes"
                ));
                let text = ack(
                    None,
                    AckCode::Reject,
                    Some(&problem),
                    &now_v2(),
                    &shared.ack_id(),
                );
                framed.send(text.as_bytes()).await?;
                shared
                    .metrics
                    .hl7_ack(AckCode::Reject.as_str(), read_at.elapsed());
                return Ok(());
            }
            Ok(Some(Err(error))) => return Err(error),
            Ok(Some(Ok(frame))) => frame,
        };
        let read_at = Instant::now();
        shared.metrics.hl7_received();
        let Some((code, answer)) = answer(shared, &frame).await else {
            shared.counts.unanswered.fetch_add(1, Ordering::Relaxed);
            shared.metrics.hl7_message("unanswered");
            return Ok(());
        };
        framed.send(answer.as_bytes()).await?;
        shared.metrics.hl7_ack(code.as_str(), read_at.elapsed());
    }
}

/// The ACK for one message (and its code), `None` when the spool could not
/// take it.
async fn answer(shared: &Shared, message: &[u8]) -> Option<(AckCode, String)> {
    let evaluation = evaluate(message, &shared.settings);
    let (code, problem) = match &evaluation.verdict {
        Verdict::Refuse(problem) => {
            let counter = match problem.ack {
                AckCode::Reject => &shared.counts.rejected,
                _ => &shared.counts.errors,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                control_id = evaluation.header.as_ref().map_or("", |h| h.control_id.as_str()),
                reason = %problem.key(),
                "message refused"
            );
            (problem.ack, Some(problem))
        }
        Verdict::Ignore(_) => {
            shared.counts.ignored.fetch_add(1, Ordering::Relaxed);
            shared.metrics.hl7_message("ignored");
            (AckCode::Accept, None)
        }
        Verdict::Accept(reports) => {
            let control_id = evaluation
                .header
                .as_ref()
                .map_or("", |h| h.control_id.as_str());
            let mut keys: Vec<String> = reports.iter().flat_map(serial_keys).collect();
            keys.sort();
            keys.dedup();
            match shared.spool.put(message, control_id, &keys).await {
                Ok(put) => {
                    let (counter, outcome) = match put {
                        Put::Stored => (&shared.counts.spooled, "spooled"),
                        Put::AlreadyThere => (&shared.counts.already_spooled, "duplicate"),
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    shared.metrics.hl7_message(outcome);
                    shared.spooled.notify_one();
                    (AckCode::Accept, None)
                }
                Err(error) => {
                    tracing::error!(error = %crate::error::error_chain(&error), "the spool cannot take a message; not acknowledging it");
                    return None;
                }
            }
        }
    };
    let text = ack(
        evaluation.header.as_ref(),
        code,
        problem,
        &now_v2(),
        &shared.ack_id(),
    );
    Some((code, text))
}

impl Shared {
    /// MSH-10 of an ACK: unique in this process and across restarts.
    fn ack_id(&self) -> String {
        let count = self.acks.fetch_add(1, Ordering::Relaxed);
        let seconds = time::OffsetDateTime::now_utc().unix_timestamp();
        format!("RS{seconds:x}{count:x}")
    }
}

/// The writer's worker, connected once the FHIR server answers (tried
/// again every 5 s while it is unreachable); `None` when stopped first.
async fn connect_writer(
    config: Config,
    stop: &CancellationToken,
) -> Result<Option<Worker>, MllpModeError> {
    loop {
        match Worker::connect(config.clone(), true).await {
            Ok(worker) => return Ok(Some(worker)),
            Err(error) if error.class() == Class::Unreachable => {
                tracing::warn!(error = %crate::error::error_chain(&error), "the FHIR server is unreachable; spooling, and connecting again in 5 s");
                tokio::select! {
                    () = stop.cancelled() => return Ok(None),
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// The time now as a v2 timestamp (UTC).
fn now_v2() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}+0000",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// The listener and its writer until `shutdown`.
pub async fn run(options: &MllpOptions, shutdown: CancellationToken) -> Result<(), MllpModeError> {
    let config = Config::load(&options.config)?.with_state_url(options.state_url.as_deref())?;
    run_with(config, options, shutdown, |_| {}).await
}

/// [`run`] with a loaded config; `bound` is told the listener's address
/// (tests listen on port 0).
pub async fn run_with(
    config: Config,
    options: &MllpOptions,
    shutdown: CancellationToken,
    bound: impl FnOnce(SocketAddr),
) -> Result<(), MllpModeError> {
    config.hl7.validate()?;
    let spool =
        Arc::new(MessageSpool::open(&config, config.hl7.settings()?, options.concurrency).await?);
    let retention = config.hl7.dead_letter_retention();
    let pruned = spool.prune_dead(retention).await?;
    if pruned > 0 {
        tracing::info!(pruned, "dead letters past their retention deleted");
    }
    let metrics = Metrics::new();
    if let Some(address) = options.metrics_listen {
        let exporter = TcpListener::bind(address)
            .await
            .map_err(|source| MllpModeError::Listen { address, source })?;
        tracing::info!(%address, "serving /metrics and /healthz");
        tokio::spawn(crate::metrics::export(
            exporter,
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    let spooled = Arc::new(Notify::new());
    let listener = bind(
        options.listen,
        &config,
        spool.clone(),
        spooled.clone(),
        metrics.clone(),
    )
    .await?;
    let counts = listener.counts();
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, writer = options.writer, "listening for HL7 v2 over MLLP");
        bound(address);
    }
    // The listener serves from now on, whatever the FHIR server does: the
    // writer connects (and retries while the server is unreachable) beside
    // it. A writer that cannot run at all (refused, misconfigured) stops the
    // listener too, rather than spool forever unseen.
    let serving_stop = shutdown.child_token();
    let serving = listener.serve(serving_stop.clone());
    let writing = async {
        if !options.writer {
            return Ok(None);
        }
        let result = async {
            let Some(worker) = connect_writer(config, &shutdown).await? else {
                return Ok(None);
            };
            writer::drain(
                &worker,
                &spool,
                &spooled,
                &metrics,
                options.concurrency,
                retention,
                &shutdown,
            )
            .await
            .map(Some)
        }
        .await;
        if result.is_err() {
            serving_stop.cancel();
        }
        result
    };
    let gauging = async {
        loop {
            match spool.depth().await {
                Ok(depth) => metrics.set_hl7_spool_depth(depth),
                Err(error) => {
                    tracing::warn!(error = %crate::error::error_chain(&error), "cannot count the spool");
                }
            }
            tokio::select! {
                () = serving_stop.cancelled() => break,
                () = tokio::time::sleep(DEPTH_EVERY) => {}
            }
        }
    };
    let ((), written, ()) = tokio::join!(serving, writing, gauging);
    if let Some(summary) = written? {
        tracing::info!(%summary, "writer stopped");
    }
    tracing::info!(
        connections = counts.connections.load(Ordering::Relaxed),
        spooled = counts.spooled.load(Ordering::Relaxed),
        ignored = counts.ignored.load(Ordering::Relaxed),
        errors = counts.errors.load(Ordering::Relaxed),
        rejected = counts.rejected.load(Ordering::Relaxed),
        "listener stopped"
    );
    Ok(())
}
