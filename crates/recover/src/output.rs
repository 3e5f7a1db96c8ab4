//! Output formats: WIF, addresses, the Ethereum V3 keystore file, and the no-clobber atomic
//! private-file write.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes::cipher::{KeyIvInit, StreamCipher};
use rand_core::{OsRng, RngCore};
use serde_json::json;
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

use crate::RecoverError;
use crate::derive::ChildKey;
use crate::rebuild::KeyCurve;

/// Bitcoin network of a WIF string and of the Bitcoin addresses printed beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BtcNetwork {
    /// Mainnet (WIF version 0x80, `K…`/`L…`).
    Mainnet,
    /// Testnet, signet and regtest (WIF version 0xEF, `c…`).
    Testnet,
}

/// The compressed-key WIF of a secp256k1 private key (Base58Check of version ‖ key ‖ 0x01).
pub fn wif(secret: &[u8; 32], network: BtcNetwork) -> Zeroizing<String> {
    let mut payload = Zeroizing::new([0u8; 34]);
    payload[0] = match network {
        BtcNetwork::Mainnet => 0x80,
        BtcNetwork::Testnet => 0xef,
    };
    payload[1..33].copy_from_slice(secret);
    payload[33] = 0x01;
    Zeroizing::new(bs58::encode(&payload[..]).with_check().into_string())
}

/// Public addresses of a child key, for the operator to match against the funds.
pub fn addresses(child: &ChildKey, network: BtcNetwork) -> Vec<(&'static str, String)> {
    use mpc_chains::address as a;
    let net = match network {
        BtcNetwork::Mainnet => a::Network::Mainnet,
        BtcNetwork::Testnet => a::Network::Testnet,
    };
    let mut out = Vec::new();
    match child.curve {
        KeyCurve::Secp256k1 => {
            if let Ok(x) = a::evm_address(&child.public_key) {
                out.push(("evm", x));
            }
            if let Ok(x) = a::p2wpkh_address(&child.public_key, net) {
                out.push(("btc_p2wpkh", x));
            }
            if let Ok(x) = a::p2pkh_address(&child.public_key, net) {
                out.push(("btc_p2pkh", x));
            }
            if let Ok(x) = a::p2sh_p2wpkh_address(&child.public_key, net) {
                out.push(("btc_p2sh_p2wpkh", x));
            }
        }
        KeyCurve::Ed25519 => {
            if let Ok(x) = a::solana_address(&child.public_key) {
                out.push(("base58", x));
            }
        }
    }
    out
}

/// scrypt cost of the keystore file: go-ethereum's standard (N = 2^18, r = 8, p = 1).
pub const SCRYPT_LOG_N: u8 = 18;

/// An Ethereum V3 keystore (Web3 Secret Storage: scrypt, AES-128-CTR, Keccak-256 MAC) of a
/// secp256k1 private key under `password`, with fresh random salt, IV and id.
pub fn eth_keystore(
    secret: &[u8; 32],
    password: &str,
    log_n: u8,
) -> Result<serde_json::Value, RecoverError> {
    let mut salt = [0u8; 32];
    let mut iv = [0u8; 16];
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut iv);
    OsRng.fill_bytes(&mut id);
    eth_keystore_with(secret, password, log_n, &salt, &iv, &id)
}

/// [`eth_keystore`] with given salt, IV and id (test vectors).
pub fn eth_keystore_with(
    secret: &[u8; 32],
    password: &str,
    log_n: u8,
    salt: &[u8; 32],
    iv: &[u8; 16],
    id: &[u8; 16],
) -> Result<serde_json::Value, RecoverError> {
    let (r, p) = (8u32, 1u32);
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| RecoverError::Output(format!("scrypt parameters: {e}")))?;
    let mut dk = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.as_bytes(), salt, &params, &mut dk[..])
        .map_err(|e| RecoverError::Output(format!("scrypt: {e}")))?;
    let mut ct = *secret;
    let mut cipher = ctr::Ctr128BE::<aes::Aes128>::new((&dk[..16]).into(), iv.into());
    cipher.apply_keystream(&mut ct);
    let mut h = Keccak256::new();
    h.update(&dk[16..32]);
    h.update(ct);
    let mac = h.finalize();
    let public = k256::SecretKey::from_slice(secret)
        .map_err(|_| RecoverError::Output("not a valid secp256k1 private key".into()))?
        .public_key();
    let address = mpc_chains::address::evm_address_bytes(
        k256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&public, true).as_bytes(),
    )
    .map_err(|e| RecoverError::Output(e.to_string()))?;
    let mut uuid = *id;
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
    let u = hex::encode(uuid);
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &u[0..8],
        &u[8..12],
        &u[12..16],
        &u[16..20],
        &u[20..32]
    );
    Ok(json!({
        "address": hex::encode(address),
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": hex::encode(iv)},
            "ciphertext": hex::encode(ct),
            "kdf": "scrypt",
            "kdfparams": {"dklen": 32, "n": 1u64 << log_n, "p": p, "r": r, "salt": hex::encode(salt)},
            "mac": hex::encode(mac),
        },
        "id": uuid,
        "version": 3,
    }))
}

/// A keystore file that cannot be read, with what is wrong.
fn bad(what: &str) -> RecoverError {
    RecoverError::Output(format!("keystore: {what}"))
}

/// A hex member of a keystore file.
fn hexfield(v: &serde_json::Value, name: &str) -> Result<Vec<u8>, RecoverError> {
    v.as_str()
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(|| bad(&format!("{name} is not hex")))
}

/// Decrypts a V3 keystore made with scrypt and AES-128-CTR (checks the MAC first).
pub fn eth_keystore_decrypt(
    file: &serde_json::Value,
    password: &str,
) -> Result<Zeroizing<[u8; 32]>, RecoverError> {
    let c = &file["crypto"];
    if c["kdf"] != "scrypt" || c["cipher"] != "aes-128-ctr" {
        return Err(bad("only scrypt with aes-128-ctr is read"));
    }
    let kp = &c["kdfparams"];
    let n = kp["n"].as_u64().ok_or_else(|| bad("n"))?;
    if !n.is_power_of_two() || n < 2 {
        return Err(bad("n is not a power of two"));
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| bad("n"))?;
    let r = u32::try_from(kp["r"].as_u64().ok_or_else(|| bad("r"))?).map_err(|_| bad("r"))?;
    let p = u32::try_from(kp["p"].as_u64().ok_or_else(|| bad("p"))?).map_err(|_| bad("p"))?;
    let salt = hexfield(&kp["salt"], "salt")?;
    // RustCrypto's scrypt enforces RFC 7914 (N < 2^(16 r)); go-ethereum's files (r = 8)
    // meet it.
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|e| bad(&e.to_string()))?;
    let mut dk = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut dk[..])
        .map_err(|e| bad(&e.to_string()))?;
    eth_keystore_decrypt_with_derived_key(file, &dk)
}

/// The second half of [`eth_keystore_decrypt`]: checks the MAC under the derived key `dk`
/// (the KDF's output) and decrypts with AES-128-CTR.
pub fn eth_keystore_decrypt_with_derived_key(
    file: &serde_json::Value,
    dk: &[u8; 32],
) -> Result<Zeroizing<[u8; 32]>, RecoverError> {
    let c = &file["crypto"];
    if c["cipher"] != "aes-128-ctr" {
        return Err(bad("only aes-128-ctr is read"));
    }
    let iv = hexfield(&c["cipherparams"]["iv"], "iv")?;
    let ct = hexfield(&c["ciphertext"], "ciphertext")?;
    let mac = hexfield(&c["mac"], "mac")?;
    let mut h = Keccak256::new();
    h.update(&dk[16..32]);
    h.update(&ct);
    let expected: [u8; 32] = h.finalize().into();
    if expected[..] != mac[..] {
        return Err(bad("MAC mismatch (wrong password?)"));
    }
    if ct.len() != 32 {
        return Err(bad("ciphertext length"));
    }
    let iv: [u8; 16] = iv.as_slice().try_into().map_err(|_| bad("iv length"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&ct);
    let mut cipher = ctr::Ctr128BE::<aes::Aes128>::new((&dk[..16]).into(), (&iv).into());
    cipher.apply_keystream(&mut out[..]);
    Ok(out)
}

/// Writes `bytes` to `path` atomically and never over an existing file: a temporary file
/// beside it (mode 0600, created new), written and fsynced, then hard-linked to `path` (which
/// fails if `path` exists), the temporary name removed and the directory fsynced. A crash
/// leaves either no file or the whole file at `path`.
pub fn write_new_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), RecoverError> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(RecoverError::io("create", &tmp))?;
    let written = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(RecoverError::io("write", &tmp));
    drop(f);
    let linked = written.and_then(|()| {
        std::fs::hard_link(&tmp, path).map_err(RecoverError::io("create (never overwritten)", path))
    });
    let _ = std::fs::remove_file(&tmp);
    linked?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(RecoverError::io("fsync directory", &dir))
}
