//! File helpers: atomic replace (temp file, write, fsync, rename, fsync directory), mode 0600.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::failpoint;

/// The directory holding `path`; errors clearly if it does not exist.
pub(crate) fn parent_dir(path: &Path) -> Result<PathBuf> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::MissingDirectory(dir));
    }
    Ok(dir)
}

/// `<path><suffix>` in the same directory.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| Error::io("open directory", dir, e))?;
    d.sync_all()
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Creates (truncating) a file with mode 0600.
pub(crate) fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("create", path, e))
}

/// Replaces `path` with `bytes` atomically: a crash leaves either the old or the new content.
/// Failpoints (tests): `atomic.after_write`, `atomic.after_fsync`, `atomic.after_rename`.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path)?;
    let tmp = sibling(path, ".tmp");
    let mut f = create_private(&tmp)?;
    f.write_all(bytes)
        .map_err(|e| Error::io("write", &tmp, e))?;
    failpoint::hit("atomic.after_write")?;
    f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(f);
    failpoint::hit("atomic.after_fsync")?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", &tmp, e))?;
    failpoint::hit("atomic.after_rename")?;
    fsync_dir(&dir)
}

/// Reads a file, refusing ones larger than `max` bytes.
pub(crate) fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    if meta.len() > max {
        return Err(Error::NotAKeyStore {
            path: path.to_owned(),
            reason: format!(
                "file is {} bytes, larger than any key store this program writes",
                meta.len()
            ),
        });
    }
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

/// First bytes of a file (for sniffing the engine).
pub(crate) fn head(path: &Path, n: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut buf = Vec::with_capacity(n);
    f.take(n as u64)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(buf)
}
