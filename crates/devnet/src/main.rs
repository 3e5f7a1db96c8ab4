//! `mpc-devnet`: platform + nodes a, b, c + callback demo on loopback, keys, every kind of
//! signature, verified; then keeps serving until Ctrl-C. Also a multi-call binary:
//! `mpc-devnet node …`, `mpc-devnet callback-demo …`, `mpc-devnet platform …`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use mpc_devnet::{Cluster, Options, scenario};

/// Local MPC network on 127.0.0.1: platform, three nodes, callback demo.
#[derive(Debug, Parser)]
#[command(
    name = "mpc-devnet",
    version,
    about,
    after_help = "Multi-call: `mpc-devnet node ARGS`, `mpc-devnet callback-demo ARGS` and `mpc-devnet platform ARGS` run those programs."
)]
struct Cli {
    /// Devnet directory (created; reused by the next start).
    #[arg(long, default_value = "devnet")]
    dir: PathBuf,
    /// Preload PUBLISHED test Paillier primes into the nodes: fast, and the keys are NOT secure.
    #[arg(long)]
    test_primes: bool,
    /// Threshold-ECDSA protocol of the devnet's organization: `dkls23` (the platform's
    /// default: no Paillier primes, keys in seconds) or `cggmp24` (the CMP path: Paillier
    /// primes per node, minutes on a small machine unless --test-primes). Fixed per
    /// organization: another protocol needs another --dir.
    #[arg(long, value_name = "PROTOCOL")]
    ecdsa: Option<mpc_api::types::admin::EcdsaProtocol>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Exit after the summary (status 1 if any signature failed verification).
    #[arg(long)]
    once: bool,
    /// Signature threshold of the automatic key generation (3 = 3-of-3, 2 = 2-of-3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=3))]
    threshold: u16,
    /// `[coordinator] sign-timeout-secs`.
    #[arg(long, default_value_t = 120)]
    sign_timeout_secs: u64,
    /// Rewrite platform.toml, every node's config.toml and the callback policy from the defaults
    /// (without it, files that exist are kept as you edited them, and checked).
    #[arg(long)]
    reset_config: bool,
    /// How long to wait for key generation, seconds.
    #[arg(long, default_value_t = 1800)]
    keygen_wait_secs: u64,
    /// Run the platform, the nodes and the callback demo in containers of the images
    /// mpc-platform:TAG, mpc-node:TAG, mpc-callback-demo:TAG (deploy/build-images.sh), on the
    /// host's network, with the same configs, keys and checks.
    #[arg(long, value_name = "TAG")]
    docker: Option<String>,
    /// With --docker: each node on a Docker network of its own (internal: no route out) that
    /// reaches only the platform (and node a's the callback demo), as on separate hosts; the
    /// platform's and the callback demo's ports are published on 127.0.0.1.
    #[arg(long, requires = "docker")]
    docker_networks: bool,
    /// Run the platform as it runs beyond one machine: PostgreSQL and nats-server (Debian's
    /// packages, started by the devnet; the database is kept in DIR/postgres), --replicas
    /// coordinator processes and as many proxy processes, one role each; every node lists all
    /// the proxies. Fixed per directory once started (another shape: --reset-config).
    #[arg(long, conflicts_with = "docker")]
    scale: bool,
    /// With --scale: how many coordinators and how many proxies.
    #[arg(long, default_value_t = 2, requires = "scale", value_parser = clap::value_parser!(u16).range(1..=8))]
    replicas: u16,
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = mpc_devnet::multicall::dispatch(&args) {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse_from(args);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("mpc-devnet: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let mut opts = Options::new(&cli.dir);
        opts.test_primes = cli.test_primes;
        opts.ecdsa = cli.ecdsa;
        opts.threshold = cli.threshold;
        opts.reset_config = cli.reset_config;
        opts.sign_timeout_secs = cli.sign_timeout_secs;
        opts.keys_timeout = std::time::Duration::from_secs(cli.keygen_wait_secs);
        if cli.scale {
            opts.scale = Some(mpc_devnet::cluster::Scale::replicas(usize::from(
                cli.replicas,
            )));
        }
        if let Some(tag) = &cli.docker {
            if tag.is_empty() || tag == "latest" {
                anyhow::bail!("--docker needs a pinned tag (e.g. 0.1.0), not {tag:?}");
            }
            opts.docker = Some(mpc_devnet::docker::Images::tagged(tag));
            opts.docker_networks = cli.docker_networks;
        }
        eprintln!("mpc-devnet: starting in {}", cli.dir.display());
        let mut cluster = tokio::select! {
            c = Cluster::start(opts) => c?,
            _ = shutdown_signal() => anyhow::bail!("interrupted"),
        };
        let (report, all_ok) = tokio::select! {
            r = scenario::run(&mut cluster) => r?,
            _ = shutdown_signal() => anyhow::bail!("interrupted"),
        };
        if let Some(path) = &cli.report {
            scenario::write_report(&report, path)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("\nReport: {}", path.display());
        }
        println!(
            "\n{}",
            if all_ok {
                "All signatures verified."
            } else {
                "SOME SIGNATURES FAILED VERIFICATION (see above)."
            }
        );
        println!("API:          {}", cluster.api_url());
        if let Some(ports) = &cluster.state().ports.scale {
            let list = |ports: &[u16]| {
                ports
                    .iter()
                    .map(|p| format!("127.0.0.1:{p}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            println!(
                "Coordinators: {} (each serves the API)",
                list(&ports.coordinators)
            );
            println!(
                "Proxies:      {} (nodes list them all)",
                list(&ports.proxies)
            );
            println!(
                "PostgreSQL:   {} (data in {})",
                mpc_devnet::cluster::scale_database_url(ports.postgres),
                cluster.postgres_dir().display()
            );
            println!("NATS:         nats://127.0.0.1:{}", ports.nats);
        }
        println!("Console:      {}", cluster.console_url());
        println!(
            "API user key: {} (hex PKCS#8 DER, as the Go SDK loads it)",
            cluster.layout().api_user_key().display()
        );
        println!("CA:           {}", cluster.layout().ca_cert().display());
        if let Some(images) = &cluster.options().docker {
            println!("Containers:");
            for (name, image) in images.by_component(cluster.options().parties.iter()) {
                if let Some(c) = cluster.container(&name) {
                    println!("  {name:<9} {c} ({image})");
                }
            }
        }
        if cli.once {
            cluster.shutdown();
            return Ok(all_ok);
        }
        println!("\nServing; Ctrl-C stops every process.");
        loop {
            tokio::select! {
                _ = shutdown_signal() => break,
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {
                    if let Err(e) = cluster.check_alive() {
                        eprintln!("mpc-devnet: {e}");
                        cluster.shutdown();
                        return Ok(false);
                    }
                }
            }
        }
        eprintln!("mpc-devnet: stopping");
        cluster.shutdown();
        Ok(all_ok)
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
