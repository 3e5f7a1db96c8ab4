//! The `mpc-node` command line: `start` runs the node; `init`, `unseal`, `info`, `reset`,
//! `cmreset`, `backup`, `platform-key` and `rotate-key` act on a running node through its local API; `check`, `passwords
//! generate`, `verify-backup` and `verify-audit` work without one.
//!
//! Commands that talk to a node find it with `--server HOST:PORT`, or with `--config FILE`
//! (its `[storage] unseal-server-address`, `0.0.0.0` read as `127.0.0.1`); with neither,
//! `./config.toml` is used if it exists.
//!
//! Passwords are prompted without echo ("New password:" / "Retype new password:" for init and
//! cmreset, "Enter current password:" for unseal and reset, like node.sh; "Share k of t:" when
//! t > 1). With `--password-stdin` they are read from standard input, one per line (t > 1: one
//! share per line), for automation.
//!
//! [`main`] is the whole command line (argument parsing, `start` with logging and signal
//! handling); the `mpc-node` binary and `mpc-devnet node` call it.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::client::{Client, ClientError, Reply};
use crate::config::{Config, ConfigError};

/// Errors of CLI commands (printed as `mpc-node: <message>`, exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Config refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The node could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading a password failed.
    #[error("cannot read the password: {0} (without a terminal use --password-stdin)")]
    Prompt(std::io::Error),
    /// Bad input or arguments.
    #[error("{0}")]
    Usage(String),
    /// A file operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was done.
        what: &'static str,
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The key store refused (verify-backup).
    #[error("{0}")]
    Store(#[from] mpc_keystore::Error),
}

/// `mpc-node`: MPC co-signer node.
#[derive(Debug, Parser)]
#[command(
    name = "mpc-node",
    version,
    about = "MPC co-signer node: sealed key store and local /sys API",
    after_help = "Exit status: 0 on success, 1 on any error (message on stderr; API errors are printed as the node's JSON reply)."
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How a client command finds the node.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The node's config.toml (its `[storage] unseal-server-address` is used).
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with = "server")]
    pub config: Option<PathBuf>,
    /// The node's local API address.
    #[arg(long, short = 's', value_name = "HOST:PORT")]
    pub server: Option<String>,
}

/// How secrets are entered.
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// Read passwords / shares from standard input, one per line, instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the node in the foreground (Ctrl-C / SIGTERM stops it).
    Start {
        /// The config file.
        #[arg(long, short = 'c', value_name = "FILE", default_value = "config.toml")]
        config: PathBuf,
    },
    /// Set the password (or t shares, one per call) and create the node key; prints node id and public key.
    Init {
        #[command(flatten)]
        /// Node address.
        target: Target,
        #[command(flatten)]
        /// Secret input.
        secrets: SecretArgs,
    },
    /// Unlock the key store with the password (or t shares).
    Unseal {
        #[command(flatten)]
        /// Node address.
        target: Target,
        #[command(flatten)]
        /// Secret input.
        secrets: SecretArgs,
    },
    /// Show node id, public key and state (uninitialized, sealed, unsealed).
    Info {
        #[command(flatten)]
        /// Node address.
        target: Target,
    },
    /// Start a password change: check the current password (or t current shares).
    Reset {
        #[command(flatten)]
        /// Node address.
        target: Target,
        #[command(flatten)]
        /// Secret input.
        secrets: SecretArgs,
    },
    /// Finish a password change: set the new password (or t new shares).
    Cmreset {
        #[command(flatten)]
        /// Node address.
        target: Target,
        #[command(flatten)]
        /// Secret input.
        secrets: SecretArgs,
    },
    /// Re-encrypt every record of the running node's key store under a fresh data key
    /// (current password, or t current shares): backups taken before cannot read what is
    /// written after. Take a new backup afterwards.
    RotateKey {
        #[command(flatten)]
        /// Node address.
        target: Target,
        #[command(flatten)]
        /// Secret input.
        secrets: SecretArgs,
    },
    /// Check the config and the environment (db directory, key files, port) without starting.
    Check {
        /// The config file.
        #[arg(long, short = 'c', value_name = "FILE", default_value = "config.toml")]
        config: PathBuf,
    },
    /// t-of-n password shares.
    Passwords {
        /// What to do.
        #[command(subcommand)]
        action: PasswordsAction,
    },
    /// Write a consistent copy of the running (unsealed) node's key store to FILE.
    Backup {
        #[command(flatten)]
        /// Node address.
        target: Target,
        /// Where to write the copy (must not exist).
        #[arg(long, short = 'o', value_name = "FILE")]
        out: PathBuf,
    },
    /// Change the platform task-signing key the running (unsealed) node pinned at its first
    /// task (not needed when `[mpc-service] platform-public-key-path` is set). Logged by the node.
    PlatformKey {
        #[command(flatten)]
        /// Node address.
        target: Target,
        #[command(flatten)]
        /// Secret input (the current password, or t current shares).
        secrets: SecretArgs,
        /// What to do.
        #[command(subcommand)]
        action: PlatformKeyAction,
    },
    /// Prove that a backup (or a stopped node's asset.db) opens with a password, offline.
    VerifyBackup {
        /// The backup file.
        file: PathBuf,
        /// Number of shares the store needs (its `[storage] t`).
        #[arg(short = 't', long = "threshold", default_value_t = 1)]
        t: u8,
        #[command(flatten)]
        /// Secret input.
        secrets: SecretArgs,
    },
    /// Check an audit log's hash chain (`[audit]`, docs/audit.md), offline: names each line
    /// where an entry was altered, removed, inserted or reordered. Exit status 1 if any.
    VerifyAudit {
        /// The log (the node's `audit.log`, or a copy).
        file: PathBuf,
        /// A head recorded earlier (`SEQ:HASH`, as this command prints it): the log must
        /// still hold that entry unchanged, which also catches entries cut from its end.
        #[arg(long)]
        expect: Option<mpc_audit::Head>,
    },
}

/// `platform-key` subcommands.
#[derive(Debug, Subcommand)]
pub enum PlatformKeyAction {
    /// Pin the public key in FILE (P-256 `PUBLIC KEY` PEM, e.g. from `mpc-platform
    /// task-public-key`); tasks signed by any other key are refused.
    Pin {
        /// The PEM file.
        file: PathBuf,
    },
    /// Forget the pinned key: the key of the next task is pinned.
    Forget,
}

/// `passwords` subcommands.
#[derive(Debug, Subcommand)]
pub enum PasswordsAction {
    /// Generate a random password (CSPRNG) and print only its n shares, t of which rebuild it.
    Generate {
        /// Threshold (2..=n).
        #[arg(short = 't', default_value_t = 2)]
        t: u8,
        /// Number of shares (t..=255).
        #[arg(short = 'n', default_value_t = 3)]
        n: u8,
    },
}

/// Where the passwords come from.
enum Secrets {
    Prompt,
    Stdin,
}

impl Secrets {
    fn new(a: &SecretArgs) -> Self {
        if a.password_stdin {
            Secrets::Stdin
        } else {
            Secrets::Prompt
        }
    }

    fn is_prompt(&self) -> bool {
        matches!(self, Secrets::Prompt)
    }

    /// One secret; `None` at the end of standard input.
    fn next(&mut self, prompt: &str) -> Result<Option<Zeroizing<String>>, CliError> {
        let s = match self {
            Secrets::Prompt => {
                Zeroizing::new(rpassword::prompt_password(prompt).map_err(CliError::Prompt)?)
            }
            Secrets::Stdin => {
                let mut line = Zeroizing::new(String::new());
                let n = std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(CliError::Prompt)?;
                if n == 0 {
                    return Ok(None);
                }
                while line.ends_with('\n') || line.ends_with('\r') {
                    line.pop();
                }
                line
            }
        };
        if s.is_empty() {
            return Err(CliError::Usage("the password must not be empty".into()));
        }
        Ok(Some(s))
    }

    fn require(&mut self, prompt: &str) -> Result<Zeroizing<String>, CliError> {
        self.next(prompt)?.ok_or_else(|| {
            CliError::Usage("standard input ended before every password or share was read".into())
        })
    }
}

/// Resolves `--config` / `--server` to `host:port`.
pub fn server_address(t: &Target) -> Result<String, CliError> {
    if let Some(s) = &t.server {
        return Ok(s.clone());
    }
    let path = match &t.config {
        Some(p) => p.clone(),
        None if Path::new("config.toml").exists() => PathBuf::from("config.toml"),
        None => {
            return Err(CliError::Usage(
                "give --config FILE or --server HOST:PORT (no ./config.toml here)".into(),
            ));
        }
    };
    let cfg = Config::load(&path)?;
    Ok(cfg.client_addr()?.to_string())
}

fn print_reply(r: &Reply) {
    if r.body.is_empty() {
        println!("HTTP {}", r.http_status);
    } else {
        println!("{}", r.body.trim_end());
    }
}

/// Threshold of the node (from `seal-status`; 1 if it does not say).
async fn node_threshold(c: &Client) -> Result<u8, CliError> {
    let r = c.get("/sys/seal-status").await?;
    Ok(r.data()
        .and_then(|d| d.get("t"))
        .and_then(Value::as_u64)
        .and_then(|t| u8::try_from(t).ok())
        .unwrap_or(1))
}

/// Whether a command sets a new secret (asks twice) or enters the current one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    New,
    Current,
}

/// Sends the password (t = 1) or shares (t > 1) to `path` until the node stops asking for more.
async fn submit(
    c: &Client,
    path: &str,
    kind: Kind,
    secrets: &mut Secrets,
) -> Result<i32, CliError> {
    submit_with(c, path, kind, secrets, &serde_json::Map::new()).await
}

/// [`submit`] with `extra` fields beside `shard_bkey` in every request.
async fn submit_with(
    c: &Client,
    path: &str,
    kind: Kind,
    secrets: &mut Secrets,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Result<i32, CliError> {
    let t = node_threshold(c).await?;
    if t <= 1 {
        let pw = match kind {
            Kind::New => {
                let a = secrets.require("New password: ")?;
                if secrets.is_prompt() {
                    let b = secrets.require("Retype new password: ")?;
                    if a != b {
                        return Err(CliError::Usage("the passwords do not match".into()));
                    }
                }
                a
            }
            Kind::Current => secrets.require("Enter current password: ")?,
        };
        let r = c.post_bkey_with(path, &pw, extra).await?;
        print_reply(&r);
        return Ok(if r.is_ok() { 0 } else { 1 });
    }
    for i in 1..=t {
        let what = if kind == Kind::New {
            "new share"
        } else {
            "share"
        };
        let share = secrets.require(&format!("Enter {what} {i} of {t}: "))?;
        let r = c.post_bkey_with(path, &share, extra).await?;
        print_reply(&r);
        if !r.is_ok() {
            return Ok(1);
        }
        if !r.is_progress() {
            return Ok(0);
        }
    }
    Err(CliError::Usage(format!(
        "the node still asks for shares after {t}; check `mpc-node info`"
    )))
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "start runtime",
            path: String::new(),
            source,
        })
}

/// Runs a client or offline command (everything but `start`); returns the exit status.
pub fn run_command(cmd: Command) -> Result<i32, CliError> {
    match cmd {
        Command::Start { .. } => Err(CliError::Usage(
            "`start` is run by the binary's main".into(),
        )),
        Command::Init { target, secrets } => {
            client_cmd(&target, "/sys/init", Some((Kind::New, secrets)))
        }
        Command::Unseal { target, secrets } => {
            client_cmd(&target, "/sys/in-bkey", Some((Kind::Current, secrets)))
        }
        Command::Reset { target, secrets } => {
            client_cmd(&target, "/sys/re-bkey-init", Some((Kind::Current, secrets)))
        }
        Command::Cmreset { target, secrets } => {
            client_cmd(&target, "/sys/re-bkey", Some((Kind::New, secrets)))
        }
        Command::RotateKey { target, secrets } => {
            client_cmd(&target, "/sys/rotate-key", Some((Kind::Current, secrets)))
        }
        Command::Info { target } => client_cmd(&target, "/sys/seal-status", None),
        Command::Backup { target, out } => backup(&target, &out),
        Command::PlatformKey {
            target,
            secrets,
            action,
        } => platform_key(&target, &secrets, action),
        Command::Check { config } => Ok(check(&config)),
        Command::Passwords {
            action: PasswordsAction::Generate { t, n },
        } => passwords_generate(t, n),
        Command::VerifyBackup { file, t, secrets } => verify_backup(&file, t, &secrets),
        Command::VerifyAudit { file, expect } => verify_audit(&file, expect),
    }
}

/// `verify-audit`: the report on standard output; 0 intact, 1 tampered or damaged.
pub fn verify_audit(file: &Path, expect: Option<mpc_audit::Head>) -> Result<i32, CliError> {
    let report = mpc_audit::verify_file(file, expect).map_err(|source| CliError::Io {
        what: "cannot read",
        path: file.display().to_string(),
        source,
    })?;
    println!("{}: {report}", file.display());
    Ok(if report.is_intact() { 0 } else { 1 })
}

fn platform_key(
    target: &Target,
    secrets: &SecretArgs,
    action: PlatformKeyAction,
) -> Result<i32, CliError> {
    let mut body = serde_json::Map::new();
    match action {
        PlatformKeyAction::Pin { file } => {
            let pem = std::fs::read_to_string(&file).map_err(|source| CliError::Io {
                what: "cannot read",
                path: file.display().to_string(),
                source,
            })?;
            body.insert("pin".into(), json!(pem));
        }
        PlatformKeyAction::Forget => {
            body.insert("forget".into(), json!(true));
        }
    };
    let c = Client::new(&server_address(target)?)?;
    runtime()?.block_on(async {
        submit_with(
            &c,
            "/sys/platform-key",
            Kind::Current,
            &mut Secrets::new(secrets),
            &body,
        )
        .await
    })
}

fn client_cmd(
    target: &Target,
    path: &str,
    secret: Option<(Kind, SecretArgs)>,
) -> Result<i32, CliError> {
    let c = Client::new(&server_address(target)?)?;
    runtime()?.block_on(async {
        match secret {
            Some((kind, args)) => submit(&c, path, kind, &mut Secrets::new(&args)).await,
            None => {
                let r = c.get(path).await?;
                print_reply(&r);
                Ok(if r.is_ok() { 0 } else { 1 })
            }
        }
    })
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CliError + use<> {
    let path = path.display().to_string();
    move |source| CliError::Io { what, path, source }
}

/// Writes `bytes` to a new file (mode 0600) and fsyncs it.
fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("create", path))?;
    f.write_all(bytes).map_err(io_err("write", path))?;
    f.sync_all().map_err(io_err("fsync", path))?;
    Ok(())
}

fn backup(target: &Target, out: &Path) -> Result<i32, CliError> {
    if out.exists() {
        return Err(CliError::Usage(format!(
            "{} already exists; refusing to overwrite it",
            out.display()
        )));
    }
    let c = Client::new(&server_address(target)?)?;
    let r = runtime()?.block_on(c.post_empty("/sys/backup"))?;
    if !r.is_ok() {
        print_reply(&r);
        return Ok(1);
    }
    let data = r.data().cloned().unwrap_or(Value::Null);
    let file = data
        .get("file")
        .and_then(Value::as_str)
        .ok_or_else(|| CliError::Usage("the node's backup reply has no file".into()))?;
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(file)
        .map_err(|_| CliError::Usage("the node's backup reply is not Base64".into()))?;
    write_new_private(out, &bytes)?;
    let summary = json!({
        "status": "ok",
        "data": {
            "out": out.display().to_string(),
            "bytes": bytes.len(),
            "engine": data.get("engine"),
            "counter": data.get("counter"),
            "tables": data.get("tables"),
        }
    });
    println!("{summary}");
    Ok(0)
}

fn verify_backup(file: &Path, t: u8, args: &SecretArgs) -> Result<i32, CliError> {
    if t == 0 {
        return Err(CliError::Usage("-t must be at least 1".into()));
    }
    let mut secrets = Secrets::new(args);
    let mut held = Vec::new();
    if t == 1 {
        held.push(secrets.require("Enter current password: ")?);
    } else {
        for i in 1..=t {
            held.push(secrets.require(&format!("Enter share {i} of {t}: "))?);
        }
    }
    let refs: Vec<&str> = held.iter().map(|s| s.as_str()).collect();
    let rep = mpc_keystore::inspect(file, &refs)?;
    let out = json!({
        "status": if rep.all_records_authentic { "ok" } else { "error" },
        "data": {
            "file": file.display().to_string(),
            "node_id": rep.node_id,
            "format_version": rep.info.format_version,
            "engine": rep.info.engine,
            "counter": rep.info.counter,
            "t": rep.info.t,
            "n": rep.info.n,
            "tables": rep.tables,
            "keys": rep.tables.get(mpc_keystore::tables::KEY_SHARES).copied().unwrap_or(0),
            "all_records_authentic": rep.all_records_authentic,
        }
    });
    println!("{out}");
    Ok(if rep.all_records_authentic { 0 } else { 1 })
}

fn passwords_generate(t: u8, n: u8) -> Result<i32, CliError> {
    if t < 2 {
        return Err(CliError::Usage(
            "-t must be at least 2 (with t = 1 choose a password yourself)".into(),
        ));
    }
    if n < t {
        return Err(CliError::Usage(format!("-t {t} is larger than -n {n}")));
    }
    let shares = mpc_keystore::shamir::generate_share_set(t, n, &mut rand_core::OsRng)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    for s in shares {
        println!("{s}");
    }
    Ok(0)
}

/// `check`: prints one line per item (`ok`, `WARN`, `FAIL`); exit status 1 if anything failed.
pub fn check(config: &Path) -> i32 {
    let mut failed = false;
    let mut line = |status: &str, what: &str, detail: String| {
        if status == "FAIL" {
            failed = true;
        }
        println!("{status:<4}  {what}: {detail}");
    };
    let cfg = match Config::load(config) {
        Ok(c) => {
            line(
                "ok",
                "config",
                format!("{} parsed and valid", config.display()),
            );
            c
        }
        Err(e) => {
            line("FAIL", "config", e.to_string());
            return 1;
        }
    };
    let db = &cfg.storage.db_file_path;
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        line(
            "FAIL",
            "db directory",
            format!(
                "{} does not exist (create it; the node never creates it)",
                dir.display()
            ),
        );
    } else {
        let probe = dir.join(format!(".mpc-node-check-{}", std::process::id()));
        match std::fs::File::create(&probe) {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
                line(
                    "ok",
                    "db directory",
                    format!("{} is writable", dir.display()),
                );
            }
            Err(e) => line(
                "FAIL",
                "db directory",
                format!("{} is not writable: {e}", dir.display()),
            ),
        }
    }
    match std::fs::metadata(db) {
        Ok(m) => line(
            "ok",
            "db file",
            format!("{} exists ({} bytes)", db.display(), m.len()),
        ),
        Err(_) => line(
            "ok",
            "db file",
            format!("{} not created yet (node not initialised)", db.display()),
        ),
    }
    if cfg.log.file.enable {
        line(
            "ok",
            "log file",
            format!(
                "{} (directory created at start if missing)",
                cfg.log.file.path.display()
            ),
        );
    }
    if cfg.encrypt_signature.enable {
        line(
            "ok",
            "encrypt-signature key",
            format!(
                "{} is a P-256 public key",
                cfg.encrypt_signature.public_key_path.display()
            ),
        );
    }
    for s in &cfg.callback.server {
        line(
            "ok",
            "callback server key",
            format!("{} for {}", s.public_key_path.display(), s.address),
        );
    }
    match cfg.listen_addr() {
        Ok(addr) => match std::net::TcpListener::bind(addr) {
            Ok(_) => line("ok", "unseal-server-address", format!("{addr} is free")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => line(
                "WARN",
                "unseal-server-address",
                format!("{addr} is in use (is a node already running?)"),
            ),
            Err(e) => line(
                "FAIL",
                "unseal-server-address",
                format!("cannot listen on {addr}: {e}"),
            ),
        },
        Err(e) => line("FAIL", "unseal-server-address", e.to_string()),
    }
    line(
        "ok",
        "mpc-service",
        format!(
            "{} (tried in this order; a lost connection moves to the next)",
            cfg.mpc_service.urls().join(", ")
        ),
    );
    if failed { 1 } else { 0 }
}

// ---------------------------------------------------------------- entry point

/// The `mpc-node` command line as a library entry point: `args` is the full argument vector
/// (program name first, as `std::env::args_os()` gives it). Returns the exit status (0 success,
/// 1 error, 2 usage error); the binary (`src/main.rs`) and the `mpc-devnet node` multi-call arm
/// both call it.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // As `Cli::parse` would: help/version on stdout with status 0, usage errors on
            // stderr with status 2.
            let _ = e.print();
            return e.exit_code();
        }
    };
    match cli.command {
        Command::Start { config } => match start(&config) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("mpc-node: {e:#}");
                1
            }
        },
        other => match run_command(other) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("mpc-node: {e}");
                1
            }
        },
    }
}

fn start(config: &std::path::Path) -> anyhow::Result<()> {
    let mut cfg = Config::load(config)?;
    cfg.insecure_fast_kdf = crate::insecure_kdf_from_env()?;
    cfg.insecure_test_primes = crate::insecure_test_primes_from_env()?;
    if let Some(p) = &cfg.insecure_test_primes {
        eprintln!(
            "mpc-node: WARNING: {} is set ({}): published test primes, never use this node for real keys",
            crate::INSECURE_TEST_PRIMES_ENV,
            p.display()
        );
    }
    crate::logging::init(&cfg)?;
    if cfg.insecure_fast_kdf {
        eprintln!(
            "mpc-node: WARNING: {} is set: test-only key derivation, never use this node for real keys",
            crate::INSECURE_KDF_ENV
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
        let r = crate::run_with(cfg, listener, shutdown_signal(), |local| {
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
