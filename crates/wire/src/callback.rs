//! The callback protocol's messages: the `Check` request (`/check` and `/rawdata_signature`),
//! the signed `Response`, and what a verified response means ([`Decision`]).
//!
//! Field names and order follow the Go structs of the reference callback server; every type
//! here serializes with [`to_go_json`](Check::to_go_json) to the exact bytes Go's `json.Marshal`
//! produces, because both directions sign serialized bytes. Parsing uses `serde_json` and, like
//! Go, ignores unknown fields and treats `null` as "leave the zero value". Two deliberate
//! differences from Go's decoder: keys must match exactly (Go also accepts other letter cases)
//! and a repeated key is an error (Go keeps the last one); inputs must be valid UTF-8.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::gojson::{self, ObjectWriter, RawJsonError};

/// Path the node POSTs a [`Check`] to before every key generation and signature.
pub const CHECK_PATH: &str = "/check";
/// Path the node POSTs a [`Check::rawdata_signature`] report to after a sign_type 2/3 signature.
pub const RAWDATA_SIGNATURE_PATH: &str = "/rawdata_signature";
/// HTTP header carrying the request signature (hex DER ECDSA P-256 / SHA-256 of the body).
pub const SIGNATURE_HEADER: &str = "Signature";
/// `Response.status` of a callback server that ran normally.
pub const STATUS_OK: &str = "0";

/// Largest request body the platform's API accepts (`mpc_api::MAX_BODY_BYTES` is this value).
pub const API_MAX_BODY: usize = 2 * 1024 * 1024;
/// Largest `/check` body a node can send for a request the API accepted: the message in hex
/// (2 bytes per byte) and `tx_info` with Go's HTML escaping (`<` becomes `\u003c`, 6 bytes
/// per byte), each at most the whole API body, plus the fixed fields. Callback servers accept
/// at least this much.
pub const MAX_CHECK_BYTES: usize = 6 * API_MAX_BODY + 64 * 1024;

/// Why bytes could not be read as a callback message.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or a field of the wrong JSON type.
    #[error("malformed callback JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// `tx_info` is not a JSON value Go would accept as a `json.RawMessage`.
    #[error("malformed tx_info: {0}")]
    TxInfo(#[from] RawJsonError),
}

/// Why a string field does not name a known value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownValue {
    /// `request_type` is none of the known ones.
    #[error("unknown request_type {0:?}")]
    RequestType(String),
    /// `sign_type` is not "1", "2" or "3".
    #[error("unknown sign_type {0:?}")]
    SignType(String),
    /// `action` is not APPROVE, REJECT or WAIT (any letter case).
    #[error("unknown action {0:?}")]
    Action(String),
}

/// `request_type` of a `/check` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// Distributed key generation.
    Keygen,
    /// ECDSA or EdDSA signature with the key's default algorithm.
    Sign,
    /// Plain (untweaked) BIP340 Schnorr signature.
    Bip340SchnorrSign,
    /// BIP341 key-path signature.
    TaprootSign,
    /// Refresh of an existing key's shares (same public key, same committee, new shares). Not
    /// in the guide: the platform's key refresh operation (docs/callback.md).
    KeyRefresh,
    /// `key-repair` (ours): rebuild one party's lost share of a DKLs23 key on a node named in
    /// the request (`new_party_id`); every party ends with a new share of the same key.
    KeyRepair,
}

impl RequestType {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestType::Keygen => "keygen",
            RequestType::Sign => "sign",
            RequestType::Bip340SchnorrSign => "bip340-schnorr-sign",
            RequestType::TaprootSign => "taproot-sign",
            RequestType::KeyRefresh => "key-refresh",
            RequestType::KeyRepair => "key-repair",
        }
    }

    /// Parses the wire spelling (exact, as the node sends it).
    pub fn parse(s: &str) -> Result<Self, UnknownValue> {
        [
            RequestType::Keygen,
            RequestType::Sign,
            RequestType::Bip340SchnorrSign,
            RequestType::TaprootSign,
            RequestType::KeyRefresh,
            RequestType::KeyRepair,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| UnknownValue::RequestType(s.to_owned()))
    }
}

/// `sign_type` of a signing request (sent as the strings "1", "2", "3").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignType {
    /// 1: an ordinary transaction (tx_info describes it).
    Transaction,
    /// 2: an EIP-191 / EIP-712 message.
    Message,
    /// 3: raw data.
    RawData,
}

impl SignType {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            SignType::Transaction => "1",
            SignType::Message => "2",
            SignType::RawData => "3",
        }
    }

    /// Parses "1", "2" or "3".
    pub fn parse(s: &str) -> Result<Self, UnknownValue> {
        match s {
            "1" => Ok(SignType::Transaction),
            "2" => Ok(SignType::Message),
            "3" => Ok(SignType::RawData),
            other => Err(UnknownValue::SignType(other.to_owned())),
        }
    }

    /// Whether a successful signature of this type is reported to `/rawdata_signature`
    /// (and encrypted when `[encrypt-signature]` is on).
    pub const fn reports_signature(self) -> bool {
        matches!(self, SignType::Message | SignType::RawData)
    }
}

/// A `tx_info` value: JSON that has been validated and put into the form Go writes a
/// `json.RawMessage` in (see [`gojson::compact_raw`]).
#[derive(Clone, PartialEq, Eq)]
pub struct TxInfo(Vec<u8>);

impl TxInfo {
    /// Validates and compacts raw JSON bytes (any JSON value; usually an object).
    pub fn from_json(raw: &[u8]) -> Result<Self, RawJsonError> {
        gojson::compact_raw(raw).map(TxInfo)
    }

    /// The compacted bytes, as they appear in the request body.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// `tx_info.signAlgorithm`: how the node hashed a sign_type 2 message (`personal_sign`,
/// `eth_signTypedData_v3`, `eth_signTypedData_v4`). The node sets it; a callback can allow
/// methods one by one.
pub const TX_INFO_SIGN_ALGORITHM: &str = "signAlgorithm";
/// `tx_info.tapScriptRoot`: the Taproot script root (hex) the node tweaks the key with. The
/// node sets it from the task.
pub const TX_INFO_TAP_SCRIPT_ROOT: &str = "tapScriptRoot";

/// Why a top-level `tx_info` field cannot be read or set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxInfoFieldError {
    /// `tx_info` is not a JSON object.
    #[error("tx_info is not a JSON object")]
    NotObject,
    /// `tx_info` is not JSON that can be read (invalid UTF-8 inside a string, for example).
    #[error("tx_info is not readable JSON: {0}")]
    Unreadable(String),
    /// The key appears more than once (readers disagree on which one counts).
    #[error("tx_info.{0} appears more than once")]
    Repeated(String),
    /// The key's value is not a string.
    #[error("tx_info.{0} is not a string")]
    NotString(String),
    /// The key is present with another value.
    #[error("tx_info.{key} is {found:?}, not {wanted:?}")]
    Differs {
        /// The key.
        key: String,
        /// Its value in tx_info.
        found: String,
        /// The value asked for.
        wanted: String,
    },
}

impl TxInfo {
    /// The top-level string field `key`, `None` when absent. Refused: a `tx_info` that is not
    /// a readable object, the key repeated, a value that is not a string (`null` included).
    pub fn string_field(&self, key: &str) -> Result<Option<String>, TxInfoFieldError> {
        if self.0.first() != Some(&b'{') {
            return Err(TxInfoFieldError::NotObject);
        }
        let entries: TopLevel<'_> = serde_json::from_slice(&self.0)
            .map_err(|e| TxInfoFieldError::Unreadable(e.to_string()))?;
        let mut found = None;
        for (k, v) in entries.0 {
            if k != key {
                continue;
            }
            if found.is_some() {
                return Err(TxInfoFieldError::Repeated(key.to_owned()));
            }
            let value: String = serde_json::from_str(v.get())
                .map_err(|_| TxInfoFieldError::NotString(key.to_owned()))?;
            found = Some(value);
        }
        Ok(found)
    }

    /// This `tx_info` with the string field `key` set to `value`: unchanged when it already
    /// says exactly that, the field appended (Go's escaping) when it is absent, refused when
    /// it says something else (or cannot be read, see [`string_field`](Self::string_field)).
    pub fn with_string_field(&self, key: &str, value: &str) -> Result<TxInfo, TxInfoFieldError> {
        match self.string_field(key)? {
            Some(v) if v == value => return Ok(self.clone()),
            Some(found) => {
                return Err(TxInfoFieldError::Differs {
                    key: key.to_owned(),
                    found,
                    wanted: value.to_owned(),
                });
            }
            None => {}
        }
        // A compacted object: `{}` or `{...}`, the key not in it.
        let mut out = self.0[..self.0.len() - 1].to_vec();
        if out.len() > 1 {
            out.push(b',');
        }
        gojson::write_string(&mut out, key);
        out.push(b':');
        gojson::write_string(&mut out, value);
        out.push(b'}');
        Ok(TxInfo(out))
    }

    /// A `tx_info` holding only the string field `key`.
    pub fn with_only(key: &str, value: &str) -> TxInfo {
        let mut out = vec![b'{'];
        gojson::write_string(&mut out, key);
        out.push(b':');
        gojson::write_string(&mut out, value);
        out.push(b'}');
        TxInfo(out)
    }
}

/// The top-level entries of a JSON object, in order, repeats kept.
struct TopLevel<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for TopLevel<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = TopLevel<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    out.push(entry);
                }
                Ok(TopLevel(out))
            }
        }
        d.deserialize_map(Entries)
    }
}

impl std::fmt::Debug for TxInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TxInfo({})", String::from_utf8_lossy(&self.0))
    }
}

/// `request_detail` of a [`Check`]. Which fields are set depends on the request type; empty
/// ones are omitted on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestDetail {
    /// Threshold (keygen).
    pub t: i64,
    /// Number of parties (keygen).
    pub n: i64,
    /// `ecdsa-secp256k1` or `eddsa-ed25519` (keygen).
    pub cryptography: String,
    /// Parties taking part (keygen).
    pub party_ids: Vec<String>,
    /// "1", "2" or "3" (sign requests); see [`SignType`].
    pub sign_type: String,
    /// Root public key, hex (sign requests).
    pub public_key: String,
    /// BIP32 path such as `m/1/1/60/0` (sign requests).
    pub path: String,
    /// The message to be signed, hex (sign requests, rawdata_signature).
    pub message: String,
    /// The signature, hex or hex ECIES ciphertext (rawdata_signature).
    pub signature: String,
    /// Transaction details (sign requests).
    pub tx_info: Option<TxInfo>,
    /// The node id that receives the rebuilt share (`key-repair`; ours, not in the guide).
    pub new_party_id: String,
}

/// `extra_info` of a [`Check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraInfo {
    /// The platform's business id of the request.
    pub sino_id: String,
    /// The caller's request id.
    pub request_id: String,
}

/// The body of a `/check` or `/rawdata_signature` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Check {
    /// Unique per request; echoed by the response.
    pub callback_id: String,
    /// See [`RequestType`]; empty in a rawdata_signature report.
    pub request_type: String,
    /// Request details.
    pub request_detail: RequestDetail,
    /// Business ids; echoed by the response.
    pub extra_info: ExtraInfo,
}

impl Check {
    /// A keygen check request.
    pub fn keygen(
        callback_id: impl Into<String>,
        t: u16,
        n: u16,
        cryptography: impl Into<String>,
        party_ids: Vec<String>,
        extra_info: ExtraInfo,
    ) -> Self {
        Check {
            callback_id: callback_id.into(),
            request_type: RequestType::Keygen.as_str().to_owned(),
            request_detail: RequestDetail {
                t: i64::from(t),
                n: i64::from(n),
                cryptography: cryptography.into(),
                party_ids,
                ..RequestDetail::default()
            },
            extra_info,
        }
    }

    /// A `key-refresh` check request: the key (`public_key`, hex), its threshold and number of
    /// parties, its curve, and the node ids of its committee in party order.
    pub fn key_refresh(
        callback_id: impl Into<String>,
        t: u16,
        n: u16,
        cryptography: impl Into<String>,
        public_key: impl Into<String>,
        party_ids: Vec<String>,
        extra_info: ExtraInfo,
    ) -> Self {
        Check {
            callback_id: callback_id.into(),
            request_type: RequestType::KeyRefresh.as_str().to_owned(),
            request_detail: RequestDetail {
                t: i64::from(t),
                n: i64::from(n),
                cryptography: cryptography.into(),
                party_ids,
                public_key: public_key.into(),
                ..RequestDetail::default()
            },
            extra_info,
        }
    }

    /// A `key-repair` check request: `party_ids` is the committee after the repair (node ids
    /// in party order, the new node among them), `new_party_id` the node that receives the
    /// rebuilt share.
    #[allow(clippy::too_many_arguments)]
    pub fn key_repair(
        callback_id: impl Into<String>,
        t: u16,
        n: u16,
        cryptography: impl Into<String>,
        public_key: impl Into<String>,
        party_ids: Vec<String>,
        new_party_id: impl Into<String>,
        extra_info: ExtraInfo,
    ) -> Self {
        let mut check = Check::key_refresh(
            callback_id,
            t,
            n,
            cryptography,
            public_key,
            party_ids,
            extra_info,
        );
        check.request_type = RequestType::KeyRepair.as_str().to_owned();
        check.request_detail.new_party_id = new_party_id.into();
        check
    }

    /// A signing check request (`sign`, `bip340-schnorr-sign` or `taproot-sign`).
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        callback_id: impl Into<String>,
        request_type: RequestType,
        sign_type: SignType,
        public_key: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
        tx_info: Option<TxInfo>,
        extra_info: ExtraInfo,
    ) -> Self {
        Check {
            callback_id: callback_id.into(),
            request_type: request_type.as_str().to_owned(),
            request_detail: RequestDetail {
                sign_type: sign_type.as_str().to_owned(),
                public_key: public_key.into(),
                path: path.into(),
                message: message.into(),
                tx_info,
                ..RequestDetail::default()
            },
            extra_info,
        }
    }

    /// The `/rawdata_signature` report: only callback_id, message, signature and extra_info.
    pub fn rawdata_signature(
        callback_id: impl Into<String>,
        message: impl Into<String>,
        signature: impl Into<String>,
        extra_info: ExtraInfo,
    ) -> Self {
        Check {
            callback_id: callback_id.into(),
            request_detail: RequestDetail {
                message: message.into(),
                signature: signature.into(),
                ..RequestDetail::default()
            },
            extra_info,
            ..Check::default()
        }
    }

    /// The typed request type.
    pub fn request_type(&self) -> Result<RequestType, UnknownValue> {
        RequestType::parse(&self.request_type)
    }

    /// The typed sign type.
    pub fn sign_type(&self) -> Result<SignType, UnknownValue> {
        SignType::parse(&self.request_detail.sign_type)
    }

    /// The exact bytes Go's `json.Marshal` produces for this request: what is sent and signed.
    pub fn to_go_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let mut w = ObjectWriter::new(&mut out);
        w.string_omitempty("callback_id", &self.callback_id)
            .string_omitempty("request_type", &self.request_type)
            .object("request_detail", |w| {
                let d = &self.request_detail;
                w.int_omitempty("t", d.t)
                    .int_omitempty("n", d.n)
                    .string_omitempty("cryptography", &d.cryptography)
                    .strings_omitempty("party_ids", &d.party_ids)
                    .string_omitempty("sign_type", &d.sign_type)
                    .string_omitempty("public_key", &d.public_key)
                    .string_omitempty("path", &d.path)
                    .string_omitempty("message", &d.message)
                    .string_omitempty("signature", &d.signature)
                    .raw_omitempty("tx_info", d.tx_info.as_ref().map(TxInfo::as_bytes))
                    .string_omitempty("new_party_id", &d.new_party_id);
            })
            .object("extra_info", |w| {
                w.string_omitempty("sino_id", &self.extra_info.sino_id)
                    .string_omitempty("request_id", &self.extra_info.request_id);
            });
        w.finish();
        out
    }

    /// Parses a request body (any JSON of the same object; unknown fields ignored).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ParseError> {
        let wire: CheckWire<'_> = serde_json::from_slice(bytes)?;
        let detail = wire.request_detail.unwrap_or_default();
        let extra = wire.extra_info.unwrap_or_default();
        let tx_info = match detail.tx_info {
            Some(raw) => Some(TxInfo::from_json(raw.get().as_bytes())?),
            None => None,
        };
        Ok(Check {
            callback_id: wire.callback_id.unwrap_or_default(),
            request_type: wire.request_type.unwrap_or_default(),
            request_detail: RequestDetail {
                t: detail.t.unwrap_or_default(),
                n: detail.n.unwrap_or_default(),
                cryptography: detail.cryptography.unwrap_or_default(),
                party_ids: detail
                    .party_ids
                    .unwrap_or_default()
                    .into_iter()
                    .map(Option::unwrap_or_default)
                    .collect(),
                sign_type: detail.sign_type.unwrap_or_default(),
                public_key: detail.public_key.unwrap_or_default(),
                path: detail.path.unwrap_or_default(),
                message: detail.message.unwrap_or_default(),
                signature: detail.signature.unwrap_or_default(),
                tx_info,
                new_party_id: detail.new_party_id.unwrap_or_default(),
            },
            extra_info: ExtraInfo {
                sino_id: extra.sino_id.unwrap_or_default(),
                request_id: extra.request_id.unwrap_or_default(),
            },
        })
    }
}

// Serde mirrors of the Go structs. Every field is optional so that a missing field and a JSON
// `null` both leave the zero value, as Go does.
#[derive(Deserialize)]
struct CheckWire<'a> {
    callback_id: Option<String>,
    request_type: Option<String>,
    #[serde(borrow)]
    request_detail: Option<RequestDetailWire<'a>>,
    extra_info: Option<ExtraInfoWire>,
}

#[derive(Deserialize, Default)]
struct RequestDetailWire<'a> {
    t: Option<i64>,
    n: Option<i64>,
    cryptography: Option<String>,
    party_ids: Option<Vec<Option<String>>>,
    sign_type: Option<String>,
    public_key: Option<String>,
    path: Option<String>,
    message: Option<String>,
    signature: Option<String>,
    // Go hands a literal `null` to RawMessage.UnmarshalJSON and keeps it, so `null` here is the
    // raw value "null", not "absent".
    #[serde(default, borrow, deserialize_with = "raw_keeping_null")]
    tx_info: Option<&'a RawValue>,
    new_party_id: Option<String>,
}

fn raw_keeping_null<'de, D>(d: D) -> Result<Option<&'de RawValue>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    <&'de RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
struct ExtraInfoWire {
    sino_id: Option<String>,
    request_id: Option<String>,
}

/// What the callback server decided, in `ResponseData.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Go ahead.
    Approve,
    /// Refuse the request.
    Reject,
    /// Ask again after `wait_time` seconds.
    Wait,
}

impl Action {
    /// The canonical (upper-case) wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "APPROVE",
            Action::Reject => "REJECT",
            Action::Wait => "WAIT",
        }
    }

    /// Parses an action in any letter case.
    pub fn parse(s: &str) -> Result<Self, UnknownValue> {
        [Action::Approve, Action::Reject, Action::Wait]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownValue::Action(s.to_owned()))
    }
}

/// `Response.data`: the signed part of a callback response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseData {
    /// Echo of the request's callback_id.
    pub callback_id: String,
    /// Echo of the request's extra_info.sino_id.
    pub sino_id: String,
    /// Echo of the request's extra_info.request_id.
    pub request_id: String,
    /// APPROVE / REJECT / WAIT, kept as sent (its bytes are signed).
    pub action: String,
    /// Seconds to wait, as a decimal string (WAIT only).
    pub wait_time: String,
}

impl ResponseData {
    /// A response to `request` with the given action, echoing its ids.
    pub fn for_request(request: &Check, action: Action) -> Self {
        ResponseData {
            callback_id: request.callback_id.clone(),
            sino_id: request.extra_info.sino_id.clone(),
            request_id: request.extra_info.request_id.clone(),
            action: action.as_str().to_owned(),
            wait_time: String::new(),
        }
    }

    /// The typed action (case-insensitive).
    pub fn action(&self) -> Result<Action, UnknownValue> {
        Action::parse(&self.action)
    }

    /// The exact bytes of Go's `json.Marshal(data)`: what the response signature covers.
    pub fn to_go_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        let mut w = ObjectWriter::new(&mut out);
        self.write_fields(&mut w);
        w.finish();
        out
    }

    fn write_fields(&self, w: &mut ObjectWriter<'_>) {
        w.string_omitempty("callback_id", &self.callback_id)
            .string_omitempty("sino_id", &self.sino_id)
            .string_omitempty("request_id", &self.request_id)
            .string_omitempty("action", &self.action)
            .string_omitempty("wait_time", &self.wait_time);
    }
}

/// A callback server's response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// "0" when the server ran normally.
    pub status: String,
    /// Server error, or the reason of a REJECT.
    pub error: String,
    /// The decision; `None` is omitted on the wire.
    pub data: Option<ResponseData>,
    /// Hex DER ECDSA P-256 signature over `data`'s Go JSON.
    pub signature: String,
}

impl Response {
    /// The exact bytes Go's `json.Marshal` produces for this response.
    pub fn to_go_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let mut w = ObjectWriter::new(&mut out);
        w.string_omitempty("status", &self.status)
            .string_omitempty("error", &self.error)
            .pointer_object("data", self.data.as_ref(), |w, d| d.write_fields(w))
            .string_omitempty("signature", &self.signature);
        w.finish();
        out
    }

    /// Parses a response body (unknown fields ignored).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ParseError> {
        let wire: ResponseWire = serde_json::from_slice(bytes)?;
        Ok(Response {
            status: wire.status.unwrap_or_default(),
            error: wire.error.unwrap_or_default(),
            data: wire.data.map(|d| ResponseData {
                callback_id: d.callback_id.unwrap_or_default(),
                sino_id: d.sino_id.unwrap_or_default(),
                request_id: d.request_id.unwrap_or_default(),
                action: d.action.unwrap_or_default(),
                wait_time: d.wait_time.unwrap_or_default(),
            }),
            signature: wire.signature.unwrap_or_default(),
        })
    }
}

#[derive(Deserialize)]
struct ResponseWire {
    status: Option<String>,
    error: Option<String>,
    data: Option<ResponseDataWire>,
    signature: Option<String>,
}

#[derive(Deserialize)]
struct ResponseDataWire {
    callback_id: Option<String>,
    sino_id: Option<String>,
    request_id: Option<String>,
    action: Option<String>,
    wait_time: Option<String>,
}

/// The meaning of a verified response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The request may go ahead.
    Approve,
    /// The request must fail; `reason` is the server's `error` text (may be empty). Only
    /// `data` is signed, so the reason is informational: it is not authenticated.
    Reject {
        /// Why, as the server put it.
        reason: String,
    },
    /// Ask again later.
    Wait {
        /// The server's `wait_time`; `None` when it gave none (use the configured
        /// sleep-seconds).
        seconds: Option<u64>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_info_fields_are_read_strictly_and_appended_like_go() {
        let t = |s: &str| TxInfo::from_json(s.as_bytes()).unwrap();
        let info =
            t(r#"{ "to": "0x1", "note": "<\"signAlgorithm\">", "x": {"signAlgorithm": 1} }"#);
        assert_eq!(info.string_field("to"), Ok(Some("0x1".into())));
        // Only top-level keys count; nested ones and strings that look like keys do not.
        assert_eq!(info.string_field(TX_INFO_SIGN_ALGORITHM), Ok(None));
        let set = info
            .with_string_field(TX_INFO_SIGN_ALGORITHM, "personal_sign")
            .unwrap();
        assert_eq!(
            String::from_utf8(set.as_bytes().to_vec()).unwrap(),
            r#"{"to":"0x1","note":"\u003c\"signAlgorithm\"\u003e","x":{"signAlgorithm":1},"signAlgorithm":"personal_sign"}"#
        );
        // Go's compaction of the appended form is the form itself (what is signed is sent).
        assert_eq!(t(std::str::from_utf8(set.as_bytes()).unwrap()), set);
        assert_eq!(
            set.with_string_field(TX_INFO_SIGN_ALGORITHM, "personal_sign"),
            Ok(set.clone())
        );
        assert_eq!(
            set.with_string_field(TX_INFO_SIGN_ALGORITHM, "eth_signTypedData_v4"),
            Err(TxInfoFieldError::Differs {
                key: TX_INFO_SIGN_ALGORITHM.into(),
                found: "personal_sign".into(),
                wanted: "eth_signTypedData_v4".into()
            })
        );
        assert_eq!(
            t("{}").with_string_field(TX_INFO_TAP_SCRIPT_ROOT, "ab"),
            Ok(TxInfo::with_only(TX_INFO_TAP_SCRIPT_ROOT, "ab"))
        );
        assert_eq!(
            TxInfo::with_only(TX_INFO_TAP_SCRIPT_ROOT, "ab").as_bytes(),
            br#"{"tapScriptRoot":"ab"}"#
        );
        // Refusals: repeated key (Go keeps the last, others the first), not a string, null,
        // not an object, unreadable.
        for (raw, want) in [
            (
                r#"{"signAlgorithm":"personal_sign","signAlgorithm":"eth_signTypedData_v4"}"#,
                TxInfoFieldError::Repeated(TX_INFO_SIGN_ALGORITHM.into()),
            ),
            (
                r#"{"signAlgorithm":1}"#,
                TxInfoFieldError::NotString(TX_INFO_SIGN_ALGORITHM.into()),
            ),
            (
                r#"{"signAlgorithm":null}"#,
                TxInfoFieldError::NotString(TX_INFO_SIGN_ALGORITHM.into()),
            ),
            (r#"["signAlgorithm"]"#, TxInfoFieldError::NotObject),
            ("null", TxInfoFieldError::NotObject),
        ] {
            assert_eq!(
                t(raw).string_field(TX_INFO_SIGN_ALGORITHM),
                Err(want.clone()),
                "{raw}"
            );
            assert_eq!(
                t(raw).with_string_field(TX_INFO_SIGN_ALGORITHM, "personal_sign"),
                Err(want),
                "{raw}"
            );
        }
        let bad_utf8 = TxInfo::from_json(b"{\"a\":\"\xff\"}").unwrap();
        assert!(matches!(
            bad_utf8.string_field("a"),
            Err(TxInfoFieldError::Unreadable(_))
        ));
    }

    #[test]
    fn enums_round_trip() {
        for t in [
            RequestType::Keygen,
            RequestType::Sign,
            RequestType::Bip340SchnorrSign,
            RequestType::TaprootSign,
            RequestType::KeyRefresh,
            RequestType::KeyRepair,
        ] {
            assert_eq!(RequestType::parse(t.as_str()), Ok(t));
        }
        assert!(RequestType::parse("pre-sign").is_err());
        assert!(RequestType::parse("KEYGEN").is_err());
        for s in [SignType::Transaction, SignType::Message, SignType::RawData] {
            assert_eq!(SignType::parse(s.as_str()), Ok(s));
        }
        assert!(SignType::parse("4").is_err());
        assert!(SignType::parse(" 1").is_err());
        assert!(!SignType::Transaction.reports_signature());
        assert!(SignType::RawData.reports_signature());
    }

    #[test]
    fn action_is_case_insensitive() {
        assert_eq!(Action::parse("APPROVE"), Ok(Action::Approve));
        assert_eq!(Action::parse("Approve"), Ok(Action::Approve));
        assert_eq!(Action::parse("reject"), Ok(Action::Reject));
        assert_eq!(Action::parse("wAiT"), Ok(Action::Wait));
        assert!(Action::parse("ACCEPT").is_err());
        assert!(Action::parse("APPROVE ").is_err());
        assert!(Action::parse("").is_err());
    }

    #[test]
    fn check_null_and_missing_fields_are_zero() {
        let c = Check::from_json(
            br#"{"callback_id":null,"request_detail":{"t":null,"party_ids":["a",null],"tx_info":null},"unknown":[1,{"x":2}]}"#,
        )
        .unwrap();
        assert_eq!(c.callback_id, "");
        assert_eq!(
            c.request_detail.party_ids,
            vec!["a".to_owned(), String::new()]
        );
        // Go keeps a literal null in a RawMessage and writes it back.
        assert_eq!(
            c.request_detail.tx_info.as_ref().map(TxInfo::as_bytes),
            Some(&b"null"[..])
        );
        assert_eq!(
            String::from_utf8(c.to_go_json()).unwrap(),
            r#"{"request_detail":{"party_ids":["a",""],"tx_info":null},"extra_info":{}}"#
        );
        let empty = Check::from_json(b"{}").unwrap();
        assert_eq!(
            empty.to_go_json(),
            br#"{"request_detail":{},"extra_info":{}}"#
        );
    }

    #[test]
    fn check_parse_refusals() {
        for bad in [
            &b""[..],
            b"[]",
            b"null",
            b"{\"t\":1}x",
            b"{\"callback_id\":1}",
            b"{\"request_detail\":{\"t\":1.5}}",
            b"{\"request_detail\":{\"t\":\"1\"}}",
            b"{\"request_detail\":{\"sign_type\":1}}",
            b"{\"callback_id\":\"a\",\"callback_id\":\"b\"}",
            b"{\"callback_id\":\"\xff\"}",
        ] {
            assert!(
                Check::from_json(bad).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn response_data_pointer_semantics() {
        let none = Response {
            status: "0".into(),
            ..Response::default()
        };
        assert_eq!(none.to_go_json(), br#"{"status":"0"}"#);
        let empty = Response {
            data: Some(ResponseData::default()),
            ..Response::default()
        };
        assert_eq!(empty.to_go_json(), br#"{"data":{}}"#);
        assert_eq!(Response::default().to_go_json(), b"{}");
        let parsed = Response::from_json(br#"{"status":"0","data":null,"x":1}"#).unwrap();
        assert_eq!(parsed.data, None);
    }
}
