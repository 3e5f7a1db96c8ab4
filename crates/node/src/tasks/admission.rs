//! Admission: whether this node takes part in a task, and what the run needs
//! ([`Runtime::plan`]: the deadline, the committee with every transport certificate checked
//! against its node id, this node a member under its own party, the quarantine; the execution
//! ids), and the question to the callback servers ([`Runtime::ask_callback`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mpc_callback::{ApprovedRequest, Request};
use mpc_transport::keys::{PeerTransportKey, verify_cert};
use mpc_transport::task::{Algorithm, Curve, Task, TaskBody};
use mpc_tss::{Committee, ExecutionId, PartyId, ProtocolKind};
use p256::ecdsa::VerifyingKey;

use super::fail::RunFail;
use super::registry::Control;
use super::{Runtime, now_ms};

/// A member of the run, as this node verified it.
#[derive(Clone)]
pub(super) struct Peer {
    /// Its transport key (certified by its identity key).
    pub(super) key: PeerTransportKey,
    /// Its identity key (from its node id).
    pub(super) vk: VerifyingKey,
}

/// What a run needs, derived from an admitted task.
pub(super) struct Plan {
    pub(super) me: PartyId,
    pub(super) committee: Committee,
    pub(super) peers: BTreeMap<String, Peer>,
    pub(super) key_id: String,
    pub(super) eids: Vec<ExecutionId>,
    pub(super) kinds: Vec<ProtocolKind>,
    pub(super) deadline: Instant,
}

impl Plan {
    pub(super) fn kind_name(&self) -> &'static str {
        self.kinds.first().map_or("?", |k| k.name())
    }

    /// The guide's `party_ids`: the members' node ids, in party order.
    pub(super) fn node_ids(&self) -> Result<Vec<String>, RunFail> {
        self.committee
            .parties()
            .iter()
            .map(|p| {
                self.peers
                    .get(&p.to_string())
                    .map(|peer| mpc_callback::mpc_wire::keys::node_id(&peer.vk))
                    .ok_or_else(|| RunFail::Local(format!("no node id for party {p}")))
            })
            .collect()
    }

    pub(super) fn parties_str(&self) -> String {
        self.committee
            .parties()
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The monotonic instant of a Unix-ms deadline.
fn deadline_instant(deadline_unix_ms: u64) -> Instant {
    let left = deadline_unix_ms.saturating_sub(now_ms());
    Instant::now() + Duration::from_millis(left)
}

impl Runtime {
    /// Checks the task against this node and derives everything the run needs.
    pub(super) fn plan(&self, task: &Task) -> Result<Plan, String> {
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
                    Curve::Secp256k1 => mpc_tss::scheme::keygen_kinds(k.ecdsa_protocol),
                    Curve::Ed25519 => vec![ProtocolKind::EddsaKeygen],
                },
            ),
            TaskBody::Sign(s) => (
                s.key_id.clone(),
                vec![match s.algorithm {
                    Algorithm::Ecdsa => mpc_tss::scheme::sign_kind(s.ecdsa_protocol),
                    Algorithm::Eddsa => ProtocolKind::EddsaSign,
                    Algorithm::Bip340 => ProtocolKind::Bip340Sign,
                    Algorithm::Taproot => ProtocolKind::TaprootSign,
                }],
            ),
            TaskBody::Refresh(r) => (r.key_id.clone(), vec![ProtocolKind::Dkls23Refresh]),
            TaskBody::Repair(r) => (r.key_id.clone(), vec![ProtocolKind::Dkls23Repair]),
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

    pub(super) async fn ask_callback(
        &self,
        plan: &Plan,
        control: &Control,
        request: Request,
    ) -> Result<ApprovedRequest, RunFail> {
        let audit = self.inner.audit.clone();
        let (request_type, sino_id, request_id) = (
            request.request_type().as_str(),
            request.sino_id().to_owned(),
            request.request_id().to_owned(),
        );
        let decided = |decision: &str, reason: &str| {
            audit.record(
                "callback-decision",
                serde_json::json!({
                    "requestType": request_type,
                    "sinoId": sino_id,
                    "requestId": request_id,
                    "decision": decision,
                    "reason": reason,
                }),
            );
        };
        let r = self
            .bounded(
                plan,
                control,
                "the callback",
                self.inner.callback.check(&self.inner.identity, request),
            )
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                decided("no-answer", &format!("{e:?}"));
                return Err(e);
            }
        };
        let metrics = &self.inner.metrics;
        match r {
            Ok(a) => {
                metrics.callback_decision("approved");
                decided("approved", "");
                Ok(a)
            }
            Err(mpc_callback::CallbackError::Rejected { server, reason }) => {
                metrics.callback_decision("rejected");
                let reason = match reason {
                    mpc_callback::Rejection::Server(r) => r,
                    other => other.to_string(),
                };
                tracing::info!(server = %server, reason = %reason, "callback rejected the task");
                decided("rejected", &reason);
                Err(RunFail::Rejected(reason))
            }
            Err(e) => {
                metrics.callback_decision("error");
                decided("error", &e.to_string());
                Err(RunFail::Callback(e.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::test_support::{member, runtime, sign_task};
    use mpc_transport::task::{Payload, TASK_VERSION};

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
