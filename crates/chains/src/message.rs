//! The API's `sign_message`: message type name plus message string to a [`SignPayload`].

use std::fmt;
use std::str::FromStr;

use crate::eip712::{TypedDataVersion, typed_data_payload};
use crate::error::MessageError;
use crate::payload::SignPayload;
use crate::personal::{MessageEncoding, personal_sign_payload_from_text};

/// The wallet methods that `sign_message` supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignMessageKind {
    /// EIP-191 `personal_sign`.
    PersonalSign,
    /// EIP-712 `eth_signTypedData_v3`.
    TypedDataV3,
    /// EIP-712 `eth_signTypedData_v4`.
    TypedDataV4,
}

impl SignMessageKind {
    /// The wallet method name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignMessageKind::PersonalSign => "personal_sign",
            SignMessageKind::TypedDataV3 => "eth_signTypedData_v3",
            SignMessageKind::TypedDataV4 => "eth_signTypedData_v4",
        }
    }
}

impl fmt::Display for SignMessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SignMessageKind {
    type Err = MessageError;

    /// Exact wallet method names (case-sensitive, as JSON-RPC method names are).
    fn from_str(name: &str) -> Result<Self, MessageError> {
        match name {
            "personal_sign" => Ok(SignMessageKind::PersonalSign),
            "eth_signTypedData_v3" => Ok(SignMessageKind::TypedDataV3),
            "eth_signTypedData_v4" => Ok(SignMessageKind::TypedDataV4),
            other => Err(MessageError::UnknownKind(other.to_string())),
        }
    }
}

/// The payload for an API `sign_message` request: `personal_sign` reads `message` with
/// [`MessageEncoding::Auto`] (0x-hex decoded, otherwise UTF-8); the typed-data kinds parse it
/// as EIP-712 JSON.
pub fn sign_message_payload(
    kind: SignMessageKind,
    message: &str,
) -> Result<SignPayload, MessageError> {
    match kind {
        SignMessageKind::PersonalSign => {
            personal_sign_payload_from_text(message, MessageEncoding::Auto)
        }
        SignMessageKind::TypedDataV3 => Ok(typed_data_payload(message, TypedDataVersion::V3)?),
        SignMessageKind::TypedDataV4 => Ok(typed_data_payload(message, TypedDataVersion::V4)?),
    }
}
