//! `reportsplit backfill` and `reportsplit reprocess` against a real SEKMET
//! (strict inbound validation): windows, resume after a kill, dead letters.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use common::{Fhir, Sekmet, seed};
use reportsplit::mode::backfill::{self, BackfillPlan, BackfillSummary, ProgressMode, WindowField};
use reportsplit::run::Ending;
use reportsplit_fhir::plan::TAG_SYSTEM;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;
use tokio_util::sync::CancellationToken;

/// March 2026: the seed reports' clinical dates (`effectiveDateTime` 2026-03-01..28).
const MARCH: (OffsetDateTime, OffsetDateTime) = (
    datetime!(2026-03-01 0:00 UTC),
    datetime!(2026-04-01 0:00 UTC),
);

/// Seeds a patient and `n` reports; returns (subject reference, report ids).
fn plan(
    by: WindowField,
    range: (OffsetDateTime, OffsetDateTime),
    window: Duration,
    concurrency: usize,
    dead_letter: &Path,
) -> BackfillPlan {
    BackfillPlan {
        since: range.0,
        until: range.1,
        window,
        by,
        concurrency,
        dead_letter: dead_letter.to_path_buf(),
        progress: ProgressMode::Log(Duration::from_secs(3600)),
        metrics: None,
        lease: Duration::from_secs(30),
        from_export: false,
    }
}

async fn backfill(config: &reportsplit::config::Config, plan: BackfillPlan) -> BackfillSummary {
    tokio::time::timeout(
        Duration::from_secs(300),
        backfill::run_with(config.clone(), plan, CancellationToken::new()),
    )
    .await
    .expect("the backfill finishes within 5 minutes")
    .expect("backfill")
}

/// Every report is tagged, and the Observations of the subject carry each
/// identifier once (nothing duplicated).
async fn assert_enriched_once(fhir: &Fhir, subject: &str, ids: &[String]) {
    for id in ids {
        let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
        let tagged = report["meta"]["tag"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| t["system"] == TAG_SYSTEM);
        assert!(tagged, "{id} was not enriched");
    }
    let observations = fhir
        .search_all(&format!("Observation?subject={subject}&_count=500"))
        .await;
    assert!(!observations.is_empty());
    let mut by_identifier: HashMap<String, u32> = HashMap::new();
    for observation in &observations {
        let identifier = observation["identifier"][0]["value"]
            .as_str()
            .expect("every Observation has an identifier")
            .to_string();
        *by_identifier.entry(identifier).or_default() += 1;
    }
    let duplicated: Vec<_> = by_identifier.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicated.is_empty(),
        "duplicated Observations: {duplicated:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_by_clinical_date_covers_every_window_once() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "bydate", 40).await;
    let state = common::temp_state();
    // Pages of 3: several pages per weekly window.
    let config = common::config(&server.base, state.path(), Some(&subject), 3);
    let dead = state.path().join("dead.ndjson");
    let week = Duration::from_secs(7 * 86_400);

    let metrics = reportsplit::metrics::Metrics::new();
    let counted = BackfillPlan {
        metrics: Some(metrics.clone()),
        ..plan(WindowField::Date, MARCH, week, 4, &dead)
    };
    let summary = backfill(&config, counted).await;
    let exported = metrics.encode();
    let written = exported
        .lines()
        .find(|line| line.contains("outcome=\"written\"") && !line.starts_with('#'))
        .unwrap_or_else(|| panic!("no written counter in:\n{exported}"));
    assert!(written.ends_with(" 40"), "{written}");
    // The seed dates are 1-28 March: the last week (29-31) holds none and is not searched.
    assert_eq!(summary.windows, 5, "{summary}");
    assert_eq!(summary.windows_empty, 1, "{summary}");
    assert_eq!(summary.windows_done, 4, "{summary}");
    assert_eq!(summary.tally.seen, 40, "{summary}");
    assert_eq!(summary.tally.written, 40, "{summary}");
    assert_eq!(summary.tally.failed_total(), 0, "{summary}");
    assert!(summary.tally.observations_written >= 40, "{summary}");
    assert_eq!(summary.ending(), Ending::Complete);
    assert_enriched_once(&fhir, &subject, &ids).await;

    // Finished windows are not read again.
    let again = backfill(&config, plan(WindowField::Date, MARCH, week, 4, &dead)).await;
    assert_eq!(again.windows_already_done, 4, "{again}");
    assert_eq!(again.tally.seen, 0, "{again}");
    // Start-up requests only (metadata, Device, the count, the first and last
    // report): no window is searched again.
    assert!(again.requests <= 6, "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_by_last_updated_pages_by_keyset_across_windows() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let patient = seed::unique("bylu");
    fhir.put_all(&[seed::patient(&patient)]).await;
    let from = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    // Three batches a little over a second apart: several one-second windows.
    let mut ids = Vec::new();
    for batch in 0..3 {
        let reports: Vec<Value> = (0..12)
            .map(|i| {
                let n = batch * 12 + i;
                seed::report(&format!("{patient}-{n}"), n, &patient, false)
            })
            .collect();
        ids.extend(
            reports
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        fhir.put_all(&reports).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let subject = format!("Patient/{patient}");
    let state = common::temp_state();
    // Pages of 4: our writes move reports out of the window between pages,
    // which offset paging would turn into lost reports.
    let config = common::config(&server.base, state.path(), Some(&subject), 4);
    let range = (from, OffsetDateTime::now_utc());
    let dead = state.path().join("dead.ndjson");

    let summary = backfill(
        &config,
        plan(
            WindowField::LastUpdated,
            range,
            Duration::from_secs(1),
            3,
            &dead,
        ),
    )
    .await;
    assert!(summary.windows >= 3, "{summary}");
    assert_eq!(summary.tally.written, 36, "{summary}");
    assert_eq!(summary.tally.seen, 36, "{summary}");
    assert_eq!(summary.tally.failed_total(), 0, "{summary}");
    assert_enriched_once(&fhir, &subject, &ids).await;
}

/// How a running backfill is interrupted.
#[derive(Debug, Clone, Copy)]
enum Interrupt {
    /// The real binary, killed with SIGKILL (needs `backfill` wired in main.rs).
    KillTheBinary,
    /// The library call in a task, aborted (no cleanup runs either).
    AbortTheTask,
    /// Its shutdown token cancelled, as SIGTERM does: reports in flight
    /// finish, progress is saved, the run ends "interrupted" (exit 7).
    Stop,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_backfill_resumes_without_losing_or_duplicating() {
    interrupted_backfill_resumes(Interrupt::KillTheBinary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_backfill_resumes_without_losing_or_duplicating() {
    interrupted_backfill_resumes(Interrupt::AbortTheTask).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_backfill_saves_its_progress_and_resumes() {
    interrupted_backfill_resumes(Interrupt::Stop).await;
}

async fn interrupted_backfill_resumes(how: Interrupt) {
    const REPORTS: u64 = 60;
    const PAGE: u32 = 5;
    const CONCURRENCY: usize = 2;
    let server = Sekmet::start();
    let fhir = server.fhir();
    // One PUT per report: distinct `lastUpdated` instants. (Reports sharing
    // the resume instant are read again on resume; see src/backfill.rs.)
    let patient = seed::unique("killed");
    fhir.put(&seed::patient(&patient)).await;
    let mut ids = Vec::new();
    for i in 0..REPORTS as usize {
        let report = seed::report(&format!("{patient}-{i}"), i, &patient, false);
        ids.push(fhir.put(&report).await["id"].as_str().unwrap().to_string());
    }
    let subject = format!("Patient/{patient}");
    let dir = common::temp_state();
    let config_path = dir.path().join("site.toml");
    let state_dir = dir.path().join("state");
    std::fs::write(
        &config_path,
        config_text(&server.base, &state_dir, &subject, PAGE),
    )
    .unwrap();
    let config = reportsplit::config::Config::load(&config_path).unwrap();
    let dead = dir.path().join("dead.ndjson");
    // Ends now: the reports the first run writes (moved to a later
    // lastUpdated) are outside the range when the second run starts.
    let until = OffsetDateTime::now_utc();
    let range = (until - time::Duration::hours(1), until);
    let hour = Duration::from_secs(3600);

    let tagged = match how {
        Interrupt::KillTheBinary => {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reportsplit"))
                .args(["backfill", "--config"])
                .arg(&config_path)
                .args(["--since", &reportsplit::pull::rfc3339(range.0)])
                .args(["--until", &reportsplit::pull::rfc3339(range.1)])
                .args(["--window", "1h", "--concurrency", &CONCURRENCY.to_string()])
                .arg("--dead-letter")
                .arg(&dead)
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start reportsplit backfill");
            let tagged = wait_until_some_tagged(&fhir, &subject, || {
                child.try_wait().ok().flatten().is_some()
            })
            .await;
            child.kill().expect("kill -9");
            let status = child.wait().unwrap();
            assert!(
                !status.success(),
                "the backfill was killed, not finished: {status}"
            );
            tagged
        }
        Interrupt::AbortTheTask => {
            let task = tokio::spawn(backfill::run_with(
                config.clone(),
                plan(WindowField::LastUpdated, range, hour, CONCURRENCY, &dead),
                CancellationToken::new(),
            ));
            let tagged = wait_until_some_tagged(&fhir, &subject, || task.is_finished()).await;
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled(), "aborted mid-way");
            tagged
        }
        Interrupt::Stop => {
            let shutdown = CancellationToken::new();
            let task = tokio::spawn(backfill::run_with(
                config.clone(),
                plan(WindowField::LastUpdated, range, hour, CONCURRENCY, &dead),
                shutdown.clone(),
            ));
            let tagged = wait_until_some_tagged(&fhir, &subject, || task.is_finished()).await;
            shutdown.cancel();
            let stopped = tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("a stopped backfill ends quickly")
                .expect("the backfill task")
                .expect("a clean stop");
            assert!(stopped.interrupted, "{stopped}");
            assert_eq!(stopped.ending(), Ending::Interrupted, "{stopped}");
            // Everything it counted as enriched was committed before it returned.
            assert_eq!(count_tagged(&fhir, &subject).await, stopped.tally.written);
            tagged
        }
    };
    // The window's tasks may hold the state lock for a moment after the abort.
    let mut interrupted_tagged = count_tagged(&fhir, &subject).await;
    interrupted_tagged = interrupted_tagged.max(tagged);
    assert!(
        (15..REPORTS).contains(&interrupted_tagged),
        "interrupted mid-way: {interrupted_tagged} tagged"
    );
    let saved = std::fs::read_to_string(state_dir.join("state.json")).expect("progress saved");
    assert!(saved.contains("\"reached\""), "a resume point: {saved}");

    let mut resumed = None;
    for _ in 0..50 {
        match backfill::run_with(
            config.clone(),
            plan(WindowField::LastUpdated, range, hour, CONCURRENCY, &dead),
            CancellationToken::new(),
        )
        .await
        {
            Err(error) if error.to_string().contains("another reportsplit process") => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => {
                resumed = Some(other.expect("resumed backfill"));
                break;
            }
        }
    }
    let resumed = resumed.expect("the state lock is released");
    assert_eq!(resumed.tally.failed_total(), 0, "{resumed}");
    assert_eq!(
        resumed.windows_done + resumed.windows_already_done + resumed.windows_empty,
        resumed.windows,
        "every window finished: {resumed}"
    );
    // It resumed from its saved point, not from the window's start: only the
    // reports after the last saved page (and those sharing its last
    // timestamp) are read again, not all those done before the interruption.
    assert_eq!(
        resumed.tally.seen,
        resumed.tally.written + resumed.tally.current,
        "{resumed}"
    );
    // (A transaction cut off by the interruption may still have committed.)
    assert!(
        resumed.tally.written <= REPORTS - interrupted_tagged,
        "{resumed}"
    );
    assert!(
        resumed.tally.current < interrupted_tagged,
        "re-read everything after resuming ({interrupted_tagged} were done): {resumed}"
    );
    assert_eq!(count_tagged(&fhir, &subject).await, REPORTS);
    assert_enriched_once(&fhir, &subject, &ids).await;
    // One Provenance per report: no transaction was applied twice.
    assert_eq!(fhir.count("Provenance").await, REPORTS);
}

/// Polls until at least 15 reports are tagged (or `finished()`); bounded.
async fn wait_until_some_tagged(
    fhir: &Fhir,
    subject: &str,
    mut finished: impl FnMut() -> bool,
) -> u64 {
    for _ in 0..1200 {
        let tagged = count_tagged(fhir, subject).await;
        if tagged >= 15 || finished() {
            return tagged;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the backfill wrote fewer than 15 reports in 30 s");
}

async fn count_tagged(fhir: &Fhir, subject: &str) -> u64 {
    fhir.count(&format!(
        "DiagnosticReport?subject={subject}&_tag={}|",
        urlencode(TAG_SYSTEM)
    ))
    .await
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn config_text(base: &str, state_dir: &Path, subject: &str, page_size: u32) -> String {
    format!(
        "[fhir]\nurl = \"{base}\"\ntimeout_secs = 30\nmax_concurrent_requests = 4\n\
         [pull]\nsubject = \"{subject}\"\nstatus = []\npage_size = {page_size}\n\
         [state]\ndir = \"{}\"\n",
        state_dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_reports_are_dead_lettered_and_reprocessed_once_fixed() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let patient = seed::unique("poison");
    let mut reports: Vec<Value> = (0..12)
        .map(|i| seed::report(&format!("{patient}-{i}"), i, &patient, false))
        .collect();
    // A status outside the value set: the strict server stores it (it does
    // not check bindings) but reportsplit cannot mirror it onto Observations.
    for poisoned in [3, 7, 8] {
        reports[poisoned]["status"] = Value::from("provisional");
    }
    let mut resources = vec![seed::patient(&patient)];
    resources.extend(reports.iter().cloned());
    fhir.put_all(&resources).await;
    let subject = format!("Patient/{patient}");
    let state = common::temp_state();
    let mut config = common::config(&server.base, state.path(), Some(&subject), 5);
    config.pull.status.clear();
    let dead = state.path().join("letters/dead.ndjson");

    let summary = backfill(
        &config,
        plan(
            WindowField::Date,
            MARCH,
            Duration::from_secs(31 * 86_400),
            4,
            &dead,
        ),
    )
    .await;
    assert_eq!(summary.tally.seen, 12, "{summary}");
    assert_eq!(
        summary.tally.written, 9,
        "the poison blocked nothing: {summary}"
    );
    assert_eq!(summary.tally.failed_total(), 3, "{summary}");
    assert_eq!(summary.ending(), Ending::Partial);
    let letters = read_letters(&dead);
    let named: HashSet<&str> = letters
        .iter()
        .map(|l| l["report"].as_str().unwrap())
        .collect();
    let poisoned: HashSet<String> = [3, 7, 8]
        .iter()
        .map(|i| format!("DiagnosticReport/{patient}-{i}"))
        .collect();
    assert_eq!(named, poisoned.iter().map(String::as_str).collect());
    for letter in &letters {
        assert_eq!(letter["versionId"], "1", "{letter}");
        assert!(
            letter["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{letter}"
        );
        assert!(letter["time"].as_str().is_some(), "{letter}");
    }
    let raw = std::fs::read_to_string(&dead).unwrap();
    for word in ["pneumonia", "nodule", "Cough", "FINDINGS", "IMPRESSION"] {
        assert!(
            !raw.contains(word),
            "report text in the dead-letter file: {raw}"
        );
    }

    // The source fixes two of them; reprocess enriches those, keeps the third.
    for fixed in [3, 8] {
        let mut report = fhir
            .get(&format!("DiagnosticReport/{patient}-{fixed}"))
            .await;
        report["status"] = Value::from("final");
        fhir.put(&report).await;
    }
    // A line that is not an entry is kept as it is; a repeated entry is merged.
    let first_line = raw.lines().next().unwrap().to_string();
    std::fs::write(&dead, format!("{raw}{GARBAGE}\n{first_line}\n")).unwrap();
    let retried = tokio::time::timeout(
        Duration::from_secs(120),
        reportsplit::mode::reprocess::run_with(
            config.clone(),
            &dead,
            &dead,
            CancellationToken::new(),
        ),
    )
    .await
    .expect("reprocess finishes")
    .expect("reprocess");
    assert_eq!(retried.entries, 4, "{retried}");
    assert_eq!(retried.duplicates, 1, "{retried}");
    assert_eq!(retried.unreadable, 1, "{retried}");
    assert_eq!(retried.tally.written, 2, "{retried}");
    assert_eq!(retried.tally.failed_total(), 1, "{retried}");
    assert_eq!(retried.ending(), Ending::Partial);
    let left = read_letters(&dead);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["report"], format!("DiagnosticReport/{patient}-7"));
    for fixed in [3, 8] {
        let report = fhir
            .get(&format!("DiagnosticReport/{patient}-{fixed}"))
            .await;
        assert!(
            report["meta"]["tag"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["system"] == TAG_SYSTEM)),
            "{fixed} enriched after reprocess"
        );
    }
    // Nothing is left over from the atomic rewrite.
    let stray: Vec<_> = std::fs::read_dir(dead.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // The last one fixed too: the file empties.
    let mut report = fhir.get(&format!("DiagnosticReport/{patient}-7")).await;
    report["status"] = Value::from("amended");
    fhir.put(&report).await;
    let last =
        reportsplit::mode::reprocess::run_with(config, &dead, &dead, CancellationToken::new())
            .await
            .expect("reprocess");
    assert_eq!(
        (last.tally.written, last.tally.failed_total()),
        (1, 0),
        "{last}"
    );
    assert_eq!(last.ending(), Ending::Complete);
    assert!(read_letters(&dead).is_empty());
    assert_eq!(
        std::fs::read_to_string(&dead).unwrap(),
        format!("{GARBAGE}\n")
    );
}

/// A line of a dead-letter file that is not an entry (hand-edited, truncated).
const GARBAGE: &str = "# checked by hand, see ticket 42";

/// The entries of a dead-letter file (lines that are not entries left out).
fn read_letters(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| *l != GARBAGE)
        .map(|l| serde_json::from_str(l).expect("NDJSON dead letter"))
        .collect()
}

/// Reports over a limit (issue 11, item 3) are dead-lettered with the
/// limit as their reason, never cut or partly written; the others go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_over_a_limit_are_dead_lettered_and_the_backfill_goes_on() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let patient = seed::unique("limits");
    let mut reports: Vec<Value> = (0..6)
        .map(|i| seed::report(&format!("{patient}-{i}"), i, &patient, false))
        .collect();
    let over = [
        (1, "Small cyst. ".repeat(17_000), "limit-text"),
        (4, "Small cyst. ".repeat(2_500), "limit-findings"),
    ];
    for (index, text, _) in &over {
        let report = reports[*index].as_object_mut().expect("a report");
        report.remove("presentedForm");
        report.remove("text");
        report.insert("conclusion".into(), Value::from(text.as_str()));
    }
    let mut resources = vec![seed::patient(&patient)];
    resources.extend(reports.iter().cloned());
    fhir.put_all(&resources).await;
    let subject = format!("Patient/{patient}");
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 5);
    let dead = state.path().join("dead.ndjson");
    let summary = backfill(
        &config,
        plan(
            WindowField::Date,
            MARCH,
            Duration::from_secs(31 * 86_400),
            2,
            &dead,
        ),
    )
    .await;
    assert_eq!(summary.tally.written, 4, "{summary}");
    assert_eq!(
        summary.tally.failed.get("limit-text"),
        Some(&1),
        "{summary}"
    );
    assert_eq!(
        summary.tally.failed.get("limit-findings"),
        Some(&1),
        "{summary}"
    );
    assert_eq!(summary.ending(), Ending::Partial);
    let letters = read_letters(&dead);
    assert_eq!(letters.len(), 2, "{letters:?}");
    for (index, _, reason) in &over {
        let reference = format!("DiagnosticReport/{patient}-{index}");
        let letter = letters
            .iter()
            .find(|l| l["report"] == reference.as_str())
            .unwrap_or_else(|| panic!("no dead letter for {reference}"));
        assert_eq!(letter["reason"], *reason, "{letter}");
        let message = letter["message"].as_str().unwrap_or("");
        assert!(message.contains("(limits."), "{message}");
        assert!(!message.contains("cyst"), "{message}");
        let stored = fhir.get(&reference).await;
        assert!(stored.get("result").is_none(), "{reference} was written");
    }
    let good: Vec<String> = [0, 2, 3, 5]
        .iter()
        .map(|i| format!("{patient}-{i}"))
        .collect();
    assert_enriched_once(&fhir, &subject, &good).await;
}
