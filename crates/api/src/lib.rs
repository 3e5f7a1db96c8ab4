//! The coordinator API as a pure library, shared by the coordinator and its clients (devnet,
//! tests, tools): no sockets, no HTTP server, no clock reads (callers pass `now_ms`).
//!
//! * [`auth`]: BIZ-API request authentication as the public Go SDK signs requests (SPEC §7):
//!   [`auth::sign_request`] for clients, [`auth::verify_request`] for the coordinator (key
//!   lookup, nonce window, signature over the raw body, replay protection through a
//!   [`auth::NonceStore`]), and the SDK's private-key string format.
//! * [`envelope`]: the `{code, msg, success, requestId, data}` response envelope and its codes.
//! * [`types`]: request and response DTOs of the WaaS MPC endpoints and of the admin
//!   (console) API, with [`types::Validate`].
//!
//! ```
//! use mpc_api::auth::{self, ApiUser, InMemoryNonceStore};
//! use mpc_api::envelope::Envelope;
//! use mpc_api::types::{self, SignResultRequest, Validate};
//! use mpc_wire::signature::EcdsaSigner;
//! use p256::ecdsa::SigningKey;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = EcdsaSigner::new(&SigningKey::from_slice(&[7; 32])?);
//! let user = ApiUser {
//!     organization_id: "org-1".into(),
//!     user_id: "user-1".into(),
//!     verifying_key: *key.verifying_key(),
//! };
//!
//! // Client: serialize the body once, sign exactly those bytes.
//! let body = serde_json::to_vec(&SignResultRequest {
//!     request_id: Some("r-1".into()),
//!     sino_id: None,
//!     wait_ms: None,
//! })?;
//! let headers = auth::sign_request(&key, types::PATH_SIGN_RESULT, &body, 1_700_000_000_000);
//!
//! // Coordinator: authenticate, parse, validate, answer.
//! let nonces = InMemoryNonceStore::new();
//! let caller = auth::verify_request(
//!     headers.values(), types::PATH_SIGN_RESULT, &body, 1_700_000_000_100, &nonces,
//!     |k| (k == headers.api_key).then(|| user.clone()),
//! )?;
//! assert_eq!(caller.organization_id(), "org-1");
//! let request: SignResultRequest = serde_json::from_slice(&body)?;
//! request.validate()?;
//! let reply = Envelope::ok("req-42", ());
//! assert!(reply.success);
//!
//! // The same request again is a replay.
//! assert!(auth::verify_request(
//!     headers.values(), types::PATH_SIGN_RESULT, &body, 1_700_000_000_200, &nonces,
//!     |_| Some(user.clone()),
//! ).is_err());
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

/// Largest request body the API accepts (checked before authentication).
pub const MAX_BODY_BYTES: usize = mpc_wire::callback::API_MAX_BODY;

pub mod auth;
pub mod envelope;
pub mod types;

pub use p256;
