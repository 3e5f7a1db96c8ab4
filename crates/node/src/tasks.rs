//! Runs the coordinator's tasks (`docs/platform.md`, "Tasks" and "Node runtime").
//!
//! For every [`Task`]: check the committee (every transport certificate against its node id,
//! this node a member under its own party, the deadline, the quarantine), ask the callback
//! servers about exactly what is about to run, check the approval covers it
//! (`authorizes_keygen` / `authorizes_sign`), then run the protocol on a thread of its own
//! (`mpc_tss::Session` is `!Send`; at most [`MAX_SESSIONS`] at a time) and answer one
//! [`TaskResult`] (none after an `Abort`).
//!
//! Protocol frames: outgoing `mpc_tss::Envelope`s are sealed with the identity key (p2p ones
//! encrypted to the receiver's verified transport key); incoming ones are routed by execution
//! id, opened with the claimed sender's identity key and deduplicated by
//! `(execution_id, round, sender, receiver)` before `Session::handle`. A frame that does not
//! open (forged, altered, replayed from another run, misrouted) is logged and dropped: the
//! proxy is untrusted, and a bogus frame must not abort a run. Frames for a run this node does
//! not know yet are buffered ([`PENDING_MAX_FRAMES`], [`PENDING_MAX_BYTES`], [`PENDING_TTL`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mpc_callback::mpc_wire::callback::{SignType, TxInfo};
use mpc_callback::{
    ApprovedRequest, CallbackClient, Cryptography, EncryptConfig, KeygenParams, KeygenRequest,
    Request, SignAlgorithm, SignParams, SignRequest,
};
use mpc_keystore::tables;
use mpc_transport::frame::Frame;
use mpc_transport::keys::{PeerTransportKey, TransportSecret, verify_cert};
use mpc_transport::seal::{self, EnvelopeHeader, SealedBody, SealedEnvelope};
use mpc_transport::task::{
    Algorithm, Curve, Fault, KeygenTask, Outcome, Payload, SignTask, TASK_VERSION, Task, TaskBody,
    TaskResult,
};
use mpc_tss::ecdsa::{self, EcdsaAuxInfo, EcdsaCoreShare, EcdsaKeyShare, SignInput};
use mpc_tss::frost::{self, EddsaKeyShare};
use mpc_tss::primes::SecretPrimes;
use mpc_tss::{
    Committee, DerivationPath, Envelope, ExecutionId, PartyId, ProtocolKind, Session, SessionError,
    Step,
};
use p256::ecdsa::{SigningKey, VerifyingKey};
use rand_core::OsRng;
use tokio::sync::{Notify, Semaphore, mpsc};
use zeroize::Zeroize;

use crate::primes::PersistentPrimes;
use crate::store::{SecretStore, StoreAccessError, StoredShare};

/// Protocol sessions running at once; further tasks wait.
pub const MAX_SESSIONS: usize = 4;
/// Frames kept for execution ids this node does not run (yet).
pub const PENDING_MAX_FRAMES: usize = 64;
/// Bytes kept for execution ids this node does not run (yet).
pub const PENDING_MAX_BYTES: usize = 16 * 1024 * 1024;
/// How long such a frame is kept.
pub const PENDING_TTL: Duration = Duration::from_secs(30);
/// Frames a run keeps for its next phase (keygen → aux info).
const STASH_MAX_FRAMES: usize = 256;
/// Frames waiting in one run's inbox; more are dropped (a run needs a few dozen, so only a
/// flooding proxy hits this).
pub const RUN_INBOX_FRAMES: usize = 1024;

/// What the runtime needs to run tasks.
pub struct RuntimeParams {
    /// The node's P-256 identity key (signs frames and callback requests).
    pub identity: SigningKey,
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
    identity: SigningKey,
    transport: Arc<TransportSecret>,
    node_id: String,
    party: String,
    store: Arc<dyn SecretStore>,
    callback: CallbackClient,
    encrypt: EncryptConfig,
    primes: PersistentPrimes,
    sessions: Semaphore,
    state: Mutex<State>,
    out: mpsc::UnboundedSender<Frame>,
}

enum RunMsg {
    Frame(Box<SealedEnvelope>),
    Abort(String),
}

struct Control {
    aborted: AtomicBool,
    reason: Mutex<String>,
    notify: Notify,
    tx: std_mpsc::SyncSender<RunMsg>,
}

#[derive(Default)]
struct State {
    /// Derived execution id → the run's inbox.
    routes: HashMap<[u8; 32], std_mpsc::SyncSender<RunMsg>>,
    /// The task's execution_unique → its control block.
    runs: HashMap<[u8; 32], Arc<Control>>,
    pending: Pending,
    /// `(key_id, party)` refused until restart after a peer misbehaved.
    quarantine: HashSet<(String, String)>,
}

/// Why a run ended without a result.
#[derive(Debug)]
enum RunFail {
    Peer {
        detail: String,
        culprits: Vec<String>,
    },
    Timeout {
        detail: String,
        culprits: Vec<String>,
    },
    Aborted(String),
    Rejected(String),
    Callback(String),
    BadTask(String),
    Local(String),
}

impl RunFail {
    fn from_session(e: SessionError) -> Self {
        let culprits = e.culprits().iter().map(|p| p.to_string()).collect();
        match e {
            SessionError::Misbehaved { .. } | SessionError::Aborted { .. } => RunFail::Peer {
                detail: e.to_string(),
                culprits,
            },
            SessionError::Input(i) => RunFail::BadTask(i.to_string()),
            other => RunFail::Local(other.to_string()),
        }
    }

    fn outcome(self) -> Option<Outcome> {
        let (fault, detail, culprits) = match self {
            RunFail::Peer { detail, culprits } => (Fault::PeerMisbehaved, detail, culprits),
            RunFail::Timeout { detail, culprits } => (Fault::Timeout, detail, culprits),
            RunFail::Aborted(_) => return None,
            RunFail::Rejected(reason) => return Some(Outcome::Rejected { reason }),
            RunFail::Callback(d) => (Fault::Callback, d, vec![]),
            RunFail::BadTask(d) => (Fault::BadTask, d, vec![]),
            RunFail::Local(d) => (Fault::Local, d, vec![]),
        };
        Some(Outcome::Failed {
            fault,
            detail,
            culprits,
        })
    }
}

impl From<StoreAccessError> for RunFail {
    fn from(e: StoreAccessError) -> Self {
        RunFail::Local(e.to_string())
    }
}

fn sealed_size(f: &SealedEnvelope) -> usize {
    let body = match &f.body {
        SealedBody::Broadcast { payload, signature } => payload.len() + signature.len(),
        SealedBody::P2p { ciphertext, .. } => ciphertext.len() + 32,
    };
    body + f.header.protocol.len() + f.header.sender.len() + 64
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The monotonic instant of a Unix-ms deadline.
fn deadline_instant(deadline_unix_ms: u64) -> Instant {
    let left = deadline_unix_ms.saturating_sub(now_ms());
    Instant::now() + Duration::from_millis(left)
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
                sessions: Semaphore::new(MAX_SESSIONS),
                state: Mutex::new(State::default()),
                out,
            }),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Handles a frame from the proxy: `Task` starts a run, `Protocol` goes to its run (or the
    /// pending buffer), `Abort` stops a run. Other kinds are ignored here.
    pub fn handle_frame(&self, frame: Frame) {
        match frame {
            Frame::Task(bytes) => match Task::decode(&bytes) {
                Ok(task) => {
                    let me = self.clone();
                    tokio::spawn(async move { me.run_task(task).await });
                }
                Err(e) => tracing::warn!("task frame refused: {e}"),
            },
            Frame::Protocol(sealed) => self.route(Box::new(sealed)),
            Frame::Abort(a) => self.abort(&a.execution_id, &a.reason),
            other => tracing::debug!(kind = ?other.kind(), "frame ignored by the task runtime"),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn route(&self, frame: Box<SealedEnvelope>) {
        let mut st = self.state();
        let eid = frame.header.execution_id;
        if let Some(tx) = st.routes.get(&eid) {
            match tx.try_send(RunMsg::Frame(frame)) {
                Ok(()) => {}
                Err(std_mpsc::TrySendError::Full(_)) => {
                    tracing::debug!(
                        execution_id = %hex::encode(&eid[..8]),
                        "run inbox full; protocol frame dropped"
                    );
                }
                Err(std_mpsc::TrySendError::Disconnected(_)) => {
                    // The run ended: drop the route, keep nothing.
                    st.routes.remove(&eid);
                }
            }
            return;
        }
        st.pending.push(Instant::now(), frame);
    }

    /// Stops every run (the node is shutting down): sessions end at their next message or
    /// timeout check, tasks waiting for the callback or a session slot end at once. No results
    /// are sent.
    pub fn shutdown(&self) {
        let st = self.state();
        for c in st.runs.values() {
            if let Ok(mut r) = c.reason.lock() {
                *r = "node shutting down".into();
            }
            c.aborted.store(true, Ordering::SeqCst);
            c.notify.notify_waiters();
            let _ = c.tx.try_send(RunMsg::Abort("node shutting down".into()));
        }
        if !st.runs.is_empty() {
            tracing::info!(runs = st.runs.len(), "runs stopped: node shutting down");
        }
    }

    fn abort(&self, unique: &[u8; 32], reason: &str) {
        let st = self.state();
        match st.runs.get(unique) {
            Some(c) => {
                tracing::info!(
                    execution = %hex::encode(&unique[..8]),
                    reason,
                    "abort received; stopping the run"
                );
                if let Ok(mut r) = c.reason.lock() {
                    *r = reason.to_owned();
                }
                c.aborted.store(true, Ordering::SeqCst);
                c.notify.notify_waiters();
                let _ = c.tx.try_send(RunMsg::Abort(reason.to_owned()));
            }
            None => tracing::debug!(
                execution = %hex::encode(&unique[..8]),
                "abort for a run this node does not run"
            ),
        }
    }

    fn reply(&self, task_id: &str, outcome: Outcome) {
        let result = TaskResult {
            version: TASK_VERSION,
            task_id: task_id.to_owned(),
            party: self.inner.party.clone(),
            outcome,
        };
        match result.encode() {
            Ok(bytes) => {
                let _ = self.inner.out.send(Frame::TaskResult(bytes));
            }
            Err(e) => tracing::error!(task_id, "task result not encodable: {e}"),
        }
    }

    /// Registers the run's execution ids; returns its inbox and control block, with buffered
    /// frames already delivered.
    fn register(
        &self,
        unique: [u8; 32],
        eids: &[ExecutionId],
    ) -> Option<(std_mpsc::Receiver<RunMsg>, Arc<Control>)> {
        let (tx, rx) = std_mpsc::sync_channel(RUN_INBOX_FRAMES);
        let mut st = self.state();
        if st.runs.contains_key(&unique) {
            return None;
        }
        let control = Arc::new(Control {
            aborted: AtomicBool::new(false),
            reason: Mutex::new(String::new()),
            notify: Notify::new(),
            tx: tx.clone(),
        });
        st.runs.insert(unique, control.clone());
        for e in eids {
            st.routes.insert(*e.as_bytes(), tx.clone());
        }
        let wanted: HashSet<[u8; 32]> = eids.iter().map(|e| *e.as_bytes()).collect();
        for f in st.pending.take_for(&wanted, Instant::now()) {
            let _ = tx.try_send(RunMsg::Frame(f));
        }
        Some((rx, control))
    }

    fn unregister(&self, unique: &[u8; 32], eids: &[ExecutionId]) {
        let mut st = self.state();
        st.runs.remove(unique);
        for e in eids {
            st.routes.remove(e.as_bytes());
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
        let Some((rx, control)) = self.register(task.execution_unique, &plan.eids) else {
            tracing::warn!(task_id = %task_id, "task with an execution id already running; ignored");
            return;
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
            Err(RunFail::Peer { detail, culprits }) => {
                let mut st = self.state();
                for c in &culprits {
                    st.quarantine.insert((plan.key_id.clone(), c.clone()));
                }
                drop(st);
                tracing::error!(
                    task_id = %task_id,
                    key_id = %plan.key_id,
                    culprits = %culprits.join(","),
                    "ALERT: peer misbehaved; tasks for this key with these parties are refused until restart: {detail}"
                );
                RunFail::Peer { detail, culprits }.outcome()
            }
            Err(RunFail::Aborted(reason)) => {
                tracing::info!(task_id = %task_id, reason = %reason, "task aborted by the coordinator; no result sent");
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
            self.reply(&task_id, o);
        }
    }

    /// Checks the task against this node and derives everything the run needs.
    fn plan(&self, task: &Task) -> Result<Plan, String> {
        if task.deadline_unix_ms <= now_ms() {
            return Err("the task's deadline has passed".into());
        }
        let mut peers = BTreeMap::new();
        let mut my_party = None;
        let mut parties = Vec::with_capacity(task.members.len());
        for m in &task.members {
            let p =
                PartyId::new(&m.party).map_err(|e| format!("member party {:?}: {e}", m.party))?;
            let key = verify_cert(&m.transport_cert, &m.node_id)
                .map_err(|e| format!("member {}: {e}", m.party))?;
            let vk = mpc_callback::mpc_wire::keys::verifying_key_from_node_id(&m.node_id)
                .map_err(|e| format!("member {}: node id: {e}", m.party))?;
            if m.node_id == self.inner.node_id {
                if my_party.is_some() {
                    return Err("this node is listed twice".into());
                }
                my_party = Some(p);
            }
            if peers.insert(m.party.clone(), Peer { key, vk }).is_some() {
                return Err(format!("party {} is listed twice", m.party));
            }
            parties.push(p);
        }
        let Some(me) = my_party else {
            return Err("this node is not a member of the task".into());
        };
        if me.to_string() != self.inner.party {
            return Err(format!(
                "the task names this node as party {me}, but it is party {}",
                self.inner.party
            ));
        }
        let committee = Committee::new(parties.clone()).map_err(|e| e.to_string())?;
        let (key_id, kinds) = match &task.body {
            TaskBody::Keygen(k) => (
                k.key_id.clone(),
                match k.curve {
                    Curve::Secp256k1 => vec![ProtocolKind::EcdsaKeygen, ProtocolKind::EcdsaAuxInfo],
                    Curve::Ed25519 => vec![ProtocolKind::EddsaKeygen],
                },
            ),
            TaskBody::Sign(s) => (
                s.key_id.clone(),
                vec![match s.algorithm {
                    Algorithm::Ecdsa => ProtocolKind::EcdsaSign,
                    Algorithm::Eddsa => ProtocolKind::EddsaSign,
                    Algorithm::Bip340 => ProtocolKind::Bip340Sign,
                    Algorithm::Taproot => ProtocolKind::TaprootSign,
                }],
            ),
        };
        if key_id.is_empty() {
            return Err("empty key id".into());
        }
        {
            let st = self.state();
            if let Some(p) = committee
                .parties()
                .iter()
                .find(|p| st.quarantine.contains(&(key_id.clone(), p.to_string())))
            {
                return Err(format!(
                    "key {key_id} is quarantined with party {p} after misbehaviour; restart the node to lift it"
                ));
            }
        }
        let eids = kinds
            .iter()
            .map(|k| ExecutionId::derive(*k, &task.execution_unique, committee.parties()))
            .collect();
        Ok(Plan {
            me,
            committee,
            peers,
            key_id,
            eids,
            kinds,
            deadline: deadline_instant(task.deadline_unix_ms),
        })
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
        }
    }

    /// Waits for `fut`, the run's abort or its deadline.
    async fn bounded<T>(
        &self,
        plan: &Plan,
        control: &Control,
        what: &str,
        fut: impl Future<Output = T>,
    ) -> Result<T, RunFail> {
        let notified = control.notify.notified();
        if control.aborted.load(Ordering::SeqCst) {
            return Err(RunFail::Aborted(abort_reason(control)));
        }
        let deadline = tokio::time::Instant::from_std(plan.deadline);
        tokio::select! {
            r = fut => Ok(r),
            _ = notified => Err(RunFail::Aborted(abort_reason(control))),
            _ = tokio::time::sleep_until(deadline) => Err(RunFail::Timeout {
                detail: format!("deadline passed while waiting for {what}"),
                culprits: vec![],
            }),
        }
    }

    async fn ask_callback(
        &self,
        plan: &Plan,
        control: &Control,
        request: Request,
    ) -> Result<ApprovedRequest, RunFail> {
        let r = self
            .bounded(
                plan,
                control,
                "the callback",
                self.inner.callback.check(&self.inner.identity, request),
            )
            .await?;
        match r {
            Ok(a) => Ok(a),
            Err(mpc_callback::CallbackError::Rejected { server, reason }) => {
                let reason = match reason {
                    mpc_callback::Rejection::Server(r) => r,
                    other => other.to_string(),
                };
                tracing::info!(server = %server, reason = %reason, "callback rejected the task");
                Err(RunFail::Rejected(reason))
            }
            Err(e) => Err(RunFail::Callback(e.to_string())),
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

    /// Takes a session slot, runs `body` on a thread of its own and waits for it.
    async fn on_thread<T: Send + 'static>(
        &self,
        plan: &Plan,
        control: &Arc<Control>,
        rx: std_mpsc::Receiver<RunMsg>,
        body: impl FnOnce(&mut Wire) -> Result<T, RunFail> + Send + 'static,
    ) -> Result<T, RunFail> {
        let permit = self
            .bounded(
                plan,
                control,
                "a free session slot",
                self.inner.sessions.acquire(),
            )
            .await?
            .map_err(|_| RunFail::Local("session limiter closed".into()))?;
        let mut wire = Wire {
            me: plan.me,
            identity: self.inner.identity.clone(),
            transport: self.inner.transport.clone(),
            peers: plan.peers.clone(),
            out: self.inner.out.clone(),
            rx,
            control: control.clone(),
            stash: Vec::new(),
            seen: HashSet::new(),
            deadline: plan.deadline,
            seq: 0,
        };
        let (tx, done) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("mpc-session".into())
            .spawn(move || {
                let r = body(&mut wire);
                let _ = tx.send(r);
            });
        if spawned.is_err() {
            return Err(RunFail::Local("cannot start a session thread".into()));
        }
        let r = done
            .await
            .map_err(|_| RunFail::Local("session thread ended without a result".into()))?;
        drop(permit);
        r
    }

    async fn keygen(
        &self,
        task: &Task,
        k: &KeygenTask,
        plan: &Plan,
        rx: std_mpsc::Receiver<RunMsg>,
        control: &Arc<Control>,
    ) -> Result<Outcome, RunFail> {
        let key_id = k.key_id.clone();
        let exists = {
            let id = key_id.clone();
            self.blocking(move |inner| {
                Ok(inner
                    .store
                    .get(tables::KEY_SHARES, id.as_bytes())?
                    .is_some())
            })
            .await?
        };
        if exists {
            return Err(RunFail::BadTask(format!(
                "key {key_id} already exists on this node"
            )));
        }
        let cryptography = match k.curve {
            Curve::Secp256k1 => Cryptography::EcdsaSecp256k1,
            Curve::Ed25519 => Cryptography::EddsaEd25519,
        };
        let party_ids: Vec<String> = plan
            .committee
            .parties()
            .iter()
            .map(|p| p.to_string())
            .collect();
        let n = plan.committee.n();
        let request = Request::Keygen(KeygenRequest {
            cryptography,
            t: k.threshold,
            n,
            party_ids: party_ids.clone(),
            sino_id: task.sino_id.clone(),
            request_id: task.request_id.clone(),
        });
        let approved = self.ask_callback(plan, control, request).await?;
        approved
            .authorizes_keygen(KeygenParams {
                cryptography,
                t: k.threshold,
                n,
                party_ids: &party_ids,
                sino_id: &task.sino_id,
                request_id: &task.request_id,
            })
            .map_err(|e| RunFail::Local(format!("approval does not cover the keygen: {e}")))?;
        let (me, committee, t, eids) = (
            plan.me,
            plan.committee.clone(),
            k.threshold,
            plan.eids.clone(),
        );
        let primes = self.inner.primes.clone();
        let (stored, public_key, chain_code) = match k.curve {
            Curve::Secp256k1 => {
                self.on_thread(plan, control, rx, move |w| {
                    let [keygen_eid, aux_eid] = eids[..] else {
                        return Err(RunFail::Local(
                            "secp256k1 keygen needs two execution ids".into(),
                        ));
                    };
                    let s = ecdsa::keygen(keygen_eid, me, &committee, t)
                        .map_err(|e| RunFail::BadTask(e.to_string()))?;
                    let core: EcdsaCoreShare = w.drive(s)?;
                    let set = match primes.take()? {
                        Some(set) => set,
                        None => {
                            tracing::info!(
                                "prime pool empty; generating primes for aux info (slow)"
                            );
                            SecretPrimes::generate()
                        }
                    };
                    let s = ecdsa::aux_info(aux_eid, me, &committee, set)
                        .map_err(|e| RunFail::BadTask(e.to_string()))?;
                    let aux: EcdsaAuxInfo = w.drive(s)?;
                    let public_key = core.public_key().to_vec();
                    let chain_code = core.chain_code().unwrap_or([0; 32]);
                    let stored = StoredShare::Secp256k1 {
                        core: core.to_stored_bytes(),
                        aux: aux.to_stored_bytes(),
                    };
                    // Check the pair before storing it.
                    EcdsaKeyShare::new(core, aux).map_err(|e| RunFail::Local(e.to_string()))?;
                    Ok((stored, public_key, chain_code))
                })
                .await?
            }
            Curve::Ed25519 => {
                self.on_thread(plan, control, rx, move |w| {
                    let s = frost::eddsa_keygen(eids[0], me, &committee, t)
                        .map_err(|e| RunFail::BadTask(e.to_string()))?;
                    let share: EddsaKeyShare = w.drive(s)?;
                    let public_key = share.public_key().to_vec();
                    let chain_code = share.chain_code().unwrap_or([0; 32]);
                    Ok((
                        StoredShare::Ed25519 {
                            share: share.to_stored_bytes(),
                        },
                        public_key,
                        chain_code,
                    ))
                })
                .await?
            }
        };
        let id = key_id.clone();
        self.blocking(move |inner| {
            if inner
                .store
                .get(tables::KEY_SHARES, id.as_bytes())?
                .is_some()
            {
                return Err(RunFail::BadTask(format!(
                    "key {id} already exists on this node"
                )));
            }
            let bytes = stored.to_bytes()?;
            inner.store.put(tables::KEY_SHARES, id.as_bytes(), &bytes)?;
            Ok(())
        })
        .await?;
        tracing::info!(key_id = %key_id, public_key = %hex::encode(&public_key), "key share stored");
        Ok(Outcome::KeygenDone {
            public_key,
            chain_code,
        })
    }

    async fn sign(
        &self,
        task: &Task,
        s: &SignTask,
        plan: &Plan,
        rx: std_mpsc::Receiver<RunMsg>,
        control: &Arc<Control>,
    ) -> Result<Outcome, RunFail> {
        let sign_type = SignType::parse(&s.sign_type.to_string())
            .map_err(|e| RunFail::BadTask(e.to_string()))?;
        let path =
            DerivationPath::from_str(&s.path).map_err(|e| RunFail::BadTask(e.to_string()))?;
        let digest = signed_bytes(s).map_err(RunFail::BadTask)?;
        let script_root = match (&s.tap_script_root, s.algorithm) {
            (None, _) => None,
            (Some(r), Algorithm::Taproot) => Some(
                <[u8; 32]>::try_from(r.as_slice())
                    .map_err(|_| RunFail::BadTask("taproot script root is not 32 bytes".into()))?,
            ),
            (Some(_), _) => {
                return Err(RunFail::BadTask("a script root is only for taproot".into()));
            }
        };
        let tx_info = s
            .tx_info
            .as_ref()
            .map(|t| TxInfo::from_json(t.as_bytes()))
            .transpose()
            .map_err(|e| RunFail::BadTask(format!("tx_info: {e}")))?;
        let algorithm = match s.algorithm {
            Algorithm::Ecdsa => SignAlgorithm::Ecdsa,
            Algorithm::Eddsa => SignAlgorithm::Eddsa,
            Algorithm::Bip340 => SignAlgorithm::Bip340Schnorr,
            Algorithm::Taproot => SignAlgorithm::Taproot,
        };
        let public_key = hex::encode(&s.root_public_key);
        let request = Request::Sign(SignRequest {
            algorithm,
            sign_type,
            public_key: public_key.clone(),
            path: s.path.clone(),
            message: s.payload.message().to_vec(),
            digest: digest.clone(),
            tx_info,
            sino_id: task.sino_id.clone(),
            request_id: task.request_id.clone(),
        });
        let approved = self.ask_callback(plan, control, request).await?;
        approved
            .authorizes_sign(SignParams {
                algorithm,
                public_key: &public_key,
                path: &s.path,
                digest: &digest,
                sino_id: &task.sino_id,
                request_id: &task.request_id,
            })
            .map_err(|e| RunFail::Local(format!("approval does not cover the signature: {e}")))?;

        let id = s.key_id.clone();
        let stored = self
            .blocking(move |inner| {
                let bytes = inner
                    .store
                    .get(tables::KEY_SHARES, id.as_bytes())?
                    .ok_or_else(|| RunFail::BadTask(format!("unknown key {id}")))?;
                Ok(StoredShare::from_bytes(&id, &bytes)?)
            })
            .await?;
        let signers: Vec<PartyId> = plan.committee.parties().to_vec();
        let eid = plan.eids[0];
        let algo = s.algorithm;
        let root = s.root_public_key.clone();
        let v_offset = if sign_type == SignType::Message {
            27
        } else {
            0
        };
        let signature: Vec<u8> = self
            .on_thread(plan, control, rx, move |w| {
                let bad = |e: mpc_tss::InputError| RunFail::BadTask(e.to_string());
                match (&stored, algo) {
                    (
                        StoredShare::Secp256k1 { core, aux },
                        Algorithm::Ecdsa | Algorithm::Bip340 | Algorithm::Taproot,
                    ) => {
                        let core = EcdsaCoreShare::from_stored_bytes(core)
                            .map_err(|e| RunFail::Local(e.to_string()))?;
                        if core.public_key()[..] != root[..] {
                            return Err(RunFail::BadTask(
                                "the task's root public key is not this key's".into(),
                            ));
                        }
                        let d: [u8; 32] = digest
                            .as_slice()
                            .try_into()
                            .map_err(|_| RunFail::BadTask("digest is not 32 bytes".into()))?;
                        match algo {
                            Algorithm::Ecdsa => {
                                let aux = EcdsaAuxInfo::from_stored_bytes(aux)
                                    .map_err(|e| RunFail::Local(e.to_string()))?;
                                let share = EcdsaKeyShare::new(core, aux)
                                    .map_err(|e| RunFail::Local(e.to_string()))?;
                                let sess =
                                    ecdsa::sign(eid, &share, &signers, &path, SignInput::Digest(d))
                                        .map_err(bad)?;
                                Ok(w.drive(sess)?.to_rsv(v_offset).to_vec())
                            }
                            Algorithm::Bip340 => {
                                let sess = frost::bip340_sign(eid, &core, &signers, &path, &d)
                                    .map_err(bad)?;
                                Ok(w.drive(sess)?.0.to_vec())
                            }
                            _ => {
                                let sess = frost::taproot_sign(
                                    eid,
                                    &core,
                                    &signers,
                                    &path,
                                    &d,
                                    script_root,
                                )
                                .map_err(bad)?;
                                Ok(w.drive(sess)?.0.to_vec())
                            }
                        }
                    }
                    (StoredShare::Ed25519 { share }, Algorithm::Eddsa) => {
                        let share = EddsaKeyShare::from_stored_bytes(share)
                            .map_err(|e| RunFail::Local(e.to_string()))?;
                        if share.public_key()[..] != root[..] {
                            return Err(RunFail::BadTask(
                                "the task's root public key is not this key's".into(),
                            ));
                        }
                        let sess = frost::eddsa_sign(eid, &share, &signers, &path, &digest)
                            .map_err(bad)?;
                        Ok(w.drive(sess)?.0.to_vec())
                    }
                    _ => Err(RunFail::BadTask(format!(
                        "algorithm {algo:?} does not fit the curve of key {}",
                        plan_key(&stored)
                    ))),
                }
            })
            .await?;

        let reports = sign_type.reports_signature();
        let outcome = match &self.inner.encrypt.public_key {
            Some(key) if reports => Outcome::Signed {
                signature: None,
                encrypted: Some(mpc_callback::mpc_wire::ecies::encrypt_hex(
                    key, &signature, &mut OsRng,
                )),
            },
            _ => Outcome::Signed {
                signature: Some(signature.clone()),
                encrypted: None,
            },
        };
        if reports {
            let me = self.clone();
            let task_id = task.task_id.clone();
            tokio::spawn(async move {
                if let Err(e) = me
                    .inner
                    .callback
                    .report_rawdata_signature(
                        &me.inner.identity,
                        &approved,
                        &signature,
                        &me.inner.encrypt,
                    )
                    .await
                {
                    tracing::warn!(task_id = %task_id, "signature result not reported to the callback: {e}");
                }
            });
        }
        Ok(outcome)
    }
}

fn plan_key(s: &StoredShare) -> &'static str {
    match s {
        StoredShare::Secp256k1 { .. } => "secp256k1",
        StoredShare::Ed25519 { .. } => "ed25519",
    }
}

fn abort_reason(c: &Control) -> String {
    c.reason.lock().map(|r| r.clone()).unwrap_or_default()
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::KeygenDone { .. } => "keygen_done",
        Outcome::Signed { .. } => "signed",
        Outcome::Rejected { .. } => "rejected",
        Outcome::Failed { .. } => "failed",
    }
}

/// The bytes the protocol signs, computed here from the payload: the EIP-191/712 digest for a
/// message, the digest as is, or the raw message for EdDSA.
fn signed_bytes(s: &SignTask) -> Result<Vec<u8>, String> {
    match (&s.payload, s.algorithm) {
        (Payload::SignMessage { kind, message }, Algorithm::Ecdsa) => {
            let kind = mpc_chains::SignMessageKind::from_str(kind).map_err(|e| e.to_string())?;
            let payload =
                mpc_chains::sign_message_payload(kind, message).map_err(|e| e.to_string())?;
            Ok(payload.digest().to_vec())
        }
        (Payload::Digest { digest }, _) => Ok(digest.to_vec()),
        (Payload::Message { message }, Algorithm::Eddsa) => Ok(message.clone()),
        (p, a) => Err(format!(
            "payload {} cannot be signed with {a:?}",
            match p {
                Payload::SignMessage { .. } => "sign_message",
                Payload::Digest { .. } => "digest",
                Payload::Message { .. } => "message",
            }
        )),
    }
}

/// Frames for execution ids no run has claimed yet, bounded in count, bytes and age.
#[derive(Default)]
struct Pending {
    q: VecDeque<(Instant, Box<SealedEnvelope>, usize)>,
    bytes: usize,
}

impl Pending {
    fn expire(&mut self, now: Instant) {
        while let Some((at, f, sz)) = self.q.front() {
            if now.saturating_duration_since(*at) < PENDING_TTL {
                break;
            }
            tracing::debug!(
                execution_id = %hex::encode(&f.header.execution_id[..8]),
                sender = %f.header.sender,
                "frame for an unknown run expired"
            );
            self.bytes -= *sz;
            self.q.pop_front();
        }
    }

    fn push(&mut self, now: Instant, frame: Box<SealedEnvelope>) {
        self.expire(now);
        let size = sealed_size(&frame);
        if size > PENDING_MAX_BYTES {
            tracing::debug!("frame larger than the pending buffer dropped");
            return;
        }
        while self.q.len() >= PENDING_MAX_FRAMES || self.bytes + size > PENDING_MAX_BYTES {
            let Some((_, old, sz)) = self.q.pop_front() else {
                break;
            };
            self.bytes -= sz;
            tracing::debug!(
                execution_id = %hex::encode(&old.header.execution_id[..8]),
                sender = %old.header.sender,
                "pending buffer full; oldest frame for an unknown run dropped"
            );
        }
        self.bytes += size;
        self.q.push_back((now, frame, size));
    }

    /// Removes and returns the live frames of `eids`, oldest first.
    #[allow(clippy::vec_box)] // frames move between queues; boxes keep that a pointer copy
    fn take_for(&mut self, eids: &HashSet<[u8; 32]>, now: Instant) -> Vec<Box<SealedEnvelope>> {
        self.expire(now);
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(self.q.len());
        for (at, f, sz) in std::mem::take(&mut self.q) {
            if eids.contains(&f.header.execution_id) {
                self.bytes -= sz;
                out.push(f);
            } else {
                keep.push_back((at, f, sz));
            }
        }
        self.q = keep;
        out
    }
}

#[derive(Clone)]
struct Peer {
    key: PeerTransportKey,
    vk: VerifyingKey,
}

struct Plan {
    me: PartyId,
    committee: Committee,
    peers: BTreeMap<String, Peer>,
    key_id: String,
    eids: Vec<ExecutionId>,
    kinds: Vec<ProtocolKind>,
    deadline: Instant,
}

impl Plan {
    fn kind_name(&self) -> &'static str {
        self.kinds.first().map_or("?", |k| k.name())
    }

    fn parties_str(&self) -> String {
        self.committee
            .parties()
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One run's connection to the network, owned by its session thread.
struct Wire {
    me: PartyId,
    identity: SigningKey,
    transport: Arc<TransportSecret>,
    peers: BTreeMap<String, Peer>,
    out: mpsc::UnboundedSender<Frame>,
    rx: std_mpsc::Receiver<RunMsg>,
    /// The run's control block (abort flag, also when its inbox was too full for the notice).
    control: Arc<Control>,
    /// Frames of a later phase of this task (aux info while keygen runs).
    #[allow(clippy::vec_box)]
    stash: Vec<Box<SealedEnvelope>>,
    seen: HashSet<([u8; 32], u16, String, Option<String>)>,
    deadline: Instant,
    seq: u64,
}

impl Wire {
    /// Drives `session` to its output: sends what it produces, feeds it what arrives.
    fn drive<O>(&mut self, mut session: Session<O>) -> Result<O, RunFail> {
        let eid = *session.execution_id().as_bytes();
        self.seq = 0;
        let step = session.start().map_err(RunFail::from_session)?;
        if let Some(o) = self.send(step)? {
            return Ok(o);
        }
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.stash)
            .into_iter()
            .partition(|f| f.header.execution_id == eid);
        self.stash = rest;
        for f in mine {
            if let Some(o) = self.deliver(&mut session, f)? {
                return Ok(o);
            }
        }
        loop {
            if self.control.aborted.load(Ordering::SeqCst) {
                return Err(RunFail::Aborted(abort_reason(&self.control)));
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            let timeout = || {
                let culprits: Vec<String> = session
                    .waiting_for()
                    .iter()
                    .map(|p| p.to_string())
                    .collect();
                RunFail::Timeout {
                    detail: format!(
                        "{} did not finish before the deadline; waiting for {}",
                        session.protocol().name(),
                        culprits.join(",")
                    ),
                    culprits,
                }
            };
            if left.is_zero() {
                return Err(timeout());
            }
            match self.rx.recv_timeout(left) {
                Ok(RunMsg::Frame(f)) if f.header.execution_id == eid => {
                    if let Some(o) = self.deliver(&mut session, f)? {
                        return Ok(o);
                    }
                }
                Ok(RunMsg::Frame(f)) => {
                    if self.stash.len() < STASH_MAX_FRAMES {
                        self.stash.push(f);
                    }
                }
                Ok(RunMsg::Abort(reason)) => return Err(RunFail::Aborted(reason)),
                Err(std_mpsc::RecvTimeoutError::Timeout) => return Err(timeout()),
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(RunFail::Local("run inbox closed".into()));
                }
            }
        }
    }

    fn send<O>(&mut self, step: Step<O>) -> Result<Option<O>, RunFail> {
        for mut env in step.outgoing {
            let receiver_key = match env.receiver {
                None => None,
                Some(r) => Some(
                    self.peers
                        .get(&r.to_string())
                        .map(|p| p.key.clone())
                        .ok_or_else(|| RunFail::Local(format!("no transport key for party {r}")))?,
                ),
            };
            let mut wire_env = seal::Envelope {
                header: EnvelopeHeader {
                    version: env.version,
                    execution_id: *env.execution_id.as_bytes(),
                    protocol: env.protocol.name().to_owned(),
                    round: env.round,
                    sender: env.sender.to_string(),
                    receiver: env.receiver.map(|r| r.to_string()),
                    seq: self.seq,
                },
                payload: std::mem::take(&mut env.payload),
            };
            self.seq += 1;
            let sealed = seal::seal(&self.identity, receiver_key.as_ref(), &wire_env, &mut OsRng);
            wire_env.payload.zeroize();
            let sealed = sealed.map_err(|e| RunFail::Local(e.to_string()))?;
            if self.out.send(Frame::Protocol(sealed)).is_err() {
                return Err(RunFail::Local("network runtime stopped".into()));
            }
        }
        Ok(step.output)
    }

    fn deliver<O>(
        &mut self,
        session: &mut Session<O>,
        frame: Box<SealedEnvelope>,
    ) -> Result<Option<O>, RunFail> {
        let h = &frame.header;
        let me = self.me.to_string();
        let Some(peer) = self.peers.get(&h.sender).filter(|_| h.sender != me) else {
            tracing::warn!(
                claimed_sender = %h.sender,
                round = h.round,
                "protocol frame from a party outside the run dropped"
            );
            return Ok(None);
        };
        let opened = match seal::open(&frame, &self.transport, &peer.vk, &me) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(
                    claimed_sender = %h.sender,
                    round = h.round,
                    "protocol frame dropped (not authentic or not for this party): {}",
                    e.fault
                );
                return Ok(None);
            }
        };
        let h = opened.header;
        let key = (
            h.execution_id,
            h.round,
            h.sender.clone(),
            h.receiver.clone(),
        );
        if !self.seen.insert(key) {
            tracing::debug!(sender = %h.sender, round = h.round, "duplicate protocol frame dropped");
            return Ok(None);
        }
        // Authentic from here: anything wrong is the sender's doing.
        let misbehaved = |what: String| RunFail::Peer {
            detail: format!("party {} sent {what}", h.sender),
            culprits: vec![h.sender.clone()],
        };
        let protocol = ProtocolKind::from_name(&h.protocol)
            .ok_or_else(|| misbehaved(format!("an unknown protocol {:?}", h.protocol)))?;
        let sender = PartyId::new(&h.sender).map_err(|e| misbehaved(e.to_string()))?;
        let receiver = h
            .receiver
            .as_deref()
            .map(PartyId::new)
            .transpose()
            .map_err(|e| misbehaved(e.to_string()))?;
        let env = Envelope {
            version: h.version,
            execution_id: ExecutionId::from_bytes(h.execution_id),
            protocol,
            round: h.round,
            sender,
            receiver,
            payload: opened.payload,
        };
        let step = session.handle(env).map_err(RunFail::from_session)?;
        self.send(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(eid: u8, len: usize) -> Box<SealedEnvelope> {
        Box::new(SealedEnvelope {
            header: EnvelopeHeader {
                version: 1,
                execution_id: [eid; 32],
                protocol: "eddsa_sign".into(),
                round: 0,
                sender: "a".into(),
                receiver: None,
                seq: 0,
            },
            body: SealedBody::Broadcast {
                payload: vec![0; len],
                signature: String::new(),
            },
        })
    }

    #[test]
    fn pending_is_bounded_in_frames_bytes_and_age() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        for i in 0..(PENDING_MAX_FRAMES + 10) {
            p.push(t0, frame((i % 3) as u8, 10));
        }
        assert_eq!(p.q.len(), PENDING_MAX_FRAMES);
        // Big frames push out the oldest until the byte bound holds.
        for _ in 0..5 {
            p.push(t0, frame(9, 5 * 1024 * 1024));
        }
        assert!(p.bytes <= PENDING_MAX_BYTES);
        assert_eq!(
            p.q.iter()
                .filter(|(_, f, _)| f.header.execution_id == [9; 32])
                .count(),
            3
        );
        assert_eq!(p.bytes, p.q.iter().map(|(_, _, s)| *s).sum::<usize>());
        // Too big to ever fit: dropped.
        let before = p.q.len();
        p.push(t0, frame(8, PENDING_MAX_BYTES + 1));
        assert_eq!(p.q.len(), before);
        // A run claims its frames, oldest first; the others stay.
        let want: HashSet<[u8; 32]> = [[9; 32]].into_iter().collect();
        assert_eq!(p.take_for(&want, t0).len(), 3);
        assert!(p.q.iter().all(|(_, f, _)| f.header.execution_id != [9; 32]));
        // After the TTL everything is gone.
        let later = t0 + PENDING_TTL + Duration::from_millis(1);
        let all: HashSet<[u8; 32]> = (0..10).map(|i| [i; 32]).collect();
        assert!(p.take_for(&all, later).is_empty());
        assert_eq!((p.q.len(), p.bytes), (0, 0));
    }

    fn sign_task(algorithm: Algorithm, payload: Payload) -> SignTask {
        SignTask {
            key_id: "k".into(),
            algorithm,
            root_public_key: vec![2; 33],
            path: "m".into(),
            sign_type: 3,
            payload,
            tap_script_root: None,
            tx_info: None,
        }
    }

    #[test]
    fn the_node_computes_what_it_signs() {
        let msg = Payload::SignMessage {
            kind: "personal_sign".into(),
            message: "hi".into(),
        };
        let want =
            mpc_chains::sign_message_payload(mpc_chains::SignMessageKind::PersonalSign, "hi")
                .unwrap()
                .digest();
        assert_eq!(
            signed_bytes(&sign_task(Algorithm::Ecdsa, msg.clone())).unwrap(),
            want
        );
        for a in [Algorithm::Eddsa, Algorithm::Bip340, Algorithm::Taproot] {
            assert!(signed_bytes(&sign_task(a, msg.clone())).is_err(), "{a:?}");
        }
        let d = Payload::Digest { digest: [5; 32] };
        for a in [
            Algorithm::Ecdsa,
            Algorithm::Bip340,
            Algorithm::Taproot,
            Algorithm::Eddsa,
        ] {
            assert_eq!(signed_bytes(&sign_task(a, d.clone())).unwrap(), vec![5; 32]);
        }
        let m = Payload::Message {
            message: b"raw".to_vec(),
        };
        assert_eq!(
            signed_bytes(&sign_task(Algorithm::Eddsa, m.clone())).unwrap(),
            b"raw"
        );
        assert!(signed_bytes(&sign_task(Algorithm::Ecdsa, m)).is_err());
        let bad = Payload::SignMessage {
            kind: "eth_sign".into(),
            message: "hi".into(),
        };
        assert!(signed_bytes(&sign_task(Algorithm::Ecdsa, bad)).is_err());
    }

    #[test]
    fn failures_map_to_outcomes() {
        assert_eq!(RunFail::Aborted("x".into()).outcome(), None);
        assert_eq!(
            RunFail::Rejected("no".into()).outcome(),
            Some(Outcome::Rejected {
                reason: "no".into()
            })
        );
        let Some(Outcome::Failed {
            fault, culprits, ..
        }) = RunFail::Timeout {
            detail: String::new(),
            culprits: vec!["b".into()],
        }
        .outcome()
        else {
            panic!()
        };
        assert_eq!((fault, culprits), (Fault::Timeout, vec!["b".to_string()]));
        let Some(Outcome::Failed { fault, .. }) = RunFail::Callback("down".into()).outcome() else {
            panic!()
        };
        assert_eq!(fault, Fault::Callback);
        let e = SessionError::Aborted {
            culprits: vec![PartyId::new("c").unwrap()],
            detail: "bad proof".into(),
        };
        let Some(Outcome::Failed {
            fault, culprits, ..
        }) = RunFail::from_session(e).outcome()
        else {
            panic!()
        };
        assert_eq!(
            (fault, culprits),
            (Fault::PeerMisbehaved, vec!["c".to_string()])
        );
    }

    /// A runtime over a fresh unsealed store, no callback, and the identities of `n` nodes
    /// (this node is the first).
    fn runtime(dir: &std::path::Path, n: usize) -> (Runtime, Vec<(SigningKey, TransportSecret)>) {
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
                    SigningKey::random(&mut OsRng),
                    TransportSecret::generate(&mut OsRng),
                )
            })
            .collect();
        let (tx, _rx) = mpsc::unbounded_channel();
        let rt = Runtime::new(
            RuntimeParams {
                identity: nodes[0].0.clone(),
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
                primes: PersistentPrimes::load(store, None, 0).unwrap(),
            },
            tx,
        );
        (rt, nodes)
    }

    fn member(party: &str, node: &(SigningKey, TransportSecret)) -> mpc_transport::task::Member {
        mpc_transport::task::Member {
            party: party.into(),
            node_id: mpc_callback::mpc_wire::keys::node_id(node.0.verifying_key()),
            transport_cert: node.1.certify(&node.0),
        }
    }

    #[test]
    fn tasks_are_checked_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let (rt, nodes) = runtime(dir.path(), 3);
        let good = Task {
            version: TASK_VERSION,
            task_id: "t".into(),
            sino_id: "s".into(),
            request_id: "r".into(),
            deadline_unix_ms: now_ms() + 60_000,
            execution_unique: [1; 32],
            members: vec![member("a", &nodes[0]), member("b", &nodes[1])],
            body: TaskBody::Sign(sign_task(
                Algorithm::Ecdsa,
                Payload::Digest { digest: [0; 32] },
            )),
        };
        let plan = rt.plan(&good).unwrap();
        assert_eq!(plan.me.to_string(), "a");
        assert_eq!(
            plan.eids,
            vec![ExecutionId::derive(
                ProtocolKind::EcdsaSign,
                &[1; 32],
                &[PartyId::new("a").unwrap(), PartyId::new("b").unwrap()]
            )]
        );
        let refused = |t: &Task, want: &str| {
            let e = rt.plan(t).err().unwrap_or_default();
            assert!(e.contains(want), "{e:?} does not contain {want:?}");
        };
        let mut t = good.clone();
        t.deadline_unix_ms = now_ms() - 1;
        refused(&t, "deadline");
        let mut t = good.clone();
        t.members = vec![member("b", &nodes[1]), member("c", &nodes[2])];
        refused(&t, "not a member");
        let mut t = good.clone();
        t.members = vec![member("b", &nodes[0]), member("c", &nodes[1])];
        refused(&t, "names this node as party b");
        // A certificate of another node presented for b.
        let mut t = good.clone();
        t.members[1].transport_cert = nodes[2].1.certify(&nodes[2].0);
        refused(&t, "member b");
        // A transport key swapped in by the proxy.
        let mut t = good.clone();
        t.members[1].transport_cert.x25519_public[0] ^= 1;
        refused(&t, "member b");
        let mut t = good.clone();
        t.members.push(member("b", &nodes[2]));
        refused(&t, "listed twice");
        // Quarantine: after b misbehaved with key k, tasks for k with b are refused; others not.
        rt.state()
            .quarantine
            .insert(("k".to_string(), "b".to_string()));
        refused(&good, "quarantined with party b");
        let mut t = good.clone();
        t.members = vec![member("a", &nodes[0]), member("c", &nodes[2])];
        rt.plan(&t).unwrap();
    }
}
