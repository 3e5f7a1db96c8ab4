//! Child private keys, derived exactly as the nodes derive the keys they sign with:
//! non-hardened BIP32 (`hd_wallet::Slip10`, CKDpriv) on secp256k1 and `hd_wallet::Edwards`
//! on ed25519, from the root secret and the key's chain code. Every child public key is
//! checked against `mpc_tss::derive` (the coordinator's public-only derivation, which gave
//! the API's addresses) before it is returned.

use generic_ec::curves::{Ed25519, Secp256k1};
use generic_ec::{Curve, Point, SecretScalar};
use hd_wallet::{ExtendedKeyPair, ExtendedSecretKey, HdWallet, NonHardenedIndex};
use mpc_tss::DerivationPath;
use zeroize::Zeroizing;

use crate::RecoverError;
use crate::rebuild::{KeyCurve, RecoveredKey, RootSecret};

/// One child private key. `Debug` shows public data only.
pub struct ChildKey {
    /// The path (`m/1/1/60/0`).
    pub path: String,
    /// The curve.
    pub curve: KeyCurve,
    /// The child public key (33-byte compressed secp256k1, or 32-byte ed25519).
    pub public_key: Vec<u8>,
    /// 32 bytes: big-endian secp256k1 private key, or the ed25519 secret scalar
    /// (little-endian).
    secret: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ChildKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildKey")
            .field("path", &self.path)
            .field("curve", &self.curve)
            .field("public_key", &hex::encode(&self.public_key))
            .finish_non_exhaustive()
    }
}

impl ChildKey {
    /// The private key bytes (see the field's doc), wiped when the returned value drops.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.secret.clone()
    }
}

/// Parses a path as the nodes do (`m/…`, non-hardened steps only).
pub fn parse_path(path: &str) -> Result<DerivationPath, RecoverError> {
    path.parse()
        .map_err(|e: mpc_tss::InputError| RecoverError::Derive {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

fn child_pair<E: Curve, Hd: HdWallet<E>>(
    secret: &SecretScalar<E>,
    chain_code: &[u8; 32],
    path: &DerivationPath,
    text: &str,
) -> Result<(SecretScalar<E>, Point<E>), RecoverError> {
    let indices = path
        .indices()
        .iter()
        .map(|i| {
            NonHardenedIndex::try_from(*i)
                .map(|_| *i)
                .map_err(|_| RecoverError::Derive {
                    path: text.to_owned(),
                    reason: format!("index {i} is hardened"),
                })
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let root = ExtendedKeyPair::from(ExtendedSecretKey {
        secret_key: secret.clone(),
        chain_code: *chain_code,
    });
    let child = Hd::derive_child_key_pair_with_path(&root, indices);
    Ok((
        child.secret_key().secret_key.clone(),
        child.public_key().public_key,
    ))
}

/// The child private key of `key` at `path`, checked against the nodes' public derivation.
pub fn derive_child(key: &RecoveredKey, path: &str) -> Result<ChildKey, RecoverError> {
    let p = parse_path(path)?;
    let mismatch = || RecoverError::Derive {
        path: path.to_owned(),
        reason: format!(
            "the derived child key of key {} does not match the nodes' public derivation; refusing it",
            key.key_id
        ),
    };
    let tss_err = |e: mpc_tss::InputError| RecoverError::Derive {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut secret = Zeroizing::new([0u8; 32]);
    let public_key = match &key.secret {
        RootSecret::Secp256k1(s) => {
            let (cs, cp) =
                child_pair::<Secp256k1, hd_wallet::Slip10>(s, &key.chain_code, &p, path)?;
            let root: [u8; 33] = key
                .public_key
                .as_slice()
                .try_into()
                .map_err(|_| mismatch())?;
            let expected = mpc_tss::derive::derive_secp256k1_public(&root, &key.chain_code, &p)
                .map_err(tss_err)?;
            let got = cp.to_bytes(true);
            if got.as_bytes() != expected.as_slice()
                || (Point::<Secp256k1>::generator() * &cs) != cp
            {
                return Err(mismatch());
            }
            secret.copy_from_slice(&cs.as_ref().to_be_bytes());
            expected.to_vec()
        }
        RootSecret::Ed25519(s) => {
            let (cs, cp) = child_pair::<Ed25519, hd_wallet::Edwards>(s, &key.chain_code, &p, path)?;
            let root: [u8; 32] = key
                .public_key
                .as_slice()
                .try_into()
                .map_err(|_| mismatch())?;
            let expected = mpc_tss::derive::derive_ed25519_public(&root, &key.chain_code, &p)
                .map_err(tss_err)?;
            let got = cp.to_bytes(true);
            if got.as_bytes() != expected.as_slice() || (Point::<Ed25519>::generator() * &cs) != cp
            {
                return Err(mismatch());
            }
            secret.copy_from_slice(&cs.as_ref().to_le_bytes());
            expected.to_vec()
        }
    };
    Ok(ChildKey {
        path: path.to_owned(),
        curve: key.curve,
        public_key,
        secret,
    })
}
