//! The dead letters of the `hl7` files mode: one NDJSON line per message
//! (or report of a message) that failed, naming where it came from (file
//! and position), its MSH-10 and why — never its content, which stays in
//! the archive it was read from. The file is created readable by its owner
//! only, and each line is durable (fsync) before the run goes on.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hl7DeadLetter {
    /// `<file>#<message number, from 1>`.
    pub source: String,
    /// MSH-10 (empty when the message had none readable).
    pub control_id: String,
    /// The reason key, as counted in the summary.
    pub reason: String,
    pub message: String,
    /// RFC 3339.
    pub time: String,
}

/// An append-only dead-letter file.
#[derive(Debug)]
pub struct Hl7DeadLetterFile {
    path: PathBuf,
    file: std::sync::Mutex<std::fs::File>,
}

impl Hl7DeadLetterFile {
    /// Opens (creates, with its directory, mode 0600) `path` for appending,
    /// so that a path that cannot be written fails now.
    pub fn append(path: &Path) -> std::io::Result<Hl7DeadLetterFile> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = owner_only().append(true).create(true).open(path)?;
        Ok(Hl7DeadLetterFile {
            path: path.to_path_buf(),
            file: std::sync::Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&self, letter: &Hl7DeadLetter) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(letter).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// Open options that create files readable and writable by the owner only
/// (they name messages that carry patient data).
pub fn owner_only() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_lines_in_an_owner_only_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("dead/hl7.ndjson");
        let file = Hl7DeadLetterFile::append(&path).expect("created");
        let letter = Hl7DeadLetter {
            source: "a.hl7#2".into(),
            control_id: "M-1".into(),
            reason: "hl7-unusable-pid-3".into(),
            message: "no PID-3 assigning authority is configured".into(),
            time: "2026-01-01T00:00:00Z".into(),
        };
        file.write(&letter).expect("written");
        file.write(&letter).expect("written");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<Hl7DeadLetter> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a letter"))
            .collect();
        assert_eq!(lines, vec![letter.clone(), letter]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
