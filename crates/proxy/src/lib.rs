//! The relay between MPC nodes (`docs/platform.md`, "Connection lifecycle";
//! `docs/transport.md`, "Proxy behaviour").
//!
//! The proxy authenticates nodes and routes their frames; it is untrusted for protocol
//! payloads and never opens them (point-to-point payloads are HPKE-sealed to the receiver,
//! broadcast payloads are signed by the sender; see `mpc_transport::seal`). It decodes each
//! frame only to learn its kind and, for `Protocol` frames, the clear header, and forwards the
//! bytes exactly as received.
//!
//! How data flows:
//!
//! ```text
//!   node ──TLS WebSocket──► tls::serve_tls ──► Proxy::router (upgrade at config.path)
//!        ◄── Challenge ──────┘                        │
//!        ── Hello ──► verify_hello (nonce ‖ TLS exporter) ─► NodeDirectory::binding
//!                                                     │        (None ⇒ close "unbound node")
//!                     register (org, party) ◄─────────┘ ─► Bus::publish(NodeOnline)
//!   Protocol frame ─► route: receiver Some(p) ⇒ queue of (org, p); None ⇒ every other of org
//!   TaskResult     ─► Bus::publish(ProxyEvent::TaskResult)
//!   Ping(n)        ─► Pong(n)
//!   Bus deliveries (coordinator's Task / Abort frames) ─► Proxy::run ─► queue of that node
//!   queue (bounded: frames and bytes) ─► writer task ─► node   (+ WebSocket pings)
//!   connection ends (still registered) ─► Bus::publish(NodeOffline)
//! ```
//!
//! A newer connection for the same node id replaces the older one (closed with `replaced`,
//! without a `NodeOffline`). A connection over its queue bound for longer than
//! [`ProxyConfig::slow_consumer_grace`] is closed (`slow consumer`); one silent for
//! [`ProxyConfig::idle_timeout`] is closed (`idle timeout`). Frames for offline or full
//! connections are dropped and counted: there is no buffering for offline nodes.
//!
//! ```no_run
//! # async fn example(bus: std::sync::Arc<dyn mpc_bus::Bus>,
//! #     directory: std::sync::Arc<dyn mpc_bus::NodeDirectory>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use mpc_proxy::{Proxy, ProxyConfig, tls};
//!
//! let mut registry = prometheus_client::registry::Registry::default();
//! let proxy = Proxy::new(ProxyConfig::default(), bus, directory, &mut registry);
//! let app = proxy.router(); // merge with the other routes of the platform
//! let tls = Arc::new(tls::load_server_config("tls/server.crt", "tls/server.key")?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
//! let mut stop_a = stop_rx.clone();
//! let mut stop_b = stop_rx;
//! tokio::spawn(proxy.clone().run(async move { let _ = stop_a.wait_for(|s| *s).await; }));
//! tls::serve_tls(listener, tls, app, async move { let _ = stop_b.wait_for(|s| *s).await; }).await?;
//! # drop(stop_tx);
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod budget;
mod conn;
mod metrics;
mod proxy;
pub mod tls;

pub use conn::HELLO_TIMEOUT;
pub use proxy::{Proxy, ProxyConfig};
pub use tls::TlsExporter;
