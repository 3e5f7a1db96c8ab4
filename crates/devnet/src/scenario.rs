//! What `mpc-devnet` does once the cluster runs: keys, a wallet, addresses, one request of every
//! algorithm and sign_type, each signature verified independently ([`crate::verify`]), a
//! readable summary and the [`Report`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use mpc_api::types::admin::{Curve, KeyInfo};
use mpc_api::types::{
    AddressAlgorithm, RawSignAlgorithm, SignAlgorithm, SignMessageRequest, SignRawDataRequest,
    SignState,
};
use mpc_chains::SignMessageKind;
use serde_json::{Value, json};

use crate::api::{ApiClient, SignTransactionRequest};
use crate::cluster::{Cluster, unix_ms};
use crate::progress::Phase;
use crate::report::{ApiInfo, KeyEntry, NodeEntry, Report, SignatureEntry};
use crate::verify;

/// The EIP-712 v4 document the devnet signs.
pub const TYPED_DATA_V4: &str = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}],"Person":[{"name":"name","type":"string"},{"name":"wallet","type":"address"}],"Mail":[{"name":"from","type":"Person"},{"name":"to","type":"Person"},{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{"name":"Ether Mail","version":"1","chainId":1,"verifyingContract":"0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},"message":{"from":{"name":"Cow","wallet":"0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},"to":{"name":"Bob","wallet":"0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},"contents":"Hello, Bob!"}}"#;

/// One signing request.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    /// ECDSA, sign_type 3: a 32-byte digest.
    EcdsaRaw {
        /// Key path.
        path: String,
        /// The digest.
        digest: [u8; 32],
    },
    /// ECDSA, sign_type 2, `personal_sign`.
    PersonalSign {
        /// Key path.
        path: String,
        /// The text.
        message: String,
    },
    /// ECDSA, sign_type 2, `eth_signTypedData_v4`.
    TypedDataV4 {
        /// Key path.
        path: String,
        /// The typed-data JSON.
        json: String,
    },
    /// ECDSA, sign_type 1 (sign_transaction extension).
    Transaction {
        /// Key path.
        path: String,
        /// The sighash.
        sighash: [u8; 32],
        /// `txInfo` for the callback.
        tx_info: Value,
    },
    /// EdDSA, sign_type 3: the message itself.
    EddsaRaw {
        /// Key path.
        path: String,
        /// The message.
        message: Vec<u8>,
    },
    /// BIP340 Schnorr (untweaked), sign_type 3.
    Bip340 {
        /// Key path.
        path: String,
        /// 32-byte message.
        msg: [u8; 32],
    },
    /// Taproot key path, sign_type 3.
    Taproot {
        /// Key path.
        path: String,
        /// 32-byte message.
        msg: [u8; 32],
        /// Script tree root, `None` for key-path only.
        root: Option<[u8; 32]>,
    },
}

impl Job {
    /// `ecdsa`, `eddsa`, `bip340`, `taproot`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Job::EcdsaRaw { .. }
            | Job::PersonalSign { .. }
            | Job::TypedDataV4 { .. }
            | Job::Transaction { .. } => "ecdsa",
            Job::EddsaRaw { .. } => "eddsa",
            Job::Bip340 { .. } => "bip340",
            Job::Taproot { .. } => "taproot",
        }
    }
    /// `"1"`, `"2"`, `"3"`.
    pub fn sign_type(&self) -> &'static str {
        match self {
            Job::Transaction { .. } => "1",
            Job::PersonalSign { .. } | Job::TypedDataV4 { .. } => "2",
            _ => "3",
        }
    }
    /// The key path.
    pub fn path(&self) -> &str {
        match self {
            Job::EcdsaRaw { path, .. }
            | Job::PersonalSign { path, .. }
            | Job::TypedDataV4 { path, .. }
            | Job::Transaction { path, .. }
            | Job::EddsaRaw { path, .. }
            | Job::Bip340 { path, .. }
            | Job::Taproot { path, .. } => path,
        }
    }
    /// A short label for the summary.
    pub fn label(&self) -> String {
        match self {
            Job::PersonalSign { .. } => "ecdsa personal_sign".into(),
            Job::TypedDataV4 { .. } => "ecdsa eth_signTypedData_v4".into(),
            Job::Transaction { .. } => "ecdsa sign_transaction".into(),
            Job::Taproot { root: Some(_), .. } => "taproot (tapScriptRoot)".into(),
            Job::Taproot { root: None, .. } => "taproot (key path only)".into(),
            other => format!("{} raw", other.algorithm()),
        }
    }
}

/// Everything a job needs: the API, the wallet and the root keys.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The API user's client.
    pub api: ApiClient,
    /// Vault.
    pub vault_id: String,
    /// Wallet (advanced features on).
    pub wallet_id: String,
    /// secp256k1 root key (33 bytes) and chain code.
    pub secp256k1: Option<(Vec<u8>, Vec<u8>)>,
    /// ed25519 public keys by path, as `gen_address_by_path` returned them.
    pub ed25519_keys: BTreeMap<String, Vec<u8>>,
    /// How long to poll `sign_result`.
    pub result_timeout: Duration,
}

/// The result of one job.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The report entry (signature empty unless done).
    pub entry: SignatureEntry,
    /// `Ok(detail)` verified; `Err(reason)`: failed, rejected or not verified.
    pub verified: Result<String, String>,
    /// The request id used.
    pub request_id: String,
    /// The final API state.
    pub state: Option<SignState>,
}

fn decode_hex(what: &str, s: &str) -> anyhow::Result<Vec<u8>> {
    hex::decode(s.trim_start_matches("0x")).with_context(|| format!("{what} is not hex: {s:?}"))
}

/// `m/1/1/<coin>/<index>` → `(coin, index)`.
fn coin_index(path: &str) -> Option<(u32, u32)> {
    match verify::parse_path(path).ok()?.as_slice() {
        [1, 1, c, i] => Some((*c, *i)),
        _ => None,
    }
}

impl Signer {
    /// The derived public key of `job`'s path (secp256k1 by CKDpub; ed25519 from the API).
    pub async fn public_key(&mut self, job: &Job) -> anyhow::Result<Vec<u8>> {
        if job.algorithm() == "eddsa" {
            if let Some(k) = self.ed25519_keys.get(job.path()) {
                return Ok(k.clone());
            }
            let (coin, index) = coin_index(job.path())
                .ok_or_else(|| anyhow!("ed25519 path {} is not m/1/1/coin/index", job.path()))?;
            let a = self
                .api
                .gen_address(
                    &self.vault_id,
                    &self.wallet_id,
                    AddressAlgorithm::Ed25519,
                    coin,
                    index,
                )
                .await?;
            let k = decode_hex("pubkey", &a.pubkey)?;
            self.ed25519_keys.insert(job.path().to_owned(), k.clone());
            return Ok(k);
        }
        let (root, cc) = self
            .secp256k1
            .as_ref()
            .ok_or_else(|| anyhow!("no secp256k1 key"))?;
        Ok(verify::derive_secp256k1(root, cc, job.path())?.to_vec())
    }

    /// Sends the request of `job` under `request_id` (no waiting).
    pub async fn submit(&self, job: &Job, request_id: &str) -> anyhow::Result<()> {
        let raw = |raw: &[u8], alg: RawSignAlgorithm, root: Option<[u8; 32]>| SignRawDataRequest {
            vault_id: self.vault_id.clone(),
            request_id: request_id.to_owned(),
            wallet_id: self.wallet_id.clone(),
            hd_path: job.path().to_owned(),
            raw_data: hex::encode(raw),
            algorithm_type: alg,
            tap_script_root: root.map(hex::encode).unwrap_or_default(),
        };
        let msg = |alg: SignAlgorithm, message: &str| SignMessageRequest {
            request_id: request_id.to_owned(),
            chain_symbol: "ETH".into(),
            hd_path: job.path().to_owned(),
            sign_algorithm: alg,
            message: message.to_owned(),
        };
        match job {
            Job::EcdsaRaw { digest, .. } => {
                self.api
                    .sign_raw_data(&raw(digest, RawSignAlgorithm::KeyDefault, None))
                    .await?;
            }
            Job::EddsaRaw { message, .. } => {
                self.api
                    .sign_raw_data(&raw(message, RawSignAlgorithm::KeyDefault, None))
                    .await?;
            }
            Job::Bip340 { msg, .. } => {
                self.api
                    .sign_raw_data(&raw(msg, RawSignAlgorithm::Bip340, None))
                    .await?;
            }
            Job::Taproot { msg, root, .. } => {
                self.api
                    .sign_raw_data(&raw(msg, RawSignAlgorithm::Taproot, *root))
                    .await?;
            }
            Job::PersonalSign { message, .. } => {
                self.api
                    .sign_message(&msg(SignAlgorithm::PersonalSign, message))
                    .await?;
            }
            Job::TypedDataV4 { json, .. } => {
                self.api
                    .sign_message(&msg(SignAlgorithm::SignTypedDataV4, json))
                    .await?;
            }
            Job::Transaction {
                sighash, tx_info, ..
            } => {
                let req = SignTransactionRequest {
                    vault_id: self.vault_id.clone(),
                    request_id: request_id.to_owned(),
                    wallet_id: self.wallet_id.clone(),
                    hd_path: job.path().to_owned(),
                    sighash: hex::encode(sighash),
                    algorithm_type: Default::default(),
                    tap_script_root: String::new(),
                    tx_info: tx_info.clone(),
                };
                self.api.sign_transaction(&req).await?;
            }
        }
        Ok(())
    }

    /// `(message given to the API, digest signed, EVM address)` of a job.
    pub fn expected(job: &Job, pubkey: &[u8]) -> anyhow::Result<(Vec<u8>, Vec<u8>, String)> {
        Ok(match job {
            Job::EcdsaRaw { digest, .. } => (digest.to_vec(), digest.to_vec(), String::new()),
            Job::Transaction { sighash, .. } => (sighash.to_vec(), sighash.to_vec(), String::new()),
            Job::EddsaRaw { message, .. } => (message.clone(), message.clone(), String::new()),
            Job::Bip340 { msg, .. } | Job::Taproot { msg, .. } => {
                (msg.to_vec(), msg.to_vec(), String::new())
            }
            Job::PersonalSign { message, .. } => {
                let p = mpc_chains::sign_message_payload(SignMessageKind::PersonalSign, message)?;
                (
                    message.as_bytes().to_vec(),
                    p.digest().to_vec(),
                    verify::evm_address(pubkey)?,
                )
            }
            Job::TypedDataV4 { json, .. } => {
                let p = mpc_chains::sign_message_payload(SignMessageKind::TypedDataV4, json)?;
                (
                    json.as_bytes().to_vec(),
                    p.digest().to_vec(),
                    verify::evm_address(pubkey)?,
                )
            }
        })
    }

    /// Verifies `sig` for `job`; `Ok(detail)`.
    pub fn check(job: &Job, pubkey: &[u8], digest: &[u8], sig: &[u8]) -> Result<String, String> {
        let r = match job {
            Job::EcdsaRaw { .. }
            | Job::Transaction { .. }
            | Job::PersonalSign { .. }
            | Job::TypedDataV4 { .. } => verify::ecdsa(pubkey, digest, sig).map(|c| {
                let mut d = "k256 ECDSA".to_owned();
                if c.recovered {
                    d.push_str(" + recovery");
                }
                if c.high_s {
                    d.push_str(" (high S)");
                }
                d
            }),
            Job::EddsaRaw { .. } => {
                verify::ed25519(pubkey, digest, sig).map(|()| "ed25519 verify_strict".into())
            }
            Job::Bip340 { .. } => {
                verify::bip340(pubkey, digest, sig).map(|()| "k256 BIP340".into())
            }
            Job::Taproot { root, .. } => verify::taproot(pubkey, *root, digest, sig)
                .map(|q| format!("k256 BIP340 under output key {}", hex::encode(q))),
        };
        r.map_err(|e| e.to_string())
    }

    /// The `failedReason` of `request_id` as `list_mpc_requests` shows it (first page, newest
    /// first); empty when it is not there or has none.
    pub async fn failed_reason(&self, request_id: &str) -> anyhow::Result<String> {
        let list = self.api.list_mpc_requests().await?;
        Ok(list
            .list
            .into_iter()
            .find(|r| r.request_id == request_id)
            .map(|r| r.failed_reason)
            .unwrap_or_default())
    }

    /// Submits `job`, polls the result (bounded) and verifies it.
    pub async fn run(&mut self, job: &Job, request_id: &str) -> anyhow::Result<Outcome> {
        let pubkey = self.public_key(job).await?;
        let (message, digest, address) = Self::expected(job, &pubkey)?;
        let start = Instant::now();
        self.submit(job, request_id).await?;
        let result = self
            .api
            .wait_sign_result(request_id, self.result_timeout)
            .await?;
        let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
        let mut entry = SignatureEntry {
            algorithm: job.algorithm().into(),
            sign_type: job.sign_type().into(),
            path: job.path().into(),
            public_key: hex::encode(&pubkey),
            message: hex::encode(&message),
            digest: hex::encode(&digest),
            tap_script_root: match job {
                Job::Taproot { root: Some(r), .. } => hex::encode(r),
                _ => String::new(),
            },
            address,
            signature: String::new(),
            latency_ms,
        };
        let verified = if result.state == SignState::Done {
            entry.signature = result.signature.clone();
            match hex::decode(result.signature.trim_start_matches("0x")) {
                Ok(sig) => Self::check(job, &pubkey, &digest, &sig),
                Err(_) => Err("the signature is not hex".into()),
            }
        } else {
            Err(format!("request ended {:?}", result.state))
        };
        Ok(Outcome {
            entry,
            verified,
            request_id: request_id.to_owned(),
            state: Some(result.state),
        })
    }
}

/// The standard job list (every algorithm and sign_type).
pub fn standard_jobs() -> Vec<Job> {
    use mpc_chains::hash::{keccak256, sha256};
    vec![
        Job::EcdsaRaw {
            path: "m/1/1/60/0".into(),
            digest: sha256(b"mpc-devnet: ecdsa raw digest"),
        },
        Job::PersonalSign {
            path: "m/1/1/60/0".into(),
            message: "Hello from mpc-devnet".into(),
        },
        Job::TypedDataV4 {
            path: "m/1/1/60/0".into(),
            json: TYPED_DATA_V4.into(),
        },
        Job::Transaction {
            path: "m/1/1/60/0".into(),
            sighash: keccak256(b"mpc-devnet: transaction"),
            tx_info: json!({
                "chainSymbol": "ETH",
                "assetId": "ETH",
                "from": "",
                "to": crate::render::DEVNET_DESTINATION,
                "amount": "0.01"
            }),
        },
        Job::EddsaRaw {
            path: "m/1/1/501/0".into(),
            message: b"mpc-devnet: ed25519 message".to_vec(),
        },
        Job::Bip340 {
            path: "m/1/1/0/0".into(),
            msg: sha256(b"mpc-devnet: bip340"),
        },
        Job::Taproot {
            path: "m/1/1/0/0".into(),
            msg: sha256(b"mpc-devnet: taproot key path"),
            root: None,
        },
        Job::Taproot {
            path: "m/1/1/0/0".into(),
            msg: sha256(b"mpc-devnet: taproot with script root"),
            root: Some(sha256(b"mpc-devnet: tap script root")),
        },
    ]
}

fn key_entry(k: &KeyInfo) -> KeyEntry {
    KeyEntry {
        curve: match k.curve {
            Curve::EcdsaSecp256k1 => "secp256k1".into(),
            Curve::EddsaEd25519 => "ed25519".into(),
        },
        threshold: k.threshold,
        parties: k.parties.clone(),
        public_key: k.root_public_key.clone(),
        chain_code: k.chain_code.clone(),
    }
}

/// A [`Signer`] for `cluster` with `keys` (from [`Cluster::wait_keys`]): creates the wallet on
/// first use (kept in `devnet.json`).
pub async fn signer(cluster: &mut Cluster, keys: &[KeyInfo]) -> anyhow::Result<Signer> {
    let secp = match keys.iter().find(|k| k.curve == Curve::EcdsaSecp256k1) {
        Some(k) => Some((
            decode_hex("root public key", &k.root_public_key)?,
            decode_hex("chain code", &k.chain_code)?,
        )),
        None => None,
    };
    let wallet_id = match cluster.state().wallet_id.clone() {
        Some(w) => w,
        None => {
            let phase = Phase::start("create wallet");
            let w = cluster
                .api()
                .create_wallet(
                    &format!("devnet-wallet-{}", unix_ms()),
                    cluster.vault_id(),
                    "devnet",
                )
                .await?;
            phase.done(&w.wallet_id);
            cluster.set_wallet(&w.wallet_id)?;
            w.wallet_id
        }
    };
    Ok(Signer {
        api: cluster.api().clone(),
        vault_id: cluster.vault_id().to_owned(),
        wallet_id,
        secp256k1: secp,
        ed25519_keys: BTreeMap::new(),
        result_timeout: Duration::from_secs(cluster.options().sign_timeout_secs + 30),
    })
}

/// The full demo on a started cluster: returns the report and whether every signature verified.
pub async fn run(cluster: &mut Cluster) -> anyhow::Result<(Report, bool)> {
    let keys = cluster.wait_keys().await?;
    let mut report = Report {
        api: ApiInfo {
            url: cluster.api_url(),
            private_key_path: cluster.layout().api_user_key().display().to_string(),
            vault_id: cluster.vault_id().to_owned(),
        },
        nodes: cluster
            .node_ids()
            .into_iter()
            .filter(|(p, _)| cluster.options().parties.contains(p))
            .map(|(party, node_id)| NodeEntry {
                dir: cluster.layout().node_dir(&party).display().to_string(),
                party_id: party,
                node_id,
            })
            .collect(),
        keys: keys.iter().map(key_entry).collect(),
        signatures: Vec::new(),
    };
    println!("\nKeys:");
    for k in &report.keys {
        println!(
            "  {:<9} {}-of-{} {}  chain code {}",
            k.curve,
            k.threshold,
            k.parties.len(),
            k.public_key,
            k.chain_code
        );
    }
    let mut signer = signer(cluster, &keys).await?;
    let (root, cc) = signer
        .secp256k1
        .clone()
        .ok_or_else(|| anyhow!("no secp256k1 key"))?;
    let wallet_id = signer.wallet_id.clone();
    let ed_root = match keys.iter().find(|k| k.curve == Curve::EddsaEd25519) {
        Some(k) => Some((
            decode_hex("ed25519 root key", &k.root_public_key)?,
            decode_hex("ed25519 chain code", &k.chain_code)?,
        )),
        None => None,
    };

    // Addresses, with the secp256k1 keys checked against CKDpub.
    println!("\nAddresses (wallet {wallet_id}):");
    let mut all_ok = true;
    for (alg, coin) in [
        (AddressAlgorithm::Secp256k1, 0u32),
        (AddressAlgorithm::Secp256k1, 60),
        (AddressAlgorithm::Ed25519, 501),
    ] {
        let resp = signer
            .api
            .gen_address(&signer.vault_id, &wallet_id, alg, coin, 0)
            .await?;
        let a = resp.primary();
        if !resp.addresses.contains(&a) {
            all_ok = false;
            println!("  MISMATCH: the answered address is not among the path's addresses");
        }
        if resp
            .addresses
            .iter()
            .any(|x| x.pubkey != a.pubkey || x.hd_path != a.hd_path)
        {
            all_ok = false;
            println!("  MISMATCH: addresses of one path disagree on the public key");
        }
        let check = if alg == AddressAlgorithm::Secp256k1 {
            match verify::derive_secp256k1(&root, &cc, &a.hd_path) {
                Ok(k) if hex::encode(k) == a.pubkey.to_lowercase() => "CKDpub ok".to_owned(),
                Ok(k) => {
                    all_ok = false;
                    format!("MISMATCH: CKDpub gives {}", hex::encode(k))
                }
                Err(e) => {
                    all_ok = false;
                    format!("MISMATCH: {e}")
                }
            }
        } else {
            signer
                .ed25519_keys
                .insert(a.hd_path.clone(), decode_hex("pubkey", &a.pubkey)?);
            match &ed_root {
                Some((r, c)) => match verify::derive_ed25519(r, c, &a.hd_path) {
                    Ok(k) if hex::encode(k) == a.pubkey.to_lowercase() => {
                        "hd-wallet Edwards ok".to_owned()
                    }
                    Ok(k) => {
                        all_ok = false;
                        format!("MISMATCH: Edwards derivation gives {}", hex::encode(k))
                    }
                    Err(e) => {
                        all_ok = false;
                        format!("MISMATCH: {e}")
                    }
                },
                None => "no ed25519 key".to_owned(),
            }
        };
        println!(
            "  coin {coin:<4} {:<14} pubkey {} [{check}]",
            a.hd_path, a.pubkey
        );
        for x in &resp.addresses {
            let mark = if x.encoding == a.encoding {
                " (answered)"
            } else {
                ""
            };
            println!(
                "      {:<15} {}{mark}",
                format!("{:?}", x.encoding),
                x.address
            );
        }
    }

    println!("\nSignatures:");
    let run_id = unix_ms();
    for (i, job) in standard_jobs().iter().enumerate() {
        let request_id = format!("devnet-{run_id}-{i}");
        let phase = Phase::start(format!("sign: {}", job.label()));
        match signer.run(job, &request_id).await {
            Ok(out) => {
                match &out.verified {
                    Ok(d) => phase.done(d),
                    Err(e) => {
                        all_ok = false;
                        phase.fail(e);
                    }
                }
                println!(
                    "  {:<28} sign_type {} {:<11} {:>8.0} ms  {}",
                    job.label(),
                    job.sign_type(),
                    job.path(),
                    out.entry.latency_ms,
                    match &out.verified {
                        Ok(_) => "verified".to_owned(),
                        Err(e) => format!("NOT VERIFIED: {e}"),
                    }
                );
                report.signatures.push(out.entry);
            }
            Err(e) => {
                all_ok = false;
                phase.fail(&format!("{e:#}"));
                println!("  {:<28} FAILED: {e:#}", job.label());
            }
        }
    }
    if report.signatures.len() != standard_jobs().len() {
        all_ok = false;
    }
    Ok((report, all_ok))
}

/// Writes the report to `path`.
pub fn write_report(report: &Report, path: &std::path::Path) -> anyhow::Result<()> {
    crate::fsutil::write_public(path, report.to_json().as_bytes())?;
    Ok(())
}

/// Fails if `outcome` is not a verified signature.
pub fn require_verified(o: &Outcome) -> anyhow::Result<()> {
    match &o.verified {
        Ok(_) => Ok(()),
        Err(e) => bail!("{} ({}): {e}", o.request_id, o.entry.algorithm),
    }
}
