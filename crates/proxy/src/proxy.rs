//! The proxy: configuration, the table of authenticated connections, routing, and the bus side.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mpc_bus::{Bus, BusError, Delivery, NodeDirectory, ProxyEvent, Relay};
use mpc_transport::seal::SealedEnvelope;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::budget::{PRE_AUTH_BYTES, ReadBudget};
use crate::metrics::Metrics;
use crate::tls::TlsExporter;

/// How the proxy behaves; [`Default`] is `docs/platform.md`'s `[proxy]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Path of the WebSocket endpoint (`/proxy`).
    pub path: String,
    /// Largest WebSocket message accepted from a node (8 MiB); larger closes the connection.
    pub max_frame_bytes: usize,
    /// Outbound queue bound per connection, in frames (256).
    pub queue_frames: usize,
    /// Outbound queue bound per connection, in bytes (32 MiB). A single frame larger than this
    /// is still queued when the queue is empty, so the bound is `max(queue_bytes, frame)`.
    pub queue_bytes: usize,
    /// A connection over its queue bound this long is closed (`slow consumer`) (10 s).
    pub slow_consumer_grace: Duration,
    /// WebSocket ping period (15 s).
    pub ping_interval: Duration,
    /// A connection with no inbound message (pongs included) this long is closed (45 s).
    pub idle_timeout: Duration,
    /// On a shared bus, how often `NodeOnline` is repeated for every node held (10 s): the bus
    /// may lose events, and a coordinator that starts later learns who is online.
    pub reannounce_interval: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            path: "/proxy".into(),
            max_frame_bytes: 8 * 1024 * 1024,
            queue_frames: 256,
            queue_bytes: 32 * 1024 * 1024,
            slow_consumer_grace: Duration::from_secs(10),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            reannounce_interval: Duration::from_secs(10),
        }
    }
}

/// A request to close a connection, from outside its task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CloseRequest {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
}

/// One authenticated connection as the rest of the proxy sees it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) node_id: String,
    pub(crate) organization_id: String,
    pub(crate) party: String,
    /// The transport certificate from its `Hello` (repeated in every `NodeOnline`).
    pub(crate) transport_cert: mpc_transport::keys::TransportCert,
    queue: mpsc::Sender<Bytes>,
    queue_bytes_limit: usize,
    /// Bytes queued or being written.
    pub(crate) queued_bytes: AtomicUsize,
    /// Since when frames for this connection have been dropped for lack of room (cleared when
    /// the writer empties the queue).
    pub(crate) over_limit_since: Mutex<Option<Instant>>,
    close: watch::Sender<Option<CloseRequest>>,
}

impl Conn {
    pub(crate) fn new(
        id: u64,
        node_id: String,
        organization_id: String,
        party: String,
        transport_cert: mpc_transport::keys::TransportCert,
        config: &ProxyConfig,
    ) -> (
        Arc<Conn>,
        mpsc::Receiver<Bytes>,
        watch::Receiver<Option<CloseRequest>>,
    ) {
        let (queue, rx) = mpsc::channel(config.queue_frames.max(1));
        let (close, close_rx) = watch::channel(None);
        let conn = Arc::new(Conn {
            id,
            node_id,
            organization_id,
            party,
            transport_cert,
            queue,
            queue_bytes_limit: config.queue_bytes,
            queued_bytes: AtomicUsize::new(0),
            over_limit_since: Mutex::new(None),
            close,
        });
        (conn, rx, close_rx)
    }

    /// Queues frame bytes without waiting; `false` (and the connection marked over its bound)
    /// when there is no room.
    pub(crate) fn enqueue(&self, frame: Bytes) -> bool {
        let len = frame.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before.saturating_add(len) > self.queue_bytes_limit {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            self.mark_over_limit();
            return false;
        }
        if self.queue.try_send(frame).is_err() {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            self.mark_over_limit();
            return false;
        }
        true
    }

    fn mark_over_limit(&self) {
        let mut since = lock(&self.over_limit_since);
        if since.is_none() {
            *since = Some(Instant::now());
        }
    }

    /// Asks the connection's task to close with `reason` (the first request wins).
    pub(crate) fn request_close(&self, code: u16, reason: &'static str) {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(CloseRequest { code, reason });
                true
            } else {
                false
            }
        });
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Authenticated connections, by node id and by (organization, party).
#[derive(Debug, Default)]
pub(crate) struct Table {
    by_node: HashMap<String, Arc<Conn>>,
    by_org: HashMap<String, HashMap<String, Arc<Conn>>>,
}

/// The relay between MPC nodes (see the crate docs).
pub struct Proxy {
    pub(crate) config: ProxyConfig,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) directory: Arc<dyn NodeDirectory>,
    pub(crate) metrics: Metrics,
    table: RwLock<Table>,
    /// Held across a table change and its NodeOnline/NodeOffline publication, so events reach
    /// the bus in table order.
    pub(crate) lifecycle: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
    /// Open WebSocket connections per peer address.
    per_address: Mutex<HashMap<std::net::IpAddr, usize>>,
    /// WebSocket connections not yet authenticated.
    unauthenticated: Arc<tokio::sync::Semaphore>,
    /// This proxy instance on a shared bus (random; it skips the frames it relayed itself).
    origin: String,
    /// Frames for nodes other proxies hold, to the relay publisher ([`Proxy::run`]).
    relay_tx: mpsc::Sender<Relay>,
    relay_rx: Mutex<Option<mpsc::Receiver<Relay>>>,
}

/// Frames waiting to be relayed to other proxies; beyond it they are dropped (and counted).
pub const RELAY_QUEUE: usize = 4096;

/// Open WebSocket connections one peer address may hold (a NAT in front of an organization's
/// nodes; each node holds one).
pub const MAX_CONNECTIONS_PER_ADDRESS: usize = 32;
/// WebSocket connections that may be waiting for their `Hello` at once, in total.
pub const MAX_UNAUTHENTICATED: usize = 256;

/// A WebSocket connection's place in the per-address count, given back on drop.
pub(crate) struct AddressSlot {
    proxy: Arc<Proxy>,
    ip: std::net::IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut m = self
            .proxy
            .per_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("config", &self.config)
            .field("connected_nodes", &self.connected_nodes())
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy publishing to and consuming from `bus`, admitting the nodes `directory` binds,
    /// with its metrics registered in `registry`.
    pub fn new(
        config: ProxyConfig,
        bus: Arc<dyn Bus>,
        directory: Arc<dyn NodeDirectory>,
        registry: &mut Registry,
    ) -> Arc<Proxy> {
        let mut origin = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut origin);
        let (relay_tx, relay_rx) = mpsc::channel(RELAY_QUEUE);
        Arc::new(Proxy {
            config,
            bus,
            directory,
            metrics: Metrics::register(registry),
            table: RwLock::new(Table::default()),
            lifecycle: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
            per_address: Mutex::new(HashMap::new()),
            unauthenticated: Arc::new(tokio::sync::Semaphore::new(MAX_UNAUTHENTICATED)),
            origin: origin.iter().map(|b| format!("{b:02x}")).collect(),
            relay_tx,
            relay_rx: Mutex::new(Some(relay_rx)),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// The WebSocket endpoint at `config.path`, to merge into the platform's app. Requests
    /// must carry a [`TlsExporter`] extension ([`crate::tls::serve_tls`] and
    /// [`crate::tls::serve_plain`] insert it); without one the upgrade is refused with 500.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(&self.config.path, get(upgrade))
            .with_state(self.clone())
    }

    /// Forwards the bus's deliveries to the nodes' queues until `shutdown` completes or the
    /// bus closes, then closes every connection (`shutdown`). On a shared bus it also relays
    /// protocol frames for nodes other proxies hold, and forwards the frames they relay. Fails
    /// only if the bus cannot be subscribed to.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), BusError> {
        let mut deliveries = self.bus.subscribe_deliveries().await?;
        let mut relays = self.bus.subscribe_relays().await?;
        let publisher = lock(&self.relay_rx).take().map(|mut rx| {
            let bus = self.bus.clone();
            tokio::spawn(async move {
                while let Some(r) = rx.recv().await {
                    if let Err(e) = bus.relay(r).await {
                        tracing::warn!("frame not relayed to the other proxies: {e}");
                    }
                }
            })
        });
        tracing::info!(path = %self.config.path, shared_bus = self.bus.shared(), origin = %self.origin, "proxy forwarding deliveries");
        let mut reannounce = tokio::time::interval(self.config.reannounce_interval);
        reannounce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = reannounce.tick(), if self.bus.shared() => self.reannounce().await,
                delivery = deliveries.recv() => match delivery {
                    Some(d) => self.deliver(d),
                    None => {
                        tracing::info!("delivery bus closed; proxy stopping");
                        break;
                    }
                },
                Some(r) = relays.recv() => self.relayed(r),
            }
        }
        if let Some(p) = publisher {
            p.abort();
        }
        let conns: Vec<Arc<Conn>> = self.read_table().by_node.values().cloned().collect();
        tracing::info!(
            connections = conns.len(),
            "proxy shutting down; closing connections"
        );
        for c in conns {
            c.request_close(1001, "shutdown");
        }
        Ok(())
    }

    /// Number of authenticated connections.
    pub fn connected_nodes(&self) -> usize {
        self.read_table().by_node.len()
    }

    /// Whether `node_id` has an authenticated connection.
    pub fn is_connected(&self, node_id: &str) -> bool {
        self.read_table().by_node.contains_key(node_id)
    }

    /// Bytes queued for (or being written to) all connections together.
    pub fn queued_bytes(&self) -> usize {
        self.read_table()
            .by_node
            .values()
            .map(|c| c.queued_bytes.load(Ordering::Acquire))
            .sum()
    }

    fn deliver(&self, delivery: Delivery) {
        let conn = self.read_table().by_node.get(&delivery.node_id).cloned();
        let Some(conn) = conn else {
            self.metrics.dropped("offline");
            tracing::debug!(node_id = %delivery.node_id, bytes = delivery.frame.len(), "delivery dropped: node not connected");
            return;
        };
        let len = delivery.frame.len();
        if conn.enqueue(Bytes::from(delivery.frame)) {
            self.metrics.routed("delivery");
        } else {
            self.metrics.dropped("queue_full");
            tracing::debug!(node_id = %conn.node_id, bytes = len, "delivery dropped: node's queue is full");
        }
    }

    /// Routes a `Protocol` frame from `from` (already decoded into `envelope`), forwarding
    /// the original `bytes`.
    pub(crate) fn route(&self, from: &Conn, envelope: &SealedEnvelope, bytes: Bytes) {
        let header = &envelope.header;
        if header.sender != from.party {
            self.metrics.dropped("wrong_sender");
            tracing::warn!(
                node_id = %from.node_id, party = %from.party, claimed_sender = %header.sender,
                "protocol frame dropped: sender is not the connection's party"
            );
            return;
        }
        let table = self.read_table();
        let org = table.by_org.get(&from.organization_id);
        match &header.receiver {
            Some(receiver) => match org.and_then(|o| o.get(receiver)) {
                Some(to) => {
                    if to.enqueue(bytes) {
                        self.metrics.routed("protocol_p2p");
                    } else {
                        self.metrics.dropped("queue_full");
                        tracing::debug!(from = %from.party, to = %receiver, organization_id = %from.organization_id, "p2p frame dropped: receiver's queue is full");
                    }
                }
                None if self.bus.shared() => {
                    self.relay(from, Some(receiver.clone()), bytes);
                }
                None => {
                    self.metrics.dropped("offline");
                    tracing::debug!(from = %from.party, to = %receiver, organization_id = %from.organization_id, "p2p frame dropped: receiver not connected");
                }
            },
            None => {
                for to in org.into_iter().flat_map(|o| o.values()) {
                    if to.id == from.id {
                        continue;
                    }
                    if to.enqueue(bytes.clone()) {
                        self.metrics.routed("protocol_broadcast");
                    } else {
                        self.metrics.dropped("queue_full");
                        tracing::debug!(from = %from.party, to = %to.party, organization_id = %from.organization_id, "broadcast frame dropped: receiver's queue is full");
                    }
                }
                drop(table);
                // Other parties of the organization may be held by other proxies.
                if self.bus.shared() {
                    self.relay(from, None, bytes);
                }
            }
        }
    }

    /// The connection's id on the bus: this proxy instance and its number.
    pub(crate) fn connection_id(&self, conn: &Conn) -> String {
        format!("{}/{}", self.origin, conn.id)
    }

    /// The `NodeOnline` event of `conn`.
    pub(crate) fn online_event(&self, conn: &Conn) -> ProxyEvent {
        ProxyEvent::NodeOnline {
            node_id: conn.node_id.clone(),
            organization_id: conn.organization_id.clone(),
            party: conn.party.clone(),
            transport_cert: conn.transport_cert.clone(),
            connection: self.connection_id(conn),
        }
    }

    /// Repeats `NodeOnline` for every node held (shared bus), under the lifecycle lock so that
    /// it never follows that node's `NodeOffline`.
    async fn reannounce(&self) {
        let _lifecycle = self.lifecycle.lock().await;
        let conns: Vec<Arc<Conn>> = self.read_table().by_node.values().cloned().collect();
        for c in conns {
            self.publish(self.online_event(&c)).await;
        }
    }

    /// Queues a frame for the other proxies (dropped, and counted, when the queue is full).
    fn relay(&self, from: &Conn, receiver: Option<String>, bytes: Bytes) {
        let r = Relay {
            origin: self.origin.clone(),
            organization_id: from.organization_id.clone(),
            sender: from.party.clone(),
            receiver,
            frame: bytes.to_vec(),
        };
        if self.relay_tx.try_send(r).is_ok() {
            self.metrics.routed("relay_out");
        } else {
            self.metrics.dropped("relay_queue_full");
            tracing::debug!(from = %from.party, organization_id = %from.organization_id, "frame not relayed: relay queue full");
        }
    }

    /// A frame another proxy relayed: to the receiver's connection here, or (a broadcast) to
    /// every connection of the organization here but the sender's. Its own are skipped.
    fn relayed(&self, r: Relay) {
        if r.origin == self.origin {
            return;
        }
        let table = self.read_table();
        let Some(org) = table.by_org.get(&r.organization_id) else {
            return;
        };
        let bytes = Bytes::from(r.frame);
        let targets: Vec<&Arc<Conn>> = match &r.receiver {
            Some(receiver) => org.get(receiver).into_iter().collect(),
            None => org.values().filter(|c| c.party != r.sender).collect(),
        };
        for to in targets {
            if to.enqueue(bytes.clone()) {
                self.metrics.routed("relay_in");
            } else {
                self.metrics.dropped("queue_full");
                tracing::debug!(to = %to.party, organization_id = %r.organization_id, "relayed frame dropped: receiver's queue is full");
            }
        }
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes `conn` the connection of its node id and of its (organization, party); any
    /// connection it displaces is asked to close with `replaced`.
    pub(crate) fn register(&self, conn: &Arc<Conn>) {
        let mut table = self.write_table();
        let mut displaced = Vec::new();
        if let Some(old) = table.by_node.insert(conn.node_id.clone(), conn.clone()) {
            displaced.push(old);
        }
        if let Some(old) = table
            .by_org
            .entry(conn.organization_id.clone())
            .or_default()
            .insert(conn.party.clone(), conn.clone())
            && old.node_id != conn.node_id
        {
            tracing::warn!(
                organization_id = %conn.organization_id, party = %conn.party,
                old_node_id = %old.node_id, new_node_id = %conn.node_id,
                "party now served by another node id; closing the older connection"
            );
            displaced.push(old);
        }
        // A node whose old connection was displaced from the party slot by another node keeps
        // its by_node entry until its connection ends, so its NodeOffline is still published.
        self.metrics.set_connected(table.by_node.len());
        drop(table);
        for old in displaced {
            old.request_close(1000, "replaced");
        }
    }

    /// Removes `conn` if it is still the registered connection of its node id; `true` when it
    /// was (so the node is now offline).
    pub(crate) fn unregister(&self, conn: &Conn) -> bool {
        let mut table = self.write_table();
        let current = table
            .by_node
            .get(&conn.node_id)
            .is_some_and(|c| c.id == conn.id);
        if current {
            table.by_node.remove(&conn.node_id);
        }
        if let Some(org) = table.by_org.get_mut(&conn.organization_id) {
            if org.get(&conn.party).is_some_and(|c| c.id == conn.id) {
                org.remove(&conn.party);
            }
            if org.is_empty() {
                table.by_org.remove(&conn.organization_id);
            }
        }
        self.metrics.set_connected(table.by_node.len());
        current
    }

    /// Publishes an event; a failure is logged (the coordinator is gone: shutdown).
    pub(crate) async fn publish(&self, event: ProxyEvent) {
        if let Err(e) = self.bus.publish(event).await {
            tracing::warn!(error = %e, "proxy event not published");
        }
    }

    fn read_table(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_table(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }
}

async fn upgrade(
    State(proxy): State<Arc<Proxy>>,
    exporter: Option<axum::Extension<TlsExporter>>,
    budget: Option<axum::Extension<ReadBudget>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    ws: WebSocketUpgrade,
) -> Response {
    let (Some(axum::Extension(exporter)), Some(axum::Extension(budget))) = (exporter, budget)
    else {
        tracing::error!(
            "proxy request without a TLS exporter: serve the router with mpc_proxy::tls::serve_tls (or serve_plain for loopback tests)"
        );
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "proxy endpoint served without TLS exporter",
        )
            .into_response();
    };
    let busy = |what: &str| (StatusCode::TOO_MANY_REQUESTS, format!("{what}\n")).into_response();
    let slot = match peer {
        Some(axum::Extension(axum::extract::ConnectInfo(addr))) => {
            let ip = addr.ip();
            let mut m = proxy.per_address.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(ip).or_insert(0);
            if *n >= MAX_CONNECTIONS_PER_ADDRESS {
                tracing::warn!(%ip, max = MAX_CONNECTIONS_PER_ADDRESS, "proxy connection refused: too many from this address");
                return busy("too many connections from this address");
            }
            *n += 1;
            Some(AddressSlot {
                proxy: proxy.clone(),
                ip,
            })
        }
        None => None,
    };
    let Ok(unauthenticated) = proxy.unauthenticated.clone().try_acquire_owned() else {
        tracing::warn!(
            max = MAX_UNAUTHENTICATED,
            "proxy connection refused: too many unauthenticated connections"
        );
        return busy("too many connections waiting to authenticate");
    };
    // Until the Hello is verified the client may send only a few KiB (crate::budget).
    budget.allow_more(PRE_AUTH_BYTES);
    let max = proxy.config.max_frame_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(16 * 1024)
        .on_upgrade(move |socket| async move {
            let pre_auth = crate::conn::PreAuth {
                budget,
                unauthenticated,
            };
            crate::conn::serve(proxy, socket, exporter, pre_auth).await;
            drop(slot);
        })
}

#[cfg(test)]
mod tests {

    fn test_cert() -> mpc_transport::keys::TransportCert {
        mpc_transport::keys::TransportCert {
            node_id: "n".into(),
            x25519_public: [1; 32],
            signature: String::new(),
        }
    }

    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = ProxyConfig::default();
        assert_eq!(c.path, "/proxy");
        assert_eq!(c.max_frame_bytes, 8_388_608);
        assert_eq!(c.queue_frames, 256);
        assert_eq!(c.queue_bytes, 33_554_432);
        assert_eq!(c.slow_consumer_grace, Duration::from_secs(10));
        assert_eq!(c.ping_interval, Duration::from_secs(15));
        assert_eq!(c.idle_timeout, Duration::from_secs(45));
    }

    fn conn(queue_frames: usize, queue_bytes: usize) -> (Arc<Conn>, mpsc::Receiver<Bytes>) {
        let config = ProxyConfig {
            queue_frames,
            queue_bytes,
            ..ProxyConfig::default()
        };
        let (c, rx, _close) =
            Conn::new(1, "n".into(), "o".into(), "a".into(), test_cert(), &config);
        (c, rx)
    }

    #[tokio::test]
    async fn queue_is_bounded_in_bytes() {
        let (c, _rx) = conn(100, 10);
        assert!(c.enqueue(Bytes::from(vec![0; 6])));
        assert!(lock(&c.over_limit_since).is_none());
        assert!(!c.enqueue(Bytes::from(vec![0; 6])));
        assert!(lock(&c.over_limit_since).is_some());
        assert!(c.enqueue(Bytes::from(vec![0; 4])));
        assert_eq!(c.queued_bytes.load(Ordering::Acquire), 10);
    }

    #[tokio::test]
    async fn queue_is_bounded_in_frames() {
        let (c, mut rx) = conn(2, 1000);
        assert!(c.enqueue(Bytes::from_static(b"1")));
        assert!(c.enqueue(Bytes::from_static(b"2")));
        assert!(!c.enqueue(Bytes::from_static(b"3")));
        assert_eq!(c.queued_bytes.load(Ordering::Acquire), 2);
        assert_eq!(rx.recv().await.unwrap(), Bytes::from_static(b"1"));
    }

    #[tokio::test]
    async fn an_oversized_frame_fits_an_empty_queue_only() {
        let (c, _rx) = conn(10, 4);
        assert!(c.enqueue(Bytes::from(vec![0; 8])));
        assert!(!c.enqueue(Bytes::from(vec![0; 1])));
    }

    #[tokio::test]
    async fn first_close_request_wins() {
        let config = ProxyConfig::default();
        let (c, _rx, close) =
            Conn::new(1, "n".into(), "o".into(), "a".into(), test_cert(), &config);
        c.request_close(1000, "replaced");
        c.request_close(1001, "shutdown");
        assert_eq!(
            *close.borrow(),
            Some(CloseRequest {
                code: 1000,
                reason: "replaced"
            })
        );
    }
}
