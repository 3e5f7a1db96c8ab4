//! What every HTTP server of the project (node `/sys`, platform API and console, callback demo)
//! applies to a client **before** any authentication work, so that an unauthenticated client
//! costs bounded memory and time:
//!
//! * a **header read timeout** ([`Limits::header_read`]): a connection that has not sent a
//!   complete request head within it (slowloris, or an idle keep-alive connection) is closed
//!   (hyper's HTTP/1 `header_read_timeout`, which [`serve`] and [`serve_connection`] set);
//! * a **body read timeout** ([`Limits::body_read`]) and a **body limit** ([`Limits::max_body`]):
//!   [`guard`] reads the whole body before the handler runs; a body that is announced or turns
//!   out larger than the limit is refused at once, one that does not arrive in time is refused
//!   and the connection closed;
//! * a **connection cap** ([`Limits::max_connections`]) in [`serve`]: connections beyond it are
//!   closed as soon as they are accepted.
//!
//! Handlers then see a body that is complete and within the limit. Each server answers a refusal
//! in its own error format ([`Limits::reject`]).
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Longest the server waits, after shutdown was asked, for open HTTP exchanges to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Builds a server's error reply for a refused request (status and reason).
pub type Reject = fn(StatusCode, String) -> Response;

/// The bounds of one server.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Longest a client may take to send a complete request head (also the idle time of a
    /// kept-alive connection between requests).
    pub header_read: Duration,
    /// Longest a client may take to send the body after the head.
    pub body_read: Duration,
    /// Largest body accepted.
    pub max_body: usize,
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// The server's error reply.
    pub reject: Reject,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("header_read", &self.header_read)
            .field("body_read", &self.body_read)
            .field("max_body", &self.max_body)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Limits {
    /// Defaults: 10 s for the head, 30 s for the body, 1024 connections; `max_body` and the
    /// reply are the server's.
    pub fn new(max_body: usize, reject: Reject) -> Self {
        Self {
            header_read: Duration::from_secs(10),
            body_read: Duration::from_secs(30),
            max_body,
            max_connections: 1024,
            reject,
        }
    }

    /// The hyper HTTP/1 connection builder with the header read timeout.
    pub fn http1(&self) -> hyper::server::conn::http1::Builder {
        let mut b = hyper::server::conn::http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(self.header_read)
            // Bounds the head a client can make us buffer.
            .max_buf_size(64 * 1024);
        b
    }
}

fn closing(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Adds the body guard to `router` (outermost layer: runs before any handler or
/// authentication).
pub fn guard(router: Router, limits: Limits) -> Router {
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| guarded(limits, req, next),
    ))
}

async fn guarded(limits: Limits, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok());
    let too_large = || {
        closing((limits.reject)(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body is larger than {} bytes", limits.max_body),
        ))
    };
    if announced.is_some_and(|n| n > limits.max_body as u64) {
        return too_large();
    }
    match tokio::time::timeout(
        limits.body_read,
        axum::body::to_bytes(body, limits.max_body),
    )
    .await
    {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => {
            if std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            {
                too_large()
            } else {
                closing((limits.reject)(
                    StatusCode::BAD_REQUEST,
                    format!("body could not be read: {e}"),
                ))
            }
        }
        Err(_) => closing((limits.reject)(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "body not received within {} s",
                limits.body_read.as_secs_f64()
            ),
        )),
    }
}

/// Serves one accepted connection (already decrypted, if TLS) with the header read timeout,
/// inserting `ConnectInfo(peer)` into every request, until it ends or `stop` turns `true`
/// (then it finishes the exchange in progress).
pub async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = app.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    });
    let conn = limits
        .http1()
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    tokio::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}

/// Serves `app` (with [`guard`] applied) over plain HTTP/1 on `listener` until `shutdown`
/// completes; then stops accepting and lets open exchanges finish (at most
/// [`SHUTDOWN_GRACE`]). Handlers can extract `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = guard(app, limits);
    accept_loop(listener, limits, shutdown, move |tcp, peer, stop| {
        let app = app.clone();
        async move { serve_connection(tcp, peer, app, &limits, stop).await }
    })
    .await
}

/// The accept loop shared by plain and TLS servers: caps connections at
/// [`Limits::max_connections`], runs `handle` per connection, and on shutdown waits at most
/// [`SHUTDOWN_GRACE`] for them.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    handle: F,
) -> std::io::Result<()>
where
    F: Fn(tokio::net::TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, max = limits.max_connections, "connection refused: too many open connections");
                        drop(tcp);
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    let conn = handle(tcp, peer, stop_rx.clone());
                    tasks.spawn(async move {
                        conn.await;
                        drop(permit);
                    });
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

/// The slow clients the servers' tests attack them with (blocking std sockets, bounded loops).
pub mod attack {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::{Duration, Instant};

    /// What a slow client sends before it stops sending.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Slow {
        /// Nothing at all (idle connection, or an unstarted TLS handshake).
        Silent,
        /// Half a request head (slowloris).
        PartialHead,
        /// A complete head announcing 1000 body bytes, then 10 of them.
        PartialBody,
        /// A TLS record header announcing a 512-byte ClientHello, then 10 bytes of it.
        PartialTlsHello,
    }

    /// Opens `n` connections to `addr`, each sending what `how` says; returns them open.
    pub fn open(addr: SocketAddr, n: usize, how: Slow, path: &str) -> Vec<TcpStream> {
        (0..n)
            .filter_map(|_| {
                let mut s = TcpStream::connect(addr).ok()?;
                let sent = match how {
                    Slow::Silent => Ok(()),
                    Slow::PartialHead => s.write_all(
                        format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/pl")
                            .as_bytes(),
                    ),
                    Slow::PartialBody => s.write_all(
                        format!(
                            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789"
                        )
                        .as_bytes(),
                    ),
                    Slow::PartialTlsHello => s.write_all(&[
                        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0,
                        0,
                    ]),
                };
                sent.ok()?;
                Some(s)
            })
            .collect()
    }

    /// Waits at most `bound` for the server to close every stream (EOF or reset; a reply it
    /// sends first is read and ignored). Returns how many were still open at the end.
    pub fn still_open_after(streams: Vec<TcpStream>, bound: Duration) -> usize {
        let deadline = Instant::now() + bound;
        let mut open = streams;
        let mut buf = [0u8; 4096];
        while !open.is_empty() && Instant::now() < deadline {
            open.retain_mut(|s| {
                let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                // Read whatever is there; stop at EOF (closed) or when nothing comes (open).
                for _ in 0..64 {
                    match s.read(&mut buf) {
                        Ok(0) => return false,
                        Ok(_) => continue,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            return true;
                        }
                        Err(_) => return false,
                    }
                }
                true
            });
            if !open.is_empty() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        open.len()
    }
}
