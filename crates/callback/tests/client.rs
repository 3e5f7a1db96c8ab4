//! The client against a scripted HTTP server on loopback: every misbehaviour a callback server
//! (or something between it and the node) can show. The real reference server is exercised in
//! `crates/callback-demo/tests`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use mpc_callback::mpc_wire::callback::{Action, Check, ResponseData, SignType, TxInfo};
use mpc_callback::mpc_wire::signature::{
    self, EcdsaSigner, EchoField, ResponseError, SignatureError,
};
use mpc_callback::mpc_wire::{ecies, p256};
use mpc_callback::{
    ApprovedRequest, CallbackClient, CallbackConfig, CallbackError, Cryptography, EncryptConfig,
    KeygenRequest, Rejection, Request, ServerConfig, SignAlgorithm, SignParams, SignRequest,
};
use p256::ecdsa::SigningKey;

const SLEEP: Duration = Duration::from_millis(50);

fn key(b: u8) -> SigningKey {
    SigningKey::from_slice(&[b; 32]).unwrap()
}

fn node_key() -> EcdsaSigner {
    EcdsaSigner::new(&key(1))
}

/// What the scripted server answers to the `attempt`-th request (0-based) on a path.
struct Reply {
    status: u16,
    body: Vec<u8>,
    delay: Duration,
}

type Script = dyn Fn(&str, usize, &Check) -> Reply + Send + Sync;

struct Scripted {
    script: Box<Script>,
    received: Mutex<Vec<(String, Check)>>,
}

async fn handle(
    State(s): State<Arc<Scripted>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let sig = headers
        .get("Signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Every request must be signed by the node over exactly the bytes sent.
    signature::verify_hex(node_key().verifying_key(), &body, sig).expect("node signature");
    let check = Check::from_json(&body).unwrap();
    assert_eq!(check.to_go_json(), body.to_vec(), "body is in Go form");
    let path = uri.path().to_owned();
    let attempt = {
        let mut r = s.received.lock().unwrap();
        let n = r.iter().filter(|(p, _)| *p == path).count();
        r.push((path.clone(), check.clone()));
        n
    };
    let reply = (s.script)(&path, attempt, &check);
    tokio::time::sleep(reply.delay).await;
    (StatusCode::from_u16(reply.status).unwrap(), reply.body)
}

async fn serve(script: Box<Script>) -> (SocketAddr, Arc<Scripted>) {
    let state = Arc::new(Scripted {
        script,
        received: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/check", post(handle))
        .route("/rawdata_signature", post(handle))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, state)
}

fn signed(check: &Check, action: Action, wait: &str, error: &str, server: &EcdsaSigner) -> Reply {
    let mut data = ResponseData::for_request(check, action);
    data.wait_time = wait.to_owned();
    ok(signature::sign_response(data, error, server).to_go_json())
}

fn ok(body: Vec<u8>) -> Reply {
    Reply {
        status: 200,
        body,
        delay: Duration::ZERO,
    }
}

fn status(code: u16, body: &str) -> Reply {
    Reply {
        status: code,
        body: body.as_bytes().to_vec(),
        delay: Duration::ZERO,
    }
}

fn client(servers: &[(SocketAddr, &SigningKey)], retry_times: u32) -> CallbackClient {
    CallbackClient::new(CallbackConfig {
        servers: servers
            .iter()
            .map(|(addr, k)| ServerConfig {
                address: format!("http://{addr}"),
                public_key: *k.verifying_key(),
            })
            .collect(),
        retry_times,
        sleep: SLEEP,
        request_timeout: Duration::from_millis(500),
        max_wait: Duration::from_millis(300),
    })
    .unwrap()
}

fn sign_request(sign_type: SignType) -> SignRequest {
    SignRequest {
        algorithm: SignAlgorithm::Ecdsa,
        sign_type,
        public_key: "02".to_owned() + &"ab".repeat(32),
        path: "m/1/1/60/0".into(),
        message: b"hello".to_vec(),
        digest: vec![7; 32],
        tx_info: Some(
            TxInfo::from_json(
                br#"{"chainSymbol":"ETH","assetId":"ETH","to":"0xabc","amount":"1.5"}"#,
            )
            .unwrap(),
        ),
        sino_id: "sino-1".into(),
        request_id: "req-1".into(),
    }
}

fn keygen_request() -> Request {
    Request::Keygen(KeygenRequest {
        cryptography: Cryptography::EcdsaSecp256k1,
        t: 3,
        n: 3,
        party_ids: vec!["a".into(), "b".into(), "c".into()],
        sino_id: "sino-k".into(),
        request_id: "req-k".into(),
    })
}

fn rejected(r: Result<ApprovedRequest, CallbackError>) -> Rejection {
    match r {
        Err(CallbackError::Rejected { reason, .. }) => reason,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn approve_binds_the_exact_request() {
    let server = key(2);
    let sk = EcdsaSigner::new(&server);
    let (addr, state) = serve(Box::new(move |_, _, c| {
        signed(c, Action::Approve, "", "", &sk)
    }))
    .await;
    let req = sign_request(SignType::Transaction);
    let approved = client(&[(addr, &server)], 0)
        .check(&node_key(), Request::Sign(req.clone()))
        .await
        .unwrap();
    assert!(!approved.without_callback());
    assert_eq!(approved.approved_by(), [format!("http://{addr}")]);
    let received = state.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let (path, check) = &received[0];
    assert_eq!(path, "/check");
    assert_eq!(check.callback_id, approved.callback_id());
    assert_eq!(check.request_type, "sign");
    assert_eq!(check.request_detail.message, hex::encode(b"hello"));
    assert_eq!(check.extra_info.request_id, "req-1");
    let params = SignParams {
        algorithm: SignAlgorithm::Ecdsa,
        sign_type: SignType::Transaction,
        message_method: None,
        tap_script_root: None,
        public_key: &req.public_key,
        path: "m/1/1/60/0",
        digest: &[7; 32],
        sino_id: "sino-1",
        request_id: "req-1",
    };
    assert_eq!(approved.authorizes_sign(params).unwrap(), &req);
    assert!(
        approved
            .authorizes_sign(SignParams {
                path: "m/1/1/60/1",
                ..params
            })
            .is_err()
    );
}

#[tokio::test]
async fn action_is_case_insensitive_and_keygen_works() {
    let server = key(2);
    let sk = EcdsaSigner::new(&server);
    let (addr, _) = serve(Box::new(move |_, _, c| {
        let mut data = ResponseData::for_request(c, Action::Approve);
        data.action = "Approve".into();
        ok(signature::sign_response(data, "", &sk).to_go_json())
    }))
    .await;
    let approved = client(&[(addr, &server)], 0)
        .check(&node_key(), keygen_request())
        .await
        .unwrap();
    assert!(matches!(approved.request(), Request::Keygen(_)));
}

#[tokio::test]
async fn reject_carries_the_reason_and_is_not_retried() {
    let server = key(2);
    let sk = EcdsaSigner::new(&server);
    let (addr, state) = serve(Box::new(move |_, _, c| {
        signed(c, Action::Reject, "", "amount above limit", &sk)
    }))
    .await;
    let r = client(&[(addr, &server)], 5)
        .check(&node_key(), keygen_request())
        .await;
    assert_eq!(rejected(r), Rejection::Server("amount above limit".into()));
    assert_eq!(state.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn wait_then_approve_reuses_the_callback_id() {
    let server = key(2);
    let sk = EcdsaSigner::new(&server);
    let (addr, state) = serve(Box::new(move |_, n, c| match n {
        0 => signed(c, Action::Wait, "0", "", &sk),
        1 => signed(c, Action::Wait, "", "", &sk), // no wait_time: sleep-seconds
        _ => signed(c, Action::Approve, "", "", &sk),
    }))
    .await;
    let start = Instant::now();
    let approved = client(&[(addr, &server)], 3)
        .check(&node_key(), keygen_request())
        .await
        .unwrap();
    assert!(start.elapsed() >= SLEEP);
    let received = state.received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    assert!(
        received
            .iter()
            .all(|(_, c)| c.callback_id == approved.callback_id())
    );
}

#[tokio::test]
async fn wait_time_is_capped_by_max_wait() {
    let server = key(2);
    let sk = EcdsaSigner::new(&server);
    let (addr, _) = serve(Box::new(move |_, n, c| match n {
        0 => signed(c, Action::Wait, "86400", "", &sk),
        _ => signed(c, Action::Approve, "", "", &sk),
    }))
    .await;
    let start = Instant::now();
    client(&[(addr, &server)], 1)
        .check(&node_key(), keygen_request())
        .await
        .unwrap();
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5));
}

#[tokio::test]
async fn endless_wait_exhausts_the_retries() {
    let server = key(2);
    let sk = EcdsaSigner::new(&server);
    let (addr, state) = serve(Box::new(move |_, _, c| {
        signed(c, Action::Wait, "0", "", &sk)
    }))
    .await;
    match client(&[(addr, &server)], 2)
        .check(&node_key(), keygen_request())
        .await
    {
        Err(CallbackError::Exhausted {
            attempts,
            last_error,
            ..
        }) => {
            assert_eq!(attempts, 3);
            assert!(last_error.contains("WAIT"), "{last_error}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state.received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn errors_are_retried_until_an_answer() {
    let server = key(2);
    let sk = EcdsaSigner::new(&server);
    // 500, then 400 with the reference server's error JSON, then garbage, then a status "1"
    // server error, then a slow answer (timeout), then approval.
    let (addr, state) = serve(Box::new(move |_, n, c| match n {
        0 => status(500, "boom"),
        1 => status(400, r#"{"status":"400","error":"verify signature failed"}"#),
        2 => ok(b"not json".to_vec()),
        3 => ok(br#"{"status":"1","error":"db down"}"#.to_vec()),
        4 => Reply {
            delay: Duration::from_secs(2),
            ..signed(c, Action::Approve, "", "", &sk)
        },
        _ => signed(c, Action::Approve, "", "", &sk),
    }))
    .await;
    client(&[(addr, &server)], 5)
        .check(&node_key(), keygen_request())
        .await
        .unwrap();
    assert_eq!(state.received.lock().unwrap().len(), 6);
}

#[tokio::test]
async fn retries_exhausted_reports_the_last_error() {
    let (addr, state) = serve(Box::new(|_, _, _| status(503, "maintenance"))).await;
    match client(&[(addr, &key(2))], 2)
        .check(&node_key(), keygen_request())
        .await
    {
        Err(CallbackError::Exhausted {
            server,
            attempts,
            last_error,
        }) => {
            assert_eq!(server, format!("http://{addr}"));
            assert_eq!(attempts, 3);
            assert!(last_error.contains("503") && last_error.contains("maintenance"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state.received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn server_down_exhausts_with_connection_error() {
    // Bind and drop: nothing listens there any more.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    match client(&[(addr, &key(2))], 1)
        .check(&node_key(), keygen_request())
        .await
    {
        Err(CallbackError::Exhausted {
            attempts,
            last_error,
            ..
        }) => {
            assert_eq!(attempts, 2);
            assert!(last_error.contains("connection"), "{last_error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tampered_or_foreign_responses_are_rejections() {
    let server = key(2);
    let sk = EcdsaSigner::new(&server);
    let (addr, state) = serve(Box::new(move |_, n, c| match n {
        // Signed by another key.
        0 => signed(c, Action::Approve, "", "", &EcdsaSigner::new(&key(9))),
        // Signed, then the action changed.
        1 => {
            let mut r = signature::sign_response(
                ResponseData::for_request(c, Action::Reject),
                "",
                &sk,
            );
            if let Some(d) = r.data.as_mut() {
                d.action = "APPROVE".into();
            }
            ok(r.to_go_json())
        }
        // Correctly signed, but for another callback_id.
        2 => {
            let mut other = c.clone();
            other.callback_id = "someone-else".into();
            signed(&other, Action::Approve, "", "", &sk)
        }
        // Unsigned approval.
        3 => ok(format!(
            r#"{{"status":"0","data":{{"callback_id":"{}","sino_id":"sino-k","request_id":"req-k","action":"APPROVE"}}}}"#,
            c.callback_id
        )
        .into_bytes()),
        // Unknown action, correctly signed.
        _ => {
            let mut d = ResponseData::for_request(c, Action::Approve);
            d.action = "ACCEPT".into();
            ok(signature::sign_response(d, "", &sk).to_go_json())
        }
    }))
    .await;
    let c = client(&[(addr, &server)], 5);
    let expect: [fn(&ResponseError) -> bool; 5] = [
        |e| matches!(e, ResponseError::Signature(SignatureError::Invalid)),
        |e| matches!(e, ResponseError::Signature(SignatureError::Invalid)),
        |e| {
            matches!(
                e,
                ResponseError::EchoMismatch {
                    field: EchoField::CallbackId,
                    ..
                }
            )
        },
        |e| matches!(e, ResponseError::Signature(SignatureError::Missing)),
        |e| matches!(e, ResponseError::UnknownAction(_)),
    ];
    for (i, check) in expect.iter().enumerate() {
        match rejected(c.check(&node_key(), keygen_request()).await) {
            Rejection::Unverified(e) => assert!(check(&e), "case {i}: {e:?}"),
            other => panic!("case {i}: {other:?}"),
        }
    }
    // Each was a single attempt: rejections are not retried.
    assert_eq!(state.received.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn two_servers_all_must_approve() {
    let (k1, k2) = (key(2), key(3));
    let (s1, s2) = (EcdsaSigner::new(&k1), EcdsaSigner::new(&k2));
    let (a1, st1) = serve(Box::new(move |_, _, c| {
        signed(c, Action::Approve, "", "", &s1)
    }))
    .await;
    let (a2, st2) = serve(Box::new(move |_, _, c| {
        signed(c, Action::Reject, "", "not on my watch", &s2)
    }))
    .await;
    let r = client(&[(a1, &k1), (a2, &k2)], 0)
        .check(&node_key(), keygen_request())
        .await;
    match r {
        Err(CallbackError::Rejected { server, reason }) => {
            assert_eq!(server, format!("http://{a2}"));
            assert_eq!(reason, Rejection::Server("not on my watch".into()));
        }
        other => panic!("{other:?}"),
    }
    // Both saw the same callback_id.
    let id1 = st1.received.lock().unwrap()[0].1.callback_id.clone();
    let id2 = st2.received.lock().unwrap()[0].1.callback_id.clone();
    assert_eq!(id1, id2);

    // Keys swapped in the config: the first server's approval does not verify.
    let r = client(&[(a1, &k2)], 0)
        .check(&node_key(), keygen_request())
        .await;
    assert!(matches!(rejected(r), Rejection::Unverified(_)));
}

#[tokio::test]
async fn no_server_means_no_callback() {
    let c = client(&[], 0);
    assert!(!c.is_enabled());
    let approved = c.check(&node_key(), keygen_request()).await.unwrap();
    assert!(approved.without_callback());
    assert_eq!(approved.callback_id(), "");
}

#[tokio::test]
async fn rawdata_signature_reports_plain_and_encrypted() {
    let server = key(2);
    let decrypt = p256::SecretKey::from_slice(&[4; 32]).unwrap();
    let sk = EcdsaSigner::new(&server);
    let (addr, state) = serve(Box::new(move |path, n, c| match (path, n) {
        ("/check", _) => signed(c, Action::Approve, "", "", &sk),
        // First report: old servers' bare ack. Second: a 500 then a signed ack.
        ("/rawdata_signature", 0) => ok(br#"{"status":"0"}"#.to_vec()),
        ("/rawdata_signature", 1) => status(500, "later"),
        _ => signed(c, Action::Approve, "", "", &sk),
    }))
    .await;
    let c = client(&[(addr, &server)], 2);
    let approved = c
        .check(&node_key(), Request::Sign(sign_request(SignType::RawData)))
        .await
        .unwrap();
    let sig = [0x5a; 64];
    c.report_rawdata_signature(&node_key(), &approved, &sig, &EncryptConfig::default())
        .await
        .unwrap();
    let enc = EncryptConfig {
        public_key: Some(decrypt.public_key()),
    };
    c.report_rawdata_signature(&node_key(), &approved, &sig, &enc)
        .await
        .unwrap();

    let received = state.received.lock().unwrap().clone();
    let reports: Vec<&Check> = received
        .iter()
        .filter(|(p, _)| p == "/rawdata_signature")
        .map(|(_, c)| c)
        .collect();
    assert_eq!(reports.len(), 3);
    let plain = reports[0];
    assert_eq!(plain.callback_id, approved.callback_id());
    assert_eq!(plain.request_type, "");
    assert_eq!(plain.request_detail.message, hex::encode(b"hello"));
    assert_eq!(plain.request_detail.signature, hex::encode(sig));
    assert_eq!(plain.extra_info.sino_id, "sino-1");
    assert_eq!(plain.extra_info.request_id, "req-1");
    let encrypted = &reports[2].request_detail.signature;
    assert_ne!(encrypted, &hex::encode(sig));
    assert_eq!(
        ecies::decrypt_hex(&decrypt, encrypted).unwrap().as_slice(),
        &sig
    );
}

#[tokio::test]
async fn rawdata_signature_only_for_types_2_and_3() {
    let server = key(2);
    let sk = EcdsaSigner::new(&server);
    let (addr, _) = serve(Box::new(move |_, _, c| {
        signed(c, Action::Approve, "", "", &sk)
    }))
    .await;
    let c = client(&[(addr, &server)], 0);
    for (req, reportable) in [
        (Request::Sign(sign_request(SignType::Transaction)), false),
        (keygen_request(), false),
        (Request::Sign(sign_request(SignType::Message)), true),
    ] {
        let approved = c.check(&node_key(), req).await.unwrap();
        let r = c
            .report_rawdata_signature(&node_key(), &approved, &[1, 2], &EncryptConfig::default())
            .await;
        assert_eq!(r.is_ok(), reportable, "{r:?}");
        if !reportable {
            assert!(matches!(r, Err(CallbackError::NotReportable)));
        }
    }
}

#[tokio::test]
async fn forged_rawdata_ack_is_refused() {
    let server = key(2);
    let sk = EcdsaSigner::new(&server);
    let (addr, _) = serve(Box::new(move |path, _, c| match path {
        "/check" => signed(c, Action::Approve, "", "", &sk),
        _ => signed(c, Action::Approve, "", "", &EcdsaSigner::new(&key(8))),
    }))
    .await;
    let c = client(&[(addr, &server)], 3);
    let approved = c
        .check(&node_key(), Request::Sign(sign_request(SignType::Message)))
        .await
        .unwrap();
    let r = c
        .report_rawdata_signature(&node_key(), &approved, &[1], &EncryptConfig::default())
        .await;
    assert!(matches!(
        r,
        Err(CallbackError::Rejected {
            reason: Rejection::Unverified(_),
            ..
        })
    ));
}

#[test]
fn bad_addresses_are_refused_at_construction() {
    for address in ["localhost:9090", "ftp://x", ""] {
        let r = CallbackClient::new(CallbackConfig {
            servers: vec![ServerConfig {
                address: address.into(),
                public_key: *key(2).verifying_key(),
            }],
            retry_times: 0,
            sleep: SLEEP,
            request_timeout: SLEEP,
            max_wait: SLEEP,
        });
        assert!(
            matches!(r, Err(CallbackError::BadAddress { .. })),
            "{address}"
        );
    }
}
