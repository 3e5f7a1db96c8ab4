//! `scenario::Signer` over every standard job against a stand-in coordinator that signs with
//! plain (non-threshold) keys: BIP32-derived secp256k1 keys (ECDSA r‖s‖v, BIP340, Taproot with
//! the BIP341 tweak) and an ed25519 key. Checks the request shapes the devnet sends, the
//! expected digests, the verifiers and the report entries; and that a wrong signature is caught.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::Uri;
use axum::response::IntoResponse;
use bip32::{ChildNumber, XPrv};
use k256::elliptic_curve::PrimeField as _;
use mpc_api::envelope::Envelope;
use mpc_api::types::{
    self, AddressAlgorithm, AddressEncoding, AddressInfo, GenAddressByPathRequest,
    GenAddressByPathResponse, RawSignAlgorithm, SignAlgorithm, SignMessageRequest,
    SignRawDataRequest, SignRawDataResponse, SignResultRequest, SignResultResponse, SignState,
};
use mpc_chains::SignMessageKind;
use mpc_devnet::api::{ApiClient, PATH_SIGN_TRANSACTION, SignTransactionRequest};
use mpc_devnet::scenario::{self, Signer};

struct Fake {
    root: XPrv,
    ed: ed25519_dalek::SigningKey,
    results: Mutex<HashMap<String, SignResultResponse>>,
    corrupt: bool,
}

impl Fake {
    fn derive(&self, path: &str) -> XPrv {
        let mut k = self.root.clone();
        for i in mpc_devnet::verify::parse_path(path).unwrap() {
            k = k.derive_child(ChildNumber::new(i, false).unwrap()).unwrap();
        }
        k
    }

    fn ecdsa(&self, path: &str, digest: &[u8], v_offset: u8) -> Vec<u8> {
        let k = self.derive(path);
        let (sig, rid) = k.private_key().sign_prehash_recoverable(digest).unwrap();
        let mut out = sig.to_bytes().to_vec();
        out.push(rid.to_byte() + v_offset);
        out
    }

    fn schnorr(&self, path: &str, msg: &[u8], tweak_root: Option<Option<[u8; 32]>>) -> Vec<u8> {
        let k = self.derive(path);
        let mut secret = *k.private_key().as_nonzero_scalar().as_ref();
        if let Some(root) = tweak_root {
            let pk = k.private_key().verifying_key().to_encoded_point(true);
            if pk.as_bytes()[0] == 0x03 {
                secret = -secret;
            }
            let mut pre = pk.as_bytes()[1..].to_vec();
            if let Some(r) = root {
                pre.extend_from_slice(&r);
            }
            let t = mpc_chains::hash::tagged_hash("TapTweak", &[&pre]);
            secret += k256::Scalar::from_repr(t.into()).unwrap();
        }
        let sk = k256::schnorr::SigningKey::from_bytes(&secret.to_bytes()).unwrap();
        sk.sign_raw(msg, &[0u8; 32]).unwrap().to_bytes().to_vec()
    }

    fn finish(&self, request_id: &str, message: &str, mut sig: Vec<u8>) {
        if self.corrupt {
            sig[10] ^= 1;
        }
        self.results.lock().unwrap().insert(
            request_id.into(),
            SignResultResponse {
                request_id: request_id.into(),
                sino_id: format!("sino-{request_id}"),
                message: message.into(),
                signature: hex::encode(sig),
                state: SignState::Done,
                failed_reason: String::new(),
            },
        );
    }
}

fn ok<T: serde::Serialize>(t: T) -> axum::response::Response {
    axum::Json(Envelope::ok("fake", t)).into_response()
}

async fn handle(
    axum::extract::State(f): axum::extract::State<Arc<Fake>>,
    uri: Uri,
    body: Bytes,
) -> axum::response::Response {
    let sino = |id: &str| SignRawDataResponse {
        sino_id: format!("sino-{id}"),
    };
    match uri.path() {
        types::PATH_GEN_ADDRESS_BY_PATH => {
            let r: GenAddressByPathRequest = serde_json::from_slice(&body).unwrap();
            assert_eq!(r.algorithm_type, AddressAlgorithm::Ed25519);
            let pk = f.ed.verifying_key().to_bytes();
            let a = AddressInfo {
                id: "1".into(),
                address: mpc_chains::address::solana_address(&pk).unwrap(),
                hd_path: format!("m/1/1/{}/{}", r.coin_type, r.index),
                encoding: AddressEncoding::Account,
                pubkey: hex::encode(pk),
            };
            ok(GenAddressByPathResponse {
                id: a.id.clone(),
                address: a.address.clone(),
                hd_path: a.hd_path.clone(),
                encoding: a.encoding,
                pubkey: a.pubkey.clone(),
                addresses: vec![a],
            })
        }
        types::PATH_SIGN_RAW_DATA => {
            let r: SignRawDataRequest = serde_json::from_slice(&body).unwrap();
            let data = hex::decode(&r.raw_data).unwrap();
            let sig = match r.algorithm_type {
                RawSignAlgorithm::KeyDefault if r.hd_path.contains("/501/") => {
                    use ed25519_dalek::Signer as _;
                    f.ed.sign(&data).to_bytes().to_vec()
                }
                RawSignAlgorithm::KeyDefault => f.ecdsa(&r.hd_path, &data, 0),
                RawSignAlgorithm::Bip340 => f.schnorr(&r.hd_path, &data, None),
                RawSignAlgorithm::Taproot => {
                    let root = r.tap_script_root_bytes().unwrap();
                    f.schnorr(&r.hd_path, &data, Some(root))
                }
            };
            f.finish(&r.request_id, &r.raw_data, sig);
            ok(sino(&r.request_id))
        }
        types::PATH_SIGN_MESSAGE => {
            let r: SignMessageRequest = serde_json::from_slice(&body).unwrap();
            let kind = match r.sign_algorithm {
                SignAlgorithm::PersonalSign => SignMessageKind::PersonalSign,
                SignAlgorithm::SignTypedDataV4 => SignMessageKind::TypedDataV4,
                other => panic!("{other:?}"),
            };
            let p = mpc_chains::sign_message_payload(kind, &r.message).unwrap();
            let sig = f.ecdsa(&r.hd_path, &p.digest(), 27);
            f.finish(&r.request_id, &r.message, sig);
            ok(types::SignMessageResponse {
                sino_id: format!("sino-{}", r.request_id),
                message_hash: hex::encode(p.digest()),
            })
        }
        PATH_SIGN_TRANSACTION => {
            let r: SignTransactionRequest = serde_json::from_slice(&body).unwrap();
            assert_eq!(r.tx_info["chainSymbol"], "ETH");
            let sig = f.ecdsa(&r.hd_path, &hex::decode(&r.sighash).unwrap(), 0);
            f.finish(&r.request_id, &r.sighash, sig);
            ok(sino(&r.request_id))
        }
        types::PATH_SIGN_RESULT => {
            let r: SignResultRequest = serde_json::from_slice(&body).unwrap();
            let id = r.request_id.unwrap();
            let res = f.results.lock().unwrap().get(&id).cloned().unwrap();
            ok(res)
        }
        other => panic!("unexpected path {other}"),
    }
}

async fn signer(corrupt: bool) -> Signer {
    let f = Arc::new(Fake {
        root: XPrv::new([5u8; 32]).unwrap(),
        ed: ed25519_dalek::SigningKey::from_bytes(&[6u8; 32]),
        results: Mutex::new(HashMap::new()),
        corrupt,
    });
    let root = f.root.public_key().to_bytes().to_vec();
    let cc = f.root.attrs().chain_code.to_vec();
    let app = axum::Router::new()
        .fallback(axum::routing::post(handle))
        .with_state(f);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let key = p256::ecdsa::SigningKey::from_slice(&[3; 32]).unwrap();
    Signer {
        api: ApiClient::new(http, &format!("http://{addr}"), key),
        vault_id: "vault".into(),
        wallet_id: "wallet".into(),
        secp256k1: Some((root, cc)),
        ed25519_keys: Default::default(),
        result_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn every_standard_job_verifies_and_fills_the_report_entry() {
    let mut s = signer(false).await;
    for (i, job) in scenario::standard_jobs().iter().enumerate() {
        let out = s.run(job, &format!("req-{i}")).await.unwrap();
        scenario::require_verified(&out).unwrap_or_else(|e| panic!("{}: {e}", job.label()));
        let e = &out.entry;
        assert_eq!(e.algorithm, job.algorithm());
        assert_eq!(e.sign_type, job.sign_type());
        assert_eq!(e.path, job.path());
        assert!(!e.signature.is_empty());
        assert_eq!(e.address.is_empty(), job.sign_type() != "2");
        assert_eq!(
            e.tap_script_root.is_empty(),
            !matches!(job, scenario::Job::Taproot { root: Some(_), .. })
        );
        let pk_len = hex::decode(&e.public_key).unwrap().len();
        assert_eq!(pk_len, if job.algorithm() == "eddsa" { 32 } else { 33 });
        if job.algorithm() != "eddsa" {
            assert_eq!(hex::decode(&e.digest).unwrap().len(), 32);
        }
    }
}

#[tokio::test]
async fn a_wrong_signature_is_caught() {
    let mut s = signer(true).await;
    for (i, job) in scenario::standard_jobs().iter().enumerate() {
        let out = s.run(job, &format!("bad-{i}")).await.unwrap();
        assert!(
            out.verified.is_err(),
            "{} passed with a corrupted signature",
            job.label()
        );
    }
}
