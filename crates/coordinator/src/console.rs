//! The console: three static files in `crates/coordinator/console/` (plain HTML, JavaScript and
//! CSS, no build step), compiled into the binary.
//!
//! The page holds an administrator's key while it runs, so it is served with a strict content
//! security policy ([`CSP`]: script and style from this origin only, requests to this origin
//! only, no framing, no form posts, no plugins) and builds every table from text nodes, never
//! from HTML. The administrator signs in with the admin key file (hex PKCS#8 DER, as the SDK
//! loads it); the script imports it as a non-extractable WebCrypto key, keeps it in the tab's
//! memory only, and signs each request as the API expects (BIZ-API headers, ECDSA P-256 /
//! SHA-256 in DER). A new API user's key pair is generated in the browser; only its public key
//! goes to the server, the private key is offered as a download in the SDK's format.

/// A static file of the console.
#[derive(Debug)]
pub(crate) struct Asset {
    /// The URL path it is served at.
    pub path: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static str,
}

/// The page (`GET /console`).
pub(crate) static PAGE: Asset = Asset {
    path: crate::http::CONSOLE_PATH,
    content_type: "text/html; charset=utf-8",
    body: include_str!("../console/index.html"),
};

/// The script.
pub(crate) static SCRIPT: Asset = Asset {
    path: "/console/console.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("../console/console.js"),
};

/// The style sheet.
pub(crate) static STYLE: Asset = Asset {
    path: "/console/console.css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("../console/console.css"),
};

/// Content security policy of every console file.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; form-action 'none'; frame-ancestors 'none'; \
    base-uri 'none'";
