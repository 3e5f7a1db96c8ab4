//! The proxy's Prometheus metrics.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labeled = Family<[(&'static str, &'static str); 1], Counter>;

/// Counters and gauges, registered once in the caller's registry.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    connected: Gauge,
    routed: Labeled,
    dropped: Labeled,
    auth_failures: Labeled,
    disconnects: Labeled,
}

impl Metrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "mpc_proxy_connected_nodes",
            "Authenticated node connections",
            m.connected.clone(),
        );
        registry.register(
            "mpc_proxy_frames_routed",
            "Frames queued for a node, by kind (protocol_p2p, protocol_broadcast, delivery)",
            m.routed.clone(),
        );
        registry.register(
            "mpc_proxy_frames_dropped",
            "Frames dropped, by reason (offline, queue_full, wrong_sender)",
            m.dropped.clone(),
        );
        registry.register(
            "mpc_proxy_auth_failures",
            "Refused node authentications, by reason",
            m.auth_failures.clone(),
        );
        registry.register(
            "mpc_proxy_disconnects",
            "Authenticated connections that ended, by reason",
            m.disconnects.clone(),
        );
        m
    }

    pub(crate) fn set_connected(&self, n: usize) {
        self.connected.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub(crate) fn routed(&self, kind: &'static str) {
        self.routed.get_or_create(&[("kind", kind)]).inc();
    }

    pub(crate) fn dropped(&self, reason: &'static str) {
        self.dropped.get_or_create(&[("reason", reason)]).inc();
    }

    pub(crate) fn auth_failure(&self, reason: &'static str) {
        self.auth_failures
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    pub(crate) fn disconnect(&self, reason: &'static str) {
        self.disconnects.get_or_create(&[("reason", reason)]).inc();
    }
}
