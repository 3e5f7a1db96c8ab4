//! Key refresh (DKLs23 keys): every party of the key takes part. The node loads the share of
//! the generation the task names ([`super::generation`]), checks that the task is for that key
//! and its whole committee, asks the callback about exactly this refresh (`key-refresh`:
//! the key, t, n and the committee's node ids; `authorizes_key_refresh`), runs the library's
//! complete refresh (`mpc_tss::dkls::refresh`) and stores the new share *beside* the current
//! one, answering its generation. The current share stays in force until the coordinator names
//! the new generation in a task.

use std::sync::{Arc, mpsc as std_mpsc};

use mpc_callback::{Cryptography, KeyRefreshParams, KeyRefreshRequest, Request};
use mpc_transport::task::{Outcome, RefreshTask, Task};
use mpc_tss::dkls::{self, DklsKeyShare};

use super::Runtime;
use super::admission::Plan;
use super::fail::RunFail;
use super::registry::{Control, RunMsg};
use super::sign::same_root;
use crate::store::{Committee, StoredKey, StoredShare};

impl Runtime {
    pub(super) async fn refresh(
        &self,
        task: &Task,
        r: &RefreshTask,
        plan: &Plan,
        rx: std_mpsc::Receiver<RunMsg>,
        control: &Arc<Control>,
    ) -> Result<Outcome, RunFail> {
        let (committee, share) = self
            .dkls_share(
                &r.key_id,
                r.generation.as_deref(),
                &r.root_public_key,
                "refreshed",
            )
            .await?;
        if share.committee().parties() != plan.committee.parties() {
            return Err(RunFail::BadTask(format!(
                "a refresh needs every party of key {} ({}), the task names {}",
                r.key_id,
                share
                    .committee()
                    .parties()
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                plan.parties_str()
            )));
        }
        let party_ids = plan.node_ids()?;
        let public_key = hex::encode(share.public_key());
        let (t, n) = (share.threshold(), plan.committee.n());
        let request = Request::KeyRefresh(KeyRefreshRequest {
            cryptography: Cryptography::EcdsaSecp256k1,
            public_key: public_key.clone(),
            t,
            n,
            party_ids: party_ids.clone(),
            sino_id: task.sino_id.clone(),
            request_id: task.request_id.clone(),
        });
        let approved = self.ask_callback(plan, control, request).await?;
        approved
            .authorizes_key_refresh(KeyRefreshParams {
                cryptography: Cryptography::EcdsaSecp256k1,
                public_key: &public_key,
                t,
                n,
                party_ids: &party_ids,
                sino_id: &task.sino_id,
                request_id: &task.request_id,
            })
            .map_err(|e| RunFail::Local(format!("approval does not cover the refresh: {e}")))?;

        let eid = plan.eids[0];
        let fresh: DklsKeyShare = self
            .on_thread(plan, control, rx, move |w| {
                let s = dkls::refresh(eid, &share).map_err(|e| RunFail::BadTask(e.to_string()))?;
                let fresh: DklsKeyShare = w.drive(s)?;
                checked_refresh(fresh, share.public_key(), share.chain_code())
            })
            .await?;
        let outcome = self.keep_beside(&r.key_id, committee, &fresh).await?;
        tracing::info!(
            key_id = %r.key_id,
            generation = %fresh.generation(),
            "refreshed key share stored beside the current one; it becomes current when the platform names its generation"
        );
        Ok(outcome)
    }
}

impl Runtime {
    /// The DKLs23 share of `key_id` of `generation` and the committee stored with it, for a
    /// refresh or repair (`done`: "refreshed", "repaired"); refused unless it is a DKLs23 share
    /// of the task's root key.
    pub(super) async fn dkls_share(
        &self,
        key_id: &str,
        generation: Option<&str>,
        root: &[u8],
        done: &str,
    ) -> Result<(Committee, DklsKeyShare), RunFail> {
        let (id, generation) = (key_id.to_owned(), generation.map(str::to_owned));
        let key = self
            .blocking(move |inner| inner.key_for(&id, generation.as_deref()))
            .await?;
        let committee = key.committee.clone();
        let StoredShare::Dkls23 { share: stored } = &key.share else {
            return Err(RunFail::BadTask(format!(
                "key {key_id} is not a DKLs23 key; only DKLs23 keys can be {done}"
            )));
        };
        let share = DklsKeyShare::from_stored_bytes(stored)
            .map_err(|e| RunFail::Local(format!("stored share of key {key_id}: {e}")))?;
        same_root(&share.public_key(), root)?;
        Ok((committee, share))
    }

    /// Stores `fresh` (a refreshed or repaired share) with `committee` as `key_id`'s waiting
    /// share, and the answer that reports it.
    pub(super) async fn keep_beside(
        &self,
        key_id: &str,
        committee: Committee,
        fresh: &DklsKeyShare,
    ) -> Result<Outcome, RunFail> {
        let generation = fresh.generation();
        let waiting = StoredKey {
            committee,
            share: StoredShare::Dkls23 {
                share: fresh.to_stored_bytes(),
            },
            generation: Some(generation.clone()),
        };
        let id = key_id.to_owned();
        self.blocking(move |inner| inner.put_waiting(&id, &waiting))
            .await?;
        Ok(Outcome::Refreshed {
            public_key: fresh.public_key().to_vec(),
            generation,
        })
    }
}

/// A refreshed (or repaired) share is kept only if it is of the same key and chain code and
/// has a Schnorr form for BIP340/Taproot.
pub(super) fn checked_refresh(
    fresh: DklsKeyShare,
    public_key: [u8; 33],
    chain_code: [u8; 32],
) -> Result<DklsKeyShare, RunFail> {
    if fresh.public_key() != public_key || fresh.chain_code() != chain_code {
        return Err(RunFail::Local(
            "the new share is of another key or chain code".into(),
        ));
    }
    fresh
        .schnorr_share()
        .map_err(|e| RunFail::Local(e.to_string()))?;
    Ok(fresh)
}
