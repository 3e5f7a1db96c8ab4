//! Small file helpers: private (0600) files and directories.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// A file operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct FsError {
    /// What was done.
    pub what: &'static str,
    /// The file.
    pub path: String,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

fn err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FsError + use<> {
    let path = path.display().to_string();
    move |source| FsError { what, path, source }
}

/// Writes `bytes` to `path` with mode 0600 (also when the file existed with another mode).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err("create", path))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(err("chmod", path))?;
    f.write_all(bytes).map_err(err("write", path))?;
    f.sync_all().map_err(err("fsync", path))?;
    Ok(())
}

/// Writes a public file (mode from the umask).
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    std::fs::write(path, bytes).map_err(err("write", path))
}

/// Reads a file as text.
pub fn read_text(path: &Path) -> Result<String, FsError> {
    std::fs::read_to_string(path).map_err(err("read", path))
}

/// Creates a directory and its parents.
pub fn create_dir(path: &Path) -> Result<(), FsError> {
    std::fs::create_dir_all(path).map_err(err("create directory", path))
}
