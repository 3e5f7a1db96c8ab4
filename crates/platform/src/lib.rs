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
//!   Coordinator ──Delivery──▶ bus ──▶ Proxy ──▶ node
//!   node ──▶ Proxy ──ProxyEvent──▶ bus ──▶ Coordinator
//! ```
//!
//! The bus is in-process (both roles in this process) or NATS (`[bus] url`): then any number of
//! processes run one role each (`roles`, or `start --role`), sharing PostgreSQL; a proxy alone
//! reads the bindings from the store (`mpc_coordinator::directory::StoreDirectory`).
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
use mpc_bus::nats::NatsBus;
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
    /// The bus could not be reached.
    #[error("bus: {0}")]
    Bus(String),
    /// The task-signing key could not be loaded or made.
    #[error(transparent)]
    TaskKey(#[from] task_key::TaskKeyError),
    /// Serving failed.
    #[error("server: {0}")]
    Serve(#[from] std::io::Error),
}

#[derive(Clone)]
struct AppState {
    coordinator: Option<Arc<Coordinator>>,
    directory: Option<Arc<mpc_coordinator::directory::StoreDirectory>>,
    proxy: Option<Arc<Proxy>>,
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

/// Runs the platform's roles (`cfg.roles`) on `listener` until `shutdown` completes.
pub async fn run(
    cfg: PlatformConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    use config::Role;
    let tls =
        mpc_proxy::tls::load_server_config(&cfg.server.tls_cert_path, &cfg.server.tls_key_path)
            .map_err(|e| Error::Tls(e.to_string()))?;
    let mut registry = Registry::default();
    let roles: Vec<&str> = cfg
        .roles
        .iter()
        .map(|r| match r {
            Role::Proxy => "proxy",
            Role::Coordinator => "coordinator",
        })
        .collect();
    let bus: Arc<dyn Bus> = if cfg.bus.is_inproc() {
        Arc::new(InProcessBus::new())
    } else {
        let name = format!("mpc-platform ({})", roles.join("+"));
        Arc::new(
            NatsBus::connect(&cfg.bus.url, &name)
                .await
                .map_err(|e| Error::Bus(e.to_string()))?,
        )
    };
    let c = &cfg.coordinator;
    let database_options = PostgresOptions {
        ca_cert_path: (!c.database_ca_cert_path.as_os_str().is_empty())
            .then(|| c.database_ca_cert_path.clone()),
        max_connections: Some(c.database_max_connections),
    };
    let coordinator = if cfg.has(Role::Coordinator) {
        let (task_signing_key, created) = task_key::load_or_create(&c.task_signing_key_path)?;
        tracing::info!(
            path = %c.task_signing_key_path.display(),
            public_key = %mpc_wire::keys::public_key_pem(task_signing_key.verifying_key()).trim().replace('\n', " "),
            created,
            "task-signing key (nodes pin this public key: [mpc-service] platform-public-key-path)"
        );
        let coordinator_config = CoordinatorConfig {
            database: c.database.clone(),
            database_options: database_options.clone(),
            sign_timeout: Duration::from_secs(c.sign_timeout_secs),
            keygen_timeout: Duration::from_secs(c.keygen_timeout_secs),
            default_threshold: c.default_threshold,
            default_ecdsa_protocol: c.default_ecdsa_protocol,
            admin_public_keys: c.admin_public_keys.clone(),
            task_signing_key,
            // Proxies on a shared bus re-announce their nodes; the in-process bus loses nothing.
            node_announce_timeout: bus.shared().then_some(NODE_ANNOUNCE_TIMEOUT),
            audit_log: (!c.audit_log.as_os_str().is_empty()).then(|| c.audit_log.clone()),
        };
        // Opening the store blocks (PostgreSQL connects and migrates): off the async workers.
        let open_bus = bus.clone();
        let (coordinator, r) = tokio::task::spawn_blocking(move || {
            let c = Coordinator::open(coordinator_config, open_bus, &mut registry);
            (c, registry)
        })
        .await
        .map_err(|e| Error::Coordinator(format!("store task: {e}")))?;
        registry = r;
        Some(coordinator.map_err(|e| Error::Coordinator(e.to_string()))?)
    } else {
        None
    };
    let (proxy, directory) = if cfg.has(Role::Proxy) {
        // With the coordinator in this process it answers the binding look-ups; a proxy alone
        // reads them from the shared store.
        let (directory, store_directory): (Arc<dyn NodeDirectory>, _) = match &coordinator {
            Some(c) => (c.clone(), None),
            None => {
                let (database, options) = (c.database.clone(), database_options.clone());
                let d = tokio::task::spawn_blocking(move || {
                    mpc_coordinator::directory::StoreDirectory::open(&database, &options)
                })
                .await
                .map_err(|e| Error::Coordinator(format!("store task: {e}")))?
                .map_err(|e| Error::Coordinator(e.to_string()))?;
                let d = Arc::new(d);
                (d.clone(), Some(d))
            }
        };
        let p = &cfg.proxy;
        let proxy = Proxy::new(
            ProxyConfig {
                path: p.path.clone(),
                max_frame_bytes: p.max_frame_bytes,
                queue_frames: p.queue_frames,
                queue_bytes: p.queue_bytes,
                slow_consumer_grace: Duration::from_secs(p.slow_consumer_grace_secs),
                ping_interval: Duration::from_secs(p.ping_interval_secs),
                idle_timeout: Duration::from_secs(p.idle_timeout_secs),
                reannounce_interval: ProxyConfig::default().reannounce_interval,
            },
            bus.clone(),
            directory,
            &mut registry,
        );
        (Some(proxy), store_directory)
    } else {
        (None, None)
    };
    let state = AppState {
        coordinator: coordinator.clone(),
        directory,
        proxy: proxy.clone(),
        registry: Arc::new(registry),
    };
    let mut app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state);
    if let Some(c) = &coordinator {
        app = app.merge(c.router());
    }
    if let Some(p) = &proxy {
        app = app.merge(p.router());
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = Vec::new();
    if let Some(c) = coordinator {
        let stop = stopped(stop_rx.clone());
        tasks.push((
            "coordinator",
            tokio::spawn(async move {
                if let Err(e) = c.run(stop).await {
                    tracing::error!("coordinator stopped: {e}");
                }
            }),
        ));
    }
    if let Some(p) = proxy {
        let stop = stopped(stop_rx.clone());
        tasks.push((
            "proxy",
            tokio::spawn(async move {
                if let Err(e) = p.run(stop).await {
                    tracing::error!("proxy stopped: {e}");
                }
            }),
        ));
    }
    tracing::info!(
        address = %listener.local_addr()?,
        proxy_path = %cfg.proxy.path,
        roles = %roles.join(", "),
        bus = %if cfg.bus.is_inproc() { "inproc:".to_owned() } else { mpc_bus::nats::redacted(&cfg.bus.url) },
        "platform listening"
    );
    let served =
        mpc_proxy::tls::serve_tls_with(listener, Arc::new(tls), app, limits(), shutdown).await;
    let _ = stop_tx.send(true);
    for (name, task) in tasks {
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

/// On a shared bus, a node no proxy announced for this long is offline (proxies re-announce
/// every 10 s).
pub const NODE_ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(35);

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let store = match (&s.coordinator, &s.directory) {
        (Some(c), _) => c.ready().await,
        (None, Some(d)) => d.ready().await,
        (None, None) => true,
    };
    if store {
        (
            StatusCode::OK,
            match &s.proxy {
                Some(p) => format!("ready: {} nodes connected\n", p.connected_nodes()),
                None => "ready\n".to_owned(),
            },
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
