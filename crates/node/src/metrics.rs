//! Prometheus metrics of the node, served on `GET /metrics` of a listener of its own when
//! `[metrics] enable = true` (our extension; off by default). Counts and durations only: no
//! key, share, password, digest, request id or party id is ever a label.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `mpc_node_tasks` | counter | `kind` (keygen, sign, refresh, repair, …), `outcome` (keygen_done, signed, refreshed, rejected, failed, aborted, busy) |
//! | `mpc_node_task_duration_seconds` | histogram | `kind` |
//! | `mpc_node_callback_decisions` | counter | `decision` (approved, rejected, error) |
//! | `mpc_node_platform_connected` | gauge | – (1 while a proxy connection is authenticated) |
//! | `mpc_node_platform_connections` | counter | – (connections that reached the hello) |
//! | `mpc_node_platform_disconnects` | counter | – |
//! | `mpc_node_sealed` | gauge | – (1 sealed or uninitialized, 0 unsealed; read at each scrape) |

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    decision: String,
}

fn duration_histogram() -> Histogram {
    // 5 ms … ~82 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

struct Inner {
    registry: Registry,
    tasks: Family<TaskLabels, Counter>,
    durations: Family<KindLabels, Histogram, fn() -> Histogram>,
    decisions: Family<DecisionLabels, Counter>,
    connected: Gauge,
    connections: Counter,
    disconnects: Counter,
    sealed: Gauge,
}

/// The node's metrics. Cheap to clone (one registry shared).
#[derive(Clone)]
pub struct NodeMetrics(Arc<Inner>);

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeMetrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let tasks = Family::<TaskLabels, Counter>::default();
        let durations = Family::<KindLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram,
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        let (connected, connections, disconnects, sealed) = (
            Gauge::default(),
            Counter::default(),
            Counter::default(),
            Gauge::default(),
        );
        {
            let r = registry.sub_registry_with_prefix("mpc_node");
            r.register(
                "tasks",
                "Tasks from the platform by kind and outcome",
                tasks.clone(),
            );
            r.register(
                "task_duration_seconds",
                "Time from taking a task to its outcome",
                durations.clone(),
            );
            r.register(
                "callback_decisions",
                "Answers of the callback server (approved, rejected, error)",
                decisions.clone(),
            );
            r.register(
                "platform_connected",
                "1 while an authenticated proxy connection is up",
                connected.clone(),
            );
            r.register(
                "platform_connections",
                "Proxy connections that reached the hello",
                connections.clone(),
            );
            r.register(
                "platform_disconnects",
                "Proxy connections lost after the hello",
                disconnects.clone(),
            );
            r.register(
                "sealed",
                "1 while the key store is sealed (or uninitialized)",
                sealed.clone(),
            );
        }
        NodeMetrics(Arc::new(Inner {
            registry,
            tasks,
            durations,
            decisions,
            connected,
            connections,
            disconnects,
            sealed,
        }))
    }

    /// A task of `kind` ended with `outcome` after `seconds`.
    pub fn task_ended(&self, kind: &str, outcome: &str, seconds: f64) {
        self.0
            .tasks
            .get_or_create(&TaskLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.0
            .durations
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .observe(seconds);
    }

    /// The callback server answered (`approved`, `rejected`) or could not be asked (`error`).
    pub fn callback_decision(&self, decision: &str) {
        self.0
            .decisions
            .get_or_create(&DecisionLabels {
                decision: decision.to_owned(),
            })
            .inc();
    }

    /// An authenticated proxy connection is up.
    pub fn connected(&self) {
        self.0.connections.inc();
        self.0.connected.set(1);
    }

    /// The proxy connection is gone.
    pub fn disconnected(&self) {
        if self.0.connected.get() == 1 {
            self.0.disconnects.inc();
        }
        self.0.connected.set(0);
    }

    /// The text exposition format, with `sealed` as given.
    pub fn encode(&self, sealed: bool) -> String {
        self.0.sealed.set(i64::from(sealed));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.0.registry);
        out
    }
}

/// The metrics listener's router: `GET /metrics` only.
pub fn router(node: Arc<crate::node::Node>) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|axum::extract::State(node): axum::extract::State<Arc<crate::node::Node>>| async move {
                let sealed = !*node.watch_unsealed().borrow();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    node.metrics().encode(sealed),
                )
            }),
        )
        .with_state(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_encoded_without_secrets_in_labels() {
        let m = NodeMetrics::new();
        m.task_ended("sign", "signed", 0.04);
        m.task_ended("sign", "signed", 0.06);
        m.task_ended("keygen", "failed", 2.0);
        m.callback_decision("approved");
        m.callback_decision("rejected");
        m.connected();
        m.disconnected();
        m.connected();
        let text = m.encode(false);
        for line in [
            "mpc_node_tasks_total{kind=\"sign\",outcome=\"signed\"} 2",
            "mpc_node_tasks_total{kind=\"keygen\",outcome=\"failed\"} 1",
            "mpc_node_task_duration_seconds_count{kind=\"sign\"} 2",
            "mpc_node_callback_decisions_total{decision=\"approved\"} 1",
            "mpc_node_callback_decisions_total{decision=\"rejected\"} 1",
            "mpc_node_platform_connected 1",
            "mpc_node_platform_connections_total 2",
            "mpc_node_platform_disconnects_total 1",
            "mpc_node_sealed 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(m.encode(true).contains("mpc_node_sealed 1"));
    }
}
