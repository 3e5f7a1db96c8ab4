//! What the network runtime needs from the sealed key store, and the records it keeps there.
//!
//! * [`tables::NODE_IDENTITY`] / [`TRANSPORT_RECORD`]: the X25519 transport secret (32 bytes),
//!   made at the first unseal;
//! * [`tables::KEY_SHARES`] / `key_id`: a [`StoredShare`] (JSON), written once per key: the
//!   store's `put` there is an atomic insert-if-absent, so two concurrent key generations for one
//!   key id can never overwrite a share;
//! * [`tables::PRIME_POOL`] / [`PRIME_POOL_RECORD`]: the pool's prime sets (JSON list).
//!
//! All calls block (the store does file I/O and AEAD); call them from a blocking thread.

use mpc_keystore::{Unsealed, tables};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Record key of the transport secret in [`tables::NODE_IDENTITY`].
pub const TRANSPORT_RECORD: &[u8] = b"x25519-transport";
/// Record key of the prime pool in [`tables::PRIME_POOL`].
pub const PRIME_POOL_RECORD: &[u8] = b"pool";

/// Why a store access failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreAccessError {
    /// The store is not unsealed (or broken).
    #[error("the key store is not unsealed")]
    Sealed,
    /// The key store reported an error.
    #[error("key store: {0}")]
    Store(#[from] mpc_keystore::Error),
    /// A record does not have the expected form.
    #[error("record {table}/{key}: {reason}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Record key (not secret).
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Blocking access to the secret records of an unsealed store.
pub trait SecretStore: Send + Sync + 'static {
    /// Reads a record.
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreAccessError>;
    /// Writes a record (one atomic write). In [`tables::KEY_SHARES`] only if the key is absent
    /// (atomic insert-if-absent; an existing share is never overwritten).
    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<(), StoreAccessError>;
}

impl SecretStore for Unsealed {
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreAccessError> {
        Ok(Unsealed::get(self, table, key)?)
    }

    /// Key shares are written once: an existing share is never overwritten (two concurrent key
    /// generations for one key id: one stores, the other fails with `RecordExists`).
    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<(), StoreAccessError> {
        if table == tables::KEY_SHARES {
            return Ok(Unsealed::insert_new(self, table, key, value)?);
        }
        Ok(Unsealed::put(self, table, key, value)?)
    }
}

/// The node's transport secret: read from the store, or made and stored if it is not there yet
/// (the first unseal).
pub fn ensure_transport_key(
    store: &dyn SecretStore,
) -> Result<mpc_transport::keys::TransportSecret, StoreAccessError> {
    use mpc_transport::keys::TransportSecret;
    if let Some(b) = store.get(tables::NODE_IDENTITY, TRANSPORT_RECORD)? {
        let bytes: [u8; 32] = b
            .as_slice()
            .try_into()
            .map_err(|_| StoreAccessError::Corrupt {
                table: tables::NODE_IDENTITY,
                key: String::from_utf8_lossy(TRANSPORT_RECORD).into_owned(),
                reason: "not 32 bytes".into(),
            })?;
        return Ok(TransportSecret::from_bytes(&Zeroizing::new(bytes)));
    }
    let t = TransportSecret::generate(&mut rand_core::OsRng);
    store.put(tables::NODE_IDENTITY, TRANSPORT_RECORD, &t.to_bytes()[..])?;
    tracing::info!(public = %hex::encode(t.public()), "transport key created");
    Ok(t)
}

/// A key share as stored under its key id.
#[derive(Serialize, Deserialize)]
#[serde(tag = "curve", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoredShare {
    /// CGGMP secp256k1 core share and aux info (`mpc_tss` stored forms, hex).
    Secp256k1 {
        /// `EcdsaCoreShare::to_stored_bytes`.
        #[serde(with = "hex::serde")]
        core: Vec<u8>,
        /// `EcdsaAuxInfo::to_stored_bytes`.
        #[serde(with = "hex::serde")]
        aux: Vec<u8>,
    },
    /// FROST ed25519 share.
    Ed25519 {
        /// `EddsaKeyShare::to_stored_bytes`.
        #[serde(with = "hex::serde")]
        share: Vec<u8>,
    },
}

impl Drop for StoredShare {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        match self {
            StoredShare::Secp256k1 { core, aux } => {
                core.zeroize();
                aux.zeroize();
            }
            StoredShare::Ed25519 { share } => share.zeroize(),
        }
    }
}

impl StoredShare {
    /// JSON bytes (zeroized on drop).
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, StoreAccessError> {
        serde_json::to_vec(self)
            .map(Zeroizing::new)
            .map_err(|e| StoreAccessError::Corrupt {
                table: tables::KEY_SHARES,
                key: String::new(),
                reason: e.to_string(),
            })
    }

    /// Parses a record read from [`tables::KEY_SHARES`].
    pub fn from_bytes(key_id: &str, bytes: &[u8]) -> Result<Self, StoreAccessError> {
        serde_json::from_slice(bytes).map_err(|e| StoreAccessError::Corrupt {
            table: tables::KEY_SHARES,
            key: key_id.to_owned(),
            reason: e.to_string(),
        })
    }
}
