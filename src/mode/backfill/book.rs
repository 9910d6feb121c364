//! The backfill's book of windows: the state file, kept in memory while the
//! backfill holds the state directory's lock, saved after each page that
//! handled reports and, lazily, after windows found done.

use std::time::{Duration, Instant};

use crate::state::{State, StateError, StateStore, WindowState};

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

    pub fn flush(&mut self) -> Result<(), StateError> {
        if self.dirty {
            self.store.save(&self.state)?;
            self.dirty = false;
            self.saved_at = Instant::now();
        }
        Ok(())
    }
}
