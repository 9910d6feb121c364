//! Many `reportsplit backfill --state postgres://…` processes on one range,
//! one SEKMET and one PostgreSQL (a database of the test's own): every
//! report enriched exactly once, a worker killed with SIGKILL mid-window
//! taken over by the others at its saved cursor; two workers on one Bulk
//! Data export (`--from-export`), the one reading its file killed; and,
//! ignored by default,
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
        Worker::start_with(site, state_url, range, lease, index, &[])
    }

    fn start_with(
        site: &Site,
        state_url: &str,
        range: (OffsetDateTime, OffsetDateTime),
        lease: &str,
        index: usize,
        extra: &[&str],
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
            .args(extra)
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

/// The machine's load average (1, 5, 15 min), for the figures' context.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
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
    // 240 s for the default 200 reports; the long run (2,000) gets more.
    let limit = Duration::from_secs(240.max(reports as u64 / 2));
    for worker in workers {
        let (code, log) = worker.finish(limit).await;
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
         held at {tagged_at_kill} reports enriched; {takeovers} takeover(s); {elapsed:.1} s; \
         load average {}",
        load_average()
    );
}

/// A worker whose window is taken from it (its lease lapsed on a loaded
/// machine) by a worker that then dies takes the window back after that
/// lease, rather than ending its run with the window unfinished: here the
/// taker is a ghost owner written into the table, which never renews.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_taken_by_a_worker_that_died_is_taken_back() {
    let reports = 60;
    let server = Sekmet::start();
    let fhir = server.fhir();
    let db = TestDb::create("fleetghost").await;
    let patient = seed::unique("ghost");
    let (subject, ids, since, until) = seed_spread(&fhir, &patient, reports, (20, 1)).await;
    // Slow enough that the window is mid-way when the ghost takes it.
    let site = Site::with_fhir(
        &server.base,
        &subject,
        5,
        "max_concurrent_requests = 2\nmax_retries = 2\nretry_base_ms = 50\nrequests_per_second = 20",
    );
    let worker = Worker::start_with(&site, &db.url, (since, until), "2s", 0, &[]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut taken = 0;
    while taken == 0 && Instant::now() < deadline {
        if count_tagged(&fhir, &subject).await >= 5 {
            taken = db
                .client()
                .await
                .execute(
                    "UPDATE reportsplit_window SET owner = 'ghost/1/dead', \
                     lease_until = now() + interval '3 seconds' WHERE NOT done AND owner IS NOT NULL",
                    &[],
                )
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(taken > 0, "the worker never held a window mid-way");
    let (code, log) = worker.finish(Duration::from_secs(180)).await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(count_tagged(&fhir, &subject).await, reports as u64, "{log}");
    one_set_per_report(&fhir, &subject, &ids).await;
    assert!(log.contains("another worker took it over"), "{log}");
    assert!(
        log.contains("taking over a window whose lease expired"),
        "{log}"
    );
    let open: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM reportsplit_window WHERE NOT done",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(open, 0, "every window done");
}

/// Two workers on one export (`backfill --from-export`, PostgreSQL state):
/// one kicks it off, the other finds the job recorded; the worker holding
/// the export's file is killed with SIGKILL mid-file, and the other takes
/// the file over at its saved line cursor after the lease. Every report is
/// enriched exactly once, the job is deleted and the sync checkpoint is the
/// export's transactionTime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_an_export_and_take_over_a_killed_workers_file() {
    let reports = 100;
    let server = Sekmet::start();
    let fhir = server.fhir();
    let db = TestDb::create("fleetexport").await;
    let since = OffsetDateTime::now_utc() - time::Duration::MINUTE;
    let (subject, ids) = crate::common::seed_reports(&fhir, "fleet-export", reports).await;
    let until = OffsetDateTime::now_utc() + time::Duration::MINUTE;
    // At most 50 requests/s, so that the kill lands mid-file on any machine.
    let site = Site::with_fhir(
        &server.base,
        &subject,
        5,
        "max_concurrent_requests = 2\nmax_retries = 2\nretry_base_ms = 50\nrequests_per_second = 50",
    );
    let mut workers: Vec<Worker> = (0..2)
        .map(|i| Worker::start_with(&site, &db.url, (since, until), "2s", i, &["--from-export"]))
        .collect();
    // Kill the worker that holds the file once reports are being written.
    let mut victim = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while victim.is_none() && Instant::now() < deadline {
        if count_tagged(&fhir, &subject).await >= 10 {
            for (index, worker) in workers.iter().enumerate() {
                if windows_held_by(&db, worker.child.id()).await > 0 {
                    victim = Some(index);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut victim = workers.remove(victim.expect("a worker held the export's file"));
    victim.child.kill().expect("kill -9");
    let _ = victim.child.wait();
    let tagged_at_kill = count_tagged(&fhir, &subject).await;
    let survivor = workers.remove(0);
    let (code, log) = survivor.finish(Duration::from_secs(240)).await;
    assert_eq!(code, Some(0), "{log}");
    let victim_log = std::fs::read_to_string(&victim.log).unwrap();

    assert_eq!(
        count_tagged(&fhir, &subject).await,
        reports as u64,
        "every report enriched ({tagged_at_kill} at the kill)\nvictim:\n{victim_log}\nsurvivor:\n{log}"
    );
    one_set_per_report(&fhir, &subject, &ids).await;
    assert_eq!(
        fhir.count("Provenance").await,
        reports as u64,
        "one Provenance per report: no report was enriched twice ({tagged_at_kill} at the kill)"
    );
    let kick_offs = [&log, &victim_log]
        .iter()
        .map(|l| l.matches("$export kicked off").count())
        .sum::<usize>();
    assert_eq!(kick_offs, 1, "one kick-off:\n{victim_log}\n{log}");
    let client = db.client().await;
    let export = client
        .query_one(
            "SELECT status, transaction_time, finished FROM reportsplit_export",
            &[],
        )
        .await
        .unwrap();
    let (status, transaction_time, finished): (String, String, bool) =
        (export.get(0), export.get(1), export.get(2));
    assert!(finished);
    let file = client
        .query_one(
            "SELECT done, takeovers, reached, owner FROM reportsplit_window WHERE field LIKE '$export@%'",
            &[],
        )
        .await
        .unwrap();
    let (done, takeovers, reached, owner): (bool, i32, Option<String>, Option<String>) =
        (file.get(0), file.get(1), file.get(2), file.get(3));
    assert!(done && owner.is_none(), "{reached:?} {owner:?}");
    // One takeover, or two when a loaded machine let the first holder's
    // lease lapse before the kill (the killed worker had taken it over).
    assert!(
        (1..=2).contains(&takeovers),
        "the survivor took the file over: {takeovers}"
    );
    assert_eq!(
        reached.as_deref(),
        Some(reports.to_string().as_str()),
        "lines done"
    );
    assert!(
        log.contains("taking over a window whose lease expired"),
        "{log}"
    );
    let checkpoint: Option<String> = client
        .query_one("SELECT checkpoint FROM reportsplit_stream", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(checkpoint.as_deref(), Some(transaction_time.as_str()));
    let deleted = fhir
        .request(reqwest::Method::GET, &status, None, None)
        .await;
    assert_eq!(deleted.status, 404, "the job was deleted");
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
    let mut lines = vec![format!(
        "load average at the start of the runs: {}",
        load_average()
    )];
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
    lines.push(format!("load average at the end: {}", load_average()));
    for line in lines {
        println!("{line}");
    }
}
