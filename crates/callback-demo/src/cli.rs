//! The `mpc-callback-demo` command line (`serve`, `approve`, `decrypt`) as a library entry point,
//! so that the `mpc-callback-demo` binary and `mpc-devnet callback-demo` run the same code.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::ffi::OsString;

use crate::policy::Policy;
use crate::{ServeConfig, load_secret_key, load_signing_key, load_verifying_key};

/// Reference callback (policy) server for mpc-node.
#[derive(Parser)]
#[command(name = "mpc-callback-demo", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve /check and /rawdata_signature.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9090")]
        address: SocketAddr,
        /// This server's P-256 private key (signs every response).
        #[arg(long)]
        private_key: PathBuf,
        /// Public key of a node this server guards (`node.sh info`); repeat for several nodes.
        #[arg(long = "node-public-key", required = true)]
        node_public_keys: Vec<PathBuf>,
        /// Private key that decrypts reported signatures ([encrypt-signature] of the node).
        #[arg(long)]
        decrypt_key: Option<PathBuf>,
        /// Policy file (TOML). Without it every request is approved.
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Pins a party name used in the policy's `[[keygen.allow]]` to the node id the node
        /// sends for it (`party_ids` carries node ids); repeat for each party.
        #[arg(long = "party", value_name = "NAME=NODE_ID", value_parser = parse_pin)]
        parties: Vec<(String, String)>,
        /// Directory for audit.jsonl, state.json and rawdata-signatures.jsonl.
        #[arg(long, default_value = ".")]
        data_dir: PathBuf,
    },
    /// Release a request waiting for a human (WAIT band) on a running server.
    Approve {
        /// The callback_id from the audit log or `GET /admin/pending`.
        callback_id: String,
        /// The running server (its admin routes answer loopback only).
        #[arg(long, default_value = "127.0.0.1:9090")]
        server: String,
    },
    /// Decrypt a signature result (hex ECIES ciphertext) and print it as hex.
    Decrypt {
        /// The private key matching the node's [encrypt-signature] public key.
        #[arg(long)]
        key: PathBuf,
        /// The ciphertext, hex.
        hex: String,
    },
}

/// Runs the command line: `args` is the full argument vector (program name first, as
/// `std::env::args_os()` gives it). Returns the exit status: 0 on success, 1 on an error (printed
/// on stderr as `Error: ...` with its causes, as a `main` returning `anyhow::Result` does), 2 on a
/// usage error.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e:?}");
            1
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve {
            address,
            private_key,
            node_public_keys,
            decrypt_key,
            policy,
            parties,
            data_dir,
        } => {
            init_logging();
            let signing_key = load_signing_key(&private_key)?;
            let node_keys = node_public_keys
                .iter()
                .map(|p| load_verifying_key(p))
                .collect::<Result<Vec<_>, _>>()?;
            let decrypt_key = decrypt_key.as_deref().map(load_secret_key).transpose()?;
            let policy = match &policy {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let mut policy = Policy::from_toml_str(&text)
                        .with_context(|| format!("policy {}", path.display()))?;
                    let mut pins = BTreeMap::new();
                    for (name, id) in parties {
                        if pins.insert(name.clone(), id).is_some() {
                            bail!("--party {name} is given twice");
                        }
                    }
                    policy
                        .pin_parties(&pins)
                        .with_context(|| format!("policy {}", path.display()))?;
                    Some(policy)
                }
                None => {
                    eprintln!(
                        "WARNING: no --policy given: this server APPROVES EVERY keygen and sign request."
                    );
                    None
                }
            };
            let config = ServeConfig {
                signing_key,
                node_keys,
                decrypt_key,
                policy,
                data_dir,
            };
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("binding {address}"))?;
                let local = listener.local_addr()?;
                tracing::info!(address = %local, nodes = config.node_keys.len(), "callback server listening");
                println!("mpc-callback-demo listening on {local}");
                crate::run(listener, config, async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
                Ok(())
            })
        }
        Command::Approve {
            callback_id,
            server,
        } => {
            if callback_id.is_empty()
                || !callback_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                bail!("callback id must be letters, digits, '-' or '_'");
            }
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                let url = format!("http://{server}/admin/approve/{callback_id}");
                let response = reqwest::Client::new()
                    .post(&url)
                    .send()
                    .await
                    .with_context(|| format!("POST {url}"))?;
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if !status.is_success() {
                    bail!("{status}: {body}");
                }
                println!("{body}");
                Ok(())
            })
        }
        Command::Decrypt { key, hex } => {
            let key = load_secret_key(&key)?;
            let plain = crate::decrypt_hex(&key, hex.trim()).context("decrypting the signature")?;
            println!("{}", ::hex::encode(plain.as_slice()));
            Ok(())
        }
    }
}

fn parse_pin(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, id)) if !name.is_empty() && !id.is_empty() => {
            Ok((name.to_owned(), id.to_owned()))
        }
        _ => Err(format!("{s:?} is not NAME=NODE_ID")),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
