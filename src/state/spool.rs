//! The `mllp` listener's spool: every accepted message is a file here
//! before its ACK goes out, and stays until the writer has stored and
//! enriched its reports; one that fails for good moves to `dead/` with a
//! note saying why, and is deleted after the retention.
//!
//! A file per message, written like the state store (through
//! [`crate::atomic`]: temporary file, fsync, rename, fsync of the
//! directory), so a message is either wholly in the spool or not at all,
//! and the ACK of one never waits for another's. Names sort in arrival
//! order. The directory and every file are readable by their owner only:
//! they hold patient data. One listener per spool (a lock file, as the
//! serve queue's journal has).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::StateError;
use crate::atomic::AtomicFile;

const LOCK_FILE: &str = "spool.lock";
const INCOMING: &str = "incoming";
const DEAD: &str = "dead";
const MESSAGE_SUFFIX: &str = ".hl7";
const NOTE_SUFFIX: &str = ".why.json";

/// Whether a put stored the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Stored,
    /// The same bytes wait already: nothing was added (PostgreSQL spool).
    AlreadyThere,
}

/// What becomes of a message the writer took, in either spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Written: it leaves the spool.
    Done,
    /// Failed for good: kept as a dead letter until the retention.
    Dead { reason: String, message: String },
    /// Tried again after `pause`.
    Retry { reason: String, pause: Duration },
}

/// A message in the spool, by file name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpoolEntry(pub String);

/// Why a message is a dead letter (beside it in `dead/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadNote {
    pub control_id: String,
    pub reason: String,
    pub message: String,
    pub time: String,
}

#[derive(Debug)]
pub struct Spool {
    incoming: PathBuf,
    dead: PathBuf,
    counter: AtomicU64,
    _lock: File,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn owner_only_dir(path: &Path) -> Result<(), StateError> {
    std::fs::create_dir_all(path).map_err(io(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io(path))?;
    }
    Ok(())
}

fn sync_dir(path: &Path) -> Result<(), StateError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io(path))
}

impl Spool {
    /// Opens (creating, owner-only) and locks the spool in `dir`.
    pub fn open(dir: &Path) -> Result<Spool, StateError> {
        owner_only_dir(dir)?;
        let lock = super::lock_file(dir, LOCK_FILE)?;
        let incoming = dir.join(INCOMING);
        let dead = dir.join(DEAD);
        owner_only_dir(&incoming)?;
        owner_only_dir(&dead)?;
        // A put cut short by a crash leaves its temporary file (never
        // acknowledged, so the sender still has the message): remove it.
        for dir in [&incoming, &dead] {
            for entry in std::fs::read_dir(dir)
                .map_err(io(dir))?
                .filter_map(Result::ok)
            {
                if entry.file_name().to_string_lossy().starts_with('.') {
                    let path = entry.path();
                    std::fs::remove_file(&path).map_err(io(&path))?;
                }
            }
        }
        Ok(Spool {
            incoming,
            dead,
            counter: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// Puts `message` in the spool; durable when this returns.
    pub fn put(&self, message: &[u8]) -> Result<SpoolEntry, StateError> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{nanos:020}-{count:010}{MESSAGE_SUFFIX}");
        let path = self.incoming.join(&name);
        let mut file = AtomicFile::create(&path).map_err(io(&path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(file.temp_path(), std::fs::Permissions::from_mode(0o600))
                .map_err(io(&path))?;
        }
        file.writer().write_all(message).map_err(io(&path))?;
        file.commit().map_err(io(&path))?;
        Ok(SpoolEntry(name))
    }

    /// The messages waiting, oldest first.
    pub fn pending(&self) -> Result<Vec<SpoolEntry>, StateError> {
        messages_in(&self.incoming)
    }

    pub fn read(&self, entry: &SpoolEntry) -> Result<Vec<u8>, StateError> {
        let path = self.incoming.join(&entry.0);
        std::fs::read(&path).map_err(io(&path))
    }

    /// The message is written: it leaves the spool.
    pub fn done(&self, entry: &SpoolEntry) -> Result<(), StateError> {
        let path = self.incoming.join(&entry.0);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.incoming),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }

    /// The message failed for good: it moves to `dead/`, with `note`.
    pub fn bury(&self, entry: &SpoolEntry, note: &DeadNote) -> Result<(), StateError> {
        let note_path = self.dead.join(format!("{}{NOTE_SUFFIX}", entry.0));
        let mut file = AtomicFile::create(&note_path).map_err(io(&note_path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(file.temp_path(), std::fs::Permissions::from_mode(0o600))
                .map_err(io(&note_path))?;
        }
        serde_json::to_writer(file.writer(), note).map_err(|e| StateError::Io {
            path: note_path.clone(),
            source: std::io::Error::other(e),
        })?;
        file.commit().map_err(io(&note_path))?;
        let from = self.incoming.join(&entry.0);
        let to = self.dead.join(&entry.0);
        std::fs::rename(&from, &to).map_err(io(&from))?;
        sync_dir(&self.dead)?;
        sync_dir(&self.incoming)
    }

    /// The dead letters (message file names), oldest first.
    pub fn dead_letters(&self) -> Result<Vec<SpoolEntry>, StateError> {
        messages_in(&self.dead)
    }

    pub fn dead_note(&self, entry: &SpoolEntry) -> Result<DeadNote, StateError> {
        let path = self.dead.join(format!("{}{NOTE_SUFFIX}", entry.0));
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| StateError::Io {
            path,
            source: std::io::Error::other(e),
        })
    }

    /// Deletes the dead letters (and notes) last changed more than
    /// `retention` ago; returns how many messages went.
    pub fn prune_dead(&self, retention: Duration) -> Result<usize, StateError> {
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dead).map_err(io(&self.dead))? {
            let Ok(entry) = entry else { continue };
            let expired = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age > retention);
            if expired {
                let path = entry.path();
                std::fs::remove_file(&path).map_err(io(&path))?;
                if path.to_string_lossy().ends_with(MESSAGE_SUFFIX) {
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            sync_dir(&self.dead)?;
        }
        Ok(removed)
    }
}

/// The message files of `dir` (not their notes, not temporary files), oldest
/// first: names start with the arrival sequence.
fn messages_in(dir: &Path) -> Result<Vec<SpoolEntry>, StateError> {
    let mut entries: Vec<SpoolEntry> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.ends_with(MESSAGE_SUFFIX) && !name.starts_with('.'))
        .map(SpoolEntry)
        .collect();
    entries.sort();
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_wait_in_order_leave_when_done_and_dead_letters_are_owner_only() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let spool = Spool::open(dir.path()).expect("opened");
        let a = spool.put(b"MSH|a").expect("put");
        let b = spool.put(b"MSH|b").expect("put");
        assert_eq!(
            spool.pending().expect("pending"),
            vec![a.clone(), b.clone()]
        );
        assert_eq!(spool.read(&b).expect("read"), b"MSH|b");
        spool.done(&a).expect("done");
        spool.done(&a).expect("done twice is fine");
        let note = DeadNote {
            control_id: "M1".into(),
            reason: "patient-not-found".into(),
            message: "no Patient".into(),
            time: "2026-01-01T00:00:00Z".into(),
        };
        spool.bury(&b, &note).expect("buried");
        assert!(spool.pending().expect("pending").is_empty());
        assert_eq!(spool.dead_letters().expect("dead"), vec![b.clone()]);
        assert_eq!(spool.dead_note(&b).expect("note"), note);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("dead").join(&b.0)), 0o600);
            assert_eq!(mode(&dir.path().join("dead")), 0o700);
        }
        assert_eq!(
            spool.prune_dead(Duration::from_secs(3600)).expect("pruned"),
            0
        );
        assert_eq!(spool.prune_dead(Duration::ZERO).expect("pruned"), 1);
        assert!(spool.dead_letters().expect("dead").is_empty());
        assert!(Spool::open(dir.path()).is_err(), "one listener per spool");
        drop(spool);
        let leftover = dir.path().join("incoming/.x.hl7.tmp-1");
        std::fs::write(&leftover, b"half").expect("a temp file");
        let spool = Spool::open(dir.path()).expect("opened again");
        assert!(
            !leftover.exists(),
            "a crashed put's temporary file is removed"
        );
        assert!(spool.pending().expect("pending").is_empty());
    }
}
