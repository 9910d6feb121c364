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
//!   and applies it like `sync`. Full-resource payloads are not trusted as the text
//!   source, for the same reason as above, and a notification may be older than the
//!   report. When the bounded queue has no room for all of a notification's reports,
//!   none is queued and the answer is `503` with `Retry-After`: the sender retries,
//!   and reprocessing is idempotent. References to another server are ignored.
//! - `GET /healthz` — liveness (always `200` while the process serves) and whether
//!   the FHIR server answered the last periodic probe.
//! - `GET /metrics` — Prometheus (OpenMetrics text), see [`crate::metrics`].
//!
//! Every error is an OperationOutcome (`application/fhir+json`): 400 bad JSON or query,
//! 401 missing token, 404 unknown route or report, 405, 413 body over the limit,
//! 415 not JSON, 422 not a DiagnosticReport / nothing to split, 502 the FHIR server
//! failed, 503 queue full. Logs carry report ids and reasons, never report text.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt as _;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError};
use crate::error::Class;
use crate::fhir::{FHIR_JSON, FhirClient, FhirError, RetryPolicy};
use crate::metrics::{self, Metrics};
use crate::run::apply::{ApplyContext, ApplyError, Outcome, apply_report};
use crate::run::dead_letter::{DeadLetter, DeadLetterFile};
use crate::run::{Failure, Panicked, RunError, Worker, drive, settle, to_metrics};

mod notify;
mod queue;

use notify::parse_notification;
use queue::{Admit, Waiting};

/// What the server needs beyond the FHIR configuration.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub max_body_bytes: usize,
    pub queue_capacity: usize,
    pub health_interval: Duration,
    pub drain: Duration,
    pub request_timeout: Duration,
    pub token: Option<String>,
    pub dead_letter: Option<PathBuf>,
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
    #[error("--queue-capacity must be at least 1")]
    QueueCapacity,
}

impl ServeError {
    /// See [`Class`].
    pub fn class(&self) -> Class {
        match self {
            ServeError::Config(_)
            | ServeError::Bind { .. }
            | ServeError::DeadLetter { .. }
            | ServeError::QueueCapacity => Class::Config,
            ServeError::Connect(error) => error.class(),
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
    let config = Config::load(config)?;
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
    let mut worker = Worker::connect(config, true).await?;
    worker.client = worker.client.clone().with_metrics(metrics.clone());
    let probe_client = probe_client(&worker.config)?;
    let worker = Arc::new(worker);

    let (queue, receiver) = mpsc::channel(options.queue_capacity);
    let state = AppState {
        worker: worker.clone(),
        metrics: metrics.clone(),
        queue,
        pending: Arc::new(Mutex::new(Waiting::default())),
        health: Arc::new(Mutex::new(Health {
            up: None,
            checked: None,
        })),
        token: options.token.clone(),
        request_timeout: options.request_timeout,
    };
    let dead_letters = match &options.dead_letter {
        Some(path) => {
            Some(
                DeadLetterFile::append(path).map_err(|source| ServeError::DeadLetter {
                    path: path.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    let background = Background {
        worker: worker.clone(),
        metrics: metrics.clone(),
        pending: state.pending.clone(),
        dead_letters,
    };
    let background = tokio::spawn(process_queue(Arc::new(background), receiver));
    let prober = tokio::spawn(probe_loop(
        probe_client,
        state.health.clone(),
        metrics.clone(),
        options.health_interval,
        shutdown.clone(),
    ));

    let local = listener.local_addr().map_err(ServeError::Serve)?;
    tracing::info!(listen = %local, fhir = %worker.client.base(), "serving");
    let app = router(state, options.max_body_bytes);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    // The router (and with it the queue's sender) is gone: the worker drains what is queued.
    prober.abort();
    let stop = background.abort_handle();
    match tokio::time::timeout(options.drain, background).await {
        Ok(_) => tracing::info!("queue drained"),
        Err(_) => {
            // Aborting drops the worker's tasks mid-request: safe, every write is idempotent.
            stop.abort();
            tracing::warn!(
                drain_secs = options.drain.as_secs(),
                "queued reports not finished at shutdown; the next sync picks them up"
            );
        }
    }
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
    queue: mpsc::Sender<String>,
    /// Ids queued and not yet started: a second notification for a report that
    /// is still waiting adds nothing.
    pending: Arc<Mutex<Waiting>>,
    health: Arc<Mutex<Health>>,
    token: Option<String>,
    request_timeout: Duration,
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
        Some("/metadata") => "metadata",
        Some("/metrics") => "metrics",
        _ => "unmatched",
    }
}

// ---------------------------------------------------------------- errors

/// An error answered as an OperationOutcome.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    /// FHIR issue-type code.
    code: &'static str,
    diagnostics: String,
    retry_after_secs: Option<u64>,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, diagnostics: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            diagnostics: diagnostics.into(),
            retry_after_secs: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let outcome = operation_outcome("error", self.code, &self.diagnostics);
        let mut response = fhir_json(self.status, &outcome);
        if let Some(seconds) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn operation_outcome(severity: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}]
    })
}

fn fhir_json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON))],
        bytes,
    )
        .into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "not-supported",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// A failure of the FHIR server or of our request to it, as the caller sees it.
fn upstream_problem(failure: &Failure) -> Problem {
    let Failure::Apply(error) = failure else {
        return Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            failure.to_string(),
        );
    };
    match error {
        ApplyError::Plan(plan) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "processing",
            plan.to_string(),
        ),
        ApplyError::Conflict { .. } => {
            Problem::new(StatusCode::CONFLICT, "conflict", error.to_string())
        }
        _ => Problem::new(StatusCode::BAD_GATEWAY, "transient", error.to_string()),
    }
}

// ---------------------------------------------------------------- request bodies

fn check_token(state: &AppState, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(expected) = &state.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "login",
            "a valid bearer token is required",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The body as JSON, after the checks every FHIR POST gets.
fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Value, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        essence.as_str(),
        "application/fhir+json" | "application/json" | "application/json+fhir"
    ) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!("Content-Type must be application/fhir+json, not {content_type:?}"),
        ));
    }
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too-long"
        } else {
            "invalid"
        };
        Problem::new(status, code, rejection.body_text())
    })?;
    // The parser's message names a line and column, not content.
    serde_json::from_slice(&bytes).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "structure",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// The DiagnosticReport of an `$enrich` body.
fn report_of(body: Value) -> Result<Value, Problem> {
    match body.get("resourceType").and_then(Value::as_str) {
        Some("DiagnosticReport") => Ok(body),
        Some("Parameters") => {
            let parameters = body
                .get("parameter")
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            let resources: Vec<&Value> = parameters
                .filter(|p| p.get("name").and_then(Value::as_str) == Some("resource"))
                .filter_map(|p| p.get("resource"))
                .collect();
            match resources.as_slice() {
                [one]
                    if one.get("resourceType").and_then(Value::as_str)
                        == Some("DiagnosticReport") =>
                {
                    Ok((*one).clone())
                }
                [_] => Err(unprocessable(
                    "the `resource` parameter must hold a DiagnosticReport",
                )),
                [] => Err(unprocessable("Parameters without a `resource` parameter")),
                _ => Err(unprocessable(
                    "Parameters with more than one `resource` parameter",
                )),
            }
        }
        Some(other) => Err(unprocessable(&format!(
            "expected a DiagnosticReport or Parameters, got {other}"
        ))),
        None => Err(unprocessable(
            "the body is not a FHIR resource (no resourceType)",
        )),
    }
}

fn unprocessable(message: &str) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "processing", message)
}

/// `apply=true|false` (absent: false); anything else is a 400.
fn apply_flag(query: Option<&str>) -> Result<bool, Problem> {
    let mut apply = false;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("apply", "true") => apply = true,
            ("apply", "false") => apply = false,
            ("apply", other) => {
                return Err(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "value",
                    format!("apply must be true or false, not {other:?}"),
                ));
            }
            // _format and friends: FHIR clients add them; JSON is all we speak.
            _ => {}
        }
    }
    Ok(apply)
}

// ---------------------------------------------------------------- $enrich

/// The worker's context with this write's clock: Provenance.recorded is the
/// time of the write, not the time the server started.
fn context<'a>(
    worker: &'a Worker,
    run: &'a reportsplit_fhir::map::RunInfo,
    dry_run: bool,
) -> ApplyContext<'a> {
    ApplyContext {
        run,
        ..worker.apply_context(dry_run)
    }
}

fn fresh_run(worker: &Worker) -> reportsplit_fhir::map::RunInfo {
    reportsplit_fhir::map::RunInfo {
        recorded: OffsetDateTime::now_utc(),
        ..worker.run.clone()
    }
}

/// Type level: the report is in the body.
async fn enrich(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    // Also without `apply`: planning reads the report's earlier Observations
    // from the server with our credentials and puts them in the answer.
    check_token(&state, &headers)?;
    let apply = apply_flag(query.as_deref())?;
    let report = report_of(json_body(&headers, body)?)?;
    let report = if apply {
        let id = report.get("id").and_then(Value::as_str).unwrap_or("");
        if !reportsplit_fhir::map::is_fhir_id(id) {
            return Err(unprocessable(
                "apply=true needs the report's id (the report is read from the server)",
            ));
        }
        read_report(&state, id).await?
    } else {
        report
    };
    enrich_report(&state, report, apply).await
}

/// Instance level, `POST /DiagnosticReport/{id}/$enrich`: the server's copy
/// of the report (any body is ignored: the operation has no input parameters).
async fn enrich_instance(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    check_token(&state, &headers)?;
    let Path(id) =
        id.map_err(|rejection| Problem::new(rejection.status(), "value", rejection.body_text()))?;
    let apply = apply_flag(query.as_deref())?;
    if !reportsplit_fhir::map::is_fhir_id(&id) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "value",
            "not a FHIR resource id",
        ));
    }
    let report = read_report(&state, &id).await?;
    enrich_report(&state, report, apply).await
}

async fn read_report(state: &AppState, id: &str) -> Result<Value, Problem> {
    match state.worker.client.read("DiagnosticReport", id).await {
        Ok(Some(response)) => Ok(response.body),
        Ok(None) => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("DiagnosticReport/{id} is not on the FHIR server"),
        )),
        Err(error) => Err(Problem::new(
            StatusCode::BAD_GATEWAY,
            "transient",
            error.to_string(),
        )),
    }
}

/// Plans (or, with `apply`, writes) one report and answers the Bundle.
async fn enrich_report(state: &AppState, report: Value, apply: bool) -> Result<Response, Problem> {
    let worker = &state.worker;
    let run = fresh_run(worker);
    let result = apply_report(&context(worker, &run, !apply), report)
        .await
        .map_err(Failure::Apply);
    to_metrics(&state.metrics, &result);
    let empty = |kind: &str| json!({"resourceType": "Bundle", "type": kind, "entry": []});
    let (outcome, body) = match result {
        Ok(Outcome::Planned { bundle, .. }) => ("planned", bundle),
        Ok(Outcome::Written { response, .. }) => ("written", response),
        Ok(Outcome::Current) => (
            "current",
            empty(if apply {
                "transaction-response"
            } else {
                "transaction"
            }),
        ),
        Ok(Outcome::Skipped(reason)) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-supported",
                format!("nothing to split ({}): {reason}", reason.key()),
            ));
        }
        Ok(Outcome::Gone) => {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "deleted",
                "the report was deleted while it was enriched",
            ));
        }
        Err(failure) => {
            tracing::warn!(reason = %failure.key(), "$enrich failed");
            return Err(upstream_problem(&failure));
        }
    };
    let mut response = fhir_json(StatusCode::OK, &body);
    response
        .headers_mut()
        .insert("x-reportsplit-outcome", HeaderValue::from_static(outcome));
    Ok(response)
}

// ---------------------------------------------------------------- Subscription notifications

async fn notify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    check_token(&state, &headers)?;
    let bundle = json_body(&headers, body)?;
    let notification = parse_notification(&bundle, &state.worker.client)?;
    state.metrics.notification(&notification.kind);
    if notification.ignored > 0 {
        tracing::warn!(
            ignored = notification.ignored,
            "notification references that are not our server's DiagnosticReports"
        );
    }
    if notification.reports.is_empty() {
        let message = format!("{} acknowledged", notification.kind);
        return Ok(fhir_json(
            StatusCode::OK,
            &operation_outcome("information", "informational", &message),
        ));
    }
    let queued = enqueue(&state, notification.reports)?;
    tracing::info!(queued, "notification accepted");
    let message = format!("{queued} report(s) queued for enrichment");
    Ok(fhir_json(
        StatusCode::ACCEPTED,
        &operation_outcome("information", "informational", &message),
    ))
}

/// Queues the ids that are not already waiting, all or none.
fn enqueue(state: &AppState, ids: Vec<String>) -> Result<usize, Problem> {
    let mut waiting = state
        .pending
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let full = || {
        state.metrics.queue_rejected();
        Problem {
            retry_after_secs: Some(5),
            ..Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "throttled",
                "the work queue is full; retry later",
            )
        }
    };
    let fresh = match waiting.admit(ids, state.queue.max_capacity()) {
        Admit::Nothing => return Ok(0),
        Admit::Full => return Err(full()),
        Admit::Queue(fresh) => fresh,
    };
    let permits = state
        .queue
        .try_reserve_many(fresh.len())
        .map_err(|_| full())?;
    let count = fresh.len();
    for (permit, id) in permits.zip(fresh) {
        waiting.queued(id.clone());
        permit.send(id);
    }
    state.metrics.set_queue_depth(waiting.len());
    Ok(count)
}

/// What the background worker shares between its tasks.
struct Background {
    worker: Arc<Worker>,
    metrics: Metrics,
    pending: Arc<Mutex<Waiting>>,
    /// Where reports that failed are recorded for `reportsplit reprocess`.
    dead_letters: Option<DeadLetterFile>,
}

/// The background worker: reads each queued report from the server and
/// applies it like sync, through [`drive`], `concurrent_reports` at a time.
/// Ends when the queue is closed and empty (a stop request closes it; what
/// is left is drained, see [`serve`]).
async fn process_queue(background: Arc<Background>, receiver: mpsc::Receiver<String>) {
    let concurrency = background.worker.config.write.concurrent_reports;
    let background = &background;
    let ids = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|id| (id, receiver))
    });
    let jobs = ids.map(|id| {
        {
            // Started: a notification from now on may be about a newer version.
            let mut waiting = background
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            waiting.started(&id);
            background.metrics.set_queue_depth(waiting.len());
        }
        let job = process_one(&background.worker, id.clone());
        (id, job)
    });
    let queue_closes = CancellationToken::new();
    let mut results = std::pin::pin!(drive(jobs, concurrency, &queue_closes));
    while let Some((id, result)) = results.next().await {
        let (meta, result) = match result {
            Ok((meta, result)) => (meta, settle(Ok(result))),
            Err(Panicked) => (None, settle(Err(Panicked))),
        };
        let reference = format!("DiagnosticReport/{id}");
        match &result {
            Ok(Outcome::Gone) => tracing::info!(report = %reference, "notified report is gone"),
            Ok(outcome) => {
                tracing::info!(report = %reference, outcome = outcome_name(outcome), "notified report done");
            }
            Err(failure) => {
                tracing::warn!(report = %reference, reason = %failure.key(), error = %failure, "notified report failed");
                background.dead_letter(&id, meta, failure);
            }
        }
        to_metrics(&background.metrics, &result);
    }
}

impl Background {
    /// Records a failed report for `reportsplit reprocess`: its reference,
    /// the version read (if any) and the reason; no report text.
    fn dead_letter(&self, id: &str, meta: Option<Value>, failure: &Failure) {
        let Some(file) = &self.dead_letters else {
            return;
        };
        let mut stub = json!({"resourceType": "DiagnosticReport", "id": id});
        if let Some(meta) = meta {
            stub["meta"] = meta;
        }
        if let Err(error) = file.write(&DeadLetter::new(&stub, failure)) {
            tracing::error!(error = %error, "cannot write the dead-letter file");
        }
    }
}

/// Reads a notified report (the server's copy: see the module doc) and
/// applies it; the report's `meta` comes back for its dead letter.
async fn process_one(worker: &Worker, id: String) -> (Option<Value>, Result<Outcome, ApplyError>) {
    let report = match worker.client.read("DiagnosticReport", &id).await {
        Ok(Some(response)) => response.body,
        Ok(None) => return (None, Ok(Outcome::Gone)),
        Err(error) => return (None, Err(ApplyError::Fhir(error))),
    };
    let run = fresh_run(worker);
    let meta = report.get("meta").cloned();
    (
        meta,
        apply_report(&context(worker, &run, false), report).await,
    )
}

fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Current => "current",
        Outcome::Skipped(reason) => reason.key(),
        Outcome::Gone => "deleted",
        Outcome::Written { .. } => "written",
        Outcome::Planned { .. } => "planned",
    }
}

// ---------------------------------------------------------------- health and metrics

async fn probe_loop(
    client: FhirClient,
    health: Arc<Mutex<Health>>,
    metrics: Metrics,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let up = match client.url("metadata") {
            Ok(url) => client.get(url).await.is_ok_and(|r| r.status.is_success()),
            Err(_) => false,
        };
        metrics.set_fhir_up(up);
        let mut health = health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if health.up != Some(up) {
            if up {
                tracing::info!("the FHIR server answers");
            } else {
                tracing::warn!("the FHIR server does not answer its metadata probe");
            }
        }
        *health = Health {
            up: Some(up),
            checked: Some(OffsetDateTime::now_utc()),
        };
    }
}

/// What FHIR clients read before they invoke an operation.
async fn capability_statement() -> Response {
    let statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": crate::pull::rfc3339(OffsetDateTime::now_utc()),
        "kind": "instance",
        "software": {"name": "reportsplit", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "reportsplit serve: splits radiology DiagnosticReports into coded Observations"},
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{
            "mode": "server",
            "resource": [{
                "type": "DiagnosticReport",
                "operation": [{
                    "name": "enrich",
                    "definition": "urn:reportsplit:OperationDefinition:DiagnosticReport-enrich",
                    "documentation": "Plans (or with apply=true writes) the Observations reportsplit derives from the report's text; answers the transaction (-response) Bundle"
                }]
            }]
        }]
    });
    fhir_json(StatusCode::OK, &statement)
}

async fn healthz(State(state): State<AppState>) -> Response {
    let (up, checked) = {
        let health = state
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (health.up, health.checked.map(crate::pull::rfc3339))
    };
    let depth = state.pending.lock().map(|p| p.len()).unwrap_or_default();
    let body = json!({
        "status": "ok",
        "fhir": {"url": state.worker.client.base().as_str(), "reachable": up, "checked": checked},
        "queue": {"depth": depth, "capacity": state.queue.max_capacity()},
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enrich_bodies() {
        let report = json!({"resourceType": "DiagnosticReport", "id": "x"});
        assert_eq!(report_of(report.clone()).unwrap(), report);
        let parameters = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": report}]});
        assert_eq!(report_of(parameters).unwrap()["id"], "x");
        let patient = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient"}}]});
        assert_eq!(
            report_of(patient).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            report_of(json!({"a": 1})).unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }

    #[test]
    fn apply_flag_values() {
        assert!(!apply_flag(None).unwrap());
        assert!(apply_flag(Some("apply=true&_format=json")).unwrap());
        assert!(!apply_flag(Some("apply=false")).unwrap());
        assert_eq!(
            apply_flag(Some("apply=yes")).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

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
}
