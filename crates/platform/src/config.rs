//! `platform.toml` (docs/platform.md, "Platform process"): parsed with unknown keys refused,
//! relative paths resolved against the file's directory, values checked; every error names the
//! file, table and key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A role of the platform process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The WebSocket relay between nodes.
    Proxy,
    /// Organizations, keys, API, console.
    Coordinator,
}

impl Role {
    /// `proxy` or `coordinator`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "proxy" => Some(Role::Proxy),
            "coordinator" => Some(Role::Coordinator),
            _ => None,
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PlatformConfig {
    /// Roles run by this process (default both).
    #[serde(default = "both_roles")]
    pub roles: Vec<Role>,
    /// `[server]`
    pub server: Server,
    /// `[proxy]`
    #[serde(default)]
    pub proxy: Proxy,
    /// `[coordinator]`
    #[serde(default)]
    pub coordinator: Coordinator,
    /// `[bus]`
    #[serde(default)]
    pub bus: Bus,
    /// `[log]`
    #[serde(default)]
    pub log: Log,
    /// The file the config came from (error messages).
    #[serde(skip)]
    pub file_name: String,
}

fn both_roles() -> Vec<Role> {
    vec![Role::Proxy, Role::Coordinator]
}

/// `[server]`: the one HTTPS listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Server {
    /// `host:port`.
    pub listen: String,
    /// PEM certificate chain.
    pub tls_cert_path: PathBuf,
    /// PEM private key (mode 0600).
    pub tls_key_path: PathBuf,
}

/// `[proxy]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Proxy {
    /// WebSocket path.
    pub path: String,
    /// Largest frame accepted.
    pub max_frame_bytes: usize,
    /// Outbound queue bound per connection, frames.
    pub queue_frames: usize,
    /// Outbound queue bound per connection, bytes.
    pub queue_bytes: usize,
    /// Seconds a connection may stay over its queue bound.
    pub slow_consumer_grace_secs: u64,
    /// Seconds between pings.
    pub ping_interval_secs: u64,
    /// Seconds of silence before a connection is closed.
    pub idle_timeout_secs: u64,
}

impl Default for Proxy {
    fn default() -> Self {
        Self {
            path: "/proxy".into(),
            max_frame_bytes: 8 * 1024 * 1024,
            queue_frames: 256,
            queue_bytes: 32 * 1024 * 1024,
            slow_consumer_grace_secs: 10,
            ping_interval_secs: 15,
            idle_timeout_secs: 45,
        }
    }
}

/// `[coordinator]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Coordinator {
    /// SQLite file (relative to the config), `:memory:`, or a PostgreSQL URL
    /// (`postgres://user@host/db`; `sslmode=require` unless the host is loopback).
    pub database: String,
    /// PEM CA certificates trusted for the PostgreSQL server's certificate (beside the web PKI
    /// roots); relative to the config.
    pub database_ca_cert_path: PathBuf,
    /// Most PostgreSQL connections the coordinator holds open.
    pub database_max_connections: u32,
    /// Seconds within which every sign request ends.
    pub sign_timeout_secs: u64,
    /// Seconds within which every key generation ends.
    pub keygen_timeout_secs: u64,
    /// Threshold of automatic key generation.
    pub default_threshold: u16,
    /// Threshold-ECDSA protocol of organizations created without one: `dkls23` (fast, no
    /// safe primes) or `cggmp24`. Existing organizations keep theirs.
    pub default_ecdsa_protocol: mpc_wire::scheme::EcdsaProtocol,
    /// Administrators' P-256 public keys, hex DER SPKI.
    pub admin_public_keys: Vec<String>,
    /// The P-256 private key (PEM, 0600) that signs every task; made at the first start when
    /// missing. Nodes pin its public key.
    pub task_signing_key_path: PathBuf,
    /// The audit log of every API and admin request with its caller (hash-chained, 0600;
    /// docs/audit.md); relative to the config; empty: none is kept. One file per coordinator
    /// process: processes started from one config take `mpc-platform start --audit-log`.
    pub audit_log: PathBuf,
}

impl Default for Coordinator {
    fn default() -> Self {
        Self {
            database: "platform.db".into(),
            database_ca_cert_path: PathBuf::new(),
            database_max_connections: 16,
            sign_timeout_secs: 120,
            keygen_timeout_secs: 900,
            default_threshold: 3,
            default_ecdsa_protocol: mpc_wire::scheme::EcdsaProtocol::Dkls23,
            admin_public_keys: Vec::new(),
            task_signing_key_path: PathBuf::from("task-signing.key"),
            audit_log: PathBuf::from("audit.log"),
        }
    }
}

/// `[bus]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Bus {
    /// `inproc:` (both roles in this process, nothing shared) or a NATS URL (`nats://host:port`,
    /// `tls://host:port`, several comma-separated; credentials in the URL are never logged):
    /// processes sharing it may run one role each, any number of each.
    pub url: String,
}

impl Bus {
    /// The in-process bus.
    pub fn is_inproc(&self) -> bool {
        self.url == "inproc:"
    }

    /// A NATS URL.
    pub fn is_nats(&self) -> bool {
        self.url.starts_with("nats://") || self.url.starts_with("tls://")
    }
}

impl Default for Bus {
    fn default() -> Self {
        Self {
            url: "inproc:".into(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Log {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// JSON-lines log file (mode 0600); empty for none.
    pub file: PathBuf,
}

impl Default for Log {
    fn default() -> Self {
        Self {
            level: "info".into(),
            file: PathBuf::new(),
        }
    }
}

/// Why a config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML of this shape.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message with the position.
        message: String,
    },
    /// A value that parsed but cannot work.
    #[error("{file}: [{table}] {key}: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// The table.
        table: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl PlatformConfig {
    /// Reads, parses, resolves relative paths against the file's directory and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let mut cfg = Self::parse(&text, &file)?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        cfg.resolve(&base);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses text (no path resolution, no validation); `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let mut cfg: Self = toml::from_str(text).map_err(|e| {
            let mut message = String::new();
            if let Some(span) = e.span() {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                message.push_str(&format!("line {line}: "));
            }
            message.push_str(e.message().trim());
            ConfigError::Parse {
                file: file.to_owned(),
                message,
            }
        })?;
        cfg.file_name = file.to_owned();
        Ok(cfg)
    }

    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if !p.as_os_str().is_empty() && p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.server.tls_cert_path);
        fix(&mut self.server.tls_key_path);
        fix(&mut self.log.file);
        fix(&mut self.coordinator.task_signing_key_path);
        fix(&mut self.coordinator.database_ca_cert_path);
        fix(&mut self.coordinator.audit_log);
        if self.coordinator.database != ":memory:"
            && !mpc_coordinator::store::is_postgres_url(&self.coordinator.database)
            && Path::new(&self.coordinator.database).is_relative()
        {
            self.coordinator.database = base.join(&self.coordinator.database).display().to_string();
        }
    }

    fn invalid(&self, table: &str, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file_name.clone(),
            table: table.into(),
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Checks values that parsed but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.roles.is_empty() {
            return Err(self.invalid(
                "",
                "roles",
                "name at least one of \"proxy\", \"coordinator\"",
            ));
        }
        let both = self.has(Role::Proxy) && self.has(Role::Coordinator);
        if !self.bus.is_inproc() && !self.bus.is_nats() {
            return Err(self.invalid(
                "bus",
                "url",
                format!(
                    "{:?} is not \"inproc:\" or a NATS URL (nats://host:port or tls://host:port, several separated by commas)",
                    self.bus.url
                ),
            ));
        }
        if !both && self.bus.is_inproc() {
            return Err(self.invalid(
                "",
                "roles",
                "a single role needs a network bus between processes; with bus url \"inproc:\" run both roles in one process, or set [bus] url to a NATS URL",
            ));
        }
        if !both && !mpc_coordinator::store::is_postgres_url(&self.coordinator.database) {
            return Err(self.invalid(
                "coordinator",
                "database",
                "processes that run one role share the store: it must be a postgres:// URL",
            ));
        }
        self.listen_addr()?;
        let p = &self.proxy;
        if !p.path.starts_with('/')
            || p.path.starts_with("/v1/")
            || p.path == "/console"
            || p.path.starts_with("/console/")
        {
            return Err(self.invalid(
                "proxy",
                "path",
                "must start with '/' and not collide with the API or console routes",
            ));
        }
        for (key, v) in [
            ("max-frame-bytes", p.max_frame_bytes),
            ("queue-frames", p.queue_frames),
            ("queue-bytes", p.queue_bytes),
        ] {
            if v == 0 {
                return Err(self.invalid("proxy", key, "must be greater than 0"));
            }
        }
        if p.max_frame_bytes > 64 * 1024 * 1024 {
            return Err(self.invalid("proxy", "max-frame-bytes", "at most 67108864 (64 MiB)"));
        }
        if p.queue_bytes < p.max_frame_bytes {
            return Err(self.invalid(
                "proxy",
                "queue-bytes",
                "must hold at least one frame of max-frame-bytes",
            ));
        }
        if p.ping_interval_secs == 0 || p.idle_timeout_secs <= p.ping_interval_secs {
            return Err(self.invalid(
                "proxy",
                "idle-timeout-secs",
                "must be longer than ping-interval-secs (> 0)",
            ));
        }
        let c = &self.coordinator;
        if c.database.is_empty() {
            return Err(self.invalid(
                "coordinator",
                "database",
                "empty: give a file path, \":memory:\" or a postgres:// URL",
            ));
        }
        if !(1..=1000).contains(&c.database_max_connections) {
            return Err(self.invalid(
                "coordinator",
                "database-max-connections",
                "must be between 1 and 1000",
            ));
        }
        if c.sign_timeout_secs == 0 || c.keygen_timeout_secs == 0 {
            return Err(self.invalid(
                "coordinator",
                "sign-timeout-secs",
                "timeouts must be greater than 0",
            ));
        }
        if c.task_signing_key_path.as_os_str().is_empty() {
            return Err(self.invalid(
                "coordinator",
                "task-signing-key-path",
                "empty: give the path of the task-signing key (made at the first start when missing)",
            ));
        }
        if !(2..=3).contains(&c.default_threshold) {
            return Err(self.invalid(
                "coordinator",
                "default-threshold",
                "must be 2 or 3 (of the 3 parties)",
            ));
        }
        for (i, k) in c.admin_public_keys.iter().enumerate() {
            let ok = hex::decode(k).ok().is_some_and(|der| {
                use p256::pkcs8::DecodePublicKey as _;
                p256::PublicKey::from_public_key_der(&der).is_ok()
            });
            if !ok {
                return Err(self.invalid(
                    "coordinator",
                    "admin-public-keys",
                    format!("entry {i} is not hex of a DER P-256 SubjectPublicKeyInfo"),
                ));
            }
        }
        if self.log_level().is_none() {
            return Err(self.invalid(
                "log",
                "level",
                format!(
                    "{:?} is not one of error, warn, info, debug, trace",
                    self.log.level
                ),
            ));
        }
        Ok(())
    }

    /// True when this process runs `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `[server] listen` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|e| {
            self.invalid(
                "server",
                "listen",
                format!("{:?}: {e} (want ip:port)", self.server.listen),
            )
        })
    }

    /// `[log] level` as a tracing level.
    pub fn log_level(&self) -> Option<tracing::Level> {
        match self.log.level.as_str() {
            "error" => Some(tracing::Level::ERROR),
            "warn" => Some(tracing::Level::WARN),
            "info" => Some(tracing::Level::INFO),
            "debug" => Some(tracing::Level::DEBUG),
            "trace" => Some(tracing::Level::TRACE),
            _ => None,
        }
    }

    /// Proxy settings as durations.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.proxy.ping_interval_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:8443"
tls-cert-path = "tls/server.crt"
tls-key-path = "tls/server.key"
"#;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = PlatformConfig::parse(MINIMAL, "p.toml").unwrap();
        c.validate().unwrap();
        assert!(c.has(Role::Proxy) && c.has(Role::Coordinator));
        assert_eq!(c.proxy.path, "/proxy");
        assert_eq!(c.proxy.queue_frames, 256);
        assert_eq!(c.coordinator.default_threshold, 3);
        assert_eq!(
            c.coordinator.default_ecdsa_protocol,
            mpc_wire::scheme::EcdsaProtocol::Dkls23
        );
        assert_eq!(c.coordinator.sign_timeout_secs, 120);
        assert_eq!(c.bus.url, "inproc:");
    }

    #[test]
    fn errors_name_the_place() {
        let e = PlatformConfig::parse(&format!("{MINIMAL}\n[proxy]\nqueue-frame = 3\n"), "p.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.toml") && e.contains("queue-frame"), "{e}");
        let mut c = PlatformConfig::parse(MINIMAL, "p.toml").unwrap();
        c.server.listen = "localhost".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("[server] listen")
        );
        let mut c = PlatformConfig::parse(MINIMAL, "p.toml").unwrap();
        c.roles = vec![Role::Proxy];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("network bus")
        );
        assert_eq!(Role::parse("coordinator"), Some(Role::Coordinator));
        assert_eq!(Role::parse("all"), None);
        let mut c = PlatformConfig::parse(MINIMAL, "p.toml").unwrap();
        c.bus.url = "redis://127.0.0.1:6379".into();
        assert!(c.validate().unwrap_err().to_string().contains("[bus] url"));
        // One role per process over NATS: the store must be shared (PostgreSQL).
        let mut c = PlatformConfig::parse(MINIMAL, "p.toml").unwrap();
        c.bus.url = "nats://127.0.0.1:4222".into();
        c.validate().unwrap();
        c.roles = vec![Role::Coordinator];
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("[coordinator] database") && e.contains("postgres://"),
            "{e}"
        );
        c.coordinator.database = "postgres://u@db.example/platform".into();
        c.validate().unwrap();
        let mut c = PlatformConfig::parse(MINIMAL, "p.toml").unwrap();
        c.coordinator.admin_public_keys = vec!["zz".into()];
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("admin-public-keys")
        );
        let e = PlatformConfig::parse(
            &format!("{MINIMAL}\n[coordinator]\ndefault-ecdsa-protocol = \"cmp\"\n"),
            "p.toml",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("p.toml") && e.contains("dkls23"), "{e}");
        let c = PlatformConfig::parse(
            &format!("{MINIMAL}\n[coordinator]\ndefault-ecdsa-protocol = \"cggmp24\"\n"),
            "p.toml",
        )
        .unwrap();
        assert_eq!(
            c.coordinator.default_ecdsa_protocol,
            mpc_wire::scheme::EcdsaProtocol::Cggmp24
        );
        let mut c = PlatformConfig::parse(MINIMAL, "p.toml").unwrap();
        c.coordinator.default_threshold = 1;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("default-threshold")
        );
        let mut c = PlatformConfig::parse(MINIMAL, "p.toml").unwrap();
        c.proxy.path = "/v1/waas".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("[proxy] path")
        );
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("platform.toml");
        std::fs::write(&p, MINIMAL).unwrap();
        let c = PlatformConfig::load(&p).unwrap();
        assert_eq!(c.server.tls_cert_path, dir.path().join("tls/server.crt"));
        assert_eq!(
            c.coordinator.database,
            dir.path().join("platform.db").display().to_string()
        );
    }
}
