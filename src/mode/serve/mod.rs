//! `reportsplit serve`: reportsplit as an HTTP service for interface engines.
//!
//! Routes (see docs/serve.md for examples):
//! - `POST /DiagnosticReport/$enrich[?apply=true]` — a FHIR operation. The body is a
//!   DiagnosticReport, or a Parameters resource whose `resource` parameter holds one.
//!   Without `apply` it answers the transaction Bundle that `sync` would send for that
//!   report (nothing is written). With `apply=true` the report named by the body's `id`
//!   is READ FROM THE SERVER and enriched through the same path as `sync` (conditional
//!   creates, `ifMatch`, re-read on 412), and the answer is the transaction-response
//!   Bundle. The server's copy is used, not the body's, so that this endpoint cannot be
//!   used to write report content that did not come from the server.
//!   A report already tagged for its current text answers `200` with an EMPTY Bundle
//!   (type `transaction`, or `transaction-response` with `apply`): "what sync would
//!   send" is then nothing, and a caller that forwards the Bundle sends a harmless no-op.
//!   The header `X-Reportsplit-Outcome` says `planned`, `written` or `current`.
//!   A report without splittable text is `422` with the skip reason.
//! - `POST /DiagnosticReport/{id}/$enrich[?apply=true]` — the same at instance level,
//!   on the server's copy of the report.
//! - `POST /notify` — a FHIR Subscription rest-hook endpoint for topic-based
//!   notifications: R4 backport (Bundle `history`, first entry a Parameters
//!   SubscriptionStatus), R4B (Bundle `history`, first entry a SubscriptionStatus) and
//!   R5 (Bundle `subscription-notification`, first entry a SubscriptionStatus). Handshakes, heartbeats and status queries are acknowledged
//!   (`200`). Event notifications, id-only or full-resource, name DiagnosticReports
//!   (event `focus`, entry `fullUrl`/`request.url`, or the entry's resource); their ids
//!   are queued (`202`) for a background worker that reads each report from the server
//!   and applies it like `sync`. The queue is durable ([`queue`]: the `202` comes
//!   once the ids are fsync'd in the state directory's journal, a batch of
//!   notifications per fsync) and an entry leaves it only once its report was
//!   written or dead-lettered, so a crash loses nothing. Full-resource payloads
//!   are not trusted as the text source, for the same reason as above, and a
//!   notification may be older than the report. When the bounded queue has no room for all of a notification's reports,
//!   none is queued and the answer is `503` with `Retry-After`: the sender retries,
//!   and reprocessing is idempotent. References to another server are ignored.
//! - `GET /healthz` — liveness (always `200` while the process serves) and whether
//!   the FHIR server answered the last periodic probe.
//! - `GET /metrics` — Prometheus (OpenMetrics text), see [`crate::metrics`].
//!
//! Every error is an OperationOutcome (`application/fhir+json`): 400 bad JSON or query,
//! 401 missing token, 404 unknown route or report, 405, 413 body over the limit,
//! 415 not JSON, 422 not a DiagnosticReport / nothing to split, 502 the FHIR server
//! failed, 503 queue full (or not recordable). Logs carry report ids and reasons,
//! never report text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::error::Class;
use crate::fhir::{FhirClient, FhirError, RetryPolicy};
use crate::metrics::Metrics;
use crate::run::dead_letter::DeadLetterFile;
use crate::run::{RunError, Worker};
use crate::state::pg::{PgQueue, PgState};
use crate::state::queue::{Journal, QueueStore};
use crate::state::stream_key;

mod background;
mod enrich;
mod health;
mod http;
mod notify;
mod queue;

use background::{Background, process_one, process_queue};
use enrich::{enrich, enrich_instance};
use health::{capability_statement, healthz, metrics_text, probe_loop, readyz};
use http::{Problem, method_not_allowed, not_found};
use notify::notify;

/// What the server needs beyond the FHIR configuration.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Largest request body; `None`: the configuration's `limits.report_bytes`.
    pub max_body_bytes: Option<usize>,
    pub queue_capacity: usize,
    pub health_interval: Duration,
    pub drain: Duration,
    pub request_timeout: Duration,
    /// The bearer token every POST route requires. Without it the server
    /// refuses to start unless `insecure_no_auth` is set and it listens on a
    /// loopback address.
    pub token: Option<String>,
    /// Run without a token (only on a loopback address).
    pub insecure_no_auth: bool,
    /// When set, `/notify` requires this shared secret in the
    /// [`NOTIFY_SECRET_HEADER`] header (a Subscription's `channel.header`),
    /// in place of the bearer token.
    pub notify_secret: Option<String>,
    pub dead_letter: Option<PathBuf>,
    /// `postgres://…`: overrides `[state] url` (the queue in PostgreSQL).
    pub state_url: Option<String>,
}

/// The header carrying the Subscription endpoint's shared secret.
pub const NOTIFY_SECRET_HEADER: &str = "x-reportsplit-notify-secret";

/// Who may post: a token (or a notify secret) is required unless
/// `insecure_no_auth` is given, and that only on a loopback address.
pub fn check_access(listen: SocketAddr, options: &ServeOptions) -> Result<(), ServeError> {
    if options.insecure_no_auth {
        if listen.ip().is_loopback() {
            return Ok(());
        }
        return Err(ServeError::Access(format!(
            "--insecure-no-auth is only allowed on a loopback address, not {}",
            listen.ip()
        )));
    }
    if options.token.is_none() {
        return Err(ServeError::Access(
            "serve requires --token (REPORTSPLIT_SERVE_TOKEN); for local tests only, --insecure-no-auth on a loopback address".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Connect(#[from] RunError),
    #[error(transparent)]
    Client(#[from] FhirError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("cannot open the dead-letter file {path}: {source}")]
    DeadLetter {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The whole chain in the message: the binary prints only this line.
    #[error("the serve queue: {}", crate::error::error_chain(.0))]
    State(crate::state::StateError),
    #[error("--queue-capacity must be at least 1")]
    QueueCapacity,
    #[error("{0}")]
    Access(String),
}

impl ServeError {
    /// See [`Class`].
    pub fn class(&self) -> Class {
        match self {
            ServeError::Config(_)
            | ServeError::Bind { .. }
            | ServeError::DeadLetter { .. }
            | ServeError::QueueCapacity
            | ServeError::Access(_) => Class::Config,
            ServeError::Connect(error) => error.class(),
            ServeError::State(error) => error.class(),
            ServeError::Client(error) => error.class(),
            ServeError::Serve(_) => Class::Internal,
        }
    }
}

/// Loads the configuration `config`, connects to the FHIR server, listens
/// on `listen` and serves until `shutdown` is cancelled.
pub async fn run(
    listen: SocketAddr,
    config: &std::path::Path,
    options: ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let config = Config::load(config)?.with_state_url(options.state_url.as_deref())?;
    check_access(listen, &options)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    serve(listener, config, options, Metrics::new(), shutdown).await
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    options: ServeOptions,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    if options.queue_capacity == 0 {
        return Err(ServeError::QueueCapacity);
    }
    check_access(listener.local_addr().map_err(ServeError::Serve)?, &options)?;
    // The queue outlives a crash: what a previous process accepted and did
    // not finish is handed to the worker first. Locked before connecting,
    // so a second serve on the same state directory (or PostgreSQL queue)
    // fails at once.
    let store: Box<dyn QueueStore> = match &config.state.url {
        None => {
            let journal = Journal::open(&config.state.dir).map_err(ServeError::State)?;
            tracing::info!(journal = %journal.path().display(), "serve queue opened");
            Box::new(journal)
        }
        Some(url) => {
            let state = PgState::connect(url, 2).await.map_err(ServeError::State)?;
            let name = format!("serve:{}", stream_key(&config.fhir.url, &config.filters()));
            let queue = PgQueue::open(state, &name, tokio::runtime::Handle::current())
                .await
                .map_err(ServeError::State)?;
            tracing::info!(queue = %name, "serve queue opened in PostgreSQL");
            Box::new(queue)
        }
    };
    let mut worker = Worker::connect(config, true).await?;
    worker.client = worker.client.clone().with_metrics(metrics.clone());
    let probe_client = probe_client(&worker.config)?;
    let worker = Arc::new(worker);

    let (queue, committer, entries) =
        queue::open(store, options.queue_capacity, metrics.clone()).map_err(ServeError::Serve)?;
    let state = AppState {
        worker: worker.clone(),
        metrics: metrics.clone(),
        queue: queue.clone(),
        health: Arc::new(Mutex::new(Health {
            up: None,
            checked: None,
        })),
        token: options.token.clone(),
        notify_secret: options.notify_secret.clone(),
        request_timeout: options.request_timeout,
        shutdown: shutdown.clone(),
    };
    let dead_letter = options
        .dead_letter
        .clone()
        .unwrap_or_else(|| worker.config.state.dir.join("dead-letter.ndjson"));
    let dead_letters =
        DeadLetterFile::append(&dead_letter).map_err(|source| ServeError::DeadLetter {
            path: dead_letter.clone(),
            source,
        })?;
    let background = Background {
        metrics: metrics.clone(),
        queue,
        dead_letters,
    };
    let concurrency = worker.config.write.concurrent_reports;
    let background = {
        let worker = worker.clone();
        tokio::spawn(async move {
            let work = |id| {
                let worker = worker.clone();
                async move { process_one(&worker, id).await }
            };
            process_queue(Arc::new(background), entries, concurrency, work).await;
        })
    };
    let prober = tokio::spawn(probe_loop(
        probe_client,
        state.health.clone(),
        metrics.clone(),
        options.health_interval,
        shutdown.clone(),
    ));

    let local = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(listen = %local, fhir = %worker.client.base(), "serving");
    let max_body_bytes = options.max_body_bytes.unwrap_or(worker.limits.report_bytes);
    let app = router(state, max_body_bytes);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    // No more notifications: the worker drains what it was handed.
    prober.abort();
    committer.close();
    let stop = background.abort_handle();
    match tokio::time::timeout(options.drain, background).await {
        Ok(_) => tracing::info!("queue drained"),
        Err(_) => {
            // Aborting drops the worker's tasks mid-request: safe, every write is idempotent.
            stop.abort();
            tracing::warn!(
                drain_secs = options.drain.as_secs(),
                "queued reports not finished at shutdown; they stay queued for the next start"
            );
        }
    }
    committer.finish().await;
    served.map_err(ServeError::Serve)
}

/// A client for /healthz probes: no retries and a short timeout, so a down
/// server shows as down quickly.
fn probe_client(config: &Config) -> Result<FhirClient, ServeError> {
    let mut options = config.client_options()?;
    options.retry = RetryPolicy {
        max_retries: 0,
        ..options.retry
    };
    options.timeout = options.timeout.min(Duration::from_secs(5));
    Ok(FhirClient::new(&options, &config.auth)?)
}

#[derive(Clone)]
struct AppState {
    worker: Arc<Worker>,
    metrics: Metrics,
    /// The durable queue of notified reports (see [`queue`]).
    queue: queue::Queue,
    health: Arc<Mutex<Health>>,
    token: Option<String>,
    notify_secret: Option<String>,
    request_timeout: Duration,
    /// Cancelled when the server starts to stop: `/readyz` then sends traffic elsewhere.
    shutdown: CancellationToken,
}

struct Health {
    up: Option<bool>,
    checked: Option<OffsetDateTime>,
}

fn router(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/DiagnosticReport/$enrich", post(enrich))
        .route("/DiagnosticReport/%24enrich", post(enrich))
        .route("/DiagnosticReport/{id}/$enrich", post(enrich_instance))
        .route("/DiagnosticReport/{id}/%24enrich", post(enrich_instance))
        .route("/notify", post(notify))
        .route("/metadata", get(capability_statement))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(catch_panics())
        .with_state(state)
}

/// Failures inside a handler are answered as FHIR too: a panic (a bug) becomes
/// a 500 OperationOutcome instead of a dropped connection. Its message is not
/// echoed: it could quote the report being handled.
fn catch_panics()
-> tower_http::catch_panic::CatchPanicLayer<fn(Box<dyn std::any::Any + Send>) -> Response> {
    fn answer(_: Box<dyn std::any::Any + Send>) -> Response {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            "internal error while handling the request",
        )
        .into_response()
    }
    tower_http::catch_panic::CatchPanicLayer::custom(answer)
}

/// Bounds each request's time (slow uploads included) and records it in
/// `reportsplit_http_request_duration_seconds`.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = route_label(
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let response = match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {} s",
                state.request_timeout.as_secs()
            ),
        )
        .into_response(),
    };
    state.metrics.served(
        method.as_str(),
        route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

fn route_label(matched: Option<&str>) -> &'static str {
    match matched {
        Some("/DiagnosticReport/$enrich" | "/DiagnosticReport/%24enrich") => "enrich",
        Some("/DiagnosticReport/{id}/$enrich" | "/DiagnosticReport/{id}/%24enrich") => {
            "enrich-instance"
        }
        Some("/notify") => "notify",
        Some("/healthz") => "healthz",
        Some("/readyz") => "readyz",
        Some("/metadata") => "metadata",
        Some("/metrics") => "metrics",
        _ => "unmatched",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_a_500_operation_outcome() {
        async fn broken() -> &'static str {
            panic!("a bug that quotes report text")
        }
        let app = Router::new()
            .route("/boom", get(broken))
            .layer(catch_panics());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let response = reqwest::get(format!("http://{address}/boom"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["resourceType"], "OperationOutcome");
        assert!(!body.to_string().contains("report text"), "{body}");
    }

    #[test]
    fn serving_without_a_token_needs_the_flag_and_a_loopback_address() {
        let options = |token: Option<&str>, insecure_no_auth| ServeOptions {
            max_body_bytes: Some(1),
            queue_capacity: 1,
            health_interval: Duration::from_secs(1),
            drain: Duration::from_secs(1),
            request_timeout: Duration::from_secs(1),
            token: token.map(str::to_owned),
            insecure_no_auth,
            notify_secret: None,
            dead_letter: None,
            state_url: None,
        };
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let everyone: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_access(loopback, &options(Some("t"), false)).is_ok());
        assert!(check_access(everyone, &options(Some("t"), false)).is_ok());
        assert!(check_access(loopback, &options(None, true)).is_ok());
        assert!(check_access("[::1]:80".parse().unwrap(), &options(None, true)).is_ok());
        for (addr, insecure) in [(loopback, false), (everyone, false), (everyone, true)] {
            let error = check_access(addr, &options(None, insecure)).unwrap_err();
            assert_eq!(error.class(), Class::Config, "{error}");
        }
    }
}
