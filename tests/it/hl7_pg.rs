//! The `mllp` spool in PostgreSQL (each test its own database): an AA only
//! once the message's row is committed, a resend stored once, a dead letter
//! kept with its reason (and pruned after the retention), two writers that
//! never claim one message or one order at once, two replicas writing one
//! feed against SEKMET, and a kill -9 of the listener that loses nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reportsplit::state::pg::PgState;
use reportsplit::state::pg::spool::{Claimed, PgSpool};
use reportsplit::state::spool::{Finish, Put};

use crate::common::pg::TestDb;
use crate::common::{self, Sekmet};
use crate::hl7::{config, kill_run, listen, msa, oru, reports_of, send_all, unique};

/// (order, body, claimed at, finished at) of every claim.
type Log = Arc<Mutex<Vec<(String, String, Instant, Instant)>>>;

async fn spool_of(db: &TestDb) -> PgSpool {
    PgSpool::new(PgState::connect(&db.url, 8).await.expect("connect"))
}

/// Spool only (no writer): the ACK comes after the row is committed, and
/// the same message resent (or sent on two connections at once) is one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_after_the_row_is_committed_and_a_resend_is_stored_once() {
    let db = TestDb::create("hl7ack").await;
    let state = common::temp_state();
    let nobody = format!("http://127.0.0.1:{}/fhir", common::free_port());
    let mut config = config(&nobody, state.path());
    config.state.url = Some(db.url.clone());
    let listening = listen(config, false).await;
    let message = oru(
        "P-1",
        &unique("pgp"),
        &unique("pgo"),
        "F",
        "202603170900",
        &["IMPRESSION: Normal."],
    );
    let acks = send_all(listening.address, std::slice::from_ref(&message)).await;
    assert_eq!(msa(&acks[0]), "MSA|AA|P-1", "{acks:?}");
    // Read on another connection right after the ACK: the row is there.
    let spool = spool_of(&db).await;
    let rows = spool.messages().await.expect("read the spool");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].body, message.as_bytes());
    assert_eq!(
        (rows[0].control_id.as_str(), rows[0].status.as_str()),
        ("P-1", "pending")
    );

    let (a, b) = tokio::join!(
        send_all(listening.address, std::slice::from_ref(&message)),
        send_all(listening.address, std::slice::from_ref(&message))
    );
    assert_eq!((msa(&a[0]), msa(&b[0])), ("MSA|AA|P-1", "MSA|AA|P-1"));
    assert_eq!(
        spool.messages().await.expect("read").len(),
        1,
        "stored once"
    );
    assert_eq!(spool.depth().await.expect("depth"), 1);
    listening.stop().await;
    // Nobody wrote it: it waits for the next start.
    assert_eq!(spool.messages().await.expect("read").len(), 1);
}

/// A message that fails for good (patient unknown, `resolve`) stays as a
/// dead letter with its reason, is deleted after the retention, and a
/// resend of it is a new arrival.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_failing_for_good_is_a_dead_letter_row() {
    let db = TestDb::create("hl7dead").await;
    let sekmet = Sekmet::start();
    let state = common::temp_state();
    let mut config = config(&sekmet.base, state.path());
    config.state.url = Some(db.url.clone());
    config.hl7.patient = reportsplit::hl7::PatientMode::Resolve;
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
    listening.stop().await;
    let spool = spool_of(&db).await;
    let rows = spool.messages().await.expect("read");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "dead");
    assert_eq!(rows[0].reason.as_deref(), Some("patient-not-found"));
    assert_eq!(rows[0].body, message.as_bytes());
    assert!(
        !rows[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("Normal"),
        "no content in the error"
    );
    assert_eq!(spool.depth().await.expect("depth"), 0);

    // A resend of a dead letter is a new arrival (the site fixed the cause).
    assert_eq!(
        spool
            .put(message.as_bytes(), "R-1", &[])
            .await
            .expect("put"),
        Put::Stored
    );
    let revived = spool.messages().await.expect("read");
    assert_eq!(revived.len(), 1);
    assert_eq!(
        (revived[0].status.as_str(), revived[0].attempts),
        ("pending", 0)
    );
    assert!(revived[0].id > rows[0].id, "at the end of the line");

    // Buried again, then past the retention: deleted.
    let Claimed::Message(claim) = spool.claim(&[]).await.expect("claim") else {
        panic!("the revived message is claimable");
    };
    let dead = Finish::Dead {
        reason: "patient-not-found".into(),
        message: "no Patient".into(),
    };
    spool.finish(claim, &dead).await.expect("buried");
    assert_eq!(
        spool
            .prune_dead(Duration::from_secs(3600))
            .await
            .expect("prune"),
        0
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(spool.prune_dead(Duration::ZERO).await.expect("prune"), 1);
    assert!(spool.messages().await.expect("read").is_empty());
}

/// Two writers claim from one spool at once: every message is claimed once,
/// a resend of a message being written is answered without waiting,
/// one order's messages never at once and always in arrival order, a retry
/// holds its order back, and a claim dropped unfinished (a writer that
/// died) is claimable again as soon as PostgreSQL sees its connection close.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_never_claim_one_message_or_one_order_at_once() {
    let db = TestDb::create("hl7claim").await;
    let spool = spool_of(&db).await;
    let orders = 6;
    let per_order = 4;
    let mut expected = BTreeMap::new();
    for n in 0..per_order {
        for order in 0..orders {
            let body = format!("MSH|{order}|{n}");
            let key = format!("urn:o|{order}");
            spool
                .put(
                    body.as_bytes(),
                    &format!("C{order}-{n}"),
                    std::slice::from_ref(&key),
                )
                .await
                .expect("put");
            expected.entry(key).or_insert_with(Vec::new).push(body);
        }
    }
    // A claim dropped unfinished rolls back with its connection.
    let Claimed::Message(first) = spool.claim(&[]).await.expect("claim") else {
        panic!("a message is claimable");
    };
    let first_id = first.id;
    drop(first);
    // PostgreSQL ends the closed connection's transaction as soon as it
    // reads the close: wait for that, not for any lease.
    let probe = db.client().await;
    let released = Instant::now();
    while probe
        .query_opt(
            "SELECT id FROM reportsplit_hl7_message WHERE id = $1 FOR UPDATE SKIP LOCKED",
            &[&first_id],
        )
        .await
        .expect("probe")
        .is_none()
    {
        assert!(released.elapsed() < Duration::from_secs(5), "still claimed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let Claimed::Message(again) = spool.claim(&[]).await.expect("claim") else {
        panic!("claimable again");
    };
    assert_eq!(again.id, first_id, "the oldest message, claimable again");
    // The same bytes resent while a writer holds them: answered at once.
    let resend = tokio::time::timeout(
        Duration::from_secs(2),
        spool.put(&again.body, "C0-0", &["urn:o|0".to_owned()]),
    )
    .await
    .expect("a resend does not wait for the writer")
    .expect("put");
    assert_eq!(resend, Put::AlreadyThere);
    // A retry: its order waits until it is tried again.
    spool
        .finish(
            again,
            &Finish::Retry {
                reason: "http-503".into(),
                pause: Duration::from_millis(300),
            },
        )
        .await
        .expect("put off");

    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let order_of = |body: &str| {
        let order = body.split('|').nth(1).unwrap_or("");
        format!("urn:o|{order}")
    };
    let writer = |spool: PgSpool, log: Log| async move {
        let mut idle = 0;
        while idle < 20 {
            let mut skip = Vec::new();
            let mut claims = Vec::new();
            while claims.len() < 3 {
                match spool.claim(&skip).await.expect("claim") {
                    Claimed::Message(claim) => {
                        skip.push(claim.id);
                        claims.push((claim, Instant::now()));
                    }
                    Claimed::Busy(id) => skip.push(id),
                    Claimed::Nothing => break,
                }
            }
            if claims.is_empty() {
                idle += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            idle = 0;
            tokio::time::sleep(Duration::from_millis(15)).await;
            for (claim, at) in claims {
                let body = String::from_utf8(claim.body.clone()).expect("text");
                // Before the commit that lets the order's next message go.
                let finished = Instant::now();
                spool.finish(claim, &Finish::Done).await.expect("done");
                log.lock()
                    .expect("lock")
                    .push((order_of(&body), body, at, finished));
            }
        }
    };
    let other = spool_of(&db).await;
    tokio::join!(
        writer(spool.clone(), log.clone()),
        writer(other, log.clone())
    );
    let log = log.lock().expect("lock").clone();
    let bodies: Vec<&String> = log.iter().map(|(_, body, _, _)| body).collect();
    let unique_bodies: HashSet<&String> = bodies.iter().copied().collect();
    assert_eq!(bodies.len(), orders * per_order, "every message written");
    assert_eq!(unique_bodies.len(), bodies.len(), "none written twice");
    for (key, arrived) in &expected {
        let mut of_order: Vec<_> = log.iter().filter(|(k, ..)| k == key).collect();
        of_order.sort_by_key(|(_, _, at, _)| *at);
        let written: Vec<&String> = of_order.iter().map(|(_, body, _, _)| body).collect();
        assert_eq!(
            written,
            arrived.iter().collect::<Vec<_>>(),
            "{key}: in arrival order"
        );
        for pair in of_order.windows(2) {
            assert!(
                pair[1].2 >= pair[0].3,
                "{key}: two messages in flight at once"
            );
        }
    }
    assert_eq!(spool.depth().await.expect("depth"), 0);
}

/// Two listener replicas on one PostgreSQL spool, against SEKMET: a feed
/// split between them (a preliminary then a final result per order) is
/// written once, each order ending final.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_share_one_spool() {
    let db = TestDb::create("hl7replicas").await;
    let sekmet = Sekmet::start();
    let fhir = sekmet.fhir();
    let state = common::temp_state();
    let mut config = config(&sekmet.base, state.path());
    config.state.url = Some(db.url.clone());
    let one = listen(config.clone(), true).await;
    let two = listen(config, true).await;
    let patient = unique("replp");
    let orders: Vec<String> = (0..4).map(|_| unique("replo")).collect();
    let mut to_one = Vec::new();
    let mut to_two = Vec::new();
    for (n, order) in orders.iter().enumerate() {
        to_one.push(oru(
            &format!("P{n}"),
            &patient,
            order,
            "P",
            "202603180800",
            &["IMPRESSION: Small left pleural effusion."],
        ));
        to_two.push(oru(
            &format!("F{n}"),
            &patient,
            order,
            "F",
            "202603180900",
            &["IMPRESSION: Small left pleural effusion. No pneumothorax."],
        ));
    }
    for acks in [
        send_all(one.address, &to_one).await,
        send_all(two.address, &to_two).await,
    ] {
        assert!(
            acks.iter().all(|a| msa(a).starts_with("MSA|AA|")),
            "{acks:?}"
        );
    }
    one.drained().await;
    let dead: Vec<_> = spool_of(&db)
        .await
        .messages()
        .await
        .expect("read")
        .into_iter()
        .map(|m| (m.control_id, m.reason, m.last_error))
        .collect();
    assert!(dead.is_empty(), "dead letters: {dead:?}");
    for order in &orders {
        let reports = reports_of(&fhir, order).await;
        assert_eq!(reports.len(), 1, "{order}");
        assert_eq!(reports[0]["status"], "final", "{order}");
    }
    one.stop().await;
    two.stop().await;
}

/// The `reportsplit mllp` binary with its spool in PostgreSQL, killed (kill
/// -9) in the middle of a feed and started again: every message
/// acknowledged AA ends up on the server exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_listener_loses_nothing() {
    let db = TestDb::create("hl7kill").await;
    kill_run(40, 4, false, Some(&db.url)).await;
}
