//! The local API ("unseal server"), plain HTTP on `[storage] unseal-server-address`, exactly as
//! SPEC §4:
//!
//! | route | body | success `data` |
//! |---|---|---|
//! | `POST /sys/init` | `{"shard_bkey": …}` | `{"node_id", "public_key"}` (t > 1: `"k of t shares received"` until complete) |
//! | `POST /sys/in-bkey` | `{"shard_bkey": …}` | `"in-bkey success"` (t > 1: progress until complete) |
//! | `GET /sys/seal-status` | none | `{"node_id", "public_key", "state", "t", "n"[, "progress"]}` |
//! | `POST /sys/re-bkey-init` | `{"shard_bkey": …}` current | `"re-bkey-init success"` |
//! | `POST /sys/re-bkey` | `{"shard_bkey": …}` new | `"re-bkey success"` |
//! | `POST /sys/backup` | ignored | `{"engine", "counter", "tables", "file"}` (loopback callers only) |
//! | `POST /sys/platform-key` | `{"pin": "<PUBLIC KEY PEM>", "shard_bkey": …}` or `{"forget": true, "shard_bkey": …}`, current password | `{"previous", "pinned"}` (hex SEC1 or null; loopback callers only; t > 1: progress until complete, every share for the same change) |
//! | `POST /sys/rotate-key` | `{"shard_bkey": …}` current | `{"rotated": true, "records": N}` (t > 1: progress until complete) |
//!
//! A damaged store file (corrupt, truncated, not a key store) does not stop the node: every
//! route that touches the store, and `seal-status`, answers the error naming the file and
//! saying to restore it from a backup; nothing is written to it.
//!
//! Success is HTTP 200 `{"status":"ok","data":…}`, failure HTTP 400
//! `{"status":"error","error":"<reason>"}` (also for unknown routes, wrong methods and oversized
//! bodies, so node.sh always prints the reason). Bodies are read as bytes whatever the
//! `Content-Type`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::body::{MAX_BODY, ignore_body, parse_bkey};
use crate::node::{ApiError, Node};

/// A `/sys` reply.
fn reply(r: Result<Value, ApiError>) -> Response {
    match r {
        Ok(data) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ok", "data": data})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": "error", "error": e.0})),
        )
            .into_response(),
    }
}

/// The bounds applied to every request before a handler runs ([`mpc_httpd`]): head within
/// 10 s, body within 10 s and at most [`MAX_BODY`] bytes, 256 connections (a local API with a
/// few operators).
pub fn limits() -> mpc_httpd::Limits {
    let mut l = mpc_httpd::Limits::new(MAX_BODY, |_, reason| reply(Err(ApiError(reason))));
    l.body_read = std::time::Duration::from_secs(10);
    l.max_connections = 256;
    l
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError(format!(
            "body is larger than {MAX_BODY} bytes or unreadable"
        ))
    })
}

async fn init(State(node): State<Arc<Node>>, body: Body) -> Response {
    let r = async {
        let b = read_body(body).await?;
        node.init(parse_bkey(&b)?).await
    };
    reply(r.await)
}

async fn in_bkey(State(node): State<Arc<Node>>, body: Body) -> Response {
    let r = async {
        let b = read_body(body).await?;
        node.unseal(parse_bkey(&b)?).await
    };
    reply(r.await)
}

async fn re_bkey_init(State(node): State<Arc<Node>>, body: Body) -> Response {
    let r = async {
        let b = read_body(body).await?;
        node.begin_change(parse_bkey(&b)?).await
    };
    reply(r.await)
}

async fn re_bkey(State(node): State<Arc<Node>>, body: Body) -> Response {
    let r = async {
        let b = read_body(body).await?;
        node.change(parse_bkey(&b)?).await
    };
    reply(r.await)
}

async fn rotate_key(State(node): State<Arc<Node>>, body: Body) -> Response {
    let r = async {
        let b = read_body(body).await?;
        node.rotate_key(parse_bkey(&b)?).await
    };
    reply(r.await)
}

async fn seal_status(State(node): State<Arc<Node>>) -> Response {
    let st = node.status();
    if let Some(why) = st.damaged {
        return reply(Err(ApiError(why)));
    }
    reply(serde_json::to_value(st).map_err(|e| ApiError(e.to_string())))
}

async fn backup(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Body,
) -> Response {
    let r = async {
        if !peer.ip().is_loopback() {
            tracing::warn!(%peer, "backup refused: caller is not on loopback");
            return Err(ApiError(
                "backup is served to loopback (127.0.0.1 / ::1) callers only".into(),
            ));
        }
        ignore_body(&read_body(body).await?)?;
        node.backup().await
    };
    reply(r.await)
}

/// `POST /sys/platform-key` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlatformKeyRequest {
    #[serde(default)]
    pin: Option<String>,
    #[serde(default)]
    forget: bool,
    #[serde(default)]
    shard_bkey: String,
}

async fn platform_key(
    State(node): State<Arc<Node>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Body,
) -> Response {
    let r = async {
        if !peer.ip().is_loopback() {
            tracing::warn!(%peer, "platform key change refused: caller is not on loopback");
            return Err(ApiError(
                "the platform key is changed by loopback (127.0.0.1 / ::1) callers only".into(),
            ));
        }
        let b = read_body(body).await?;
        let shape = || {
            ApiError(
                "body must be {\"pin\": \"<PUBLIC KEY PEM>\", \"shard_bkey\": \"<current password or share>\"} or {\"forget\": true, \"shard_bkey\": …}".into(),
            )
        };
        let req: PlatformKeyRequest = serde_json::from_slice(&b).map_err(|_| shape())?;
        let bkey = Zeroizing::new(req.shard_bkey);
        let new = match (req.pin, req.forget) {
            (Some(pem), false) => Some(
                mpc_wire::keys::verifying_key_from_pem(&pem)
                    .map_err(|e| ApiError(format!("pin: not a P-256 public key PEM: {e}")))?,
            ),
            (None, true) => None,
            _ => return Err(shape()),
        };
        if bkey.is_empty() {
            return Err(ApiError(
                "shard_bkey: the current password (or one current share) is required to change the platform key".into(),
            ));
        }
        node.change_platform_key(new, bkey).await
    };
    reply(r.await)
}

async fn fallback(method: Method, uri: Uri) -> Response {
    reply(Err(ApiError(format!(
        "no route {method} {}; the local API has POST /sys/init, /sys/in-bkey, /sys/re-bkey-init, /sys/re-bkey, /sys/backup, /sys/platform-key, /sys/rotate-key and GET /sys/seal-status",
        uri.path()
    ))))
}

/// The `/sys` router. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/sys/init", post(init))
        .route("/sys/in-bkey", post(in_bkey))
        .route("/sys/seal-status", get(seal_status))
        .route("/sys/re-bkey-init", post(re_bkey_init))
        .route("/sys/re-bkey", post(re_bkey))
        .route("/sys/backup", post(backup))
        .route("/sys/platform-key", post(platform_key))
        .route("/sys/rotate-key", post(rotate_key))
        .fallback(fallback)
        .method_not_allowed_fallback(fallback)
        .with_state(node)
}
