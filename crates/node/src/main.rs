//! `mpc-node` binary: parses the command line, sets up logging for `start`, and calls the
//! library. Exit status 0 on success, 1 on any error (message on stderr).
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::Parser as _;
use mpc_node::cli::{Cli, Command};
use mpc_node::{Config, logging};

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Start { config } => match start(&config) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("mpc-node: {e:#}");
                1
            }
        },
        other => match mpc_node::cli::run_command(other) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("mpc-node: {e}");
                1
            }
        },
    };
    std::process::exit(code);
}

fn start(config: &std::path::Path) -> anyhow::Result<()> {
    let mut cfg = Config::load(config)?;
    cfg.insecure_fast_kdf = mpc_node::insecure_kdf_from_env()?;
    cfg.insecure_test_primes = mpc_node::insecure_test_primes_from_env();
    if let Some(p) = &cfg.insecure_test_primes {
        eprintln!(
            "mpc-node: WARNING: {} is set ({}): published test primes, never use this node for real keys",
            mpc_node::INSECURE_TEST_PRIMES_ENV,
            p.display()
        );
    }
    logging::init(&cfg)?;
    if cfg.insecure_fast_kdf {
        eprintln!(
            "mpc-node: WARNING: {} is set: test-only key derivation, never use this node for real keys",
            mpc_node::INSECURE_KDF_ENV
        );
    }
    let addr = cfg.listen_addr()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!(
                "{}: [storage] unseal-server-address: cannot listen on {addr}",
                cfg.file_name
            )
        })?;
        // A plain line (not a log record) so operators and tests see where the API is; printed
        // once the key store opened.
        let r = mpc_node::run_with(cfg, listener, shutdown_signal(), |local| {
            println!("mpc-node: local API listening on {local}");
        })
        .await;
        if let Err(e) = &r {
            tracing::error!("mpc-node stopped: {e}");
        }
        r?;
        Ok(())
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
