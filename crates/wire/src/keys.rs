//! P-256 keys as files and strings: PEM loading (the forms `openssl` writes), the node id, and
//! the hex-of-SPKI form the coordinator API uses as `BIZ-API-KEY`.
//!
//! * private keys: SEC1 `EC PRIVATE KEY` (as `openssl ecparam -genkey` writes it, with or without
//!   its leading `EC PARAMETERS` block) or PKCS#8 `PRIVATE KEY`;
//! * public keys: SubjectPublicKeyInfo `PUBLIC KEY` (`openssl ec -pubout`);
//! * node id: `"sino" + Base64Std(lowercase hex(DER SPKI))`, 248 characters.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use p256::{PublicKey, SecretKey};
use zeroize::Zeroizing;

/// Prefix of every node id.
pub const NODE_ID_PREFIX: &str = "sino";
/// Length of a node id: "sino" + Base64 of the 182 hex characters of a 91-byte SPKI.
pub const NODE_ID_LEN: usize = 248;

/// Why a key could not be loaded or a node id not parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// No `-----BEGIN …-----` / `-----END …-----` block of a usable kind was found.
    #[error("no PEM block {expected} found (found: {found})")]
    NoPemBlock {
        /// The labels that would have been accepted.
        expected: &'static str,
        /// The labels present in the input, comma separated (or "none").
        found: String,
    },
    /// A block opened but never closed.
    #[error("PEM block {0:?} is not terminated by its END line")]
    Unterminated(String),
    /// `Proc-Type: 4,ENCRYPTED` or `ENCRYPTED PRIVATE KEY`: password-protected keys are not
    /// supported.
    #[error("encrypted private keys are not supported; decrypt it with openssl first")]
    Encrypted,
    /// The block decoded but is not a valid P-256 key of the expected kind (other curve,
    /// broken DER, bad Base64, point not on the curve…).
    #[error("{label} block is not a valid P-256 key: {reason}")]
    InvalidKey {
        /// The PEM label of the block.
        label: String,
        /// What the decoder reported.
        reason: String,
    },
    /// The node id does not start with "sino".
    #[error("node id does not start with \"sino\"")]
    NodeIdPrefix,
    /// The node id has the wrong length.
    #[error("node id is {0} characters, expected 248")]
    NodeIdLength(usize),
    /// The node id's Base64 or hex layer is broken.
    #[error("node id is not Base64 of hex: {0}")]
    NodeIdEncoding(&'static str),
    /// The node id decodes to something that is not a P-256 SPKI.
    #[error("node id does not hold a P-256 public key: {0}")]
    NodeIdKey(String),
    /// The node id decodes to a key but is not its canonical spelling.
    #[error("node id is not in canonical form (uppercase hex or compressed point)")]
    NodeIdNotCanonical,
    /// The API key hex is broken.
    #[error("API key is not lowercase hex of a P-256 SubjectPublicKeyInfo: {0}")]
    ApiKey(String),
}

struct PemBlock<'a> {
    label: &'a str,
    /// The whole block including its BEGIN and END lines.
    text: &'a str,
}

/// Splits `input` into PEM blocks without decoding them.
fn pem_blocks(input: &str) -> Result<Vec<PemBlock<'_>>, KeyError> {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    let mut blocks = Vec::new();
    let mut rest = input;
    let mut consumed = 0;
    while let Some(start) = rest.find(BEGIN) {
        let after_begin = &rest[start + BEGIN.len()..];
        let Some(label_len) = after_begin.find(DASHES) else {
            return Err(KeyError::Unterminated(String::new()));
        };
        let label = &after_begin[..label_len];
        let end_line = format!("-----END {label}-----");
        let Some(end_rel) = rest[start..].find(&end_line) else {
            return Err(KeyError::Unterminated(label.to_owned()));
        };
        let end = start + end_rel + end_line.len();
        let abs = consumed + start;
        blocks.push(PemBlock {
            label,
            text: &input[abs..consumed + end],
        });
        rest = &rest[end..];
        consumed += end;
    }
    Ok(blocks)
}

fn labels(blocks: &[PemBlock<'_>]) -> String {
    if blocks.is_empty() {
        "none".to_owned()
    } else {
        blocks
            .iter()
            .map(|b| b.label)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn invalid(label: &str, e: impl std::fmt::Display) -> KeyError {
    KeyError::InvalidKey {
        label: label.to_owned(),
        reason: e.to_string(),
    }
}

/// Loads a P-256 private key from PEM: SEC1 `EC PRIVATE KEY` (an `EC PARAMETERS` block before
/// it is skipped) or PKCS#8 `PRIVATE KEY`.
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, KeyError> {
    secret_key_from_pem(pem).map(SigningKey::from)
}

/// Like [`signing_key_from_pem`], as a [`SecretKey`] (for ECIES decryption).
pub fn secret_key_from_pem(pem: &str) -> Result<SecretKey, KeyError> {
    let blocks = pem_blocks(pem)?;
    if blocks
        .iter()
        .any(|b| b.label == "ENCRYPTED PRIVATE KEY" || b.text.contains("Proc-Type: 4,ENCRYPTED"))
    {
        return Err(KeyError::Encrypted);
    }
    let Some(block) = blocks
        .iter()
        .find(|b| b.label == "EC PRIVATE KEY" || b.label == "PRIVATE KEY")
    else {
        return Err(KeyError::NoPemBlock {
            expected: "\"EC PRIVATE KEY\" or \"PRIVATE KEY\"",
            found: labels(&blocks),
        });
    };
    // Normalize line endings so CRLF files load too; the copy holds key material.
    let text = Zeroizing::new(block.text.replace("\r\n", "\n"));
    if block.label == "EC PRIVATE KEY" {
        SecretKey::from_sec1_pem(&text).map_err(|e| invalid(block.label, e))
    } else {
        SecretKey::from_pkcs8_pem(&text).map_err(|e| invalid(block.label, e))
    }
}

/// Loads a P-256 public key from a SubjectPublicKeyInfo `PUBLIC KEY` PEM block.
pub fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
    public_key_from_pem(pem).map(VerifyingKey::from)
}

/// Like [`verifying_key_from_pem`], as a [`PublicKey`] (for ECIES encryption).
pub fn public_key_from_pem(pem: &str) -> Result<PublicKey, KeyError> {
    let blocks = pem_blocks(pem)?;
    let Some(block) = blocks.iter().find(|b| b.label == "PUBLIC KEY") else {
        return Err(KeyError::NoPemBlock {
            expected: "\"PUBLIC KEY\"",
            found: labels(&blocks),
        });
    };
    let text = block.text.replace("\r\n", "\n");
    PublicKey::from_public_key_pem(&text).map_err(|e| invalid(block.label, e))
}

/// DER SubjectPublicKeyInfo of the key (91 bytes, uncompressed point), as Go's
/// `x509.MarshalPKIXPublicKey` writes it.
pub fn spki_der(key: &VerifyingKey) -> Vec<u8> {
    // Encoding a valid P-256 key as SPKI cannot fail; the fallback is never taken.
    match PublicKey::from(key).to_public_key_der() {
        Ok(doc) => doc.as_bytes().to_vec(),
        Err(_) => Vec::new(),
    }
}

/// The public key as a `PUBLIC KEY` PEM block with LF line endings and 64-column Base64, the
/// form the local API's `init`/`info` replies carry.
pub fn public_key_pem(key: &VerifyingKey) -> String {
    PublicKey::from(key)
        .to_public_key_pem(LineEnding::LF)
        .unwrap_or_default()
}

/// `BIZ-API-KEY` form of a public key: lowercase hex of its DER SPKI.
pub fn api_key_hex(key: &VerifyingKey) -> String {
    hex::encode(spki_der(key))
}

/// Parses a `BIZ-API-KEY` (hex of DER SPKI; upper- or lowercase hex accepted).
pub fn verifying_key_from_api_key_hex(s: &str) -> Result<VerifyingKey, KeyError> {
    let der = hex::decode(s).map_err(|e| KeyError::ApiKey(e.to_string()))?;
    VerifyingKey::from_public_key_der(&der).map_err(|e| KeyError::ApiKey(e.to_string()))
}

/// The node id of a node key: `"sino" + Base64Std(lowercase hex(DER SPKI))`.
pub fn node_id(key: &VerifyingKey) -> String {
    let mut id = String::with_capacity(NODE_ID_LEN);
    id.push_str(NODE_ID_PREFIX);
    id.push_str(&BASE64.encode(api_key_hex(key)));
    id
}

/// The public key inside a node id. Only the canonical spelling ([`node_id`] of the key it
/// holds) is accepted, so one key has exactly one node id.
pub fn verifying_key_from_node_id(id: &str) -> Result<VerifyingKey, KeyError> {
    let body = id
        .strip_prefix(NODE_ID_PREFIX)
        .ok_or(KeyError::NodeIdPrefix)?;
    if id.len() != NODE_ID_LEN {
        return Err(KeyError::NodeIdLength(id.len()));
    }
    let hex_text = BASE64
        .decode(body)
        .map_err(|_| KeyError::NodeIdEncoding("invalid Base64"))?;
    let der = hex::decode(&hex_text).map_err(|_| KeyError::NodeIdEncoding("invalid hex"))?;
    let key =
        VerifyingKey::from_public_key_der(&der).map_err(|e| KeyError::NodeIdKey(e.to_string()))?;
    if node_id(&key) != id {
        return Err(KeyError::NodeIdNotCanonical);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_block_splitting() {
        let text = "junk\n-----BEGIN A-----\nx\n-----END A-----\nmid\n-----BEGIN B C-----\ny\n-----END B C-----\n";
        let blocks = pem_blocks(text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "A");
        assert_eq!(blocks[0].text, "-----BEGIN A-----\nx\n-----END A-----");
        assert_eq!(blocks[1].label, "B C");
        assert!(pem_blocks("-----BEGIN A-----\nx\n").is_err());
        assert!(pem_blocks("-----BEGIN A").is_err());
        assert!(pem_blocks("-----BEGIN A-----\nx\n-----END B-----").is_err());
        assert!(pem_blocks("").unwrap().is_empty());
    }
}
