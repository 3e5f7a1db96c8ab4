//! Nodes that run the real threshold protocols in-process (`mpc_tss::sim`): once every member
//! of a task has received it, the whole run is simulated on a blocking thread and each member's
//! outcome is published as its `TaskResult`. FROST ed25519 and CGGMP secp256k1 key generation
//! (plus CGGMP aux info from the published test primes of mpc-tss, never for real keys), ECDSA,
//! EdDSA, BIP340 and Taproot signing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use mpc_bus::{Bus, Delivery, InProcessBus, ProxyEvent, Subscription};
use mpc_transport::frame::Frame;
use mpc_transport::task::{
    Algorithm, Curve, Outcome, Payload, TASK_VERSION, Task, TaskBody, TaskResult,
};
use mpc_tss::ecdsa::{self, EcdsaAuxInfo, EcdsaCoreShare, EcdsaKeyShare, SignInput};
use mpc_tss::frost::{self, EddsaKeyShare};
use mpc_tss::primes::SecretPrimes;
use mpc_tss::{Committee, DerivationPath, ExecutionId, PartyId, ProtocolKind, sim};

use super::{FakeNode, Log};

#[derive(Default)]
struct Shares {
    ed: HashMap<String, BTreeMap<PartyId, EddsaKeyShare>>,
    secp: HashMap<String, BTreeMap<PartyId, EcdsaCoreShare>>,
    aux: Option<BTreeMap<PartyId, EcdsaAuxInfo>>,
}

/// Aux info for the committee a, b, c from the checked-in test primes (slow: a few seconds).
fn aux_info(parties: &[PartyId]) -> BTreeMap<PartyId, EcdsaAuxInfo> {
    let primes: Vec<SecretPrimes> =
        serde_json::from_str(include_str!("../../../tss/tests/fixtures/test-primes.json")).unwrap();
    let committee = Committee::new(parties.to_vec()).unwrap();
    let e = ExecutionId::derive(ProtocolKind::EcdsaAuxInfo, b"coordinator-test", parties);
    let sessions = parties
        .iter()
        .zip(primes)
        .map(|(p, pr)| ecdsa::aux_info(e, *p, &committee, pr).unwrap())
        .collect();
    sim::run(sessions).unwrap().outputs
}

fn pid(s: &str) -> PartyId {
    PartyId::new(s).unwrap()
}

fn run(task: &Task, shares: &Mutex<Shares>) -> Vec<(String, Outcome)> {
    let parties: Vec<PartyId> = task.members.iter().map(|m| pid(&m.party)).collect();
    match &task.body {
        TaskBody::Keygen(k) => {
            let committee = Committee::new(parties.clone()).unwrap();
            match k.curve {
                Curve::Ed25519 => {
                    let e = ExecutionId::derive(
                        ProtocolKind::EddsaKeygen,
                        &task.execution_unique,
                        &parties,
                    );
                    let sessions = parties
                        .iter()
                        .map(|p| frost::eddsa_keygen(e, *p, &committee, k.threshold).unwrap())
                        .collect();
                    let out = sim::run(sessions).unwrap().outputs;
                    let r = out
                        .iter()
                        .map(|(p, s)| {
                            (
                                p.to_string(),
                                Outcome::KeygenDone {
                                    public_key: s.public_key().to_vec(),
                                    chain_code: s.chain_code().unwrap(),
                                },
                            )
                        })
                        .collect();
                    shares.lock().unwrap().ed.insert(k.key_id.clone(), out);
                    r
                }
                Curve::Secp256k1 => {
                    let e = ExecutionId::derive(
                        ProtocolKind::EcdsaKeygen,
                        &task.execution_unique,
                        &parties,
                    );
                    let sessions = parties
                        .iter()
                        .map(|p| ecdsa::keygen(e, *p, &committee, k.threshold).unwrap())
                        .collect();
                    let out = sim::run(sessions).unwrap().outputs;
                    let r = out
                        .iter()
                        .map(|(p, s)| {
                            (
                                p.to_string(),
                                Outcome::KeygenDone {
                                    public_key: s.public_key().to_vec(),
                                    chain_code: s.chain_code().unwrap(),
                                },
                            )
                        })
                        .collect();
                    shares.lock().unwrap().secp.insert(k.key_id.clone(), out);
                    r
                }
            }
        }
        TaskBody::Sign(s) => {
            let path: DerivationPath = s.path.parse().unwrap();
            let message: Vec<u8> = match &s.payload {
                Payload::Digest { digest } => digest.to_vec(),
                Payload::Message { message } => message.clone(),
                Payload::SignMessage { kind, message } => {
                    mpc_chains::message::sign_message_payload(kind.parse().unwrap(), message)
                        .unwrap()
                        .digest()
                        .to_vec()
                }
            };
            if s.algorithm == Algorithm::Ecdsa {
                let mut sh = shares.lock().unwrap();
                if sh.aux.is_none() {
                    sh.aux = Some(aux_info(&[pid("a"), pid("b"), pid("c")]));
                }
                let aux = sh.aux.clone().unwrap();
                let keys: BTreeMap<PartyId, EcdsaKeyShare> = sh.secp[&s.key_id]
                    .iter()
                    .map(|(p, c)| (*p, EcdsaKeyShare::new(c.clone(), aux[p].clone()).unwrap()))
                    .collect();
                drop(sh);
                let digest: [u8; 32] = message.as_slice().try_into().unwrap();
                let e =
                    ExecutionId::derive(ProtocolKind::EcdsaSign, &task.execution_unique, &parties);
                let sessions = parties
                    .iter()
                    .map(|p| {
                        ecdsa::sign(e, &keys[p], &parties, &path, SignInput::Digest(digest))
                            .unwrap()
                    })
                    .collect();
                let v = if s.sign_type == 2 { 27 } else { 0 };
                return sim::run(sessions)
                    .unwrap()
                    .outputs
                    .iter()
                    .map(|(p, sig)| {
                        (
                            p.to_string(),
                            Outcome::Signed {
                                signature: Some(sig.to_rsv(v).to_vec()),
                                encrypted: None,
                            },
                        )
                    })
                    .collect();
            }
            let sh = shares.lock().unwrap();
            let out = match s.algorithm {
                Algorithm::Eddsa => {
                    let keys = &sh.ed[&s.key_id];
                    let e = ExecutionId::derive(
                        ProtocolKind::EddsaSign,
                        &task.execution_unique,
                        &parties,
                    );
                    let sessions = parties
                        .iter()
                        .map(|p| frost::eddsa_sign(e, &keys[p], &parties, &path, &message).unwrap())
                        .collect();
                    sim::run(sessions).unwrap().outputs
                }
                Algorithm::Bip340 => {
                    let keys = &sh.secp[&s.key_id];
                    let e = ExecutionId::derive(
                        ProtocolKind::Bip340Sign,
                        &task.execution_unique,
                        &parties,
                    );
                    let sessions = parties
                        .iter()
                        .map(|p| {
                            frost::bip340_sign(e, &keys[p], &parties, &path, &message).unwrap()
                        })
                        .collect();
                    sim::run(sessions).unwrap().outputs
                }
                Algorithm::Taproot => {
                    let keys = &sh.secp[&s.key_id];
                    let root = s
                        .tap_script_root
                        .as_ref()
                        .map(|r| <[u8; 32]>::try_from(r.as_slice()).unwrap());
                    let e = ExecutionId::derive(
                        ProtocolKind::TaprootSign,
                        &task.execution_unique,
                        &parties,
                    );
                    let sessions = parties
                        .iter()
                        .map(|p| {
                            frost::taproot_sign(e, &keys[p], &parties, &path, &message, root)
                                .unwrap()
                        })
                        .collect();
                    sim::run(sessions).unwrap().outputs
                }
                Algorithm::Ecdsa => unreachable!(),
            };
            out.iter()
                .map(|(p, sig)| {
                    (
                        p.to_string(),
                        Outcome::Signed {
                            signature: Some(sig.0.to_vec()),
                            encrypted: None,
                        },
                    )
                })
                .collect()
        }
        // The simulated nodes hold CGGMP24 shares, which have no refresh or repair.
        TaskBody::Refresh(_) | TaskBody::Repair(_) => task
            .members
            .iter()
            .map(|m| {
                (
                    m.party.clone(),
                    Outcome::Failed {
                        fault: mpc_transport::task::Fault::BadTask,
                        detail: "not a DKLs23 key".into(),
                        culprits: vec![],
                    },
                )
            })
            .collect(),
    }
}

pub async fn serve(
    mut deliveries: Subscription<Delivery>,
    nodes: Arc<Mutex<BTreeMap<String, FakeNode>>>,
    log: Arc<Mutex<Log>>,
    bus: Arc<InProcessBus>,
    platform: p256::ecdsa::VerifyingKey,
) {
    let shares = Arc::new(Mutex::new(Shares::default()));
    let mut pending: HashMap<String, usize> = HashMap::new();
    while let Some(d) = deliveries.recv().await {
        match Frame::decode(&d.frame).unwrap() {
            Frame::Task(bytes) => {
                let task = super::open_task(&bytes, &platform);
                log.lock()
                    .unwrap()
                    .tasks
                    .push((d.node_id.clone(), task.clone()));
                let n = pending.entry(task.task_id.clone()).or_default();
                *n += 1;
                if *n < task.members.len() {
                    continue;
                }
                let sh = shares.clone();
                let t2 = task.clone();
                let results = tokio::task::spawn_blocking(move || run(&t2, &sh))
                    .await
                    .unwrap();
                for (party, outcome) in results {
                    let (node_id, identity) = {
                        let n = nodes.lock().unwrap();
                        (n[&party].node_id.clone(), n[&party].identity.clone())
                    };
                    let result = TaskResult {
                        version: TASK_VERSION,
                        task_id: task.task_id.clone(),
                        party: party.clone(),
                        outcome,
                    };
                    bus.publish(ProxyEvent::TaskResult {
                        node_id,
                        party,
                        result: mpc_transport::signed::sign_result(
                            &mpc_wire::signature::EcdsaSigner::new(&identity),
                            &result,
                        )
                        .unwrap(),
                    })
                    .await
                    .unwrap();
                }
            }
            Frame::Abort(a) => log
                .lock()
                .unwrap()
                .aborts
                .push((d.node_id.clone(), a.reason)),
            other => panic!("unexpected frame {other:?}"),
        }
    }
}
