//! The guarantees of docs/guarantees.md that need a server: concurrent
//! workers on one range, redirects and paging links off the configured
//! server, TLS verification. Against a real SEKMET; the faults (a redirect, a
//! foreign `next` link) come from a small proxy in front of it, and the
//! other host is a wiremock on 127.0.0.2.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use common::{Sekmet, Site, count_tagged, one_set_per_report, stderr};
use serde_json::{Value, json};

/// `n` workers (`sync --once` processes, each with its own state directory,
/// as a backfill beside the daemon would be) started together on one range
/// of `reports` on a fresh server; with `third_party`, someone else edits
/// every report while they run.
async fn concurrent_workers(n: usize, reports: usize, third_party: bool) {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "workers", reports).await;
    let sites: Vec<Site> = (0..n)
        .map(|_| Site::new(&server.base, &subject, 5))
        .collect();
    let started = std::time::Instant::now();
    let mut children: Vec<_> = sites
        .iter()
        .map(|site| {
            site.sync_once()
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start sync --once")
        })
        .collect();
    let edits = if third_party {
        Some(edit_during_the_run(&fhir, &subject, &ids, &mut children).await)
    } else {
        None
    };
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
    if let Some(edits) = &edits {
        edits.survived(&fhir, &ids).await;
        // The workers read the whole range before their first write, so an
        // edit of a report not yet enriched lands between a worker's read
        // and its write: that worker's transaction met 412 and was redone.
        assert!(
            edits.before_enriched > 0,
            "no edit crossed a worker's read and write; nothing was proved"
        );
    }
    let devices = fhir
        .count("Device?identifier=urn:reportsplit:device|")
        .await;
    assert!(devices >= 1, "{devices} Devices");
    // The figures of docs/guarantees.md (`--nocapture`).
    eprintln!(
        "{n} workers{}, {} reports: {observations} Observations, {devices} Device(s), {:.1} s",
        edits
            .as_ref()
            .map(|e| format!(
                " and a third party ({} reports edited before they were enriched, {} after, {} edits met 412)",
                e.before_enriched, e.after_enriched, e.conflicts
            ))
            .unwrap_or_default(),
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
    if let Some(edits) = &edits {
        edits.survived(&fhir, &ids).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_workers_write_one_set_per_report() {
    concurrent_workers(2, 12, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_concurrent_workers_write_one_set_per_report() {
    concurrent_workers(4, 12, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_editing_during_concurrent_workers_keeps_its_edits() {
    concurrent_workers(2, 40, true).await;
}

/// What the third party wrote: an identifier of its own on each report.
struct ThirdPartyEdits {
    system: &'static str,
    /// Reports it edited before a worker enriched them (a worker's write then met 412).
    before_enriched: u32,
    after_enriched: u32,
    /// Its writes that met 412 (a worker wrote first) and were redone.
    conflicts: u32,
}

impl ThirdPartyEdits {
    /// Every report carries the third party's identifier, once, beside
    /// reportsplit's tag and results.
    async fn survived(&self, fhir: &common::Fhir, ids: &[String]) {
        for id in ids {
            let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
            let theirs: Vec<&Value> = report["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["system"] == self.system)
                .collect();
            assert_eq!(
                theirs,
                [&json!({"system": self.system, "value": format!("edited-{id}")})],
                "{id}: the third party's edit is gone"
            );
        }
    }
}

/// A careful third party (`If-Match`, re-read on 412) adds an identifier to
/// every report once the workers have started writing, newest first (the
/// workers go oldest first), so its edits cross theirs.
async fn edit_during_the_run(
    fhir: &common::Fhir,
    subject: &str,
    ids: &[String],
    workers: &mut [std::process::Child],
) -> ThirdPartyEdits {
    let mut edits = ThirdPartyEdits {
        system: "urn:test:third-party",
        before_enriched: 0,
        after_enriched: 0,
        conflicts: 0,
    };
    // Bounded: 10 s for the workers' first write.
    for _ in 0..400 {
        let done = workers
            .iter_mut()
            .all(|w| w.try_wait().ok().flatten().is_some());
        if done || count_tagged(fhir, subject).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for id in ids.iter().rev() {
        let path = format!("DiagnosticReport/{id}");
        let mut written = false;
        for _ in 0..10 {
            let mut report = fhir.get(&path).await;
            let tagged = report["meta"]["tag"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["system"] == reportsplit_fhir::plan::TAG_SYSTEM);
            let version = report["meta"]["versionId"].as_str().unwrap().to_owned();
            let identifier = json!({"system": edits.system, "value": format!("edited-{id}")});
            match report["identifier"].as_array_mut() {
                Some(list) => list.push(identifier),
                None => report["identifier"] = json!([identifier]),
            }
            let response = fhir
                .request(reqwest::Method::PUT, &path, Some(&report), Some(&version))
                .await;
            match response.status {
                200 => {
                    if tagged {
                        edits.after_enriched += 1;
                    } else {
                        edits.before_enriched += 1;
                    }
                    written = true;
                    break;
                }
                412 => edits.conflicts += 1,
                status => panic!(
                    "{path}: the third party's PUT got {status}: {}",
                    response.body
                ),
            }
        }
        assert!(
            written,
            "{path}: the third party could not write in 10 tries"
        );
    }
    edits
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
        writes: Default::default(),
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

/// The shared proxy (`common::proxy`) in front of SEKMET, injecting one
/// fault at a time, as `mode` says.
struct Proxy {
    base: String,
    mode: Arc<AtomicU8>,
    _proxy: common::proxy::Proxy,
}

async fn start_proxy(upstream_base: &str, elsewhere: &str) -> Proxy {
    use common::proxy::{Action, Seen};
    let mode = Arc::new(AtomicU8::new(PASS));
    let elsewhere = elsewhere.to_owned();
    let current = mode.clone();
    let policy = move |seen: &Seen<'_>| {
        let report_search = seen.method == reqwest::Method::GET
            && seen
                .path
                .split('?')
                .next()
                .unwrap_or("")
                .ends_with("/DiagnosticReport");
        match current.load(Ordering::SeqCst) {
            REDIRECT if report_search => Action::Answer {
                status: 302,
                headers: vec![("location", format!("{elsewhere}{}", seen.path))],
            },
            FOREIGN_NEXT if report_search => {
                let (own, elsewhere) = (seen.own.to_owned(), elsewhere.clone());
                Action::ForwardEdited(Box::new(move |text| {
                    let mut bundle: Value = serde_json::from_str(&text).unwrap();
                    for link in bundle["link"].as_array_mut().into_iter().flatten() {
                        if link["relation"] == "next" {
                            let url = link["url"].as_str().unwrap().replace(&own, &elsewhere);
                            link["url"] = json!(url);
                        }
                    }
                    bundle.to_string()
                }))
            }
            _ => Action::Forward,
        }
    };
    let proxy = common::proxy::start(upstream_base, Arc::new(policy)).await;
    Proxy {
        base: proxy.base.clone(),
        mode,
        _proxy: proxy,
    }
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
        max_response_bytes: reportsplit_fhir::limits::Limits::default().response_bytes,
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
