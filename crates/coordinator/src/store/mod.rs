//! Persistence: the [`Store`] trait and its two backends, SQLite ([`SqliteStore`], embedded,
//! the default) and PostgreSQL ([`PostgresStore`], for a platform beyond one machine).
//! [`open`] picks one from the `database` setting.
//!
//! The trait is synchronous and object safe (`Arc<dyn Store>`); the coordinator calls it from
//! `tokio::task::spawn_blocking` (see `Coordinator::db`), so a blocking backend never stalls the
//! runtime's workers (the PostgreSQL client blocks on a runtime of its own, which is why stores
//! are also opened outside async contexts). Both backends pass the same conformance tests
//! (`conformance.rs`).
//!
//! Every method that changes several rows does so in one transaction.

#[cfg(test)]
mod conformance;
mod postgres;
mod sqlite;

pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::SqliteStore;

/// Opens the store that `database` names: a `postgres://` or `postgresql://` URL opens
/// PostgreSQL (with `options`), anything else is a SQLite file path (or `:memory:`). Applies
/// pending migrations. Blocking.
pub fn open(
    database: &str,
    options: &PostgresOptions,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if is_postgres_url(database) {
        Ok(std::sync::Arc::new(PostgresStore::connect(
            database, options,
        )?))
    } else {
        Ok(std::sync::Arc::new(SqliteStore::open(database)?))
    }
}

/// A `u64` (ms, counters) as the databases' signed 64-bit integer (saturating).
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored signed 64-bit integer back as `u64` (negative reads as 0).
fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A comma-joined list column (parties, culprits) as its items.
fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `database` is a PostgreSQL URL (rather than a SQLite path).
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

use mpc_transport::task::{Curve, EcdsaProtocol};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the row (the text says which).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database failed.
    #[error("database: {0}")]
    Backend(String),
}

/// An organization and its single vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRow {
    /// Id.
    pub id: String,
    /// Unique display name.
    pub name: String,
    /// The vault id.
    pub vault_id: String,
    /// ms since the epoch.
    pub created_at: u64,
    /// The threshold-ECDSA protocol of the organization's secp256k1 keys (chosen at creation;
    /// organizations from before the choice existed are CGGMP24).
    pub ecdsa_protocol: EcdsaProtocol,
}

/// An API user (organization member authenticating with a P-256 key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUserRow {
    /// Id.
    pub id: String,
    /// Organization.
    pub organization_id: String,
    /// Display name.
    pub name: String,
    /// Hex DER SPKI (unique).
    pub api_key: String,
    /// ms since the epoch.
    pub created_at: u64,
}

/// A node bound to a party of an organization (unique both ways).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBindingRow {
    /// The node id.
    pub node_id: String,
    /// Organization.
    pub organization_id: String,
    /// Party id.
    pub party: String,
    /// ms since the epoch.
    pub created_at: u64,
    /// Last time the node connected or disconnected.
    pub last_seen_at: Option<u64>,
}

/// Key generation status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Running.
    Generating,
    /// Every party reported the same key.
    Generated,
    /// Failed (see the reason).
    Failed,
}

impl KeyState {
    fn as_str(self) -> &'static str {
        match self {
            KeyState::Generating => "generating",
            KeyState::Generated => "generated",
            KeyState::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "generating" => Ok(KeyState::Generating),
            "generated" => Ok(KeyState::Generated),
            "failed" => Ok(KeyState::Failed),
            other => Err(StoreError::Backend(format!("bad key status {other:?}"))),
        }
    }
}

/// `secp256k1` / `ed25519`.
pub fn curve_str(curve: Curve) -> &'static str {
    match curve {
        Curve::Secp256k1 => "secp256k1",
        Curve::Ed25519 => "ed25519",
    }
}

/// The `keys.protocol` column: `cggmp24` / `dkls23` for secp256k1, `frost` for ed25519.
fn protocol_str(protocol: Option<EcdsaProtocol>) -> &'static str {
    protocol.map_or("frost", EcdsaProtocol::name)
}

fn parse_protocol(curve: Curve, s: &str) -> Result<Option<EcdsaProtocol>, StoreError> {
    match (curve, s) {
        (Curve::Ed25519, "frost") => Ok(None),
        (Curve::Secp256k1, p) => p
            .parse()
            .map(Some)
            .map_err(|e| StoreError::Backend(format!("keys.protocol: {e}"))),
        (_, other) => Err(StoreError::Backend(format!(
            "keys.protocol {other:?} does not fit curve {}",
            curve_str(curve)
        ))),
    }
}

fn parse_org_protocol(s: &str) -> Result<EcdsaProtocol, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Backend(format!("organizations.ecdsa_protocol: {e}")))
}

/// Migration 2 of both backends (the same SQL): the organization's ECDSA protocol and each
/// key's protocol. Everything from before is CGGMP24 (secp256k1) or FROST (ed25519).
const MIGRATION_PROTOCOLS: &str = r#"
ALTER TABLE organizations ADD COLUMN ecdsa_protocol TEXT NOT NULL DEFAULT 'cggmp24';
ALTER TABLE keys ADD COLUMN protocol TEXT NOT NULL DEFAULT 'cggmp24';
UPDATE keys SET protocol = 'frost' WHERE curve = 'ed25519';
"#;

/// Migration 3 (both stores): the share generation of a key after a refresh (`''`: the key
/// generation's shares).
const MIGRATION_GENERATIONS: &str = r#"
ALTER TABLE keys ADD COLUMN generation TEXT NOT NULL DEFAULT '';
"#;

/// Migration 4 (both stores): which coordinator instance drives each running row, and the
/// instances' heartbeats (rows from before have no owner, `''`); and at most one refresh or
/// repair (MPC run kinds 5, 6) running per key, whichever coordinator starts it (a second one
/// would overwrite the nodes' waiting shares).
const MIGRATION_OWNERS: &str = r#"
ALTER TABLE keys ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE sign_requests ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE mpc_requests ADD COLUMN owner TEXT NOT NULL DEFAULT '';
CREATE TABLE coordinators (id TEXT PRIMARY KEY, alive_until BIGINT NOT NULL);
CREATE UNIQUE INDEX one_reshare_per_key ON mpc_requests (sino_id) WHERE kind IN (5, 6) AND status = 0;
"#;

/// The running rows of the three tables, failed with reason `?1` at `?2` (each statement is
/// completed with its owner condition).
const FAIL_SQL: [&str; 3] = [
    "UPDATE keys SET status = 'failed', failure_reason = ?1, updated_at = ?2 WHERE status = 'generating'",
    "UPDATE sign_requests SET state = 'failed', reason = ?1, finished_at = ?2 WHERE state = 'pending'",
    "UPDATE mpc_requests SET status = 2, failed_reason = ?1, finished_at = ?2 WHERE status = 0",
];

/// Heartbeat rows of instances dead this long are deleted.
const FORGET_COORDINATORS_MS: u64 = 24 * 3600 * 1000;

fn parse_curve(s: &str) -> Result<Curve, StoreError> {
    match s {
        "secp256k1" => Ok(Curve::Secp256k1),
        "ed25519" => Ok(Curve::Ed25519),
        other => Err(StoreError::Backend(format!("bad curve {other:?}"))),
    }
}

/// A threshold key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Id (sent to nodes as `key_id`).
    pub id: String,
    /// Organization.
    pub organization_id: String,
    /// Curve.
    pub curve: Curve,
    /// Signers needed.
    pub threshold: u16,
    /// The threshold-ECDSA protocol of a secp256k1 key; `None` for ed25519 (FROST).
    pub ecdsa_protocol: Option<EcdsaProtocol>,
    /// Share holders in party order.
    pub parties: Vec<String>,
    /// Root public key (33 or 32 bytes); empty until generated.
    pub root_public_key: Vec<u8>,
    /// Chain code; `None` until generated.
    pub chain_code: Option<[u8; 32]>,
    /// Status.
    pub status: KeyState,
    /// Why it failed.
    pub failure_reason: String,
    /// The share generation in force after the last completed refresh; empty for the key
    /// generation's shares. Sign tasks name it.
    pub generation: String,
    /// ms since the epoch.
    pub created_at: u64,
    /// ms since the epoch.
    pub updated_at: u64,
}

/// A wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRow {
    /// Id.
    pub id: String,
    /// Organization.
    pub organization_id: String,
    /// Vault.
    pub vault_id: String,
    /// Name (unique per organization).
    pub name: String,
    /// Advanced features on.
    pub advanced: bool,
    /// The `create_wallets` requestId that made it.
    pub request_id: String,
    /// ms since the epoch.
    pub created_at: u64,
}

/// A derived address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRow {
    /// Id.
    pub id: String,
    /// Wallet.
    pub wallet_id: String,
    /// `m/...`.
    pub path: String,
    /// 0 secp256k1, 1 ed25519 (the API's `algorithmType`).
    pub algorithm: u8,
    /// The API's `encoding`.
    pub encoding: u8,
    /// The address.
    pub address: String,
    /// Public key hex.
    pub pubkey: String,
}

/// An address with its wallet, as the console lists an organization's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedAddress {
    /// Organization.
    pub organization_id: String,
    /// The wallet's name.
    pub wallet_name: String,
    /// The address.
    pub address: AddressRow,
}

/// State of a signing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignState {
    /// Running.
    Pending,
    /// Signed (and verified).
    Done,
    /// A callback refused.
    Rejected,
    /// Failed.
    Failed,
}

impl SignState {
    fn as_str(self) -> &'static str {
        match self {
            SignState::Pending => "pending",
            SignState::Done => "done",
            SignState::Rejected => "rejected",
            SignState::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(SignState::Pending),
            "done" => Ok(SignState::Done),
            "rejected" => Ok(SignState::Rejected),
            "failed" => Ok(SignState::Failed),
            other => Err(StoreError::Backend(format!("bad sign state {other:?}"))),
        }
    }
}

/// A signing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequestRow {
    /// The coordinator's id.
    pub sino_id: String,
    /// Organization.
    pub organization_id: String,
    /// The caller's id (unique per organization).
    pub request_id: String,
    /// `BusinessExecType` number (2 transaction, 3 message, 4 raw data).
    pub kind: u8,
    /// `ecdsa`, `eddsa`, `bip340`, `taproot`.
    pub algorithm: String,
    /// Callback sign_type.
    pub sign_type: u8,
    /// The key.
    pub key_id: String,
    /// `m/...`.
    pub path: String,
    /// The message as the API caller gave it.
    pub message: String,
    /// Hex of what is signed (digest, or the raw message for EdDSA).
    pub digest: String,
    /// State.
    pub state: SignState,
    /// Hex of the signature (or of the ciphertext when `encrypted`).
    pub signature: String,
    /// The signature is an ECIES ciphertext.
    pub encrypted: bool,
    /// Why it was rejected or failed.
    pub reason: String,
    /// Parties blamed.
    pub culprits: Vec<String>,
    /// ms since the epoch.
    pub created_at: u64,
    /// ms since the epoch.
    pub finished_at: Option<u64>,
}

/// One MPC run (keygen or signature) with the outcome per party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpcRequestRow {
    /// The task id.
    pub task_id: String,
    /// Organization.
    pub organization_id: String,
    /// `BusinessExecType` number.
    pub kind: u8,
    /// The key id (keygen) or the signing request's sino id.
    pub sino_id: String,
    /// The caller's request id (empty for keygen).
    pub request_id: String,
    /// Curve name (keygen) or digest hex (signing).
    pub param: String,
    /// `BusinessExecStatus` number: 0 running, 1 success, 2 failed.
    pub status: u8,
    /// Why it failed.
    pub failed_reason: String,
    /// JSON object: party → outcome summary.
    pub outcomes: String,
    /// ms since the epoch.
    pub created_at: u64,
    /// ms since the epoch.
    pub finished_at: Option<u64>,
}

/// Filter and page of [`Store::list_mpc_requests`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MpcRequestQuery {
    /// Organization (`None`: all, for the console).
    pub organization_id: Option<String>,
    /// Kind filter.
    pub kind: Option<u8>,
    /// Status filter.
    pub status: Option<u8>,
    /// Sino id filter.
    pub sino_id: Option<String>,
    /// Rows to skip.
    pub offset: u64,
    /// Rows to return.
    pub limit: u64,
}

/// How a sign request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignFinish {
    /// Final state (not pending).
    pub state: SignState,
    /// Signature hex.
    pub signature: String,
    /// Ciphertext.
    pub encrypted: bool,
    /// Reason.
    pub reason: String,
    /// Culprits.
    pub culprits: Vec<String>,
    /// ms since the epoch.
    pub at: u64,
}

/// The coordinator's persistent state. Synchronous and object safe; see the module docs.
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check.
    fn ping(&self) -> Result<(), StoreError>;

    /// Inserts an organization (unique name).
    fn create_organization(&self, org: &OrganizationRow) -> Result<(), StoreError>;
    /// One organization.
    fn organization(&self, id: &str) -> Result<Option<OrganizationRow>, StoreError>;
    /// All organizations, oldest first.
    fn organizations(&self) -> Result<Vec<OrganizationRow>, StoreError>;

    /// Inserts an API user (unique key; the organization must exist).
    fn create_api_user(&self, user: &ApiUserRow) -> Result<(), StoreError>;
    /// The API user with this key.
    fn api_user_by_key(&self, api_key: &str) -> Result<Option<ApiUserRow>, StoreError>;
    /// API users, oldest first (`None`: of every organization).
    fn api_users(&self, organization_id: Option<&str>) -> Result<Vec<ApiUserRow>, StoreError>;

    /// Binds a node (unique node id, unique party per organization).
    fn bind_node(&self, binding: &NodeBindingRow) -> Result<(), StoreError>;
    /// Binds `node_id` to `party` of `organization_id` in place of the node bound to it now (a
    /// lost node) and returns the old node id. `NotFound` when the party has no node,
    /// `Conflict` when `node_id` is bound anywhere. Atomic.
    fn replace_node(
        &self,
        organization_id: &str,
        party: &str,
        node_id: &str,
        at: u64,
    ) -> Result<String, StoreError>;
    /// The binding of a node.
    fn binding(&self, node_id: &str) -> Result<Option<NodeBindingRow>, StoreError>;
    /// An organization's bindings in party order (`None`: every binding).
    fn bindings(&self, organization_id: Option<&str>) -> Result<Vec<NodeBindingRow>, StoreError>;
    /// Records that a node connected or disconnected.
    fn touch_node(&self, node_id: &str, at: u64) -> Result<(), StoreError>;

    /// Inserts `key` (status generating) unless the organization has a key of that curve that
    /// is generating or generated; `Ok(false)` then. Atomic.
    fn create_key_if_absent(&self, key: &KeyRow) -> Result<bool, StoreError>;
    /// Ends a generating key; `Ok(false)` if it was not generating.
    fn finish_key(
        &self,
        key_id: &str,
        status: KeyState,
        root_public_key: &[u8],
        chain_code: Option<[u8; 32]>,
        reason: &str,
        at: u64,
    ) -> Result<bool, StoreError>;
    /// Switches a generated key from share generation `from` to `to` (a completed refresh);
    /// `Ok(false)` if the key is not generated or its generation is no longer `from`. One
    /// conditional update.
    fn switch_key_generation(
        &self,
        key_id: &str,
        from: &str,
        to: &str,
        at: u64,
    ) -> Result<bool, StoreError>;
    /// An organization's keys (`None`: all), newest first.
    fn keys(&self, organization_id: Option<&str>) -> Result<Vec<KeyRow>, StoreError>;
    /// The organization's generated key of a curve (the newest).
    fn generated_key(
        &self,
        organization_id: &str,
        curve: Curve,
    ) -> Result<Option<KeyRow>, StoreError>;

    /// Creates wallets for a `create_wallets` request, or returns the wallets an earlier call
    /// with the same (organization, request id) created. Names are unique per organization.
    fn create_wallets(
        &self,
        organization_id: &str,
        request_id: &str,
        wallets: &[WalletRow],
    ) -> Result<Vec<WalletRow>, StoreError>;
    /// A wallet of the organization.
    fn wallet(
        &self,
        organization_id: &str,
        wallet_id: &str,
    ) -> Result<Option<WalletRow>, StoreError>;

    /// Records addresses and returns the stored rows at `(wallet, path, algorithm)`. An existing
    /// (wallet, path, algorithm, encoding) keeps its id and takes the given address and public
    /// key (the same key gives the same address, except where an older build chose another
    /// network for the coin type).
    fn save_addresses(&self, rows: &[AddressRow]) -> Result<Vec<AddressRow>, StoreError>;
    /// Addresses of a wallet at a path.
    fn addresses_at(&self, wallet_id: &str, path: &str) -> Result<Vec<AddressRow>, StoreError>;
    /// Addresses with their wallets (`None`: of every organization), newest wallets first,
    /// then by path; at most `limit`.
    fn list_addresses(
        &self,
        organization_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ListedAddress>, StoreError>;

    /// Inserts a signing request, or returns the existing one with the same (organization,
    /// request id) (`bool` true when inserted). Race-safe: the UNIQUE constraint decides.
    fn insert_sign_request(
        &self,
        row: &SignRequestRow,
    ) -> Result<(SignRequestRow, bool), StoreError>;
    /// A signing request by the caller's id or the sino id.
    fn sign_request(
        &self,
        organization_id: &str,
        request_id: Option<&str>,
        sino_id: Option<&str>,
    ) -> Result<Option<SignRequestRow>, StoreError>;
    /// Ends a pending signing request; `Ok(false)` if it was not pending.
    fn finish_sign_request(&self, sino_id: &str, finish: &SignFinish) -> Result<bool, StoreError>;

    /// Records an MPC run.
    fn insert_mpc_request(&self, row: &MpcRequestRow) -> Result<(), StoreError>;
    /// Ends an MPC run.
    fn finish_mpc_request(
        &self,
        task_id: &str,
        status: u8,
        failed_reason: &str,
        outcomes: &str,
        at: u64,
    ) -> Result<(), StoreError>;
    /// MPC runs, newest first, and the number matching.
    fn list_mpc_requests(
        &self,
        query: &MpcRequestQuery,
    ) -> Result<(u64, Vec<MpcRequestRow>), StoreError>;

    /// Fails what is left running (keys generating, signing requests pending, MPC runs in
    /// progress) without an owner (recorded before owners existed) or owned by this store's
    /// owner: their tasks died with the process. Returns how many rows.
    fn fail_unfinished(&self, reason: &str, at: u64) -> Result<u64, StoreError>;
    /// From now on, rows this store inserts (keys, sign requests, MPC requests) belong to the
    /// coordinator instance `owner` (a fresh id per coordinator process).
    fn set_owner(&self, owner: &str);
    /// The owner is alive until `alive_until` (ms); coordinators renew it while they run.
    fn heartbeat(&self, alive_until: u64) -> Result<(), StoreError>;
    /// Fails the running rows whose owner is no longer alive at `now` (it stopped without
    /// finishing them), each once; rows without an owner are left to `fail_unfinished`.
    fn fail_orphaned(&self, reason: &str, now: u64) -> Result<u64, StoreError>;

    /// Replay protection: records `(key_hash, nonce_ms)`, forgetting nonces older than
    /// `forget_before_ms`; `Ok(true)` when it was new. Atomic.
    fn record_nonce(
        &self,
        key_hash: &str,
        nonce_ms: u64,
        forget_before_ms: u64,
    ) -> Result<bool, StoreError>;
}

pub(crate) use self::sqlite::now_ms;
