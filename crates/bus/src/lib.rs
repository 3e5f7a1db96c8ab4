//! The platform's internal bus: how the coordinator and the proxy talk (SPEC.md §1,
//! `docs/platform.md`).
//!
//! Two flows, both typed:
//! * [`Delivery`]: coordinator → proxy, "send these frame bytes to node X" (tasks and aborts).
//!   The proxy that holds X's connection queues them; if no proxy holds it the delivery is
//!   dropped and the coordinator learns it from the missing result (and from
//!   [`ProxyEvent::NodeOffline`]).
//! * [`ProxyEvent`]: proxy → coordinator, nodes coming online or going away and the task
//!   results they send.
//!
//! [`Bus`] is the interface; [`InProcessBus`] is the embedded backend (tokio channels, one
//! process holding both roles); [`nats::NatsBus`] carries the same flows over NATS for
//! platforms split over several processes (lossy: see its module docs), in the bytes of
//! [`codec`].
//!
//! Both directions are bounded: a publisher waits while the consumer is behind (backpressure,
//! never unbounded memory), and gets [`BusError::Closed`] once the other side is gone.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![deny(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use mpc_transport::keys::TransportCert;
use tokio::sync::mpsc;

pub mod codec;
pub mod nats;

/// Capacity of each in-process channel (messages).
pub const CHANNEL_CAPACITY: usize = 1024;

/// Frame bytes for one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The receiving node.
    pub node_id: String,
    /// An encoded `mpc_transport::frame::Frame` (a `Task` or an `Abort`).
    pub frame: Vec<u8>,
}

/// What the proxy reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyEvent {
    /// A node authenticated (a newer connection for the same node id replaced any older one).
    NodeOnline {
        /// The node.
        node_id: String,
        /// Its organization (from the binding the proxy checked).
        organization_id: String,
        /// Its party id in that organization.
        party: String,
        /// The transport key certificate from its `Hello` (verified by the proxy).
        transport_cert: TransportCert,
        /// The connection: the proxy instance and its connection number (`<proxy>/<n>`). On a
        /// shared bus a proxy repeats this event for every node it holds, periodically.
        connection: String,
    },
    /// A node's connection ended (and no newer one exists on that proxy).
    NodeOffline {
        /// The node.
        node_id: String,
        /// The connection that ended; a coordinator that knows a newer one of the node (on
        /// another proxy) ignores the event.
        connection: String,
    },
    /// A node sent a `TaskResult` frame; `result` is its CBOR body (`mpc_transport::task`).
    TaskResult {
        /// The sending node (from the authenticated connection).
        node_id: String,
        /// Its party (from the binding).
        party: String,
        /// `TaskResult` bytes, undecoded.
        result: Vec<u8>,
    },
}

/// A protocol frame for nodes of an organization that other proxies hold (proxy → proxies),
/// on a bus shared by several proxies ([`Bus::shared`]). The receiving proxies forward it to
/// their own connections of the organization: to `receiver`'s, or (a broadcast) to every one
/// but `sender`'s. The origin proxy skips its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relay {
    /// The proxy instance that relayed it.
    pub origin: String,
    /// The organization.
    pub organization_id: String,
    /// The sending party (checked by the origin proxy against the sender's connection).
    pub sender: String,
    /// The receiving party; `None` for a broadcast.
    pub receiver: Option<String>,
    /// The `Protocol` frame bytes, as the sender sent them.
    pub frame: Vec<u8>,
}

/// Why a publish or subscribe failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The other side is gone (shutdown).
    #[error("the bus is closed")]
    Closed,
    /// This backend hands out one subscription per flow and it was taken already.
    #[error(
        "the {0} subscription was already taken (the in-process bus has one consumer per flow)"
    )]
    AlreadySubscribed(&'static str),
    /// Backend failure (network backends).
    #[error("bus backend: {0}")]
    Backend(String),
}

/// A boxed future, so that [`Bus`] can be used as `dyn Bus`.
pub type BusFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BusError>> + Send + 'a>>;

/// Receiving end of a subscription.
#[derive(Debug)]
pub struct Subscription<T>(mpsc::Receiver<T>);

impl<T> Subscription<T> {
    /// Wraps a channel (backends forward into one).
    pub fn new(rx: mpsc::Receiver<T>) -> Self {
        Self(rx)
    }

    /// The next message; `None` once the bus is closed.
    pub async fn recv(&mut self) -> Option<T> {
        self.0.recv().await
    }
}

/// The bus between the roles.
pub trait Bus: Send + Sync + 'static {
    /// Coordinator: queue frame bytes for a node (waits while the proxy is behind).
    fn deliver(&self, delivery: Delivery) -> BusFuture<'_, ()>;
    /// Proxy: the deliveries to forward to nodes.
    fn subscribe_deliveries(&self) -> BusFuture<'_, Subscription<Delivery>>;
    /// Proxy: report an event (waits while the coordinator is behind).
    fn publish(&self, event: ProxyEvent) -> BusFuture<'_, ()>;
    /// Coordinator: the proxy's events.
    fn subscribe_events(&self) -> BusFuture<'_, Subscription<ProxyEvent>>;
    /// Whether other proxies may share this bus (then frames for nodes held elsewhere are
    /// relayed). `false` for the in-process bus: its proxy holds every connection.
    fn shared(&self) -> bool {
        false
    }
    /// Proxy: hands a protocol frame to the other proxies ([`Relay`]).
    fn relay(&self, relay: Relay) -> BusFuture<'_, ()>;
    /// Proxy: the frames other proxies relay (its own included: it skips them by `origin`).
    fn subscribe_relays(&self) -> BusFuture<'_, Subscription<Relay>>;
}

/// Where a node is bound: its organization and party id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The organization.
    pub organization_id: String,
    /// The node's party id in it (`"a"`..).
    pub party: String,
}

/// The proxy's view of the bindings (implemented by the coordinator over its store): only
/// bound nodes get in.
pub trait NodeDirectory: Send + Sync + 'static {
    /// The binding of `node_id`, `None` when it is not bound to any organization.
    fn binding<'a>(&'a self, node_id: &'a str) -> BusFuture<'a, Option<Binding>>;
}

/// Both flows as bounded tokio channels inside one process.
#[derive(Debug)]
pub struct InProcessBus {
    deliveries_tx: mpsc::Sender<Delivery>,
    deliveries_rx: Mutex<Option<mpsc::Receiver<Delivery>>>,
    events_tx: mpsc::Sender<ProxyEvent>,
    events_rx: Mutex<Option<mpsc::Receiver<ProxyEvent>>>,
    /// Kept so the relay subscription stays open; nothing is relayed in one process.
    _relays_tx: mpsc::Sender<Relay>,
    relays_rx: Mutex<Option<mpsc::Receiver<Relay>>>,
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessBus {
    /// A bus with [`CHANNEL_CAPACITY`] per flow.
    pub fn new() -> Self {
        let (deliveries_tx, deliveries_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (events_tx, events_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (relays_tx, relays_rx) = mpsc::channel(1);
        Self {
            deliveries_tx,
            deliveries_rx: Mutex::new(Some(deliveries_rx)),
            events_tx,
            events_rx: Mutex::new(Some(events_rx)),
            _relays_tx: relays_tx,
            relays_rx: Mutex::new(Some(relays_rx)),
        }
    }
}

fn take<T>(slot: &Mutex<Option<T>>, what: &'static str) -> Result<T, BusError> {
    let mut guard = match slot.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    guard.take().ok_or(BusError::AlreadySubscribed(what))
}

impl Bus for InProcessBus {
    fn deliver(&self, delivery: Delivery) -> BusFuture<'_, ()> {
        Box::pin(async move {
            self.deliveries_tx
                .send(delivery)
                .await
                .map_err(|_| BusError::Closed)
        })
    }

    fn subscribe_deliveries(&self) -> BusFuture<'_, Subscription<Delivery>> {
        Box::pin(async move { take(&self.deliveries_rx, "deliveries").map(Subscription::new) })
    }

    fn publish(&self, event: ProxyEvent) -> BusFuture<'_, ()> {
        Box::pin(async move {
            self.events_tx
                .send(event)
                .await
                .map_err(|_| BusError::Closed)
        })
    }

    fn subscribe_events(&self) -> BusFuture<'_, Subscription<ProxyEvent>> {
        Box::pin(async move { take(&self.events_rx, "events").map(Subscription::new) })
    }

    /// One process, one proxy: there is nobody to relay to.
    fn relay(&self, _relay: Relay) -> BusFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn subscribe_relays(&self) -> BusFuture<'_, Subscription<Relay>> {
        Box::pin(async move { take(&self.relays_rx, "relays").map(Subscription::new) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn carries_both_flows_in_order() {
        let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new());
        let mut deliveries = bus.subscribe_deliveries().await.unwrap();
        let mut events = bus.subscribe_events().await.unwrap();
        for i in 0..3u8 {
            bus.deliver(Delivery {
                node_id: "n".into(),
                frame: vec![i],
            })
            .await
            .unwrap();
        }
        bus.publish(ProxyEvent::NodeOffline {
            node_id: "n".into(),
            connection: "p/1".into(),
        })
        .await
        .unwrap();
        for i in 0..3u8 {
            assert_eq!(deliveries.recv().await.unwrap().frame, vec![i]);
        }
        assert_eq!(
            events.recv().await.unwrap(),
            ProxyEvent::NodeOffline {
                node_id: "n".into(),
                connection: "p/1".into(),
            }
        );
    }

    #[tokio::test]
    async fn one_consumer_per_flow() {
        let bus = InProcessBus::new();
        let _d = bus.subscribe_deliveries().await.unwrap();
        assert_eq!(
            bus.subscribe_deliveries().await.unwrap_err(),
            BusError::AlreadySubscribed("deliveries")
        );
        let _e = bus.subscribe_events().await.unwrap();
        assert!(bus.subscribe_events().await.is_err());
    }

    #[tokio::test]
    async fn publisher_learns_the_consumer_is_gone() {
        let bus = InProcessBus::new();
        drop(bus.subscribe_events().await.unwrap());
        assert_eq!(
            bus.publish(ProxyEvent::NodeOffline {
                node_id: "n".into(),
                connection: "p/1".into(),
            })
            .await,
            Err(BusError::Closed)
        );
    }

    #[tokio::test]
    async fn bounded_publisher_waits_for_the_consumer() {
        let bus = Arc::new(InProcessBus::new());
        let mut d = bus.subscribe_deliveries().await.unwrap();
        for _ in 0..CHANNEL_CAPACITY {
            bus.deliver(Delivery {
                node_id: "n".into(),
                frame: vec![],
            })
            .await
            .unwrap();
        }
        // The next publish cannot complete until the consumer takes one.
        let b2 = bus.clone();
        let pending = tokio::spawn(async move {
            b2.deliver(Delivery {
                node_id: "n".into(),
                frame: vec![1],
            })
            .await
        });
        tokio::task::yield_now().await;
        assert!(!pending.is_finished());
        d.recv().await.unwrap();
        pending.await.unwrap().unwrap();
    }
}
