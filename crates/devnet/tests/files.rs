//! What can be checked without the platform: the files a devnet directory gets (configs parse
//! with the components' own loaders, certificates chain to the dev CA over real TLS, key files
//! load with mpc-api's helpers, modes), their reuse, the report's JSON shape, the multi-call
//! arms of the binary.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use mpc_devnet::report::{ApiInfo, KeyEntry, NodeEntry, Report, SignatureEntry};
use mpc_devnet::{Cluster, Options};

const EXE: &str = env!("CARGO_BIN_EXE_mpc-devnet");

fn opts(dir: &Path) -> Options {
    let mut o = Options::new(dir);
    o.exe = EXE.into();
    o.quiet = true;
    o.test_primes = true;
    o
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn prepared_files_parse_with_the_components_loaders() {
    let tmp = tempfile::tempdir().unwrap();
    let prep = Cluster::prepare(&opts(tmp.path())).unwrap();
    let l = &prep.layout;
    for party in ["a", "b", "c"] {
        let cfg = l.node_config(party);
        let text = std::fs::read_to_string(&cfg).unwrap();
        assert!(text.contains("ca-cert-path = \"../ca.crt\""), "{text}");
        assert!(text.contains("protocol = \"wss\""));
        assert!(text.contains("path = \"/proxy\""));
        // Until mpc-node knows `[mpc-service] ca-cert-path` (node runtime branch), parse the
        // file without that one line, next to the original so relative paths resolve the same.
        let stripped: String = text
            .lines()
            .filter(|l| !l.starts_with("ca-cert-path"))
            .map(|l| format!("{l}\n"))
            .collect();
        let tmp_cfg = l.node_dir(party).join("config.stripped.toml");
        std::fs::write(&tmp_cfg, stripped).unwrap();
        let c = mpc_node::Config::load(&tmp_cfg).unwrap();
        assert_eq!(c.app.party_id, party);
        assert_eq!(c.mpc_service.protocol, "wss");
        assert_eq!(
            c.mpc_service.address,
            format!("127.0.0.1:{}", prep.state.ports.platform)
        );
        assert_eq!(
            c.storage.unseal_server_address,
            format!("127.0.0.1:{}", prep.state.ports.nodes[party])
        );
        assert_eq!(c.storage.db_file_path, l.node_dir(party).join("asset.db"));
        assert_eq!(c.callback.server.len(), usize::from(party == "a"));
        if party == "a" {
            assert_eq!(
                c.callback.server[0].address,
                format!("http://127.0.0.1:{}", prep.state.ports.callback)
            );
        }
    }
    // The policy loads with the demo's parser, and the platform config is the documented TOML.
    let policy = std::fs::read_to_string(l.callback_policy()).unwrap();
    mpc_callback_demo::policy::Policy::from_toml_str(&policy).unwrap();
    let p: toml::Table = std::fs::read_to_string(l.platform_config())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(p["roles"].as_array().unwrap().len(), 2);
    assert_eq!(
        p["server"]["listen"].as_str().unwrap(),
        format!("127.0.0.1:{}", prep.state.ports.platform)
    );
    assert_eq!(
        p["server"]["tls-cert-path"].as_str(),
        Some("../tls/server.crt")
    );
    assert_eq!(p["bus"]["url"].as_str(), Some("inproc:"));
    assert_eq!(p["coordinator"]["database"].as_str(), Some("platform.db"));
    assert_eq!(p["coordinator"]["default-threshold"].as_integer(), Some(3));
    let admin = p["coordinator"]["admin-public-keys"].as_array().unwrap();
    assert_eq!(
        admin[0].as_str().unwrap(),
        mpc_wire::keys::api_key_hex(prep.admin_key.verifying_key())
    );
    assert!(l.platform_dir().join("../tls/server.key").exists());
    assert_eq!(
        std::fs::read_to_string(l.test_primes()).unwrap(),
        mpc_devnet::TEST_PRIMES_JSON
    );
}

#[test]
fn node_config_loads_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let prep = Cluster::prepare(&opts(tmp.path())).unwrap();
    for party in ["a", "b", "c"] {
        mpc_node::Config::load(&prep.layout.node_config(party)).unwrap();
    }
}

#[test]
fn key_files_have_the_sdk_format_and_private_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let prep = Cluster::prepare(&opts(tmp.path())).unwrap();
    let l = &prep.layout;
    for path in [l.admin_key(), l.api_user_key()] {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "not lowercase hex without whitespace: {path:?}"
        );
        mpc_api::auth::load_sdk_private_key_hex(&text).unwrap();
        assert_eq!(mode(&path), 0o600, "{path:?}");
    }
    let api = mpc_api::auth::load_sdk_private_key_hex(
        &std::fs::read_to_string(l.api_user_key()).unwrap(),
    )
    .unwrap();
    assert_eq!(api, prep.api_key);
    assert_eq!(
        std::fs::read_to_string(l.api_user_pub()).unwrap(),
        mpc_wire::keys::api_key_hex(api.verifying_key())
    );
    let cb = mpc_callback_demo::load_signing_key(&l.callback_key()).unwrap();
    let cb_pub = mpc_callback_demo::load_verifying_key(&l.callback_pub()).unwrap();
    assert_eq!(cb.verifying_key(), &cb_pub);
    for p in [l.ca_key(), l.server_key(), l.callback_key()] {
        assert_eq!(mode(&p), 0o600, "{p:?}");
    }
}

#[test]
fn reuse_keeps_ca_keys_and_ports() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Cluster::prepare(&opts(tmp.path())).unwrap();
    let ca = std::fs::read(a.layout.ca_cert()).unwrap();
    let srv = std::fs::read(a.layout.server_cert()).unwrap();
    let b = Cluster::prepare(&opts(tmp.path())).unwrap();
    assert_eq!(std::fs::read(b.layout.ca_cert()).unwrap(), ca);
    assert_eq!(std::fs::read(b.layout.server_cert()).unwrap(), srv);
    assert_eq!(a.api_key, b.api_key);
    assert_eq!(a.admin_key, b.admin_key);
    assert_eq!(a.state.ports, b.state.ports);
    // A lost server certificate is issued again by the same CA.
    std::fs::remove_file(b.layout.server_cert()).unwrap();
    let c = Cluster::prepare(&opts(tmp.path())).unwrap();
    assert_eq!(std::fs::read(c.layout.ca_cert()).unwrap(), ca);
    assert_ne!(std::fs::read(c.layout.server_cert()).unwrap(), srv);
}

/// Serves TLS with the devnet's server certificate and connects with the devnet's HTTPS client
/// (trusting only the dev CA) to 127.0.0.1 and localhost.
#[tokio::test]
async fn server_certificate_chains_to_the_dev_ca() {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let tmp = tempfile::tempdir().unwrap();
    let prep = Cluster::prepare(&opts(tmp.path())).unwrap();
    let l = &prep.layout;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(l.server_cert())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(l.server_key()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let ca = std::fs::read(l.ca_cert()).unwrap();
    let client = mpc_devnet::api::https_client(&ca).unwrap();
    for host in ["127.0.0.1", "localhost"] {
        let r = client
            .get(format!("https://{host}:{port}/healthz"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{host}: {e:?}"));
        assert_eq!(r.text().await.unwrap(), "ok");
    }
    // Another CA is not trusted.
    let other = mpc_devnet::pki::issue(None).unwrap();
    let client = mpc_devnet::api::https_client(other.ca_cert_pem.as_bytes()).unwrap();
    assert!(
        client
            .get(format!("https://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[test]
fn report_json_shape() {
    let r = Report {
        api: ApiInfo {
            url: "https://127.0.0.1:1".into(),
            private_key_path: "/d/api/api-user.key".into(),
            vault_id: "v".into(),
        },
        nodes: vec![NodeEntry {
            party_id: "a".into(),
            node_id: "sino".into(),
            dir: "/d/node-a".into(),
        }],
        keys: vec![KeyEntry {
            curve: "secp256k1".into(),
            threshold: 3,
            parties: vec!["a".into(), "b".into(), "c".into()],
            public_key: "02".into(),
            chain_code: "00".into(),
        }],
        signatures: vec![SignatureEntry {
            algorithm: "taproot".into(),
            sign_type: "3".into(),
            path: "m/1/1/0/0".into(),
            public_key: "03".into(),
            message: "aa".into(),
            digest: "aa".into(),
            tap_script_root: "bb".into(),
            address: String::new(),
            signature: "cc".into(),
            latency_ms: 1.5,
        }],
    };
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "api": {"url": "https://127.0.0.1:1", "private_key_path": "/d/api/api-user.key", "vault_id": "v"},
            "nodes": [{"party_id": "a", "node_id": "sino", "dir": "/d/node-a"}],
            "keys": [{"curve": "secp256k1", "threshold": 3, "parties": ["a", "b", "c"], "public_key": "02", "chain_code": "00"}],
            "signatures": [{"algorithm": "taproot", "sign_type": "3", "path": "m/1/1/0/0", "public_key": "03",
                "message": "aa", "digest": "aa", "tap_script_root": "bb", "address": "", "signature": "cc", "latency_ms": 1.5}]
        })
    );
    // Field order as documented.
    let text = r.to_json();
    let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
    assert!(
        pos("api") < pos("nodes") && pos("nodes") < pos("keys") && pos("keys") < pos("signatures")
    );
}

#[test]
fn standard_jobs_cover_every_algorithm_and_sign_type() {
    let jobs = mpc_devnet::scenario::standard_jobs();
    let kinds: std::collections::BTreeSet<(String, String)> = jobs
        .iter()
        .map(|j| (j.algorithm().to_owned(), j.sign_type().to_owned()))
        .collect();
    for want in [
        ("ecdsa", "1"),
        ("ecdsa", "2"),
        ("ecdsa", "3"),
        ("eddsa", "3"),
        ("bip340", "3"),
        ("taproot", "3"),
    ] {
        assert!(kinds.contains(&(want.0.into(), want.1.into())), "{want:?}");
    }
    // Expected digests: personal_sign and typed data use mpc-chains' payloads (EIP-191 / EIP-712).
    for j in &jobs {
        let pk = hex::decode("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
            .unwrap();
        let (_msg, digest, address) = mpc_devnet::scenario::Signer::expected(j, &pk).unwrap();
        if j.sign_type() == "2" {
            assert_eq!(address, "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
        }
        if j.algorithm() != "eddsa" {
            assert_eq!(digest.len(), 32);
        }
    }
}

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(EXE).args(args).output().unwrap()
}

#[test]
fn multicall_arms_run_the_components() {
    let o = run(&["node", "--help"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("mpc-node"));
    let o = run(&["node", "passwords", "generate", "-t", "2", "-n", "3"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);
    let o = run(&["node", "no-such-command"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["callback-demo", "--help"]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("approve"));
    let o = run(&["callback-demo", "approve", "bad id!"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).starts_with("Error: "));
    let o = run(&["--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("--test-primes"));
}

/// The devnet's policy decides as the e2e tests expect (evaluated with the demo's own engine).
#[test]
fn devnet_policy_decisions() {
    use mpc_callback_demo::policy::{Policy, Verdict};
    use mpc_wire::callback::{Check, ExtraInfo, RequestType, SignType, TxInfo};
    let p = Policy::from_toml_str(&mpc_devnet::render::default_policy_toml()).unwrap();
    let zero = |_: &str| Default::default();
    let abc: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
    for (t, curve) in [
        (3, "ecdsa-secp256k1"),
        (2, "ecdsa-secp256k1"),
        (3, "eddsa-ed25519"),
        (2, "eddsa-ed25519"),
    ] {
        let c = Check::keygen("cb", t, 3, curve, abc.clone(), ExtraInfo::default());
        assert!(
            matches!(p.evaluate(&c, zero, false).verdict, Verdict::Approve(_)),
            "keygen {t} {curve}"
        );
    }
    let sign = |rt: RequestType, st: SignType, tx: Option<serde_json::Value>| {
        let tx = tx.map(|v| TxInfo::from_json(v.to_string().as_bytes()).unwrap());
        let c = Check::sign(
            "cb",
            rt,
            st,
            "02",
            "m/1/1/60/0",
            "00",
            tx,
            ExtraInfo::default(),
        );
        p.evaluate(&c, zero, false).verdict
    };
    for (rt, st) in [
        (RequestType::Sign, SignType::RawData),
        (RequestType::Sign, SignType::Message),
        (RequestType::Bip340SchnorrSign, SignType::RawData),
        (RequestType::TaprootSign, SignType::RawData),
    ] {
        assert!(
            matches!(sign(rt, st, None), Verdict::Approve(_)),
            "{rt:?} {st:?}"
        );
    }
    let tx = |to: &str, amount: &str| {
        Some(
            serde_json::json!({"chainSymbol": "ETH", "assetId": "ETH", "to": to, "amount": amount}),
        )
    };
    let dest = mpc_devnet::render::DEVNET_DESTINATION;
    assert!(matches!(
        sign(RequestType::Sign, SignType::Transaction, tx(dest, "0.01")),
        Verdict::Approve(_)
    ));
    assert!(matches!(
        sign(RequestType::Sign, SignType::Transaction, tx(dest, "6")),
        Verdict::Wait { .. }
    ));
    assert!(matches!(
        sign(RequestType::Sign, SignType::Transaction, tx(dest, "20")),
        Verdict::Reject(_)
    ));
    assert!(matches!(
        sign(
            RequestType::Sign,
            SignType::Transaction,
            tx(mpc_devnet::render::UNLISTED_DESTINATION, "0.01")
        ),
        Verdict::Reject(_)
    ));
    // The standard transaction job is approved as is.
    let job_tx = scenario_tx_info();
    assert!(matches!(
        sign(RequestType::Sign, SignType::Transaction, Some(job_tx)),
        Verdict::Approve(_)
    ));
}

fn scenario_tx_info() -> serde_json::Value {
    mpc_devnet::scenario::standard_jobs()
        .into_iter()
        .find_map(|j| match j {
            mpc_devnet::scenario::Job::Transaction { tx_info, .. } => Some(tx_info),
            _ => None,
        })
        .unwrap()
}

#[test]
fn callback_policy_override_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    let text = "[request_types]\nallow = [\"keygen\"]\n";
    o.callback_policy = Some(text.into());
    let prep = Cluster::prepare(&o).unwrap();
    assert_eq!(
        std::fs::read_to_string(prep.layout.callback_policy()).unwrap(),
        text
    );
}
