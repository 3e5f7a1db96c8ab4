//! The read side of the node's key records (`mpc-node`'s `store::StoredKey`, table
//! `key_shares` and `key_shares_next`): format 2
//! `{"version":2,"committee":{…},"share":{"curve":…},"generation"?:…}` and format 1 (the bare
//! share). The share bytes inside are `mpc_tss`'s own stored forms, decoded by `mpc_tss`.
//!
//! Kept here instead of linking `mpc-node` (which would bring its networking along); the
//! tests in `tests/library.rs` write records with `mpc-node`'s own code and read them back here,
//! so the two cannot drift apart unnoticed.

use std::collections::BTreeMap;

use mpc_tss::dkls::DklsKeyShare;
use mpc_tss::ecdsa::EcdsaCoreShare;
use mpc_tss::frost::EddsaKeyShare;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

/// Table of the node's current key shares.
pub const KEY_SHARES: &str = mpc_keystore::tables::KEY_SHARES;
/// Table of refreshed shares waiting for their generation to be switched
/// (`mpc_node::store::KEY_SHARES_NEXT`).
pub const KEY_SHARES_NEXT: &str = "key_shares_next";
/// The key-record format this build reads besides format 1.
pub const STORED_KEY_VERSION: u8 = 2;

/// Hex text decoded into a buffer that is wiped on drop.
struct SecretHex(Zeroizing<Vec<u8>>);

impl<'de> Deserialize<'de> for SecretHex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        let bytes = hex::decode(text.as_bytes())
            .map_err(|_| serde::de::Error::custom("share bytes are not hex"))?;
        Ok(SecretHex(Zeroizing::new(bytes)))
    }
}

#[derive(Deserialize)]
#[serde(tag = "curve", rename_all = "snake_case", deny_unknown_fields)]
enum StoredShareIn {
    Secp256k1 {
        core: SecretHex,
        // The Paillier aux info: not needed to rebuild the key, never decoded here.
        #[allow(dead_code)]
        aux: serde::de::IgnoredAny,
    },
    Ed25519 {
        share: SecretHex,
    },
    #[serde(rename = "secp256k1_dkls23")]
    Dkls23 {
        share: SecretHex,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKeyIn {
    version: u8,
    committee: BTreeMap<String, String>,
    share: StoredShareIn,
    #[serde(default)]
    generation: Option<String>,
}

/// One party's share of a key, decoded by `mpc_tss`.
pub enum Share {
    /// CGGMP24 secp256k1 core share.
    Cggmp24(EcdsaCoreShare),
    /// DKLs23 secp256k1 share.
    Dkls23(Box<DklsKeyShare>),
    /// FROST ed25519 share.
    Ed25519(EddsaKeyShare),
}

impl Share {
    /// `secp256k1` or `ed25519`.
    pub fn curve_name(&self) -> &'static str {
        match self {
            Share::Cggmp24(_) | Share::Dkls23(_) => "secp256k1",
            Share::Ed25519(_) => "ed25519",
        }
    }

    /// `cggmp24`, `dkls23` or `frost`.
    pub fn protocol_name(&self) -> &'static str {
        match self {
            Share::Cggmp24(_) => "cggmp24",
            Share::Dkls23(_) => "dkls23",
            Share::Ed25519(_) => "frost",
        }
    }

    /// The party holding this share (`a`, `b`, …).
    pub fn party(&self) -> mpc_tss::PartyId {
        match self {
            Share::Cggmp24(s) => s.party(),
            Share::Dkls23(s) => s.party(),
            Share::Ed25519(s) => s.party(),
        }
    }

    /// The key's threshold t.
    pub fn threshold(&self) -> u16 {
        match self {
            Share::Cggmp24(s) => s.threshold(),
            Share::Dkls23(s) => s.threshold(),
            Share::Ed25519(s) => s.threshold(),
        }
    }

    /// The root public key as the share records it (33-byte compressed or 32-byte ed25519).
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            Share::Cggmp24(s) => s.public_key().to_vec(),
            Share::Dkls23(s) => s.public_key().to_vec(),
            Share::Ed25519(s) => s.public_key().to_vec(),
        }
    }

    /// The chain code agreed at key generation.
    pub fn chain_code(&self) -> Option<[u8; 32]> {
        match self {
            Share::Cggmp24(s) => s.chain_code(),
            Share::Dkls23(s) => Some(s.chain_code()),
            Share::Ed25519(s) => s.chain_code(),
        }
    }
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("protocol", &self.protocol_name())
            .field("party", &self.party())
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

/// A key record as read from a backup.
#[derive(Debug)]
pub struct KeyRecord {
    /// The key id (record key).
    pub key_id: String,
    /// The table it was read from ([`KEY_SHARES`] or [`KEY_SHARES_NEXT`]).
    pub table: &'static str,
    /// The committee pinned at key generation (party → node id); empty in format 1.
    pub committee: BTreeMap<String, String>,
    /// The share generation after a refresh; `None` for the key generation's share.
    pub generation: Option<String>,
    /// The share.
    pub share: Share,
}

/// Parses a key record of either format and decodes its share with `mpc_tss`.
pub fn parse(key_id: &str, table: &'static str, bytes: &[u8]) -> Result<KeyRecord, String> {
    let (committee, generation, share) = match serde_json::from_slice::<StoredKeyIn>(bytes) {
        Ok(k) if k.version == STORED_KEY_VERSION => (k.committee, k.generation, k.share),
        Ok(k) => {
            return Err(format!(
                "key record format {} is not supported (this build reads 1 and {STORED_KEY_VERSION})",
                k.version
            ));
        }
        Err(v2) => match serde_json::from_slice::<StoredShareIn>(bytes) {
            Ok(share) => (BTreeMap::new(), None, share),
            Err(v1) => {
                return Err(format!(
                    "neither format {STORED_KEY_VERSION} ({v2}) nor format 1 ({v1})"
                ));
            }
        },
    };
    let share = match share {
        StoredShareIn::Secp256k1 { core, .. } => EcdsaCoreShare::from_stored_bytes(&core.0)
            .map(Share::Cggmp24)
            .map_err(|e| e.to_string())?,
        StoredShareIn::Dkls23 { share } => DklsKeyShare::from_stored_bytes(&share.0)
            .map(|s| Share::Dkls23(Box::new(s)))
            .map_err(|e| e.to_string())?,
        StoredShareIn::Ed25519 { share } => EddsaKeyShare::from_stored_bytes(&share.0)
            .map(Share::Ed25519)
            .map_err(|e| e.to_string())?,
    };
    Ok(KeyRecord {
        key_id: key_id.to_owned(),
        table,
        committee,
        generation,
        share,
    })
}
