//! `config.toml`: every key of the guide (SPEC §4), the guide's defaults (general variant), and
//! validation that names the file, the key and the reason.
//!
//! * Unknown keys and wrong types are refused by the parser (`deny_unknown_fields`); the message
//!   carries the line, column and the offending text.
//! * Impossible values (t > n, t < 1, level > 6, party id not one lower-case letter, unknown
//!   engine or protocol, unreadable or invalid key files) are refused by [`Config::validate`].
//! * Relative paths (`db-file-path`, `[log.file] path`, the `public-key-path`s) are resolved
//!   against the directory that holds the config file, so a config works from any working
//!   directory. Absolute paths are used as written.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mpc_keystore::Engine;
use serde::Deserialize;

/// Why a configuration was refused. The message names the file, the key and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The config file.
        file: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, unknown key or wrong type.
    #[error("{file}: {message}")]
    Parse {
        /// The config file.
        file: String,
        /// Line, column, the offending text and the parser's reason.
        message: String,
    },
    /// A value that parses but cannot work.
    #[error("{file}: [{table}] {key}: {reason}")]
    Invalid {
        /// The config file.
        file: String,
        /// The table, e.g. `storage` or `log.file`.
        table: String,
        /// The key, e.g. `t`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The whole `config.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Config {
    /// `[app]`
    pub app: App,
    /// `[log]` with `[log.stdout]` and `[log.file]`.
    pub log: Log,
    /// `[storage]`
    pub storage: Storage,
    /// `[mpc-service]` (the platform connection; used by a later build).
    pub mpc_service: MpcService,
    /// `[encrypt-signature]`
    pub encrypt_signature: EncryptSignature,
    /// `[callback]` with `[[callback.server]]`.
    pub callback: Callback,
    /// `[metrics]` (our extension): Prometheus metrics on a listener of their own, off by
    /// default.
    pub metrics: Metrics,
    /// `[audit]` (our extension): the hash-chained audit log, on by default.
    pub audit: Audit,
    /// Directory of the config file; relative paths were resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// File name shown in error messages.
    #[serde(skip)]
    pub file_name: String,
    /// Use [`mpc_keystore::KdfParams::insecure_for_tests`] for new passwords. Never read from the
    /// file: only the environment variable [`crate::INSECURE_KDF_ENV`] (tests) sets it.
    #[serde(skip)]
    pub insecure_fast_kdf: bool,
    /// Published (insecure) Paillier prime sets to preload into the prime pool at unseal. Never
    /// read from the file: only the environment variable [`crate::INSECURE_TEST_PRIMES_ENV`]
    /// (tests) sets it.
    #[serde(skip)]
    pub insecure_test_primes: Option<PathBuf>,
}

/// `[app]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct App {
    /// Name shown in logs. Default `"mpc-node"`.
    pub name: String,
    /// Party id, one lower-case letter (`a` is the customer's node). Default `"a"`.
    pub party_id: String,
    /// Account type, opaque string. Default `"2"`.
    pub account_type: String,
}

impl Default for App {
    fn default() -> Self {
        Self {
            name: "mpc-node".into(),
            party_id: "a".into(),
            account_type: "2".into(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Log {
    /// `[log.stdout]`
    pub stdout: LogStdout,
    /// `[log.file]`
    pub file: LogFile,
}

/// `[log.stdout]`: human-readable lines on standard output.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LogStdout {
    /// Default `false`.
    pub enable: bool,
    /// 0 Panic, 1 Fatal, 2 Error, 3 Warn, 4 Info, 5 Debug, 6 Trace. Default 5.
    pub level: u8,
}

impl Default for LogStdout {
    fn default() -> Self {
        Self {
            enable: false,
            level: 5,
        }
    }
}

/// `[log.file]`: JSON lines in a file (mode 0600, parent directory created).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct LogFile {
    /// Default `true`.
    pub enable: bool,
    /// As `[log.stdout] level`. Default 5.
    pub level: u8,
    /// Default `"/tmp/mpc-node/logs/mpc-node.log"`.
    pub path: PathBuf,
}

impl Default for LogFile {
    fn default() -> Self {
        Self {
            enable: true,
            level: 5,
            path: "/tmp/mpc-node/logs/mpc-node.log".into(),
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Storage {
    /// `"bolt"` (default) or `"sgx"`.
    pub engine: String,
    /// Threshold of password shares. Default 1.
    pub t: i64,
    /// Number of password shares. Default 1.
    pub n: i64,
    /// The key store file. Default `"/tmp/mpc-node/asset.db"`.
    pub db_file_path: PathBuf,
    /// Listen address of the local API. Default `"0.0.0.0:8080"`.
    pub unseal_server_address: String,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            engine: "bolt".into(),
            t: 1,
            n: 1,
            db_file_path: "/tmp/mpc-node/asset.db".into(),
            unseal_server_address: "0.0.0.0:8080".into(),
        }
    }
}

/// `[mpc-service]`: where the platform's proxy is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct MpcService {
    /// `"wss"` (default) or `"ws"` (loopback tests only).
    pub protocol: String,
    /// Host (and port). Default `"api.sinohope.com"` (the guide's). Our extension: several
    /// proxies separated by commas (`"proxy-1:443,proxy-2:443"`); the node connects to the
    /// first that answers and moves to the next when its connection is lost (a name with
    /// several DNS addresses also works: each is tried in turn).
    pub address: String,
    /// URL path. Default `"/proxy"`.
    pub path: String,
    /// Our extension (not in the guide): a PEM file of one or more extra CA certificates the
    /// node trusts for `wss`, in addition to the built-in web PKI roots (e.g. a private or
    /// devnet CA). Default: none. Relative paths are resolved against the config directory.
    pub ca_cert_path: Option<PathBuf>,
    /// Our extension (not in the guide): the platform's task-signing public key (P-256 `PUBLIC
    /// KEY` PEM). Every task must be signed by it. Default: none, and the node pins the key of
    /// the first task it receives (stored sealed; `mpc-node platform-key` changes it). Relative
    /// paths are resolved against the config directory.
    pub platform_public_key_path: Option<PathBuf>,
}

impl Default for MpcService {
    fn default() -> Self {
        Self {
            protocol: "wss".into(),
            address: "api.sinohope.com".into(),
            path: "/proxy".into(),
            ca_cert_path: None,
            platform_public_key_path: None,
        }
    }
}

impl MpcService {
    /// The addresses of `address` (comma-separated, trimmed, empty ones skipped).
    pub fn addresses(&self) -> Vec<&str> {
        self.address
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect()
    }

    /// `{protocol}://{address}{path}` for each address, in order.
    pub fn urls(&self) -> Vec<String> {
        self.addresses()
            .into_iter()
            .map(|a| format!("{}://{a}{}", self.protocol, self.path))
            .collect()
    }
}

/// `[encrypt-signature]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct EncryptSignature {
    /// Default `false`.
    pub enable: bool,
    /// P-256 `PUBLIC KEY` PEM. Default `"/tmp/mpc-node/encrypt_sig_public.pem"`; checked only
    /// when `enable = true`.
    pub public_key_path: PathBuf,
}

impl Default for EncryptSignature {
    fn default() -> Self {
        Self {
            enable: false,
            public_key_path: "/tmp/mpc-node/encrypt_sig_public.pem".into(),
        }
    }
}

/// `[metrics]`: `GET /metrics` (Prometheus text) on a listener of its own. Counts and
/// durations only (`crate::metrics`); no authentication, so keep it on loopback or a
/// monitoring network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Metrics {
    /// Default `false`.
    pub enable: bool,
    /// `IP:port` to listen on. Default `"127.0.0.1:9102"`.
    pub address: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            enable: false,
            address: "127.0.0.1:9102".into(),
        }
    }
}

/// `[audit]`: the node's hash-chained audit log (`crate::audit`: callback decisions,
/// signatures, unseals, password changes; no secrets).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Audit {
    /// Default `true`.
    pub enable: bool,
    /// The log file (relative to the config). Default: `audit.log` in the directory of
    /// `[storage] db-file-path`.
    pub path: PathBuf,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            enable: true,
            path: PathBuf::new(),
        }
    }
}

/// `[callback]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Callback {
    /// Default 60.
    pub retry_times: u32,
    /// Default 60.
    pub sleep_seconds: u64,
    /// `[[callback.server]]`; empty (default) = no callback.
    pub server: Vec<CallbackServer>,
}

impl Default for Callback {
    fn default() -> Self {
        Self {
            retry_times: 60,
            sleep_seconds: 60,
            server: Vec::new(),
        }
    }
}

/// One `[[callback.server]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CallbackServer {
    /// Base URL; the node appends `/check` and `/rawdata_signature`.
    pub address: String,
    /// The server's P-256 `PUBLIC KEY` PEM.
    pub public_key_path: PathBuf,
}

/// `true` when `address` (`host` or `host:port`) names the loopback interface: `localhost`, an
/// IPv4 address in 127.0.0.0/8 or `[::1]`.
pub fn is_loopback_address(address: &str) -> bool {
    let host = if let Some(rest) = address.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => h,
            _ => return false,
        }
    } else {
        match address.rsplit_once(':') {
            Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return false,
            None => address,
        }
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Converts a byte offset into 1-based line and column.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// `[table] key` of the line holding `offset` (the nearest table header above it, and the key
/// written before `=` on that line), for parser errors.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let before = text.get(..offset.min(text.len()))?;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = text.get(line_start..line_end)?.trim();
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim().to_owned());
    if line.starts_with('[') {
        return Some(line.split('#').next().unwrap_or(line).trim().to_owned());
    }
    let key = line
        .split('=')
        .next()
        .map(str::trim)
        .filter(|k| !k.is_empty())?;
    Some(match table {
        Some(t) => format!("{t} {key}"),
        None => key.to_owned(),
    })
}

impl Config {
    /// Reads, parses, resolves and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let mut cfg = Self::parse(&text, &file)?;
        cfg.resolve_paths(&base);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Parses TOML text without touching the file system (no path resolution, no validation).
    /// `file` is only used in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Self, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| {
            let mut message = String::new();
            if let Some(span) = e.span() {
                let (line, col) = line_col(text, span.start);
                if let Some(place) = key_at(text, span.start) {
                    message.push_str(&place);
                    message.push(' ');
                }
                message.push_str(&format!("(line {line}, column {col}): "));
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

    fn resolve_paths(&mut self, base: &Path) {
        self.base_dir = base.to_path_buf();
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.storage.db_file_path);
        fix(&mut self.log.file.path);
        if !self.audit.path.as_os_str().is_empty() {
            fix(&mut self.audit.path);
        }
        fix(&mut self.encrypt_signature.public_key_path);
        if let Some(p) = &mut self.mpc_service.ca_cert_path {
            fix(p);
        }
        if let Some(p) = &mut self.mpc_service.platform_public_key_path {
            fix(p);
        }
        for s in &mut self.callback.server {
            fix(&mut s.public_key_path);
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

    /// Checks every value that parsed but cannot work, and reads the key files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.metrics_addr()?;
        let p = &self.app.party_id;
        if p.len() != 1 || !p.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(self.invalid(
                "app",
                "party-id",
                format!("{p:?} is not one lower-case letter (a, b, c, ...)"),
            ));
        }
        for (table, level) in [
            ("log.stdout", self.log.stdout.level),
            ("log.file", self.log.file.level),
        ] {
            if level > 6 {
                return Err(self.invalid(
                    table,
                    "level",
                    format!(
                        "{level} is not a log level (0 Panic, 1 Fatal, 2 Error, 3 Warn, 4 Info, 5 Debug, 6 Trace)"
                    ),
                ));
            }
        }
        self.engine()?;
        let (t, n) = (self.storage.t, self.storage.n);
        if t < 1 {
            return Err(self.invalid("storage", "t", format!("t = {t} must be at least 1")));
        }
        if !(1..=255).contains(&n) {
            return Err(self.invalid("storage", "n", format!("n = {n} must be between 1 and 255")));
        }
        if t > n {
            return Err(self.invalid("storage", "t", format!("t = {t} is larger than n = {n}")));
        }
        if self.storage.db_file_path.as_os_str().is_empty() {
            return Err(self.invalid("storage", "db-file-path", "must not be empty"));
        }
        self.listen_addr()?;
        match self.mpc_service.protocol.as_str() {
            "ws" | "wss" => {}
            other => {
                return Err(self.invalid(
                    "mpc-service",
                    "protocol",
                    format!("{other:?} is not \"wss\" or \"ws\""),
                ));
            }
        }
        if self.mpc_service.addresses().is_empty() {
            return Err(self.invalid(
                "mpc-service",
                "address",
                "names no proxy (one host:port, or several separated by commas)",
            ));
        }
        if self.mpc_service.protocol == "ws"
            && let Some(a) = self
                .mpc_service
                .addresses()
                .into_iter()
                .find(|a| !is_loopback_address(a))
        {
            return Err(self.invalid(
                "mpc-service",
                "protocol",
                format!(
                    "\"ws\" (no TLS) is allowed only for a loopback address (127.0.0.1, [::1], localhost), not {a:?}; use \"wss\""
                ),
            ));
        }
        if let Some(path) = &self.mpc_service.ca_cert_path {
            self.ca_certs(path)?;
        }
        if let Some(path) = &self.mpc_service.platform_public_key_path {
            self.platform_public_key(path)?;
        }
        if self.encrypt_signature.enable {
            self.check_key_file(
                "encrypt-signature",
                "public-key-path",
                &self.encrypt_signature.public_key_path,
            )?;
        }
        for (i, s) in self.callback.server.iter().enumerate() {
            let table = format!("[callback.server] #{}", i + 1);
            if !(s.address.starts_with("http://") || s.address.starts_with("https://")) {
                return Err(self.invalid(
                    &table,
                    "address",
                    format!("{:?} is not an http:// or https:// URL", s.address),
                ));
            }
            self.check_key_file(&table, "public-key-path", &s.public_key_path)?;
        }
        Ok(())
    }

    fn check_key_file(&self, table: &str, key: &str, path: &Path) -> Result<(), ConfigError> {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            self.invalid(table, key, format!("cannot read {}: {e}", path.display()))
        })?;
        mpc_wire::keys::verifying_key_from_pem(&pem).map_err(|e| {
            self.invalid(
                table,
                key,
                format!("{} is not a P-256 public key: {e}", path.display()),
            )
        })?;
        Ok(())
    }

    /// Reads the `[mpc-service] platform-public-key-path` PEM file.
    pub fn platform_public_key(
        &self,
        path: &Path,
    ) -> Result<p256::ecdsa::VerifyingKey, ConfigError> {
        let table = "mpc-service";
        let key = "platform-public-key-path";
        let pem = std::fs::read_to_string(path).map_err(|e| {
            self.invalid(table, key, format!("cannot read {}: {e}", path.display()))
        })?;
        mpc_wire::keys::verifying_key_from_pem(&pem).map_err(|e| {
            self.invalid(
                table,
                key,
                format!("{} is not a P-256 public key: {e}", path.display()),
            )
        })
    }

    /// Reads the `[mpc-service] ca-cert-path` PEM file: at least one certificate, DER bytes each.
    pub fn ca_certs(
        &self,
        path: &Path,
    ) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, ConfigError> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let bytes = std::fs::read(path).map_err(|e| {
            self.invalid(
                "mpc-service",
                "ca-cert-path",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                self.invalid(
                    "mpc-service",
                    "ca-cert-path",
                    format!("{} is not a PEM certificate file: {e}", path.display()),
                )
            })?;
        if certs.is_empty() {
            return Err(self.invalid(
                "mpc-service",
                "ca-cert-path",
                format!("{} holds no CERTIFICATE block", path.display()),
            ));
        }
        Ok(certs)
    }

    /// `[storage] engine` as the key store's type.
    pub fn engine(&self) -> Result<Engine, ConfigError> {
        self.storage
            .engine
            .parse::<Engine>()
            .map_err(|e| self.invalid("storage", "engine", e))
    }

    /// `(t, n)` as the key store takes them (valid after [`Config::validate`]).
    pub fn threshold(&self) -> Result<(u8, u8), ConfigError> {
        let t = u8::try_from(self.storage.t)
            .map_err(|_| self.invalid("storage", "t", "out of range"))?;
        let n = u8::try_from(self.storage.n)
            .map_err(|_| self.invalid("storage", "n", "out of range"))?;
        Ok((t, n))
    }

    /// `[storage] unseal-server-address` as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.storage
            .unseal_server_address
            .parse::<SocketAddr>()
            .map_err(|_| {
                self.invalid(
                    "storage",
                    "unseal-server-address",
                    format!(
                        "{:?} is not an IP:port address (e.g. \"0.0.0.0:8080\")",
                        self.storage.unseal_server_address
                    ),
                )
            })
    }

    /// The audit log's file, `None` when `[audit] enable` is false.
    pub fn audit_path(&self) -> Option<PathBuf> {
        if !self.audit.enable {
            return None;
        }
        if !self.audit.path.as_os_str().is_empty() {
            return Some(self.audit.path.clone());
        }
        let dir = self
            .storage
            .db_file_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Some(dir.join("audit.log"))
    }

    /// `[metrics] address` as a socket address, `None` when `[metrics] enable` is false.
    pub fn metrics_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if !self.metrics.enable {
            return Ok(None);
        }
        let a = self.metrics.address.parse::<SocketAddr>().map_err(|_| {
            self.invalid(
                "metrics",
                "address",
                format!(
                    "{:?} is not an IP:port address (e.g. \"127.0.0.1:9102\")",
                    self.metrics.address
                ),
            )
        })?;
        if Some(a) == self.listen_addr().ok() {
            return Err(self.invalid(
                "metrics",
                "address",
                "is the local API's address ([storage] unseal-server-address); give it a port of its own",
            ));
        }
        Ok(Some(a))
    }

    /// Where a client on this machine reaches the local API: the listen address with an
    /// unspecified IP (`0.0.0.0`, `::`) replaced by loopback.
    pub fn client_addr(&self) -> Result<SocketAddr, ConfigError> {
        let mut a = self.listen_addr()?;
        if a.ip().is_unspecified() {
            a.set_ip(if a.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_guides() {
        let c = Config::parse("", "config.toml").unwrap();
        assert_eq!(c.app.name, "mpc-node");
        assert_eq!(c.app.party_id, "a");
        assert_eq!(c.app.account_type, "2");
        assert!(!c.log.stdout.enable);
        assert_eq!(c.log.stdout.level, 5);
        assert!(c.log.file.enable);
        assert_eq!(
            c.log.file.path,
            Path::new("/tmp/mpc-node/logs/mpc-node.log")
        );
        assert_eq!(c.storage.engine, "bolt");
        assert_eq!((c.storage.t, c.storage.n), (1, 1));
        assert_eq!(c.storage.db_file_path, Path::new("/tmp/mpc-node/asset.db"));
        assert_eq!(c.storage.unseal_server_address, "0.0.0.0:8080");
        assert_eq!(c.mpc_service.protocol, "wss");
        assert_eq!(c.mpc_service.path, "/proxy");
        assert!(!c.encrypt_signature.enable);
        assert_eq!(c.callback.retry_times, 60);
        assert_eq!(c.callback.sleep_seconds, 60);
        assert!(c.callback.server.is_empty());
        c.validate().unwrap();
        assert_eq!(c.client_addr().unwrap().to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn unknown_key_and_wrong_type_name_the_place() {
        let e = Config::parse("[storage]\nt = 1\ncolour = 3\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml: [storage] colour (line 3, column 1): unknown field `colour`"),
            "{e}"
        );
        let e = Config::parse("[storage]\nt = \"two\"\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml: [storage] t (line 2, column 5): invalid type"),
            "{e}"
        );
        let e = Config::parse(
            "[log.file]\nlevel = 3\n[log.stdout]\nenable = \"yes\"\n",
            "c.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.toml: [log.stdout] enable (line 4"), "{e}");
        let e = Config::parse("[[callback.server]]\naddress = 1\n", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml: [[callback.server]] address (line 2"),
            "{e}"
        );
    }

    #[test]
    fn impossible_values_are_refused() {
        let check = |toml: &str, want: &str| {
            let c = Config::parse(toml, "config.toml").unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert_eq!(e, want);
        };
        check(
            "[storage]\nt = 3\nn = 2\n",
            "config.toml: [storage] t: t = 3 is larger than n = 2",
        );
        check(
            "[storage]\nt = 0\n",
            "config.toml: [storage] t: t = 0 must be at least 1",
        );
        check(
            "[log.file]\nlevel = 7\n",
            "config.toml: [log.file] level: 7 is not a log level (0 Panic, 1 Fatal, 2 Error, 3 Warn, 4 Info, 5 Debug, 6 Trace)",
        );
        check(
            "[storage]\nengine = \"leveldb\"\n",
            "config.toml: [storage] engine: unknown storage engine \"leveldb\" (expected \"bolt\" or \"sgx\")",
        );
        check(
            "[app]\nparty-id = \"A\"\n",
            "config.toml: [app] party-id: \"A\" is not one lower-case letter (a, b, c, ...)",
        );
        check(
            "[mpc-service]\nplatform-public-key-path = \"/nonexistent/platform.pem\"\n",
            "config.toml: [mpc-service] platform-public-key-path: cannot read /nonexistent/platform.pem: No such file or directory (os error 2)",
        );
        check(
            "[mpc-service]\nprotocol = \"http\"\n",
            "config.toml: [mpc-service] protocol: \"http\" is not \"wss\" or \"ws\"",
        );
        check(
            "[mpc-service]\nprotocol = \"ws\"\naddress = \"10.0.0.5:8000\"\n",
            "config.toml: [mpc-service] protocol: \"ws\" (no TLS) is allowed only for a loopback address (127.0.0.1, [::1], localhost), not \"10.0.0.5:8000\"; use \"wss\"",
        );
        check(
            "[mpc-service]\nca-cert-path = \"/nonexistent/ca.pem\"\n",
            "config.toml: [mpc-service] ca-cert-path: cannot read /nonexistent/ca.pem: No such file or directory (os error 2)",
        );
        check(
            "[storage]\nunseal-server-address = \"localhost\"\n",
            "config.toml: [storage] unseal-server-address: \"localhost\" is not an IP:port address (e.g. \"0.0.0.0:8080\")",
        );
        let c = Config::parse(
            "[encrypt-signature]\nenable = true\npublic-key-path = \"/nonexistent/k.pem\"\n",
            "config.toml",
        )
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.starts_with(
                "config.toml: [encrypt-signature] public-key-path: cannot read /nonexistent/k.pem"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_audit_log_is_on_by_default_next_to_the_store() {
        let c = Config::parse("", "config.toml").unwrap();
        assert_eq!(
            c.audit_path(),
            Some(PathBuf::from("/tmp/mpc-node/audit.log"))
        );
        let c = Config::parse("[audit]\nenable = false\n", "config.toml").unwrap();
        assert_eq!(c.audit_path(), None);
        let c = Config::parse(
            "[audit]\npath = \"/var/log/mpc/audit.log\"\n",
            "config.toml",
        )
        .unwrap();
        assert_eq!(
            c.audit_path(),
            Some(PathBuf::from("/var/log/mpc/audit.log"))
        );
        let e = Config::parse("[audit]\nfile = \"x\"\n", "config.toml").unwrap_err();
        assert!(e.to_string().contains("file"), "{e}");
    }

    #[test]
    fn metrics_are_off_by_default_and_their_address_is_checked() {
        let c = Config::parse("", "config.toml").unwrap();
        assert!(!c.metrics.enable);
        assert_eq!(c.metrics_addr().unwrap(), None);
        let c = Config::parse("[metrics]\nenable = true\n", "config.toml").unwrap();
        assert_eq!(
            c.metrics_addr().unwrap(),
            Some("127.0.0.1:9102".parse().unwrap())
        );
        for (text, want) in [
            (
                "[metrics]\nenable = true\naddress = \"localhost:1\"\n",
                "config.toml: [metrics] address: \"localhost:1\" is not an IP:port address",
            ),
            (
                "[storage]\nunseal-server-address = \"127.0.0.1:9102\"\n[metrics]\nenable = true\n",
                "config.toml: [metrics] address: is the local API's address",
            ),
            ("[metrics]\nenable = true\nport = 1\n", "port"),
        ] {
            let e = match Config::parse(text, "config.toml") {
                Ok(c) => c.validate().unwrap_err().to_string(),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn ws_only_on_loopback_and_ca_file_is_checked() {
        for a in [
            "127.0.0.1:9000",
            "127.1.2.3",
            "localhost:80",
            "LOCALHOST",
            "[::1]:9000",
            "[::1]",
        ] {
            assert!(is_loopback_address(a), "{a}");
        }
        for a in [
            "10.0.0.1:80",
            "example.com",
            "127.0.0.1.example.com:1",
            "[::2]:1",
            "::1",
            "[::1]x",
            "localhost:x",
        ] {
            assert!(!is_loopback_address(a), "{a}");
        }
        let c = Config::parse(
            "[mpc-service]\nprotocol = \"ws\"\naddress = \"127.0.0.1:1234\"\npath = \"/p\"\n",
            "c.toml",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.mpc_service.urls(), vec!["ws://127.0.0.1:1234/p"]);
        // Several proxies, in order; "ws" only if every one is on loopback; none is an error.
        let several = |address: &str| {
            Config::parse(
                &format!("[mpc-service]\nprotocol = \"ws\"\naddress = \"{address}\"\n"),
                "c.toml",
            )
            .unwrap()
        };
        let c = several(" 127.0.0.1:1 , localhost:2,");
        c.validate().unwrap();
        assert_eq!(
            c.mpc_service.urls(),
            vec!["ws://127.0.0.1:1/proxy", "ws://localhost:2/proxy"]
        );
        let e = several("127.0.0.1:1,proxy.example:443")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("proxy.example:443"), "{e}");
        let e = several(" , ").validate().unwrap_err().to_string();
        assert!(e.contains("names no proxy"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "[mpc-service]\nca-cert-path = \"junk.pem\"\n",
        )
        .unwrap();
        let e = Config::load(&dir.path().join("config.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[mpc-service] ca-cert-path: ")
                && e.contains("junk.pem holds no CERTIFICATE block"),
            "{e}"
        );
    }
}
