//! A client of the coordinator's HTTP API: BIZ-API authentication ([`mpc_api::auth::sign_request`]),
//! the `{code, msg, success, requestId, data}` envelope, typed WaaS and admin calls. TLS trusts
//! the devnet's CA only.

use std::time::{Duration, Instant};

use mpc_api::envelope::Envelope;
use mpc_api::types::{
    self, AddressAlgorithm, CreateWalletsRequest, CreateWalletsResponse, GenAddressByPathRequest,
    GenAddressByPathResponse, SignMessageRequest, SignMessageResponse, SignRawDataRequest,
    SignRawDataResponse, SignResultRequest, SignResultResponse, SignState,
    admin::{
        ApiUserInfo, BindNodeRequest, CreateApiUserRequest, CreateOrganizationRequest,
        EcdsaProtocol, KeyInfo, KeyRefreshInfo, ListKeyRefreshesRequest, ListKeysRequest,
        ListNodesRequest, NodeInfo, Organization, RefreshKeyRequest, RefreshStatus,
        RequestKeygenRequest,
    },
};
use mpc_wire::signature::EcdsaSigner;
use p256::ecdsa::SigningKey;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The coordinator's sign_transaction extension (sign_type 1), as mpc-api defines it.
pub use mpc_api::types::{PATH_SIGN_TRANSACTION, SignTransactionRequest};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No HTTP exchange.
    #[error("{path}: {reason}")]
    Transport {
        /// The path called.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The API answered with an error envelope (or a non-envelope body).
    #[error("{path}: HTTP {http}: code {code}: {msg}")]
    Api {
        /// The path called.
        path: String,
        /// HTTP status.
        http: u16,
        /// Envelope code (0 when there was no envelope).
        code: u16,
        /// Envelope message or body.
        msg: String,
    },
    /// `data` was not what the call returns.
    #[error("{path}: unexpected data: {reason}")]
    Decode {
        /// The path called.
        path: String,
        /// Why.
        reason: String,
    },
    /// Bounded polling ran out.
    #[error("{what}: no result after {secs} s")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        secs: u64,
    },
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// An HTTPS client of the platform with one BIZ-API key. Given several coordinators' base URLs
/// it calls one and moves to the next when a connection cannot be made (the request never left,
/// so nothing is sent twice).
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    bases: std::sync::Arc<Vec<String>>,
    /// Index into `bases` of the coordinator in use (shared by clones).
    current: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Each call goes to the next coordinator in turn ([`ApiClient::spread`]).
    spread: bool,
    key: EcdsaSigner,
    /// Last nonce used (shared by clones): nonces are single use per key, so two requests in
    /// the same millisecond take consecutive values.
    last_nonce: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("bases", &self.bases)
            .finish_non_exhaustive()
    }
}

/// An HTTPS client trusting only `ca_pem` (and no proxy).
pub fn https_client(ca_pem: &[u8]) -> Result<reqwest::Client, String> {
    let ca = reqwest::Certificate::from_pem(ca_pem).map_err(|e| chain(&e))?;
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| chain(&e))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl ApiClient {
    /// A client of `base` (`https://127.0.0.1:<port>`) signing with `key`.
    pub fn new(http: reqwest::Client, base: &str, key: SigningKey) -> Self {
        Self::with_bases(http, &[base.to_owned()], key)
    }

    /// A client of several coordinators serving one platform (the first is called first).
    pub fn with_bases(http: reqwest::Client, bases: &[String], key: SigningKey) -> Self {
        Self {
            http,
            bases: std::sync::Arc::new(
                bases
                    .iter()
                    .map(|b| b.trim_end_matches('/').to_owned())
                    .collect(),
            ),
            current: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            spread: false,
            key: EcdsaSigner::new(&key),
            last_nonce: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }

    /// This client with calls spread over the coordinators in turn (a load balancer's round
    /// robin), instead of staying on one until it fails. Any coordinator answers any call: the
    /// state is in the shared database.
    pub fn spread(mut self) -> Self {
        self.spread = true;
        self
    }

    /// A nonce (ms timestamp) above every earlier one of this client.
    fn next_nonce(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let now = now_ms();
        let mut last = self.last_nonce.load(Ordering::Relaxed);
        loop {
            let next = now.max(last + 1);
            match self.last_nonce.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// The base URL in use.
    pub fn base(&self) -> &str {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        self.bases
            .get(i % self.bases.len().max(1))
            .map_or("", String::as_str)
    }

    /// The caller's `BIZ-API-KEY`.
    pub fn api_key_hex(&self) -> String {
        mpc_wire::keys::api_key_hex(self.key.verifying_key())
    }

    /// POSTs `body` (exact bytes) to `path`, signed; returns the envelope's `data`. When the
    /// coordinator in use cannot be connected to, the next one is tried (each once).
    pub async fn call_raw(&self, path: &str, body: Vec<u8>) -> Result<Value, ApiError> {
        use std::sync::atomic::Ordering;
        let n = self.bases.len().max(1);
        let first = if self.spread {
            self.current.fetch_add(1, Ordering::Relaxed) % n
        } else {
            self.current.load(Ordering::Relaxed)
        };
        let mut attempt = 0;
        let resp = loop {
            let i = (first + attempt) % n;
            let base = self.bases.get(i).map_or("", String::as_str);
            // A fresh nonce per attempt: nonces are single use.
            let headers = mpc_api::auth::sign_request(&self.key, path, &body, self.next_nonce());
            let mut req = self
                .http
                .post(format!("{base}{path}"))
                .header("Content-Type", "application/json");
            for (k, v) in headers.pairs() {
                req = req.header(k, v);
            }
            match req.body(body.clone()).send().await {
                Ok(r) => {
                    if attempt > 0 && !self.spread {
                        self.current.store(i, Ordering::Relaxed);
                    }
                    break r;
                }
                // Not connected: the request was not sent; another coordinator may answer.
                Err(e) if e.is_connect() && attempt + 1 < n => attempt += 1,
                Err(e) => {
                    return Err(ApiError::Transport {
                        path: path.to_owned(),
                        reason: chain(&e),
                    });
                }
            }
        };
        let http = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| ApiError::Transport {
            path: path.to_owned(),
            reason: chain(&e),
        })?;
        let env: Envelope<Value> = serde_json::from_str(&text).map_err(|_| ApiError::Api {
            path: path.to_owned(),
            http,
            code: 0,
            msg: text.chars().take(300).collect(),
        })?;
        if !env.success {
            return Err(ApiError::Api {
                path: path.to_owned(),
                http,
                code: env.code.as_u16(),
                msg: env.msg,
            });
        }
        Ok(env.data.unwrap_or(Value::Null))
    }

    /// POSTs `req` as JSON to `path`; decodes `data` as `T`.
    pub async fn call<Req: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
    ) -> Result<T, ApiError> {
        let body = serde_json::to_vec(req).map_err(|e| ApiError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let data = self.call_raw(path, body).await?;
        serde_json::from_value(data).map_err(|e| ApiError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    // ------------------------------------------------------------ WaaS

    /// `create_wallets` with one advanced wallet named `name`.
    pub async fn create_wallet(
        &self,
        request_id: &str,
        vault_id: &str,
        name: &str,
    ) -> Result<types::WalletInfoResult, ApiError> {
        let req = CreateWalletsRequest {
            request_id: request_id.to_owned(),
            vault_id: vault_id.to_owned(),
            count: 1,
            wallet_infos: vec![types::WalletInfo {
                wallet_name: name.to_owned(),
                advanced_enabled: types::Switch::On,
            }],
        };
        let mut list: CreateWalletsResponse = self.call(types::PATH_CREATE_WALLETS, &req).await?;
        list.pop().ok_or_else(|| ApiError::Decode {
            path: types::PATH_CREATE_WALLETS.into(),
            reason: "no wallet in the reply".into(),
        })
    }

    /// `gen_address_by_path`: the coin type's address of the key at `m/1/1/{coin_type}/{index}`,
    /// with every address of that chain in `addresses`.
    pub async fn gen_address(
        &self,
        vault_id: &str,
        wallet_id: &str,
        algorithm: AddressAlgorithm,
        coin_type: u32,
        index: u32,
    ) -> Result<GenAddressByPathResponse, ApiError> {
        let req = GenAddressByPathRequest {
            vault_id: vault_id.to_owned(),
            wallet_id: wallet_id.to_owned(),
            index,
            algorithm_type: algorithm,
            coin_type,
        };
        self.call(types::PATH_GEN_ADDRESS_BY_PATH, &req).await
    }

    /// `sign_message` (sign_type 2).
    pub async fn sign_message(
        &self,
        req: &SignMessageRequest,
    ) -> Result<SignMessageResponse, ApiError> {
        self.call(types::PATH_SIGN_MESSAGE, req).await
    }

    /// `sign_raw_data` (sign_type 3).
    pub async fn sign_raw_data(
        &self,
        req: &SignRawDataRequest,
    ) -> Result<SignRawDataResponse, ApiError> {
        self.call(types::PATH_SIGN_RAW_DATA, req).await
    }

    /// The sign_transaction extension (sign_type 1).
    pub async fn sign_transaction(
        &self,
        req: &SignTransactionRequest,
    ) -> Result<SignRawDataResponse, ApiError> {
        self.call(PATH_SIGN_TRANSACTION, req).await
    }

    /// `sign_result` by request id, answered at once.
    pub async fn sign_result(&self, request_id: &str) -> Result<SignResultResponse, ApiError> {
        self.sign_result_waiting(request_id, Duration::ZERO).await
    }

    /// `sign_result` by request id as a long poll: a platform with the `waitMs` extension
    /// answers when the request finishes or after `wait` (at most
    /// [`types::MAX_SIGN_RESULT_WAIT_MS`]), whichever comes first.
    pub async fn sign_result_waiting(
        &self,
        request_id: &str,
        wait: Duration,
    ) -> Result<SignResultResponse, ApiError> {
        let wait_ms = u64::try_from(wait.as_millis())
            .unwrap_or(u64::MAX)
            .min(types::MAX_SIGN_RESULT_WAIT_MS);
        let req = SignResultRequest {
            request_id: Some(request_id.to_owned()),
            sino_id: None,
            wait_ms: (wait_ms > 0).then_some(wait_ms),
        };
        self.call(types::PATH_SIGN_RESULT, &req).await
    }

    /// Waits until the request is done or failed, at most `timeout`: long polls
    /// ([`sign_result_waiting`](Self::sign_result_waiting)); a platform that answers a pending
    /// request at once (no `waitMs` extension, or no free waiting slot) is asked again every
    /// 250 ms.
    pub async fn wait_sign_result(
        &self,
        request_id: &str,
        timeout: Duration,
    ) -> Result<SignResultResponse, ApiError> {
        let end = Instant::now() + timeout;
        loop {
            let wait = end.saturating_duration_since(Instant::now());
            let asked = Instant::now();
            let r = self.sign_result_waiting(request_id, wait).await?;
            if r.state != SignState::Pending {
                return Ok(r);
            }
            if Instant::now() >= end {
                return Err(ApiError::Timeout {
                    what: format!("sign request {request_id}"),
                    secs: timeout.as_secs(),
                });
            }
            let waited = asked.elapsed();
            if waited < wait.min(Duration::from_millis(types::MAX_SIGN_RESULT_WAIT_MS)) {
                let step = Duration::from_millis(250).saturating_sub(waited);
                tokio::time::sleep(step.min(end.saturating_duration_since(Instant::now()))).await;
            }
        }
    }

    /// `mpcnode/list_mpc_requests` (first page of 50), raw.
    pub async fn list_mpc_requests(&self) -> Result<types::ListMpcRequestsResponse, ApiError> {
        let req = types::ListMpcRequestsRequest {
            business_exec_type: None,
            business_exec_status: None,
            sino_id: None,
            page_index: 1,
            page_size: 50,
        };
        self.call(types::PATH_LIST_MPC_REQUESTS, &req).await
    }

    // ------------------------------------------------------------ admin

    /// Creates an organization (and its vault) whose secp256k1 keys use `ecdsa_protocol`
    /// (`None`: the platform's default).
    pub async fn create_organization(
        &self,
        name: &str,
        ecdsa_protocol: Option<EcdsaProtocol>,
    ) -> Result<Organization, ApiError> {
        let req = CreateOrganizationRequest {
            name: name.to_owned(),
            ecdsa_protocol,
        };
        self.call(types::admin::PATH_CREATE_ORGANIZATION, &req)
            .await
    }

    /// Registers an API user's key.
    pub async fn create_api_user(
        &self,
        organization_id: &str,
        name: &str,
        api_key_hex: &str,
    ) -> Result<ApiUserInfo, ApiError> {
        let req = CreateApiUserRequest {
            organization_id: organization_id.to_owned(),
            name: name.to_owned(),
            api_key: api_key_hex.to_owned(),
        };
        self.call(types::admin::PATH_CREATE_API_USER, &req).await
    }

    /// Binds `node_id` to `party`.
    pub async fn bind_node(
        &self,
        organization_id: &str,
        party: &str,
        node_id: &str,
    ) -> Result<NodeInfo, ApiError> {
        let req = BindNodeRequest {
            organization_id: organization_id.to_owned(),
            party_id: party.to_owned(),
            node_id: node_id.to_owned(),
        };
        self.call(types::admin::PATH_BIND_NODE, &req).await
    }

    /// The organization's nodes.
    pub async fn list_nodes(&self, organization_id: &str) -> Result<Vec<NodeInfo>, ApiError> {
        let req = ListNodesRequest {
            organization_id: organization_id.to_owned(),
        };
        self.call(types::admin::PATH_LIST_NODES, &req).await
    }

    /// The organization's keys.
    pub async fn list_keys(&self, organization_id: &str) -> Result<Vec<KeyInfo>, ApiError> {
        let req = ListKeysRequest {
            organization_id: organization_id.to_owned(),
        };
        self.call(types::admin::PATH_LIST_KEYS, &req).await
    }

    /// Starts a key generation with an explicit threshold.
    pub async fn request_keygen(&self, req: &RequestKeygenRequest) -> Result<KeyInfo, ApiError> {
        self.call(types::admin::PATH_REQUEST_KEYGEN, req).await
    }

    /// Starts a refresh of a DKLs23 key's shares.
    pub async fn refresh_key(
        &self,
        organization_id: &str,
        key_id: &str,
    ) -> Result<KeyRefreshInfo, ApiError> {
        let req = RefreshKeyRequest {
            organization_id: organization_id.to_owned(),
            key_id: key_id.to_owned(),
        };
        self.call(types::admin::PATH_REFRESH_KEY, &req).await
    }

    /// Binds another node to a party whose node is lost (`node/replace`).
    pub async fn replace_node(
        &self,
        organization_id: &str,
        party_id: &str,
        node_id: &str,
    ) -> Result<NodeInfo, ApiError> {
        let req = types::admin::ReplaceNodeRequest {
            organization_id: organization_id.to_owned(),
            party_id: party_id.to_owned(),
            node_id: node_id.to_owned(),
        };
        self.call(types::admin::PATH_REPLACE_NODE, &req).await
    }

    /// Starts the repair of `party_id`'s share of a DKLs23 key on the node bound to it now.
    pub async fn repair_key(
        &self,
        organization_id: &str,
        key_id: &str,
        party_id: &str,
    ) -> Result<KeyRefreshInfo, ApiError> {
        let req = types::admin::RepairKeyRequest {
            organization_id: organization_id.to_owned(),
            key_id: key_id.to_owned(),
            party_id: party_id.to_owned(),
        };
        self.call(types::admin::PATH_REPAIR_KEY, &req).await
    }

    /// A key's refreshes, newest first.
    pub async fn key_refreshes(
        &self,
        organization_id: &str,
        key_id: &str,
    ) -> Result<Vec<KeyRefreshInfo>, ApiError> {
        self.reshares(
            types::admin::PATH_LIST_KEY_REFRESHES,
            organization_id,
            key_id,
        )
        .await
    }

    /// A key's repairs, newest first.
    pub async fn key_repairs(
        &self,
        organization_id: &str,
        key_id: &str,
    ) -> Result<Vec<KeyRefreshInfo>, ApiError> {
        self.reshares(types::admin::PATH_LIST_KEY_REPAIRS, organization_id, key_id)
            .await
    }

    async fn reshares(
        &self,
        list: &str,
        organization_id: &str,
        key_id: &str,
    ) -> Result<Vec<KeyRefreshInfo>, ApiError> {
        let req = ListKeyRefreshesRequest {
            organization_id: organization_id.to_owned(),
            key_id: key_id.to_owned(),
        };
        self.call(list, &req).await
    }

    /// Polls a refresh until it is no longer pending (every 100 ms), or `timeout`.
    pub async fn wait_refresh(
        &self,
        organization_id: &str,
        key_id: &str,
        task_id: &str,
        timeout: Duration,
    ) -> Result<KeyRefreshInfo, ApiError> {
        self.wait_reshare(
            types::admin::PATH_LIST_KEY_REFRESHES,
            organization_id,
            key_id,
            task_id,
            timeout,
        )
        .await
    }

    /// Polls a repair until it is no longer pending (every 100 ms), or `timeout`.
    pub async fn wait_repair(
        &self,
        organization_id: &str,
        key_id: &str,
        task_id: &str,
        timeout: Duration,
    ) -> Result<KeyRefreshInfo, ApiError> {
        self.wait_reshare(
            types::admin::PATH_LIST_KEY_REPAIRS,
            organization_id,
            key_id,
            task_id,
            timeout,
        )
        .await
    }

    async fn wait_reshare(
        &self,
        list: &str,
        organization_id: &str,
        key_id: &str,
        task_id: &str,
        timeout: Duration,
    ) -> Result<KeyRefreshInfo, ApiError> {
        let end = Instant::now() + timeout;
        loop {
            let found = self
                .reshares(list, organization_id, key_id)
                .await?
                .into_iter()
                .find(|r| r.task_id == task_id);
            match found {
                Some(r) if r.status != RefreshStatus::Pending => return Ok(r),
                _ if Instant::now() >= end => {
                    return Err(ApiError::Transport {
                        path: list.to_owned(),
                        reason: format!(
                            "run {task_id} of key {key_id} still pending after {timeout:?}"
                        ),
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}
