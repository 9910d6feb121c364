//! `reportsplit sync --every`: the daemon picks up reports created while it
//! runs and stops cleanly on SIGTERM, against a real SEKMET.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Fhir, Sekmet, seed};
use reportsplit_fhir::plan::TAG_SYSTEM;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

async fn count_tagged(fhir: &Fhir, subject: &str) -> u64 {
    let system: String = url::form_urlencoded::byte_serialize(TAG_SYSTEM.as_bytes()).collect();
    fhir.count(&format!(
        "DiagnosticReport?subject={subject}&_tag={system}|"
    ))
    .await
}

/// Waits (at most `limit`) until `want` reports of the subject are tagged.
async fn wait_tagged(fhir: &Fhir, subject: &str, want: u64, limit: Duration) -> u64 {
    let started = Instant::now();
    loop {
        let tagged = count_tagged(fhir, subject).await;
        if tagged >= want || started.elapsed() > limit {
            return tagged;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn reports(patient: &str, range: std::ops::Range<usize>) -> Vec<Value> {
    range
        .map(|i| seed::report(&format!("{patient}-{i}"), i, patient, false))
        .collect()
}

/// Sends SIGTERM and waits for the process to exit, at most the shutdown
/// grace and five seconds (then kills it and returns `None`).
async fn terminate(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let stopped = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if stopped.elapsed() > reportsplit::mode::daemon::SHUTDOWN_GRACE + Duration::from_secs(5) {
            let _ = child.kill();
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A patient with `n` reports on the server, and a site config for them
/// (state directory and config file in a temporary directory).
struct Site {
    subject: String,
    state_dir: std::path::PathBuf,
    config_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Site {
    async fn seeded(server: &Sekmet, fhir: &Fhir, patient: &str, n: usize) -> Site {
        let mut first = vec![seed::patient(patient)];
        first.extend(reports(patient, 0..n));
        fhir.put_all(&first).await;
        let subject = format!("Patient/{patient}");
        let dir = common::temp_state();
        let state_dir = dir.path().join("state");
        let config_path = dir.path().join("site.toml");
        std::fs::write(
            &config_path,
            config_text(&server.base, &state_dir, &subject),
        )
        .unwrap();
        Site {
            subject,
            state_dir,
            config_path,
            _dir: dir,
        }
    }
}

fn config_text(base: &str, state_dir: &Path, subject: &str) -> String {
    format!(
        "[fhir]\nurl = \"{base}\"\ntimeout_secs = 30\n\
         [pull]\nsubject = \"{subject}\"\noverlap_secs = 5\n\
         [state]\ndir = \"{}\"\n",
        state_dir.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_picks_up_new_reports_and_stops_when_asked() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let patient = seed::unique("daemon");
    let mut first = vec![seed::patient(&patient)];
    first.extend(reports(&patient, 0..5));
    fhir.put_all(&first).await;
    let subject = format!("Patient/{patient}");
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 50);

    let shutdown = CancellationToken::new();
    let metrics = reportsplit::metrics::Metrics::new();
    let daemon = tokio::spawn({
        let shutdown = shutdown.clone();
        let metrics = metrics.clone();
        async move {
            let mut sink = std::io::sink();
            reportsplit::mode::daemon::run_with(
                config,
                Duration::from_secs(1),
                &mut sink,
                Some(&metrics),
                shutdown,
            )
            .await
        }
    });
    assert_eq!(
        wait_tagged(&fhir, &subject, 5, Duration::from_secs(60)).await,
        5
    );
    // Created while the daemon runs: picked up by a later pass.
    fhir.put_all(&reports(&patient, 5..12)).await;
    assert_eq!(
        wait_tagged(&fhir, &subject, 12, Duration::from_secs(60)).await,
        12
    );

    shutdown.cancel();
    let summary = tokio::time::timeout(
        reportsplit::mode::daemon::SHUTDOWN_GRACE + Duration::from_secs(5),
        daemon,
    )
    .await
    .expect("the daemon stops within its grace period")
    .expect("the daemon task")
    .expect("a clean stop");
    assert!(summary.passes >= 2, "{summary}");
    assert_eq!(
        summary.tally.written, 12,
        "each report written once: {summary}"
    );
    let exported = metrics.encode();
    let written_line = exported
        .lines()
        .find(|line| line.contains("outcome=\"written\"") && !line.starts_with('#'))
        .unwrap_or_else(|| panic!("no written counter in:\n{exported}"));
    assert!(written_line.ends_with(" 12"), "{written_line}");
    assert_eq!(summary.tally.failed_total(), 0, "{summary}");
    assert!(!summary.abandoned_pass, "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_binary_exits_zero_on_sigterm_with_its_checkpoint_saved() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let patient = seed::unique("sigterm");
    let site = Site::seeded(&server, &fhir, &patient, 4).await;
    let (subject, state_dir, config_path) = (
        site.subject.clone(),
        site.state_dir.clone(),
        site.config_path.clone(),
    );

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reportsplit"))
        .args(["sync", "--every", "1s", "--config"])
        .arg(&config_path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start reportsplit sync --every");
    let tagged = wait_tagged(&fhir, &subject, 4, Duration::from_secs(60)).await;
    fhir.put_all(&reports(&patient, 4..9)).await;
    let tagged_later = wait_tagged(&fhir, &subject, 9, Duration::from_secs(60)).await;
    let still_running = child.try_wait().unwrap().is_none();

    let status = terminate(&mut child).await;
    assert_eq!((tagged, tagged_later), (4, 9));
    assert!(still_running, "the daemon kept running between passes");
    let status = status.expect("the daemon exits after SIGTERM within its grace period");
    assert_eq!(status.code(), Some(0), "exit 0 after SIGTERM");
    let saved = std::fs::read_to_string(state_dir.join("state.json")).expect("a checkpoint");
    assert!(saved.contains("\"checkpoint\""), "{saved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_off_sync_stopped_by_sigterm_exits_7_and_the_next_run_finishes() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let patient = seed::unique("once");
    let total = 150;
    let site = Site::seeded(&server, &fhir, &patient, total).await;
    let (subject, config_path) = (site.subject.clone(), site.config_path.clone());
    let once = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_reportsplit"))
            .args(["sync", "--once", "--config"])
            .arg(&config_path)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start reportsplit sync --once")
    };

    let mut child = once();
    let tagged_at_signal = wait_tagged(&fhir, &subject, 5, Duration::from_secs(60)).await;
    let status = terminate(&mut child).await;
    let status = status.expect("sync --once stops after SIGTERM");
    assert_eq!(status.code(), Some(7), "exit 7: stopped before the end");
    let tagged = count_tagged(&fhir, &subject).await;
    assert!(
        (tagged_at_signal..total as u64).contains(&tagged),
        "stopped part-way: {tagged} of {total} tagged"
    );

    let status = once().wait().expect("second sync --once");
    assert_eq!(status.code(), Some(0));
    assert_eq!(count_tagged(&fhir, &subject).await, total as u64);
}
