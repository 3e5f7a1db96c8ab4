//! Key repair (DKLs23 keys): one party lost its share (its node is gone, or the node lost or
//! rolled back its store); the others rebuild it on the node the task names for that party,
//! then all `n` refresh. The run is the library's (`mpc_tss::dkls::repair_helper` /
//! `repair_target`).
//!
//! - A **helper** holds its share of the generation the task names ([`super::generation`]);
//!   intake has checked every other member against the committee stored with it. It asks its
//!   callback about exactly this repair (`key-repair`: the key, t, n, the committee after the
//!   repair as node ids, and the node that receives the rebuilt share; `authorizes_key_repair`),
//!   so a node takes a new committee member only under an approval naming it.
//! - The **rebuilt** party (this node is the member named for `party`) has no usable share: it
//!   asks its callback the same question, rebuilds against the coordinator's record (public
//!   key, chain code, threshold: a helper set describing another key is refused by the library
//!   run, naming it) and refreshes with the others.
//!
//! Every party stores the result *beside* its current share (if any), with the committee the
//! task names, and answers its generation: the refresh's switch ([`super::refresh`]) decides
//! when it is used, so a repair that fails part-way leaves the old generation (and committee)
//! in force everywhere.

use std::sync::{Arc, mpsc as std_mpsc};

use mpc_callback::{
    Cryptography, KeyRefreshParams, KeyRefreshRequest, KeyRepairParams, KeyRepairRequest, Request,
};
use mpc_transport::task::{Outcome, RepairTask, Task};
use mpc_tss::PartyId;
use mpc_tss::dkls::{self, DklsKeyShare};

use super::Runtime;
use super::admission::Plan;
use super::fail::RunFail;
use super::refresh::checked_refresh;
use super::registry::{Control, RunMsg};
use crate::store::Committee;

impl Runtime {
    pub(super) async fn repair(
        &self,
        task: &Task,
        r: &RepairTask,
        plan: &Plan,
        rx: std_mpsc::Receiver<RunMsg>,
        control: &Arc<Control>,
    ) -> Result<Outcome, RunFail> {
        let rebuilt = PartyId::new(&r.party)
            .map_err(|e| RunFail::BadTask(format!("repair of party {:?}: {e}", r.party)))?;
        if !plan.committee.parties().contains(&rebuilt) {
            return Err(RunFail::BadTask(format!(
                "the repair rebuilds party {rebuilt}, which is not a member of the task ({})",
                plan.parties_str()
            )));
        }
        let root: [u8; 33] =
            r.root_public_key.as_slice().try_into().map_err(|_| {
                RunFail::BadTask("the repair's root public key is not 33 bytes".into())
            })?;
        // The share this node helps with; `None` on the node the share is rebuilt on.
        let helper_share = if plan.me == rebuilt {
            None
        } else {
            let (_, share) = self
                .dkls_share(
                    &r.key_id,
                    r.generation.as_deref(),
                    &r.root_public_key,
                    "repaired",
                )
                .await?;
            if share.committee().parties() != plan.committee.parties()
                || share.threshold() != r.threshold
                || share.chain_code() != r.chain_code
            {
                return Err(RunFail::BadTask(format!(
                    "a repair of key {} needs every party of the key and its threshold and chain code; the task names parties {} and threshold {}",
                    r.key_id,
                    plan.parties_str(),
                    r.threshold
                )));
            }
            Some(share)
        };

        let party_ids = plan.node_ids()?;
        let new_party_id = plan
            .peers
            .get(&r.party)
            .map(|p| mpc_callback::mpc_wire::keys::node_id(&p.vk))
            .ok_or_else(|| RunFail::Local(format!("no node id for party {}", r.party)))?;
        let public_key = hex::encode(root);
        let (t, n) = (r.threshold, plan.committee.n());
        let request = Request::KeyRepair(KeyRepairRequest {
            refresh: KeyRefreshRequest {
                cryptography: Cryptography::EcdsaSecp256k1,
                public_key: public_key.clone(),
                t,
                n,
                party_ids: party_ids.clone(),
                sino_id: task.sino_id.clone(),
                request_id: task.request_id.clone(),
            },
            new_party_id: new_party_id.clone(),
        });
        let approved = self.ask_callback(plan, control, request).await?;
        approved
            .authorizes_key_repair(KeyRepairParams {
                refresh: KeyRefreshParams {
                    cryptography: Cryptography::EcdsaSecp256k1,
                    public_key: &public_key,
                    t,
                    n,
                    party_ids: &party_ids,
                    sino_id: &task.sino_id,
                    request_id: &task.request_id,
                },
                new_party_id: &new_party_id,
            })
            .map_err(|e| RunFail::Local(format!("approval does not cover the repair: {e}")))?;

        let (eid, me, committee, chain_code) =
            (plan.eids[0], plan.me, plan.committee.clone(), r.chain_code);
        let fresh: DklsKeyShare = self
            .on_thread(plan, control, rx, move |w| {
                let session = match &helper_share {
                    Some(share) => dkls::repair_helper(eid, share, rebuilt),
                    None => dkls::repair_target(eid, me, &committee, t, root),
                }
                .map_err(|e| RunFail::BadTask(e.to_string()))?;
                let fresh: DklsKeyShare = w.drive(session)?;
                checked_refresh(fresh, root, chain_code)
            })
            .await?;
        let committee = Committee::Pinned(
            task.members
                .iter()
                .map(|m| (m.party.clone(), m.node_id.clone()))
                .collect(),
        );
        let outcome = self.keep_beside(&r.key_id, committee, &fresh).await?;
        tracing::info!(
            key_id = %r.key_id,
            party = %r.party,
            node = %new_party_id,
            generation = %fresh.generation(),
            role = if plan.me == rebuilt { "rebuilt here" } else { "helper" },
            "repaired key share stored beside the current one; it becomes current when the platform names its generation"
        );
        Ok(outcome)
    }
}
