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

/// Why typed data (EIP-712) could not be hashed. Paths name the offending value, e.g.
/// `message.to[0].wallets[1]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Eip712Error {
    /// The JSON text is longer than the limit.
    #[error("typed data is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Input length.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Not JSON.
    #[error("typed data is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not shaped like `{types, primaryType, domain, message}`.
    #[error("malformed typed data: {0}")]
    Malformed(String),
    /// A struct type name is not an identifier or shadows an elementary type.
    #[error("invalid struct type name {0:?}")]
    InvalidTypeName(String),
    /// A field name is not an identifier.
    #[error("invalid field name {field:?} in type {ty}")]
    InvalidFieldName {
        /// Struct type.
        ty: String,
        /// Field name.
        field: String,
    },
    /// A struct declares the same field name twice.
    #[error("field {field:?} is declared twice in type {ty}")]
    DuplicateField {
        /// Struct type.
        ty: String,
        /// Field name.
        field: String,
    },
    /// A field's type string is not a valid EIP-712 type.
    #[error("field {ty}.{field} has invalid type {field_type:?}: {reason}")]
    InvalidFieldType {
        /// Struct type.
        ty: String,
        /// Field name.
        field: String,
        /// The type string given.
        field_type: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `primaryType` is not declared in `types`.
    #[error("primaryType {0:?} is not defined in types")]
    UnknownPrimaryType(String),
    /// A struct type that is not declared was asked for.
    #[error("struct type {0:?} is not defined in types")]
    UnknownStructType(String),
    /// Too many struct types.
    #[error("typed data declares {count} types, more than the {max} accepted")]
    TooManyTypes {
        /// Declared.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// Too many fields in one struct type.
    #[error("type {ty} declares {count} fields, more than the {max} accepted")]
    TooManyFields {
        /// Struct type.
        ty: String,
        /// Declared.
        count: usize,
        /// Limit.
        max: usize,
    },
    /// `eth_signTypedData_v3` has no arrays; use v4.
    #[error(
        "eth_signTypedData_v3 does not support arrays (field {ty}.{field}); use eth_signTypedData_v4"
    )]
    ArraysNotSupportedInV3 {
        /// Struct type.
        ty: String,
        /// Field name.
        field: String,
    },
    /// A declared field has no value.
    #[error("missing value at {path}")]
    MissingValue {
        /// Path of the value.
        path: String,
    },
    /// A value does not fit its declared type.
    #[error("invalid value at {path} for type {ty}: {reason}")]
    InvalidValue {
        /// Path of the value.
        path: String,
        /// Declared type.
        ty: String,
        /// What is wrong.
        reason: String,
    },
    /// A fixed-size array has the wrong number of elements.
    #[error("array at {path} has {actual} elements, its type declares {expected}")]
    ArrayLength {
        /// Path of the array.
        path: String,
        /// Declared length.
        expected: usize,
        /// Given length.
        actual: usize,
    },
}

/// Why a `sign_message` request could not be turned into a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The message type is not `personal_sign`, `eth_signTypedData_v3` or `_v4`.
    #[error(
        "unknown message type {0:?} (expected personal_sign, eth_signTypedData_v3 or eth_signTypedData_v4)"
    )]
    UnknownKind(String),
    /// Hex was required but the message is not `0x`-prefixed hex.
    #[error("message is not 0x-prefixed hex")]
    NotHex,
    /// `0x`-hex with an odd number of digits: refused rather than guessed.
    #[error(
        "message is 0x-hex with an odd number of digits; send an even number of digits, or send it as text"
    )]
    OddHexMessage,
    /// The typed data was refused.
    #[error(transparent)]
    TypedData(#[from] Eip712Error),
}
