//! Many `reportsplit backfill --state postgres://…` processes on one range,
//! one SEKMET and one PostgreSQL (a database of the test's own): every
//! report enriched exactly once, a worker killed with SIGKILL mid-window
//! taken over by the others at its saved cursor; and, ignored by default,
//! the fleet's throughput at 1, 2 and 4 workers against the server alone
//! (scripts/bench-fleet.sh, 2,000 reports).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::common::pg::TestDb;
use crate::common::{Fhir, Sekmet, Site, count_tagged, one_set_per_report, seed};

fn size(variable: &str, default: usize) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seeds `n` reports of `patient` in transactions of `batch` reports
/// spread over about `seconds` seconds, so that one-second windows each
/// hold a share (and no `lastUpdated` tie is larger than a page of the
/// backfill). Returns the subject, the report ids and the range
/// `[since, until)` that holds them.
async fn seed_spread(
    fhir: &Fhir,
    patient: &str,
    n: usize,
    (batch, seconds): (usize, u64),
) -> (String, Vec<String>, OffsetDateTime, OffsetDateTime) {
    fhir.put(&seed::patient(patient)).await;
    let since = OffsetDateTime::now_utc();
    let reports = seed::reports(patient, patient, n);
    let batches = reports.len().div_ceil(batch);
    let pause = Duration::from_secs(seconds) / batches.max(1) as u32;
    for batch in reports.chunks(batch) {
        fhir.put_all(batch).await;
        tokio::time::sleep(pause).await;
    }
    let until = OffsetDateTime::now_utc() + time::Duration::SECOND;
    let ids = (0..n).map(|i| format!("{patient}-{i}")).collect();
    (format!("Patient/{patient}"), ids, since, until)
}

/// One backfill worker process of the fleet.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(
        site: &Site,
        state_url: &str,
        range: (OffsetDateTime, OffsetDateTime),
        lease: &str,
        index: usize,
    ) -> Worker {
        let dir = site.config_path.with_file_name(format!("worker-{index}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_reportsplit"))
            .args(["backfill", "--config"])
            .arg(&site.config_path)
            .args(["--since", &reportsplit::pull::rfc3339(range.0)])
            .args(["--until", &reportsplit::pull::rfc3339(range.1)])
            .args(["--window", "1s", "--concurrency", "2"])
            .args(["--state", state_url, "--lease", lease])
            .arg("--dead-letter")
            .arg(dir.join("dead-letter.ndjson"))
            .env("REPORTSPLIT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start reportsplit backfill");
        Worker { child, log }
    }

    /// Waits (bounded) for the exit; returns its code and its log.
    async fn finish(mut self, limit: Duration) -> (Option<i32>, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), std::fs::read_to_string(&self.log).unwrap());
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "a worker ran over {limit:?}:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A test that failed early leaves no worker behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The number a text starts with.
fn leading_number(text: &str) -> Option<u64> {
    let digits: String = text
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// From a worker's summary (its last lines): reports seen, PostgreSQL
/// round trips and windows taken over (`N reports seen, …` and
/// `PostgreSQL state: N round trips (…); N windows taken over, N lost`).
fn summary_figures(log: &str) -> Option<(u64, u64, u64)> {
    let seen = leading_number(log.lines().rfind(|l| l.contains(" reports seen, "))?)?;
    let state = log
        .lines()
        .rfind(|l| l.starts_with("PostgreSQL state: "))?
        .trim_start_matches("PostgreSQL state: ");
    let trips = leading_number(state)?;
    let taken_over = leading_number(state.split_once("; ")?.1)?;
    Some((seen, trips, taken_over))
}

fn site(base: &str, subject: &str, page_size: u32) -> Site {
    Site::with_fhir(
        base,
        subject,
        page_size,
        "max_concurrent_requests = 2\nmax_retries = 2\nretry_base_ms = 50",
    )
}

/// Windows this worker holds now (its owner name carries its pid); 0
/// before the workers' migrations made the table.
async fn windows_held_by(db: &TestDb, pid: u32) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM reportsplit_window WHERE NOT done AND owner LIKE $1",
            &[&format!("%/{pid}/%")],
        )
        .await
        .map_or(0, |row| row.get(0))
}

/// Four workers on one range; one is killed with SIGKILL while it holds a
/// window mid-way: the others take it over after its lease, at its saved
/// cursor, and every report is enriched exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_share_a_range_and_take_over_a_killed_workers_window() {
    let reports = size("REPORTSPLIT_FLEET_REPORTS", 200);
    let server = Sekmet::start();
    let fhir = server.fhir();
    let db = TestDb::create("fleet").await;
    let patient = seed::unique("fleet");
    let (subject, ids, since, until) = seed_spread(&fhir, &patient, reports, (5, 8)).await;
    let site = site(&server.base, &subject, 5);
    let started = Instant::now();
    let mut workers: Vec<Worker> = (0..4)
        .map(|i| Worker::start(&site, &db.url, (since, until), "2s", i))
        .collect();
    // Kill the first worker once reports are being written and it holds a
    // window (bounded: a worker that never gets one fails the test).
    let victim = workers.remove(0);
    let pid = victim.child.id();
    let mut held = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        held = windows_held_by(&db, pid).await;
        if held > 0 && count_tagged(&fhir, &subject).await >= (reports / 10) as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(held > 0, "the victim never held a window");
    let mut victim = victim;
    victim.child.kill().expect("kill -9");
    let _ = victim.child.wait();
    let tagged_at_kill = count_tagged(&fhir, &subject).await;
    let mut logs = Vec::new();
    for worker in workers {
        let (code, log) = worker.finish(Duration::from_secs(240)).await;
        assert_eq!(code, Some(0), "{log}");
        logs.push(log);
    }
    let elapsed = started.elapsed().as_secs_f64();

    assert_eq!(count_tagged(&fhir, &subject).await, reports as u64);
    one_set_per_report(&fhir, &subject, &ids).await;
    assert_eq!(
        fhir.count("Provenance").await,
        reports as u64,
        "one Provenance per report: no report was enriched twice"
    );
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE NOT done), count(*) FILTER (WHERE owner IS NOT NULL), \
             COALESCE(sum(takeovers), 0)::bigint, count(*) FROM reportsplit_window",
            &[],
        )
        .await
        .unwrap();
    let (open, owned, takeovers, windows): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((open, owned), (0, 0), "every window done and let go of");
    // The victim may finish or claim a window between the look and the kill:
    // at least one of its windows was taken over.
    assert!(
        takeovers >= 1,
        "the victim's windows were taken over ({takeovers}; {held} held at the last look)"
    );
    let figures: Vec<(u64, u64, u64)> = logs
        .iter()
        .map(|log| summary_figures(log).unwrap_or_else(|| panic!("no summary in {log}")))
        .collect();
    let taken_over: u64 = figures.iter().map(|(_, _, taken)| taken).sum();
    assert!(
        taken_over >= 1,
        "a survivor reports the takeover: {figures:?}"
    );
    eprintln!(
        "fleet: {reports} reports in {windows} windows, 4 workers, one killed with {held} window(s) \
         held at {tagged_at_kill} reports enriched; {takeovers} takeover(s); {elapsed:.1} s"
    );
}

/// The time `workers` processes take to backfill the range on `server`,
/// and the PostgreSQL round trips per report they report together.
async fn fleet_run(
    server: &Sekmet,
    subject: &str,
    range: (OffsetDateTime, OffsetDateTime),
    workers: usize,
) -> (f64, f64) {
    let db = TestDb::create("bench").await;
    let site = site(&server.base, subject, 50);
    let started = Instant::now();
    let running: Vec<Worker> = (0..workers)
        .map(|i| Worker::start(&site, &db.url, range, "30s", i))
        .collect();
    let mut trips = 0;
    let mut seen = 0;
    for worker in running {
        let (code, log) = worker.finish(Duration::from_secs(1800)).await;
        assert_eq!(code, Some(0), "{log}");
        let (worker_seen, worker_trips, _) =
            summary_figures(&log).unwrap_or_else(|| panic!("no summary in {log}"));
        seen += worker_seen;
        trips += worker_trips;
    }
    let seconds = started.elapsed().as_secs_f64();
    (seconds, trips as f64 / seen.max(1) as f64)
}

/// Throughput at 1, 2 and 4 workers as a ratio to 1 worker in the same
/// run, and the time SEKMET alone needs for the same transactions (POSTed
/// one after the other, as scripts/measure-overhead.sh does). Ignored by
/// default; scripts/bench-fleet.sh runs it on 2,000 reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run explicitly (scripts/bench-fleet.sh)"]
async fn fleet_throughput_against_the_server_alone() {
    let reports = size("REPORTSPLIT_FLEET_REPORTS", 2000);
    let spread = (reports / 100).max(8) as u64;
    // One server per run (a run leaves its reports enriched), and one for
    // the replay; each seeded alike (the same patient and report ids).
    let patient = seed::unique("bench");
    let mut servers = Vec::new();
    let mut seeded = Vec::new();
    for _ in 0..4 {
        let server = Sekmet::start();
        seeded.push(seed_spread(&server.fhir(), &patient, reports, (25, spread)).await);
        servers.push(server);
    }
    // SEKMET alone: the transactions a worker sends (planned by a dry run),
    // POSTed sequentially to a server of their own.
    let state = crate::common::temp_state();
    let (subject0, _, since0, _) = &seeded[0];
    let mut config = crate::common::config(&servers[0].base, state.path(), Some(subject0), 100);
    config.pull.since = Some(reportsplit::pull::rfc3339(*since0));
    let (planned, bundles) = crate::common::sync(&config, true).await;
    assert_eq!(bundles.len(), reports, "{planned}");
    let replay = servers[3].fhir();
    let started = Instant::now();
    for bundle in &bundles {
        let response = replay
            .request(reqwest::Method::POST, "", Some(bundle), None)
            .await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    let alone = started.elapsed().as_secs_f64();
    let mut lines = Vec::new();
    let mut one = 0.0;
    for (index, workers) in [1usize, 2, 4].into_iter().enumerate() {
        let (subject, _, since, until) = &seeded[index];
        let (seconds, trips) = fleet_run(&servers[index], subject, (*since, *until), workers).await;
        if workers == 1 {
            one = seconds;
        }
        lines.push(format!(
            "{workers} worker(s): {seconds:>7.2} s  {:>7.1} reports/s  throughput ratio to 1 worker {:.2}  \
             PostgreSQL round trips per report {trips:.3}",
            reports as f64 / seconds,
            one / seconds
        ));
    }
    println!(
        "\n{reports} reports ({} build); SEKMET alone (sequential replay of the transactions): \
         {alone:.2} s, {:.1} reports/s",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        reports as f64 / alone
    );
    for line in lines {
        println!("{line}");
    }
}
