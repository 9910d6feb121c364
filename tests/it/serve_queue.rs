//! `serve`'s durable queue, with the `reportsplit` binary as a child process
//! (so a kill -9 is real) against a real SEKMET: a `202` survives a kill at
//! any moment of the drain, the next start finishes the work exactly once;
//! a duplicate notification queues once; a full queue answers 503 with
//! Retry-After; SIGTERM keeps what it did not finish; concurrent
//! notifications share fsyncs (group commit).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::Rng as _;
use serde_json::Value;

use crate::common::{self, Fhir, Sekmet};
use crate::common::{count_tagged, one_set_per_report};
use crate::serve::backport_notification;

/// A site: a config file and its state directory, in a temporary directory.
struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
    state: PathBuf,
}

impl Site {
    fn new(base: &str) -> Site {
        let dir = common::temp_state();
        let site = Site {
            config: dir.path().join("site.toml"),
            state: dir.path().join("state"),
            dir,
        };
        site.configure(base, "", "");
        site
    }

    /// (Re)writes the config: `fhir` and `write` are extra lines of those tables.
    fn configure(&self, base: &str, fhir: &str, write: &str) {
        std::fs::write(
            &self.config,
            format!(
                "[fhir]\nurl = \"{base}\"\ntimeout_secs = 30\n{fhir}\n[write]\n{write}\n[state]\ndir = \"{}\"\n",
                self.state.display()
            ),
        )
        .unwrap();
    }

    /// The ids the queue journal holds (added and not done), in order.
    fn journal(&self) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.state.join("serve-queue.ndjson")).unwrap_or_default();
        let mut pending = std::collections::BTreeMap::new();
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).expect("a journal line");
            for entry in record["add"].as_array().into_iter().flatten() {
                pending.insert(
                    entry[0].as_u64().unwrap(),
                    entry[1].as_str().unwrap().to_owned(),
                );
            }
            for seq in record["done"].as_array().into_iter().flatten() {
                pending.remove(&seq.as_u64().unwrap());
            }
        }
        pending.into_values().collect()
    }
}

/// A `reportsplit serve` process, killed on drop.
struct Serve {
    child: Child,
    url: String,
    http: reqwest::Client,
    base: String,
}

impl Serve {
    /// Starts serve on `site` with `args` and waits (bounded) until it answers.
    async fn start(site: &Site, base: &str, args: &[&str]) -> Serve {
        let port = common::free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(site.dir.path().join("serve.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_reportsplit"))
            .arg("serve")
            .arg("--config")
            .arg(&site.config)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--insecure-no-auth",
            ])
            .args(args)
            .env("REPORTSPLIT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start reportsplit serve");
        let mut serve = Serve {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            base: base.to_owned(),
        };
        for _ in 0..300 {
            if let Ok(response) = serve
                .http
                .get(format!("{}/healthz", serve.url))
                .send()
                .await
                && response.status() == 200
            {
                return serve;
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                panic!("serve exited at start ({status}): {}", site.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("serve did not come up in 30 s: {}", site.log());
    }

    async fn notify(&self, ids: &[&str]) -> (u16, reqwest::header::HeaderMap, Value) {
        let notification = backport_notification(&self.base, "event-notification", ids);
        let response = self
            .http
            .post(format!("{}/notify", self.url))
            .header("content-type", "application/fhir+json")
            .body(serde_json::to_vec(&notification).unwrap())
            .send()
            .await
            .expect("POST /notify");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn healthz(&self) -> Value {
        let response = self.http.get(format!("{}/healthz", self.url)).send().await;
        response.expect("GET /healthz").json().await.expect("JSON")
    }

    async fn metric(&self, name: &str) -> f64 {
        let response = self.http.get(format!("{}/metrics", self.url)).send().await;
        let text = response.expect("GET /metrics").text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    }

    /// kill -9.
    fn kill(mut self) {
        self.child.kill().expect("kill -9");
        let status = self.child.wait().unwrap();
        assert!(!status.success(), "killed, not finished: {status}");
    }

    /// SIGTERM, and the exit status (bounded wait).
    async fn terminate(mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("serve did not stop within 30 s of SIGTERM");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Site {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }
}

/// Waits (bounded) until all of `subject`'s `n` reports are tagged.
async fn wait_all_tagged(fhir: &Fhir, subject: &str, n: u64, site: &Site) {
    for _ in 0..300 {
        if count_tagged(fhir, subject).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} of {n} reports enriched after 30 s: {}",
        count_tagged(fhir, subject).await,
        site.log()
    );
}

fn assert_accepted(status: u16, body: &Value) {
    assert_eq!(status, 202, "{body}");
}

/// kill -9 once a random number (up to half) of 30 reports notified with a 202
/// is written (one writer, so the kill lands mid-drain), restart on the same
/// state directory without notifying again: every report ends with exactly
/// one set of Observations. Five rounds on one site (~35 s); the long run
/// sets `REPORTSPLIT_SERVE_KILL_ROUNDS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_serve_finishes_every_accepted_report_exactly_once_on_restart() {
    let rounds: usize = std::env::var("REPORTSPLIT_SERVE_KILL_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    const REPORTS: usize = 30;
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let site = Site::new(&sekmet.base);
    site.configure(&sekmet.base, "", "concurrent_reports = 1");
    let mut random = rand::rng();
    let mut mid_drain = 0;
    let started = Instant::now();
    for round in 0..rounds {
        let (subject, ids) = common::seed_reports(&fhir, "killed-serve", REPORTS).await;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let serve = Serve::start(&site, &sekmet.base, &[]).await;
        // Six notifications at once, and the first again: 30 reports queued once.
        let mut notifications: Vec<&[&str]> = ids.chunks(5).collect();
        notifications.push(&ids[..5]);
        let answers =
            futures::future::join_all(notifications.iter().map(|chunk| serve.notify(chunk))).await;
        for (status, _, body) in &answers {
            assert_accepted(*status, body);
        }
        // Kill once a random number of the reports (up to half) is written, so the
        // kill lands mid-drain however fast this machine drains (a fixed delay did not).
        let target = random.random_range(0..REPORTS as u64 / 2);
        let waiting = Instant::now();
        while count_tagged(&fhir, &subject).await < target
            && waiting.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let wait = waiting.elapsed().as_millis();
        serve.kill();
        let at_kill = count_tagged(&fhir, &subject).await;
        let left = site.journal();
        if at_kill < REPORTS as u64 {
            mid_drain += 1;
            assert!(!left.is_empty(), "round {round}: nothing left queued");
        }

        let serve = Serve::start(&site, &sekmet.base, &[]).await;
        wait_all_tagged(&fhir, &subject, REPORTS as u64, &site).await;
        let status = serve.terminate().await;
        assert!(status.success(), "{status}: {}", site.log());
        let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
        one_set_per_report(&fhir, &subject, &ids).await;
        assert!(site.journal().is_empty(), "drained: {:?}", site.journal());
        eprintln!(
            "round {round}: killed {wait} ms after the 202s with {at_kill}/{REPORTS} done and {} queued; restart finished them",
            left.len()
        );
    }
    eprintln!(
        "{rounds} kill -9 rounds of {REPORTS} reports, {mid_drain} mid-drain, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        mid_drain * 5 >= rounds * 3,
        "only {mid_drain} of {rounds} kills landed mid-drain"
    );
}

/// A slow server (2 requests/s, one report at a time) and a queue of 4: a
/// second serve on the same state directory is refused; a report notified
/// twice while it waits queues once; a notification that
/// does not fit is refused whole with 503 and Retry-After; SIGTERM with no
/// drain time keeps what was not done, and the next start finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_queue_once_a_full_queue_is_refused_and_sigterm_keeps_the_rest() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "queue-rules", 6).await;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let site = Site::new(&sekmet.base);
    site.configure(
        &sekmet.base,
        "requests_per_second = 2",
        "concurrent_reports = 1",
    );
    let args = ["--queue-capacity", "4", "--drain-secs", "0"];
    let serve = Serve::start(&site, &sekmet.base, &args).await;
    // A second serve on the same state directory is refused at start (exit 6).
    let second = Command::new(env!("CARGO_BIN_EXE_reportsplit"))
        .arg("serve")
        .arg("--config")
        .arg(&site.config)
        .args(["--listen", "127.0.0.1:0", "--insecure-no-auth"])
        .output()
        .expect("run a second serve");
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(6), "{said}");
    assert!(said.contains("another reportsplit process"), "{said}");

    let (status, _, body) = serve.notify(&ids[..4]).await;
    assert_accepted(status, &body);
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| d.starts_with("4 report(s) queued")),
        "{body}"
    );
    // The worker takes one report at a time, a second or more each: the others wait.
    let (status, _, body) = serve.notify(&ids[1..4]).await;
    assert_accepted(status, &body);
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| d.starts_with("0 report(s) queued")),
        "{body}"
    );
    let depth = serve.healthz().await["queue"]["depth"].as_u64().unwrap();
    assert!((3..=4).contains(&depth), "{depth} waiting");
    // Readiness follows the queue: 503 exactly when it is full.
    let ready = serve.http.get(format!("{}/readyz", serve.url)).send().await;
    let ready = ready.expect("GET /readyz");
    let ready_status = ready.status().as_u16();
    let ready: Value = ready.json().await.expect("JSON");
    let full = ready["queue"]["depth"].as_u64() >= Some(4);
    assert_eq!(ready_status, if full { 503 } else { 200 }, "{ready}");
    let (status, headers, body) = serve.notify(&ids[4..6]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(serve.metric("reportsplit_queue_rejected_total").await, 1.0);
    // Each report once in the journal, the refused ones not at all.
    let journal = site.journal();
    for id in &ids[1..4] {
        assert_eq!(journal.iter().filter(|j| j == id).count(), 1, "{journal:?}");
    }
    assert!(!journal.iter().any(|j| j == ids[4] || j == ids[5]));

    let status = serve.terminate().await;
    assert!(status.success(), "{status}: {}", site.log());
    let kept = site.journal();
    let done = count_tagged(&fhir, &subject).await;
    assert!(done < 4, "SIGTERM with no drain time finished everything");
    assert!(
        kept.len() as u64 >= 4 - done,
        "kept {kept:?} with {done} done"
    );

    // Next start, a fast server: the kept reports are finished without a new notification.
    site.configure(&sekmet.base, "", "");
    let serve = Serve::start(&site, &sekmet.base, &[]).await;
    wait_all_tagged(&fhir, &subject, 4, &site).await;
    let status = serve.terminate().await;
    assert!(status.success(), "{status}: {}", site.log());
    assert!(site.journal().is_empty(), "{:?}", site.journal());
    for id in &ids[4..6] {
        let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
        assert!(
            report["meta"]["tag"].is_null(),
            "{id} was refused, not queued"
        );
    }
}

/// Concurrent notifications share one fsync per batch: 400 notifications
/// from 16 senders at once are all accepted with far fewer journal commits;
/// prints the rate. (Their reports do not exist: the worker finds each gone.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_notifications_are_group_committed() {
    const NOTIFICATIONS: usize = 400;
    const SENDERS: usize = 16;
    let sekmet = Sekmet::start();
    let site = Site::new(&sekmet.base);
    let serve = Serve::start(&site, &sekmet.base, &["--queue-capacity", "1000"]).await;
    let prefix = common::seed::unique("gc");
    let ids: Vec<String> = (0..NOTIFICATIONS)
        .map(|i| format!("{prefix}-{i}"))
        .collect();
    let started = Instant::now();
    let senders = ids.chunks(NOTIFICATIONS / SENDERS).map(|chunk| {
        let serve = &serve;
        async move {
            for id in chunk {
                let (status, _, body) = serve.notify(&[id.as_str()]).await;
                assert_accepted(status, &body);
            }
        }
    });
    futures::future::join_all(senders).await;
    let elapsed = started.elapsed().as_secs_f64();
    let commits = serve.metric("reportsplit_queue_commits_total").await;
    eprintln!(
        "{NOTIFICATIONS} notifications from {SENDERS} senders accepted in {elapsed:.2} s ({:.0}/s), {commits} fsyncs",
        NOTIFICATIONS as f64 / elapsed
    );
    assert!(commits >= 1.0);
    // Fewer commits than notifications: some were batched. How many share
    // one depends on how fast this disk syncs (on a fast one, 224 of 400
    // were seen); the unit test `concurrent_notifications_share_writes_and_
    // are_answered_after_them` proves the batching with a slow store.
    assert!(
        commits < NOTIFICATIONS as f64,
        "{commits} commits for {NOTIFICATIONS} notifications"
    );
    // All of them end: gone, and out of the queue.
    for _ in 0..300 {
        let gone = serve
            .metric("reportsplit_reports_skipped_total{reason=\"deleted\"}")
            .await;
        if gone >= NOTIFICATIONS as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = serve.terminate().await;
    assert!(status.success(), "{status}: {}", site.log());
    assert!(site.journal().is_empty(), "{:?}", site.journal().len());
}

/// `serve --state postgres://…` end to end: notifications for 30 reports
/// answered 202 once queued in PostgreSQL (table `reportsplit_queue`), a
/// second serve on the same queue refused, kill -9 mid-drain, and the next
/// start (on a fresh state directory: nothing of the queue is on disk)
/// finishes what was queued: each report enriched once, the queue empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_keeps_its_queue_across_a_kill_and_enriches_each_report_once() {
    const REPORTS: usize = 30;
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let db = crate::common::pg::TestDb::create("serve").await;
    let site = Site::new(&sekmet.base);
    // Slow enough (5 requests/s) that the kill lands mid-drain on any machine.
    site.configure(
        &sekmet.base,
        "requests_per_second = 5",
        "concurrent_reports = 1",
    );
    let (subject, ids) = common::seed_reports(&fhir, "serve-pg", REPORTS).await;
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let state = ["--state", db.url.as_str()];
    let serve = Serve::start(&site, &sekmet.base, &state).await;
    let answers =
        futures::future::join_all(id_refs.chunks(10).map(|chunk| serve.notify(chunk))).await;
    for (status, _, body) in &answers {
        assert_accepted(*status, body);
    }
    let queued = |db: &crate::common::pg::TestDb| {
        let db_url = db.url.clone();
        async move {
            let (client, connection) = deadpool_postgres::tokio_postgres::connect(
                &db_url,
                deadpool_postgres::tokio_postgres::NoTls,
            )
            .await
            .unwrap();
            tokio::spawn(connection);
            client
                .query_one("SELECT count(*) FROM reportsplit_queue", &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert!(queued(&db).await > 0, "the 202s were given once queued");
    serve.kill();
    let at_kill = count_tagged(&fhir, &subject).await;
    let left = queued(&db).await;
    assert!(
        at_kill < REPORTS as u64 && left > 0,
        "killed mid-drain: {at_kill} done, {left} queued"
    );

    std::fs::remove_dir_all(&site.state).unwrap();
    site.configure(&sekmet.base, "", "concurrent_reports = 1");
    let serve = Serve::start(&site, &sekmet.base, &state).await;
    // A second serve on the same queue is refused (one owner at a time).
    let second = Command::new(env!("CARGO_BIN_EXE_reportsplit"))
        .args(["serve", "--config"])
        .arg(&site.config)
        .args(["--listen", &format!("127.0.0.1:{}", common::free_port())])
        .args(["--insecure-no-auth", "--state", &db.url])
        .output()
        .unwrap();
    assert!(!second.status.success(), "a second owner of the queue");
    wait_all_tagged(&fhir, &subject, REPORTS as u64, &site).await;
    let status = serve.terminate().await;
    assert!(status.success(), "{status}: {}", site.log());
    one_set_per_report(&fhir, &subject, &ids).await;
    assert_eq!(
        fhir.count("Provenance").await,
        REPORTS as u64,
        "each report enriched once"
    );
    assert_eq!(queued(&db).await, 0, "the queue drained");
    eprintln!(
        "serve on PostgreSQL: killed with {at_kill}/{REPORTS} done and {left} queued; restart finished them"
    );
}
