//! The unit a protocol run exchanges: an [`Envelope`] around one protocol message.
//!
//! Every envelope binds the execution id, the protocol, the round, the sender and the receiver
//! (or broadcast). This layer checks all of them against the run before the protocol library
//! sees the payload. Confidentiality and authenticity of envelopes between nodes is the
//! transport's job (end-to-end encryption and signatures, see SPEC.md §3); the transport must
//! set `sender` from the authenticated peer, never from the frame.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec;
use crate::error::InputError;
use crate::party::PartyId;

/// Version of the envelope format.
pub const ENVELOPE_VERSION: u8 = 1;

/// Which protocol a run speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProtocolKind {
    /// CGGMP24 threshold key generation on secp256k1 (with chain code).
    EcdsaKeygen,
    /// CGGMP24 auxiliary info (Paillier keys and their proofs).
    EcdsaAuxInfo,
    /// CGGMP24 full signing.
    EcdsaSign,
    /// CGGMP24 presignature generation.
    EcdsaPresign,
    /// One broadcast round of partial signatures from presignatures.
    EcdsaOnlineSign,
    /// FROST key generation on ed25519 (with chain code).
    EddsaKeygen,
    /// FROST ed25519 signing (RFC 8032 output).
    EddsaSign,
    /// FROST BIP340 signing under the untweaked (derived) key.
    Bip340Sign,
    /// FROST BIP341 key-path signing under the tweaked output key.
    TaprootSign,
    /// DKLs23 key generation on secp256k1 (with chain code).
    Dkls23Keygen,
    /// DKLs23 signing (3 rounds).
    Dkls23Sign,
    /// DKLs23 share refresh (new shares, same key and chain code).
    Dkls23Refresh,
    /// DKLs23 repair of a lost share, followed by a refresh of every share.
    Dkls23Repair,
}

impl ProtocolKind {
    /// Stable name (also used in execution-id derivation).
    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::EcdsaKeygen => "ecdsa_keygen",
            ProtocolKind::EcdsaAuxInfo => "ecdsa_aux_info",
            ProtocolKind::EcdsaSign => "ecdsa_sign",
            ProtocolKind::EcdsaPresign => "ecdsa_presign",
            ProtocolKind::EcdsaOnlineSign => "ecdsa_online_sign",
            ProtocolKind::EddsaKeygen => "eddsa_keygen",
            ProtocolKind::EddsaSign => "eddsa_sign",
            ProtocolKind::Bip340Sign => "bip340_sign",
            ProtocolKind::TaprootSign => "taproot_sign",
            ProtocolKind::Dkls23Keygen => "dkls23_keygen",
            ProtocolKind::Dkls23Sign => "dkls23_sign",
            ProtocolKind::Dkls23Refresh => "dkls23_refresh",
            ProtocolKind::Dkls23Repair => "dkls23_repair",
        }
    }

    /// Every protocol, in declaration order.
    pub const ALL: [ProtocolKind; 13] = [
        ProtocolKind::EcdsaKeygen,
        ProtocolKind::EcdsaAuxInfo,
        ProtocolKind::EcdsaSign,
        ProtocolKind::EcdsaPresign,
        ProtocolKind::EcdsaOnlineSign,
        ProtocolKind::EddsaKeygen,
        ProtocolKind::EddsaSign,
        ProtocolKind::Bip340Sign,
        ProtocolKind::TaprootSign,
        ProtocolKind::Dkls23Keygen,
        ProtocolKind::Dkls23Sign,
        ProtocolKind::Dkls23Refresh,
        ProtocolKind::Dkls23Repair,
    ];

    /// The protocol whose [`ProtocolKind::name`] is `name` (exact match), e.g. from a
    /// transport header.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// 32-byte execution id, unique per protocol run; binds every message of the run.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct ExecutionId([u8; 32]);

impl ExecutionId {
    /// Derives the id from a value the coordinator makes unique per run (e.g. random bytes),
    /// the protocol and the participants, so one run's messages can never be accepted by a
    /// run of another protocol or another party set.
    pub fn derive(protocol: ProtocolKind, unique: &[u8], participants: &[PartyId]) -> Self {
        let mut h = Sha256::new();
        h.update(b"mpc-cosigner/execution-id/v1");
        for part in [protocol.name().as_bytes(), unique] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let mut sorted = participants.to_vec();
        sorted.sort();
        h.update((sorted.len() as u64).to_be_bytes());
        for p in sorted {
            h.update([p.as_char() as u8]);
        }
        ExecutionId(h.finalize().into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From raw bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        ExecutionId(b)
    }
}

impl From<ExecutionId> for String {
    fn from(e: ExecutionId) -> String {
        hex::encode(e.0)
    }
}

impl TryFrom<String> for ExecutionId {
    type Error = InputError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(&s, &mut b).map_err(|_| InputError::Stored {
            what: "execution id",
            reason: "not 64 hex digits".into(),
        })?;
        Ok(ExecutionId(b))
    }
}

impl fmt::Debug for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hex::encode(&self.0[..8]))
    }
}

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// One protocol message with its routing and binding data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`ENVELOPE_VERSION`].
    pub version: u8,
    /// The run this message belongs to.
    pub execution_id: ExecutionId,
    /// The protocol of the run.
    pub protocol: ProtocolKind,
    /// Protocol round of the payload.
    pub round: u16,
    /// Who sent it (set by the transport from the authenticated peer).
    pub sender: PartyId,
    /// `None` for a broadcast to every participant, else the single receiver.
    pub receiver: Option<PartyId>,
    /// The protocol message (CBOR).
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

impl Envelope {
    /// Encodes for the wire (CBOR).
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::to_cbor(self)
    }

    /// Decodes a wire envelope, refusing unknown versions and oversized input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, codec::DecodeError> {
        let env: Envelope = codec::from_cbor(bytes, codec::MAX_ENVELOPE_BYTES)?;
        if env.version != ENVELOPE_VERSION {
            return Err(codec::DecodeError(format!(
                "envelope version {} is not supported (this build speaks {ENVELOPE_VERSION})",
                env.version
            )));
        }
        Ok(env)
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("execution_id", &self.execution_id)
            .field("protocol", &self.protocol)
            .field("round", &self.round)
            .field("sender", &self.sender)
            .field("receiver", &self.receiver)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_round_trip_and_are_distinct() {
        for k in ProtocolKind::ALL {
            assert_eq!(ProtocolKind::from_name(k.name()), Some(k));
        }
        let names: std::collections::HashSet<_> =
            ProtocolKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ProtocolKind::ALL.len());
        assert_eq!(ProtocolKind::from_name("ECDSA_SIGN"), None);
        assert_eq!(ProtocolKind::from_name(""), None);
    }
}
