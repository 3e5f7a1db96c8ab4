//! `mpc-node`: one share-holder of the MPC co-signer (SPEC §4).
//!
//! This build runs the node's local side: it reads `config.toml` ([`config`]), sets up logging
//! ([`logging`]), opens the sealed key store (`mpc-keystore`) and serves the local `/sys` API
//! ([`sys`]) that initialises, unseals and re-keys it ([`node`]). Once the store is unsealed
//! the node joins the network ([`join`]): one connection to the platform's proxy ([`net`]) over
//! which it receives tasks and runs them ([`tasks`]: callback approval, then the threshold
//! protocol with sealed envelopes). The local API works whether the platform is reachable or
//! not.
//!
//! The binary (`src/main.rs`) is a thin shell over [`cli`]: `start` calls [`run`]; the other
//! commands are clients of a running node's API ([`client`]) or work offline (`passwords`,
//! `verify-backup`, `check`).
//!
//! Secrets (passwords, shares, the identity key) are held in zeroizing buffers, never logged and
//! never echoed in error replies.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod body;
pub mod cli;
pub mod client;
pub mod config;
pub mod identity;
pub mod join;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod node;
pub mod platform_key;
pub mod primes;
pub mod replay;
pub mod store;
pub mod sys;
pub mod tasks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use config::{Config, ConfigError};

/// Environment variable that switches new passwords to [`mpc_keystore::KdfParams::insecure_for_tests`]
/// (8 KiB Argon2id) so integration tests run fast. Only the exact value
/// [`INSECURE_KDF_VALUE`] enables it, and the node then logs a loud warning; any other non-empty
/// value is refused at start. Never set it in production: a store initialised with it can be
/// brute-forced cheaply (the parameters are stored in the file and used from there).
pub const INSECURE_KDF_ENV: &str = "MPC_NODE_INSECURE_FAST_KDF";
/// The one value of [`INSECURE_KDF_ENV`] that enables it.
pub const INSECURE_KDF_VALUE: &str = "i-know-this-is-insecure";

/// Environment variable naming a JSON file of published Paillier prime sets (the format of
/// `crates/tss/tests/fixtures/test-primes.json`) that the node loads into its prime pool at
/// unseal, so integration tests need not generate primes (minutes of CPU). The node logs a loud
/// warning and does not start the prime filler. Never set it in production: the primes are
/// public, so Paillier keys made from them protect nothing.
pub const INSECURE_TEST_PRIMES_ENV: &str = "MPC_NODE_INSECURE_TEST_PRIMES";

/// Whether this build accepts the test-only switches [`INSECURE_KDF_ENV`] and
/// [`INSECURE_TEST_PRIMES_ENV`] (cargo feature `insecure-test-switches`; off in a release build
/// of `mpc-node`, on for the tests and the devnet).
pub const INSECURE_SWITCHES_BUILT: bool = cfg!(feature = "insecure-test-switches");

/// Refuses the test-only switch `var` set to `value` unless `built` (see
/// [`INSECURE_SWITCHES_BUILT`]).
pub fn check_insecure_switch(
    var: &'static str,
    value: Option<&std::ffi::OsStr>,
    built: bool,
) -> Result<(), Error> {
    match value {
        Some(v) if !v.is_empty() && !built => Err(Error::InsecureSwitchRefused(var)),
        _ => Ok(()),
    }
}

/// Reads [`INSECURE_TEST_PRIMES_ENV`]: the file, if set and non-empty. A build without the
/// `insecure-test-switches` feature refuses it.
pub fn insecure_test_primes_from_env() -> Result<Option<std::path::PathBuf>, Error> {
    let value = std::env::var_os(INSECURE_TEST_PRIMES_ENV);
    check_insecure_switch(
        INSECURE_TEST_PRIMES_ENV,
        value.as_deref(),
        INSECURE_SWITCHES_BUILT,
    )?;
    Ok(std::env::var_os(INSECURE_TEST_PRIMES_ENV)
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from))
}

/// How long [`run`] waits, after the API and the network stopped, for stopped protocol runs to
/// release the key store.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Errors of the node library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Logging could not be set up.
    #[error(transparent)]
    Log(#[from] logging::LogError),
    /// The key store could not be opened.
    #[error("cannot open the key store {path}: {reason}")]
    Store {
        /// `[storage] db-file-path`.
        path: String,
        /// What the key store reported (in the message, not a `source`, so it prints once).
        reason: mpc_keystore::Error,
    },
    /// Serving the local API failed.
    #[error("local API: {0}")]
    Serve(std::io::Error),
    /// The audit log (`[audit]`) could not be opened.
    #[error("[audit]: {0}")]
    Audit(#[from] mpc_audit::AuditError),
    /// The metrics listener (`[metrics] address`) could not be opened.
    #[error("[metrics] address: cannot listen on {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A test-only switch is set, but this build does not accept them.
    #[error(
        "{0} is set, but this mpc-node is a production build and refuses test-only switches (they make keys unsafe); unset {0}"
    )]
    InsecureSwitchRefused(&'static str),
    /// [`INSECURE_KDF_ENV`] has a value other than [`INSECURE_KDF_VALUE`].
    #[error("{INSECURE_KDF_ENV} is set to an unrecognised value; unset it (it is for tests only)")]
    InsecureKdfValue,
}

/// Reads [`INSECURE_KDF_ENV`]: `Ok(true)` only for the exact value [`INSECURE_KDF_VALUE`].
/// A build without the `insecure-test-switches` feature refuses it.
pub fn insecure_kdf_from_env() -> Result<bool, Error> {
    let value = std::env::var_os(INSECURE_KDF_ENV);
    check_insecure_switch(INSECURE_KDF_ENV, value.as_deref(), INSECURE_SWITCHES_BUILT)?;
    match std::env::var_os(INSECURE_KDF_ENV) {
        None => Ok(false),
        Some(v) if v.is_empty() => Ok(false),
        Some(v) if v == INSECURE_KDF_VALUE => Ok(true),
        Some(_) => Err(Error::InsecureKdfValue),
    }
}

/// Runs the node on `listener` until `shutdown` completes (the binary passes SIGINT/SIGTERM).
/// Opens the key store first: a damaged or foreign file is refused here with its reason, and
/// nothing on disk is changed.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    run_with(config, listener, shutdown, |_| {}).await
}

/// [`run`], calling `on_ready` with the listening address once the key store is open and the
/// API is about to serve (the binary prints it).
pub async fn run_with(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), Error> {
    if config.insecure_fast_kdf {
        tracing::warn!(
            "INSECURE: {INSECURE_KDF_ENV} is set; new passwords use test-only Argon2id parameters (8 KiB, 1 pass). Never use this node for real keys."
        );
    }
    let settings = node::StoreSettings::from_config(&config)?;
    let metrics_addr = config.metrics_addr()?;
    let db = settings.path.display().to_string();
    let mut node = node::Node::open(settings)
        .await
        .map_err(|reason| Error::Store {
            path: db.clone(),
            reason,
        })?;
    if let Some(path) = config.audit_path() {
        node.set_audit(audit::NodeAudit::open(&path)?);
    } else {
        tracing::warn!("[audit] enable = false: no audit log is kept");
    }
    let st = node.status();
    let addr = listener.local_addr().map_err(Error::Serve)?;
    tracing::info!(
        name = %config.app.name,
        party_id = %config.app.party_id,
        db = %db,
        engine = %config.storage.engine,
        t = config.storage.t,
        n = config.storage.n,
        state = ?st.state,
        %addr,
        "mpc-node started; local API listening"
    );
    on_ready(addr);
    let node = Arc::new(node);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let net = tokio::spawn(join::join_after_unseal(
        node.clone(),
        config.clone(),
        stop_rx.clone(),
    ));
    let app = sys::router(node.clone());
    if let Some(addr) = metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Metrics { addr, source })?;
        tracing::info!(%addr, "metrics listening (GET /metrics)");
        let mut stop = stop_rx.clone();
        let router = metrics::router(node.clone());
        tokio::spawn(async move {
            let r = mpc_httpd::serve(listener, router, sys::limits(), async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
            if let Err(e) = r {
                tracing::error!("metrics listener: {e}");
            }
        });
    }
    let mut stop_api = stop_rx;
    tokio::spawn(async move {
        shutdown.await;
        stop_tx.send_replace(true);
    });
    let served = mpc_httpd::serve(listener, app, sys::limits(), async move {
        let _ = stop_api.wait_for(|s| *s).await;
    })
    .await;
    match net.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("network runtime failed: {e}"),
        Err(_) => tracing::error!("network runtime task failed"),
    }
    // Runs that were stopped still hold the store for a moment; the store file is closed only
    // when the last of them ends, so a restart in the same process can reopen it.
    let until = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while Arc::strong_count(&node) > 1 && tokio::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if Arc::strong_count(&node) > 1 {
        tracing::warn!("protocol runs still hold the key store after the shutdown grace period");
    }
    // The rollback witness up to date with the last commit, and the audit log's last
    // entries made durable and the file let go (a restart in this process opens it again).
    node.flush_witness().await;
    node.audit().close();
    served.map_err(Error::Serve)?;
    tracing::info!("mpc-node stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A production build (feature off) refuses both switches by name; unset or empty is fine.
    #[test]
    fn production_build_refuses_test_switches() {
        for var in [INSECURE_KDF_ENV, INSECURE_TEST_PRIMES_ENV] {
            let set = std::ffi::OsStr::new("i-know-this-is-insecure");
            let e = check_insecure_switch(var, Some(set), false).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains(var) && msg.contains("production build"),
                "{msg}"
            );
            assert!(check_insecure_switch(var, None, false).is_ok());
            assert!(check_insecure_switch(var, Some(std::ffi::OsStr::new("")), false).is_ok());
            assert!(check_insecure_switch(var, Some(set), true).is_ok());
        }
    }

    // The tests are built with the feature (dev-dependency on this crate).
    const _: () = assert!(INSECURE_SWITCHES_BUILT);
}
