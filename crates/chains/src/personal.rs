//! EIP-191 version 0x45 (`personal_sign`): `keccak256("\x19Ethereum Signed Message:\n" ‖
//! decimal byte length ‖ message)`.
//!
//! # How an API message string becomes bytes
//!
//! The public API carries the message as a JSON string. With [`MessageEncoding::Auto`] (what
//! the API uses) the rule is MetaMask's: a string of the form `0x` followed only by hex digits
//! (`^0x[0-9a-fA-F]*$`) is hex and is decoded to raw bytes (`"0x"` alone is the empty message);
//! anything else is signed as its UTF-8 bytes. One deliberate difference: an odd number of hex
//! digits is refused ([`MessageError::OddHexMessage`]) instead of being silently left-padded
//! with a zero nibble, so that what is signed is never a guess. Callers who want the text
//! `"0xabcd"` itself signed use [`MessageEncoding::Utf8`].

use crate::error::MessageError;
use crate::payload::{HashKind, SignPayload};

/// The EIP-191 `personal_sign` prefix.
pub const PERSONAL_SIGN_PREFIX: &[u8] = b"\x19Ethereum Signed Message:\n";

/// How to read an API message string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MessageEncoding {
    /// `0x`-hex is decoded, anything else is UTF-8 text (see the module docs).
    #[default]
    Auto,
    /// Must be `0x`-prefixed hex with an even number of digits.
    Hex,
    /// The string's UTF-8 bytes, whatever they look like.
    Utf8,
}

fn is_hex_form(text: &str) -> Option<&str> {
    text.strip_prefix("0x")
        .filter(|digits| digits.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The message bytes an API string stands for under `encoding`.
pub fn message_bytes(text: &str, encoding: MessageEncoding) -> Result<Vec<u8>, MessageError> {
    match encoding {
        MessageEncoding::Utf8 => Ok(text.as_bytes().to_vec()),
        MessageEncoding::Hex => match is_hex_form(text) {
            Some(digits) => decode_even_hex(digits),
            None => Err(MessageError::NotHex),
        },
        MessageEncoding::Auto => match is_hex_form(text) {
            Some(digits) => decode_even_hex(digits),
            None => Ok(text.as_bytes().to_vec()),
        },
    }
}

fn decode_even_hex(digits: &str) -> Result<Vec<u8>, MessageError> {
    if !digits.len().is_multiple_of(2) {
        return Err(MessageError::OddHexMessage);
    }
    hex::decode(digits).map_err(|_| MessageError::NotHex)
}

/// The EIP-191 preimage of raw message bytes and its Keccak-256 digest.
pub fn personal_sign_payload(message: &[u8]) -> SignPayload {
    let length = message.len().to_string();
    let mut preimage =
        Vec::with_capacity(PERSONAL_SIGN_PREFIX.len() + length.len() + message.len());
    preimage.extend_from_slice(PERSONAL_SIGN_PREFIX);
    preimage.extend_from_slice(length.as_bytes());
    preimage.extend_from_slice(message);
    SignPayload::new(HashKind::Keccak256, preimage)
}

/// [`personal_sign_payload`] of an API message string read with `encoding`.
pub fn personal_sign_payload_from_text(
    text: &str,
    encoding: MessageEncoding,
) -> Result<SignPayload, MessageError> {
    Ok(personal_sign_payload(&message_bytes(text, encoding)?))
}
