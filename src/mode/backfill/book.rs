//! Where a backfill keeps its windows: the [`Book`] (the state file, kept in
//! memory while the backfill holds the state directory's lock, saved after
//! each page that handled reports and, lazily, after windows found done),
//! or the [`Leases`] of a PostgreSQL state shared by many workers.

use std::time::{Duration, Instant};

use crate::state::pg::{PgState, Range};
use time::OffsetDateTime;

use crate::pull::rfc3339;
use crate::state::{ExportRecord, State, StateError, StateStore, WindowState};

/// The state file, kept in memory while the backfill holds the lock.
pub struct Book {
    store: StateStore,
    state: State,
    stream: String,
    /// Changes not saved yet (only ones whose loss costs a re-search).
    dirty: bool,
    saved_at: Instant,
}

/// Saves that only mark a window done wait at most this long: losing them
/// costs one search per window on resume, while saving the whole state
/// file after each of thousands of empty windows would dominate the run.
const LAZY_SAVE: Duration = Duration::from_secs(1);

impl Book {
    /// The book of `stream` in `state`, as loaded from `store`.
    pub fn new(store: StateStore, state: State, stream: String) -> Book {
        Book {
            store,
            state,
            stream,
            dirty: false,
            saved_at: Instant::now(),
        }
    }

    pub fn window(&self, key: &str) -> Option<&WindowState> {
        self.state.streams.get(&self.stream)?.windows.get(key)
    }

    /// Records a window's progress; saves now if `urgent` (reports were
    /// handled since the last save), else within [`LAZY_SAVE`].
    pub fn save_window(
        &mut self,
        key: &str,
        window: WindowState,
        urgent: bool,
    ) -> Result<(), StateError> {
        self.state
            .streams
            .entry(self.stream.clone())
            .or_default()
            .windows
            .insert(key.to_string(), window);
        self.dirty = true;
        if urgent || self.saved_at.elapsed() >= LAZY_SAVE {
            self.flush()?;
        }
        Ok(())
    }

    /// The export recorded for `request` (`backfill --from-export`).
    pub fn export(&self, request: &str) -> Option<&ExportRecord> {
        self.state.streams.get(&self.stream)?.exports.get(request)
    }

    /// Records an export and saves at once: a restart must find the job it
    /// kicked off, not kick off another.
    pub fn save_export(&mut self, request: &str, record: ExportRecord) -> Result<(), StateError> {
        self.state
            .streams
            .entry(self.stream.clone())
            .or_default()
            .exports
            .insert(request.to_owned(), record);
        self.dirty = true;
        self.flush()
    }

    /// Moves the sync checkpoint forward to `at` (never back) and saves.
    pub fn raise_checkpoint(&mut self, at: OffsetDateTime) -> Result<(), StateError> {
        let stream = self.state.streams.entry(self.stream.clone()).or_default();
        let later = stream
            .checkpoint
            .as_deref()
            .and_then(|saved| {
                OffsetDateTime::parse(saved, &time::format_description::well_known::Rfc3339).ok()
            })
            .is_none_or(|saved| saved < at);
        if later {
            stream.checkpoint = Some(rfc3339(at));
            stream.saved_at = Some(rfc3339(OffsetDateTime::now_utc()));
            self.dirty = true;
        }
        self.flush()
    }

    pub fn flush(&mut self) -> Result<(), StateError> {
        if self.dirty {
            self.store.save(&self.state)?;
            self.dirty = false;
            self.saved_at = Instant::now();
        }
        Ok(())
    }
}

/// This worker's leases on the windows of one range in PostgreSQL.
pub struct Leases {
    pub state: PgState,
    pub range: Range,
    /// Who holds a lease: this process (host, pid and a random part, so a
    /// restarted process never mistakes an old lease for its own).
    pub owner: String,
    /// How long a lease lasts without renewal: how long a dead worker's
    /// window waits before another takes it over.
    pub lease: Duration,
}

impl Leases {
    /// Saves a window's progress under its lease (every save at once: a
    /// window's cursor is what a takeover resumes from). `false`: the lease
    /// was lost to another worker.
    pub async fn save(&self, key: &str, window: &WindowState) -> Result<bool, StateError> {
        self.state
            .save_window(&self.range.stream, key, &self.owner, window, self.lease)
            .await
    }

    /// A name for this process's leases.
    pub fn owner_name() -> String {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}/{}/{}", std::process::id(), &random[..8])
    }
}
