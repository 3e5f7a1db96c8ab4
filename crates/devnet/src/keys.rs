//! Key files of the devnet: the admin and API-user keys in the public Go SDK's format
//! (lowercase hex of PKCS#8 DER, no newline, 0600), and the callback server's PEM key pair.

use std::path::Path;

use mpc_api::auth::{SdkKeyError, load_sdk_private_key_hex, sdk_private_key_hex};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use rand_core::OsRng;

use crate::fsutil::{self, FsError};

/// Why a key file could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// File I/O.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Not an SDK key.
    #[error("{path}: {source}")]
    Sdk {
        /// The file.
        path: String,
        /// Why.
        source: SdkKeyError,
    },
    /// Not a PEM P-256 key.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Loads the SDK key at `path`, or makes one (and writes it, 0600) when the file is missing.
pub fn ensure_sdk_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    if path.exists() {
        return load_sdk_key(path);
    }
    let key = SigningKey::random(&mut OsRng);
    let text = sdk_private_key_hex(&key).map_err(|source| KeyFileError::Sdk {
        path: path.display().to_string(),
        source,
    })?;
    fsutil::write_private(path, text.as_bytes())?;
    Ok(key)
}

/// Loads an SDK key file (hex PKCS#8 DER) with mpc-api's loader.
pub fn load_sdk_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = zeroize::Zeroizing::new(fsutil::read_text(path)?);
    load_sdk_private_key_hex(&text).map_err(|source| KeyFileError::Sdk {
        path: path.display().to_string(),
        source,
    })
}

/// Loads the PEM private key at `key_path` or makes one (PKCS#8 PEM, 0600); writes its public
/// key as a `PUBLIC KEY` PEM to `pub_path` either way.
pub fn ensure_pem_key(key_path: &Path, pub_path: &Path) -> Result<SigningKey, KeyFileError> {
    let pem_err = |reason: String| KeyFileError::Pem {
        path: key_path.display().to_string(),
        reason,
    };
    let key = if key_path.exists() {
        let text = zeroize::Zeroizing::new(fsutil::read_text(key_path)?);
        mpc_wire::keys::signing_key_from_pem(&text).map_err(|e| pem_err(e.to_string()))?
    } else {
        let key = SigningKey::random(&mut OsRng);
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| pem_err(e.to_string()))?;
        fsutil::write_private(key_path, pem.as_bytes())?;
        key
    };
    fsutil::write_public(
        pub_path,
        mpc_wire::keys::public_key_pem(key.verifying_key()).as_bytes(),
    )?;
    Ok(key)
}

/// The `BIZ-API-KEY` of a key: lowercase hex of its DER SPKI.
pub fn api_key_hex(key: &SigningKey) -> String {
    mpc_wire::keys::api_key_hex(key.verifying_key())
}

/// A random 32-character password that passes the node's rule (upper, lower, digit and special
/// characters; at least 12 characters).
pub fn random_password() -> String {
    use rand_core::RngCore as _;
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SPECIAL: &[u8] = b"!#%+-.:=?@^_~";
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SPECIAL].concat();
    let pick = |set: &[u8]| -> u8 {
        // Rejection sampling for a uniform choice.
        let n = set.len() as u32;
        let zone = u32::MAX - (u32::MAX % n);
        loop {
            let r = OsRng.next_u32();
            if r < zone {
                return set[(r % n) as usize];
            }
        }
    };
    loop {
        let pw: Vec<u8> = (0..32).map(|_| pick(&all)).collect();
        let has = |set: &[u8]| pw.iter().any(|c| set.contains(c));
        if has(UPPER) && has(LOWER) && has(DIGIT) && has(SPECIAL) {
            return String::from_utf8_lossy(&pw).into_owned();
        }
    }
}
