//! The real `mpc-callback-demo` binary: `serve` (with a policy and `--party` pins), `approve`,
//! `decrypt`, and key files made by the openssl command line as the guide tells users to (when
//! openssl is installed; the checked-in fixtures otherwise).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mpc_callback::mpc_wire::callback::{SignType, TxInfo};
use mpc_callback::mpc_wire::signature::EcdsaSigner;
use mpc_callback::mpc_wire::{ecies, keys};
use mpc_callback::{
    CallbackClient, CallbackConfig, CallbackError, Cryptography, KeygenRequest, Rejection, Request,
    ServerConfig, SignAlgorithm, SignRequest,
};
use mpc_callback_demo::{load_signing_key, load_verifying_key};

const BIN: &str = env!("CARGO_BIN_EXE_mpc-callback-demo");

struct Keys {
    server_private: PathBuf,
    server_public: PathBuf,
    node_private: PathBuf,
    node_public: PathBuf,
    decrypt_private: PathBuf,
    encrypt_public: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Keys made by openssl in `dir`, or the fixtures when openssl is missing.
fn keys(dir: &Path) -> Keys {
    let made = openssl(
        dir,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-out",
            "server.pem",
        ],
    ) && openssl(
        dir,
        &[
            "ec",
            "-in",
            "server.pem",
            "-pubout",
            "-out",
            "server_pub.pem",
        ],
    ) && openssl(
        dir,
        &[
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
            "node.pem",
        ],
    ) && openssl(
        dir,
        &["ec", "-in", "node.pem", "-pubout", "-out", "node_pub.pem"],
    ) && openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "decrypt.pem",
        ],
    ) && openssl(
        dir,
        &[
            "ec",
            "-in",
            "decrypt.pem",
            "-pubout",
            "-out",
            "encrypt_pub.pem",
        ],
    );
    if made {
        let p = |n: &str| dir.join(n);
        return Keys {
            server_private: p("server.pem"),
            server_public: p("server_pub.pem"),
            node_private: p("node.pem"),
            node_public: p("node_pub.pem"),
            decrypt_private: p("decrypt.pem"),
            encrypt_public: p("encrypt_pub.pem"),
        };
    }
    eprintln!("NOTICE: openssl not found; the CLI test uses the checked-in key fixtures");
    let p = |n: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(n)
    };
    Keys {
        server_private: p("server_private.pem"),
        server_public: p("server_public.pem"),
        node_private: p("node_private.pem"),
        node_public: p("node_public.pem"),
        decrypt_private: p("decrypt_private.pem"),
        encrypt_public: p("encrypt_public.pem"),
    }
}

/// A started server, killed on drop.
struct Served {
    child: Child,
    addr: String,
    stderr_first: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(args: &[&str]) -> Served {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(["--address", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (first_tx, first_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut first = String::new();
        let mut r = BufReader::new(stderr);
        let _ = r.read_line(&mut first);
        let _ = first_tx.send(first);
        // Keep draining so the server never blocks on a full pipe.
        let mut sink = String::new();
        while r.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("mpc-callback-demo listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let mut served = Served {
        child,
        addr,
        stderr_first: String::new(),
    };
    if args.iter().all(|a| *a != "--policy") {
        served.stderr_first = first_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
    }
    served
}

const POLICY: &str = r#"
[request_types]
allow = ["sign"]

[sign]
wait_seconds = 30

[[sign.limits]]
chain = "ETH"
asset = "ETH"
max_per_request = "10"
wait_above = "5"
"#;

fn big_sign() -> Request {
    Request::Sign(SignRequest {
        algorithm: SignAlgorithm::Ecdsa,
        sign_type: SignType::Transaction,
        public_key: "02".to_owned() + &"ef".repeat(32),
        path: "m/1/1/60/0".into(),
        message: vec![0x22; 32],
        digest: vec![0x22; 32],
        tx_info: Some(
            TxInfo::from_json(br#"{"chainSymbol":"ETH","assetId":"ETH","to":"0x1","amount":"7"}"#)
                .unwrap(),
        ),
        sino_id: "sino-cli".into(),
        request_id: "req-cli".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_approve_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let data_dir = dir.path().join("data");
    let other_node = dir.path().join("other_node.pem");
    std::fs::write(
        &other_node,
        keys::public_key_pem(
            p256::ecdsa::SigningKey::from_slice(&[3; 32])
                .unwrap()
                .verifying_key(),
        ),
    )
    .unwrap();
    let served = serve(&[
        "--private-key",
        k.server_private.to_str().unwrap(),
        "--node-public-key",
        other_node.to_str().unwrap(),
        "--node-public-key",
        k.node_public.to_str().unwrap(),
        "--decrypt-key",
        k.decrypt_private.to_str().unwrap(),
        "--policy",
        policy.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);

    let client = CallbackClient::new(CallbackConfig {
        servers: vec![ServerConfig {
            address: format!("http://{}", served.addr),
            public_key: load_verifying_key(&k.server_public).unwrap(),
        }],
        retry_times: 300,
        sleep: Duration::from_millis(50),
        request_timeout: Duration::from_secs(2),
        max_wait: Duration::from_millis(100),
    })
    .unwrap();
    let node = EcdsaSigner::new(&load_signing_key(&k.node_private).unwrap());
    let checking = tokio::spawn(async move { client.check(&node, big_sign()).await });

    // Find the waiting callback_id in the audit log, release it with the CLI.
    let callback_id = loop {
        let audit = std::fs::read_to_string(data_dir.join("audit.jsonl")).unwrap_or_default();
        if let Some(line) = audit.lines().next() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["decision"], "WAIT");
            break v["callback_id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let out = Command::new(BIN)
        .args(["approve", &callback_id, "--server", &served.addr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&callback_id));
    let approved = checking.await.unwrap().unwrap();
    assert_eq!(approved.callback_id(), callback_id);

    // Releasing again: nothing pending, non-zero exit.
    let again = Command::new(BIN)
        .args(["approve", &callback_id, "--server", &served.addr])
        .output()
        .unwrap();
    assert!(!again.status.success());

    // decrypt: a result encrypted to the node's [encrypt-signature] key.
    let enc_key =
        keys::public_key_from_pem(&std::fs::read_to_string(&k.encrypt_public).unwrap()).unwrap();
    let ciphertext = ecies::encrypt_hex(&enc_key, b"\x01\x02signature", &mut rand_core::OsRng);
    let out = Command::new(BIN)
        .args([
            "decrypt",
            "--key",
            k.decrypt_private.to_str().unwrap(),
            &ciphertext,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        hex::encode(b"\x01\x02signature")
    );
    let wrong = Command::new(BIN)
        .args([
            "decrypt",
            "--key",
            k.server_private.to_str().unwrap(),
            &ciphertext,
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
}

#[test]
fn no_policy_warns_loudly_and_bad_keys_fail_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let served = serve(&[
        "--private-key",
        k.server_private.to_str().unwrap(),
        "--node-public-key",
        k.node_public.to_str().unwrap(),
        "--data-dir",
        dir.path().join("d").to_str().unwrap(),
    ]);
    assert!(
        served.stderr_first.contains("APPROVES EVERY"),
        "{:?}",
        served.stderr_first
    );
    drop(served);

    // A public key where a private key belongs.
    let out = Command::new(BIN)
        .args(["serve", "--address", "127.0.0.1:0", "--private-key"])
        .arg(&k.server_public)
        .arg("--node-public-key")
        .arg(&k.node_public)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(k.server_public.to_str().unwrap()), "{err}");

    // A broken policy file names the file.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[request_types]\nallow = 1\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--address", "127.0.0.1:0", "--private-key"])
        .arg(&k.server_private)
        .arg("--node-public-key")
        .arg(&k.node_public)
        .arg("--policy")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
}

/// The largest `/check` a node sends for a request the API accepts: the message of half an API
/// body in hex and a `tx_info` of half an API body of `<` (six bytes each once Go-escaped).
fn largest_sign() -> Request {
    let half = mpc_callback::mpc_wire::callback::API_MAX_BODY / 2;
    let tx = format!(r#"{{"note":"{}"}}"#, "<".repeat(half - 16));
    Request::Sign(SignRequest {
        algorithm: SignAlgorithm::Ecdsa,
        sign_type: SignType::Transaction,
        public_key: "02".to_owned() + &"ef".repeat(32),
        path: "m/1/1/60/0".into(),
        message: vec![0x22; half],
        digest: vec![0x22; 32],
        tx_info: Some(TxInfo::from_json(tx.as_bytes()).unwrap()),
        sino_id: "sino-big".into(),
        request_id: "req-big".into(),
    })
}

/// The real server approves the largest message the API accepts (well above the old 1 MiB
/// limit), and drops slow clients: 20 silent connections, 20 half-sent heads and 20 half-sent
/// bodies are all closed within a generous bound while it keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn largest_message_is_accepted_and_slow_clients_are_dropped() {
    use mpc_httpd::attack::{Slow, open, still_open_after};
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let served = serve(&[
        "--private-key",
        k.server_private.to_str().unwrap(),
        "--node-public-key",
        k.node_public.to_str().unwrap(),
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
    ]);
    let addr: std::net::SocketAddr = served.addr.parse().unwrap();
    let slow = tokio::task::spawn_blocking(move || {
        let mut conns = open(addr, 20, Slow::Silent, "/check");
        conns.extend(open(addr, 20, Slow::PartialHead, "/check"));
        conns.extend(open(addr, 20, Slow::PartialBody, "/check"));
        assert_eq!(conns.len(), 60);
        still_open_after(conns, Duration::from_secs(90))
    });
    let client = CallbackClient::new(CallbackConfig {
        servers: vec![ServerConfig {
            address: format!("http://{}", served.addr),
            public_key: load_verifying_key(&k.server_public).unwrap(),
        }],
        retry_times: 0,
        sleep: Duration::from_millis(50),
        request_timeout: Duration::from_secs(60),
        max_wait: Duration::from_millis(100),
    })
    .unwrap();
    let node = EcdsaSigner::new(&load_signing_key(&k.node_private).unwrap());
    let approved = client.check(&node, largest_sign()).await;
    assert!(approved.is_ok(), "{approved:?}");
    assert_eq!(
        slow.await.unwrap(),
        0,
        "slow clients still connected after 90 s"
    );
}

const KEYGEN_POLICY: &str = r#"
[request_types]
allow = ["keygen"]

[[keygen.allow]]
t = 2
n = 3
party_ids = ["a", "b", "c"]
"#;

fn node_id(seed: u8) -> String {
    keys::node_id(
        p256::ecdsa::SigningKey::from_slice(&[seed; 32])
            .unwrap()
            .verifying_key(),
    )
}

/// `serve --party NAME=NODE_ID`: the keygen approval carries node ids in `party_ids`, and the
/// server pins the node id of each party its policy names. It refuses to start with a name it
/// cannot resolve (every keygen would be rejected), a pin that is not a node id, or a name pinned
/// twice; pinned, it approves the committee of those node ids and rejects one with another node
/// in a party's place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_pins_bind_keygen_party_ids_to_node_ids() {
    let dir = tempfile::tempdir().unwrap();
    let k = keys(dir.path());
    let policy = dir.path().join("keygen.toml");
    std::fs::write(&policy, KEYGEN_POLICY).unwrap();
    let base = |extra: &[String]| {
        let mut c = Command::new(BIN);
        c.args(["serve", "--address", "127.0.0.1:0", "--private-key"])
            .arg(&k.server_private)
            .arg("--node-public-key")
            .arg(&k.node_public)
            .arg("--policy")
            .arg(&policy)
            .arg("--data-dir")
            .arg(dir.path().join("refused"))
            .args(extra);
        c.output().unwrap()
    };
    let pin = |p: &str, id: &str| ["--party".to_owned(), format!("{p}={id}")];
    let (a, b, c) = (node_id(1), node_id(2), node_id(3));
    for (extra, needle) in [
        (vec![], "neither a node id nor pinned"),
        (
            [pin("a", &a), pin("b", &b)].concat(),
            "party \"c\" is neither a node id nor pinned",
        ),
        (
            [pin("a", &a), pin("b", "node-b"), pin("c", &c)].concat(),
            "is not a node id",
        ),
        (
            [pin("a", &a), pin("a", &b), pin("c", &c)].concat(),
            "--party a is given twice",
        ),
        (
            [pin("a", &a), pin("b", &a), pin("c", &c)].concat(),
            "named twice",
        ),
        (vec!["--party".into(), "a".into()], "NAME=NODE_ID"),
    ] {
        let out = base(&extra);
        assert!(!out.status.success(), "{extra:?} started");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{extra:?}: {err}");
    }

    let data = dir.path().join("data");
    let args: Vec<String> = [
        vec![
            "--private-key".to_owned(),
            k.server_private.to_str().unwrap().to_owned(),
            "--node-public-key".into(),
            k.node_public.to_str().unwrap().to_owned(),
            "--policy".into(),
            policy.to_str().unwrap().to_owned(),
            "--data-dir".into(),
            data.to_str().unwrap().to_owned(),
        ],
        pin("a", &a).to_vec(),
        pin("b", &b).to_vec(),
        pin("c", &c).to_vec(),
    ]
    .concat();
    let served = serve(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let client = CallbackClient::new(CallbackConfig {
        servers: vec![ServerConfig {
            address: format!("http://{}", served.addr),
            public_key: load_verifying_key(&k.server_public).unwrap(),
        }],
        retry_times: 0,
        sleep: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
        max_wait: Duration::from_millis(100),
    })
    .unwrap();
    let node = EcdsaSigner::new(&load_signing_key(&k.node_private).unwrap());
    let keygen = |party_ids: Vec<String>, request_id: &str| {
        Request::Keygen(KeygenRequest {
            cryptography: Cryptography::EddsaEd25519,
            t: 2,
            n: 3,
            party_ids,
            sino_id: "sino-k".into(),
            request_id: request_id.into(),
        })
    };
    // The pinned committee, in any order.
    client
        .check(&node, keygen(vec![c.clone(), a.clone(), b.clone()], "k-ok"))
        .await
        .unwrap();
    // Another node in b's place, or the old letters.
    for (ids, rid) in [
        (vec![a.clone(), node_id(4), c.clone()], "k-impostor"),
        (vec!["a".into(), "b".into(), "c".into()], "k-letters"),
    ] {
        match client.check(&node, keygen(ids, rid)).await {
            Err(CallbackError::Rejected {
                reason: Rejection::Server(reason),
                ..
            }) => assert!(reason.contains("not in keygen.allow"), "{reason}"),
            other => panic!("{rid}: {other:?}"),
        }
    }
    drop(served);
}
