//! Independent checks of what the platform returns: signatures with k256 (ECDSA with public-key
//! recovery, BIP340 Schnorr, Taproot against the BIP341-tweaked output key) and ed25519-dalek
//! (`verify_strict`), secp256k1 child keys with the `bip32` crate's CKDpub and ed25519 child keys
//! with `hd_wallet::Edwards`.

use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, VerifyingKey as EcdsaKey};

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Wrong length or encoding of an input.
    #[error("{what}: {reason}")]
    Malformed {
        /// Which input.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The signature does not verify.
    #[error("{0}")]
    Invalid(String),
}

fn malformed(what: &'static str, reason: impl ToString) -> VerifyError {
    VerifyError::Malformed {
        what,
        reason: reason.to_string(),
    }
}

fn arr32(what: &'static str, b: &[u8]) -> Result<[u8; 32], VerifyError> {
    b.try_into()
        .map_err(|_| malformed(what, format!("{} bytes, expected 32", b.len())))
}

/// What an ECDSA check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcdsaCheck {
    /// The signature had a high S (accepted after normalizing, noted).
    pub high_s: bool,
    /// The recovery byte was present and recovered the expected key.
    pub recovered: bool,
}

/// ECDSA over a 32-byte prehash: `sig` is `r ‖ s` (64 bytes) or `r ‖ s ‖ v` (65 bytes, `v` the
/// recovery id 0/1 or 27/28). With `v`, the public key recovered from it must be `pubkey`.
pub fn ecdsa(pubkey: &[u8], digest: &[u8], sig: &[u8]) -> Result<EcdsaCheck, VerifyError> {
    let key = EcdsaKey::from_sec1_bytes(pubkey).map_err(|e| malformed("public key", e))?;
    let digest = arr32("digest", digest)?;
    if sig.len() != 64 && sig.len() != 65 {
        return Err(malformed(
            "signature",
            format!("{} bytes, expected 64 or 65", sig.len()),
        ));
    }
    let parsed = EcdsaSignature::from_slice(&sig[..64]).map_err(|e| malformed("signature", e))?;
    let (normal, high_s) = match parsed.normalize_s() {
        Some(n) => (n, true),
        None => (parsed, false),
    };
    key.verify_prehash(&digest, &normal)
        .map_err(|_| VerifyError::Invalid("ECDSA signature does not verify".into()))?;
    let mut recovered = false;
    if let Some(&v) = sig.get(64) {
        let id = match v {
            0 | 1 => v,
            27 | 28 => v - 27,
            other => return Err(malformed("signature", format!("recovery byte {other}"))),
        };
        // Normalizing S negates the nonce point's role: the parity flips.
        let id = if high_s { id ^ 1 } else { id };
        let rid = RecoveryId::from_byte(id).ok_or_else(|| malformed("signature", "recovery id"))?;
        let rec = EcdsaKey::recover_from_prehash(&digest, &normal, rid)
            .map_err(|_| VerifyError::Invalid("public-key recovery failed".into()))?;
        if rec != key {
            return Err(VerifyError::Invalid(
                "the recovery byte recovers another public key".into(),
            ));
        }
        recovered = true;
    }
    Ok(EcdsaCheck { high_s, recovered })
}

/// BIP340 Schnorr over `msg` (32 bytes) under `pubkey` (33-byte compressed: its x coordinate;
/// or 32-byte x-only), untweaked.
pub fn bip340(pubkey: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    let x = match pubkey.len() {
        33 => &pubkey[1..],
        32 => pubkey,
        n => return Err(malformed("public key", format!("{n} bytes"))),
    };
    let key = k256::schnorr::VerifyingKey::from_bytes(x).map_err(|e| malformed("public key", e))?;
    let sig = k256::schnorr::Signature::try_from(sig).map_err(|e| malformed("signature", e))?;
    key.verify_raw(msg, &sig)
        .map_err(|_| VerifyError::Invalid("BIP340 signature does not verify".into()))
}

/// Taproot key path: BIP340 under the output key `taproot_output_key(pubkey, script_root)`.
/// Returns the x-only output key.
pub fn taproot(
    internal_key: &[u8],
    script_root: Option<[u8; 32]>,
    msg: &[u8],
    sig: &[u8],
) -> Result<[u8; 32], VerifyError> {
    let output = mpc_chains::address::taproot_output_key(internal_key, script_root)
        .map_err(|e| malformed("internal key", e))?;
    bip340(&output, msg, sig)?;
    Ok(output)
}

/// Ed25519 (RFC 8032, `verify_strict`).
pub fn ed25519(pubkey: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    let pk: [u8; 32] = arr32("public key", pubkey)?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(&pk).map_err(|e| malformed("public key", e))?;
    let sig: [u8; 64] = sig
        .try_into()
        .map_err(|_| malformed("signature", format!("{} bytes, expected 64", sig.len())))?;
    key.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|_| VerifyError::Invalid("Ed25519 signature does not verify".into()))
}

/// Parses a non-hardened path `m/1/1/60/0` into indices.
pub fn parse_path(path: &str) -> Result<Vec<u32>, VerifyError> {
    let rest = path
        .strip_prefix('m')
        .ok_or_else(|| malformed("path", "does not start with m"))?;
    rest.split('/')
        .skip(1)
        .map(|c| {
            c.parse::<u32>()
                .ok()
                .filter(|i| *i < 0x8000_0000)
                .ok_or_else(|| malformed("path", format!("{c:?} is not a non-hardened index")))
        })
        .collect()
}

/// BIP32 CKDpub of a secp256k1 root (33-byte compressed key, 32-byte chain code) along a
/// non-hardened `path`; returns the child's compressed key.
pub fn derive_secp256k1(
    root: &[u8],
    chain_code: &[u8],
    path: &str,
) -> Result<[u8; 33], VerifyError> {
    use bip32::{ChildNumber, ExtendedKeyAttrs, ExtendedPublicKey, PublicKey as _};
    let key = EcdsaKey::from_sec1_bytes(root).map_err(|e| malformed("root key", e))?;
    let attrs = ExtendedKeyAttrs {
        depth: 0,
        parent_fingerprint: [0; 4],
        child_number: ChildNumber(0),
        chain_code: arr32("chain code", chain_code)?,
    };
    let mut xpub: ExtendedPublicKey<EcdsaKey> = ExtendedPublicKey::new(key, attrs);
    for i in parse_path(path)? {
        let n = ChildNumber::new(i, false).map_err(|e| malformed("path", e))?;
        xpub = xpub
            .derive_child(n)
            .map_err(|e| VerifyError::Invalid(format!("CKDpub failed: {e}")))?;
    }
    Ok(xpub.public_key().to_bytes())
}

/// Ed25519 child key along a non-hardened `path` with `hd_wallet::Edwards` (the scheme the
/// nodes' library offers; SPEC §2) from the root key and chain code.
pub fn derive_ed25519(root: &[u8], chain_code: &[u8], path: &str) -> Result<[u8; 32], VerifyError> {
    use generic_ec::{Point, curves::Ed25519};
    use hd_wallet::HdWallet as _;
    let public_key = Point::<Ed25519>::from_bytes(root).map_err(|e| malformed("root key", e))?;
    let mut x = hd_wallet::ExtendedPublicKey {
        public_key,
        chain_code: arr32("chain code", chain_code)?,
    };
    for i in parse_path(path)? {
        let i = hd_wallet::NonHardenedIndex::try_from(i).map_err(|e| malformed("path", e))?;
        x = hd_wallet::Edwards::derive_child_public_key(&x, i);
    }
    arr32("child key", &x.public_key.to_bytes(true))
}

/// The EIP-55 EVM address of a secp256k1 key.
pub fn evm_address(pubkey: &[u8]) -> Result<String, VerifyError> {
    mpc_chains::address::evm_address(pubkey).map_err(|e| malformed("public key", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    #[test]
    fn ecdsa_with_recovery_and_high_s() {
        let sk = SigningKey::from_slice(&[0x11; 32]).unwrap();
        let pk = sk.verifying_key().to_encoded_point(true);
        let digest = [0x42u8; 32];
        let (sig, rid) = sk.sign_prehash_recoverable(&digest).unwrap();
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(rid.to_byte() + 27);
        let c = ecdsa(pk.as_bytes(), &digest, &bytes).unwrap();
        assert!(c.recovered && !c.high_s);
        // The same signature with s -> n - s and the other parity still verifies.
        let (r, s) = sig.split_scalars();
        let high = EcdsaSignature::from_scalars(r, -*s).unwrap();
        let mut hb = high.to_bytes().to_vec();
        hb.push(rid.to_byte() ^ 1);
        let c = ecdsa(pk.as_bytes(), &digest, &hb).unwrap();
        assert!(c.recovered && c.high_s);
        // Wrong recovery byte, wrong digest.
        bytes[64] ^= 1;
        assert!(ecdsa(pk.as_bytes(), &digest, &bytes).is_err());
        assert!(ecdsa(pk.as_bytes(), &[0u8; 32], &sig.to_bytes()).is_err());
    }

    #[test]
    fn bip340_official_vector_0() {
        // BIP340 test vector 0.
        let pk = hex::decode("F9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9")
            .unwrap();
        let msg = [0u8; 32];
        let sig = hex::decode("E907831F80848D1069A5371B402410364BDF1C5F8307B0084C55F1CE2DCA821525F66A4A85EA8B71E482A74F382D2CE5EBEEE8FDB2172F477DF4900D310536C0").unwrap();
        bip340(&pk, &msg, &sig).unwrap();
        let mut bad = sig.clone();
        bad[63] ^= 1;
        assert!(bip340(&pk, &msg, &bad).is_err());
    }

    #[test]
    fn taproot_against_tweaked_key() {
        use k256::elliptic_curve::PrimeField as _;
        let internal_sk = k256::Scalar::from_repr([0x07u8; 32].into()).unwrap();
        let internal = (k256::ProjectivePoint::GENERATOR * internal_sk).to_affine();
        let internal33 = k256::EncodedPoint::from(internal).compress();
        for root in [None, Some([0x5au8; 32])] {
            let out = mpc_chains::address::taproot_output_key(internal33.as_bytes(), root).unwrap();
            // Tweaked secret: even-y internal key plus the tap tweak.
            let even = if internal33.as_bytes()[0] == 0x03 {
                -internal_sk
            } else {
                internal_sk
            };
            let mut preimage = internal33.as_bytes()[1..].to_vec();
            if let Some(r) = root {
                preimage.extend_from_slice(&r);
            }
            let t = mpc_chains::hash::tagged_hash("TapTweak", &[&preimage]);
            let tweaked = even + k256::Scalar::from_repr(t.into()).unwrap();
            let sk = k256::schnorr::SigningKey::from_bytes(&tweaked.to_bytes()).unwrap();
            assert_eq!(sk.verifying_key().to_bytes()[..], out[..]);
            let msg = [0x33u8; 32];
            let sig = sk.sign_raw(&msg, &[0u8; 32]).unwrap();
            assert_eq!(
                taproot(internal33.as_bytes(), root, &msg, &sig.to_bytes()).unwrap(),
                out
            );
            // Not valid under the untweaked key.
            assert!(bip340(internal33.as_bytes(), &msg, &sig.to_bytes()).is_err());
        }
    }

    #[test]
    fn ed25519_rfc8032_test_1() {
        let pk = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .unwrap();
        let sig = hex::decode("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b").unwrap();
        ed25519(&pk, b"", &sig).unwrap();
        assert!(ed25519(&pk, b"x", &sig).is_err());
    }

    #[test]
    fn ed25519_derivation_matches_the_secret_side() {
        use generic_ec::{Point, Scalar, SecretScalar, curves::Ed25519};
        use hd_wallet::HdWallet as _;
        let mut sk = Scalar::<Ed25519>::from_be_bytes_mod_order([0x21u8; 32]);
        let kp = hd_wallet::ExtendedKeyPair::from(hd_wallet::ExtendedSecretKey {
            secret_key: SecretScalar::new(&mut sk),
            chain_code: [0x44; 32],
        });
        let root = kp.public_key().public_key.to_bytes(true).to_vec();
        let path = [1u32, 1, 501, 0];
        let child = hd_wallet::Edwards::derive_child_key_pair_with_path(
            &kp,
            path.iter().map(|i| {
                hd_wallet::ChildIndex::NonHardened(
                    hd_wallet::NonHardenedIndex::try_from(*i).unwrap(),
                )
            }),
        );
        let want = Point::<Ed25519>::generator() * &child.secret_key().secret_key;
        let got = derive_ed25519(&root, &[0x44; 32], "m/1/1/501/0").unwrap();
        assert_eq!(got.to_vec(), want.to_bytes(true).to_vec());
        assert_ne!(got.to_vec(), root);
        assert_eq!(
            derive_ed25519(&root, &[0x44; 32], "m").unwrap().to_vec(),
            root
        );
    }

    #[test]
    fn bip32_test_vector_1_public_derivation() {
        // BIP32 test vector 1, chain m/0H/1: xpub of m/0H, then CKDpub to m/0H/1.
        let root =
            hex::decode("035a784662a4a20a65bf6aab9ae98a6c068a81c52e4b032c0fb5400c706cfccc56")
                .unwrap();
        let cc = hex::decode("47fdacbd0f1097043b78c63c20c34ef4ed9a111d980047ad16282c7ae6236141")
            .unwrap();
        let child = derive_secp256k1(&root, &cc, "m/1").unwrap();
        assert_eq!(
            hex::encode(child),
            "03501e454bf00751f24b1b489aa925215d66af2234e3891c3b21a52bedb3cd711c"
        );
        assert_eq!(derive_secp256k1(&root, &cc, "m").unwrap().to_vec(), root);
        assert!(parse_path("m/2147483648").is_err());
        assert!(parse_path("1/2").is_err());
        assert_eq!(parse_path("m/1/1/60/0").unwrap(), vec![1, 1, 60, 0]);
    }
}
