//! `reportsplit serve` end to end against a real SEKMET FHIR server (strict
//! validation): `$enrich` with and without `apply`, the Subscription
//! endpoint (hand-made notifications and SEKMET's own rest-hook
//! notifications), /metrics, /healthz and OperationOutcome errors.

use crate::common;

use std::time::Duration;

use common::{Fhir, Sekmet, seed};
use reportsplit::metrics::Metrics;
use reportsplit::mode::serve::{ServeOptions, serve};
use reportsplit_fhir::plan::TAG_SYSTEM;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A `serve` running in this process on a free port, stopped on drop.
struct Server {
    url: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), reportsplit::mode::serve::ServeError>>>,
    _state: tempfile::TempDir,
}

fn options() -> ServeOptions {
    ServeOptions {
        max_body_bytes: None,
        queue_capacity: 100,
        health_interval: Duration::from_millis(200),
        drain: Duration::from_secs(10),
        request_timeout: Duration::from_secs(60),
        dead_letter: None,
        token: None,
        insecure_no_auth: true,
        notify_secret: None,
        state_url: None,
    }
}

impl Server {
    async fn start(sekmet: &Sekmet, options: ServeOptions) -> Server {
        let state = common::temp_state();
        let config = common::config(&sekmet.base, state.path(), None, 50);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            config,
            options,
            Metrics::new(),
            shutdown.clone(),
        ));
        let server = Server {
            url,
            http: reqwest::Client::new(),
            shutdown,
            task: Some(task),
            _state: state,
        };
        // Up once /healthz answers and the first probe has run.
        for _ in 0..100 {
            if let Ok(response) = server
                .http
                .get(format!("{}/healthz", server.url))
                .send()
                .await
            {
                let body: Value = response.json().await.expect("healthz JSON");
                if body["fhir"]["reachable"] == true {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("serve did not come up");
    }

    async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request to serve");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, headers, body)
    }

    async fn post_json(
        &self,
        path: &str,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.post(
            path,
            "application/fhir+json",
            serde_json::to_vec(body).unwrap(),
        )
        .await
    }

    async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        response.text().await.unwrap()
    }

    /// Graceful shutdown: the server task ends without error.
    async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().unwrap();
        let result = tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("serve stops in time");
        result.expect("serve task").expect("serve ends cleanly");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The value of the first sample line starting with `prefix`, 0 when absent.
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn is_tagged(report: &Value) -> bool {
    report["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["system"] == TAG_SYSTEM)
}

/// Seeds a patient and `n` reports; returns (patient id, reports as stored).
async fn seed_reports(fhir: &Fhir, prefix: &str, n: usize) -> (String, Vec<Value>) {
    let prefix = seed::unique(prefix);
    let patient = format!("{prefix}-p");
    fhir.put(&seed::patient(&patient)).await;
    let mut stored = Vec::new();
    for report in seed::reports(&prefix, &patient, n) {
        stored.push(fhir.put(&report).await);
    }
    (patient, stored)
}

/// Polls (bounded) until every report is tagged; returns them.
async fn wait_tagged(fhir: &Fhir, ids: &[&str]) -> Vec<Value> {
    for _ in 0..150 {
        let mut reports = Vec::new();
        for id in ids {
            reports.push(fhir.get(&format!("DiagnosticReport/{id}")).await);
        }
        if reports.iter().all(is_tagged) {
            return reports;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("reports {ids:?} were not enriched within 30 s");
}

fn assert_outcome(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert!(body["issue"][0]["code"].is_string(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrich_plans_then_applies_then_is_current() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let (patient, reports) = seed_reports(&fhir, "enrich", 1).await;
    let report = &reports[0];
    let id = report["id"].as_str().unwrap();
    let server = Server::start(&sekmet, options()).await;

    // Plan only, the report wrapped in Parameters: the transaction sync would send.
    let parameters = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": report}]});
    let (status, headers, bundle) = server
        .post_json("/DiagnosticReport/$enrich", &parameters)
        .await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(headers["content-type"], "application/fhir+json");
    assert_eq!(headers["x-reportsplit-outcome"], "planned");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "transaction");
    let entries = bundle["entry"].as_array().expect("entries");
    let planned_observations = entries
        .iter()
        .filter(|e| {
            e["resource"]["resourceType"] == "Observation" && e["request"]["method"] == "POST"
        })
        .count();
    assert!(planned_observations >= 3, "{bundle}");
    assert!(
        entries
            .iter()
            .any(|e| e["resource"]["resourceType"] == "Provenance")
    );
    let report_put = entries.last().unwrap();
    assert_eq!(
        report_put["request"]["url"],
        format!("DiagnosticReport/{id}")
    );
    assert!(report_put["request"]["ifMatch"].is_string());
    // The instance-level form plans the server's copy: the same transaction.
    let (status, _, instance) = server
        .post(
            &format!("/DiagnosticReport/{id}/$enrich"),
            "application/fhir+json",
            Vec::new(),
        )
        .await;
    assert_eq!(status, 200, "{instance}");
    assert_eq!(
        instance["entry"].as_array().map(Vec::len),
        Some(entries.len())
    );
    // Planning wrote nothing.
    assert_eq!(
        fhir.count(&format!("Observation?subject=Patient/{patient}"))
            .await,
        0
    );

    // Apply: the server's copy is enriched; the answer is the transaction-response.
    let (status, headers, response) = server
        .post_json("/DiagnosticReport/$enrich?apply=true", report)
        .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(headers["x-reportsplit-outcome"], "written");
    assert_eq!(response["type"], "transaction-response", "{response}");
    assert_eq!(
        response["entry"].as_array().map(Vec::len),
        Some(entries.len())
    );
    let written = fhir
        .count(&format!("Observation?subject=Patient/{patient}"))
        .await;
    assert_eq!(
        written as usize, planned_observations,
        "strict SEKMET accepted every Observation"
    );
    let stored = fhir.get(&format!("DiagnosticReport/{id}")).await;
    assert!(is_tagged(&stored), "{stored}");
    assert!(
        stored["result"]
            .as_array()
            .is_some_and(|r| r.len() >= planned_observations)
    );

    // Again: already current for this text, an empty Bundle and nothing written.
    let (status, headers, response) = server
        .post_json("/DiagnosticReport/$enrich?apply=true", report)
        .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(headers["x-reportsplit-outcome"], "current");
    assert_eq!(
        response,
        json!({"resourceType": "Bundle", "type": "transaction-response", "entry": []})
    );
    let (_, headers, response) = server.post_json("/DiagnosticReport/$enrich", &stored).await;
    assert_eq!(headers["x-reportsplit-outcome"], "current");
    assert_eq!(response["entry"], json!([]));
    assert_eq!(
        fhir.count(&format!("Observation?subject=Patient/{patient}"))
            .await,
        written
    );

    let response = server
        .http
        .get(format!("{}/metadata", server.url))
        .send()
        .await
        .unwrap();
    let statement: Value = response.json().await.unwrap();
    assert_eq!(statement["resourceType"], "CapabilityStatement");
    assert_eq!(
        statement["rest"][0]["resource"][0]["operation"][0]["name"],
        "enrich"
    );

    let metrics = server.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_reports_processed_total{outcome=\"planned\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_reports_processed_total{outcome=\"written\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_reports_processed_total{outcome=\"current\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(&metrics, "reportsplit_observations_written_total"),
        written as f64
    );
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_transactions_total{result=\"committed\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_fhir_request_duration_seconds_count{method=\"POST\",status=\"2xx\"}"
        ),
        1.0
    );
    assert!(
        sample(
            &metrics,
            "reportsplit_fhir_request_duration_seconds_count{method=\"GET\",status=\"2xx\"}"
        ) >= 2.0
    );
    assert_eq!(sample(&metrics, "reportsplit_fhir_up"), 1.0);
    assert!(
        sample(
            &metrics,
            "reportsplit_http_request_duration_seconds_count{method=\"POST\",route=\"enrich\",status=\"2xx\"}"
        ) >= 4.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_an_operation_outcome() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let (_, reports) = seed_reports(&fhir, "errors", 1).await;
    let mut narrow = options();
    narrow.max_body_bytes = Some(64 * 1024);
    narrow.queue_capacity = 1;
    let server = Server::start(&sekmet, narrow).await;
    let report = serde_json::to_vec(&reports[0]).unwrap();

    let (status, _, body) = server
        .post("/nowhere", "application/fhir+json", b"{}".to_vec())
        .await;
    assert_outcome(status, &body, 404);
    let response = server
        .http
        .get(format!("{}/DiagnosticReport/$enrich", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/fhir+json");
    assert_outcome(
        response.status().as_u16(),
        &response.json().await.unwrap(),
        405,
    );
    let (status, _, body) = server
        .post("/DiagnosticReport/$enrich", "text/plain", report.clone())
        .await;
    assert_outcome(status, &body, 415);
    let (status, _, body) = server
        .post(
            "/DiagnosticReport/$enrich",
            "application/fhir+json",
            b"{\"resourceType\":".to_vec(),
        )
        .await;
    assert_outcome(status, &body, 400);
    let (status, _, body) = server
        .post_json("/DiagnosticReport/$enrich?apply=maybe", &reports[0])
        .await;
    assert_outcome(status, &body, 400);
    let (status, _, body) = server
        .post_json("/DiagnosticReport/$enrich", &seed::patient("x"))
        .await;
    assert_outcome(status, &body, 422);
    let big = json!({"resourceType": "DiagnosticReport", "conclusion": "x".repeat(100 * 1024)});
    let (status, _, body) = server.post_json("/DiagnosticReport/$enrich", &big).await;
    assert_outcome(status, &body, 413);
    let mut missing = reports[0].clone();
    missing["id"] = json!("not-on-the-server");
    let (status, _, body) = server
        .post_json("/DiagnosticReport/$enrich?apply=true", &missing)
        .await;
    assert_outcome(status, &body, 404);
    let (status, _, body) = server
        .post(
            "/DiagnosticReport/not-there/$enrich",
            "application/fhir+json",
            Vec::new(),
        )
        .await;
    assert_outcome(status, &body, 404);
    let textless = json!({"resourceType": "DiagnosticReport", "id": "t", "status": "final",
        "code": {"text": "XR"}, "subject": {"reference": "Patient/x"}});
    let (status, _, body) = server
        .post_json("/DiagnosticReport/$enrich", &textless)
        .await;
    assert_outcome(status, &body, 422);
    let (status, _, body) = server
        .post_json(
            "/notify",
            &json!({"resourceType": "Bundle", "type": "batch"}),
        )
        .await;
    assert_outcome(status, &body, 422);

    // A notification naming more reports than the queue holds: 503 + Retry-After, nothing queued.
    let two = backport_notification(&sekmet.base, "event-notification", &["a-1", "a-2"]);
    let (status, headers, body) = server.post_json("/notify", &two).await;
    assert_outcome(status, &body, 503);
    assert_eq!(headers["retry-after"], "5");

    let metrics = server.metrics().await;
    assert_eq!(sample(&metrics, "reportsplit_queue_rejected_total"), 1.0);
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_reports_skipped_total{reason=\"no-text\"}"
        ),
        1.0
    );
    assert!(
        sample(
            &metrics,
            "reportsplit_http_request_duration_seconds_count{method=\"POST\",route=\"unmatched\",status=\"4xx\"}"
        ) >= 1.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_routes_require_the_token_when_one_is_set() {
    let sekmet = Sekmet::start();
    let mut guarded = options();
    guarded.token = Some("s3cret-token".into());
    let server = Server::start(&sekmet, guarded).await;
    let heartbeat = backport_notification(&sekmet.base, "heartbeat", &[]);
    let (status, headers, body) = server.post_json("/notify", &heartbeat).await;
    assert_outcome(status, &body, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let response = server
        .http
        .post(format!("{}/notify", server.url))
        .header("content-type", "application/fhir+json")
        .bearer_auth("s3cret-token")
        .body(serde_json::to_vec(&heartbeat).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_endpoint_checks_its_shared_secret() {
    let sekmet = Sekmet::start();
    let mut guarded = options();
    guarded.token = Some("s3cret-token".into());
    guarded.insecure_no_auth = false;
    guarded.notify_secret = Some("hook-secret".into());
    let server = Server::start(&sekmet, guarded).await;
    let heartbeat = backport_notification(&sekmet.base, "heartbeat", &[]);
    let send = |secret: Option<&'static str>| {
        let mut request = server
            .http
            .post(format!("{}/notify", server.url))
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(&heartbeat).unwrap());
        if let Some(secret) = secret {
            request = request.header(reportsplit::mode::serve::NOTIFY_SECRET_HEADER, secret);
        }
        request.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(send(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(send(Some("hook-secret")).await.unwrap().status(), 200);
    // $enrich still needs the token.
    let (status, _, body) = server
        .post_json(
            "/DiagnosticReport/$enrich",
            &json!({"resourceType": "DiagnosticReport"}),
        )
        .await;
    assert_outcome(status, &body, 401);
    server.stop().await;
}

/// An R4 backport notification (Bundle `history`, Parameters first) with
/// id-only entries for `ids`.
pub(crate) fn backport_notification(base: &str, kind: &str, ids: &[&str]) -> Value {
    let mut parameters = vec![
        json!({"name": "subscription", "valueReference": {"reference": format!("{base}/Subscription/test")}}),
        json!({"name": "topic", "valueCanonical": "http://example.org/topic/report-final"}),
        json!({"name": "status", "valueCode": "active"}),
        json!({"name": "type", "valueCode": kind}),
        json!({"name": "events-since-subscription-start", "valueString": ids.len().to_string()}),
    ];
    for (n, id) in ids.iter().enumerate() {
        parameters.push(json!({"name": "notification-event", "part": [
            {"name": "event-number", "valueString": (n + 1).to_string()},
            {"name": "focus", "valueReference": {"reference": format!("{base}/DiagnosticReport/{id}")}}]}));
    }
    let mut entries = vec![
        json!({"fullUrl": "urn:uuid:5e0b6f2c-8d7a-4d43-9a8e-2f1b1c0d9e01",
        "resource": {"resourceType": "Parameters", "parameter": parameters}}),
    ];
    for id in ids {
        entries.push(json!({"fullUrl": format!("{base}/DiagnosticReport/{id}"),
            "request": {"method": "PUT", "url": format!("DiagnosticReport/{id}")}}));
    }
    json!({"resourceType": "Bundle", "type": "history", "timestamp": "2026-03-01T10:00:00Z", "entry": entries})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_enqueue_reports_that_get_enriched() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let (_, reports) = seed_reports(&fhir, "notify", 3).await;
    let ids: Vec<&str> = reports.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let server = Server::start(&sekmet, options()).await;

    // Handshake and heartbeat: acknowledged, no work.
    for kind in ["handshake", "heartbeat"] {
        let (status, _, body) = server
            .post_json("/notify", &backport_notification(&sekmet.base, kind, &[]))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["issue"][0]["severity"], "information");
    }

    // R4 backport, id-only: two reports.
    let id_only = backport_notification(&sekmet.base, "event-notification", &ids[..2]);
    let (status, _, body) = server.post_json("/notify", &id_only).await;
    assert_eq!(status, 202, "{body}");

    // R4B SubscriptionStatus, full-resource: the third report in the entry.
    let full = json!({"resourceType": "Bundle", "type": "subscription-notification", "entry": [
        {"fullUrl": "urn:uuid:7c9e3b1a-2f4d-4e6a-8b0c-1d2e3f4a5b6c", "resource": {
            "resourceType": "SubscriptionStatus", "status": "active", "type": "event-notification",
            "eventsSinceSubscriptionStart": "1",
            "notificationEvent": [{"eventNumber": "1", "focus": {"reference": format!("DiagnosticReport/{}", ids[2])}}],
            "subscription": {"reference": "Subscription/test"}, "topic": "http://example.org/topic/report-final"}},
        {"fullUrl": format!("{}/DiagnosticReport/{}", sekmet.base, ids[2]), "resource": reports[2],
         "request": {"method": "PUT", "url": format!("DiagnosticReport/{}", ids[2])}}]});
    let (status, _, body) = server.post_json("/notify", &full).await;
    assert_eq!(status, 202, "{body}");

    let enriched = wait_tagged(&fhir, &ids).await;
    for report in &enriched {
        assert!(
            report["result"].as_array().is_some_and(|r| !r.is_empty()),
            "{report}"
        );
    }
    // The same notification again: the reports are current, nothing new is written.
    let before = fhir.count("Observation").await;
    let (status, _, _) = server.post_json("/notify", &id_only).await;
    assert_eq!(status, 202);
    let mut current = 0.0;
    for _ in 0..100 {
        current = sample(
            &server.metrics().await,
            "reportsplit_reports_processed_total{outcome=\"current\"}",
        );
        if current >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(current, 2.0);
    assert_eq!(fhir.count("Observation").await, before);

    let metrics = server.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_reports_processed_total{outcome=\"written\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_notifications_total{kind=\"event-notification\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_notifications_total{kind=\"heartbeat\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_notifications_total{kind=\"handshake\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&metrics, "reportsplit_observations_written_total"),
        before as f64
    );
    assert_eq!(sample(&metrics, "reportsplit_queue_depth"), 0.0);
    server.stop().await;
}

/// SEKMET itself notifies our endpoint: an R4 backport Subscription on its
/// built-in topic "DiagnosticReport became final"; SEKMET handshakes, then
/// sends an event for each new final report, which serve enriches. Our own
/// update of the report (same status) does not trigger the topic again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sekmet_rest_hook_notifications_are_enriched() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let mut guarded = options();
    guarded.token = Some("hook-secret".into());
    let server = Server::start(&sekmet, guarded).await;
    for content in ["id-only", "full-resource"] {
        let subscription = json!({
            "resourceType": "Subscription",
            "meta": {"profile": ["http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"]},
            "status": "requested",
            "reason": format!("reportsplit enrichment ({content})"),
            "criteria": "http://sekmet.dev/fhir/SubscriptionTopic/diagnosticreport-final",
            "channel": {"type": "rest-hook", "endpoint": format!("{}/notify", server.url),
                "header": ["Authorization: Bearer hook-secret"],
                "payload": "application/fhir+json",
                "_payload": {"extension": [{
                    "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content",
                    "valueCode": content}]}}
        });
        let response = fhir
            .request(
                reqwest::Method::POST,
                "Subscription",
                Some(&subscription),
                None,
            )
            .await;
        assert_eq!(response.status, 201, "{}", response.body);
        let id = response.body["id"]
            .as_str()
            .expect("Subscription id")
            .to_string();
        let mut status = Value::Null;
        for _ in 0..100 {
            status = fhir.get(&format!("Subscription/{id}")).await["status"].clone();
            if status == "active" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            status, "active",
            "SEKMET's handshake to serve did not succeed"
        );

        let (_, reports) = seed_reports(&fhir, content, 2).await;
        let ids: Vec<&str> = reports.iter().map(|r| r["id"].as_str().unwrap()).collect();
        wait_tagged(&fhir, &ids).await;
        // Deactivate before the next round so each round's events come from one subscription.
        let mut off = fhir.get(&format!("Subscription/{id}")).await;
        off["status"] = json!("off");
        fhir.put(&off).await;
    }
    // No loop: our own writes (status unchanged) trigger no further event.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = server.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_notifications_total{kind=\"handshake\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_notifications_total{kind=\"event-notification\"}"
        ),
        4.0
    );
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_reports_processed_total{outcome=\"written\"}"
        ),
        4.0
    );
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_reports_processed_total{outcome=\"current\"}"
        ),
        0.0
    );
    server.stop().await;
}

/// Shutdown finishes the reports already queued before the server exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_the_queue() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let (_, reports) = seed_reports(&fhir, "drain", 6).await;
    let ids: Vec<&str> = reports.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let server = Server::start(&sekmet, options()).await;
    let notification = backport_notification(&sekmet.base, "event-notification", &ids);
    let (status, _, body) = server.post_json("/notify", &notification).await;
    assert_eq!(status, 202, "{body}");
    server.stop().await;
    for id in &ids {
        let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
        assert!(
            is_tagged(&report),
            "DiagnosticReport/{id} was not finished before exit"
        );
    }
}

/// /healthz stays 200 (liveness) and says when the FHIR server stops
/// answering; a notified report that then fails lands in the dead-letter
/// file (reference and reason, no text) for `reportsplit reprocess`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_shows_in_healthz_and_dead_letters() {
    let sekmet = Sekmet::start();
    let base = sekmet.base.clone();
    let letters = tempfile::tempdir().expect("temp dir");
    let dead_letter = letters.path().join("dead.ndjson");
    let mut with_letters = options();
    with_letters.dead_letter = Some(dead_letter.clone());
    let server = Server::start(&sekmet, with_letters).await;
    drop(sekmet);
    let mut body = Value::Null;
    for _ in 0..100 {
        let response = server
            .http
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        body = response.json().await.unwrap();
        if body["fhir"]["reachable"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(body["fhir"]["reachable"], false, "{body}");
    assert!(body["fhir"]["checked"].is_string(), "{body}");
    assert_eq!(sample(&server.metrics().await, "reportsplit_fhir_up"), 0.0);

    let notification = backport_notification(&base, "event-notification", &["lost-1"]);
    let (status, _, body) = server.post_json("/notify", &notification).await;
    assert_eq!(status, 202, "{body}");
    let mut letter = Value::Null;
    for _ in 0..300 {
        if let Some(line) = std::fs::read_to_string(&dead_letter)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_string))
        {
            letter = serde_json::from_str(&line).expect("dead letter JSON");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(letter["report"], "DiagnosticReport/lost-1", "{letter}");
    assert_eq!(letter["reason"], "unreachable", "{letter}");
    let metrics = server.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_reports_failed_total{reason=\"unreachable\"}"
        ),
        1.0
    );
    assert!(
        sample(
            &metrics,
            "reportsplit_fhir_request_retries_total{method=\"GET\"}"
        ) >= 1.0
    );
    server.stop().await;
}

/// A notified report over a limit is not enriched and not cut: it lands in
/// the dead-letter file with a reason naming the limit (issue 11, item 3),
/// and the other reports of the notification are enriched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notified_report_over_a_limit_is_dead_lettered_with_its_reason() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let (_, reports) = seed_reports(&fhir, "notify-limit", 2).await;
    let ids: Vec<&str> = reports.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut long = reports[0].clone();
    if let Some(report) = long.as_object_mut() {
        report.remove("presentedForm");
        report.remove("text");
        report.remove("meta");
    }
    long["conclusion"] = json!("Small cyst. ".repeat(17_000));
    fhir.put(&long).await;
    let letters = tempfile::tempdir().expect("temp dir");
    let dead_letter = letters.path().join("dead.ndjson");
    let mut with_letters = options();
    with_letters.dead_letter = Some(dead_letter.clone());
    let server = Server::start(&sekmet, with_letters).await;

    let notification = backport_notification(&sekmet.base, "event-notification", &ids);
    let (status, _, body) = server.post_json("/notify", &notification).await;
    assert_eq!(status, 202, "{body}");
    wait_tagged(&fhir, &ids[1..]).await;
    let mut letter = Value::Null;
    for _ in 0..300 {
        if let Some(line) = std::fs::read_to_string(&dead_letter)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_string))
        {
            letter = serde_json::from_str(&line).expect("dead letter JSON");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(letter["report"], format!("DiagnosticReport/{}", ids[0]));
    assert_eq!(letter["reason"], "limit-text", "{letter}");
    let message = letter["message"].as_str().unwrap_or("");
    assert!(
        message.contains("204000 characters, over the limit of 200000 (limits.text_chars)"),
        "{message}"
    );
    assert!(!message.contains("cyst"), "{message}");
    let stored = fhir.get(&format!("DiagnosticReport/{}", ids[0])).await;
    assert!(stored.get("result").is_none(), "{stored}");
    let metrics = server.metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "reportsplit_reports_failed_total{reason=\"limit-text\"}"
        ),
        1.0
    );
    server.stop().await;
}

/// `$enrich` of a report in the body that is not stored yet (no
/// `meta.versionId`): the answer is a transaction that creates the report
/// with its Observations, which the engine forwards; forwarded twice, it
/// creates everything once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrich_plans_the_creation_of_an_unstored_report() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let server = Server::start(&sekmet, options()).await;
    let report = crate::map_sekmet::unstored_report("ACC-ENRICH-1");
    let (status, headers, bundle) = server.post_json("/DiagnosticReport/$enrich", &report).await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(headers["x-reportsplit-outcome"], "planned");
    let last = bundle["entry"]
        .as_array()
        .and_then(|e| e.last())
        .expect("entries");
    assert_eq!(last["request"]["method"], "POST", "{last}");
    assert_eq!(last["request"]["url"], "DiagnosticReport");
    crate::map_sekmet::post_twice_and_check_once(&fhir, &bundle, "ACC-ENRICH-1").await;
    // `apply` still needs a stored report: it is read from the server.
    let (status, _, _) = server
        .post_json("/DiagnosticReport/$enrich?apply=true", &report)
        .await;
    assert_eq!(status, 422);
    server.stop().await;
}
