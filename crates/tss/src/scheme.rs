//! Which threshold-ECDSA protocol a secp256k1 key uses.
//!
//! Chosen once, when the key is generated (per organization), and stored with the key: a key
//! generated with one protocol signs only with it. BIP340 and Taproot signing use FROST with the
//! key's share either way (a DKLs23 share converts with
//! [`DklsKeyShare::schnorr_share`](crate::dkls::DklsKeyShare::schnorr_share)).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::envelope::ProtocolKind;
use crate::error::InputError;

/// A threshold-ECDSA protocol. Stable names: `cggmp24`, `dkls23`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EcdsaProtocol {
    /// CGGMP24 (Paillier, aux info and safe primes per committee; presignatures).
    Cggmp24,
    /// DKLs23 (OT-based; no setup beyond key generation; three-round signing).
    Dkls23,
}

impl EcdsaProtocol {
    /// Every protocol.
    pub const ALL: [EcdsaProtocol; 2] = [EcdsaProtocol::Cggmp24, EcdsaProtocol::Dkls23];

    /// Stable name (API fields, stored key records, config files).
    pub fn name(self) -> &'static str {
        match self {
            EcdsaProtocol::Cggmp24 => "cggmp24",
            EcdsaProtocol::Dkls23 => "dkls23",
        }
    }

    /// The key-generation run of this protocol.
    pub fn keygen_kind(self) -> ProtocolKind {
        match self {
            EcdsaProtocol::Cggmp24 => ProtocolKind::EcdsaKeygen,
            EcdsaProtocol::Dkls23 => ProtocolKind::Dkls23Keygen,
        }
    }

    /// The (full, interactive) signing run of this protocol.
    pub fn sign_kind(self) -> ProtocolKind {
        match self {
            EcdsaProtocol::Cggmp24 => ProtocolKind::EcdsaSign,
            EcdsaProtocol::Dkls23 => ProtocolKind::Dkls23Sign,
        }
    }
}

impl fmt::Display for EcdsaProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EcdsaProtocol {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                InputError::Message(format!(
                    "unknown ECDSA protocol {:?} (expected cggmp24 or dkls23)",
                    s.chars().take(32).collect::<String>()
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in EcdsaProtocol::ALL {
            assert_eq!(p.name().parse::<EcdsaProtocol>().unwrap(), p);
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.name())
            );
        }
        assert!("DKLS23".parse::<EcdsaProtocol>().is_err());
        assert!("".parse::<EcdsaProtocol>().is_err());
    }
}
