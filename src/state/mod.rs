//! The checkpoint store: one JSON file in a state directory, replaced
//! atomically (temp file, fsync, rename, fsync of the directory), so a crash
//! leaves either the old or the new state, never a torn one.
//!
//! The checkpoint is saved only after a window's reports were written, so a
//! crash in between causes a re-read of that window on the next run, which is
//! harmless: reports already done carry their tag and are skipped.
//!
//! State is kept per *stream* (server base URL + filters), so pointing the
//! worker at another server or other filters does not reuse a checkpoint
//! that means nothing there. Besides the sync checkpoint a stream holds
//! named window records, for backfills that resume window by window.
//!
//! `serve`'s queue of notified reports lives in the same directory, in a
//! journal of its own ([`queue`]): it changes far more often than a
//! checkpoint, and rewriting this file per notification would not scale.
//!
//! With `[state] url = "postgres://…"` the checkpoints and the backfill
//! windows live in PostgreSQL instead ([`pg`]), shared by many workers on
//! many machines; [`Checkpoints`] is what a sync pass sees of either.

pub mod pg;
pub mod queue;
pub mod spool;
pub mod tls;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Class;

const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "state.lock";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a reportsplit state file")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has state format {found}; this reportsplit knows format {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("another reportsplit process is using the state directory {0}")]
    Locked(PathBuf),
    #[error("PostgreSQL state: cannot {what}")]
    Postgres {
        what: String,
        #[source]
        source: deadpool_postgres::tokio_postgres::Error,
    },
    #[error("PostgreSQL state {url}: {message}")]
    Pool { url: String, message: String },
    #[error("PostgreSQL state {url}: the migrations failed: {message}")]
    Migration { url: String, message: String },
    #[error("another reportsplit process holds this stream's checkpoint or queue in {0}")]
    Led(String),
    #[error("the saved checkpoint {value:?} in {place} is not an RFC 3339 instant")]
    Checkpoint { place: String, value: String },
    #[error("{path} line {line} is not a queue journal record")]
    Journal {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

impl StateError {
    /// See [`crate::error::Class`]: a lock held by another process is for now only.
    pub fn class(&self) -> Class {
        match self {
            StateError::Locked(_) | StateError::Led(_) => Class::Locked,
            _ => Class::State,
        }
    }
}

/// Everything in the state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    #[serde(default)]
    pub streams: BTreeMap<String, StreamState>,
}

/// The progress of one stream (server + filters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// Every report last updated before this instant (RFC 3339) was handled
    /// (the next run starts here minus the overlap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// When the checkpoint was saved (RFC 3339), for "checkpoint lag".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_at: Option<String>,
    /// Per-window progress of backfills, keyed by a window name such as
    /// `2024-01-01T00:00:00Z/2024-02-01T00:00:00Z`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub windows: BTreeMap<String, WindowState>,
    /// Bulk Data exports a `backfill --from-export` kicked off, keyed by
    /// their request ([`ExportRecord`]); their files' progress is kept as
    /// windows.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exports: BTreeMap<String, ExportRecord>,
}

/// A Bulk Data export a backfill kicked off: recorded at the kick-off, so
/// that a restart or a second worker polls the same job instead of kicking
/// off another, and completed with its manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportRecord {
    /// The status URL (polled; DELETEd once every file is done).
    pub status: String,
    /// The manifest's `transactionTime` (RFC 3339), once it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_time: Option<String>,
    /// The manifest's DiagnosticReport files, in its order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Every file was read, the job deleted and the checkpoint recorded.
    #[serde(default)]
    pub finished: bool,
}

/// How far a backfill window got.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    pub done: bool,
    /// The last `meta.lastUpdated` fully handled inside the window, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reached: Option<String>,
    #[serde(default)]
    pub reports: u64,
}

/// An open state directory. Holds an exclusive lock for its lifetime, so two
/// runs (cron overlapping a slow run) never race on the same checkpoint.
#[derive(Debug)]
pub struct StateStore {
    dir: PathBuf,
    _lock: File,
}

/// Creates `dir` if needed and takes an exclusive lock on its file `name`,
/// held as long as the returned file is open; another process holding it is
/// [`StateError::Locked`].
pub(crate) fn lock_file(dir: &Path, name: &str) -> Result<File, StateError> {
    let io = |source| StateError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(name))
        .map_err(io)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(source)) => Err(io(source)),
    }
}

impl StateStore {
    /// Opens (creating if needed) and locks the directory.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        let lock = lock_file(dir, LOCK_FILE)?;
        Ok(StateStore {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// The saved state, or an empty one when none was saved yet.
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    version: FORMAT_VERSION,
                    ..State::default()
                });
            }
            Err(source) => return Err(StateError::Io { path, source }),
        };
        let state: State =
            serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
                path: path.clone(),
                source,
            })?;
        if state.version != FORMAT_VERSION {
            return Err(StateError::Version {
                path,
                found: state.version,
            });
        }
        Ok(state)
    }

    /// Replaces the state file atomically and durably ([`crate::atomic`]).
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.path();
        let mut state = state.clone();
        state.version = FORMAT_VERSION;
        let mut bytes =
            serde_json::to_vec_pretty(&state).map_err(|source| StateError::Corrupt {
                path: path.clone(),
                source,
            })?;
        bytes.push(b'\n');
        crate::atomic::atomic_write(&path, &bytes).map_err(|source| StateError::Io { path, source })
    }

    /// Loads, changes one stream, saves.
    pub fn update_stream(
        &self,
        stream: &str,
        change: impl FnOnce(&mut StreamState),
    ) -> Result<(), StateError> {
        let mut state = self.load()?;
        change(state.streams.entry(stream.to_string()).or_default());
        self.save(&state)
    }
}

/// Where a sync pass reads and saves its checkpoint: the state directory
/// (locked for the pass), or PostgreSQL while this process leads the stream
/// (its advisory lock held for the pass: one leader at a time advances it).
#[derive(Debug)]
pub enum Checkpoints {
    Directory(StateStore),
    Postgres {
        state: pg::PgState,
        _leader: pg::Leader,
    },
}

impl Checkpoints {
    /// Opens the store `config` names for `stream`; another process holding
    /// it is [`StateError::Locked`] or [`StateError::Led`] (the daemon tries
    /// again at its next tick).
    pub async fn open(
        config: &crate::config::StateConfig,
        stream: &str,
    ) -> Result<Checkpoints, StateError> {
        match &config.url {
            None => StateStore::open(&config.dir).map(Checkpoints::Directory),
            Some(url) => {
                let state = pg::PgState::connect(url, 1).await?;
                match state.try_lead(stream).await? {
                    Some(leader) => Ok(Checkpoints::Postgres {
                        state,
                        _leader: leader,
                    }),
                    None => Err(StateError::Led(state.shown().to_owned())),
                }
            }
        }
    }

    /// Where the checkpoint is kept, for messages.
    pub fn place(&self) -> String {
        match self {
            Checkpoints::Directory(store) => store.path().display().to_string(),
            Checkpoints::Postgres { state, .. } => state.shown().to_owned(),
        }
    }

    /// The saved checkpoint of `stream` (RFC 3339), if any.
    pub async fn load(&self, stream: &str) -> Result<Option<String>, StateError> {
        match self {
            Checkpoints::Directory(store) => Ok(store
                .load()?
                .streams
                .get(stream)
                .and_then(|s| s.checkpoint.clone())),
            Checkpoints::Postgres { state, .. } => Ok(state.checkpoint(stream).await?.0),
        }
    }

    /// Saves the checkpoint of `stream` and when it was saved (RFC 3339).
    pub async fn save(
        &self,
        stream: &str,
        checkpoint: &str,
        saved_at: &str,
    ) -> Result<(), StateError> {
        match self {
            Checkpoints::Directory(store) => store.update_stream(stream, |s| {
                s.checkpoint = Some(checkpoint.to_owned());
                s.saved_at = Some(saved_at.to_owned());
            }),
            Checkpoints::Postgres { state, .. } => {
                state.save_checkpoint(stream, checkpoint, saved_at).await
            }
        }
    }
}

/// The stream key of a server and its filters: what the checkpoint is valid for.
pub fn stream_key(base_url: &str, filters: &crate::pull::Filters) -> String {
    // No credentials in the state file: the key names the server, not the login.
    let mut key = crate::config::redact_url(base_url)
        .trim_end_matches('/')
        .to_string();
    let parts = [
        ("category", filters.category.join(",")),
        ("status", filters.status.join(",")),
        ("date", filters.date.join("&")),
        ("subject", filters.subject.clone().unwrap_or_default()),
    ];
    let query: Vec<String> = parts
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !query.is_empty() {
        key.push('?');
        key.push_str(&query.join("&"));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_directory_has_an_empty_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(&dir.path().join("nested/state")).unwrap();
        assert!(store.load().unwrap().streams.is_empty());
    }

    #[test]
    fn saved_state_comes_back_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        store
            .update_stream("http://x/fhir", |s| {
                s.checkpoint = Some("2026-01-01T00:00:00Z".into());
                s.windows.insert(
                    "a/b".into(),
                    WindowState {
                        done: true,
                        reached: None,
                        reports: 7,
                    },
                );
            })
            .unwrap();
        store
            .update_stream("http://y/fhir", |s| {
                s.checkpoint = Some("2026-02-01T00:00:00Z".into())
            })
            .unwrap();
        let state = store.load().unwrap();
        assert_eq!(
            state.streams["http://x/fhir"].checkpoint.as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        assert_eq!(state.streams["http://x/fhir"].windows["a/b"].reports, 7);
        assert_eq!(state.streams.len(), 2);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
            "{names:?}"
        );
    }

    #[test]
    fn a_second_process_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let _first = StateStore::open(dir.path()).unwrap();
        assert!(matches!(
            StateStore::open(dir.path()),
            Err(StateError::Locked(_))
        ));
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), b"{ half").unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        assert!(matches!(store.load(), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn stream_keys_separate_servers_and_filters() {
        let filters = crate::pull::Filters {
            status: vec!["final".into()],
            ..Default::default()
        };
        assert_eq!(
            stream_key("http://x/fhir/", &filters),
            "http://x/fhir?status=final"
        );
        assert_ne!(
            stream_key("http://x/fhir", &filters),
            stream_key("http://x/fhir", &Default::default())
        );
    }
}
