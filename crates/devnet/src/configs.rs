//! The devnet's config files belong to the user once written: `platform/platform.toml`,
//! `node-<party>/config.toml` and `callback/policy.toml` are written only when missing (or when
//! the caller asks for a reset, `mpc-devnet --reset-config`), and a kept file is never
//! overwritten. A kept file is loaded with its component's own loader and checked against what
//! the devnet relies on (ports from `devnet.json`, the admin key, the platform's URL, the
//! devnet's callback server); each mismatch is a [`Misfit`] naming the file, the line and the
//! fix, and the start stops before anything runs.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::fsutil;
use crate::layout::Layout;
use crate::state::State;

/// What happened to one config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was missing (or a reset was asked for) and is now the devnet's default.
    Written,
    /// It existed and is kept as it is; `edited` when it differs from the devnet's default.
    Kept {
        /// Differs from what the devnet would write now.
        edited: bool,
    },
}

/// Writes `text` to `path` when the file is missing or `reset` is set; otherwise keeps it.
pub fn ensure(path: &Path, text: &str, reset: bool) -> Result<Outcome, fsutil::FsError> {
    if reset || !path.exists() {
        fsutil::write_public(path, text.as_bytes())?;
        return Ok(Outcome::Written);
    }
    let old = fsutil::read_text(path)?;
    Ok(Outcome::Kept {
        edited: old != text,
    })
}

/// One line of a kept config file that no longer fits the devnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misfit {
    /// The file.
    pub file: PathBuf,
    /// 1-based line of the value, when the value is in the file.
    pub line: Option<usize>,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for Misfit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        write!(f, ": {}; {}", self.problem, self.fix)
    }
}

/// Kept config files that cannot serve this devnet.
#[derive(Debug, thiserror::Error)]
#[error(
    "kept config files do not fit this devnet (nothing was overwritten):\n{}\nFix those lines, or start with --reset-config to rewrite platform.toml, every node's config.toml and policy.toml from the defaults.",
    list(.0)
)]
pub struct MisfitError(pub Vec<Misfit>);

fn list(misfits: &[Misfit]) -> String {
    misfits
        .iter()
        .map(|m| format!("  {m}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Port of `host:port` when the host is one the devnet reaches on 127.0.0.1.
fn loopback_port(addr: &str) -> Option<u16> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    matches!(host, "127.0.0.1" | "localhost" | "0.0.0.0" | "::" | "::1")
        .then(|| port.parse().ok())
        .flatten()
}

/// Paths as written in a file resolve against the file's directory.
fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

// The keys the devnet relies on, with their positions (only these; the components' loaders
// check the rest).
#[derive(Deserialize)]
struct PlatformView {
    server: Option<ServerView>,
    coordinator: Option<CoordinatorView>,
}
#[derive(Deserialize)]
struct ServerView {
    listen: Option<Spanned<String>>,
}
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CoordinatorView {
    admin_public_keys: Option<Spanned<Vec<String>>>,
}

/// The facts of a kept `platform.toml` the nodes' configs are checked against.
#[derive(Debug, Clone)]
pub struct PlatformFacts {
    /// `[proxy] path`.
    pub proxy_path: String,
}

/// Checks a kept `platform.toml`: it loads, listens on the platform port of `devnet.json`, runs
/// both roles and accepts the devnet's administrator key. The facts are the file's where it
/// loads, the defaults where it does not (its misfit is then the loader's error).
pub fn check_platform(
    layout: &Layout,
    state: &State,
    admin_key_hex: &str,
) -> (PlatformFacts, Vec<Misfit>) {
    let path = layout.platform_config();
    let misfit = |line, problem: String, fix: String| Misfit {
        file: path.clone(),
        line,
        problem,
        fix,
    };
    let unusable = |problem: String| {
        (
            PlatformFacts {
                proxy_path: "/proxy".into(),
            },
            vec![misfit(
                None,
                problem,
                "correct the file (docs/platform.md)".into(),
            )],
        )
    };
    let cfg = match mpc_platform::config::PlatformConfig::load(&path) {
        Ok(c) => c,
        Err(e) => return unusable(e.to_string()),
    };
    let text = match fsutil::read_text(&path) {
        Ok(t) => t,
        Err(e) => return unusable(e.to_string()),
    };
    let view: PlatformView = match toml::from_str(&text) {
        Ok(v) => v,
        Err(e) => return unusable(e.to_string()),
    };
    let mut out = Vec::new();
    let want = state.ports.platform;
    if let Some(listen) = view.server.and_then(|s| s.listen)
        && loopback_port(listen.get_ref()) != Some(want)
    {
        out.push(misfit(
            Some(line_of(&text, listen.span().start)),
            format!(
                "[server] listen = {:?}, but devnet.json gives the platform port {want}",
                listen.get_ref()
            ),
            format!("set it to \"127.0.0.1:{want}\" (or set ports.platform in devnet.json)"),
        ));
    }
    let (want_database, want_bus) = match &state.ports.scale {
        None => (None, "inproc:".to_owned()),
        Some(s) => (
            Some(crate::cluster::scale_database_url(s.postgres)),
            format!("nats://127.0.0.1:{}", s.nats),
        ),
    };
    match &want_database {
        Some(url) if &cfg.coordinator.database != url => out.push(misfit(
            line_of_key(&text, "database"),
            format!(
                "[coordinator] database = {:?}, but the scaled devnet's PostgreSQL is {url}",
                cfg.coordinator.database
            ),
            format!("set it to {url:?} (or start with --reset-config)"),
        )),
        None if cfg.coordinator.database.starts_with("postgres") => out.push(misfit(
            line_of_key(&text, "database"),
            format!(
                "[coordinator] database = {:?}: without --scale the devnet runs no PostgreSQL",
                cfg.coordinator.database
            ),
            "set it to \"platform.db\" (or start with --scale, or --reset-config)".into(),
        )),
        _ => {}
    }
    if cfg.bus.url != want_bus {
        out.push(misfit(
            line_of_key(&text, "url"),
            format!(
                "[bus] url = {:?}, but this devnet's bus is {want_bus}",
                if cfg.bus.url.contains('@') {
                    "(a URL with credentials)"
                } else {
                    cfg.bus.url.as_str()
                }
            ),
            format!("set it to {want_bus:?} (or start with --reset-config)"),
        ));
    }
    for role in [
        mpc_platform::config::Role::Proxy,
        mpc_platform::config::Role::Coordinator,
    ] {
        if !cfg.has(role) {
            out.push(misfit(
                line_of_key(&text, "roles"),
                format!("roles does not include {role:?}: the devnet runs one platform process"),
                "set roles = [\"proxy\", \"coordinator\"]".into(),
            ));
        }
    }
    if !cfg
        .coordinator
        .admin_public_keys
        .iter()
        .any(|k| k.eq_ignore_ascii_case(admin_key_hex))
    {
        let line = view
            .coordinator
            .and_then(|c| c.admin_public_keys)
            .map(|k| line_of(&text, k.span().start));
        out.push(misfit(
            line,
            format!(
                "[coordinator] admin-public-keys does not hold the devnet's administrator key ({})",
                layout.admin_key().display()
            ),
            format!("add \"{admin_key_hex}\" to it"),
        ));
    }
    (
        PlatformFacts {
            proxy_path: cfg.proxy.path.clone(),
        },
        out,
    )
}

/// Line of a top-level `key =` (for keys whose value the view does not carry).
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct NodeView {
    app: Option<AppView>,
    storage: Option<StorageView>,
    mpc_service: Option<ServiceView>,
    callback: Option<CallbackView>,
}
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct AppView {
    party_id: Option<Spanned<String>>,
}
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct StorageView {
    unseal_server_address: Option<Spanned<String>>,
}
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ServiceView {
    protocol: Option<Spanned<String>>,
    address: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
}
#[derive(Deserialize)]
struct CallbackView {
    #[serde(default)]
    server: Vec<CallbackServerView>,
}
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CallbackServerView {
    address: Spanned<String>,
    public_key_path: String,
}

/// Checks a kept node `config.toml`: it loads with mpc-node's own loader, is party `party`,
/// serves its local API on the port of `devnet.json`, reaches the devnet's platform, and a
/// callback server that is the devnet's own (its public key file) is at the devnet's port.
/// Callback servers of the user's own are kept as they are.
pub fn check_node(
    layout: &Layout,
    state: &State,
    platform: &PlatformFacts,
    party: &str,
) -> Vec<Misfit> {
    let path = layout.node_config(party);
    let misfit = |line, problem: String, fix: String| Misfit {
        file: path.clone(),
        line,
        problem,
        fix,
    };
    if let Err(e) = mpc_node::Config::load(&path) {
        return vec![misfit(
            None,
            e.to_string(),
            "correct the file (README, config.toml)".into(),
        )];
    }
    let text = match fsutil::read_text(&path) {
        Ok(t) => t,
        Err(e) => return vec![misfit(None, e.to_string(), "check the file".into())],
    };
    let view: NodeView = match toml::from_str(&text) {
        Ok(v) => v,
        Err(e) => return vec![misfit(None, e.to_string(), "correct the file".into())],
    };
    let at = |s: &Spanned<String>| Some(line_of(&text, s.span().start));
    let mut out = Vec::new();

    match view.app.and_then(|a| a.party_id) {
        Some(p) if p.get_ref() == party => {}
        Some(p) => out.push(misfit(
            at(&p),
            format!(
                "[app] party-id = {:?} in the directory of party {party}",
                p.get_ref()
            ),
            format!("set it to \"{party}\""),
        )),
        None if party == "a" => {} // the guide's default
        None => out.push(misfit(
            None,
            format!("[app] party-id is missing (default \"a\") in the directory of party {party}"),
            format!("add party-id = \"{party}\" under [app]"),
        )),
    }

    if let Some(&want) = state.ports.nodes.get(party) {
        match view.storage.and_then(|s| s.unseal_server_address) {
            Some(a) if loopback_port(a.get_ref()) == Some(want) => {}
            found => out.push(misfit(
                found.as_ref().and_then(at),
                format!(
                    "[storage] unseal-server-address = {:?}, but devnet.json gives node {party} port {want}",
                    found.as_ref().map_or("0.0.0.0:8080 (default)", |a| a.get_ref().as_str())
                ),
                format!(
                    "set it to \"127.0.0.1:{want}\" (or set ports.nodes.{party} in devnet.json)"
                ),
            )),
        }
    }

    let proxy_ports = state.ports.proxy_ports();
    let (proxy_host, callback_host) = crate::state::service_hosts(state.docker_networks);
    let want_address = crate::render::proxy_address_on(proxy_host, &proxy_ports);
    let service = view.mpc_service;
    let (protocol, address, svc_path) = match service {
        Some(s) => (s.protocol, s.address, s.path),
        None => (None, None, None),
    };
    match &protocol {
        Some(p) if p.get_ref() == "wss" => {}
        found => out.push(misfit(
            found.as_ref().and_then(at),
            format!(
                "[mpc-service] protocol = {:?}: the devnet's platform serves TLS",
                found.as_ref().map_or("", |p| p.get_ref().as_str())
            ),
            "set protocol = \"wss\"".into(),
        )),
    }
    // Every address listed must be one of the devnet's proxies (any order, any subset).
    let reaches_a_proxy = |list: &str| {
        let mut n = 0;
        let all = list.split(',').all(|a| {
            n += 1;
            matches!(a.trim().rsplit_once(':'), Some((h, p)) if (h == proxy_host || (!state.docker_networks && h == "localhost")) && proxy_ports.iter().any(|q| q.to_string() == p))
        });
        all && n > 0
    };
    match &address {
        Some(a) if reaches_a_proxy(a.get_ref()) => {}
        found => out.push(misfit(
            found.as_ref().and_then(at),
            format!(
                "[mpc-service] address = {:?}, but the devnet's platform takes nodes on {want_address}",
                found.as_ref().map_or("api.sinohope.com (default)", |a| a.get_ref().as_str())
            ),
            format!("set it to {want_address:?}"),
        )),
    }
    match &svc_path {
        Some(p) if *p.get_ref() == platform.proxy_path => {}
        None if platform.proxy_path == "/proxy" => {}
        found => out.push(misfit(
            found.as_ref().and_then(at),
            format!(
                "[mpc-service] path = {:?}, but the platform's [proxy] path is {:?}",
                found
                    .as_ref()
                    .map_or("/proxy (default)", |p| p.get_ref().as_str()),
                platform.proxy_path
            ),
            format!("set it to {:?}", platform.proxy_path),
        )),
    }

    let node_dir = layout.node_dir(party);
    let ours = layout.callback_pub();
    for server in view.callback.map(|c| c.server).unwrap_or_default() {
        let key = resolve(&node_dir, Path::new(&server.public_key_path));
        if !same_file(&key, &ours) {
            continue; // the user's own callback server
        }
        let want = format!("http://{callback_host}:{}", state.ports.callback);
        if server.address.get_ref().trim_end_matches('/') != want {
            out.push(misfit(
                at(&server.address),
                format!(
                    "[[callback.server]] address = {:?} uses the devnet's callback key, but the devnet's callback server listens on {want}",
                    server.address.get_ref()
                ),
                format!("set it to \"{want}\" (or point public-key-path at your own server's key)"),
            ));
        }
    }
    out
}

/// Checks a kept `policy.toml`: it loads with the callback demo's own parser.
pub fn check_policy(layout: &Layout) -> Vec<Misfit> {
    let path = layout.callback_policy();
    let problem = match fsutil::read_text(&path) {
        Err(e) => e.to_string(),
        Ok(text) => match mpc_callback_demo::policy::Policy::from_toml_str(&text) {
            Ok(_) => return Vec::new(),
            Err(e) => e.to_string(),
        },
    };
    vec![Misfit {
        file: path,
        line: None,
        problem,
        fix: "correct the policy (docs/callback.md, \"Policy file\")".into(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ports() {
        assert_eq!(loopback_port("127.0.0.1:8080"), Some(8080));
        assert_eq!(loopback_port("0.0.0.0:1"), Some(1));
        assert_eq!(loopback_port("[::1]:9"), Some(9));
        assert_eq!(loopback_port("10.0.0.1:8080"), None);
        assert_eq!(loopback_port("127.0.0.1"), None);
    }

    #[test]
    fn lines() {
        let t = "a = 1\n\n[x]\nroles = 2\n";
        assert_eq!(line_of(t, 0), 1);
        assert_eq!(line_of(t, t.find("roles").unwrap_or(0)), 4);
        assert_eq!(line_of_key(t, "roles"), Some(4));
        assert_eq!(line_of_key(t, "nope"), None);
    }
}
