//! Prometheus metrics of the coordinator.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub endpoint: String,
    pub outcome: String,
}

/// Labels of outcome counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Metrics {
    pub requests: Family<RequestLabels, Counter>,
    pub sign_latency: Histogram,
    pub sign_outcomes: Family<OutcomeLabels, Counter>,
    pub keygen_outcomes: Family<OutcomeLabels, Counter>,
    pub online_nodes: Gauge,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Metrics {
            requests: Family::default(),
            sign_latency: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            sign_outcomes: Family::default(),
            keygen_outcomes: Family::default(),
            online_nodes: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("mpc_coordinator");
        r.register(
            "api_requests",
            "API requests by endpoint and outcome (envelope code)",
            m.requests.clone(),
        );
        r.register(
            "sign_latency_seconds",
            "Time from a signing request to its end (done, rejected, failed)",
            m.sign_latency.clone(),
        );
        r.register(
            "sign_outcomes",
            "Signing requests by final state",
            m.sign_outcomes.clone(),
        );
        r.register(
            "keygen_outcomes",
            "Key generations by outcome",
            m.keygen_outcomes.clone(),
        );
        r.register(
            "online_nodes",
            "Nodes connected to the platform",
            m.online_nodes.clone(),
        );
        m
    }
}
