//! The HTTP server: `/check`, `/rawdata_signature`, and the loopback-only admin routes.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use mpc_wire::callback::{Action, Check, ResponseData, SIGNATURE_HEADER};
use mpc_wire::signature::{self, EcdsaSigner, RequestError, SignatureError};
use p256::ecdsa::{SigningKey, VerifyingKey};
use serde_json::json;

use crate::policy::{Policy, Verdict};
use crate::store::{self, Durable, Effect, Entry, Pending, RESULTS_FILE, Store, StoreError};

/// Largest request body accepted: the largest `/check` a node sends for a request the API
/// accepts ([`mpc_wire::callback::MAX_CHECK_BYTES`]).
pub const MAX_BODY_BYTES: usize = mpc_wire::callback::MAX_CHECK_BYTES;
/// Connections served at once: with [`MAX_BODY_BYTES`] each, bounds the memory unauthenticated
/// clients can hold (64 × 12.1 MiB).
pub const MAX_CONNECTIONS: usize = 64;

/// Header and body read timeouts, the body limit and the connection cap, applied before a
/// request's signature is looked at.
pub fn limits() -> mpc_httpd::Limits {
    let mut l = mpc_httpd::Limits::new(MAX_BODY_BYTES, |status, reason| {
        let mut r = error_reply(status.as_str(), &reason);
        *r.status_mut() = status;
        r
    });
    l.max_connections = MAX_CONNECTIONS;
    l
}

/// Everything the server needs.
pub struct ServeConfig {
    /// Signs every response (`--private-key`).
    pub signing_key: SigningKey,
    /// Keys of the nodes this server guards (`--node-public-key`, one or more).
    pub node_keys: Vec<VerifyingKey>,
    /// Decrypts reported signatures (`--decrypt-key`).
    pub decrypt_key: Option<p256::SecretKey>,
    /// `None`: approve everything (the guide's demo behaviour).
    pub policy: Option<Policy>,
    /// Where the audit log, state and reported signatures go.
    pub data_dir: PathBuf,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("node_keys", &self.node_keys.len())
            .field("decrypt_key", &self.decrypt_key.is_some())
            .field("policy", &self.policy.is_some())
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// The server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory could not be used.
    #[error("data directory: {0}")]
    Store(#[from] StoreError),
    /// No node key was given.
    #[error("at least one node public key is needed")]
    NoNodeKey,
    /// Serving failed.
    #[error("serve: {0}")]
    Io(#[from] std::io::Error),
}

struct App {
    key: EcdsaSigner,
    node_keys: Vec<VerifyingKey>,
    decrypt_key: Option<p256::SecretKey>,
    policy: Option<Policy>,
    store: Mutex<Store>,
}

/// Builds the router (state loaded from `config.data_dir`).
pub fn router(config: ServeConfig) -> Result<Router, ServeError> {
    if config.node_keys.is_empty() {
        return Err(ServeError::NoNodeKey);
    }
    let store = Store::open(&config.data_dir)?;
    let app = Arc::new(App {
        key: EcdsaSigner::new(&config.signing_key),
        node_keys: config.node_keys,
        decrypt_key: config.decrypt_key,
        policy: config.policy,
        store: Mutex::new(store),
    });
    Ok(Router::new()
        .route("/check", post(check))
        .route("/rawdata_signature", post(rawdata_signature))
        .route("/admin/approve/{callback_id}", post(admin_approve))
        .route("/admin/pending", get(admin_pending))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app))
}

/// Serves on `listener` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if config.policy.is_none() {
        tracing::warn!(
            "!!! NO POLICY (--policy not given): EVERY keygen and sign request is APPROVED. \
             This is the guide's demo behaviour; do not run it like this in production. !!!"
        );
    }
    let app = router(config)?;
    mpc_httpd::serve(listener, app, limits(), shutdown).await?;
    Ok(())
}

fn json_reply(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The reference server's error form: HTTP 400 `{"status":"<code>","error":"..."}`.
fn error_reply(code: &str, error: &str) -> HttpResponse {
    json_reply(
        StatusCode::BAD_REQUEST,
        json!({"status": code, "error": error})
            .to_string()
            .into_bytes(),
    )
}

fn signed_reply(app: &App, data: ResponseData, error: &str) -> HttpResponse {
    let response = signature::sign_response(data, error, &app.key);
    json_reply(StatusCode::OK, response.to_go_json())
}

/// Verifies the `Signature` header under any configured node key (raw body, then Go form).
/// The error is the reference server's HTTP 400 reply.
fn authenticate(app: &App, headers: &HeaderMap, body: &[u8]) -> Result<Check, Box<HttpResponse>> {
    let sig = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if sig.is_empty() {
        return Err(Box::new(error_reply("400", "signature not found")));
    }
    let mut last = None;
    for key in &app.node_keys {
        match signature::verify_check_request(body, sig, key) {
            Ok(check) => return Ok(check),
            Err(RequestError::Parse(e)) => {
                tracing::warn!(error = %e, "unreadable callback request");
                return Err(Box::new(error_reply("400", "read body failed")));
            }
            Err(RequestError::Signature(e)) => last = Some(e),
        }
    }
    tracing::warn!(error = ?last, "request signature does not verify under any node key");
    Err(Box::new(error_reply(
        "400",
        match last {
            Some(SignatureError::NotHex | SignatureError::NotDer) => "malformed signature",
            _ => "verify signature failed",
        },
    )))
}

fn lock(app: &App) -> std::sync::MutexGuard<'_, Store> {
    // A panic while holding the lock leaves the state as it was last saved in memory; keep
    // serving rather than failing every later request.
    app.store.lock().unwrap_or_else(|p| p.into_inner())
}

/// Writes an audit line that changes nothing (a refusal to store, a stored report) and makes
/// it durable; a failure is logged (the answer does not depend on it).
fn audit(app: &App, entry: Entry<'_>) {
    let written = lock(app).record(store::now_unix(), entry, None);
    if let Err(e) = written.and_then(Durable::sync) {
        tracing::error!(error = %e, "could not write the audit log");
    }
}

async fn check(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> HttpResponse {
    let check = match authenticate(&app, &headers, &body) {
        Ok(c) => c,
        Err(reply) => return *reply,
    };
    // The decision writes the state and audit files (fsync): off the async workers.
    let decided = {
        let app = app.clone();
        let check = check.clone();
        tokio::task::spawn_blocking(move || decide(&app, &check)).await
    };
    let Ok((action, wait_time, reason)) = decided else {
        tracing::error!(callback_id = %check.callback_id, "decision task failed");
        return error_reply("500", "internal error");
    };
    tracing::info!(
        callback_id = %check.callback_id,
        request_id = %check.extra_info.request_id,
        request_type = %check.request_type,
        decision = action.as_str(),
        reason = %reason,
        "decision"
    );
    let mut data = ResponseData::for_request(&check, action);
    data.wait_time = wait_time;
    let error = if action == Action::Reject {
        reason
    } else {
        String::new()
    };
    signed_reply(&app, data, &error)
}

/// Applies the policy and journals the decision with its effect on the state; answers only
/// once that line is durable (one `fdatasync`, taken after the lock is let go so that decisions
/// in flight share it). A decision that cannot be made durable is a rejection.
fn decide(app: &App, check: &Check) -> (Action, String, String) {
    let (action, wait_time, reason, written) = {
        let mut store = lock(app);
        let now = store::now_unix();
        store.roll_day(now / 86_400);
        let (action, wait_time, reason, effect) = evaluate(app, &store, check, now);
        let entry = Entry::of(check, "check", action.as_str(), &reason);
        let written = store.record(now, entry, effect);
        (action, wait_time, reason, written)
    };
    match written.and_then(Durable::sync) {
        Ok(()) => (action, wait_time, reason),
        Err(e) => {
            // Without its journal the server cannot keep daily limits: refuse, not approve.
            tracing::error!(error = %e, "could not journal the decision; rejecting");
            let reason = format!("internal error saving state; rejected ({reason})");
            audit(app, Entry::of(check, "check", "REJECT", &reason));
            (Action::Reject, String::new(), reason)
        }
    }
}

/// The policy's verdict on `check` and what it changes: (action, wait_time, reason, effect).
fn evaluate(
    app: &App,
    store: &Store,
    check: &Check,
    now: u64,
) -> (Action, String, String, Option<Effect>) {
    let Some(policy) = &app.policy else {
        let reason = "no policy configured: everything is approved".to_owned();
        return (Action::Approve, String::new(), reason, None);
    };
    let fp = store::fingerprint(check);
    if store.already_approved(&check.callback_id, &fp) {
        let reason = "already approved under this callback_id (repeat, not charged again)";
        return (Action::Approve, String::new(), reason.to_owned(), None);
    }
    let released = store.is_released(&fp);
    let evaluation = policy.evaluate(check, |k| store.spent(k), released);
    match evaluation.verdict {
        Verdict::Approve(r) => {
            let effect = Effect::Approve {
                fingerprint: fp,
                charge: evaluation.charge,
            };
            (Action::Approve, String::new(), r, Some(effect))
        }
        Verdict::Reject(r) => (Action::Reject, String::new(), r, Some(Effect::Reject)),
        Verdict::Wait { reason, seconds } => {
            let effect = Effect::Wait(Pending {
                fingerprint: fp,
                request_type: check.request_type.clone(),
                request_id: check.extra_info.request_id.clone(),
                sino_id: check.extra_info.sino_id.clone(),
                reason: reason.clone(),
                since: now,
            });
            (Action::Wait, seconds.to_string(), reason, Some(effect))
        }
    }
}

async fn rawdata_signature(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResponse {
    let report = match authenticate(&app, &headers, &body) {
        Ok(c) => c,
        Err(reply) => return *reply,
    };
    let received = &report.request_detail.signature;
    let (signature_hex, encrypted) = match &app.decrypt_key {
        Some(key) => match mpc_wire::ecies::decrypt_hex(key, received) {
            Ok(plain) => (hex::encode(plain.as_slice()), true),
            Err(e) => {
                tracing::warn!(callback_id = %report.callback_id, error = %e, "could not decrypt a reported signature");
                audit(
                    &app,
                    Entry::of(&report, "rawdata_signature", "ERROR", "decrypt sig error"),
                );
                return json_reply(
                    StatusCode::BAD_REQUEST,
                    json!({"status": "501", "error": "decrypt sig error"})
                        .to_string()
                        .into_bytes(),
                );
            }
        },
        None => (received.clone(), false),
    };
    let now = store::now_unix();
    let record = json!({
        "ts": store::rfc3339(now),
        "callback_id": report.callback_id,
        "sino_id": report.extra_info.sino_id,
        "request_id": report.extra_info.request_id,
        "message": report.request_detail.message,
        "signature": signature_hex,
        "decrypted": encrypted,
    });
    if let Err(e) = lock(&app).append(RESULTS_FILE, &record) {
        tracing::error!(error = %e, "could not store a reported signature");
        return error_reply("500", "could not store the signature");
    }
    audit(
        &app,
        Entry::of(
            &report,
            "rawdata_signature",
            "STORED",
            "signature result stored",
        ),
    );
    tracing::info!(callback_id = %report.callback_id, request_id = %report.extra_info.request_id, "signature result stored");
    signed_reply(
        &app,
        ResponseData::for_request(&report, Action::Approve),
        "",
    )
}

async fn admin_approve(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(callback_id): Path<String>,
) -> HttpResponse {
    if !peer.ip().is_loopback() {
        return (StatusCode::FORBIDDEN, "admin routes answer loopback only\n").into_response();
    }
    let written = {
        let mut store = lock(&app);
        let Some(pending) = store.pending().get(&callback_id).cloned() else {
            return json_reply(
                StatusCode::NOT_FOUND,
                json!({"status": "404", "error": "no pending request with this callback_id"})
                    .to_string()
                    .into_bytes(),
            );
        };
        let entry = Entry {
            endpoint: "admin",
            callback_id: &callback_id,
            request_id: &pending.request_id,
            sino_id: &pending.sino_id,
            request_type: &pending.request_type,
            decision: "RELEASE",
            reason: "released from WAIT by an operator",
        };
        store
            .record(store::now_unix(), entry, Some(Effect::Release))
            .map(|d| (d, pending))
    };
    let pending = match written.and_then(|(d, p)| d.sync().map(|()| p)) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "could not journal the release");
            return error_reply("500", "could not save state");
        }
    };
    tracing::info!(callback_id = %callback_id, request_id = %pending.request_id, "WAIT released by an operator");
    json_reply(
        StatusCode::OK,
        json!({"status": "0", "released": callback_id, "request_id": pending.request_id})
            .to_string()
            .into_bytes(),
    )
}

async fn admin_pending(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> HttpResponse {
    if !peer.ip().is_loopback() {
        return (StatusCode::FORBIDDEN, "admin routes answer loopback only\n").into_response();
    }
    let store = lock(&app);
    json_reply(
        StatusCode::OK,
        json!({"status": "0", "pending": store.pending()})
            .to_string()
            .into_bytes(),
    )
}
