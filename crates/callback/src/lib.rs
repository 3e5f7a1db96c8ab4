//! The node side of the callback protocol (product guide §4, `docs/callback.md`).
//!
//! Before every key generation and every signature the node asks each configured
//! `[[callback.server]]` whether it may go ahead. [`CallbackClient::check`] sends the signed
//! `/check` request to every server and returns an [`ApprovedRequest`] only when all of them
//! answered APPROVE with a response that verifies under that server's key and echoes the
//! request's ids. The protocol code needs that value to sign: it holds the exact request that
//! was approved, cannot be built or deserialized outside this crate, and
//! [`ApprovedRequest::authorizes_sign`] / [`ApprovedRequest::authorizes_keygen`] refuse any
//! parameter that differs from what the servers saw.
//!
//! After a successful signature of sign_type 2 or 3, [`CallbackClient::report_rawdata_signature`]
//! posts the message and the signature (ECIES-encrypted when `[encrypt-signature]` is on) to
//! `/rawdata_signature`.
//!
//! # Retry semantics
//!
//! Servers are asked one after the other, in configuration order; a REJECT stops at once
//! (later servers are not asked). For each server the client makes at most
//! `1 + retry_times` attempts (`retry-times` counts retries after the first attempt). An
//! attempt is used up by:
//!
//! * a transport error, a timeout, a non-200 HTTP status, a body that is not a callback
//!   response, a response with `status` other than "0" or without `data`: the client sleeps
//!   `sleep` (`sleep-seconds`) and tries again;
//! * a verified WAIT: the client sleeps `wait_time` seconds (or `sleep` when the server gave
//!   none), capped at `max_wait`, and asks again with the same `callback_id`.
//!
//! When the attempts are used up the request fails with [`CallbackError::Exhausted`].
//! A response whose signature does not verify, that answers another request (callback_id,
//! sino_id or request_id not echoed), or whose action or wait_time cannot be read is a
//! **rejection** ([`CallbackError::Rejected`] with [`Rejection::Unverified`]): it is not
//! retried, because a server that signs wrongly or an attacker in between will not get
//! better by asking again, and it is never an approval.
//!
//! With no server configured, [`CallbackClient::check`] approves at once and the approval says
//! so ([`ApprovedRequest::without_callback`]), as the guide specifies.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod approved;
mod client;
mod request;

pub use approved::{
    ApprovedRequest, KeyRefreshParams, KeyRepairParams, KeygenParams, Mismatch, SignParams,
};
pub use client::{
    CallbackClient, CallbackConfig, CallbackError, DEFAULT_MAX_WAIT, EncryptConfig,
    MAX_RESPONSE_BYTES, Rejection, ServerConfig,
};
pub use request::{
    Cryptography, KeyRefreshRequest, KeyRepairRequest, KeygenRequest, Request, SignAlgorithm,
    SignRequest,
};

pub use mpc_wire;
