//! Runs the coordinator's tasks (`docs/platform.md`, "Tasks" and "Node runtime").
//!
//! For every [`Task`], stage by stage:
//! - [`intake`]: the task frame is signed by the platform key this node pins, was not taken
//!   before (until its deadline, across restarts), and for an existing key names the committee
//!   the key was generated with; otherwise it is refused (a forged, altered or replayed task
//!   gets no result and blames nobody);
//! - [`admission`]: check the committee (every transport certificate against its node id, this
//!   node a member under its own party, the deadline, the quarantine) and derive the run's
//!   [`admission::Plan`]; ask the callback servers about exactly what is about to run;
//! - [`keygen`] / [`sign`] / [`refresh`] / [`repair`]: build the callback request, check the
//!   approval covers it (`authorizes_keygen` / `authorizes_sign` / `authorizes_key_refresh` /
//!   `authorizes_key_repair`), then run the protocol on a thread of its own
//!   (`mpc_tss::Session` is `!Send`; one thread per run, so at most [`MAX_RUNS`]) and answer one
//!   [`TaskResult`] (none after an `Abort`);
//! - [`generation`]: which of a key's shares a task uses (a refreshed or repaired share waits
//!   beside the current one until a task names its generation);
//! - [`wire`]: one run's connection to the network, owned by its session thread;
//! - [`registry`]: the runs this node has, their inboxes and their one abort signal
//!   ([`registry::Control`]: the coordinator's `Abort` and the node's shutdown both go through
//!   it, and every wait of a run watches it), the pending buffer and the quarantine;
//! - [`fail`]: why a run ended, mapped to the result the coordinator gets.
//!
//! Protocol frames: outgoing `mpc_tss::Envelope`s are sealed with the identity key (p2p ones
//! encrypted to the receiver's verified transport key); incoming ones are routed by execution
//! id, opened with the claimed sender's identity key and deduplicated by
//! `(execution_id, round, sender, receiver)` before `Session::handle`. A frame that does not
//! open (forged, altered, replayed from another run, misrouted) is logged and dropped: the
//! proxy is untrusted, and a bogus frame must not abort a run. Frames for a run this node does
//! not know yet are buffered ([`PENDING_MAX_FRAMES`], [`PENDING_MAX_BYTES`], [`PENDING_TTL`]).

mod admission;
mod fail;
mod generation;
mod intake;
mod keygen;
mod refresh;
mod registry;
mod repair;
mod sign;
mod wire;

use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mpc_callback::mpc_wire::signature::EcdsaSigner;
use mpc_callback::{CallbackClient, EncryptConfig};
use mpc_transport::frame::Frame;
use mpc_transport::keys::TransportSecret;
use mpc_transport::signed::sign_result;
use mpc_transport::task::{Fault, Outcome, TASK_VERSION, Task, TaskBody, TaskResult};
use tokio::sync::mpsc;

use crate::platform_key::PlatformPin;
use crate::primes::PersistentPrimes;
use crate::replay::SeenTasks;
use crate::store::SecretStore;

use admission::Plan;
use fail::{RunFail, outcome_name};
use registry::{Control, Refused, RunMsg, State};

/// Frames kept for execution ids this node does not run (yet).
pub const PENDING_MAX_FRAMES: usize = 64;
/// Bytes kept for execution ids this node does not run (yet).
pub const PENDING_MAX_BYTES: usize = 16 * 1024 * 1024;
/// How long such a frame is kept.
pub const PENDING_TTL: Duration = Duration::from_secs(30);
/// Frames waiting in one run's inbox; more are dropped (a run needs a few dozen, so only a
/// flooding proxy hits this).
pub const RUN_INBOX_FRAMES: usize = 1024;
/// Bytes of protocol frames one run may hold (inbox and stash); more are dropped. A run's
/// largest messages (CGGMP aux-info proofs) are a few hundred KiB each.
pub const RUN_INBOX_BYTES: usize = 32 * 1024 * 1024;
/// Bytes of protocol frames all runs together may hold.
pub const INBOX_TOTAL_BYTES: usize = 128 * 1024 * 1024;
/// Runs registered at once (running, or waiting for the callback); further
/// tasks are refused as `Local` "node busy". It also bounds the session threads (one per run):
/// a run never waits for a session slot. A smaller cap on sessions deadlocks across nodes: each
/// node fills its slots with a different subset of the concurrent tasks (the order in which
/// tasks reach their sessions depends on each node's callback latency), and every session then
/// waits for peers that wait for a slot, until the deadline (measured: 16 concurrent DKLs23
/// signatures with 4 slots all stalled). With [`mpc_transport::task::MAX_TASK_BYTES`] per
/// task this bounds the memory tasks hold.
pub const MAX_RUNS: usize = 64;

/// What the runtime needs to run tasks.
pub struct RuntimeParams {
    /// The node's P-256 identity key (signs frames, results and callback requests).
    pub identity: Arc<EcdsaSigner>,
    /// The node's X25519 transport secret.
    pub transport: TransportSecret,
    /// `[app] party-id`: tasks naming this node under another party are refused.
    pub party: String,
    /// The unsealed store.
    pub store: Arc<dyn SecretStore>,
    /// The callback client (`[callback]`).
    pub callback: CallbackClient,
    /// `[encrypt-signature]`.
    pub encrypt: EncryptConfig,
    /// The prime pool.
    pub primes: PersistentPrimes,
    /// The platform task-signing key this node accepts tasks from.
    pub platform: PlatformPin,
    /// The tasks taken whose deadline has not passed.
    pub seen: SeenTasks,
    /// Where task outcomes, callback decisions and the connection state are counted.
    pub metrics: crate::metrics::NodeMetrics,
    /// Where callback decisions and signatures are recorded (`[audit]`).
    pub audit: crate::audit::NodeAudit,
}

impl std::fmt::Debug for RuntimeParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeParams")
            .field("party", &self.party)
            .finish_non_exhaustive()
    }
}

/// Runs tasks and routes their protocol frames. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("node_id", &self.inner.node_id)
            .field("party", &self.inner.party)
            .finish_non_exhaustive()
    }
}

struct Inner {
    identity: Arc<EcdsaSigner>,
    transport: Arc<TransportSecret>,
    node_id: String,
    party: String,
    store: Arc<dyn SecretStore>,
    callback: CallbackClient,
    encrypt: EncryptConfig,
    primes: PersistentPrimes,
    platform: PlatformPin,
    seen: SeenTasks,
    metrics: crate::metrics::NodeMetrics,
    audit: crate::audit::NodeAudit,
    state: Mutex<State>,
    /// Serializes promotions of refreshed shares with the writes of waiting ones, and holds
    /// the current records read ([`generation`]).
    shares: Mutex<generation::ShareCache>,
    out: mpsc::UnboundedSender<Frame>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Runtime {
    /// A runtime sending its frames (results, protocol frames) to `out`.
    pub fn new(params: RuntimeParams, out: mpsc::UnboundedSender<Frame>) -> Self {
        let node_id = mpc_callback::mpc_wire::keys::node_id(params.identity.verifying_key());
        Runtime {
            inner: Arc::new(Inner {
                identity: params.identity,
                transport: Arc::new(params.transport),
                node_id,
                party: params.party,
                store: params.store,
                callback: params.callback,
                encrypt: params.encrypt,
                primes: params.primes,
                platform: params.platform,
                seen: params.seen,
                metrics: params.metrics,
                audit: params.audit,
                state: Mutex::new(State::default()),
                shares: Mutex::new(generation::ShareCache::default()),
                out,
            }),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Where this node's outcomes and connection state are counted.
    pub fn metrics(&self) -> &crate::metrics::NodeMetrics {
        &self.inner.metrics
    }

    /// Handles a frame from the proxy: `Task` starts a run, `Protocol` goes to its run (or the
    /// pending buffer), `Abort` stops a run. Other kinds are ignored here.
    pub fn handle_frame(&self, frame: Frame) {
        match frame {
            Frame::Task(bytes) => {
                let me = self.clone();
                tokio::spawn(async move { me.take(bytes).await });
            }
            Frame::Protocol(sealed) => self.route(Box::new(sealed)),
            Frame::Abort(a) => self.abort(&a.execution_id, &a.reason),
            other => tracing::debug!(kind = ?other.kind(), "frame ignored by the task runtime"),
        }
    }

    fn reply(&self, task_id: &str, outcome: Outcome) {
        let result = TaskResult {
            version: TASK_VERSION,
            task_id: task_id.to_owned(),
            party: self.inner.party.clone(),
            outcome,
        };
        // Signed with the identity key: the coordinator checks it against this node's id.
        match sign_result(&self.inner.identity, &result) {
            Ok(bytes) => {
                let _ = self.inner.out.send(Frame::TaskResult(bytes));
            }
            Err(e) => tracing::error!(task_id, "task result not encodable: {e}"),
        }
    }

    async fn run_task(&self, task: Task) {
        let task_id = task.task_id.clone();
        let started = Instant::now();
        let plan = match self.plan(&task) {
            Ok(p) => p,
            Err(detail) => {
                tracing::warn!(task_id = %task_id, "task refused: {detail}");
                self.reply(
                    &task_id,
                    Outcome::Failed {
                        fault: Fault::BadTask,
                        detail,
                        culprits: vec![],
                    },
                );
                return;
            }
        };
        let (rx, control) = match self.register(task.execution_unique, &plan.eids) {
            Ok(r) => r,
            Err(Refused::Duplicate) => {
                tracing::warn!(task_id = %task_id, "task with an execution id already running; ignored");
                return;
            }
            Err(Refused::Busy) => {
                tracing::warn!(task_id = %task_id, max = MAX_RUNS, "task refused: node busy");
                self.inner.metrics.task_ended(
                    plan.kind_name(),
                    "busy",
                    started.elapsed().as_secs_f64(),
                );
                self.reply(
                    &task_id,
                    Outcome::Failed {
                        fault: Fault::Local,
                        detail: format!("node busy: {MAX_RUNS} runs in progress"),
                        culprits: vec![],
                    },
                );
                return;
            }
        };
        tracing::info!(
            task_id = %task_id,
            kind = plan.kind_name(),
            key_id = %plan.key_id,
            parties = %plan.parties_str(),
            "task accepted"
        );
        let outcome = self.execute(&task, &plan, rx, &control).await;
        self.unregister(&task.execution_unique, &plan.eids);
        let outcome = match outcome {
            Ok(o) => Some(o),
            Err(RunFail::Peer {
                detail,
                culprits,
                ban,
            }) => {
                {
                    let mut st = self.state();
                    for c in &culprits {
                        st.quarantine.insert((plan.key_id.clone(), c.clone()));
                    }
                }
                if ban {
                    self.ban(&plan.key_id, &culprits, &detail).await;
                } else {
                    tracing::error!(
                        task_id = %task_id,
                        key_id = %plan.key_id,
                        culprits = %culprits.join(","),
                        "ALERT: peer misbehaved; tasks for this key with these parties are refused until restart: {detail}"
                    );
                }
                RunFail::Peer {
                    detail,
                    culprits,
                    ban,
                }
                .outcome()
            }
            Err(RunFail::Aborted(reason)) => {
                tracing::info!(task_id = %task_id, reason = %reason, "task aborted by the coordinator; no result sent");
                self.inner.metrics.task_ended(
                    plan.kind_name(),
                    "aborted",
                    started.elapsed().as_secs_f64(),
                );
                None
            }
            Err(e) => e.outcome(),
        };
        if let Some(o) = outcome {
            tracing::info!(
                task_id = %task_id,
                outcome = outcome_name(&o),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "task finished"
            );
            self.inner.metrics.task_ended(
                plan.kind_name(),
                outcome_name(&o),
                started.elapsed().as_secs_f64(),
            );
            self.reply(&task_id, o);
        }
    }

    async fn execute(
        &self,
        task: &Task,
        plan: &Plan,
        rx: std_mpsc::Receiver<RunMsg>,
        control: &Arc<Control>,
    ) -> Result<Outcome, RunFail> {
        match &task.body {
            TaskBody::Keygen(k) => self.keygen(task, k, plan, rx, control).await,
            TaskBody::Sign(s) => self.sign(task, s, plan, rx, control).await,
            TaskBody::Refresh(r) => self.refresh(task, r, plan, rx, control).await,
            TaskBody::Repair(r) => self.repair(task, r, plan, rx, control).await,
        }
    }

    /// Runs `f` on the blocking pool (key-store calls).
    /// Excludes `culprits` from every later session with `key_id`, for good (stored sealed,
    /// checked at intake): the protocol library found cheating that leaks long-lived secret
    /// state.
    async fn ban(&self, key_id: &str, culprits: &[String], detail: &str) {
        tracing::error!(
            key_id = %key_id,
            culprits = %culprits.join(","),
            "ALERT: peer cheated in a way that exposes secret state; these parties are excluded from this key for good (a refresh or repair of the key without them is the way on): {detail}"
        );
        let (key, parties, why) = (key_id.to_owned(), culprits.to_vec(), detail.to_owned());
        let stored = self
            .blocking(move |inner| {
                for p in &parties {
                    inner.store.put(
                        crate::store::KEY_BANS,
                        &crate::store::ban_record(&key, p),
                        why.as_bytes(),
                    )?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = stored {
            tracing::error!(key_id = %key_id, "the exclusion could not be stored; it lasts only until restart: {e:?}");
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Arc<Inner>) -> Result<T, RunFail> + Send + 'static,
    ) -> Result<T, RunFail> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(inner))
            .await
            .map_err(|_| RunFail::Local("blocking task failed".into()))?
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers for the stage modules' tests.
    use super::*;
    use mpc_transport::keys::TransportSecret;
    use mpc_transport::task::{Algorithm, Payload, SignTask};
    use rand_core::OsRng;
    use std::time::Duration;

    /// A sign task for key "k" at path "m", sign type 3.
    pub(crate) fn sign_task(algorithm: Algorithm, payload: Payload) -> SignTask {
        SignTask {
            ecdsa_protocol: mpc_transport::task::EcdsaProtocol::Cggmp24,
            key_id: "k".into(),
            algorithm,
            root_public_key: vec![2; 33],
            path: "m".into(),
            sign_type: 3,
            payload,
            tap_script_root: None,
            tx_info: None,
            generation: None,
        }
    }

    /// A runtime over a fresh unsealed store, no callback, and the identities of `n` nodes
    /// (this node is the first).
    pub(crate) fn runtime(
        dir: &std::path::Path,
        n: usize,
    ) -> (Runtime, Vec<(EcdsaSigner, TransportSecret)>) {
        use mpc_keystore::{Batch, Engine, KdfParams, KeyStore, Opened, StoreConfig};
        let cfg = StoreConfig::new(Engine::Bolt, 1, 1)
            .unwrap()
            .kdf(KdfParams::insecure_for_tests());
        let Opened::Uninitialized(mut u) = KeyStore::open(dir.join("a.db"), cfg).unwrap() else {
            panic!()
        };
        let unsealed = u
            .init("Correct-Horse-9", &Batch::new())
            .unwrap()
            .done()
            .unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(unsealed);
        let nodes: Vec<_> = (0..n)
            .map(|_| {
                (
                    EcdsaSigner::new(&p256::ecdsa::SigningKey::random(&mut OsRng)),
                    TransportSecret::generate(&mut OsRng),
                )
            })
            .collect();
        let (tx, _rx) = mpsc::unbounded_channel();
        let rt = Runtime::new(
            RuntimeParams {
                identity: Arc::new(nodes[0].0.clone()),
                transport: TransportSecret::from_bytes(&nodes[0].1.to_bytes()),
                party: "a".into(),
                store: store.clone(),
                callback: CallbackClient::new(mpc_callback::CallbackConfig {
                    servers: vec![],
                    retry_times: 0,
                    sleep: Duration::from_millis(1),
                    request_timeout: Duration::from_secs(1),
                    max_wait: Duration::from_secs(1),
                })
                .unwrap(),
                encrypt: EncryptConfig::default(),
                primes: PersistentPrimes::load(store.clone(), None, 0).unwrap(),
                platform: PlatformPin::new(None),
                seen: SeenTasks::load(store.as_ref(), 0).unwrap(),
                metrics: crate::metrics::NodeMetrics::new(),
                audit: crate::audit::NodeAudit::off(),
            },
            tx,
        );
        (rt, nodes)
    }

    /// `node` as member `party` of a task.
    pub(crate) fn member(
        party: &str,
        node: &(EcdsaSigner, TransportSecret),
    ) -> mpc_transport::task::Member {
        mpc_transport::task::Member {
            party: party.into(),
            node_id: mpc_callback::mpc_wire::keys::node_id(node.0.verifying_key()),
            transport_cert: node.1.certify(&node.0),
        }
    }
}
