//! `mpc-platform`: the process that runs the proxy and the coordinator (SPEC.md §1,
//! `docs/platform.md`).
//!
//! [`cli::main`] parses the command line and `platform.toml` ([`config`]), sets up logging
//! ([`logging`]) and calls [`run`], which wires the roles together:
//!
//! ```text
//!   HTTPS listener (mpc_proxy::tls::serve_tls, TLS exporter per connection)
//!     ├── /v1/waas/*, /v1/admin/*, /console ──▶ mpc_coordinator::Coordinator (SQLite store)
//!     ├── /proxy (WebSocket) ─────────────────▶ mpc_proxy::Proxy
//!     └── /healthz, /readyz, /metrics
//!   Coordinator ──Delivery──▶ InProcessBus ──▶ Proxy ──▶ node
//!   node ──▶ Proxy ──ProxyEvent──▶ InProcessBus ──▶ Coordinator
//! ```
//!
//! Tests start the same server in-process on `127.0.0.1:0` through [`run`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cli;
pub mod config;
pub mod logging;
pub mod task_key;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use mpc_bus::{Bus, InProcessBus, NodeDirectory};
use mpc_coordinator::store::PostgresOptions;
use mpc_coordinator::{Coordinator, CoordinatorConfig};
use mpc_proxy::{Proxy, ProxyConfig};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

pub use config::PlatformConfig;

/// Why the platform stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// The coordinator could not start (database).
    #[error("coordinator: {0}")]
    Coordinator(String),
    /// The task-signing key could not be loaded or made.
    #[error(transparent)]
    TaskKey(#[from] task_key::TaskKeyError),
    /// Serving failed.
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
}

#[derive(Clone)]
struct AppState {
    coordinator: Arc<Coordinator>,
    proxy: Arc<Proxy>,
    registry: Arc<Registry>,
}

/// What every connection to the platform gets before any authentication ([`mpc_httpd`]): TLS
/// handshake within 10 s, request head within 10 s, body within 30 s and at most
/// [`mpc_api::MAX_BODY_BYTES`] (answered in the API's envelope), 4096 connections.
pub fn limits() -> mpc_httpd::Limits {
    let mut l = mpc_httpd::Limits::new(mpc_api::MAX_BODY_BYTES, |status, reason| {
        let code = mpc_api::envelope::ApiCode::BadRequest;
        (
            status,
            axum::Json(mpc_api::envelope::Envelope::<()>::error("", code, reason)),
        )
            .into_response()
    });
    l.max_connections = 4096;
    l
}

/// Runs the platform on `listener` until `shutdown` completes.
pub async fn run(
    cfg: PlatformConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let tls =
        mpc_proxy::tls::load_server_config(&cfg.server.tls_cert_path, &cfg.server.tls_key_path)
            .map_err(|e| Error::Tls(e.to_string()))?;
    let mut registry = Registry::default();
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
    let c = &cfg.coordinator;
    let (task_signing_key, created) = task_key::load_or_create(&c.task_signing_key_path)?;
    tracing::info!(
        path = %c.task_signing_key_path.display(),
        public_key = %mpc_wire::keys::public_key_pem(task_signing_key.verifying_key()).trim().replace('\n', " "),
        created,
        "task-signing key (nodes pin this public key: [mpc-service] platform-public-key-path)"
    );
    let coordinator_config = CoordinatorConfig {
        database: c.database.clone(),
        database_options: PostgresOptions {
            ca_cert_path: (!c.database_ca_cert_path.as_os_str().is_empty())
                .then(|| c.database_ca_cert_path.clone()),
            max_connections: Some(c.database_max_connections),
        },
        sign_timeout: Duration::from_secs(c.sign_timeout_secs),
        keygen_timeout: Duration::from_secs(c.keygen_timeout_secs),
        default_threshold: c.default_threshold,
        default_ecdsa_protocol: c.default_ecdsa_protocol,
        admin_public_keys: c.admin_public_keys.clone(),
        task_signing_key,
        // The in-process bus loses nothing: no re-announces to expect.
        node_announce_timeout: None,
    };
    // Opening the store blocks (PostgreSQL connects and migrates): off the async workers.
    let open_bus = bus.clone();
    let (coordinator, mut registry) = tokio::task::spawn_blocking(move || {
        let c = Coordinator::open(coordinator_config, open_bus, &mut registry);
        (c, registry)
    })
    .await
    .map_err(|e| Error::Coordinator(format!("store task: {e}")))?;
    let coordinator = coordinator.map_err(|e| Error::Coordinator(e.to_string()))?;
    let p = &cfg.proxy;
    let directory: Arc<dyn NodeDirectory> = coordinator.clone();
    let proxy = Proxy::new(
        ProxyConfig {
            path: p.path.clone(),
            max_frame_bytes: p.max_frame_bytes,
            queue_frames: p.queue_frames,
            queue_bytes: p.queue_bytes,
            slow_consumer_grace: Duration::from_secs(p.slow_consumer_grace_secs),
            ping_interval: Duration::from_secs(p.ping_interval_secs),
            idle_timeout: Duration::from_secs(p.idle_timeout_secs),
            // The in-process bus is not shared: nothing is re-announced.
            reannounce_interval: ProxyConfig::default().reannounce_interval,
        },
        bus,
        directory,
        &mut registry,
    );
    let state = AppState {
        coordinator: coordinator.clone(),
        proxy: proxy.clone(),
        registry: Arc::new(registry),
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .merge(coordinator.router())
        .merge(proxy.router());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let coordinator_task = {
        let (c, stop) = (coordinator.clone(), stopped(stop_rx.clone()));
        tokio::spawn(async move {
            if let Err(e) = c.run(stop).await {
                tracing::error!("coordinator stopped: {e}");
            }
        })
    };
    let proxy_task = {
        let (p, stop) = (proxy.clone(), stopped(stop_rx.clone()));
        tokio::spawn(async move {
            if let Err(e) = p.run(stop).await {
                tracing::error!("proxy stopped: {e}");
            }
        })
    };
    tracing::info!(
        address = %listener.local_addr()?,
        proxy_path = %cfg.proxy.path,
        "platform listening (roles: proxy, coordinator)"
    );
    let served =
        mpc_proxy::tls::serve_tls_with(listener, Arc::new(tls), app, limits(), shutdown).await;
    let _ = stop_tx.send(true);
    for (name, task) in [("coordinator", coordinator_task), ("proxy", proxy_task)] {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            tracing::warn!("{name} did not stop within 10 s");
        }
    }
    tracing::info!("platform stopped");
    served.map_err(Error::Serve)
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.coordinator.ready().await {
        (
            StatusCode::OK,
            format!("ready: {} nodes connected\n", s.proxy.connected_nodes()),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: store unreachable\n".to_owned(),
        )
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("metrics encoding failed: {e}\n"),
        ),
    }
}
