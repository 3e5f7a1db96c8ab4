//! Which threshold-ECDSA protocol a secp256k1 key uses: one type for the admin API, the
//! coordinator's records, the tasks sent to nodes and the node's stored shares.
//!
//! Chosen once per organization, when it is created, and fixed for each key when the key is
//! generated: a key generated with one protocol signs only with it. BIP340 and Taproot signing
//! use FROST with the key's share either way.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A threshold-ECDSA protocol. Stable names: `cggmp24`, `dkls23`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EcdsaProtocol {
    /// CGGMP24 (Paillier, aux info and safe primes per committee; presignatures).
    Cggmp24,
    /// DKLs23 (OT-based; no setup beyond key generation; three-round signing).
    Dkls23,
}

/// A protocol name that is neither `cggmp24` nor `dkls23`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ECDSA protocol {0:?} (expected cggmp24 or dkls23)")]
pub struct UnknownProtocol(pub String);

impl EcdsaProtocol {
    /// Every protocol.
    pub const ALL: [EcdsaProtocol; 2] = [EcdsaProtocol::Cggmp24, EcdsaProtocol::Dkls23];

    /// The protocol of records and tasks written before the protocol was recorded: every key
    /// made then is a CGGMP24 key.
    pub const LEGACY: EcdsaProtocol = EcdsaProtocol::Cggmp24;

    /// Stable name (API fields, stored records, config files).
    pub fn name(self) -> &'static str {
        match self {
            EcdsaProtocol::Cggmp24 => "cggmp24",
            EcdsaProtocol::Dkls23 => "dkls23",
        }
    }

    /// [`EcdsaProtocol::LEGACY`], for `#[serde(default = …)]` on fields older encodings lack.
    pub fn legacy() -> Self {
        Self::LEGACY
    }
}

impl fmt::Display for EcdsaProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EcdsaProtocol {
    type Err = UnknownProtocol;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownProtocol(s.chars().take(32).collect()))
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
        let e = "cmp".parse::<EcdsaProtocol>().unwrap_err().to_string();
        assert!(e.contains("\"cmp\"") && e.contains("dkls23"), "{e}");
    }
}
