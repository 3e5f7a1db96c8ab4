//! Wire formats shared by the MPC node, the platform and the callback demo.
//!
//! This crate is pure data handling: no sockets, no HTTP, no async runtime. Callers hand it
//! bytes they received and get typed values back (or a typed error: untrusted input never
//! panics), and hand it typed values to get the exact bytes to send.
//!
//! How data flows through it:
//!
//! * **Callback requests** (node → policy server). The node builds a [`callback::Check`],
//!   serializes it with [`callback::Check::to_go_json`] (byte-identical to Go's
//!   `json.Marshal` of the reference structs, see [`gojson`]), and signs exactly those bytes
//!   with [`signature::sign_check`]. The policy server checks and parses a received body with
//!   [`signature::verify_check_request`].
//! * **Callback responses** (policy server → node). The server answers with a
//!   [`callback::Response`] signed over the Go form of its `data`
//!   ([`signature::sign_response`]); the node parses it with
//!   [`callback::Response::from_json`] and turns it into a [`callback::Decision`] with
//!   [`signature::verify_response`], which also insists that the response echoes the
//!   request's ids. Any error there means "not approved".
//! * **Signature results** (node → user) are encrypted, when configured, with [`ecies`]
//!   (go-ethereum's ECIES on P-256, hex transport).
//! * **Identities**: P-256 keys are read from `openssl` PEM files and turned into node ids
//!   and API keys by [`keys`].
//!
//! ```
//! use mpc_wire::callback::{Action, Check, Decision, ExtraInfo, Response, ResponseData};
//! use mpc_wire::p256::ecdsa::SigningKey;
//! use mpc_wire::signature::{self, EcdsaSigner};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Keys that sign many messages are held prepared.
//! let node_key = EcdsaSigner::new(&SigningKey::from_slice(&[1; 32])?);
//! let server_key = EcdsaSigner::new(&SigningKey::from_slice(&[2; 32])?);
//!
//! // Node: build, serialize and sign the request.
//! let check = Check::keygen("cb-1", 2, 3, "ecdsa-secp256k1",
//!     vec!["a".into(), "b".into(), "c".into()],
//!     ExtraInfo { sino_id: "s-1".into(), request_id: String::new() });
//! let request = signature::sign_check(&check, &node_key);
//! assert_eq!(
//!     request.body,
//!     br#"{"callback_id":"cb-1","request_type":"keygen","request_detail":{"t":2,"n":3,"cryptography":"ecdsa-secp256k1","party_ids":["a","b","c"]},"extra_info":{"sino_id":"s-1"}}"#
//! );
//!
//! // Policy server: check the signature header, decide, sign the answer.
//! let received = signature::verify_check_request(
//!     &request.body, &request.signature, node_key.verifying_key())?;
//! let answer = signature::sign_response(
//!     ResponseData::for_request(&received, Action::Approve), "", &server_key);
//! let body = answer.to_go_json();
//!
//! // Node: verify the answer against its own request.
//! let response = Response::from_json(&body)?;
//! let decision = signature::verify_response(&response, &check, server_key.verifying_key())?;
//! assert_eq!(decision, Decision::Approve);
//! # Ok(())
//! # }
//! ```
//!
//! # Compatibility notes
//!
//! * Serialization matches go1.19 `encoding/json` (the version of the reference vectors):
//!   `\b` and `\f` are written as `\u0008` / `\u000c` (Go 1.22+ would write `\b` / `\f`).
//! * A `tx_info` raw message is treated exactly as Go treats a `json.RawMessage`: compacted and
//!   HTML-escaped, but escape sequences already present (`\u00e9`, `\/`) and even invalid
//!   UTF-8 inside its strings are kept as they are, not re-escaped.
//! * Parsing is stricter than Go's decoder in three ways, all refusals rather than different
//!   readings: keys must match exactly (Go also matches other letter cases), a repeated key is
//!   an error (Go keeps the last), and input must be valid UTF-8 (Go substitutes U+FFFD).
//!   `null` leaves a field at its zero value, as in Go, and unknown fields are ignored.
//! * Response verification accepts high-S ECDSA signatures (Go's signer does not normalize),
//!   matches `action` case-insensitively, and requires the echoed callback_id, sino_id and
//!   request_id to equal the request's.
//!
//! Key material that passes through the crate (ECIES intermediate keys, decrypted
//! plaintexts, PEM copies) is zeroized when dropped; long-lived keys are the RustCrypto types,
//! which zeroize themselves.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod callback;
pub mod ecies;
pub mod gojson;
pub mod keys;
pub mod scheme;
pub mod signature;

pub use p256;
