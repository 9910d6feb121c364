//! The `mllp` spool in PostgreSQL (`reportsplit_hl7_message`, migration
//! V3): what lets several listener replicas share one spool.
//!
//! * **Put**: one `INSERT … ON CONFLICT` per message, committed before the
//!   ACK; the body's SHA-256 is unique, so a message resent (engines resend
//!   on a lost ACK) is stored once. A resent dead letter is a new arrival.
//! * **Claim**: a writer claims one message at a time in a transaction of
//!   its own (`FOR UPDATE SKIP LOCKED`), held while the message is written:
//!   writers never wait for each other, and a writer that dies (kill -9)
//!   takes its claims with its connection, so the messages are claimable
//!   again as soon as PostgreSQL reads the close. A message is claimable
//!   only when no older pending message shares one of its lock keys — its orders and its patient — (so
//!   one order's messages are written in arrival order, one after another,
//!   across replicas, and two replicas never create one Patient at once: a
//!   server's conditional create is not atomic), and a transaction advisory
//!   lock per key keeps two claims of one key from running at once even
//!   when their inserts committed out of order.
//! * **Finish**: in the claim's transaction — deleted (written), made a dead
//!   letter, or put off to `next_attempt` — then committed.

use std::time::Duration;

use deadpool_postgres::tokio_postgres;

use super::{LOCK_CLASS, PgState, millis};
use crate::state::StateError;
use crate::state::spool::{Finish, Put};

/// A message as it stands in the table (for dead letters and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub id: i64,
    pub control_id: String,
    pub body: Vec<u8>,
    pub status: String,
    pub attempts: i32,
    pub reason: Option<String>,
    pub last_error: Option<String>,
}

/// The spool's table, through the state's pool.
#[derive(Debug, Clone)]
pub struct PgSpool {
    state: PgState,
}

/// A claimed message: its row is locked by an open transaction on
/// `client` until [`PgSpool::finish`] commits. Dropped unfinished (a
/// writer stopped or panicked), its connection is closed rather than
/// returned to the pool, so PostgreSQL rolls the claim back.
pub struct PgClaim {
    pub id: i64,
    pub control_id: String,
    pub body: Vec<u8>,
    /// Earlier attempts.
    pub attempts: u32,
    /// Boxed: a pooled connection is large, and claims are moved around.
    client: Option<Box<deadpool_postgres::Object>>,
}

impl std::fmt::Debug for PgClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgClaim")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Drop for PgClaim {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            discard(*client);
        }
    }
}

/// Closes a connection whose transaction may be open instead of returning
/// it to the pool: PostgreSQL rolls the transaction back.
fn discard(client: deadpool_postgres::Object) {
    drop(deadpool_postgres::Object::take(client));
}

/// What a claim found.
#[derive(Debug)]
pub enum Claimed {
    Message(PgClaim),
    /// The oldest claimable message (this id) has an order another writer
    /// is writing (their inserts committed out of arrival order): skip it
    /// this time.
    Busy(i64),
    Nothing,
}

/// A dead letter with these bytes is revived as a new arrival (a new `id`);
/// otherwise the bytes are inserted unless they wait already. Neither part
/// locks a pending row, so a resend is answered at once even while a writer
/// holds the first copy (`ON CONFLICT DO UPDATE` would wait for it).
const PUT: &str = "WITH revived AS ( \
       UPDATE reportsplit_hl7_message SET \
         id = nextval(pg_get_serial_sequence('reportsplit_hl7_message', 'id')), \
         status = 'pending', attempts = 0, next_attempt = now(), received_at = now(), \
         last_error = NULL, reason = NULL, dead_at = NULL \
       WHERE dedupe_key = encode(sha256($1), 'hex') AND status = 'dead' RETURNING id), \
     inserted AS ( \
       INSERT INTO reportsplit_hl7_message (dedupe_key, control_id, lock_keys, body) \
       SELECT encode(sha256($1), 'hex'), $2, $3, $1 WHERE NOT EXISTS (SELECT 1 FROM revived) \
       ON CONFLICT (dedupe_key) DO NOTHING RETURNING id) \
     SELECT (SELECT count(*) FROM revived) + (SELECT count(*) FROM inserted)";

const CLAIM: &str = "SELECT m.id, m.control_id, m.body, m.attempts, m.lock_keys \
     FROM reportsplit_hl7_message m \
     WHERE m.status = 'pending' AND m.next_attempt <= now() AND m.id <> ALL($1::bigint[]) \
       AND NOT EXISTS (SELECT 1 FROM reportsplit_hl7_message o \
                       WHERE o.status = 'pending' AND o.id < m.id AND o.lock_keys && m.lock_keys) \
     ORDER BY m.id LIMIT 1 \
     FOR UPDATE OF m SKIP LOCKED";

const LOCK_ORDERS: &str = "SELECT coalesce(bool_and(pg_try_advisory_xact_lock($1, hashtext(k))), true) \
     FROM unnest($2::text[]) AS t(k)";

impl PgSpool {
    pub fn new(state: PgState) -> PgSpool {
        PgSpool { state }
    }

    /// Stores `body` (MSH-10 `control_id`; `lock_keys`, what its writing
    /// must not overlap with: its reports' orders and patient);
    /// committed when this returns. The same bytes already pending are not
    /// stored again; the same bytes dead are revived as a new arrival.
    pub async fn put(
        &self,
        body: &[u8],
        control_id: &str,
        lock_keys: &[String],
    ) -> Result<Put, StateError> {
        let client = self.state.client().await?;
        self.state.count_trip();
        let statement = client
            .prepare_cached(PUT)
            .await
            .map_err(self.state.error("prepare the spool's insert"))?;
        let stored: i64 = client
            .query_one(&statement, &[&body, &control_id, &lock_keys])
            .await
            .map_err(self.state.error("put a message in the spool"))?
            .get(0);
        Ok(if stored > 0 {
            Put::Stored
        } else {
            Put::AlreadyThere
        })
    }

    /// Claims the oldest claimable message not in `skip`. The claim holds a
    /// pooled connection until it is finished or dropped.
    pub async fn claim(&self, skip: &[i64]) -> Result<Claimed, StateError> {
        let client = self.state.client().await?;
        let found = async {
            self.state.count_trip();
            client.batch_execute("BEGIN").await?;
            self.state.count_trip();
            let statement = client.prepare_cached(CLAIM).await?;
            let Some(row) = client.query_opt(&statement, &[&skip]).await? else {
                return Ok(None);
            };
            let lock_keys: Vec<String> = row.get(4);
            self.state.count_trip();
            let statement = client.prepare_cached(LOCK_ORDERS).await?;
            let free: bool = client
                .query_one(&statement, &[&LOCK_CLASS, &lock_keys])
                .await?
                .get(0);
            Ok::<_, tokio_postgres::Error>(Some((row, free)))
        }
        .await;
        let found = match found {
            Ok(found) => found,
            Err(error) => {
                discard(client);
                return Err(self.state.error("claim a spooled message")(error));
            }
        };
        match found {
            Some((row, true)) => Ok(Claimed::Message(PgClaim {
                id: row.get(0),
                control_id: row.get(1),
                body: row.get(2),
                attempts: u32::try_from(row.get::<_, i32>(3)).unwrap_or(0),
                client: Some(Box::new(client)),
            })),
            Some((row, false)) => {
                self.rollback(client).await?;
                Ok(Claimed::Busy(row.get(0)))
            }
            None => {
                self.rollback(client).await?;
                Ok(Claimed::Nothing)
            }
        }
    }

    /// Ends a claim that took nothing; the connection goes back to the pool
    /// only with its transaction ended.
    async fn rollback(&self, client: deadpool_postgres::Object) -> Result<(), StateError> {
        self.state.count_trip();
        match client.batch_execute("ROLLBACK").await {
            Ok(()) => Ok(()),
            Err(error) => {
                discard(client);
                Err(self.state.error("end a claim")(error))
            }
        }
    }

    /// Finishes a claim as `finish` says, and commits.
    pub async fn finish(&self, mut claim: PgClaim, finish: &Finish) -> Result<(), StateError> {
        let Some(client) = claim.client.take() else {
            return Ok(());
        };
        let client = *client;
        let id = claim.id;
        self.state.count_trip();
        self.state.count_trip();
        let done = async {
            match finish {
                Finish::Done => {
                    client
                        .execute("DELETE FROM reportsplit_hl7_message WHERE id = $1", &[&id])
                        .await?;
                }
                Finish::Dead { reason, message } => {
                    client
                        .execute(
                            "UPDATE reportsplit_hl7_message SET status = 'dead', dead_at = now(), \
                             attempts = attempts + 1, reason = $2, last_error = $3 WHERE id = $1",
                            &[&id, reason, message],
                        )
                        .await?;
                }
                Finish::Retry { reason, pause } => {
                    client
                        .execute(
                            "UPDATE reportsplit_hl7_message SET attempts = attempts + 1, \
                             next_attempt = now() + $2::bigint * interval '1 millisecond', \
                             reason = $3, last_error = $3 WHERE id = $1",
                            &[&id, &millis(*pause), reason],
                        )
                        .await?;
                }
            }
            client.batch_execute("COMMIT").await
        }
        .await;
        match done {
            Ok(()) => Ok(()),
            Err(error) => {
                // Rolled back with the connection: the message is claimable again.
                discard(client);
                Err(self.state.error("finish a spooled message")(error))
            }
        }
    }

    /// Messages waiting to be written.
    pub async fn depth(&self) -> Result<u64, StateError> {
        let client = self.state.client().await?;
        self.state.count_trip();
        let row = client
            .query_one(
                "SELECT count(*) FROM reportsplit_hl7_message WHERE status = 'pending'",
                &[],
            )
            .await
            .map_err(self.state.error("count the spool"))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// Deletes the dead letters older than `retention`; returns how many.
    pub async fn prune_dead(&self, retention: Duration) -> Result<u64, StateError> {
        let client = self.state.client().await?;
        self.state.count_trip();
        client
            .execute(
                "DELETE FROM reportsplit_hl7_message WHERE status = 'dead' \
                 AND dead_at < now() - $1::bigint * interval '1 millisecond'",
                &[&millis(retention)],
            )
            .await
            .map_err(
                self.state
                    .error("delete the dead letters past their retention"),
            )
    }

    /// Every message of the spool, oldest first (pending and dead).
    pub async fn messages(&self) -> Result<Vec<MessageRow>, StateError> {
        let client = self.state.client().await?;
        self.state.count_trip();
        let rows = client
            .query(
                "SELECT id, control_id, body, status, attempts, reason, last_error \
                 FROM reportsplit_hl7_message ORDER BY id",
                &[],
            )
            .await
            .map_err(self.state.error("read the spool"))?;
        Ok(rows
            .iter()
            .map(|row| MessageRow {
                id: row.get(0),
                control_id: row.get(1),
                body: row.get(2),
                status: row.get(3),
                attempts: row.get(4),
                reason: row.get(5),
                last_error: row.get(6),
            })
            .collect())
    }
}
