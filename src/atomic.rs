//! Replacing a file atomically and durably: write a temporary file beside
//! it, fsync, rename over it, fsync the directory. A crash leaves the old
//! file or the new one, never half of either. The state store and the
//! dead-letter rewrite of `reprocess` both go through here.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};

/// A file being written in place of `target`; nothing changes at `target`
/// until [`AtomicFile::commit`]. Dropped without a commit, it removes its
/// temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    file: BufWriter<File>,
    committed: bool,
}

impl AtomicFile {
    /// Starts the replacement of `target` (a temporary file in its directory,
    /// so that the rename stays within one file system).
    pub fn create(target: &Path) -> std::io::Result<AtomicFile> {
        let name = target
            .file_name()
            .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
        let temp = target.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        let file = BufWriter::new(File::create(&temp)?);
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp,
            file,
            committed: false,
        })
    }

    /// The temporary file's path, for error messages.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Where the content goes until the commit.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.file
    }

    /// Flushes, fsyncs and renames over the target, then fsyncs the
    /// directory: the rename is durable only once the directory entry is.
    pub fn commit(mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        std::fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(dir).and_then(|d| d.sync_all())?;
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Replaces `target` with `bytes`, atomically and durably.
pub fn atomic_write(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = AtomicFile::create(target)?;
    file.writer().write_all(bytes)?;
    file.commit()
}
