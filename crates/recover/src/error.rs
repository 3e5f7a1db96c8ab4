//! The library's errors.

/// Why a recovery step failed. Messages name the backup, the key and the counts; they never
/// hold secret material.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was done.
        what: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The password or the password shares do not open the backup.
    #[error(
        "{backup}: wrong password or password shares (the backup's data key did not decrypt; nothing was written)"
    )]
    WrongPassword {
        /// The backup.
        backup: String,
    },
    /// The backup needs a password where shares were given, or shares where a password was.
    #[error("{backup}: {reason}")]
    Unlock {
        /// The backup.
        backup: String,
        /// What is wrong.
        reason: String,
    },
    /// The key store refused the file.
    #[error("{backup}: {source}")]
    Store {
        /// The backup.
        backup: String,
        /// The key store's error.
        #[source]
        source: mpc_keystore::Error,
    },
    /// A key record could not be read.
    #[error("{backup}: key {key_id}: {reason}")]
    Record {
        /// The backup.
        backup: String,
        /// The key id.
        key_id: String,
        /// What is wrong (never secret content).
        reason: String,
    },
    /// Fewer than `t` distinct parties' shares of a key were given.
    #[error(
        "key {key_id} ({curve}): shares of {given} distinct part{plural} given ({parties}), {needed} needed; refusing to rebuild from fewer than t",
        plural = if *given == 1 { "y" } else { "ies" }
    )]
    NotEnoughShares {
        /// The key id.
        key_id: String,
        /// Its curve.
        curve: &'static str,
        /// Distinct parties given (of one share generation).
        given: usize,
        /// The key's threshold t.
        needed: u16,
        /// Which parties, and from which backups.
        parties: String,
    },
    /// Shares that do not belong to one key were given together.
    #[error("key {key_id}: shares of different keys mixed together: {reason}")]
    MixedKeys {
        /// The key id.
        key_id: String,
        /// What differs.
        reason: String,
    },
    /// The rebuilt secret times G is not the stored public key.
    #[error(
        "key {key_id}: the rebuilt secret does not match the stored public key {public_key}; refusing it"
    )]
    PublicKeyMismatch {
        /// The key id.
        key_id: String,
        /// The stored public key (hex).
        public_key: String,
    },
    /// The library refused to interpolate.
    #[error("key {key_id}: reconstruction failed: {reason}")]
    Reconstruct {
        /// The key id.
        key_id: String,
        /// The library's reason.
        reason: String,
    },
    /// No key to recover.
    #[error("{0}")]
    NoKeys(String),
    /// A derivation path is invalid, or the derived key disagrees with the nodes' derivation.
    #[error("path {path}: {reason}")]
    Derive {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An output could not be produced.
    #[error("{0}")]
    Output(String),
}

impl RecoverError {
    pub(crate) fn io(
        what: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> RecoverError + use<> {
        let path = path.display().to_string();
        move |source| RecoverError::Io { what, path, source }
    }
}
