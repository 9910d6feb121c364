//! The worker end to end against a real SEKMET FHIR server (strict inbound
//! validation unless a test says otherwise): the "done means" of issue #3.

use crate::common;

use std::collections::{BTreeSet, HashMap};

use common::{Sekmet, ServerOptions, seed};
use reportsplit::pull::{Window, collect_window, last_updated};
use reportsplit::run::Worker;
use reportsplit::run::apply::{Outcome, apply_report};
use reportsplit_fhir::plan::TAG_SYSTEM;
use serde_json::{Value, json};

/// Seeds a patient and `n` reports; returns (patient reference, report ids).
fn our_tag(report: &Value) -> Option<&Value> {
    report["meta"]["tag"]
        .as_array()?
        .iter()
        .find(|t| t["system"] == TAG_SYSTEM)
}

fn result_refs(report: &Value) -> Vec<String> {
    report["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["reference"].as_str().map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reports_are_enriched_and_a_second_sync_writes_nothing() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "fifty", 50).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 20);

    let (summary, bundles) = common::sync(&config, false).await;
    assert_eq!(summary.tally.seen, 50, "{summary}");
    assert_eq!(
        summary.tally.failed_total(),
        0,
        "strict validation must accept every resource: {summary:?}"
    );
    assert_eq!(summary.tally.written, 50, "{summary}");
    assert_eq!(bundles.len(), 50);
    assert!(
        summary.tally.observations_written >= 50,
        "at least one Observation per report: {summary}"
    );

    for id in &ids {
        let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
        assert!(our_tag(&report).is_some(), "{id} has no reportsplit tag");
        let results = result_refs(&report);
        assert!(!results.is_empty(), "{id} has no result references");
        for reference in &results {
            let observation = fhir.get(reference).await;
            assert_eq!(observation["resourceType"], "Observation");
            assert_eq!(observation["subject"]["reference"], subject.as_str());
        }
        let provenances = fhir
            .search_all(&format!("Provenance?target={}", results[0]))
            .await;
        assert_eq!(
            provenances.len(),
            1,
            "{id}: one Provenance for its Observations"
        );
        let entity = provenances[0]["entity"][0]["what"]["reference"]
            .as_str()
            .unwrap_or("");
        assert!(
            entity.starts_with(&format!("DiagnosticReport/{id}/_history/")),
            "{entity}"
        );
    }
    let observations = fhir.count(&format!("Observation?subject={subject}")).await;
    assert_eq!(observations, summary.tally.observations_written);

    // Second pass: everything is current; nothing is written at all.
    let before = common::now_rfc3339();
    let (again, bundles) = common::sync(&config, false).await;
    assert_eq!(again.tally.written, 0, "{again}");
    assert!(bundles.is_empty());
    assert_eq!(again.tally.failed_total(), 0, "{again}");
    assert_eq!(
        again.tally.current, 50,
        "every report was re-read (overlap) and found current: {again}"
    );
    assert_eq!(
        fhir.count(&format!("Observation?subject={subject}")).await,
        observations
    );
    assert_eq!(
        fhir.history_count_since(&before).await,
        0,
        "no resource version was written by the second pass"
    );

    // Reports arriving later are picked up by the next pass (the cron form
    // resumes from the saved checkpoint), each once.
    let patient_id = subject.trim_start_matches("Patient/");
    let late: Vec<Value> = (50..53)
        .map(|i| seed::report(&format!("{patient_id}-{i}"), i, patient_id, false))
        .collect();
    fhir.put_all(&late).await;
    let (third, _) = common::sync(&config, false).await;
    assert_eq!(
        (third.tally.written, third.tally.failed_total()),
        (3, 0),
        "{third}"
    );
    let saved = std::fs::read_to_string(state.path().join("state.json")).unwrap();
    assert!(
        saved.contains(third.checkpoint.as_deref().unwrap()),
        "{saved}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_prints_the_transactions_and_writes_nothing() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, _) = common::seed_reports(&fhir, "dry", 5).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 100);
    let before = common::now_rfc3339();
    let (summary, bundles) = common::sync(&config, true).await;
    assert_eq!(summary.tally.planned, 5, "{summary}");
    assert_eq!(bundles.len(), 5);
    assert!(bundles.iter().all(|b| b["type"] == "transaction"));
    assert_eq!(fhir.history_count_since(&before).await, 0);
    assert!(
        !state.path().join("state.json").exists(),
        "a dry run leaves the checkpoint alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amending_five_reports_supersedes_exactly_their_old_observations() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "amend", 12).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 100);
    let (first, _) = common::sync(&config, false).await;
    assert_eq!(
        (first.tally.written, first.tally.failed_total()),
        (12, 0),
        "{first}"
    );

    // The results of every report after the first pass.
    let mut before: HashMap<String, Vec<String>> = HashMap::new();
    for id in &ids {
        before.insert(
            id.clone(),
            result_refs(&fhir.get(&format!("DiagnosticReport/{id}")).await),
        );
    }
    // Amend five: new text (an added sentence), status amended.
    let amended: Vec<&String> = ids.iter().step_by(2).take(5).collect();
    let patient_id = subject.trim_start_matches("Patient/");
    // A report with a critical result also has its Flag (or Communication),
    // an owned resource superseded with the Observations.
    let mut old_critical_markers = 0;
    for id in &amended {
        for kind in ["Flag", "Communication"] {
            old_critical_markers += fhir
                .count(&format!("{kind}?_tag=urn%3Areportsplit%3Areport|{id}"))
                .await as usize;
        }
    }
    for id in &amended {
        let index: usize = id.rsplit('-').next().unwrap().parse().unwrap();
        let current = fhir.get(&format!("DiagnosticReport/{id}")).await;
        let mut report = seed::report(id, index, patient_id, true);
        // Keep what the first pass added, as an editing system would.
        report["result"] = current["result"].clone();
        report["meta"] = json!({"tag": current["meta"]["tag"].clone()});
        fhir.put(&report).await;
    }

    let (second, _) = common::sync(&config, false).await;
    assert_eq!(second.tally.failed_total(), 0, "{second}");
    assert_eq!(
        second.tally.written, 5,
        "only the amended reports are written: {second}"
    );
    let old_of_amended: usize = amended.iter().map(|id| before[*id].len()).sum();
    assert_eq!(
        second.tally.observations_superseded as usize,
        old_of_amended + old_critical_markers,
        "{second}"
    );

    for id in &ids {
        let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
        let results = result_refs(&report);
        let old = &before[id];
        assert!(
            old.iter().all(|r| results.contains(r)),
            "{id}: no result reference is dropped"
        );
        for reference in old {
            let observation = fhir.get(reference).await;
            if amended.contains(&id) {
                assert_eq!(
                    observation["status"], "entered-in-error",
                    "{id}: {reference} must be superseded"
                );
                assert_eq!(
                    observation["meta"]["versionId"], "2",
                    "history is kept: a new version, not a deletion"
                );
            } else {
                assert_ne!(
                    observation["status"], "entered-in-error",
                    "{id}: {reference} must stay"
                );
                assert_eq!(observation["meta"]["versionId"], "1", "{id}: untouched");
            }
        }
        if amended.contains(&id) {
            assert!(
                results.len() > old.len(),
                "{id}: new Observations were linked"
            );
            for reference in results.iter().filter(|r| !old.contains(r)) {
                assert_eq!(
                    fhir.get(reference).await["status"],
                    "amended",
                    "{reference} mirrors the report status"
                );
            }
        }
    }
    // And a third pass is quiet again.
    let (third, _) = common::sync(&config, false).await;
    assert_eq!(
        (third.tally.written, third.tally.failed_total()),
        (0, 0),
        "{third}"
    );
}

/// A report as an EHR might hold it: extensions (with a decimal whose
/// trailing zero matters), a `_conclusion` primitive extension, contained
/// resources, an R5-only element and an element no FHIR version knows,
/// timestamps with offsets and sub-second digits. Strict servers refuse
/// it, so this test runs on a lenient one.
fn rich_report(id: &str, patient: &str) -> Value {
    json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "meta": {"tag": [{"system": "urn:example:site", "code": "keep-me"}], "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]},
        "contained": [{"resourceType": "Practitioner", "id": "rad1", "name": [{"family": "Reader", "given": ["Ann"]}]}],
        "extension": [
            {"url": "urn:example:ext:dose", "valueDecimal": 13.50},
            {"url": "urn:example:ext:nested", "extension": [{"url": "a", "valueString": "x"}, {"url": "b", "valueBoolean": true}]}
        ],
        "modifierExtension": [],
        "identifier": [{"system": "urn:example:accession", "value": "ACC-0001"}],
        "status": "final",
        "category": [{"coding": [{"system": seed::RAD, "code": "RAD"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "36643-5"}], "text": "XR Chest 2 Views"},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-03-01T08:00:00.120+01:00",
        "issued": "2026-03-01T09:00:00.000+00:00",
        "resultsInterpreter": [{"reference": "#rad1"}],
        "conclusion": "1. Small right pleural effusion. 2. No pneumothorax.",
        "_conclusion": {"extension": [{"url": "urn:example:ext:conclusion-source", "valueCode": "dictated"}]},
        "note": [{"text": "R5 element"}],
        "vendorSpecific": {"score": 0.10, "flags": [1, 2.0, 3.00]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_content_survives_byte_for_byte() {
    let server = Sekmet::start_with(ServerOptions {
        lenient: true,
        ..Default::default()
    });
    let fhir = server.fhir();
    let patient = seed::unique("rich");
    fhir.put(&seed::patient(&patient)).await;
    let original = rich_report(&format!("{patient}-r"), &patient);
    fhir.put(&original).await;
    let stored = fhir.get(&format!("DiagnosticReport/{patient}-r")).await;

    let state = common::temp_state();
    let config = common::config(
        &server.base,
        state.path(),
        Some(&format!("Patient/{patient}")),
        100,
    );
    let (summary, bundles) = common::sync(&config, false).await;
    assert_eq!(
        (summary.tally.written, summary.tally.failed_total()),
        (1, 0),
        "{summary}"
    );

    let after = fhir.get(&format!("DiagnosticReport/{patient}-r")).await;
    let owned = ["meta", "result"];
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .filter(|k| !owned.contains(&k.as_str()))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&after), keys(&stored), "same elements, same order");
    for key in keys(&stored) {
        assert_eq!(
            serde_json::to_string(&after[&key]).unwrap(),
            serde_json::to_string(&stored[&key]).unwrap(),
            "{key} changed"
        );
    }
    // Timestamps kept their exact lexical form. (Decimals come back as the
    // server stores them — SEKMET itself turns 13.50 into 13.5 — and the
    // loop above shows we sent them back exactly as read.)
    let text = serde_json::to_string(&after).unwrap();
    assert!(
        text.contains("08:00:00.120+01:00") && text.contains("09:00:00.000+00:00"),
        "{text}"
    );
    // The transaction we sent carried the server's elements verbatim too.
    let sent = bundles[0]["entry"].as_array().unwrap().last().unwrap()["resource"].clone();
    for key in keys(&stored) {
        assert_eq!(
            serde_json::to_string(&sent[&key]).unwrap(),
            serde_json::to_string(&stored[&key]).unwrap(),
            "{key}"
        );
    }
    // meta: the site's tag and security label stay beside ours.
    assert_eq!(after["meta"]["security"], stored["meta"]["security"]);
    let tags = after["meta"]["tag"].as_array().unwrap();
    assert!(tags.iter().any(|t| t["code"] == "keep-me"));
    assert!(our_tag(&after).is_some());
    assert!(!result_refs(&after).is_empty());
}

/// Another system's write of report `id` over version 1, between our read
/// and our write: the server accepts it, so our `ifMatch` is now stale.
async fn their_edit_of_version_1(fhir: &common::Fhir, id: &str, theirs: &Value) {
    let response = fhir
        .request(
            reqwest::Method::PUT,
            &format!("DiagnosticReport/{id}"),
            Some(theirs),
            Some("1"),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_edit_causes_412_and_both_edits_survive() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "race", 1).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 100);
    let worker = Worker::connect(config, true).await.expect("connect");

    // Our read...
    let ours = fhir.get(&format!("DiagnosticReport/{}", ids[0])).await;
    assert_eq!(ours["meta"]["versionId"], "1");
    // ...someone else's write: an identifier and a result of their own...
    let other_observation = json!({"resourceType": "Observation", "id": format!("{}-other", ids[0]), "status": "final",
        "code": {"text": "Radiation dose"}, "valueQuantity": {"value": 2.5, "unit": "mSv"}});
    fhir.put(&other_observation).await;
    let mut theirs = ours.clone();
    theirs["identifier"] = json!([{"system": "urn:example:accession", "value": "ACC-RACE"}]);
    theirs["result"] = json!([{"reference": format!("Observation/{}-other", ids[0])}]);
    their_edit_of_version_1(&fhir, &ids[0], &theirs).await;

    // ...then our write, planned on the stale version.
    let outcome = apply_report(&worker.apply_context(false), ours)
        .await
        .expect("applied after a re-read");
    let Outcome::Written { conflicts, .. } = outcome else {
        panic!("expected a write, got {outcome:?}")
    };
    assert_eq!(conflicts, 1, "exactly one 412 and re-read");

    let after = fhir.get(&format!("DiagnosticReport/{}", ids[0])).await;
    assert_eq!(after["meta"]["versionId"], "3");
    assert_eq!(
        after["identifier"][0]["value"], "ACC-RACE",
        "their edit survives"
    );
    let results = result_refs(&after);
    assert_eq!(
        results[0],
        format!("Observation/{}-other", ids[0]),
        "their result stays first"
    );
    assert!(results.len() > 1, "our results are appended");
    assert!(our_tag(&after).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_over_equal_timestamps_loses_and_duplicates_nothing() {
    // Whole-second timestamps: the 45 reports written in one transaction share a few values.
    let server = Sekmet::start_with(ServerOptions {
        second_clock: true,
        ..Default::default()
    });
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "paging", 45).await;
    let page_size = 5;
    let reports = fhir
        .search_all(&format!("DiagnosticReport?subject={subject}&_count=100"))
        .await;
    let mut per_timestamp: HashMap<String, usize> = HashMap::new();
    for report in &reports {
        *per_timestamp
            .entry(report["meta"]["lastUpdated"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let largest = per_timestamp.values().max().copied().unwrap_or(0);
    assert!(
        largest > 2 * page_size,
        "precondition: one timestamp spans 3+ pages ({per_timestamp:?})"
    );

    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), page_size as u32);
    let worker = Worker::connect(config.clone(), false)
        .await
        .expect("connect");
    let window = Window {
        since: None,
        until: time::OffsetDateTime::now_utc() + time::Duration::seconds(2),
    };
    let collected = collect_window(&worker.client, &config.filters(), window, page_size as u32)
        .await
        .expect("window");
    let got: Vec<String> = collected
        .reports
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(got.len(), unique.len(), "no duplicates");
    assert_eq!(unique, ids.iter().collect::<BTreeSet<_>>(), "nothing lost");
    assert!(
        collected
            .reports
            .windows(2)
            .all(|w| last_updated(&w[0]) <= last_updated(&w[1])),
        "in _lastUpdated order"
    );

    // The whole sync with 9+ pages: every report written once.
    std::thread::sleep(std::time::Duration::from_millis(1100)); // `until` is exclusive and whole seconds
    let (summary, bundles) = common::sync(&config, false).await;
    assert_eq!(
        (
            summary.tally.seen,
            summary.tally.written,
            summary.tally.failed_total()
        ),
        (45, 45, 0),
        "{summary}"
    );
    let written: BTreeSet<String> = bundles
        .iter()
        .map(|b| {
            b["entry"].as_array().unwrap().last().unwrap()["resource"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(written.len(), 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_patch_method_links_the_same_way_and_survives_a_concurrent_edit() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, ids) = common::seed_reports(&fhir, "patch", 6).await;
    let state = common::temp_state();
    let mut config = common::config(&server.base, state.path(), Some(&subject), 100);
    config.write.method = reportsplit::config::WriteMethod::Patch;

    // A concurrent edit between our read and our PATCH.
    let worker = Worker::connect(config.clone(), true)
        .await
        .expect("connect");
    assert!(worker.capabilities.json_patch);
    let ours = fhir.get(&format!("DiagnosticReport/{}", ids[0])).await;
    let mut theirs = ours.clone();
    theirs["identifier"] = json!([{"system": "urn:example:accession", "value": "ACC-PATCH"}]);
    their_edit_of_version_1(&fhir, &ids[0], &theirs).await;
    let outcome = apply_report(&worker.apply_context(false), ours)
        .await
        .expect("applied");
    let Outcome::Written { conflicts, .. } = outcome else {
        panic!("expected a write, got {outcome:?}")
    };
    assert_eq!(
        conflicts, 1,
        "the PATCH met a 412 once and was repeated on the new version"
    );
    let after = fhir.get(&format!("DiagnosticReport/{}", ids[0])).await;
    assert_eq!(
        after["identifier"][0]["value"], "ACC-PATCH",
        "their edit survives"
    );
    assert!(our_tag(&after).is_some());
    let first_results = result_refs(&after);
    assert!(!first_results.is_empty());
    let provenances = fhir
        .search_all(&format!("Provenance?target={}", first_results[0]))
        .await;
    assert_eq!(
        provenances.len(),
        1,
        "no second Provenance after the re-read"
    );

    // The rest by sync; the raced report is current by now.
    let (summary, _) = common::sync(&config, false).await;
    assert_eq!(
        (
            summary.tally.written,
            summary.tally.current,
            summary.tally.failed_total()
        ),
        (5, 1, 0),
        "{summary}"
    );
    for id in &ids {
        let report = fhir.get(&format!("DiagnosticReport/{id}")).await;
        assert!(our_tag(&report).is_some(), "{id}");
        for reference in result_refs(&report) {
            assert_eq!(fhir.get(&reference).await["resourceType"], "Observation");
        }
    }
    let (again, _) = common::sync(&config, false).await;
    assert_eq!(
        (again.tally.written, again.tally.failed_total()),
        (0, 0),
        "{again}"
    );
}

/// The invariant that makes retrying a transaction POST safe (see
/// src/fhir/client.rs): a replay of a transaction that already committed —
/// what a retry after a lost response sends — changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_transaction_creates_nothing_twice() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, _) = common::seed_reports(&fhir, "replay", 2).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 100);
    let (_, bundles) = common::sync(&config, true).await;
    assert_eq!(bundles.len(), 2);

    let first = fhir
        .request(reqwest::Method::POST, "", Some(&bundles[0]), None)
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let since = common::now_rfc3339();
    let replay = fhir
        .request(reqwest::Method::POST, "", Some(&bundles[0]), None)
        .await;
    assert_eq!(
        replay.status, 412,
        "the report's If-Match fails: {}",
        replay.body
    );
    let written = fhir.search_all(&format!("_history?_since={since}")).await;
    assert!(
        written.is_empty(),
        "nothing was written by the replay: {written:?}"
    );

    // The worker then finds the report done and writes only the other one.
    let (summary, _) = common::sync(&config, false).await;
    assert_eq!(
        (
            summary.tally.written,
            summary.tally.current,
            summary.tally.failed_total()
        ),
        (1, 1, 0),
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_a_window_is_split_in_time_and_done_once() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let patient = seed::unique("split");
    fhir.put(&seed::patient(&patient)).await;
    // Three batches of four reports, more than a second apart.
    let mut ids = Vec::new();
    for batch in 0..3 {
        let reports: Vec<Value> = (batch * 4..batch * 4 + 4)
            .map(|i| seed::report(&format!("{patient}-{i}"), i, &patient, false))
            .collect();
        ids.extend(
            reports
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        fhir.put_all(&reports).await;
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let state = common::temp_state();
    let mut config = common::config(
        &server.base,
        state.path(),
        Some(&format!("Patient/{patient}")),
        3,
    );
    config.pull.max_window_reports = 5;
    let (summary, bundles) = common::sync(&config, false).await;
    assert!(summary.windows >= 3, "the backlog was split: {summary:?}");
    assert_eq!(
        (
            summary.tally.seen,
            summary.tally.written,
            summary.tally.failed_total()
        ),
        (12, 12, 0),
        "{summary}"
    );
    let written: BTreeSet<String> = bundles
        .iter()
        .map(|b| {
            b["entry"].as_array().unwrap().last().unwrap()["resource"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(written, ids.iter().cloned().collect::<BTreeSet<_>>());
    let (again, _) = common::sync(&config, false).await;
    assert_eq!(
        (again.tally.written, again.tally.failed_total()),
        (0, 0),
        "{again}"
    );
}

/// A transactions sink that asks the pass to stop once it has received
/// `after` transactions: a stop request arriving mid-pass, deterministically.
struct StopAfter {
    after: usize,
    lines: usize,
    stop: tokio_util::sync::CancellationToken,
}

impl std::io::Write for StopAfter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lines += buf.iter().filter(|&&b| b == b'\n').count();
        if self.lines >= self.after {
            self.stop.cancel();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_request_ends_the_pass_early_and_the_next_run_goes_on_from_there() {
    let server = Sekmet::start();
    let fhir = server.fhir();
    let (subject, _) = common::seed_reports(&fhir, "stop", 30).await;
    let state = common::temp_state();
    let config = common::config(&server.base, state.path(), Some(&subject), 10);

    // Asked to stop before it starts: nothing is read, no checkpoint is saved.
    let stopped = tokio_util::sync::CancellationToken::new();
    stopped.cancel();
    let summary =
        reportsplit::mode::once::run_with(config.clone(), false, &mut std::io::sink(), &stopped)
            .await
            .expect("pass");
    assert!(summary.interrupted, "{summary}");
    assert_eq!(
        (summary.tally.seen, summary.checkpoint.as_deref()),
        (0, None)
    );

    // Asked to stop after the third transaction: the reports in flight
    // finish, no other starts.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut sink = StopAfter {
        after: 3,
        lines: 0,
        stop: stop.clone(),
    };
    let first = reportsplit::mode::once::run_with(config.clone(), false, &mut sink, &stop)
        .await
        .expect("first pass");
    assert!(first.interrupted, "{first}");
    let in_flight = config.write.concurrent_reports as u64;
    assert!(
        (3..3 + in_flight).contains(&first.tally.written),
        "stopped after 3 and those in flight: {first}"
    );
    assert_eq!(first.tally.failed_total(), 0, "{first}");
    let system: String = url::form_urlencoded::byte_serialize(TAG_SYSTEM.as_bytes()).collect();
    let tagged = format!("DiagnosticReport?subject={subject}&_tag={system}|");
    assert_eq!(fhir.count(&tagged).await, first.tally.written);

    // The next run picks up exactly the rest.
    let (second, _) = common::sync(&config, false).await;
    assert!(!second.interrupted, "{second}");
    assert_eq!(
        (
            first.tally.written + second.tally.written,
            second.tally.failed_total()
        ),
        (30, 0),
        "{second}"
    );
    assert_eq!(fhir.count(&tagged).await, 30);
    assert_eq!(
        fhir.count(&format!("Observation?subject={subject}")).await,
        first.tally.observations_written + second.tally.observations_written,
        "nothing written twice"
    );
}
