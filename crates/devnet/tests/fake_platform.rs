//! The whole devnet flow (`Cluster::start` + `scenario::run` + report + reuse) with real nodes
//! and the callback demo, against an in-process stand-in for the platform: HTTPS with the
//! devnet's server certificate, BIZ-API authentication with mpc-api's `verify_request` (the
//! admin key from `platform.toml`, the API user the devnet registers), admin and WaaS endpoints,
//! plain (non-threshold) keys that sign what the API asks: BIP32 secp256k1 (ECDSA r‖s‖v,
//! BIP340, BIP341-tweaked Taproot) and `hd_wallet::Edwards`-derived ed25519 (RFC 8032 by hand).
//!
//! It checks the devnet's side of the contract until the real platform is merged; the e2e tests
//! (`tests/e2e.rs`) check the platform's side.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use bip32::{ChildNumber, XPrv};
use generic_ec::{Point, Scalar, SecretScalar, curves::Ed25519};
use hd_wallet::HdWallet as _;
use k256::elliptic_curve::PrimeField as _;
use mpc_api::auth::{ApiUser, HeaderValues, InMemoryNonceStore};
use mpc_api::envelope::{ApiCode, Envelope};
use mpc_api::types::admin::{self as adm, Curve, KeyInfo, KeyStatus, NodeInfo};
use mpc_api::types::{self as t, OnlineStatus, SignState};
use mpc_devnet::api::{PATH_SIGN_TRANSACTION, SignTransactionRequest};
use mpc_devnet::{Cluster, Options, scenario};
use sha2::Digest as _;

struct Fake {
    admin_key: String,
    nonces: InMemoryNonceStore,
    users: Mutex<Vec<String>>,
    orgs: Mutex<Vec<String>>,
    bound: Mutex<BTreeMap<String, String>>,
    secp: XPrv,
    ed: hd_wallet::ExtendedKeyPair<Ed25519>,
    results: Mutex<HashMap<String, t::SignResultResponse>>,
    requests: Mutex<u32>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn ok<T: serde::Serialize>(v: T) -> axum::response::Response {
    axum::Json(Envelope::ok("fake", v)).into_response()
}

fn err(code: ApiCode, msg: &str) -> axum::response::Response {
    (
        StatusCode::from_u16(code.http_status()).unwrap(),
        axum::Json(Envelope::<()>::error("fake", code, msg)),
    )
        .into_response()
}

fn indices(path: &str) -> Vec<u32> {
    mpc_devnet::verify::parse_path(path).unwrap()
}

impl Fake {
    fn secp_child(&self, path: &str) -> XPrv {
        let mut k = self.secp.clone();
        for i in indices(path) {
            k = k.derive_child(ChildNumber::new(i, false).unwrap()).unwrap();
        }
        k
    }

    fn ed_child(&self, path: &str) -> hd_wallet::ExtendedKeyPair<Ed25519> {
        hd_wallet::Edwards::derive_child_key_pair_with_path(
            &self.ed,
            indices(path).into_iter().map(|i| {
                hd_wallet::ChildIndex::NonHardened(
                    hd_wallet::NonHardenedIndex::try_from(i).unwrap(),
                )
            }),
        )
    }

    /// RFC 8032 signature with a raw secret scalar (deterministic nonce from the message).
    fn ed_sign(&self, path: &str, msg: &[u8]) -> Vec<u8> {
        let kp = self.ed_child(path);
        let a = kp.secret_key().secret_key.as_ref();
        let pk = kp.public_key().public_key.to_bytes(true).to_vec();
        let r = Scalar::<Ed25519>::from_le_bytes_mod_order(
            sha2::Sha512::new()
                .chain_update(a.to_le_bytes())
                .chain_update(msg)
                .finalize(),
        );
        let big_r = (Point::<Ed25519>::generator() * r).to_bytes(true).to_vec();
        let k = Scalar::<Ed25519>::from_le_bytes_mod_order(
            sha2::Sha512::new()
                .chain_update(&big_r)
                .chain_update(&pk)
                .chain_update(msg)
                .finalize(),
        );
        let s = r + k * a;
        [big_r, s.to_le_bytes().to_vec()].concat()
    }

    fn ecdsa(&self, path: &str, digest: &[u8], v_offset: u8) -> Vec<u8> {
        let (sig, rid) = self
            .secp_child(path)
            .private_key()
            .sign_prehash_recoverable(digest)
            .unwrap();
        let mut out = sig.to_bytes().to_vec();
        out.push(rid.to_byte() + v_offset);
        out
    }

    fn schnorr(&self, path: &str, msg: &[u8], tweak: Option<Option<[u8; 32]>>) -> Vec<u8> {
        let k = self.secp_child(path);
        let mut secret = *k.private_key().as_nonzero_scalar().as_ref();
        if let Some(root) = tweak {
            let pk = k.private_key().verifying_key().to_encoded_point(true);
            if pk.as_bytes()[0] == 0x03 {
                secret = -secret;
            }
            let mut pre = pk.as_bytes()[1..].to_vec();
            pre.extend(root.iter().flatten());
            let tw = mpc_chains::hash::tagged_hash("TapTweak", &[&pre]);
            secret += k256::Scalar::from_repr(tw.into()).unwrap();
        }
        let sk = k256::schnorr::SigningKey::from_bytes(&secret.to_bytes()).unwrap();
        sk.sign_raw(msg, &[0u8; 32]).unwrap().to_bytes().to_vec()
    }

    fn done(&self, request_id: &str, message: &str, sig: Vec<u8>) {
        self.results.lock().unwrap().insert(
            request_id.into(),
            t::SignResultResponse {
                request_id: request_id.into(),
                sino_id: format!("sino-{request_id}"),
                message: message.into(),
                signature: hex::encode(sig),
                state: SignState::Done,
                failed_reason: String::new(),
            },
        );
    }

    fn keys(&self, org: &str) -> Vec<KeyInfo> {
        let secp_pk = self.secp.public_key().to_bytes();
        let ed_pk = self.ed.public_key().public_key.to_bytes(true).to_vec();
        [
            (
                Curve::EcdsaSecp256k1,
                secp_pk.to_vec(),
                self.secp.attrs().chain_code,
            ),
            (Curve::EddsaEd25519, ed_pk, self.ed.public_key().chain_code),
        ]
        .into_iter()
        .map(|(curve, pk, cc)| KeyInfo {
            key_id: format!("{curve:?}"),
            organization_id: org.into(),
            curve,
            threshold: 3,
            parties: vec!["a".into(), "b".into(), "c".into()],
            status: KeyStatus::Generated,
            root_public_key: hex::encode(pk),
            chain_code: hex::encode(cc),
            xpub: None,
            failed_reason: String::new(),
            created_at: 0,
        })
        .collect()
    }
}

async fn handle(
    axum::extract::State(f): axum::extract::State<Arc<Fake>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let path = uri.path().to_owned();
    if path == "/healthz" {
        return "ok".into_response();
    }
    *f.requests.lock().unwrap() += 1;
    let values = HeaderValues::from_lookup(|n| headers.get(n).map(|v| v.as_bytes()));
    let users = f.users.lock().unwrap().clone();
    let caller = mpc_api::auth::verify_request(values, &path, &body, now_ms(), &f.nonces, |k| {
        let org = if k == f.admin_key {
            "admin"
        } else if users.iter().any(|u| u == k) {
            "org-1"
        } else {
            return None;
        };
        Some(ApiUser {
            organization_id: org.into(),
            user_id: "u".into(),
            verifying_key: mpc_wire::keys::verifying_key_from_api_key_hex(k).ok()?,
        })
    });
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return err(e.code(), &e.to_string()),
    };
    let is_admin = caller.organization_id() == "admin";
    if path.starts_with("/v1/admin/") != is_admin {
        return err(ApiCode::Forbidden, "wrong caller for this route");
    }
    let node = |party: &str, id: &str| NodeInfo {
        node_id: id.into(),
        party_id: party.into(),
        organization_id: "org-1".into(),
        online_status: OnlineStatus::Online,
        last_seen_at: None,
        key_share_status: KeyStatus::Generated,
    };
    match path.as_str() {
        adm::PATH_CREATE_ORGANIZATION => {
            let r: adm::CreateOrganizationRequest = serde_json::from_slice(&body).unwrap();
            f.orgs.lock().unwrap().push("org-1".into());
            ok(adm::Organization {
                organization_id: "org-1".into(),
                name: r.name,
                vault_id: "vault-1".into(),
                created_at: 0,
            })
        }
        adm::PATH_CREATE_API_USER => {
            let r: adm::CreateApiUserRequest = serde_json::from_slice(&body).unwrap();
            f.users.lock().unwrap().push(r.api_key.clone());
            ok(adm::ApiUserInfo {
                user_id: "user-1".into(),
                organization_id: r.organization_id,
                name: r.name,
                api_key: r.api_key,
                created_at: 0,
            })
        }
        adm::PATH_BIND_NODE => {
            let r: adm::BindNodeRequest = serde_json::from_slice(&body).unwrap();
            mpc_wire::keys::verifying_key_from_node_id(&r.node_id).unwrap();
            f.bound
                .lock()
                .unwrap()
                .insert(r.party_id.clone(), r.node_id.clone());
            ok(node(&r.party_id, &r.node_id))
        }
        adm::PATH_LIST_NODES => {
            let r: adm::ListNodesRequest = serde_json::from_slice(&body).unwrap();
            if !f.orgs.lock().unwrap().contains(&r.organization_id) {
                return err(ApiCode::NotFound, "no such organization");
            }
            let list: Vec<NodeInfo> = f
                .bound
                .lock()
                .unwrap()
                .iter()
                .map(|(p, id)| node(p, id))
                .collect();
            ok(list)
        }
        adm::PATH_LIST_KEYS => {
            let r: adm::ListKeysRequest = serde_json::from_slice(&body).unwrap();
            if f.bound.lock().unwrap().len() < 3 {
                return ok(Vec::<KeyInfo>::new());
            }
            ok(f.keys(&r.organization_id))
        }
        t::PATH_CREATE_WALLETS => {
            let r: t::CreateWalletsRequest = serde_json::from_slice(&body).unwrap();
            ok(vec![t::WalletInfoResult {
                wallet_id: "wallet-1".into(),
                wallet_name: r.wallet_infos[0].wallet_name.clone(),
                advanced_enabled: t::Switch::On,
            }])
        }
        t::PATH_GEN_ADDRESS_BY_PATH => {
            let r: t::GenAddressByPathRequest = serde_json::from_slice(&body).unwrap();
            let hd_path = format!("m/1/1/{}/{}", r.coin_type, r.index);
            let (address, pubkey, encoding) = match r.algorithm_type {
                t::AddressAlgorithm::Secp256k1 => {
                    let pk = self_pk(&f.secp_child(&hd_path));
                    if r.coin_type == 60 {
                        (
                            mpc_chains::address::evm_address(&pk).unwrap(),
                            pk,
                            t::AddressEncoding::Account,
                        )
                    } else {
                        let a = mpc_chains::address::p2wpkh_address(
                            &pk,
                            mpc_chains::address::Network::Mainnet,
                        )
                        .unwrap();
                        (a, pk, t::AddressEncoding::SegwitNative)
                    }
                }
                t::AddressAlgorithm::Ed25519 => {
                    let pk = f
                        .ed_child(&hd_path)
                        .public_key()
                        .public_key
                        .to_bytes(true)
                        .to_vec();
                    (
                        mpc_chains::address::solana_address(&pk).unwrap(),
                        pk,
                        t::AddressEncoding::Account,
                    )
                }
            };
            ok(t::AddressInfo {
                id: "1".into(),
                address,
                hd_path,
                encoding,
                pubkey: hex::encode(pubkey),
            })
        }
        t::PATH_SIGN_RAW_DATA => {
            let r: t::SignRawDataRequest = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                (r.vault_id.as_str(), r.wallet_id.as_str()),
                ("vault-1", "wallet-1")
            );
            let data = hex::decode(&r.raw_data).unwrap();
            let sig = match r.algorithm_type {
                t::RawSignAlgorithm::KeyDefault if r.hd_path.contains("/501/") => {
                    f.ed_sign(&r.hd_path, &data)
                }
                t::RawSignAlgorithm::KeyDefault => f.ecdsa(&r.hd_path, &data, 0),
                t::RawSignAlgorithm::Bip340 => f.schnorr(&r.hd_path, &data, None),
                t::RawSignAlgorithm::Taproot => {
                    f.schnorr(&r.hd_path, &data, Some(r.tap_script_root_bytes().unwrap()))
                }
            };
            f.done(&r.request_id, &r.raw_data, sig);
            ok(t::SignRawDataResponse {
                sino_id: format!("sino-{}", r.request_id),
            })
        }
        t::PATH_SIGN_MESSAGE => {
            let r: t::SignMessageRequest = serde_json::from_slice(&body).unwrap();
            let kind = match r.sign_algorithm {
                t::SignAlgorithm::PersonalSign => mpc_chains::SignMessageKind::PersonalSign,
                _ => mpc_chains::SignMessageKind::TypedDataV4,
            };
            let p = mpc_chains::sign_message_payload(kind, &r.message).unwrap();
            f.done(
                &r.request_id,
                &r.message,
                f.ecdsa(&r.hd_path, &p.digest(), 27),
            );
            ok(t::SignMessageResponse {
                sino_id: format!("sino-{}", r.request_id),
                message_hash: hex::encode(p.digest()),
            })
        }
        PATH_SIGN_TRANSACTION => {
            let r: SignTransactionRequest = serde_json::from_slice(&body).unwrap();
            let sig = f.ecdsa(&r.hd_path, &hex::decode(&r.sighash).unwrap(), 0);
            f.done(&r.request_id, &r.sighash, sig);
            ok(t::SignRawDataResponse {
                sino_id: format!("sino-{}", r.request_id),
            })
        }
        t::PATH_SIGN_RESULT => {
            let r: t::SignResultRequest = serde_json::from_slice(&body).unwrap();
            match f
                .results
                .lock()
                .unwrap()
                .get(&r.request_id.unwrap_or_default())
            {
                Some(res) => ok(res.clone()),
                None => err(ApiCode::NotFound, "no such request"),
            }
        }
        _ => err(ApiCode::NotFound, "no such route"),
    }
}

fn self_pk(k: &XPrv) -> Vec<u8> {
    k.public_key().to_bytes().to_vec()
}

/// Serves `f` over TLS with the devnet's server certificate on 127.0.0.1:`port`.
async fn serve_tls(f: Arc<Fake>, layout: &mpc_devnet::layout::Layout, port: u16) {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(layout.server_cert())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(layout.server_key()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let app = axum::Router::new().fallback(handle).with_state(f);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
            });
        }
    });
}

fn fake(admin_key: String) -> Arc<Fake> {
    let mut ed_sk = Scalar::<Ed25519>::from_be_bytes_mod_order([0x31u8; 32]);
    Arc::new(Fake {
        admin_key,
        nonces: InMemoryNonceStore::new(),
        users: Mutex::new(Vec::new()),
        orgs: Mutex::new(Vec::new()),
        bound: Mutex::new(BTreeMap::new()),
        secp: XPrv::new([0x42u8; 32]).unwrap(),
        ed: hd_wallet::ExtendedKeyPair::from(hd_wallet::ExtendedSecretKey {
            secret_key: SecretScalar::new(&mut ed_sk),
            chain_code: [0x17; 32],
        }),
        results: Mutex::new(HashMap::new()),
        requests: Mutex::new(0),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn devnet_flow_against_a_stand_in_platform() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = Options::new(tmp.path());
    o.exe = env!("CARGO_BIN_EXE_mpc-devnet").into();
    o.fast_kdf = true;
    o.test_primes = true;
    o.external_platform = true;
    // TODO(node runtime integration): drop once mpc-node parses [mpc-service] ca-cert-path.
    o.node_ca_cert = false;
    o.keys_timeout = Duration::from_secs(30);
    o.sign_timeout_secs = 10;
    let prep = Cluster::prepare(&o).unwrap();
    let f = fake(mpc_wire::keys::api_key_hex(prep.admin_key.verifying_key()));
    serve_tls(f.clone(), &prep.layout, prep.state.ports.platform).await;

    let mut cluster = Cluster::start(o.clone()).await.unwrap();
    assert_eq!(f.bound.lock().unwrap().len(), 3);
    let (report, all_ok) = scenario::run(&mut cluster).await.unwrap();
    assert!(all_ok, "{}", report.to_json());
    assert_eq!(report.signatures.len(), scenario::standard_jobs().len());
    assert_eq!(report.api.url, cluster.api_url());
    assert_eq!(report.api.vault_id, "vault-1");
    assert_eq!(
        report.api.private_key_path,
        cluster.layout().api_user_key().display().to_string()
    );
    let ids = cluster.node_ids();
    assert_eq!(report.nodes.len(), 3);
    for n in &report.nodes {
        assert_eq!(ids[&n.party_id], n.node_id);
        assert!(std::path::Path::new(&n.dir).join("config.toml").exists());
    }
    assert_eq!(report.keys.len(), 2);
    assert_eq!(report.keys[0].curve, "secp256k1");
    assert_eq!(report.keys[1].curve, "ed25519");
    let personal = report
        .signatures
        .iter()
        .find(|s| s.sign_type == "2")
        .unwrap();
    assert!(personal.address.starts_with("0x"));
    scenario::write_report(&report, &cluster.layout().report()).unwrap();
    drop(cluster);

    // Second start on the same directory: organization, API user, bindings and wallet reused.
    let before = *f.requests.lock().unwrap();
    let mut cluster = Cluster::start(o).await.unwrap();
    assert_eq!(f.orgs.lock().unwrap().len(), 1);
    assert_eq!(f.users.lock().unwrap().len(), 1);
    assert_eq!(cluster.state().wallet_id.as_deref(), Some("wallet-1"));
    let (_, all_ok) = scenario::run(&mut cluster).await.unwrap();
    assert!(all_ok);
    assert!(*f.requests.lock().unwrap() > before);
}
