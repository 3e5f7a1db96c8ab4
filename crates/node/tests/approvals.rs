//! Issue 10 §1, "the approval covers exactly what is signed": hostile tasks against one real
//! node runtime (`mpc_node::tasks::Runtime` over a real sealed store in a temporary directory)
//! and the real reference callback server (`mpc-callback-demo`, in this process on loopback,
//! with its real policy engine), or a recording stand-in that approves whatever it saw. The test
//! plays a coordinator (or a relay) that rewrites tasks: it hands the runtime task frames and
//! reads the `TaskResult`s it answers.
//!
//! The node holds no key share here, so a task the callback approves ends in "unknown key":
//! that is the positive control showing the refusals below come from the checks under test,
//! not from something earlier.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use mpc_callback::mpc_wire::callback::{Action, Check, ExtraInfo, RequestType, ResponseData};
use mpc_callback::mpc_wire::callback::{SignType, TX_INFO_TAP_SCRIPT_ROOT};
use mpc_callback::mpc_wire::signature::EcdsaSigner;
use mpc_callback::mpc_wire::{keys, signature};
use mpc_callback::{CallbackClient, CallbackConfig, EncryptConfig, ServerConfig};
use mpc_callback_demo::ServeConfig;
use mpc_callback_demo::policy::{Policy, Verdict};
use mpc_keystore::{Batch, Engine, KdfParams, KeyStore, Opened, StoreConfig};
use mpc_node::platform_key::PlatformPin;
use mpc_node::primes::PersistentPrimes;
use mpc_node::replay::SeenTasks;
use mpc_node::store::SecretStore;
use mpc_node::tasks::{Runtime, RuntimeParams};
use mpc_transport::frame::Frame;
use mpc_transport::keys::TransportSecret;
use mpc_transport::signed::{TaskSigningKey, verify_result};
use mpc_transport::task::{
    Algorithm, Curve, Fault, KeygenTask, Member, Outcome, Payload, SignTask, TASK_VERSION, Task,
    TaskBody, TaskResult,
};
use p256::ecdsa::{SigningKey, VerifyingKey};
use rand_core::{OsRng, RngCore};
use tokio::sync::{mpsc, oneshot};

/// An EIP-2612 `Permit` for USDC: lets the spender move the owner's tokens.
const PERMIT: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},"primaryType":"Permit","domain":{"name":"USD Coin","version":"2","chainId":1,"verifyingContract":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},"message":{"owner":"0x52908400098527886E0F7030069857D2E4169EE7","spender":"0x00000000000000000000000000000000deadbeef","value":"115792089237316195423570985008687907853269984665640564039457584007913129639935","nonce":0,"deadline":"1900000000"}}"#;

/// Messages approved, transfers only to one destination: the policy the issue describes.
const MESSAGES_OK_TRANSFERS_RESTRICTED: &str = r#"
[request_types]
allow = ["keygen", "sign", "bip340-schnorr-sign", "taproot-sign"]

[[keygen.allow]]
cryptography = ["eddsa-ed25519"]
t = 2
n = 3
party_ids = ["a", "b", "c"]

[sign]
sign_types = ["1", "2", "3"]
destinations = ["0xabcdef0000000000000000000000000000000001"]
without_amount = "approve"
unlisted_asset = "reject"
"#;

type Identity = (EcdsaSigner, TransportSecret);

fn identity() -> Identity {
    (
        EcdsaSigner::new(&SigningKey::random(&mut OsRng)),
        TransportSecret::generate(&mut OsRng),
    )
}

fn node_id(id: &Identity) -> String {
    keys::node_id(id.0.verifying_key())
}

fn member(party: &str, id: &Identity) -> Member {
    Member {
        party: party.into(),
        node_id: node_id(id),
        transport_cert: id.1.certify(&id.0),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Node `a` of a committee a, b, c: a real runtime over a fresh sealed store.
struct Node {
    rt: Runtime,
    /// The platform's task-signing key the node pins (tasks are signed with it).
    platform: TaskSigningKey,
    results: mpsc::UnboundedReceiver<Frame>,
    committee: Vec<Identity>,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(committee: Vec<Identity>, callback: (SocketAddr, VerifyingKey)) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig::new(Engine::Bolt, 1, 1)
            .unwrap()
            .kdf(KdfParams::insecure_for_tests());
        let Opened::Uninitialized(mut u) =
            KeyStore::open(dir.path().join("asset.db"), cfg).unwrap()
        else {
            panic!("fresh store")
        };
        let unsealed = u
            .init("Correct-Horse-9", &Batch::new())
            .unwrap()
            .done()
            .unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(unsealed);
        let (tx, results) = mpsc::unbounded_channel();
        let platform = TaskSigningKey::generate(&mut OsRng);
        let rt = Runtime::new(
            RuntimeParams {
                identity: Arc::new(committee[0].0.clone()),
                transport: TransportSecret::from_bytes(&committee[0].1.to_bytes()),
                party: "a".into(),
                store: store.clone(),
                callback: CallbackClient::new(CallbackConfig {
                    servers: vec![ServerConfig {
                        address: format!("http://{}", callback.0),
                        public_key: callback.1,
                    }],
                    retry_times: 0,
                    sleep: Duration::from_millis(50),
                    request_timeout: Duration::from_secs(5),
                    max_wait: Duration::from_secs(1),
                })
                .unwrap(),
                encrypt: EncryptConfig::default(),
                primes: PersistentPrimes::load(store.clone(), None, 0).unwrap(),
                platform: PlatformPin::new(Some(*platform.verifying_key())),
                seen: SeenTasks::load(store.as_ref(), 0).unwrap(),
                metrics: mpc_node::metrics::NodeMetrics::new(),
                audit: mpc_node::audit::NodeAudit::off(),
            },
            tx,
        );
        Node {
            rt,
            platform,
            results,
            committee,
            _dir: dir,
        }
    }

    fn members(&self) -> Vec<Member> {
        ["a", "b", "c"]
            .iter()
            .zip(&self.committee)
            .map(|(p, id)| member(p, id))
            .collect()
    }

    /// Hands the runtime `body` (committee a, b, c unless `members` is given) as the
    /// coordinator would, and waits for its answer.
    async fn run(
        &mut self,
        request_id: &str,
        members: Option<Vec<Member>>,
        body: TaskBody,
    ) -> Outcome {
        let mut unique = [0u8; 32];
        OsRng.fill_bytes(&mut unique);
        let task = Task {
            version: TASK_VERSION,
            task_id: format!("task-{request_id}"),
            sino_id: format!("sino-{request_id}"),
            request_id: request_id.into(),
            deadline_unix_ms: now_ms() + 4_000,
            execution_unique: unique,
            members: members.unwrap_or_else(|| self.members()),
            body,
        };
        self.rt
            .handle_frame(Frame::Task(self.platform.sign(&task).unwrap()));
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let frame = tokio::time::timeout_at(until, self.results.recv())
                .await
                .expect("no task result within 30 s")
                .expect("runtime channel open");
            if let Frame::TaskResult(bytes) = frame {
                let r: TaskResult = verify_result(&bytes, &node_id(&self.committee[0]))
                    .expect("results are signed by the node")
                    .into_result();
                if r.task_id == task.task_id {
                    return r.outcome;
                }
            }
        }
    }
}

fn sign(algorithm: Algorithm, sign_type: u8, payload: Payload) -> TaskBody {
    TaskBody::Sign(SignTask {
        ecdsa_protocol: mpc_transport::task::EcdsaProtocol::Cggmp24,
        key_id: "k-1".into(),
        algorithm,
        root_public_key: vec![2; 33],
        path: "m/1/1/60/0".into(),
        sign_type,
        payload,
        tap_script_root: None,
        tx_info: None,
        generation: None,
    })
}

#[track_caller]
fn assert_bad_task(o: &Outcome, needle: &str) {
    match o {
        Outcome::Failed {
            fault: Fault::BadTask,
            detail,
            ..
        } => assert!(
            detail.contains(needle),
            "{detail:?} does not name {needle:?}"
        ),
        other => panic!("expected a refused task naming {needle:?}, got {other:?}"),
    }
}

/// The positive control: approved, then stopped only because this node has no share.
#[track_caller]
fn assert_approved_then_no_key(o: &Outcome) {
    assert_bad_task(o, "unknown key k-1");
}

// ------------------------------------------------------------------ callback servers

struct Demo {
    addr: SocketAddr,
    public: VerifyingKey,
    dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl Demo {
    async fn start(policy: Policy, node: VerifyingKey) -> Demo {
        let key = SigningKey::random(&mut OsRng);
        let public = *key.verifying_key();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = ServeConfig {
            signing_key: key,
            node_keys: vec![node],
            decrypt_key: None,
            policy: Some(policy),
            data_dir: dir.path().to_owned(),
        };
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            mpc_callback_demo::run(listener, config, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Demo {
            addr,
            public,
            dir,
            _stop: tx,
        }
    }

    /// `(request_id, decision, reason)` of every audit line.
    fn audit(&self) -> Vec<(String, String, String)> {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                (s("request_id"), s("decision"), s("reason"))
            })
            .collect()
    }

    fn decision(&self, request_id: &str) -> Option<(String, String)> {
        self.audit()
            .into_iter()
            .find(|(r, _, _)| r == request_id)
            .map(|(_, d, reason)| (d, reason))
    }
}

/// Node `a` of a fresh committee, its callback the reference server with `policy` (its
/// `[[keygen.allow]]` party names pinned to the committee's node ids when `pin`, as
/// `serve --party a=NODE_ID` does).
async fn node_with_demo(policy: &str, pin: bool) -> (Node, Demo) {
    let committee: Vec<Identity> = (0..3).map(|_| identity()).collect();
    let mut policy = Policy::from_toml_str(policy).unwrap();
    if pin {
        let pins: BTreeMap<String, String> = ["a", "b", "c"]
            .iter()
            .zip(&committee)
            .map(|(p, id)| (p.to_string(), node_id(id)))
            .collect();
        policy.pin_parties(&pins).unwrap();
    }
    let demo = Demo::start(policy, *committee[0].0.verifying_key()).await;
    let node = Node::start(committee, (demo.addr, demo.public));
    (node, demo)
}

/// A callback stand-in that approves everything and keeps every `/check` it saw.
async fn recording_callback() -> (SocketAddr, VerifyingKey, Arc<Mutex<Vec<Check>>>) {
    type Seen = (Arc<EcdsaSigner>, Arc<Mutex<Vec<Check>>>);
    async fn check(State((key, seen)): State<Seen>, body: Bytes) -> Vec<u8> {
        let check = Check::from_json(&body).unwrap();
        let data = ResponseData::for_request(&check, Action::Approve);
        seen.lock().unwrap().push(check);
        signature::sign_response(data, "", &key).to_go_json()
    }
    let key = SigningKey::random(&mut OsRng);
    let public = *key.verifying_key();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/check", post(check))
        .with_state((Arc::new(EcdsaSigner::new(&key)), seen.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, public, seen)
}

// ------------------------------------------------------------------ the attacks

/// Bullet 1: a transaction sighash presented as a sign_type 2 "message". The policy approves
/// messages and restricts transfers, so the request the node used to send would have passed;
/// the node now refuses the pairing before asking anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_type_2_with_a_bare_sighash_is_refused() {
    let (mut node, demo) = node_with_demo(MESSAGES_OK_TRANSFERS_RESTRICTED, false).await;
    let sighash = [0x5a; 32];

    // The premise, with the same policy engine: as a sign_type 2 "message" (what a node that
    // trusted the task's sign_type would ask) the sighash is approved; as what it is, a
    // transfer to an unlisted destination, it is rejected.
    let policy = Policy::from_toml_str(MESSAGES_OK_TRANSFERS_RESTRICTED).unwrap();
    let as_message = Check::sign(
        "cb",
        RequestType::Sign,
        SignType::Message,
        "02",
        "m/1/1/60/0",
        hex::encode(sighash),
        None,
        ExtraInfo::default(),
    );
    let zero = |_: &str| mpc_callback_demo::amount::Amount::ZERO;
    assert!(matches!(
        policy.evaluate(&as_message, zero, false).verdict,
        Verdict::Approve(_)
    ));
    let mut as_transfer = as_message.clone();
    as_transfer.request_detail.sign_type = "1".into();
    as_transfer.request_detail.tx_info = Some(
        mpc_callback::mpc_wire::callback::TxInfo::from_json(
            br#"{"chainSymbol":"ETH","assetId":"ETH","to":"0x00000000000000000000000000000000deadbeef","amount":"100"}"#,
        )
        .unwrap(),
    );
    assert!(matches!(
        policy.evaluate(&as_transfer, zero, false).verdict,
        Verdict::Reject(_)
    ));

    // The attack, for each algorithm and payload that is not a message the node hashes.
    for (i, (algorithm, payload)) in [
        (Algorithm::Ecdsa, Payload::Digest { digest: sighash }),
        (Algorithm::Bip340, Payload::Digest { digest: sighash }),
        (Algorithm::Taproot, Payload::Digest { digest: sighash }),
        (
            Algorithm::Eddsa,
            Payload::Message {
                message: sighash.to_vec(),
            },
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let rid = format!("sighash-as-message-{i}");
        let o = node.run(&rid, None, sign(algorithm, 2, payload)).await;
        assert_bad_task(&o, "sign_type 2");
        assert_eq!(
            demo.decision(&rid),
            None,
            "the callback was asked about {rid}"
        );
    }
    // A message under another sign_type is refused too.
    for st in [1, 3] {
        let rid = format!("message-as-type-{st}");
        let o = node
            .run(
                &rid,
                None,
                sign(
                    Algorithm::Ecdsa,
                    st,
                    Payload::SignMessage {
                        kind: "personal_sign".into(),
                        message: "hello".into(),
                    },
                ),
            )
            .await;
        assert_bad_task(&o, "messages are sign_type 2");
        assert_eq!(demo.decision(&rid), None);
    }
    // Control: the honest pairings reach the callback and are approved.
    let o = node
        .run(
            "honest-message",
            None,
            sign(
                Algorithm::Ecdsa,
                2,
                Payload::SignMessage {
                    kind: "personal_sign".into(),
                    message: "hello".into(),
                },
            ),
        )
        .await;
    assert_approved_then_no_key(&o);
    assert_eq!(demo.decision("honest-message").unwrap().0, "APPROVE");
    let o = node
        .run(
            "honest-raw",
            None,
            sign(Algorithm::Ecdsa, 3, Payload::Digest { digest: sighash }),
        )
        .await;
    assert_approved_then_no_key(&o);
    assert_eq!(demo.decision("honest-raw").unwrap().0, "APPROVE");
}

/// Bullet 2: the callback sees how a message is hashed, and a personal_sign-only policy does
/// not let an EIP-712 Permit through (nor a task that claims the Permit is personal_sign).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_sign_only_policy_refuses_an_eip712_permit() {
    // The Permit is a well-formed EIP-712 message the node can hash.
    mpc_chains::sign_message_payload(mpc_chains::SignMessageKind::TypedDataV4, PERMIT).unwrap();
    let policy =
        format!("{MESSAGES_OK_TRANSFERS_RESTRICTED}message_methods = [\"personal_sign\"]\n");
    let (mut node, demo) = node_with_demo(&policy, false).await;
    let permit = |kind: &str| {
        sign(
            Algorithm::Ecdsa,
            2,
            Payload::SignMessage {
                kind: kind.into(),
                message: PERMIT.into(),
            },
        )
    };
    for kind in ["eth_signTypedData_v4", "eth_signTypedData_v3"] {
        let rid = format!("permit-{kind}");
        let o = node.run(&rid, None, permit(kind)).await;
        match &o {
            Outcome::Rejected { reason } => assert!(reason.contains(kind), "{reason}"),
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(demo.decision(&rid).unwrap().0, "REJECT");
    }
    // A task whose tx_info claims personal_sign for the typed-data payload is refused by the
    // node: the method the callback sees is the one the node hashes with.
    let TaskBody::Sign(mut lying) = permit("eth_signTypedData_v4") else {
        unreachable!()
    };
    lying.tx_info = Some(r#"{"signAlgorithm":"personal_sign"}"#.into());
    let o = node.run("permit-lying", None, TaskBody::Sign(lying)).await;
    assert_bad_task(&o, "signAlgorithm");
    assert_eq!(demo.decision("permit-lying"), None);
    // personal_sign passes.
    let o = node
        .run(
            "personal",
            None,
            sign(
                Algorithm::Ecdsa,
                2,
                Payload::SignMessage {
                    kind: "personal_sign".into(),
                    message: "log me in".into(),
                },
            ),
        )
        .await;
    assert_approved_then_no_key(&o);
    assert_eq!(demo.decision("personal").unwrap().0, "APPROVE");
}

/// Bullet 3: the callback sees the script root the node tweaks with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taproot_script_root_is_the_one_the_callback_saw() {
    let (addr, public, seen) = recording_callback().await;
    let mut node = Node::start((0..3).map(|_| identity()).collect(), (addr, public));
    let root = [0x11u8; 32];
    let taproot = |root: Option<[u8; 32]>, tx_info: Option<String>| {
        TaskBody::Sign(SignTask {
            ecdsa_protocol: mpc_transport::task::EcdsaProtocol::Cggmp24,
            key_id: "k-1".into(),
            algorithm: Algorithm::Taproot,
            root_public_key: vec![2; 33],
            path: "m/1/1/0/0".into(),
            sign_type: 1,
            payload: Payload::Digest { digest: [0x42; 32] },
            tap_script_root: root.map(|r| r.to_vec()),
            tx_info,
            generation: None,
        })
    };
    // The task's root, absent from its tx_info, is written there by the node.
    let o = node
        .run(
            "tap-ok",
            None,
            taproot(Some(root), Some(r#"{"to":"bc1p"}"#.into())),
        )
        .await;
    assert_approved_then_no_key(&o);
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let tx = seen[0].request_detail.tx_info.as_ref().unwrap();
        assert_eq!(
            tx.string_field(TX_INFO_TAP_SCRIPT_ROOT).unwrap(),
            Some(hex::encode(root))
        );
        assert_eq!(tx.string_field("to").unwrap(), Some("bc1p".into()));
        assert_eq!(seen[0].request_type, "taproot-sign");
    }
    // A task whose two disagree, or whose tx_info shows a root it does not tweak with (or two
    // roots), is refused before the callback is asked.
    let other = hex::encode([0x12u8; 32]);
    for (rid, root, tx) in [
        (
            "tap-differs",
            Some(root),
            format!(r#"{{"tapScriptRoot":"{other}"}}"#),
        ),
        (
            "tap-none",
            None,
            format!(r#"{{"tapScriptRoot":"{other}"}}"#),
        ),
        (
            "tap-twice",
            Some(root),
            format!(
                r#"{{"tapScriptRoot":"{}","tapScriptRoot":"{other}"}}"#,
                hex::encode(root)
            ),
        ),
    ] {
        let o = node.run(rid, None, taproot(root, Some(tx))).await;
        assert_bad_task(&o, "tapScriptRoot");
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the callback was asked about a refused task"
    );
}

/// Bullet 4: the keygen approval names the members' node ids, and a callback that pins the
/// node id of each party refuses a committee with another node in a party's place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_party_ids_are_node_ids_the_callback_pins() {
    let (mut node, demo) = node_with_demo(MESSAGES_OK_TRANSFERS_RESTRICTED, true).await;
    let keygen = || {
        TaskBody::Keygen(KeygenTask {
            ecdsa_protocol: mpc_transport::task::EcdsaProtocol::Cggmp24,
            key_id: "ed-1".into(),
            curve: Curve::Ed25519,
            threshold: 2,
        })
    };
    // An impostor with its own valid identity and certificate in b's place.
    let impostor = identity();
    let mut members = node.members();
    members[1] = member("b", &impostor);
    let o = node.run("keygen-impostor", Some(members), keygen()).await;
    match &o {
        Outcome::Rejected { reason } => {
            assert!(reason.contains("not in keygen.allow"), "{reason}");
            assert!(reason.contains(&node_id(&impostor)), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(demo.decision("keygen-impostor").unwrap().0, "REJECT");
    // The pinned committee is approved; the run then starts and times out (b and c are not
    // running here), blaming the silent parties.
    let o = node.run("keygen-pinned", None, keygen()).await;
    assert_eq!(demo.decision("keygen-pinned").unwrap().0, "APPROVE");
    match &o {
        Outcome::Failed {
            fault: Fault::Timeout,
            culprits,
            ..
        } => assert_eq!(culprits, &vec!["b".to_string(), "c".to_string()]),
        other => panic!("{other:?}"),
    }
}
