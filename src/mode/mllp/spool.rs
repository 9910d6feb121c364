//! The listener's spool, whichever it is: a directory of files
//! ([`crate::state::spool::Spool`], one listener per directory) or, when the
//! state is PostgreSQL, a table several replicas share
//! ([`crate::state::pg::spool::PgSpool`]). The listener puts, the writer
//! claims and finishes; neither cares which.
//!
//! Both keep the writer's promise: a message is claimed only when no older
//! message of one of its orders is waiting (so one order's messages are
//! written one after another, in arrival order), and a message put off
//! (retry) holds its orders back until it is written or buried. The table
//! also holds back one patient's messages (its keys are
//! [`crate::hl7::serial_keys`]): across replicas no keyed lock in memory
//! keeps two writers from creating one Patient at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reportsplit_hl7::{Hl7Settings, Verdict, evaluate};
use tokio::time::Instant;

use crate::config::Config;
use crate::pull::rfc3339;
use crate::state::StateError;
use crate::state::pg::PgState;
use crate::state::pg::spool::{Claimed, PgClaim, PgSpool};
use crate::state::spool::{DeadNote, Finish, Put, Spool, SpoolEntry};

/// The spool of a listener.
#[derive(Debug)]
pub enum MessageSpool {
    Files(FileSpool),
    Postgres(PgSpool),
}

/// The directory spool with the writer's memory of what it put off.
#[derive(Debug)]
pub struct FileSpool {
    spool: Arc<Spool>,
    settings: Hl7Settings,
    /// Messages put off: when they may be tried again, and attempts so far.
    later: Mutex<HashMap<SpoolEntry, (Instant, u32)>>,
}

/// A message the writer took; [`MessageSpool::finish`] says what became of it.
#[derive(Debug)]
pub struct Claim {
    pub body: Vec<u8>,
    /// Earlier attempts.
    pub attempts: u32,
    ticket: Ticket,
}

#[derive(Debug)]
enum Ticket {
    File {
        entry: SpoolEntry,
        control_id: String,
    },
    Postgres(PgClaim),
}

impl MessageSpool {
    /// The spool of `config`: its PostgreSQL state (`[state] url`) when set,
    /// with a pool for `writers` claims and the listener's puts; else the
    /// directory ([`spool_dir`]), whose writer reads order keys with `settings`.
    pub async fn open(
        config: &Config,
        settings: Hl7Settings,
        writers: usize,
    ) -> Result<MessageSpool, StateError> {
        match &config.state.url {
            Some(url) => {
                let pool = writers + config.hl7.max_connections.min(16) + 2;
                let state = PgState::connect(url, pool).await?;
                Ok(MessageSpool::Postgres(PgSpool::new(state)))
            }
            None => Ok(MessageSpool::Files(FileSpool {
                spool: Arc::new(Spool::open(&spool_dir(config))?),
                settings,
                later: Mutex::new(HashMap::new()),
            })),
        }
    }

    /// Puts a usable message in the spool; durable when this returns.
    /// `keys`: its reports' [`crate::hl7::serial_keys`] (orders and patient),
    /// which the PostgreSQL spool serialises across replicas.
    pub async fn put(
        &self,
        body: &[u8],
        control_id: &str,
        keys: &[String],
    ) -> Result<Put, StateError> {
        match self {
            MessageSpool::Files(files) => {
                let spool = files.spool.clone();
                let bytes = body.to_vec();
                tokio::task::spawn_blocking(move || spool.put(&bytes))
                    .await
                    .map_err(|error| StateError::Io {
                        path: "spool".into(),
                        source: std::io::Error::other(error),
                    })??;
                Ok(Put::Stored)
            }
            MessageSpool::Postgres(pg) => pg.put(body, control_id, keys).await,
        }
    }

    /// Takes up to `limit` messages to write now, oldest first, at most one
    /// per order.
    pub async fn claim(&self, limit: usize) -> Result<Vec<Claim>, StateError> {
        match self {
            MessageSpool::Files(files) => files.claim(limit),
            MessageSpool::Postgres(pg) => {
                let mut claims = Vec::new();
                let mut skip = Vec::new();
                while claims.len() < limit {
                    match pg.claim(&skip).await? {
                        Claimed::Message(claim) => {
                            skip.push(claim.id);
                            claims.push(Claim {
                                body: claim.body.clone(),
                                attempts: claim.attempts,
                                ticket: Ticket::Postgres(claim),
                            });
                        }
                        Claimed::Busy(id) => skip.push(id),
                        Claimed::Nothing => break,
                    }
                }
                Ok(claims)
            }
        }
    }

    /// Records what became of a claimed message.
    pub async fn finish(&self, claim: Claim, finish: &Finish) -> Result<(), StateError> {
        match (self, claim.ticket) {
            (MessageSpool::Files(files), Ticket::File { entry, control_id }) => {
                files.finish(entry, &control_id, claim.attempts, finish)
            }
            (MessageSpool::Postgres(pg), Ticket::Postgres(claim)) => pg.finish(claim, finish).await,
            // A claim is only ever finished by the spool that made it.
            _ => Ok(()),
        }
    }

    /// Messages waiting to be written.
    pub async fn depth(&self) -> Result<u64, StateError> {
        match self {
            MessageSpool::Files(files) => Ok(files.spool.pending()?.len() as u64),
            MessageSpool::Postgres(pg) => pg.depth().await,
        }
    }

    /// Deletes the dead letters older than `retention`; returns how many.
    pub async fn prune_dead(&self, retention: Duration) -> Result<u64, StateError> {
        match self {
            MessageSpool::Files(files) => Ok(files.spool.prune_dead(retention)? as u64),
            MessageSpool::Postgres(pg) => pg.prune_dead(retention).await,
        }
    }
}

impl FileSpool {
    fn claim(&self, limit: usize) -> Result<Vec<Claim>, StateError> {
        let now = Instant::now();
        let pending = self.spool.pending()?;
        let mut later = self.later.lock().unwrap_or_else(|e| e.into_inner());
        let waiting: HashSet<&SpoolEntry> = pending.iter().collect();
        later.retain(|entry, _| waiting.contains(entry));
        let mut claims = Vec::new();
        let mut orders: HashSet<String> = HashSet::new();
        for entry in pending {
            if claims.len() >= limit {
                break;
            }
            let body = match self.spool.read(&entry) {
                Ok(body) => body,
                Err(error) => {
                    tracing::warn!(entry = %entry.0, error = %crate::error::error_chain(&error), "cannot read a spooled message");
                    continue;
                }
            };
            let evaluation = evaluate(&body, &self.settings);
            let control_id = evaluation.header.map(|h| h.control_id).unwrap_or_default();
            let keys: Vec<String> = match evaluation.verdict {
                Verdict::Accept(reports) => reports.into_iter().map(|r| r.order_key).collect(),
                _ => Vec::new(),
            };
            let put_off = later.get(&entry).copied();
            let waits = put_off.is_some_and(|(at, _)| at > now);
            let behind = keys.iter().any(|k| orders.contains(k));
            orders.extend(keys);
            if !waits && !behind {
                claims.push(Claim {
                    body,
                    attempts: put_off.map_or(0, |(_, attempts)| attempts),
                    ticket: Ticket::File { entry, control_id },
                });
            }
        }
        Ok(claims)
    }

    fn finish(
        &self,
        entry: SpoolEntry,
        control_id: &str,
        attempts: u32,
        finish: &Finish,
    ) -> Result<(), StateError> {
        let mut later = self.later.lock().unwrap_or_else(|e| e.into_inner());
        match finish {
            Finish::Done => {
                later.remove(&entry);
                self.spool.done(&entry)
            }
            Finish::Dead { reason, message } => {
                later.remove(&entry);
                let note = DeadNote {
                    control_id: control_id.to_owned(),
                    reason: reason.clone(),
                    message: message.clone(),
                    time: rfc3339(time::OffsetDateTime::now_utc()),
                };
                self.spool.bury(&entry, &note)
            }
            Finish::Retry { pause, .. } => {
                later.insert(entry, (Instant::now() + *pause, attempts + 1));
                Ok(())
            }
        }
    }
}

/// The directory spool of `config`: `hl7.spool_dir`, or `hl7-spool` in the
/// state directory.
pub fn spool_dir(config: &Config) -> std::path::PathBuf {
    config
        .hl7
        .spool_dir
        .clone()
        .unwrap_or_else(|| config.state.dir.join("hl7-spool"))
}
