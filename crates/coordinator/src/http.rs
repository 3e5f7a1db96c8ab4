//! The HTTP API.
//!
//! Routes (all `POST` with a JSON body, BIZ-API authentication, answers in the
//! [`Envelope`]; errors use HTTP 200 with the code in the envelope, except authentication
//! failures, HTTP 401):
//!
//! * WaaS (API users of an organization): every `PATH_*` of `mpc_api::types` (waas), plus our
//!   `/v1/waas/mpc/wallet/advance/sign_transaction`.
//! * Admin (keys from `admin-public-keys`): every `PATH_*` of `mpc_api::types::admin`.
//! * `GET /console`: the console page (static HTML + inline JS, no secrets).
//! * `GET /console/state` ([`CONSOLE_STATE_PATH`]): the console's read-only JSON. Served to a
//!   loopback client (the peer address from axum's `ConnectInfo<SocketAddr>`, which the
//!   platform must provide with `into_make_service_with_connect_info::<SocketAddr>()` or by
//!   inserting `ConnectInfo` into the request extensions of its own accept loop), or to any
//!   client whose request carries valid BIZ-API headers of an administrator (signed over an
//!   empty body and the path `/console/state`). Everyone else gets 403.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use mpc_api::auth::{
    self, ApiUser, AuthenticatedCaller, HEADER_API_KEY, HEADER_NONCE, HEADER_SIGNATURE,
    HeaderValues,
};
use mpc_api::envelope::{ApiCode, Envelope};
use mpc_api::types::admin::{
    self, ApiUserInfo, BindNodeRequest, CreateApiUserRequest, CreateOrganizationRequest, KeyInfo,
    KeyStatus, ListKeysRequest, ListNodesRequest, NodeInfo, Organization, RequestKeygenRequest,
};
use mpc_api::types::{
    self as t, AddressAlgorithm, AddressEncoding, AddressInfo, BusinessExecStatus,
    BusinessExecType, CreateWalletsRequest, GenAddressByPathRequest, ListMpcRequestsRequest,
    ListMpcRequestsResponse, MpcNodeStatus, MpcRequestRecord, OnlineStatus, RawSignAlgorithm,
    SignAlgorithm, SignMessageRequest, SignMessageResponse, SignRawDataRequest,
    SignRawDataResponse, SignResultRequest, SignResultResponse, SignTransactionRequest, Switch,
    Validate, WalletInfoResult,
};
use mpc_chains::address::{self as addr, BtcEncoding, Network};
use mpc_chains::message::SignMessageKind;
use mpc_transport::task::{Algorithm, Curve, Payload};
use mpc_tss::DerivationPath;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::engine::{SignPlan, StartError};
use crate::metrics::RequestLabels;
use crate::store::{
    AddressRow, ApiUserRow, KeyRow, KeyState, MpcRequestQuery, NodeBindingRow, OrganizationRow,
    SignRequestRow, SignState, StoreError, WalletRow, now_ms,
};
use crate::verify::VerifyInput;
use crate::{Coordinator, StoreNonces, new_id};

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
        }
    }
}

type Answer = Result<serde_json::Value, Failure>;

fn json<T: Serialize>(v: T) -> Answer {
    serde_json::to_value(v).map_err(|e| fail(ApiCode::Internal, e.to_string()))
}

fn parse<T: DeserializeOwned + Validate>(body: &[u8]) -> Result<T, Failure> {
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
    admin::PATH_CREATE_ORGANIZATION,
    admin::PATH_CREATE_API_USER,
    admin::PATH_BIND_NODE,
    admin::PATH_LIST_NODES,
    admin::PATH_LIST_KEYS,
    admin::PATH_REQUEST_KEYGEN,
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
        r.route(CONSOLE_PATH, get(|| async { Html(crate::console::PAGE) }))
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
        let answer = match self
            .authenticate(&headers, path, body.clone(), is_admin)
            .await
        {
            Ok(caller) => self.dispatch_api(path, &caller, &body).await,
            Err(f) => Err(f),
        };
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
            admin::PATH_CREATE_ORGANIZATION => self.create_organization(parse(body)?).await,
            admin::PATH_CREATE_API_USER => self.create_api_user(parse(body)?).await,
            admin::PATH_BIND_NODE => self.bind_node(parse(body)?).await,
            admin::PATH_LIST_NODES => {
                let r: ListNodesRequest = parse(body)?;
                self.require_org(&r.organization_id).await?;
                json(self.node_infos(Some(r.organization_id)).await?)
            }
            admin::PATH_LIST_KEYS => {
                let r: ListKeysRequest = parse(body)?;
                self.require_org(&r.organization_id).await?;
                json(self.key_infos(Some(r.organization_id)).await?)
            }
            admin::PATH_REQUEST_KEYGEN => self.request_keygen(parse(body)?).await,
            _ => Err(fail(ApiCode::NotFound, "no such endpoint")),
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

    // ------------------------------------------------------------------ WaaS

    async fn create_wallets(&self, org: String, r: CreateWalletsRequest) -> Answer {
        self.require_vault(&org, &r.vault_id).await?;
        let now = now_ms();
        let rows: Vec<WalletRow> = (0..r.count as usize)
            .map(|i| {
                let id = new_id("wallet");
                let info = r.wallet_infos.get(i);
                let name = info
                    .map(|w| w.wallet_name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| format!("wallet-{}", &id[6..18]));
                WalletRow {
                    id,
                    organization_id: org.clone(),
                    vault_id: r.vault_id.clone(),
                    name,
                    advanced: info.is_some_and(|w| w.advanced_enabled == Switch::On),
                    request_id: r.request_id.clone(),
                    created_at: now,
                }
            })
            .collect();
        let (o, rid) = (org.clone(), r.request_id.clone());
        let stored = self.db(move |s| s.create_wallets(&o, &rid, &rows)).await?;
        json(
            stored
                .into_iter()
                .map(|w| WalletInfoResult {
                    wallet_id: w.id,
                    wallet_name: w.name,
                    advanced_enabled: if w.advanced { Switch::On } else { Switch::Off },
                })
                .collect::<Vec<_>>(),
        )
    }

    async fn gen_address(&self, org: String, r: GenAddressByPathRequest) -> Answer {
        let wallet = self
            .require_advanced_wallet(&org, &r.vault_id, &r.wallet_id)
            .await?;
        let path_text = format!("m/1/1/{}/{}", r.coin_type, r.index);
        let path: DerivationPath = path_text
            .parse()
            .map_err(|e: mpc_tss::InputError| fail(ApiCode::BadRequest, e.to_string()))?;
        let curve = match r.algorithm_type {
            AddressAlgorithm::Secp256k1 => Curve::Secp256k1,
            AddressAlgorithm::Ed25519 => Curve::Ed25519,
        };
        let key = self.require_key(&org, curve).await?;
        let pubkey = derive(&key, &path)?;
        let mk = |encoding: AddressEncoding, address: String| AddressRow {
            id: new_id("addr"),
            wallet_id: wallet.id.clone(),
            path: path_text.clone(),
            algorithm: r.algorithm_type.as_number(),
            encoding: encoding.as_number(),
            address,
            pubkey: hex::encode(&pubkey),
        };
        let internal = |e: mpc_chains::error::AddressError| fail(ApiCode::Internal, e.to_string());
        let rows = match curve {
            Curve::Secp256k1 => {
                let mut rows = Vec::new();
                for (enc, btc) in [
                    (AddressEncoding::Legacy, BtcEncoding::Legacy),
                    (AddressEncoding::SegwitNative, BtcEncoding::SegwitNative),
                    (AddressEncoding::SegwitNested, BtcEncoding::SegwitNested),
                    (AddressEncoding::Taproot, BtcEncoding::Taproot),
                ] {
                    rows.push(mk(
                        enc,
                        addr::bitcoin_address(&pubkey, btc, Network::Mainnet).map_err(internal)?,
                    ));
                }
                rows.push(mk(
                    AddressEncoding::Account,
                    addr::evm_address(&pubkey).map_err(internal)?,
                ));
                rows
            }
            Curve::Ed25519 => vec![mk(
                AddressEncoding::Account,
                addr::solana_address(&pubkey).map_err(internal)?,
            )],
        };
        let stored = self.db(move |s| s.save_addresses(&rows)).await?;
        let out: Vec<AddressInfo> = stored
            .into_iter()
            .map(|a| AddressInfo {
                id: a.id,
                address: a.address,
                hd_path: a.path,
                encoding: AddressEncoding::try_from(i64::from(a.encoding))
                    .unwrap_or(AddressEncoding::Account),
                pubkey: a.pubkey,
            })
            .collect();
        json(out)
    }

    async fn sign_message(&self, org: String, r: SignMessageRequest) -> Answer {
        let kind = match r.sign_algorithm {
            SignAlgorithm::PersonalSign => SignMessageKind::PersonalSign,
            SignAlgorithm::SignTypedDataV3 => SignMessageKind::TypedDataV3,
            SignAlgorithm::SignTypedDataV4 => SignMessageKind::TypedDataV4,
            SignAlgorithm::SignTypedData => {
                return Err(fail(
                    ApiCode::BadRequest,
                    "signAlgorithm: legacy signTypedData (v1) is not supported",
                ));
            }
        };
        let payload = mpc_chains::message::sign_message_payload(kind, &r.message)
            .map_err(|e| fail(ApiCode::BadRequest, format!("message: {e}")))?;
        let digest = payload.digest();
        let path = parse_path(&r.hd_path)?;
        let key = self.require_key(&org, Curve::Secp256k1).await?;
        let pk = derive(&key, &path)?;
        let plan = SignPlan {
            organization_id: org,
            request_id: r.request_id.clone(),
            kind: BusinessExecType::SignMessage,
            key,
            path: path.to_string(),
            algorithm: Algorithm::Ecdsa,
            sign_type: 2,
            payload: Payload::SignMessage {
                kind: kind.as_str().to_owned(),
                message: r.message.clone(),
            },
            api_message: r.message,
            verify: VerifyInput {
                algorithm: Algorithm::Ecdsa,
                public_key: pk,
                signed: digest.to_vec(),
                v_offset: 27,
                tap_script_root: None,
            },
            tx_info: None,
        };
        let row = self.submit_sign(plan).await?;
        json(SignMessageResponse {
            sino_id: row.sino_id,
            message_hash: row.digest,
        })
    }

    async fn sign_raw_data(&self, org: String, r: SignRawDataRequest) -> Answer {
        let wallet = self
            .require_advanced_wallet(&org, &r.vault_id, &r.wallet_id)
            .await?;
        let path = parse_path(&r.hd_path)?;
        let data = r
            .raw_data_bytes()
            .map_err(|e| fail(ApiCode::BadRequest, e.to_string()))?;
        let root = r
            .tap_script_root_bytes()
            .map_err(|e| fail(ApiCode::BadRequest, e.to_string()))?;
        let algorithm = match r.algorithm_type {
            RawSignAlgorithm::Bip340 => Algorithm::Bip340,
            RawSignAlgorithm::Taproot => Algorithm::Taproot,
            RawSignAlgorithm::KeyDefault => {
                // The key's own scheme: the curve of the addresses generated at this path
                // (ed25519 only when the path has ed25519 addresses and no secp256k1 ones).
                let (w, p) = (wallet.id.clone(), path.to_string());
                let at = self.db(move |s| s.addresses_at(&w, &p)).await?;
                let ed = at
                    .iter()
                    .any(|a| a.algorithm == AddressAlgorithm::Ed25519.as_number());
                let secp = at
                    .iter()
                    .any(|a| a.algorithm == AddressAlgorithm::Secp256k1.as_number());
                if ed && !secp {
                    Algorithm::Eddsa
                } else {
                    Algorithm::Ecdsa
                }
            }
        };
        let payload = if algorithm == Algorithm::Eddsa {
            Payload::Message {
                message: data.clone(),
            }
        } else {
            let digest: [u8; 32] = data.as_slice().try_into().map_err(|_| {
                fail(
                    ApiCode::BadRequest,
                    format!(
                        "rawData: is {} bytes; ECDSA signs a 32-byte digest",
                        data.len()
                    ),
                )
            })?;
            Payload::Digest { digest }
        };
        let tx_info =
            root.map(|r| serde_json::json!({ "tapScriptRoot": hex::encode(r) }).to_string());
        let row = self
            .plan_and_submit(
                org,
                r.request_id,
                BusinessExecType::SignRawData,
                3,
                algorithm,
                path,
                payload,
                r.raw_data,
                data,
                root,
                tx_info,
            )
            .await?;
        json(SignRawDataResponse {
            sino_id: row.sino_id,
        })
    }

    async fn sign_transaction(&self, org: String, r: SignTransactionRequest) -> Answer {
        self.require_advanced_wallet(&org, &r.vault_id, &r.wallet_id)
            .await?;
        let path = parse_path(&r.hd_path)?;
        let digest = r
            .sighash_bytes()
            .map_err(|e| fail(ApiCode::BadRequest, e.to_string()))?;
        let root = r
            .tap_script_root_bytes()
            .map_err(|e| fail(ApiCode::BadRequest, e.to_string()))?;
        let algorithm = match r.algorithm_type {
            RawSignAlgorithm::KeyDefault => Algorithm::Ecdsa,
            RawSignAlgorithm::Bip340 => Algorithm::Bip340,
            RawSignAlgorithm::Taproot => Algorithm::Taproot,
        };
        let mut tx_info = r.tx_info.clone();
        if let (Some(root), Some(obj)) = (root, tx_info.as_object_mut()) {
            obj.insert(
                "tapScriptRoot".into(),
                serde_json::Value::String(hex::encode(root)),
            );
        }
        let row = self
            .plan_and_submit(
                org,
                r.request_id,
                BusinessExecType::SignTx,
                1,
                algorithm,
                path,
                Payload::Digest { digest },
                r.sighash,
                digest.to_vec(),
                root,
                Some(tx_info.to_string()),
            )
            .await?;
        json(SignRawDataResponse {
            sino_id: row.sino_id,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_and_submit(
        &self,
        org: String,
        request_id: String,
        kind: BusinessExecType,
        sign_type: u8,
        algorithm: Algorithm,
        path: DerivationPath,
        payload: Payload,
        api_message: String,
        signed: Vec<u8>,
        tap_script_root: Option<[u8; 32]>,
        tx_info: Option<String>,
    ) -> Result<SignRequestRow, Failure> {
        let key = self.require_key(&org, algorithm.curve()).await?;
        let pk = derive(&key, &path)?;
        let plan = SignPlan {
            organization_id: org,
            request_id,
            kind,
            key,
            path: path.to_string(),
            algorithm,
            sign_type,
            payload,
            api_message,
            verify: VerifyInput {
                algorithm,
                public_key: pk,
                signed,
                v_offset: 0,
                tap_script_root,
            },
            tx_info,
        };
        Ok(self.submit_sign(plan).await?)
    }

    async fn sign_result(&self, org: String, r: SignResultRequest) -> Answer {
        let (rid, sino) = (
            r.request_id.filter(|s| !s.is_empty()),
            r.sino_id.filter(|s| !s.is_empty()),
        );
        let row = self
            .db(move |s| s.sign_request(&org, rid.as_deref(), sino.as_deref()))
            .await?
            .ok_or_else(|| fail(ApiCode::NotFound, "no such signing request"))?;
        json(SignResultResponse {
            request_id: row.request_id,
            sino_id: row.sino_id,
            message: row.message,
            signature: row.signature,
            state: match row.state {
                SignState::Pending => t::SignState::Pending,
                SignState::Done => t::SignState::Done,
                SignState::Rejected | SignState::Failed => t::SignState::Failed,
            },
            failed_reason: row.reason,
        })
    }

    async fn node_status(&self, org: String) -> Answer {
        let o = org.clone();
        let bindings = self.db(move |s| s.bindings(Some(&o))).await?;
        let b = bindings
            .into_iter()
            .find(|b| b.party == "a")
            .ok_or_else(|| {
                fail(
                    ApiCode::NotFound,
                    "the organization's node (party a) is not bound",
                )
            })?;
        let online = self.lock().online.contains_key(&b.node_id);
        json(MpcNodeStatus {
            node_id: b.node_id,
            online_status: if online {
                OnlineStatus::Online
            } else {
                OnlineStatus::Offline
            },
        })
    }

    async fn list_mpc_requests(&self, org: String, r: ListMpcRequestsRequest) -> Answer {
        let q = MpcRequestQuery {
            organization_id: Some(org),
            kind: r.business_exec_type.map(BusinessExecType::as_number),
            status: r.business_exec_status.map(BusinessExecStatus::as_number),
            sino_id: r.sino_id.clone().filter(|s| !s.is_empty()),
            offset: u64::from(r.page_index - 1) * u64::from(r.page_size),
            limit: u64::from(r.page_size),
        };
        let (total, rows) = self.db(move |s| s.list_mpc_requests(&q)).await?;
        json(ListMpcRequestsResponse {
            page_index: r.page_index,
            page_size: r.page_size,
            total_size: total,
            list: rows
                .into_iter()
                .map(|m| {
                    let status = BusinessExecStatus::try_from(i64::from(m.status))
                        .unwrap_or(BusinessExecStatus::Failed);
                    MpcRequestRecord {
                        request_id: m.request_id,
                        sino_id: m.sino_id,
                        request_time: t::format_request_time(
                            i64::try_from(m.created_at).unwrap_or(0),
                        ),
                        param: m.param,
                        business_exec_type: BusinessExecType::try_from(i64::from(m.kind))
                            .unwrap_or(BusinessExecType::KeyGen),
                        business_exec_status: status,
                        is_success: status == BusinessExecStatus::Success,
                        failed_reason: m.failed_reason,
                    }
                })
                .collect(),
        })
    }

    // ------------------------------------------------------------------ admin

    async fn create_organization(&self, r: CreateOrganizationRequest) -> Answer {
        let row = OrganizationRow {
            id: new_id("org"),
            name: r.name,
            vault_id: new_id("vault"),
            created_at: now_ms(),
        };
        let ro = row.clone();
        self.db(move |s| s.create_organization(&ro)).await?;
        tracing::info!(organization = %row.id, "coordinator: organization created");
        json(Organization {
            organization_id: row.id,
            name: row.name,
            vault_id: row.vault_id,
            created_at: row.created_at,
        })
    }

    async fn create_api_user(&self, r: CreateApiUserRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        let row = ApiUserRow {
            id: new_id("user"),
            organization_id: r.organization_id,
            name: r.name,
            api_key: r.api_key,
            created_at: now_ms(),
        };
        let ro = row.clone();
        self.db(move |s| s.create_api_user(&ro)).await?;
        tracing::info!(organization = %row.organization_id, user = %row.id, "coordinator: API user created");
        json(ApiUserInfo {
            user_id: row.id,
            organization_id: row.organization_id,
            name: row.name,
            api_key: row.api_key,
            created_at: row.created_at,
        })
    }

    async fn bind_node(&self, r: BindNodeRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        let row = NodeBindingRow {
            node_id: r.node_id.clone(),
            organization_id: r.organization_id.clone(),
            party: r.party_id.clone(),
            created_at: now_ms(),
            last_seen_at: None,
        };
        self.db(move |s| s.bind_node(&row)).await?;
        tracing::info!(organization = %r.organization_id, party = %r.party_id, "coordinator: node bound");
        let infos = self.node_infos(Some(r.organization_id)).await?;
        let info = infos
            .into_iter()
            .find(|n| n.node_id == r.node_id)
            .ok_or_else(|| fail(ApiCode::Internal, "binding vanished"))?;
        json(info)
    }

    async fn request_keygen(&self, r: RequestKeygenRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        let curve = match r.curve {
            admin::Curve::EcdsaSecp256k1 => Curve::Secp256k1,
            admin::Curve::EddsaEd25519 => Curve::Ed25519,
        };
        let key = self
            .start_keygen(&r.organization_id, curve, r.threshold)
            .await?;
        json(key_info(key))
    }

    pub(crate) async fn node_infos(&self, org: Option<String>) -> Result<Vec<NodeInfo>, Failure> {
        let o = org.clone();
        let bindings = self.db(move |s| s.bindings(o.as_deref())).await?;
        let o = org.clone();
        let keys = self.db(move |s| s.keys(o.as_deref())).await?;
        let online = self.lock().online.clone();
        Ok(bindings
            .into_iter()
            .map(|b| {
                let org_keys: Vec<&KeyRow> = keys
                    .iter()
                    .filter(|k| {
                        k.organization_id == b.organization_id && k.parties.contains(&b.party)
                    })
                    .collect();
                let status = if org_keys
                    .first()
                    .is_some_and(|k| k.status == KeyState::Failed)
                {
                    KeyStatus::Failed
                } else if !org_keys.is_empty()
                    && org_keys.iter().all(|k| k.status != KeyState::Generating)
                    && org_keys.iter().any(|k| k.status == KeyState::Generated)
                {
                    KeyStatus::Generated
                } else {
                    KeyStatus::Pending
                };
                NodeInfo {
                    online_status: if online.contains_key(&b.node_id) {
                        OnlineStatus::Online
                    } else {
                        OnlineStatus::Offline
                    },
                    node_id: b.node_id,
                    party_id: b.party,
                    organization_id: b.organization_id,
                    last_seen_at: b.last_seen_at,
                    key_share_status: status,
                }
            })
            .collect())
    }

    pub(crate) async fn key_infos(&self, org: Option<String>) -> Result<Vec<KeyInfo>, Failure> {
        let keys = self.db(move |s| s.keys(org.as_deref())).await?;
        Ok(keys.into_iter().map(key_info).collect())
    }

    // ------------------------------------------------------------------ console

    async fn console_state(self: Arc<Self>, req: Request) -> Response {
        let loopback = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(a)| a.ip().is_loopback());
        if !loopback {
            let headers = req.headers().clone();
            if let Err(f) = self
                .authenticate(&headers, CONSOLE_STATE_PATH, Bytes::new(), true)
                .await
            {
                tracing::info!(msg = %f.msg, "coordinator: console state refused");
                return (
                    StatusCode::FORBIDDEN,
                    "console state: loopback clients or admin signature only",
                )
                    .into_response();
            }
        }
        match self.console_json().await {
            Ok(v) => axum::Json(v).into_response(),
            Err(f) => (StatusCode::SERVICE_UNAVAILABLE, f.msg).into_response(),
        }
    }

    async fn console_json(&self) -> Answer {
        let orgs = self.db(|s| s.organizations()).await?;
        let nodes = self.node_infos(None).await?;
        let keys = self.key_infos(None).await?;
        let q = MpcRequestQuery {
            limit: 50,
            ..MpcRequestQuery::default()
        };
        let (_, recent) = self.db(move |s| s.list_mpc_requests(&q)).await?;
        Ok(serde_json::json!({
            "organizations": orgs.into_iter().map(|o| Organization {
                organization_id: o.id, name: o.name, vault_id: o.vault_id, created_at: o.created_at,
            }).collect::<Vec<_>>(),
            "nodes": nodes,
            "keys": keys,
            "requests": recent.into_iter().map(|m| serde_json::json!({
                "taskId": m.task_id,
                "organizationId": m.organization_id,
                "kind": m.kind,
                "sinoId": m.sino_id,
                "requestId": m.request_id,
                "status": m.status,
                "failedReason": m.failed_reason,
                "outcomes": serde_json::from_str::<serde_json::Value>(&m.outcomes).unwrap_or_default(),
                "requestTime": t::format_request_time(i64::try_from(m.created_at).unwrap_or(0)),
            })).collect::<Vec<_>>(),
        }))
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

fn key_info(k: KeyRow) -> KeyInfo {
    let xpub = match (k.curve, k.status, k.chain_code) {
        (Curve::Secp256k1, KeyState::Generated, Some(cc)) => {
            <[u8; 33]>::try_from(k.root_public_key.as_slice())
                .ok()
                .and_then(|root| mpc_tss::derive::xpub_secp256k1(&root, &cc).ok())
        }
        _ => None,
    };
    KeyInfo {
        key_id: k.id,
        organization_id: k.organization_id,
        curve: match k.curve {
            Curve::Secp256k1 => admin::Curve::EcdsaSecp256k1,
            Curve::Ed25519 => admin::Curve::EddsaEd25519,
        },
        threshold: k.threshold,
        parties: k.parties,
        status: match k.status {
            KeyState::Generating => KeyStatus::Pending,
            KeyState::Generated => KeyStatus::Generated,
            KeyState::Failed => KeyStatus::Failed,
        },
        root_public_key: hex::encode(&k.root_public_key),
        chain_code: k.chain_code.map(hex::encode).unwrap_or_default(),
        xpub,
        failed_reason: k.failure_reason,
        created_at: k.created_at,
    }
}
