//! What the network runtime needs from the sealed key store, and the records it keeps there.
//!
//! * [`tables::NODE_IDENTITY`] / [`TRANSPORT_RECORD`]: the X25519 transport secret (32 bytes),
//!   made at the first unseal;
//! * [`tables::KEY_SHARES`] / `key_id`: a [`StoredKey`] (JSON), written once per key: the
//!   share and the committee (party → node id) it was generated with (the store's `put` there
//!   is an atomic insert-if-absent, so two concurrent key generations for one key id can never
//!   overwrite a share). Format 2 is
//!   `{"version":2,"committee":{"a":"sino…",…},"share":{"curve":…}}`; format 1 (before the
//!   committee was pinned) is the bare share `{"curve":…}` and is still read;
//! * [`tables::PRIME_POOL`] / [`PRIME_POOL_RECORD`]: the pool's prime sets (JSON list);
//! * [`tables::NODE_IDENTITY`] / `platform-task-key`: the platform's task-signing key learned at
//!   the first task (`crate::platform_key`);
//! * [`SEEN_TASKS`] / `execution_unique`: the deadline of every task taken, until it passes
//!   (`crate::replay`);
//! * [`KEY_BANS`] / `key_id\nparty`: parties excluded from a key for good (`tasks::intake`);
//! * [`KEY_SHARES_NEXT`] / `key_id`: a refreshed share ([`StoredKey`] with its `generation`)
//!   kept beside the current one until the coordinator names its generation in a task, which
//!   then replaces the current share with it in one atomic batch (`tasks::generation`).
//!   A key record's optional `"generation"` (absent: the key generation's shares) names the
//!   share generation it holds.
//!
//! All calls block (the store does file I/O and AEAD); call them from a blocking thread.

use std::collections::BTreeMap;

use mpc_keystore::{Batch, Unsealed, tables};
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

/// Table of the tasks taken, by `execution_unique` (value: deadline, u64 big-endian ms).
pub const SEEN_TASKS: &str = "seen_tasks";

/// Table of permanent exclusions: a party that cheated in a way the protocol library says
/// leaks long-lived secret state (DKLs23's OT checks) never takes part in a session with that
/// key again on this node, across restarts. Record key [`ban_record`], value: the library's
/// account (UTF-8).
pub const KEY_BANS: &str = "key_bans";

/// Table of refreshed shares waiting for the coordinator to switch the key's generation, by key
/// id (value: a [`StoredKey`] with its generation). At most one per key; a later refresh of the
/// same key replaces it.
pub const KEY_SHARES_NEXT: &str = "key_shares_next";

/// Record key of a ban of `party` from `key_id` in [`KEY_BANS`].
pub fn ban_record(key_id: &str, party: &str) -> Vec<u8> {
    format!("{key_id}\n{party}").into_bytes()
}

/// Blocking access to the secret records of an unsealed store.
pub trait SecretStore: Send + Sync + 'static {
    /// Reads a record.
    fn get(&self, table: &str, key: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, StoreAccessError>;
    /// Writes a record (one atomic write). In [`tables::KEY_SHARES`] only if the key is absent
    /// (atomic insert-if-absent; an existing share is never overwritten).
    fn put(&self, table: &str, key: &[u8], value: &[u8]) -> Result<(), StoreAccessError>;
    /// Removes a record; `true` if it existed.
    fn delete(&self, table: &str, key: &[u8]) -> Result<bool, StoreAccessError>;
    /// The record keys of a table.
    fn list_keys(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreAccessError>;
    /// Applies every write and delete of `batch` in one atomic write (all or none). The only
    /// way to replace a record of [`tables::KEY_SHARES`] (a refreshed share's promotion).
    fn apply(&self, batch: &Batch) -> Result<(), StoreAccessError>;
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

    fn delete(&self, table: &str, key: &[u8]) -> Result<bool, StoreAccessError> {
        Ok(Unsealed::delete(self, table, key)?)
    }

    fn list_keys(&self, table: &str) -> Result<Vec<Vec<u8>>, StoreAccessError> {
        Ok(Unsealed::list_keys(self, table)?)
    }

    fn apply(&self, batch: &Batch) -> Result<(), StoreAccessError> {
        Ok(Unsealed::apply(self, batch)?)
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

/// Hex as `hex::serde` writes it, read with `hex::decode_to_slice` into a buffer that is
/// zeroized if the text is not hex: key records are read on every signature, and the
/// iterator-based decode of `hex::serde` was a visible part of a node's CPU per signature.
mod share_hex {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        hex::serde::serialize(v, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct HexVisitor;
        impl Visitor<'_> for HexVisitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a hex string")
            }
            fn visit_str<E: Error>(self, s: &str) -> Result<Vec<u8>, E> {
                if !s.len().is_multiple_of(2) {
                    return Err(E::custom("odd number of hex digits"));
                }
                let mut out = Zeroizing::new(vec![0u8; s.len() / 2]);
                hex::decode_to_slice(s, &mut out).map_err(E::custom)?;
                Ok(std::mem::take(&mut *out))
            }
        }
        d.deserialize_str(HexVisitor)
    }
}

/// A key share as stored under its key id.
#[derive(Serialize, Deserialize)]
#[serde(tag = "curve", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoredShare {
    /// CGGMP secp256k1 core share and aux info (`mpc_tss` stored forms, hex).
    Secp256k1 {
        /// `EcdsaCoreShare::to_stored_bytes`.
        #[serde(with = "share_hex")]
        core: Vec<u8>,
        /// `EcdsaAuxInfo::to_stored_bytes`.
        #[serde(with = "share_hex")]
        aux: Vec<u8>,
    },
    /// FROST ed25519 share.
    Ed25519 {
        /// `EddsaKeyShare::to_stored_bytes`.
        #[serde(with = "share_hex")]
        share: Vec<u8>,
    },
    /// DKLs23 secp256k1 share (ECDSA; BIP340 and Taproot through its Schnorr form). The tag
    /// names curve and protocol: `"curve":"secp256k1_dkls23"` (a bare `secp256k1` is CGGMP24).
    #[serde(rename = "secp256k1_dkls23")]
    Dkls23 {
        /// `DklsKeyShare::to_stored_bytes`.
        #[serde(with = "share_hex")]
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
            StoredShare::Ed25519 { share } | StoredShare::Dkls23 { share } => share.zeroize(),
        }
    }
}

impl StoredShare {
    /// Format-1 JSON bytes (zeroized on drop). Superseded by [`StoredKey::to_bytes`].
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, StoreAccessError> {
        serde_json::to_vec(self)
            .map(Zeroizing::new)
            .map_err(|e| StoreAccessError::Corrupt {
                table: tables::KEY_SHARES,
                key: String::new(),
                reason: e.to_string(),
            })
    }

    /// The share of a record of either format. Superseded by [`StoredKey::from_bytes`].
    pub fn from_bytes(key_id: &str, bytes: &[u8]) -> Result<Self, StoreAccessError> {
        Ok(StoredKey::from_bytes(key_id, bytes)?.share)
    }

    /// The curve, for messages.
    pub fn curve_name(&self) -> &'static str {
        match self {
            StoredShare::Secp256k1 { .. } | StoredShare::Dkls23 { .. } => "secp256k1",
            StoredShare::Ed25519 { .. } => "ed25519",
        }
    }

    /// The threshold-ECDSA protocol of a secp256k1 share; `None` for ed25519.
    pub fn ecdsa_protocol(&self) -> Option<mpc_tss::EcdsaProtocol> {
        match self {
            StoredShare::Secp256k1 { .. } => Some(mpc_tss::EcdsaProtocol::Cggmp24),
            StoredShare::Dkls23 { .. } => Some(mpc_tss::EcdsaProtocol::Dkls23),
            StoredShare::Ed25519 { .. } => None,
        }
    }
}

/// Format of [`StoredKey`] records this build writes.
pub const STORED_KEY_VERSION: u8 = 2;

/// The committee a key was generated with, as stored with its share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committee {
    /// Party → node id of every member of the key generation.
    Pinned(BTreeMap<String, String>),
    /// A share stored before committees were pinned (format 1): any committee is taken as
    /// given, as that build did.
    Unpinned,
}

impl Committee {
    /// Checks that every member of a task, `(party, node id)`, is the node that held that party
    /// at key generation.
    pub fn admits<'a>(
        &self,
        key_id: &str,
        members: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), NotInCommittee> {
        let Committee::Pinned(pinned) = self else {
            return Ok(());
        };
        for (party, node_id) in members {
            match pinned.get(party) {
                Some(n) if n == node_id => {}
                Some(n) => {
                    return Err(NotInCommittee::OtherNode {
                        key_id: key_id.to_owned(),
                        party: party.to_owned(),
                        named: short(node_id),
                        pinned: short(n),
                    });
                }
                None => {
                    return Err(NotInCommittee::UnknownParty {
                        key_id: key_id.to_owned(),
                        party: party.to_owned(),
                        committee: pinned.keys().cloned().collect::<Vec<_>>().join(","),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Why a task's member is not the committee a key was generated with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotInCommittee {
    /// Another node under a pinned party.
    #[error(
        "the task names node {named} as party {party} of key {key_id}, but the key's committee on this node has node {pinned} as party {party} (pinned at key generation, changed only by a repair)"
    )]
    OtherNode {
        /// The key.
        key_id: String,
        /// The party.
        party: String,
        /// The node the task names (shortened).
        named: String,
        /// The node pinned at key generation (shortened).
        pinned: String,
    },
    /// A party the key does not have.
    #[error("party {party} is not in the committee key {key_id} was generated with ({committee})")]
    UnknownParty {
        /// The key.
        key_id: String,
        /// The party.
        party: String,
        /// The pinned parties, comma-separated.
        committee: String,
    },
}

/// A node id shortened for messages (they are 248 characters).
fn short(node_id: &str) -> String {
    let tail: String = node_id
        .chars()
        .rev()
        .take(12)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// A key record of [`tables::KEY_SHARES`] (or [`KEY_SHARES_NEXT`]): the share, its committee
/// and its generation.
pub struct StoredKey {
    /// The committee pinned at key generation (a completed repair names the new node for the
    /// party it rebuilt).
    pub committee: Committee,
    /// The share.
    pub share: StoredShare,
    /// The share generation after a refresh (`DklsKeyShare::generation`); `None` for the key
    /// generation's share. Always `None` in format 1.
    pub generation: Option<String>,
}

#[derive(Serialize)]
struct StoredKeyOut<'a> {
    version: u8,
    committee: &'a BTreeMap<String, String>,
    share: &'a StoredShare,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKeyIn {
    version: u8,
    committee: BTreeMap<String, String>,
    share: StoredShare,
    #[serde(default)]
    generation: Option<String>,
}

impl StoredKey {
    /// JSON bytes (zeroized on drop): format 2, or format 1 for an [`Committee::Unpinned`]
    /// share (kept as it was read).
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, StoreAccessError> {
        let r = match &self.committee {
            Committee::Pinned(committee) => serde_json::to_vec(&StoredKeyOut {
                version: STORED_KEY_VERSION,
                committee,
                share: &self.share,
                generation: self.generation.as_deref(),
            }),
            Committee::Unpinned => serde_json::to_vec(&self.share),
        };
        r.map(Zeroizing::new)
            .map_err(|e| StoreAccessError::Corrupt {
                table: tables::KEY_SHARES,
                key: String::new(),
                reason: e.to_string(),
            })
    }

    /// The committee and generation of a record, without decoding its share (what a task's
    /// admission checks). The same formats and errors as [`StoredKey::from_bytes`].
    pub fn meta_from_bytes(
        key_id: &str,
        bytes: &[u8],
    ) -> Result<(Committee, Option<String>), StoreAccessError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct MetaIn {
            version: u8,
            committee: BTreeMap<String, String>,
            #[allow(dead_code)]
            share: serde::de::IgnoredAny,
            #[serde(default)]
            generation: Option<String>,
        }
        match serde_json::from_slice::<MetaIn>(bytes) {
            Ok(k) if k.version == STORED_KEY_VERSION => {
                Ok((Committee::Pinned(k.committee), k.generation))
            }
            // Format 1, another version, or damage: the full parse decides and names it.
            _ => Self::from_bytes(key_id, bytes).map(|k| (k.committee, k.generation)),
        }
    }

    /// Parses a record read from [`tables::KEY_SHARES`] (format 2, or format 1).
    pub fn from_bytes(key_id: &str, bytes: &[u8]) -> Result<Self, StoreAccessError> {
        let corrupt = |reason: String| StoreAccessError::Corrupt {
            table: tables::KEY_SHARES,
            key: key_id.to_owned(),
            reason,
        };
        match serde_json::from_slice::<StoredKeyIn>(bytes) {
            Ok(k) if k.version == STORED_KEY_VERSION => Ok(StoredKey {
                committee: Committee::Pinned(k.committee),
                share: k.share,
                generation: k.generation,
            }),
            Ok(k) => Err(corrupt(format!(
                "key record format {} is not supported (this build reads 1 and {STORED_KEY_VERSION})",
                k.version
            ))),
            Err(v2) => match serde_json::from_slice::<StoredShare>(bytes) {
                Ok(share) => Ok(StoredKey {
                    committee: Committee::Unpinned,
                    share,
                    generation: None,
                }),
                Err(v1) => Err(corrupt(format!(
                    "neither format {STORED_KEY_VERSION} ({v2}) nor format 1 ({v1})"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committee() -> BTreeMap<String, String> {
        [("a", "sinoA"), ("b", "sinoB"), ("c", "sinoC")]
            .into_iter()
            .map(|(p, n)| (p.to_owned(), n.to_owned()))
            .collect()
    }

    /// The stored key format, pinned byte for byte; format 1 records stay readable.
    #[test]
    fn stored_key_format_is_pinned() {
        let key = StoredKey {
            committee: Committee::Pinned(committee()),
            share: StoredShare::Ed25519 {
                share: vec![0xab, 0xcd],
            },
            generation: None,
        };
        let bytes = key.to_bytes().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"version":2,"committee":{"a":"sinoA","b":"sinoB","c":"sinoC"},"share":{"curve":"ed25519","share":"abcd"}}"#
        );
        let back = StoredKey::from_bytes("k", &bytes).unwrap();
        assert_eq!(back.committee, Committee::Pinned(committee()));
        assert_eq!(
            StoredKey::meta_from_bytes("k", &bytes).unwrap(),
            (Committee::Pinned(committee()), None)
        );
        assert!(matches!(back.share, StoredShare::Ed25519 { ref share } if share == &[0xab, 0xcd]));

        let v1 = br#"{"curve":"secp256k1","core":"01","aux":"02"}"#;
        let old = StoredKey::from_bytes("k", v1).unwrap();
        assert_eq!(old.committee, Committee::Unpinned);
        assert!(
            matches!(old.share, StoredShare::Secp256k1 { ref core, ref aux } if core == &[1] && aux == &[2])
        );
        assert_eq!(&old.to_bytes().unwrap()[..], &v1[..]);

        let dkls = StoredKey {
            committee: Committee::Pinned(committee()),
            share: StoredShare::Dkls23 { share: vec![0x01] },
            generation: None,
        };
        let bytes = dkls.to_bytes().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"version":2,"committee":{"a":"sinoA","b":"sinoB","c":"sinoC"},"share":{"curve":"secp256k1_dkls23","share":"01"}}"#
        );
        let back = StoredKey::from_bytes("k", &bytes).unwrap();
        assert_eq!(back.generation, None);
        // A refreshed share names its generation.
        let refreshed = StoredKey {
            generation: Some("0f1e".into()),
            ..StoredKey::from_bytes("k", &bytes).unwrap()
        };
        let bytes = refreshed.to_bytes().unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"version":2,"committee":{"a":"sinoA","b":"sinoB","c":"sinoC"},"share":{"curve":"secp256k1_dkls23","share":"01"},"generation":"0f1e"}"#
        );
        assert_eq!(
            StoredKey::from_bytes("k", &bytes)
                .unwrap()
                .generation
                .as_deref(),
            Some("0f1e")
        );
        assert_eq!(
            back.share.ecdsa_protocol(),
            Some(mpc_tss::EcdsaProtocol::Dkls23)
        );
        assert_eq!(
            old.share.ecdsa_protocol(),
            Some(mpc_tss::EcdsaProtocol::Cggmp24)
        );

        assert_eq!(
            StoredKey::meta_from_bytes("k", &bytes)
                .unwrap()
                .1
                .as_deref(),
            Some("0f1e")
        );

        let v3 = br#"{"version":3,"committee":{},"share":{"curve":"ed25519","share":""}}"#;
        let e = StoredKey::from_bytes("k", v3).err().unwrap().to_string();
        assert!(e.contains("format 3 is not supported"), "{e}");
        let e = StoredKey::meta_from_bytes("k", v3)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("format 3 is not supported"), "{e}");
        for bad in [&b"\"0g\""[..], b"\"abc\"", b"12"] {
            let mut r =
                br#"{"version":2,"committee":{},"share":{"curve":"ed25519","share":"#.to_vec();
            r.extend_from_slice(bad);
            r.extend_from_slice(b"}}");
            let e = StoredKey::from_bytes("k", &r).err().unwrap().to_string();
            assert!(
                e.starts_with("record key_shares/k: neither format 2"),
                "{e}"
            );
        }
        let e = StoredKey::from_bytes("k", b"{}").err().unwrap().to_string();
        assert!(
            e.starts_with("record key_shares/k: neither format 2"),
            "{e}"
        );
    }

    #[test]
    fn a_pinned_committee_admits_only_its_nodes() {
        let c = Committee::Pinned(committee());
        c.admits("k", [("a", "sinoA"), ("c", "sinoC")]).unwrap();
        let e = c
            .admits("k", [("a", "sinoA"), ("b", "sinoEvil")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("names node …sinoEvil as party b of key k, but the key's committee on this node has node …sinoB"),
            "{e}"
        );
        let e = c.admits("k", [("d", "sinoD")]).unwrap_err();
        assert!(matches!(e, NotInCommittee::UnknownParty { .. }));
        let e = e.to_string();
        assert!(e.contains("party d is not in the committee"), "{e}");
        Committee::Unpinned
            .admits("k", [("b", "sinoEvil")])
            .unwrap();
    }
}
