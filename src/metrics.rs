//! Prometheus metrics: one registry per process, reached through a cheap,
//! cloneable [`Metrics`] handle that is passed to whoever records (the FHIR
//! client, the sync loop, the `serve` endpoints). No global state: tests run
//! several servers in one process and each needs counts of its own.
//!
//! Names (the OpenMetrics text encoder adds `_total` to counters):
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `reportsplit_reports_processed_total` | `outcome` (written, planned, current) | reports handled without skip or failure |
//! | `reportsplit_reports_skipped_total` | `reason` (no-text, pdf, deleted...) | reports without splittable text |
//! | `reportsplit_reports_failed_total` | `reason` (http-503, conflict, rejected-422...) | reports left for a later run |
//! | `reportsplit_observations_written_total` | | Observations created |
//! | `reportsplit_observations_superseded_total` | | Observations of an older text marked superseded |
//! | `reportsplit_transactions_total` | `result` (committed, conflict, rejected) | transaction attempts by their result |
//! | `reportsplit_fhir_request_duration_seconds` | `method`, `status` (2xx, 4xx, 5xx, error) | outbound FHIR requests, one sample per attempt |
//! | `reportsplit_fhir_request_retries_total` | `method` | attempts repeated after 429/5xx/timeouts |
//! | `reportsplit_fhir_up` | | 1 when the FHIR server answered the last probe |
//! | `reportsplit_checkpoint_timestamp_seconds` | | the sync checkpoint (Unix time); absent until one is known |
//! | `reportsplit_checkpoint_lag_seconds` | | now − checkpoint, computed at each scrape; absent until one is known |
//! | `reportsplit_http_request_duration_seconds` | `method`, `route`, `status` | requests `serve` answered |
//! | `reportsplit_notifications_total` | `kind` (handshake, heartbeat, event-notification...) | Subscription notifications received |
//! | `reportsplit_queue_depth` | | notified reports waiting for the background worker |
//! | `reportsplit_queue_rejected_total` | | notifications refused because the queue was full |
//! | `reportsplit_facts_unread_total` | `kind` (Patient, ServiceRequest) | a report's Patient or order that could not be read: its discrepancy checks were not made |
//! | `reportsplit_queue_commits_total` | | durable writes (fsync) of serve's queue; one per batch of notifications |
//! | `reportsplit_hl7_messages_received_total` | | HL7 v2 messages read by `mllp` (each frame) |
//! | `reportsplit_hl7_acks_total` | `code` (AA, AE, AR) | ACKs sent by `mllp` |
//! | `reportsplit_hl7_messages_total` | `outcome` (spooled, duplicate, ignored, unanswered, written, dead, retried) | what became of messages: the listener's (spooled, a resend already spooled, ignored, not answered) and the writer's |
//! | `reportsplit_hl7_spool_depth` | | messages waiting in the spool to be written |
//! | `reportsplit_hl7_ack_duration_seconds` | `code` | from a message's last byte read to its ACK written |
//!
//! `serve` answers `GET /metrics` itself; [`export`] serves the same for
//! commands without an HTTP server of their own.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

/// The Content-Type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServedLabels {
    method: String,
    route: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// 5 ms … ~20 s: FHIR servers answer reads in milliseconds and large
/// transactions in seconds.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

/// 0.5 ms … ~8 s: an ACK waits for one fsync or one INSERT's commit, and
/// longer only when the spool is in trouble.
fn ack_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

struct Inner {
    registry: Registry,
    processed: Family<OutcomeLabel, Counter>,
    skipped: Family<ReasonLabel, Counter>,
    failed: Family<ReasonLabel, Counter>,
    observations_written: Counter,
    observations_superseded: Counter,
    transactions: Family<ResultLabel, Counter>,
    fhir_latency: HistogramFamily<RequestLabels>,
    fhir_retries: Family<MethodLabel, Counter>,
    fhir_up: Gauge,
    checkpoint: Arc<Checkpoint>,
    served_latency: HistogramFamily<ServedLabels>,
    notifications: Family<KindLabel, Counter>,
    queue_depth: Gauge,
    queue_rejected: Counter,
    facts_unread: Family<KindLabel, Counter>,
    queue_commits: Counter,
    hl7_received: Counter,
    hl7_acks: Family<CodeLabel, Counter>,
    hl7_messages: Family<OutcomeLabel, Counter>,
    hl7_spool_depth: Gauge,
    hl7_ack_latency: HistogramFamily<CodeLabel>,
    failed_passes: Family<ReasonLabel, Counter>,
    /// Passes failed in a row (the daemon); /healthz reads it.
    failing_passes: Gauge,
}

/// After this many failed daemon passes in a row `/healthz` says
/// `degraded`: one failure is a blip, three (with the backoff between them)
/// is an outage someone should look at.
pub const DEGRADED_AFTER: i64 = 3;

/// A handle on the process's metrics. Clones share the registry.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut inner = Inner {
            registry: Registry::with_prefix("reportsplit"),
            processed: Family::default(),
            skipped: Family::default(),
            failed: Family::default(),
            observations_written: Counter::default(),
            observations_superseded: Counter::default(),
            transactions: Family::default(),
            fhir_latency: Family::new_with_constructor(latency_histogram),
            fhir_retries: Family::default(),
            fhir_up: Gauge::default(),
            checkpoint: Arc::new(Checkpoint {
                unix_ms: AtomicI64::new(UNKNOWN),
            }),
            served_latency: Family::new_with_constructor(latency_histogram),
            notifications: Family::default(),
            queue_depth: Gauge::default(),
            queue_rejected: Counter::default(),
            facts_unread: Family::default(),
            queue_commits: Counter::default(),
            hl7_received: Counter::default(),
            hl7_acks: Family::default(),
            hl7_messages: Family::default(),
            hl7_spool_depth: Gauge::default(),
            hl7_ack_latency: Family::new_with_constructor(ack_histogram),
            failed_passes: Family::default(),
            failing_passes: Gauge::default(),
        };
        inner.registry.register(
            "reports_processed",
            "Reports handled, by outcome: written (transaction committed), planned (dry run or $enrich), current (already tagged for this text)",
            inner.processed.clone(),
        );
        inner.registry.register(
            "reports_skipped",
            "Reports without splittable text, by reason",
            inner.skipped.clone(),
        );
        inner.registry.register(
            "reports_failed",
            "Reports that failed and are left for a later run, by reason",
            inner.failed.clone(),
        );
        inner.registry.register(
            "observations_written",
            "Observations created",
            inner.observations_written.clone(),
        );
        inner.registry.register(
            "observations_superseded",
            "Observations derived from an older report text and marked superseded",
            inner.observations_superseded.clone(),
        );
        inner.registry.register(
            "transactions",
            "Transaction attempts by result: committed, conflict (HTTP 412/409, the report changed), rejected",
            inner.transactions.clone(),
        );
        inner.registry.register(
            "fhir_request_duration_seconds",
            "Outbound FHIR request attempts by method and status class (error: no response)",
            inner.fhir_latency.clone(),
        );
        inner.registry.register(
            "fhir_request_retries",
            "FHIR request attempts repeated after 429, 5xx, timeouts or connection resets",
            inner.fhir_retries.clone(),
        );
        inner.registry.register(
            "fhir_up",
            "1 when the FHIR server answered the last probe, else 0",
            inner.fhir_up.clone(),
        );
        inner
            .registry
            .register_collector(Box::new(inner.checkpoint.clone()));
        inner.registry.register(
            "http_request_duration_seconds",
            "Requests answered by `reportsplit serve`, by method, route and status class",
            inner.served_latency.clone(),
        );
        inner.registry.register(
            "notifications",
            "Subscription notifications received, by type (handshake, heartbeat, event-notification...)",
            inner.notifications.clone(),
        );
        inner.registry.register(
            "queue_depth",
            "Notified reports waiting for the background worker",
            inner.queue_depth.clone(),
        );
        inner.registry.register(
            "queue_rejected",
            "Notifications refused with 503 because the queue was full",
            inner.queue_rejected.clone(),
        );
        inner.registry.register(
            "facts_unread",
            "A report's Patient or ServiceRequest that could not be read, so the sex, age or order discrepancy checks were not made",
            inner.facts_unread.clone(),
        );
        inner.registry.register(
            "queue_commits",
            "Durable writes (fsync) of serve's queue, one per batch of notifications",
            inner.queue_commits.clone(),
        );
        inner.registry.register(
            "hl7_messages_received",
            "HL7 v2 messages read by the MLLP listener",
            inner.hl7_received.clone(),
        );
        inner.registry.register(
            "hl7_acks",
            "ACKs sent by the MLLP listener, by MSA-1 code",
            inner.hl7_acks.clone(),
        );
        inner.registry.register(
            "hl7_messages",
            "HL7 v2 messages by outcome: spooled, duplicate (already spooled), ignored, unanswered (the spool could not take it), written, dead, retried",
            inner.hl7_messages.clone(),
        );
        inner.registry.register(
            "hl7_spool_depth",
            "HL7 v2 messages waiting in the spool to be written",
            inner.hl7_spool_depth.clone(),
        );
        inner.registry.register(
            "hl7_ack_duration_seconds",
            "From an HL7 v2 message read to its ACK written, by MSA-1 code",
            inner.hl7_ack_latency.clone(),
        );
        inner.registry.register(
            "passes_failed",
            "Daemon passes that failed and were retried at a later tick, by reason (state: the PostgreSQL state store; unreachable: the FHIR server...)",
            inner.failed_passes.clone(),
        );
        inner.registry.register(
            "passes_failing",
            "Daemon passes failed in a row (0 after a pass that worked); /healthz says degraded from 3",
            inner.failing_passes.clone(),
        );
        Metrics(Arc::new(inner))
    }

    /// A daemon pass failed for `reason`; `in_a_row` passes have failed now.
    pub fn pass_failed(&self, reason: &str, in_a_row: u64) {
        self.0
            .failed_passes
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
        self.0
            .failing_passes
            .set(i64::try_from(in_a_row).unwrap_or(i64::MAX));
    }

    /// A daemon pass worked (or stood by for another leader): not failing.
    pub fn pass_worked(&self) {
        self.0.failing_passes.set(0);
    }

    /// `/healthz`'s status: `degraded` after [`DEGRADED_AFTER`] failed passes
    /// in a row, else `ok`.
    pub fn health(&self) -> (&'static str, i64) {
        let failing = self.0.failing_passes.get();
        let status = if failing >= DEGRADED_AFTER {
            "degraded"
        } else {
            "ok"
        };
        (status, failing)
    }

    /// The registry in the OpenMetrics text format (which Prometheus reads);
    /// serve it with [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.0.registry).is_err() {
            // Writing to a String cannot fail; keep the scrape parseable anyway.
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }

    /// The sync checkpoint moved (or was loaded at start).
    pub fn set_checkpoint(&self, checkpoint: OffsetDateTime) {
        let ms = (checkpoint.unix_timestamp_nanos() / 1_000_000) as i64;
        self.0.checkpoint.unix_ms.store(ms, Ordering::Relaxed);
    }

    /// `count` more reports handled with `outcome` (written, planned, current).
    pub fn processed(&self, outcome: &'static str, count: u64) {
        if count > 0 {
            self.0
                .processed
                .get_or_create(&OutcomeLabel { outcome })
                .inc_by(count);
        }
    }

    /// `count` more reports skipped for `reason` (no-text, deleted...).
    pub fn skipped(&self, reason: &str, count: u64) {
        self.0
            .skipped
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc_by(count);
    }

    /// `count` more reports failed for `reason` (http-503, conflict, panic...).
    pub fn failed(&self, reason: &str, count: u64) {
        self.0
            .failed
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc_by(count);
    }

    /// Observations created and superseded.
    pub fn observations(&self, written: u64, superseded: u64) {
        self.0.observations_written.inc_by(written);
        self.0.observations_superseded.inc_by(superseded);
    }

    /// `count` more transaction attempts with `result` (committed, conflict, rejected).
    pub fn transaction(&self, result: &'static str, count: u64) {
        if count > 0 {
            self.0
                .transactions
                .get_or_create(&ResultLabel { result })
                .inc_by(count);
        }
    }

    /// Starts timing one outbound request attempt; the sample is taken when
    /// the timer drops, with the status set by [`RequestTimer::status`] (or
    /// `error` when no response came).
    pub fn fhir_request(&self, method: &str) -> RequestTimer {
        RequestTimer {
            metrics: self.clone(),
            method: method.to_string(),
            status: None,
            started: Instant::now(),
        }
    }

    pub fn fhir_retry(&self, method: &str) {
        self.0
            .fhir_retries
            .get_or_create(&MethodLabel {
                method: method.to_string(),
            })
            .inc();
    }

    pub fn set_fhir_up(&self, up: bool) {
        self.0.fhir_up.set(i64::from(up));
    }

    /// One request answered by `serve`. `route` is the matched route
    /// template, never the raw path (unbounded label values).
    pub fn served(&self, method: &str, route: &'static str, status: u16, elapsed: Duration) {
        let labels = ServedLabels {
            method: method.to_string(),
            route,
            status: status_class(status),
        };
        self.0
            .served_latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// A Subscription notification of this type was received. Unknown types
    /// are folded into `other` to keep the label set bounded.
    pub fn notification(&self, kind: &str) {
        let kind = match kind {
            "handshake" | "heartbeat" | "event-notification" | "query-status" | "query-event" => {
                kind
            }
            _ => "other",
        };
        self.0
            .notifications
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }

    pub fn set_queue_depth(&self, depth: usize) {
        self.0.queue_depth.set(depth as i64);
    }

    pub fn queue_rejected(&self) {
        self.0.queue_rejected.inc();
    }

    /// A report's Patient or ServiceRequest could not be read (the checks
    /// that need it were not made).
    pub fn facts_unread(&self, kind: &str) {
        self.0
            .facts_unread
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// The MLLP listener read a message.
    pub fn hl7_received(&self) {
        self.0.hl7_received.inc();
    }

    /// The MLLP listener answered `code` (AA, AE, AR) `elapsed` after the
    /// message was read.
    pub fn hl7_ack(&self, code: &'static str, elapsed: Duration) {
        let label = CodeLabel { code };
        self.0.hl7_acks.get_or_create(&label).inc();
        self.0
            .hl7_ack_latency
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
    }

    /// One more message with `outcome` (spooled, duplicate, ignored,
    /// unanswered, written, dead, retried).
    pub fn hl7_message(&self, outcome: &'static str) {
        self.0
            .hl7_messages
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn set_hl7_spool_depth(&self, depth: u64) {
        self.0
            .hl7_spool_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// serve's queue was written durably (one fsync for a batch of notifications).
    pub fn queue_commit(&self) {
        self.0.queue_commits.inc();
    }
}

/// Binds `address` and serves a fresh registry's `GET /metrics` there until
/// `shutdown` is cancelled; returns the handle to record into.
pub async fn export_on(
    address: std::net::SocketAddr,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<Metrics> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let metrics = Metrics::new();
    tokio::spawn(export(listener, metrics.clone(), shutdown));
    tracing::info!(%address, "serving /metrics");
    Ok(metrics)
}

/// Serves `GET /metrics` and `GET /healthz` on `listener` until `shutdown`
/// is cancelled: the exporter for commands without an HTTP server of their
/// own (`sync --every`, `backfill`). `reportsplit serve` has both on its own
/// port.
///
/// `/healthz` answers `200 {"status":"ok","uptime_secs":…}` while the
/// process's runtime runs its tasks: the liveness and readiness probe of
/// these modes (they take no requests, so ready means alive). Once a stop is
/// requested the listener closes, and the probe fails as the worker drains.
/// After [`DEGRADED_AFTER`] failed passes in a row (the FHIR server or the
/// PostgreSQL state down) it says `"status":"degraded"` with the count, and
/// still 200: the daemon retries by itself, and a restart would not bring
/// the database back.
pub async fn export(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    let health = metrics.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                        metrics.encode(),
                    )
                }
            }),
        )
        .route(
            "/healthz",
            axum::routing::get(move || {
                let (status, failing) = health.health();
                async move {
                    axum::Json(serde_json::json!({
                        "status": status,
                        "failed_passes_in_a_row": failing,
                        "uptime_secs": started.elapsed().as_secs(),
                    }))
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// `i64::MIN` in [`Checkpoint::unix_ms`]: no checkpoint yet.
const UNKNOWN: i64 = i64::MIN;

/// The checkpoint's two gauges, computed at scrape time so that the lag
/// keeps growing while no pass moves the checkpoint (a stuck worker shows).
/// Both are left out until a checkpoint is known: a lag of 0 would read as
/// "up to date".
#[derive(Debug)]
struct Checkpoint {
    unix_ms: AtomicI64,
}

impl Checkpoint {
    fn encode_at(
        &self,
        mut encoder: DescriptorEncoder,
        now: OffsetDateTime,
    ) -> Result<(), std::fmt::Error> {
        let ms = self.unix_ms.load(Ordering::Relaxed);
        if ms == UNKNOWN {
            return Ok(());
        }
        let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        let gauges = [
            (
                "checkpoint_timestamp_seconds",
                "The sync checkpoint (Unix time): reports updated before it are done",
                ms as f64 / 1000.0,
            ),
            (
                "checkpoint_lag_seconds",
                "Seconds between now and the sync checkpoint, computed at scrape time",
                now_ms.saturating_sub(ms).max(0) as f64 / 1000.0,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

impl Collector for Checkpoint {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_at(encoder, OffsetDateTime::now_utc())
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "error",
    }
}

/// Times one outbound request attempt (see [`Metrics::fhir_request`]).
pub struct RequestTimer {
    metrics: Metrics,
    method: String,
    status: Option<u16>,
    started: Instant,
}

impl RequestTimer {
    /// The response's status arrived.
    pub fn status(&mut self, status: u16) {
        self.status = Some(status);
    }
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        let labels = RequestLabels {
            method: std::mem::take(&mut self.method),
            status: self.status.map_or("error", status_class),
        };
        self.metrics
            .0
            .fhir_latency
            .get_or_create(&labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exporter of `sync --every` and `backfill` answers the probes and
    /// the scrape, and closes when the run stops.
    #[tokio::test]
    async fn the_exporter_serves_healthz_and_metrics_until_the_stop() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let metrics = Metrics::new();
        let server = tokio::spawn(export(listener, metrics, shutdown.clone()));
        let http = reqwest::Client::new();
        let health = http
            .get(format!("http://{address}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let body: serde_json::Value = health.json().await.unwrap();
        assert_eq!(body["status"], "ok", "{body}");
        assert!(body["uptime_secs"].is_u64(), "{body}");
        let scraped = http
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(scraped.status(), 200);
        let text = scraped.text().await.unwrap();
        assert!(text.contains("reportsplit_observations_written"), "{text}");
        shutdown.cancel();
        server.await.unwrap().unwrap();
        assert!(
            http.get(format!("http://{address}/healthz"))
                .send()
                .await
                .is_err(),
            "closed after the stop"
        );
    }

    /// The value of the sample line that starts with `prefix` (name and labels).
    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn request_timer_records_status_class_or_error() {
        let metrics = Metrics::new();
        metrics.fhir_request("GET").status(200);
        let mut timer = metrics.fhir_request("POST");
        timer.status(503);
        drop(timer);
        drop(metrics.fhir_request("POST"));
        metrics.fhir_retry("POST");
        let text = metrics.encode();
        assert_eq!(
            sample(
                &text,
                "reportsplit_fhir_request_duration_seconds_count{method=\"GET\",status=\"2xx\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "reportsplit_fhir_request_duration_seconds_count{method=\"POST\",status=\"5xx\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "reportsplit_fhir_request_duration_seconds_count{method=\"POST\",status=\"error\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "reportsplit_fhir_request_retries_total{method=\"POST\"}"
            ),
            Some(1.0)
        );
    }

    #[test]
    fn checkpoint_lag_is_measured_at_scrape_time() {
        let metrics = Metrics::new();
        assert!(
            !metrics.encode().contains("checkpoint"),
            "no checkpoint gauges before one is known"
        );
        let checkpoint = OffsetDateTime::now_utc() - time::Duration::seconds(90);
        metrics.set_checkpoint(checkpoint);
        let lag = sample(&metrics.encode(), "reportsplit_checkpoint_lag_seconds").unwrap();
        assert!((90.0..100.0).contains(&lag), "lag {lag}");
        // The same checkpoint scraped 30 s after it was set.
        struct Later(Arc<Checkpoint>, OffsetDateTime);
        impl std::fmt::Debug for Later {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("Later")
            }
        }
        impl Collector for Later {
            fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
                self.0.encode_at(encoder, self.1)
            }
        }
        let mut later = Registry::default();
        later.register_collector(Box::new(Later(
            metrics.0.checkpoint.clone(),
            checkpoint + time::Duration::seconds(30),
        )));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &later).unwrap();
        assert_eq!(sample(&text, "checkpoint_lag_seconds"), Some(30.0));
    }

    #[tokio::test]
    async fn the_exporter_serves_the_registry() {
        let metrics = Metrics::new();
        metrics.set_checkpoint(OffsetDateTime::now_utc());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(export(listener, metrics, shutdown.clone()));
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.headers()["content-type"], CONTENT_TYPE);
        let text = response.text().await.unwrap();
        assert!(
            sample(&text, "reportsplit_checkpoint_lag_seconds").is_some(),
            "{text}"
        );
        shutdown.cancel();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn unknown_notification_kinds_are_folded() {
        let metrics = Metrics::new();
        metrics.notification("heartbeat");
        metrics.notification("made-up-type");
        let text = metrics.encode();
        assert_eq!(
            sample(&text, "reportsplit_notifications_total{kind=\"heartbeat\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "reportsplit_notifications_total{kind=\"other\"}"),
            Some(1.0)
        );
    }
}
