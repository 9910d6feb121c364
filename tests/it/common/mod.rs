//! Shared by the integration tests: a real SEKMET FHIR server per test
//! (started through scripts/sekmet.sh on a free loopback port, killed on
//! drop), a small JSON helper for the test's own reads and writes, and the
//! seed reports.
//!
//! Set REPORTSPLIT_TEST_FHIR_URL to run the strict-validation tests against
//! an already running server instead (then run the tests with
//! `--test-threads=1`: they count resources server-wide).

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod pg;
pub mod proxy;
pub mod seed;

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reportsplit_fhir::plan::TAG_SYSTEM;
use serde_json::{Value, json};

/// How the server validates and keeps time.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerOptions {
    /// Inbound validation off: the server stores elements a strict server refuses.
    pub lenient: bool,
    /// meta.lastUpdated with whole-second precision (many equal timestamps).
    pub second_clock: bool,
}

/// A running SEKMET (or the external server of REPORTSPLIT_TEST_FHIR_URL).
pub struct Sekmet {
    pub base: String,
    pid: Option<u32>,
    _dir: Option<tempfile::TempDir>,
}

impl Sekmet {
    pub fn start() -> Sekmet {
        Sekmet::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Sekmet {
        if !options.lenient
            && !options.second_clock
            && let Ok(base) = std::env::var("REPORTSPLIT_TEST_FHIR_URL")
        {
            return Sekmet {
                base: base.trim_end_matches('/').to_string(),
                pid: None,
                _dir: None,
            };
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sekmet.sh");
        // A port can be taken between our probe and the server's bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new(&script);
            command
                .arg(port.to_string())
                .env("SEKMET_DIR", dir.path())
                .env(
                    "SEKMET_VALIDATION",
                    if options.lenient { "off" } else { "strict" },
                );
            if options.second_clock {
                command.env("SEKMET_CLOCK", "seconds");
            }
            let output = command.output().expect("run scripts/sekmet.sh");
            if output.status.success() {
                let stdout = String::from_utf8_lossy(&output.stdout);
                let pid = stdout
                    .lines()
                    .last()
                    .and_then(|l| l.trim().parse().ok())
                    .expect("sekmet.sh prints the PID");
                return Sekmet {
                    base: format!("http://127.0.0.1:{port}/fhir"),
                    pid: Some(pid),
                    _dir: Some(dir),
                };
            }
            eprintln!(
                "SEKMET did not start on {port}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        panic!("SEKMET could not be started (see above)");
    }

    /// Where this server keeps a Bulk Data export's file (`None` for an
    /// external server): a test corrupts a line there to inject a bad line.
    pub fn export_file(&self, status: &str, name: &str) -> Option<PathBuf> {
        let dir = self._dir.as_ref()?;
        let port = self.base.rsplit(':').next()?.split('/').next()?;
        let job = status.rsplit('/').next()?;
        Some(
            dir.path()
                .join(format!("data-{port}"))
                .join("bulk")
                .join(job)
                .join(name),
        )
    }

    pub fn fhir(&self) -> Fhir {
        Fhir {
            base: self.base.clone(),
            http: reqwest::Client::new(),
        }
    }
}

impl Drop for Sekmet {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The test's own view of the server (plain reqwest, no retries: a failure
/// here is a failed test).
#[derive(Clone)]
pub struct Fhir {
    pub base: String,
    http: reqwest::Client,
}

pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl Fhir {
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Response {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}/{}", self.base, path)
        };
        let mut request = self
            .http
            .request(method, url)
            .header("accept", "application/fhir+json");
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(serde_json::to_vec(body).unwrap());
        }
        if let Some(version) = if_match {
            request = request.header("if-match", format!("W/\"{version}\""));
        }
        let response = request.send().await.expect("request to the test server");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        Response { status, body }
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self.request(reqwest::Method::GET, path, None, None).await;
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        response.body
    }

    pub async fn put(&self, resource: &Value) -> Value {
        let path = format!(
            "{}/{}",
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        let response = self
            .request(reqwest::Method::PUT, &path, Some(resource), None)
            .await;
        assert!(
            response.status == 200 || response.status == 201,
            "PUT {path}: {} {}",
            response.status,
            response.body
        );
        response.body
    }

    /// A transaction of PUTs (client-chosen ids, so two servers can hold the same reports).
    pub async fn put_all(&self, resources: &[Value]) {
        for chunk in resources.chunks(100) {
            let entries: Vec<Value> = chunk
                .iter()
                .map(|r| {
                    let url = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
                    json!({"fullUrl": format!("{}/{}", self.base, url), "resource": r, "request": {"method": "PUT", "url": url}})
                })
                .collect();
            let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
            let response = self
                .request(reqwest::Method::POST, "", Some(&bundle), None)
                .await;
            assert_eq!(response.status, 200, "seed transaction: {}", response.body);
        }
    }

    /// `total` of a `_summary=count` search, e.g. `count("Observation?subject=Patient/1")`.
    pub async fn count(&self, search: &str) -> u64 {
        let separator = if search.contains('?') { '&' } else { '?' };
        let body = self
            .get(&format!("{search}{separator}_summary=count"))
            .await;
        body["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("no total in {body}"))
    }

    /// Every resource of a search, all pages.
    pub async fn search_all(&self, search: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut next = Some(search.to_string());
        while let Some(path) = next.take() {
            let bundle = self.get(&path).await;
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                out.push(entry["resource"].clone());
            }
            next = bundle["link"]
                .as_array()
                .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(str::to_string);
        }
        out
    }

    /// Every version of every resource written since `since` (system history).
    pub async fn history_count_since(&self, since: &str) -> u64 {
        self.count(&format!("_history?_since={since}")).await
    }
}

/// A config for a test server with a state dir of its own.
pub fn config(
    base: &str,
    state_dir: &Path,
    subject: Option<&str>,
    page_size: u32,
) -> reportsplit::config::Config {
    let mut text = format!(
        "[fhir]\nurl = \"{base}\"\ntimeout_secs = 30\nmax_concurrent_requests = 4\n\
         [pull]\ncategory = [\"http://terminology.hl7.org/CodeSystem/v2-0074|RAD\"]\npage_size = {page_size}\n\
         [state]\ndir = \"{}\"\n",
        state_dir.display()
    );
    if let Some(subject) = subject {
        text = text.replace("[pull]\n", &format!("[pull]\nsubject = \"{subject}\"\n"));
    }
    let config = reportsplit::config::Config::parse(&text).expect("test config");
    config.validate().expect("valid test config");
    config
}

/// Runs one sync pass; returns the summary and the transactions it sent.
pub async fn sync(
    config: &reportsplit::config::Config,
    dry_run: bool,
) -> (reportsplit::mode::once::PassSummary, Vec<Value>) {
    let mut out: Vec<u8> = Vec::new();
    let never = tokio_util::sync::CancellationToken::new();
    let summary = reportsplit::mode::once::run_with(config.clone(), dry_run, &mut out, &never)
        .await
        .expect("sync pass");
    let bundles = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON bundle"))
        .collect();
    (summary, bundles)
}

/// Now, for `_since` (the test servers run on this machine's clock). Waits
/// past the current millisecond first, so that nothing written before the
/// call can carry the returned timestamp.
pub fn now_rfc3339() -> String {
    std::thread::sleep(std::time::Duration::from_millis(2));
    let now = reportsplit::pull::rfc3339(time::OffsetDateTime::now_utc());
    std::thread::sleep(std::time::Duration::from_millis(2));
    now
}

/// Seeds one new patient and `n` of their reports; returns `Patient/<id>`
/// and the report ids.
pub async fn seed_reports(fhir: &Fhir, prefix: &str, n: usize) -> (String, Vec<String>) {
    let patient = seed::unique(prefix);
    let mut resources = vec![seed::patient(&patient)];
    resources.extend(seed::reports(&patient, &patient, n));
    fhir.put_all(&resources).await;
    let ids = (0..n).map(|i| format!("{patient}-{i}")).collect();
    (format!("Patient/{patient}"), ids)
}

pub fn temp_state() -> tempfile::TempDir {
    tempfile::tempdir().expect("state dir")
}

/// A site: its config file and state directory (in a temporary directory).
pub struct Site {
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Site {
    pub fn new(base: &str, subject: &str, page_size: u32) -> Site {
        Site::with_fhir(
            base,
            subject,
            page_size,
            "max_retries = 1\nretry_base_ms = 50",
        )
    }

    /// A site whose `[fhir]` table also has `fhir_options` (TOML lines).
    pub fn with_fhir(base: &str, subject: &str, page_size: u32, fhir_options: &str) -> Site {
        Site::with_tables(
            base,
            fhir_options,
            &format!("subject = \"{subject}\"\noverlap_secs = 5\npage_size = {page_size}"),
        )
    }

    /// A site with these `[fhir]` options (beside the URL) and `[pull]` table (TOML lines).
    pub fn with_tables(base: &str, fhir_options: &str, pull: &str) -> Site {
        let dir = temp_state();
        let state_dir = dir.path().join("state");
        let config_path = dir.path().join("site.toml");
        std::fs::write(
            &config_path,
            format!(
                "[fhir]\nurl = \"{base}\"\ntimeout_secs = 30\n{fhir_options}\n\
                 [pull]\n{pull}\n[state]\ndir = \"{}\"\n",
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

    pub fn sync_once(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_reportsplit"));
        command
            .args(["sync", "--once", "--config"])
            .arg(&self.config_path)
            .env("REPORTSPLIT_LOG", "info");
        command
    }

    pub fn state(&self) -> Option<String> {
        std::fs::read_to_string(self.state_dir.join("state.json")).ok()
    }
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub async fn count_tagged(fhir: &Fhir, subject: &str) -> u64 {
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
pub async fn one_set_per_report(fhir: &Fhir, subject: &str, reports: &[String]) -> usize {
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
