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
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use mpc_transport::auth::TLS_EXPORTER_LABEL;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Longest a client may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the server waits, after shutdown was asked, for open HTTP exchanges to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

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
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    accept_loop(listener, shutdown, move |tcp, peer, stop| {
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
            serve_connection(TokioIo::new(stream), peer, app, TlsExporter(exporter), stop).await;
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
    accept_loop(listener, shutdown, move |tcp, peer, stop| {
        let app = app.clone();
        async move {
            serve_connection(TokioIo::new(tcp), peer, app, TlsExporter([0; 32]), stop).await;
        }
    })
    .await
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    handle: F,
) -> std::io::Result<()>
where
    F: Fn(TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    tasks.spawn(handle(tcp, peer, stop_rx.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = tasks.len();
    if tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            open,
            remaining = tasks.len(),
            "HTTP connections still open after the shutdown grace; aborted"
        );
        tasks.abort_all();
    }
    Ok(())
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    exporter: TlsExporter,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(exporter);
        // The peer address, as axum's `into_make_service_with_connect_info` would provide it
        // (the coordinator serves its console state to loopback clients only).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        req
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
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
