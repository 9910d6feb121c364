//! The PostgreSQL state store on a real PostgreSQL (each test its own
//! database): migrations, the leader's advisory lock and checkpoint, and
//! the leased windows of a backfill (claims, cursor saves, takeover after
//! an expired lease).

use std::collections::BTreeSet;
use std::time::Duration;

use reportsplit::error::Class;
use reportsplit::state::pg::{PgState, Range, WindowSpan};
use reportsplit::state::{Checkpoints, StateError, WindowState};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::common::pg::TestDb;

const STREAM: &str = "http://fhir.test/fhir?status=final";

fn range() -> Range {
    Range {
        stream: STREAM.into(),
        field: "_lastUpdated".into(),
        since: datetime!(2024-01-01 0:00 UTC),
        until: datetime!(2024-01-02 0:00 UTC),
    }
}

/// The range cut in `n` windows.
fn spans(n: i32) -> Vec<WindowSpan> {
    let range = range();
    let step = (range.until - range.since) / n;
    (0..n)
        .map(|i| {
            let since = range.since + step * i;
            let until = if i == n - 1 {
                range.until
            } else {
                since + step
            };
            WindowSpan {
                key: format!("_lastUpdated:{}/{}", rfc3339(since), rfc3339(until)),
                since,
                until,
            }
        })
        .collect()
}

fn rfc3339(at: OffsetDateTime) -> String {
    reportsplit::pull::rfc3339(at)
}

#[tokio::test]
async fn workers_starting_together_migrate_once() {
    let db = TestDb::create("migrate").await;
    let connecting = (0..4).map(|_| PgState::connect(&db.url, 2));
    for state in futures::future::join_all(connecting).await {
        state.expect("every worker connects");
    }
    let client = db.client().await;
    let applied: i64 = client
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    assert_eq!(applied as usize, migrations);
}

#[tokio::test]
async fn a_bad_url_is_an_error_naming_it_without_its_password() {
    let error = PgState::connect("postgres://u:secret@127.0.0.1:1/none", 1)
        .await
        .unwrap_err();
    let text = reportsplit::error::error_chain(&error);
    assert!(!text.contains("secret"), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
}

#[tokio::test]
async fn one_leader_at_a_time_advances_the_checkpoint() {
    let db = TestDb::create("leader").await;
    let config = reportsplit::config::StateConfig {
        dir: std::env::temp_dir().join("unused-by-postgres-state"),
        url: Some(db.url.clone()),
        url_file: None,
    };
    let first = Checkpoints::open(&config, STREAM).await.unwrap();
    assert_eq!(first.load(STREAM).await.unwrap(), None);
    first
        .save(STREAM, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z")
        .await
        .unwrap();
    // A second worker of the same stream is turned away while the first leads...
    let second = Checkpoints::open(&config, STREAM).await.unwrap_err();
    assert!(matches!(second, StateError::Led(_)), "{second}");
    assert_eq!(second.class(), Class::Locked, "the daemon retries it");
    // ...another stream has a leader of its own...
    let other = Checkpoints::open(&config, "http://other/fhir")
        .await
        .unwrap();
    assert_eq!(other.load("http://other/fhir").await.unwrap(), None);
    // ...and once the first is gone, the next leader goes on from its checkpoint.
    drop(first);
    let next = retry_open(&config).await;
    assert_eq!(
        next.load(STREAM).await.unwrap().as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
}

/// The lock goes with the dropped leader's connection, which PostgreSQL
/// sees close a moment later.
async fn retry_open(config: &reportsplit::config::StateConfig) -> Checkpoints {
    for _ in 0..50 {
        match Checkpoints::open(config, STREAM).await {
            Ok(store) => return store,
            Err(StateError::Led(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(error) => panic!("{error}"),
        }
    }
    panic!("the leadership was not released");
}

#[tokio::test]
async fn concurrent_workers_claim_each_window_exactly_once() {
    let db = TestDb::create("claims").await;
    let state = PgState::connect(&db.url, 8).await.unwrap();
    let windows = spans(40);
    state.register_windows(&range(), &windows).await.unwrap();
    // Registering again (a worker started later) changes nothing.
    state.register_windows(&range(), &windows).await.unwrap();
    let lease = Duration::from_secs(30);
    let workers = (0..4).map(|worker| {
        let state = state.clone();
        async move {
            let owner = format!("worker-{worker}");
            let mut mine = Vec::new();
            while let Some(claimed) = state.claim(&range(), &owner, lease).await.unwrap() {
                assert!(claimed.taken_from.is_none(), "no lease expired");
                let done = WindowState {
                    done: true,
                    reached: None,
                    reports: 1,
                };
                assert!(
                    state
                        .save_window(STREAM, &claimed.span.key, &owner, &done, lease)
                        .await
                        .unwrap()
                );
                mine.push(claimed.span.key);
            }
            mine
        }
    });
    let claimed: Vec<Vec<String>> = futures::future::join_all(workers).await;
    let all: Vec<&String> = claimed.iter().flatten().collect();
    let distinct: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), windows.len(), "no window claimed twice");
    assert_eq!(distinct.len(), windows.len(), "every window claimed");
    let counts = state.range_counts(&range()).await.unwrap();
    assert_eq!((counts.windows, counts.done, counts.reports), (40, 40, 40));
    assert!(
        state.round_trips() >= 40 * 2,
        "a claim and a save per window"
    );
}

#[tokio::test]
async fn a_dead_workers_window_is_taken_over_at_its_cursor_after_the_lease() {
    let db = TestDb::create("takeover").await;
    let state = PgState::connect(&db.url, 4).await.unwrap();
    state.register_windows(&range(), &spans(1)).await.unwrap();
    // A free window is still open to wait for: another worker's claim of it
    // may be under way (its row locked, skipped by this worker's claim).
    assert_eq!(state.open_elsewhere(&range(), "alive").await.unwrap(), 1);
    let lease = Duration::from_millis(600);
    let claimed = state.claim(&range(), "dead", lease).await.unwrap().unwrap();
    assert_eq!(claimed.state, WindowState::default());
    let progress = WindowState {
        done: false,
        reached: Some("2024-01-01T07:30:00Z".into()),
        reports: 12,
    };
    assert!(
        state
            .save_window(STREAM, &claimed.span.key, "dead", &progress, lease)
            .await
            .unwrap()
    );
    // While the lease runs, the window is nobody else's; the survivor waits.
    assert!(
        state
            .claim(&range(), "alive", lease)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(state.open_elsewhere(&range(), "alive").await.unwrap(), 1);
    // "dead" stops renewing (kill -9); after the lease the window is taken
    // over where its cursor stood.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let taken = state
        .claim(&range(), "alive", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("the expired window is claimable");
    assert_eq!(taken.span, spans(1)[0]);
    assert_eq!(taken.state, progress);
    assert_eq!(taken.taken_from.as_deref(), Some("dead"));
    // The old owner, back from a pause, can save nothing and renews nothing.
    assert!(
        !state
            .save_window(STREAM, &taken.span.key, "dead", &progress, lease)
            .await
            .unwrap()
    );
    assert_eq!(state.renew(STREAM, "dead", lease).await.unwrap(), 0);
    assert_eq!(state.renew(STREAM, "alive", lease).await.unwrap(), 1);
    let client = db.client().await;
    let takeovers: i32 = client
        .query_one("SELECT takeovers FROM reportsplit_window", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(takeovers, 1);
    // Released at the end of a run, it is free at once for anyone.
    assert_eq!(state.release_all(STREAM, "alive").await.unwrap(), 1);
    let again = state
        .claim(&range(), "third", lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.state, again.taken_from), (progress, None));
}

#[tokio::test]
async fn a_worker_claims_only_windows_of_its_own_range() {
    let db = TestDb::create("ranges").await;
    let state = PgState::connect(&db.url, 2).await.unwrap();
    state.register_windows(&range(), &spans(2)).await.unwrap();
    let lease = Duration::from_secs(30);
    let first_half = Range {
        until: datetime!(2024-01-01 12:00 UTC),
        ..range()
    };
    let dates = Range {
        field: "date".into(),
        ..range()
    };
    let other_stream = Range {
        stream: "http://other/fhir".into(),
        ..range()
    };
    assert!(state.claim(&dates, "w", lease).await.unwrap().is_none());
    assert!(
        state
            .claim(&other_stream, "w", lease)
            .await
            .unwrap()
            .is_none()
    );
    let claimed = state.claim(&first_half, "w", lease).await.unwrap().unwrap();
    assert_eq!(claimed.span, spans(2)[0]);
    assert!(
        state
            .claim(&first_half, "w", lease)
            .await
            .unwrap()
            .is_none()
    );
}

/// `sync` with PostgreSQL state: the checkpoint is saved there (nothing in
/// the state directory), and a pass while another worker leads the stream
/// is refused as locked (the daemon retries it at its next tick).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_pass_keeps_its_checkpoint_in_postgres_under_the_leader_lock() {
    let server = crate::common::Sekmet::start();
    let fhir = server.fhir();
    let db = TestDb::create("sync").await;
    let (subject, _) = crate::common::seed_reports(&fhir, "pgsync", 3).await;
    let state_dir = crate::common::temp_state();
    let mut config = crate::common::config(&server.base, state_dir.path(), Some(&subject), 50);
    config.state.url = Some(db.url.clone());
    let (summary, _) = crate::common::sync(&config, false).await;
    assert_eq!(summary.tally.written, 3, "{summary}");
    let stream = reportsplit::state::stream_key(&config.fhir.url, &config.filters());
    let state = PgState::connect(&db.url, 1).await.unwrap();
    let (checkpoint, saved_at) = state.checkpoint(&stream).await.unwrap();
    assert_eq!(checkpoint, summary.checkpoint);
    assert!(saved_at.is_some());
    assert!(!state_dir.path().join("state.json").exists());

    let leader = state
        .try_lead(&stream)
        .await
        .unwrap()
        .expect("no pass runs");
    let never = tokio_util::sync::CancellationToken::new();
    let error = reportsplit::mode::once::run_with(config.clone(), false, &mut Vec::new(), &never)
        .await
        .unwrap_err();
    assert_eq!(error.class(), Class::Locked, "{error}");
    drop(leader);
}

/// `serve`'s queue in PostgreSQL: what was committed and not done is left
/// for the next owner (one entry per report, the oldest), numbering goes
/// on after it, and a second process is turned away while one owns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serve_queue_in_postgres_leaves_what_was_not_done_to_the_next_owner() {
    use reportsplit::state::pg::PgQueue;
    use reportsplit::state::queue::QueueStore as _;
    let db = TestDb::create("queue").await;
    let state = PgState::connect(&db.url, 2).await.unwrap();
    let runtime = tokio::runtime::Handle::current();
    let queue = PgQueue::open(state.clone(), "serve:test", runtime.clone())
        .await
        .unwrap();
    assert!(queue.left_over().is_empty());
    let second = PgQueue::open(state.clone(), "serve:test", runtime.clone()).await;
    assert!(matches!(second, Err(StateError::Led(_))), "{second:?}");
    let ids = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // The committer is a thread of its own, off the runtime.
    let last_seq = tokio::task::spawn_blocking(move || {
        let mut queue = queue;
        let added = queue.commit(&ids(&["a", "b", "c"]), &[], true).unwrap();
        assert_eq!(
            added.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        // "b" done; "a" notified again while in flight; "d" new.
        let more = queue
            .commit(&ids(&["a", "d"]), &[added[1].seq], true)
            .unwrap();
        more[1].seq
        // Dropped without close: as a kill -9 leaves it.
    })
    .await
    .unwrap();
    let mut reopened = None;
    for _ in 0..50 {
        match PgQueue::open(state.clone(), "serve:test", runtime.clone()).await {
            Ok(queue) => {
                reopened = Some(queue);
                break;
            }
            Err(StateError::Led(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(error) => panic!("{error}"),
        }
    }
    let queue = reopened.expect("the first owner's lock went with its connection");
    let left = queue.left_over();
    assert_eq!(
        left.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["a", "c", "d"]
    );
    let next = tokio::task::spawn_blocking(move || {
        let mut queue = queue;
        queue.commit(&ids(&["e"]), &[], true).unwrap()
    })
    .await
    .unwrap();
    assert!(
        next[0].seq > last_seq,
        "numbering goes on after the left-over entries"
    );
}

/// Polls `check` every 100 ms until it holds (bounded: 30 s).
async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within 30 s: {what}");
}

/// `sync --every` on PostgreSQL state through an outage of the database
/// (closed to connections, those open ended): the daemon keeps running,
/// counts its failed passes, retries with backoff and says `degraded` on
/// /healthz after three in a row; once the database is back its next pass
/// enriches what came in meanwhile and /healthz is `ok` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_does_not_stop_the_daemon() {
    let server = crate::common::Sekmet::start();
    let fhir = server.fhir();
    let db = TestDb::create("outage").await;
    let (subject, _) = crate::common::seed_reports(&fhir, "pgoutage", 2).await;
    let patient = subject.trim_start_matches("Patient/").to_owned();
    let state_dir = crate::common::temp_state();
    let mut config = crate::common::config(&server.base, state_dir.path(), Some(&subject), 50);
    config.state.url = Some(db.url.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let metrics = reportsplit::metrics::Metrics::new();
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(reportsplit::metrics::export(
        listener,
        metrics.clone(),
        shutdown.clone(),
    ));
    let daemon = {
        let (metrics, shutdown) = (metrics.clone(), shutdown.clone());
        tokio::spawn(async move {
            reportsplit::mode::daemon::run_with(
                config,
                Duration::from_millis(200),
                &mut std::io::sink(),
                Some(&metrics),
                shutdown,
            )
            .await
        })
    };
    let http = reqwest::Client::new();
    let health = || async {
        let body: serde_json::Value = http
            .get(format!("http://{address}/healthz"))
            .send()
            .await
            .expect("GET /healthz")
            .json()
            .await
            .unwrap();
        body["status"].as_str().unwrap_or_default().to_owned()
    };
    let tagged = || crate::common::count_tagged(&fhir, &subject);
    wait_for("the first pass", || async { tagged().await == 2 }).await;
    assert_eq!(health().await, "ok");

    db.accept_connections(false).await;
    fhir.put_all(&crate::common::seed::reports(
        &format!("{patient}-late"),
        &patient,
        2,
    ))
    .await;
    wait_for("three failed passes in a row", || async {
        metrics.health().1 >= 3
    })
    .await;
    assert_eq!(health().await, "degraded");
    assert!(
        !daemon.is_finished(),
        "the daemon runs on through the outage"
    );
    assert_eq!(tagged().await, 2, "nothing done without the state");
    let exported = metrics.encode();
    assert!(
        exported
            .lines()
            .any(|l| l.starts_with("reportsplit_passes_failed_total{reason=\"state\"}")),
        "{exported}"
    );

    db.accept_connections(true).await;
    wait_for("the reports of the outage", || async {
        tagged().await == 4
    })
    .await;
    wait_for("ok again", || async { health().await == "ok" }).await;
    shutdown.cancel();
    let summary = daemon.await.unwrap().expect("a clean stop");
    assert!(summary.failed_passes >= 3, "{summary}");
}

/// Connections of this test's database that are encrypted, and all of them
/// (seen from the server; the test's own client connects plain).
async fn tls_sessions(db: &TestDb) -> (i64, i64) {
    let row = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.datname = current_database() \
               AND a.pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// TLS to PostgreSQL as the URL's `sslmode` asks, against the machine's
/// PostgreSQL (Debian's: `ssl = on` with the snakeoil certificate, CN
/// localhost): no sslmode stays plain; `require` encrypts; `verify-full`
/// with the snakeoil certificate as `sslrootcert` on host localhost
/// encrypts and verifies, and refuses the address 127.0.0.1 (not the
/// certificate's name), which `verify-ca` takes; `verify-full` with CAs
/// that did not sign the certificate is refused naming the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_postgres_follows_the_urls_sslmode() {
    let db = TestDb::create("tls").await;
    let plain = PgState::connect(&db.url, 1).await.unwrap();
    plain.checkpoint(STREAM).await.unwrap();
    let (encrypted, sessions) = tls_sessions(&db).await;
    assert!(
        encrypted == 0 && sessions >= 1,
        "plain without sslmode: {encrypted} of {sessions}"
    );
    drop(plain);

    let required = PgState::connect(&format!("{}?sslmode=require", db.url), 1)
        .await
        .expect("sslmode=require (the snakeoil certificate is not checked)");
    required.checkpoint(STREAM).await.unwrap();
    let (encrypted, _) = tls_sessions(&db).await;
    assert!(encrypted >= 1, "sslmode=require encrypts");
    drop(required);

    let localhost = db.url.replace("@127.0.0.1:", "@localhost:");
    let verified = PgState::connect(
        &format!(
            "{localhost}?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ssl-cert-snakeoil.pem"
        ),
        1,
    )
    .await
    .expect("verify-full against the server's own certificate");
    verified.checkpoint(STREAM).await.unwrap();
    drop(verified);

    // The snakeoil certificate names localhost, not 127.0.0.1: verify-full
    // refuses the address, verify-ca (the chain only) takes it.
    let snakeoil = "sslrootcert=/etc/ssl/certs/ssl-cert-snakeoil.pem";
    let error = PgState::connect(&format!("{}?sslmode=verify-full&{snakeoil}", db.url), 1)
        .await
        .unwrap_err();
    let chain = reportsplit::error::error_chain(&error);
    assert!(chain.contains("certificate"), "{chain}");
    PgState::connect(&format!("{}?sslmode=verify-ca&{snakeoil}", db.url), 1)
        .await
        .expect("verify-ca checks the chain, not the name");
    // CAs that did not sign it (the public ones): refused.
    let error = PgState::connect(
        &format!("{localhost}?sslmode=verify-full&sslrootcert=/etc/ssl/certs/ca-certificates.crt"),
        1,
    )
    .await
    .unwrap_err();
    let chain = reportsplit::error::error_chain(&error);
    assert!(chain.contains("certificate"), "{chain}");
    assert_eq!(error.class(), Class::State);
}
