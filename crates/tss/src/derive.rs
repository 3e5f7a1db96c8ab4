//! HD derivation from public data only (root public key and chain code), for the coordinator,
//! which holds no share: the same derivations as [`crate::ecdsa::EcdsaCoreShare::derive_public_key`]
//! (BIP32 CKDpub through `hd_wallet::Slip10`) and
//! [`crate::frost::EddsaKeyShare::derive_public_key`] (`hd_wallet::Edwards`).

use generic_ec::curves::{Ed25519, Secp256k1};
use generic_ec::{Curve, Point};
use hd_wallet::{ExtendedPublicKey, HdWallet, NonHardenedIndex};

use crate::error::InputError;
use crate::path::DerivationPath;

fn child<E: Curve, Hd: HdWallet<E>>(
    root: &[u8],
    chain_code: &[u8; 32],
    path: &DerivationPath,
) -> Result<Point<E>, InputError> {
    let public_key = Point::<E>::from_bytes(root)
        .map_err(|_| InputError::BadPath("root public key is not a valid point".into()))?;
    let indices = path
        .indices()
        .iter()
        .map(|i| {
            NonHardenedIndex::try_from(*i)
                .map_err(|_| InputError::BadPath(format!("index {i} is hardened")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let parent = ExtendedPublicKey {
        public_key,
        chain_code: *chain_code,
    };
    Ok(Hd::derive_child_public_key_with_path(&parent, indices).public_key)
}

/// The secp256k1 child public key at `path` (BIP32 CKDpub), 33-byte compressed, from the
/// 33-byte compressed root public key and the chain code.
pub fn derive_secp256k1_public(
    root33: &[u8; 33],
    chain_code: &[u8; 32],
    path: &DerivationPath,
) -> Result<[u8; 33], InputError> {
    let point = child::<Secp256k1, hd_wallet::Slip10>(root33, chain_code, path)?;
    let mut out = [0u8; 33];
    out.copy_from_slice(&point.to_bytes(true));
    Ok(out)
}

/// The ed25519 child public key at `path` (`hd_wallet::Edwards`, non-hardened), from the
/// 32-byte root public key and the chain code.
pub fn derive_ed25519_public(
    root32: &[u8; 32],
    chain_code: &[u8; 32],
    path: &DerivationPath,
) -> Result<[u8; 32], InputError> {
    let point = child::<Ed25519, givre::hd_wallet::Edwards>(root32, chain_code, path)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&point.to_bytes(true));
    Ok(out)
}

/// The BIP32 extended public key (mainnet `xpub…`, depth 0) of a secp256k1 root key.
pub fn xpub_secp256k1(root33: &[u8; 33], chain_code: &[u8; 32]) -> Result<String, InputError> {
    use bip32::{ChildNumber, ExtendedKeyAttrs, ExtendedPublicKey as Xpub, Prefix};
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(root33)
        .map_err(|_| InputError::BadPath("root public key is not a valid point".into()))?;
    let attrs = ExtendedKeyAttrs {
        depth: 0,
        parent_fingerprint: [0; 4],
        child_number: ChildNumber(0),
        chain_code: *chain_code,
    };
    Ok(Xpub::new(vk, attrs).to_string(Prefix::XPUB))
}
