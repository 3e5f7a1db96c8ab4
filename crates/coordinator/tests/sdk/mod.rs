//! The public Go SDK (`sinohope/golang-sdk`) as a client of the coordinator: its request and
//! response structs mirrored field by field with their Go types, its gateway (`core/gateway`:
//! body, signature, HTTP status handling) and its API methods (`core/sdk/*.go`: `code` must be
//! 200, then `data` is unmarshalled into the method's result type).
//!
//! Go's `encoding/json` ignores unknown fields and leaves absent ones at their zero value, but
//! fails when a present field has another JSON type than the Go field (a string for an `int`,
//! `1.5` for an `int`, a number for a `string`, an array for a struct, ...). The mirrors do the
//! same: serde's default (unknown fields allowed), the Go type (`int` → `i64`, `string` →
//! `String`, `bool` → `bool`, `json.RawMessage` → `Value`, a struct only from a JSON object:
//! [`Struct`]), `#[serde(default)]` for fields a client cannot count on, and no default for the
//! fields the SDK's callers rely on (ids, addresses, keys), which must be present. (Go also
//! matches names case-insensitively; the mirrors demand the exact names, which is stricter.)
//!
//! Request mirrors serialize as Go's `json.Marshal` does: struct field order, `omitempty`
//! fields left out at their zero value, `<`, `>`, `&`, U+2028 and U+2029 escaped.

use std::ops::Deref;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::common::Harness;

mod clients;

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A value of a Go struct type. Go unmarshals only a JSON object into a struct ("cannot
/// unmarshal array into Go value of type …" otherwise), where serde's derive would also take an
/// array as positional fields: every struct of a response goes through this.
#[derive(Debug)]
pub struct Struct<T>(pub T);

impl<T> Deref for Struct<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Struct<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            v @ Value::Object(_) => serde_json::from_value(v)
                .map(Struct)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "cannot unmarshal {} into Go value of type {}",
                match other {
                    Value::Array(_) => "array",
                    Value::String(_) => "string",
                    Value::Number(_) => "number",
                    Value::Bool(_) => "bool",
                    _ => "null",
                },
                std::any::type_name::<T>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("?")
            ))),
        }
    }
}

// ------------------------------------------------------------------ envelope

/// `Response` (common/types.go), what `gateway.Post` returns for an HTTP 200 answer (decoded
/// through [`Struct`]).
#[derive(Debug, Deserialize)]
pub struct Response {
    /// `Code int json:"code,omitempty"`; every SDK method compares it with 200.
    pub code: i64,
    /// `Message string json:"msg,omitempty"`; the error text of every SDK method.
    #[serde(default)]
    pub msg: String,
    /// `Success bool json:"success,omitempty"`.
    #[serde(default)]
    pub success: bool,
    /// `RequestID string json:"requestId,omitempty"`.
    #[serde(default, rename = "requestId")]
    pub request_id: String,
    /// `Data json.RawMessage json:"data,omitempty"`.
    #[serde(default)]
    pub data: Option<Value>,
}

// ------------------------------------------------------------------ request params

/// `WaaSCreateBatchWalletParam` (common/types.go).
#[derive(Debug, Serialize)]
pub struct WaaSCreateBatchWalletParam {
    /// `Count int json:"count,omitempty"`.
    #[serde(skip_serializing_if = "is_zero")]
    pub count: i64,
    /// `VaultId string json:"vaultId"`.
    #[serde(rename = "vaultId")]
    pub vault_id: String,
    /// `WalletInfos []WaaSCreateWalletInfo json:"walletInfos,omitempty"`.
    #[serde(rename = "walletInfos", skip_serializing_if = "Vec::is_empty")]
    pub wallet_infos: Vec<WaaSCreateWalletInfo>,
    /// `RequestId string json:"requestId"`.
    #[serde(rename = "requestId")]
    pub request_id: String,
}

/// `WaaSCreateWalletInfo` (common/types.go).
#[derive(Debug, Serialize)]
pub struct WaaSCreateWalletInfo {
    /// `WalletName string json:"walletName,omitempty"`.
    #[serde(rename = "walletName", skip_serializing_if = "String::is_empty")]
    pub wallet_name: String,
    /// `AdvancedEnabled int json:"advancedEnabled"`.
    #[serde(rename = "advancedEnabled")]
    pub advanced_enabled: i64,
}

/// `WaaSAddressPathParam` (common/types.go).
#[derive(Debug, Serialize)]
pub struct WaaSAddressPathParam {
    /// `VaultId string json:"vaultId"`.
    #[serde(rename = "vaultId")]
    pub vault_id: String,
    /// `WalletId string json:"walletId"`.
    #[serde(rename = "walletId")]
    pub wallet_id: String,
    /// `Index int json:"index"`.
    pub index: i64,
    /// `AlgorithmType int json:"algorithmType"`.
    #[serde(rename = "algorithmType")]
    pub algorithm_type: i64,
    /// `CoinType int json:"coinType"`.
    #[serde(rename = "coinType")]
    pub coin_type: i64,
}

/// `SignMessageParam` (common/types.go).
#[derive(Debug, Serialize)]
pub struct SignMessageParam {
    /// `RequestId string json:"requestId,omitempty"`.
    #[serde(rename = "requestId", skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// `ChainSymbol string json:"chainSymbol,omitempty"`.
    #[serde(rename = "chainSymbol", skip_serializing_if = "String::is_empty")]
    pub chain_symbol: String,
    /// `HdPath string json:"hdPath,omitempty"`.
    #[serde(rename = "hdPath", skip_serializing_if = "String::is_empty")]
    pub hd_path: String,
    /// `SignAlgorithm string json:"signAlgorithm,omitempty"`.
    #[serde(rename = "signAlgorithm", skip_serializing_if = "String::is_empty")]
    pub sign_algorithm: String,
    /// `Message string json:"message,omitempty"`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `WaaSSignRawDataParam` (common/types.go).
#[derive(Debug, Serialize)]
pub struct WaaSSignRawDataParam {
    /// `VaultId string json:"vaultId"`.
    #[serde(rename = "vaultId")]
    pub vault_id: String,
    /// `RequestId string json:"requestId"`.
    #[serde(rename = "requestId")]
    pub request_id: String,
    /// `WalletId string json:"walletId"`.
    #[serde(rename = "walletId")]
    pub wallet_id: String,
    /// `HdPath string json:"hdPath"`.
    #[serde(rename = "hdPath")]
    pub hd_path: String,
    /// `RawData string json:"rawData"`.
    #[serde(rename = "rawData")]
    pub raw_data: String,
    /// `AlgorithmType int json:"algorithmType"`.
    #[serde(rename = "algorithmType")]
    pub algorithm_type: i64,
    /// `TapScriptRoot string json:"tapScriptRoot"`.
    #[serde(rename = "tapScriptRoot")]
    pub tap_script_root: String,
}

/// `WaasMpcNodeExecRecordParam` (common/types.go).
#[derive(Debug, Default, Serialize)]
pub struct WaasMpcNodeExecRecordParam {
    /// `BusinessExecType int json:"businessExecType,omitempty"`.
    #[serde(rename = "businessExecType", skip_serializing_if = "is_zero")]
    pub business_exec_type: i64,
    /// `BusinessExecStatus int json:"businessExecStatus,omitempty"`.
    #[serde(rename = "businessExecStatus", skip_serializing_if = "is_zero")]
    pub business_exec_status: i64,
    /// `SinoId string json:"sinoId,omitempty"`.
    #[serde(rename = "sinoId", skip_serializing_if = "String::is_empty")]
    pub sino_id: String,
    /// `PageIndex int json:"pageIndex,omitempty"`.
    #[serde(rename = "pageIndex", skip_serializing_if = "is_zero")]
    pub page_index: i64,
    /// `PageSize int json:"pageSize,omitempty"`.
    #[serde(rename = "pageSize", skip_serializing_if = "is_zero")]
    pub page_size: i64,
}

/// No Go SDK struct: `sign_result` is not in the Go SDK. The body its other clients send (the
/// Java SDK's `SignResultParam`, the public web3 demo): `{"requestId": …}`.
#[derive(Debug, Serialize)]
pub struct SignResultParam {
    /// The caller's request id.
    #[serde(rename = "requestId")]
    pub request_id: String,
}

// ------------------------------------------------------------------ response data

/// `WaaSWalletInfoData` (common/types.go); `CreateWallets` returns `[]*WaaSWalletInfoData`.
#[derive(Debug, Deserialize)]
pub struct WaaSWalletInfoData {
    /// `WalletId string json:"walletId,omitempty"`: relied on.
    #[serde(rename = "walletId")]
    pub wallet_id: String,
    /// `WalletName string json:"walletName,omitempty"`.
    #[serde(default, rename = "walletName")]
    pub wallet_name: String,
    /// `AdvancedEnabled int json:"advancedEnabled,omitempty"`.
    #[serde(default, rename = "advancedEnabled")]
    pub advanced_enabled: i64,
}

/// `WaaSAddressInfoData` (common/types.go); `GenAddressByPath` returns `*WaaSAddressInfoData`.
#[derive(Debug, Deserialize)]
pub struct WaaSAddressInfoData {
    /// `ID string json:"id,omitempty"`: relied on.
    pub id: String,
    /// `Address string json:"address,omitempty"`: relied on.
    pub address: String,
    /// `HdPath string json:"hdPath,omitempty"`: relied on.
    #[serde(rename = "hdPath")]
    pub hd_path: String,
    /// `Encoding int json:"encoding,omitempty"` (0 is left out by Go itself).
    #[serde(default)]
    pub encoding: i64,
    /// `Pubkey string json:"pubkey,omitempty"`: relied on.
    pub pubkey: String,
}

/// `WaaSMessageHashResult` (common/types.go); `SignMessage` returns `*WaaSMessageHashResult`.
#[derive(Debug, Deserialize)]
pub struct WaaSMessageHashResult {
    /// `SinoId string json:"sinoId,omitempty"`: relied on.
    #[serde(rename = "sinoId")]
    pub sino_id: String,
    /// `MessageHash string json:"messageHash,omitempty"`: relied on.
    #[serde(rename = "messageHash")]
    pub message_hash: String,
}

/// `WaaSSignRawDataRes` (common/types.go); `SignRawData` returns `*WaaSSignRawDataRes`.
#[derive(Debug, Deserialize)]
pub struct WaaSSignRawDataRes {
    /// `SinoId string json:"sinoId"`: relied on.
    #[serde(rename = "sinoId")]
    pub sino_id: String,
}

/// `WaaSMpcNodeStatusDTOData` (common/types.go); `Status` returns `*WaaSMpcNodeStatusDTOData`.
#[derive(Debug, Deserialize)]
pub struct WaaSMpcNodeStatusDTOData {
    /// `NodeId string json:"nodeId,omitempty"`: relied on.
    #[serde(rename = "nodeId")]
    pub node_id: String,
    /// `OnlineStatus int json:"onlineStatus,omitempty"` (0 offline, 1 online).
    #[serde(default, rename = "onlineStatus")]
    pub online_status: i64,
}

/// `WaaSMPCNodeRequestRes` (common/types.go) = embedded `BaseWaasParam` (its fields inline)
/// + `List []*MPCNodeExecRecord`; `ListMPCRequests` returns `*WaaSMPCNodeRequestRes`.
#[derive(Debug, Deserialize)]
pub struct WaaSMPCNodeRequestRes {
    /// `BaseWaasParam.PageIndex int json:"pageIndex,omitempty"`.
    #[serde(default, rename = "pageIndex")]
    pub page_index: i64,
    /// `BaseWaasParam.PageSize int json:"pageSize,omitempty"`.
    #[serde(default, rename = "pageSize")]
    pub page_size: i64,
    /// `BaseWaasParam.TotalSize int json:"totalSize,omitempty"`.
    #[serde(default, rename = "totalSize")]
    pub total_size: i64,
    /// `List []*MPCNodeExecRecord json:"list,omitempty"`.
    #[serde(default)]
    pub list: Vec<Struct<MPCNodeExecRecord>>,
}

/// `MPCNodeExecRecord` (common/types.go).
#[derive(Debug, Deserialize)]
pub struct MPCNodeExecRecord {
    /// `RequestID string json:"requestId,omitempty"` (empty for key generation).
    #[serde(default, rename = "requestId")]
    pub request_id: String,
    /// `SinoID string json:"sinoId,omitempty"`: relied on.
    #[serde(rename = "sinoId")]
    pub sino_id: String,
    /// `RequestTime string json:"requestTime,omitempty"`: relied on.
    #[serde(rename = "requestTime")]
    pub request_time: String,
    /// `Param string json:"param,omitempty"`.
    #[serde(default)]
    pub param: String,
    /// `BusinessExecType int json:"businessExecType,omitempty"` (1 to 4): relied on.
    #[serde(rename = "businessExecType")]
    pub business_exec_type: i64,
    /// `BusinessExecStatus int json:"businessExecStatus,omitempty"` (0 is left out by Go).
    #[serde(default, rename = "businessExecStatus")]
    pub business_exec_status: i64,
    /// `IsSuccess bool json:"isSuccess,omitempty"`.
    #[serde(default, rename = "isSuccess")]
    pub is_success: bool,
    /// `FailedReason string json:"failedReason,omitempty"`.
    #[serde(default, rename = "failedReason")]
    pub failed_reason: String,
}

/// No Go SDK struct (`sign_result` is not in the Go SDK): the fields of the public API
/// documentation and the Java SDK's `SignResultDTO` (guide-contracts §9), typed as the Go
/// SDK types such fields (strings, `int` state).
#[derive(Debug, Deserialize)]
pub struct SignResultDTO {
    /// The caller's request id.
    #[serde(rename = "requestId")]
    pub request_id: String,
    /// The coordinator's id.
    #[serde(rename = "sinoId")]
    pub sino_id: String,
    /// What was signed.
    #[serde(default)]
    pub message: String,
    /// Hex, empty unless done.
    #[serde(default)]
    pub signature: String,
    /// 0 pending, 1 done, 2 failed (present: 0 is meaningful).
    pub state: i64,
}

// ------------------------------------------------------------------ the client

/// Go's `json.Marshal` of a struct: serde's compact output (field order kept, no spaces) with
/// Go's HTML-safe escaping of `<`, `>`, `&` and the JavaScript line terminators, which can only
/// occur inside strings.
pub fn go_marshal<T: Serialize>(v: &T) -> Vec<u8> {
    let s = serde_json::to_string(v).unwrap();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

/// Why an SDK call failed, in the SDK's own terms.
#[derive(Debug, PartialEq, Eq)]
pub enum SdkError {
    /// `gateway.Post` got another HTTP status than 200 (the body is not read).
    Http(u16),
    /// `response.Code != 200`: the SDK's "error response, code: %v msg: %v".
    Code(i64, String),
    /// `json.Unmarshal` of the envelope or of `data` failed.
    Unmarshal(String),
}

/// The Go SDK's `gateway` with one private key.
pub struct GoClient<'a> {
    pub harness: &'a Harness,
    pub key: p256::ecdsa::SigningKey,
}

impl GoClient<'_> {
    /// `Signer.Sign` (core/gateway/signer.go): the map `{data, path, timestamp, version}` in
    /// sorted key order, each key followed by its value, then the public key hex; SHA-256 and
    /// ECDSA P-256, hex ASN.1 DER. `data` is the payload without what the regular expression
    /// `\s*|\n|\r|\t` matches (RE2 `\s` is `[\t\n\f\r ]`).
    fn sign(&self, path: &str, timestamp: &str, payload: &[u8]) -> (String, String) {
        use p256::ecdsa::signature::Signer;
        let public = mpc_wire::keys::api_key_hex(self.key.verifying_key());
        let data: Vec<u8> = payload
            .iter()
            .copied()
            .filter(|b| !matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' '))
            .collect();
        let mut fields: Vec<(&str, Vec<u8>)> = vec![
            ("version", b"1.0.0".to_vec()),
            ("timestamp", timestamp.as_bytes().to_vec()),
            ("path", path.as_bytes().to_vec()),
            ("data", data),
        ];
        fields.sort_by(|a, b| a.0.cmp(b.0));
        let mut message = Vec::new();
        for (k, v) in fields {
            message.extend_from_slice(k.as_bytes());
            message.extend_from_slice(&v);
        }
        message.extend_from_slice(public.as_bytes());
        let sig: p256::ecdsa::Signature = self.key.sign(&message);
        (public, hex::encode(sig.to_der().as_bytes()))
    }

    /// `gateway.Post(path, request)` up to the HTTP exchange: `None` is Go's `nil` request
    /// (empty body, empty `data` in the signature). The HTTP status and the body as JSON.
    pub async fn raw(&self, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let body = body.unwrap_or_default();
        let timestamp = self.harness.now().to_string();
        let (api_key, signature) = self.sign(path, &timestamp, &body);
        let headers = mpc_api::auth::Headers {
            api_key,
            nonce: timestamp,
            signature,
        };
        self.harness.post_with(path, body, &headers).await
    }

    /// The rest of an SDK method: `gateway.Post` refuses any HTTP status but 200, unmarshals
    /// the envelope; the method requires `code` 200, then `json.Unmarshal(response.Data,
    /// &result)` where `result` is a pointer or a slice (Go would give nil for `null`; every
    /// caller dereferences it, so `null` is an error here).
    pub fn decode<T: DeserializeOwned>(status: u16, v: Value) -> Result<T, SdkError> {
        if status != 200 {
            return Err(SdkError::Http(status));
        }
        let Struct(r): Struct<Response> =
            serde_json::from_value(v).map_err(|e| SdkError::Unmarshal(e.to_string()))?;
        // Not read by the SDK, but part of the envelope it decodes: consistent and present.
        assert_eq!(r.success, r.code == 200, "{r:?}");
        assert!(!r.request_id.is_empty(), "{r:?}");
        if r.code != 200 {
            return Err(SdkError::Code(r.code, r.msg));
        }
        match r.data {
            None | Some(Value::Null) => Err(SdkError::Unmarshal("data is null".into())),
            Some(d) => serde_json::from_value(d).map_err(|e| SdkError::Unmarshal(e.to_string())),
        }
    }

    /// An SDK method call. `T` is `Struct<…>` for the SDK's `*Struct` results and
    /// `Vec<Struct<…>>` for its `[]*Struct` results.
    pub async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, SdkError> {
        let (status, v) = self.raw(path, body).await;
        Self::decode(status, v)
    }
}

/// The JSON types of `v`, values replaced by `"string"`, `"number"`, `"bool"`, `"null"`; an
/// array by its first element's shape (or `[]`). What the shape snapshots pin.
pub fn shape(v: &Value) -> Value {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if n.is_f64() => "float".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
    }
}
