//! The `mpc-recover` command line.
//!
//! ```text
//! mpc-recover --backup a.db --backup b.db --path m/1/1/60/0 --path m/1/1/0/0 \
//!     [--password-file F ... | --password-stdin] [--curve secp256k1|ed25519|both] [--key ID ...]
//!     [--wif] [--testnet] [--eth-keystore DIR [--keystore-password-file F | --keystore-password-stdin]]
//!     [--json]
//! ```
//!
//! Secrets, as `mpc-node` takes them: without `--password-*` each backup's password is prompted
//! without echo ("Password for FILE:"), or, for a store sealed with t password shares
//! (`[storage] t > 1`, learnt from the backup's header), "Share k of t for FILE:". With
//! `--password-stdin` they are read from standard input, one per line, backup after backup
//! (t lines for a share-sealed store). `--password-file F`, once per backup in the order of the
//! `--backup`s, reads the password (first line) or the t shares (one per line) from a file.
//!
//! The warning ([`crate::WARNING`]) goes to stderr before anything else; keys go to stdout
//! (text, or one JSON document with `--json`); keystore files are written 0600, never over an
//! existing file.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::backup::{self, Unlock};
use crate::derive::{self, ChildKey};
use crate::output::{self, BtcNetwork};
use crate::rebuild::{self, KeyCurve, RecoveredKey};

/// `mpc-recover`: offline key recovery from node backups.
#[derive(Debug, Parser)]
#[command(
    name = "mpc-recover",
    version,
    about = "Offline key recovery from t node backups: rebuilds each root private key, checks it against the stored public key and prints the child private keys of the given paths",
    after_help = "Holding a whole key removes every protection of the threshold setup: run this only on an offline machine and move the funds to a fresh key afterwards (docs/recovery.md).\nExit status: 0 on success, 1 on any error (message on stderr), 2 on a usage error."
)]
pub struct Cli {
    /// A node backup (`mpc-node backup --out FILE`, or a stopped node's asset.db); one per
    /// node, at least t of them. Never written to.
    #[arg(long = "backup", value_name = "FILE", required = true)]
    pub backups: Vec<PathBuf>,
    /// Derivation path of a child key to print (`m/1/1/60/0`; `m` is the root key); repeat for
    /// several. Non-hardened steps only, as the nodes derive.
    #[arg(long = "path", value_name = "PATH", required_unless_present = "list")]
    pub paths: Vec<String>,
    /// File holding a backup's password (first line) or its t password shares (one per
    /// line); once per --backup, in the same order.
    #[arg(
        long = "password-file",
        value_name = "FILE",
        conflicts_with = "password_stdin"
    )]
    pub password_files: Vec<PathBuf>,
    /// Read the passwords / password shares from standard input, one per line, backup after
    /// backup, instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    /// Which keys' curves to recover.
    #[arg(long, value_enum, default_value_t = CurveArg::Both)]
    pub curve: CurveArg,
    /// Recover only this key id (repeatable); default: every key in the backups.
    #[arg(long = "key", value_name = "KEY_ID")]
    pub keys: Vec<String>,
    /// Also print secp256k1 keys as WIF (compressed).
    #[arg(long)]
    pub wif: bool,
    /// Bitcoin testnet: WIF version 0xEF and testnet addresses.
    #[arg(long)]
    pub testnet: bool,
    /// Write an Ethereum V3 keystore file (scrypt, AES-128-CTR) for every secp256k1 child key
    /// into DIR (mode 0600, never over an existing file).
    #[arg(long, value_name = "DIR")]
    pub eth_keystore: Option<PathBuf>,
    /// Read the keystore password from the first line of FILE.
    #[arg(
        long,
        value_name = "FILE",
        requires = "eth_keystore",
        conflicts_with = "keystore_password_stdin"
    )]
    pub keystore_password_file: Option<PathBuf>,
    /// Read the keystore password from standard input (after the backups' secrets).
    #[arg(long, requires = "eth_keystore")]
    pub keystore_password_stdin: bool,
    /// scrypt cost of the keystore files, log2 N (default 18 as go-ethereum; lower only for
    /// tests).
    #[arg(long, value_name = "LOG_N", default_value_t = output::SCRYPT_LOG_N, value_parser = clap::value_parser!(u8).range(10..=20), hide = true)]
    pub keystore_scrypt_log_n: u8,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only list the keys and parties in the backups (no secret is rebuilt).
    #[arg(long)]
    pub list: bool,
}

/// `--curve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CurveArg {
    /// secp256k1 keys only.
    Secp256k1,
    /// ed25519 keys only.
    Ed25519,
    /// Both.
    Both,
}

impl CurveArg {
    fn admits(self, c: KeyCurve) -> bool {
        matches!(
            (self, c),
            (CurveArg::Both, _)
                | (CurveArg::Secp256k1, KeyCurve::Secp256k1)
                | (CurveArg::Ed25519, KeyCurve::Ed25519)
        )
    }
}

/// The command line as a library entry point: `args` is the full argument vector (program
/// name first). Returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    match run(&cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mpc-recover: {e:#}");
            1
        }
    }
}

/// Where secrets come from.
enum Source {
    Prompt,
    Stdin,
}

impl Source {
    fn line(&self, prompt: &str) -> anyhow::Result<Zeroizing<String>> {
        let s = match self {
            Source::Prompt => Zeroizing::new(rpassword::prompt_password(prompt).with_context(|| {
                "cannot read the password (without a terminal use --password-stdin or --password-file)"
            })?),
            Source::Stdin => {
                let mut line = Zeroizing::new(String::new());
                let n = std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading standard input")?;
                if n == 0 {
                    bail!("standard input ended before every password or share was read");
                }
                trim_newline(&mut line);
                line
            }
        };
        if s.is_empty() {
            bail!("the password must not be empty");
        }
        Ok(s)
    }
}

fn trim_newline(s: &mut String) {
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
}

/// The password (t = 1) or the t shares (one per non-empty line) in `file`.
fn unlock_from_file(file: &Path, t: u8) -> anyhow::Result<Unlock> {
    let text = Zeroizing::new(
        std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?,
    );
    let lines: Vec<Zeroizing<String>> = text
        .lines()
        .map(|l| Zeroizing::new(l.trim_end_matches('\r').to_owned()))
        .filter(|l| !l.is_empty())
        .collect();
    if t == 1 {
        let mut first = Zeroizing::new(text.lines().next().unwrap_or_default().to_owned());
        trim_newline(&mut first);
        if first.is_empty() {
            bail!("{}: the password (first line) is empty", file.display());
        }
        return Ok(Unlock::Password(first));
    }
    if lines.len() < usize::from(t) {
        bail!(
            "{}: {} share{} found, the backup needs {t} (one per line)",
            file.display(),
            lines.len(),
            if lines.len() == 1 { "" } else { "s" }
        );
    }
    Ok(Unlock::Shares(lines))
}

fn unlock_for(cli: &Cli, i: usize, path: &Path, source: &Source) -> anyhow::Result<Unlock> {
    let (t, _n) = backup::store_policy(path)?;
    if let Some(f) = cli.password_files.get(i) {
        return unlock_from_file(f, t);
    }
    let name = path.display();
    if t == 1 {
        return Ok(Unlock::Password(
            source.line(&format!("Password for {name}: "))?,
        ));
    }
    let mut shares = Vec::new();
    for k in 1..=t {
        shares.push(source.line(&format!("Share {k} of {t} for {name}: "))?);
    }
    Ok(Unlock::Shares(shares))
}

fn keystore_password(cli: &Cli) -> anyhow::Result<Zeroizing<String>> {
    if let Some(f) = &cli.keystore_password_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(f).with_context(|| format!("read {}", f.display()))?,
        );
        let mut first = Zeroizing::new(text.lines().next().unwrap_or_default().to_owned());
        trim_newline(&mut first);
        if first.is_empty() {
            bail!(
                "{}: the keystore password (first line) is empty",
                f.display()
            );
        }
        return Ok(first);
    }
    if cli.keystore_password_stdin {
        return Source::Stdin.line("");
    }
    let a = Source::Prompt.line("New keystore password: ")?;
    let b = Source::Prompt.line("Retype keystore password: ")?;
    if a != b {
        bail!("the keystore passwords do not match");
    }
    Ok(a)
}

#[derive(Serialize)]
struct KeyOut<'a> {
    key_id: &'a str,
    curve: &'static str,
    protocol: &'static str,
    threshold: u16,
    public_key: String,
    chain_code: String,
    rebuilt_from: &'a [String],
    children: Vec<ChildOut<'a>>,
}

#[derive(Serialize)]
struct ChildOut<'a> {
    path: &'a str,
    public_key: String,
    private_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    wif: Option<&'a str>,
    addresses: std::collections::BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    eth_keystore: Option<String>,
}

/// The secrets of one child, held until printed (wiped on drop).
struct ChildSecrets {
    hex: Zeroizing<String>,
    wif: Option<Zeroizing<String>>,
    keystore: Option<PathBuf>,
}

/// Runs the command.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    eprintln!("{}\n", crate::WARNING);
    if !cli.password_files.is_empty() && cli.password_files.len() != cli.backups.len() {
        bail!(
            "{} --password-file given for {} --backup; give one per backup, in the same order",
            cli.password_files.len(),
            cli.backups.len()
        );
    }
    for p in &cli.paths {
        derive::parse_path(p)?;
    }
    let source = if cli.password_stdin {
        Source::Stdin
    } else {
        Source::Prompt
    };
    let mut backups = Vec::new();
    for (i, path) in cli.backups.iter().enumerate() {
        let unlock = unlock_for(cli, i, path, &source)?;
        backups.push(backup::read_backup(path, &unlock)?);
    }
    if cli.list {
        for (key, parties) in rebuild::inventory(&backups) {
            println!("{key}");
            for p in parties {
                println!("  {p}");
            }
        }
        return Ok(());
    }
    // Keys of the other curve are not rebuilt at all (nor refused).
    let mut only = cli.keys.clone();
    if only.is_empty() && cli.curve != CurveArg::Both {
        let mut ids: Vec<String> = backups
            .iter()
            .flat_map(|b| b.keys.iter())
            .filter(|r| {
                cli.curve.admits(match r.share.curve_name() {
                    "ed25519" => KeyCurve::Ed25519,
                    _ => KeyCurve::Secp256k1,
                })
            })
            .map(|r| r.key_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            bail!("no key of the chosen curve in the backups");
        }
        only = ids;
    }
    let keys: Vec<RecoveredKey> = rebuild::rebuild(&backups, &only)?
        .into_iter()
        .filter(|k| cli.curve.admits(k.curve))
        .collect();
    if keys.is_empty() {
        bail!("no key of the chosen curve in the backups");
    }
    let network = if cli.testnet {
        BtcNetwork::Testnet
    } else {
        BtcNetwork::Mainnet
    };
    let ks_password = match &cli.eth_keystore {
        Some(dir) if keys.iter().any(|k| k.curve == KeyCurve::Secp256k1) => {
            if !dir.is_dir() {
                bail!("--eth-keystore {}: not a directory", dir.display());
            }
            Some(keystore_password(cli)?)
        }
        _ => None,
    };

    // Derive everything (and write keystores) before printing anything.
    let mut derived: Vec<(&RecoveredKey, Vec<(ChildKey, ChildSecrets)>)> = Vec::new();
    for key in &keys {
        let mut children = Vec::new();
        for p in &cli.paths {
            let child = derive::derive_child(key, p)?;
            let secret = child.secret_bytes();
            let hex = Zeroizing::new(hex::encode(&secret[..]));
            let (wif, keystore) = match key.curve {
                KeyCurve::Secp256k1 => {
                    let wif = cli.wif.then(|| output::wif(&secret, network));
                    let keystore = match (&cli.eth_keystore, &ks_password) {
                        (Some(dir), Some(pw)) => {
                            Some(write_keystore(dir, &secret, pw, cli.keystore_scrypt_log_n)?)
                        }
                        _ => None,
                    };
                    (wif, keystore)
                }
                KeyCurve::Ed25519 => (None, None),
            };
            children.push((child, ChildSecrets { hex, wif, keystore }));
        }
        derived.push((key, children));
    }

    let mut buf = Zeroizing::new(Vec::<u8>::new());
    if cli.json {
        let out: Vec<KeyOut<'_>> = derived
            .iter()
            .map(|(key, children)| KeyOut {
                key_id: &key.key_id,
                curve: key.curve.name(),
                protocol: key.protocol,
                threshold: key.threshold,
                public_key: hex::encode(&key.public_key),
                chain_code: hex::encode(key.chain_code),
                rebuilt_from: &key.used,
                children: children
                    .iter()
                    .map(|(c, s)| ChildOut {
                        path: &c.path,
                        public_key: hex::encode(&c.public_key),
                        private_key: s.hex.as_str(),
                        wif: s.wif.as_ref().map(|w| w.as_str()),
                        addresses: output::addresses(c, network).into_iter().collect(),
                        eth_keystore: s.keystore.as_ref().map(|p| p.display().to_string()),
                    })
                    .collect(),
            })
            .collect();
        #[derive(Serialize)]
        struct Doc<'a> {
            keys: Vec<KeyOut<'a>>,
        }
        buf.reserve(64 * 1024);
        serde_json::to_writer_pretty(&mut *buf, &Doc { keys: out })
            .context("formatting the output")?;
        buf.push(b'\n');
    } else {
        for (key, children) in &derived {
            text_key(&mut buf, key, children, network)?;
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&buf)
        .context("writing to standard output")?;
    stdout.flush().context("writing to standard output")?;
    Ok(())
}

fn text_key(
    buf: &mut Vec<u8>,
    key: &RecoveredKey,
    children: &[(ChildKey, ChildSecrets)],
    network: BtcNetwork,
) -> anyhow::Result<()> {
    writeln!(
        buf,
        "key {} ({}, {}, t = {})\n  rebuilt from:    {}\n  root public key: {}\n  chain code:      {}",
        key.key_id,
        key.curve.name(),
        key.protocol,
        key.threshold,
        key.used.join(", "),
        hex::encode(&key.public_key),
        hex::encode(key.chain_code)
    )?;
    for (c, s) in children {
        writeln!(buf, "  {}", c.path)?;
        writeln!(buf, "    public key:  {}", hex::encode(&c.public_key))?;
        let what = match c.curve {
            KeyCurve::Secp256k1 => "private key: ",
            KeyCurve::Ed25519 => "secret scalar (little-endian, not an RFC 8032 seed): ",
        };
        writeln!(buf, "    {what}{}", s.hex.as_str())?;
        if let Some(w) = &s.wif {
            writeln!(buf, "    wif:         {}", w.as_str())?;
        }
        for (name, a) in output::addresses(c, network) {
            writeln!(buf, "    {name}: {a}")?;
        }
        if let Some(p) = &s.keystore {
            writeln!(buf, "    keystore:    {}", p.display())?;
        }
    }
    Ok(())
}

fn write_keystore(
    dir: &Path,
    secret: &[u8; 32],
    password: &str,
    log_n: u8,
) -> anyhow::Result<PathBuf> {
    let ks = output::eth_keystore(secret, password, log_n)?;
    let address = ks["address"].as_str().unwrap_or("unknown").to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // go-ethereum names files UTC--<time>--<address>; a nanosecond Unix time keeps names unique.
    let path = dir.join(format!("UTC--{now}--{address}"));
    let bytes = serde_json::to_vec_pretty(&ks).context("formatting the keystore")?;
    output::write_new_private_atomic(&path, &bytes)?;
    Ok(path)
}
