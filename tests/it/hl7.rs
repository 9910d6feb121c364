//! HL7 v2 ORU^R01 in, against a real SEKMET FHIR server (strict
//! validation): the `hl7` files mode (store, enrich, resend, correction,
//! cancellation, a stale resend, refused and ignored messages and their
//! dead letters), the `mllp` listener with a real MLLP peer (python-hl7's
//! `mllp_send`, scripts/mllp-send.sh) and with our own sender (the same
//! message on two connections at once; bad messages answered AE/AR on a
//! connection that goes on serving), and every DiagnosticReport shape the
//! mapping makes through strict SEKMET and @medplum/core's validateResource.
//!
//! The 1,000-message run with a kill -9 of the listener is
//! [`long_mllp_with_kill`], ignored here and run by scripts/long-mllp.sh.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Fhir, Sekmet};
use futures::{SinkExt as _, StreamExt as _};
use reportsplit::mode::hl7::{Hl7FilesOptions, Hl7FilesSummary};
use reportsplit::mode::mllp::codec::MllpCodec;
use reportsplit::mode::mllp::{MllpOptions, run_with};
use serde_json::{Value, json};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

pub(crate) const PATIENTS: &str = "urn:oid:1.2.826.0.1.3680043.2.1001.1";
pub(crate) const ORDERS: &str = "urn:oid:1.2.826.0.1.3680043.2.1001.2";

pub(crate) fn config(base: &str, state: &Path) -> reportsplit::config::Config {
    let text = format!(
        "[fhir]\nurl = \"{base}\"\ntimeout_secs = 30\nmax_concurrent_requests = 8\n\
         [state]\ndir = \"{}\"\n\
         [hl7]\npatient = \"create\"\nutc_offset = \"+01:00\"\nidle_timeout_secs = 30\n\
         [hl7.authorities]\nNGH = \"{PATIENTS}\"\nNGRIS = \"{ORDERS}\"\n",
        state.display()
    );
    let config = reportsplit::config::Config::parse(&text).expect("test config");
    config.validate().expect("valid test config");
    config
}

/// An ORU^R01 of ours: `status` (OBR-25) at `reported` (OBR-22), its text
/// one TX OBX a line.
pub(crate) fn oru(
    control_id: &str,
    patient: &str,
    order: &str,
    status: &str,
    reported: &str,
    lines: &[&str],
) -> String {
    let mut message = format!(
        "MSH|^~\\&|RIS|NORTHGEN|REPORTSPLIT|HUB|{reported}||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r\
         PID|1||{patient}^^^NGH^MR\r\
         ORC|RE||{order}^NGRIS\r\
         OBR|1||{order}^NGRIS|71250^CT chest without contrast^C4|||202603140800|||||||||||||||{reported}||CT|{status}\r"
    );
    for (n, line) in lines.iter().enumerate() {
        message.push_str(&format!(
            "OBX|{}|TX|71250^CT chest^C4|1|{line}||||||{status}\r",
            n + 1
        ));
    }
    message
}

pub(crate) fn unique(prefix: &str) -> String {
    common::seed::unique(prefix)
}

pub(crate) async fn reports_of(fhir: &Fhir, order: &str) -> Vec<Value> {
    fhir.search_all(&format!("DiagnosticReport?identifier={ORDERS}|{order}"))
        .await
}

/// The Observations a report links, by status.
async fn linked(fhir: &Fhir, report: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for link in report["result"].as_array().into_iter().flatten() {
        let reference = link["reference"].as_str().expect("a reference");
        out.push(fhir.get(reference).await);
    }
    out
}

async fn run_files(
    config: &reportsplit::config::Config,
    inputs: Vec<std::path::PathBuf>,
    dead_letter: &Path,
) -> Hl7FilesSummary {
    let options = Hl7FilesOptions {
        config: "unused.toml".into(),
        inputs,
        concurrency: 4,
        dead_letter: Some(dead_letter.to_path_buf()),
        log_every: Duration::from_secs(60),
    };
    reportsplit::mode::hl7::run_with(config.clone(), &options, CancellationToken::new())
        .await
        .expect("hl7 files run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_store_enrich_resend_correct_cancel_and_refuse() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let state = common::temp_state();
    let config = config(&sekmet.base, state.path());
    let dead = state.path().join("dead.ndjson");
    let patient = unique("hl7p");
    let order = unique("hl7o");
    let final_text = [
        "FINDINGS: 8 mm nodule in the right upper lobe.",
        "No pleural effusion.",
        "IMPRESSION: Right upper lobe nodule.",
    ];
    let final_message = oru("F-1", &patient, &order, "F", "202603140910", &final_text);
    let unknown_authority = final_message
        .replace("^^^NGH^MR", "^^^ELSEWHERE^MR")
        .replace("|F-1|", "|F-2|");
    let training = final_message.replace("|F-1|P|", "|F-3|T|");
    let batch = format!(
        "FHS|^~\\&|RIS\nBHS|^~\\&|RIS\n{final_message}{unknown_authority}{training}BTS|3\nFTS|1\n"
    );
    let first = state.path().join("a-final.hl7");
    std::fs::write(&first, batch.replace('\r', "\r\n")).expect("write the batch");

    // 1. Stored, enriched; the refused message is a dead letter; the other one ignored.
    let summary = run_files(&config, vec![first.clone()], &dead).await;
    assert_eq!(summary.tally.messages, 3, "{summary}");
    assert_eq!(
        (
            summary.tally.accepted,
            summary.tally.ignored,
            summary.tally.refused_total()
        ),
        (1, 1, 1),
        "{summary}"
    );
    assert_eq!(summary.tally.stored.get("created"), Some(&1), "{summary}");
    assert_eq!(summary.tally.enrichment.written, 1, "{summary}");
    let reports = reports_of(&fhir, &order).await;
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report["status"], "final");
    assert_eq!(report["issued"], "2026-03-14T09:10:00+01:00");
    let subject = report["subject"]["reference"]
        .as_str()
        .expect("a subject")
        .to_owned();
    let patient_read = fhir.get(&subject).await;
    assert_eq!(patient_read["identifier"][0]["value"], patient.as_str());
    let first_observations = linked(&fhir, report).await;
    assert!(!first_observations.is_empty(), "enriched: {report}");
    let letters = std::fs::read_to_string(&dead).expect("dead letters");
    assert_eq!(letters.lines().count(), 1, "{letters}");
    assert!(
        letters.contains("\"control_id\":\"F-2\"") && letters.contains("hl7-unusable-pid-3"),
        "{letters}"
    );
    assert!(
        !letters.contains("nodule") && !letters.contains(&patient),
        "no content in a dead letter: {letters}"
    );

    // 2. The same file again: nothing new, not even a version.
    let version = report["meta"]["versionId"].clone();
    let again = run_files(&config, vec![first.clone()], &dead).await;
    assert_eq!(again.tally.stored.get("unchanged"), Some(&1), "{again}");
    assert_eq!(again.tally.enrichment.current, 1, "{again}");
    let reports = reports_of(&fhir, &order).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["meta"]["versionId"], version);

    // 3. A correction supersedes.
    let corrected = oru(
        "C-1",
        &patient,
        &order,
        "C",
        "202603141155",
        &[
            "FINDINGS: 8 mm nodule in the right upper lobe.",
            "Small left pleural effusion.",
            "IMPRESSION: Right upper lobe nodule. Small left pleural effusion.",
        ],
    );
    let second = state.path().join("b-corrected.hl7");
    std::fs::write(&second, &corrected).expect("write");
    let summary = run_files(&config, vec![second], &dead).await;
    assert_eq!(summary.tally.stored.get("updated"), Some(&1), "{summary}");
    assert!(
        summary.tally.enrichment.observations_superseded > 0,
        "{summary}"
    );
    let reports = reports_of(&fhir, &order).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["status"], "corrected");
    let superseded = first_observations
        .iter()
        .filter(|o| o["id"].is_string())
        .count();
    let mut entered_in_error = 0;
    for observation in &first_observations {
        let now = fhir
            .get(&format!(
                "Observation/{}",
                observation["id"].as_str().expect("id")
            ))
            .await;
        if now["status"] == "entered-in-error" {
            entered_in_error += 1;
        }
    }
    assert!(entered_in_error > 0 && entered_in_error <= superseded);

    // 4. A cancellation withdraws: nothing linked stays in force.
    let cancelled = oru("X-1", &patient, &order, "X", "202603141255", &[]);
    let third = state.path().join("c-cancelled.hl7");
    std::fs::write(&third, &cancelled).expect("write");
    let summary = run_files(&config, vec![third], &dead).await;
    assert_eq!(summary.tally.stored.get("updated"), Some(&1), "{summary}");
    let reports = reports_of(&fhir, &order).await;
    assert_eq!(reports[0]["status"], "cancelled");
    let in_force = linked(&fhir, &reports[0])
        .await
        .into_iter()
        .filter(|o| o["status"] != "entered-in-error")
        .count();
    assert_eq!(in_force, 0, "withdrawn: {}", reports[0]);

    // 5. The first message again, late: older than what is stored, left alone.
    let summary = run_files(&config, vec![first], &dead).await;
    assert_eq!(summary.tally.stored.get("stale"), Some(&1), "{summary}");
    let reports = reports_of(&fhir, &order).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["status"], "cancelled");
}

/// A listener in this process with its writer, on a free port.
pub(crate) struct Listening {
    pub(crate) address: std::net::SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), reportsplit::mode::mllp::MllpModeError>>,
    spool: std::path::PathBuf,
    /// The PostgreSQL spool's database, when the state is there.
    pg_url: Option<String>,
}

pub(crate) async fn listen(config: reportsplit::config::Config, writer: bool) -> Listening {
    listen_with(config, writer, None).await
}

/// [`listen`], serving `/metrics` and `/healthz` on `metrics_listen`.
async fn listen_with(
    config: reportsplit::config::Config,
    writer: bool,
    metrics_listen: Option<std::net::SocketAddr>,
) -> Listening {
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spool = reportsplit::mode::mllp::spool_dir(&config).join("incoming");
    let pg_url = config.state.url.clone();
    let options = MllpOptions {
        config: "unused.toml".into(),
        listen: "127.0.0.1:0".parse().expect("an address"),
        concurrency: 4,
        writer,
        state_url: None,
        metrics_listen,
    };
    let token = stop.clone();
    let task = tokio::spawn(async move {
        run_with(config, &options, token, move |address| {
            let _ = tx.send(address);
        })
        .await
    });
    let address = rx.await.expect("the listener binds");
    Listening {
        address,
        stop,
        task,
        spool,
        pg_url,
    }
}

impl Listening {
    /// Waits until the writer has emptied the spool.
    pub(crate) async fn drained(&self) {
        for _ in 0..600 {
            let waiting = match &self.pg_url {
                Some(url) => pg_pending(url).await,
                None => std::fs::read_dir(&self.spool)
                    .map(|d| {
                        d.filter_map(Result::ok)
                            .filter(|e| e.file_name().to_string_lossy().ends_with(".hl7"))
                            .count()
                    })
                    .unwrap_or(0),
            };
            if waiting == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the spool was not drained");
    }

    pub(crate) async fn stop(self) {
        self.stop.cancel();
        self.task
            .await
            .expect("no panic")
            .expect("the listener stops cleanly");
    }
}

/// Messages waiting in the PostgreSQL spool of `url`.
pub(crate) async fn pg_pending(url: &str) -> usize {
    use deadpool_postgres::tokio_postgres;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the spool's database");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FROM reportsplit_hl7_message WHERE status = 'pending'",
            &[],
        )
        .await
        .expect("count the spool");
    usize::try_from(row.get::<_, i64>(0)).unwrap_or(usize::MAX)
}

/// Our sender: one connection, each message sent and its ACK read.
pub(crate) async fn send_all(address: std::net::SocketAddr, messages: &[String]) -> Vec<String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let mut framed = Framed::new(stream, MllpCodec::new(1 << 20));
    let mut acks = Vec::new();
    for message in messages {
        framed.send(message.as_bytes()).await.expect("sent");
        let ack = framed.next().await.expect("an ACK").expect("a frame");
        acks.push(String::from_utf8_lossy(&ack).into_owned());
    }
    acks
}

pub(crate) fn msa(ack: &str) -> &str {
    ack.split('\r')
        .find(|s| s.starts_with("MSA|"))
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mllp_peer_resends_duplicates_and_bad_messages() {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let state = common::temp_state();
    let listening = listen(config(&sekmet.base, state.path()), true).await;
    let patient = unique("mllpp");
    let order = unique("mllpo");
    let good = oru(
        "G-1",
        &patient,
        &order,
        "F",
        "202603150900",
        &["IMPRESSION: No acute intracranial abnormality."],
    );

    // A real peer: python-hl7's mllp_send, three messages in one file.
    let file = state.path().join("peer.mllp");
    let unusable = good.replace("|G-1|", "|G-2|").replace("|CT|F\r", "|CT|Q\r");
    let mut framed = Vec::new();
    for message in [&good, &unusable, &"this is not HL7 at all".to_owned()] {
        framed.push(0x0B);
        framed.extend_from_slice(message.as_bytes());
        framed.extend_from_slice(&[0x1C, 0x0D]);
    }
    std::fs::write(&file, &framed).expect("write");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mllp-send.sh");
    let output = tokio::process::Command::new("bash")
        .arg(&script)
        .args(["-p", &listening.address.port().to_string(), "-f"])
        .arg(&file)
        .arg("127.0.0.1")
        .output()
        .await
        .expect("mllp_send runs");
    let printed = String::from_utf8_lossy(&output.stdout).replace('\r', "\n");
    assert!(
        output.status.success(),
        "mllp_send: {printed} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("MSA|AA|G-1"), "{printed}");
    assert!(
        printed.contains("MSA|AE|G-2") && printed.contains("ERR||OBR^1^25|103^"),
        "{printed}"
    );
    assert!(
        printed.lines().any(|l| l.trim_end_matches('|') == "MSA|AR"),
        "{printed}"
    );
    listening.drained().await;
    let reports = reports_of(&fhir, &order).await;
    assert_eq!(reports.len(), 1);
    assert!(!linked(&fhir, &reports[0]).await.is_empty(), "enriched");
    let version = reports[0]["meta"]["versionId"].clone();

    // The peer resends it (a lost ACK): acknowledged, nothing written twice.
    let acks = send_all(listening.address, std::slice::from_ref(&good)).await;
    assert_eq!(msa(&acks[0]), "MSA|AA|G-1");
    listening.drained().await;
    let reports = reports_of(&fhir, &order).await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["meta"]["versionId"], version);

    // One new message on two connections at once: one report.
    let other = unique("mllpo");
    let twice = oru(
        "D-1",
        &patient,
        &other,
        "F",
        "202603150930",
        &["IMPRESSION: Normal study."],
    );
    let (a, b) = tokio::join!(
        send_all(listening.address, std::slice::from_ref(&twice)),
        send_all(listening.address, std::slice::from_ref(&twice))
    );
    assert_eq!((msa(&a[0]), msa(&b[0])), ("MSA|AA|D-1", "MSA|AA|D-1"));
    listening.drained().await;
    assert_eq!(reports_of(&fhir, &other).await.len(), 1);

    // Bad messages on a connection, then a good one: it goes on serving.
    let acks = send_all(
        listening.address,
        &[
            "MSH|^~\\&|RIS|NORTHGEN|||20260315||ADT^A01|B-1|P|2.5.1\rPID|1||1^^^NGH\r".to_owned(),
            "\u{1}\u{2}garbage".to_owned(),
            good.replace("|G-1|", "|G-3|"),
        ],
    )
    .await;
    assert_eq!(msa(&acks[0]), "MSA|AR|B-1", "{acks:?}");
    assert_eq!(msa(&acks[1]).trim_end_matches('|'), "MSA|AR", "{acks:?}");
    assert_eq!(msa(&acks[2]), "MSA|AA|G-3", "{acks:?}");
    listening.drained().await;
    listening.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_report_and_patient_shape_is_valid_for_strict_sekmet_and_medplum() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/hl7/tests/messages");
    let config = config("http://127.0.0.1:9/fhir", Path::new("/tmp"));
    let mut settings = config.hl7.settings().expect("settings");
    for (authority, system) in [
        ("NGORDER", "urn:oid:1.2.826.0.1.3680043.2.1001.3"),
        ("SVH", "https://southview.example/fhir/mrn"),
        ("EBH", "https://eastbay.example/ids/mrn"),
        ("WEH", "https://westend.example/ids"),
    ] {
        settings.authorities.insert(authority.into(), system.into());
    }
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let patient = fhir
        .request(
            reqwest::Method::POST,
            "Patient",
            Some(&json!({"resourceType": "Patient"})),
            None,
        )
        .await;
    assert_eq!(patient.status, 201, "{}", patient.body);
    let subject = format!("Patient/{}", patient.body["id"].as_str().expect("an id"));
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("messages")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    names.sort();
    let mut shapes = Vec::new();
    for path in names {
        let bytes = std::fs::read(&path).expect("a message");
        if let reportsplit_hl7::Verdict::Accept(reports) =
            reportsplit_hl7::evaluate(&bytes, &settings).verdict
        {
            if let Some(first) = reports.first() {
                // The Patient `hl7.patient = "create"` would create.
                let mut patient = first.patient_resource.clone();
                let created = fhir
                    .request(reqwest::Method::POST, "Patient", Some(&patient), None)
                    .await;
                assert_eq!(created.status, 201, "{}: {}", path.display(), created.body);
                patient["id"] = json!(format!("p{}", shapes.len()));
                shapes.push(patient);
            }
            for mapped in reports {
                let mut report = mapped.report;
                report["subject"] = json!({"reference": subject});
                let created = fhir
                    .request(
                        reqwest::Method::POST,
                        "DiagnosticReport",
                        Some(&report),
                        None,
                    )
                    .await;
                assert_eq!(created.status, 201, "{}: {}", path.display(), created.body);
                report["id"] = json!(format!("r{}", shapes.len()));
                shapes.push(report);
            }
        }
    }
    assert!(shapes.len() >= 18, "{} shapes", shapes.len());
    for gender in ["female", "male", "other"] {
        assert!(
            shapes
                .iter()
                .any(|s| s["resourceType"] == "Patient" && s["gender"] == gender),
            "a Patient with gender {gender}"
        );
    }
    let ndjson: String = shapes.iter().map(|r| format!("{r}\n")).collect();
    let Some((valid, summary)) = crate::map_validate::validate(&ndjson) else {
        eprintln!(
            "SKIPPED: node/npm not found; the FHIR validator (scripts/medplum.sh) did not run"
        );
        return;
    };
    assert!(valid, "invalid DiagnosticReports or Patients: {summary:#}");
    assert_eq!(
        summary["validated"].as_u64(),
        Some(shapes.len() as u64),
        "{summary}"
    );
}

/// The long run of scripts/long-mllp.sh (ignored in `cargo test`): the
/// `reportsplit mllp` binary against SEKMET, HL7_LONG_MESSAGES messages
/// (1,000) over HL7_LONG_CONNECTIONS connections (10), each sender resending
/// what was not acknowledged; the listener is killed (SIGKILL) when half
/// the messages are acknowledged and started again. Then every message
/// acknowledged AA is on the server exactly once. With HL7_LONG_SPOOL_ONLY=1
/// the listener runs without its writer (the spool alone) and no kill.
/// With HL7_LONG_STATE_URL (postgres://…) the spool is in PostgreSQL.
/// Prints the figures: messages/s end to end, ACK latency p50/p99.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: run by scripts/long-mllp.sh"]
async fn long_mllp_with_kill() {
    let messages: usize = std::env::var("HL7_LONG_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let connections: usize = std::env::var("HL7_LONG_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let spool_only = std::env::var("HL7_LONG_SPOOL_ONLY").is_ok_and(|v| v == "1");
    let state_url = std::env::var("HL7_LONG_STATE_URL").ok();
    kill_run(messages, connections, spool_only, state_url.as_deref()).await;
}

/// `messages` sent over `connections` to the `reportsplit mllp` binary
/// (its spool in PostgreSQL at `state_url`, else in its state directory),
/// each sender resending what was not acknowledged; unless `spool_only`,
/// the listener is killed (SIGKILL) when half are acknowledged and started
/// again, and then every message acknowledged AA must be on the server
/// exactly once.
pub(crate) async fn kill_run(
    messages: usize,
    connections: usize,
    spool_only: bool,
    state_url: Option<&str>,
) {
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let state = common::temp_state();
    let config_path = state.path().join("site.toml");
    let port = common::free_port();
    let text = format!(
        "[fhir]\nurl = \"{}\"\ntimeout_secs = 60\nmax_concurrent_requests = 8\n[state]\ndir = \"{}\"\n\
         [hl7]\npatient = \"create\"\n[hl7.authorities]\nNGH = \"{PATIENTS}\"\nNGRIS = \"{ORDERS}\"\n",
        sekmet.base,
        state.path().display()
    );
    std::fs::write(&config_path, text).expect("config");
    let start_listener = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_reportsplit"));
        command
            .args(["mllp", "-c"])
            .arg(&config_path)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--concurrency",
                "8",
            ])
            .env("REPORTSPLIT_LOG", "warn");
        if spool_only {
            command.arg("--spool-only");
        }
        if let Some(url) = state_url {
            command.args(["--state", url]);
        }
        command.spawn().expect("reportsplit mllp starts")
    };
    let mut child = start_listener();
    let run = unique("long");
    let all: Vec<(String, String)> = (0..messages)
        .map(|n| {
            let order = format!("{run}-{n}");
            let control = format!("L{n}");
            let text = oru(
                &control,
                &format!("{run}-p{}", n % 50),
                &order,
                "F",
                "202603160800",
                &[
                    "FINDINGS: 6 mm nodule in the left lower lobe.",
                    "IMPRESSION: Left lower lobe nodule; follow-up CT in 12 months.",
                ],
            );
            (order, text)
        })
        .collect();
    let all = Arc::new(all);
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(usize, Duration)>::new()));
    let started = Instant::now();
    let mut senders = Vec::new();
    for c in 0..connections {
        let (all, acked) = (all.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            let mut n = c;
            let mut framed: Option<Framed<tokio::net::TcpStream, MllpCodec>> = None;
            let mut attempts = 0;
            while n < all.len() {
                attempts += 1;
                assert!(attempts < 20 * all.len(), "too many attempts");
                if framed.is_none() {
                    match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                        Ok(stream) => framed = Some(Framed::new(stream, MllpCodec::new(1 << 20))),
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                }
                let Some(link) = framed.as_mut() else {
                    continue;
                };
                let sent = Instant::now();
                let answer = async {
                    link.send(all[n].1.as_bytes()).await.ok()?;
                    tokio::time::timeout(Duration::from_secs(30), link.next())
                        .await
                        .ok()??
                        .ok()
                }
                .await;
                match answer {
                    Some(ack) if msa(&String::from_utf8_lossy(&ack)).starts_with("MSA|AA|") => {
                        acked.lock().expect("lock").push((n, sent.elapsed()));
                        n += connections;
                    }
                    // No ACK (the listener died): resend on a new connection.
                    _ => framed = None,
                }
            }
        }));
    }
    if !spool_only {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if acked.lock().expect("lock").len() >= messages / 2 {
                break;
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        eprintln!(
            "killed the listener (SIGKILL) after {} ACKs",
            acked.lock().expect("lock").len()
        );
        child = start_listener();
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    let acked_at = started.elapsed();
    let mut latencies: Vec<Duration> = acked
        .lock()
        .expect("lock")
        .iter()
        .map(|(_, l)| *l)
        .collect();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let spool = state.path().join("hl7-spool/incoming");
    if !spool_only {
        for _ in 0..3000 {
            let waiting = match state_url {
                Some(url) => pg_pending(url).await,
                None => std::fs::read_dir(&spool)
                    .map(|d| {
                        d.filter_map(Result::ok)
                            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                            .count()
                    })
                    .unwrap_or(0),
            };
            if waiting == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let written_at = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "{messages} messages, {connections} connections, {} spool{}: all ACKed in {:.1}s ({:.1} msg/s); ACK latency p50 {:?} p99 {:?}",
        if state_url.is_some() {
            "PostgreSQL"
        } else {
            "file"
        },
        if spool_only {
            ", spool only"
        } else {
            ", listener killed once"
        },
        acked_at.as_secs_f64(),
        messages as f64 / acked_at.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
    let acked = acked.lock().expect("lock").clone();
    assert_eq!(
        acked.len(),
        messages,
        "every message ACKed AA once by its sender"
    );
    if spool_only {
        return;
    }
    eprintln!(
        "all written in {:.1}s ({:.1} msg/s end to end)",
        written_at.as_secs_f64(),
        messages as f64 / written_at.as_secs_f64()
    );
    for (n, _) in &acked {
        let order = &all[*n].0;
        let count = reports_of(&fhir, order).await.len();
        assert_eq!(count, 1, "{order}: {count} reports");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_server_does_not_stop_the_feed() {
    let state = common::temp_state();
    let nobody = format!("http://127.0.0.1:{}/fhir", common::free_port());
    let listening = listen(config(&nobody, state.path()), true).await;
    let message = oru(
        "S-1",
        &unique("downp"),
        &unique("downo"),
        "F",
        "202603170900",
        &["IMPRESSION: Normal."],
    );
    let acks = send_all(listening.address, std::slice::from_ref(&message)).await;
    assert_eq!(msa(&acks[0]), "MSA|AA|S-1", "{acks:?}");
    let spooled: Vec<_> = std::fs::read_dir(&listening.spool)
        .expect("the spool")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".hl7"))
        .collect();
    assert_eq!(spooled.len(), 1, "the message waits in the spool");
    assert_eq!(
        std::fs::read(spooled[0].path()).expect("spooled"),
        message.as_bytes()
    );
    listening.stop().await;
}

/// The binary's `hl7` command: a bad `[hl7]` key is a configuration error
/// naming it (exit 2); an unreachable server ends the run with exit 4.
#[test]
fn the_hl7_command_exits_by_the_documented_codes() {
    let state = common::temp_state();
    let nobody = format!("http://127.0.0.1:{}/fhir", common::free_port());
    let write_config = |extra: &str| {
        let path = state.path().join("site.toml");
        let text = format!(
            "[fhir]\nurl = \"{nobody}\"\ntimeout_secs = 2\nmax_retries = 0\n[state]\ndir = \"{}\"\n[hl7]\n{extra}\n",
            state.path().display()
        );
        std::fs::write(&path, text).expect("config");
        path
    };
    let run = |config: &Path| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reportsplit"))
            .args(["hl7", "-c"])
            .arg(config)
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("reportsplit hl7 starts");
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        let _ = stdin.write_all(oru("C-1", "p", "o", "F", "202603170900", &["Normal."]).as_bytes());
        drop(stdin);
        child.wait_with_output().expect("it ends")
    };
    let output = run(&write_config("utc_offset = \"CET\""));
    assert_eq!(output.status.code(), Some(2), "{}", common::stderr(&output));
    assert!(
        common::stderr(&output).contains("hl7.utc_offset"),
        "{}",
        common::stderr(&output)
    );
    let output = run(&write_config(""));
    assert_eq!(output.status.code(), Some(4), "{}", common::stderr(&output));
}

/// A message that fails for good (its patient unknown, `patient =
/// "resolve"`) was ACKed AA (it is durable); the writer buries it: the
/// message and a note saying why in the spool's `dead/`, owner-only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_failing_for_good_is_a_dead_letter_in_the_spool() {
    let sekmet = Sekmet::start();
    let state = common::temp_state();
    let mut config = config(&sekmet.base, state.path());
    config.hl7.patient = reportsplit::hl7::PatientMode::Resolve;
    let dead = reportsplit::mode::mllp::spool_dir(&config).join("dead");
    let listening = listen(config, true).await;
    let message = oru(
        "R-1",
        &unique("nobody"),
        &unique("deado"),
        "F",
        "202603170900",
        &["IMPRESSION: Normal."],
    );
    let acks = send_all(listening.address, std::slice::from_ref(&message)).await;
    assert_eq!(msa(&acks[0]), "MSA|AA|R-1", "{acks:?}");
    listening.drained().await;
    let buried: Vec<_> = std::fs::read_dir(&dead)
        .expect("dead letters")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    let letter = buried
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".hl7"))
        .expect("the message is buried");
    assert_eq!(
        std::fs::read(letter).expect("the message"),
        message.as_bytes()
    );
    let note = std::fs::read_to_string(format!("{}.why.json", letter.display())).expect("its note");
    assert!(
        note.contains("\"reason\":\"patient-not-found\"")
            && note.contains("\"control_id\":\"R-1\""),
        "{note}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(letter)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    listening.stop().await;
}

/// `--metrics-listen`: `/healthz` answers while the listener runs, and
/// `/metrics` counts messages received, ACKs by code, messages by outcome
/// (the listener's and the writer's), the spool depth and the ACK latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_healthz_count_messages_acks_and_the_spool() {
    let sekmet = Sekmet::start();
    let state = common::temp_state();
    let address: std::net::SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .expect("an address");
    let listening = listen_with(config(&sekmet.base, state.path()), true, Some(address)).await;
    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("/healthz answers");
    assert_eq!(health.status(), 200);
    let good = oru(
        "M-1",
        &unique("metp"),
        &unique("meto"),
        "F",
        "202603170900",
        &["IMPRESSION: Normal."],
    );
    let ignored = good.replace("|M-1|P|", "|M-2|T|");
    let unusable = good.replace("|M-1|", "|M-3|").replace("|CT|F\r", "|CT|Q\r");
    let acks = send_all(
        listening.address,
        &[good, ignored, unusable, "not HL7".to_owned()],
    )
    .await;
    let codes: Vec<&str> = acks.iter().map(|a| &msa(a)[..6]).collect();
    assert_eq!(codes, ["MSA|AA", "MSA|AA", "MSA|AE", "MSA|AR"], "{acks:?}");
    listening.drained().await;
    let mut text = String::new();
    for _ in 0..100 {
        text = http
            .get(format!("http://{address}/metrics"))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("a body");
        if text.contains("reportsplit_hl7_messages_total{outcome=\"written\"} 1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in [
        "reportsplit_hl7_messages_received_total 4",
        "reportsplit_hl7_acks_total{code=\"AA\"} 2",
        "reportsplit_hl7_acks_total{code=\"AE\"} 1",
        "reportsplit_hl7_acks_total{code=\"AR\"} 1",
        "reportsplit_hl7_messages_total{outcome=\"spooled\"} 1",
        "reportsplit_hl7_messages_total{outcome=\"ignored\"} 1",
        "reportsplit_hl7_messages_total{outcome=\"written\"} 1",
        "reportsplit_hl7_ack_duration_seconds_count{code=\"AA\"} 2",
        "reportsplit_hl7_spool_depth ",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    listening.stop().await;
}
