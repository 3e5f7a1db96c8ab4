//! # mpc-recover: offline key recovery for the day the platform is gone
//!
//! From the backups (`asset.db` copies made by `mpc-node backup`) of at least `t` nodes and
//! their passwords (or password shares), this crate rebuilds each root private key the nodes
//! share (secp256k1: DKLs23 or CGGMP24; ed25519: FROST), checks it against the public key
//! stored with the shares, derives the child private keys of given paths exactly as the nodes
//! derive the keys they sign with (non-hardened BIP32 on secp256k1, `hd_wallet::Edwards` on
//! ed25519), and formats them (hex, WIF, Ethereum V3 keystore).
//!
//! Holding a whole key removes every protection of the threshold setup: see [`WARNING`].
//!
//! ## Layout
//! * [`backup`]: opens each backup read-only (a private copy is unsealed with the key store's
//!   own API, the backup itself is never opened for writing) and reads the node's key records;
//!   [`record`] is the read side of the node's key-record format.
//! * [`rebuild`]: groups the shares by key, refuses fewer than `t` distinct parties and shares
//!   of different keys, interpolates the secret with key-share's `reconstruct_secret_key` and
//!   checks it against the public key.
//! * [`derive`]: child private keys, checked against `mpc_tss::derive`'s public derivation.
//! * [`output`]: hex, WIF, addresses, the Ethereum keystore file.
//! * [`cli`]: the `mpc-recover` command line.
//!
//! No networking crate is linked (checked by `tests/deps.rs`); secrets are zeroized and never
//! logged or printed through `Debug`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod backup;
pub mod cli;
pub mod derive;
mod error;
pub mod output;
pub mod rebuild;
pub mod record;

pub use error::RecoverError;

/// What the operator reads on stderr before any key is printed or written.
pub const WARNING: &str = "\
WARNING: mpc-recover rebuilds WHOLE private keys.
  Holding a whole key removes every protection of the threshold setup: no second node, no
  callback approval, no policy and no audit stands between this key and the funds any more.
  Anyone who sees or copies this output can move the funds, now and later.
  Do this only on an offline machine, keep the output off screens, logs and networks, and
  move the funds to a fresh key as soon as you can; then treat this key as burned.";
