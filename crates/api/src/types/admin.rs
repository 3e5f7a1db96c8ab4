//! Admin (console) API: our design, since the public one is not published.
//!
//! Same conventions as the WaaS endpoints: `POST` with a JSON body, camelCase fields, the
//! [`Envelope`](crate::envelope::Envelope) around every answer, and BIZ-API authentication
//! (with the keys of platform administrators, which are not organization API users).
//!
//! The flow the console drives: create an organization, register its API users' public keys,
//! bind each party (`a` customer node, `b`, `c` platform nodes) to a node id; once every party
//! is bound and online the coordinator starts a key generation per curve by itself with the
//! configured default threshold ([`DEFAULT_THRESHOLD`], 3-of-3), and [`RequestKeygenRequest`]
//! starts one explicitly, e.g. 2-of-3 ([`MIN_THRESHOLD`]), for a curve that has no key
//! `pending`/`generated` (before the automatic one, or after a failure).

pub use mpc_wire::scheme::EcdsaProtocol;
use serde::{Deserialize, Serialize};

use super::validate::{Validate, ValidationError, id, name};
use super::waas::OnlineStatus;

/// `POST /v1/admin/organization/create`.
pub const PATH_CREATE_ORGANIZATION: &str = "/v1/admin/organization/create";
/// `POST /v1/admin/api_user/create`.
pub const PATH_CREATE_API_USER: &str = "/v1/admin/api_user/create";
/// `POST /v1/admin/node/bind`.
pub const PATH_BIND_NODE: &str = "/v1/admin/node/bind";
/// `POST /v1/admin/node/list`.
pub const PATH_LIST_NODES: &str = "/v1/admin/node/list";
/// `POST /v1/admin/key/list`.
pub const PATH_LIST_KEYS: &str = "/v1/admin/key/list";
/// `POST /v1/admin/key/keygen`.
pub const PATH_REQUEST_KEYGEN: &str = "/v1/admin/key/keygen";
/// `POST /v1/admin/key/refresh`.
pub const PATH_REFRESH_KEY: &str = "/v1/admin/key/refresh";
/// `POST /v1/admin/key/refresh/list`.
pub const PATH_LIST_KEY_REFRESHES: &str = "/v1/admin/key/refresh/list";
/// Replace the node of a party (a lost node): [`ReplaceNodeRequest`] → [`NodeInfo`].
pub const PATH_REPLACE_NODE: &str = "/v1/admin/node/replace";
/// Rebuild a party's lost share of a DKLs23 key: [`RepairKeyRequest`] → [`KeyRefreshInfo`].
pub const PATH_REPAIR_KEY: &str = "/v1/admin/key/repair";
/// A key's repairs: [`ListKeyRefreshesRequest`] → [`ListKeyRefreshesResponse`].
pub const PATH_LIST_KEY_REPAIRS: &str = "/v1/admin/key/repair/list";

/// The party ids of the setup, in order.
pub const PARTY_IDS: [&str; 3] = ["a", "b", "c"];
/// Signing threshold of automatic key generation (t = 3 signers of n = 3).
pub const DEFAULT_THRESHOLD: u16 = 3;
/// Smallest threshold an admin may request (2-of-3).
pub const MIN_THRESHOLD: u16 = 2;

fn party_id(field: &str, value: &str) -> Result<(), ValidationError> {
    if PARTY_IDS.contains(&value) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!("must be one of {PARTY_IDS:?}"),
        ))
    }
}

fn node_id(field: &str, value: &str) -> Result<(), ValidationError> {
    mpc_wire::keys::verifying_key_from_node_id(value)
        .map(|_| ())
        .map_err(|e| ValidationError::new(field, e.to_string()))
}

/// A key's curve and scheme, spelled as in the callback protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Curve {
    /// CGGMP ECDSA on secp256k1 (also BIP340/Taproot signing).
    #[serde(rename = "ecdsa-secp256k1")]
    EcdsaSecp256k1,
    /// FROST EdDSA on ed25519.
    #[serde(rename = "eddsa-ed25519")]
    EddsaEd25519,
}

/// Key share status of a key or of a node's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Key generation has not finished.
    Pending,
    /// The key exists and every party holds its share.
    Generated,
    /// Key generation failed (see `failedReason`).
    Failed,
}

// ---------------------------------------------------------------- organizations

/// Request: create an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrganizationRequest {
    /// Display name, unique (409 otherwise).
    pub name: String,
    /// Threshold-ECDSA protocol of the organization's secp256k1 keys, fixed for good:
    /// `dkls23` or `cggmp24`. Absent: the platform's default (`[coordinator]
    /// default-ecdsa-protocol`, shipped as `dkls23`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecdsa_protocol: Option<EcdsaProtocol>,
}

impl Validate for CreateOrganizationRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        name("name", &self.name, true)
    }
}

/// An organization. Each has one vault, created with it, that the WaaS endpoints'
/// `vaultId` names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    /// Id.
    pub organization_id: String,
    /// Display name.
    pub name: String,
    /// The organization's vault.
    pub vault_id: String,
    /// Creation time, ms since the Unix epoch.
    pub created_at: u64,
    /// Threshold-ECDSA protocol of its secp256k1 keys (`dkls23` or `cggmp24`).
    pub ecdsa_protocol: EcdsaProtocol,
}

// ---------------------------------------------------------------- API users

/// Request: register an API user's public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateApiUserRequest {
    /// The organization the user acts for.
    pub organization_id: String,
    /// Display name.
    pub name: String,
    /// The `BIZ-API-KEY`: canonical lowercase hex of the P-256 DER SPKI.
    pub api_key: String,
}

impl Validate for CreateApiUserRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("organizationId", &self.organization_id)?;
        name("name", &self.name, true)?;
        let key = mpc_wire::keys::verifying_key_from_api_key_hex(&self.api_key)
            .map_err(|e| ValidationError::new("apiKey", e.to_string()))?;
        if mpc_wire::keys::api_key_hex(&key) != self.api_key {
            return Err(ValidationError::new(
                "apiKey",
                "not canonical (lowercase hex, uncompressed point)",
            ));
        }
        Ok(())
    }
}

/// An API user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiUserInfo {
    /// Id.
    pub user_id: String,
    /// The organization.
    pub organization_id: String,
    /// Display name.
    pub name: String,
    /// The `BIZ-API-KEY`.
    pub api_key: String,
    /// Creation time, ms since the Unix epoch.
    pub created_at: u64,
}

// ---------------------------------------------------------------- nodes

/// Request: bind a node id to a party of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindNodeRequest {
    /// The organization.
    pub organization_id: String,
    /// The party, `a`, `b` or `c` (`a` is the customer's node).
    pub party_id: String,
    /// The node id the node printed at `init` (`sino…`, 248 characters, canonical).
    pub node_id: String,
}

impl Validate for BindNodeRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("organizationId", &self.organization_id)?;
        party_id("partyId", &self.party_id)?;
        node_id("nodeId", &self.node_id)
    }
}

/// Request: bind another node to a party that already has one (`node/replace`), when the
/// party's node is lost. The old node is unbound (the proxy refuses it from its next
/// connection; no task goes to it). The keys stay as they are: each DKLs23 key of the
/// organization needs a repair (`key/repair`) before the new node holds a share of it; until
/// then the other parties sign without it where the threshold allows, and refuse tasks naming
/// the new node (their stored committee names the old one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaceNodeRequest {
    /// The organization.
    pub organization_id: String,
    /// The party, `a`, `b` or `c`.
    pub party_id: String,
    /// The new node's id (`sino…`, as it printed at `init`); bound nowhere yet.
    pub node_id: String,
}

impl Validate for ReplaceNodeRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("organizationId", &self.organization_id)?;
        party_id("partyId", &self.party_id)?;
        node_id("nodeId", &self.node_id)
    }
}

/// Request: list an organization's nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListNodesRequest {
    /// The organization.
    pub organization_id: String,
}

impl Validate for ListNodesRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("organizationId", &self.organization_id)
    }
}

/// A bound node (response data of bind and, as an array, of list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// The node id.
    pub node_id: String,
    /// The party it plays.
    pub party_id: String,
    /// The organization.
    pub organization_id: String,
    /// Connection status.
    pub online_status: OnlineStatus,
    /// Last time the node was connected, ms since the Unix epoch; absent if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<u64>,
    /// Share status of the organization's keys on this node: `generated` when it holds a
    /// share of every key, `failed` if the last key generation failed, else `pending`.
    pub key_share_status: KeyStatus,
}

/// Response data of list nodes.
pub type ListNodesResponse = Vec<NodeInfo>;

// ---------------------------------------------------------------- keys

/// Request: list an organization's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListKeysRequest {
    /// The organization.
    pub organization_id: String,
}

impl Validate for ListKeysRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("organizationId", &self.organization_id)
    }
}

/// A threshold key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// Id (the key generation's `sinoId`).
    pub key_id: String,
    /// The organization.
    pub organization_id: String,
    /// Curve and scheme.
    pub curve: Curve,
    /// Signers needed (2 or 3).
    pub threshold: u16,
    /// Threshold-ECDSA protocol (`dkls23` or `cggmp24`) of a secp256k1 key; absent for
    /// ed25519 (FROST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecdsa_protocol: Option<EcdsaProtocol>,
    /// Share holders, in party order.
    pub parties: Vec<String>,
    /// Status.
    pub status: KeyStatus,
    /// Root public key, hex: compressed SEC1 (33 bytes) or ed25519 (32 bytes); empty until
    /// generated.
    pub root_public_key: String,
    /// Chain code, 32 bytes hex; empty until generated.
    pub chain_code: String,
    /// BIP-32 extended public key (mainnet `xpub`) of the root, secp256k1 only; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xpub: Option<String>,
    /// Why generation failed; empty otherwise.
    pub failed_reason: String,
    /// The share generation in force: empty for the key generation's shares, else the
    /// generation of the last completed refresh ([`PATH_REFRESH_KEY`]).
    #[serde(default)]
    pub generation: String,
    /// Creation time of the request, ms since the Unix epoch.
    pub created_at: u64,
}

/// Response data of list keys.
pub type ListKeysResponse = Vec<KeyInfo>;

/// Request: start a t-of-3 key generation among `parties` (all three must be bound and
/// online; 409 if a key of this curve is generated or pending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestKeygenRequest {
    /// The organization.
    pub organization_id: String,
    /// Curve and scheme.
    pub curve: Curve,
    /// 2 or 3.
    pub threshold: u16,
    /// Must be `["a", "b", "c"]` in this order.
    pub parties: Vec<String>,
}

impl Validate for RequestKeygenRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("organizationId", &self.organization_id)?;
        if !(MIN_THRESHOLD..=DEFAULT_THRESHOLD).contains(&self.threshold) {
            return Err(ValidationError::new(
                "threshold",
                format!("must be {MIN_THRESHOLD} to {DEFAULT_THRESHOLD} (t-of-3 setup)"),
            ));
        }
        if self.parties.iter().map(String::as_str).ne(PARTY_IDS) {
            return Err(ValidationError::new(
                "parties",
                format!("must be {PARTY_IDS:?}"),
            ));
        }
        Ok(())
    }
}

/// Response data of keygen: the key as now pending.
pub type RequestKeygenResponse = KeyInfo;

// ---------------------------------------------------------------- key refresh

/// Request: refresh a generated DKLs23 key's shares (`key/refresh`): every party takes part
/// (all must be online), each node asks its callback (`key-refresh`) first; the key, its
/// addresses and its committee stay, every share is replaced. 409 while another refresh of
/// the key runs; 400 for a CGGMP24 or ed25519 key (no library offers their refresh).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshKeyRequest {
    /// The organization.
    pub organization_id: String,
    /// The key (`keyId` of `key/list`).
    pub key_id: String,
}

impl Validate for RefreshKeyRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("organizationId", &self.organization_id)?;
        id("keyId", &self.key_id)
    }
}

/// Request: rebuild a party's lost share of a generated DKLs23 key on the node bound to the
/// party now (`key/repair`, after `node/replace` when the node itself is lost). Every party
/// takes part (all online; the others must be at least the threshold); each node asks its
/// callback (`key-repair`, naming the node that receives the share) first; then every share
/// is replaced as in a refresh, and the key switches to the new shares only when every party
/// stored its own. 409 while a refresh or repair of the key runs; 400 for a key that cannot
/// be repaired (CGGMP24, ed25519, or n-of-n).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairKeyRequest {
    /// The organization.
    pub organization_id: String,
    /// The key (`keyId` of `key/list`).
    pub key_id: String,
    /// The party whose share is rebuilt.
    pub party_id: String,
}

impl Validate for RepairKeyRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("organizationId", &self.organization_id)?;
        id("keyId", &self.key_id)?;
        party_id("partyId", &self.party_id)
    }
}

/// Request: a key's refreshes (`key/refresh/list`) or repairs (`key/repair/list`), newest
/// first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListKeyRefreshesRequest {
    /// The organization.
    pub organization_id: String,
    /// The key.
    pub key_id: String,
}

impl Validate for ListKeyRefreshesRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("organizationId", &self.organization_id)?;
        id("keyId", &self.key_id)
    }
}

/// State of a key refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefreshStatus {
    /// Running.
    Pending,
    /// Every party stored its new share and the key switched to the new generation.
    Done,
    /// It failed (see `failedReason`); the key's shares in force are unchanged.
    Failed,
}

/// One refresh or repair of a key (the answer of `key/refresh` and `key/repair`, the rows of
/// their lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRefreshInfo {
    /// The run's id.
    pub task_id: String,
    /// The key.
    pub key_id: String,
    /// State.
    pub status: RefreshStatus,
    /// Why it failed; empty otherwise.
    pub failed_reason: String,
    /// Each party's answer.
    pub outcomes: std::collections::BTreeMap<String, String>,
    /// Start, ms since the Unix epoch.
    pub created_at: u64,
    /// End, ms since the Unix epoch; absent while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<u64>,
}

/// Response data of `key/refresh/list`.
pub type ListKeyRefreshesResponse = Vec<KeyRefreshInfo>;
