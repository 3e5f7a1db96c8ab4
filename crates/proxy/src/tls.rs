//! Serving an axum app over TLS (or plain TCP for loopback tests) with the per-connection TLS
//! exporter value the proxy's authentication needs.
//!
//! For every accepted connection [`serve_tls`] completes the TLS handshake, exports 32 bytes of
//! keying material with label [`mpc_transport::auth::TLS_EXPORTER_LABEL`] and no context
//! (RFC 5705 / RFC 8446 §7.5), and serves the app over HTTP/1.1 with upgrades (WebSockets),
//! inserting a [`TlsExporter`] request extension into every request of that connection.
//! [`serve_plain`] does the same without TLS and inserts 32 zero bytes, as both sides use over
//! plain `ws` (loopback tests only).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use mpc_transport::auth::TLS_EXPORTER_LABEL;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// Longest a client may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the server waits, after shutdown was asked, for open HTTP exchanges to finish.
pub const SHUTDOWN_GRACE: Duration = mpc_httpd::SHUTDOWN_GRACE;

/// The 32 bytes of TLS keying material of the connection a request came in on (all zeros
/// over plain TCP), as a request extension.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TlsExporter(pub [u8; 32]);

impl fmt::Debug for TlsExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keying material of a live session: not for logs.
        f.write_str("TlsExporter(..)")
    }
}

/// Why a TLS server configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain file could not be read or parsed.
    #[error("TLS certificate file {path}: {reason}")]
    CertFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The private key file could not be read or parsed.
    #[error("TLS key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the certificate and key (e.g. they do not match).
    #[error("TLS configuration from {cert} and {key}: {source}")]
    Config {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
}

/// A rustls server configuration (ring provider, TLS 1.3 and TLS 1.2 with the extended master
/// secret, ALPN `http/1.1`, no client authentication) from a PEM certificate chain and a PEM private key (PKCS#8, SEC1 or PKCS#1).
pub fn load_server_config(
    cert_pem_path: impl AsRef<Path>,
    key_pem_path: impl AsRef<Path>,
) -> Result<ServerConfig, TlsError> {
    let cert_path = cert_pem_path.as_ref();
    let key_path = key_pem_path.as_ref();
    let cert_err = |reason: String| TlsError::CertFile {
        path: cert_path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no CERTIFICATE section found".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::KeyFile {
        path: key_path.to_path_buf(),
        reason: match e {
            rustls_pki_types::pem::Error::NoItemsFound => "no private key section found".into(),
            other => other.to_string(),
        },
    })?;
    let config_err = |source| TlsError::Config {
        cert: cert_path.to_path_buf(),
        key: key_path.to_path_buf(),
        source,
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(config_err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(config_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // The proxy's authentication is bound to the TLS exporter; on TLS 1.2 that value is unique
    // to the session only with the extended master secret (RFC 7627 §5.4).
    config.require_ems = true;
    Ok(config)
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then stops accepting, lets
/// open HTTP exchanges finish (at most [`SHUTDOWN_GRACE`]) and returns. Upgraded WebSocket
/// connections are not HTTP exchanges any more: their owner (the proxy) closes them.
///
/// Every request carries the connection's [`TlsExporter`] as an extension.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_tls_with(listener, tls, app, default_limits(), shutdown).await
}

/// The bounds [`serve_tls`] and [`serve_plain`] apply before any request reaches the app (the
/// proxy's own routes have no bodies): head within 10 s, body within 30 s and at most 64 KiB,
/// 4096 connections.
pub fn default_limits() -> mpc_httpd::Limits {
    let mut l = mpc_httpd::Limits::new(64 * 1024, |status, reason| {
        (status, format!("{reason}\n")).into_response()
    });
    l.max_connections = 4096;
    l
}

/// [`serve_tls`] with the server's own [`mpc_httpd::Limits`] (the platform passes the API's
/// body limit and error format): TLS handshake within [`TLS_HANDSHAKE_TIMEOUT`], then the
/// header and body read timeouts, the body limit (checked before the app runs) and the
/// connection cap.
pub async fn serve_tls_with(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    limits: mpc_httpd::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = mpc_httpd::guard(app, limits);
    mpc_httpd::accept_loop(listener, limits, shutdown, move |tcp, peer, stop| {
        let acceptor = acceptor.clone();
        let app = app.clone();
        async move {
            let stream =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let mut exporter = [0u8; 32];
            if let Err(e) =
                stream
                    .get_ref()
                    .1
                    .export_keying_material(&mut exporter, TLS_EXPORTER_LABEL, None)
            {
                tracing::warn!(%peer, error = %e, "TLS exporter unavailable; connection dropped");
                return;
            }
            serve_connection(stream, peer, app, TlsExporter(exporter), &limits, stop).await;
        }
    })
    .await
}

/// Serves `app` over plain TCP (loopback tests only): like [`serve_tls`], with a
/// [`TlsExporter`] of 32 zero bytes.
pub async fn serve_plain(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = default_limits();
    let app = mpc_httpd::guard(app, limits);
    mpc_httpd::accept_loop(listener, limits, shutdown, move |tcp, peer, stop| {
        let app = app.clone();
        async move {
            serve_connection(tcp, peer, app, TlsExporter([0; 32]), &limits, stop).await;
        }
    })
    .await
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    exporter: TlsExporter,
    limits: &mpc_httpd::Limits,
    mut stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Every byte read from the client counts against the connection's budget, which the
    // proxy's WebSocket endpoint limits until the node has authenticated.
    let (stream, budget) = crate::budget::Budgeted::new(stream);
    let io = TokioIo::new(stream);
    let service = app.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(exporter);
        req.extensions_mut().insert(budget.clone());
        // The peer address, as axum's `into_make_service_with_connect_info` would provide it
        // (the coordinator serves its console state to loopback clients only).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        req
    });
    let conn = limits
        .http1()
        .serve_connection(io, TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    let stopping = async move {
        // An error means the server is gone: stop as well.
        let _ = stop.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}
