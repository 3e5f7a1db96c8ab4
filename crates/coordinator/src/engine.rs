//! Orchestration (`docs/platform.md`, "Tasks"): online nodes, key generation and signing runs,
//! their results, aborts and deadlines.
//!
//! Runs: key generation, signing, and key refresh and repair (DKLs23 keys: every party stores
//! its new share beside the current one and answers its generation; when all answered the same
//! one, the key switches to it in the store with one conditional update, and sign tasks name
//! it). A repair rebuilds one party's share on the node bound to the party now (after
//! `node/replace`), then refreshes every share: the same end as a refresh.
//!
//! A run lives in memory from dispatch to its end. It ends exactly once: whoever removes it
//! from [`EngineState::runs`] (under the state lock) writes its end to the store.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use mpc_api::types::{BusinessExecStatus, BusinessExecType};
use mpc_bus::{Delivery, ProxyEvent};
use mpc_transport::frame::{Abort, Frame};
use mpc_transport::keys::TransportCert;
use mpc_transport::signed::verify_result;
use mpc_transport::task::{
    Algorithm, Curve, EcdsaProtocol, KeygenTask, Member, Outcome, Payload, RefreshTask, RepairTask,
    SignTask, TASK_VERSION, Task, TaskBody,
};

use crate::store::{
    KeyRow, KeyState, MpcRequestRow, SignFinish, SignRequestRow, SignState, StoreError, curve_str,
    now_ms,
};
use crate::verify::{VerifyInput, verify_signature};
use crate::{Coordinator, new_id};

/// Timer resolution of deadlines.
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// How long a coordinator instance counts as alive after its last heartbeat (ms); it renews
/// every [`HEARTBEAT_EVERY`]. Runs of an instance silent for longer are failed by another.
pub(crate) const LEASE_MS: u64 = 20_000;
/// Heartbeat (and orphan sweep) period.
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// How often the automatic key generation conditions are re-checked.
const AUTO_KEYGEN_CHECK: Duration = Duration::from_secs(1);
/// A failed automatic key generation is retried at most this often.
pub(crate) const KEYGEN_RETRY: Duration = Duration::from_secs(60);
/// The parties of an organization.
pub(crate) const PARTIES: [&str; 3] = mpc_api::types::admin::PARTY_IDS;

/// A connected node.
#[derive(Debug, Clone)]
pub(crate) struct OnlineNode {
    pub organization_id: String,
    pub party: String,
    pub cert: TransportCert,
    /// The proxy connection it came online on (`<proxy>/<n>`).
    pub connection: String,
    /// When a proxy last announced it.
    pub announced: Instant,
}

/// In-memory orchestration state.
#[derive(Debug, Default)]
pub(crate) struct EngineState {
    pub online: HashMap<String, OnlineNode>,
    runs: HashMap<String, Run>,
    last_auto_check: Option<Instant>,
    last_heartbeat: Option<Instant>,
}

#[derive(Debug)]
enum RunKind {
    Keygen {
        key_id: String,
    },
    Sign {
        verify: VerifyInput,
        started_ms: u64,
    },
    /// A refresh or a repair (they end the same way).
    Refresh {
        key_id: String,
        /// The generation the run started from (`''`: the key generation's).
        from: String,
        public_key: Vec<u8>,
    },
}

#[derive(Debug)]
struct Run {
    task_id: String,
    organization_id: String,
    sino_id: String,
    kind: RunKind,
    members: Vec<Member>,
    execution_unique: [u8; 32],
    answers: BTreeMap<String, Outcome>,
    deadline: Instant,
}

impl Run {
    fn unanswered(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| !self.answers.contains_key(&m.party))
            .map(|m| m.party.clone())
            .collect()
    }
}

/// How a run ended.
#[derive(Debug)]
enum End {
    KeygenDone {
        public_key: Vec<u8>,
        chain_code: [u8; 32],
    },
    Signed {
        signature: String,
        encrypted: bool,
    },
    Refreshed {
        generation: String,
    },
    Rejected {
        reason: String,
        by: String,
    },
    Failed {
        reason: String,
        culprits: Vec<String>,
    },
}

/// Everything a signing request needs, computed by the API handler.
#[derive(Debug, Clone)]
pub(crate) struct SignPlan {
    pub organization_id: String,
    pub request_id: String,
    pub kind: BusinessExecType,
    pub key: KeyRow,
    pub path: String,
    pub algorithm: Algorithm,
    pub sign_type: u8,
    pub payload: Payload,
    /// The message as the API caller sent it (returned by sign_result).
    pub api_message: String,
    pub verify: VerifyInput,
    pub tx_info: Option<String>,
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
}

fn algorithm_str(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Ecdsa => "ecdsa",
        Algorithm::Eddsa => "eddsa",
        Algorithm::Bip340 => "bip340",
        Algorithm::Taproot => "taproot",
    }
}

fn outcome_summary(o: Option<&Outcome>) -> String {
    match o {
        None => "no answer".into(),
        Some(Outcome::KeygenDone { public_key, .. }) => {
            format!("keygen done {}", hex::encode(public_key))
        }
        Some(Outcome::Signed { encrypted, .. }) => {
            if encrypted.is_some() {
                "signed (encrypted)".into()
            } else {
                "signed".into()
            }
        }
        Some(Outcome::Refreshed { generation, .. }) => format!("refreshed to {generation}"),
        Some(Outcome::Rejected { reason }) => format!("rejected: {reason}"),
        Some(Outcome::Failed { fault, detail, .. }) => format!("failed ({fault:?}): {detail}"),
    }
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    b
}

impl Coordinator {
    // ------------------------------------------------------------------ events

    pub(crate) async fn handle_event(&self, ev: ProxyEvent) {
        match ev {
            ProxyEvent::NodeOnline {
                node_id,
                organization_id,
                party,
                transport_cert,
                connection,
            } => {
                self.on_node_online(node_id, organization_id, party, transport_cert, connection)
                    .await
            }
            ProxyEvent::NodeOffline {
                node_id,
                connection,
            } => {
                self.on_node_offline(node_id, &connection, "went offline")
                    .await
            }
            ProxyEvent::TaskResult {
                node_id,
                party,
                result,
            } => self.on_task_result(node_id, party, result).await,
        }
    }

    async fn on_node_online(
        &self,
        node_id: String,
        org: String,
        party: String,
        cert: TransportCert,
        connection: String,
    ) {
        // A proxy repeating what is known (a re-announce): only its time changes.
        {
            let mut st = self.lock();
            if let Some(n) = st.online.get_mut(&node_id)
                && n.connection == connection
                && n.organization_id == org
                && n.party == party
                && n.cert == cert
            {
                n.announced = Instant::now();
                return;
            }
        }
        let nid = node_id.clone();
        let binding = self.db(move |s| s.binding(&nid)).await;
        match binding {
            Ok(Some(b)) if b.organization_id == org && b.party == party => {}
            Ok(_) => {
                tracing::warn!(node_id = %node_id, organization = %org, party = %party, "coordinator: online event for a node not bound so; ignored");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "coordinator: store failed on node online");
                return;
            }
        }
        if cert.node_id != node_id {
            tracing::warn!(node_id = %node_id, "coordinator: transport certificate of another node; ignored");
            return;
        }
        let n = {
            let mut st = self.lock();
            st.online.insert(
                node_id.clone(),
                OnlineNode {
                    organization_id: org.clone(),
                    party: party.clone(),
                    cert,
                    connection: connection.clone(),
                    announced: Instant::now(),
                },
            );
            st.online.len()
        };
        self.metrics
            .online_nodes
            .set(i64::try_from(n).unwrap_or(i64::MAX));
        tracing::info!(node_id = %node_id, organization = %org, party = %party, connection = %connection, "coordinator: node online");
        let nid = node_id.clone();
        let at = now_ms();
        if let Err(e) = self.db(move |s| s.touch_node(&nid, at)).await {
            tracing::warn!(error = %e, "coordinator: could not record last seen");
        }
        self.auto_keygen(&org).await;
    }

    /// `node_id`'s `connection` is gone: if that is still its connection, the node is offline
    /// and its unfinished runs fail, saying `why` (a node that moved to another proxy stays
    /// online).
    async fn on_node_offline(&self, node_id: String, connection: &str, why: &str) {
        let (ended, n) = {
            let mut st = self.lock();
            match st.online.get(&node_id) {
                None => return,
                Some(n) if n.connection != connection => {
                    tracing::debug!(node_id = %node_id, ended = %connection, current = %n.connection, "coordinator: an older connection of the node ended; it stays online");
                    return;
                }
                Some(_) => {}
            }
            let Some(node) = st.online.remove(&node_id) else {
                return;
            };
            let ids: Vec<String> = st
                .runs
                .values()
                .filter(|r| {
                    r.members
                        .iter()
                        .any(|m| m.node_id == node_id && !r.answers.contains_key(&m.party))
                })
                .map(|r| r.task_id.clone())
                .collect();
            let ended: Vec<(Run, String)> = ids
                .iter()
                .filter_map(|id| st.runs.remove(id))
                .map(|r| (r, node.party.clone()))
                .collect();
            (ended, st.online.len())
        };
        self.metrics
            .online_nodes
            .set(i64::try_from(n).unwrap_or(i64::MAX));
        tracing::info!(node_id = %node_id, runs_failed = ended.len(), why, "coordinator: node offline");
        let nid = node_id.clone();
        let at = now_ms();
        if let Err(e) = self.db(move |s| s.touch_node(&nid, at)).await {
            tracing::warn!(error = %e, "coordinator: could not record last seen");
        }
        for (run, party) in ended {
            let end = End::Failed {
                reason: format!("party {party} {why} during the run"),
                culprits: vec![party.clone()],
            };
            self.finish(run, end, &[party]).await;
        }
    }

    async fn on_task_result(&self, node_id: String, party: String, bytes: Vec<u8>) {
        // Signed by the node bound to the connection's party, or not a result at all: the
        // proxy and the bus relay results but cannot forge or alter one, and an altered one
        // blames nobody (its run ends at its deadline, naming who did not answer).
        let result = match verify_result(&bytes, &node_id) {
            Ok(r) => r.into_result(),
            Err(e) => {
                tracing::warn!(node_id = %node_id, party = %party, error = %e, "coordinator: task result refused (not signed by the node it comes from); ignored");
                return;
            }
        };
        if result.party != party {
            tracing::warn!(node_id = %node_id, party = %party, claimed = %result.party, "coordinator: task result for another party; ignored");
            return;
        }
        let decided = {
            let mut st = self.lock();
            let Some(run) = st.runs.get_mut(&result.task_id) else {
                tracing::info!(task_id = %result.task_id, party = %party, "coordinator: result for an unknown or finished task; ignored");
                return;
            };
            if !run
                .members
                .iter()
                .any(|m| m.party == party && m.node_id == node_id)
            {
                tracing::warn!(task_id = %result.task_id, party = %party, "coordinator: result from a non-member; ignored");
                return;
            }
            if run.answers.contains_key(&party) {
                tracing::warn!(task_id = %result.task_id, party = %party, "coordinator: duplicate result; ignored");
                return;
            }
            tracing::info!(task_id = %result.task_id, party = %party, outcome = %outcome_summary(Some(&result.outcome)), "coordinator: task result");
            let decisive = matches!(
                result.outcome,
                Outcome::Rejected { .. } | Outcome::Failed { .. }
            );
            run.answers.insert(party.clone(), result.outcome);
            if decisive || run.answers.len() == run.members.len() {
                st.runs.remove(&result.task_id)
            } else {
                None
            }
        };
        if let Some(run) = decided {
            let (end, exclude) = conclude(&run, &party);
            self.finish(run, end, &exclude).await;
        }
    }

    pub(crate) async fn on_tick(&self) {
        let now = Instant::now();
        let beat = {
            let mut st = self.lock();
            let due = st
                .last_heartbeat
                .is_none_or(|t| now.duration_since(t) >= HEARTBEAT_EVERY);
            if due {
                st.last_heartbeat = Some(now);
            }
            due
        };
        if beat {
            self.heartbeat_and_sweep().await;
        }
        if let Some(limit) = self.config.node_announce_timeout {
            let stale: Vec<(String, String)> = self
                .lock()
                .online
                .iter()
                .filter(|(_, n)| now.duration_since(n.announced) > limit)
                .map(|(id, n)| (id.clone(), n.connection.clone()))
                .collect();
            for (node_id, connection) in stale {
                tracing::warn!(node_id = %node_id, connection = %connection, "coordinator: no proxy announced the node for {limit:?}; taking it as offline");
                self.on_node_offline(node_id, &connection, "was no longer announced by any proxy")
                    .await;
            }
        }
        let (expired, check_auto) = {
            let mut st = self.lock();
            let ids: Vec<String> = st
                .runs
                .values()
                .filter(|r| r.deadline <= now)
                .map(|r| r.task_id.clone())
                .collect();
            let expired: Vec<Run> = ids.iter().filter_map(|id| st.runs.remove(id)).collect();
            let check = st
                .last_auto_check
                .is_none_or(|t| now.duration_since(t) >= AUTO_KEYGEN_CHECK);
            if check {
                st.last_auto_check = Some(now);
            }
            (expired, check)
        };
        for run in expired {
            let silent = run.unanswered();
            let end = End::Failed {
                reason: format!("deadline passed; no answer from: {}", silent.join(", ")),
                culprits: silent,
            };
            self.finish(run, end, &[]).await;
        }
        if check_auto {
            let orgs: Vec<String> = {
                let st = self.lock();
                let mut o: Vec<String> = st
                    .online
                    .values()
                    .map(|n| n.organization_id.clone())
                    .collect();
                o.sort();
                o.dedup();
                o
            };
            for org in orgs {
                self.auto_keygen(&org).await;
            }
        }
    }

    // ------------------------------------------------------------------ keygen

    /// Members for `parties` of `org` that are bound and online, in party order, and the
    /// parties that are not.
    async fn online_members(
        &self,
        org: &str,
        parties: &[String],
    ) -> Result<(Vec<Member>, Vec<String>), StoreError> {
        let o = org.to_owned();
        let bindings = self.db(move |s| s.bindings(Some(&o))).await?;
        let st = self.lock();
        let mut members = Vec::new();
        let mut missing = Vec::new();
        for p in parties {
            let node = bindings
                .iter()
                .find(|b| &b.party == p)
                .and_then(|b| st.online.get(&b.node_id).map(|n| (b, n)));
            match node {
                Some((b, n)) if n.organization_id == org => members.push(Member {
                    party: p.clone(),
                    node_id: b.node_id.clone(),
                    transport_cert: n.cert.clone(),
                }),
                _ => missing.push(p.clone()),
            }
        }
        Ok((members, missing))
    }

    /// Starts the automatic key generations the organization lacks.
    pub(crate) async fn auto_keygen(&self, org: &str) {
        let parties: Vec<String> = PARTIES.iter().map(|p| p.to_string()).collect();
        let Ok((_, missing)) = self.online_members(org, &parties).await else {
            return;
        };
        if !missing.is_empty() {
            return;
        }
        let o = org.to_owned();
        let keys = match self.db(move |s| s.keys(Some(&o))).await {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "coordinator: store failed in automatic keygen");
                return;
            }
        };
        let now = now_ms();
        for curve in [Curve::Secp256k1, Curve::Ed25519] {
            let of_curve: Vec<&KeyRow> = keys.iter().filter(|k| k.curve == curve).collect();
            if of_curve.iter().any(|k| k.status != KeyState::Failed) {
                continue;
            }
            let retry_ms = u64::try_from(KEYGEN_RETRY.as_millis()).unwrap_or(u64::MAX);
            if of_curve
                .iter()
                .any(|k| k.updated_at.saturating_add(retry_ms) > now)
            {
                continue;
            }
            match self
                .start_keygen(org, curve, self.config.default_threshold)
                .await
            {
                Ok(k) => {
                    tracing::info!(organization = %org, key_id = %k.id, curve = curve_str(curve), "coordinator: automatic key generation started")
                }
                Err(StartError::Conflict(_)) => {}
                Err(e) => {
                    tracing::warn!(organization = %org, curve = curve_str(curve), error = %e, "coordinator: automatic key generation not started")
                }
            }
        }
    }

    /// Starts a key generation among a, b, c (all bound and online).
    pub(crate) async fn start_keygen(
        &self,
        org: &str,
        curve: Curve,
        threshold: u16,
    ) -> Result<KeyRow, StartError> {
        let parties: Vec<String> = PARTIES.iter().map(|p| p.to_string()).collect();
        let (members, missing) = self.online_members(org, &parties).await?;
        if !missing.is_empty() {
            return Err(StartError::Unavailable(format!(
                "parties not bound or offline: {}",
                missing.join(", ")
            )));
        }
        let o = org.to_owned();
        let organization = self
            .db(move |s| s.organization(&o))
            .await?
            .ok_or_else(|| StartError::Unavailable(format!("unknown organization {org}")))?;
        let ecdsa_protocol = match curve {
            Curve::Secp256k1 => Some(organization.ecdsa_protocol),
            Curve::Ed25519 => None,
        };
        let now = now_ms();
        let key = KeyRow {
            id: new_id("key"),
            organization_id: org.to_owned(),
            curve,
            threshold,
            ecdsa_protocol,
            parties: parties.clone(),
            root_public_key: Vec::new(),
            chain_code: None,
            status: KeyState::Generating,
            failure_reason: String::new(),
            generation: String::new(),
            created_at: now,
            updated_at: now,
        };
        let k = key.clone();
        if !self.db(move |s| s.create_key_if_absent(&k)).await? {
            return Err(StartError::Conflict(format!(
                "the organization has a {} key that is generating or generated",
                curve_str(curve)
            )));
        }
        let task_id = new_id("task");
        let mpc = MpcRequestRow {
            task_id: task_id.clone(),
            organization_id: org.to_owned(),
            kind: BusinessExecType::KeyGen.as_number(),
            sino_id: key.id.clone(),
            request_id: String::new(),
            param: match curve {
                Curve::Secp256k1 => "ecdsa-secp256k1".into(),
                Curve::Ed25519 => "eddsa-ed25519".into(),
            },
            status: BusinessExecStatus::InProgress.as_number(),
            failed_reason: String::new(),
            outcomes: "{}".into(),
            created_at: now,
            finished_at: None,
        };
        self.db(move |s| s.insert_mpc_request(&mpc)).await?;
        let task = Task {
            version: TASK_VERSION,
            task_id: task_id.clone(),
            sino_id: key.id.clone(),
            request_id: String::new(),
            deadline_unix_ms: now.saturating_add(
                u64::try_from(self.config.keygen_timeout.as_millis()).unwrap_or(u64::MAX),
            ),
            execution_unique: random32(),
            members,
            body: TaskBody::Keygen(KeygenTask {
                key_id: key.id.clone(),
                curve,
                threshold,
                ecdsa_protocol: organization.ecdsa_protocol,
            }),
        };
        self.dispatch(
            task,
            org,
            RunKind::Keygen {
                key_id: key.id.clone(),
            },
            self.config.keygen_timeout,
        )
        .await;
        Ok(key)
    }

    /// Renews this instance's lease, then fails the runs of instances whose lease lapsed
    /// (they stopped while driving them). Nothing is swept when the renewal failed.
    async fn heartbeat_and_sweep(&self) {
        let until = now_ms().saturating_add(LEASE_MS);
        if let Err(e) = self.db(move |s| s.heartbeat(until)).await {
            tracing::error!(error = %e, "coordinator: heartbeat not recorded");
            return;
        }
        let at = now_ms();
        match self
            .db(move |s| {
                s.fail_orphaned("the coordinator driving it stopped (its lease lapsed)", at)
            })
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(
                    rows = n,
                    "coordinator: failed the runs of a coordinator that stopped"
                )
            }
            Err(e) => tracing::error!(error = %e, "coordinator: orphaned runs not swept"),
        }
    }

    // ------------------------------------------------------------------ signing

    /// Records a signing request (or returns the earlier one with the same requestId) and
    /// starts its run.
    pub(crate) async fn submit_sign(&self, plan: SignPlan) -> Result<SignRequestRow, StoreError> {
        let now = now_ms();
        let row = SignRequestRow {
            sino_id: new_id("sino"),
            organization_id: plan.organization_id.clone(),
            request_id: plan.request_id.clone(),
            kind: plan.kind.as_number(),
            algorithm: algorithm_str(plan.algorithm).into(),
            sign_type: plan.sign_type,
            key_id: plan.key.id.clone(),
            path: plan.path.clone(),
            message: plan.api_message.clone(),
            digest: hex::encode(&plan.verify.signed),
            state: SignState::Pending,
            signature: String::new(),
            encrypted: false,
            reason: String::new(),
            culprits: Vec::new(),
            created_at: now,
            finished_at: None,
        };
        let r = row.clone();
        let (stored, inserted) = self.db(move |s| s.insert_sign_request(&r)).await?;
        if !inserted {
            tracing::info!(organization = %plan.organization_id, request_id = %plan.request_id, sino_id = %stored.sino_id, "coordinator: repeated requestId; returning the first request");
            return Ok(stored);
        }
        tracing::info!(organization = %plan.organization_id, request_id = %plan.request_id, sino_id = %stored.sino_id, algorithm = algorithm_str(plan.algorithm), "coordinator: signing request");
        let (online, offline) = self
            .online_members(&plan.organization_id, &plan.key.parties)
            .await?;
        let t = usize::from(plan.key.threshold);
        if online.len() < t {
            let reason = format!(
                "not enough parties online: {t} signers needed, offline: {}",
                offline.join(", ")
            );
            let finish = SignFinish {
                state: SignState::Failed,
                signature: String::new(),
                encrypted: false,
                reason: reason.clone(),
                culprits: offline,
                at: now_ms(),
            };
            let sino = stored.sino_id.clone();
            let f = finish.clone();
            self.db(move |s| s.finish_sign_request(&sino, &f)).await?;
            self.result_waits.finished(&stored.sino_id);
            self.metrics
                .sign_outcomes
                .get_or_create(&crate::metrics::OutcomeLabels {
                    outcome: "failed".into(),
                })
                .inc();
            tracing::warn!(sino_id = %stored.sino_id, reason = %reason, "coordinator: signing request failed at once");
            let sino = stored.sino_id.clone();
            let org = plan.organization_id.clone();
            return self
                .db(move |s| s.sign_request(&org, None, Some(&sino)))
                .await?
                .ok_or_else(|| StoreError::NotFound("sign request".into()));
        }
        let signers: Vec<Member> = online.into_iter().take(t).collect();
        let task_id = new_id("task");
        let mpc = MpcRequestRow {
            task_id: task_id.clone(),
            organization_id: plan.organization_id.clone(),
            kind: plan.kind.as_number(),
            sino_id: stored.sino_id.clone(),
            request_id: plan.request_id.clone(),
            param: hex::encode(&plan.verify.signed),
            status: BusinessExecStatus::InProgress.as_number(),
            failed_reason: String::new(),
            outcomes: "{}".into(),
            created_at: now,
            finished_at: None,
        };
        self.db(move |s| s.insert_mpc_request(&mpc)).await?;
        let task = Task {
            version: TASK_VERSION,
            task_id,
            sino_id: stored.sino_id.clone(),
            request_id: plan.request_id.clone(),
            deadline_unix_ms: now.saturating_add(
                u64::try_from(self.config.sign_timeout.as_millis()).unwrap_or(u64::MAX),
            ),
            execution_unique: random32(),
            members: signers,
            body: TaskBody::Sign(SignTask {
                key_id: plan.key.id.clone(),
                algorithm: plan.algorithm,
                ecdsa_protocol: plan.key.ecdsa_protocol.unwrap_or(EcdsaProtocol::LEGACY),
                root_public_key: plan.key.root_public_key.clone(),
                path: plan.path.clone(),
                sign_type: plan.sign_type,
                payload: plan.payload.clone(),
                tap_script_root: plan.verify.tap_script_root.map(|r| r.to_vec()),
                tx_info: plan.tx_info.clone(),
                generation: (!plan.key.generation.is_empty()).then(|| plan.key.generation.clone()),
            }),
        };
        self.dispatch(
            task,
            &plan.organization_id,
            RunKind::Sign {
                verify: plan.verify.clone(),
                started_ms: now,
            },
            self.config.sign_timeout,
        )
        .await;
        Ok(stored)
    }

    // ------------------------------------------------------------------ refresh, repair

    /// Starts a refresh of a generated DKLs23 key among all its parties (all online), unless
    /// a refresh or repair of it is running. Returns the run's record.
    pub(crate) async fn start_refresh(
        &self,
        org: &str,
        key_id: &str,
    ) -> Result<MpcRequestRow, StartError> {
        self.start_reshare(org, key_id, None).await
    }

    /// Starts a repair of `party`'s share of a generated DKLs23 key on the node bound to the
    /// party now, among all the key's parties (all online), unless a refresh or repair of it is
    /// running. Returns the run's record.
    pub(crate) async fn start_repair(
        &self,
        org: &str,
        key_id: &str,
        party: &str,
    ) -> Result<MpcRequestRow, StartError> {
        self.start_reshare(org, key_id, Some(party)).await
    }

    /// A refresh (`repair: None`) or the repair of a party's share: both end with every party
    /// storing a new share beside its current one; the key switches when all answered.
    async fn start_reshare(
        &self,
        org: &str,
        key_id: &str,
        repair: Option<&str>,
    ) -> Result<MpcRequestRow, StartError> {
        let what = if repair.is_some() {
            "repair"
        } else {
            "refresh"
        };
        let o = org.to_owned();
        let key = self
            .db(move |s| s.keys(Some(&o)))
            .await?
            .into_iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| {
                StartError::NotFound(format!("organization {org} has no key {key_id}"))
            })?;
        if key.status != KeyState::Generated {
            return Err(StartError::Conflict(format!(
                "key {key_id} is not generated; only a generated key can take a {what}"
            )));
        }
        if key.ecdsa_protocol != Some(EcdsaProtocol::Dkls23) {
            return Err(StartError::BadRequest(format!(
                "key {key_id} is a {} key; only DKLs23 keys have a {what} (no maintained library refreshes or repairs threshold CGGMP24 or FROST shares: docs/protocol.md)",
                key.ecdsa_protocol
                    .map_or("FROST ed25519".to_owned(), |p| p.to_string())
            )));
        }
        if let Some(party) = repair {
            if !key.parties.iter().any(|p| p == party) {
                return Err(StartError::BadRequest(format!(
                    "party {party} holds no share of key {key_id} (parties {})",
                    key.parties.join(",")
                )));
            }
            if usize::from(key.threshold) >= key.parties.len() {
                return Err(StartError::BadRequest(format!(
                    "key {key_id} is {}-of-{}: the other parties are fewer than the threshold, so a lost share cannot be rebuilt",
                    key.threshold,
                    key.parties.len()
                )));
            }
        }
        let (members, missing) = self.online_members(org, &key.parties).await?;
        if !missing.is_empty() {
            return Err(StartError::Unavailable(format!(
                "a {what} needs every party of the key online; not bound or offline: {}",
                missing.join(", ")
            )));
        }
        let chain_code = match (repair, key.chain_code) {
            (Some(_), None) => {
                return Err(StartError::Conflict(format!(
                    "key {key_id} has no recorded chain code"
                )));
            }
            (_, cc) => cc.unwrap_or_default(),
        };
        let from = if key.generation.is_empty() {
            "from the key generation's shares".to_owned()
        } else {
            format!("from generation {}", key.generation)
        };
        let now = now_ms();
        let task_id = new_id("task");
        let row = MpcRequestRow {
            task_id: task_id.clone(),
            organization_id: org.to_owned(),
            kind: if repair.is_some() {
                BusinessExecType::KeyRepair
            } else {
                BusinessExecType::KeyRefresh
            }
            .as_number(),
            sino_id: key.id.clone(),
            request_id: task_id.clone(),
            param: match repair {
                Some(party) => {
                    let node = members
                        .iter()
                        .find(|m| m.party == party)
                        .map_or("", |m| m.node_id.as_str());
                    format!("party {party} onto node {node}, {from}")
                }
                None => from,
            },
            status: BusinessExecStatus::InProgress.as_number(),
            failed_reason: String::new(),
            outcomes: "{}".into(),
            created_at: now,
            finished_at: None,
        };
        let r = row.clone();
        // The store admits one running refresh or repair per key, whichever coordinator
        // starts it (a partial unique index): a conflict here is that one.
        match self.db(move |s| s.insert_mpc_request(&r)).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(StartError::Conflict(format!(
                    "a refresh or repair of key {key_id} is running"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        let generation = (!key.generation.is_empty()).then(|| key.generation.clone());
        let body = match repair {
            Some(party) => TaskBody::Repair(RepairTask {
                key_id: key.id.clone(),
                root_public_key: key.root_public_key.clone(),
                chain_code,
                threshold: key.threshold,
                generation,
                party: party.to_owned(),
            }),
            None => TaskBody::Refresh(RefreshTask {
                key_id: key.id.clone(),
                root_public_key: key.root_public_key.clone(),
                generation,
            }),
        };
        let task = Task {
            version: TASK_VERSION,
            task_id: task_id.clone(),
            sino_id: key.id.clone(),
            request_id: task_id,
            deadline_unix_ms: now.saturating_add(
                u64::try_from(self.config.keygen_timeout.as_millis()).unwrap_or(u64::MAX),
            ),
            execution_unique: random32(),
            members,
            body,
        };
        tracing::info!(organization = %org, key_id = %key.id, task_id = %row.task_id, what = %row.param, "coordinator: key {what} started");
        self.dispatch(
            task,
            org,
            RunKind::Refresh {
                key_id: key.id.clone(),
                from: key.generation.clone(),
                public_key: key.root_public_key.clone(),
            },
            self.config.keygen_timeout,
        )
        .await;
        Ok(row)
    }

    /// For a refresh every party finished: switches the key to the new generation (only from
    /// the generation the refresh started from). Any other end stays as it is; the key's
    /// generation in force then is unchanged, and every node still holds its share.
    async fn switch_generation(&self, kind: &RunKind, end: End, at: u64) -> End {
        let (RunKind::Refresh { key_id, from, .. }, End::Refreshed { generation }) = (kind, &end)
        else {
            return end;
        };
        let (k, f, g) = (key_id.clone(), from.clone(), generation.clone());
        match self
            .db(move |s| s.switch_key_generation(&k, &f, &g, at))
            .await
        {
            Ok(true) => {
                tracing::info!(key_id = %key_id, generation = %generation, "coordinator: key switched to its refreshed shares");
                end
            }
            Ok(false) => End::Failed {
                reason: format!(
                    "key {key_id} is no longer at the generation the refresh started from; the new shares are not used"
                ),
                culprits: Vec::new(),
            },
            Err(e) => End::Failed {
                reason: format!("could not record the new generation of key {key_id}: {e}"),
                culprits: Vec::new(),
            },
        }
    }

    // ------------------------------------------------------------------ runs

    async fn dispatch(&self, task: Task, org: &str, kind: RunKind, timeout: Duration) {
        let run = Run {
            task_id: task.task_id.clone(),
            organization_id: org.to_owned(),
            sino_id: task.sino_id.clone(),
            kind,
            members: task.members.clone(),
            execution_unique: task.execution_unique,
            answers: BTreeMap::new(),
            deadline: Instant::now() + timeout,
        };
        self.lock().runs.insert(task.task_id.clone(), run);
        let frame = self
            .config
            .task_signing_key
            .sign(&task)
            .map_err(|e| e.to_string())
            .and_then(|t| Frame::Task(t).encode().map_err(|e| e.to_string()));
        let mut failure = None;
        match frame {
            Ok(frame) => {
                for m in &task.members {
                    let d = Delivery {
                        node_id: m.node_id.clone(),
                        frame: frame.clone(),
                    };
                    if let Err(e) = self.bus.deliver(d).await {
                        failure = Some(format!(
                            "could not deliver the task to party {}: {e}",
                            m.party
                        ));
                        break;
                    }
                }
            }
            Err(e) => failure = Some(format!("could not encode the task: {e}")),
        }
        tracing::info!(task_id = %task.task_id, sino_id = %task.sino_id, members = task.members.len(), "coordinator: task dispatched");
        if let Some(reason) = failure {
            let run = self.lock().runs.remove(&task.task_id);
            if let Some(run) = run {
                self.finish(
                    run,
                    End::Failed {
                        reason,
                        culprits: Vec::new(),
                    },
                    &[],
                )
                .await;
            }
        }
    }

    async fn send_aborts(&self, run: &Run, reason: &str, exclude: &[String]) {
        let frame = match (Frame::Abort(Abort {
            execution_id: run.execution_unique,
            reason: reason.to_owned(),
        }))
        .encode()
        {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "coordinator: could not encode an abort");
                return;
            }
        };
        for m in run.members.iter().filter(|m| !exclude.contains(&m.party)) {
            let d = Delivery {
                node_id: m.node_id.clone(),
                frame: frame.clone(),
            };
            if let Err(e) = self.bus.deliver(d).await {
                tracing::warn!(party = %m.party, error = %e, "coordinator: abort not delivered");
            }
        }
    }

    async fn finish(&self, run: Run, end: End, exclude: &[String]) {
        let at = now_ms();
        let end = self.switch_generation(&run.kind, end, at).await;
        let outcomes = serde_json::Value::Object(
            run.members
                .iter()
                .map(|m| {
                    (
                        m.party.clone(),
                        serde_json::Value::String(outcome_summary(run.answers.get(&m.party))),
                    )
                })
                .collect(),
        )
        .to_string();
        let (status, reason) = match &end {
            End::KeygenDone { .. } | End::Signed { .. } | End::Refreshed { .. } => {
                (BusinessExecStatus::Success, String::new())
            }
            End::Rejected { reason, .. } | End::Failed { reason, .. } => {
                (BusinessExecStatus::Failed, reason.clone())
            }
        };
        if let End::Rejected { reason, by } = &end {
            let mut ex = exclude.to_vec();
            ex.push(by.clone());
            self.send_aborts(&run, reason, &ex).await;
        } else if let End::Failed { reason, .. } = &end {
            self.send_aborts(&run, reason, exclude).await;
        }
        tracing::info!(task_id = %run.task_id, sino_id = %run.sino_id, organization = %run.organization_id, status = ?status, reason = %reason, "coordinator: run ended");
        let task_id = run.task_id.clone();
        let r = reason.clone();
        let st = status.as_number();
        if let Err(e) = self
            .db(move |s| s.finish_mpc_request(&task_id, st, &r, &outcomes, at))
            .await
        {
            tracing::error!(error = %e, "coordinator: could not record the end of an MPC run");
        }
        match run.kind {
            RunKind::Keygen { key_id } => {
                let (state, pk, cc, outcome) = match end {
                    End::KeygenDone {
                        public_key,
                        chain_code,
                    } => (
                        KeyState::Generated,
                        public_key,
                        Some(chain_code),
                        "generated",
                    ),
                    _ => (KeyState::Failed, Vec::new(), None, "failed"),
                };
                self.metrics
                    .keygen_outcomes
                    .get_or_create(&crate::metrics::OutcomeLabels {
                        outcome: outcome.into(),
                    })
                    .inc();
                if let Err(e) = self
                    .db(move |s| s.finish_key(&key_id, state, &pk, cc, &reason, at))
                    .await
                {
                    tracing::error!(error = %e, "coordinator: could not record the end of a key generation");
                }
            }
            RunKind::Refresh { .. } => {}
            RunKind::Sign { started_ms, .. } => {
                let finish = match end {
                    End::Signed {
                        signature,
                        encrypted,
                    } => SignFinish {
                        state: SignState::Done,
                        signature,
                        encrypted,
                        reason: String::new(),
                        culprits: Vec::new(),
                        at,
                    },
                    End::Rejected { reason, by } => SignFinish {
                        state: SignState::Rejected,
                        signature: String::new(),
                        encrypted: false,
                        reason,
                        culprits: vec![by],
                        at,
                    },
                    End::Failed { reason, culprits } => SignFinish {
                        state: SignState::Failed,
                        signature: String::new(),
                        encrypted: false,
                        reason,
                        culprits,
                        at,
                    },
                    End::KeygenDone { .. } | End::Refreshed { .. } => SignFinish {
                        state: SignState::Failed,
                        signature: String::new(),
                        encrypted: false,
                        reason: "unexpected keygen outcome".into(),
                        culprits: Vec::new(),
                        at,
                    },
                };
                let outcome = match finish.state {
                    SignState::Done => "done",
                    SignState::Rejected => "rejected",
                    _ => "failed",
                };
                self.metrics
                    .sign_outcomes
                    .get_or_create(&crate::metrics::OutcomeLabels {
                        outcome: outcome.into(),
                    })
                    .inc();
                self.metrics
                    .sign_latency
                    .observe(at.saturating_sub(started_ms) as f64 / 1000.0);
                let sino = run.sino_id.clone();
                match self
                    .db(move |s| s.finish_sign_request(&sino, &finish))
                    .await
                {
                    Ok(_) => self.result_waits.finished(&run.sino_id),
                    Err(e) => {
                        tracing::error!(error = %e, "coordinator: could not record the end of a signing request");
                    }
                }
            }
        }
    }
}

/// The end of a run that has a decisive answer (from `last`) or all answers, and the parties
/// that need no abort.
fn conclude(run: &Run, last: &str) -> (End, Vec<String>) {
    if let Some(o) = run.answers.get(last) {
        match o {
            Outcome::Rejected { reason } => {
                return (
                    End::Rejected {
                        reason: format!("party {last} rejected: {reason}"),
                        by: last.to_owned(),
                    },
                    vec![last.to_owned()],
                );
            }
            Outcome::Failed {
                fault,
                detail,
                culprits,
            } => {
                let mut c = culprits.clone();
                if c.is_empty() {
                    c.push(last.to_owned());
                }
                return (
                    End::Failed {
                        reason: format!(
                            "party {last} failed ({fault:?}): {detail}; culprits: {}",
                            c.join(", ")
                        ),
                        culprits: c,
                    },
                    vec![last.to_owned()],
                );
            }
            _ => {}
        }
    }
    let end = match &run.kind {
        RunKind::Keygen { .. } => conclude_keygen(run),
        RunKind::Sign { verify, .. } => conclude_sign(run, verify),
        RunKind::Refresh { public_key, .. } => conclude_refresh(run, public_key),
    };
    (end, Vec::new())
}

fn conclude_keygen(run: &Run) -> End {
    let mut reported = Vec::new();
    for (party, o) in &run.answers {
        match o {
            Outcome::KeygenDone {
                public_key,
                chain_code,
            } => reported.push((party.clone(), public_key.clone(), *chain_code)),
            _ => {
                return End::Failed {
                    reason: format!("party {party} answered a keygen task with another outcome"),
                    culprits: vec![party.clone()],
                };
            }
        }
    }
    let Some((_, pk, cc)) = reported.first().cloned() else {
        return End::Failed {
            reason: "no party reported".into(),
            culprits: Vec::new(),
        };
    };
    if reported.iter().all(|(_, p, c)| *p == pk && *c == cc) {
        End::KeygenDone {
            public_key: pk,
            chain_code: cc,
        }
    } else {
        End::Failed {
            reason: format!(
                "parties reported different keys: {}",
                reported
                    .iter()
                    .map(|(p, k, c)| format!("{p}={}/{}", hex::encode(k), hex::encode(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            culprits: reported.into_iter().map(|(p, _, _)| p).collect(),
        }
    }
}

fn conclude_refresh(run: &Run, key: &[u8]) -> End {
    let mut generations = BTreeMap::new();
    for (party, o) in &run.answers {
        match o {
            Outcome::Refreshed {
                public_key,
                generation,
            } if public_key == key => {
                generations.insert(party.clone(), generation.clone());
            }
            Outcome::Refreshed { public_key, .. } => {
                return End::Failed {
                    reason: format!(
                        "party {party} reported a refresh of another key ({})",
                        hex::encode(public_key)
                    ),
                    culprits: vec![party.clone()],
                };
            }
            _ => {
                return End::Failed {
                    reason: format!("party {party} answered a refresh task with another outcome"),
                    culprits: vec![party.clone()],
                };
            }
        }
    }
    let mut distinct: Vec<&String> = generations.values().collect();
    distinct.dedup();
    match distinct.as_slice() {
        [g] if generations.len() == run.members.len() => End::Refreshed {
            generation: (*g).clone(),
        },
        _ => End::Failed {
            reason: format!(
                "parties reported different share generations: {}",
                generations
                    .iter()
                    .map(|(p, g)| format!("{p}={g}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            culprits: Vec::new(),
        },
    }
}

fn conclude_sign(run: &Run, verify: &VerifyInput) -> End {
    let mut plain = None;
    let mut encrypted = None;
    for (party, o) in &run.answers {
        match o {
            Outcome::Signed {
                signature,
                encrypted: enc,
            } => {
                if let (None, Some(s)) = (&plain, signature) {
                    plain = Some((party.clone(), s.clone()));
                }
                if encrypted.is_none() {
                    encrypted = enc.clone();
                }
            }
            _ => {
                return End::Failed {
                    reason: format!("party {party} answered a signing task with another outcome"),
                    culprits: vec![party.clone()],
                };
            }
        }
    }
    if let Some((party, sig)) = plain {
        match verify_signature(verify, &sig) {
            Ok(v) => match encrypted {
                Some(enc) => End::Signed {
                    signature: enc,
                    encrypted: true,
                },
                None => End::Signed {
                    signature: hex::encode(v.signature()),
                    encrypted: false,
                },
            },
            Err(e) => End::Failed {
                reason: format!("{e} (from party {party})"),
                culprits: vec![party],
            },
        }
    } else if let Some(enc) = encrypted {
        // Every signer encrypted: nothing to verify here; the holder of the key checks it.
        End::Signed {
            signature: enc,
            encrypted: true,
        }
    } else {
        End::Failed {
            reason: "no party returned a signature".into(),
            culprits: Vec::new(),
        }
    }
}
