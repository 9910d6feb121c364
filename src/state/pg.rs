//! The PostgreSQL state store (`[state] url = "postgres://…"` or `--state`):
//! what lets any number of workers on any number of machines share one
//! backfill range and one sync checkpoint. The embedded store (a state
//! directory) stays the default for one machine.
//!
//! * **Migrations** ([`refinery`], `migrations/postgres/V*.sql`, compiled
//!   into the binary) run at connection, under an advisory lock: workers
//!   started together migrate once.
//! * **Checkpoints**: one row per stream ([`super::stream_key`]). Only the
//!   holder of the stream's session advisory lock ([`Leader`]) reads and
//!   advances it, so two daemons never move it past each other's reports.
//! * **Leased windows**: a backfill registers its range's windows, then each
//!   worker claims one free window at a time (`SELECT … FOR UPDATE SKIP
//!   LOCKED`: claims never wait on each other), holding a lease that a
//!   heartbeat renews. A window's page cursor (`reached`) is saved with the
//!   lease checked, after each page: a worker that died (kill -9) stops
//!   renewing, its lease expires and another worker claims the window and
//!   resumes at the cursor. A save that finds the lease gone (the worker
//!   was paused past its expiry and another took over) is refused, and that
//!   worker leaves the window.
//!
//! * **The `mllp` spool** ([`spool`]): messages claimed by any replica's
//!   writer, one order at a time.
//!
//! Every statement is one round trip; [`PgState::round_trips`] counts them
//! (the backfill's summary reports them per report).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::tokio_postgres::{self, NoTls};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use time::OffsetDateTime;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::queue::{Entry, QueueStore};
use super::{ExportRecord, StateError, WindowState};

pub mod spool;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// Advisory lock class of reportsplit's locks (the first key of the
/// two-key form); the second key is the hash of what is locked.
const LOCK_CLASS: i32 = 0x7265_7073; // "reps"
/// The second key of the migration lock.
const MIGRATION_LOCK: i32 = 1;

/// Windows registered per statement.
const REGISTER_BATCH: usize = 5_000;

/// A connection pool to the state database, migrated.
#[derive(Clone)]
pub struct PgState {
    pool: Pool,
    /// For the leader's connection outside the pool (boxed: it is large).
    config: Arc<tokio_postgres::Config>,
    /// TLS as the URL's `sslmode` asks ([`super::tls`]); `None`: plain.
    tls: Option<MakeRustlsConnect>,
    /// The URL without its password, for messages.
    shown: String,
    round_trips: Arc<AtomicU64>,
}

impl std::fmt::Debug for PgState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgState")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

/// A window of a backfill range, as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSpan {
    pub key: String,
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// The part of the window table a backfill works on: one stream, one field,
/// the windows inside `[since, until)`.
#[derive(Debug, Clone)]
pub struct Range {
    pub stream: String,
    pub field: String,
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// A window claimed under a lease.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub span: WindowSpan,
    /// Where it stands (its saved cursor and count).
    pub state: WindowState,
    /// The worker whose lease had expired, if the window was taken over.
    pub taken_from: Option<String>,
}

/// How the windows of a range stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeCounts {
    pub windows: u64,
    pub done: u64,
    /// Reports handled in the range's windows so far.
    pub reports: u64,
}

fn unix_ns(at: OffsetDateTime) -> i64 {
    // Every instant a FHIR server stores lies well inside i64 nanoseconds
    // (1678–2262); saturate rather than wrap outside it.
    i64::try_from(at.unix_timestamp_nanos()).unwrap_or(if at.year() < 1970 {
        i64::MIN
    } else {
        i64::MAX
    })
}

fn from_unix_ns(ns: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl PgState {
    /// Connects (`max_connections` at most at once) and applies the
    /// migrations not applied yet.
    pub async fn connect(url: &str, max_connections: usize) -> Result<PgState, StateError> {
        let shown = crate::config::redact_url(url);
        let (url, tls) = super::tls::split_url(url).map_err(|message| StateError::Pool {
            url: shown.clone(),
            message,
        })?;
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|source| StateError::Postgres {
                what: format!("{shown} is not a PostgreSQL URL"),
                source,
            })?;
        config.ssl_mode(tls.ssl_mode());
        let tls = tls.connector().map_err(|message| StateError::Pool {
            url: shown.clone(),
            message,
        })?;
        migrate(&config, tls.as_ref(), &shown).await?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            Some(tls) => Manager::from_config(config.clone(), tls.clone(), manager_config),
            None => Manager::from_config(config.clone(), NoTls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .build()
            .map_err(|error| StateError::Pool {
                url: shown.clone(),
                message: error.to_string(),
            })?;
        Ok(PgState {
            pool,
            config: Arc::new(config),
            tls,
            shown,
            round_trips: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Statements sent so far (each one round trip).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StateError> {
        self.pool.get().await.map_err(|error| StateError::Pool {
            url: self.shown.clone(),
            message: error.to_string(),
        })
    }

    fn error(&self, what: &str) -> impl FnOnce(tokio_postgres::Error) -> StateError + use<> {
        let what = format!("{what} ({})", self.shown);
        move |source| StateError::Postgres { what, source }
    }

    fn count_trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    /// The sync checkpoint of `stream` and when it was saved.
    pub async fn checkpoint(
        &self,
        stream: &str,
    ) -> Result<(Option<String>, Option<String>), StateError> {
        let client = self.client().await?;
        self.count_trip();
        let row = client
            .query_opt(
                "SELECT checkpoint, saved_at FROM reportsplit_stream WHERE stream = $1",
                &[&stream],
            )
            .await
            .map_err(self.error("read the checkpoint"))?;
        Ok(row.map_or((None, None), |row| (row.get(0), row.get(1))))
    }

    /// Saves the sync checkpoint of `stream`. Only the [`Leader`] of the
    /// stream calls it.
    pub async fn save_checkpoint(
        &self,
        stream: &str,
        checkpoint: &str,
        saved_at: &str,
    ) -> Result<(), StateError> {
        let client = self.client().await?;
        self.count_trip();
        client
            .execute(
                "INSERT INTO reportsplit_stream (stream, checkpoint, saved_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (stream) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, saved_at = EXCLUDED.saved_at",
                &[&stream, &checkpoint, &saved_at],
            )
            .await
            .map_err(self.error("save the checkpoint"))?;
        Ok(())
    }

    /// Takes the leadership of `stream` if no other process holds it:
    /// `None` when another one does. Held until the [`Leader`] is dropped
    /// (its own connection, so a dead process's lock goes with its
    /// connection).
    pub async fn try_lead(&self, stream: &str) -> Result<Option<Leader>, StateError> {
        let (client, task) = connect_one(&self.config, self.tls.as_ref(), &self.shown).await?;
        self.count_trip();
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&LOCK_CLASS, &stream],
            )
            .await
            .map_err(self.error("take the stream's advisory lock"))?;
        if row.get::<_, bool>(0) {
            Ok(Some(Leader {
                _client: Box::new(client),
                task,
            }))
        } else {
            task.abort();
            Ok(None)
        }
    }

    /// Registers the windows of a range (those registered before stay as
    /// they are: another worker may be on them).
    pub async fn register_windows(
        &self,
        range: &Range,
        windows: &[WindowSpan],
    ) -> Result<(), StateError> {
        let client = self.client().await?;
        for batch in windows.chunks(REGISTER_BATCH) {
            let keys: Vec<&str> = batch.iter().map(|w| w.key.as_str()).collect();
            let since: Vec<i64> = batch.iter().map(|w| unix_ns(w.since)).collect();
            let until: Vec<i64> = batch.iter().map(|w| unix_ns(w.until)).collect();
            self.count_trip();
            client
                .execute(
                    "INSERT INTO reportsplit_window (stream, key, field, since_ns, until_ns) \
                     SELECT $1, k, $2, s, u FROM unnest($3::text[], $4::bigint[], $5::bigint[]) AS t(k, s, u) \
                     ON CONFLICT (stream, key) DO NOTHING",
                    &[&range.stream, &range.field, &keys, &since, &until],
                )
                .await
                .map_err(self.error("register the backfill's windows"))?;
        }
        Ok(())
    }

    /// How the windows of `range` stand.
    pub async fn range_counts(&self, range: &Range) -> Result<RangeCounts, StateError> {
        let client = self.client().await?;
        self.count_trip();
        let row = client
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE done), COALESCE(sum(reports), 0)::bigint \
                 FROM reportsplit_window \
                 WHERE stream = $1 AND field = $2 AND since_ns >= $3 AND until_ns <= $4",
                &[
                    &range.stream,
                    &range.field,
                    &unix_ns(range.since),
                    &unix_ns(range.until),
                ],
            )
            .await
            .map_err(self.error("count the backfill's windows"))?;
        let count = |index: usize| u64::try_from(row.get::<_, i64>(index)).unwrap_or(0);
        Ok(RangeCounts {
            windows: count(0),
            done: count(1),
            reports: count(2),
        })
    }

    /// Windows of `range` not done and not this worker's: leased by another
    /// (a lease that expires is then this worker's to take over), or free.
    /// What a worker with nothing to claim waits for. A free one counts: its
    /// claim may have skipped it while another worker's claim of it had it
    /// locked and not yet committed (`SKIP LOCKED`), and that claim may yet
    /// fail to happen.
    pub async fn open_elsewhere(&self, range: &Range, owner: &str) -> Result<u64, StateError> {
        let client = self.client().await?;
        self.count_trip();
        let row = client
            .query_one(
                "SELECT count(*) FROM reportsplit_window \
                 WHERE stream = $1 AND field = $2 AND since_ns >= $3 AND until_ns <= $4 \
                   AND NOT done AND (owner IS NULL OR owner <> $5)",
                &[
                    &range.stream,
                    &range.field,
                    &unix_ns(range.since),
                    &unix_ns(range.until),
                    &owner,
                ],
            )
            .await
            .map_err(self.error("count the windows leased by other workers"))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// Claims the earliest window of `range` that is not done and free (no
    /// owner, or a lease that expired) for `owner`, for `lease`. Windows
    /// other workers are claiming at the same moment are skipped, not waited
    /// for.
    pub async fn claim(
        &self,
        range: &Range,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, StateError> {
        let client = self.client().await?;
        self.count_trip();
        let row = client
            .query_opt(
                "WITH next AS ( \
                   SELECT key, owner FROM reportsplit_window \
                   WHERE stream = $1 AND field = $2 AND since_ns >= $3 AND until_ns <= $4 \
                     AND NOT done AND (owner IS NULL OR lease_until < now()) \
                   ORDER BY since_ns, key LIMIT 1 \
                   FOR UPDATE SKIP LOCKED) \
                 UPDATE reportsplit_window w \
                 SET owner = $5, lease_until = now() + $6::bigint * interval '1 millisecond', \
                     takeovers = w.takeovers + CASE WHEN next.owner IS NULL THEN 0 ELSE 1 END \
                 FROM next WHERE w.stream = $1 AND w.key = next.key \
                 RETURNING w.key, w.since_ns, w.until_ns, w.reached, w.reports, next.owner",
                &[
                    &range.stream,
                    &range.field,
                    &unix_ns(range.since),
                    &unix_ns(range.until),
                    &owner,
                    &millis(lease),
                ],
            )
            .await
            .map_err(self.error("claim a window"))?;
        Ok(row.map(|row| Claimed {
            span: WindowSpan {
                key: row.get(0),
                since: from_unix_ns(row.get(1)),
                until: from_unix_ns(row.get(2)),
            },
            state: WindowState {
                done: false,
                reached: row.get(3),
                reports: u64::try_from(row.get::<_, i64>(4)).unwrap_or(0),
            },
            taken_from: row.get(5),
        }))
    }

    /// Saves a window's progress if `owner` still holds its lease, and
    /// renews the lease; a window done is let go of. `false`: the lease was
    /// lost (it expired and another worker took the window over), nothing
    /// was saved.
    pub async fn save_window(
        &self,
        stream: &str,
        key: &str,
        owner: &str,
        state: &WindowState,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let client = self.client().await?;
        let keep = !state.done;
        let reports = i64::try_from(state.reports).unwrap_or(i64::MAX);
        self.count_trip();
        let changed = client
            .execute(
                "UPDATE reportsplit_window \
                 SET done = $4, reached = $5, reports = $6, \
                     owner = CASE WHEN $7 THEN owner END, \
                     lease_until = CASE WHEN $7 THEN now() + $8::bigint * interval '1 millisecond' END \
                 WHERE stream = $1 AND key = $2 AND owner = $3",
                &[
                    &stream,
                    &key,
                    &owner,
                    &state.done,
                    &state.reached,
                    &reports,
                    &keep,
                    &millis(lease),
                ],
            )
            .await
            .map_err(self.error("save a window's progress"))?;
        Ok(changed == 1)
    }

    /// Renews the leases of every window `owner` holds in `stream`; returns
    /// how many it holds.
    pub async fn renew(
        &self,
        stream: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<u64, StateError> {
        let client = self.client().await?;
        self.count_trip();
        client
            .execute(
                "UPDATE reportsplit_window SET lease_until = now() + $3::bigint * interval '1 millisecond' \
                 WHERE stream = $1 AND owner = $2 AND NOT done",
                &[&stream, &owner, &millis(lease)],
            )
            .await
            .map_err(self.error("renew the leases"))
    }

    /// Lets go of every window `owner` still holds (at the end of a run;
    /// their cursors were saved with the last page).
    pub async fn release_all(&self, stream: &str, owner: &str) -> Result<u64, StateError> {
        let client = self.client().await?;
        self.count_trip();
        client
            .execute(
                "UPDATE reportsplit_window SET owner = NULL, lease_until = NULL \
                 WHERE stream = $1 AND owner = $2",
                &[&stream, &owner],
            )
            .await
            .map_err(self.error("release the leases"))
    }
}

impl PgState {
    /// Waits for, then takes, the lock of the export of `stream` and
    /// `request`: one worker at a time kicks it off or polls it; the others
    /// find what it recorded. Held until the [`Leader`] is dropped.
    pub async fn lock_export(&self, stream: &str, request: &str) -> Result<Leader, StateError> {
        let (client, task) = connect_one(&self.config, self.tls.as_ref(), &self.shown).await?;
        self.count_trip();
        client
            .execute(
                "SELECT pg_advisory_lock($1, hashtext($2))",
                &[&LOCK_CLASS, &format!("export:{stream}:{request}")],
            )
            .await
            .map_err(self.error("take the export's advisory lock"))?;
        Ok(Leader {
            _client: Box::new(client),
            task,
        })
    }

    /// The export recorded for `stream` and `request`, if any.
    pub async fn export(
        &self,
        stream: &str,
        request: &str,
    ) -> Result<Option<ExportRecord>, StateError> {
        let client = self.client().await?;
        self.count_trip();
        let row = client
            .query_opt(
                "SELECT status, transaction_time, files, finished FROM reportsplit_export \
                 WHERE stream = $1 AND request = $2",
                &[&stream, &request],
            )
            .await
            .map_err(self.error("read the export"))?;
        Ok(row.map(|row| ExportRecord {
            status: row.get(0),
            transaction_time: row.get(1),
            files: row.get(2),
            finished: row.get(3),
        }))
    }

    /// Records an export (kicked off, or its manifest read), under
    /// [`PgState::lock_export`].
    pub async fn save_export(
        &self,
        stream: &str,
        request: &str,
        record: &ExportRecord,
        owner: &str,
    ) -> Result<(), StateError> {
        let client = self.client().await?;
        self.count_trip();
        client
            .execute(
                "INSERT INTO reportsplit_export (stream, request, status, transaction_time, files, kicked_off_by) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (stream, request) DO UPDATE SET status = EXCLUDED.status, \
                   transaction_time = EXCLUDED.transaction_time, files = EXCLUDED.files",
                &[
                    &stream,
                    &request,
                    &record.status,
                    &record.transaction_time,
                    &record.files,
                    &owner,
                ],
            )
            .await
            .map_err(self.error("record the export"))?;
        Ok(())
    }

    /// Marks the export finished; `true` for the one worker that did (it
    /// deletes the job and records the checkpoint), `false` for the others.
    pub async fn finish_export(&self, stream: &str, request: &str) -> Result<bool, StateError> {
        let client = self.client().await?;
        self.count_trip();
        let changed = client
            .execute(
                "UPDATE reportsplit_export SET finished = true \
                 WHERE stream = $1 AND request = $2 AND NOT finished",
                &[&stream, &request],
            )
            .await
            .map_err(self.error("finish the export"))?;
        Ok(changed == 1)
    }
}

/// A durable queue of report ids in PostgreSQL: `serve`'s queue (the
/// [`QueueStore`] of the embedded journal, with the same promise: an entry
/// committed survives a crash), named so that another queue (the MLLP
/// spool) can live beside it. One process owns a queue at a time (a session
/// advisory lock on its name, as the journal has its lock file): its
/// left-over entries are that process's to finish.
///
/// Each commit is one statement (deletes and inserts together, atomic), so
/// one round trip per batch of notifications; PostgreSQL's commit is
/// durable, whatever `durable` asks. [`QueueStore`] is called from `serve`'s
/// committer thread (not a runtime thread): the statements run on the
/// runtime through its handle.
pub struct PgQueue {
    state: PgState,
    name: String,
    runtime: tokio::runtime::Handle,
    left: Vec<Entry>,
    _owner: Leader,
}

impl std::fmt::Debug for PgQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgQueue")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PgQueue {
    /// Opens the queue `name`, taking its ownership ([`StateError::Led`]
    /// when another process has it); the entries a previous owner left, one
    /// per report (the oldest), are [`QueueStore::left_over`].
    pub async fn open(
        state: PgState,
        name: &str,
        runtime: tokio::runtime::Handle,
    ) -> Result<PgQueue, StateError> {
        let owner = state
            .try_lead(&format!("queue:{name}"))
            .await?
            .ok_or_else(|| StateError::Led(state.shown().to_owned()))?;
        let client = state.client().await?;
        state.count_trip();
        let rows = client
            .query(
                "SELECT seq, report FROM reportsplit_queue WHERE queue = $1 ORDER BY seq",
                &[&name],
            )
            .await
            .map_err(state.error("read the queue"))?;
        let mut seen = std::collections::HashSet::new();
        let mut left = Vec::new();
        let mut duplicates: Vec<i64> = Vec::new();
        for row in rows {
            let seq: i64 = row.get(0);
            let id: String = row.get(1);
            if seen.insert(id.clone()) {
                left.push(Entry {
                    seq: u64::try_from(seq).unwrap_or(0),
                    id,
                });
            } else {
                duplicates.push(seq);
            }
        }
        if !duplicates.is_empty() {
            state.count_trip();
            client
                .execute(
                    "DELETE FROM reportsplit_queue WHERE queue = $1 AND seq = ANY($2::bigint[])",
                    &[&name, &duplicates],
                )
                .await
                .map_err(state.error("drop the queue's duplicate entries"))?;
        }
        drop(client);
        Ok(PgQueue {
            state,
            name: name.to_owned(),
            runtime,
            left,
            _owner: owner,
        })
    }

    async fn commit_now(&self, added: &[String], done: &[u64]) -> Result<Vec<Entry>, StateError> {
        let client = self.state.client().await?;
        let done: Vec<i64> = done.iter().filter_map(|s| i64::try_from(*s).ok()).collect();
        self.state.count_trip();
        let rows = client
            .query(
                "WITH gone AS (DELETE FROM reportsplit_queue WHERE queue = $1 AND seq = ANY($2::bigint[])) \
                 INSERT INTO reportsplit_queue (queue, report) \
                 SELECT $1, report FROM unnest($3::text[]) WITH ORDINALITY AS t(report, n) ORDER BY n \
                 RETURNING seq, report",
                &[&self.name, &done, &added],
            )
            .await
            .map_err(self.state.error("commit to the queue"))?;
        let mut entries: Vec<Entry> = rows
            .iter()
            .map(|row| Entry {
                seq: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                id: row.get(1),
            })
            .collect();
        // Numbered in the order given: sorted by number, they are in it again.
        entries.sort_by_key(|entry| entry.seq);
        Ok(entries)
    }
}

impl QueueStore for PgQueue {
    fn left_over(&self) -> Vec<Entry> {
        self.left.clone()
    }

    fn commit(
        &mut self,
        added: &[String],
        done: &[u64],
        _durable: bool,
    ) -> Result<Vec<Entry>, StateError> {
        if added.is_empty() && done.is_empty() {
            return Ok(Vec::new());
        }
        self.runtime.block_on(self.commit_now(added, done))
    }

    fn close(&mut self) -> Result<(), StateError> {
        // Every commit is already durable, and there is nothing to compact.
        Ok(())
    }
}

/// The leadership of one stream: a session advisory lock on a connection of
/// its own, released when this is dropped (or the process dies and its
/// connection closes).
pub struct Leader {
    _client: Box<tokio_postgres::Client>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader").finish_non_exhaustive()
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Ends the connection at once: the lock is free for the next leader.
        self.task.abort();
    }
}

/// One connection outside the pool (over `tls` if given); its driver runs
/// on a task of its own.
async fn connect_one(
    config: &tokio_postgres::Config,
    tls: Option<&MakeRustlsConnect>,
    shown: &str,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), StateError> {
    let failed = |source| StateError::Postgres {
        what: format!("connect to {shown}"),
        source,
    };
    let (client, task) = match tls {
        Some(tls) => {
            let (client, connection) = config.connect(tls.clone()).await.map_err(failed)?;
            (client, tokio::spawn(drive(connection)))
        }
        None => {
            let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
            (client, tokio::spawn(drive(connection)))
        }
    };
    Ok((client, task))
}

/// Runs a connection until it ends.
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(error) = connection.await {
        tracing::debug!(error = %error, "a PostgreSQL connection ended");
    }
}

/// Applies the migrations not applied yet, one process at a time.
async fn migrate(
    config: &tokio_postgres::Config,
    tls: Option<&MakeRustlsConnect>,
    shown: &str,
) -> Result<(), StateError> {
    let (mut client, task) = connect_one(config, tls, shown).await?;
    let failed = |what: &str| {
        let what = format!("{what} ({shown})");
        move |source| StateError::Postgres { what, source }
    };
    client
        .execute(
            "SELECT pg_advisory_lock($1, $2)",
            &[&LOCK_CLASS, &MIGRATION_LOCK],
        )
        .await
        .map_err(failed("take the migration lock"))?;
    let report = embedded::migrations::runner()
        .run_async(&mut client)
        .await
        .map_err(|error| StateError::Migration {
            url: shown.to_owned(),
            message: error.to_string(),
        });
    // The lock goes with the connection.
    task.abort();
    let report = report?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied a state migration");
    }
    Ok(())
}
