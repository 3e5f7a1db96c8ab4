//! The node's callback client (mpc-callback) against the reference server, both in this
//! process, over loopback. Keys are the checked-in openssl fixtures of `tests/data`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mpc_callback::mpc_wire::callback::{Check, ExtraInfo, SignType, TxInfo};
use mpc_callback::mpc_wire::signature::{self, EcdsaSigner};
use mpc_callback::{
    CallbackClient, CallbackConfig, CallbackError, Cryptography, EncryptConfig, KeygenRequest,
    Rejection, Request, ServerConfig, SignAlgorithm, SignRequest,
};
use mpc_callback_demo::policy::Policy;
use mpc_callback_demo::{ServeConfig, load_secret_key, load_signing_key, load_verifying_key};
use p256::ecdsa::{SigningKey, VerifyingKey};
use tokio::sync::oneshot;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn node_key() -> EcdsaSigner {
    EcdsaSigner::new(&load_signing_key(&data("node_private.pem")).unwrap())
}
fn server_key() -> SigningKey {
    load_signing_key(&data("server_private.pem")).unwrap()
}
fn server_public() -> VerifyingKey {
    load_verifying_key(&data("server_public.pem")).unwrap()
}

const POLICY: &str = r#"
[request_types]
allow = ["sign"]

[sign]
destinations = ["0xabcdef0000000000000000000000000000000001"]
without_amount = "approve"
wait_seconds = 30

[[sign.limits]]
chain = "ETH"
asset = "ETH"
max_per_request = "10"
daily_limit = "25"
wait_above = "5"
"#;

struct Demo {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Demo {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }

    fn read(&self, file: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join(file))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

async fn start_on(listener: tokio::net::TcpListener, policy: Option<&str>, decrypt: bool) -> Demo {
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig {
        signing_key: server_key(),
        node_keys: vec![
            // Another node first: the server tries every configured key.
            *SigningKey::from_slice(&[9; 32]).unwrap().verifying_key(),
            load_verifying_key(&data("node_public.pem")).unwrap(),
        ],
        decrypt_key: decrypt.then(|| load_secret_key(&data("decrypt_private.pem")).unwrap()),
        policy: policy.map(|p| Policy::from_toml_str(p).unwrap()),
        data_dir: dir.path().to_owned(),
    };
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        mpc_callback_demo::run(listener, config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Demo {
        addr,
        dir,
        stop: Some(tx),
        task,
    }
}

async fn start(policy: Option<&str>) -> Demo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_on(listener, policy, false).await
}

fn client_for(servers: &[(SocketAddr, VerifyingKey)], retry_times: u32) -> CallbackClient {
    CallbackClient::new(CallbackConfig {
        servers: servers
            .iter()
            .map(|(a, k)| ServerConfig {
                address: format!("http://{a}"),
                public_key: *k,
            })
            .collect(),
        retry_times,
        sleep: Duration::from_millis(50),
        request_timeout: Duration::from_secs(2),
        max_wait: Duration::from_millis(100),
    })
    .unwrap()
}

fn eth_sign(amount: &str, request_id: &str) -> Request {
    Request::Sign(SignRequest {
        algorithm: SignAlgorithm::Ecdsa,
        sign_type: SignType::Transaction,
        public_key: "02".to_owned() + &"cd".repeat(32),
        path: "m/1/1/60/0".into(),
        message: vec![0x11; 32],
        digest: vec![0x11; 32],
        tx_info: Some(
            TxInfo::from_json(
                format!(
                    r#"{{"chainSymbol":"ETH","assetId":"ETH","to":"0xabcdef0000000000000000000000000000000001","amount":"{amount}","note":"<b>&"}}"#
                )
                .as_bytes(),
            )
            .unwrap(),
        ),
        sino_id: format!("sino-{request_id}"),
        request_id: request_id.into(),
    })
}

fn keygen() -> Request {
    Request::Keygen(KeygenRequest {
        cryptography: Cryptography::EcdsaSecp256k1,
        t: 3,
        n: 3,
        party_ids: vec!["a".into(), "b".into(), "c".into()],
        sino_id: "sino-k".into(),
        request_id: "req-k".into(),
    })
}

#[tokio::test]
async fn approve_everything_without_policy_and_audit() {
    let demo = start(None).await;
    let c = client_for(&[(demo.addr, server_public())], 0);
    let a = c.check(&node_key(), keygen()).await.unwrap();
    c.check(&node_key(), eth_sign("1000000", "r1"))
        .await
        .unwrap();
    let audit = demo.read("audit.jsonl");
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["callback_id"], a.callback_id());
    assert_eq!(audit[0]["decision"], "APPROVE");
    assert_eq!(audit[0]["request_type"], "keygen");
    assert!(audit[0]["reason"].as_str().unwrap().contains("no policy"));
    assert_eq!(audit[1]["request_id"], "r1");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(demo.dir.path().join("audit.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    demo.stop().await;
}

#[tokio::test]
async fn policy_rejects_with_reason() {
    let demo = start(Some(POLICY)).await;
    let c = client_for(&[(demo.addr, server_public())], 3);
    for (req, needle) in [
        (eth_sign("11", "r1"), "max_per_request"),
        (keygen(), "request_type \"keygen\" is not allowed"),
    ] {
        match c.check(&node_key(), req).await {
            Err(CallbackError::Rejected {
                reason: Rejection::Server(reason),
                ..
            }) => assert!(reason.contains(needle), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    let audit = demo.read("audit.jsonl");
    assert_eq!(audit.len(), 2, "rejections are not retried");
    assert!(audit.iter().all(|r| r["decision"] == "REJECT"));
    demo.stop().await;
}

#[tokio::test]
async fn wait_then_approve_after_human_release() {
    let demo = start(Some(POLICY)).await;
    let c = client_for(&[(demo.addr, server_public())], 200);
    let node = node_key();
    let checking = tokio::spawn(async move { c.check(&node, eth_sign("6", "big")).await });

    // The operator looks at what waits and releases it.
    let http = reqwest::Client::new();
    let base = format!("http://{}", demo.addr);
    let callback_id = loop {
        let v: serde_json::Value = http
            .get(format!("{base}/admin/pending"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some((id, p)) = v["pending"].as_object().and_then(|m| m.iter().next()) {
            assert_eq!(p["request_id"], "big");
            break id.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let r = http
        .post(format!("{base}/admin/approve/{callback_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let approved = checking.await.unwrap().unwrap();
    assert_eq!(approved.callback_id(), callback_id);
    let unknown = http
        .post(format!("{base}/admin/approve/{callback_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let audit = demo.read("audit.jsonl");
    let decisions: Vec<&str> = audit
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions.first(), Some(&"WAIT"));
    assert!(decisions.contains(&"RELEASE"));
    assert_eq!(decisions.last(), Some(&"APPROVE"));

    // The 6 counted towards the daily 25: three more of 5 fit (21), a fourth does not.
    let c = client_for(&[(demo.addr, server_public())], 0);
    for i in 0..3 {
        c.check(&node_key(), eth_sign("5", &format!("r{i}")))
            .await
            .unwrap();
    }
    match c.check(&node_key(), eth_sign("5", "r3")).await {
        Err(CallbackError::Rejected {
            reason: Rejection::Server(r),
            ..
        }) => assert!(r.contains("daily_limit"), "{r}"),
        other => panic!("{other:?}"),
    }
    demo.stop().await;
}

#[tokio::test]
async fn server_down_then_up_within_retries() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let c = client_for(&[(port, server_public())], 40);
    let node = node_key();
    let checking = tokio::spawn(async move { c.check(&node, keygen()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!checking.is_finished());
    let listener = tokio::net::TcpListener::bind(port).await.unwrap();
    let demo = start_on(listener, None, false).await;
    checking.await.unwrap().unwrap();
    demo.stop().await;
}

#[tokio::test]
async fn retries_exhausted_when_the_server_refuses_our_signature() {
    // The node signs with a key the server does not know: HTTP 400 every time.
    let demo = start(None).await;
    let c = client_for(&[(demo.addr, server_public())], 2);
    let stranger = EcdsaSigner::new(&SigningKey::from_slice(&[7; 32]).unwrap());
    match c.check(&stranger, keygen()).await {
        Err(CallbackError::Exhausted {
            attempts,
            last_error,
            ..
        }) => {
            assert_eq!(attempts, 3);
            assert!(
                last_error.contains("verify signature failed"),
                "{last_error}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(demo.read("audit.jsonl").is_empty(), "nothing decided");
    demo.stop().await;
}

#[tokio::test]
async fn wrong_server_key_is_a_rejection() {
    let demo = start(None).await;
    let wrong = *SigningKey::from_slice(&[5; 32]).unwrap().verifying_key();
    let c = client_for(&[(demo.addr, wrong)], 5);
    match c.check(&node_key(), keygen()).await {
        Err(CallbackError::Rejected {
            reason: Rejection::Unverified(_),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    demo.stop().await;
}

#[tokio::test]
async fn two_servers_one_rejecting() {
    let open = start(None).await;
    let strict = start(Some(POLICY)).await;
    let c = client_for(
        &[(open.addr, server_public()), (strict.addr, server_public())],
        0,
    );
    match c.check(&node_key(), keygen()).await {
        Err(CallbackError::Rejected { server, .. }) => {
            assert_eq!(server, format!("http://{}", strict.addr))
        }
        other => panic!("{other:?}"),
    }
    let a = c.check(&node_key(), eth_sign("1", "ok")).await.unwrap();
    assert_eq!(a.approved_by().len(), 2);
    open.stop().await;
    strict.stop().await;
}

#[tokio::test]
async fn rawdata_signature_is_decrypted_and_stored() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let demo = start_on(listener, None, true).await;
    let c = client_for(&[(demo.addr, server_public())], 0);
    let mut req = eth_sign("1", "raw");
    if let Request::Sign(s) = &mut req {
        s.sign_type = SignType::RawData;
    }
    let approved = c.check(&node_key(), req).await.unwrap();
    let sig = [0x42u8; 65];
    let encrypt = EncryptConfig {
        public_key: Some(
            mpc_callback::mpc_wire::keys::public_key_from_pem(
                &std::fs::read_to_string(data("encrypt_public.pem")).unwrap(),
            )
            .unwrap(),
        ),
    };
    c.report_rawdata_signature(&node_key(), &approved, &sig, &encrypt)
        .await
        .unwrap();
    let results = demo.read("rawdata-signatures.jsonl");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["signature"], hex::encode(sig));
    assert_eq!(results[0]["decrypted"], true);
    assert_eq!(results[0]["message"], hex::encode([0x11; 32]));
    assert_eq!(results[0]["callback_id"], approved.callback_id());

    // Encrypted to another key: the server answers the reference 501 error; the node retries
    // and gives up.
    let other = p256::SecretKey::from_slice(&[3; 32]).unwrap().public_key();
    let r = c
        .report_rawdata_signature(
            &node_key(),
            &approved,
            &sig,
            &EncryptConfig {
                public_key: Some(other),
            },
        )
        .await;
    match r {
        Err(CallbackError::Exhausted { last_error, .. }) => {
            assert!(last_error.contains("decrypt sig error"), "{last_error}")
        }
        other => panic!("{other:?}"),
    }
    demo.stop().await;
}

#[tokio::test]
async fn unsigned_and_badly_signed_requests_get_400_json() {
    let demo = start(None).await;
    let http = reqwest::Client::new();
    let url = format!("http://{}/check", demo.addr);
    let check = Check::keygen("cb", 2, 3, "ecdsa-secp256k1", vec![], ExtraInfo::default());
    let body = check.to_go_json();
    let good = signature::sign_check(&check, &node_key());
    for (sig, error) in [
        (None, "signature not found"),
        (Some("zz".to_owned()), "malformed signature"),
        (
            Some(node_key().sign_hex(b"other bytes")),
            "verify signature failed",
        ),
    ] {
        let mut r = http.post(&url).body(body.clone());
        if let Some(s) = sig {
            r = r.header("Signature", s);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 400);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v, serde_json::json!({"status": "400", "error": error}));
    }
    let r = http
        .post(&url)
        .header("Signature", &good.signature)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Older nodes: the signature covers the Go form, the body is laid out differently.
    let pretty = serde_json::to_vec_pretty(
        &serde_json::from_slice::<serde_json::Value>(&good.body).unwrap(),
    )
    .unwrap();
    assert_ne!(pretty, good.body);
    let r = http
        .post(&url)
        .header("Signature", &good.signature)
        .body(pretty)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let resp =
        mpc_callback::mpc_wire::callback::Response::from_json(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(
        signature::verify_response(&resp, &check, &server_public()),
        Ok(mpc_callback::mpc_wire::callback::Decision::Approve)
    );
    demo.stop().await;
}
