//! Fault injection for the FHIR client (wiremock, and a raw socket that
//! drops connections): retries, backoff, Retry-After, timeouts, resets,
//! 401 re-authorization, caps, and paging links to other servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reportsplit::auth::AuthConfig;
use reportsplit::fhir::{ClientOptions, FhirClient, FhirError, RetryPolicy, SearchPager};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn options(base: &str) -> ClientOptions {
    ClientOptions {
        base: url::Url::parse(base).unwrap(),
        timeout: Duration::from_secs(5),
        ca_file: None,
        retry: RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        max_concurrent: 4,
        requests_per_second: None,
        max_response_bytes: reportsplit_fhir::limits::Limits::default().response_bytes,
    }
}

fn client(base: &str) -> FhirClient {
    FhirClient::new(&options(base), &AuthConfig::None).unwrap()
}

fn ok_patient() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        r#"{"resourceType":"Patient","id":"p"}"#,
        "application/fhir+json",
    )
}

/// Answers with `faults` in turn, then with `last` for ever.
struct Sequence {
    calls: Arc<AtomicUsize>,
    faults: Vec<ResponseTemplate>,
    last: ResponseTemplate,
}

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.faults
            .get(n)
            .cloned()
            .unwrap_or_else(|| self.last.clone())
    }
}

async fn server_with(
    faults: Vec<ResponseTemplate>,
    last: ResponseTemplate,
) -> (MockServer, Arc<AtomicUsize>) {
    let server = MockServer::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(method("GET"))
        .and(path("/fhir/Patient/p"))
        .and(header("accept", "application/fhir+json"))
        .respond_with(Sequence {
            calls: calls.clone(),
            faults,
            last,
        })
        .mount(&server)
        .await;
    (server, calls)
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let (server, calls) = server_with(
        vec![ResponseTemplate::new(500), ResponseTemplate::new(503)],
        ok_patient(),
    )
    .await;
    let client = client(&format!("{}/fhir", server.uri()));
    let response = client.read("Patient", "p").await.unwrap().unwrap();
    assert_eq!(response.body["id"], "p");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(client.stats().retries.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_report_the_status() {
    let outcome = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "transient", "diagnostics": "database busy"}]});
    let (server, calls) =
        server_with(vec![], ResponseTemplate::new(503).set_body_json(outcome)).await;
    let client = client(&format!("{}/fhir", server.uri()));
    let error = client.read("Patient", "p").await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 4, "1 try + 3 retries");
    let message = error.to_string();
    assert!(
        message.contains("503") && message.contains("database busy"),
        "{message}"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (server, calls) = server_with(vec![], ResponseTemplate::new(400)).await;
    let client = client(&format!("{}/fhir", server.uri()));
    assert!(client.read("Patient", "p").await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    let (server, calls) = server_with(
        vec![ResponseTemplate::new(429).insert_header("retry-after", "1")],
        ok_patient(),
    )
    .await;
    let client = client(&format!("{}/fhir", server.uri()));
    let started = Instant::now();
    client.read("Patient", "p").await.unwrap().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    let (server, _) = server_with(
        vec![
            ResponseTemplate::new(503)
                .insert_header("retry-after", httpdate::fmt_http_date(at).as_str()),
        ],
        ok_patient(),
    )
    .await;
    let client = client(&format!("{}/fhir", server.uri()));
    let started = Instant::now();
    client.read("Patient", "p").await.unwrap().unwrap();
    // The date has whole seconds: at least one full second remains.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_timed_out_request_is_retried() {
    let (server, calls) = server_with(
        vec![ok_patient().set_delay(Duration::from_secs(3))],
        ok_patient(),
    )
    .await;
    let mut options = options(&format!("{}/fhir", server.uri()));
    options.timeout = Duration::from_millis(300);
    let client = FhirClient::new(&options, &AuthConfig::None).unwrap();
    let started = Instant::now();
    client.read("Patient", "p").await.unwrap().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not wait for the slow answer"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_reset_connection_is_retried() {
    // The first two connections are closed without an answer; the third is served.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for _ in 0..10 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            if n < 2 {
                let _ = socket.set_zero_linger(); // RST, not FIN
                drop(socket);
                continue;
            }
            let body = r#"{"resourceType":"Patient","id":"p"}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    let client = client(&format!("http://{address}/fhir"));
    let response = client.read("Patient", "p").await.unwrap().unwrap();
    assert_eq!(response.body["id"], "p");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn transactions_are_retried_and_sent_as_plain_fhir_json() {
    let server = MockServer::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path("/fhir/"))
        .and(header("content-type", "application/fhir+json"))
        .and(header("accept", "application/fhir+json"))
        .respond_with(Sequence {
            calls: calls.clone(),
            faults: vec![ResponseTemplate::new(502)],
            last: ResponseTemplate::new(200)
                .set_body_json(json!({"resourceType": "Bundle", "type": "transaction-response"})),
        })
        .mount(&server)
        .await;
    let client = client(&format!("{}/fhir", server.uri()));
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": []});
    let response = client.transaction(&bundle).await.unwrap();
    assert_eq!(response.status.as_u16(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let requests = server.received_requests().await.unwrap();
    let content_type = requests[0]
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(!content_type.contains("fhirVersion"), "{content_type}");
}

#[tokio::test]
async fn a_401_fetches_new_credentials_and_retries_once() {
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "old-token\n").unwrap();
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/fhir/Patient/p"))
        .and(header("authorization", "Bearer new-token"))
        .respond_with(ok_patient())
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/Patient/p"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let auth = AuthConfig::Bearer {
        token_env: None,
        token_file: Some(token_file.path().to_path_buf()),
    };
    let client = FhirClient::new(&options(&format!("{}/fhir", server.uri())), &auth).unwrap();
    // The token is rotated on disk after the client read it.
    std::fs::write(token_file.path(), "new-token\n").unwrap();
    let response = client.read("Patient", "p").await.unwrap().unwrap();
    assert_eq!(response.body["id"], "p");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);

    // A token that stays wrong: one retry, then the 401 is the answer.
    std::fs::write(token_file.path(), "wrong-token\n").unwrap();
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/fhir/Patient/p"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let client = FhirClient::new(&options(&format!("{}/fhir", server.uri())), &auth).unwrap();
    let error = client.read("Patient", "p").await.unwrap_err();
    assert!(error.to_string().contains("401"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn the_concurrency_cap_holds() {
    let (server, _) = server_with(vec![], ok_patient().set_delay(Duration::from_millis(200))).await;
    let mut options = options(&format!("{}/fhir", server.uri()));
    options.max_concurrent = 2;
    let client = FhirClient::new(&options, &AuthConfig::None).unwrap();
    let started = Instant::now();
    let reads = (0..6).map(|_| client.read("Patient", "p"));
    for result in futures::future::join_all(reads).await {
        result.unwrap().unwrap();
    }
    // 6 requests, 2 at a time, 200 ms each: at least 3 rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(590),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_rate_limit_spaces_requests() {
    let (server, _) = server_with(vec![], ok_patient()).await;
    let mut options = options(&format!("{}/fhir", server.uri()));
    options.requests_per_second = Some(10.0);
    let client = FhirClient::new(&options, &AuthConfig::None).unwrap();
    let started = Instant::now();
    for _ in 0..5 {
        client.read("Patient", "p").await.unwrap().unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(390),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn paging_refuses_links_to_another_server() {
    let server = MockServer::start().await;
    let page = |next: &str| {
        json!({"resourceType": "Bundle", "type": "searchset", "total": 3,
            "link": [{"relation": "next", "url": next}],
            "entry": [{"resource": {"resourceType": "DiagnosticReport", "id": "a", "meta": {"versionId": "1"}}, "search": {"mode": "match"}},
                      {"resource": {"resourceType": "Patient", "id": "p"}, "search": {"mode": "include"}},
                      {"resource": {"resourceType": "DiagnosticReport", "id": "b", "meta": {"versionId": "1"}}}]})
    };
    let base = format!("{}/fhir", server.uri());
    Mock::given(method("GET"))
        .and(path("/fhir/DiagnosticReport"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(&format!("{base}/DiagnosticReport?page=2"))),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/DiagnosticReport"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page("http://127.0.0.2:9/fhir/DiagnosticReport?page=3")),
        )
        .mount(&server)
        .await;
    let client = client(&base);
    let mut pager = SearchPager::new(client, "DiagnosticReport", &[]).unwrap();
    let first = pager.next_page().await.unwrap().unwrap();
    let ids: Vec<&str> = first
        .resources
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["a", "b"],
        "matches (with or without search.mode) but no includes"
    );
    let error = pager.next_page().await.unwrap_err();
    assert!(matches!(error, FhirError::ForeignLink { .. }), "{error}");
    assert!(
        error.to_string().contains("127.0.0.2"),
        "the refused link is reported: {error}"
    );
    assert_eq!(pager.duplicates(), 0);
}

#[tokio::test]
async fn a_server_lacking_what_the_run_needs_is_refused_at_start() {
    let server = MockServer::start().await;
    let statement = json!({"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
        "rest": [{"mode": "server", "interaction": [{"code": "batch"}], "resource": [
            {"type": "DiagnosticReport", "interaction": [{"code": "read"}, {"code": "search-type"}]}]}]});
    Mock::given(method("GET"))
        .and(path("/fhir/metadata"))
        .respond_with(ResponseTemplate::new(200).set_body_json(statement))
        .mount(&server)
        .await;
    let config =
        reportsplit::config::Config::parse(&format!("[fhir]\nurl = \"{}/fhir\"\n", server.uri()))
            .unwrap();
    let Err(error) = reportsplit::run::Worker::connect(config, true).await else {
        panic!("must be refused")
    };
    let message = reportsplit::error::error_chain(&error);
    for missing in [
        "transaction",
        "DiagnosticReport update",
        "Observation create",
        "conditional create",
        "`status`",
    ] {
        assert!(
            message.contains(missing),
            "{missing} not named in: {message}"
        );
    }
}

/// A response over `limits.response_bytes` is refused as it is read, whether
/// the server states its length or not, and the refusal stops the run (it is
/// the server's doing, not one report's).
#[tokio::test]
async fn a_response_over_the_limit_is_refused_while_read() {
    let server = MockServer::start().await;
    let big = format!(
        r#"{{"resourceType":"Patient","id":"p","text":{{"div":"{}"}}}}"#,
        "x".repeat(4096)
    );
    Mock::given(method("GET"))
        .and(path("/fhir/Patient/p"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(big, "application/fhir+json"))
        .mount(&server)
        .await;
    let base = format!("{}/fhir", server.uri());
    let mut small = options(&base);
    small.max_response_bytes = 1024;
    let client = FhirClient::new(&small, &AuthConfig::None).unwrap();
    let error = client.read("Patient", "p").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("over 1024 bytes (limits.response_bytes)"),
        "{error}"
    );
    assert_eq!(error.class(), reportsplit::error::Class::Refused);
    // The same body under the default limit is read.
    let response = client_default_ok(&base).await;
    assert_eq!(response["id"], "p");
}

async fn client_default_ok(base: &str) -> serde_json::Value {
    let response = client(base).read("Patient", "p").await.unwrap().unwrap();
    response.body
}
