//! Test harness: the coordinator's router driven in-process with real BIZ-API signatures, and
//! scripted fake nodes on the InProcessBus. The fake nodes are a test double of the node side:
//! they hold the plain root secrets (one secp256k1, one ed25519, shared as a DKG would make
//! them look from outside), derive child secrets with `hd_wallet` and sign what they compute
//! from the task's payload themselves (the digest of `sign_message` via mpc-chains).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use generic_ec::curves::{Ed25519, Secp256k1};
use generic_ec::{Point, Scalar, SecretScalar};
use hd_wallet::{ExtendedKeyPair, ExtendedSecretKey, HdWallet};
use http_body_util::BodyExt;
use mpc_api::auth;
use mpc_api::envelope::Envelope;
use mpc_api::types::admin;
use mpc_bus::{Bus, InProcessBus, ProxyEvent};
use mpc_coordinator::{Coordinator, CoordinatorConfig};
use mpc_transport::frame::Frame;
use mpc_transport::keys::{TransportCert, TransportSecret};
use mpc_transport::signed::{SignedTask, TaskSigningKey, sign_result};
use mpc_transport::task::{Algorithm, Outcome, Payload, TASK_VERSION, Task, TaskBody, TaskResult};
use p256::ecdsa::SigningKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha512};
use tower::ServiceExt;

pub mod real;

pub const WAIT: Duration = Duration::from_secs(120);

/// What a fake node does with a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    Reject(String),
    Silent,
    /// Keygen: report another public key.
    WrongKey,
    /// Sign: return garbage.
    BadSignature,
    /// Sign: return only a ciphertext (`[encrypt-signature]` on).
    Encrypt(String),
    /// The node answers honestly, but the relay (proxy or bus) stands in for it: the node's
    /// signed result never arrives; instead the relay publishes it with the outcome altered
    /// (keygen: another public key; sign: a rejection) and a copy it signed with its own key.
    AlteredInTransit,
}

pub struct FakeNode {
    pub party: String,
    pub node_id: String,
    /// Signs the node's results.
    pub identity: SigningKey,
    pub cert: TransportCert,
    pub behaviour: Behaviour,
}

#[derive(Default)]
pub struct Log {
    pub tasks: Vec<(String, Task)>,
    pub aborts: Vec<(String, String)>,
}

pub struct Secrets {
    pub secp_root: [u8; 32],
    pub secp_cc: [u8; 32],
    pub ed_root: [u8; 32],
    pub ed_cc: [u8; 32],
}

pub fn secrets() -> Secrets {
    Secrets {
        secp_root: [0x11; 32],
        secp_cc: [0x22; 32],
        ed_root: {
            let mut b = [0x33; 32];
            b[0] = 0x03; // below the ed25519 group order
            b
        },
        ed_cc: [0x44; 32],
    }
}

pub fn secp_pair() -> ExtendedKeyPair<Secp256k1> {
    let s = secrets();
    let mut sc = Scalar::<Secp256k1>::from_be_bytes(s.secp_root).unwrap();
    ExtendedKeyPair::from(ExtendedSecretKey {
        secret_key: SecretScalar::new(&mut sc),
        chain_code: s.secp_cc,
    })
}

pub fn ed_pair() -> ExtendedKeyPair<Ed25519> {
    let s = secrets();
    let mut sc = Scalar::<Ed25519>::from_be_bytes(s.ed_root).unwrap();
    ExtendedKeyPair::from(ExtendedSecretKey {
        secret_key: SecretScalar::new(&mut sc),
        chain_code: s.ed_cc,
    })
}

pub fn secp_root_public() -> [u8; 33] {
    secp_pair()
        .public_key()
        .public_key
        .to_bytes(true)
        .as_ref()
        .try_into()
        .unwrap()
}

pub fn ed_root_public() -> [u8; 32] {
    ed_pair()
        .public_key()
        .public_key
        .to_bytes(true)
        .as_ref()
        .try_into()
        .unwrap()
}

fn indices(path: &str) -> Vec<u32> {
    let p: mpc_tss::DerivationPath = path.parse().unwrap();
    p.indices().to_vec()
}

pub fn secp_child_secret(path: &str) -> [u8; 32] {
    let child = hd_wallet::Slip10::derive_child_key_pair_with_path(&secp_pair(), indices(path));
    child
        .secret_key()
        .secret_key
        .as_ref()
        .to_be_bytes()
        .as_ref()
        .try_into()
        .unwrap()
}

pub fn ed_sign(path: &str, message: &[u8]) -> Vec<u8> {
    let child = hd_wallet::Edwards::derive_child_key_pair_with_path(&ed_pair(), indices(path));
    let a = *child.secret_key().secret_key.as_ref();
    let pk = child
        .public_key()
        .public_key
        .to_bytes(true)
        .as_ref()
        .to_vec();
    let r = Scalar::<Ed25519>::from_le_bytes_mod_order(
        Sha512::new()
            .chain_update(a.to_le_bytes())
            .chain_update(message)
            .finalize(),
    );
    let big_r = (Point::<Ed25519>::generator() * r)
        .to_bytes(true)
        .as_ref()
        .to_vec();
    let k = Scalar::<Ed25519>::from_le_bytes_mod_order(
        Sha512::new()
            .chain_update(&big_r)
            .chain_update(&pk)
            .chain_update(message)
            .finalize(),
    );
    let s = r + k * a;
    let mut out = big_r;
    out.extend_from_slice(s.to_le_bytes().as_ref());
    out
}

fn sign(task_sign: &mpc_transport::task::SignTask) -> Vec<u8> {
    let path = task_sign.path.as_str();
    match task_sign.algorithm {
        Algorithm::Eddsa => {
            let Payload::Message { message } = &task_sign.payload else {
                panic!("eddsa payload")
            };
            ed_sign(path, message)
        }
        alg => {
            let digest: [u8; 32] = match &task_sign.payload {
                Payload::SignMessage { kind, message } => {
                    mpc_chains::message::sign_message_payload(kind.parse().unwrap(), message)
                        .unwrap()
                        .digest()
                }
                Payload::Digest { digest } => *digest,
                Payload::Message { .. } => panic!("message payload for {alg:?}"),
            };
            let secret = secp_child_secret(path);
            match alg {
                Algorithm::Ecdsa => {
                    let sk = k256::ecdsa::SigningKey::from_bytes(&secret.into()).unwrap();
                    let (sig, recid) = sk.sign_prehash_recoverable(&digest).unwrap();
                    let mut out = sig.to_bytes().to_vec();
                    out.push(recid.to_byte() + if task_sign.sign_type == 2 { 27 } else { 0 });
                    out
                }
                Algorithm::Bip340 => {
                    let sk = k256::schnorr::SigningKey::from_bytes(&secret).unwrap();
                    sk.sign_raw(&digest, &[7; 32]).unwrap().to_bytes().to_vec()
                }
                Algorithm::Taproot => {
                    use k256::elliptic_curve::PrimeField;
                    use k256::elliptic_curve::sec1::ToEncodedPoint;
                    let sk = k256::schnorr::SigningKey::from_bytes(&secret).unwrap();
                    // from_bytes normalizes to even y; its secret is d or -d.
                    let d: k256::Scalar = *sk.as_nonzero_scalar().as_ref();
                    let pk = (k256::ProjectivePoint::GENERATOR * d).to_affine();
                    let x: [u8; 32] = pk.to_encoded_point(true).as_bytes()[1..]
                        .try_into()
                        .unwrap();
                    let tweak = match &task_sign.tap_script_root {
                        Some(root) => mpc_chains::hash::tagged_hash("TapTweak", &[&x, root]),
                        None => mpc_chains::hash::tagged_hash("TapTweak", &[&x]),
                    };
                    let t = k256::Scalar::from_repr(tweak.into()).unwrap();
                    let tweaked: [u8; 32] = (d + t).to_bytes().into();
                    let sk2 = k256::schnorr::SigningKey::from_bytes(&tweaked).unwrap();
                    sk2.sign_raw(&digest, &[9; 32]).unwrap().to_bytes().to_vec()
                }
                Algorithm::Eddsa => unreachable!(),
            }
        }
    }
}

pub struct Harness {
    pub coord: Arc<Coordinator>,
    pub bus: Arc<InProcessBus>,
    pub app: Router,
    pub admin: SigningKey,
    pub user: Mutex<Option<SigningKey>>,
    pub clock: AtomicU64,
    pub nodes: Arc<Mutex<BTreeMap<String, FakeNode>>>,
    pub log: Arc<Mutex<Log>>,
    pub org: Mutex<Option<(String, String)>>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    /// The private PostgreSQL of this harness (`coordinator_postgres` suite); dropped last.
    _postgres: Option<mpc_services::Postgres>,
}

/// Whether this test binary is the suite's PostgreSQL run (`tests/coordinator_postgres.rs`
/// includes `tests/coordinator.rs`; each test binary is a crate of its own name).
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME") == "coordinator_postgres"
}

/// In the PostgreSQL run, a harness asked for `":memory:"` gets a fresh database on a private
/// PostgreSQL server instead (started from Debian's `postgresql` package, on loopback).
fn backend(mut config: CoordinatorConfig) -> (CoordinatorConfig, Option<mpc_services::Postgres>) {
    if !on_postgres() || config.database != ":memory:" {
        return (config, None);
    }
    let pg = mpc_services::Postgres::start().expect("a private PostgreSQL for the suite");
    config.database = pg.create_database("coordinator").unwrap();
    (config, Some(pg))
}

pub fn test_config(database: &str) -> CoordinatorConfig {
    CoordinatorConfig {
        database: database.into(),
        database_options: Default::default(),
        sign_timeout: Duration::from_secs(2),
        keygen_timeout: Duration::from_secs(5),
        default_threshold: 3,
        // The simulated nodes (`real.rs`) run CGGMP24 for secp256k1.
        default_ecdsa_protocol: mpc_transport::task::EcdsaProtocol::Cggmp24,
        admin_public_keys: vec![mpc_wire::keys::api_key_hex(admin_key().verifying_key())],
        task_signing_key: task_key(),
        node_announce_timeout: None,
        audit_log: None,
    }
}

/// The coordinator's task-signing key in these tests.
pub fn task_key() -> TaskSigningKey {
    TaskSigningKey::new(SigningKey::from_slice(&[0x7a; 32]).unwrap())
}

/// What an honest node does with a task frame: verify it under the pinned platform key.
pub fn open_task(bytes: &[u8], platform: &p256::ecdsa::VerifyingKey) -> Task {
    SignedTask::decode(bytes)
        .unwrap()
        .verify(platform)
        .unwrap()
        .into_task()
}

pub fn admin_key() -> SigningKey {
    SigningKey::from_slice(&[0x5a; 32]).unwrap()
}

impl Harness {
    pub async fn new(config: CoordinatorConfig) -> Harness {
        Self::build(config, false).await
    }

    /// Nodes that run the real protocols (`mpc_tss::sim`) once every member has its task.
    pub async fn new_real(config: CoordinatorConfig) -> Harness {
        Self::build(config, true).await
    }

    async fn build(config: CoordinatorConfig, real_nodes: bool) -> Harness {
        let bus = Arc::new(InProcessBus::new());
        let platform = *config.task_signing_key.verifying_key();
        let (coord, postgres) = {
            let bus = bus.clone();
            // Opening a store blocks (PostgreSQL connects and migrates).
            tokio::task::spawn_blocking(move || {
                let (config, postgres) = backend(config);
                let mut registry = prometheus_client::registry::Registry::default();
                (
                    Coordinator::open(config, bus, &mut registry).unwrap(),
                    postgres,
                )
            })
            .await
            .unwrap()
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(coord.clone().run(async move {
            let _ = rx.await;
        }));
        let nodes: Arc<Mutex<BTreeMap<String, FakeNode>>> = Arc::default();
        let log: Arc<Mutex<Log>> = Arc::default();
        let mut deliveries = bus.subscribe_deliveries().await.unwrap();
        let (n2, l2, b2) = (nodes.clone(), log.clone(), bus.clone());
        if real_nodes {
            tokio::spawn(real::serve(deliveries, n2, l2, b2, platform));
        } else {
            tokio::spawn(async move {
                while let Some(d) = deliveries.recv().await {
                    match Frame::decode(&d.frame).unwrap() {
                        Frame::Task(bytes) => {
                            let task = open_task(&bytes, &platform);
                            l2.lock()
                                .unwrap()
                                .tasks
                                .push((d.node_id.clone(), task.clone()));
                            let answer = {
                                let nodes = n2.lock().unwrap();
                                let node = nodes.values().find(|n| n.node_id == d.node_id).unwrap();
                                answer(node, &task)
                                    .map(|o| (node.party.clone(), node.identity.clone(), o))
                            };
                            if let Some((party, identity, outcome)) = answer {
                                let result = TaskResult {
                                    version: TASK_VERSION,
                                    task_id: task.task_id.clone(),
                                    party: party.clone(),
                                    outcome,
                                };
                                let altered = n2.lock().unwrap()[&party].behaviour
                                    == Behaviour::AlteredInTransit;
                                let frames = if altered {
                                    altered_in_transit(&identity, &result)
                                } else {
                                    vec![
                                        sign_result(
                                            &mpc_wire::signature::EcdsaSigner::new(&identity),
                                            &result,
                                        )
                                        .unwrap(),
                                    ]
                                };
                                for bytes in frames {
                                    b2.publish(ProxyEvent::TaskResult {
                                        node_id: d.node_id.clone(),
                                        party: party.clone(),
                                        result: bytes,
                                    })
                                    .await
                                    .unwrap();
                                }
                            }
                        }
                        Frame::Abort(a) => l2
                            .lock()
                            .unwrap()
                            .aborts
                            .push((d.node_id.clone(), a.reason)),
                        other => panic!("unexpected frame {other:?}"),
                    }
                }
            });
        }
        let app = coord.router();
        Harness {
            coord,
            bus,
            app,
            admin: admin_key(),
            user: Mutex::new(None),
            clock: AtomicU64::new(0),
            nodes,
            log,
            org: Mutex::new(None),
            _shutdown: tx,
            _postgres: postgres,
        }
    }

    pub fn now(&self) -> u64 {
        let base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        // Distinct nonces per request: a strictly increasing clock.
        let prev = self.clock.fetch_add(1, Ordering::SeqCst);
        let v = base.max(prev + 1);
        self.clock.fetch_max(v, Ordering::SeqCst);
        v
    }

    /// POSTs `body` to `path` signed by `key`; the envelope as JSON.
    pub async fn post_raw(&self, key: &SigningKey, path: &str, body: Vec<u8>) -> (u16, Value) {
        let headers = auth::sign_request(
            &mpc_wire::signature::EcdsaSigner::new(key),
            path,
            &body,
            self.now(),
        );
        self.post_with(path, body, &headers).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &auth::Headers,
    ) -> (u16, Value) {
        let mut req = Request::post(path).header("content-type", "application/json");
        for (k, v) in headers.pairs() {
            req = req.header(k, v);
        }
        let res = self
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    pub async fn admin_call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, (u16, String)> {
        let key = self.admin.clone();
        self.call(&key, path, body).await
    }

    pub async fn user_call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, (u16, String)> {
        let key = self.user.lock().unwrap().clone().unwrap();
        self.call(&key, path, body).await
    }

    pub async fn call<T: DeserializeOwned>(
        &self,
        key: &SigningKey,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, (u16, String)> {
        let (_, v) = self
            .post_raw(key, path, serde_json::to_vec(body).unwrap())
            .await;
        let env: Envelope<T> = serde_json::from_value(v).unwrap();
        env.into_result().map_err(|(c, m)| (c.as_u16(), m))
    }

    /// Creates an organization, an API user and three bound fake nodes (offline).
    pub async fn setup_org(&self) -> (String, String) {
        let org: admin::Organization = self
            .admin_call(
                admin::PATH_CREATE_ORGANIZATION,
                &admin::CreateOrganizationRequest {
                    name: "acme".into(),
                    ecdsa_protocol: None,
                },
            )
            .await
            .unwrap();
        let user = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let _: admin::ApiUserInfo = self
            .admin_call(
                admin::PATH_CREATE_API_USER,
                &admin::CreateApiUserRequest {
                    organization_id: org.organization_id.clone(),
                    name: "ops".into(),
                    api_key: mpc_wire::keys::api_key_hex(user.verifying_key()),
                },
            )
            .await
            .unwrap();
        *self.user.lock().unwrap() = Some(user);
        for (i, party) in ["a", "b", "c"].into_iter().enumerate() {
            let identity = SigningKey::from_slice(&[0x60 + i as u8; 32]).unwrap();
            let node_id = mpc_wire::keys::node_id(identity.verifying_key());
            let cert = TransportSecret::generate(&mut rand_core::OsRng)
                .certify(&mpc_wire::signature::EcdsaSigner::new(&identity));
            let _: admin::NodeInfo = self
                .admin_call(
                    admin::PATH_BIND_NODE,
                    &admin::BindNodeRequest {
                        organization_id: org.organization_id.clone(),
                        party_id: party.into(),
                        node_id: node_id.clone(),
                    },
                )
                .await
                .unwrap();
            self.nodes.lock().unwrap().insert(
                party.into(),
                FakeNode {
                    party: party.into(),
                    node_id,
                    identity,
                    cert,
                    behaviour: Behaviour::Honest,
                },
            );
        }
        *self.org.lock().unwrap() = Some((org.organization_id.clone(), org.vault_id.clone()));
        (org.organization_id, org.vault_id)
    }

    pub fn node_id(&self, party: &str) -> String {
        self.nodes.lock().unwrap()[party].node_id.clone()
    }

    /// Replaces `party`'s node with a new one (identity from `seed`) through `node/replace`;
    /// from then on the harness answers as the new node for the party.
    pub async fn replace_node(
        &self,
        party: &str,
        seed: u8,
    ) -> Result<admin::NodeInfo, (u16, String)> {
        let identity = SigningKey::from_slice(&[seed; 32]).unwrap();
        let node_id = mpc_wire::keys::node_id(identity.verifying_key());
        let org = self.org.lock().unwrap().clone().unwrap().0;
        let info: admin::NodeInfo = self
            .admin_call(
                admin::PATH_REPLACE_NODE,
                &admin::ReplaceNodeRequest {
                    organization_id: org,
                    party_id: party.into(),
                    node_id: node_id.clone(),
                },
            )
            .await?;
        let cert = TransportSecret::generate(&mut rand_core::OsRng)
            .certify(&mpc_wire::signature::EcdsaSigner::new(&identity));
        self.nodes.lock().unwrap().insert(
            party.into(),
            FakeNode {
                party: party.into(),
                node_id,
                identity,
                cert,
                behaviour: Behaviour::Honest,
            },
        );
        Ok(info)
    }

    pub fn set_behaviour(&self, party: &str, b: Behaviour) {
        self.nodes.lock().unwrap().get_mut(party).unwrap().behaviour = b;
    }

    pub async fn online(&self, party: &str) {
        self.online_via(party, "proxy-1/1").await
    }

    /// `party`'s node comes online (or is announced again) on proxy connection `connection`.
    pub async fn online_via(&self, party: &str, connection: &str) {
        let (node_id, cert) = {
            let n = self.nodes.lock().unwrap();
            (n[party].node_id.clone(), n[party].cert.clone())
        };
        let org = self.org.lock().unwrap().clone().unwrap().0;
        self.bus
            .publish(ProxyEvent::NodeOnline {
                node_id,
                organization_id: org,
                party: party.into(),
                transport_cert: cert,
                connection: connection.into(),
            })
            .await
            .unwrap();
    }

    pub async fn offline(&self, party: &str) {
        self.offline_via(party, "proxy-1/1").await
    }

    /// `party`'s connection `connection` ended.
    pub async fn offline_via(&self, party: &str, connection: &str) {
        let node_id = self.node_id(party);
        self.bus
            .publish(ProxyEvent::NodeOffline {
                node_id,
                connection: connection.into(),
            })
            .await
            .unwrap();
    }

    pub async fn keys(&self) -> Vec<admin::KeyInfo> {
        let org = self.org.lock().unwrap().clone().unwrap().0;
        self.admin_call(
            admin::PATH_LIST_KEYS,
            &admin::ListKeysRequest {
                organization_id: org,
            },
        )
        .await
        .unwrap()
    }

    /// Waits until `f` holds (bounded).
    pub async fn until<F: FnMut(&Self) -> bool>(&self, what: &str, mut f: F) {
        let end = tokio::time::Instant::now() + WAIT;
        while !f(self) {
            assert!(
                tokio::time::Instant::now() < end,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until both keys are generated (bounded).
    pub async fn until_keys_generated(&self) -> Vec<admin::KeyInfo> {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let keys = self.keys().await;
            if keys.len() == 2 && keys.iter().all(|k| k.status == admin::KeyStatus::Generated) {
                return keys;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "keys not generated: {keys:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// An organization with both keys generated and all nodes online.
    pub async fn ready_org() -> (Harness, String, String) {
        let h = Harness::new(test_config(":memory:")).await;
        let (org, vault) = h.setup_org().await;
        for p in ["a", "b", "c"] {
            h.online(p).await;
        }
        h.until_keys_generated().await;
        (h, org, vault)
    }

    /// Polls sign_result until the state is not pending (bounded).
    pub async fn sign_result(&self, request_id: &str) -> mpc_api::types::SignResultResponse {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let r: mpc_api::types::SignResultResponse = self
                .user_call(
                    mpc_api::types::PATH_SIGN_RESULT,
                    &mpc_api::types::SignResultRequest {
                        request_id: Some(request_id.into()),
                        sino_id: None,
                        wait_ms: None,
                    },
                )
                .await
                .unwrap();
            if r.state != mpc_api::types::SignState::Pending {
                return r;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "sign request {request_id} still pending"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn sign_tasks(&self) -> Vec<(String, Task)> {
        self.log
            .lock()
            .unwrap()
            .tasks
            .iter()
            .filter(|(_, t)| matches!(t.body, TaskBody::Sign(_)))
            .cloned()
            .collect()
    }
}

/// What a hostile relay makes of a node's honest `result`: the node's signed bytes with one
/// byte of the outcome changed (another public key, another signature) under the node's
/// signature, and a rejection in the node's name signed with the relay's own key.
fn altered_in_transit(identity: &SigningKey, result: &TaskResult) -> Vec<Vec<u8>> {
    let honest = sign_result(&mpc_wire::signature::EcdsaSigner::new(identity), result).unwrap();
    let value: &[u8] = match &result.outcome {
        Outcome::KeygenDone { public_key, .. } => public_key,
        Outcome::Signed {
            signature: Some(s), ..
        } => s,
        other => panic!("nothing to alter in {other:?}"),
    };
    let at = honest
        .windows(value.len())
        .position(|w| w == value)
        .unwrap();
    let mut altered = honest.clone();
    altered[at + 5] ^= 1;
    let mut forged = result.clone();
    forged.outcome = Outcome::Rejected {
        reason: "forged by the relay".into(),
    };
    let relay = SigningKey::from_slice(&[0x99; 32]).unwrap();
    vec![
        altered,
        sign_result(&mpc_wire::signature::EcdsaSigner::new(&relay), &forged).unwrap(),
    ]
}

fn answer(node: &FakeNode, task: &Task) -> Option<Outcome> {
    match &node.behaviour {
        Behaviour::Silent => return None,
        Behaviour::Reject(reason) => {
            return Some(Outcome::Rejected {
                reason: reason.clone(),
            });
        }
        _ => {}
    }
    Some(match &task.body {
        TaskBody::Keygen(k) => {
            let (mut public_key, chain_code) = match k.curve {
                mpc_transport::task::Curve::Secp256k1 => {
                    (secp_root_public().to_vec(), secrets().secp_cc)
                }
                mpc_transport::task::Curve::Ed25519 => (ed_root_public().to_vec(), secrets().ed_cc),
            };
            if node.behaviour == Behaviour::WrongKey {
                public_key[5] ^= 1;
            }
            Outcome::KeygenDone {
                public_key,
                chain_code,
            }
        }
        TaskBody::Sign(s) => {
            let mut sig = sign(s);
            if node.behaviour == Behaviour::BadSignature {
                sig[10] ^= 1;
            }
            if let Behaviour::Encrypt(c) = &node.behaviour {
                return Some(Outcome::Signed {
                    signature: None,
                    encrypted: Some(c.clone()),
                });
            }
            Outcome::Signed {
                signature: Some(sig),
                encrypted: None,
            }
        }
        // Every honest node of one refresh answers the same generation (from the run's
        // unique bytes); `WrongKey` reports another key.
        TaskBody::Refresh(mpc_transport::task::RefreshTask {
            root_public_key, ..
        })
        | TaskBody::Repair(mpc_transport::task::RepairTask {
            root_public_key, ..
        }) => {
            let mut public_key = root_public_key.clone();
            if node.behaviour == Behaviour::WrongKey {
                public_key[5] ^= 1;
            }
            Outcome::Refreshed {
                public_key,
                generation: hex::encode(&task.execution_unique[..8]),
            }
        }
    })
}
