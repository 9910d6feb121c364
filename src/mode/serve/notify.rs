//! `POST /notify`: a Subscription notification, which of our server's
//! DiagnosticReports it names (pure, but for the client's notion of "our
//! server", its base URL), and their place in the bounded queue
//! ([`super::queue`]).

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::AppState;
use super::http::{
    Problem, check_notify_secret, fhir_json, json_body, operation_outcome, unprocessable,
};
use super::queue::Refused;
use crate::fhir::FhirClient;

/// What a notification asks of us.
#[derive(Debug, PartialEq)]
struct Notification {
    /// handshake, heartbeat, event-notification, query-status, query-event.
    pub kind: String,
    /// DiagnosticReport ids, in order, without repeats.
    pub reports: Vec<String>,
    /// References to other servers or resource types, left alone.
    pub ignored: usize,
}

/// Reads a topic-based notification Bundle: R4 backport (`history`, first entry
/// Parameters), R4B (`history`) or R5 (`subscription-notification`), both with a
/// SubscriptionStatus first.
fn parse_notification(bundle: &Value, client: &FhirClient) -> Result<Notification, Problem> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(unprocessable("a notification is a Bundle"));
    }
    let bundle_type = bundle.get("type").and_then(Value::as_str).unwrap_or("");
    if !matches!(bundle_type, "history" | "subscription-notification") {
        return Err(unprocessable(&format!(
            "a notification Bundle has type history (R4 backport) or subscription-notification, not {bundle_type:?}"
        )));
    }
    let entries: &[Value] = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let status = entries.first().and_then(|e| e.get("resource"));
    let (kind, focuses) = match status
        .and_then(|s| s.get("resourceType"))
        .and_then(Value::as_str)
    {
        Some("Parameters") => backport_status(status.unwrap_or(&Value::Null)),
        Some("SubscriptionStatus") => r4b_status(status.unwrap_or(&Value::Null)),
        _ => {
            return Err(unprocessable(
                "the first entry of a notification must be a SubscriptionStatus (or its R4 backport Parameters)",
            ));
        }
    };
    let kind = kind.ok_or_else(|| unprocessable("the SubscriptionStatus has no type"))?;
    let mut notification = Notification {
        kind,
        reports: Vec::new(),
        ignored: 0,
    };
    if notification.kind != "event-notification" {
        return Ok(notification);
    }
    let mut references: Vec<String> = focuses;
    for entry in entries.iter().skip(1) {
        if let Some(resource) = entry.get("resource") {
            let resource_type = resource
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("");
            let id = resource.get("id").and_then(Value::as_str).unwrap_or("");
            references.push(format!("{resource_type}/{id}"));
        }
        for key in ["fullUrl", "request/url"] {
            let pointer = format!("/{key}");
            if let Some(reference) = entry.pointer(&pointer).and_then(Value::as_str) {
                references.push(reference.to_string());
            }
        }
    }
    let mut seen = HashSet::new();
    for reference in references {
        match report_id(&reference, client) {
            Some(id) => {
                if seen.insert(id.clone()) {
                    notification.reports.push(id);
                }
            }
            None if reference.starts_with("urn:") => {}
            None => notification.ignored += 1,
        }
    }
    Ok(notification)
}

/// R4 backport: Parameters with `type` and `notification-event` (parts `focus`).
fn backport_status(parameters: &Value) -> (Option<String>, Vec<String>) {
    let mut kind = None;
    let mut focuses = Vec::new();
    for parameter in parameters
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match parameter.get("name").and_then(Value::as_str) {
            Some("type") => {
                kind = parameter
                    .get("valueCode")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }
            Some("notification-event" | "notificationEvent") => {
                for part in parameter
                    .get("part")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if part.get("name").and_then(Value::as_str) == Some("focus")
                        && let Some(reference) = part
                            .pointer("/valueReference/reference")
                            .and_then(Value::as_str)
                    {
                        focuses.push(reference.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    (kind, focuses)
}

/// R4B/R5 SubscriptionStatus: `type` and `notificationEvent[].focus`.
fn r4b_status(status: &Value) -> (Option<String>, Vec<String>) {
    let kind = status
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_string);
    let focuses = status
        .get("notificationEvent")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|event| event.pointer("/focus/reference").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    (kind, focuses)
}

/// The id of a DiagnosticReport reference (`DiagnosticReport/1`,
/// `DiagnosticReport/1/_history/2`, or absolute under our base URL). `None`
/// for other types, other servers and malformed ids.
fn report_id(reference: &str, client: &FhirClient) -> Option<String> {
    let relative = if reference.starts_with("http://") || reference.starts_with("https://") {
        let url = url::Url::parse(reference).ok()?;
        if !client.is_own(&url) {
            return None;
        }
        url.path().strip_prefix(client.base().path())?.to_string()
    } else {
        reference.to_string()
    };
    let relative = relative.split("/_history/").next()?;
    let id = relative.strip_prefix("DiagnosticReport/")?;
    reportsplit_fhir::map::is_fhir_id(id).then(|| id.to_string())
}

pub(super) async fn notify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    check_notify_secret(&state, &headers)?;
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
    let queued = enqueue(&state, notification.reports).await?;
    tracing::info!(queued, "notification accepted");
    let message = format!("{queued} report(s) queued for enrichment");
    Ok(fhir_json(
        StatusCode::ACCEPTED,
        &operation_outcome("information", "informational", &message),
    ))
}

/// Queues the ids that are not already waiting, all or none, and answers
/// once they are durable (see [`super::queue`]).
pub(super) async fn enqueue(state: &AppState, ids: Vec<String>) -> Result<usize, Problem> {
    state.queue.enqueue(ids).await.map_err(|refused| {
        let message = match refused {
            Refused::Full => "the work queue is full; retry later",
            Refused::Unavailable => "the work queue cannot take notifications now; retry later",
        };
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "throttled", message).retry_after(5)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;
    use serde_json::json;

    use super::*;
    use crate::auth::AuthConfig;
    use crate::fhir::{ClientOptions, RetryPolicy};

    fn client() -> FhirClient {
        let options = ClientOptions {
            base: url::Url::parse("http://127.0.0.1:9/fhir").unwrap(),
            timeout: Duration::from_secs(1),
            ca_file: None,
            retry: RetryPolicy::default(),
            max_concurrent: 1,
            requests_per_second: None,
            max_response_bytes: reportsplit_fhir::limits::Limits::default().response_bytes,
        };
        FhirClient::new(&options, &AuthConfig::None).unwrap()
    }

    #[test]
    fn report_ids_come_only_from_our_server() {
        let client = client();
        let id = |r: &str| report_id(r, &client);
        assert_eq!(id("DiagnosticReport/a-1"), Some("a-1".into()));
        assert_eq!(id("DiagnosticReport/a-1/_history/3"), Some("a-1".into()));
        assert_eq!(
            id("http://127.0.0.1:9/fhir/DiagnosticReport/a-1"),
            Some("a-1".into())
        );
        assert_eq!(id("http://127.0.0.1:10/fhir/DiagnosticReport/a-1"), None);
        assert_eq!(id("http://127.0.0.1:9/other/DiagnosticReport/a-1"), None);
        assert_eq!(id("Observation/a-1"), None);
        assert_eq!(id("DiagnosticReport/bad id"), None);
    }

    #[test]
    fn backport_id_only_notification() {
        let bundle = json!({"resourceType": "Bundle", "type": "history", "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Parameters", "parameter": [
                {"name": "type", "valueCode": "event-notification"},
                {"name": "notification-event", "part": [
                    {"name": "event-number", "valueString": "3"},
                    {"name": "focus", "valueReference": {"reference": "http://127.0.0.1:9/fhir/DiagnosticReport/r1"}}]},
                {"name": "notification-event", "part": [
                    {"name": "focus", "valueReference": {"reference": "Patient/p1"}}]}]}},
            {"fullUrl": "http://127.0.0.1:9/fhir/DiagnosticReport/r2", "request": {"method": "PUT", "url": "DiagnosticReport/r2"}}]});
        let parsed = parse_notification(&bundle, &client()).unwrap();
        assert_eq!(parsed.kind, "event-notification");
        assert_eq!(parsed.reports, vec!["r1".to_string(), "r2".to_string()]);
        assert_eq!(parsed.ignored, 1);
    }

    #[test]
    fn r4b_and_r5_full_resource_notifications_and_a_heartbeat() {
        // R5 says subscription-notification, R4B history: same SubscriptionStatus first.
        for bundle_type in ["subscription-notification", "history"] {
            let bundle = json!({"resourceType": "Bundle", "type": bundle_type, "entry": [
                {"resource": {"resourceType": "SubscriptionStatus", "type": "event-notification",
                              "notificationEvent": [{"eventNumber": "1", "focus": {"reference": "DiagnosticReport/r3"}}]}},
                {"fullUrl": "http://127.0.0.1:9/fhir/DiagnosticReport/r3",
                 "resource": {"resourceType": "DiagnosticReport", "id": "r3"}}]});
            let parsed = parse_notification(&bundle, &client()).unwrap();
            assert_eq!(parsed.reports, vec!["r3".to_string()]);
        }
        let heartbeat = json!({"resourceType": "Bundle", "type": "history", "entry": [
            {"resource": {"resourceType": "Parameters", "parameter": [{"name": "type", "valueCode": "heartbeat"}]}}]});
        let parsed = parse_notification(&heartbeat, &client()).unwrap();
        assert_eq!(
            (parsed.kind.as_str(), parsed.reports.len()),
            ("heartbeat", 0)
        );
    }

    #[test]
    fn not_a_notification() {
        let client = client();
        for body in [
            json!({"resourceType": "DiagnosticReport"}),
            json!({"resourceType": "Bundle", "type": "transaction", "entry": []}),
            json!({"resourceType": "Bundle", "type": "history", "entry": [{"resource": {"resourceType": "Patient"}}]}),
        ] {
            assert_eq!(
                parse_notification(&body, &client).unwrap_err().status,
                StatusCode::UNPROCESSABLE_ENTITY
            );
        }
    }
}
