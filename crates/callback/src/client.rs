//! The HTTP client: `/check` before keygen and sign, `/rawdata_signature` after sign_type 2/3.

use std::time::Duration;

use mpc_wire::callback::{
    CHECK_PATH, Check, Decision, RAWDATA_SIGNATURE_PATH, Response, SIGNATURE_HEADER, SignType,
};
use mpc_wire::signature::{self, EcdsaSigner, ResponseError, SignedRequest};
use p256::ecdsa::VerifyingKey;
use rand_core::{OsRng, RngCore};

use crate::approved::ApprovedRequest;
use crate::request::Request;

/// Largest response body read from a callback server; longer ones count as malformed.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Default cap on a server's `wait_time` (one hour).
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(3600);

/// One `[[callback.server]]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Base URL, e.g. `http://10.0.0.5:9090`; `/check` and `/rawdata_signature` are appended.
    pub address: String,
    /// The server's response-signing key (`public-key-path`).
    pub public_key: VerifyingKey,
}

/// The `[callback]` section.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// Servers to ask, in order; empty means no callback.
    pub servers: Vec<ServerConfig>,
    /// `retry-times`: retries after the first attempt, per server.
    pub retry_times: u32,
    /// `sleep-seconds`: pause between attempts after an error, and for a WAIT without
    /// `wait_time`.
    pub sleep: Duration,
    /// Timeout of one HTTP exchange (connect + response).
    pub request_timeout: Duration,
    /// Longest pause honoured for one WAIT ([`DEFAULT_MAX_WAIT`] is a sensible value).
    pub max_wait: Duration,
}

/// The `[encrypt-signature]` section: `Some` key when `enable = true`.
#[derive(Debug, Clone, Default)]
pub struct EncryptConfig {
    /// Recipient of the ECIES-encrypted signature results.
    pub public_key: Option<p256::PublicKey>,
}

/// Why a server's answer counts as a rejection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The server answered REJECT; its reason (unauthenticated: only `data` is signed).
    #[error("rejected by the server: {0:?}")]
    Server(String),
    /// The response could not be trusted (bad signature, another request's ids, unknown
    /// action or wait time).
    #[error("unverifiable response treated as rejection: {0}")]
    Unverified(ResponseError),
}

/// Why a callback did not yield an approval (or a report was not delivered).
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// A server rejected the request, or its response could not be trusted.
    #[error("callback server {server}: {reason}")]
    Rejected {
        /// The server's address.
        server: String,
        /// Why.
        reason: Rejection,
    },
    /// A server gave no usable answer (errors, timeouts or WAIT) within `1 + retry_times`
    /// attempts.
    #[error("callback server {server}: no approval after {attempts} attempts; last: {last_error}")]
    Exhausted {
        /// The server's address.
        server: String,
        /// Attempts made.
        attempts: u32,
        /// The last error, or the last WAIT.
        last_error: String,
    },
    /// A server address is not an http(s) URL.
    #[error("callback server address {address:?}: {reason}")]
    BadAddress {
        /// The configured address.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Only sign_type 2 and 3 results are reported to `/rawdata_signature`.
    #[error("signature results are reported only for sign_type 2 and 3 (and only for signatures)")]
    NotReportable,
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

#[derive(Debug)]
struct Server {
    address: String,
    check_url: reqwest::Url,
    rawdata_url: reqwest::Url,
    key: VerifyingKey,
}

/// Asks the configured callback servers; cheap to share (`&self` everywhere).
#[derive(Debug)]
pub struct CallbackClient {
    servers: Vec<Server>,
    retry_times: u32,
    sleep: Duration,
    max_wait: Duration,
    http: reqwest::Client,
}

/// What one exchange with a server produced.
enum Attempt {
    /// Done: the step succeeded.
    Done,
    /// Try again after this long; the string says why.
    Again(Duration, String),
}

impl CallbackClient {
    /// Checks the addresses and builds the HTTP client (rustls, no redirects, per-request
    /// timeout).
    pub fn new(config: CallbackConfig) -> Result<Self, CallbackError> {
        let servers = config
            .servers
            .into_iter()
            .map(|s| {
                let check_url = endpoint(&s.address, CHECK_PATH)?;
                let rawdata_url = endpoint(&s.address, RAWDATA_SIGNATURE_PATH)?;
                Ok(Server {
                    address: s.address,
                    check_url,
                    rawdata_url,
                    key: s.public_key,
                })
            })
            .collect::<Result<Vec<_>, CallbackError>>()?;
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CallbackError::Client(e.to_string()))?;
        Ok(CallbackClient {
            servers,
            retry_times: config.retry_times,
            sleep: config.sleep,
            max_wait: config.max_wait,
            http,
        })
    }

    /// True when at least one server is configured.
    pub fn is_enabled(&self) -> bool {
        !self.servers.is_empty()
    }

    /// Asks every server to approve `request` (see the crate docs for the retry rules). One
    /// fresh `callback_id` is used for all servers and all attempts of this call.
    pub async fn check(
        &self,
        node_key: &EcdsaSigner,
        request: Request,
    ) -> Result<ApprovedRequest, CallbackError> {
        if self.servers.is_empty() {
            tracing::debug!(
                request_id = request.request_id(),
                "no callback server configured; request proceeds without callback"
            );
            return Ok(ApprovedRequest::new(request, String::new(), Vec::new()));
        }
        let callback_id = new_callback_id();
        let check = request.to_check(&callback_id);
        let signed = signature::sign_check(&check, node_key);
        let mut approved_by = Vec::with_capacity(self.servers.len());
        for server in &self.servers {
            self.run(
                server,
                &server.check_url,
                |body| self.judge_check(server, &check, body),
                &signed,
            )
            .await?;
            tracing::info!(
                server = %server.address,
                callback_id = %callback_id,
                request_id = request.request_id(),
                sino_id = request.sino_id(),
                request_type = request.request_type().as_str(),
                "callback approved"
            );
            approved_by.push(server.address.clone());
        }
        Ok(ApprovedRequest::new(request, callback_id, approved_by))
    }

    /// Reports a successful sign_type 2 or 3 signature to every server's
    /// `/rawdata_signature`: the approved message (hex) and `signature` (hex, or hex ECIES
    /// ciphertext when `encrypt` has a key). Same retry rules as [`check`](Self::check); a
    /// bare `{"status":"0"}` and a verified signed response are both accepted.
    pub async fn report_rawdata_signature(
        &self,
        node_key: &EcdsaSigner,
        approved: &ApprovedRequest,
        signature_bytes: &[u8],
        encrypt: &EncryptConfig,
    ) -> Result<(), CallbackError> {
        let Request::Sign(sign) = approved.request() else {
            return Err(CallbackError::NotReportable);
        };
        if !matches!(sign.sign_type, SignType::Message | SignType::RawData) {
            return Err(CallbackError::NotReportable);
        }
        if self.servers.is_empty() {
            return Ok(());
        }
        let signature_hex = match &encrypt.public_key {
            Some(key) => mpc_wire::ecies::encrypt_hex(key, signature_bytes, &mut OsRng),
            None => hex::encode(signature_bytes),
        };
        let report = Check::rawdata_signature(
            approved.callback_id(),
            hex::encode(&sign.message),
            signature_hex,
            mpc_wire::callback::ExtraInfo {
                sino_id: sign.sino_id.clone(),
                request_id: sign.request_id.clone(),
            },
        );
        let signed = signature::sign_check(&report, node_key);
        for server in &self.servers {
            self.run(
                server,
                &server.rawdata_url,
                |body| judge_ack(server, &report, body, self.sleep),
                &signed,
            )
            .await?;
            tracing::info!(
                server = %server.address,
                callback_id = approved.callback_id(),
                request_id = %sign.request_id,
                encrypted = encrypt.public_key.is_some(),
                "signature result reported"
            );
        }
        Ok(())
    }

    /// Posts `signed` to `url` until `judge` says done, the budget is spent, or it rejects.
    async fn run(
        &self,
        server: &Server,
        url: &reqwest::Url,
        judge: impl Fn(Result<Vec<u8>, String>) -> Result<Attempt, CallbackError>,
        signed: &SignedRequest,
    ) -> Result<(), CallbackError> {
        let max_attempts = self.retry_times.saturating_add(1);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let outcome = self.post(url, signed).await;
            let (delay, why) = match judge(outcome)? {
                Attempt::Done => return Ok(()),
                Attempt::Again(delay, why) => (delay, why),
            };
            if attempts >= max_attempts {
                tracing::warn!(server = %server.address, attempts, last = %why, "callback attempts exhausted");
                return Err(CallbackError::Exhausted {
                    server: server.address.clone(),
                    attempts,
                    last_error: why,
                });
            }
            tracing::info!(
                server = %server.address,
                attempt = attempts,
                of = max_attempts,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                reason = %why,
                "callback not answered yet; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Reads a `/check` answer: APPROVE → done, WAIT → again, REJECT or untrusted → error,
    /// transport/format/server errors → again after `sleep`.
    fn judge_check(
        &self,
        server: &Server,
        check: &Check,
        body: Result<Vec<u8>, String>,
    ) -> Result<Attempt, CallbackError> {
        let response = match parse(body) {
            Ok(r) => r,
            Err(why) => return Ok(Attempt::Again(self.sleep, why)),
        };
        match signature::verify_response(&response, check, &server.key) {
            Ok(Decision::Approve) => Ok(Attempt::Done),
            Ok(Decision::Reject { reason }) => {
                tracing::warn!(server = %server.address, callback_id = %check.callback_id, "callback rejected");
                Err(CallbackError::Rejected {
                    server: server.address.clone(),
                    reason: Rejection::Server(reason),
                })
            }
            Ok(Decision::Wait { seconds }) => {
                let delay = seconds
                    .map(Duration::from_secs)
                    .unwrap_or(self.sleep)
                    .min(self.max_wait);
                Ok(Attempt::Again(delay, "server answered WAIT".to_owned()))
            }
            Err(e @ (ResponseError::ServerError { .. } | ResponseError::MissingData)) => {
                Ok(Attempt::Again(self.sleep, e.to_string()))
            }
            Err(e) => {
                tracing::warn!(server = %server.address, callback_id = %check.callback_id, error = %e, "untrusted callback response");
                Err(CallbackError::Rejected {
                    server: server.address.clone(),
                    reason: Rejection::Unverified(e),
                })
            }
        }
    }

    /// One POST; `Ok(body)` only for HTTP 200 with a body of at most [`MAX_RESPONSE_BYTES`].
    async fn post(&self, url: &reqwest::Url, signed: &SignedRequest) -> Result<Vec<u8>, String> {
        let mut response = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &signed.signature)
            .body(signed.body.clone())
            .send()
            .await
            .map_err(describe)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(format!(
                    "HTTP {status}: response larger than {MAX_RESPONSE_BYTES} bytes"
                ));
            }
            body.extend_from_slice(&chunk);
        }
        if status != reqwest::StatusCode::OK {
            return Err(format!("HTTP {status}: {}", excerpt(&body)));
        }
        Ok(body)
    }
}

fn judge_ack(
    server: &Server,
    report: &Check,
    body: Result<Vec<u8>, String>,
    sleep: Duration,
) -> Result<Attempt, CallbackError> {
    let response = match parse(body) {
        Ok(r) => r,
        Err(why) => return Ok(Attempt::Again(sleep, why)),
    };
    match signature::verify_rawdata_ack(&response, report, &server.key) {
        Ok(_) => Ok(Attempt::Done),
        Err(e @ (ResponseError::ServerError { .. } | ResponseError::MissingData)) => {
            Ok(Attempt::Again(sleep, e.to_string()))
        }
        Err(e) => Err(CallbackError::Rejected {
            server: server.address.clone(),
            reason: Rejection::Unverified(e),
        }),
    }
}

fn parse(body: Result<Vec<u8>, String>) -> Result<Response, String> {
    let body = body?;
    Response::from_json(&body).map_err(|e| format!("malformed response: {e}"))
}

fn endpoint(address: &str, path: &str) -> Result<reqwest::Url, CallbackError> {
    let bad = |reason: String| CallbackError::BadAddress {
        address: address.to_owned(),
        reason,
    };
    let url = reqwest::Url::parse(&format!("{}{path}", address.trim_end_matches('/')))
        .map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("scheme must be http or https".to_owned()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment".to_owned()));
    }
    Ok(url)
}

/// A transport error, without the URL (already known) but with its cause chain.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// At most 200 characters of a server's error body, for the error message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// A random UUID-v4-shaped id.
fn new_callback_id() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_ids_are_uuid_v4_and_distinct() {
        let a = new_callback_id();
        let b = new_callback_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("http://10.0.0.1:9090", CHECK_PATH)
                .unwrap()
                .as_str(),
            "http://10.0.0.1:9090/check"
        );
        assert_eq!(
            endpoint("https://cb.example/base/", RAWDATA_SIGNATURE_PATH)
                .unwrap()
                .as_str(),
            "https://cb.example/base/rawdata_signature"
        );
        assert!(endpoint("10.0.0.1:9090", CHECK_PATH).is_err());
        assert!(endpoint("ftp://x", CHECK_PATH).is_err());
        assert!(endpoint("http://x/?a=b", CHECK_PATH).is_err());
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt(b"short"), "short");
        assert_eq!(excerpt(&[b'x'; 500]).chars().count(), 201);
    }
}
