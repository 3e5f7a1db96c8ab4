//! Key generation: the callback is asked about exactly this keygen (curve, t, n, the members'
//! node ids in `party_ids`, the request ids) and its approval checked (`authorizes_keygen`), then the protocol runs
//! (secp256k1: the task's protocol, DKLs23 keygen, or CGGMP keygen then aux info with primes
//! from the pool; ed25519: FROST) and the
//! share is stored once, under a key id this node does not have yet, together with the node id
//! of every party (the committee later tasks for the key must name, `intake`).

use std::sync::{Arc, mpsc as std_mpsc};

use mpc_callback::{Cryptography, KeygenParams, KeygenRequest, Request};
use mpc_keystore::tables;
use mpc_transport::task::{Curve, KeygenTask, Outcome, Task};
use mpc_tss::EcdsaProtocol;
use mpc_tss::dkls::{self, DklsKeyShare};
use mpc_tss::ecdsa::{self, EcdsaAuxInfo, EcdsaCoreShare, EcdsaKeyShare};
use mpc_tss::frost::{self, EddsaKeyShare};
use mpc_tss::primes::SecretPrimes;

use super::Runtime;
use super::admission::Plan;
use super::fail::RunFail;
use super::registry::{Control, RunMsg};
use crate::store::{Committee as PinnedCommittee, StoredKey, StoredShare};

impl Runtime {
    pub(super) async fn keygen(
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
        // The guide's `party_ids`: the node ids of the members, in party order.
        let party_ids = plan.node_ids()?;
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
        let (stored, public_key, chain_code) = match (k.curve, k.ecdsa_protocol) {
            (Curve::Secp256k1, EcdsaProtocol::Dkls23) => {
                self.on_thread(plan, control, rx, move |w| {
                    let s = dkls::keygen(eids[0], me, &committee, t)
                        .map_err(|e| RunFail::BadTask(e.to_string()))?;
                    let share: DklsKeyShare = w.drive(s)?;
                    // The Schnorr form must exist before the share is kept: BIP340 and Taproot
                    // sign with it.
                    share
                        .schnorr_share()
                        .map_err(|e| RunFail::Local(e.to_string()))?;
                    let public_key = share.public_key().to_vec();
                    let chain_code = share.chain_code();
                    Ok((
                        StoredShare::Dkls23 {
                            share: share.to_stored_bytes(),
                        },
                        public_key,
                        chain_code,
                    ))
                })
                .await?
            }
            (Curve::Secp256k1, EcdsaProtocol::Cggmp24) => {
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
            (Curve::Ed25519, _) => {
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
        // The committee is stored with the share: every later task for this key must name
        // exactly these nodes under these parties.
        let stored = StoredKey {
            committee: PinnedCommittee::Pinned(
                plan.peers
                    .iter()
                    .map(|(party, peer)| (party.clone(), peer.key.node_id().to_owned()))
                    .collect(),
            ),
            share: stored,
            generation: None,
        };
        let id = key_id.clone();
        self.blocking(move |inner| inner.put_new_key(&id, &stored))
            .await?;
        tracing::info!(key_id = %key_id, public_key = %hex::encode(&public_key), "key share stored");
        Ok(Outcome::KeygenDone {
            public_key,
            chain_code,
        })
    }
}
