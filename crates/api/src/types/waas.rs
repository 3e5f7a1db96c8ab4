//! The WaaS MPC endpoints (SPEC §7, guide-contracts §9).

use serde::{Deserialize, Serialize};

use super::numeric_enum;
use super::validate::{
    MAX_MESSAGE_LEN, MAX_PAGE_SIZE, MAX_RAW_DATA_LEN, MAX_WALLETS_PER_REQUEST, Validate,
    ValidationError, hd_path, hex_bytes, id, name, non_hardened,
};

/// `POST /v1/waas/mpc/create_wallets`.
pub const PATH_CREATE_WALLETS: &str = "/v1/waas/mpc/create_wallets";
/// `POST /v1/waas/mpc/wallet/advance/gen_address_by_path`.
pub const PATH_GEN_ADDRESS_BY_PATH: &str = "/v1/waas/mpc/wallet/advance/gen_address_by_path";
/// `POST /v1/waas/mpc/web3/sign_message`.
pub const PATH_SIGN_MESSAGE: &str = "/v1/waas/mpc/web3/sign_message";
/// `POST /v1/waas/mpc/wallet/advance/sign_raw_data`.
pub const PATH_SIGN_RAW_DATA: &str = "/v1/waas/mpc/wallet/advance/sign_raw_data";
/// `POST /v1/waas/mpc/wallet/advance/sign_transaction` (our extension: a 32-byte sighash plus
/// transaction details for the callback, `sign_type` 1).
pub const PATH_SIGN_TRANSACTION: &str = "/v1/waas/mpc/wallet/advance/sign_transaction";
/// `POST /v1/waas/mpc/web3/sign_result`.
pub const PATH_SIGN_RESULT: &str = "/v1/waas/mpc/web3/sign_result";
/// `POST /v1/waas/mpc/mpcnode/status` (empty body).
pub const PATH_MPC_NODE_STATUS: &str = "/v1/waas/mpc/mpcnode/status";
/// `POST /v1/waas/mpc/mpcnode/list_mpc_requests`.
pub const PATH_LIST_MPC_REQUESTS: &str = "/v1/waas/mpc/mpcnode/list_mpc_requests";

numeric_enum! {
    /// A 0/1 switch (`advancedEnabled`: 0 off, 1 on; advanced features are path-based
    /// addresses and raw-data signing).
    #[derive(Default)]
    pub enum Switch: u8 {
        /// 0.
        #[default]
        Off = 0,
        /// 1.
        On = 1,
    }
}

// ---------------------------------------------------------------- create_wallets

/// One wallet to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletInfo {
    /// The wallet's name; empty lets the coordinator choose one. Names are unique within a
    /// vault (the coordinator answers 409 otherwise).
    #[serde(default)]
    pub wallet_name: String,
    /// Advanced features switch.
    #[serde(default)]
    pub advanced_enabled: Switch,
}

/// Request of `create_wallets`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateWalletsRequest {
    /// Idempotency id, unique per organization.
    pub request_id: String,
    /// The vault.
    pub vault_id: String,
    /// How many wallets, 1 to 50. Absent means 1 (the Go SDK omits 0).
    #[serde(default = "one")]
    pub count: u32,
    /// Optional per-wallet settings; when present there must be exactly `count` of them.
    #[serde(default)]
    pub wallet_infos: Vec<WalletInfo>,
}

fn one() -> u32 {
    1
}

impl Validate for CreateWalletsRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("requestId", &self.request_id)?;
        id("vaultId", &self.vault_id)?;
        if self.count == 0 || self.count > MAX_WALLETS_PER_REQUEST {
            return Err(ValidationError::new(
                "count",
                format!("must be 1 to {MAX_WALLETS_PER_REQUEST}"),
            ));
        }
        if !self.wallet_infos.is_empty() && self.wallet_infos.len() != self.count as usize {
            return Err(ValidationError::new(
                "walletInfos",
                format!(
                    "has {} entries but count is {}",
                    self.wallet_infos.len(),
                    self.count
                ),
            ));
        }
        for (i, info) in self.wallet_infos.iter().enumerate() {
            name(
                &format!("walletInfos[{i}].walletName"),
                &info.wallet_name,
                false,
            )?;
        }
        Ok(())
    }
}

/// One created wallet (`create_wallets` returns a JSON array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WalletInfoResult {
    /// The wallet id (a string, as in the public API).
    pub wallet_id: String,
    /// The wallet's name.
    pub wallet_name: String,
    /// Advanced features switch.
    pub advanced_enabled: Switch,
}

/// Response data of `create_wallets`.
pub type CreateWalletsResponse = Vec<WalletInfoResult>;

// ---------------------------------------------------------------- gen_address_by_path

numeric_enum! {
    /// The key an address is derived from (`gen_address_by_path`'s `algorithmType`).
    pub enum AddressAlgorithm: u8 {
        /// 0: the ECDSA secp256k1 key.
        Secp256k1 = 0,
        /// 1: the EdDSA ed25519 key.
        Ed25519 = 1,
    }
}

numeric_enum! {
    /// Address encoding (`encoding`). 0 is our value for chains without a script type
    /// (EVM, ed25519 chains); 1 to 4 are the public API's Bitcoin-family encodings.
    pub enum AddressEncoding: u8 {
        /// 0: account-based chain, no script type (our choice).
        Account = 0,
        /// 1: legacy P2PKH.
        Legacy = 1,
        /// 2: native SegWit P2WPKH (bech32).
        SegwitNative = 2,
        /// 3: nested SegWit P2SH-P2WPKH.
        SegwitNested = 3,
        /// 4: Taproot P2TR (bech32m).
        Taproot = 4,
    }
}

/// Request of `gen_address_by_path`: the address at `m/1/1/coinType/index` of the wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenAddressByPathRequest {
    /// The vault.
    pub vault_id: String,
    /// The wallet (advanced features must be on).
    pub wallet_id: String,
    /// Address index within the wallet and coin type, below 2^31.
    pub index: u32,
    /// Which key.
    pub algorithm_type: AddressAlgorithm,
    /// SLIP-44 coin type, non-hardened (below 2^31); EVM chains share 60.
    pub coin_type: u32,
}

impl Validate for GenAddressByPathRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("vaultId", &self.vault_id)?;
        id("walletId", &self.wallet_id)?;
        non_hardened("index", self.index)?;
        non_hardened("coinType", self.coin_type)
    }
}

/// An address: the Go SDK's `WaaSAddressInfoData`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressInfo {
    /// The address record's id.
    pub id: String,
    /// The address as the chain writes it.
    pub address: String,
    /// The derivation path, `m/...`.
    pub hd_path: String,
    /// Address encoding.
    pub encoding: AddressEncoding,
    /// Public key, hex without 0x: compressed SEC1 (33 bytes) for secp256k1, 32 bytes for
    /// ed25519.
    pub pubkey: String,
}

/// The `encoding` of the address `gen_address_by_path` answers for Bitcoin coin types (0 and
/// 1): native SegWit (P2WPKH, `bc1q…`/`tb1q…`). The other three are in
/// [`GenAddressByPathResponse::addresses`].
pub const DEFAULT_BITCOIN_ENCODING: AddressEncoding = AddressEncoding::SegwitNative;

/// Response data of `gen_address_by_path`: ONE address, the Go SDK's `WaaSAddressInfoData`
/// (`id`, `address`, `hdPath`, `encoding`, `pubkey`), plus `addresses` (ours; Go clients
/// ignore it).
///
/// The address is the coin type's: for the EVM coin types (60 and the others of
/// `mpc_chains::coin::EVM_COIN_TYPES`) the EIP-55 address (`encoding` 0); for Bitcoin (0
/// mainnet, 1 testnet) the [`DEFAULT_BITCOIN_ENCODING`] address; for ed25519 keys (any coin
/// type) the Solana-style base58 address of the key (`encoding` 0). `addresses` lists every
/// address of the key at the path for that chain, the answered one included: the four Bitcoin
/// encodings (1 legacy, 2 native SegWit, 3 nested SegWit, 4 Taproot), or the single EVM or
/// ed25519 address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenAddressByPathResponse {
    /// The address record's id.
    pub id: String,
    /// The address as the chain writes it.
    pub address: String,
    /// The derivation path, `m/1/1/{coinType}/{index}`.
    pub hd_path: String,
    /// The address's encoding.
    pub encoding: AddressEncoding,
    /// Public key, hex without 0x (as in [`AddressInfo::pubkey`]).
    pub pubkey: String,
    /// Every address of the key at this path for the coin type's chain, ascending `encoding`.
    pub addresses: Vec<AddressInfo>,
}

impl GenAddressByPathResponse {
    /// The answered address alone, as the Go SDK sees it.
    pub fn primary(&self) -> AddressInfo {
        AddressInfo {
            id: self.id.clone(),
            address: self.address.clone(),
            hd_path: self.hd_path.clone(),
            encoding: self.encoding,
            pubkey: self.pubkey.clone(),
        }
    }

    /// The address in `encoding`, if the response has one.
    pub fn by_encoding(&self, encoding: AddressEncoding) -> Option<&AddressInfo> {
        self.addresses.iter().find(|a| a.encoding == encoding)
    }
}

// ---------------------------------------------------------------- sign_message

/// How `sign_message` hashes the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignAlgorithm {
    /// EIP-191 `personal_sign`.
    #[serde(rename = "personal_sign")]
    PersonalSign,
    /// EIP-712 legacy (v1) typed data.
    #[serde(rename = "signTypedData")]
    SignTypedData,
    /// EIP-712 v3.
    #[serde(rename = "eth_signTypedData_v3")]
    SignTypedDataV3,
    /// EIP-712 v4.
    #[serde(rename = "eth_signTypedData_v4")]
    SignTypedDataV4,
}

/// Request of `sign_message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignMessageRequest {
    /// Idempotency id, unique per organization.
    pub request_id: String,
    /// The chain (e.g. `ETH`).
    pub chain_symbol: String,
    /// The key's path, e.g. `m/1/1/60/0`.
    pub hd_path: String,
    /// Hashing scheme.
    pub sign_algorithm: SignAlgorithm,
    /// The message: text for `personal_sign` (hex with 0x is signed as bytes, as wallets
    /// do), the typed-data JSON for the EIP-712 variants.
    pub message: String,
}

impl Validate for SignMessageRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("requestId", &self.request_id)?;
        id("chainSymbol", &self.chain_symbol)?;
        hd_path("hdPath", &self.hd_path)?;
        if self.message.is_empty() {
            return Err(ValidationError::new("message", "must not be empty"));
        }
        if self.message.len() > MAX_MESSAGE_LEN {
            return Err(ValidationError::new(
                "message",
                format!("longer than {MAX_MESSAGE_LEN} bytes"),
            ));
        }
        Ok(())
    }
}

/// Response data of `sign_message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignMessageResponse {
    /// The coordinator's id of the signing request.
    pub sino_id: String,
    /// The digest that will be signed, hex without 0x.
    pub message_hash: String,
}

// ---------------------------------------------------------------- sign_raw_data

numeric_enum! {
    /// Signature scheme of `sign_raw_data`.
    #[derive(Default)]
    pub enum RawSignAlgorithm: u8 {
        /// 0: the key's own scheme (ECDSA for secp256k1, EdDSA for ed25519).
        #[default]
        KeyDefault = 0,
        /// 1: BIP340 Schnorr (secp256k1 keys only).
        Bip340 = 1,
        /// 2: Taproot key-path (secp256k1 only), tweaked with `tapScriptRoot`.
        Taproot = 2,
    }
}

/// Request of `sign_raw_data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignRawDataRequest {
    /// The vault.
    pub vault_id: String,
    /// Idempotency id, unique per organization.
    pub request_id: String,
    /// The wallet (advanced features must be on).
    pub wallet_id: String,
    /// The key's path.
    pub hd_path: String,
    /// The data to sign, hex without 0x. For ECDSA it must be a 32-byte digest (checked by
    /// the coordinator, which knows the key's curve); for BIP340 and Taproot 32 bytes
    /// (checked here); for EdDSA the message itself, up to 64 KiB.
    pub raw_data: String,
    /// Signature scheme; absent means 0.
    #[serde(default)]
    pub algorithm_type: RawSignAlgorithm,
    /// Taproot script tree root, 32 bytes hex, or empty for a key-path-only output. Only
    /// allowed with `algorithmType` 2 (the Go SDK always sends the field, empty).
    #[serde(default)]
    pub tap_script_root: String,
}

impl SignRawDataRequest {
    /// `rawData` decoded; call after [`Validate::validate`].
    pub fn raw_data_bytes(&self) -> Result<Vec<u8>, ValidationError> {
        hex_bytes("rawData", &self.raw_data, 1, MAX_RAW_DATA_LEN)
    }

    /// `tapScriptRoot` decoded, `None` when empty.
    pub fn tap_script_root_bytes(&self) -> Result<Option<[u8; 32]>, ValidationError> {
        if self.tap_script_root.is_empty() {
            return Ok(None);
        }
        let bytes = hex_bytes("tapScriptRoot", &self.tap_script_root, 32, 32)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes);
        Ok(Some(out))
    }
}

impl Validate for SignRawDataRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("vaultId", &self.vault_id)?;
        id("requestId", &self.request_id)?;
        id("walletId", &self.wallet_id)?;
        hd_path("hdPath", &self.hd_path)?;
        let data = self.raw_data_bytes()?;
        if matches!(
            self.algorithm_type,
            RawSignAlgorithm::Bip340 | RawSignAlgorithm::Taproot
        ) && data.len() != 32
        {
            return Err(ValidationError::new(
                "rawData",
                format!(
                    "is {} bytes; BIP340 and Taproot sign a 32-byte digest",
                    data.len()
                ),
            ));
        }
        self.tap_script_root_bytes()?;
        if !self.tap_script_root.is_empty() && self.algorithm_type != RawSignAlgorithm::Taproot {
            return Err(ValidationError::new(
                "tapScriptRoot",
                "only allowed with algorithmType 2 (Taproot)",
            ));
        }
        Ok(())
    }
}

/// Response data of `sign_raw_data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignRawDataResponse {
    /// The coordinator's id of the signing request.
    pub sino_id: String,
}

// ---------------------------------------------------------------- sign_transaction

/// Request of `sign_transaction` (our extension): a transaction's 32-byte sighash, signed with
/// the wallet's secp256k1 key, and the transaction's details for the callback (`tx_info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignTransactionRequest {
    /// The vault.
    pub vault_id: String,
    /// Idempotency id, unique per organization.
    pub request_id: String,
    /// The wallet (advanced features must be on).
    pub wallet_id: String,
    /// The key's path.
    pub hd_path: String,
    /// The sighash, 32 bytes hex without 0x.
    pub sighash: String,
    /// Signature scheme; absent means 0 (ECDSA). 1 BIP340, 2 Taproot.
    #[serde(default)]
    pub algorithm_type: RawSignAlgorithm,
    /// Taproot script tree root (only with `algorithmType` 2), 32 bytes hex or empty.
    #[serde(default)]
    pub tap_script_root: String,
    /// Transaction details for the callback server, a JSON object (passed as `tx_info`).
    pub tx_info: serde_json::Value,
}

impl SignTransactionRequest {
    /// `sighash` decoded; call after [`Validate::validate`].
    pub fn sighash_bytes(&self) -> Result<[u8; 32], ValidationError> {
        let bytes = hex_bytes("sighash", &self.sighash, 32, 32)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    /// `tapScriptRoot` decoded, `None` when empty.
    pub fn tap_script_root_bytes(&self) -> Result<Option<[u8; 32]>, ValidationError> {
        if self.tap_script_root.is_empty() {
            return Ok(None);
        }
        let bytes = hex_bytes("tapScriptRoot", &self.tap_script_root, 32, 32)?;
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes);
        Ok(Some(out))
    }
}

impl Validate for SignTransactionRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        id("vaultId", &self.vault_id)?;
        id("requestId", &self.request_id)?;
        id("walletId", &self.wallet_id)?;
        hd_path("hdPath", &self.hd_path)?;
        self.sighash_bytes()?;
        self.tap_script_root_bytes()?;
        if !self.tap_script_root.is_empty() && self.algorithm_type != RawSignAlgorithm::Taproot {
            return Err(ValidationError::new(
                "tapScriptRoot",
                "only allowed with algorithmType 2 (Taproot)",
            ));
        }
        let Some(tx) = self.tx_info.as_object() else {
            return Err(ValidationError::new("txInfo", "must be a JSON object"));
        };
        // The node writes these two itself from what it signs (a task whose tx_info says
        // otherwise is refused there): refused here up front, with the field named.
        if tx.contains_key("signAlgorithm") {
            return Err(ValidationError::new(
                "txInfo",
                "signAlgorithm is written by the node, for sign_type 2 messages only",
            ));
        }
        if let Some(root) = tx.get("tapScriptRoot")
            && (self.tap_script_root.is_empty()
                || root
                    .as_str()
                    .is_none_or(|r| !r.eq_ignore_ascii_case(&self.tap_script_root)))
        {
            return Err(ValidationError::new(
                "txInfo",
                "tapScriptRoot must be absent or the request's tapScriptRoot (the node writes the root it tweaks with)",
            ));
        }
        if self.tx_info.to_string().len() > MAX_MESSAGE_LEN {
            return Err(ValidationError::new(
                "txInfo",
                format!("longer than {MAX_MESSAGE_LEN} bytes"),
            ));
        }
        Ok(())
    }
}

/// Response data of `sign_transaction`.
pub type SignTransactionResponse = SignRawDataResponse;

// ---------------------------------------------------------------- sign_result

/// Longest `waitMs` of a `sign_result` request: 10 s.
pub const MAX_SIGN_RESULT_WAIT_MS: u64 = 10_000;

/// Request of `sign_result`: at least one of the two ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignResultRequest {
    /// The caller's idempotency id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The coordinator's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sino_id: Option<String>,
    /// Our extension (the Go SDK never sends it): while the request is still pending, wait up
    /// to this many milliseconds (at most [`MAX_SIGN_RESULT_WAIT_MS`]) for it to finish before
    /// answering (a long poll). Absent or 0: answer at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

impl Validate for SignResultRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        let request_id = self.request_id.as_deref().filter(|s| !s.is_empty());
        let sino_id = self.sino_id.as_deref().filter(|s| !s.is_empty());
        if request_id.is_none() && sino_id.is_none() {
            return Err(ValidationError::new(
                "requestId",
                "requestId or sinoId is required",
            ));
        }
        if let Some(v) = request_id {
            id("requestId", v)?;
        }
        if let Some(v) = sino_id {
            id("sinoId", v)?;
        }
        if self.wait_ms.is_some_and(|w| w > MAX_SIGN_RESULT_WAIT_MS) {
            return Err(ValidationError::new(
                "waitMs",
                format!("at most {MAX_SIGN_RESULT_WAIT_MS} ms"),
            ));
        }
        Ok(())
    }
}

numeric_enum! {
    /// State of a signing request.
    pub enum SignState: u8 {
        /// 0: pending.
        Pending = 0,
        /// 1: done; `signature` is set.
        Done = 1,
        /// 2: failed.
        Failed = 2,
    }
}

/// Response data of `sign_result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignResultResponse {
    /// The caller's idempotency id.
    pub request_id: String,
    /// The coordinator's id.
    pub sino_id: String,
    /// What was signed: the message of `sign_message`, the `rawData` of `sign_raw_data`.
    pub message: String,
    /// Hex without 0x; ECIES hex when result encryption is on; empty unless done. ECDSA:
    /// `r ‖ s ‖ v` (65 bytes; v is 27/28 for `sign_message`, the recovery id 0/1 otherwise);
    /// Schnorr/EdDSA: 64 bytes.
    pub signature: String,
    /// State.
    pub state: SignState,
    /// Why the request failed or was rejected (naming the parties concerned); empty otherwise.
    #[serde(default)]
    pub failed_reason: String,
}

// ---------------------------------------------------------------- mpcnode/status

numeric_enum! {
    /// Whether a node holds a connection to the platform.
    pub enum OnlineStatus: u8 {
        /// 0.
        Offline = 0,
        /// 1.
        Online = 1,
    }
}

/// Response data of `mpcnode/status` (the caller's organization's customer node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MpcNodeStatus {
    /// The node id (`sino…`, 248 characters).
    pub node_id: String,
    /// Connection status.
    pub online_status: OnlineStatus,
}

// ---------------------------------------------------------------- list_mpc_requests

numeric_enum! {
    /// Kind of MPC run.
    pub enum BusinessExecType: u8 {
        /// 1: key generation.
        KeyGen = 1,
        /// 2: transaction signing.
        SignTx = 2,
        /// 3: `sign_message`.
        SignMessage = 3,
        /// 4: `sign_raw_data`.
        SignRawData = 4,
        /// 5: a key refresh (ours, not in the guide: the admin API's `key/refresh`).
        KeyRefresh = 5,
        /// 6: a key repair (ours: the admin API's `key/repair`).
        KeyRepair = 6,
    }
}

numeric_enum! {
    /// Progress of an MPC run.
    pub enum BusinessExecStatus: u8 {
        /// 0: in progress.
        InProgress = 0,
        /// 1: succeeded.
        Success = 1,
        /// 2: failed.
        Failed = 2,
    }
}

/// Request of `list_mpc_requests`.
///
/// The Go SDK omits zero values, so an absent `businessExecType` means "all kinds" (there is
/// no kind 0; an explicit 0 is refused), and it can never filter on `businessExecStatus` 0
/// (in progress); other clients can send 0 explicitly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMpcRequestsRequest {
    /// Filter on kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_exec_type: Option<BusinessExecType>,
    /// Filter on progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_exec_status: Option<BusinessExecStatus>,
    /// Only this request (public API field; optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sino_id: Option<String>,
    /// Page number, first page 1; absent means 1.
    #[serde(default = "one")]
    pub page_index: u32,
    /// Entries per page, 1 to 50; absent means 10 (our choice).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_page_size() -> u32 {
    10
}

impl Validate for ListMpcRequestsRequest {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.page_index == 0 {
            return Err(ValidationError::new("pageIndex", "pages start at 1"));
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(ValidationError::new(
                "pageSize",
                format!("must be 1 to {MAX_PAGE_SIZE}"),
            ));
        }
        if let Some(s) = self.sino_id.as_deref().filter(|s| !s.is_empty()) {
            id("sinoId", s)?;
        }
        Ok(())
    }
}

/// One MPC run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MpcRequestRecord {
    /// The caller's idempotency id (empty for key generation).
    pub request_id: String,
    /// The coordinator's id.
    pub sino_id: String,
    /// When it was requested, `yyyy-MM-dd HH:mm:ss` in GMT+8
    /// ([`format_request_time`](super::format_request_time)).
    pub request_time: String,
    /// Parameters given to the nodes: the curve (`ecdsa-secp256k1`, `eddsa-ed25519`) for key
    /// generation, the digest hex for signing.
    pub param: String,
    /// Kind.
    pub business_exec_type: BusinessExecType,
    /// Progress.
    pub business_exec_status: BusinessExecStatus,
    /// `businessExecStatus == 1`.
    pub is_success: bool,
    /// Why it failed; empty otherwise.
    pub failed_reason: String,
}

/// Response data of `list_mpc_requests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMpcRequestsResponse {
    /// The page returned.
    pub page_index: u32,
    /// The page size used.
    pub page_size: u32,
    /// Number of matching records over all pages.
    pub total_size: u64,
    /// The page's records, newest first.
    pub list: Vec<MpcRequestRecord>,
}
