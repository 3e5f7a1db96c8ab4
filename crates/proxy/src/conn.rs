//! One node connection: challenge, authentication, then a reader (this task) and a writer
//! (a spawned task draining the connection's bounded queue and sending pings).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use mpc_bus::ProxyEvent;
use mpc_transport::auth::{AuthFault, Challenge, Hello, verify_hello};
use mpc_transport::frame::{Frame, FrameError, FrameKind};
use rand_core::OsRng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::proxy::{CloseRequest, Conn, Proxy, lock};
use crate::tls::TlsExporter;

/// Longest the proxy waits for a node's `Hello` (and for the directory's answer).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest the proxy spends on a closing handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Largest close reason a WebSocket close frame carries (125 bytes minus the code).
const MAX_CLOSE_REASON: usize = 123;

// WebSocket close codes (RFC 6455 §7.4.1).
const UNSUPPORTED_DATA: u16 = 1003;
const INVALID_PAYLOAD: u16 = 1007;
const POLICY: u16 = 1008;
const TOO_BIG: u16 = 1009;
const INTERNAL: u16 = 1011;

/// How a connection ends.
#[derive(Debug)]
struct End {
    /// `Some`: send a close frame with this code and `reason`; `None`: the peer is gone.
    code: Option<u16>,
    /// For the close frame and the log.
    reason: String,
    /// Metric label.
    label: &'static str,
}

impl End {
    fn close(code: u16, reason: impl Into<String>, label: &'static str) -> Self {
        End {
            code: Some(code),
            reason: reason.into(),
            label,
        }
    }

    fn gone(reason: impl Into<String>, label: &'static str) -> Self {
        End {
            code: None,
            reason: reason.into(),
            label,
        }
    }
}

/// What an upgraded connection holds until its node has authenticated: its read budget
/// (lifted by a verified Hello) and its place among the unauthenticated connections.
pub(crate) struct PreAuth {
    pub(crate) budget: crate::budget::ReadBudget,
    pub(crate) unauthenticated: tokio::sync::OwnedSemaphorePermit,
}

/// Serves one upgraded WebSocket until it ends.
pub(crate) async fn serve(
    proxy: Arc<Proxy>,
    mut socket: WebSocket,
    exporter: TlsExporter,
    pre_auth: PreAuth,
) {
    let authenticated = authenticate(&proxy, &mut socket, &exporter, &pre_auth.budget).await;
    drop(pre_auth.unauthenticated);
    let Some((conn, queue, close_rx)) = authenticated else {
        return;
    };
    let (sink, mut stream) = socket.split();
    let (stop_writer, stop_rx) = oneshot::channel();
    let mut writer = tokio::spawn(write_loop(
        sink,
        queue,
        conn.clone(),
        proxy.config.ping_interval,
        stop_rx,
    ));
    let end = read_loop(&proxy, &conn, &mut stream, close_rx, &writer).await;

    // The writer sends the close frame while the table and the coordinator learn the node is
    // gone. Table change and event happen under the lifecycle lock, so the coordinator sees
    // NodeOnline/NodeOffline in the order the table changed.
    let closing = match end.code {
        Some(code) if !writer.is_finished() => stop_writer
            .send((code, truncate(end.reason.clone())))
            .is_ok(),
        _ => false,
    };
    {
        let _lifecycle = proxy.lifecycle.lock().await;
        let was_current = proxy.unregister(&conn);
        proxy.metrics.disconnect(end.label);
        tracing::info!(
            node_id = %conn.node_id, organization_id = %conn.organization_id, party = %conn.party,
            reason = %end.reason, replaced = !was_current, "node disconnected"
        );
        if was_current {
            proxy
                .publish(ProxyEvent::NodeOffline {
                    node_id: conn.node_id.clone(),
                    connection: proxy.connection_id(&conn),
                })
                .await;
        }
    }
    if closing && timeout(CLOSE_WAIT, &mut writer).await.is_ok() {
        drain(&mut stream).await;
    }
    writer.abort();
}

type Authenticated = (
    Arc<Conn>,
    mpsc::Receiver<Bytes>,
    watch::Receiver<Option<CloseRequest>>,
);

async fn authenticate(
    proxy: &Arc<Proxy>,
    socket: &mut WebSocket,
    exporter: &TlsExporter,
    budget: &crate::budget::ReadBudget,
) -> Option<Authenticated> {
    let challenge = Challenge::new(&mut OsRng);
    let bytes = match Frame::Challenge(challenge.clone()).encode() {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a challenge");
            return None;
        }
    };
    if let Err(e) = socket.send(Message::Binary(bytes.into())).await {
        tracing::debug!(error = %e, "connection lost before the challenge was sent");
        return None;
    }
    let hello = match timeout(HELLO_TIMEOUT, next_hello(socket)).await {
        Ok(Ok(hello)) => hello,
        Ok(Err(end)) => return refuse(proxy, socket, None, end, None).await,
        Err(_) => {
            let end = End::close(POLICY, "hello timeout", "hello_timeout");
            return refuse(proxy, socket, None, end, None).await;
        }
    };
    let node = match verify_hello(&hello, &challenge, &exporter.0) {
        Ok(node) => {
            budget.lift();
            node
        }
        Err(e) => {
            let end = match &e.fault {
                AuthFault::Signature(_) => End::close(POLICY, "bad signature", "bad_signature"),
                AuthFault::NodeId(_) => End::close(POLICY, "bad node id", "bad_node_id"),
                AuthFault::Cert(_) => {
                    End::close(POLICY, "bad transport certificate", "bad_transport_cert")
                }
                AuthFault::ChallengeVersion(_) => {
                    End::close(POLICY, "unsupported challenge version", "challenge_version")
                }
            };
            let detail = e.fault.to_string();
            return refuse(proxy, socket, Some(&hello.node_id), end, Some(detail)).await;
        }
    };
    let node_id = node.node_id().to_owned();
    let binding = match timeout(HELLO_TIMEOUT, proxy.directory.binding(&node_id)).await {
        Ok(Ok(Some(binding))) => binding,
        Ok(Ok(None)) => {
            let end = End::close(POLICY, "unbound node", "unbound_node");
            return refuse(proxy, socket, Some(&node_id), end, None).await;
        }
        Ok(Err(e)) => {
            let end = End::close(INTERNAL, "directory unavailable", "directory");
            let detail = format!("node directory failed: {e}");
            return refuse(proxy, socket, Some(&node_id), end, Some(detail)).await;
        }
        Err(_) => {
            let end = End::close(INTERNAL, "directory unavailable", "directory");
            let detail = "node directory timed out".to_owned();
            return refuse(proxy, socket, Some(&node_id), end, Some(detail)).await;
        }
    };
    let (conn, queue, close_rx) = Conn::new(
        proxy.next_conn_id(),
        node_id,
        binding.organization_id,
        binding.party,
        node.transport_cert().clone(),
        &proxy.config,
    );
    {
        let _lifecycle = proxy.lifecycle.lock().await;
        proxy.register(&conn);
        tracing::info!(
            node_id = %conn.node_id, organization_id = %conn.organization_id, party = %conn.party,
            "node authenticated"
        );
        proxy.publish(proxy.online_event(&conn)).await;
    }
    Some((conn, queue, close_rx))
}

/// Counts and logs a refused connection and closes it.
async fn refuse(
    proxy: &Proxy,
    socket: &mut WebSocket,
    claimed_node_id: Option<&str>,
    end: End,
    detail: Option<String>,
) -> Option<Authenticated> {
    proxy.metrics.auth_failure(end.label);
    // Unauthenticated input: bounded, and logged with Debug escaping.
    let claimed: String = claimed_node_id.unwrap_or("-").chars().take(256).collect();
    let detail = detail.as_deref().unwrap_or("");
    if end.label == "directory" {
        tracing::error!(claimed_node_id = ?claimed, reason = %end.reason, detail, "node connection refused");
    } else {
        tracing::info!(claimed_node_id = ?claimed, reason = %end.reason, detail, "node connection refused");
    }
    if let Some(code) = end.code {
        let frame = close_frame(code, truncate(end.reason));
        if timeout(CLOSE_WAIT, socket.send(Message::Close(Some(frame))))
            .await
            .is_ok()
        {
            let _ = timeout(CLOSE_WAIT, async {
                while let Some(Ok(msg)) = socket.recv().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }
    None
}

async fn next_hello(socket: &mut WebSocket) -> Result<Hello, End> {
    loop {
        let msg = match socket.recv().await {
            None => return Err(End::gone("closed before hello", "no_hello")),
            Some(Err(e)) => return Err(read_error(&e)),
            Some(Ok(msg)) => msg,
        };
        match msg {
            Message::Binary(bytes) => {
                return match Frame::decode(&bytes) {
                    Ok(Frame::Hello(hello)) => Ok(hello),
                    Ok(other) => Err(End::close(
                        POLICY,
                        format!(
                            "unexpected frame: {} (expected hello)",
                            kind_name(other.kind())
                        ),
                        "unexpected_frame",
                    )),
                    Err(e) => Err(malformed(&e)),
                };
            }
            Message::Text(_) => {
                return Err(End::close(UNSUPPORTED_DATA, "text message", "text_message"));
            }
            Message::Ping(_) | Message::Pong(_) => {}
            Message::Close(_) => return Err(End::gone("closed before hello", "no_hello")),
        }
    }
}

async fn read_loop(
    proxy: &Proxy,
    conn: &Arc<Conn>,
    stream: &mut SplitStream<WebSocket>,
    mut close_rx: watch::Receiver<Option<CloseRequest>>,
    writer: &JoinHandle<()>,
) -> End {
    let idle = proxy.config.idle_timeout;
    let grace = proxy.config.slow_consumer_grace;
    let mut tick =
        tokio::time::interval((grace / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let idle_deadline = tokio::time::sleep(idle);
    tokio::pin!(idle_deadline);
    loop {
        tokio::select! {
            biased;
            changed = close_rx.changed() => {
                if changed.is_err() {
                    // Cannot happen while `conn` (which holds the sender) is alive.
                    return End::gone("close channel dropped", "gone");
                }
                let request = close_rx.borrow_and_update().clone();
                if let Some(req) = request {
                    return End::close(req.code, req.reason, req.reason);
                }
            }
            _ = tick.tick() => {
                if writer.is_finished() {
                    return End::gone("write failed", "write_failed");
                }
                let since = *lock(&conn.over_limit_since);
                if since.is_some_and(|s| s.elapsed() >= grace) {
                    tracing::warn!(
                        node_id = %conn.node_id,
                        queued_bytes = conn.queued_bytes.load(Ordering::Acquire),
                        "node over its queue bound for longer than the grace period"
                    );
                    return End::close(POLICY, "slow consumer", "slow_consumer");
                }
            }
            _ = &mut idle_deadline => {
                return End::close(POLICY, "idle timeout", "idle_timeout");
            }
            msg = stream.next() => {
                idle_deadline.as_mut().reset(Instant::now() + idle);
                match msg {
                    None => return End::gone("connection closed", "gone"),
                    Some(Err(e)) => return read_error(&e),
                    Some(Ok(Message::Binary(bytes))) => {
                        if let Err(end) = handle_frame(proxy, conn, bytes).await {
                            return end;
                        }
                    }
                    Some(Ok(Message::Text(_))) => {
                        return End::close(UNSUPPORTED_DATA, "text message", "text_message");
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) => return End::gone("closed by node", "closed_by_node"),
                }
            }
        }
    }
}

async fn handle_frame(proxy: &Proxy, conn: &Conn, bytes: Bytes) -> Result<(), End> {
    match Frame::decode(&bytes).map_err(|e| malformed(&e))? {
        Frame::Protocol(envelope) => proxy.route(conn, &envelope, bytes),
        Frame::TaskResult(result) => {
            tracing::debug!(node_id = %conn.node_id, bytes = result.len(), "task result");
            proxy
                .publish(ProxyEvent::TaskResult {
                    node_id: conn.node_id.clone(),
                    party: conn.party.clone(),
                    result,
                })
                .await;
        }
        Frame::Ping(n) => match Frame::Pong(n).encode() {
            Ok(pong) => {
                if !conn.enqueue(pong.into()) {
                    proxy.metrics.dropped("queue_full");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot encode a pong"),
        },
        Frame::Pong(_) => {}
        other => {
            return Err(End::close(
                POLICY,
                format!("unexpected frame: {}", kind_name(other.kind())),
                "unexpected_frame",
            ));
        }
    }
    Ok(())
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Bytes>,
    conn: Arc<Conn>,
    ping_every: Duration,
    mut stop: oneshot::Receiver<(u16, String)>,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pings: u64 = 0;
    loop {
        tokio::select! {
            biased;
            stop = &mut stop => {
                if let Ok((code, reason)) = stop {
                    let frame = close_frame(code, reason);
                    let _ = timeout(CLOSE_WAIT, sink.send(Message::Close(Some(frame)))).await;
                }
                return;
            }
            frame = queue.recv() => {
                let Some(frame) = frame else { return };
                let len = frame.len();
                let sent = sink.send(Message::Binary(frame)).await;
                conn.queued_bytes.fetch_sub(len, Ordering::AcqRel);
                if queue.is_empty() {
                    *lock(&conn.over_limit_since) = None;
                }
                if let Err(e) = sent {
                    tracing::debug!(node_id = %conn.node_id, error = %e, "write failed");
                    return;
                }
            }
            _ = ping.tick() => {
                pings = pings.wrapping_add(1);
                let payload = Bytes::copy_from_slice(&pings.to_be_bytes());
                if let Err(e) = sink.send(Message::Ping(payload)).await {
                    tracing::debug!(node_id = %conn.node_id, error = %e, "ping failed");
                    return;
                }
            }
        }
    }
}

/// Reads until the peer's close (or anything else ending the stream), bounded in time.
async fn drain(stream: &mut SplitStream<WebSocket>) {
    let _ = timeout(CLOSE_WAIT, async {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

fn read_error(e: &axum::Error) -> End {
    let text = e.to_string();
    // tungstenite's capacity error (message or frame over max_frame_bytes); axum does not
    // re-export the error type, so it is recognised by its text.
    if text.contains("Space limit exceeded") || text.contains("too long") {
        End::close(
            TOO_BIG,
            format!("frame too large: {text}"),
            "frame_too_large",
        )
    } else {
        End::gone(format!("read error: {text}"), "read_error")
    }
}

fn malformed(e: &FrameError) -> End {
    let reason = match e {
        FrameError::Malformed(_) => e.to_string(),
        other => format!("malformed frame: {other}"),
    };
    End::close(INVALID_PAYLOAD, reason, "malformed_frame")
}

fn close_frame(code: u16, reason: String) -> CloseFrame {
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

/// Cuts a close reason to what a close frame carries, on a character boundary.
fn truncate(mut reason: String) -> String {
    if reason.len() > MAX_CLOSE_REASON {
        let mut cut = MAX_CLOSE_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
    }
    reason
}

fn kind_name(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::Challenge => "challenge",
        FrameKind::Hello => "hello",
        FrameKind::Task => "task",
        FrameKind::TaskResult => "task_result",
        FrameKind::Protocol => "protocol",
        FrameKind::Abort => "abort",
        FrameKind::Ping => "ping",
        FrameKind::Pong => "pong",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_char_boundaries() {
        assert_eq!(truncate("short".into()), "short");
        let long = "é".repeat(100);
        let cut = truncate(long);
        assert!(cut.len() <= MAX_CLOSE_REASON);
        assert!(cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn malformed_reason_names_the_problem() {
        let e = Frame::decode(&[0xff]).unwrap_err();
        assert!(malformed(&e).reason.starts_with("malformed frame: "));
        let e = FrameError::Version(2);
        assert_eq!(
            malformed(&e).reason,
            "malformed frame: frame version 2 is not supported (this build speaks 1)"
        );
    }
}
