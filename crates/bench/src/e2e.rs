//! # `mpc-bench e2e`: the whole system, end to end
//!
//! Starts a devnet (the platform, nodes a, b, c and the callback demo as real processes on
//! 127.0.0.1, through [`mpc_devnet::Cluster`]; this binary is their multi-call executable), one
//! whose organization signs ECDSA with DKLs23 (EdDSA, BIP340 and Taproot run there too) and,
//! for `ecdsa-cggmp`, one with CGGMP24, waits for its keys, then for each algorithm and each concurrency sends N signing requests through
//! the WaaS API and waits for each result. Every signature is verified independently
//! ([`mpc_devnet::scenario::Signer::check`]: k256, ed25519-dalek); a request that fails or does
//! not verify is counted as failed, never timed as a success.
//!
//! What a figure means:
//! * latency: submit (`sign_raw_data`) to the `sign_result` answer that says done. By default
//!   the result is asked for with long polls (`waitMs`, answered when the request ends), so a
//!   latency is exact and a request costs one or two `sign_result` calls. With `--poll-ms MS`
//!   it is polled instead, every MS for the first 40 ms of a request and then every 1/20 of its
//!   age (at least MS, at most 100 ms or MS), so a latency is overstated by at most 5 % (or MS).
//!   The count of `sign_result` calls is reported.
//! * throughput: requests completed per second of wall time of the phase.
//! * CPU seconds per process: user + system time from `/proc/PID/stat` (USER_HZ = 100 on Linux)
//!   spent during the phase, for every devnet process and this client.
//! * peak RSS per process: `VmHWM` of `/proc/PID/status`, reset before each phase by writing 5
//!   to `/proc/PID/clear_refs` (where the kernel refuses, the figure is the lifetime peak).
//! * library time: the same operation with every party in this process, one after another
//!   ([`library_reference`]), measured in the same run; `ratio` is the end-to-end p50 at
//!   concurrency 1 over it.
//! * platform shapes (`--scale 1,2`): the same phases on a devnet whose platform runs as
//!   separate coordinator and proxy processes (N of each) on PostgreSQL and nats-server
//!   (`mpc-devnet --scale`); the API calls go to the coordinators in turn (a load balancer's
//!   round robin); the engines' CPU is counted (PostgreSQL with its session
//!   processes), and `scale_ratios` gives each shape's throughput over the first shape's at the
//!   same algorithm and concurrency.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use mpc_api::types::SignState;
use mpc_api::types::admin::EcdsaProtocol;
use mpc_devnet::scenario::{Job, Signer};
use mpc_devnet::{Cluster, Options as DevnetOptions};
use mpc_tss::dkls::{self, DklsKeyShare};
use mpc_tss::ecdsa::{self, EcdsaCoreShare, EcdsaKeyShare};
use mpc_tss::frost::{self, EddsaKeyShare};
use mpc_tss::primes::SecretPrimes;
use mpc_tss::{Committee, DerivationPath, PartyId, ProtocolKind, sim};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Phase, SchnorrKind, eid, machine, party};

/// An algorithm the benchmark signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// ECDSA secp256k1 on DKLs23 (the platform's default), a raw digest (sign_type 3).
    EcdsaDkls23,
    /// ECDSA secp256k1 on CGGMP (cggmp24), a raw digest (sign_type 3).
    EcdsaCggmp,
    /// EdDSA ed25519 (FROST), a raw message.
    Eddsa,
    /// BIP340 Schnorr (FROST), untweaked.
    Bip340,
    /// Taproot key path (FROST), no script root.
    Taproot,
}

impl Algorithm {
    /// Every algorithm the devnet's nodes sign with.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::EcdsaDkls23,
        Algorithm::EcdsaCggmp,
        Algorithm::Eddsa,
        Algorithm::Bip340,
        Algorithm::Taproot,
    ];

    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaDkls23 => "ecdsa-dkls23",
            Algorithm::EcdsaCggmp => "ecdsa-cggmp",
            Algorithm::Eddsa => "eddsa",
            Algorithm::Bip340 => "bip340",
            Algorithm::Taproot => "taproot",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                anyhow!(
                    "unknown algorithm {s:?} (one of {})",
                    Self::ALL.map(Algorithm::name).join(", ")
                )
            })
    }

    /// The organization protocol of the devnet that signs this (CGGMP only for
    /// [`Algorithm::EcdsaCggmp`]; the others run where ECDSA is DKLs23, Schnorr from its share).
    fn devnet_protocol(self) -> EcdsaProtocol {
        match self {
            Algorithm::EcdsaCggmp => EcdsaProtocol::Cggmp24,
            _ => EcdsaProtocol::Dkls23,
        }
    }

    /// The `i`-th request of a phase: a different message each time.
    fn job(self, tag: &str, i: usize) -> Job {
        let h: [u8; 32] = Sha256::digest(format!("mpc-bench e2e {tag} {i}")).into();
        match self {
            Algorithm::EcdsaDkls23 | Algorithm::EcdsaCggmp => Job::EcdsaRaw {
                path: "m/1/1/60/0".into(),
                digest: h,
            },
            Algorithm::Eddsa => Job::EddsaRaw {
                path: "m/1/1/501/0".into(),
                message: h.to_vec(),
            },
            Algorithm::Bip340 => Job::Bip340 {
                path: "m/1/1/0/0".into(),
                msg: h,
            },
            Algorithm::Taproot => Job::Taproot {
                path: "m/1/1/0/0".into(),
                msg: h,
                root: None,
            },
        }
    }
}

/// Options of `mpc-bench e2e`.
#[derive(Debug, Clone)]
pub struct E2eOptions {
    /// Requests per algorithm and concurrency (Schnorr and EdDSA).
    pub requests: usize,
    /// Requests per concurrency for CGGMP ECDSA (each costs seconds of CPU).
    pub cggmp_requests: usize,
    /// Concurrency levels (requests in flight).
    pub concurrency: Vec<usize>,
    /// Algorithms, in this order.
    pub algorithms: Vec<Algorithm>,
    /// Devnet directory (default: a fresh temporary one, removed afterwards).
    pub dir: Option<PathBuf>,
    /// First polling step of `sign_result`; zero: long polls.
    pub poll: Duration,
    /// Runs of each in-process library reference.
    pub lib_runs: usize,
    /// Signing threshold of the devnet's keys (3 = 3-of-3).
    pub threshold: u16,
    /// Platform shapes, each measured on its own devnet, in this order.
    pub platforms: Vec<PlatformShape>,
}

/// How the devnet's platform runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformShape {
    /// One process with both roles, SQLite, in-process bus (`mpc-devnet`).
    Single,
    /// N coordinator processes and N proxy processes on PostgreSQL and nats-server
    /// (`mpc-devnet --scale --replicas N`).
    Scaled(usize),
}

impl PlatformShape {
    /// `single`, `scale-N`.
    pub fn name(self) -> String {
        match self {
            Self::Single => "single".into(),
            Self::Scaled(n) => format!("scale-{n}"),
        }
    }
}

impl Default for E2eOptions {
    fn default() -> Self {
        Self {
            requests: 200,
            cggmp_requests: 20,
            concurrency: vec![1, 16],
            algorithms: Algorithm::ALL.to_vec(),
            dir: None,
            poll: Duration::ZERO,
            lib_runs: 5,
            threshold: 3,
            platforms: vec![PlatformShape::Single],
        }
    }
}

/// CPU time and peak memory of one process over one phase.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessCost {
    /// `platform`, `callback`, `node-a`, …, `client` (this process).
    pub process: String,
    /// User + system CPU seconds spent during the phase.
    pub cpu_s: f64,
    /// Peak resident memory during the phase (lifetime peak where it could not be reset), MiB.
    pub peak_rss_mib: f64,
}

/// One algorithm at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct E2ePhase {
    /// Platform shape ([`PlatformShape::name`]).
    pub platform: String,
    /// Algorithm.
    pub algorithm: Algorithm,
    /// Requests in flight.
    pub concurrency: usize,
    /// Requests sent.
    pub requests: usize,
    /// Requests done with a signature that verified.
    pub verified: usize,
    /// Requests that failed, or whose signature did not verify (the first reason is in
    /// `first_failure`).
    pub failed: usize,
    /// The first failure, if any.
    pub first_failure: Option<String>,
    /// Latency percentiles of verified requests, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Verified requests per second of wall time.
    pub throughput_per_s: f64,
    /// Wall time of the phase, s.
    pub wall_s: f64,
    /// `sign_result` calls made.
    pub polls: u64,
    /// CPU seconds of every process over the phase, summed.
    pub cpu_s_total: f64,
    /// CPU seconds per verified signature, all processes.
    pub cpu_s_per_signature: f64,
    /// Per process.
    pub processes: Vec<ProcessCost>,
    /// Scaled platform only: what one verified signature cost the engines, measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engines: Option<EngineCost>,
}

/// Messages and database writes per verified signature over a phase (scaled platform).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EngineCost {
    /// Messages published to nats-server.
    pub bus_messages_in: f64,
    /// Messages nats-server delivered (a message to several subscribers counts once each).
    pub bus_messages_out: f64,
    /// PostgreSQL transactions that wrote.
    pub db_write_transactions: f64,
    /// Bytes of PostgreSQL write-ahead log.
    pub db_wal_bytes: f64,
}

/// The whole report (`--json` writes exactly this).
#[derive(Debug, Clone, Serialize)]
pub struct E2eReport {
    /// CPU model and cores.
    pub machine: String,
    /// `t-of-3`.
    pub keys: String,
    /// First polling step, ms; 0: long polls.
    pub poll_ms: u64,
    /// Measured phases.
    pub phases: Vec<E2ePhase>,
    /// In-process library figures of the same operations (all parties in this process).
    pub library: Vec<Phase>,
    /// Per algorithm: end-to-end p50 at concurrency 1 / library median (first platform shape).
    pub ratios: BTreeMap<String, f64>,
    /// `"<algorithm> c<concurrency> <shape>/<first shape>"`: throughput ratio between platform
    /// shapes measured in this run.
    pub scale_ratios: BTreeMap<String, f64>,
}

/// Runs the benchmark. `say` prints progress.
pub async fn run(opts: &E2eOptions, say: fn(&str)) -> Result<E2eReport> {
    ensure!(
        opts.requests >= 1 && opts.cggmp_requests >= 1,
        "at least one request"
    );
    ensure!(
        !opts.concurrency.is_empty() && opts.concurrency.iter().all(|c| *c >= 1),
        "concurrency levels must be at least 1"
    );
    ensure!(!opts.algorithms.is_empty(), "no algorithm chosen");
    ensure!(!opts.platforms.is_empty(), "no platform shape chosen");
    let mut phases = Vec::new();
    for shape in &opts.platforms {
        for protocol in [EcdsaProtocol::Dkls23, EcdsaProtocol::Cggmp24] {
            let algs: Vec<Algorithm> = opts
                .algorithms
                .iter()
                .copied()
                .filter(|a| a.devnet_protocol() == protocol)
                .collect();
            if algs.is_empty() {
                continue;
            }
            phases.extend(devnet_phases(opts, *shape, protocol, &algs, say).await?);
        }
    }
    // The report keeps the order the shapes and algorithms were asked in.
    phases.sort_by_key(|p| {
        (
            opts.platforms
                .iter()
                .position(|s| s.name() == p.platform)
                .unwrap_or(usize::MAX),
            opts.algorithms
                .iter()
                .position(|a| *a == p.algorithm)
                .unwrap_or(usize::MAX),
        )
    });
    let first = opts.platforms[0].name();
    let mut scale_ratios = BTreeMap::new();
    for p in phases.iter().filter(|p| p.platform != first) {
        if let Some(base) = phases.iter().find(|b| {
            b.platform == first && b.algorithm == p.algorithm && b.concurrency == p.concurrency
        }) && base.throughput_per_s > 0.0
        {
            scale_ratios.insert(
                format!(
                    "{} c{} {}/{}",
                    p.algorithm.name(),
                    p.concurrency,
                    p.platform,
                    first
                ),
                p.throughput_per_s / base.throughput_per_s,
            );
        }
    }

    say("in-process library reference (all parties in this process, one after another)");
    let algs = opts.algorithms.clone();
    let (lib_runs, t) = (opts.lib_runs, opts.threshold);
    let library = tokio::task::spawn_blocking(move || library_reference(&algs, t, lib_runs))
        .await
        .context("library reference thread")??;
    let mut ratios = BTreeMap::new();
    for alg in &opts.algorithms {
        let lib = library.iter().find(|p| p.name == library_phase(*alg));
        let e2e = phases.iter().find(|p| {
            p.platform == first && p.algorithm == *alg && p.concurrency == 1 && p.verified > 0
        });
        if let (Some(l), Some(e)) = (lib, e2e)
            && l.median_ms > 0.0
        {
            ratios.insert(alg.name().to_owned(), e.p50_ms / l.median_ms);
        }
    }
    Ok(E2eReport {
        machine: machine(),
        keys: format!("{}-of-3", opts.threshold),
        poll_ms: u64::try_from(opts.poll.as_millis()).unwrap_or(u64::MAX),
        phases,
        library,
        ratios,
        scale_ratios,
    })
}

/// One devnet whose organization signs ECDSA with `protocol`: every phase of `algs` on it.
async fn devnet_phases(
    opts: &E2eOptions,
    shape: PlatformShape,
    protocol: EcdsaProtocol,
    algs: &[Algorithm],
    say: fn(&str),
) -> Result<Vec<E2ePhase>> {
    let tmp;
    let dir = match (&opts.dir, shape) {
        (Some(d), PlatformShape::Single) => d.join(protocol.name()),
        (Some(d), shape) => d.join(format!("{}-{}", shape.name(), protocol.name())),
        (None, _) => {
            tmp = TempDir::new()?;
            tmp.0.clone()
        }
    };
    let mut dopts = DevnetOptions::new(&dir);
    dopts.ecdsa = Some(protocol);
    if let PlatformShape::Scaled(n) = shape {
        dopts.scale = Some(mpc_devnet::cluster::Scale::replicas(n));
    }
    // Both devnets preload the published test primes: CGGMP24 needs them for its aux info, and
    // with them no node runs its background prime filler, whose idle-priority CPU would
    // otherwise be counted in every phase's CPU seconds.
    dopts.test_primes = true;
    dopts.fast_kdf = true;
    dopts.threshold = opts.threshold;
    dopts.quiet = true;
    dopts.log_level = "warn".into();
    say(&format!(
        "starting a devnet in {} ({}, nodes a b c, callback demo; ECDSA {protocol}{})",
        dir.display(),
        match shape {
            PlatformShape::Single => "one platform process".to_owned(),
            PlatformShape::Scaled(n) =>
                format!("{n} coordinator and {n} proxy processes on PostgreSQL and nats-server"),
        },
        if protocol == EcdsaProtocol::Cggmp24 {
            ", published test primes"
        } else {
            ""
        }
    ));
    let started = Instant::now();
    let mut cluster = Cluster::start(dopts).await?;
    say("waiting for the keys");
    let keys = cluster.wait_keys().await?;
    say(&format!(
        "  keys ready {:.1} s after the start",
        started.elapsed().as_secs_f64()
    ));
    let mut signer = mpc_devnet::scenario::signer(&mut cluster, &keys).await?;
    // Several coordinators: the requests go to each in turn, as behind a load balancer.
    signer.api = signer.api.clone().spread();
    let mut processes = cluster.processes();
    processes.extend(cluster.engine_processes());
    processes.push(("client".into(), std::process::id()));
    let mut phases = Vec::new();
    for alg in algs {
        let n = if *alg == Algorithm::EcdsaCggmp {
            opts.cggmp_requests
        } else {
            opts.requests
        };
        for c in &opts.concurrency {
            say(&format!(
                "{} {}: {n} requests at concurrency {c}",
                shape.name(),
                alg.name()
            ));
            let before = cluster.engine_counters()?;
            let mut p = phase(&signer, *alg, n, *c, opts.poll, &processes).await?;
            p.platform = shape.name();
            if let (Some(a), Some(b)) = (before, cluster.engine_counters()?)
                && p.verified > 0
            {
                let per = |x: u64, y: u64| y.saturating_sub(x) as f64 / p.verified as f64;
                p.engines = Some(EngineCost {
                    bus_messages_in: per(a.bus_messages_in, b.bus_messages_in),
                    bus_messages_out: per(a.bus_messages_out, b.bus_messages_out),
                    db_write_transactions: per(a.db_write_transactions, b.db_write_transactions),
                    db_wal_bytes: per(a.db_wal_bytes, b.db_wal_bytes),
                });
            }
            say(&format!(
                "  p50 {:.1} ms  p95 {:.1} ms  {:.1}/s  {} verified, {} failed",
                p.p50_ms, p.p95_ms, p.throughput_per_s, p.verified, p.failed
            ));
            phases.push(p);
        }
    }
    cluster.shutdown();
    drop(cluster);
    Ok(phases)
}

/// The `mpc-bench protocols` phase measuring the same operation as `alg`.
pub fn library_phase(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::EcdsaDkls23 => "dkls23.sign_path",
        Algorithm::EcdsaCggmp => "ecdsa.sign_full",
        Algorithm::Eddsa => "eddsa.sign",
        Algorithm::Bip340 => "bip340.sign",
        Algorithm::Taproot => "taproot.sign",
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let d = std::env::temp_dir().join(format!(
            "mpc-bench-e2e-{}-{}",
            std::process::id(),
            mpc_devnet::cluster::unix_ms()
        ));
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        Ok(Self(d))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Sends `n` requests of `alg`, `c` in flight at a time; verifies every signature.
async fn phase(
    signer: &Signer,
    alg: Algorithm,
    n: usize,
    c: usize,
    poll: Duration,
    processes: &[(String, u32)],
) -> Result<E2ePhase> {
    let tag = format!("{}-{}-c{c}", alg.name(), mpc_devnet::cluster::unix_ms());
    // The public key of the path (the same for every request of the phase).
    let mut s = signer.clone();
    let pubkey = Arc::new(s.public_key(&alg.job(&tag, 0)).await?);
    // A listed process's children that are listed themselves (the devnet's processes are
    // children of this client) are counted once, as themselves.
    let listed: Vec<u32> = processes.iter().map(|(_, pid)| *pid).collect();
    let before: Vec<(String, Option<u64>)> = processes
        .iter()
        .map(|(name, pid)| {
            reset_peak_rss(*pid);
            (name.clone(), cpu_ticks_with_children(*pid, &listed))
        })
        .collect();
    let polls = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..c.min(n) {
        let (signer, tag, pubkey) = (signer.clone(), tag.clone(), Arc::clone(&pubkey));
        let (polls, next) = (Arc::clone(&polls), Arc::clone(&next));
        workers.spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(usize::MAX);
                if i >= n {
                    break;
                }
                let job = alg.job(&tag, i);
                out.push(one_request(&signer, &job, &tag, i, &pubkey, poll, &polls).await);
            }
            out
        });
    }
    let mut latencies = Vec::new();
    let mut failed = 0;
    let mut first_failure = None;
    while let Some(r) = workers.join_next().await {
        for r in r.context("request worker")? {
            match r {
                Ok(ms) => latencies.push(ms),
                Err(e) => {
                    failed += 1;
                    first_failure.get_or_insert(e);
                }
            }
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    let costs: Vec<ProcessCost> = before
        .into_iter()
        .zip(processes)
        .map(|((name, t0), (_, pid))| ProcessCost {
            process: name,
            cpu_s: match (t0, cpu_ticks_with_children(*pid, &listed)) {
                (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 100.0,
                _ => 0.0,
            },
            peak_rss_mib: peak_rss_kib(*pid).unwrap_or(0) as f64 / 1024.0,
        })
        .collect();
    let cpu_s_total: f64 = costs.iter().map(|c| c.cpu_s).sum();
    latencies.sort_by(f64::total_cmp);
    let verified = latencies.len();
    Ok(E2ePhase {
        platform: String::new(),
        algorithm: alg,
        concurrency: c,
        requests: n,
        verified,
        failed,
        first_failure,
        p50_ms: percentile(&latencies, 50.0),
        p95_ms: percentile(&latencies, 95.0),
        p99_ms: percentile(&latencies, 99.0),
        throughput_per_s: if wall_s > 0.0 {
            verified as f64 / wall_s
        } else {
            0.0
        },
        wall_s,
        polls: polls.load(Ordering::Relaxed),
        cpu_s_total,
        cpu_s_per_signature: if verified > 0 {
            cpu_s_total / verified as f64
        } else {
            0.0
        },
        processes: costs,
        engines: None,
    })
}

/// One request: submit, poll until done or failed (bounded by the signer's timeout), verify.
/// `Ok(latency ms)` only for a verified signature.
async fn one_request(
    signer: &Signer,
    job: &Job,
    tag: &str,
    i: usize,
    pubkey: &[u8],
    poll: Duration,
    polls: &AtomicU64,
) -> std::result::Result<f64, String> {
    let request_id = format!("bench-{tag}-{i}");
    let (_, digest, _) = Signer::expected(job, pubkey).map_err(|e| format!("{e:#}"))?;
    let start = Instant::now();
    signer
        .submit(job, &request_id)
        .await
        .map_err(|e| format!("{request_id}: submit: {e:#}"))?;
    let deadline = start + signer.result_timeout;
    let result = loop {
        let wait = if poll.is_zero() {
            deadline.saturating_duration_since(Instant::now())
        } else {
            let age = start.elapsed();
            let step = if age < Duration::from_millis(40) {
                poll
            } else {
                (age / 20).clamp(poll, poll.max(Duration::from_millis(100)))
            };
            tokio::time::sleep(step).await;
            Duration::ZERO
        };
        polls.fetch_add(1, Ordering::Relaxed);
        let asked = Instant::now();
        let r = signer
            .api
            .sign_result_waiting(&request_id, wait)
            .await
            .map_err(|e| format!("{request_id}: sign_result: {e}"))?;
        if r.state != SignState::Pending {
            break r;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{request_id}: still pending after {} s",
                signer.result_timeout.as_secs()
            ));
        }
        if !wait.is_zero() && asked.elapsed() < Duration::from_millis(2) {
            // Answered at once although a wait was asked for (no free waiting slot).
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if result.state != SignState::Done {
        return Err(format!(
            "{request_id}: {:?}: {}",
            result.state, result.failed_reason
        ));
    }
    let sig = hex::decode(result.signature.trim_start_matches("0x"))
        .map_err(|_| format!("{request_id}: the signature is not hex"))?;
    Signer::check(job, pubkey, &digest, &sig)
        .map_err(|e| format!("{request_id}: signature does not verify: {e}"))?;
    Ok(ms)
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// utime + stime of a process in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 → index 11, stime → 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// [`cpu_ticks`] of a process plus its live direct children that are not in `measured`
/// (PostgreSQL's sessions are children of the postmaster; the devnet's processes are
/// children of the client, and measured on their own).
fn cpu_ticks_with_children(pid: u32, measured: &[u32]) -> Option<u64> {
    let own = cpu_ticks(pid)?;
    let children: u64 = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| parent_pid(*child) == Some(pid) && !measured.contains(child))
        .filter_map(cpu_ticks)
        .sum();
    Some(own + children)
}

/// Field 4 of `/proc/PID/stat`.
fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The same signing operations as `algs`, every party in this process (t-of-3 keys made here;
/// the CGGMP aux info from the published test primes), `runs` timed runs each, every signature
/// verified.
pub fn library_reference(algs: &[Algorithm], t: u16, runs: usize) -> Result<Vec<Phase>> {
    let committee =
        Committee::new(vec![party("a")?, party("b")?, party("c")?]).map_err(|e| anyhow!("{e}"))?;
    let all = committee.parties().to_vec();
    let signers = all[..usize::from(t)].to_vec();
    let mut out = Vec::new();
    let needs_secp = algs.iter().any(|a| {
        matches!(
            a,
            Algorithm::EcdsaCggmp | Algorithm::Bip340 | Algorithm::Taproot
        )
    });
    let core: BTreeMap<PartyId, EcdsaCoreShare> = if needs_secp {
        let e = eid(ProtocolKind::EcdsaKeygen, "bench-e2e-ref-kg", &all);
        let sessions = all
            .iter()
            .map(|p| ecdsa::keygen(e, *p, &committee, t).map_err(|e| anyhow!("{e}")))
            .collect::<Result<Vec<_>>>()?;
        sim::run(sessions)
            .map_err(|e| anyhow!("reference keygen: {e:?}"))?
            .outputs
    } else {
        BTreeMap::new()
    };
    for alg in algs {
        let path: DerivationPath = alg
            .job("ref", 0)
            .path()
            .parse()
            .map_err(|e| anyhow!("{e}"))?;
        match alg {
            Algorithm::EcdsaDkls23 => {
                let e = eid(ProtocolKind::Dkls23Keygen, "bench-e2e-ref-dkg", &all);
                let sessions = all
                    .iter()
                    .map(|p| dkls::keygen(e, *p, &committee, t).map_err(|e| anyhow!("{e}")))
                    .collect::<Result<Vec<_>>>()?;
                let shares: BTreeMap<PartyId, DklsKeyShare> = sim::run(sessions)
                    .map_err(|e| anyhow!("reference dkls23 keygen: {e:?}"))?
                    .outputs;
                out.push(crate::dkls23_sign_phase(
                    "dkls23.sign_path",
                    runs,
                    &shares,
                    &signers,
                    &path,
                )?);
            }
            Algorithm::EcdsaCggmp => {
                let primes: Vec<SecretPrimes> = serde_json::from_str(mpc_devnet::TEST_PRIMES_JSON)
                    .context("the published test primes")?;
                ensure!(primes.len() >= 3, "need 3 test prime sets");
                let e = eid(ProtocolKind::EcdsaAuxInfo, "bench-e2e-ref-aux", &all);
                let sessions = all
                    .iter()
                    .zip(primes)
                    .map(|(p, pr)| {
                        ecdsa::aux_info(e, *p, &committee, pr).map_err(|e| anyhow!("{e}"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let aux = sim::run(sessions)
                    .map_err(|e| anyhow!("reference aux info: {e:?}"))?
                    .outputs;
                let shares = core
                    .iter()
                    .map(|(p, c)| {
                        let a = aux.get(p).ok_or_else(|| anyhow!("no aux info for {p}"))?;
                        Ok((
                            *p,
                            EcdsaKeyShare::new(c.clone(), a.clone()).map_err(|e| anyhow!("{e}"))?,
                        ))
                    })
                    .collect::<Result<BTreeMap<_, _>>>()?;
                out.push(crate::ecdsa_sign_full_phase(
                    runs, &shares, &signers, &path,
                )?);
            }
            Algorithm::Eddsa => {
                let e = eid(ProtocolKind::EddsaKeygen, "bench-e2e-ref-ekg", &all);
                let sessions = all
                    .iter()
                    .map(|p| frost::eddsa_keygen(e, *p, &committee, t).map_err(|e| anyhow!("{e}")))
                    .collect::<Result<Vec<_>>>()?;
                let ed: BTreeMap<PartyId, EddsaKeyShare> = sim::run(sessions)
                    .map_err(|e| anyhow!("reference eddsa keygen: {e:?}"))?
                    .outputs;
                out.push(crate::eddsa_sign_phase(runs, &ed, &signers, &path)?);
            }
            Algorithm::Bip340 => out.push(crate::schnorr_sign_phase(
                SchnorrKind::Bip340,
                runs,
                &core,
                &signers,
                &path,
            )?),
            Algorithm::Taproot => out.push(crate::schnorr_sign_phase(
                SchnorrKind::Taproot,
                runs,
                &core,
                &signers,
                &path,
            )?),
        }
    }
    Ok(out)
}

/// A readable table of the report.
pub fn table(r: &E2eReport) -> String {
    let results = if r.poll_ms == 0 {
        "results: long polls".to_owned()
    } else {
        format!("first poll step: {} ms", r.poll_ms)
    };
    let mut s = format!("machine: {}   keys: {}   {results}\n\n", r.machine, r.keys);
    s.push_str("| platform | algorithm | conc. | requests | verified | failed | p50 ms | p95 ms | p99 ms | signatures/s | CPU s/signature | peak RSS MiB (max process) |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for p in &r.phases {
        let rss = p
            .processes
            .iter()
            .filter(|c| c.process != "client")
            .map(|c| (c.peak_rss_mib, c.process.as_str()))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(m, n)| format!("{m:.0} ({n})"))
            .unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.3} | {} |\n",
            p.platform,
            p.algorithm.name(),
            p.concurrency,
            p.requests,
            p.verified,
            p.failed,
            p.p50_ms,
            p.p95_ms,
            p.p99_ms,
            p.throughput_per_s,
            p.cpu_s_per_signature,
            rss
        ));
    }
    if !r.scale_ratios.is_empty() {
        s.push_str("\nThroughput between platform shapes (same algorithm and concurrency):\n\n| phase | ratio |\n|---|---|\n");
        for (k, v) in &r.scale_ratios {
            s.push_str(&format!("| {k} | {v:.2} |\n"));
        }
    }
    if r.phases.iter().any(|p| p.engines.is_some()) {
        s.push_str("\nEngines per verified signature (scaled platform; the polls of sign_result included):\n\n| platform | algorithm | conc. | NATS msgs in | NATS msgs out | PG write transactions | PG WAL bytes |\n|---|---|---|---|---|---|---|\n");
        for p in &r.phases {
            if let Some(e) = &p.engines {
                s.push_str(&format!(
                    "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.0} |\n",
                    p.platform,
                    p.algorithm.name(),
                    p.concurrency,
                    e.bus_messages_in,
                    e.bus_messages_out,
                    e.db_write_transactions,
                    e.db_wal_bytes
                ));
            }
        }
        s.push_str("\nCPU seconds per process, by platform shape (summed over its phases):\n\n| platform | process | CPU s |\n|---|---|---|\n");
        let mut sums: BTreeMap<(String, String), f64> = BTreeMap::new();
        for p in &r.phases {
            for c in &p.processes {
                *sums
                    .entry((p.platform.clone(), c.process.clone()))
                    .or_default() += c.cpu_s;
            }
        }
        for ((platform, process), cpu) in sums {
            s.push_str(&format!("| {platform} | {process} | {cpu:.2} |\n"));
        }
    }
    s.push_str("\nIn-process library (all parties in one process, one after another):\n\n");
    s.push_str("| algorithm | phase | runs | median ms | end-to-end p50 (conc. 1) / library |\n|---|---|---|---|---|\n");
    for alg in Algorithm::ALL {
        if let Some(l) = r.library.iter().find(|p| p.name == library_phase(alg)) {
            s.push_str(&format!(
                "| {} | {} | {} | {:.3} | {} |\n",
                alg.name(),
                l.name,
                l.runs,
                l.median_ms,
                r.ratios
                    .get(alg.name())
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "-".into())
            ));
        }
    }
    s
}

/// Parses `e2e` options (after the word `e2e`): returns the options and the JSON file.
pub fn parse_args(args: &[String]) -> Result<(E2eOptions, Option<String>)> {
    let mut o = E2eOptions::default();
    let mut json = None;
    let mut it = args.iter();
    let num = |v: Option<&String>, what: &str| -> Result<usize> {
        v.and_then(|n| n.parse().ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| anyhow!("{what} needs a positive number"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--requests" => o.requests = num(it.next(), "--requests")?,
            "--cggmp-requests" => o.cggmp_requests = num(it.next(), "--cggmp-requests")?,
            "--lib-runs" => o.lib_runs = num(it.next(), "--lib-runs")?,
            "--poll-ms" => o.poll = Duration::from_millis(num(it.next(), "--poll-ms")? as u64),
            "--threshold" => {
                o.threshold = match it.next().map(String::as_str) {
                    Some("2") => 2,
                    Some("3") => 3,
                    _ => bail!("--threshold is 2 or 3"),
                }
            }
            "--concurrency" => {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow!("--concurrency needs a list, e.g. 1,16"))?;
                o.concurrency = v
                    .split(',')
                    .map(|x| x.trim().parse().ok().filter(|n: &usize| *n >= 1))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| anyhow!("--concurrency {v:?}: positive numbers, e.g. 1,16"))?;
            }
            "--only" => {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow!("--only needs a list, e.g. eddsa,bip340"))?;
                o.algorithms = v
                    .split(',')
                    .map(|x| Algorithm::parse(x.trim()))
                    .collect::<Result<_>>()?;
            }
            "--dir" => {
                o.dir = Some(PathBuf::from(
                    it.next()
                        .ok_or_else(|| anyhow!("--dir needs a directory"))?,
                ))
            }
            "--scale" => {
                let v = it
                    .next()
                    .ok_or_else(|| anyhow!("--scale needs a list, e.g. 1,2 or single,1,2"))?;
                o.platforms = v
                    .split(',')
                    .map(|x| match x.trim() {
                        "single" => Some(PlatformShape::Single),
                        n => n
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=8).contains(n))
                            .map(PlatformShape::Scaled),
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        anyhow!("--scale {v:?}: 'single' or replica counts 1..8, e.g. 1,2")
                    })?;
            }
            "--json" => {
                json = Some(
                    it.next()
                        .ok_or_else(|| anyhow!("--json needs a file"))?
                        .clone(),
                )
            }
            other => bail!("unknown option {other:?}\n\n{USAGE}"),
        }
    }
    Ok((o, json))
}

/// Usage text of `mpc-bench e2e`.
pub const USAGE: &str =
    "usage: mpc-bench e2e [--requests N] [--cggmp-requests N] [--concurrency 1,16]
                     [--only ecdsa-dkls23,ecdsa-cggmp,eddsa,bip340,taproot] [--lib-runs N]
                     [--poll-ms MS] [--scale single,1,2]
                     [--threshold 2|3] [--dir DIR] [--json FILE]

  Starts a devnet (platform, nodes a b c, callback demo: real processes on 127.0.0.1) whose
  organization signs ECDSA with DKLs23 (EdDSA, BIP340 and Taproot run there too), and for
  ecdsa-cggmp one with CGGMP24 (published test primes), sends signing requests through the WaaS API and verifies every signature.
  Reports latency p50/p95/p99, throughput, CPU seconds and peak RSS per process, and the same
  operation's in-process library time measured in the same run.
  --requests N         requests per algorithm and concurrency (default 200)
  --cggmp-requests N   the same for CGGMP ECDSA, seconds of CPU each (default 20)
  --concurrency LIST   requests in flight (default 1,16)
  --only LIST          algorithms (default all)
  --lib-runs N         runs of each in-process reference (default 5)
  --poll-ms MS         poll sign_result, first step MS (default: long polls, waitMs)
  --threshold 2|3      keys 2-of-3 or 3-of-3 (default 3)
  --scale LIST         platform shapes, each on its own devnet: single (one process, SQLite,
                       in-process bus; the default) or N (mpc-devnet --scale --replicas N: N
                       coordinator and N proxy processes on PostgreSQL and nats-server);
                       reports throughput ratios between shapes
  --dir DIR            devnet directories DIR/dkls23, DIR/cggmp24, DIR/scale-N-dkls23, …
                       (default: temporary ones)
  --json FILE          also write the report as JSON";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn parses_options_and_refuses_nonsense() {
        let (o, json) = parse_args(&args(&[
            "--requests",
            "5",
            "--concurrency",
            "1,4",
            "--only",
            "eddsa,taproot",
            "--json",
            "x.json",
        ]))
        .unwrap();
        assert_eq!(o.requests, 5);
        assert_eq!(o.concurrency, vec![1, 4]);
        assert_eq!(o.algorithms, vec![Algorithm::Eddsa, Algorithm::Taproot]);
        assert_eq!(json.as_deref(), Some("x.json"));
        let (o, _) = parse_args(&args(&["--only", "ecdsa-dkls23,ecdsa-cggmp"])).unwrap();
        assert_eq!(
            o.algorithms,
            vec![Algorithm::EcdsaDkls23, Algorithm::EcdsaCggmp]
        );
        assert_eq!(
            Algorithm::EcdsaDkls23.devnet_protocol(),
            EcdsaProtocol::Dkls23
        );
        assert_eq!(
            Algorithm::EcdsaCggmp.devnet_protocol(),
            EcdsaProtocol::Cggmp24
        );
        assert!(parse_args(&args(&["--only", "ecdsa-cmp"])).is_err());
        assert!(parse_args(&args(&["--concurrency", "0"])).is_err());
        assert!(parse_args(&args(&["--requests"])).is_err());
        assert!(parse_args(&args(&["--frobnicate"])).is_err());
        let (o, _) = parse_args(&args(&["--scale", "single,1,2"])).unwrap();
        assert_eq!(
            o.platforms,
            [
                PlatformShape::Single,
                PlatformShape::Scaled(1),
                PlatformShape::Scaled(2)
            ]
        );
        assert_eq!(o.platforms[2].name(), "scale-2");
        assert!(parse_args(&args(&["--scale", "0"])).is_err());
        assert!(parse_args(&args(&["--scale", "9"])).is_err());
        assert!(parse_args(&args(&["--scale"])).is_err());
    }

    #[test]
    fn cpu_and_memory_of_this_process_are_read() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(peak_rss_kib(me).unwrap_or(0) > 0);
    }

    /// A busy child's CPU is counted with its parent's (PostgreSQL's sessions), unless the
    /// child is measured on its own (the devnet's processes, children of the client).
    #[test]
    fn cpu_of_children_is_counted() {
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 30",
            ])
            .spawn()
            .unwrap();
        let pid = child.id();
        assert_eq!(parent_pid(pid), Some(std::process::id()));
        // Bounded: until the child spent 10 ticks, at most 20 s.
        let end = Instant::now() + Duration::from_secs(20);
        while cpu_ticks(pid).unwrap_or(0) < 10 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        let child_ticks = cpu_ticks(pid).unwrap();
        let me = std::process::id();
        let with = cpu_ticks_with_children(me, &[]).unwrap();
        let own = cpu_ticks(me).unwrap();
        // A child measured on its own is not counted again with its parent.
        let without = cpu_ticks_with_children(me, &[pid]).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(child_ticks >= 10, "the child did not run");
        assert!(with >= own + child_ticks, "{with} < {own} + {child_ticks}");
        assert!(
            without < own + child_ticks,
            "{without}: the measured child was counted with its parent"
        );
    }
}
