//! Three real node runtimes (`mpc_node::run_with`, stores in temporary directories, unsealed
//! through the local API) joined over plain `ws` on loopback to a small test relay that stands
//! in for the platform: it sends the challenge, verifies the hello, routes protocol frames by
//! receiver (broadcasts to every other node), injects tasks and aborts and collects results.
//!
//! One scenario, in order (keygen is the expensive part, so the steps share keys):
//! ed25519 keygen and EdDSA signing; secp256k1 keygen (published test primes) and ECDSA
//! (sign_type 2, v = 27/28), BIP340 and Taproot signatures, each verified independently;
//! forged and replayed frames dropped while a run still completes; a callback REJECT with no
//! protocol traffic from the rejecting node, and an abort stopping the others; the shares
//! surviving a restart of every node (one of them now with `[encrypt-signature]` on). Also a
//! run timing out naming the silent party, and an unbound node told so by the relay.
//!
//! Set `NETWORK_TEST_LOGS=1` to see the nodes' logs.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use futures_util::{SinkExt, StreamExt};
use mpc_callback::mpc_wire::callback::{Action, Check, ResponseData};
use mpc_callback::mpc_wire::signature::EcdsaSigner;
use mpc_callback::mpc_wire::{keys, signature};
use mpc_transport::auth::{Challenge, verify_hello};
use mpc_transport::frame::{Abort, Frame};
use mpc_transport::keys::TransportCert;
use mpc_transport::seal::{SealedBody, SealedEnvelope};
use mpc_transport::signed::{TaskSigningKey, verify_result};
use mpc_transport::task::{
    Algorithm, Curve, EcdsaProtocol, Fault, KeygenTask, Member, Outcome, Payload, RefreshTask,
    RepairTask, SignTask, TASK_VERSION, Task, TaskBody, TaskResult,
};
use mpc_tss::{ExecutionId, PartyId, ProtocolKind};
use p256::ecdsa::SigningKey;
use rand_core::{OsRng, RngCore};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "Correct-Horse-9";
const REJECT_ID: &str = "reject-me";
const STEP: Duration = Duration::from_secs(240);

// ---------------------------------------------------------------- log capture

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        if std::env::var_os("NETWORK_TEST_LOGS").is_some() {
            std::io::stderr().write_all(b)?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The nodes' logs, captured once for every test of this binary (tests run in parallel; each
/// looks for lines only its own scenario produces).
fn logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter("mpc_node=debug,info")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        logs
    })
    .clone()
}

// ---------------------------------------------------------------- relay

type Tamper = Box<dyn FnMut(&str, &SealedEnvelope) -> Vec<SealedEnvelope> + Send>;

#[derive(Default)]
struct RelayState {
    bindings: HashMap<String, String>,
    conns: HashMap<String, (u64, mpsc::UnboundedSender<Message>)>,
    certs: HashMap<String, TransportCert>,
    /// Every authentic-looking protocol frame a node sent: (from party, frame).
    sent: Vec<(String, SealedEnvelope)>,
    tamper: Option<Tamper>,
}

struct Relay {
    addr: SocketAddr,
    /// The coordinator's task-signing key the relay stands in for.
    platform: TaskSigningKey,
    state: Arc<Mutex<RelayState>>,
    results: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, TaskResult)>>,
}

impl Relay {
    async fn start() -> Arc<Relay> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(RelayState::default()));
        let (res_tx, res_rx) = mpsc::unbounded_channel();
        let st = state.clone();
        tokio::spawn(async move {
            let mut next_id = 0u64;
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                next_id += 1;
                tokio::spawn(serve_conn(tcp, st.clone(), res_tx.clone(), next_id));
            }
        });
        Arc::new(Relay {
            addr,
            platform: TaskSigningKey::generate(&mut OsRng),
            state,
            results: tokio::sync::Mutex::new(res_rx),
        })
    }

    fn bind(&self, node_id: &str, party: &str) {
        self.state
            .lock()
            .unwrap()
            .bindings
            .insert(node_id.into(), party.into());
    }

    async fn wait_online(&self, parties: &[&str]) {
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            {
                let st = self.state.lock().unwrap();
                if parties.iter().all(|p| st.conns.contains_key(*p)) {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < until,
                "nodes {parties:?} did not connect"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_disconnected(&self, party: &str) {
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.state.lock().unwrap().conns.contains_key(party) {
            assert!(
                tokio::time::Instant::now() < until,
                "node {party} did not disconnect"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_offline(&self) {
        let until = tokio::time::Instant::now() + Duration::from_secs(30);
        while !self.state.lock().unwrap().conns.is_empty() {
            assert!(
                tokio::time::Instant::now() < until,
                "nodes did not disconnect"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn member(&self, party: &str, node_id: &str) -> Member {
        let cert = self.state.lock().unwrap().certs[party].clone();
        Member {
            party: party.into(),
            node_id: node_id.into(),
            transport_cert: cert,
        }
    }

    fn send_to(&self, party: &str, frame: &Frame) {
        let st = self.state.lock().unwrap();
        let (_, tx) = &st.conns[party];
        tx.send(Message::binary(frame.encode().unwrap())).unwrap();
    }

    /// Collects one result from each of `parties` (results of other parties are unexpected).
    async fn results(&self, parties: &[&str]) -> HashMap<String, Outcome> {
        let mut got = HashMap::new();
        let mut rx = self.results.lock().await;
        let until = tokio::time::Instant::now() + STEP;
        while got.len() < parties.len() {
            let (party, r) = tokio::time::timeout_at(until, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("results so far {got:?}; waiting for {parties:?}"))
                .unwrap();
            assert!(
                parties.contains(&party.as_str()),
                "result from {party}: {r:?}"
            );
            assert!(got.insert(party, r.outcome).is_none());
        }
        got
    }

    /// The next `n` results, from any party.
    async fn any_results(&self, n: usize) -> Vec<(String, TaskResult)> {
        let mut got = Vec::new();
        let mut rx = self.results.lock().await;
        let until = tokio::time::Instant::now() + STEP;
        while got.len() < n {
            let r = tokio::time::timeout_at(until, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("{} of {n} results: {got:?}", got.len()))
                .unwrap();
            got.push(r);
        }
        got
    }

    /// No result arrives within `d`.
    async fn no_result_within(&self, d: Duration) {
        let mut rx = self.results.lock().await;
        if let Ok(Some(r)) = tokio::time::timeout(d, rx.recv()).await {
            panic!("unexpected result {r:?}");
        }
    }
}

async fn serve_conn(
    tcp: tokio::net::TcpStream,
    state: Arc<Mutex<RelayState>>,
    results: mpsc::UnboundedSender<(String, TaskResult)>,
    conn_id: u64,
) {
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let challenge = Challenge::new(&mut OsRng);
    sink.send(Message::binary(
        Frame::Challenge(challenge.clone()).encode().unwrap(),
    ))
    .await
    .unwrap();
    let Some(Ok(Message::Binary(b))) = stream.next().await else {
        return;
    };
    let Ok(Frame::Hello(hello)) = Frame::decode(&b) else {
        return;
    };
    let node = verify_hello(&hello, &challenge, &[0; 32]).expect("hello verifies");
    let party = state.lock().unwrap().bindings.get(node.node_id()).cloned();
    let Some(party) = party else {
        let _ = sink
            .send(Message::Close(Some(
                tokio_tungstenite::tungstenite::protocol::CloseFrame {
                    code: 4001.into(),
                    reason: "unbound node".into(),
                },
            )))
            .await;
        return;
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    {
        let mut st = state.lock().unwrap();
        st.conns.insert(party.clone(), (conn_id, tx));
        st.certs
            .insert(party.clone(), node.transport_cert().clone());
    }
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Binary(b) = msg else { continue };
        match Frame::decode(&b).unwrap() {
            Frame::Protocol(sealed) => {
                assert_eq!(
                    sealed.header.sender, party,
                    "sender is the connection's party"
                );
                let mut st = state.lock().unwrap();
                st.sent.push((party.clone(), sealed.clone()));
                let frames = match st.tamper.as_mut() {
                    Some(t) => t(&party, &sealed),
                    None => vec![sealed],
                };
                for f in frames {
                    let bytes = Frame::Protocol(f.clone()).encode().unwrap();
                    for (p, (_, tx)) in &st.conns {
                        let to_it = match &f.header.receiver {
                            Some(r) => r == p,
                            None => *p != party,
                        };
                        if to_it {
                            let _ = tx.send(Message::binary(bytes.clone()));
                        }
                    }
                }
            }
            Frame::TaskResult(bytes) => {
                // Every result is signed by the node that sends it.
                let r = verify_result(&bytes, node.node_id())
                    .expect("result signed by its node")
                    .into_result();
                assert_eq!(r.party, party);
                let _ = results.send((party.clone(), r));
            }
            Frame::Ping(n) => {
                let st = state.lock().unwrap();
                if let Some((_, tx)) = st.conns.get(&party) {
                    let _ = tx.send(Message::binary(Frame::Pong(n).encode().unwrap()));
                }
            }
            other => panic!("unexpected frame from {party}: {:?}", other.kind()),
        }
    }
    let mut st = state.lock().unwrap();
    if st.conns.get(&party).is_some_and(|(id, _)| *id == conn_id) {
        st.conns.remove(&party);
    }
    writer.abort();
}

// ---------------------------------------------------------------- callback server (node c)

fn callback_key() -> SigningKey {
    SigningKey::from_slice(&[7; 32]).unwrap()
}

async fn callback_server() -> SocketAddr {
    async fn check(State(key): State<Arc<EcdsaSigner>>, body: Bytes) -> Vec<u8> {
        let check = Check::from_json(&body).unwrap();
        let action = if check.extra_info.request_id == REJECT_ID {
            Action::Reject
        } else {
            Action::Approve
        };
        let data = ResponseData::for_request(&check, action);
        let reason = if action == Action::Reject {
            "policy says no"
        } else {
            ""
        };
        signature::sign_response(data, reason, &key).to_go_json()
    }
    async fn ack() -> &'static str {
        r#"{"status":"0"}"#
    }
    let app = Router::new()
        .route("/check", post(check))
        .route("/rawdata_signature", post(ack))
        .with_state(Arc::new(EcdsaSigner::new(&callback_key())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

// ---------------------------------------------------------------- nodes

struct NodeRun {
    dir: PathBuf,
    party: String,
    node_id: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

fn test_primes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tss/tests/fixtures/test-primes.json")
}

fn encrypt_key() -> p256::SecretKey {
    p256::SecretKey::from_slice(&[9; 32]).unwrap()
}

fn write_config(
    dir: &Path,
    party: &str,
    relay: SocketAddr,
    callback: Option<SocketAddr>,
    encrypt: bool,
) {
    let mut text = format!(
        "[app]\nparty-id = \"{party}\"\n\n[log.file]\nenable = false\n\n[storage]\ndb-file-path = \"asset.db\"\nunseal-server-address = \"127.0.0.1:0\"\n\n[mpc-service]\nprotocol = \"ws\"\naddress = \"{relay}\"\npath = \"/proxy\"\n"
    );
    if let Some(cb) = callback {
        std::fs::write(
            dir.join("callback.pem"),
            keys::public_key_pem(callback_key().verifying_key()),
        )
        .unwrap();
        text.push_str(&format!(
            "\n[callback]\nretry-times = 0\nsleep-seconds = 1\n\n[[callback.server]]\naddress = \"http://{cb}\"\npublic-key-path = \"callback.pem\"\n"
        ));
    }
    if encrypt {
        let vk = p256::ecdsa::VerifyingKey::from(encrypt_key().public_key());
        std::fs::write(dir.join("encrypt.pem"), keys::public_key_pem(&vk)).unwrap();
        text.push_str("\n[encrypt-signature]\nenable = true\npublic-key-path = \"encrypt.pem\"\n");
    }
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

impl NodeRun {
    /// Starts the node from `dir`, initialises it if `init`, unseals it.
    async fn start(dir: &Path, party: &str, init: bool) -> NodeRun {
        let mut cfg = mpc_node::Config::load(&dir.join("config.toml")).unwrap();
        cfg.insecure_fast_kdf = true;
        cfg.insecure_test_primes = Some(test_primes());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            if let Err(e) = mpc_node::run(cfg, listener, async move {
                let _ = stopped.await;
            })
            .await
            {
                panic!("node stopped with an error: {e}");
            }
        });
        let client = mpc_node::client::Client::new(&addr.to_string()).unwrap();
        let mut node_id = String::new();
        if init {
            let r = client.post_bkey("/sys/init", PASSWORD).await.unwrap();
            assert!(r.is_ok(), "{}", r.body);
            node_id = r.data().unwrap()["node_id"].as_str().unwrap().to_owned();
        }
        let r = client.post_bkey("/sys/in-bkey", PASSWORD).await.unwrap();
        assert!(r.is_ok(), "{}", r.body);
        if node_id.is_empty() {
            let r = client.get("/sys/seal-status").await.unwrap();
            node_id = r.data().unwrap()["node_id"].as_str().unwrap().to_owned();
        }
        NodeRun {
            dir: dir.to_owned(),
            party: party.to_owned(),
            node_id,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h)
                .await
                .expect("node stops")
                .unwrap();
        }
    }
}

// ---------------------------------------------------------------- tasks

fn deadline() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    now + STEP.as_millis() as u64
}

fn unique() -> [u8; 32] {
    let mut u = [0u8; 32];
    OsRng.fill_bytes(&mut u);
    u
}

struct World {
    relay: Arc<Relay>,
    nodes: Vec<NodeRun>,
}

impl World {
    /// Nodes a, b, c (fresh stores, no callback) joined to a new relay.
    async fn three_nodes() -> (Vec<tempfile::TempDir>, World) {
        let relay = Relay::start().await;
        let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let parties = ["a", "b", "c"];
        let mut nodes = Vec::new();
        for (dir, party) in dirs.iter().zip(parties) {
            write_config(dir.path(), party, relay.addr, None, false);
            let n = NodeRun::start(dir.path(), party, true).await;
            relay.bind(&n.node_id, party);
            nodes.push(n);
        }
        relay.wait_online(&parties).await;
        (dirs, World { relay, nodes })
    }

    fn members(&self, parties: &[&str]) -> Vec<Member> {
        parties
            .iter()
            .map(|p| {
                let n = self.nodes.iter().find(|n| n.party == *p).unwrap();
                self.relay.member(p, &n.node_id)
            })
            .collect()
    }

    fn task(&self, parties: &[&str], request_id: &str, body: TaskBody) -> Task {
        Task {
            version: TASK_VERSION,
            task_id: format!("task-{}", hex::encode(&unique()[..4])),
            sino_id: "sino-1".into(),
            request_id: request_id.into(),
            deadline_unix_ms: deadline(),
            execution_unique: unique(),
            members: self.members(parties),
            body,
        }
    }

    fn send(&self, parties: &[&str], task: &Task) {
        let frame = Frame::Task(self.relay.platform.sign(task).unwrap());
        for p in parties {
            self.relay.send_to(p, &frame);
        }
    }

    async fn run(&self, parties: &[&str], body: TaskBody) -> HashMap<String, Outcome> {
        let task = self.task(parties, "req-1", body);
        self.send(parties, &task);
        self.relay.results(parties).await
    }

    async fn keygen(&self, key_id: &str, curve: Curve) -> (Vec<u8>, [u8; 32]) {
        self.keygen_with(key_id, curve, EcdsaProtocol::Cggmp24)
            .await
    }

    async fn keygen_with(
        &self,
        key_id: &str,
        curve: Curve,
        ecdsa_protocol: EcdsaProtocol,
    ) -> (Vec<u8>, [u8; 32]) {
        let out = self
            .run(
                &["a", "b", "c"],
                TaskBody::Keygen(KeygenTask {
                    ecdsa_protocol,
                    key_id: key_id.into(),
                    curve,
                    threshold: 2,
                }),
            )
            .await;
        let mut keys = out.values().map(|o| match o {
            Outcome::KeygenDone {
                public_key,
                chain_code,
            } => (public_key.clone(), *chain_code),
            other => panic!("keygen: {other:?}"),
        });
        let first = keys.next().unwrap();
        assert!(keys.all(|k| k == first), "{out:?}");
        first
    }

    /// A BIP340 signature by `parties` with DKLs23 key `key_id` (of `generation`) verifies
    /// under `pk` (k256).
    async fn bip340_verifies(
        &self,
        parties: &[&str],
        key_id: &str,
        pk: &[u8],
        generation: Option<String>,
    ) {
        let msg = [0x42u8; 32];
        let task = SignTask {
            ecdsa_protocol: EcdsaProtocol::Dkls23,
            generation,
            ..sign_task(
                key_id,
                Algorithm::Bip340,
                pk,
                3,
                Payload::Digest { digest: msg },
            )
        };
        let sig = self.sign(parties, task).await;
        k256::schnorr::VerifyingKey::from_bytes(&pk[1..])
            .unwrap()
            .verify_raw(&msg, &k256::schnorr::Signature::try_from(&sig[..]).unwrap())
            .unwrap();
    }

    async fn sign(&self, parties: &[&str], task: SignTask) -> Vec<u8> {
        let out = self.run(parties, TaskBody::Sign(task)).await;
        let mut sigs = out.values().map(|o| match o {
            Outcome::Signed {
                signature: Some(s),
                encrypted: None,
            } => s.clone(),
            other => panic!("sign: {other:?}"),
        });
        let first = sigs.next().unwrap();
        assert!(sigs.all(|s| s == first));
        first
    }
}

fn sign_task(
    key_id: &str,
    algorithm: Algorithm,
    root: &[u8],
    sign_type: u8,
    payload: Payload,
) -> SignTask {
    SignTask {
        ecdsa_protocol: EcdsaProtocol::Cggmp24,
        key_id: key_id.into(),
        algorithm,
        root_public_key: root.to_vec(),
        path: "m".into(),
        sign_type,
        payload,
        tap_script_root: None,
        tx_info: None,
        generation: None,
    }
}

/// A DKLs23 ECDSA task of `key_id` over the digest `[seed; 32]`, naming `generation`.
fn dkls_ecdsa(
    key_id: &str,
    pk: &[u8],
    generation: Option<String>,
    seed: u8,
) -> ([u8; 32], SignTask) {
    let digest = [seed; 32];
    let task = SignTask {
        ecdsa_protocol: EcdsaProtocol::Dkls23,
        generation,
        ..sign_task(key_id, Algorithm::Ecdsa, pk, 3, Payload::Digest { digest })
    };
    (digest, task)
}

/// A 65-byte recoverable ECDSA signature recovers `vk` (k256).
fn verify_recoverable(vk: &k256::ecdsa::VerifyingKey, digest: [u8; 32], sig: &[u8]) {
    let ksig = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    let rid = k256::ecdsa::RecoveryId::from_byte(sig[64]).unwrap();
    assert_eq!(
        &k256::ecdsa::VerifyingKey::recover_from_prehash(&digest, &ksig, rid).unwrap(),
        vk
    );
}

fn count_protocol_frames_from(relay: &Relay, party: &str, eids: &[ExecutionId]) -> usize {
    let st = relay.state.lock().unwrap();
    st.sent
        .iter()
        .filter(|(p, f)| p == party && eids.iter().any(|e| e.as_bytes() == &f.header.execution_id))
        .count()
}

/// A DKLs23 secp256k1 key through the real node runtimes: keygen, then ECDSA (2-of-3 with
/// every pair, and under a path), BIP340 and Taproot from the same share, each verified with
/// k256; a sign task naming the other protocol is refused by every signer, naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dkls23_key_signs_ecdsa_bip340_taproot_and_refuses_the_other_protocol() {
    let (_dirs, w) = World::three_nodes().await;

    let (pk, chain_code) = w
        .keygen_with("dk-1", Curve::Secp256k1, EcdsaProtocol::Dkls23)
        .await;
    assert_eq!(pk.len(), 33);
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&pk).unwrap();
    let dkls = |algorithm, sign_type, payload| SignTask {
        ecdsa_protocol: EcdsaProtocol::Dkls23,
        ..sign_task("dk-1", algorithm, &pk, sign_type, payload)
    };
    for (i, pair) in [["a", "b"], ["a", "c"], ["b", "c"]].iter().enumerate() {
        let digest = [i as u8 + 1; 32];
        let sig = w
            .sign(pair, dkls(Algorithm::Ecdsa, 3, Payload::Digest { digest }))
            .await;
        assert_eq!(sig.len(), 65);
        let ksig = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
        assert!(ksig.normalize_s().is_none(), "high s");
        let rid = k256::ecdsa::RecoveryId::from_byte(sig[64]).unwrap();
        let recovered =
            k256::ecdsa::VerifyingKey::recover_from_prehash(&digest, &ksig, rid).unwrap();
        assert_eq!(recovered, vk, "pair {pair:?}");
    }
    // Under a path: the signature verifies under the BIP32 child of the xpub.
    let path = "m/1/1/60/0";
    let digest = [0x77; 32];
    let sig = w
        .sign(
            &["b", "c"],
            SignTask {
                path: path.into(),
                ..dkls(Algorithm::Ecdsa, 3, Payload::Digest { digest })
            },
        )
        .await;
    let mut child = bip32::XPub::from_str(
        &mpc_tss::derive::xpub_secp256k1(&pk.clone().try_into().unwrap(), &chain_code).unwrap(),
    )
    .unwrap();
    for i in [1u32, 1, 60, 0] {
        child = child
            .derive_child(bip32::ChildNumber::new(i, false).unwrap())
            .unwrap();
    }
    let child_vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&child.to_bytes()).unwrap();
    let ksig = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
    child_vk.verify_prehash(&digest, &ksig).unwrap();
    // BIP340 and Taproot from the same share.
    let msg = [0x42u8; 32];
    let sig = w
        .sign(
            &["a", "c"],
            dkls(Algorithm::Bip340, 3, Payload::Digest { digest: msg }),
        )
        .await;
    k256::schnorr::VerifyingKey::from_bytes(&pk[1..])
        .unwrap()
        .verify_raw(&msg, &k256::schnorr::Signature::try_from(&sig[..]).unwrap())
        .unwrap();
    let sig = w
        .sign(
            &["a", "b"],
            dkls(Algorithm::Taproot, 3, Payload::Digest { digest: msg }),
        )
        .await;
    let output = mpc_chains::address::taproot_output_key(&pk, None).unwrap();
    k256::schnorr::VerifyingKey::from_bytes(&output)
        .unwrap()
        .verify_raw(&msg, &k256::schnorr::Signature::try_from(&sig[..]).unwrap())
        .unwrap();
    // Many tasks at once, reaching the two signers in opposite orders: every one signs (a node
    // that capped its sessions below the number of runs took a different subset of the tasks
    // than its peer, and both then waited on each other until the deadline).
    let tasks: Vec<Task> = (0..12u8)
        .map(|i| {
            w.task(
                &["a", "b"],
                &format!("many-{i}"),
                TaskBody::Sign(dkls(
                    Algorithm::Ecdsa,
                    3,
                    Payload::Digest {
                        digest: [0xa0 + i; 32],
                    },
                )),
            )
        })
        .collect();
    let frames: Vec<Frame> = tasks
        .iter()
        .map(|t| Frame::Task(w.relay.platform.sign(t).unwrap()))
        .collect();
    for f in &frames {
        w.relay.send_to("a", f);
    }
    for f in frames.iter().rev() {
        w.relay.send_to("b", f);
    }
    let results = w.relay.any_results(2 * tasks.len()).await;
    for (party, r) in &results {
        assert!(
            matches!(r.outcome, Outcome::Signed { .. }),
            "{party} {}: {:?}",
            r.task_id,
            r.outcome
        );
    }

    // The wrong protocol: refused by both signers before any protocol frame.
    let out = w
        .run(
            &["a", "b"],
            TaskBody::Sign(sign_task(
                "dk-1",
                Algorithm::Ecdsa,
                &pk,
                3,
                Payload::Digest { digest },
            )),
        )
        .await;
    for (party, o) in &out {
        match o {
            Outcome::Failed { fault, detail, .. } => {
                assert_eq!(*fault, Fault::BadTask, "{party}: {detail}");
                assert!(
                    detail.contains("cggmp24") && detail.contains("dkls23 key"),
                    "{party}: {detail}"
                );
            }
            other => panic!("{party}: {other:?}"),
        }
    }
}

/// Refresh of a DKLs23 key through the real node runtimes: every node stores its new share
/// beside the current one and answers one generation; until a task names it, the old shares
/// sign (the platform has not switched); the first task naming it makes the new share current
/// at each node (also at a node restarted in between); a node that switched refuses a task
/// naming the old generation; a refresh that names only some parties is refused; a second
/// refresh starts from the new generation. Every signature verified with k256.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dkls23_refresh_waits_beside_the_current_share_until_its_generation_is_named() {
    let _logs = logs();
    let parties = ["a", "b", "c"];
    let (dirs, mut w) = World::three_nodes().await;
    let (pk, _) = w
        .keygen_with("rk-1", Curve::Secp256k1, EcdsaProtocol::Dkls23)
        .await;
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&pk).unwrap();
    let refresh = |generation: Option<&str>| {
        TaskBody::Refresh(RefreshTask {
            key_id: "rk-1".into(),
            root_public_key: pk.clone(),
            generation: generation.map(str::to_owned),
        })
    };
    let generation_of = |out: &HashMap<String, Outcome>| {
        let gens: Vec<String> = out
            .values()
            .map(|o| match o {
                Outcome::Refreshed {
                    public_key,
                    generation,
                } => {
                    assert_eq!(public_key, &pk);
                    generation.clone()
                }
                other => panic!("refresh: {other:?}"),
            })
            .collect();
        assert_eq!(gens.len(), 3);
        assert!(gens.iter().all(|g| g == &gens[0]), "{gens:?}");
        gens[0].clone()
    };
    let mut n = 0u8;
    let mut ecdsa = |pair: [&'static str; 2], generation: Option<String>| {
        n += 1;
        let (digest, task) = dkls_ecdsa("rk-1", &pk, generation, n);
        (pair, digest, task)
    };
    let verify = |digest: [u8; 32], sig: &[u8]| verify_recoverable(&vk, digest, sig);

    // Only two of the three parties: refused by both before any protocol traffic.
    let out = w.run(&["a", "b"], refresh(None)).await;
    for (party, o) in &out {
        assert!(
            matches!(o, Outcome::Failed { fault: Fault::BadTask, detail, .. } if detail.contains("every party of key rk-1")),
            "{party}: {o:?}"
        );
    }
    let g1 = generation_of(&w.run(&parties, refresh(None)).await);

    // Not switched yet: the key generation's shares sign.
    let (pair, digest, task) = ecdsa(["a", "b"], None);
    verify(digest, &w.sign(&pair, task).await);
    // Node c restarts while its new share waits.
    let mut c = w.nodes.pop().unwrap();
    c.stop().await;
    w.relay.wait_disconnected("c").await;
    w.nodes
        .push(NodeRun::start(dirs[2].path(), "c", false).await);
    w.relay.wait_online(&parties).await;
    // The switch: a and b take the new shares at this task.
    let (pair, digest, task) = ecdsa(["a", "b"], Some(g1.clone()));
    verify(digest, &w.sign(&pair, task).await);
    // a switched: a task naming the old generation is refused there, naming both.
    // (Delivered to a only: c, still on the old generation, would take part and wait for a.)
    let (pair, _, sign) = ecdsa(["a", "c"], None);
    let task = w.task(&pair, "old-generation", TaskBody::Sign(sign));
    w.send(&["a"], &task);
    let got = w.relay.any_results(1).await;
    assert_eq!(got[0].0, "a", "{got:?}");
    assert!(
        matches!(&got[0].1.outcome, Outcome::Failed { fault: Fault::BadTask, detail, .. }
            if detail.contains("the key generation's") && detail.contains(&g1)),
        "{got:?}"
    );
    // c (restarted) takes its new share at its first task naming it.
    for pair in [["b", "c"], ["a", "c"]] {
        let (pair, digest, task) = ecdsa(pair, Some(g1.clone()));
        verify(digest, &w.sign(&pair, task).await);
    }

    // A second refresh starts from the new generation.
    let g2 = generation_of(&w.run(&parties, refresh(Some(&g1))).await);
    assert_ne!(g1, g2);
    for pair in [["a", "b"], ["a", "c"], ["b", "c"]] {
        let (pair, digest, task) = ecdsa(pair, Some(g2.clone()));
        verify(digest, &w.sign(&pair, task).await);
    }
    // BIP340 from the refreshed share, under the same key.
    w.bip340_verifies(&["a", "c"], "rk-1", &pk, Some(g2)).await;
}

/// Repair of a DKLs23 key through the real node runtimes: node c is lost and a new node (fresh
/// store, new identity) takes party c. Before the repair, a and b refuse a task naming the new
/// node for c (their stored committee names the old one) and a repair that names a new node
/// for another party than the one it rebuilds; a and b still sign. The repair: every party
/// answers one generation; the old shares sign until the platform names it; then every pair,
/// the new node among them, signs under the same key (k256), and BIP340 from the rebuilt share.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dkls23_repair_rebuilds_a_lost_share_on_a_new_node() {
    let _logs = logs();
    let parties = ["a", "b", "c"];
    let (_dirs, mut w) = World::three_nodes().await;
    let (pk, chain_code) = w
        .keygen_with("rp-1", Curve::Secp256k1, EcdsaProtocol::Dkls23)
        .await;
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&pk).unwrap();
    let mut n = 0u8;
    let mut ecdsa = |generation: Option<String>| {
        n += 1;
        dkls_ecdsa("rp-1", &pk, generation, n)
    };
    let verify = |digest: [u8; 32], sig: &[u8]| verify_recoverable(&vk, digest, sig);
    let repair = |party: &str| {
        TaskBody::Repair(RepairTask {
            key_id: "rp-1".into(),
            root_public_key: pk.clone(),
            chain_code,
            threshold: 2,
            generation: None,
            party: party.into(),
        })
    };

    // Node c is lost; a new node (own store, own identity) takes party c.
    let mut old_c = w.nodes.pop().unwrap();
    old_c.stop().await;
    w.relay.wait_disconnected("c").await;
    let new_dir = tempfile::tempdir().unwrap();
    write_config(new_dir.path(), "c", w.relay.addr, None, false);
    let new_c = NodeRun::start(new_dir.path(), "c", true).await;
    assert_ne!(new_c.node_id, old_c.node_id);
    w.relay.bind(&new_c.node_id, "c");
    w.nodes.push(new_c);
    w.relay.wait_online(&parties).await;

    // Before the repair: a refuses the new node in a sign task (its committee names the old
    // one), and the new node holds no share.
    let (_, task) = ecdsa(None);
    let out = w.run(&["a", "c"], TaskBody::Sign(task)).await;
    assert!(
        matches!(&out["a"], Outcome::Failed { fault: Fault::BadTask, detail, .. } if detail.contains("as party c of key rp-1, but the key's committee")),
        "{out:?}"
    );
    assert!(
        matches!(&out["c"], Outcome::Failed { fault: Fault::BadTask, detail, .. } if detail.contains("unknown key rp-1")),
        "{out:?}"
    );
    // A repair of b's share does not admit a new node for c: a (helper) and b (whose share it
    // would rebuild) refuse it at intake. (Sent to a and b only: the new c would take part and
    // wait for them.)
    let task = w.task(&parties, "repair-wrong-party", repair("b"));
    w.send(&["a", "b"], &task);
    let got = w.relay.any_results(2).await;
    for (party, r) in &got {
        assert!(
            matches!(&r.outcome, Outcome::Failed { fault: Fault::BadTask, detail, .. } if detail.contains("as party c of key rp-1, but the key's committee")),
            "{party}: {:?}",
            r.outcome
        );
    }
    // a and b still sign with the key generation's shares.
    let (digest, task) = ecdsa(None);
    verify(digest, &w.sign(&["a", "b"], task).await);

    // The repair.
    let out = w.run(&parties, repair("c")).await;
    let gens: Vec<String> = out
        .values()
        .map(|o| match o {
            Outcome::Refreshed {
                public_key,
                generation,
            } => {
                assert_eq!(public_key, &pk);
                generation.clone()
            }
            other => panic!("repair: {other:?}"),
        })
        .collect();
    assert_eq!(gens.len(), 3);
    assert!(gens.iter().all(|g| g == &gens[0]), "{gens:?}");
    let g = gens[0].clone();
    // Not switched yet: the old shares of a and b sign.
    let (digest, task) = ecdsa(None);
    verify(digest, &w.sign(&["a", "b"], task).await);
    // Switched: every pair, the new node among them.
    for pair in [["a", "c"], ["b", "c"], ["a", "b"]] {
        let (digest, task) = ecdsa(Some(g.clone()));
        verify(digest, &w.sign(&pair, task).await);
    }
    w.bip340_verifies(&["b", "c"], "rp-1", &pk, Some(g)).await;
}

/// A node configured with several proxy addresses (`[mpc-service] address = "A,B"`) reaches the
/// one that answers: here the first is a closed port, and the node comes online through the
/// second and runs a task there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_several_proxy_addresses_reaches_the_one_that_answers() {
    let relay = Relay::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "a", relay.addr, None, false);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let path = dir.path().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let one = format!("address = \"{}\"", relay.addr);
    assert!(text.contains(&one));
    std::fs::write(
        &path,
        text.replace(&one, &format!("address = \"{dead},{}\"", relay.addr)),
    )
    .unwrap();
    let node = NodeRun::start(dir.path(), "a", true).await;
    relay.bind(&node.node_id, "a");
    relay.wait_online(&["a"]).await;
    let w = World {
        relay,
        nodes: vec![node],
    };
    // A 1-of-1 key through that connection: the node answers its task.
    let out = w
        .run(
            &["a"],
            TaskBody::Keygen(KeygenTask {
                ecdsa_protocol: EcdsaProtocol::Dkls23,
                key_id: "fo-1".into(),
                curve: Curve::Secp256k1,
                threshold: 1,
            }),
        )
        .await;
    assert!(out.contains_key("a"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_keygen_sign_reject_abort_forgery_restart() {
    let logs = logs();

    let relay = Relay::start().await;
    let cb = callback_server().await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let parties = ["a", "b", "c"];
    let mut nodes = Vec::new();
    for (dir, party) in dirs.iter().zip(parties) {
        write_config(
            dir.path(),
            party,
            relay.addr,
            (party == "c").then_some(cb),
            false,
        );
        let n = NodeRun::start(dir.path(), party, true).await;
        relay.bind(&n.node_id, party);
        nodes.push(n);
    }
    relay.wait_online(&parties).await;
    let mut w = World { relay, nodes };

    // ed25519: keygen, EdDSA over a raw message.
    let (ed_pk, _) = w.keygen("ed-1", Curve::Ed25519).await;
    assert_eq!(ed_pk.len(), 32);
    let msg = b"hello from the test relay".to_vec();
    let sig = w
        .sign(
            &["a", "b"],
            sign_task(
                "ed-1",
                Algorithm::Eddsa,
                &ed_pk,
                3,
                Payload::Message {
                    message: msg.clone(),
                },
            ),
        )
        .await;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&ed_pk.clone().try_into().unwrap()).unwrap();
    vk.verify_strict(&msg, &ed25519_dalek::Signature::from_slice(&sig).unwrap())
        .unwrap();

    // secp256k1: keygen with aux info from the test primes.
    let (k_pk, _) = w.keygen("k-1", Curve::Secp256k1).await;
    assert_eq!(k_pk.len(), 33);
    let k_vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&k_pk).unwrap();

    // ECDSA, sign_type 2 personal_sign: the node computes the EIP-191 digest; v = 27/28.
    let text = "sign me, please";
    let sig = w
        .sign(
            &["a", "c"],
            sign_task(
                "k-1",
                Algorithm::Ecdsa,
                &k_pk,
                2,
                Payload::SignMessage {
                    kind: "personal_sign".into(),
                    message: text.into(),
                },
            ),
        )
        .await;
    assert_eq!(sig.len(), 65);
    let digest = mpc_chains::sign_message_payload(mpc_chains::SignMessageKind::PersonalSign, text)
        .unwrap()
        .digest();
    assert!(sig[64] == 27 || sig[64] == 28);
    let ksig = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    let rid = k256::ecdsa::RecoveryId::from_byte(sig[64] - 27).unwrap();
    let recovered = k256::ecdsa::VerifyingKey::recover_from_prehash(&digest, &ksig, rid).unwrap();
    assert_eq!(recovered, k_vk);

    // BIP340 under the untweaked key, with forged frames injected: every frame is preceded by
    // an altered copy (p2p ciphertext or broadcast payload flipped) and by a genuine frame of
    // the EdDSA run above relabelled with this run's execution id. All must be dropped.
    let replay_src = {
        let st = w.relay.state.lock().unwrap();
        st.sent.first().map(|(_, f)| f.clone()).unwrap()
    };
    w.relay.state.lock().unwrap().tamper = Some(Box::new(move |_, f| {
        let mut forged = f.clone();
        match &mut forged.body {
            SealedBody::P2p { ciphertext, .. } => ciphertext[0] ^= 1,
            SealedBody::Broadcast { payload, .. } => payload[0] ^= 1,
        }
        let mut replay = replay_src.clone();
        replay.header.execution_id = f.header.execution_id;
        replay.header.receiver = f.header.receiver.clone();
        vec![forged, replay, f.clone()]
    }));
    let digest32 = [0x42u8; 32];
    let sig = w
        .sign(
            &["b", "c"],
            sign_task(
                "k-1",
                Algorithm::Bip340,
                &k_pk,
                3,
                Payload::Digest { digest: digest32 },
            ),
        )
        .await;
    w.relay.state.lock().unwrap().tamper = None;
    let xonly = k256::schnorr::VerifyingKey::from_bytes(&k_pk[1..]).unwrap();
    xonly
        .verify_raw(
            &digest32,
            &k256::schnorr::Signature::try_from(&sig[..]).unwrap(),
        )
        .unwrap();
    let text_logs = logs.text();
    assert!(
        text_logs.contains("protocol frame dropped (not authentic or not for this party)"),
        "forged frames were not seen"
    );
    assert!(!text_logs.contains("ALERT"), "a forged frame blamed a peer");

    // Taproot key path with a script root.
    let root = [0x11u8; 32];
    let mut t = sign_task(
        "k-1",
        Algorithm::Taproot,
        &k_pk,
        3,
        Payload::Digest { digest: digest32 },
    );
    t.tap_script_root = Some(root.to_vec());
    let sig = w.sign(&["a", "b"], t).await;
    let tweaked = mpc_chains::address::taproot_output_key(&k_pk, Some(root)).unwrap();
    k256::schnorr::VerifyingKey::from_bytes(&tweaked)
        .unwrap()
        .verify_raw(
            &digest32,
            &k256::schnorr::Signature::try_from(&sig[..]).unwrap(),
        )
        .unwrap();

    // Only a gets a task that b is also a member of: a times out naming b.
    let mut task = w.task(
        &["a", "b"],
        "req-timeout",
        TaskBody::Sign(sign_task(
            "ed-1",
            Algorithm::Eddsa,
            &ed_pk,
            3,
            Payload::Message {
                message: b"x".to_vec(),
            },
        )),
    );
    task.deadline_unix_ms = deadline() - STEP.as_millis() as u64 + 3_000;
    w.send(&["a"], &task);
    let out = w.relay.results(&["a"]).await;
    let Outcome::Failed {
        fault, culprits, ..
    } = &out["a"]
    else {
        panic!("{out:?}")
    };
    assert_eq!(*fault, mpc_transport::task::Fault::Timeout);
    assert_eq!(culprits, &vec!["b".to_string()]);

    // A node the platform has not bound is told so and keeps retrying with back-off.
    let dir_d = tempfile::tempdir().unwrap();
    write_config(dir_d.path(), "d", w.relay.addr, None, false);
    let mut d = NodeRun::start(dir_d.path(), "d", true).await;
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while !logs.text().contains("closed by the proxy: unbound node") {
        assert!(
            tokio::time::Instant::now() < until,
            "no unbound-node close logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.stop().await;

    // Callback REJECT at c: c answers Rejected with the reason and sends no protocol frame;
    // a and b (already running) are stopped by an abort and answer nothing.
    let task = w.task(
        &parties,
        REJECT_ID,
        TaskBody::Keygen(KeygenTask {
            ecdsa_protocol: EcdsaProtocol::Cggmp24,
            key_id: "ed-rejected".into(),
            curve: Curve::Ed25519,
            threshold: 2,
        }),
    );
    w.send(&parties, &task);
    let out = w.relay.results(&["c"]).await;
    assert_eq!(
        out["c"],
        Outcome::Rejected {
            reason: "policy says no".into()
        }
    );
    let ids: Vec<PartyId> = parties.iter().map(|p| PartyId::new(p).unwrap()).collect();
    let eid = ExecutionId::derive(ProtocolKind::EddsaKeygen, &task.execution_unique, &ids);
    assert_eq!(count_protocol_frames_from(&w.relay, "c", &[eid]), 0);
    // a and b, approved without callback, have started the run (their first round is out).
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while count_protocol_frames_from(&w.relay, "a", &[eid]) == 0 {
        assert!(
            tokio::time::Instant::now() < until,
            "a did not start the run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let abort = Frame::Abort(Abort {
        execution_id: task.execution_unique,
        reason: "party c rejected".into(),
    });
    w.relay.send_to("a", &abort);
    w.relay.send_to("b", &abort);
    w.relay.no_result_within(Duration::from_secs(2)).await;
    assert!(logs.text().contains("abort received; stopping the run"));

    // Restart every node: the shares are in the sealed stores.
    for n in &mut w.nodes {
        n.stop().await;
    }
    w.relay.wait_offline().await;
    // c comes back with [encrypt-signature] on.
    write_config(&w.nodes[2].dir, "c", w.relay.addr, Some(cb), true);
    let mut restarted = Vec::new();
    for n in &w.nodes {
        restarted.push(NodeRun::start(&n.dir, &n.party, false).await);
    }
    w.nodes = restarted;
    w.relay.wait_online(&parties).await;
    let digest32 = [0x07u8; 32];
    let out = w
        .run(
            &["b", "c"],
            TaskBody::Sign(sign_task(
                "k-1",
                Algorithm::Ecdsa,
                &k_pk,
                3,
                Payload::Digest { digest: digest32 },
            )),
        )
        .await;
    let Outcome::Signed {
        signature: Some(sig),
        encrypted: None,
    } = &out["b"]
    else {
        panic!("{out:?}")
    };
    let Outcome::Signed {
        signature: None,
        encrypted: Some(ct),
    } = &out["c"]
    else {
        panic!("c encrypts: {out:?}")
    };
    let plain = mpc_callback::mpc_wire::ecies::decrypt_hex(&encrypt_key(), ct).unwrap();
    assert_eq!(&plain[..], &sig[..]);
    let sig = sig.clone();
    assert!(sig[64] <= 1, "sign_type 3 carries the recovery id");
    let ksig = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    let rid = k256::ecdsa::RecoveryId::from_byte(sig[64]).unwrap();
    assert_eq!(
        k256::ecdsa::VerifyingKey::recover_from_prehash(&digest32, &ksig, rid).unwrap(),
        k_vk
    );
    for n in &mut w.nodes {
        n.stop().await;
    }
}

// ---------------------------------------------------------------- a hostile relay

/// Pins `key` in the node's config (`[mpc-service] platform-public-key-path`).
fn pin_platform(dir: &Path, key: &p256::ecdsa::VerifyingKey) {
    std::fs::write(dir.join("platform.pem"), keys::public_key_pem(key)).unwrap();
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let text = text.replace(
        "path = \"/proxy\"\n",
        "path = \"/proxy\"\nplatform-public-key-path = \"platform.pem\"\n",
    );
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

/// Waits until `needle` occurs at least `n` times in the logs.
async fn logged(logs: &Logs, needle: &str, n: usize) {
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while logs.text().matches(needle).count() < n {
        assert!(
            tokio::time::Instant::now() < until,
            "{needle:?} logged {} times, expected {n}",
            logs.text().matches(needle).count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `signed` (a signed task) with the bytes of `from` replaced by `to` (same length): a task
/// altered in transit under its original signature.
fn splice(signed: &[u8], from: &Task, to: &Task) -> Vec<u8> {
    let (a, b) = (from.encode().unwrap(), to.encode().unwrap());
    assert_eq!(a.len(), b.len());
    let at = signed.windows(a.len()).position(|w| w == a).unwrap();
    let mut out = signed.to_vec();
    out[at..at + a.len()].copy_from_slice(&b);
    out
}

/// The relay between the platform and the nodes (the proxy, the bus, anyone on the path) turns
/// hostile after an honest ed25519 key generation among a, b, c. Node a pins the platform key
/// in its config; b and c learned it at that first task.
///
/// * tasks signed with the relay's own key are refused (a: configured key, b: learned key);
/// * a genuine task altered after signing (another message) is refused;
/// * a task validly signed by the platform that puts another node in as party b is refused by
///   a: the key's committee was pinned at key generation (this is what a stolen platform key,
///   or a coordinator-side attacker, could try);
/// * a genuine task replayed after it ran, and again after a restart of both signers, is
///   refused without a result (nobody blamed); a fresh task still signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hostile_relay_cannot_steer_a_run() {
    let logs = logs();
    let relay = Relay::start().await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let parties = ["a", "b", "c"];
    let mut nodes = Vec::new();
    for (dir, party) in dirs.iter().zip(parties) {
        write_config(dir.path(), party, relay.addr, None, false);
        if party == "a" {
            pin_platform(dir.path(), relay.platform.verifying_key());
        }
        let n = NodeRun::start(dir.path(), party, true).await;
        relay.bind(&n.node_id, party);
        nodes.push(n);
    }
    relay.wait_online(&parties).await;
    let mut w = World { relay, nodes };

    let (pk, _) = w.keygen("ed-pinned", Curve::Ed25519).await;
    let sign = |msg: &[u8]| {
        TaskBody::Sign(sign_task(
            "ed-pinned",
            Algorithm::Eddsa,
            &pk,
            3,
            Payload::Message {
                message: msg.to_vec(),
            },
        ))
    };
    let refused = "task refused (not signed by the pinned platform key, or altered on the way)";

    // Signed with the relay's own key.
    let own_key = TaskSigningKey::generate(&mut OsRng);
    let task = w.task(&["a", "b"], "req-forged", sign(b"pay 1 to the relay"));
    let frame = Frame::Task(own_key.sign(&task).unwrap());
    w.relay.send_to("a", &frame);
    w.relay.send_to("b", &frame);
    w.relay.no_result_within(Duration::from_secs(3)).await;
    logged(&logs, "but this node pins", 2).await;

    // A genuine task altered after signing.
    let genuine = w.task(&["a", "b"], "req-altered", sign(b"pay 1 to alice"));
    let mut altered = genuine.clone();
    altered.body = sign(b"pay 9 to alice");
    let frame = Frame::Task(splice(
        &w.relay.platform.sign(&genuine).unwrap(),
        &genuine,
        &altered,
    ));
    w.relay.send_to("a", &frame);
    w.relay.send_to("b", &frame);
    w.relay.no_result_within(Duration::from_secs(3)).await;
    logged(&logs, "task signature does not verify", 2).await;
    assert!(logs.text().matches(refused).count() >= 4);

    // Validly signed, but another node stands in for b (its certificate is genuine for it).
    let evil = SigningKey::random(&mut OsRng);
    let evil_id = keys::node_id(evil.verifying_key());
    let mut task = w.task(&["a", "b"], "req-swapped", sign(b"pay 1 to mallory"));
    task.members[1] = Member {
        party: "b".into(),
        node_id: evil_id.clone(),
        transport_cert: mpc_transport::keys::TransportSecret::generate(&mut OsRng)
            .certify(&EcdsaSigner::new(&evil)),
    };
    w.send(&["a"], &task);
    let out = w.relay.results(&["a"]).await;
    let Outcome::Failed { fault, detail, .. } = &out["a"] else {
        panic!("{out:?}")
    };
    assert_eq!(*fault, mpc_transport::task::Fault::BadTask);
    assert!(
        detail.contains("but the key's committee on this node has node"),
        "{detail}"
    );
    assert_eq!(
        count_protocol_frames_from(
            &w.relay,
            "a",
            &[ExecutionId::derive(
                ProtocolKind::EddsaSign,
                &task.execution_unique,
                &[PartyId::new("a").unwrap(), PartyId::new("b").unwrap()]
            )]
        ),
        0,
        "a sent nothing for the swapped committee"
    );

    // A genuine task signs once; its replay is refused, also after a restart.
    let task = w.task(&["a", "b"], "req-once", sign(b"pay 1 to bob"));
    w.send(&["a", "b"], &task);
    let out = w.relay.results(&["a", "b"]).await;
    let Outcome::Signed {
        signature: Some(sig),
        ..
    } = &out["a"]
    else {
        panic!("{out:?}")
    };
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk.clone().try_into().unwrap()).unwrap();
    vk.verify_strict(
        b"pay 1 to bob",
        &ed25519_dalek::Signature::from_slice(sig).unwrap(),
    )
    .unwrap();
    let replayed = "task refused: taken before (a replay); no result sent";
    w.send(&["a", "b"], &task);
    w.relay.no_result_within(Duration::from_secs(3)).await;
    logged(&logs, replayed, 2).await;
    for n in &mut w.nodes[..2] {
        n.stop().await;
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while ["a", "b"]
        .iter()
        .any(|p| w.relay.state.lock().unwrap().conns.contains_key(*p))
    {
        assert!(
            tokio::time::Instant::now() < until,
            "a and b did not disconnect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut restarted = Vec::new();
    for n in &w.nodes[..2] {
        restarted.push(NodeRun::start(&n.dir, &n.party, false).await);
    }
    for (i, n) in restarted.into_iter().enumerate() {
        w.nodes[i] = n;
    }
    w.relay.wait_online(&parties).await;
    w.send(&["a", "b"], &task);
    w.relay.no_result_within(Duration::from_secs(3)).await;
    logged(&logs, replayed, 4).await;
    // The learned pin survived the restart too.
    let task = w.task(&["b", "c"], "req-forged-2", sign(b"pay 2 to the relay"));
    w.relay
        .send_to("b", &Frame::Task(own_key.sign(&task).unwrap()));
    w.relay.no_result_within(Duration::from_secs(2)).await;
    logged(&logs, "but this node pins", 3).await;
    // Honest work goes on.
    let sig = w
        .sign(
            &["a", "b"],
            sign_task(
                "ed-pinned",
                Algorithm::Eddsa,
                &pk,
                3,
                Payload::Message {
                    message: b"pay 2 to bob".to_vec(),
                },
            ),
        )
        .await;
    vk.verify_strict(
        b"pay 2 to bob",
        &ed25519_dalek::Signature::from_slice(&sig).unwrap(),
    )
    .unwrap();
    assert!(!logs.text().contains("ALERT"), "nobody was blamed");
    for n in &mut w.nodes {
        n.stop().await;
    }
}
