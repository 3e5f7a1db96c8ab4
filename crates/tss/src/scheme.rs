//! Which threshold-ECDSA protocol a secp256k1 key uses, and the runs of each.
//!
//! The type itself is [`mpc_wire::scheme::EcdsaProtocol`] (one type from the admin API to the
//! node's stored share); this module maps it onto this crate's [`ProtocolKind`]s. BIP340 and
//! Taproot signing use FROST with the key's share either way (a DKLs23 share converts with
//! [`DklsKeyShare::schnorr_share`](crate::dkls::DklsKeyShare::schnorr_share)).

pub use mpc_wire::scheme::{EcdsaProtocol, UnknownProtocol};

use crate::envelope::ProtocolKind;

/// The key-generation runs of `protocol`, in order (CGGMP24: keygen then aux info).
pub fn keygen_kinds(protocol: EcdsaProtocol) -> Vec<ProtocolKind> {
    match protocol {
        EcdsaProtocol::Cggmp24 => vec![ProtocolKind::EcdsaKeygen, ProtocolKind::EcdsaAuxInfo],
        EcdsaProtocol::Dkls23 => vec![ProtocolKind::Dkls23Keygen],
    }
}

/// The (full, interactive) ECDSA signing run of `protocol`.
pub fn sign_kind(protocol: EcdsaProtocol) -> ProtocolKind {
    match protocol {
        EcdsaProtocol::Cggmp24 => ProtocolKind::EcdsaSign,
        EcdsaProtocol::Dkls23 => ProtocolKind::Dkls23Sign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_has_its_own_runs() {
        let mut seen = std::collections::HashSet::new();
        for p in EcdsaProtocol::ALL {
            for k in keygen_kinds(p).into_iter().chain([sign_kind(p)]) {
                assert!(seen.insert(k), "{k:?} shared between protocols");
            }
        }
    }
}
