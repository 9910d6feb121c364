//! Bulk Data `$export` as a source of reports (issue 14, item 4), against
//! SEKMET's own export (kick-off, polling, manifest, NDJSON) and, for the
//! faults a server does not make on demand, wiremock: a 429 with
//! Retry-After and 202s with X-Progress while polling, and a server without
//! `$export` (the caller falls back to paged search).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Sekmet;
use reportsplit::auth::AuthConfig;
use reportsplit::fhir::bulk::{ExportRequest, Kickoff, NdjsonFile, kick_off, wait_for_manifest};
use reportsplit::fhir::{ClientOptions, FhirClient, RetryPolicy};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn client(base: &str) -> FhirClient {
    let options = ClientOptions {
        base: url::Url::parse(base).unwrap(),
        timeout: Duration::from_secs(10),
        ca_file: None,
        retry: RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
        },
        max_concurrent: 4,
        requests_per_second: None,
        max_response_bytes: reportsplit_fhir::limits::Limits::default().response_bytes,
    };
    FhirClient::new(&options, &AuthConfig::None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sekmet_export_of_one_patients_reports_streams_them_all_with_its_transaction_time() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "bulk", 12).await;
    // Another patient's reports: the _typeFilter keeps them out.
    common::seed_reports(&fhir, "bulk-other", 3).await;
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let client = client(&server.base);
    let request = ExportRequest {
        filter: vec![("subject".into(), subject.clone())],
        since: None,
    };
    let Kickoff::Started { status } = kick_off(&client, &request).await.unwrap() else {
        panic!("SEKMET exports");
    };
    let manifest = wait_for_manifest(&client, &status, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(manifest.transaction_time >= before, "{manifest:?}");
    assert_eq!(manifest.files.len(), 1, "{manifest:?}");
    let mut exported = Vec::new();
    for url in &manifest.files {
        let mut file = NdjsonFile::open(&client, url, 8 << 20).await.unwrap();
        while let Some(line) = file.next().await.unwrap() {
            let report = line.resource.unwrap();
            assert_eq!(report["resourceType"], "DiagnosticReport");
            assert_eq!(report["subject"]["reference"], subject.as_str());
            exported.push(report["id"].as_str().unwrap().to_owned());
        }
    }
    exported.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(exported, expected);
}

/// Answers the status URL with `answers` in turn, then with `last`.
struct Status {
    calls: Arc<AtomicUsize>,
    answers: Vec<ResponseTemplate>,
    last: ResponseTemplate,
}

impl Respond for Status {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.answers
            .get(n)
            .cloned()
            .unwrap_or_else(|| self.last.clone())
    }
}

#[tokio::test]
async fn polling_honours_retry_after_on_429_and_202_and_reads_the_manifest() {
    let server = MockServer::start().await;
    let base = format!("{}/fhir", server.uri());
    Mock::given(method("GET"))
        .and(path("/fhir/$export"))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("content-location", format!("{base}/status/1").as_str()),
        )
        .mount(&server)
        .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let manifest = json!({
        "transactionTime": "2026-03-04T05:06:07.089Z",
        "request": format!("{base}/$export"),
        "requiresAccessToken": false,
        "output": [
            {"type": "DiagnosticReport", "url": format!("{base}/files/1.ndjson")},
            {"type": "Patient", "url": format!("{base}/files/p.ndjson")}
        ],
        "error": []
    });
    Mock::given(method("GET"))
        .and(path("/fhir/status/1"))
        .respond_with(Status {
            calls: calls.clone(),
            answers: vec![
                ResponseTemplate::new(429).insert_header("retry-after", "1"),
                ResponseTemplate::new(202)
                    .insert_header("x-progress", "collecting")
                    .insert_header("retry-after", "1"),
            ],
            last: ResponseTemplate::new(200).set_body_json(manifest),
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/files/1.ndjson"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "{\"resourceType\":\"DiagnosticReport\",\"id\":\"a\"}\n\n{\"resourceType\":\"Diag\n{\"resourceType\":\"DiagnosticReport\",\"id\":\"b\"}",
            "application/fhir+ndjson",
        ))
        .mount(&server)
        .await;

    let client = client(&base);
    let started = Instant::now();
    let Kickoff::Started { status } = kick_off(&client, &ExportRequest::default()).await.unwrap()
    else {
        panic!("the mock exports");
    };
    let manifest = wait_for_manifest(&client, &status, Duration::from_secs(30))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "429, 202, 200");
    assert!(
        waited >= Duration::from_secs(2),
        "Retry-After honoured twice: {waited:?}"
    );
    assert_eq!(
        reportsplit::pull::rfc3339(manifest.transaction_time),
        "2026-03-04T05:06:07.089Z"
    );
    assert_eq!(manifest.files.len(), 1, "only the DiagnosticReport file");
    let mut file = NdjsonFile::open(&client, &manifest.files[0], 1024)
        .await
        .unwrap();
    let mut lines = Vec::new();
    while let Some(line) = file.next().await.unwrap() {
        lines.push(match line.resource {
            Ok(report) => format!("{} {}", line.number, report["id"].as_str().unwrap()),
            Err(reason) => format!("{} {reason}", line.number),
        });
    }
    assert_eq!(
        lines,
        ["1 a", "3 not JSON (truncated)", "4 b"],
        "a bad line is one record, numbered; the file goes on"
    );

    // A line longer than the bound is a bad line naming the bound, and the
    // next line is read.
    let mut small = NdjsonFile::open(&client, &manifest.files[0], 30)
        .await
        .unwrap();
    let first = small.next().await.unwrap().unwrap();
    assert_eq!(first.number, 1);
    let reason = first.resource.unwrap_err();
    assert!(reason.contains("longer than 30"), "{reason}");
    assert_eq!(small.next().await.unwrap().unwrap().number, 3);
    // A file resumed at its cursor passes over the lines done.
    let mut resumed = NdjsonFile::open(&client, &manifest.files[0], 1024)
        .await
        .unwrap();
    assert_eq!(resumed.skip(3).await.unwrap(), 3);
    let next = resumed.next().await.unwrap().unwrap();
    assert_eq!(
        (next.number, next.resource.unwrap()["id"].clone()),
        (4, json!("b"))
    );
}

#[tokio::test]
async fn a_server_without_export_is_told_apart_and_a_foreign_status_url_is_refused() {
    let server = MockServer::start().await;
    let base = format!("{}/fhir", server.uri());
    Mock::given(method("GET"))
        .and(path("/fhir/$export"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let client = client(&base);
    assert_eq!(
        kick_off(&client, &ExportRequest::default()).await.unwrap(),
        Kickoff::Unsupported { status: 404 }
    );

    let other = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/fhir/$export"))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("content-location", "https://elsewhere.example/status/1"),
        )
        .mount(&other)
        .await;
    let client = self::client(&format!("{}/fhir", other.uri()));
    let error = kick_off(&client, &ExportRequest::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("elsewhere.example"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_pass_over_an_export_writes_each_report_once_and_checkpoints_at_its_transaction_time()
 {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "bulk-sync", 10).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 4);
    let never = tokio_util::sync::CancellationToken::new();
    let mut out = Vec::new();
    let summary = reportsplit::mode::once::export::run_export_with(
        config.clone(),
        false,
        &mut out,
        &never,
        Duration::from_secs(60),
    )
    .await
    .unwrap()
    .expect("SEKMET exports");
    assert_eq!(summary.tally.seen, 10, "{summary}");
    assert_eq!(summary.tally.written, 10, "{summary}");
    assert_eq!(summary.tally.failed_total(), 0, "{summary}");
    assert_eq!(
        summary.windows, 3,
        "batches of pull.page_size = 4: {summary}"
    );
    let checkpoint = summary.checkpoint.clone().expect("a checkpoint");
    let saved = std::fs::read_to_string(state.path().join("state.json")).unwrap();
    assert!(saved.contains(&checkpoint), "{saved}");
    assert_eq!(
        common::one_set_per_report(&fhir, &subject, &ids).await as u64,
        summary.tally.observations_written
    );

    // The next scheduled pass searches from the transactionTime: our own
    // writes are found current, nothing is written twice.
    let (again, _) = common::sync(&config, false).await;
    assert_eq!(again.tally.written, 0, "{again}");
    assert_eq!(again.tally.failed_total(), 0, "{again}");
    assert_eq!(common::count_tagged(&fhir, &subject).await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_once_from_export_through_the_binary_falls_back_to_search_without_export() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, _) = common::seed_reports(&fhir, "bulk-cli", 5).await;
    let site = common::Site::new(&server.base, &subject, 20);
    let output = site.sync_once().arg("--from-export").output().unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert!(
        common::stderr(&output).contains("$export ready"),
        "{}",
        common::stderr(&output)
    );
    assert_eq!(common::count_tagged(&fhir, &subject).await, 5);

    // A server without $export (the proxy answers 501 for it): the same
    // command runs the search pass over the same server.
    let (subject, _) = common::seed_reports(&fhir, "bulk-fallback", 3).await;
    let proxy = without_export(&server.base).await;
    let site = common::Site::new(&proxy.base, &subject, 20);
    let output = site.sync_once().arg("--from-export").output().unwrap();
    assert!(output.status.success(), "{}", common::stderr(&output));
    assert!(
        common::stderr(&output).contains("paged search instead"),
        "{}",
        common::stderr(&output)
    );
    assert_eq!(common::count_tagged(&fhir, &subject).await, 3);
}

/// A proxy to `base` that answers 501 to `$export`: a server without Bulk Data.
async fn without_export(base: &str) -> common::proxy::Proxy {
    let policy = |seen: &common::proxy::Seen<'_>| {
        if seen.path.contains("$export") {
            common::proxy::Action::Answer {
                status: 501,
                headers: vec![],
            }
        } else {
            common::proxy::Action::Forward
        }
    };
    common::proxy::start(base, Arc::new(policy)).await
}

fn export_plan(dead_letter: &std::path::Path) -> reportsplit::mode::backfill::BackfillPlan {
    let now = time::OffsetDateTime::now_utc();
    reportsplit::mode::backfill::BackfillPlan {
        since: now - time::Duration::HOUR,
        until: now + time::Duration::MINUTE,
        window: Duration::from_secs(3600),
        by: reportsplit::mode::backfill::WindowField::LastUpdated,
        concurrency: 2,
        dead_letter: dead_letter.to_path_buf(),
        progress: reportsplit::mode::backfill::ProgressMode::Log(Duration::from_secs(3600)),
        metrics: None,
        lease: Duration::from_secs(30),
        from_export: true,
    }
}

async fn backfill(
    config: &reportsplit::config::Config,
    plan: reportsplit::mode::backfill::BackfillPlan,
) -> reportsplit::mode::backfill::BackfillSummary {
    tokio::time::timeout(
        Duration::from_secs(120),
        reportsplit::mode::backfill::run_with(
            config.clone(),
            plan,
            tokio_util::sync::CancellationToken::new(),
        ),
    )
    .await
    .expect("the backfill finishes within 2 minutes")
    .expect("backfill")
}

/// `backfill --from-export` with the embedded store, restarted after a
/// kick-off it recorded: it polls that job (no second kick-off), reads its
/// file, dead-letters a bad line by its number and goes on, deletes the job
/// and moves the sync checkpoint to the export's transactionTime; a third
/// run finds the file done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_from_an_export_resumes_its_recorded_job_and_dead_letters_a_bad_line() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "bulk-backfill", 12).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 5);
    let dead = state.path().join("dead.ndjson");
    let plan = export_plan(&dead);

    // The kick-off of a run that died before the manifest: the job and its
    // record, and a line of its file made bad (a fault no server makes).
    let request = ExportRequest {
        filter: reportsplit::mode::once::export::export_filter(&config.filters()),
        since: Some(plan.since),
    };
    let Kickoff::Started { status } = kick_off(&client(&server.base), &request).await.unwrap()
    else {
        panic!("SEKMET exports");
    };
    let manifest = wait_for_manifest(&client(&server.base), &status, Duration::from_secs(60))
        .await
        .unwrap();
    let file = server
        .export_file(status.as_str(), "DiagnosticReport.ndjson")
        .expect("a local SEKMET");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 12, "{text}");
    lines.insert(2, "{\"resourceType\": \"DiagnosticRep");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let stream = reportsplit::state::stream_key(&config.fhir.url, &config.filters());
    {
        let store = reportsplit::state::StateStore::open(state.path()).unwrap();
        let mut saved = store.load().unwrap();
        saved
            .streams
            .entry(stream.clone())
            .or_default()
            .exports
            .insert(
                request.key(),
                reportsplit::state::ExportRecord {
                    status: status.to_string(),
                    ..Default::default()
                },
            );
        store.save(&saved).unwrap();
    }

    let summary = backfill(&config, plan.clone()).await;
    assert_eq!(summary.tally.written, 12, "{summary}");
    assert_eq!(summary.tally.failed.get("bad-line"), Some(&1), "{summary}");
    assert_eq!((summary.windows, summary.windows_done), (1, 1), "{summary}");
    common::one_set_per_report(&fhir, &subject, &ids).await;
    let letters = std::fs::read_to_string(&dead).unwrap();
    let letter: serde_json::Value = serde_json::from_str(letters.trim()).unwrap();
    assert!(
        letter["report"]
            .as_str()
            .unwrap()
            .ends_with("DiagnosticReport.ndjson#line=3"),
        "{letter}"
    );
    assert_eq!(letter["reason"], "bad-line");
    let saved = reportsplit::state::StateStore::open(state.path())
        .unwrap()
        .load()
        .unwrap();
    let stream_state = &saved.streams[&stream];
    assert_eq!(stream_state.exports.len(), 1, "the recorded job, no other");
    let record = &stream_state.exports[&request.key()];
    assert!(record.finished, "{record:?}");
    assert_eq!(
        stream_state.checkpoint.as_deref(),
        Some(reportsplit::pull::rfc3339(manifest.transaction_time).as_str())
    );
    let deleted = fhir
        .request(reqwest::Method::GET, status.as_str(), None, None)
        .await;
    assert_eq!(deleted.status, 404, "the job was deleted: {}", deleted.body);

    // Run again: the export is finished; nothing is read or written.
    let again = backfill(&config, plan).await;
    assert_eq!(
        (again.tally.seen, again.windows_already_done),
        (0, 1),
        "{again}"
    );
    assert_eq!(common::count_tagged(&fhir, &subject).await, 12);
}

/// A server that answers the kick-off 501: `backfill --from-export` runs
/// the windowed search and records no export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_from_an_export_falls_back_to_windows_without_export() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "bulk-backfill-none", 4).await;
    let proxy = without_export(&server.base).await;
    let state = common::temp_state();
    let config = common::config(&proxy.base, state.path(), Some(&subject), 5);
    let summary = backfill(&config, export_plan(&state.path().join("dead.ndjson"))).await;
    assert_eq!(summary.tally.written, 4, "{summary}");
    assert!(summary.windows_done >= 1, "{summary}");
    common::one_set_per_report(&fhir, &subject, &ids).await;
    let saved = reportsplit::state::StateStore::open(state.path())
        .unwrap()
        .load()
        .unwrap();
    assert!(
        saved.streams.values().all(|s| s.exports.is_empty()),
        "{saved:?}"
    );
}
