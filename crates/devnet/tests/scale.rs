//! The platform as it runs beyond one machine (`mpc-devnet --scale`): PostgreSQL and
//! nats-server from the system's packages, two coordinator processes and two proxy processes
//! (one role each), nodes a, b, c spread over the proxies (each lists both), the callback demo;
//! all real processes on 127.0.0.1. Then faults, one after another on the same devnet, each in
//! the middle of a batch of signatures: a proxy killed, a coordinator killed, nats-server
//! restarted, PostgreSQL restarted. After each: every accepted request reaches a terminal state
//! (done and verified, or failed with a reason), no node takes a task twice, the nodes are
//! online again and the next signature verifies. And a node cut off from its proxy by the
//! network: node c in a network namespace of the test's own, its one link taken down during a
//! signature (needs root, as CI runs).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::time::{Duration, Instant};

use mpc_api::types::{OnlineStatus, SignState};
use mpc_devnet::cluster::Scale;
use mpc_devnet::scenario::{self, Job, Signer};
use mpc_devnet::{Cluster, Options};

const EXE: &str = env!("CARGO_BIN_EXE_mpc-devnet");

/// One scaled devnet at a time: each runs ten processes on a 2-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Requests in each batch; the fault lands after [`FAULT_AFTER`] of them were submitted.
const BATCH: usize = 10;
const FAULT_AFTER: usize = 3;

fn opts(dir: &std::path::Path) -> Options {
    let mut o = Options::new(dir);
    o.exe = EXE.into();
    o.fast_kdf = true;
    o.sign_timeout_secs = 20;
    o.keys_timeout = Duration::from_secs(300);
    o.ready_timeout = Duration::from_secs(60);
    o.scale = Some(Scale::replicas(2));
    o
}

fn job(tag: &str) -> Job {
    Job::EcdsaRaw {
        path: "m/1/1/60/0".into(),
        digest: mpc_chains::hash::sha256(tag.as_bytes()),
    }
}

fn rid(tag: &str) -> String {
    format!("scale-{tag}-{}", mpc_devnet::cluster::unix_ms())
}

/// Waits (bounded) until every node is online as the API shows it.
async fn wait_online(cluster: &Cluster, timeout: Duration) {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(nodes) = cluster.admin().list_nodes(cluster.organization_id()).await
            && nodes.len() == 3
            && nodes
                .iter()
                .all(|n| n.online_status == OnlineStatus::Online)
        {
            return;
        }
        assert!(
            Instant::now() < end,
            "nodes not all online after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `mpc_proxy_connected_nodes` of a proxy process.
async fn connected_nodes(cluster: &Cluster, port: u16) -> u64 {
    let text = cluster
        .https()
        .get(format!("https://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("mpc_proxy_connected_nodes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The signature of the next request verifies (after a fault: a few tries, bounded, while the
/// platform settles; each try is a new request).
async fn next_signature_verifies(signer: &mut Signer, tag: &str) {
    let mut last = String::new();
    for attempt in 0..10 {
        match signer
            .run(&job(tag), &rid(&format!("{tag}{attempt}")))
            .await
        {
            Ok(out) if out.verified.is_ok() => return,
            Ok(out) => last = format!("{:?}: {:?}", out.state, out.verified),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    panic!("no verified signature after {tag}: last {last}");
}

/// Submits [`BATCH`] requests, calls `fault` after [`FAULT_AFTER`] of them, then waits for
/// every accepted one to end. Returns (accepted, done, failed reasons); every done one verified.
async fn batch_with_fault(
    cluster: &mut Cluster,
    signer: &mut Signer,
    tag: &str,
    fault: impl FnOnce(&mut Cluster),
) -> (usize, usize, Vec<String>) {
    let pubkey = signer.public_key(&job(tag)).await.unwrap();
    let mut accepted = Vec::new();
    let mut fault = Some(fault);
    for i in 0..BATCH {
        if i == FAULT_AFTER
            && let Some(f) = fault.take()
        {
            f(cluster);
        }
        let j = job(&format!("{tag}-{i}"));
        let id = rid(&format!("{tag}-{i}"));
        // A submit refused outright (no coordinator, a node offline) is an answer, not a lost
        // request; only accepted ones must end.
        if signer.submit(&j, &id).await.is_ok() {
            accepted.push((id, j));
        }
    }
    let mut done = 0;
    let mut failed = Vec::new();
    for (id, j) in &accepted {
        // Bounded: the sign timeout (20 s), the lease of a stopped coordinator (20 s), margin.
        let r = signer
            .api
            .wait_sign_result(id, Duration::from_secs(90))
            .await
            .unwrap_or_else(|e| panic!("{tag}: request {id} did not end: {e}"));
        match r.state {
            SignState::Done => {
                let sig = hex::decode(r.signature.trim_start_matches("0x")).unwrap();
                let (_, digest, _) = Signer::expected(j, &pubkey).unwrap();
                Signer::check(j, &pubkey, &digest, &sig)
                    .unwrap_or_else(|e| panic!("{tag}: {id} does not verify: {e}"));
                done += 1;
            }
            SignState::Failed => {
                let reason = signer.failed_reason(id).await.unwrap();
                assert!(!reason.is_empty(), "{tag}: {id} failed without a reason");
                failed.push(reason);
            }
            other => panic!("{tag}: {id} ended {other:?}"),
        }
    }
    (accepted.len(), done, failed)
}

/// Task ids each node took more than once ("task accepted" lines of its log).
fn tasks_taken_twice(cluster: &Cluster) -> Vec<String> {
    let mut twice = Vec::new();
    for party in ["a", "b", "c"] {
        let log = std::fs::read_to_string(cluster.node_log(party)).unwrap_or_default();
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for line in log.lines().filter(|l| l.contains("task accepted")) {
            if let Some(rest) = line.split("task_id=").nth(1) {
                let id = rest.split_whitespace().next().unwrap_or("");
                *seen.entry(id).or_default() += 1;
            }
        }
        twice.extend(
            seen.into_iter()
                .filter(|(_, n)| *n > 1)
                .map(|(id, n)| format!("node {party}: {id} x{n}")),
        );
    }
    twice
}

#[tokio::test(flavor = "multi_thread")]
async fn scaled_platform_survives_proxy_coordinator_nats_and_postgres_faults() {
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    // PostgreSQL runs as user postgres when the tests run as root: it must enter the directory.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let mut cluster = Cluster::start(opts(tmp.path())).await.unwrap();
    assert_eq!(
        cluster.platform_process_names(),
        ["coordinator-1", "coordinator-2", "proxy-1", "proxy-2"]
    );
    assert!(
        cluster.postgres_dir().starts_with(tmp.path()),
        "{}",
        cluster.postgres_dir().display()
    );
    let keys = cluster.wait_keys().await.unwrap();
    let mut signer = scenario::signer(&mut cluster, &keys).await.unwrap();
    wait_online(&cluster, Duration::from_secs(60)).await;
    let scale = cluster.state().ports.scale.clone().unwrap();

    // The nodes are spread over both proxies (a run spans them: frames cross over NATS).
    let per_proxy = [
        connected_nodes(&cluster, scale.proxies[0]).await,
        connected_nodes(&cluster, scale.proxies[1]).await,
    ];
    assert_eq!(per_proxy.iter().sum::<u64>(), 3, "{per_proxy:?}");
    assert!(per_proxy.iter().all(|n| *n > 0), "{per_proxy:?}");
    // Every signature algorithm through the scaled platform, each verified.
    for j in scenario::standard_jobs() {
        let out = signer.run(&j, &rid("std")).await.unwrap();
        scenario::require_verified(&out).unwrap();
    }
    // The API answers on either coordinator, with the same data.
    for port in &scale.coordinators {
        let other = mpc_devnet::api::ApiClient::new(
            cluster.https().clone(),
            &format!("https://127.0.0.1:{port}"),
            cluster.api_key().clone(),
        );
        let r = other.list_mpc_requests().await.unwrap();
        assert!(!r.list.is_empty(), "coordinator on {port} sees no requests");
    }

    // 1. A proxy killed in the middle: its nodes move to the other one.
    let (accepted, done, failed) = batch_with_fault(&mut cluster, &mut signer, "proxy", |c| {
        c.kill_platform_process("proxy-1");
    })
    .await;
    eprintln!("proxy killed: {accepted} accepted, {done} done, failed: {failed:?}");
    wait_online(&cluster, Duration::from_secs(60)).await;
    assert_eq!(connected_nodes(&cluster, scale.proxies[1]).await, 3);
    next_signature_verifies(&mut signer, "after-proxy").await;
    cluster.start_platform_process("proxy-1").await.unwrap();

    // 2. The coordinator the client calls killed in the middle: the client moves to the other
    // one; runs the dead one drove end there (done, or failed once its lease lapsed).
    let (accepted, done, failed) =
        batch_with_fault(&mut cluster, &mut signer, "coordinator", |c| {
            c.kill_platform_process("coordinator-1");
        })
        .await;
    eprintln!("coordinator killed: {accepted} accepted, {done} done, failed: {failed:?}");
    assert!(
        accepted >= FAULT_AFTER,
        "the other coordinator took no requests"
    );
    for reason in &failed {
        assert!(
            reason.contains("coordinator driving it stopped") || reason.contains("party"),
            "{reason}"
        );
    }
    next_signature_verifies(&mut signer, "after-coordinator").await;
    cluster
        .start_platform_process("coordinator-1")
        .await
        .unwrap();

    // 3. nats-server restarted in the middle (core NATS keeps nothing in flight).
    let (accepted, done, failed) = batch_with_fault(&mut cluster, &mut signer, "nats", |c| {
        c.restart_nats().unwrap();
    })
    .await;
    eprintln!("nats-server restarted: {accepted} accepted, {done} done, failed: {failed:?}");
    wait_online(&cluster, Duration::from_secs(60)).await;
    next_signature_verifies(&mut signer, "after-nats").await;

    // 4. PostgreSQL restarted in the middle.
    let (accepted, done, failed) = batch_with_fault(&mut cluster, &mut signer, "postgres", |c| {
        c.restart_postgres().unwrap();
    })
    .await;
    eprintln!("PostgreSQL restarted: {accepted} accepted, {done} done, failed: {failed:?}");
    wait_online(&cluster, Duration::from_secs(60)).await;
    next_signature_verifies(&mut signer, "after-postgres").await;

    // Never signed twice: no node took a task twice, and the platform holds one row per
    // request id.
    assert_eq!(tasks_taken_twice(&cluster), Vec::<String>::new());
    let dup = cluster
        .platform_sql(
            "SELECT request_id FROM mpc_requests WHERE request_id <> '' GROUP BY request_id HAVING count(*) > 1",
        )
        .unwrap();
    assert_eq!(dup, "", "request ids recorded twice");
    let running = cluster
        .platform_sql("SELECT count(*) FROM mpc_requests WHERE status = 0")
        .unwrap();
    assert_eq!(running, "0", "requests left running");
    cluster.check_alive().unwrap();

    // The same directory again: the database is kept, so the organization and its keys are.
    let org = cluster.organization_id().to_owned();
    drop(cluster);
    let mut cluster = Cluster::start(opts(tmp.path())).await.unwrap();
    assert_eq!(cluster.organization_id(), org);
    let again = cluster.wait_keys().await.unwrap();
    assert_eq!(again[0].root_public_key, keys[0].root_public_key);
    let mut signer = scenario::signer(&mut cluster, &again).await.unwrap();
    next_signature_verifies(&mut signer, "after-restart").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_cut_off_by_the_network_fails_its_run_naming_it_then_signs_again() {
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let mut cluster = Cluster::start(opts(tmp.path())).await.unwrap();
    let keys = cluster.wait_keys().await.unwrap();
    let mut signer = scenario::signer(&mut cluster, &keys).await.unwrap();
    // Node c alone in a namespace; its only way out is the link to proxy-2. Nodes a and b
    // stay on proxy-1: every run crosses NATS between the proxies.
    cluster.isolate_node("c", "proxy-2").await.unwrap();
    wait_online(&cluster, Duration::from_secs(60)).await;
    let scale = cluster.state().ports.scale.clone().unwrap();
    assert_eq!(connected_nodes(&cluster, scale.proxies[0]).await, 2);
    next_signature_verifies(&mut signer, "isolated").await;

    // The link goes down during a signature: the run fails at its deadline naming party c;
    // nothing is signed. (A signature is over in tens of milliseconds: when one finished
    // before the cut took effect, it is verified, the link restored, and another one tried.)
    let node_c = cluster.node_id("c").unwrap().to_owned();
    let mut cut_mid_run = false;
    for attempt in 0..5 {
        let j = job(&format!("cut{attempt}"));
        let id = rid(&format!("cut{attempt}"));
        let pubkey = signer.public_key(&j).await.unwrap();
        signer.submit(&j, &id).await.unwrap();
        cluster.cut_node("c").unwrap();
        let r = signer
            .api
            .wait_sign_result(&id, Duration::from_secs(90))
            .await
            .unwrap();
        if r.state == SignState::Done {
            let sig = hex::decode(r.signature.trim_start_matches("0x")).unwrap();
            let (_, digest, _) = Signer::expected(&j, &pubkey).unwrap();
            Signer::check(&j, &pubkey, &digest, &sig).unwrap();
            eprintln!("attempt {attempt}: signed before the cut took effect");
            cluster.reconnect_node("c").unwrap();
            wait_online(&cluster, Duration::from_secs(90)).await;
            continue;
        }
        assert_eq!(r.state, SignState::Failed, "{r:?}");
        let reason = signer.failed_reason(&id).await.unwrap();
        eprintln!("attempt {attempt}: failed: {reason}");
        assert!(
            reason.contains(" c") || reason.contains(&node_c),
            "the reason does not name party c: {reason}"
        );
        cut_mid_run = true;
        break;
    }
    assert!(cut_mid_run, "no cut landed during a run in 5 attempts");

    // The link comes back: node c is online again (the same connection, or a new one) and
    // the next signature verifies.
    cluster.reconnect_node("c").unwrap();
    wait_online(&cluster, Duration::from_secs(90)).await;
    next_signature_verifies(&mut signer, "reconnected").await;
    assert_eq!(tasks_taken_twice(&cluster), Vec::<String>::new());
}
