//! The private-key string the public Go SDK loads: lowercase hex of a PKCS#8 DER
//! `PrivateKeyInfo` holding a P-256 key (Go's `x509.ParsePKCS8PrivateKey` /
//! `x509.MarshalPKCS8PrivateKey`).

use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use zeroize::Zeroizing;

/// Why an SDK private key could not be loaded or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdkKeyError {
    /// The text is not hex.
    #[error("SDK private key is not hex")]
    NotHex,
    /// The bytes are not a PKCS#8 P-256 private key.
    #[error("SDK private key is not a PKCS#8 P-256 private key")]
    NotPkcs8P256,
    /// Encoding the key failed.
    #[error("SDK private key could not be encoded")]
    Encode,
}

/// Loads an SDK private key: hex (either case) of PKCS#8 DER. Leading and trailing ASCII
/// whitespace (a trailing newline in a key file) is ignored. Both forms of the inner
/// `ECPrivateKey` are accepted (with or without the curve parameters and public key).
pub fn load_sdk_private_key_hex(text: &str) -> Result<SigningKey, SdkKeyError> {
    let der = Zeroizing::new(hex::decode(text.trim_ascii()).map_err(|_| SdkKeyError::NotHex)?);
    SigningKey::from_pkcs8_der(&der).map_err(|_| SdkKeyError::NotPkcs8P256)
}

/// Writes a key as the SDK loads it: lowercase hex of PKCS#8 DER (the inner `ECPrivateKey`
/// carries the public key; the curve is named in the algorithm identifier, which Go's parser
/// accepts). The string is secret and zeroized on drop.
pub fn sdk_private_key_hex(key: &SigningKey) -> Result<Zeroizing<String>, SdkKeyError> {
    let der = key.to_pkcs8_der().map_err(|_| SdkKeyError::Encode)?;
    Ok(Zeroizing::new(hex::encode(der.as_bytes())))
}
