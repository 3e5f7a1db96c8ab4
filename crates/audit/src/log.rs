//! One audit log file, appended to by one writer.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{Entry, Head, MAX_LINE, line_hash};

/// Why an audit log could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file system refused.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The last complete line is no audit entry, so the chain cannot be continued.
    #[error(
        "audit log {path}: the last line is not an audit entry ({reason}); the log may have \
         been tampered with. Keep the file for investigation (`verify` it), move it aside, and \
         start again to begin a new log"
    )]
    Unreadable {
        /// The file.
        path: String,
        /// What is wrong with the line.
        reason: String,
    },
    /// An entry would be longer than [`MAX_LINE`].
    #[error("audit entry {event:?} is {len} bytes, more than the {max} a line may hold")]
    TooLong {
        /// The event.
        event: String,
        /// Its length.
        len: usize,
        /// [`MAX_LINE`].
        max: usize,
    },
    /// The event name is empty, too long, or not kebab-case ASCII.
    #[error("audit event name {0:?}: must be 1 to 64 characters a-z, 0-9 and '-'")]
    BadEvent(String),
    /// Another process (or another open log in this one) writes this file.
    #[error(
        "audit log {path} is in use by another process: give each process a log file of its own"
    )]
    InUse {
        /// The file.
        path: String,
    },
    /// The writer thread is gone.
    #[error("the audit writer has stopped")]
    Stopped,
}

/// How long [`AuditLog::open`] waits for another writer of the file to close it.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// An open audit log (see the crate docs for the format).
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    len: u64,
    head: Head,
}

fn valid_event(e: &str) -> bool {
    (1..=64).contains(&e.len())
        && e.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl AuditLog {
    /// Opens (or creates, mode 0600) the log at `path`, locked for this writer (a second
    /// writer is waited for up to [`LOCK_WAIT`], then refused: [`AuditError::InUse`]), and
    /// resumes its chain from the last
    /// complete line. A last line without its `\n` (a write cut by a crash) is removed, and
    /// an `audit-torn-line-removed` entry records how many bytes. A last complete line that
    /// is no entry is refused ([`AuditError::Unreadable`]).
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        Self::open_waiting(path, LOCK_WAIT)
    }

    /// [`AuditLog::open`], waiting at most `lock_wait` for another writer of the file to let
    /// go before [`AuditError::InUse`].
    pub fn open_waiting(
        path: &Path,
        lock_wait: std::time::Duration,
    ) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut opts = OpenOptions::new();
        opts.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(io)?;
        // One writer per file: two chains interleaved in one file would read as tampering. A
        // writer that is closing (a restart in the same process: its thread makes the last
        // batch durable, then lets go) is waited for, up to `lock_wait`.
        let deadline = std::time::Instant::now() + lock_wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(AuditError::InUse {
                        path: path.display().to_string(),
                    });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io)?;
        }
        let size = file.metadata().map_err(io)?.len();
        let window = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 2;
        let start = size.saturating_sub(window);
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_to_end(&mut tail).map_err(io)?;
        let unreadable = |reason: &str| AuditError::Unreadable {
            path: path.display().to_string(),
            reason: reason.to_owned(),
        };
        // Cut a torn last line.
        let complete = match tail.iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if start == 0 => 0,
            None => return Err(unreadable("a line longer than the longest entry")),
        };
        let torn = tail.len() - complete;
        let len = size - u64::try_from(torn).unwrap_or(0);
        if torn > 0 {
            file.set_len(len).map_err(io)?;
            tracing::warn!(path = %path.display(), bytes = torn, "audit log: removed a torn last line");
        }
        let body = &tail[..complete];
        let head = if body.is_empty() {
            Head::EMPTY
        } else {
            let without_nl = &body[..body.len() - 1];
            let line_start = match without_nl.iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None if start == 0 => 0,
                None => return Err(unreadable("a line longer than the longest entry")),
            };
            let line = &without_nl[line_start..];
            let entry: Entry = serde_json::from_slice(line)
                .map_err(|e| unreadable(&format!("not an entry: {e}")))?;
            Head {
                seq: entry.seq,
                hash: line_hash(line),
            }
        };
        let mut log = AuditLog {
            path: path.to_path_buf(),
            file,
            len,
            head,
        };
        if torn > 0 {
            let mut fields = serde_json::Map::new();
            fields.insert("bytes".into(), torn.into());
            log.append(crate::now_ms(), "audit-torn-line-removed", fields)?;
            log.sync()?;
        }
        Ok(log)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last entry.
    pub fn head(&self) -> Head {
        self.head
    }

    /// Appends one entry (written to the file, not yet durable: see [`AuditLog::sync`]). A
    /// failed write is cut off again so that the file keeps ending with a whole line.
    pub fn append(
        &mut self,
        at: u64,
        event: &str,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Head, AuditError> {
        if !valid_event(event) {
            return Err(AuditError::BadEvent(event.to_owned()));
        }
        let entry = Entry {
            seq: self.head.seq + 1,
            at,
            prev: hex::encode(self.head.hash),
            event: event.to_owned(),
            fields,
        };
        let mut line = serde_json::to_vec(&entry).map_err(|e| AuditError::Io {
            path: self.path.display().to_string(),
            source: std::io::Error::other(e),
        })?;
        if line.len() > MAX_LINE {
            return Err(AuditError::TooLong {
                event: event.to_owned(),
                len: line.len(),
                max: MAX_LINE,
            });
        }
        let hash = line_hash(&line);
        line.push(b'\n');
        if let Err(source) = self.file.write_all(&line) {
            // Leave no partial line behind (best effort; `open` cuts one too).
            let _ = self.file.set_len(self.len);
            return Err(AuditError::Io {
                path: self.path.display().to_string(),
                source,
            });
        }
        self.len += u64::try_from(line.len()).unwrap_or(0);
        self.head = Head {
            seq: entry.seq,
            hash,
        };
        Ok(self.head)
    }

    /// Makes what was appended durable (`fdatasync`).
    pub fn sync(&mut self) -> Result<(), AuditError> {
        self.file.sync_data().map_err(|source| AuditError::Io {
            path: self.path.display().to_string(),
            source,
        })
    }
}
