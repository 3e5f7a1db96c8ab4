//! `--report FILE`: what the devnet made and signed, for scripts and other tools (for example a
//! Go SDK test that loads the API user's key and calls the same API).

use serde::{Deserialize, Serialize};

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// How to call the API.
    pub api: ApiInfo,
    /// The nodes.
    pub nodes: Vec<NodeEntry>,
    /// The organization's keys.
    pub keys: Vec<KeyEntry>,
    /// Every signature made.
    pub signatures: Vec<SignatureEntry>,
}

/// `api`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiInfo {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The API user's key file: lowercase hex PKCS#8 DER.
    pub private_key_path: String,
    /// The organization's vault.
    pub vault_id: String,
}

/// One node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// `a`, `b`, `c`.
    pub party_id: String,
    /// `sino…`.
    pub node_id: String,
    /// The directory holding its `config.toml`.
    pub dir: String,
}

/// One key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    /// `secp256k1` or `ed25519`.
    pub curve: String,
    /// Signers needed.
    pub threshold: u16,
    /// Share holders.
    pub parties: Vec<String>,
    /// Root key hex: 33-byte compressed or 32-byte ed25519.
    pub public_key: String,
    /// Chain code hex (32 bytes).
    pub chain_code: String,
}

/// One signature.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SignatureEntry {
    /// `ecdsa`, `eddsa`, `bip340`, `taproot`.
    pub algorithm: String,
    /// `"1"`, `"2"`, `"3"`.
    pub sign_type: String,
    /// `m/…`.
    pub path: String,
    /// The derived public key, hex.
    pub public_key: String,
    /// Hex of the message given to the API.
    pub message: String,
    /// Hex of the 32 bytes signed; for eddsa the message.
    pub digest: String,
    /// Hex or empty.
    pub tap_script_root: String,
    /// EVM address for ecdsa sign_type 2, else empty.
    pub address: String,
    /// Hex, as the API returned it.
    pub signature: String,
    /// Request to result, milliseconds.
    pub latency_ms: f64,
}

impl Report {
    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
