//! The response envelope of every coordinator endpoint:
//! `{"code":…, "msg":…, "success":…, "requestId":…, "data":…}`.
//!
//! * `code` is 200 on success and one of [`ApiCode`]'s values otherwise;
//! * `success` is `code == 200`;
//! * `msg` is `"success"` or a human-readable reason (never secret material);
//! * `requestId` is the coordinator's id of this HTTP exchange, for logs and support (it is
//!   not the business `requestId` of a signing request; that one is inside `data`);
//! * `data` is the endpoint's result; omitted on errors.
//!
//! The public Go SDK reads `code`/`msg` only from an HTTP 200 response (other HTTP statuses
//! become a bare error), so the coordinator should answer errors with HTTP 200 and the code
//! in the envelope, except authentication failures, which may use HTTP 401 (see
//! [`ApiCode::http_status`]).

use serde::{Deserialize, Serialize};

/// Envelope codes. The numbers follow HTTP status semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum ApiCode {
    /// 200: success.
    Success,
    /// 400: the request body or a field is invalid.
    BadRequest,
    /// 401: authentication failed (headers, key, nonce, signature).
    Unauthorized,
    /// 403: authenticated, but the caller may not do this (other organization's resource,
    /// advanced features off, admin route).
    Forbidden,
    /// 404: the wallet, key, request or node does not exist.
    NotFound,
    /// 409: conflict: the `requestId` was already used with different parameters, the name
    /// exists, the node is already bound.
    Conflict,
    /// 429: rate limited.
    TooManyRequests,
    /// 500: internal error.
    Internal,
    /// 503: a dependency (nodes, nonce store, database) is unavailable; retry later.
    Unavailable,
}

impl ApiCode {
    /// The numeric code.
    pub fn as_u16(self) -> u16 {
        match self {
            ApiCode::Success => 200,
            ApiCode::BadRequest => 400,
            ApiCode::Unauthorized => 401,
            ApiCode::Forbidden => 403,
            ApiCode::NotFound => 404,
            ApiCode::Conflict => 409,
            ApiCode::TooManyRequests => 429,
            ApiCode::Internal => 500,
            ApiCode::Unavailable => 503,
        }
    }

    /// Suggested HTTP status: 401 for [`ApiCode::Unauthorized`], 200 for everything else, so
    /// that SDK clients get to read `msg`.
    pub fn http_status(self) -> u16 {
        match self {
            ApiCode::Unauthorized => 401,
            _ => 200,
        }
    }
}

impl From<ApiCode> for u16 {
    fn from(code: ApiCode) -> u16 {
        code.as_u16()
    }
}

/// A number that is not one of [`ApiCode`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown API code {0}")]
pub struct UnknownCode(pub u16);

impl TryFrom<u16> for ApiCode {
    type Error = UnknownCode;
    fn try_from(n: u16) -> Result<Self, UnknownCode> {
        Ok(match n {
            200 => ApiCode::Success,
            400 => ApiCode::BadRequest,
            401 => ApiCode::Unauthorized,
            403 => ApiCode::Forbidden,
            404 => ApiCode::NotFound,
            409 => ApiCode::Conflict,
            429 => ApiCode::TooManyRequests,
            500 => ApiCode::Internal,
            503 => ApiCode::Unavailable,
            other => return Err(UnknownCode(other)),
        })
    }
}

/// The message of every successful response.
pub const SUCCESS_MSG: &str = "success";

/// The response envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    /// 200 or an error code.
    pub code: ApiCode,
    /// `"success"` or the reason.
    pub msg: String,
    /// `code == 200`.
    pub success: bool,
    /// The coordinator's id of this exchange.
    pub request_id: String,
    /// The result; absent on errors.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

impl<T> Envelope<T> {
    /// A successful response carrying `data`.
    pub fn ok(request_id: impl Into<String>, data: T) -> Self {
        Envelope {
            code: ApiCode::Success,
            msg: SUCCESS_MSG.to_owned(),
            success: true,
            request_id: request_id.into(),
            data: Some(data),
        }
    }

    /// An error response. `code` should not be [`ApiCode::Success`]; if it is, the
    /// envelope still says `success: true` so the fields never contradict each other.
    pub fn error(request_id: impl Into<String>, code: ApiCode, msg: impl Into<String>) -> Self {
        Envelope {
            code,
            msg: msg.into(),
            success: code == ApiCode::Success,
            request_id: request_id.into(),
            data: None,
        }
    }

    /// `Ok(data)` for a success carrying data, otherwise `Err((code, msg))`.
    pub fn into_result(self) -> Result<T, (ApiCode, String)> {
        match (self.code, self.data) {
            (ApiCode::Success, Some(data)) => Ok(data),
            (code, _) => Err((code, self.msg)),
        }
    }
}

impl Envelope<()> {
    /// An error response for a failed authentication.
    pub fn auth_error(request_id: impl Into<String>, err: &crate::auth::AuthError) -> Self {
        Envelope::error(request_id, err.code(), err.to_string())
    }

    /// An error response for a request that failed validation ([`ApiCode::BadRequest`]).
    pub fn validation_error(
        request_id: impl Into<String>,
        err: &crate::types::ValidationError,
    ) -> Self {
        Envelope::error(request_id, ApiCode::BadRequest, err.to_string())
    }
}
