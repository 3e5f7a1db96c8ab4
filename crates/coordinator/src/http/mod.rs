//! The HTTP API: this module holds the router, authentication, the envelope and the helpers
//! every handler shares; the handlers are one method per route, by audience: [`waas`] (API
//! users), [`admin`] (platform administrators), [`console`] (the console's state).
//!
//! Routes (all `POST` with a JSON body, BIZ-API authentication, answers in the
//! [`Envelope`]; errors use HTTP 200 with the code in the envelope, except authentication
//! failures, HTTP 401):
//!
//! * WaaS (API users of an organization): every `PATH_*` of `mpc_api::types` (waas), plus our
//!   `/v1/waas/mpc/wallet/advance/sign_transaction`.
//! * Admin (keys from `admin-public-keys`): every `PATH_*` of `mpc_api::types::admin`.
//! * `GET /console`, `/console/console.js`, `/console/console.css`: the console (static
//!   files, no secrets; [`crate::console`]). The administrator signs in with the admin key in
//!   the browser, which signs every request itself (WebCrypto); the admin routes above do the
//!   work.
//! * `GET /console/state` ([`CONSOLE_STATE_PATH`]): the console's read-only JSON, only for a
//!   request that carries valid BIZ-API headers of an administrator (signed over an empty
//!   body and the path `/console/state`). Everyone else gets 403.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mpc_api::auth::{
    self, ApiUser, AuthenticatedCaller, HEADER_API_KEY, HEADER_NONCE, HEADER_SIGNATURE,
    HeaderValues,
};
use mpc_api::envelope::{ApiCode, Envelope};
use mpc_api::types::admin as admin_dto;
use mpc_api::types::{self as t, Validate};
use mpc_transport::task::Curve;
use mpc_tss::DerivationPath;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::StartError;
use crate::metrics::RequestLabels;
use crate::store::{KeyRow, OrganizationRow, StoreError, WalletRow, now_ms};
use crate::{Coordinator, StoreNonces, new_id};

mod admin;
mod console;
mod waas;

/// Path of the console's JSON state.
pub const CONSOLE_STATE_PATH: &str = "/console/state";
/// Path of the console page.
pub const CONSOLE_PATH: &str = "/console";

/// An error answer.
#[derive(Debug)]
pub(crate) struct Failure {
    code: ApiCode,
    msg: String,
}

fn fail(code: ApiCode, msg: impl Into<String>) -> Failure {
    Failure {
        code,
        msg: msg.into(),
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => fail(ApiCode::Conflict, m),
            StoreError::NotFound(m) => fail(ApiCode::NotFound, m),
            StoreError::Backend(m) => {
                tracing::error!(error = %m, "coordinator: store failure");
                fail(ApiCode::Unavailable, "database unavailable")
            }
        }
    }
}

impl From<StartError> for Failure {
    fn from(e: StartError) -> Self {
        match e {
            StartError::Store(s) => s.into(),
            StartError::Conflict(m) => fail(ApiCode::Conflict, m),
            StartError::Unavailable(m) => fail(ApiCode::Unavailable, m),
            StartError::NotFound(m) => fail(ApiCode::NotFound, m),
            StartError::BadRequest(m) => fail(ApiCode::BadRequest, m),
        }
    }
}

type Answer = Result<serde_json::Value, Failure>;

fn json<T: Serialize>(v: T) -> Answer {
    serde_json::to_value(v).map_err(|e| fail(ApiCode::Internal, e.to_string()))
}

/// The request body as `T`, validated. An empty body or JSON `null` reads as `{}`: the Go SDK
/// sends no body for a nil request and `null` for a nil pointer parameter (e.g.
/// `ListMPCRequests(nil)`); a request with required fields then names the first one missing.
fn parse<T: DeserializeOwned + Validate>(body: &[u8]) -> Result<T, Failure> {
    let text = body.trim_ascii();
    let body: &[u8] = if text.is_empty() || text == b"null" {
        b"{}"
    } else {
        body
    };
    let v: T = serde_json::from_slice(body)
        .map_err(|e| fail(ApiCode::BadRequest, format!("invalid body: {e}")))?;
    v.validate()
        .map_err(|e| fail(ApiCode::BadRequest, e.to_string()))?;
    Ok(v)
}

fn respond(xid: &str, answer: Answer) -> Response {
    let (status, env) = match answer {
        Ok(data) => (ApiCode::Success, Envelope::ok(xid, data)),
        Err(f) => (f.code, Envelope::error(xid, f.code, f.msg)),
    };
    let http = StatusCode::from_u16(status.http_status()).unwrap_or(StatusCode::OK);
    (http, axum::Json(env)).into_response()
}

fn endpoint_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

const WAAS_PATHS: &[&str] = &[
    t::PATH_CREATE_WALLETS,
    t::PATH_GEN_ADDRESS_BY_PATH,
    t::PATH_SIGN_MESSAGE,
    t::PATH_SIGN_RAW_DATA,
    t::PATH_SIGN_TRANSACTION,
    t::PATH_SIGN_RESULT,
    t::PATH_MPC_NODE_STATUS,
    t::PATH_LIST_MPC_REQUESTS,
];

const ADMIN_PATHS: &[&str] = &[
    admin_dto::PATH_CREATE_ORGANIZATION,
    admin_dto::PATH_CREATE_API_USER,
    admin_dto::PATH_BIND_NODE,
    admin_dto::PATH_LIST_NODES,
    admin_dto::PATH_LIST_KEYS,
    admin_dto::PATH_REQUEST_KEYGEN,
    admin_dto::PATH_REFRESH_KEY,
    admin_dto::PATH_LIST_KEY_REFRESHES,
    admin_dto::PATH_REPLACE_NODE,
    admin_dto::PATH_REPAIR_KEY,
    admin_dto::PATH_LIST_KEY_REPAIRS,
];

impl Coordinator {
    /// The HTTP routes (see the module docs of `http`).
    pub fn router(self: &Arc<Self>) -> Router {
        let mut r = Router::new();
        for path in WAAS_PATHS.iter().chain(ADMIN_PATHS) {
            let path: &'static str = path;
            r =
                r.route(
                    path,
                    post(
                        move |State(c): State<Arc<Coordinator>>,
                              headers: HeaderMap,
                              body: Bytes| async move {
                            c.handle(path, headers, body).await
                        },
                    ),
                );
        }
        r.route(
            CONSOLE_PATH,
            get(|| async { console::asset(&crate::console::PAGE) }),
        )
        .route(
            crate::console::SCRIPT.path,
            get(|| async { console::asset(&crate::console::SCRIPT) }),
        )
        .route(
            crate::console::STYLE.path,
            get(|| async { console::asset(&crate::console::STYLE) }),
        )
        .route(
            CONSOLE_STATE_PATH,
            get(
                |State(c): State<Arc<Coordinator>>, req: Request| async move {
                    c.console_state(req).await
                },
            ),
        )
        .with_state(self.clone())
    }

    async fn handle(
        self: Arc<Self>,
        path: &'static str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let xid = new_id("x");
        let is_admin = path.starts_with("/v1/admin/");
        let auth = self
            .authenticate(&headers, path, body.clone(), is_admin)
            .await;
        // Only with an audit log: nothing is built for it on the request path otherwise.
        let caller = self
            .audit
            .is_some()
            .then(|| audit_caller(&auth, &headers, is_admin));
        let answer = match auth {
            Ok(caller) => self.dispatch_api(path, &caller, &body).await,
            Err(f) => Err(f),
        };
        self.audit_request(&xid, path, caller, &body, &answer);
        let outcome = match &answer {
            Ok(_) => "ok".to_owned(),
            Err(f) => f.code.as_u16().to_string(),
        };
        if let Err(f) = &answer {
            tracing::info!(xid = %xid, path, code = f.code.as_u16(), msg = %f.msg, "coordinator: request refused");
        }
        self.metrics
            .requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint_name(path),
                outcome,
            })
            .inc();
        respond(&xid, answer)
    }

    /// BIZ-API authentication against the API users (WaaS) or the configured admins.
    async fn authenticate(
        self: &Arc<Self>,
        headers: &HeaderMap,
        path: &'static str,
        body: Bytes,
        admin: bool,
    ) -> Result<AuthenticatedCaller, Failure> {
        let get = |name: &str| headers.get(name).map(|v| v.as_bytes().to_vec());
        let (k, n, s) = (
            get(HEADER_API_KEY),
            get(HEADER_NONCE),
            get(HEADER_SIGNATURE),
        );
        let store = self.store.clone();
        let admins = self.admins.clone();
        let res = tokio::task::spawn_blocking(move || {
            let values = HeaderValues {
                api_key: k.as_deref(),
                nonce: n.as_deref(),
                signature: s.as_deref(),
            };
            let backend_error = std::cell::RefCell::new(None);
            let r = {
                let lookup = |key: &str| -> Option<ApiUser> {
                    if admin {
                        return admins
                            .iter()
                            .find(|a| mpc_wire::keys::api_key_hex(&a.verifying_key) == key)
                            .cloned();
                    }
                    match store.api_user_by_key(key) {
                        Ok(Some(u)) => Some(ApiUser {
                            organization_id: u.organization_id,
                            user_id: u.id,
                            verifying_key: mpc_wire::keys::verifying_key_from_api_key_hex(
                                &u.api_key,
                            )
                            .ok()?,
                        }),
                        Ok(None) => None,
                        Err(e) => {
                            *backend_error.borrow_mut() = Some(e);
                            None
                        }
                    }
                };
                auth::verify_request(
                    values,
                    path,
                    &body,
                    now_ms(),
                    &StoreNonces(store.as_ref()),
                    lookup,
                )
            };
            (r, backend_error.into_inner())
        })
        .await
        .map_err(|e| fail(ApiCode::Internal, format!("auth task: {e}")))?;
        match res {
            (_, Some(e)) => Err(e.into()),
            (Ok(c), None) => Ok(c),
            (Err(e), None) => Err(fail(e.code(), e.to_string())),
        }
    }

    async fn dispatch_api(&self, path: &str, caller: &AuthenticatedCaller, body: &[u8]) -> Answer {
        let org = caller.organization_id().to_owned();
        match path {
            t::PATH_CREATE_WALLETS => self.create_wallets(org, parse(body)?).await,
            t::PATH_GEN_ADDRESS_BY_PATH => self.gen_address(org, parse(body)?).await,
            t::PATH_SIGN_MESSAGE => self.sign_message(org, parse(body)?).await,
            t::PATH_SIGN_RAW_DATA => self.sign_raw_data(org, parse(body)?).await,
            t::PATH_SIGN_TRANSACTION => self.sign_transaction(org, parse(body)?).await,
            t::PATH_SIGN_RESULT => self.sign_result(org, parse(body)?).await,
            t::PATH_MPC_NODE_STATUS => self.node_status(org).await,
            t::PATH_LIST_MPC_REQUESTS => self.list_mpc_requests(org, parse(body)?).await,
            admin_dto::PATH_CREATE_ORGANIZATION => self.create_organization(parse(body)?).await,
            admin_dto::PATH_CREATE_API_USER => self.create_api_user(parse(body)?).await,
            admin_dto::PATH_BIND_NODE => self.bind_node(parse(body)?).await,
            admin_dto::PATH_LIST_NODES => self.list_nodes(parse(body)?).await,
            admin_dto::PATH_LIST_KEYS => self.list_keys(parse(body)?).await,
            admin_dto::PATH_REQUEST_KEYGEN => self.request_keygen(parse(body)?).await,
            admin_dto::PATH_REFRESH_KEY => self.refresh_key(parse(body)?).await,
            admin_dto::PATH_LIST_KEY_REFRESHES => {
                self.list_reshares(parse(body)?, t::BusinessExecType::KeyRefresh)
                    .await
            }
            admin_dto::PATH_REPLACE_NODE => self.replace_node(parse(body)?).await,
            admin_dto::PATH_REPAIR_KEY => self.repair_key(parse(body)?).await,
            admin_dto::PATH_LIST_KEY_REPAIRS => {
                self.list_reshares(parse(body)?, t::BusinessExecType::KeyRepair)
                    .await
            }
            _ => Err(fail(ApiCode::NotFound, "no such endpoint")),
        }
    }

    /// Records a request in the audit log: who called (as authenticated, or the key it
    /// claimed), what, the body's SHA-256 (not the body), and the answer's code.
    fn audit_request(
        &self,
        xid: &str,
        path: &str,
        caller: Option<serde_json::Value>,
        body: &[u8],
        answer: &Answer,
    ) {
        let (Some(audit), Some(caller)) = (&self.audit, caller) else {
            return;
        };
        use sha2::Digest as _;
        let (code, msg) = match answer {
            Ok(_) => (ApiCode::Success.as_u16(), String::new()),
            Err(f) => (f.code.as_u16(), f.msg.clone()),
        };
        let fields = serde_json::json!({
            "xid": xid,
            "path": path,
            "caller": caller,
            "bodySha256": hex::encode(sha2::Sha256::digest(body)),
            "code": code,
            "msg": msg,
        });
        if let serde_json::Value::Object(m) = fields
            && let Err(e) = audit.record("api-request", m)
        {
            tracing::error!(error = %e, "coordinator: audit entry not recorded");
        }
    }

    // ------------------------------------------------------------------ helpers

    async fn require_org(&self, id: &str) -> Result<OrganizationRow, Failure> {
        let i = id.to_owned();
        self.db(move |s| s.organization(&i))
            .await?
            .ok_or_else(|| fail(ApiCode::NotFound, "no such organization"))
    }

    async fn require_vault(&self, org: &str, vault_id: &str) -> Result<(), Failure> {
        let o = self.require_org(org).await?;
        if o.vault_id != vault_id {
            return Err(fail(ApiCode::NotFound, "no such vault"));
        }
        Ok(())
    }

    async fn require_wallet(
        &self,
        org: &str,
        vault_id: &str,
        wallet_id: &str,
    ) -> Result<WalletRow, Failure> {
        self.require_vault(org, vault_id).await?;
        let (o, w) = (org.to_owned(), wallet_id.to_owned());
        let wallet = self
            .db(move |s| s.wallet(&o, &w))
            .await?
            .ok_or_else(|| fail(ApiCode::NotFound, "no such wallet"))?;
        if wallet.vault_id != vault_id {
            return Err(fail(ApiCode::NotFound, "no such wallet"));
        }
        Ok(wallet)
    }

    /// [`Self::require_wallet`] for the path-based (advanced) endpoints: the wallet must have
    /// advanced features on.
    async fn require_advanced_wallet(
        &self,
        org: &str,
        vault_id: &str,
        wallet_id: &str,
    ) -> Result<WalletRow, Failure> {
        let wallet = self.require_wallet(org, vault_id, wallet_id).await?;
        if !wallet.advanced {
            return Err(fail(
                ApiCode::Forbidden,
                "advanced features are off for this wallet",
            ));
        }
        Ok(wallet)
    }

    async fn require_key(&self, org: &str, curve: Curve) -> Result<KeyRow, Failure> {
        let o = org.to_owned();
        self.db(move |s| s.generated_key(&o, curve))
            .await?
            .ok_or_else(|| {
                fail(
                    ApiCode::Unavailable,
                    format!(
                        "the organization has no generated {} key yet",
                        crate::store::curve_str(curve)
                    ),
                )
            })
    }
}

/// The caller as the audit log names it: authenticated (organization, user, key), or the
/// `BIZ-API-KEY` it claimed (at most 300 characters), unverified.
fn audit_caller(
    auth: &Result<AuthenticatedCaller, Failure>,
    headers: &HeaderMap,
    admin: bool,
) -> serde_json::Value {
    match auth {
        Ok(c) => serde_json::json!({
            "authenticated": true,
            "admin": admin,
            "organizationId": c.organization_id(),
            "userId": c.user_id(),
            "apiKey": c.api_key_hex(),
        }),
        Err(_) => {
            let claimed: String = headers
                .get(HEADER_API_KEY)
                .map(|v| {
                    String::from_utf8_lossy(v.as_bytes())
                        .chars()
                        .take(300)
                        .collect()
                })
                .unwrap_or_default();
            serde_json::json!({ "authenticated": false, "admin": admin, "claimedApiKey": claimed })
        }
    }
}

fn parse_path(text: &str) -> Result<DerivationPath, Failure> {
    text.parse()
        .map_err(|e: mpc_tss::InputError| fail(ApiCode::BadRequest, format!("hdPath: {e}")))
}

/// The child public key of `key` at `path`.
fn derive(key: &KeyRow, path: &DerivationPath) -> Result<Vec<u8>, Failure> {
    let cc = key
        .chain_code
        .ok_or_else(|| fail(ApiCode::Internal, "key without chain code"))?;
    let bad = |e: mpc_tss::InputError| fail(ApiCode::BadRequest, e.to_string());
    match key.curve {
        Curve::Secp256k1 => {
            let root: [u8; 33] = key
                .root_public_key
                .as_slice()
                .try_into()
                .map_err(|_| fail(ApiCode::Internal, "stored key is not 33 bytes"))?;
            Ok(mpc_tss::derive::derive_secp256k1_public(&root, &cc, path)
                .map_err(bad)?
                .to_vec())
        }
        Curve::Ed25519 => {
            let root: [u8; 32] = key
                .root_public_key
                .as_slice()
                .try_into()
                .map_err(|_| fail(ApiCode::Internal, "stored key is not 32 bytes"))?;
            Ok(mpc_tss::derive::derive_ed25519_public(&root, &cc, path)
                .map_err(bad)?
                .to_vec())
        }
    }
}
