//! The config files, written as a user would write them (docs/platform.md for `platform.toml`,
//! the guide's `config.toml` for nodes, `policy.example.toml` for the callback demo). Relative
//! paths are relative to the file's directory, as every loader resolves them.

/// A TOML basic string (quoted and escaped).
pub fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Values of `platform.toml`.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// `[server] listen` port on 127.0.0.1.
    pub port: u16,
    /// `[coordinator] admin-public-keys` (hex DER SPKI).
    pub admin_public_keys: Vec<String>,
    /// `[coordinator] sign-timeout-secs`.
    pub sign_timeout_secs: u64,
    /// `[coordinator] keygen-timeout-secs`.
    pub keygen_timeout_secs: u64,
    /// `[coordinator] default-threshold`.
    pub default_threshold: u16,
    /// `[log] level`.
    pub log_level: String,
    /// `--scale`: the shared engines (PostgreSQL URL, NATS URL); `None`: SQLite and the
    /// in-process bus of one platform process.
    pub shared: Option<SharedEngines>,
}

/// The engines the processes of a scaled platform share.
#[derive(Debug, Clone)]
pub struct SharedEngines {
    /// `[coordinator] database`.
    pub database: String,
    /// `[bus] url`.
    pub bus_url: String,
}

/// `platform.toml` for `DIR/platform/` (TLS files in `DIR/tls/`).
pub fn platform_toml(c: &PlatformConfig) -> String {
    let keys = c
        .admin_public_keys
        .iter()
        .map(|k| toml_str(k))
        .collect::<Vec<_>>()
        .join(", ");
    let (header, database, bus, log_file) = match &c.shared {
        None => (
            "",
            toml_str("platform.db"),
            toml_str("inproc:"),
            "file = \"logs/platform.log\"\n".to_owned(),
        ),
        Some(s) => (
            "# --scale: several processes share this file, each started with --role and --listen;\n# each one's log is logs/<process>.out.\n",
            toml_str(&s.database),
            toml_str(&s.bus_url),
            String::new(),
        ),
    };
    format!(
        r#"# Written by mpc-devnet when missing; your edits are kept (mpc-devnet --reset-config rewrites
# it). Format: docs/platform.md.
{header}roles = ["proxy", "coordinator"]

[server]
listen = "127.0.0.1:{port}"
tls-cert-path = "../tls/server.crt"
tls-key-path = "../tls/server.key"

[proxy]
path = "/proxy"
max-frame-bytes = 8388608
queue-frames = 256
queue-bytes = 33554432
slow-consumer-grace-secs = 10
ping-interval-secs = 15
idle-timeout-secs = 45

[coordinator]
database = {database}
sign-timeout-secs = {sign}
keygen-timeout-secs = {keygen}
default-threshold = {threshold}
admin-public-keys = [{keys}]
# Signs every task; the nodes pin its public key (task-signing.pub.pem).
task-signing-key-path = "task-signing.key"

[bus]
url = {bus}

[log]
level = {level}
{log_file}"#,
        port = c.port,
        sign = c.sign_timeout_secs,
        keygen = c.keygen_timeout_secs,
        threshold = c.default_threshold,
        level = toml_str(&c.log_level),
    )
}

/// Values of a node's `config.toml`.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `[app] party-id`.
    pub party: String,
    /// `[storage] unseal-server-address` (`127.0.0.1:<port>`).
    pub api_address: String,
    /// `[mpc-service] address`: the platform's proxies, tried in this order
    /// ([`proxy_address`]).
    pub proxy_address: String,
    /// `[[callback.server]]`: (address, public-key-path relative to the node directory).
    pub callback: Option<(String, String)>,
    /// `[mpc-service] ca-cert-path` (relative to the node directory), our extension.
    pub ca_cert_path: Option<String>,
    /// `[mpc-service] platform-public-key-path` (relative to the node directory): the
    /// coordinator's task-signing public key the node pins.
    pub platform_public_key_path: Option<String>,
}

/// `[mpc-service] address` for proxies on these loopback ports: `127.0.0.1:P1,127.0.0.1:P2`.
pub fn proxy_address(ports: &[u16]) -> String {
    proxy_address_on("127.0.0.1", ports)
}

/// `[mpc-service] address` for proxies on `host` at these ports: `HOST:P1,HOST:P2`.
pub fn proxy_address_on(host: &str, ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("{host}:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A node's `config.toml` for `DIR/node-<party>/`.
pub fn node_toml(c: &NodeConfig) -> String {
    let mut s = format!(
        r#"# Written by mpc-devnet when missing, as a user writes it for their node; your edits are kept
# (mpc-devnet --reset-config rewrites it).
[app]
name = {name}
party-id = {party}
account-type = "2"

[log.stdout]
enable = true
level = 4

[log.file]
enable = true
level = 5
path = "logs/mpc-node.log"

[storage]
engine = "bolt"
t = 1
n = 1
db-file-path = "asset.db"
unseal-server-address = {api_address}

[mpc-service]
protocol = "wss"
address = {address}
path = "/proxy"
{ca}{pin}
[encrypt-signature]
enable = false
"#,
        ca = match &c.ca_cert_path {
            Some(p) => format!(
                "# Trust the devnet's CA besides the system roots (mpc-node extension).\nca-cert-path = {}\n",
                toml_str(p)
            ),
            None => String::new(),
        },
        pin = match &c.platform_public_key_path {
            Some(p) => format!(
                "# Tasks must be signed by the platform's task key (mpc-node extension).\nplatform-public-key-path = {}\n",
                toml_str(p)
            ),
            None => String::new(),
        },
        name = toml_str(&format!("devnet-node-{}", c.party)),
        party = toml_str(&c.party),
        api_address = toml_str(&c.api_address),
        address = toml_str(&c.proxy_address),
    );
    if let Some((address, key)) = &c.callback {
        s.push_str(&format!(
            r#"
[callback]
retry-times = 10
sleep-seconds = 2

[[callback.server]]
address = {address}
public-key-path = {key}
"#,
            address = toml_str(address),
            key = toml_str(key),
        ));
    }
    s
}

/// Destination address the devnet's transaction requests pay to (listed in the policy).
pub const DEVNET_DESTINATION: &str = "0xabcdef0000000000000000000000000000000001";
/// A destination the default policy does not list (REJECT tests).
pub const UNLISTED_DESTINATION: &str = "0x00000000000000000000000000000000deadbeef";

/// The devnet's callback policy (from `policy.example.toml`): every keygen of a, b, c with
/// t = 3 or 2; messages and raw data approved; ETH transfers to [`DEVNET_DESTINATION`] approved
/// up to 5 ETH, WAIT between 5 and 10 ETH, REJECT above 10 ETH or to any other destination;
/// key refreshes approved; key repairs only onto a node listed in `[key_repair]` (none yet).
pub fn default_policy_toml() -> String {
    format!(
        r#"# mpc-devnet's policy (from crates/callback-demo/policy.example.toml). Written when missing;
# your edits are kept (mpc-devnet --reset-config rewrites it).
[request_types]
allow = ["keygen", "sign", "bip340-schnorr-sign", "taproot-sign", "key-refresh", "key-repair"]

# A repair hands a party's share to a node: list the node id that replaces a lost one here,
# then restart the callback demo.
[key_repair]
new_node_ids = []

[[keygen.allow]]
cryptography = ["ecdsa-secp256k1", "eddsa-ed25519"]
t = 3
n = 3
party_ids = ["a", "b", "c"]

[[keygen.allow]]
cryptography = ["ecdsa-secp256k1", "eddsa-ed25519"]
t = 2
n = 3
party_ids = ["a", "b", "c"]

[sign]
sign_types = ["1", "2", "3"]
destinations = [{dest}]
# The devnet signs messages and raw data without amounts.
without_amount = "approve"
unlisted_asset = "reject"
wait_seconds = 2

[[sign.limits]]
chain = "ETH"
asset = "ETH"
max_per_request = "10"
daily_limit = "1000"
wait_above = "5"
"#,
        dest = toml_str(DEVNET_DESTINATION)
    )
}
