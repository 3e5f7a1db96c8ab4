//! Sans-IO transport between MPC nodes, following `docs/transport.md`.
//!
//! Nothing here opens a socket, spawns a task or reads a clock: callers hand in bytes and
//! keys and get typed values (or typed errors) back. Untrusted input never panics.
//!
//! * [`frame`]: the versioned, size-limited CBOR [`frame::Frame`] every WebSocket message
//!   carries (`Challenge`, `Hello`, `Task`, `TaskResult`, `Protocol`, `Abort`, `Ping`, `Pong`).
//! * [`auth`]: the proxy's challenge/response. The node signs the proxy's nonce together with
//!   32 bytes of TLS exporter keying material, so the answer is bound to one TLS session.
//! * [`keys`]: the node's long-lived X25519 transport key and its [`keys::TransportCert`],
//!   signed by the node's P-256 identity key.
//! * [`task`]: typed [`task::Task`] / [`task::TaskResult`] carried in `Task` / `TaskResult` frames.
//! * [`signed`]: the signatures around them: tasks signed by the coordinator's task-signing
//!   key (pinned by the nodes), results signed by the answering node's identity key, so the
//!   proxy and the bus can relay them but never forge or alter them.
//! * [`seal`]: protocol envelopes as they cross the untrusted proxy. Every envelope is signed
//!   by its sender's identity key over its header and payload; point-to-point envelopes are
//!   additionally encrypted to the receiver's transport key with HPKE (RFC 9180).
//!
//! Errors separate input a peer sent that is invalid (they name the peer, or the peer the input
//! claims to come from) from local failures.
//!
//! The envelope header mirrors `mpc_tss::Envelope` field by field ([`seal::EnvelopeHeader`]);
//! this crate does not depend on `mpc-tss` so that it builds without the threshold-protocol
//! stack. Converting between the two is left to the node.
//!
//! ```
//! use mpc_transport::keys::{verify_cert, TransportSecret};
//! use mpc_transport::p256::ecdsa::SigningKey;
//! use mpc_transport::seal::{open, seal, Envelope, EnvelopeHeader};
//! use mpc_wire::keys::node_id;
//! use mpc_wire::signature::EcdsaSigner;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = rand_core::OsRng;
//! let alice = EcdsaSigner::new(&SigningKey::random(&mut rng));
//! let bob = EcdsaSigner::new(&SigningKey::random(&mut rng));
//! let bob_transport = TransportSecret::generate(&mut rng);
//!
//! // Alice checks Bob's certificate against the node id bound to party "b".
//! let bob_key = verify_cert(&bob_transport.certify(&bob), &node_id(bob.verifying_key()))?;
//! let env = Envelope {
//!     header: EnvelopeHeader {
//!         version: 1, execution_id: [7; 32], protocol: "ecdsa_sign".into(), round: 1,
//!         sender: "a".into(), receiver: Some("b".into()), seq: 0,
//!     },
//!     payload: b"share".to_vec(),
//! };
//! let sealed = seal(&alice, Some(&bob_key), &env, &mut rng)?;
//! // Bob looks up the identity key of the sender the header names.
//! assert_eq!(open(&sealed, &bob_transport, alice.verifying_key(), "b")?, env);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
mod cbor;
pub mod frame;
pub mod keys;
pub mod seal;
pub mod signed;
pub mod task;

pub use mpc_wire::p256;
