//! The API client against a stand-in server that authenticates with mpc-api's own
//! `verify_request` (nonce store included) and answers with its `Envelope`: headers, the signed
//! body, monotonic nonces, error envelopes and bounded `sign_result` polling.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use mpc_api::auth::{ApiUser, HeaderValues, InMemoryNonceStore};
use mpc_api::envelope::{ApiCode, Envelope};
use mpc_api::types::{self, SignResultRequest, SignResultResponse, SignState};
use mpc_devnet::api::{ApiClient, ApiError};
use p256::ecdsa::SigningKey;

struct Server {
    user: ApiUser,
    nonces: InMemoryNonceStore,
    polls: AtomicU32,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn handle(
    axum::extract::State(s): axum::extract::State<Arc<Server>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let path = uri.path().to_owned();
    let values = HeaderValues::from_lookup(|n| headers.get(n).map(|v| v.as_bytes()));
    let auth = mpc_api::auth::verify_request(values, &path, &body, now_ms(), &s.nonces, |k| {
        (k == mpc_wire::keys::api_key_hex(&s.user.verifying_key)).then(|| s.user.clone())
    });
    if let Err(e) = auth {
        let env = Envelope::auth_error("srv", &e);
        return (
            StatusCode::from_u16(e.code().http_status()).unwrap(),
            axum::Json(env),
        )
            .into_response();
    }
    match path.as_str() {
        types::PATH_SIGN_RESULT => {
            let req: SignResultRequest = serde_json::from_slice(&body).unwrap();
            let n = s.polls.fetch_add(1, Ordering::SeqCst);
            let done = n >= 2;
            let r = SignResultResponse {
                request_id: req.request_id.unwrap_or_default(),
                sino_id: "sino-1".into(),
                message: "00".into(),
                signature: if done { "abcd".into() } else { String::new() },
                state: if done {
                    SignState::Done
                } else {
                    SignState::Pending
                },
                failed_reason: String::new(),
            };
            axum::Json(Envelope::ok("srv", r)).into_response()
        }
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(Envelope::<()>::error(
                "srv",
                ApiCode::NotFound,
                "no such wallet",
            )),
        )
            .into_response(),
    }
}

async fn serve(key: &SigningKey) -> (String, Arc<Server>) {
    let s = Arc::new(Server {
        user: ApiUser {
            organization_id: "org".into(),
            user_id: "u".into(),
            verifying_key: *key.verifying_key(),
        },
        nonces: InMemoryNonceStore::new(),
        polls: AtomicU32::new(0),
    });
    let app = axum::Router::new()
        .fallback(axum::routing::post(handle))
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), s)
}

fn client(base: &str, key: SigningKey) -> ApiClient {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    ApiClient::new(http, base, key)
}

#[tokio::test]
async fn signed_requests_pass_mpc_api_verification_and_polling_is_bounded() {
    let key = SigningKey::from_slice(&[9; 32]).unwrap();
    let (base, server) = serve(&key).await;
    let c = client(&base, key.clone());
    // Polling: pending twice, then done.
    let r = c
        .wait_sign_result("req-1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.state, SignState::Done);
    assert_eq!(r.signature, "abcd");
    assert_eq!(server.polls.load(Ordering::SeqCst), 3);
    // Many requests in a burst (same millisecond): nonces never repeat.
    let clone = c.clone();
    for _ in 0..30 {
        clone.sign_result("req-2").await.unwrap();
        c.sign_result("req-2").await.unwrap();
    }
    // Error envelope.
    match c.create_wallet("r", "v", "w").await {
        Err(ApiError::Api {
            code, http, msg, ..
        }) => {
            assert_eq!((code, http), (404, 404));
            assert_eq!(msg, "no such wallet");
        }
        other => panic!("{other:?}"),
    }
    // Another key is refused.
    let other = client(&base, SigningKey::from_slice(&[8; 32]).unwrap());
    match other.sign_result("req-3").await {
        Err(ApiError::Api { code: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn polling_gives_up_after_its_bound() {
    let key = SigningKey::from_slice(&[7; 32]).unwrap();
    let (base, server) = serve(&key).await;
    let c = client(&base, key);
    // Keep it pending: reset the counter in the background.
    let s2 = server.clone();
    let keep = tokio::spawn(async move {
        loop {
            s2.polls.store(0, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let e = c
        .wait_sign_result("slow", Duration::from_millis(600))
        .await
        .unwrap_err();
    keep.abort();
    assert!(matches!(e, ApiError::Timeout { .. }), "{e:?}");
}

/// Several coordinators: a client stays on one and moves to the next when it cannot connect
/// (the request never left); a spread client sends each call to the next in turn.
#[tokio::test]
async fn a_client_moves_to_the_next_coordinator_and_a_spread_one_takes_turns() {
    let key = SigningKey::from_slice(&[7; 32]).unwrap();
    let (first, one) = serve(&key).await;
    // A port nothing listens on, first in the list.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let c = ApiClient::with_bases(http.clone(), &[dead.clone(), first.clone()], key.clone());
    c.sign_result("r1").await.unwrap();
    assert_eq!(c.base(), first, "it moved to the live coordinator");
    c.sign_result("r2").await.unwrap();
    assert_eq!(one.polls.load(Ordering::SeqCst), 2);
    // Every base down: the connection error is the answer.
    let none = ApiClient::with_bases(http.clone(), std::slice::from_ref(&dead), key.clone());
    assert!(matches!(
        none.sign_result("r3").await,
        Err(ApiError::Transport { .. })
    ));
    // Spread: turns between the two (another key: nonces are per client and key).
    let key = SigningKey::from_slice(&[6; 32]).unwrap();
    let (first, one) = serve(&key).await;
    let (second, two) = serve(&key).await;
    let s = ApiClient::with_bases(http, &[first, second], key).spread();
    for i in 0..6 {
        s.sign_result(&format!("s{i}")).await.unwrap();
    }
    assert_eq!(one.polls.load(Ordering::SeqCst), 3);
    assert_eq!(two.polls.load(Ordering::SeqCst), 3);
}
