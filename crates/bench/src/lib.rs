//! # mpc-bench: how fast the threshold protocols are
//!
//! `mpc-bench protocols` (this module) measures the libraries; `mpc-bench e2e` ([`e2e`]) the
//! whole system through its API.
//!
//! Runs every party of each protocol in one process through `mpc_tss::sim` (sequentially, one
//! thread), times whole runs, and reports medians with min and max, bytes sent per party, and
//! the single-key signing floor (k256 ECDSA, ed25519-dalek) the threshold figures compare to.
//! Every signature made here is verified with k256 / ed25519-dalek, so a fast wrong answer
//! cannot pass for a result.
#![forbid(unsafe_code)]

pub mod e2e;

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail, ensure};
use mpc_tss::dkls::{self, DklsKeyShare};
use mpc_tss::ecdsa::{
    self, EcdsaAuxInfo, EcdsaCoreShare, EcdsaKeyShare, KnownMessage, MessageHash, SignInput,
};
use mpc_tss::frost::{self, EddsaKeyShare};
use mpc_tss::primes::SecretPrimes;
use mpc_tss::{Committee, DerivationPath, ExecutionId, PartyId, ProtocolKind, Session, sim};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// e.g. `ecdsa.sign_full`
    pub name: String,
    /// parties taking part
    pub parties: u16,
    /// signers needed
    pub threshold: u16,
    /// number of timed runs
    pub runs: usize,
    /// median wall time of one run (all parties, sequential)
    pub median_ms: f64,
    /// fastest run
    pub min_ms: f64,
    /// slowest run
    pub max_ms: f64,
    /// payload bytes sent by one party in one run (largest over parties)
    pub bytes_per_party: u64,
}

/// The whole report (`--json` writes exactly this).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// CPU model and cores
    pub machine: String,
    /// measured phases
    pub phases: Vec<Phase>,
}

/// Options of `mpc-bench protocols`.
#[derive(Debug, Clone)]
pub struct Options {
    /// timed runs per phase (at least 3; 5 by default)
    pub runs: usize,
    /// skip `ecdsa.aux_info.fresh` (minutes of prime generation)
    pub skip_fresh_aux: bool,
    /// prime sets for the pooled aux-info phase (else generated once before timing)
    pub primes: Option<Vec<SecretPrimes>>,
    /// run only the single-key floor and the DKLs23 phases (seconds instead of minutes)
    pub only_dkls23: bool,
    /// progress lines go here
    pub progress: fn(&str),
}

/// CPU model and core count from /proc/cpuinfo.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{model}, {cores} cores")
}

fn party(s: &str) -> Result<PartyId> {
    PartyId::new(s).map_err(|e| anyhow!("{e}"))
}

fn eid(kind: ProtocolKind, tag: &str, parties: &[PartyId]) -> ExecutionId {
    ExecutionId::derive(kind, tag.as_bytes(), parties)
}

/// Runs `make()` (which builds all sessions) `runs` times; times only the protocol runs.
fn measure<O, F, C>(
    name: &str,
    parties: u16,
    threshold: u16,
    runs: usize,
    mut make: F,
    mut check: C,
) -> Result<Phase>
where
    F: FnMut(usize) -> Result<Vec<Session<O>>>,
    C: FnMut(BTreeMap<PartyId, O>) -> Result<()>,
{
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for run in 0..runs {
        let sessions = make(run)?;
        let start = Instant::now();
        let out = sim::run(sessions).map_err(|e| anyhow!("{name}: {e:?}"))?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        bytes = out
            .traffic
            .values()
            .map(|t| t.bytes_sent)
            .max()
            .unwrap_or(0);
        check(out.outputs).with_context(|| format!("{name}: output check"))?;
    }
    Ok(summarize(name, parties, threshold, times, bytes))
}

fn summarize(name: &str, parties: u16, threshold: u16, mut times: Vec<f64>, bytes: u64) -> Phase {
    times.sort_by(|a, b| a.total_cmp(b));
    let median = if times.is_empty() {
        0.0
    } else if times.len() % 2 == 1 {
        times[times.len() / 2]
    } else {
        (times[times.len() / 2 - 1] + times[times.len() / 2]) / 2.0
    };
    Phase {
        name: name.into(),
        parties,
        threshold,
        runs: times.len(),
        median_ms: median,
        min_ms: times.first().copied().unwrap_or(0.0),
        max_ms: times.last().copied().unwrap_or(0.0),
        bytes_per_party: bytes,
    }
}

fn one<O: Clone>(out: &BTreeMap<PartyId, O>) -> Result<O> {
    out.values()
        .next()
        .cloned()
        .ok_or_else(|| anyhow!("no output"))
}

fn verify_ecdsa(pk: &[u8; 33], digest: &[u8; 32], sig: &ecdsa::EcdsaSignature) -> Result<()> {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(pk)?;
    let s = k256::ecdsa::Signature::from_scalars(sig.r, sig.s)?;
    vk.verify_prehash(digest, &s)?;
    Ok(())
}

fn verify_schnorr(xonly: &[u8; 32], msg: &[u8], sig: &frost::SchnorrSignature) -> Result<()> {
    let vk = k256::schnorr::VerifyingKey::from_bytes(xonly)?;
    let s = k256::schnorr::Signature::try_from(&sig.0[..])?;
    vk.verify_raw(msg, &s)?;
    Ok(())
}

/// Generates `count` prime sets on all cores.
pub fn generate_primes(count: usize) -> Vec<SecretPrimes> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(count.max(1));
    let pool = mpc_tss::primes::PrimePool::new(count);
    let handles = pool.spawn_fillers(threads);
    while pool.len() < count {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    pool.stop();
    for h in handles {
        let _ = h.join();
    }
    let mut sets = pool.snapshot();
    sets.truncate(count);
    sets
}

struct Keys {
    committee: Committee,
    ecdsa: BTreeMap<u16, BTreeMap<PartyId, EcdsaCoreShare>>,
    aux: BTreeMap<PartyId, EcdsaAuxInfo>,
    eddsa: BTreeMap<u16, BTreeMap<PartyId, EddsaKeyShare>>,
}

impl Keys {
    fn shares(&self, t: u16) -> Result<BTreeMap<PartyId, EcdsaKeyShare>> {
        let core = self
            .ecdsa
            .get(&t)
            .ok_or_else(|| anyhow!("no {t}-of-3 key"))?;
        core.iter()
            .map(|(p, c)| {
                let aux = self.aux.get(p).ok_or_else(|| anyhow!("no aux for {p}"))?;
                Ok((
                    *p,
                    EcdsaKeyShare::new(c.clone(), aux.clone()).map_err(|e| anyhow!("{e}"))?,
                ))
            })
            .collect()
    }
}

/// Runs every phase and returns the report.
pub fn run_protocols(opts: &Options) -> Result<Report> {
    ensure!(opts.runs >= 1, "at least one run");
    let runs = opts.runs;
    let say = opts.progress;
    let committee =
        Committee::new(vec![party("a")?, party("b")?, party("c")?]).map_err(|e| anyhow!("{e}"))?;
    let all = committee.parties().to_vec();
    let path: DerivationPath = "m/1/1/60/0".parse().map_err(|e| anyhow!("{e}"))?;
    let subset = |t: u16| all[..usize::from(t)].to_vec();
    let mut phases = Vec::new();

    // Single-key floor.
    say("floor: single-key ECDSA and ed25519");
    phases.push(floor_ecdsa(runs.max(200))?);
    phases.push(floor_ed25519(runs.max(200))?);

    // DKLs23: no setup beyond key generation.
    phases.extend(dkls23_phases(runs, say, &committee, &path)?);
    if opts.only_dkls23 {
        return Ok(Report {
            machine: machine(),
            phases,
        });
    }

    // Key generation.
    let mut keys = Keys {
        committee: committee.clone(),
        ecdsa: BTreeMap::new(),
        aux: BTreeMap::new(),
        eddsa: BTreeMap::new(),
    };
    for t in [3u16, 2] {
        say(&format!("ecdsa.keygen {t}-of-3"));
        let mut last = BTreeMap::new();
        let c = committee.clone();
        phases.push(measure(
            "ecdsa.keygen",
            3,
            t,
            runs,
            |run| {
                let e = eid(
                    ProtocolKind::EcdsaKeygen,
                    &format!("bench-kg-{t}-{run}"),
                    c.parties(),
                );
                c.parties()
                    .iter()
                    .map(|p| ecdsa::keygen(e, *p, &c, t).map_err(|e| anyhow!("{e}")))
                    .collect()
            },
            |out| {
                last = out;
                Ok(())
            },
        )?);
        keys.ecdsa.insert(t, last);
        say(&format!("eddsa.keygen {t}-of-3"));
        let mut last = BTreeMap::new();
        phases.push(measure(
            "eddsa.keygen",
            3,
            t,
            runs,
            |run| {
                let e = eid(
                    ProtocolKind::EddsaKeygen,
                    &format!("bench-ekg-{t}-{run}"),
                    c.parties(),
                );
                c.parties()
                    .iter()
                    .map(|p| frost::eddsa_keygen(e, *p, &c, t).map_err(|e| anyhow!("{e}")))
                    .collect()
            },
            |out| {
                last = out;
                Ok(())
            },
        )?);
        keys.eddsa.insert(t, last);
    }

    // Aux info from pooled primes.
    let primes = match &opts.primes {
        Some(p) => p.clone(),
        None => {
            say("generating 3 prime sets for the pooled aux-info phase (not timed)");
            generate_primes(3)
        }
    };
    ensure!(
        primes.len() >= 3,
        "need 3 prime sets, have {}",
        primes.len()
    );
    say("ecdsa.aux_info.pooled");
    let mut last_aux = BTreeMap::new();
    phases.push(measure(
        "ecdsa.aux_info.pooled",
        3,
        3,
        runs,
        |run| {
            let e = eid(
                ProtocolKind::EcdsaAuxInfo,
                &format!("bench-aux-{run}"),
                &all,
            );
            all.iter()
                .zip(primes.iter().cloned())
                .map(|(p, pr)| ecdsa::aux_info(e, *p, &committee, pr).map_err(|e| anyhow!("{e}")))
                .collect()
        },
        |out| {
            last_aux = out;
            Ok(())
        },
    )?);
    keys.aux = last_aux;

    if !opts.skip_fresh_aux {
        say("ecdsa.aux_info.fresh (each party generates its primes; the three in parallel)");
        let mut times = Vec::new();
        let mut bytes = 0;
        for run in 0..runs {
            let start = Instant::now();
            let fresh = generate_primes(3);
            let e = eid(
                ProtocolKind::EcdsaAuxInfo,
                &format!("bench-aux-fresh-{run}"),
                &all,
            );
            let sessions = all
                .iter()
                .zip(fresh)
                .map(|(p, pr)| ecdsa::aux_info(e, *p, &committee, pr).map_err(|e| anyhow!("{e}")))
                .collect::<Result<Vec<_>>>()?;
            let out = sim::run(sessions).map_err(|e| anyhow!("aux fresh: {e:?}"))?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            bytes = out
                .traffic
                .values()
                .map(|t| t.bytes_sent)
                .max()
                .unwrap_or(0);
            say(&format!(
                "  run {} of {runs}: {:.0} ms",
                run + 1,
                times.last().copied().unwrap_or(0.0)
            ));
        }
        phases.push(summarize("ecdsa.aux_info.fresh", 3, 3, times, bytes));
    }

    // Signing.
    for t in [3u16, 2] {
        let signers = subset(t);
        let shares = keys.shares(t)?;
        let first = signers
            .first()
            .copied()
            .ok_or_else(|| anyhow!("no signers"))?;
        let child = shares[&first]
            .core()
            .derive_public_key(&path)
            .map_err(|e| anyhow!("{e}"))?;

        say(&format!("ecdsa.sign_full {t}-of-3"));
        phases.push(ecdsa_sign_full_phase(runs, &shares, &signers, &path)?);

        say(&format!("ecdsa.presign {t}-of-3"));
        let mut presigs = Vec::new();
        phases.push(measure(
            "ecdsa.presign",
            3,
            t,
            runs,
            |run| {
                let e = eid(
                    ProtocolKind::EcdsaPresign,
                    &format!("bench-pre-{t}-{run}"),
                    &signers,
                );
                signers
                    .iter()
                    .map(|p| {
                        ecdsa::presign(e, &shares[p], &signers, &path).map_err(|e| anyhow!("{e}"))
                    })
                    .collect()
            },
            |out| {
                // kept in stored form, as the node keeps them (a presignature is not Clone)
                presigs.push(
                    out.into_iter()
                        .map(|(p, pre)| (p, pre.into_stored_bytes()))
                        .collect::<Vec<_>>(),
                );
                Ok(())
            },
        )?);

        say(&format!("ecdsa.sign_online {t}-of-3"));
        let msg = KnownMessage {
            bytes: b"bench online".to_vec(),
            hash: MessageHash::Keccak256,
        };
        let mut presigs = presigs.into_iter();
        phases.push(measure(
            "ecdsa.sign_online",
            3,
            t,
            runs,
            |run| {
                let set = presigs
                    .next()
                    .ok_or_else(|| anyhow!("out of presignatures"))?;
                let e = eid(
                    ProtocolKind::EcdsaOnlineSign,
                    &format!("bench-online-{t}-{run}"),
                    &signers,
                );
                set.into_iter()
                    .map(|(p, bytes)| {
                        let pre = ecdsa::EcdsaPresignature::from_stored_bytes(&bytes)
                            .map_err(|e| anyhow!("{e}"))?;
                        ecdsa::online_sign(e, &shares[&p], pre, &path, &msg)
                            .map_err(|e| anyhow!("{e}"))
                    })
                    .collect()
            },
            |out| verify_ecdsa(&child, &msg.digest(), &one(&out)?),
        )?);

        let ed = keys
            .eddsa
            .get(&t)
            .ok_or_else(|| anyhow!("no ed25519 key"))?;
        say(&format!("eddsa.sign {t}-of-3"));
        phases.push(eddsa_sign_phase(runs.max(20), ed, &signers, &path)?);
        let core = keys.ecdsa.get(&t).ok_or_else(|| anyhow!("no key"))?;
        say(&format!("bip340.sign {t}-of-3"));
        phases.push(schnorr_sign_phase(
            SchnorrKind::Bip340,
            runs.max(20),
            core,
            &signers,
            &path,
        )?);
        say(&format!("taproot.sign {t}-of-3"));
        phases.push(schnorr_sign_phase(
            SchnorrKind::Taproot,
            runs.max(20),
            core,
            &signers,
            &path,
        )?);
    }
    let _ = &keys.committee;
    Ok(Report {
        machine: machine(),
        phases,
    })
}

/// DKLs23 key generation, signing 3-of-3 and 2-of-3 (root key and `path`), refresh and
/// repair; every signature verified with k256 under the BIP32 child key.
/// DKLs23 signing of a digest under `path` by `signers` (phase `name`), every signature
/// verified; at least 20 runs.
pub fn dkls23_sign_phase(
    name: &'static str,
    runs: usize,
    shares: &BTreeMap<PartyId, DklsKeyShare>,
    signers: &[PartyId],
    path: &DerivationPath,
) -> Result<Phase> {
    let err = |e: mpc_tss::InputError| anyhow!("{e}");
    let first = one(shares)?;
    let t = u16::try_from(signers.len())?;
    let child = first.derive_public_key(path).map_err(err)?;
    let digest: [u8; 32] = Sha256::digest(name.as_bytes()).into();
    measure(
        name,
        3,
        t,
        runs.max(20),
        |run| {
            let e = eid(
                ProtocolKind::Dkls23Sign,
                &format!("bench-{name}-{t}-{run}"),
                signers,
            );
            signers
                .iter()
                .map(|s| {
                    dkls::sign(e, &shares[s], signers, path, SignInput::Digest(digest)).map_err(err)
                })
                .collect()
        },
        |out| verify_ecdsa(&child, &digest, &one(&out)?),
    )
}

fn dkls23_phases(
    runs: usize,
    say: fn(&str),
    committee: &Committee,
    path: &DerivationPath,
) -> Result<Vec<Phase>> {
    let all = committee.parties().to_vec();
    let err = |e: mpc_tss::InputError| anyhow!("{e}");
    let mut phases = Vec::new();
    let mut keys: BTreeMap<u16, BTreeMap<PartyId, DklsKeyShare>> = BTreeMap::new();
    for t in [3u16, 2] {
        say(&format!("dkls23.keygen {t}-of-3"));
        let mut last = BTreeMap::new();
        phases.push(measure(
            "dkls23.keygen",
            3,
            t,
            runs.max(5),
            |run| {
                let e = eid(
                    ProtocolKind::Dkls23Keygen,
                    &format!("bench-dkls-kg-{t}-{run}"),
                    &all,
                );
                all.iter()
                    .map(|p| dkls::keygen(e, *p, committee, t).map_err(err))
                    .collect()
            },
            |out| {
                let first = one(&out)?;
                ensure!(
                    out.values().all(|s| s.public_key() == first.public_key()),
                    "parties disagree on the key"
                );
                last = out;
                Ok(())
            },
        )?);
        keys.insert(t, last);
    }
    for t in [3u16, 2] {
        let shares = keys.get(&t).ok_or_else(|| anyhow!("no {t}-of-3 key"))?;
        let signers = all[..usize::from(t)].to_vec();
        let first = one(shares)?;
        for (name, p) in [
            ("dkls23.sign", DerivationPath::root()),
            ("dkls23.sign_path", path.clone()),
        ] {
            say(&format!("{name} {t}-of-3"));
            phases.push(dkls23_sign_phase(name, runs, shares, &signers, &p)?);
        }
        say(&format!("dkls23.refresh {t}-of-3"));
        let pk = first.public_key();
        phases.push(measure(
            "dkls23.refresh",
            3,
            t,
            runs.max(5),
            |run| {
                let e = eid(
                    ProtocolKind::Dkls23Refresh,
                    &format!("bench-dkls-refresh-{t}-{run}"),
                    &all,
                );
                shares
                    .values()
                    .map(|s| dkls::refresh(e, s).map_err(err))
                    .collect()
            },
            |out| {
                ensure!(
                    out.len() == 3 && out.values().all(|s| s.public_key() == pk),
                    "refresh changed the key"
                );
                Ok(())
            },
        )?);
    }
    let shares = keys.get(&2).ok_or_else(|| anyhow!("no 2-of-3 key"))?;
    let pk = one(shares)?.public_key();
    let lost = *all.last().ok_or_else(|| anyhow!("no parties"))?;
    say("dkls23.repair 2-of-3");
    phases.push(measure(
        "dkls23.repair",
        3,
        2,
        runs.max(5),
        |run| {
            let e = eid(
                ProtocolKind::Dkls23Repair,
                &format!("bench-dkls-repair-{run}"),
                &all,
            );
            let mut sessions = shares
                .values()
                .filter(|s| s.party() != lost)
                .map(|s| dkls::repair_helper(e, s, lost).map_err(err))
                .collect::<Result<Vec<_>>>()?;
            sessions.push(dkls::repair_target(e, lost, committee, 2, pk).map_err(err)?);
            Ok(sessions)
        },
        |out| {
            ensure!(
                out.len() == 3 && out.values().all(|s| s.public_key() == pk),
                "repair changed the key"
            );
            Ok(())
        },
    )?);
    Ok(phases)
}

fn floor_ecdsa(runs: usize) -> Result<Phase> {
    use k256::ecdsa::signature::hazmat::PrehashSigner;
    let sk = k256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let digest: [u8; 32] = Sha256::digest(b"floor").into();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let sig: k256::ecdsa::Signature = sk.sign_prehash(&digest)?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(sig);
    }
    Ok(summarize("floor.ecdsa", 1, 1, times, 0))
}

fn floor_ed25519(runs: usize) -> Result<Phase> {
    use ed25519_dalek::Signer;
    let sk = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let sig = sk.sign(b"floor");
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(sig);
    }
    Ok(summarize("floor.ed25519", 1, 1, times, 0))
}

/// `ecdsa.sign_full`: CGGMP signing of a digest under `path` by `signers` (verified).
pub(crate) fn ecdsa_sign_full_phase(
    runs: usize,
    shares: &BTreeMap<PartyId, EcdsaKeyShare>,
    signers: &[PartyId],
    path: &DerivationPath,
) -> Result<Phase> {
    let first = signers.first().ok_or_else(|| anyhow!("no signers"))?;
    let t = u16::try_from(signers.len())?;
    let child = shares[first]
        .core()
        .derive_public_key(path)
        .map_err(|e| anyhow!("{e}"))?;
    let digest: [u8; 32] = Sha256::digest(b"bench full").into();
    measure(
        "ecdsa.sign_full",
        3,
        t,
        runs,
        |run| {
            let e = eid(
                ProtocolKind::EcdsaSign,
                &format!("bench-sign-{t}-{run}"),
                signers,
            );
            signers
                .iter()
                .map(|p| {
                    ecdsa::sign(e, &shares[p], signers, path, SignInput::Digest(digest))
                        .map_err(|e| anyhow!("{e}"))
                })
                .collect()
        },
        |out| verify_ecdsa(&child, &digest, &one(&out)?),
    )
}

/// `eddsa.sign`: FROST ed25519 signing under `path` by `signers` (verified).
pub(crate) fn eddsa_sign_phase(
    runs: usize,
    ed: &BTreeMap<PartyId, EddsaKeyShare>,
    signers: &[PartyId],
    path: &DerivationPath,
) -> Result<Phase> {
    let first = signers.first().ok_or_else(|| anyhow!("no signers"))?;
    let t = u16::try_from(signers.len())?;
    let ed_child = ed[first]
        .derive_public_key(path)
        .map_err(|e| anyhow!("{e}"))?;
    measure(
        "eddsa.sign",
        3,
        t,
        runs,
        |run| {
            let e = eid(
                ProtocolKind::EddsaSign,
                &format!("bench-ed-{t}-{run}"),
                signers,
            );
            signers
                .iter()
                .map(|p| {
                    frost::eddsa_sign(e, &ed[p], signers, path, b"bench eddsa")
                        .map_err(|e| anyhow!("{e}"))
                })
                .collect()
        },
        |out| {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&ed_child)?;
            vk.verify_strict(
                b"bench eddsa",
                &ed25519_dalek::Signature::from_bytes(&one(&out)?.0),
            )?;
            Ok(())
        },
    )
}

/// Which Schnorr flavour [`schnorr_sign_phase`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchnorrKind {
    /// `bip340.sign`: untweaked BIP340.
    Bip340,
    /// `taproot.sign`: key-path Taproot (no script root).
    Taproot,
}

/// `bip340.sign` / `taproot.sign` from the secp256k1 core shares (verified).
pub(crate) fn schnorr_sign_phase(
    kind: SchnorrKind,
    runs: usize,
    core: &BTreeMap<PartyId, EcdsaCoreShare>,
    signers: &[PartyId],
    path: &DerivationPath,
) -> Result<Phase> {
    let first = signers.first().ok_or_else(|| anyhow!("no signers"))?;
    let t = u16::try_from(signers.len())?;
    let sighash: [u8; 32] = Sha256::digest(b"bench schnorr").into();
    let (name, key) = match kind {
        SchnorrKind::Bip340 => (
            "bip340.sign",
            frost::bip340_public_key(&core[first], path).map_err(|e| anyhow!("{e}"))?,
        ),
        SchnorrKind::Taproot => (
            "taproot.sign",
            frost::taproot_output_key(&core[first], path, None).map_err(|e| anyhow!("{e}"))?,
        ),
    };
    measure(
        name,
        3,
        t,
        runs,
        |run| {
            signers
                .iter()
                .map(|p| {
                    let r = match kind {
                        SchnorrKind::Bip340 => frost::bip340_sign(
                            eid(
                                ProtocolKind::Bip340Sign,
                                &format!("bench-b340-{t}-{run}"),
                                signers,
                            ),
                            &core[p],
                            signers,
                            path,
                            &sighash,
                        ),
                        SchnorrKind::Taproot => frost::taproot_sign(
                            eid(
                                ProtocolKind::TaprootSign,
                                &format!("bench-tr-{t}-{run}"),
                                signers,
                            ),
                            &core[p],
                            signers,
                            path,
                            &sighash,
                            None,
                        ),
                    };
                    r.map_err(|e| anyhow!("{e}"))
                })
                .collect()
        },
        |out| verify_schnorr(&key, &sighash, &one(&out)?),
    )
}

/// The floor a phase is compared with (`None` for key generation and aux info).
pub fn floor_of(name: &str) -> Option<&'static str> {
    match name {
        "ecdsa.sign_full" | "ecdsa.sign_online" | "ecdsa.presign" | "bip340.sign"
        | "taproot.sign" | "dkls23.sign" | "dkls23.sign_path" => Some("floor.ecdsa"),
        "eddsa.sign" => Some("floor.ed25519"),
        _ => None,
    }
}

/// A readable table with ratios to the floor.
pub fn table(report: &Report) -> String {
    let mut s = format!("machine: {}\n\n", report.machine);
    s.push_str(&format!(
        "| {:<22} | {:>3} | {:>4} | {:>11} | {:>11} | {:>11} | {:>13} | {:>12} |\n",
        "phase", "t/n", "runs", "median ms", "min ms", "max ms", "bytes/party", "x floor"
    ));
    s.push_str(&format!(
        "|{:-<24}|{:-<5}|{:-<6}|{:-<13}|{:-<13}|{:-<13}|{:-<15}|{:-<14}|\n",
        "", "", "", "", "", "", "", ""
    ));
    for p in &report.phases {
        let ratio = floor_of(&p.name)
            .and_then(|f| report.phases.iter().find(|q| q.name == f))
            .filter(|f| f.median_ms > 0.0)
            .map(|f| format!("{:.0}", p.median_ms / f.median_ms))
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "| {:<22} | {:>3} | {:>4} | {:>11.3} | {:>11.3} | {:>11.3} | {:>13} | {:>12} |\n",
            p.name,
            format!("{}/{}", p.threshold, p.parties),
            p.runs,
            p.median_ms,
            p.min_ms,
            p.max_ms,
            p.bytes_per_party,
            ratio
        ));
    }
    s
}

/// Parses `mpc-bench` arguments: `protocols [--json FILE] [--quick] [--runs N] [--primes FILE]`.
pub fn parse_args(args: &[String]) -> Result<(Options, Option<String>)> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("protocols") => {}
        Some("help") | Some("--help") | Some("-h") | None => {
            bail!("{USAGE}\n\n{}", e2e::USAGE)
        }
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}\n\n{}", e2e::USAGE),
    }
    let mut opts = Options {
        runs: 5,
        skip_fresh_aux: false,
        primes: None,
        only_dkls23: false,
        progress: |m| eprintln!("{m}"),
    };
    let mut json = None;
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => {
                json = Some(
                    it.next()
                        .ok_or_else(|| anyhow!("--json needs a file"))?
                        .clone(),
                )
            }
            "--only-dkls23" => opts.only_dkls23 = true,
            "--quick" => {
                opts.runs = 3;
                opts.skip_fresh_aux = true;
            }
            "--runs" => {
                opts.runs = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| anyhow!("--runs needs a positive number"))?;
            }
            "--primes" => {
                let file = it.next().ok_or_else(|| anyhow!("--primes needs a file"))?;
                let text = std::fs::read_to_string(file).with_context(|| format!("read {file}"))?;
                opts.primes = Some(
                    serde_json::from_str(&text)
                        .with_context(|| format!("{file}: not a JSON list of prime sets"))?,
                );
            }
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    Ok((opts, json))
}

/// Usage text.
pub const USAGE: &str =
    "usage: mpc-bench protocols [--json FILE] [--quick] [--runs N] [--primes FILE] [--only-dkls23]

  Runs every protocol with all parties in one process and prints a table:
  median/min/max wall time of a run, bytes sent per party, ratio to the single-key floor.
  --json FILE   also write the figures as JSON
  --quick       3 runs per phase, skip ecdsa.aux_info.fresh (minutes of prime generation)
  --runs N      runs per phase (default 5)
  --primes FILE prime sets (JSON list) for the pooled aux-info phase, else generated first
  --only-dkls23  only the single-key floor and the DKLs23 phases (seconds, no primes)";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_only_dkls23_and_refuses_unknown_options() {
        let (opts, json) =
            parse_args(&args(&["protocols", "--only-dkls23", "--runs", "4"])).unwrap();
        assert!(opts.only_dkls23);
        assert_eq!(opts.runs, 4);
        assert!(json.is_none());
        let (opts, _) = parse_args(&args(&["protocols"])).unwrap();
        assert!(!opts.only_dkls23);
        assert!(parse_args(&args(&["protocols", "--only"])).is_err());
        assert_eq!(floor_of("dkls23.sign_path"), Some("floor.ecdsa"));
        assert_eq!(floor_of("dkls23.keygen"), None);
    }
}
