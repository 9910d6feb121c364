//! The proofs of issue 11 that need a server (docs/guarantees.md): faults
//! injected by a proxy in front of the real SEKMET, `kill -9` at random
//! moments of `sync` and `backfill`, and a scan of every mode's output for
//! report text, patient references and secrets. Random choices come from
//! seeded generators (the seed is printed); the order in which concurrent
//! requests meet them is up to the scheduler.
//!
//! Sizes are for the suite; the long runs (`scripts/long-faults.sh`,
//! `scripts/long-kills.sh`) raise them through environment variables.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::proxy::{self, Action, Counts, Seen};
use common::{Sekmet, Site, count_tagged, one_set_per_report, seed, stderr};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;

/// A size from the environment (the long-run scripts), or the suite's default.
fn size(variable: &str, default: u64) -> u64 {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

// --- Faults: 20 % of requests fail, the worst after the server committed ---

/// One injected fault per kind, each on 4 % of requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Status500,
    Status503,
    TooManyRequests,
    DropBeforeForwarding,
    DropTheReply,
}

const FAULTS: [Fault; 5] = [
    Fault::Status500,
    Fault::Status503,
    Fault::TooManyRequests,
    Fault::DropBeforeForwarding,
    Fault::DropTheReply,
];

/// The figures one `sync --once` prints in its summary (`Tally`'s Display).
#[derive(Debug, Default, Clone, Copy)]
struct PassFigures {
    seen: u64,
    written: u64,
    failed: u64,
    observations_written: u64,
}

/// Reads the summary line of a run's stderr: `S reports seen, W written,
/// ..., F failed...; O Observations written, ...`.
fn pass_figures(log: &str) -> Option<PassFigures> {
    let line = log.lines().rev().find(|l| l.contains(" reports seen, "))?;
    let before = |marker: &str| -> Option<u64> {
        let end = line.find(marker)?;
        line[..end]
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some(PassFigures {
        seen: before(" reports seen")?,
        written: before(" written,")?,
        failed: before(" failed")?,
        observations_written: before(" Observations written")?,
    })
}

/// For a reply the proxy dropped after the server committed a transaction
/// (one report's): the Observations it created, from the server's
/// transaction-response. `None` for any other dropped reply.
fn committed_observations(lost: &proxy::LostReply) -> Option<u64> {
    let is_transaction = lost.method == reqwest::Method::POST
        && lost
            .path
            .split('?')
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            == "/fhir"
        && lost.status == 200
        && lost.body["type"] == "transaction-response";
    is_transaction.then(|| {
        lost.body["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|entry| {
                entry["response"]["status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("201"))
                    && entry["response"]["location"]
                        .as_str()
                        .is_some_and(|l| l.contains("Observation/"))
            })
            .count() as u64
    })
}

/// 200 reports (`REPORTSPLIT_FAULT_REPORTS` in the long run) synced by
/// `sync --once` through a proxy that fails 20 % of all requests: 500, 503,
/// 429 with Retry-After, a connection dropped before forwarding, and a
/// request forwarded (the server commits) whose reply is dropped. Passes
/// repeat until one ends cleanly (bounded). Then every report is enriched
/// exactly once, and the passes' summaries add up to the server's state:
/// reports written plus transactions committed behind a lost reply equal the
/// reports tagged, and likewise for the Observations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_leave_every_report_enriched_exactly_once() {
    const SEED: u64 = 0x11_fa17;
    const MAX_PASSES: usize = 10;
    let reports = size("REPORTSPLIT_FAULT_REPORTS", 200) as usize;
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "faults", reports).await;

    let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(SEED)));
    let injected = Arc::new(Mutex::new([0u64; FAULTS.len()]));
    let policy = {
        let injected = injected.clone();
        move |_: &Seen<'_>| {
            let roll = rng.lock().unwrap().random_range(0..100usize);
            let Some(&fault) = FAULTS.get(roll / 4) else {
                return Action::Forward;
            };
            injected.lock().unwrap()[roll / 4] += 1;
            match fault {
                Fault::Status500 => Action::Answer {
                    status: 500,
                    headers: vec![],
                },
                Fault::Status503 => Action::Answer {
                    status: 503,
                    headers: vec![],
                },
                Fault::TooManyRequests => Action::Answer {
                    status: 429,
                    headers: vec![("retry-after", "1".to_owned())],
                },
                Fault::DropBeforeForwarding => Action::DropBeforeForwarding,
                Fault::DropTheReply => Action::DropTheReply,
            }
        }
    };
    let proxy = proxy::start(&server.base, Arc::new(policy)).await;
    // The default retry budget (5 retries), short waits; 4 requests in flight.
    let site = Site::with_fhir(
        &proxy.base,
        &subject,
        50,
        "retry_base_ms = 20\nretry_max_ms = 500\nmax_concurrent_requests = 4",
    );

    let started = Instant::now();
    let mut passes = Vec::new();
    let mut exits = Vec::new();
    let mut total = PassFigures::default();
    loop {
        assert!(
            passes.len() < MAX_PASSES,
            "not done after {MAX_PASSES} passes; exits {exits:?}"
        );
        let provenances_before = fhir.count("Provenance").await;
        let output = tokio::task::spawn_blocking({
            let mut command = site.sync_once();
            move || command.output().expect("run sync --once")
        })
        .await
        .unwrap();
        let log = stderr(&output);
        let code = output.status.code();
        exits.push(code);
        assert!(
            matches!(code, Some(0 | 3 | 4)),
            "a pass ends done, partial or with the server unreachable, never otherwise: {code:?}\n{log}"
        );
        // A pass whose searches ran out of retries ends before any write,
        // without a summary: it must then have written nothing.
        let figures = match pass_figures(&log) {
            Some(figures) => figures,
            None => {
                assert_eq!(
                    fhir.count("Provenance").await,
                    provenances_before,
                    "pass {} wrote without a summary:\n{log}",
                    passes.len() + 1
                );
                PassFigures::default()
            }
        };
        total.seen += figures.seen;
        total.written += figures.written;
        total.failed += figures.failed;
        total.observations_written += figures.observations_written;
        passes.push(figures);
        if code == Some(0) && figures.failed == 0 {
            break;
        }
    }
    let elapsed = started.elapsed();

    // Exactly once.
    assert_eq!(count_tagged(&fhir, &subject).await, reports as u64);
    let observations = one_set_per_report(&fhir, &subject, &ids).await as u64;
    assert_eq!(
        fhir.count("Provenance").await,
        reports as u64,
        "one Provenance per report: no transaction was applied twice"
    );

    // The summaries add up to the server's state.
    let lost = proxy.counts.lost_replies.lock().unwrap().clone();
    let committed: Vec<u64> = lost.iter().filter_map(committed_observations).collect();
    assert_eq!(
        total.written + committed.len() as u64,
        reports as u64,
        "reports written by the passes ({}) plus transactions committed behind a lost reply ({})",
        total.written,
        committed.len()
    );
    assert_eq!(
        total.observations_written + committed.iter().sum::<u64>(),
        observations,
        "Observations the passes wrote plus those committed behind a lost reply"
    );

    // Every kind of fault happened, the worst one on committed writes too.
    let injected = *injected.lock().unwrap();
    for (fault, count) in FAULTS.iter().zip(injected) {
        assert!(count > 0, "no {fault:?} was injected");
    }
    assert!(
        !committed.is_empty(),
        "no committed transaction lost its reply"
    );
    let requests = Counts::get(&proxy.counts.requests);
    let faults: u64 = injected.iter().sum();
    // The figures of docs/guarantees.md (`--nocapture`).
    eprintln!(
        "faults (seed {SEED:#x}): {reports} reports, {} passes (exits {exits:?}), {requests} requests, \
         {faults} faults injected ({:.1} %: {:?} = {injected:?}), {} replies dropped after forwarding \
         of which {} committed transactions; {} written + {} behind lost replies; \
         {observations} Observations; {:.1} s",
        passes.len(),
        100.0 * faults as f64 / requests.max(1) as f64,
        FAULTS,
        lost.len(),
        committed.len(),
        total.written,
        committed.len(),
        elapsed.as_secs_f64()
    );
}

// --- kill -9 at random moments ---

/// How one kill round ended.
#[derive(Debug, Default)]
struct KillRounds {
    /// Killed before the round's first write (starting, reading the range).
    before_writing: u64,
    /// Killed while writing (some reports of the round were enriched).
    while_writing: u64,
    /// The run ended before the kill.
    finished: u64,
}

impl KillRounds {
    fn killed(&self) -> u64 {
        self.before_writing + self.while_writing
    }
}

/// Kills `child` with SIGKILL at a random moment (seeded): half the rounds
/// at 50–1500 ms from its start, which on this machine is mostly before its
/// first write, the other half 0–400 ms after its first write (once more
/// reports of `subject` are enriched than `before`). Records how it went.
async fn kill_at_a_random_moment(
    child: &mut std::process::Child,
    rng: &mut StdRng,
    fhir: &common::Fhir,
    subject: &str,
    rounds: &mut KillRounds,
) {
    let before = count_tagged(fhir, subject).await;
    if rng.random_bool(0.5) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..1500))).await;
    } else {
        // Bounded: 20 s for the first write.
        for _ in 0..800 {
            if child.try_wait().unwrap().is_some() || count_tagged(fhir, subject).await > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
    }
    if let Some(status) = child.try_wait().expect("the child's status") {
        assert!(status.success() || status.code() == Some(3), "{status}");
        rounds.finished += 1;
        return;
    }
    child.kill().expect("kill -9");
    let status = child.wait().unwrap();
    // The run may have ended on its own between the check above and the
    // kill (a SIGKILL to an exited child does nothing): then it finished.
    if std::os::unix::process::ExitStatusExt::signal(&status).is_none() {
        assert!(status.success() || status.code() == Some(3), "{status}");
        rounds.finished += 1;
        return;
    }
    if count_tagged(fhir, subject).await > before {
        rounds.while_writing += 1;
    } else {
        rounds.before_writing += 1;
    }
}

/// `sync --once` killed with SIGKILL at random moments (seeded), at least
/// 10 times (`REPORTSPLIT_KILL_ROUNDS`), with new reports arriving before
/// each round so that every round has work in flight. A clean pass after
/// the last kill ends with every report enriched exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_killed_at_random_moments_loses_and_duplicates_nothing() {
    const SEED: u64 = 0x5_9ac;
    let rounds = size("REPORTSPLIT_KILL_ROUNDS", 10);
    let server = Sekmet::start();
    let fhir = server.fhir();
    let patient = seed::unique("killsync");
    fhir.put(&seed::patient(&patient)).await;
    let subject = format!("Patient/{patient}");
    let site = Site::with_fhir(
        &server.base,
        &subject,
        4,
        "max_concurrent_requests = 2\nmax_retries = 1\nretry_base_ms = 50",
    );
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut ids = Vec::new();
    let mut kills = KillRounds::default();
    let started = Instant::now();
    while kills.killed() < rounds {
        assert!(
            kills.finished < 2 * rounds,
            "too few kills landed: {kills:?}"
        );
        let batch: Vec<Value> = (ids.len()..ids.len() + 10)
            .map(|i| seed::report(&format!("{patient}-{i}"), i, &patient, false))
            .collect();
        ids.extend(batch.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        fhir.put_all(&batch).await;
        let mut child = site
            .sync_once()
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start sync --once");
        kill_at_a_random_moment(&mut child, &mut rng, &fhir, &subject, &mut kills).await;
    }
    assert!(
        kills.while_writing > 0,
        "no kill landed while writing: {kills:?}"
    );
    let tagged_before_clean_run = count_tagged(&fhir, &subject).await;
    let output = site.sync_once().output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(count_tagged(&fhir, &subject).await, ids.len() as u64);
    one_set_per_report(&fhir, &subject, &ids).await;
    assert_eq!(
        fhir.count("Provenance").await,
        ids.len() as u64,
        "one Provenance per report: no transaction was applied twice"
    );
    eprintln!(
        "sync kill -9 (seed {SEED:#x}): {kills:?}; \
         {tagged_before_clean_run} of {} reports enriched before the clean run; {:.1} s",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
}

/// `backfill` of one range killed with SIGKILL at random moments (seeded),
/// at least 10 times, each run resuming from what the previous one saved;
/// then a clean run finishes the range: every report enriched exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_killed_at_random_moments_loses_and_duplicates_nothing() {
    const SEED: u64 = 0xbac_f111;
    let rounds = size("REPORTSPLIT_KILL_ROUNDS", 10);
    let reports = size("REPORTSPLIT_KILL_BACKFILL_REPORTS", 400) as usize;
    let server = Sekmet::start();
    let fhir = server.fhir();
    // One PUT per report: distinct `lastUpdated` instants, so a resumed
    // backfill re-reads only the reports sharing its resume instant.
    let patient = seed::unique("killbackfill");
    fhir.put(&seed::patient(&patient)).await;
    let mut ids = Vec::new();
    for i in 0..reports {
        let report = seed::report(&format!("{patient}-{i}"), i, &patient, false);
        ids.push(fhir.put(&report).await["id"].as_str().unwrap().to_owned());
    }
    let subject = format!("Patient/{patient}");
    let site = Site::with_fhir(
        &server.base,
        &subject,
        4,
        "max_concurrent_requests = 2\nmax_retries = 1\nretry_base_ms = 50",
    );
    // Ends now: what the runs write moves out of the range.
    let until = time::OffsetDateTime::now_utc();
    let since = until - time::Duration::hours(1);
    let dead_letter = site.state_dir.with_file_name("dead.ndjson");
    let backfill = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_reportsplit"));
        command
            .args(["backfill", "--config"])
            .arg(&site.config_path)
            .args(["--since", &reportsplit::pull::rfc3339(since)])
            .args(["--until", &reportsplit::pull::rfc3339(until)])
            .args(["--window", "10m", "--concurrency", "2", "--dead-letter"])
            .arg(&dead_letter);
        command
    };
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut kills = KillRounds::default();
    let mut tagged_at_kills = Vec::new();
    let started = Instant::now();
    while kills.killed() < rounds {
        assert!(
            kills.finished == 0,
            "the backfill finished before {rounds} kills: {kills:?}"
        );
        let mut child = backfill()
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start reportsplit backfill");
        kill_at_a_random_moment(&mut child, &mut rng, &fhir, &subject, &mut kills).await;
        tagged_at_kills.push(count_tagged(&fhir, &subject).await);
    }
    assert!(
        kills.while_writing > 0,
        "no kill landed while writing: {kills:?}"
    );
    let output = backfill().output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(count_tagged(&fhir, &subject).await, reports as u64);
    one_set_per_report(&fhir, &subject, &ids).await;
    assert_eq!(
        fhir.count("Provenance").await,
        reports as u64,
        "one Provenance per report: no transaction was applied twice"
    );
    eprintln!(
        "backfill kill -9 (seed {SEED:#x}): {kills:?}; \
         reports enriched after each round {tagged_at_kills:?} of {reports}; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_summary_line_is_read_whole() {
    let log = "INFO something\n12 reports seen, 9 written, 1 already current, 0 skipped, 2 failed (http-503: 2); \
               40 Observations written, 0 superseded, 0 conflicts\n1 windows, 0 duplicates; 30 requests, 4 retries; 1.0 s (12.0 reports/s)\n";
    let figures = pass_figures(log).unwrap();
    assert_eq!(
        (
            figures.seen,
            figures.written,
            figures.failed,
            figures.observations_written
        ),
        (12, 9, 2, 40)
    );
    assert!(pass_figures("reportsplit: the server is unreachable").is_none());
}

// --- Log scan: no report text, patient reference or secret in any output ---

/// Words that appear only in the canary reports' text (attachment,
/// narrative and conclusion), the secrets of the run, and the patient.
struct Canaries {
    patient_id: String,
    /// Report ids: logs name reports by id, so these are not canaries.
    report_prefix: String,
    forbidden: Vec<String>,
}

impl Canaries {
    fn new() -> Canaries {
        let patient_id = seed::unique("canarypt");
        Canaries {
            forbidden: vec![
                "quokkastone".into(),
                "zanzibarite".into(),
                "wombatoma".into(),
                // Any patient reference, and this patient's id on its own.
                "Patient/".into(),
                patient_id.clone(),
                "canaryuser".into(),
                "pw-canary-7f3".into(),
                "tok-canary-91c".into(),
                "tok-canary-wrong".into(),
                "sec-canary-55d".into(),
            ],
            patient_id,
            report_prefix: seed::unique("canaryreport"),
        }
    }

    /// A report whose every text element carries canary words.
    fn report(&self, index: usize) -> Value {
        use base64::Engine as _;
        let text = format!(
            "FINDINGS:\nA {index} mm quokkastone in the left kidney. The liver is normal.\n\
             IMPRESSION:\n1. Left renal quokkastone, zanzibarite pattern.\n2. No hydronephrosis.\n"
        );
        let mut report = seed::report(
            &format!("{}-{index}", self.report_prefix),
            index,
            &self.patient_id,
            false,
        );
        let object = report.as_object_mut().unwrap();
        object.insert(
            "presentedForm".into(),
            serde_json::json!([{"contentType": "text/plain",
                "data": base64::engine::general_purpose::STANDARD.encode(&text)}]),
        );
        object.insert(
            "conclusion".into(),
            Value::from("Wombatoma of the left kidney, zanzibarite pattern."),
        );
        object.insert(
            "text".into(),
            serde_json::json!({"status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Quokkastone seen.</p></div>"}),
        );
        report
    }

    /// Lines of `output` that hold a canary, named by where they came from.
    fn scan(&self, from: &str, output: &[u8], scanned: &mut ScanTally) {
        let text = String::from_utf8_lossy(output);
        for line in text.lines() {
            scanned.lines += 1;
            // A logged path names the resource type with its id masked
            // ("fhir/Patient/{id}", the client's `loggable_path`): that is
            // no patient reference.
            let lower = line.to_lowercase().replace("patient/{id}", "patient:{id}");
            for canary in &self.forbidden {
                if lower.contains(&canary.to_lowercase()) {
                    scanned.hits.push(format!("{from}: {canary:?} in {line:?}"));
                }
            }
        }
        scanned.outputs += 1;
    }
}

#[derive(Default)]
struct ScanTally {
    outputs: u64,
    lines: u64,
    hits: Vec<String>,
}

/// Every mode, run as the binary at the default log level and at
/// `REPORTSPLIT_LOG=debug` (every crate), on reports whose text, patient and
/// credentials are canaries, with the failures that make it talk: injected
/// server faults, a report the mapping refuses (dead-lettered, then
/// reprocessed), `serve` with wrong tokens and a broken body, `extract` with
/// bad records, `check-config --print-config`. Their stderr (and stdout,
/// except `extract`'s, which is its output) and the dead-letter file hold no
/// canary.
///
/// A dedicated test rather than a filter under every other test: the other
/// tests use ordinary seed text, so a scan there could not tell report text
/// from a log line that happens to name a finding, while canary words occur
/// nowhere but in the report, and this test makes every mode take its error
/// paths on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_of_any_mode_holds_report_text_patients_or_secrets() {
    let mut scanned = ScanTally::default();
    let mut lines_per_level = Vec::new();
    for level in ["info", "debug"] {
        let before = scanned.lines;
        run_every_mode_with_canaries(level, &mut scanned).await;
        lines_per_level.push((level, scanned.lines - before));
    }
    eprintln!(
        "log scan: {} outputs, {} lines scanned {lines_per_level:?}, {} hits",
        scanned.outputs,
        scanned.lines,
        scanned.hits.len()
    );
    assert!(
        lines_per_level[1].1 > lines_per_level[0].1,
        "debug logs more than info: {lines_per_level:?}"
    );
    assert!(
        scanned.hits.is_empty(),
        "report text, a patient or a secret in the output:\n{}",
        scanned.hits.join("\n")
    );
}

async fn run_every_mode_with_canaries(level: &str, scanned: &mut ScanTally) {
    let canaries = Canaries::new();
    let server = Sekmet::start();
    let fhir = server.fhir();
    let mut reports: Vec<Value> = (0..6).map(|i| canaries.report(i)).collect();
    // Refused by the mapping (a status it cannot mirror): a failure, dead-lettered.
    reports[4]["status"] = Value::from("provisional");
    let mut resources = vec![seed::patient(&canaries.patient_id)];
    resources.extend(reports.iter().cloned());
    fhir.put_all(&resources).await;

    // Faults on 10 % of requests, so that retries and errors are logged.
    let rng = Mutex::new(StdRng::seed_from_u64(0x10_65ca));
    let policy = move |_: &Seen<'_>| match rng.lock().unwrap().random_range(0..30u32) {
        0 => Action::Answer {
            status: 503,
            headers: vec![],
        },
        1 => Action::DropBeforeForwarding,
        2 => Action::DropTheReply,
        _ => Action::Forward,
    };
    let proxy = proxy::start(&server.base, Arc::new(policy)).await;
    let with_credentials = proxy
        .base
        .replacen("http://", "http://canaryuser:pw-canary-7f3@", 1);
    let site = Site::with_tables(
        &with_credentials,
        "max_retries = 4\nretry_base_ms = 20",
        "status = []\npage_size = 2",
    );
    let binary = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_reportsplit"));
        command.env("REPORTSPLIT_LOG", level);
        command
    };
    let mut scan = |from: &str, output: &std::process::Output, stdout_too: bool| {
        canaries.scan(&format!("{from} ({level}) stderr"), &output.stderr, scanned);
        if stdout_too {
            canaries.scan(&format!("{from} ({level}) stdout"), &output.stdout, scanned);
        }
    };

    let output = binary()
        .args(["check-config", "--print-config", "--config"])
        .arg(&site.config_path)
        .output()
        .unwrap();
    scan("check-config", &output, true);

    // sync: twice, the second pass reading what the first wrote.
    for _ in 0..2 {
        let output = binary()
            .args(["sync", "--once", "--config"])
            .arg(&site.config_path)
            .output()
            .unwrap();
        assert!(
            matches!(output.status.code(), Some(0 | 3)),
            "{}",
            stderr(&output)
        );
        scan("sync --once", &output, true);
    }

    // backfill of a fresh state, with the refused report dead-lettered; then reprocess.
    let backfill_site = Site::with_tables(
        &with_credentials,
        "max_retries = 4\nretry_base_ms = 20",
        "status = []\npage_size = 2",
    );
    let dead_letter = backfill_site.state_dir.with_file_name("dead.ndjson");
    let output = binary()
        .args(["backfill", "--config"])
        .arg(&backfill_site.config_path)
        .args([
            "--since",
            "2026-03-01T00:00:00Z",
            "--until",
            "2026-04-01T00:00:00Z",
        ])
        .args(["--by", "date", "--window", "31d", "--dead-letter"])
        .arg(&dead_letter)
        .output()
        .unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 3)),
        "{}",
        stderr(&output)
    );
    scan("backfill", &output, true);
    let letters = std::fs::read(&dead_letter).expect("a dead-letter file");
    assert!(!letters.is_empty(), "the refused report was dead-lettered");
    scan(
        "the dead-letter file",
        &std::process::Output {
            status: output.status,
            stdout: Vec::new(),
            stderr: letters,
        },
        false,
    );
    let output = binary()
        .args(["reprocess", "--config"])
        .arg(&backfill_site.config_path)
        .arg("--dead-letter")
        .arg(&dead_letter)
        .output()
        .unwrap();
    scan("reprocess", &output, true);

    // serve, with a token and a notification secret.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = binary()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--config",
        ])
        .arg(&site.config_path)
        .args(["--health-interval-secs", "1", "--drain-secs", "5"])
        .env("REPORTSPLIT_SERVE_TOKEN", "tok-canary-91c")
        .env("REPORTSPLIT_NOTIFY_SECRET", "sec-canary-55d")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start serve");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{url}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "serve did not come up");
    let post = |path: &str, token: &str, body: Vec<u8>| {
        http.post(format!("{url}{path}"))
            .bearer_auth(token)
            .header("content-type", "application/fhir+json")
            .header("x-reportsplit-notify-secret", "sec-canary-55d")
            .body(body)
            .send()
    };
    // As the server holds them (with meta.versionId).
    let stored = |index: usize| {
        let fhir = fhir.clone();
        let path = format!("DiagnosticReport/{}-{index}", canaries.report_prefix);
        async move { serde_json::to_vec(&fhir.get(&path).await).unwrap() }
    };
    let report = stored(1).await;
    let refused = stored(4).await;
    let (mut statuses, mut answers) = (Vec::new(), Vec::new());
    for (path, token, body) in [
        (
            "/DiagnosticReport/$enrich",
            "tok-canary-91c",
            report.clone(),
        ),
        (
            "/DiagnosticReport/$enrich?apply=true",
            "tok-canary-91c",
            report.clone(),
        ),
        (
            "/DiagnosticReport/$enrich",
            "tok-canary-wrong",
            report.clone(),
        ),
        ("/DiagnosticReport/$enrich", "tok-canary-91c", refused),
        (
            "/DiagnosticReport/$enrich",
            "tok-canary-91c",
            b"{\"resourceType\": \"DiagnosticReport\", \"conclusion\": \"quokkastone".to_vec(),
        ),
    ] {
        let response = post(path, token, body).await.expect("serve answers");
        statuses.push(response.status().as_u16());
        answers.push(response.text().await.unwrap_or_default());
    }
    let notification = serde_json::json!({"resourceType": "Bundle", "type": "history",
        "timestamp": "2026-03-01T10:00:00Z", "entry": [
        {"fullUrl": "urn:uuid:5e0b6f2c-8d7a-4d43-9a8e-2f1b1c0d9e01", "resource": {"resourceType": "Parameters",
            "parameter": [
                {"name": "type", "valueCode": "event-notification"},
                {"name": "notification-event", "part": [{"name": "event-number", "valueString": "1"},
                    {"name": "focus", "valueReference": {"reference": format!("DiagnosticReport/{}-3", canaries.report_prefix)}}]}]}}]});
    for secret in ["sec-canary-55d", "tok-canary-wrong"] {
        let response = http
            .post(format!("{url}/notify"))
            .header("content-type", "application/fhir+json")
            .header("x-reportsplit-notify-secret", secret)
            .body(notification.to_string())
            .send()
            .await
            .expect("serve answers");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[0], 200, "serve answered {statuses:?}: {answers:?}");
    assert!(
        statuses.contains(&401),
        "a wrong token is refused: {statuses:?}"
    );
    // Let the notified report be worked on, then stop it as systemd does.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    scan("serve", &output, true);

    // extract: a good record, a broken line and a foreign resource; stderr only.
    let dir = common::temp_state();
    let input = dir.path().join("input.ndjson");
    let patient = serde_json::json!({"resourceType": "Patient", "id": canaries.patient_id,
        "name": [{"family": "Quokkastone"}]});
    let mut lines = format!(
        "{}\n{{\"resourceType\": \"DiagnosticReport\", \"conclusion\": \"zanzibarite\n{patient}\n",
        reports[0]
    )
    .into_bytes();
    // Not UTF-8.
    lines.extend_from_slice(b"\xff quokkastone\n");
    std::fs::write(&input, lines).unwrap();
    for fhir_output in [false, true] {
        let mut command = binary();
        command.args(["extract", "--input", "ndjson"]).arg(&input);
        if fhir_output {
            command.arg("--fhir");
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        scan("extract", &output, false);
    }
    drop(proxy);
}
