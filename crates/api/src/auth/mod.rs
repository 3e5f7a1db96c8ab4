//! BIZ-API request authentication (SPEC §7), as the public Go SDK signs requests.
//!
//! A request carries three headers:
//!
//! * `BIZ-API-KEY`: lowercase hex of the DER SubjectPublicKeyInfo of the caller's P-256 key
//!   ([`mpc_wire::keys::api_key_hex`]);
//! * `BIZ-API-NONCE`: the client's clock in milliseconds since the Unix epoch, in decimal;
//! * `BIZ-API-SIGNATURE`: lowercase hex of the ASN.1 DER ECDSA P-256 / SHA-256 signature
//!   ([`mpc_wire::signature::EcdsaSigner::sign_hex`]) over the [signing string](signing_string):
//!
//! ```text
//! "data" + body without whitespace + "path" + path + "timestamp" + nonce + "version" + "1.0.0" + api key hex
//! ```
//!
//! (the keys `data`, `path`, `timestamp`, `version` in sorted order, each followed by its
//! value, then the key with no label).
//!
//! # Which whitespace is removed
//!
//! The SDK removes whitespace with the Go regular expression `\s*|\n|\r|\t`. In Go's RE2
//! syntax `\s` is exactly `[\t\n\f\r ]`, so the SDK removes the five ASCII bytes TAB, LF, FF,
//! CR and SPACE, **everywhere in the body, including inside JSON strings** (a wallet named
//! `"my wallet"` is signed as `"mywallet"`), and nothing else: Unicode spaces such as U+00A0
//! or U+3000 (which Go's `json.Marshal` writes unescaped) stay in the signed string. This crate
//! strips exactly that set ([`is_sdk_whitespace`]); stripping Unicode whitespace as Rust's
//! `char::is_whitespace` does would reject genuine SDK requests whose strings contain such
//! characters. Because the five bytes are ASCII, stripping works on raw bytes and never
//! splits a UTF-8 sequence; the body does not have to be UTF-8.
//!
//! # Verification
//!
//! [`verify_request`] (or [`AuthConfig::verify`] for a non-default window) checks, in order:
//! every header is present; the key is canonical lowercase hex of a P-256 SPKI, the nonce a
//! canonical decimal, the signature hex of a DER signature; the key belongs to a known
//! [`ApiUser`]; the nonce is within the window of `now_ms`; the signature verifies over the
//! raw body as received (high-S accepted, as Go signs); and only then that the nonce was not
//! used before by that key ([`NonceStore`]). Recording the nonce last means unauthenticated
//! traffic never consumes nonce-store memory and cannot burn a legitimate caller's nonces.
//! The result is an [`AuthenticatedCaller`], which nothing else can construct.

mod nonce;
mod sdk_key;

pub use nonce::{
    DEFAULT_NONCE_CAPACITY, InMemoryNonceStore, NonceStatus, NonceStore, NonceStoreError,
};
pub use sdk_key::{SdkKeyError, load_sdk_private_key_hex, sdk_private_key_hex};

use mpc_wire::keys::{api_key_hex, verifying_key_from_api_key_hex};
use mpc_wire::signature::{EcdsaSigner, SignatureError, verify_hex};
use p256::ecdsa::{Signature, VerifyingKey};

use crate::envelope::ApiCode;

/// Header carrying the caller's API key (hex of DER SPKI).
pub const HEADER_API_KEY: &str = "BIZ-API-KEY";
/// Header carrying the millisecond timestamp that serves as nonce.
pub const HEADER_NONCE: &str = "BIZ-API-NONCE";
/// Header carrying the hex DER signature.
pub const HEADER_SIGNATURE: &str = "BIZ-API-SIGNATURE";
/// The fixed `version` value of the signing string.
pub const SIGNING_VERSION: &str = "1.0.0";
/// Default nonce window: a nonce is accepted while it is at most 5 minutes away from the
/// server's clock, in either direction.
pub const DEFAULT_NONCE_WINDOW_MS: u64 = 5 * 60 * 1000;
/// Longest accepted nonce (digits). Millisecond timestamps have 13 digits until the year 2286.
pub const MAX_NONCE_DIGITS: usize = 19;

/// Whether the SDK strips this byte from the body before signing: Go RE2 `\s`, i.e.
/// TAB, LF, FF, CR and SPACE.
pub fn is_sdk_whitespace(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

/// The signing string as bytes, for a body that may not be UTF-8 (the server side).
pub fn signing_bytes(body: &[u8], path: &str, nonce: &str, api_key_hex: &str) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(body.len() + path.len() + nonce.len() + api_key_hex.len() + 32);
    out.extend_from_slice(b"data");
    out.extend(body.iter().copied().filter(|b| !is_sdk_whitespace(*b)));
    out.extend_from_slice(b"path");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b"timestamp");
    out.extend_from_slice(nonce.as_bytes());
    out.extend_from_slice(b"version");
    out.extend_from_slice(SIGNING_VERSION.as_bytes());
    out.extend_from_slice(api_key_hex.as_bytes());
    out
}

/// The string the SDK signs: `"data" + body without whitespace + "path" + path +
/// "timestamp" + nonce + "version" + "1.0.0" + api_key_hex`.
pub fn signing_string(body: &str, path: &str, nonce: &str, api_key_hex: &str) -> String {
    let mut out =
        String::with_capacity(body.len() + path.len() + nonce.len() + api_key_hex.len() + 32);
    out.push_str("data");
    out.extend(
        body.chars()
            .filter(|c| !(c.is_ascii() && is_sdk_whitespace(*c as u8))),
    );
    out.push_str("path");
    out.push_str(path);
    out.push_str("timestamp");
    out.push_str(nonce);
    out.push_str("version");
    out.push_str(SIGNING_VERSION);
    out.push_str(api_key_hex);
    out
}

/// The three authentication headers of a signed request (client side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// `BIZ-API-KEY`.
    pub api_key: String,
    /// `BIZ-API-NONCE`.
    pub nonce: String,
    /// `BIZ-API-SIGNATURE`.
    pub signature: String,
}

impl Headers {
    /// `(name, value)` pairs, ready to add to an HTTP request.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (HEADER_API_KEY, &self.api_key),
            (HEADER_NONCE, &self.nonce),
            (HEADER_SIGNATURE, &self.signature),
        ]
    }

    /// The headers as [`HeaderValues`], as a server would see them.
    pub fn values(&self) -> HeaderValues<'_> {
        HeaderValues {
            api_key: Some(self.api_key.as_bytes()),
            nonce: Some(self.nonce.as_bytes()),
            signature: Some(self.signature.as_bytes()),
        }
    }
}

/// The authentication headers of a received request, as raw header bytes (server side).
/// `None` means the header is absent. HTTP header names are case-insensitive; fill this with
/// [`HeaderValues::from_lookup`] and the framework's case-insensitive lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderValues<'a> {
    /// `BIZ-API-KEY`.
    pub api_key: Option<&'a [u8]>,
    /// `BIZ-API-NONCE`.
    pub nonce: Option<&'a [u8]>,
    /// `BIZ-API-SIGNATURE`.
    pub signature: Option<&'a [u8]>,
}

impl<'a> HeaderValues<'a> {
    /// Collects the three headers with `get(name)`, called with [`HEADER_API_KEY`],
    /// [`HEADER_NONCE`] and [`HEADER_SIGNATURE`].
    pub fn from_lookup(mut get: impl FnMut(&str) -> Option<&'a [u8]>) -> Self {
        HeaderValues {
            api_key: get(HEADER_API_KEY),
            nonce: get(HEADER_NONCE),
            signature: get(HEADER_SIGNATURE),
        }
    }
}

/// Signs a request (client side): `body` must be exactly the bytes that will be sent, `path`
/// the URL path without scheme, host or query (e.g. `/v1/waas/mpc/create_wallets`), and
/// `now_ms` the client's clock in milliseconds since the Unix epoch, which becomes the nonce.
/// Two requests by one key must not share a millisecond: the server refuses the second as a
/// replay.
pub fn sign_request(key: &EcdsaSigner, path: &str, body: &[u8], now_ms: u64) -> Headers {
    let api_key = api_key_hex(key.verifying_key());
    let nonce = now_ms.to_string();
    let signature = key.sign_hex(&signing_bytes(body, path, &nonce, &api_key));
    Headers {
        api_key,
        nonce,
        signature,
    }
}

/// An API user as the coordinator's user table knows it (what `lookup` returns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUser {
    /// The organization the user acts for.
    pub organization_id: String,
    /// The user's id.
    pub user_id: String,
    /// The user's registered public key; its [`api_key_hex`] is the user's `BIZ-API-KEY`.
    pub verifying_key: VerifyingKey,
}

/// Proof that a request was authenticated: only [`verify_request`] / [`AuthConfig::verify`]
/// can make one, so handlers that take it cannot run on an unauthenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedCaller {
    user: ApiUser,
    api_key_hex: String,
    nonce_ms: u64,
}

impl AuthenticatedCaller {
    /// The authenticated user.
    pub fn user(&self) -> &ApiUser {
        &self.user
    }

    /// The user's organization.
    pub fn organization_id(&self) -> &str {
        &self.user.organization_id
    }

    /// The user's id.
    pub fn user_id(&self) -> &str {
        &self.user.user_id
    }

    /// The `BIZ-API-KEY` of the request (canonical lowercase hex).
    pub fn api_key_hex(&self) -> &str {
        &self.api_key_hex
    }

    /// The request's nonce (the client's millisecond timestamp).
    pub fn nonce_ms(&self) -> u64 {
        self.nonce_ms
    }
}

/// Why a request was not authenticated. Every variant but [`AuthError::NonceStore`] is the
/// caller's fault (answer [`ApiCode::Unauthorized`]); see [`AuthError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but not of the required form.
    #[error("malformed header {header}: {reason}")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No API user has this key.
    #[error("unknown API key")]
    UnknownKey,
    /// The nonce is older than the window allows.
    #[error("nonce {nonce_ms} is more than {window_ms} ms before the server time {now_ms}")]
    StaleNonce {
        /// The request's nonce.
        nonce_ms: u64,
        /// The server's clock.
        now_ms: u64,
        /// The window.
        window_ms: u64,
    },
    /// The nonce is further in the future than the window allows.
    #[error("nonce {nonce_ms} is more than {window_ms} ms after the server time {now_ms}")]
    FutureNonce {
        /// The request's nonce.
        nonce_ms: u64,
        /// The server's clock.
        now_ms: u64,
        /// The window.
        window_ms: u64,
    },
    /// This key already used this nonce within the window.
    #[error("nonce {nonce_ms} was already used by this key")]
    ReplayedNonce {
        /// The request's nonce.
        nonce_ms: u64,
    },
    /// The signature is well formed but does not verify for this key, body, path and nonce.
    #[error("signature does not verify")]
    BadSignature,
    /// The nonce store failed (full, or its backend is down); not the caller's fault.
    #[error("nonce store: {0}")]
    NonceStore(#[from] NonceStoreError),
}

impl AuthError {
    /// The envelope code to answer with: [`ApiCode::Unauthorized`], or
    /// [`ApiCode::Unavailable`] when the nonce store failed.
    pub fn code(&self) -> ApiCode {
        match self {
            AuthError::NonceStore(_) => ApiCode::Unavailable,
            _ => ApiCode::Unauthorized,
        }
    }
}

/// Verification settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthConfig {
    /// How far (ms) a nonce may be from the server's clock, in either direction; the bound is
    /// inclusive. The nonce store must remember a nonce for at least this long after it.
    pub window_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            window_ms: DEFAULT_NONCE_WINDOW_MS,
        }
    }
}

fn header<'a>(value: Option<&'a [u8]>, name: &'static str) -> Result<&'a [u8], AuthError> {
    value.ok_or(AuthError::MissingHeader(name))
}

fn malformed(header: &'static str, reason: &'static str) -> AuthError {
    AuthError::MalformedHeader { header, reason }
}

/// Parses a `BIZ-API-KEY`: canonical lowercase hex of a P-256 DER SPKI (uncompressed point).
fn parse_api_key(raw: &[u8]) -> Result<(&str, VerifyingKey), AuthError> {
    let text = std::str::from_utf8(raw).map_err(|_| malformed(HEADER_API_KEY, "not UTF-8"))?;
    let key = verifying_key_from_api_key_hex(text)
        .map_err(|_| malformed(HEADER_API_KEY, "not hex of a P-256 SubjectPublicKeyInfo"))?;
    if api_key_hex(&key) != text {
        return Err(malformed(
            HEADER_API_KEY,
            "not canonical (lowercase hex, uncompressed point)",
        ));
    }
    Ok((text, key))
}

/// Parses a `BIZ-API-NONCE`: 1 to 19 ASCII digits, no leading zero (one spelling per value).
fn parse_nonce(raw: &[u8]) -> Result<(&str, u64), AuthError> {
    if raw.is_empty() {
        return Err(malformed(HEADER_NONCE, "empty"));
    }
    if raw.len() > MAX_NONCE_DIGITS {
        return Err(malformed(HEADER_NONCE, "too long"));
    }
    if !raw.iter().all(u8::is_ascii_digit) {
        return Err(malformed(
            HEADER_NONCE,
            "not a decimal millisecond timestamp",
        ));
    }
    if raw.len() > 1 && raw[0] == b'0' {
        return Err(malformed(HEADER_NONCE, "leading zero"));
    }
    let text = std::str::from_utf8(raw).map_err(|_| malformed(HEADER_NONCE, "not UTF-8"))?;
    let value = text
        .parse::<u64>()
        .map_err(|_| malformed(HEADER_NONCE, "out of range"))?;
    Ok((text, value))
}

/// Checks a `BIZ-API-SIGNATURE` is hex of a DER signature (either hex case).
fn parse_signature(raw: &[u8]) -> Result<&str, AuthError> {
    if raw.is_empty() {
        return Err(malformed(HEADER_SIGNATURE, "empty"));
    }
    let text = std::str::from_utf8(raw).map_err(|_| malformed(HEADER_SIGNATURE, "not UTF-8"))?;
    let der = hex::decode(text).map_err(|_| malformed(HEADER_SIGNATURE, "not hex"))?;
    Signature::from_der(&der)
        .map_err(|_| malformed(HEADER_SIGNATURE, "not a DER ECDSA P-256 signature"))?;
    Ok(text)
}

impl AuthConfig {
    /// Authenticates a request; see the [module docs](self) for the order of checks.
    ///
    /// `path` is the request's URL path (without query), `raw_body` the body exactly as
    /// received, `now_ms` the server's clock, and `lookup` finds the API user by canonical
    /// `BIZ-API-KEY`. A user whose registered key differs from the header's key is treated
    /// as unknown.
    pub fn verify(
        &self,
        headers: HeaderValues<'_>,
        path: &str,
        raw_body: &[u8],
        now_ms: u64,
        nonces: &dyn NonceStore,
        lookup: impl Fn(&str) -> Option<ApiUser>,
    ) -> Result<AuthenticatedCaller, AuthError> {
        let key_raw = header(headers.api_key, HEADER_API_KEY)?;
        let nonce_raw = header(headers.nonce, HEADER_NONCE)?;
        let sig_raw = header(headers.signature, HEADER_SIGNATURE)?;

        let (key_hex, key) = parse_api_key(key_raw)?;
        let (nonce_text, nonce_ms) = parse_nonce(nonce_raw)?;
        let sig_hex = parse_signature(sig_raw)?;

        let user = lookup(key_hex).ok_or(AuthError::UnknownKey)?;
        if user.verifying_key != key {
            return Err(AuthError::UnknownKey);
        }

        let window_ms = self.window_ms;
        if nonce_ms.saturating_add(window_ms) < now_ms {
            return Err(AuthError::StaleNonce {
                nonce_ms,
                now_ms,
                window_ms,
            });
        }
        if nonce_ms > now_ms.saturating_add(window_ms) {
            return Err(AuthError::FutureNonce {
                nonce_ms,
                now_ms,
                window_ms,
            });
        }

        let message = signing_bytes(raw_body, path, nonce_text, key_hex);
        verify_hex(&user.verifying_key, &message, sig_hex).map_err(|e| match e {
            SignatureError::Invalid => AuthError::BadSignature,
            // parse_signature already refused these forms.
            SignatureError::Missing => malformed(HEADER_SIGNATURE, "empty"),
            SignatureError::NotHex => malformed(HEADER_SIGNATURE, "not hex"),
            SignatureError::NotDer => {
                malformed(HEADER_SIGNATURE, "not a DER ECDSA P-256 signature")
            }
        })?;

        match nonces.record(key_hex, nonce_ms, now_ms, window_ms)? {
            NonceStatus::Fresh => Ok(AuthenticatedCaller {
                user,
                api_key_hex: key_hex.to_owned(),
                nonce_ms,
            }),
            NonceStatus::Replayed => Err(AuthError::ReplayedNonce { nonce_ms }),
        }
    }
}

/// [`AuthConfig::verify`] with the default 5-minute window.
pub fn verify_request(
    headers: HeaderValues<'_>,
    path: &str,
    raw_body: &[u8],
    now_ms: u64,
    nonces: &dyn NonceStore,
    lookup: impl Fn(&str) -> Option<ApiUser>,
) -> Result<AuthenticatedCaller, AuthError> {
    AuthConfig::default().verify(headers, path, raw_body, now_ms, nonces, lookup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_set_is_go_re2_s() {
        let stripped: Vec<u8> = (0u8..=127).filter(|b| is_sdk_whitespace(*b)).collect();
        assert_eq!(stripped, vec![b'\t', b'\n', 0x0c, b'\r', b' ']);
        // \v is not in Go's \s.
        assert!(!is_sdk_whitespace(0x0b));
    }

    #[test]
    fn string_and_bytes_agree() {
        let body = "{\"a\": \"x y\u{3000}z\u{a0}\",\n\t\"b\":\r\n1}\u{c}";
        let s = signing_string(body, "/p", "1", "ab");
        let b = signing_bytes(body.as_bytes(), "/p", "1", "ab");
        assert_eq!(s.as_bytes(), b.as_slice());
        assert_eq!(
            s,
            "data{\"a\":\"xy\u{3000}z\u{a0}\",\"b\":1}path/ptimestamp1version1.0.0ab"
        );
    }

    #[test]
    fn nonce_parsing() {
        assert_eq!(parse_nonce(b"1700000000000").unwrap().1, 1_700_000_000_000);
        assert_eq!(parse_nonce(b"0").unwrap().1, 0);
        for bad in [
            &b""[..],
            b"01",
            b"+1",
            b"-1",
            b"1.5",
            b" 1",
            b"1e3",
            b"99999999999999999999",
        ] {
            assert!(
                matches!(parse_nonce(bad), Err(AuthError::MalformedHeader { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_nonce(b"9999999999999999999").unwrap().1,
            9_999_999_999_999_999_999
        );
    }
}
