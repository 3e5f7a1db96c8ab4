//! HTTP client of a running node's local API (what the CLI commands use). Plain HTTP: the local
//! API is plain HTTP by design (SPEC §4) and is meant to be reached on loopback.

use std::time::Duration;

use serde_json::Value;

use crate::node::PROGRESS_SUFFIX;

/// Why the node could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connection refused, timeout, …
    #[error(
        "cannot reach mpc-node at {url}: {reason} (is it running? start it with `mpc-node start --config FILE`)"
    )]
    Unreachable {
        /// The URL tried.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Build(String),
}

/// One reply of the local API.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub http_status: u16,
    /// The body as received.
    pub body: String,
    /// The body parsed as JSON, if it is.
    pub json: Option<Value>,
}

impl Reply {
    /// `{"status":"ok"}` with HTTP 200.
    pub fn is_ok(&self) -> bool {
        self.http_status == 200
            && self
                .json
                .as_ref()
                .and_then(|j| j.get("status"))
                .and_then(Value::as_str)
                == Some("ok")
    }

    /// The `data` member.
    pub fn data(&self) -> Option<&Value> {
        self.json.as_ref().and_then(|j| j.get("data"))
    }

    /// A t > 1 intermediate reply ("1 of 2 shares received").
    pub fn is_progress(&self) -> bool {
        self.is_ok()
            && self
                .data()
                .and_then(Value::as_str)
                .is_some_and(|s| s.ends_with(PROGRESS_SUFFIX))
    }
}

/// A client for one node.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the API at `host:port`.
    pub fn new(server: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(Self {
            base: format!("http://{server}"),
            http,
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Result<Reply, ClientError> {
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: url.to_owned(),
            reason: error_chain(&e),
        };
        let resp = req.send().await.map_err(unreachable)?;
        let http_status = resp.status().as_u16();
        let body = resp.text().await.map_err(unreachable)?;
        let json = serde_json::from_str(&body).ok();
        Ok(Reply {
            http_status,
            body,
            json,
        })
    }

    /// `POST path` with `{"shard_bkey": bkey}` (properly JSON-escaped).
    pub async fn post_bkey(&self, path: &str, bkey: &str) -> Result<Reply, ClientError> {
        self.post_bkey_with(path, bkey, &serde_json::Map::new())
            .await
    }

    /// `POST path` with `{…extra, "shard_bkey": bkey}` (e.g. `/sys/platform-key`).
    pub async fn post_bkey_with(
        &self,
        path: &str,
        bkey: &str,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        #[derive(serde::Serialize)]
        struct Req<'a> {
            #[serde(flatten)]
            extra: &'a serde_json::Map<String, serde_json::Value>,
            shard_bkey: &'a str,
        }
        // Serialized straight into the buffer the HTTP client sends and frees; the secret is not
        // copied anywhere else on our side.
        let body = serde_json::to_vec(&Req {
            extra,
            shard_bkey: bkey,
        })
        .map_err(|e| ClientError::Build(e.to_string()))?;
        let req = self
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body);
        self.send(req, &url).await
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Build(e.to_string()))?;
        let req = self
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body);
        self.send(req, &url).await
    }

    /// `POST path` without a body.
    pub async fn post_empty(&self, path: &str) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let req = self.http.post(&url);
        self.send(req, &url).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Reply, ClientError> {
        let url = format!("{}{path}", self.base);
        let req = self.http.get(&url);
        self.send(req, &url).await
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
