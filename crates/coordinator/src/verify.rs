//! Checking a signature a node returned against the derived public key before a request is
//! `done`: [`Verified`] can only be made by [`verify_signature`].

use mpc_transport::task::Algorithm;

/// What a signature must verify against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyInput {
    /// Scheme.
    pub algorithm: Algorithm,
    /// The derived public key: 33-byte compressed secp256k1 or 32-byte ed25519.
    pub public_key: Vec<u8>,
    /// What is signed: the 32-byte digest (ECDSA, BIP340, Taproot) or the EdDSA message.
    pub signed: Vec<u8>,
    /// ECDSA `v` offset: 27 for `sign_message` (sign_type 2), 0 otherwise.
    pub v_offset: u8,
    /// Taproot script root.
    pub tap_script_root: Option<[u8; 32]>,
}

/// A signature that verified; the only way to mark a request `done` with a plain signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    signature: Vec<u8>,
}

impl Verified {
    /// The signature bytes, in the API's form.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid aggregate signature: {0}")]
pub struct InvalidSignature(pub String);

fn bad(msg: impl Into<String>) -> InvalidSignature {
    InvalidSignature(msg.into())
}

fn digest32(b: &[u8]) -> Result<[u8; 32], InvalidSignature> {
    b.try_into().map_err(|_| bad("signed data is not 32 bytes"))
}

/// Verifies `signature` (ECDSA: 65 bytes r‖s‖v with low s; BIP340/Taproot/EdDSA: 64 bytes).
pub fn verify_signature(
    input: &VerifyInput,
    signature: &[u8],
) -> Result<Verified, InvalidSignature> {
    match input.algorithm {
        Algorithm::Ecdsa => {
            use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
            if signature.len() != 65 {
                return Err(bad(format!(
                    "ECDSA signature of {} bytes, expected 65",
                    signature.len()
                )));
            }
            let sig =
                Signature::from_slice(&signature[..64]).map_err(|_| bad("malformed r or s"))?;
            let v = signature[64]
                .checked_sub(input.v_offset)
                .ok_or_else(|| bad("bad v"))?;
            let recid = RecoveryId::from_byte(v).ok_or_else(|| bad("bad v"))?;
            let expected = VerifyingKey::from_sec1_bytes(&input.public_key)
                .map_err(|_| bad("bad public key"))?;
            let digest = digest32(&input.signed)?;
            let recovered = VerifyingKey::recover_from_prehash(&digest, &sig, recid)
                .map_err(|_| bad("does not verify"))?;
            if recovered != expected {
                return Err(bad("recovers to another key"));
            }
        }
        Algorithm::Bip340 | Algorithm::Taproot => {
            use k256::schnorr::{Signature, VerifyingKey};
            let key: [u8; 32] = if input.algorithm == Algorithm::Taproot {
                mpc_chains::address::taproot_output_key(&input.public_key, input.tap_script_root)
                    .map_err(|e| bad(e.to_string()))?
            } else {
                input
                    .public_key
                    .get(1..33)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| bad("bad public key"))?
            };
            let vk = VerifyingKey::from_bytes(&key).map_err(|_| bad("bad public key"))?;
            let sig =
                Signature::try_from(signature).map_err(|_| bad("malformed Schnorr signature"))?;
            vk.verify_raw(&digest32(&input.signed)?, &sig)
                .map_err(|_| bad("does not verify"))?;
        }
        Algorithm::Eddsa => {
            let key: [u8; 32] = input
                .public_key
                .as_slice()
                .try_into()
                .map_err(|_| bad("bad public key"))?;
            let vk =
                ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| bad("bad public key"))?;
            let sig: [u8; 64] = signature.try_into().map_err(|_| {
                bad(format!(
                    "EdDSA signature of {} bytes, expected 64",
                    signature.len()
                ))
            })?;
            vk.verify_strict(&input.signed, &ed25519_dalek::Signature::from_bytes(&sig))
                .map_err(|_| bad("does not verify"))?;
        }
    }
    Ok(Verified {
        signature: signature.to_vec(),
    })
}
