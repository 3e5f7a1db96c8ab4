//! The platform's coordinator (SPEC.md §7, `docs/platform.md`): the WaaS MPC and admin HTTP API
//! (an axum [`Router`](axum::Router)), key generation and signing orchestration over the
//! [`mpc_bus::Bus`], a console page, and the persistent state behind a [`store::Store`] (SQLite
//! embedded, or PostgreSQL).
//!
//! * [`Coordinator::open`] opens the store (fails runs a previous process left running: their
//!   tasks died with it), registers metrics, and returns the shared coordinator.
//! * [`Coordinator::router`] serves the HTTP API (see the `http` module docs for the routes).
//! * [`Coordinator::run`] consumes the proxy's events (nodes online/offline, task results)
//!   and drives the timers (deadlines, automatic key generation and its retries) until
//!   `shutdown` resolves.
//! * `impl mpc_bus::NodeDirectory for Coordinator` answers the proxy's binding look-ups.
//!
//! Orchestration state (online nodes, running tasks) is in memory; everything an API caller
//! can ask about is in the store.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mpc_bus::{Bus, InProcessBus, NodeDirectory};
//! use mpc_coordinator::{Coordinator, CoordinatorConfig};
//!
//! # async fn wire() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = Arc::new(InProcessBus::new());
//! let mut registry = prometheus_client::registry::Registry::default();
//! let config = CoordinatorConfig { database: "platform.db".into(), ..Default::default() };
//! let coordinator = Coordinator::open(config, bus.clone(), &mut registry)?;
//! let directory: Arc<dyn NodeDirectory> = coordinator.clone(); // for the proxy
//! let app = coordinator.router(); // merge with the proxy's and /healthz, /readyz, /metrics
//! let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
//! let engine = tokio::spawn(coordinator.clone().run(async move {
//!     let _ = stop_rx.await;
//! }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, app).await?;
//! let _ = stop_tx.send(());
//! engine.await??;
//! # let _ = directory;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod console;
pub mod directory;
mod engine;
mod http;
mod metrics;
mod result_wait;
pub mod store;
pub mod verify;

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mpc_api::auth::{ApiUser, NonceStatus, NonceStore, NonceStoreError};
use mpc_bus::{Binding, Bus, BusFuture, NodeDirectory};
pub use mpc_transport::signed::TaskSigningKey;
use sha2::{Digest, Sha256};

use crate::engine::EngineState;
use crate::metrics::Metrics;
use crate::store::{PostgresOptions, Store, StoreError};

pub use crate::http::CONSOLE_STATE_PATH;

/// Coordinator settings (`[coordinator]` of platform.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// SQLite file path, `":memory:"`, or a `postgres://` URL (see [`store::open`]).
    pub database: String,
    /// PostgreSQL connection options (TLS roots, pool size); unused with SQLite.
    pub database_options: PostgresOptions,
    /// Every signing request ends (done/rejected/failed) within this.
    pub sign_timeout: Duration,
    /// Key generation deadline.
    pub keygen_timeout: Duration,
    /// Threshold of automatic key generation (t-of-3).
    pub default_threshold: u16,
    /// Threshold-ECDSA protocol of organizations created without one (`dkls23` unless
    /// platform.toml says otherwise).
    pub default_ecdsa_protocol: mpc_transport::task::EcdsaProtocol,
    /// Administrators' BIZ-API keys (hex DER SPKI).
    pub admin_public_keys: Vec<String>,
    /// Signs every task (`mpc_transport::signed`); nodes pin its public key
    /// (`[mpc-service] platform-public-key-path`). `Default` makes a fresh random key.
    pub task_signing_key: TaskSigningKey,
    /// On a shared bus (several proxies re-announcing their nodes), a node not announced for
    /// this long is taken as offline (the bus may have lost its `NodeOffline`); `None` (the
    /// in-process bus: nothing is lost) never expires a node.
    pub node_announce_timeout: Option<Duration>,
    /// The audit log of every API and admin request with its caller (`mpc_audit`; one file
    /// per coordinator process); `None`: none is kept.
    pub audit_log: Option<std::path::PathBuf>,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            database: ":memory:".into(),
            database_options: PostgresOptions::default(),
            sign_timeout: Duration::from_secs(120),
            keygen_timeout: Duration::from_secs(900),
            default_threshold: mpc_api::types::admin::DEFAULT_THRESHOLD,
            default_ecdsa_protocol: mpc_transport::task::EcdsaProtocol::Dkls23,
            admin_public_keys: Vec::new(),
            task_signing_key: TaskSigningKey::generate(&mut rand_core::OsRng),
            node_announce_timeout: None,
            audit_log: None,
        }
    }
}

/// Why the coordinator could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// A setting is invalid.
    #[error("coordinator config: {0}")]
    Config(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The bus failed.
    #[error("bus: {0}")]
    Bus(#[from] mpc_bus::BusError),
    /// The audit log could not be opened.
    #[error(transparent)]
    Audit(#[from] mpc_audit::AuditError),
}

/// The coordinator. Shared as `Arc<Coordinator>`.
pub struct Coordinator {
    config: CoordinatorConfig,
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    admins: Vec<ApiUser>,
    state: Mutex<EngineState>,
    metrics: Metrics,
    audit: Option<mpc_audit::AuditWriter>,
    /// Long polls of `sign_result` and the finishes they wait for.
    result_waits: result_wait::ResultWaits,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    /// Opens the store `config.database` names (SQLite or PostgreSQL, see [`store::open`]) and
    /// builds the coordinator; metrics are registered in `registry` under the `coordinator_`
    /// prefix. Blocking (a PostgreSQL store connects and migrates here): from async code, call
    /// it through `tokio::task::spawn_blocking`.
    pub fn open(
        config: CoordinatorConfig,
        bus: Arc<dyn Bus>,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<Arc<Coordinator>, CoordinatorError> {
        let store = store::open(&config.database, &config.database_options)?;
        Self::with_store(config, store, bus, registry)
    }

    /// Builds the coordinator over any [`Store`].
    pub fn with_store(
        config: CoordinatorConfig,
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<Arc<Coordinator>, CoordinatorError> {
        if !(2..=3).contains(&config.default_threshold) {
            return Err(CoordinatorError::Config(format!(
                "default-threshold {} is not 2 or 3",
                config.default_threshold
            )));
        }
        if config.sign_timeout.is_zero() || config.keygen_timeout.is_zero() {
            return Err(CoordinatorError::Config("timeouts must be positive".into()));
        }
        let mut admins = Vec::new();
        for (i, key) in config.admin_public_keys.iter().enumerate() {
            let vk = mpc_wire::keys::verifying_key_from_api_key_hex(key)
                .map_err(|e| CoordinatorError::Config(format!("admin-public-keys[{i}]: {e}")))?;
            admins.push(ApiUser {
                organization_id: String::new(),
                user_id: format!("admin-{i}"),
                verifying_key: vk,
            });
        }
        // This process's instance: every run it records is its own; the runs of an instance
        // that stops (its heartbeat lapses) are failed by whichever coordinator sees it first.
        let instance = new_id("coord");
        store.set_owner(&instance);
        // On an in-process bus this is the only coordinator of the store: whatever an earlier
        // instance left running died with it, at once. On a shared bus other coordinators may
        // be driving their runs: only lapsed leases are swept (by the heartbeat).
        let mut failed = 0;
        if !bus.shared() {
            failed += store.fail_orphaned("coordinator restarted", u64::MAX)?;
        }
        store.heartbeat(store::now_ms().saturating_add(engine::LEASE_MS))?;
        failed += store.fail_unfinished("coordinator restarted", store::now_ms())?;
        if failed > 0 {
            tracing::warn!(
                rows = failed,
                "coordinator: failed runs left over by a previous process"
            );
        }
        tracing::info!(instance = %instance, "coordinator: instance registered");
        let audit = match &config.audit_log {
            Some(path) => {
                let log = mpc_audit::AuditLog::open(path)?;
                tracing::info!(path = %path.display(), head = %log.head(), "coordinator: audit log open");
                Some(mpc_audit::AuditWriter::spawn(log)?)
            }
            None => None,
        };
        let result_waits = result_wait::ResultWaits::new(bus.shared());
        Ok(Arc::new(Coordinator {
            config,
            store,
            result_waits,
            bus,
            admins,
            state: Mutex::new(EngineState::default()),
            metrics: Metrics::register(registry),
            audit,
        }))
    }

    /// Waits until every audit entry recorded so far is durable and returns the log's head;
    /// `None` without an audit log. Blocking: from async code, on a blocking thread.
    pub fn flush_audit(&self) -> Option<mpc_audit::Head> {
        self.audit.as_ref().and_then(|a| a.flush().ok())
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> bool {
        self.db(|s| s.ping()).await.is_ok()
    }

    /// Runs a store call on the blocking pool.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| StoreError::Backend(format!("store task: {e}")))?
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, EngineState> {
        // Every critical section leaves the state consistent (no awaits inside).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Consumes the bus events and drives the timers until `shutdown` resolves (or the bus
    /// closes).
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), CoordinatorError> {
        let mut events = self.bus.subscribe_events().await?;
        let mut tick = tokio::time::interval(engine::TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        tracing::info!("coordinator: running");
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                ev = events.recv() => match ev {
                    Some(ev) => self.handle_event(ev).await,
                    None => {
                        tracing::warn!("coordinator: bus closed");
                        break;
                    }
                },
                _ = tick.tick() => self.on_tick().await,
            }
        }
        tracing::info!("coordinator: stopped");
        Ok(())
    }
}

impl NodeDirectory for Coordinator {
    fn binding<'a>(&'a self, node_id: &'a str) -> BusFuture<'a, Option<Binding>> {
        Box::pin(async move {
            let node_id = node_id.to_owned();
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || directory::binding_in(store.as_ref(), &node_id))
                .await
                .map_err(|e| mpc_bus::BusError::Backend(format!("store task: {e}")))?
        })
    }
}

/// [`NonceStore`] over the [`Store`]'s `nonces` table, so replay protection survives restarts
/// and is shared by every process on the same database.
pub(crate) struct StoreNonces<'a>(pub &'a dyn Store);

impl NonceStore for StoreNonces<'_> {
    fn record(
        &self,
        api_key_hex: &str,
        nonce_ms: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<NonceStatus, NonceStoreError> {
        let key_hash = hex::encode(Sha256::digest(api_key_hex.as_bytes()));
        match self
            .0
            .record_nonce(&key_hash, nonce_ms, now_ms.saturating_sub(window_ms))
        {
            Ok(true) => Ok(NonceStatus::Fresh),
            Ok(false) => Ok(NonceStatus::Replayed),
            Err(e) => Err(NonceStoreError::Backend(e.to_string())),
        }
    }
}

/// Random id with a prefix: `prefix` + 32 hex characters.
pub(crate) fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    format!("{prefix}{}", hex::encode(b))
}
