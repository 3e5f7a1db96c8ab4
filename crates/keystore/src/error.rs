//! Errors of the key store. Every variant names the problem; none carries secret material.

use std::path::PathBuf;
use std::time::Duration;

use crate::password::PasswordRuleError;
use crate::shamir::ShareError;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the key store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "write", "fsync", "rename", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The directory that should hold the store does not exist.
    #[error(
        "directory {0} does not exist (create it first; the key store never creates directories)"
    )]
    MissingDirectory(PathBuf),
    /// The file is not a key store at all (wrong magic, another file type, ...).
    #[error("file {path} is not an mpc-node key store ({reason})")]
    NotAKeyStore {
        /// The file.
        path: PathBuf,
        /// Why it was rejected, e.g. "bad magic".
        reason: String,
    },
    /// The file is a key store of the other engine.
    #[error(
        "file {path} is a key store of engine `{found}` but `[storage] engine` is `{configured}`"
    )]
    EngineMismatch {
        /// The file.
        path: PathBuf,
        /// Engine the file was written by.
        found: &'static str,
        /// Engine configured.
        configured: &'static str,
    },
    /// The file ends early.
    #[error("file {path} is truncated ({detail})")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where it ended.
        detail: String,
    },
    /// The file's structure or a checksum is wrong.
    #[error("file {path} is corrupt: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file was written by a newer program.
    #[error("format version {found} is newer than this program supports (max {supported})")]
    NewerFormat {
        /// Version in the file.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// The file's format version is older than any this program reads (downgrade).
    #[error(
        "format version {found} is older than this program accepts (min {min}); possible downgrade"
    )]
    OlderFormat {
        /// Version in the file.
        found: u32,
        /// Oldest accepted.
        min: u32,
    },
    /// The write counter went backwards compared with the high-water mark.
    #[error(
        "rollback detected: counter {found} < last seen {last_seen} (the file is an older copy)"
    )]
    Rollback {
        /// Counter in the file.
        found: u64,
        /// Highest counter previously recorded.
        last_seen: u64,
    },
    /// The records do not match the record-set digest the header authenticates with its
    /// counter: older (or mixed) records under a newer header.
    #[error(
        "{path}: the records do not match the record set authenticated with the header's counter (older records under a newer header: rollback or splice); restore the file from a backup"
    )]
    RecordSetMismatch {
        /// The store file.
        path: PathBuf,
    },
    /// The authenticated counter does not match the header's plain counter.
    #[error("header counter {plain} is not the authenticated counter (tampered header)")]
    CounterTampered {
        /// Counter in clear in the header.
        plain: u64,
    },
    /// The KDF parameters in the header are outside the accepted range.
    #[error("key-derivation parameters rejected: {0}")]
    BadKdfParams(String),
    /// The store's `t`/`n` differ from the configured ones.
    #[error(
        "store was initialised with t={file_t}, n={file_n} but the configuration says t={cfg_t}, n={cfg_n}"
    )]
    PolicyMismatch {
        /// t in the file.
        file_t: u8,
        /// n in the file.
        file_n: u8,
        /// t configured.
        cfg_t: u8,
        /// n configured.
        cfg_n: u8,
    },
    /// Invalid t/n configuration.
    #[error("invalid threshold configuration: {0}")]
    BadPolicy(String),
    /// Wrong password or wrong share set: the data key did not unwrap. Nothing was written.
    #[error("wrong password or share set (failure {failures}); retry allowed in {retry_after:?}")]
    WrongPassword {
        /// Consecutive failures so far.
        failures: u32,
        /// How long the caller must wait before the next attempt is considered.
        retry_after: Duration,
    },
    /// An attempt came before the back-off delay had passed; it was not evaluated.
    #[error("too many failed attempts; retry in {retry_after:?}")]
    RetryLater {
        /// Remaining wait.
        retry_after: Duration,
    },
    /// The t=1 password does not meet the complexity rule.
    #[error(transparent)]
    PasswordRule(#[from] PasswordRuleError),
    /// A t>1 share was refused.
    #[error(transparent)]
    Share(#[from] ShareError),
    /// The rebuilt t>1 secret is too short to be used.
    #[error("rebuilt secret is {0} bytes; at least 12 are required")]
    SecretTooShort(usize),
    /// A record failed its AEAD check (corrupted, or moved from another table/key).
    #[error("record {table}/{key} failed authentication (corrupted or swapped)")]
    RecordCorrupt {
        /// Table name.
        table: String,
        /// Record key (hex).
        key: String,
    },
    /// A table name is not acceptable.
    #[error(
        "invalid table name {0:?}: use 1-64 characters of a-z, 0-9, '_' and not a reserved name"
    )]
    BadTableName(String),
    /// A record is larger than the limit.
    #[error("record too large: {0} bytes")]
    RecordTooLarge(usize),
    /// `change_password` without a verified current password.
    #[error("password change not started: verify the current password first (re-bkey-init)")]
    ChangeNotStarted,
    /// [`crate::Unsealed::insert_new`]: the key already holds a record (left unchanged).
    #[error("record {table}/{key} already exists (not overwritten)")]
    RecordExists {
        /// Table.
        table: String,
        /// Record key, hex.
        key: String,
    },
    /// The password change started by `re-bkey-init` is older than the allowed window.
    #[error(
        "the password change started more than {window_secs} s ago and has expired; start again with re-bkey-init"
    )]
    ChangeExpired {
        /// The window, seconds.
        window_secs: u64,
    },
    /// The new password equals the current one.
    #[error("the new password is the same as the current one")]
    SamePassword,
    /// The store file appeared after `open` reported it uninitialised.
    #[error("file {0} already exists; refusing to overwrite an existing key store")]
    AlreadyExists(PathBuf),
    /// Error of the embedded database (engine `bolt`).
    #[error("database {path}: {detail}")]
    Database {
        /// The file.
        path: PathBuf,
        /// redb's description.
        detail: String,
    },
    /// A cryptographic primitive failed in a way that is not a wrong password.
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
    /// Injected crash (tests only).
    #[error("failpoint {0} triggered")]
    Failpoint(&'static str),
}

impl Error {
    /// `true` when the file itself is damaged or not a key store (structure, checksum, cut
    /// short, tampered header): the remedy is restoring it from a backup, not a config change
    /// or another password.
    pub fn is_damaged_file(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. }
                | Error::Truncated { .. }
                | Error::NotAKeyStore { .. }
                | Error::CounterTampered { .. }
                | Error::RecordSetMismatch { .. }
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
