//! Dead letters: one NDJSON line per report that failed, for `reportsplit
//! reprocess`. Written by backfill, serve and (for a report that panics)
//! sync; read back, and rewritten, by reprocess.
//!
//! No report text in a line: a reference, the version read, a stable reason
//! key and the error message (which names the request and the server's
//! diagnostics, never the report's content).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::apply::reference;
use super::tally::{BAD_LINE, Failure};
use crate::pull::rfc3339;

/// One line of the dead-letter file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// `DiagnosticReport/<id>`, or `<file>#line=<n>` for a line of an
    /// export file that holds no report.
    pub report: String,
    #[serde(rename = "versionId", default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The reason key, as counted in summaries (`rejected-422`, `plan`, `panic`...).
    pub reason: String,
    pub message: String,
    /// When it failed (RFC 3339).
    pub time: String,
}

/// Longest message kept in a dead-letter line.
const MAX_MESSAGE_CHARS: usize = 1000;

impl DeadLetter {
    /// The letter for `report` (or its [`identity`]) that failed with `failure`.
    pub fn new(report: &Value, failure: &Failure) -> DeadLetter {
        DeadLetter {
            report: reference(report),
            version_id: report
                .pointer("/meta/versionId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            reason: failure.key(),
            message: String::new(),
            time: String::new(),
        }
        .failed_again(failure)
    }

    /// The letter of line `line` of the NDJSON file `file` (an export's),
    /// which holds no report: named `<file>#line=<n>`, so that `reprocess`
    /// keeps it as it is (it names no report to retry).
    pub fn bad_line(file: &str, line: u64, reason: &str) -> DeadLetter {
        DeadLetter {
            report: format!("{file}#line={line}"),
            version_id: None,
            reason: BAD_LINE.to_owned(),
            message: reason.chars().take(MAX_MESSAGE_CHARS).collect(),
            time: rfc3339(OffsetDateTime::now_utc()),
        }
    }

    /// This letter with `failure` as its new reason, message and time.
    pub fn failed_again(self, failure: &Failure) -> DeadLetter {
        DeadLetter {
            reason: failure.key(),
            message: failure
                .to_string()
                .chars()
                .take(MAX_MESSAGE_CHARS)
                .collect(),
            time: rfc3339(OffsetDateTime::now_utc()),
            ..self
        }
    }

    /// A line of a dead-letter file and the report id it names; `None` for
    /// anything else (kept verbatim by reprocess).
    pub fn parse(line: &str) -> Option<(DeadLetter, String)> {
        let letter: DeadLetter = serde_json::from_str(line).ok()?;
        let id = letter.report.strip_prefix("DiagnosticReport/")?.to_owned();
        reportsplit_fhir::map::is_fhir_id(&id).then_some((letter, id))
    }
}

/// The parts of a report a dead letter names (id and version), kept while
/// the report itself moves into the writer.
pub fn identity(report: &Value) -> Value {
    serde_json::json!({
        "resourceType": "DiagnosticReport",
        "id": report.get("id").cloned().unwrap_or(Value::Null),
        "meta": {"versionId": report.pointer("/meta/versionId").cloned().unwrap_or(Value::Null)},
    })
}

/// Appends dead letters, one line each, durable (fsync) as written.
///
/// The file is opened for each letter and locked (`flock`) while the line
/// goes in. `reprocess` replaces the file (atomically) while it holds the
/// same lock, after copying what was appended since it read it: a letter
/// lands in the file it copies or in its replacement, never in a file
/// already replaced — so `serve`, which holds no state lock, may write
/// beside a `reprocess` of the same file. Failures are rare: the open and
/// the fsync per letter cost nothing that matters.
#[derive(Debug)]
pub struct DeadLetterFile {
    path: PathBuf,
}

/// Attempts at a letter while the file is being replaced under it.
const REPLACED_ATTEMPTS: usize = 10;

impl DeadLetterFile {
    /// The dead-letter file `path`, created (with its directory) if needed,
    /// so that a path that cannot be written fails now, not at the first letter.
    pub fn append(path: &Path) -> Result<DeadLetterFile, std::io::Error> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        open_for_append(path)?;
        Ok(DeadLetterFile {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&self, letter: &DeadLetter) -> Result<(), std::io::Error> {
        let mut line = serde_json::to_vec(letter).map_err(std::io::Error::other)?;
        line.push(b'\n');
        for _ in 0..REPLACED_ATTEMPTS {
            let mut file = open_for_append(&self.path)?;
            file.lock()?;
            if !still_at(&file, &self.path)? {
                // Replaced between the open and the lock: open the new one.
                continue;
            }
            std::io::Write::write_all(&mut file, &line)?;
            // Durable before the caller forgets the report (serve drops it
            // from its queue). The lock goes with the file.
            return file.sync_data();
        }
        Err(std::io::Error::other(format!(
            "{} was replaced {REPLACED_ATTEMPTS} times while a dead letter was written",
            self.path.display()
        )))
    }
}

fn open_for_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// Whether `file` is still the file at `path` (not replaced by a rename).
#[cfg(unix)]
fn still_at(file: &std::fs::File, path: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt as _;
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(open.dev() == now.dev() && open.ino() == now.ino()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

#[cfg(not(unix))]
fn still_at(_: &std::fs::File, _: &Path) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_carry_no_report_text() {
        let report = serde_json::json!({"resourceType": "DiagnosticReport", "id": "r1",
            "meta": {"versionId": "3"}, "conclusion": "Large left pneumothorax."});
        let letter = DeadLetter::new(&identity(&report), &Failure::Panic);
        let line = serde_json::to_string(&letter).unwrap();
        assert!(!line.contains("pneumothorax"), "{line}");
        assert_eq!(letter.report, "DiagnosticReport/r1");
        assert_eq!(letter.version_id.as_deref(), Some("3"));
        assert_eq!(letter.reason, "panic");
        let (back, id) = DeadLetter::parse(&line).unwrap();
        assert_eq!((back, id.as_str()), (letter, "r1"));
        assert!(DeadLetter::parse("{\"report\": \"Patient/1\"}").is_none());
    }

    #[test]
    fn a_letter_written_after_the_file_was_replaced_goes_into_the_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("letters/dead.ndjson");
        let file = DeadLetterFile::append(&path).unwrap();
        let letter = |id: &str| {
            let report = serde_json::json!({"resourceType": "DiagnosticReport", "id": id});
            DeadLetter::new(&report, &Failure::Panic)
        };
        file.write(&letter("before")).unwrap();
        // What reprocess does: the remaining entries, atomically in place.
        crate::atomic::atomic_write(&path, b"{\"kept\": true}\n").unwrap();
        file.write(&letter("after")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0], "{\"kept\": true}");
        assert_eq!(DeadLetter::parse(lines[1]).unwrap().1, "after");
    }
}
