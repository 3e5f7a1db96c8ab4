//! Typed errors. Every untrusted input ends in one of these, never in a panic.

/// Why an address could not be made (or parsed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The key has the wrong number of bytes for the requested format.
    #[error("public key must be {expected} bytes, got {actual}")]
    KeyLength {
        /// What the format accepts.
        expected: &'static str,
        /// What was given.
        actual: usize,
    },
    /// The bytes are not a valid secp256k1 point (or x coordinate).
    #[error("public key is not a valid secp256k1 point")]
    InvalidKey,
    /// The BIP341 tweak hash is not below the curve order, or the tweaked key is the identity
    /// (cryptographically negligible; reported rather than assumed away).
    #[error("BIP341 tweak is out of range for this key")]
    TweakOutOfRange,
    /// The API's `encoding` number is not one of 1 (legacy), 2 (segwit native), 3 (segwit
    /// nested), 4 (taproot).
    #[error(
        "unknown bitcoin address encoding {0} (expected 1 legacy, 2 segwit native, 3 segwit nested, 4 taproot)"
    )]
    UnknownEncoding(u8),
    /// The bech32 encoder refused the program (cannot happen for the fixed-size programs used
    /// here; reported instead of unwrapped).
    #[error("address encoding failed: {0}")]
    Encoding(String),
    /// A textual EVM address is malformed or carries a wrong EIP-55 checksum.
    #[error("invalid EVM address: {0}")]
    InvalidEvmAddress(String),
}
