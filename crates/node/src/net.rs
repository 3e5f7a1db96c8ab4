//! The node's one connection to the platform's proxy (`docs/platform.md`, "Connection
//! lifecycle").
//!
//! Connects to `{protocol}://{address}{path}` (`wss`: rustls on ring, web PKI roots plus
//! `[mpc-service] ca-cert-path`), answers the proxy's [`Frame::Challenge`] with a
//! [`Frame::Hello`] bound to the TLS session (exporter label
//! [`mpc_transport::auth::TLS_EXPORTER_LABEL`]; 32 zero bytes over plain `ws`), then passes
//! tasks, protocol frames and aborts to the [`Runtime`] and sends what it produces. Heartbeats:
//! `Ping(n)` is answered with `Pong(n)`, a ping goes out every [`PING_EVERY`], and
//! [`SILENCE_LIMIT`] without any message from the proxy ends the connection. With several
//! proxy addresses, a lost or failed connection moves to the next address at once; once every
//! address failed in a row, the node backs off 0.5 s doubling to 10 s, with jitter (one
//! address: every failure backs off).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mpc_callback::mpc_wire::signature::EcdsaSigner;
use mpc_transport::auth::{TLS_EXPORTER_LABEL, hello};
use mpc_transport::frame::{Frame, MAX_FRAME_BYTES};
use mpc_transport::keys::TransportCert;
use rand_core::RngCore;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream};

use crate::tasks::Runtime;

/// A heartbeat goes out this often.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// The connection is dropped after this long without any message from the proxy.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(45);
/// First reconnect delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Time allowed for the TCP/TLS/WebSocket handshake and for the proxy's challenge.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that lasted this long resets the back-off; shorter ones (e.g. closed at once
/// as `unbound node`) keep doubling it.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// Why the network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The TLS configuration could not be built.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Where and how to connect.
#[derive(Clone)]
pub struct NetParams {
    /// `{protocol}://{address}{path}` for each proxy address, tried in order (at least one).
    pub urls: Vec<String>,
    /// `None` for plain `ws` (loopback only, checked by the config).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The identity key that answers the challenge.
    pub identity: Arc<EcdsaSigner>,
    /// This node's transport certificate, sent in the hello.
    pub transport_cert: TransportCert,
}

impl std::fmt::Debug for NetParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetParams")
            .field("urls", &self.urls)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// A rustls client configuration on ring trusting the web PKI roots and `extra_roots`.
pub fn tls_config(
    extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
) -> Result<Arc<rustls::ClientConfig>, NetError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for c in extra_roots {
        roots
            .add(c)
            .map_err(|e| NetError::Tls(format!("extra CA certificate: {e}")))?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| NetError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// How one connection ended.
enum End {
    Shutdown,
    /// The connection was authenticated, then ended for this reason.
    Lost(String),
    /// It never got as far as sending the hello.
    Failed(String),
}

/// Backoff with jitter: a delay in `[d/2, d]`.
fn jittered(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(2);
    let half = ms / 2;
    Duration::from_millis(half + rand_core::OsRng.next_u64() % (ms - half + 1))
}

/// Runs the connection until `shutdown` turns `true`: connect, authenticate, serve, reconnect.
/// Frames the runtime produces wait in `outbound` while disconnected.
pub async fn run(
    params: NetParams,
    runtime: Runtime,
    mut outbound: mpsc::UnboundedReceiver<Frame>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = BACKOFF_MIN;
    let n = params.urls.len().max(1);
    let mut next = 0usize;
    // Addresses that failed one after the other since the last authenticated connection.
    let mut failed_in_a_row = 0usize;
    loop {
        if *shutdown.borrow() {
            runtime.shutdown();
            return;
        }
        let Some(url) = params.urls.get(next % n) else {
            tracing::error!("no proxy address configured; not connecting");
            runtime.shutdown();
            return;
        };
        let began = tokio::time::Instant::now();
        let end = connect_once(&params, url, &runtime, &mut outbound, &mut shutdown).await;
        runtime.metrics().disconnected();
        match end {
            End::Shutdown => {
                tracing::info!("proxy connection closed: node shutting down");
                runtime.shutdown();
                return;
            }
            End::Lost(reason) => {
                // A connection that lasted starts a new round; one closed at once (e.g. an
                // unbound node) counts as a failure, so a round of them backs off.
                if began.elapsed() >= STABLE_AFTER {
                    backoff = BACKOFF_MIN;
                    failed_in_a_row = 1;
                } else {
                    failed_in_a_row += 1;
                }
                tracing::warn!(url = %url, reason = %reason, "disconnected from the proxy");
            }
            End::Failed(reason) => {
                failed_in_a_row += 1;
                tracing::warn!(url = %url, reason = %reason, "cannot connect to the proxy");
            }
        }
        next = (next + 1) % n;
        // Another address not tried since the last good connection: at once.
        if failed_in_a_row < n {
            if let Some(u) = params.urls.get(next) {
                tracing::info!(url = %u, "trying the next proxy address");
            }
            continue;
        }
        failed_in_a_row = 0;
        let wait = jittered(backoff);
        tracing::info!(
            retry_in_ms = wait.as_millis() as u64,
            "every proxy address failed; backing off"
        );
        backoff = (backoff * 2).min(BACKOFF_MAX);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

fn exporter(stream: &MaybeTlsStream<tokio::net::TcpStream>) -> Result<[u8; 32], String> {
    match stream {
        MaybeTlsStream::Plain(_) => Ok([0; 32]),
        MaybeTlsStream::Rustls(tls) => tls
            .get_ref()
            .1
            .export_keying_material([0u8; 32], TLS_EXPORTER_LABEL, None)
            .map_err(|e| format!("TLS exporter: {e}")),
        #[allow(unreachable_patterns)]
        _ => Err("unsupported TLS stream".into()),
    }
}

async fn connect_once(
    params: &NetParams,
    url: &str,
    runtime: &Runtime,
    outbound: &mut mpsc::UnboundedReceiver<Frame>,
    shutdown: &mut watch::Receiver<bool>,
) -> End {
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let connector = match &params.tls {
        Some(tls) => Connector::Rustls(tls.clone()),
        None => Connector::Plain,
    };
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, Some(connector));
    let ws = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect) => match r {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) => return End::Failed(e.to_string()),
            Err(_) => return End::Failed("connect timed out".into()),
        },
        _ = shutdown.changed() => return End::Shutdown,
    };
    let exporter = match exporter(ws.get_ref()) {
        Ok(x) => x,
        Err(e) => return End::Failed(e),
    };
    let (mut sink, mut stream) = ws.split();

    // Authentication: the first frame must be the challenge.
    let challenge = loop {
        let next = tokio::select! {
            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.next()) => r,
            _ = shutdown.changed() => return End::Shutdown,
        };
        match next {
            Err(_) => return End::Failed("no challenge from the proxy".into()),
            Ok(None) => return End::Failed("connection closed before the challenge".into()),
            Ok(Some(Err(e))) => return End::Failed(e.to_string()),
            Ok(Some(Ok(Message::Binary(b)))) => match Frame::decode(&b) {
                Ok(Frame::Challenge(c)) => break c,
                Ok(other) => {
                    return End::Failed(format!("expected a challenge, got {:?}", other.kind()));
                }
                Err(e) => return End::Failed(format!("bad challenge: {e}")),
            },
            Ok(Some(Ok(Message::Close(cf)))) => {
                return End::Failed(close_reason(cf.as_ref()));
            }
            Ok(Some(Ok(_))) => continue,
        }
    };
    let hello = Frame::Hello(hello(
        &params.identity,
        &challenge,
        &exporter,
        params.transport_cert.clone(),
    ));
    match hello.encode() {
        Ok(b) => {
            if let Err(e) = sink.send(Message::binary(b)).await {
                return End::Failed(e.to_string());
            }
        }
        Err(e) => return End::Failed(e.to_string()),
    }
    tracing::info!(url = %url, node_id = %runtime.node_id(), "connected to the proxy; hello sent");
    runtime.metrics().connected();

    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut ping_no: u64 = 0;
    let mut last_heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            msg = stream.next() => {
                last_heard = tokio::time::Instant::now();
                let msg = match msg {
                    None => return End::Lost("connection closed".into()),
                    Some(Err(e)) => return End::Lost(e.to_string()),
                    Some(Ok(m)) => m,
                };
                match msg {
                    Message::Binary(b) => match Frame::decode(&b) {
                        Ok(Frame::Ping(n)) => {
                            if let Some(end) = send(&mut sink, &Frame::Pong(n)).await {
                                return end;
                            }
                        }
                        Ok(Frame::Pong(_)) => {}
                        Ok(f @ (Frame::Task(_) | Frame::Protocol(_) | Frame::Abort(_))) => {
                            runtime.handle_frame(f);
                        }
                        Ok(other) => {
                            tracing::warn!(kind = ?other.kind(), "unexpected frame from the proxy ignored");
                        }
                        Err(e) => tracing::warn!("undecodable frame from the proxy dropped: {e}"),
                    },
                    Message::Close(cf) => return End::Lost(close_reason(cf.as_ref())),
                    // WebSocket pings are answered by the library; text is not our protocol.
                    Message::Text(_) => tracing::warn!("text message from the proxy ignored"),
                    _ => {}
                }
            }
            frame = outbound.recv() => {
                let Some(frame) = frame else {
                    return End::Shutdown;
                };
                if let Some(end) = send(&mut sink, &frame).await {
                    return end;
                }
            }
            _ = ping.tick() => {
                ping_no += 1;
                if let Some(end) = send(&mut sink, &Frame::Ping(ping_no)).await {
                    return end;
                }
            }
            _ = tokio::time::sleep_until(last_heard + SILENCE_LIMIT) => {
                return End::Lost(format!("no message from the proxy for {} s", SILENCE_LIMIT.as_secs()));
            }
            _ = shutdown.changed() => {
                let _ = sink.send(Message::Close(None)).await;
                return End::Shutdown;
            }
        }
    }
}

fn close_reason(cf: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    match cf {
        Some(cf) if !cf.reason.is_empty() => format!("closed by the proxy: {}", cf.reason),
        Some(cf) => format!("closed by the proxy (code {})", u16::from(cf.code)),
        None => "closed by the proxy".into(),
    }
}

async fn send<S>(sink: &mut S, frame: &Frame) -> Option<End>
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    match frame.encode() {
        Ok(b) => match sink.send(Message::binary(b)).await {
            Ok(()) => None,
            Err(e) => Some(End::Lost(format!("send failed: {e}"))),
        },
        Err(e) => {
            tracing::error!(kind = ?frame.kind(), "frame not sent: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_full() {
        for d in [BACKOFF_MIN, Duration::from_secs(3), BACKOFF_MAX] {
            for _ in 0..100 {
                let j = jittered(d);
                assert!(j >= d / 2 && j <= d, "{j:?} for {d:?}");
            }
        }
    }

    #[test]
    fn tls_config_builds_with_and_without_extra_roots() {
        tls_config(vec![]).unwrap();
        assert!(tls_config(vec![rustls_pki_types::CertificateDer::from(vec![1, 2, 3])]).is_err());
    }
}
