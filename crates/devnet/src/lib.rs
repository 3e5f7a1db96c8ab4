//! `mpc-devnet`: a whole MPC network on loopback (platform + nodes `a`, `b`, `c` + the callback
//! demo guarding node `a`), started from one binary, and the harness of the end-to-end tests.
//!
//! * [`multicall`]: `mpc-devnet node …`, `mpc-devnet callback-demo …`, `mpc-devnet platform …`
//!   run the components' own command lines, so one `cargo build` gives every process.
//! * [`pki`], [`keys`]: the dev CA and server certificate (rcgen, ring), the admin and API-user
//!   keys (hex PKCS#8 DER, as the public Go SDK loads them) and the callback server's PEM keys.
//! * [`layout`], [`state`], [`render`]: the files in `--dir`, `devnet.json` (ports and ids kept
//!   for the next start) and the config files written as a user would write them;
//!   [`configs`]: those files are written only when missing and kept, checked, never
//!   overwritten afterwards (`--reset-config` rewrites them).
//! * [`process`]: child processes with log files, stopped (SIGTERM, then SIGKILL) on drop;
//!   [`docker`]: with `--docker TAG` each of them is a container of the component's image.
//! * [`api`]: a BIZ-API client of the coordinator (WaaS and admin calls).
//! * [`verify`]: independent signature and HD-derivation checks (k256, ed25519-dalek, bip32).
//! * [`cluster`]: [`cluster::Cluster`], start / stop / kill / restart of the processes.
//! * [`scenario`]: what `mpc-devnet` does after start: keys, wallet, addresses, every signature
//!   kind, verification, [`report::Report`].
//!
//! Everything listens on 127.0.0.1 only.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod api;
pub mod cluster;
pub mod configs;
pub mod docker;
pub mod fsutil;
pub mod keys;
pub mod layout;
pub mod multicall;
pub mod netns;
pub mod pki;
pub mod process;
pub mod progress;
pub mod render;
pub mod report;
pub mod scenario;
pub mod state;
pub mod verify;

pub use cluster::{Cluster, Options};

/// The Paillier test primes of `crates/tss` (published, so NOT secret): with `--test-primes` the
/// nodes preload them instead of generating fresh ones (minutes on a small machine).
pub const TEST_PRIMES_JSON: &str = include_str!("../../tss/tests/fixtures/test-primes.json");

/// Environment variable the node reads for [`TEST_PRIMES_JSON`] (docs/platform.md).
pub const TEST_PRIMES_ENV: &str = "MPC_NODE_INSECURE_TEST_PRIMES";
