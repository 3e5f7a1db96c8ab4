//! Key hierarchy: password secret --Argon2id--> KEK --XChaCha20-Poly1305--> data key --> records.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// XChaCha20 nonce length.
pub(crate) const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Salt length for Argon2id.
pub(crate) const SALT_LEN: usize = 32;

/// Argon2id cost parameters. Stored in the header; opening always uses the stored ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// RFC 9106 §4 second recommended option: 64 MiB, 3 passes, 4 lanes.
    fn default() -> Self {
        Self {
            m_cost_kib: 64 * 1024,
            t_cost: 3,
            p_cost: 4,
        }
    }
}

impl KdfParams {
    /// Largest memory cost accepted from a file (4 GiB), so a forged header cannot exhaust memory.
    pub const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
    /// Largest time cost accepted from a file.
    pub const MAX_T_COST: u32 = 64;
    /// Largest lane count accepted from a file.
    pub const MAX_P_COST: u32 = 64;

    /// Very cheap parameters for tests only (8 KiB, 1 pass, 1 lane). Never use in production.
    pub fn insecure_for_tests() -> Self {
        Self {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.m_cost_kib > Self::MAX_M_COST_KIB {
            return Err(Error::BadKdfParams(format!(
                "memory {} KiB over the 4 GiB cap",
                self.m_cost_kib
            )));
        }
        if self.t_cost == 0 || self.t_cost > Self::MAX_T_COST {
            return Err(Error::BadKdfParams(format!(
                "time cost {} not in 1..=64",
                self.t_cost
            )));
        }
        if self.p_cost == 0 || self.p_cost > Self::MAX_P_COST {
            return Err(Error::BadKdfParams(format!(
                "lanes {} not in 1..=64",
                self.p_cost
            )));
        }
        if self.m_cost_kib < 8 * self.p_cost {
            return Err(Error::BadKdfParams(format!(
                "memory {} KiB below 8 KiB per lane",
                self.m_cost_kib
            )));
        }
        Ok(())
    }
}

/// A 256-bit key, zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct Key32([u8; 32]);

impl std::fmt::Debug for Key32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key32(<redacted>)")
    }
}

impl Key32 {
    pub(crate) fn random(rng: &mut dyn CryptoRngCore) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        Self(k)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    /// `nonce ‖ ciphertext ‖ tag`.
    pub(crate) fn seal(
        &self,
        rng: &mut dyn CryptoRngCore,
        msg: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(&XNonce::from(nonce), Payload { msg, aad })
            .map_err(|_| Error::Crypto("encryption failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Inverse of [`Key32::seal`]; `None` when the AEAD check fails or the blob is too short.
    pub(crate) fn open(&self, blob: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if blob.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        self.cipher()
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
            .ok()
            .map(Zeroizing::new)
    }

    pub(crate) fn from_slice(b: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = b.try_into().ok()?;
        Some(Self(arr))
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Derives the key-encryption key from the password secret (t=1 password bytes, or the rebuilt
/// Shamir secret for t>1).
pub(crate) fn derive_kek(secret: &[u8], salt: &[u8], p: &KdfParams) -> Result<Key32> {
    p.validate()?;
    let params = Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32))
        .map_err(|e| Error::BadKdfParams(e.to_string()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(secret, salt, out.as_mut())
        .map_err(|e| Error::BadKdfParams(e.to_string()))?;
    Ok(Key32(*out))
}

fn push_lp(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_be_bytes());
    out.extend_from_slice(b);
}

/// AAD of a secret record: domain ‖ format version ‖ len‖table ‖ len‖key.
pub(crate) fn record_aad(version: u32, table: &str, key: &[u8]) -> Vec<u8> {
    let mut a = b"mpc-keystore/record\0".to_vec();
    a.extend_from_slice(&version.to_be_bytes());
    push_lp(&mut a, table.as_bytes());
    push_lp(&mut a, key);
    a
}

/// AAD of a public (plaintext, authenticated) metadata record.
pub(crate) fn public_aad(version: u32, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut a = b"mpc-keystore/public\0".to_vec();
    a.extend_from_slice(&version.to_be_bytes());
    push_lp(&mut a, key);
    push_lp(&mut a, value);
    a
}

/// AAD of the counter tag; with the record-set digest when the header has one, so the counter
/// and the record set are authenticated together.
pub(crate) fn counter_aad(
    version: u32,
    engine: &str,
    counter: u64,
    record_set: Option<&[u8]>,
) -> Vec<u8> {
    let mut a = b"mpc-keystore/counter\0".to_vec();
    a.extend_from_slice(&version.to_be_bytes());
    push_lp(&mut a, engine.as_bytes());
    a.extend_from_slice(&counter.to_be_bytes());
    if let Some(d) = record_set {
        a.extend_from_slice(b"record-set\0");
        push_lp(&mut a, d);
    }
    a
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The key of the record-set digest, derived from the data key (HMAC-SHA256 with a fixed
/// label), so it changes with the data key.
pub(crate) fn record_set_key(dek: &Key32) -> Key32 {
    use hmac::Mac as _;
    let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(dek.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"mpc-keystore/record-set-key\0");
    let out: [u8; 32] = mac.finalize().into_bytes().into();
    Key32(out)
}

/// One stored record's contribution to the record-set digest:
/// HMAC-SHA256(k, domain ‖ len‖table ‖ len‖key ‖ len‖stored bytes).
pub(crate) fn record_mac(k: &Key32, table: &str, key: &[u8], stored: &[u8]) -> [u8; 32] {
    use hmac::Mac as _;
    let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(k.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"mpc-keystore/record-set\0");
    for part in [table.as_bytes(), key, stored] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// XORs `b` into `acc` (the record-set digest is the XOR of every record's [`record_mac`]:
/// an XOR MAC, Bellare–Guérin–Rogaway 1995, updated incrementally on every put and delete).
pub(crate) fn xor_into(acc: &mut [u8; 32], b: &[u8; 32]) {
    for (a, x) in acc.iter_mut().zip(b) {
        *a ^= x;
    }
}

/// AAD of the wrapped data key: binds version, policy and KDF parameters.
pub(crate) fn wrap_aad(version: u32, t: u8, n: u8, p: &KdfParams, salt: &[u8]) -> Vec<u8> {
    let mut a = b"mpc-keystore/data-key\0".to_vec();
    a.extend_from_slice(&version.to_be_bytes());
    a.push(t);
    a.push(n);
    a.extend_from_slice(&p.m_cost_kib.to_be_bytes());
    a.extend_from_slice(&p.t_cost.to_be_bytes());
    a.extend_from_slice(&p.p_cost.to_be_bytes());
    push_lp(&mut a, salt);
    a
}
