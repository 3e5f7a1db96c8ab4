//! [`Cluster`]: the devnet's processes and what was set up through their APIs. Used by the
//! `mpc-devnet` command and, as a harness, by the end-to-end tests.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mpc_devnet::{Cluster, Options};
//! let dir = std::path::PathBuf::from("/tmp/devnet-example");
//! let mut opts = Options::new(&dir);
//! opts.test_primes = true;
//! let mut cluster = Cluster::start(opts).await?;
//! let keys = cluster.wait_keys().await?;
//! cluster.stop_node("c");
//! cluster.start_node("c").await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use mpc_api::types::admin::{Curve, EcdsaProtocol, KeyInfo, KeyStatus, RequestKeygenRequest};
use p256::ecdsa::SigningKey;

use crate::api::{ApiClient, ApiError};
use crate::configs;
use crate::fsutil;
use crate::layout::Layout;
use crate::process::{Managed, Spec};
use crate::progress::{self, Phase};
use crate::render;
use crate::state::State;

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// The devnet directory (created; reused when it holds an earlier devnet).
    pub dir: PathBuf,
    /// The multi-call binary spawned for every component (`mpc-devnet`); default
    /// `std::env::current_exe()`. Tests pass `env!("CARGO_BIN_EXE_mpc-devnet")`.
    pub exe: PathBuf,
    /// Parties started and bound (`a`, `b`, `c`).
    pub parties: Vec<String>,
    /// Preload the published test Paillier primes into the nodes (keys are then NOT secure).
    pub test_primes: bool,
    /// Threshold-ECDSA protocol of the organization the devnet creates (`--ecdsa`); `None`:
    /// the platform's default (`dkls23`: no Paillier primes, key generation in seconds).
    pub ecdsa: Option<EcdsaProtocol>,
    /// Test-only fast password KDF for the nodes (`MPC_NODE_INSECURE_FAST_KDF`).
    pub fast_kdf: bool,
    /// `[coordinator] default-threshold` (automatic key generation is t-of-3).
    pub threshold: u16,
    /// Start key generation with the admin call `key/keygen` at this threshold instead of
    /// waiting for the automatic one.
    pub admin_keygen: Option<u16>,
    /// Policy TOML of the callback demo instead of [`render::default_policy_toml`]; written
    /// when `policy.toml` is missing (a kept file that differs is an error, never overwritten).
    pub callback_policy: Option<String>,
    /// Rewrite `platform.toml`, every node's `config.toml` and `policy.toml` from the defaults
    /// (`--reset-config`). Without it, existing config files are kept as the user left them
    /// and checked against what the devnet needs ([`crate::configs`]).
    pub reset_config: bool,
    /// `[coordinator] sign-timeout-secs`.
    pub sign_timeout_secs: u64,
    /// `[coordinator] keygen-timeout-secs`.
    pub keygen_timeout_secs: u64,
    /// How long [`Cluster::wait_keys`] waits.
    pub keys_timeout: Duration,
    /// How long a process may take to answer after start.
    pub ready_timeout: Duration,
    /// `[log] level` of the platform.
    pub log_level: String,
    /// No progress lines on stderr.
    pub quiet: bool,
    /// Start the platform and set up the organization (default). `false` starts only the
    /// nodes and the callback demo (tests of the harness itself).
    pub with_platform: bool,
    /// The platform is run by someone else (a test's stand-in) on the port in `devnet.json`:
    /// not spawned, only awaited (`/healthz`) and used.
    pub external_platform: bool,
    /// Run every component in a container of these images ([`crate::docker`]) instead of
    /// spawning [`Options::exe`].
    pub docker: Option<crate::docker::Images>,
    /// `--scale`: the platform as several processes with one role each, sharing a PostgreSQL
    /// server and a nats-server the devnet runs from the system's packages.
    pub scale: Option<Scale>,
    /// With [`Options::docker`]: each node on a Docker network of its own that reaches only the
    /// platform (and node a's the callback demo), instead of the host's network
    /// ([`crate::docker::Networks`]).
    pub docker_networks: bool,
}

/// The shape of a scaled devnet's platform (`--scale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Coordinator processes (each serves the API).
    pub coordinators: usize,
    /// Proxy processes (nodes connect to them; a node lists them all, in a rotated order).
    pub proxies: usize,
}

impl Scale {
    /// `n` coordinators and `n` proxies.
    pub fn replicas(n: usize) -> Self {
        Self {
            coordinators: n,
            proxies: n,
        }
    }
}

/// The database URL of a scaled devnet whose PostgreSQL listens on 127.0.0.1:`port`.
pub fn scale_database_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/platform")
}

/// Readings of a scaled devnet's engines ([`Cluster::engine_counters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineCounters {
    /// Messages nats-server received from its clients.
    pub bus_messages_in: u64,
    /// Messages nats-server delivered to its clients.
    pub bus_messages_out: u64,
    /// PostgreSQL's next transaction id: transactions that wrote (read-only ones take none).
    pub db_write_transactions: u64,
    /// PostgreSQL's write-ahead log position, bytes.
    pub db_wal_bytes: u64,
}

/// The engines a scaled devnet runs (dropped after the platform's processes).
#[derive(Debug)]
struct Engines {
    postgres: mpc_services::Postgres,
    nats: mpc_services::NatsServer,
}

impl Options {
    /// Defaults: parties a, b, c, 3-of-3, 120 s sign timeout, fresh primes.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("mpc-devnet")),
            parties: ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect(),
            test_primes: false,
            ecdsa: None,
            fast_kdf: false,
            threshold: 3,
            admin_keygen: None,
            callback_policy: None,
            reset_config: false,
            sign_timeout_secs: 120,
            keygen_timeout_secs: 900,
            keys_timeout: Duration::from_secs(1800),
            ready_timeout: Duration::from_secs(60),
            log_level: "info".into(),
            quiet: false,
            with_platform: true,
            docker: None,
            external_platform: false,
            scale: None,
            docker_networks: false,
        }
    }
}

/// One node as the cluster knows it.
#[derive(Debug, Clone, Default)]
pub struct NodeFacts {
    /// `sino…`.
    pub node_id: String,
    /// PEM public key.
    pub public_key_pem: String,
}

/// What [`Cluster::prepare`] wrote and loaded.
#[derive(Debug)]
pub struct Prepared {
    /// The files.
    pub layout: Layout,
    /// Ports and ids.
    pub state: State,
    /// The administrator's key.
    pub admin_key: SigningKey,
    /// The API user's key.
    pub api_key: SigningKey,
}

/// A running devnet. Dropping it stops every process (SIGTERM, then SIGKILL).
#[derive(Debug)]
pub struct Cluster {
    opts: Options,
    layout: Layout,
    state: State,
    // Field order is drop order: callback first, nodes, the platform's processes, then the
    // engines they use.
    callback: Option<Managed>,
    nodes: BTreeMap<String, Managed>,
    /// Nodes in a network namespace of their own ([`Cluster::isolate_node`]), by party.
    netns: BTreeMap<String, crate::netns::NetNs>,
    /// `platform`, or with --scale `coordinator-1`, `proxy-1`, ….
    platform: BTreeMap<String, Managed>,
    /// Platform processes listening elsewhere than 127.0.0.1 (a namespace's link), by name.
    listen_ips: BTreeMap<String, std::net::Ipv4Addr>,
    /// Where the harness reaches a node's local API when not on 127.0.0.1 (a namespace, a
    /// Docker network), by party.
    node_hosts: BTreeMap<String, std::net::IpAddr>,
    /// `--docker-networks`: removed after the containers on them.
    docker_nets: Option<crate::docker::Networks>,
    engines: Option<Engines>,
    facts: BTreeMap<String, NodeFacts>,
    https: reqwest::Client,
    admin: ApiClient,
    api: ApiClient,
    api_key: SigningKey,
}

fn api_err(e: ApiError) -> anyhow::Error {
    anyhow!(e)
}

impl Cluster {
    /// Writes every file, starts the platform, the nodes (init + unseal) and the callback demo,
    /// and sets up the organization, its API user and the node bindings. Key generation then
    /// runs on the platform; [`Cluster::wait_keys`] waits for it.
    pub async fn start(opts: Options) -> anyhow::Result<Self> {
        progress::set_quiet(opts.quiet);
        if let Some(images) = &opts.docker {
            images.ensure_present()?;
        }
        if let Some(scale) = opts.scale {
            if opts.docker.is_some() || opts.external_platform || !opts.with_platform {
                bail!(
                    "--scale runs the platform's processes itself: not with --docker or another platform"
                );
            }
            if scale.coordinators == 0 || scale.proxies == 0 {
                bail!("--scale needs at least one coordinator and one proxy");
            }
        }
        if opts.docker_networks && (opts.docker.is_none() || opts.external_platform) {
            bail!(
                "--docker-networks puts the devnet's containers on networks of their own: it needs --docker"
            );
        }
        let Prepared {
            layout,
            state,
            admin_key,
            api_key,
        } = Self::prepare(&opts)?;
        let ca_pem = std::fs::read(layout.ca_cert()).context("reading ca.crt")?;
        let https = crate::api::https_client(&ca_pem).map_err(|e| anyhow!("HTTPS client: {e}"))?;
        // With several coordinators the clients move to the next one when one does not answer.
        let bases: Vec<String> = state
            .ports
            .api_ports()
            .iter()
            .map(|p| format!("https://127.0.0.1:{p}"))
            .collect();
        let admin = ApiClient::with_bases(https.clone(), &bases, admin_key);
        let api = ApiClient::with_bases(https.clone(), &bases, api_key.clone());
        let mut cluster = Self {
            opts,
            layout,
            state,
            callback: None,
            nodes: BTreeMap::new(),
            netns: BTreeMap::new(),
            platform: BTreeMap::new(),
            listen_ips: BTreeMap::new(),
            node_hosts: BTreeMap::new(),
            docker_nets: None,
            engines: None,
            facts: BTreeMap::new(),
            https,
            admin,
            api,
            api_key,
        };
        if cluster.opts.docker_networks {
            // The nodes reach the platform by the name `platform`: the server certificate
            // must hold it.
            crate::pki::reissue_server(&cluster.layout, &[])?;
            cluster.docker_nets = Some(crate::docker::Networks::create(&cluster.opts.parties)?);
        }
        if cluster.opts.with_platform {
            if cluster.opts.external_platform {
                cluster.await_external_platform().await?;
            } else {
                cluster.start_platform().await?;
            }
        }
        let parties = cluster.opts.parties.clone();
        for p in &parties {
            cluster.spawn_node(p)?;
        }
        for p in &parties {
            cluster.ready_node(p).await?;
        }
        cluster.start_callback().await?;
        if cluster.opts.with_platform {
            cluster.setup_organization().await?;
        }
        Ok(cluster)
    }

    /// Writes every file of the devnet directory (CA, certificates, keys, configs, policy,
    /// `devnet.json` with ports) without starting anything. Reuses what exists.
    pub fn prepare(opts: &Options) -> anyhow::Result<Prepared> {
        let layout = Layout::new(&opts.dir);
        fsutil::create_dir(&layout.dir)?;
        let phase = Phase::start(format!("files in {}", layout.dir.display()));
        let mut state = State::load(&layout.state())?;
        state.assign_ports(
            &opts.parties,
            opts.external_platform,
            opts.scale.map(|s| (s.coordinators, s.proxies)),
        )?;
        state.docker_networks = opts.docker_networks;
        state.save(&layout.state())?;
        let created = crate::pki::ensure(&layout).context("dev CA and server certificate")?;
        for d in [
            layout.api_dir(),
            layout.callback_dir(),
            layout.platform_dir(),
        ] {
            fsutil::create_dir(&d)?;
        }
        let admin_key = crate::keys::ensure_sdk_key(&layout.admin_key())?;
        let api_key = crate::keys::ensure_sdk_key(&layout.api_user_key())?;
        fsutil::write_public(
            &layout.api_user_pub(),
            crate::keys::api_key_hex(&api_key).as_bytes(),
        )?;
        crate::keys::ensure_pem_key(&layout.callback_key(), &layout.callback_pub())?;
        if !opts.external_platform {
            // The coordinator's task-signing key; every node pins its public key.
            crate::keys::ensure_pem_key(&layout.platform_task_key(), &layout.platform_task_pub())?;
        }
        if opts.test_primes {
            fsutil::write_public(&layout.test_primes(), crate::TEST_PRIMES_JSON.as_bytes())?;
        }
        let edited = Self::write_configs(opts, &layout, &state, &admin_key)?;
        let mut summary = if created { "new dev CA" } else { "reused" }.to_owned();
        if !edited.is_empty() {
            summary.push_str(&format!("; kept your edits in {}", edited.join(", ")));
        }
        phase.done(&summary);
        if opts.test_primes {
            progress::note(
                "!!! WARNING: test primes: the nodes preload PUBLISHED Paillier primes !!!\n  !!! ECDSA keys generated by this devnet are NOT SECURE; never fund them.  !!!",
            );
        }
        Ok(Prepared {
            layout,
            state,
            admin_key,
            api_key,
        })
    }

    /// Writes the config files that are missing (all of them with `reset_config`), keeps the
    /// others, and checks every one with its component's loader against what the devnet needs.
    /// Returns the kept files that differ from the defaults (relative to the directory).
    fn write_configs(
        opts: &Options,
        layout: &Layout,
        state: &State,
        admin_key: &SigningKey,
    ) -> anyhow::Result<Vec<String>> {
        let reset = opts.reset_config;
        let admin_hex = crate::keys::api_key_hex(admin_key);
        let mut outcomes = Vec::new();
        let platform = render::platform_toml(&render::PlatformConfig {
            port: state.ports.platform,
            admin_public_keys: vec![admin_hex.clone()],
            sign_timeout_secs: opts.sign_timeout_secs,
            keygen_timeout_secs: opts.keygen_timeout_secs,
            default_threshold: opts.threshold,
            log_level: opts.log_level.clone(),
            shared: state.ports.scale.as_ref().map(|s| render::SharedEngines {
                database: scale_database_url(s.postgres),
                bus_url: format!("nats://127.0.0.1:{}", s.nats),
            }),
        });
        let path = layout.platform_config();
        outcomes.push((configs::ensure(&path, &platform, reset)?, path));
        let path = layout.callback_policy();
        let outcome = match &opts.callback_policy {
            Some(policy) => {
                let outcome = configs::ensure(&path, policy, reset)?;
                if outcome == (configs::Outcome::Kept { edited: true }) {
                    bail!(
                        "{} exists and differs from the policy this run asks for; it is not overwritten (remove it, or reset the config)",
                        path.display()
                    );
                }
                outcome
            }
            None => configs::ensure(&path, &render::default_policy_toml(), reset)?,
        };
        outcomes.push((outcome, path));
        for p in &opts.parties {
            let path = layout.node_config(p);
            outcomes.push((
                Self::write_node_config(layout, state, p, p, reset, !opts.external_platform)?,
                path,
            ));
        }

        let (facts, mut misfits) = configs::check_platform(layout, state, &admin_hex);
        for p in &opts.parties {
            misfits.extend(configs::check_node(layout, state, &facts, p));
        }
        misfits.extend(configs::check_policy(layout));
        if !misfits.is_empty() {
            return Err(configs::MisfitError(misfits).into());
        }
        Ok(outcomes
            .into_iter()
            .filter(|(o, _)| *o == configs::Outcome::Kept { edited: true })
            .map(|(_, path)| {
                path.strip_prefix(&layout.dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string()
            })
            .collect())
    }

    /// The config of the node in `DIR/node-<slot>/`, which serves as party `party_id` (the
    /// slot is the party, except for a node that replaces another one).
    fn write_node_config(
        layout: &Layout,
        state: &State,
        slot: &str,
        party_id: &str,
        reset: bool,
        pin_platform: bool,
    ) -> anyhow::Result<configs::Outcome> {
        // Nodes spread over the proxies: each lists them all, starting at another one.
        let mut ports = state.ports.proxy_ports();
        let turn = usize::from(slot.bytes().last().unwrap_or(0)) % ports.len().max(1);
        ports.rotate_left(turn);
        let api_port = match state.ports.nodes.get(slot) {
            Some(p) => *p,
            None => crate::state::free_port().context("no free port")?,
        };
        // On a Docker network of its own the node serves its local API on its container's
        // address (the harness reaches it there) and reaches the platform by name.
        let (proxy_host, _) = crate::state::service_hosts(state.docker_networks);
        let api_host = if state.docker_networks {
            "0.0.0.0"
        } else {
            "127.0.0.1"
        };
        Self::write_node_config_at(
            layout,
            state,
            slot,
            party_id,
            reset,
            pin_platform,
            &format!("{api_host}:{api_port}"),
            &render::proxy_address_on(proxy_host, &ports),
        )
    }

    /// [`Cluster::write_node_config`] with the node's local API address and the proxies' given.
    #[allow(clippy::too_many_arguments)]
    fn write_node_config_at(
        layout: &Layout,
        state: &State,
        slot: &str,
        party_id: &str,
        reset: bool,
        pin_platform: bool,
        api_address: &str,
        proxy_address: &str,
    ) -> anyhow::Result<configs::Outcome> {
        let dir = layout.node_dir(slot);
        fsutil::create_dir(&dir.join("logs"))?;
        let (_, callback_host) = crate::state::service_hosts(state.docker_networks);
        let callback = (slot == "a").then(|| {
            (
                format!("http://{callback_host}:{}", state.ports.callback),
                "../callback/server.pub.pem".to_owned(),
            )
        });
        let text = render::node_toml(&render::NodeConfig {
            party: party_id.to_owned(),
            api_address: api_address.to_owned(),
            proxy_address: proxy_address.to_owned(),
            callback,
            ca_cert_path: Some("../ca.crt".to_owned()),
            platform_public_key_path: pin_platform
                .then(|| "../platform/task-signing.pub.pem".to_owned()),
        });
        Ok(configs::ensure(&layout.node_config(slot), &text, reset)?)
    }

    // ------------------------------------------------------------ accessors

    /// The options it was started with.
    pub fn options(&self) -> &Options {
        &self.opts
    }
    /// Its files.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    /// Ports and ids.
    pub fn state(&self) -> &State {
        &self.state
    }
    /// `https://127.0.0.1:<port>`.
    pub fn api_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.state.ports.platform)
    }
    /// The console page.
    pub fn console_url(&self) -> String {
        format!("{}/console", self.api_url())
    }
    /// The API user's client (WaaS calls).
    pub fn api(&self) -> &ApiClient {
        &self.api
    }
    /// The API user's key.
    pub fn api_key(&self) -> &SigningKey {
        &self.api_key
    }
    /// The administrator's client (admin calls).
    pub fn admin(&self) -> &ApiClient {
        &self.admin
    }
    /// An HTTPS client trusting the dev CA (for `/healthz`, `/metrics`, `/console`).
    pub fn https(&self) -> &reqwest::Client {
        &self.https
    }
    /// The organization's id.
    pub fn organization_id(&self) -> &str {
        self.state.organization_id.as_deref().unwrap_or("")
    }
    /// The organization's vault.
    pub fn vault_id(&self) -> &str {
        self.state.vault_id.as_deref().unwrap_or("")
    }
    /// Node id of `party` (after start).
    pub fn node_id(&self, party: &str) -> Option<&str> {
        self.facts.get(party).map(|f| f.node_id.as_str())
    }
    /// Node ids by party.
    pub fn node_ids(&self) -> BTreeMap<String, String> {
        self.facts
            .iter()
            .map(|(p, f)| (p.clone(), f.node_id.clone()))
            .collect()
    }
    /// Remembers the demo wallet in `devnet.json`.
    pub fn set_wallet(&mut self, wallet_id: &str) -> anyhow::Result<()> {
        self.state.wallet_id = Some(wallet_id.to_owned());
        self.state.save(&self.layout.state())?;
        Ok(())
    }

    // ------------------------------------------------------------ platform

    /// Starts a component: a child process, or with [`Options::docker`] a container.
    fn launch(&self, spec: Spec) -> anyhow::Result<Managed> {
        use crate::docker::Placement;
        let Some(images) = &self.opts.docker else {
            return Ok(Managed::spawn(spec)?);
        };
        let Some(nets) = &self.docker_nets else {
            let (spec, name) = crate::docker::wrap(&spec, images, &self.layout.dir)?;
            return Ok(Managed::spawn_container(spec, name)?);
        };
        // Its own networks: the platform on the front one and every node's, the callback demo
        // on the front one and node a's, each node alone on its own.
        let (placement, joins): (Placement, Vec<(String, &str)>) = match spec.name.as_str() {
            "platform" => (
                Placement::Network {
                    name: nets.front(),
                    aliases: vec!["platform".into()],
                    publish: vec![self.state.ports.platform],
                },
                nets.parties()
                    .iter()
                    .map(|p| (nets.of_node(p), "platform"))
                    .collect(),
            ),
            "callback" => (
                Placement::Network {
                    name: nets.front(),
                    aliases: vec!["callback".into()],
                    publish: vec![self.state.ports.callback],
                },
                vec![(nets.of_node("a"), "callback")],
            ),
            other => match other.strip_prefix("node-") {
                Some(party) => (
                    Placement::Network {
                        name: nets.of_node(party),
                        aliases: Vec::new(),
                        publish: Vec::new(),
                    },
                    Vec::new(),
                ),
                None => bail!("no network for component {other}"),
            },
        };
        let (spec, name) = crate::docker::wrap_on(&spec, images, &self.layout.dir, &placement)?;
        let managed = Managed::spawn_container(spec, name.clone())?;
        wait_container(&name)?;
        for (network, alias) in joins {
            crate::docker::connect(&network, &name, alias)?;
        }
        Ok(managed)
    }

    /// The platform's processes: `platform`, or with --scale `coordinator-1…`, `proxy-1…`,
    /// each with its role and listening port.
    pub fn platform_process_names(&self) -> Vec<String> {
        self.platform_processes()
            .into_iter()
            .map(|(name, _, _)| name)
            .collect()
    }

    fn platform_processes(&self) -> Vec<(String, Option<&'static str>, u16)> {
        match &self.state.ports.scale {
            None => vec![("platform".into(), None, self.state.ports.platform)],
            Some(s) => {
                let mut v = Vec::new();
                for (i, p) in s.coordinators.iter().enumerate() {
                    v.push((format!("coordinator-{}", i + 1), Some("coordinator"), *p));
                }
                for (i, p) in s.proxies.iter().enumerate() {
                    v.push((format!("proxy-{}", i + 1), Some("proxy"), *p));
                }
                v
            }
        }
    }

    fn platform_spec(&self, name: &str, role: Option<&str>, port: u16) -> Spec {
        let dir = self.layout.platform_dir();
        let mut args: Vec<OsString> = vec![
            "platform".into(),
            "start".into(),
            "--config".into(),
            self.layout.platform_config().into_os_string(),
        ];
        if let Some(role) = role {
            args.extend([
                "--role".into(),
                role.into(),
                "--listen".into(),
                format!("{}:{port}", self.listen_ip(name)).into(),
            ]);
            if role == "coordinator" {
                // One audit log per coordinator process (they share platform.toml).
                args.extend([
                    "--audit-log".into(),
                    dir.join(format!("audit-{name}.log")).into_os_string(),
                ]);
            }
        } else if self.docker_nets.is_some() {
            // In its container, on every network it joins (the port is published on 127.0.0.1).
            args.extend(["--listen".into(), format!("0.0.0.0:{port}").into()]);
        }
        Spec {
            name: name.into(),
            exe: self.opts.exe.clone(),
            args,
            log: Layout::process_log(&dir, name),
            cwd: dir,
            env: Vec::new(),
        }
    }

    async fn start_platform(&mut self) -> anyhow::Result<()> {
        if self.state.ports.scale.is_some() && self.engines.is_none() {
            self.start_engines().await?;
        }
        for (name, _, _) in self.platform_processes() {
            self.start_platform_process(&name).await?;
        }
        Ok(())
    }

    /// Starts one of the platform's processes (see [`Cluster::platform_process_names`]) and
    /// waits for its `/healthz`.
    pub async fn start_platform_process(&mut self, name: &str) -> anyhow::Result<()> {
        let Some((_, role, port)) = self
            .platform_processes()
            .into_iter()
            .find(|(n, _, _)| n == name)
        else {
            bail!("the devnet has no platform process {name:?}");
        };
        if let Some(mut old) = self.platform.remove(name) {
            old.stop();
        }
        let what = match role {
            None => format!("platform on {}", self.api_url()),
            Some(role) => format!("{name} ({role}) on 127.0.0.1:{port}"),
        };
        let phase = Phase::start(what);
        let mut proc = self.launch(self.platform_spec(name, role, port))?;
        let url = format!("https://{}:{port}/healthz", self.listen_ip(name));
        let r = wait_until(&mut proc, self.opts.ready_timeout, || async {
            matches!(self.https.get(&url).send().await, Ok(r) if r.status().is_success())
        })
        .await;
        match r {
            Ok(()) => {
                phase.done("");
                self.platform.insert(name.to_owned(), proc);
                Ok(())
            }
            Err(e) => {
                phase.fail(&e);
                bail!(
                    "{name} did not become healthy: {e}\n--- {}:\n{}",
                    proc.spec().log.display(),
                    proc.log_tail(30)
                )
            }
        }
    }

    fn listen_ip(&self, name: &str) -> std::net::Ipv4Addr {
        self.listen_ips
            .get(name)
            .copied()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST)
    }

    /// Kills one of the platform's processes (SIGKILL, like a crash).
    pub fn kill_platform_process(&mut self, name: &str) {
        if let Some(mut p) = self.platform.remove(name) {
            p.kill();
        }
    }

    /// Where a scaled devnet keeps its PostgreSQL data: `DIR/postgres`, or, when this process
    /// is root and PostgreSQL's `postgres` user cannot enter DIR, a directory under /var/tmp
    /// named after DIR.
    pub fn postgres_dir(&self) -> PathBuf {
        let dir = self.layout.postgres_dir();
        if mpc_services::Postgres::reachable_by_service_user(&dir) {
            return dir;
        }
        use sha2::Digest as _;
        let id = sha2::Sha256::digest(self.layout.dir.as_os_str().as_encoded_bytes());
        PathBuf::from("/var/tmp").join(format!("mpc-devnet-postgres-{}", hex::encode(&id[..8])))
    }

    /// Starts the scaled devnet's PostgreSQL (data kept in [`Cluster::postgres_dir`]; database
    /// `platform` created on the first start) and nats-server.
    async fn start_engines(&mut self) -> anyhow::Result<()> {
        let Some(ports) = self.state.ports.scale.clone() else {
            return Ok(());
        };
        let dir = self.postgres_dir();
        if dir != self.layout.postgres_dir() {
            progress::note(&format!(
                "PostgreSQL runs as user postgres, which cannot enter {}; its data is kept in {}",
                self.layout.dir.display(),
                dir.display()
            ));
        }
        let phase = Phase::start(format!(
            "PostgreSQL on 127.0.0.1:{}, nats-server on 127.0.0.1:{}",
            ports.postgres, ports.nats
        ));
        let r = tokio::task::spawn_blocking(move || -> anyhow::Result<Engines> {
            let postgres = mpc_services::Postgres::start_kept(&dir, ports.postgres)
                .with_context(|| format!("PostgreSQL in {}", dir.display()))?;
            let exists = postgres
                .psql("SELECT 1 FROM pg_database WHERE datname = 'platform'")
                .context("PostgreSQL")?;
            if exists.trim() != "1" {
                postgres
                    .create_database("platform")
                    .context("creating database platform")?;
            }
            let nats = mpc_services::NatsServer::start_on(ports.nats).context("nats-server")?;
            Ok(Engines { postgres, nats })
        })
        .await
        .context("starting the engines")?;
        match r {
            Ok(e) => {
                phase.done(&format!("data in {}", e.postgres.dir().display()));
                self.engines = Some(e);
                Ok(())
            }
            Err(e) => {
                phase.fail(&format!("{e:#}"));
                Err(e)
            }
        }
    }

    fn engines(&mut self) -> anyhow::Result<&mut Engines> {
        self.engines
            .as_mut()
            .ok_or_else(|| anyhow!("this devnet runs no PostgreSQL or nats-server (--scale does)"))
    }

    /// Stops nats-server and starts it again on the same port (core NATS keeps nothing: what
    /// was in flight is lost). Blocks until it answers.
    pub fn restart_nats(&mut self) -> anyhow::Result<()> {
        let engines = self.engines()?;
        engines.nats.restart().context("restarting nats-server")
    }

    /// Stops PostgreSQL (fast shutdown: open sessions end) and starts it again on its data.
    /// Blocks until it answers.
    pub fn restart_postgres(&mut self) -> anyhow::Result<()> {
        let engines = self.engines()?;
        engines.postgres.restart().context("restarting PostgreSQL")
    }

    /// Runs one SQL command on the platform's database (scaled devnet); the rows as `psql -At`
    /// prints them.
    pub fn platform_sql(&mut self, sql: &str) -> anyhow::Result<String> {
        let engines = self.engines()?;
        Ok(engines.postgres.psql_on("platform", sql)?)
    }

    async fn await_external_platform(&self) -> anyhow::Result<()> {
        let url = format!("{}/healthz", self.api_url());
        let end = Instant::now() + self.opts.ready_timeout;
        loop {
            if matches!(self.https.get(&url).send().await, Ok(r) if r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() >= end {
                bail!("no platform answers {url}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the platform's processes (SIGTERM) and starts them again on the same ports and
    /// database; waits for `/healthz`. Nodes reconnect by themselves.
    pub async fn restart_platform(&mut self) -> anyhow::Result<()> {
        for (_, mut p) in std::mem::take(&mut self.platform) {
            p.stop();
        }
        self.start_platform().await
    }

    // ------------------------------------------------------------ nodes

    fn node_spec(&self, party: &str) -> Spec {
        let dir = self.layout.node_dir(party);
        let mut env: Vec<(String, OsString)> = Vec::new();
        if self.opts.test_primes {
            env.push((
                crate::TEST_PRIMES_ENV.into(),
                self.layout.test_primes().into_os_string(),
            ));
        }
        if self.opts.fast_kdf {
            env.push((
                mpc_node::INSECURE_KDF_ENV.into(),
                mpc_node::INSECURE_KDF_VALUE.into(),
            ));
        }
        Spec {
            name: format!("node-{party}"),
            exe: self.opts.exe.clone(),
            args: vec![
                "node".into(),
                "start".into(),
                "--config".into(),
                self.layout.node_config(party).into_os_string(),
            ],
            log: Layout::process_log(&dir, "node"),
            cwd: dir,
            env,
        }
    }

    fn spawn_node(&mut self, party: &str) -> anyhow::Result<()> {
        let mut spec = self.node_spec(party);
        if let Some(ns) = self.netns.get(party) {
            spec = ns.wrap(spec);
        }
        let proc = self.launch(spec)?;
        if let (Some(nets), Some(container)) = (&self.docker_nets, proc.container()) {
            let ip = crate::docker::address_on(container, &nets.of_node(party))?;
            self.node_hosts.insert(party.to_owned(), ip);
        }
        self.nodes.insert(party.to_owned(), proc);
        Ok(())
    }

    fn node_client(&self, party: &str) -> anyhow::Result<mpc_node::client::Client> {
        let port = self
            .state
            .ports
            .nodes
            .get(party)
            .copied()
            .ok_or_else(|| anyhow!("no port for party {party}"))?;
        let host = self
            .node_hosts
            .get(party)
            .copied()
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        Ok(mpc_node::client::Client::new(&format!("{host}:{port}"))?)
    }

    /// Waits for the local API, then init (first start, new password stored 0600 in the node
    /// directory) and unseal.
    async fn ready_node(&mut self, party: &str) -> anyhow::Result<()> {
        let phase = Phase::start(format!("node {party}: start, init/unseal"));
        match self.ready_node_inner(party).await {
            Ok(detail) => {
                phase.done(&detail);
                Ok(())
            }
            Err(e) => {
                phase.fail(&format!("{e:#}"));
                let tail = self
                    .nodes
                    .get(party)
                    .map(|n| n.log_tail(30))
                    .unwrap_or_default();
                Err(e.context(format!("node {party}; last log lines:\n{tail}")))
            }
        }
    }

    async fn ready_node_inner(&mut self, party: &str) -> anyhow::Result<String> {
        let client = self.node_client(party)?;
        let status = {
            let proc = self
                .nodes
                .get_mut(party)
                .ok_or_else(|| anyhow!("node {party} is not running"))?;
            let last = std::cell::RefCell::new(None);
            wait_until(proc, self.opts.ready_timeout, || async {
                match client.get("/sys/seal-status").await {
                    Ok(r) if r.is_ok() => {
                        *last.borrow_mut() = r.data().cloned();
                        true
                    }
                    _ => false,
                }
            })
            .await
            .map_err(|e| anyhow!("local API did not answer: {e}"))?;
            last.into_inner().unwrap_or_default()
        };
        let state = status.get("state").and_then(|s| s.as_str()).unwrap_or("");
        let pw_path = self.layout.node_password(party);
        let mut detail = String::new();
        if state == "uninitialized" {
            let pw = if pw_path.exists() {
                fsutil::read_text(&pw_path)?
            } else {
                let pw = crate::keys::random_password();
                fsutil::write_private(&pw_path, pw.as_bytes())?;
                pw
            };
            let pw = zeroize::Zeroizing::new(pw);
            let r = client.post_bkey("/sys/init", pw.trim_end()).await?;
            if !r.is_ok() {
                bail!("init refused: {}", r.body.trim());
            }
            detail.push_str("initialized");
        }
        let st = client.get("/sys/seal-status").await?;
        if st
            .data()
            .and_then(|d| d.get("state"))
            .and_then(|s| s.as_str())
            == Some("sealed")
        {
            let pw = zeroize::Zeroizing::new(
                fsutil::read_text(&pw_path)
                    .context("the node is sealed and has no password file")?,
            );
            let r = client.post_bkey("/sys/in-bkey", pw.trim_end()).await?;
            if !r.is_ok() {
                bail!("unseal refused: {}", r.body.trim());
            }
            if !detail.is_empty() {
                detail.push_str(", ");
            }
            detail.push_str("unsealed");
        }
        let st = client.get("/sys/seal-status").await?;
        let data = st.data().cloned().unwrap_or_default();
        let get = |k: &str| {
            data.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        if get("state") != "unsealed" {
            bail!("node state is {:?} after unseal", get("state"));
        }
        let facts = NodeFacts {
            node_id: get("node_id"),
            public_key_pem: get("public_key"),
        };
        self.facts.insert(party.to_owned(), facts);
        Ok(if detail.is_empty() {
            "unsealed".into()
        } else {
            detail
        })
    }

    /// Stops a node (SIGTERM; it seals itself by exiting).
    pub fn stop_node(&mut self, party: &str) {
        if let Some(mut n) = self.nodes.remove(party) {
            n.stop();
        }
    }

    /// Kills a node (SIGKILL, like a crash).
    pub fn kill_node(&mut self, party: &str) {
        if let Some(mut n) = self.nodes.remove(party) {
            n.kill();
        }
    }

    /// Starts a stopped node again and unseals it.
    pub async fn start_node(&mut self, party: &str) -> anyhow::Result<()> {
        self.stop_node(party);
        self.spawn_node(party)?;
        self.ready_node(party).await
    }

    /// Starts an extra node `party` (e.g. `d`) that is not bound to the organization, with its
    /// own directory and port; returns its node id.
    pub async fn start_unbound_node(&mut self, party: &str) -> anyhow::Result<String> {
        self.start_unbound_node_as(party, party).await
    }

    /// Starts an extra, unbound node in `DIR/node-<slot>/` (own directory, store, identity and
    /// port) configured as party `party_id`: the node that replaces a lost one of that party
    /// once the organization binds it (`node/replace`). The harness names it by `slot`
    /// (`stop_node`, `node_id`, logs). Returns its node id.
    pub async fn start_unbound_node_as(
        &mut self,
        slot: &str,
        party_id: &str,
    ) -> anyhow::Result<String> {
        let port = crate::state::free_port()?;
        self.state.ports.nodes.insert(slot.to_owned(), port);
        // A node the harness adds: its config follows the fresh port (written anew).
        Self::write_node_config(
            &self.layout,
            &self.state,
            slot,
            party_id,
            true,
            !self.opts.external_platform,
        )?;
        self.spawn_node(slot)?;
        self.ready_node(slot).await?;
        Ok(self.node_id(slot).unwrap_or("").to_owned())
    }

    /// Moves node `party` into a network namespace of its own, joined to the host by one veth
    /// link ([`crate::netns`]; needs root), and gives it one way to the platform: proxy
    /// process `proxy` (a scaled devnet's, e.g. `proxy-2`) is restarted listening on the
    /// host's end of that link (only), and the node's config names only that address. The
    /// other nodes keep the other proxies (their lists still name this one on 127.0.0.1, where
    /// it no longer listens). The node is restarted and unsealed; then [`Cluster::cut_node`]
    /// and [`Cluster::reconnect_node`] take the link down and up. For tests: the node's config
    /// no longer fits a plain restart of the devnet (`--reset-config` rewrites it).
    pub async fn isolate_node(&mut self, party: &str, proxy: &str) -> anyhow::Result<()> {
        let ports = self
            .state
            .ports
            .scale
            .clone()
            .ok_or_else(|| anyhow!("isolating a node needs a scaled devnet (--scale)"))?;
        let Some((_, Some("proxy"), port)) = self
            .platform_processes()
            .into_iter()
            .find(|(n, _, _)| n == proxy)
        else {
            bail!("{proxy} is not one of the devnet's proxies");
        };
        if ports.proxies.len() < 2 {
            bail!("isolating a node needs a second proxy for the others");
        }
        self.stop_node(party);
        let ns = tokio::task::spawn_blocking(crate::netns::NetNs::create)
            .await
            .context("network namespace task")??;
        let (host_ip, ns_ip) = (ns.host_ip(), ns.ns_ip());
        self.netns.insert(party.to_owned(), ns);
        self.node_hosts
            .insert(party.to_owned(), std::net::IpAddr::V4(ns_ip));
        crate::pki::reissue_server(&self.layout, &[host_ip])?;
        self.listen_ips.insert(proxy.to_owned(), host_ip);
        self.start_platform_process(proxy).await?;
        let api_port = self
            .state
            .ports
            .nodes
            .get(party)
            .copied()
            .ok_or_else(|| anyhow!("no port for party {party}"))?;
        Self::write_node_config_at(
            &self.layout,
            &self.state,
            party,
            party,
            true,
            !self.opts.external_platform,
            &format!("{ns_ip}:{api_port}"),
            &format!("{host_ip}:{port}"),
        )?;
        self.spawn_node(party)?;
        self.ready_node(party).await
    }

    /// Takes down the link of a node moved by [`Cluster::isolate_node`]: it can no longer
    /// reach the platform (nor the platform it); its connection stalls, nothing is reset.
    /// With `--docker-networks`: takes the platform's container off node `party`'s network
    /// (`docker network disconnect`).
    pub fn cut_node(&self, party: &str) -> anyhow::Result<()> {
        if let Some(ns) = self.netns.get(party) {
            return Ok(ns.cut()?);
        }
        let (nets, platform) = self.node_network(party)?;
        Ok(crate::docker::disconnect(&nets, &platform)?)
    }

    /// Brings the link of an isolated node up again (with `--docker-networks`: joins the
    /// platform's container to the node's network again, as `platform`).
    pub fn reconnect_node(&self, party: &str) -> anyhow::Result<()> {
        if let Some(ns) = self.netns.get(party) {
            return Ok(ns.restore()?);
        }
        let (nets, platform) = self.node_network(party)?;
        Ok(crate::docker::connect(&nets, &platform, "platform")?)
    }

    /// Node `party`'s Docker network and the platform's container.
    fn node_network(&self, party: &str) -> anyhow::Result<(String, String)> {
        let nets = self.docker_nets.as_ref().ok_or_else(|| {
            anyhow!("node {party} is in no namespace or network of its own (isolate_node, --docker-networks)")
        })?;
        let platform = self
            .container("platform")
            .ok_or_else(|| anyhow!("the platform's container is not running"))?;
        Ok((nets.of_node(party), platform))
    }

    /// With `--docker-networks`: node `party`'s network.
    pub fn node_network_name(&self, party: &str) -> Option<String> {
        self.docker_nets.as_ref().map(|n| n.of_node(party))
    }

    /// The log file of a node's process (stdout and stderr).
    pub fn node_log(&self, party: &str) -> PathBuf {
        Layout::process_log(&self.layout.node_dir(party), "node")
    }

    /// The log file of the platform's process (with --scale, the first coordinator's).
    pub fn platform_log(&self) -> PathBuf {
        let first = self
            .platform_process_names()
            .into_iter()
            .next()
            .unwrap_or_else(|| "platform".into());
        self.platform_process_log(&first)
    }

    /// The log file of one of the platform's processes (`coordinator-1`, `proxy-2`, …).
    pub fn platform_process_log(&self, name: &str) -> PathBuf {
        Layout::process_log(&self.layout.platform_dir(), name)
    }

    // ------------------------------------------------------------ callback demo

    async fn start_callback(&mut self) -> anyhow::Result<()> {
        let Some(a) = self.facts.get("a") else {
            return Ok(());
        };
        let phase = Phase::start(format!(
            "callback demo on 127.0.0.1:{}",
            self.state.ports.callback
        ));
        fsutil::write_public(
            &self.layout.callback_node_pub("a"),
            a.public_key_pem.as_bytes(),
        )?;
        let dir = self.layout.callback_dir();
        fsutil::create_dir(&dir.join("data"))?;
        let addr = format!("127.0.0.1:{}", self.state.ports.callback);
        let mut spec = Spec {
            name: "callback".into(),
            exe: self.opts.exe.clone(),
            args: vec![
                "callback-demo".into(),
                "serve".into(),
                "--address".into(),
                if self.docker_nets.is_some() {
                    format!("0.0.0.0:{}", self.state.ports.callback).into()
                } else {
                    addr.clone().into()
                },
                "--private-key".into(),
                self.layout.callback_key().into_os_string(),
                "--node-public-key".into(),
                self.layout.callback_node_pub("a").into_os_string(),
                "--policy".into(),
                self.layout.callback_policy().into_os_string(),
                "--data-dir".into(),
                dir.join("data").into_os_string(),
            ],
            log: Layout::process_log(&dir, "callback"),
            cwd: dir,
            env: Vec::new(),
        };
        // The policy names parties a, b, c; the nodes send node ids in `party_ids`.
        for (p, f) in &self.facts {
            spec.args.push("--party".into());
            spec.args.push(format!("{p}={}", f.node_id).into());
        }
        let mut proc = self.launch(spec)?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()?;
        let url = format!("http://{addr}/admin/pending");
        // Its admin routes answer loopback only: through a published port (its own network)
        // the host is not loopback to it, and a 403 says it is up.
        let networks = self.docker_nets.is_some();
        let r = wait_until(&mut proc, self.opts.ready_timeout, || async {
            matches!(http.get(&url).send().await, Ok(r) if r.status().is_success()
                || (networks && r.status() == reqwest::StatusCode::FORBIDDEN))
        })
        .await;
        match r {
            Ok(()) => {
                phase.done("");
                self.callback = Some(proc);
                Ok(())
            }
            Err(e) => {
                phase.fail(&e);
                bail!("callback demo did not start: {e}\n{}", proc.log_tail(30))
            }
        }
    }

    /// Lets node a's callback approve a key repair onto `node_id`: adds it to the policy's
    /// `key_repair.new_node_ids` (the generated policy lists none) and restarts the callback.
    pub async fn allow_key_repair_onto(&mut self, node_id: &str) -> anyhow::Result<()> {
        let policy = self.layout.callback_policy();
        let text = std::fs::read_to_string(&policy)
            .with_context(|| format!("reading {}", policy.display()))?;
        if !text.contains("new_node_ids = []") {
            bail!(
                "{}: no `new_node_ids = []` to fill in (edited by hand?)",
                policy.display()
            );
        }
        let text = text.replace(
            "new_node_ids = []",
            &format!("new_node_ids = [\"{node_id}\"]"),
        );
        std::fs::write(&policy, text).with_context(|| format!("writing {}", policy.display()))?;
        self.restart_callback().await
    }

    /// Stops the callback demo and starts it again: it reads `policy.toml` anew (the way to
    /// apply an edited policy).
    pub async fn restart_callback(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.callback.take() {
            c.stop();
        }
        self.start_callback().await
    }

    /// Requests waiting for a human (`GET /admin/pending` of the callback demo).
    pub async fn callback_pending(&self) -> anyhow::Result<serde_json::Value> {
        let url = format!(
            "http://127.0.0.1:{}/admin/pending",
            self.state.ports.callback
        );
        let v = reqwest::Client::builder()
            .no_proxy()
            .build()?
            .get(&url)
            .send()
            .await?
            .json::<serde_json::Value>()
            .await?;
        Ok(v)
    }

    /// Releases a WAIT with the demo's own command line (`mpc-devnet callback-demo approve`).
    pub fn callback_approve(&self, callback_id: &str) -> anyhow::Result<String> {
        let out = std::process::Command::new(&self.opts.exe)
            .args(["callback-demo", "approve", callback_id, "--server"])
            .arg(format!("127.0.0.1:{}", self.state.ports.callback))
            .output()
            .context("running callback-demo approve")?;
        if !out.status.success() {
            bail!(
                "callback-demo approve failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    // ------------------------------------------------------------ organization

    async fn setup_organization(&mut self) -> anyhow::Result<()> {
        let phase = Phase::start("organization, API user, node bindings");
        let r = self.setup_organization_inner().await;
        match &r {
            Ok(()) => phase.done(&format!("organization {}", self.organization_id())),
            Err(e) => phase.fail(&format!("{e:#}")),
        }
        r
    }

    async fn setup_organization_inner(&mut self) -> anyhow::Result<()> {
        // An id from an earlier start is kept if the platform still knows it.
        let unknown = match &self.state.organization_id {
            Some(org) => match self.admin.list_nodes(org).await {
                Ok(_) => false,
                Err(ApiError::Api {
                    code: 403 | 404, ..
                }) => true,
                Err(e) => return Err(api_err(e)),
            },
            None => false,
        };
        // An organization's protocol is fixed: asking for another one needs a new organization.
        let saved = self.state.ecdsa_protocol.unwrap_or(EcdsaProtocol::LEGACY);
        let other_protocol = self.state.organization_id.is_some()
            && self.opts.ecdsa.is_some_and(|want| want != saved);
        if other_protocol && !unknown {
            bail!(
                "the organization in {} signs ECDSA with {saved}; --ecdsa {} needs another directory (--dir) or a fresh one",
                self.layout.dir.display(),
                self.opts.ecdsa.map_or("", EcdsaProtocol::name)
            );
        }
        if unknown {
            progress::note("the platform does not know the saved organization; creating a new one");
            self.state.organization_id = None;
            self.state.vault_id = None;
            self.state.ecdsa_protocol = None;
            self.state.api_user_id = None;
            self.state.bound.clear();
            self.state.wallet_id = None;
        }
        if self.state.organization_id.is_none() {
            let name = format!("devnet-{}", unix_ms());
            let org = self
                .admin
                .create_organization(&name, self.opts.ecdsa)
                .await
                .map_err(api_err)?;
            progress::note(&format!(
                "organization {} created; its ECDSA keys use {}",
                org.organization_id, org.ecdsa_protocol
            ));
            self.state.organization_id = Some(org.organization_id);
            self.state.vault_id = Some(org.vault_id);
            self.state.ecdsa_protocol = Some(org.ecdsa_protocol);
            self.state.save(&self.layout.state())?;
        }
        let org = self.organization_id().to_owned();
        if self.state.api_user_id.is_none() {
            let user = self
                .admin
                .create_api_user(&org, "devnet", &self.api.api_key_hex())
                .await
                .map_err(api_err)?;
            self.state.api_user_id = Some(user.user_id);
            self.state.save(&self.layout.state())?;
        }
        for party in self.opts.parties.clone() {
            let Some(id) = self.node_id(&party).map(str::to_owned) else {
                continue;
            };
            if self.state.bound.get(&party) == Some(&id) {
                continue;
            }
            match self.admin.bind_node(&org, &party, &id).await {
                Ok(_) => {}
                // Bound already (devnet.json lost or rewritten): fine if it is this binding.
                Err(ApiError::Api { code: 409, msg, .. }) => {
                    let nodes = self.admin.list_nodes(&org).await.map_err(api_err)?;
                    if !nodes.iter().any(|n| n.node_id == id && n.party_id == party) {
                        bail!("binding node {party} refused: {msg}");
                    }
                }
                Err(e) => return Err(api_err(e)),
            }
            self.state.bound.insert(party, id);
            self.state.save(&self.layout.state())?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ keys

    /// Waits (bounded by [`Options::keys_timeout`]) until the organization has a `generated`
    /// key of both curves, starting them with the admin call when [`Options::admin_keygen`] is
    /// set. Shows progress per curve.
    pub async fn wait_keys(&self) -> anyhow::Result<Vec<KeyInfo>> {
        let org = self.organization_id().to_owned();
        if let Some(t) = self.opts.admin_keygen {
            let existing = self.admin.list_keys(&org).await.map_err(api_err)?;
            for curve in [Curve::EcdsaSecp256k1, Curve::EddsaEd25519] {
                if existing
                    .iter()
                    .any(|k| k.curve == curve && k.status != KeyStatus::Failed && k.threshold == t)
                {
                    continue;
                }
                let req = RequestKeygenRequest {
                    organization_id: org.clone(),
                    curve,
                    threshold: t,
                    parties: self.opts.parties.clone(),
                };
                let until = Instant::now() + self.opts.ready_timeout;
                loop {
                    match self.admin.request_keygen(&req).await {
                        Ok(_) => break,
                        // The automatic key generation was first: its key is used if it has
                        // this threshold (checked below).
                        Err(ApiError::Api { code: 409, msg, .. }) => {
                            progress::note(&format!("key/keygen {curve:?}: {msg}"));
                            break;
                        }
                        // The nodes have not all connected to the proxy yet.
                        Err(ApiError::Api { code: 503, .. }) if Instant::now() < until => {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        Err(e) => return Err(api_err(e)),
                    }
                }
            }
        }
        let cggmp =
            self.state.ecdsa_protocol.unwrap_or(EcdsaProtocol::LEGACY) == EcdsaProtocol::Cggmp24;
        if cggmp && !self.opts.test_primes {
            progress::note(
                "ECDSA key generation needs Paillier primes: fresh ones take minutes on a small machine (--test-primes skips this, insecurely).",
            );
        }
        let phase = Phase::start("key generation (secp256k1 + ed25519)");
        let end = Instant::now() + self.opts.keys_timeout;
        let mut last_note = String::new();
        loop {
            let keys = match self.admin.list_keys(&org).await {
                Ok(k) => k,
                Err(e) => {
                    if Instant::now() >= end {
                        phase.fail(&e.to_string());
                        return Err(api_err(e));
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let find = |c: Curve| {
                keys.iter()
                    .filter(|k| k.curve == c)
                    .filter(|k| self.opts.admin_keygen.is_none_or(|t| k.threshold == t))
                    .find(|k| k.status == KeyStatus::Generated)
                    .cloned()
            };
            if let (Some(s), Some(e)) = (find(Curve::EcdsaSecp256k1), find(Curve::EddsaEd25519)) {
                phase.done("both curves generated");
                return Ok(vec![s, e]);
            }
            let state_of = |c: Curve| {
                keys.iter()
                    .rfind(|k| k.curve == c)
                    .map_or("not started".to_owned(), |k| {
                        format!("{:?}", k.status).to_lowercase()
                    })
            };
            phase.set_status(&format!(
                "secp256k1 {}, ed25519 {}",
                state_of(Curve::EcdsaSecp256k1),
                state_of(Curve::EddsaEd25519)
            ));
            let failures: Vec<String> = keys
                .iter()
                .filter(|k| k.status == KeyStatus::Failed)
                .map(|k| format!("{:?}: {}", k.curve, k.failed_reason))
                .collect();
            let note = failures.join("; ");
            if !note.is_empty() && note != last_note {
                progress::note(&format!(
                    "key generation failed (the platform retries): {note}"
                ));
                last_note = note;
            }
            if Instant::now() >= end {
                phase.fail("timeout");
                bail!(
                    "keys not generated after {} s; last failures: {}",
                    self.opts.keys_timeout.as_secs(),
                    if last_note.is_empty() {
                        "none"
                    } else {
                        &last_note
                    }
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Stops every process (callback, nodes, platform).
    pub fn shutdown(&mut self) {
        if let Some(mut c) = self.callback.take() {
            c.stop();
        }
        let parties: Vec<String> = self.nodes.keys().cloned().collect();
        for p in parties {
            self.stop_node(&p);
        }
        // The namespaces go once their nodes stopped.
        self.netns.clear();
        for (_, mut p) in std::mem::take(&mut self.platform) {
            p.stop();
        }
        // The containers are gone (`--rm`): their networks can go.
        self.docker_nets = None;
        // PostgreSQL and nats-server stop when dropped (the data stays in postgres_dir).
        self.engines = None;
    }

    /// The running components by name (`platform`, `callback`, `node-a`, …) with their
    /// process ids (benchmarks read their CPU time and memory from /proc).
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.platform
            .values()
            .chain(self.callback.iter())
            .chain(self.nodes.values())
            .filter_map(|m| Some((m.name().to_owned(), m.pid()?)))
            .collect()
    }

    /// Counters of a scaled devnet's engines (`None` without --scale): what a phase of work cost
    /// them is the difference of two readings.
    pub fn engine_counters(&mut self) -> anyhow::Result<Option<EngineCounters>> {
        let Some(e) = &self.engines else {
            return Ok(None);
        };
        let (nats_in, nats_out) = e.nats.message_counts()?;
        // The next transaction id (read without taking one) and the WAL position in bytes.
        let row = e.postgres.psql_on(
            "platform",
            "SELECT pg_snapshot_xmax(pg_current_snapshot()), pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
        )?;
        let (xid, wal) = row
            .split_once('|')
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
            .ok_or_else(|| anyhow!("unexpected PostgreSQL counters: {row:?}"))?;
        Ok(Some(EngineCounters {
            bus_messages_in: nats_in,
            bus_messages_out: nats_out,
            db_write_transactions: xid,
            db_wal_bytes: wal,
        }))
    }

    /// A scaled devnet's engines with their process ids (`postgres`: the postmaster, whose
    /// children are the sessions; `nats-server`); empty otherwise.
    pub fn engine_processes(&self) -> Vec<(String, u32)> {
        let Some(e) = &self.engines else {
            return Vec::new();
        };
        [
            ("postgres", e.postgres.pid()),
            ("nats-server", e.nats.pid()),
        ]
        .into_iter()
        .filter_map(|(n, p)| Some((n.to_owned(), p?)))
        .collect()
    }

    /// The container running component `name` (`platform`, `callback`, `node-a`, …) with
    /// [`Options::docker`]; `None` for a child process or a component that is not running.
    pub fn container(&self, name: &str) -> Option<String> {
        self.platform
            .values()
            .chain(self.callback.iter())
            .chain(self.nodes.values())
            .find(|m| m.name() == name)
            .and_then(|m| m.container().map(str::to_owned))
    }

    /// Process ids of the running components.
    pub fn pids(&self) -> Vec<u32> {
        self.platform
            .values()
            .chain(self.callback.iter())
            .chain(self.nodes.values())
            .filter_map(Managed::pid)
            .collect()
    }

    /// Whether every started process still runs; names the first that exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        let mut all: Vec<&mut Managed> = Vec::new();
        all.extend(self.platform.values_mut());
        all.extend(self.callback.as_mut());
        all.extend(self.nodes.values_mut());
        for m in all {
            if let Some(st) = m.exited() {
                return Err(format!(
                    "{} exited ({st}); see {}",
                    m.name(),
                    m.spec().log.display()
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Waits (at most 30 s) until `docker run` created the container `name`.
fn wait_container(name: &str) -> anyhow::Result<()> {
    let end = Instant::now() + Duration::from_secs(30);
    while !crate::docker::exists(name) {
        if Instant::now() >= end {
            bail!("container {name} was not created within 30 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Polls `ready` every 200 ms until it is true, the process exits, or `timeout` passes.
async fn wait_until<F, Fut>(
    proc: &mut Managed,
    timeout: Duration,
    mut ready: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + timeout;
    loop {
        if ready().await {
            return Ok(());
        }
        if let Some(st) = proc.exited() {
            // The caller shows the log's tail.
            return Err(format!("{} exited ({st})", proc.name()));
        }
        if Instant::now() >= end {
            return Err(format!("no answer after {} s", timeout.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
