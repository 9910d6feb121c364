//! The worker's overhead over the server alone (issue #3): a 1,000-report
//! sync against SEKMET, against the time SEKMET needs for the same
//! transactions POSTed directly by a plain sequential client. Ignored by
//! default (about a minute or two); run with scripts/measure-overhead.sh or
//! `cargo test --test it overhead -- --ignored --nocapture`. REPORTSPLIT_MEASURE_REPORTS
//! changes the number of reports.

use crate::common;

use std::time::Instant;

use common::{Sekmet, seed};
use reportsplit::run::Worker;
use reportsplit_fhir::text::report_text;
use reportsplit_split::extract_as;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run explicitly"]
async fn sync_overhead_against_the_server_alone() {
    let n: usize = std::env::var("REPORTSPLIT_MEASURE_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // Four servers holding the same reports: one for the dry run and the
    // sequential sync, one per other sync, one for the replay.
    let servers: Vec<Sekmet> = (0..4).map(|_| Sekmet::start()).collect();
    let patient = seed::unique("measure");
    let mut resources = vec![seed::patient(&patient)];
    resources.extend(seed::reports(&patient, &patient, n));
    for server in &servers {
        server.fhir().put_all(&resources).await;
    }
    let subject = format!("Patient/{patient}");
    // `reports` in flight (planning overlaps the server's work), at most
    // `requests` requests at the server at once.
    let config_for = |server: &Sekmet, state: &std::path::Path, reports: usize, requests: usize| {
        let mut config = common::config(&server.base, state, Some(&subject), 100);
        config.write.concurrent_reports = reports;
        config.fhir.max_concurrent_requests = requests;
        config
    };

    // 1. The transactions the worker sends (a dry run plans exactly them).
    let state = common::temp_state();
    let (planned, bundles) = common::sync(&config_for(&servers[0], state.path(), 1, 1), true).await;
    assert_eq!(bundles.len(), n, "{planned}");

    // 2. The pipeline without the server: text, split, plan, for every report.
    let reports = servers[0]
        .fhir()
        .search_all(&format!("DiagnosticReport?subject={subject}&_count=500"))
        .await;
    let worker = Worker::connect(config_for(&servers[0], state.path(), 1, 1), true)
        .await
        .unwrap();
    let lexicon_start = Instant::now();
    let _lexicon = reportsplit_split::Lexicon::builtin();
    let lexicon_build = lexicon_start.elapsed().as_secs_f64();
    let started = Instant::now();
    let (mut t_text, mut t_split) = (0.0, 0.0);
    let mut planned_count = 0;
    for report in &reports {
        let t0 = Instant::now();
        let text = report_text(report, &worker.limits).unwrap();
        let t1 = Instant::now();
        let extraction = extract_as(&text.text, &worker.lexicon, text.headerless);
        t_text += (t1 - t0).as_secs_f64();
        t_split += t1.elapsed().as_secs_f64();
        if let reportsplit_fhir::plan::Plan::Write(_) =
            reportsplit_fhir::plan::plan(report, &text, &extraction, &[], &worker.run).unwrap()
        {
            planned_count += 1;
        }
    }
    let pipeline = started.elapsed().as_secs_f64();
    assert_eq!(planned_count, n);
    drop(worker);

    // 3. SEKMET alone: the same transactions, POSTed one after the other.
    let replay_server = servers[2].fhir();
    let started = Instant::now();
    for bundle in &bundles {
        let response = replay_server
            .request(reqwest::Method::POST, "", Some(bundle), None)
            .await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
    let replay = started.elapsed().as_secs_f64();

    // 4. The worker, sequential (one report, one request at a time) like the replay...
    let (sequential, _) = common::sync(&config_for(&servers[0], state.path(), 1, 1), false).await;
    assert_eq!(
        (
            sequential.tally.written as usize,
            sequential.tally.failed_total()
        ),
        (n, 0),
        "{sequential}"
    );
    // ...with planning overlapping the server's work, the server still seeing
    // one request at a time...
    let state2 = common::temp_state();
    let (overlapped, _) = common::sync(&config_for(&servers[3], state2.path(), 2, 1), false).await;
    assert_eq!(
        (
            overlapped.tally.written as usize,
            overlapped.tally.failed_total()
        ),
        (n, 0),
        "{overlapped}"
    );
    // ...and with its default concurrency (4 reports, 4 requests in flight).
    let state4 = common::temp_state();
    let (concurrent, _) = common::sync(&config_for(&servers[1], state4.path(), 4, 4), false).await;
    assert_eq!(
        (
            concurrent.tally.written as usize,
            concurrent.tally.failed_total()
        ),
        (n, 0),
        "{concurrent}"
    );

    let line = |name: &str, seconds: f64| {
        println!(
            "{name:<44} {seconds:>8.2} s  {:>8.1} reports/s  ratio to replay {:.3}",
            n as f64 / seconds,
            seconds / replay
        )
    };
    println!(
        "\n{n} reports, {} Observations planned ({} build)",
        bundles
            .iter()
            .flat_map(|bundle| bundle["entry"].as_array().into_iter().flatten())
            .filter(|entry| entry["resource"]["resourceType"] == "Observation")
            .count(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    line("pipeline without server (text+split+plan)", pipeline);
    println!(
        "  of which text {t_text:.3} s, split {t_split:.3} s; building the lexicon once: {lexicon_build:.3} s"
    );
    line("SEKMET alone: sequential replay of the POSTs", replay);
    line(
        "reportsplit sync, 1 report, 1 request",
        sequential.duration_secs,
    );
    line(
        "reportsplit sync, 2 reports, 1 request",
        overlapped.duration_secs,
    );
    line(
        "reportsplit sync, 4 reports, 4 requests",
        concurrent.duration_secs,
    );
    println!(
        "worker requests: sequential {} (search pages + metadata + transactions), retries {}",
        sequential.requests, sequential.retries
    );
}
