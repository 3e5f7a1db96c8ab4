//! # mpc-tss: the threshold-signature core
//!
//! Pure protocol code, no sockets, no clocks, no storage. Every protocol run is a
//! [`Session`]: envelopes in, envelopes out, an output at the end. The node wires sessions to
//! the network and the sealed store; the [`sim`] harness wires them to each other in memory.
//!
//! ## Layout
//! * [`party`]: party ids (`a`, `b`, `c`) and committees (sorted, so every node agrees on
//!   protocol indices).
//! * [`path`]: non-hardened derivation paths (`m/1/1/60/0`).
//! * [`envelope`]: the message unit (execution id, protocol, round, sender, receiver,
//!   payload) and execution-id derivation.
//! * [`session`]: the sans-IO run that checks envelopes and drives the libraries' round-based
//!   state machines.
//! * [`ecdsa`]: CGGMP24 secp256k1 key generation, aux info (and regeneration), full signing,
//!   presignatures and one-round online signing.
//! * [`dkls`]: DKLs23 secp256k1 key generation, three-round signing, refresh and repair; its
//!   share converts into the one BIP340/Taproot signing takes.
//! * [`scheme`]: [`EcdsaProtocol`], which of the two a key uses.
//! * [`frost`]: givre ed25519 key generation and signing; BIP340 and Taproot signing with the
//!   secp256k1 share; [`bip340`] is the untweaked BIP340 ciphersuite.
//! * [`primes`]: the background safe-prime pool for aux info.
//! * [`codec`]: CBOR on the wire, versioned JSON for stored objects.
//! * [`error`]: "a peer misbehaved" ([`SessionError::Misbehaved`], [`SessionError::Aborted`])
//!   versus "we failed" ([`SessionError::Local`]) versus bad requests ([`InputError`]).
//!
//! ## Data flow of a signature
//! The coordinator picks an execution id and the signers; each signer's node builds a
//! [`Session`] (e.g. [`ecdsa::sign`]) from its stored share, calls [`Session::start`], sends
//! the envelopes it gets, feeds every envelope it receives to [`Session::handle`], and stops at
//! the first `output` or error. Errors name the culprit where the protocol can tell.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod bip340;
pub mod codec;
pub mod derive;
pub mod dkls;
pub mod ecdsa;
pub mod envelope;
pub mod error;
pub mod frost;
pub mod party;
pub mod path;
pub mod primes;
pub mod scheme;
pub mod session;
mod share;
pub mod sim;

pub use envelope::{Envelope, ExecutionId, ProtocolKind};
pub use error::{InputError, Misbehaviour, SessionError};
pub use party::{Committee, PartyId};
pub use path::DerivationPath;
pub use scheme::EcdsaProtocol;
pub use session::{Session, Step, Traffic};

/// Security level of the Paillier moduli (3072-bit N, 128-bit security).
pub(crate) type SecurityLevel = cggmp24::security_level::SecurityLevel128;

/// A fresh ChaCha20 RNG seeded from the OS for one protocol run.
pub(crate) fn run_rng() -> rand_chacha::ChaCha20Rng {
    use rand_core::{OsRng, RngCore, SeedableRng};
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    rand_chacha::ChaCha20Rng::from_seed(seed)
}
