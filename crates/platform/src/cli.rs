//! Command line: `mpc-platform start --config platform.toml`, `mpc-platform check --config
//! platform.toml`, `mpc-platform task-public-key --config platform.toml` (the PEM public key
//! nodes pin) and `mpc-platform verify-audit FILE` (the audit log's chain).

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::PlatformConfig;

/// The MPC co-signer platform: proxy and coordinator.
#[derive(Debug, Parser)]
#[command(name = "mpc-platform", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve until SIGINT or SIGTERM.
    Start {
        /// The config file.
        #[arg(long, default_value = "platform.toml")]
        config: PathBuf,
        /// Run only this role (`proxy` or `coordinator`), or `all`, instead of the config's
        /// `roles`. One role per process needs a NATS `[bus] url` and a PostgreSQL database.
        #[arg(long, value_name = "proxy|coordinator|all")]
        role: Option<String>,
        /// Listen on this `ip:port` instead of `[server] listen` (several processes from one
        /// config file on one host).
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<String>,
        /// Write the audit log to FILE instead of `[coordinator] audit-log` (each coordinator
        /// process needs a file of its own).
        #[arg(long, value_name = "FILE")]
        audit_log: Option<PathBuf>,
    },
    /// Check an audit log's hash chain, offline (docs/audit.md): names each line where an
    /// entry was altered, removed, inserted or reordered. Exit status 1 if any.
    VerifyAudit {
        /// The log.
        file: PathBuf,
        /// A head recorded earlier (`SEQ:HASH`, as this command prints it): the log must still
        /// hold that entry unchanged, which also catches entries cut from its end.
        #[arg(long)]
        expect: Option<mpc_audit::Head>,
    },
    /// Validate the config file and the TLS files, then exit.
    Check {
        /// The config file.
        #[arg(long, default_value = "platform.toml")]
        config: PathBuf,
    },
    /// Print the public key of the task-signing key as PEM (made when missing), for the nodes'
    /// `[mpc-service] platform-public-key-path`.
    TaskPublicKey {
        /// The config file.
        #[arg(long, default_value = "platform.toml")]
        config: PathBuf,
    },
}

/// Runs the command line `args` (including the program name); returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match cli.command {
        Command::Check { config } => check(&config),
        Command::Start {
            config,
            role,
            listen,
            audit_log,
        } => start(&config, role.as_deref(), listen, audit_log),
        Command::TaskPublicKey { config } => task_public_key(&config),
        Command::VerifyAudit { file, expect } => {
            return match mpc_audit::verify_file(&file, expect) {
                Ok(report) => {
                    println!("{}: {report}", file.display());
                    i32::from(!report.is_intact())
                }
                Err(e) => {
                    eprintln!("mpc-platform: cannot read {}: {e}", file.display());
                    1
                }
            };
        }
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mpc-platform: {e:#}");
            1
        }
    }
}

fn check(path: &std::path::Path) -> anyhow::Result<()> {
    let cfg = PlatformConfig::load(path)?;
    mpc_proxy::tls::load_server_config(&cfg.server.tls_cert_path, &cfg.server.tls_key_path)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}: ok", path.display());
    Ok(())
}

fn task_public_key(path: &std::path::Path) -> anyhow::Result<()> {
    let cfg = PlatformConfig::load(path)?;
    let (key, _) = crate::task_key::load_or_create(&cfg.coordinator.task_signing_key_path)?;
    print!("{}", crate::task_key::public_pem(&key));
    Ok(())
}

fn start(
    path: &std::path::Path,
    role: Option<&str>,
    listen: Option<String>,
    audit_log: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut cfg = PlatformConfig::load(path)?;
    if let Some(role) = role {
        cfg.roles = match role {
            "all" => vec![crate::config::Role::Proxy, crate::config::Role::Coordinator],
            one => vec![crate::config::Role::parse(one).ok_or_else(|| {
                anyhow::anyhow!("--role {one:?}: expected proxy, coordinator or all")
            })?],
        };
    }
    if let Some(listen) = listen {
        cfg.server.listen = listen;
    }
    if let Some(file) = audit_log {
        cfg.coordinator.audit_log = file;
    }
    // The overrides are checked like the file.
    cfg.validate()?;
    crate::logging::init(&cfg).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let addr = cfg.listen_addr()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} ([server] listen)"))?;
        crate::run(cfg, listener, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT: shutting down"),
        () = term => tracing::info!("SIGTERM: shutting down"),
    }
}
