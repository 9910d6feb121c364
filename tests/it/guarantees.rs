//! The guarantees of docs/guarantees.md that need a server: concurrent
//! workers on one range, redirects and paging links off the configured
//! server, TLS verification. Against a real SEKMET; the faults (a redirect, a
//! foreign `next` link) come from a small proxy in front of it, and the
//! other host is a wiremock on 127.0.0.2.

use crate::common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use common::{Fhir, Sekmet};
use reportsplit_fhir::plan::TAG_SYSTEM;
use serde_json::{Value, json};

/// A site: its config file and state directory (in a temporary directory).
struct Site {
    config_path: PathBuf,
    state_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Site {
    fn new(base: &str, subject: &str, page_size: u32) -> Site {
        let dir = common::temp_state();
        let state_dir = dir.path().join("state");
        let config_path = dir.path().join("site.toml");
        std::fs::write(
            &config_path,
            format!(
                "[fhir]\nurl = \"{base}\"\ntimeout_secs = 30\nmax_retries = 1\nretry_base_ms = 50\n\
                 [pull]\nsubject = \"{subject}\"\noverlap_secs = 5\npage_size = {page_size}\n\
                 [state]\ndir = \"{}\"\n",
                state_dir.display()
            ),
        )
        .unwrap();
        Site {
            config_path,
            state_dir,
            _dir: dir,
        }
    }

    fn sync_once(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reportsplit"));
        command
            .args(["sync", "--once", "--config"])
            .arg(&self.config_path)
            .env("REPORTSPLIT_LOG", "info");
        command
    }

    fn state(&self) -> Option<String> {
        std::fs::read_to_string(self.state_dir.join("state.json")).ok()
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) async fn count_tagged(fhir: &Fhir, subject: &str) -> u64 {
    let system: String = url::form_urlencoded::byte_serialize(TAG_SYSTEM.as_bytes()).collect();
    fhir.count(&format!(
        "DiagnosticReport?subject={subject}&_tag={system}|"
    ))
    .await
}

/// Every report has exactly one set of Observations: the Observations of
/// the subject carry distinct identifiers, each report's `result` names
/// distinct Observations that exist, and together they are all of them.
/// Returns the number of Observations.
pub(crate) async fn one_set_per_report(fhir: &Fhir, subject: &str, reports: &[String]) -> usize {
    let observations = fhir
        .search_all(&format!("Observation?subject={subject}&_count=200"))
        .await;
    let mut identifiers = HashSet::new();
    let mut ids = HashSet::new();
    for observation in &observations {
        let identifier = observation["identifier"][0]["value"]
            .as_str()
            .expect("an identifier")
            .to_owned();
        assert!(
            identifiers.insert(identifier.clone()),
            "duplicate Observation {identifier}"
        );
        ids.insert(format!(
            "Observation/{}",
            observation["id"].as_str().unwrap()
        ));
    }
    let mut linked = HashSet::new();
    for id in reports {
        let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
        let results = report["result"].as_array().expect("results");
        assert!(!results.is_empty(), "{id} has no results");
        for result in results {
            let reference = result["reference"].as_str().unwrap().to_owned();
            assert!(ids.contains(&reference), "{id}: {reference} is not there");
            assert!(linked.insert(reference.clone()), "{reference} linked twice");
        }
    }
    assert_eq!(linked, ids, "every Observation belongs to one report");
    observations.len()
}

/// `n` workers (`sync --once` processes, each with its own state directory,
/// as a backfill beside the daemon would be) started together on one range
/// of reports on a fresh server.
async fn concurrent_workers(n: usize) {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "workers", 12).await;
    let sites: Vec<Site> = (0..n)
        .map(|_| Site::new(&server.base, &subject, 5))
        .collect();
    let started = std::time::Instant::now();
    let children: Vec<_> = sites
        .iter()
        .map(|site| {
            site.sync_once()
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start sync --once")
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "a worker failed: {}",
            stderr(&output)
        );
    }
    for site in &sites {
        let saved = site.state().unwrap_or_default();
        assert!(
            saved.contains("\"checkpoint\""),
            "every worker saved a checkpoint: {saved}"
        );
    }
    assert_eq!(count_tagged(&fhir, &subject).await, ids.len() as u64);
    let observations = one_set_per_report(&fhir, &subject, &ids).await;
    assert!(observations > ids.len());
    let devices = fhir
        .count("Device?identifier=urn:reportsplit:device|")
        .await;
    assert!(devices >= 1, "{devices} Devices");
    // The figures of docs/guarantees.md (`--nocapture`).
    eprintln!(
        "{n} workers, {} reports: {observations} Observations, {devices} Device(s), {:.1} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );

    // A later sync (any worker's state) succeeds and writes nothing new.
    let output = sites[0].sync_once().output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        one_set_per_report(&fhir, &subject, &ids).await,
        observations
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_workers_write_one_set_per_report() {
    concurrent_workers(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_concurrent_workers_write_one_set_per_report() {
    concurrent_workers(4).await;
}

/// What two workers racing on a server without atomic conditional creates
/// leave behind: two Devices with reportsplit's identifier. Every worker
/// then uses the oldest, and nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_devices_are_tolerated_and_the_oldest_is_used() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let run = reportsplit_fhir::map::RunInfo {
        extractor_version: env!("CARGO_PKG_VERSION").to_owned(),
        recorded: time::OffsetDateTime::now_utc(),
    };
    let device = reportsplit_fhir::map::device(&run).unwrap();
    let mut created = Vec::new();
    for _ in 0..2 {
        let response = fhir
            .request(reqwest::Method::POST, "Device", Some(&device), None)
            .await;
        assert_eq!(response.status, 201, "{}", response.body);
        created.push(format!("Device/{}", response.body["id"].as_str().unwrap()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (subject, ids) = common::seed_reports(&fhir, "devices", 3).await;
    let site = Site::new(&server.base, &subject, 10);
    let output = site.sync_once().output().unwrap();
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{log}");
    assert!(
        log.contains("several Devices"),
        "the duplicate is reported: {log}"
    );
    one_set_per_report(&fhir, &subject, &ids).await;
    let provenances = fhir.search_all("Provenance?_count=100").await;
    assert_eq!(provenances.len(), ids.len());
    for provenance in provenances {
        assert_eq!(
            provenance["agent"][0]["who"]["reference"], created[0],
            "{provenance}"
        );
    }
}

// --- Redirects and paging links off the configured server ---

const PASS: u8 = 0;
/// Report searches answer 302 to the other host.
const REDIRECT: u8 = 1;
/// Report search pages link `next` to the other host.
const FOREIGN_NEXT: u8 = 2;

/// A proxy in front of SEKMET on 127.0.0.1 that injects one fault at a time.
struct Proxy {
    base: String,
    mode: Arc<AtomicU8>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    own: String,
    elsewhere: String,
    mode: Arc<AtomicU8>,
    http: reqwest::Client,
}

async fn start_proxy(upstream_base: &str, elsewhere: &str) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream_base.trim_end_matches("/fhir").to_owned();
    let mode = Arc::new(AtomicU8::new(PASS));
    let state = ProxyState {
        upstream,
        own: own.clone(),
        elsewhere: elsewhere.to_owned(),
        mode: mode.clone(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Proxy {
        base: format!("{own}/fhir"),
        mode,
        _task: task,
    }
}

async fn forward(
    axum::extract::State(proxy): axum::extract::State<ProxyState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let mode = proxy.mode.load(Ordering::SeqCst);
    let report_search =
        parts.method == reqwest::Method::GET && parts.uri.path().ends_with("/DiagnosticReport");
    if mode == REDIRECT && report_search {
        return (
            axum::http::StatusCode::FOUND,
            [(
                axum::http::header::LOCATION,
                format!("{}{path}", proxy.elsewhere),
            )],
        )
            .into_response();
    }
    let bytes = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let mut upstream = proxy
        .http
        .request(parts.method.clone(), format!("{}{path}", proxy.upstream));
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.body(bytes.to_vec()).send().await.unwrap();
    let status = answer.status();
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in answer.headers() {
        if matches!(
            name.as_str(),
            "content-type" | "etag" | "location" | "last-modified"
        ) {
            let text = value
                .to_str()
                .unwrap_or("")
                .replace(&proxy.upstream, &proxy.own);
            headers.insert(name, text.parse().unwrap());
        }
    }
    let text = answer.text().await.unwrap();
    let mut text = text.replace(&proxy.upstream, &proxy.own);
    if mode == FOREIGN_NEXT && report_search {
        let mut bundle: Value = serde_json::from_str(&text).unwrap();
        for link in bundle["link"].as_array_mut().into_iter().flatten() {
            if link["relation"] == "next" {
                let url = link["url"]
                    .as_str()
                    .unwrap()
                    .replace(&proxy.own, &proxy.elsewhere);
                link["url"] = json!(url);
            }
        }
        text = bundle.to_string();
    }
    (status, headers, text).into_response()
}

/// The other host: 127.0.0.2, answering every request with an empty page.
async fn elsewhere() -> wiremock::MockServer {
    let listener = std::net::TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let server = wiremock::MockServer::builder()
        .listener(listener)
        .start()
        .await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .insert_header("content-type", "application/fhir+json")
                .set_body_json(json!({"resourceType": "Bundle", "type": "searchset", "total": 0})),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_off_the_server_is_refused_with_exit_5_and_the_checkpoint_stays() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let other = elsewhere().await;
    let proxy = start_proxy(&server.base, &other.uri()).await;
    let (subject, ids) = common::seed_reports(&fhir, "redirect", 3).await;
    let site = Site::new(&proxy.base, &subject, 10);

    let output = site.sync_once().output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let saved = site.state().expect("a checkpoint after the first sync");

    // New reports; then every report search is redirected to 127.0.0.2.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let patient = subject.trim_start_matches("Patient/");
    let more: Vec<Value> = (3..6)
        .map(|i| common::seed::report(&format!("{patient}-{i}"), i, patient, false))
        .collect();
    fhir.put_all(&more).await;
    proxy.mode.store(REDIRECT, Ordering::SeqCst);
    let output = site.sync_once().output().unwrap();
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(5), "exit 5, refused: {log}");
    assert!(log.contains("redirect"), "{log}");
    assert_eq!(
        site.state().as_deref(),
        Some(saved.as_str()),
        "the checkpoint did not move"
    );
    let followed = other.received_requests().await.unwrap_or_default();
    assert!(
        followed.is_empty(),
        "the redirect was followed: {followed:?}"
    );
    assert_eq!(count_tagged(&fhir, &subject).await, ids.len() as u64);

    // Back to normal: the next run picks the new reports up.
    proxy.mode.store(PASS, Ordering::SeqCst);
    let output = site.sync_once().output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(count_tagged(&fhir, &subject).await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paging_link_to_another_server_is_refused_with_exit_5() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let other = elsewhere().await;
    let proxy = start_proxy(&server.base, &other.uri()).await;
    let (subject, _) = common::seed_reports(&fhir, "paging", 5).await;
    let site = Site::new(&proxy.base, &subject, 2);
    proxy.mode.store(FOREIGN_NEXT, Ordering::SeqCst);

    let output = site.sync_once().output().unwrap();
    let log = stderr(&output);
    assert_eq!(output.status.code(), Some(5), "exit 5, refused: {log}");
    assert!(log.contains("paging link"), "{log}");
    assert!(
        !site.state().unwrap_or_default().contains("checkpoint"),
        "no checkpoint: {:?}",
        site.state()
    );
    assert!(
        other
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    assert_eq!(count_tagged(&fhir, &subject).await, 0);
}

// --- TLS ---

/// A private CA and a certificate for 127.0.0.1 signed by it, made with the
/// openssl command line.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            stderr(&output)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=reportsplit test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n\
         keyUsage=digitalSignature,keyEncipherment\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

/// `openssl s_server -WWW`: serves the files of `dir` over HTTPS.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server(dir: &Path) -> TlsServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-WWW",
            "-cert",
            "server.pem",
            "-key",
            "server.key",
        ])
        .args(["-accept", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    TlsServer { child, port }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_private_ca_is_refused_unless_its_ca_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    std::fs::write(
        dir.path().join("metadata"),
        json!({"resourceType": "CapabilityStatement", "status": "active"}).to_string(),
    )
    .unwrap();
    let server = tls_server(dir.path());
    let options = |ca_file: Option<PathBuf>| reportsplit::fhir::ClientOptions {
        base: url::Url::parse(&format!("https://127.0.0.1:{}/", server.port)).unwrap(),
        timeout: Duration::from_secs(10),
        ca_file,
        retry: reportsplit::fhir::RetryPolicy {
            max_retries: 0,
            ..Default::default()
        },
        max_concurrent: 1,
        requests_per_second: None,
    };
    let no_auth = reportsplit::auth::AuthConfig::None;

    let untrusted = reportsplit::fhir::FhirClient::new(&options(None), &no_auth).unwrap();
    let error = untrusted
        .get(untrusted.url("metadata").unwrap())
        .await
        .expect_err("an unknown CA is refused");
    assert!(
        matches!(error, reportsplit::fhir::FhirError::Transport { .. }),
        "{error}"
    );
    let chain = reportsplit::error::error_chain(&error).to_lowercase();
    assert!(chain.contains("certificate"), "{chain}");

    let trusted =
        reportsplit::fhir::FhirClient::new(&options(Some(dir.path().join("ca.pem"))), &no_auth)
            .unwrap();
    let response = trusted
        .get(trusted.url("metadata").unwrap())
        .await
        .expect("the configured CA is trusted")
        .success()
        .unwrap();
    assert_eq!(response.body["resourceType"], "CapabilityStatement");
}
