//! DKLs23 protocol messages as they travel in [`Envelope`](crate::Envelope) payloads.
//!
//! A payload is the CBOR encoding of [`Wire`]: a format version, the round, and one [`Body`]
//! that holds the library's own message structs (serde, k256 0.14 scalars and points as CBOR
//! byte strings). The version is checked before anything else; a change of any library struct's
//! layout shows up in the snapshot tests (`tests/it/dkls.rs`) and bumps [`WIRE_VERSION`].
//!
//! Rounds per protocol (p2p messages are end-to-end encrypted by the transport):
//!
//! | protocol | round | broadcast | p2p |
//! |---|---|---|---|
//! | keygen, refresh | 0 | – | `Fragment` (the sender's polynomial at the receiver) |
//! | | 1 | `Commit` (proof commitment; keygen: chain-code commitment) | `ZeroCommit` |
//! | | 2 | `Reveal` (DLog proof; keygen: chain-code contribution) | `Init` (zero-share seed, OT setup) |
//! | | 3 | `Echo` (hash of every broadcast seen) | – |
//! | repair | 0 | – | `Term` (helper → lost party only) |
//! | | 1–4 | as refresh rounds 0–3 | |
//! | sign | 0 | – | `Sign1` |
//! | | 1 | – | `Sign2` |
//! | | 2 | `Sign3` | – |

use dkls23::protocols::dkg::{
    BroadcastDerivationPhase2to4, BroadcastDerivationPhase3to4, ProofCommitment,
    TransmitInitMulPhase3to4, TransmitInitZeroSharePhase2to4, TransmitInitZeroSharePhase3to4,
};
use dkls23::protocols::repair::RepairTerm;
use dkls23::protocols::signing::{Broadcast3to4, TransmitPhase1to2, TransmitPhase2to3};
use dkls23::utilities::hashes::HashOutput;
use serde::{Deserialize, Serialize};

use super::{Curve, Package};

/// Version of [`Wire`].
pub const WIRE_VERSION: u8 = 1;

/// One DKLs23 protocol message with its format version and round.
#[derive(Serialize, Deserialize)]
pub struct Wire {
    /// [`WIRE_VERSION`]
    pub v: u8,
    /// the round, equal to the envelope's
    pub round: u16,
    /// the message
    pub body: Body,
}

/// The message kinds of every DKLs23 protocol run here.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum Body {
    /// DKG / refresh round 0 (p2p): the sender's secret polynomial evaluated at the receiver.
    Fragment(k256_dkls::Scalar),
    /// DKG / refresh round 1 (broadcast): commitment to the sender's DLog proof and, at key
    /// generation, to its chain-code contribution.
    Commit {
        /// the sender's index (1-based) in the library's numbering
        index: u8,
        /// commitment to the DLog proof of the sender's public polynomial point
        proof_commitment: HashOutput,
        /// key generation only: commitment to the sender's chain-code contribution
        chain_code: Option<BroadcastDerivationPhase2to4>,
    },
    /// DKG / refresh round 1 (p2p): commitment to the pairwise zero-share seed.
    ZeroCommit(TransmitInitZeroSharePhase2to4),
    /// DKG / refresh round 2 (broadcast): the DLog proof and, at key generation, the chain-code
    /// contribution, opening the round-1 commitments.
    Reveal {
        /// proof with its commitment
        proof: ProofCommitment<Curve>,
        /// key generation only: the chain-code contribution and its salt
        chain_code: Option<BroadcastDerivationPhase3to4>,
    },
    /// DKG / refresh round 2 (p2p): the zero-share seed and the OT (multiplication) setup.
    Init {
        /// opens the round-1 `ZeroCommit`
        zero: TransmitInitZeroSharePhase3to4,
        /// base OT and multiplication initialisation for this pair
        mul: TransmitInitMulPhase3to4<Curve>,
    },
    /// Last round of DKG, refresh and repair (broadcast): SHA-256 of every broadcast of the run
    /// as this party received it, so parties that were shown different broadcasts stop.
    Echo(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Repair round 0 (helper → lost party, p2p): the helper's masked term and its view of the
    /// key's public data.
    Term {
        /// the library's repair term
        term: RepairTerm<Curve>,
        /// the key's public package (public key, every party's verifying share, threshold)
        package: Package,
    },
    /// Signing round 0 (p2p).
    Sign1(TransmitPhase1to2),
    /// Signing round 1 (p2p).
    Sign2(TransmitPhase2to3<Curve>),
    /// Signing round 2 (broadcast).
    Sign3(Broadcast3to4<Curve>),
}

impl Body {
    /// Short name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Body::Fragment(_) => "fragment",
            Body::Commit { .. } => "commit",
            Body::ZeroCommit(_) => "zero_commit",
            Body::Reveal { .. } => "reveal",
            Body::Init { .. } => "init",
            Body::Echo(_) => "echo",
            Body::Term { .. } => "term",
            Body::Sign1(_) => "sign1",
            Body::Sign2(_) => "sign2",
            Body::Sign3(_) => "sign3",
        }
    }

    /// The sender and receiver (library indices, 1-based) the message names inside, where it
    /// names them; the driver compares them with the authenticated envelope.
    pub fn claimed(&self) -> (Option<u8>, Option<u8>) {
        let pm = |p: &dkls23::protocols::PartiesMessage| {
            (Some(p.sender.as_u8()), Some(p.receiver.as_u8()))
        };
        match self {
            Body::Fragment(_) | Body::Echo(_) | Body::Sign3(_) => (None, None),
            Body::Commit {
                index, chain_code, ..
            } => match chain_code {
                Some(c) if c.sender_index.as_u8() != *index => (Some(0), None),
                _ => (Some(*index), None),
            },
            Body::ZeroCommit(m) => pm(&m.parties),
            Body::Reveal { proof, chain_code } => match chain_code {
                Some(c) if c.sender_index != proof.index => (Some(0), None),
                _ => (Some(proof.index.as_u8()), None),
            },
            Body::Init { zero, mul } => {
                if zero.parties.sender != mul.parties.sender
                    || zero.parties.receiver != mul.parties.receiver
                {
                    (Some(0), Some(0))
                } else {
                    pm(&zero.parties)
                }
            }
            Body::Term { term, .. } => (Some(term.helper.as_u8()), Some(term.target.as_u8())),
            Body::Sign1(m) => pm(&m.parties),
            Body::Sign2(m) => pm(&m.parties),
        }
    }
}
