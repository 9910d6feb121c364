//! `/healthz` (and the periodic probe of the FHIR server behind it),
//! `/metrics` and the CapabilityStatement of `serve` itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::http::fhir_json;
use super::{AppState, Health};
use crate::fhir::FhirClient;
use crate::metrics::{self, Metrics};

pub(super) async fn probe_loop(
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
pub(super) async fn capability_statement() -> Response {
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

pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    let (up, checked) = {
        let health = state
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (health.up, health.checked.map(crate::pull::rfc3339))
    };
    let depth = state.queue.depth();
    let body = json!({
        "status": "ok",
        "fhir": {"url": state.worker.client.base().as_str(), "reachable": up, "checked": checked},
        "queue": {"depth": depth, "capacity": state.queue.capacity()},
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Readiness, for a load balancer: 503 while the server is stopping or its queue
/// of notified reports is full (a `/notify` would get 503 too), so new requests go
/// to another replica. Liveness stays `/healthz`, which is 200 while it serves.
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let depth = state.queue.depth();
    let capacity = state.queue.capacity();
    let unready = unready_because(state.shutdown.is_cancelled(), depth, capacity);
    let body = json!({
        "status": if unready.is_some() { "unavailable" } else { "ready" },
        "reason": unready,
        "queue": {"depth": depth, "capacity": capacity},
    });
    let status = match unready {
        Some(_) => StatusCode::SERVICE_UNAVAILABLE,
        None => StatusCode::OK,
    };
    (status, axum::Json(body)).into_response()
}

/// Why the server should get no new requests, if it should not.
fn unready_because(stopping: bool, depth: usize, capacity: usize) -> Option<&'static str> {
    if stopping {
        Some("shutting down")
    } else if depth >= capacity {
        Some("queue full")
    } else {
        None
    }
}

pub(super) async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::unready_because;

    #[test]
    fn ready_unless_stopping_or_the_queue_is_full() {
        assert_eq!(unready_because(false, 0, 4), None);
        assert_eq!(unready_because(false, 3, 4), None);
        assert_eq!(unready_because(false, 4, 4), Some("queue full"));
        assert_eq!(unready_because(true, 0, 4), Some("shutting down"));
    }
}
