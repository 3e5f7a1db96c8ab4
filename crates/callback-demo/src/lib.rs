//! `mpc-callback-demo`: a reference callback server for mpc-node (product guide §4), and the
//! policy engine behind it.
//!
//! * [`server`]: `POST /check` and `POST /rawdata_signature` as the guide specifies (request
//!   signature checked over the raw body, then over its Go re-serialization; every response
//!   signed), plus loopback-only `POST /admin/approve/{callback_id}` and `GET /admin/pending`.
//! * [`policy`]: the TOML policy (request types, keygen party sets, sign types, destination
//!   allow-list, per chain/asset limits, daily limits, WAIT band). Pure.
//! * [`store`]: audit log, state and reported signatures in the data directory (files 0600).
//! * [`amount`]: exact decimal amounts.
//! * [`cli`]: the command line (`serve`, `approve`, `decrypt`), shared by the binary and
//!   `mpc-devnet callback-demo`.
//!
//! `docs/callback.md` explains the protocol for users who write their own server.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod amount;
pub mod cli;
pub mod policy;
pub mod server;
pub mod store;

use std::path::Path;

use mpc_wire::keys::{self, KeyError};

pub use server::{ServeConfig, ServeError, run};

/// A key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Not readable.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a usable P-256 key.
    #[error("{path}: {source}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        source: KeyError,
    },
}

fn read_pem<T>(
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, KeyError>,
) -> Result<T, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text).map_err(|source| KeyFileError::Key {
        path: path.display().to_string(),
        source,
    })
}

/// Loads a P-256 private key for signing (SEC1 with or without `EC PARAMETERS`, or PKCS#8).
pub fn load_signing_key(path: &Path) -> Result<p256::ecdsa::SigningKey, KeyFileError> {
    read_pem(path, keys::signing_key_from_pem)
}

/// Loads a P-256 private key for ECIES decryption (same formats).
pub fn load_secret_key(path: &Path) -> Result<p256::SecretKey, KeyFileError> {
    read_pem(path, keys::secret_key_from_pem)
}

/// Loads a P-256 public key (`openssl ec -pubout`).
pub fn load_verifying_key(path: &Path) -> Result<p256::ecdsa::VerifyingKey, KeyFileError> {
    read_pem(path, keys::verifying_key_from_pem)
}

pub use mpc_wire::ecies::decrypt_hex;
