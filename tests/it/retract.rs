//! `reportsplit retract` against a real SEKMET: a release's Observations
//! found by its Device and superseded, its reports untagged and re-derived
//! once by the next sync; another release's and another writer's resources
//! left alone; a dry run that writes nothing; a rerun that does nothing; a
//! third party's edit during the retraction that survives (412, re-read);
//! a killed retraction that a rerun finishes with nothing done twice.
//!
//! The release under test ("A") is this build's version, written by a real
//! sync. The other release ("B") is written by the test itself: the same
//! planner (`reportsplit_fhir::plan`) with another version in `RunInfo`, so
//! it has its own Device, tag and Provenances, as an older or newer
//! reportsplit would.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Fhir, Sekmet};
use reportsplit::mode::retract::{RetractOptions, RetractSummary, Target};
use reportsplit::run::Worker;
use reportsplit::run::apply::{Outcome, apply_retract};
use reportsplit_fhir::limits::Limits;
use reportsplit_fhir::map::RunInfo;
use reportsplit_fhir::plan::{Plan, TAG_SYSTEM, plan, previous_refs};
use reportsplit_fhir::retract::written_by;
use reportsplit_fhir::text::report_text;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

const A: &str = env!("CARGO_PKG_VERSION");
const B: &str = "0.0.1-b";

fn our_tag(report: &Value) -> Option<String> {
    report["meta"]["tag"]
        .as_array()?
        .iter()
        .find(|t| t["system"] == TAG_SYSTEM)
        .and_then(|t| t["code"].as_str())
        .map(str::to_owned)
}

fn result_refs(report: &Value) -> Vec<String> {
    report["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["reference"].as_str().map(str::to_owned))
        .collect()
}

/// `Observation/<id>` → the Observation, for every Observation of the subject.
async fn observations(fhir: &Fhir, subject: &str) -> HashMap<String, Value> {
    fhir.search_all(&format!("Observation?subject={subject}&_count=200"))
        .await
        .into_iter()
        .map(|o| (format!("Observation/{}", o["id"].as_str().unwrap()), o))
        .collect()
}

/// `{Type}/{id}` of the live resources of the owned types other than
/// Observation written for these reports (their group tag).
async fn other_types(fhir: &Fhir, ids: &[String]) -> HashSet<String> {
    let mut found = HashSet::new();
    for kind in ["ServiceRequest", "DetectedIssue", "Flag", "Communication"] {
        for id in ids {
            for resource in fhir
                .search_all(&format!("{kind}?_tag=urn%3Areportsplit%3Areport|{id}"))
                .await
            {
                found.insert(format!("{kind}/{}", resource["id"].as_str().unwrap()));
            }
        }
    }
    found
}

/// Derives a report as release `version` would: the planner with that
/// version, its transaction posted as is (Device created conditionally).
async fn derive_as(fhir: &Fhir, id: &str, version: &str) {
    let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
    let text = report_text(&report, &Limits::default()).expect("the report has text");
    let lexicon = reportsplit_split::Lexicon::builtin();
    let extraction = reportsplit_split::extract_as(&text.text, &lexicon, text.headerless);
    let mut previous = Vec::new();
    for reference in previous_refs(&report) {
        previous.push(fhir.get(&reference).await);
    }
    let run = RunInfo {
        extractor_version: version.to_owned(),
        recorded: OffsetDateTime::now_utc(),
        writes: Default::default(),
    };
    let Plan::Write(set) = plan(&report, &text, &extraction, &previous, &run).expect("plan") else {
        panic!("{id}: release {version} has something to write");
    };
    let response = fhir
        .request(reqwest::Method::POST, "", Some(&set.bundle), None)
        .await;
    assert_eq!(response.status, 200, "{id}: {}", response.body);
}

fn options(since: OffsetDateTime, until: OffsetDateTime, apply: bool) -> RetractOptions {
    RetractOptions {
        config: PathBuf::new(),
        target: Target::Version(A.to_owned()),
        since,
        until: Some(until),
        window: Duration::from_secs(86_400),
        apply,
    }
}

async fn retract(
    config: &reportsplit::config::Config,
    options: &RetractOptions,
) -> (RetractSummary, Vec<String>) {
    let mut out: Vec<u8> = Vec::new();
    let summary = reportsplit::mode::retract::run_with(
        config.clone(),
        options,
        CancellationToken::new(),
        &mut out,
    )
    .await
    .expect("retract");
    let lines = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    (summary, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_is_retracted_exactly_and_the_next_sync_redoes_its_reports_once() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let since = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let (subject, ids) = common::seed_reports(&fhir, "retract", 6).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 100);

    // Release A (this build) derives all six reports.
    let (first, _) = common::sync(&config, false).await;
    assert_eq!(first.tally.written, 6, "{first}");
    let by_a: HashSet<String> = observations(&fhir, &subject).await.into_keys().collect();
    let others_by_a = other_types(&fhir, &ids).await;
    // Release B derives reports 4 and 5 again (superseding A's there).
    for id in &ids[4..] {
        derive_as(&fhir, id, B).await;
    }
    let by_b: HashSet<String> = observations(&fhir, &subject)
        .await
        .into_keys()
        .filter(|r| !by_a.contains(r))
        .collect();
    assert!(!by_b.is_empty());
    // Another writer: its own Observation in report 0's result, its own tag.
    let theirs = json!({"resourceType": "Observation", "id": "theirs-dose", "status": "final",
        "code": {"text": "Radiation dose"}, "subject": {"reference": subject},
        "valueQuantity": {"value": 2.5, "unit": "mSv"}});
    fhir.put(&theirs).await;
    let mut report0 = fhir.get(&format!("DiagnosticReport/{}", ids[0])).await;
    report0["result"]
        .as_array_mut()
        .unwrap()
        .push(json!({"reference": "Observation/theirs-dose"}));
    report0["meta"]["tag"]
        .as_array_mut()
        .unwrap()
        .push(json!({"system": "http://example.org/site", "code": "teaching"}));
    fhir.put(&report0).await;
    let until = OffsetDateTime::now_utc();
    let live_a: usize = {
        let all = observations(&fhir, &subject).await;
        by_a.iter()
            .filter(|r| all[*r]["status"] != "entered-in-error")
            .count()
    };

    // Dry run: what would change, and nothing written.
    let before = common::now_rfc3339();
    let (dry, lines) = retract(&config, &options(since, until, false)).await;
    assert_eq!(dry.devices.len(), 1, "{dry}");
    assert_eq!(
        (dry.tally.planned, dry.tally.written, dry.superseded),
        (6, 0, (live_a + others_by_a.len()) as u64),
        "{dry}"
    );
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("would retract DiagnosticReport/")),
        "{lines:?}"
    );
    assert_eq!(
        fhir.history_count_since(&before).await,
        0,
        "a dry run writes nothing"
    );

    // The same release named by its Device instead of its version.
    let mut by_device = options(since, until, false);
    by_device.target = Target::Device(dry.devices[0].clone());
    let (device_dry, _) = retract(&config, &by_device).await;
    assert_eq!(device_dry.version, A, "{device_dry}");
    assert_eq!(
        (device_dry.tally.planned, device_dry.superseded),
        (dry.tally.planned, dry.superseded),
        "{device_dry}"
    );

    // Apply.
    let (applied, lines) = retract(&config, &options(since, until, true)).await;
    eprintln!("dry run: {dry}\napplied: {applied}");
    assert_eq!(
        (
            applied.tally.written,
            applied.tally.failed_total(),
            applied.superseded
        ),
        (6, 0, (live_a + others_by_a.len()) as u64),
        "{applied}"
    );
    assert_eq!(lines.len(), 6, "{lines:?}");
    let all = observations(&fhir, &subject).await;
    for reference in &by_a {
        let observation = &all[reference];
        assert_eq!(observation["status"], "entered-in-error", "{reference}");
        let notes = observation["note"].as_array().expect("a note");
        assert_eq!(notes.len(), 1, "{reference} superseded once: {notes:?}");
    }
    for reference in &by_b {
        assert_eq!(all[reference]["status"], "final", "B's {reference} stays");
        assert_eq!(all[reference]["meta"]["versionId"], "1", "{reference}");
    }
    assert_eq!(all["Observation/theirs-dose"]["meta"]["versionId"], "1");
    for reference in &others_by_a {
        let status = fhir.get(reference).await["status"].clone();
        assert!(
            ["revoked", "entered-in-error", "inactive"].contains(&status.as_str().unwrap_or("")),
            "{reference} taken back: {status}"
        );
    }
    for (index, id) in ids.iter().enumerate() {
        let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
        let results = result_refs(&report);
        assert!(
            results.iter().all(|r| !by_a.contains(r)),
            "{id}: A's Observations unlinked: {results:?}"
        );
        if index < 4 {
            assert_eq!(our_tag(&report), None, "{id} untagged");
        } else {
            assert!(
                our_tag(&report).is_some_and(|t| t.starts_with(&format!("{B}:"))),
                "{id} keeps B's tag"
            );
            assert!(!results.is_empty() && results.iter().all(|r| by_b.contains(r)));
        }
    }
    let report0 = fhir.get(&format!("DiagnosticReport/{}", ids[0])).await;
    assert_eq!(result_refs(&report0), ["Observation/theirs-dose"]);
    assert_eq!(report0["meta"]["tag"][0]["code"], "teaching");

    // A rerun does nothing: the windows are done, and read again (other
    // windows, so not skipped by the state) every report plans nothing.
    let before = common::now_rfc3339();
    let (again, lines) = retract(&config, &options(since, until, true)).await;
    assert_eq!(
        (again.tally.seen, again.windows_already_done),
        (0, 1),
        "{again}"
    );
    assert!(lines.is_empty());
    // Another start, so other window keys than the done one.
    let mut hourly = options(since - time::Duration::minutes(1), until, true);
    hourly.window = Duration::from_secs(3600);
    let (reread, lines) = retract(&config, &hourly).await;
    assert_eq!(
        (reread.tally.current, reread.tally.written),
        (6, 0),
        "{reread}"
    );
    assert!(lines.is_empty());
    assert_eq!(
        fhir.history_count_since(&before).await,
        0,
        "nothing written"
    );

    // The new shapes (a retracted Observation, the retraction's Provenance,
    // an untagged report) are valid R4 for the second validator.
    let provenances = fhir
        .search_all(&format!(
            "Provenance?agent={}&_count=200",
            applied.devices[0]
        ))
        .await;
    let retraction_provenance = provenances
        .iter()
        .find(|p| {
            p["entity"]
                .as_array()
                .is_some_and(|e| e.len() > 1 && e[1]["role"] == "revision")
        })
        .expect("the retraction's Provenance");
    let shapes = [
        all[by_a
            .iter()
            .find(|r| {
                all[*r]["note"][0]["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("retracted")
            })
            .unwrap()]
        .clone(),
        retraction_provenance.clone(),
        fhir.get(&format!("DiagnosticReport/{}", ids[1])).await,
    ];
    let ndjson: String = shapes.iter().map(|r| format!("{r}\n")).collect();
    match crate::map_validate::validate(&ndjson) {
        Some((valid, summary)) => {
            assert!(valid, "invalid: {summary:#}");
            eprintln!("medplum validateResource: {summary}");
        }
        None => eprintln!("SKIPPED: node/npm not found; the FHIR validator did not run"),
    }

    // The next sync derives the retracted reports again, once.
    let (resync, _) = common::sync(&config, false).await;
    assert_eq!(resync.tally.failed_total(), 0, "{resync}");
    assert_eq!(resync.tally.written, 6, "0-3 untagged, 4-5 B's: {resync}");
    let all = observations(&fhir, &subject).await;
    for id in &ids {
        let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
        assert!(our_tag(&report).is_some_and(|t| t.starts_with(&format!("{A}:"))));
        let version = report["meta"]["versionId"].as_str().unwrap().to_owned();
        let live: Vec<&Value> = result_refs(&report)
            .iter()
            .filter_map(|r| all.get(r))
            .filter(|o| o["status"] != "entered-in-error")
            .filter(|o| o["id"] != "theirs-dose")
            .collect();
        assert!(!live.is_empty(), "{id} enriched again");
        let read = (version.parse::<u64>().unwrap() - 1).to_string();
        for observation in live {
            let identifier = observation["identifier"][0]["value"].as_str().unwrap();
            assert!(
                identifier.starts_with(&format!("{id}/{read}/")),
                "{id}: one live set, from the version the sync read: {identifier}"
            );
        }
    }
    let (settled, _) = common::sync(&config, false).await;
    assert_eq!(settled.tally.written, 0, "{settled}");
}

/// A proxy in front of SEKMET that, once armed, makes a third party edit
/// the report (version 2 → 3) just before the next transaction reaches the
/// server: the transaction's `ifMatch` is stale, the server answers 412.
struct EditingProxy {
    base: String,
    armed: Arc<AtomicBool>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    own: String,
    report: String,
    armed: Arc<AtomicBool>,
    http: reqwest::Client,
    /// The third party's own client, straight to the server.
    third_party: Fhir,
}

async fn editing_proxy(server: &Sekmet, report: &str) -> EditingProxy {
    let upstream_base = server.base.as_str();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = format!("http://{}", listener.local_addr().unwrap());
    let armed = Arc::new(AtomicBool::new(false));
    let state = ProxyState {
        upstream: upstream_base.trim_end_matches("/fhir").to_owned(),
        own: own.clone(),
        report: report.to_owned(),
        armed: armed.clone(),
        http: reqwest::Client::new(),
        third_party: server.fhir(),
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    EditingProxy {
        base: format!("{own}/fhir"),
        armed,
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
    let transaction =
        parts.method == reqwest::Method::POST && parts.uri.path().trim_end_matches('/') == "/fhir";
    if transaction && proxy.armed.swap(false, Ordering::SeqCst) {
        let fhir = &proxy.third_party;
        let mut report = fhir.get(&proxy.report).await;
        report["identifier"] = json!([{"system": "urn:example:accession", "value": "ACC-THEIRS"}]);
        fhir.put(&report).await;
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
        if matches!(name.as_str(), "content-type" | "etag" | "location") {
            let text = value
                .to_str()
                .unwrap_or("")
                .replace(&proxy.upstream, &proxy.own);
            headers.insert(name, text.parse().unwrap());
        }
    }
    let text = answer.text().await.unwrap();
    let text = text.replace(&proxy.upstream, &proxy.own);
    (status, headers, text).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_edit_during_a_retraction_survives() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "retract-race", 1).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 100);
    let (first, _) = common::sync(&config, false).await;
    assert_eq!(first.tally.written, 1, "{first}");
    let report = format!("DiagnosticReport/{}", ids[0]);
    let written: HashSet<String> = fhir
        .search_all("Provenance?_count=200")
        .await
        .iter()
        .filter_map(written_by)
        .filter(|w| w.report_id == ids[0])
        .flat_map(|w| w.created)
        .collect();
    assert!(!written.is_empty());

    let proxy = editing_proxy(&server, &report).await;
    let proxied = common::config(&proxy.base, state.path(), Some(&subject), 100);
    let worker = Worker::connect(proxied, true).await.expect("connect");
    proxy.armed.store(true, Ordering::SeqCst);
    let outcome = apply_retract(&worker.apply_context(false), &ids[0], &written, A)
        .await
        .expect("retracted after a re-read");
    let Outcome::Written {
        conflicts,
        superseded,
        ..
    } = outcome
    else {
        panic!("expected a write, got {outcome:?}")
    };
    assert_eq!(conflicts, 1, "exactly one 412 and re-read");
    assert_eq!(superseded, written.len());
    assert!(!proxy.armed.load(Ordering::SeqCst), "the edit happened");

    let after = fhir.get(&report).await;
    assert_eq!(
        after["meta"]["versionId"], "4",
        "ours, their edit, the retraction"
    );
    assert_eq!(
        after["identifier"][0]["value"], "ACC-THEIRS",
        "their edit survives"
    );
    assert_eq!(our_tag(&after), None);
    assert!(result_refs(&after).is_empty());
    for reference in &written {
        let observation = fhir.get(reference).await;
        assert_eq!(observation["status"], "entered-in-error", "{reference}");
    }
}

fn site_config(dir: &Path, base: &str, subject: &str) -> PathBuf {
    let path = dir.join("site.toml");
    std::fs::write(
        &path,
        format!(
            "[fhir]\nurl = \"{base}\"\ntimeout_secs = 30\n\
             [pull]\nsubject = \"{subject}\"\npage_size = 50\n\
             [write]\nconcurrent_reports = 2\n\
             [state]\ndir = \"{}\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

async fn count_tagged(fhir: &Fhir, subject: &str) -> u64 {
    let system: String = url::form_urlencoded::byte_serialize(TAG_SYSTEM.as_bytes()).collect();
    fhir.count(&format!(
        "DiagnosticReport?subject={subject}&_tag={system}|"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_retraction_is_finished_by_a_rerun_with_nothing_done_twice() {
    const REPORTS: u64 = 40;
    let server = Sekmet::start();
    let fhir = server.fhir();
    let since = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let (subject, _ids) = common::seed_reports(&fhir, "retract-kill", REPORTS as usize).await;
    let dir = common::temp_state();
    let config_path = site_config(dir.path(), &server.base, &subject);
    let config = reportsplit::config::Config::load(&config_path).unwrap();
    let (first, _) = common::sync(&config, false).await;
    assert_eq!(first.tally.written, REPORTS, "{first}");
    let by_a: HashSet<String> = observations(&fhir, &subject).await.into_keys().collect();
    let until = OffsetDateTime::now_utc();

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reportsplit"))
        .args(["retract", "--apply", "--version", A, "--config"])
        .arg(&config_path)
        .args(["--since", &reportsplit::pull::rfc3339(since)])
        .args(["--until", &reportsplit::pull::rfc3339(until)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start reportsplit retract");
    let mut untagged_before_kill = 0;
    for _ in 0..3000 {
        untagged_before_kill = REPORTS - count_tagged(&fhir, &subject).await;
        if untagged_before_kill >= 3 || child.try_wait().ok().flatten().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("kill -9");
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed mid-way, not finished: {status}");
    // A transaction the server had fully received when the process died may still commit.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let untagged_at_kill = REPORTS - count_tagged(&fhir, &subject).await;
    assert!(
        (untagged_before_kill..REPORTS).contains(&untagged_at_kill),
        "killed mid-way: {untagged_at_kill} of {REPORTS} retracted"
    );

    let mut options = options(since, until, true);
    options.config = config_path.clone();
    let (resumed, _) = retract(&config, &options).await;
    eprintln!("killed after {untagged_at_kill} of {REPORTS}; the rerun: {resumed}");
    assert_eq!(resumed.tally.failed_total(), 0, "{resumed}");
    assert_eq!(
        resumed.tally.written + resumed.tally.current,
        REPORTS,
        "{resumed}"
    );
    assert_eq!(
        resumed.tally.current, untagged_at_kill,
        "what the killed run did is found done: {resumed}"
    );
    assert_eq!(
        count_tagged(&fhir, &subject).await,
        0,
        "every report untagged"
    );
    let all = observations(&fhir, &subject).await;
    for reference in &by_a {
        let observation = &all[reference];
        assert_eq!(observation["status"], "entered-in-error", "{reference}");
        assert_eq!(
            observation["meta"]["versionId"], "2",
            "{reference} superseded exactly once"
        );
    }
    // One Provenance per report for the sync and one for the retraction.
    let provenances = fhir
        .count(&format!("Provenance?agent={}", resumed.devices[0]))
        .await;
    assert_eq!(provenances, 2 * REPORTS);
}

#[test]
fn the_release_must_be_named_and_a_device_must_be_a_device_reference() {
    let dir = common::temp_state();
    // Nothing listens on port 9: a request would exit 4, a usage error exits 2 first.
    let config = site_config(dir.path(), "http://127.0.0.1:9/fhir", "Patient/p");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_reportsplit"))
            .arg("retract")
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("REPORTSPLIT_LOG", "warn")
            .output()
            .expect("the binary runs")
    };
    for args in [
        &["--since", "2026-11-01"][..],
        &[
            "--since",
            "2026-11-01",
            "--version",
            "1",
            "--device",
            "Device/1",
        ],
        &["--since", "2026-11-01", "--device", "Patient/1"],
    ] {
        let output = run(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let unreachable = run(&["--since", "2026-11-01", "--version", "1"]);
    assert_eq!(unreachable.status.code(), Some(4), "the check can fail");
}

/// Every type a release wrote for a report is taken back, each with its
/// own superseded status (`map::owned`): the finding Observations
/// entered-in-error, the follow-up's ServiceRequest revoked, the
/// laterality DetectedIssue entered-in-error; a rerun changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retraction_takes_back_every_owned_type() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let since = OffsetDateTime::now_utc() - time::Duration::minutes(1);
    let mut report = crate::map_validate::actionable_report("ret-all");
    let object = report.as_object_mut().expect("a report object");
    object.remove("meta");
    object.insert("subject".into(), json!({"reference": "Patient/p-ret"}));
    fhir.put(&json!({"resourceType": "Patient", "id": "p-ret"}))
        .await;
    fhir.put(&report).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some("Patient/p-ret"), 50);
    let (synced, _) = common::sync(&config, false).await;
    assert_eq!(synced.tally.written, 1, "{synced:?}");
    let tagged = |kind: &str| format!("{kind}?_tag=urn%3Areportsplit%3Areport|ret-all");
    assert_eq!(fhir.count(&tagged("ServiceRequest")).await, 1);
    assert_eq!(fhir.count(&tagged("DetectedIssue")).await, 1);
    let observations = fhir
        .count("Observation?subject=Patient/p-ret&status=final")
        .await;
    assert!(observations > 0);

    let until = OffsetDateTime::now_utc();
    let (applied, lines) = retract(&config, &options(since, until, true)).await;
    assert_eq!(
        (applied.tally.written, applied.superseded),
        (1, observations + 2),
        "{applied}"
    );
    assert!(
        lines[0].contains("ServiceRequest/") && lines[0].contains("DetectedIssue/"),
        "{lines:?}"
    );
    let requests = fhir.search_all(&tagged("ServiceRequest")).await;
    assert_eq!(requests[0]["status"], "revoked");
    assert!(
        requests[0]["note"]
            .as_array()
            .and_then(|notes| notes.last())
            .and_then(|note| note["text"].as_str())
            .is_some_and(|n| n.contains("retracted")),
        "{:?}",
        requests[0]
    );
    let issues = fhir.search_all(&tagged("DetectedIssue")).await;
    assert_eq!(issues[0]["status"], "entered-in-error");
    assert_eq!(
        fhir.count("Observation?subject=Patient/p-ret&status=entered-in-error")
            .await,
        observations
    );

    // nothing left to take back
    let before = common::now_rfc3339();
    let mut again = options(since - time::Duration::minutes(1), until, true);
    again.window = Duration::from_secs(3600);
    let (rerun, _) = retract(&config, &again).await;
    assert_eq!((rerun.tally.written, rerun.superseded), (0, 0), "{rerun}");
    assert_eq!(fhir.history_count_since(&before).await, 0);
}
