//! End-to-end tests on a real devnet: platform, nodes a/b/c and the callback demo as separate
//! processes on 127.0.0.1 (the `mpc-devnet` binary's multi-call arms). ECDSA keys use the
//! platform's default protocol (DKLs23) unless a test says `cggmp24` (with the test Paillier
//! primes).

use std::time::{Duration, Instant};

use mpc_api::types::OnlineStatus;
use mpc_api::types::SignState;
use mpc_api::types::admin::{EcdsaProtocol, KeyInfo, KeyRefreshInfo, KeyStatus, RefreshStatus};
use mpc_devnet::scenario::{self, Job, Signer};
use mpc_devnet::{Cluster, Options};
use serde_json::json;

const EXE: &str = env!("CARGO_BIN_EXE_mpc-devnet");

/// One devnet at a time: each runs four processes and CPU-heavy ECDSA, and a 2-core CI machine
/// running several would only make them all time out.
/// (A tokio mutex: its guard is held across awaits, and a panicking test does not poison it.)
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn opts(dir: &std::path::Path) -> Options {
    let mut o = Options::new(dir);
    o.exe = EXE.into();
    o.test_primes = true;
    o.fast_kdf = true;
    o.sign_timeout_secs = 60;
    o.keys_timeout = Duration::from_secs(900);
    o.ready_timeout = Duration::from_secs(60);
    o
}

/// Options for a fresh temporary directory (set by [`started`]).
fn default_opts() -> Options {
    opts(std::path::Path::new("unused"))
}

/// A started cluster in a new temporary directory, with keys and a wallet.
async fn started(mut o: Options) -> (tempfile::TempDir, Cluster, Signer) {
    let tmp = tempfile::tempdir().unwrap();
    o.dir = tmp.path().to_path_buf();
    let mut cluster = Cluster::start(o).await.unwrap();
    let keys = cluster.wait_keys().await.unwrap();
    let signer = scenario::signer(&mut cluster, &keys).await.unwrap();
    (tmp, cluster, signer)
}

fn rid(tag: &str) -> String {
    format!("e2e-{tag}-{}", mpc_devnet::cluster::unix_ms())
}

fn ecdsa_job(seed: &str) -> Job {
    Job::EcdsaRaw {
        path: "m/1/1/60/0".into(),
        digest: mpc_chains::hash::sha256(seed.as_bytes()),
    }
}

fn tx_job(to: &str, amount: &str) -> Job {
    Job::Transaction {
        path: "m/1/1/60/0".into(),
        sighash: mpc_chains::hash::keccak256(format!("{to}{amount}").as_bytes()),
        tx_info: json!({"chainSymbol": "ETH", "assetId": "ETH", "to": to, "amount": amount}),
    }
}

/// Waits until the organization's nodes `parties` are online.
async fn wait_online(cluster: &Cluster, parties: &[&str], timeout: Duration) {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(nodes) = cluster.admin().list_nodes(cluster.organization_id()).await {
            let online = |p: &str| {
                nodes
                    .iter()
                    .any(|n| n.party_id == p && n.online_status == OnlineStatus::Online)
            };
            if parties.iter().all(|p| online(p)) {
                return;
            }
        }
        assert!(
            Instant::now() < end,
            "nodes {parties:?} not online after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `failedReason` of a request (list_mpc_requests).
async fn failed_reason(signer: &Signer, request_id: &str) -> String {
    signer.failed_reason(request_id).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn key_generation_both_curves() {
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(opts(tmp.path())).await.unwrap();
    let keys = cluster.wait_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    for k in &keys {
        assert_eq!(k.status, KeyStatus::Generated);
        assert_eq!(k.threshold, 3);
        assert_eq!(k.parties, ["a", "b", "c"]);
        assert_eq!(hex::decode(&k.chain_code).unwrap().len(), 32);
    }
    assert_eq!(hex::decode(&keys[0].root_public_key).unwrap().len(), 33);
    assert_eq!(hex::decode(&keys[1].root_public_key).unwrap().len(), 32);
    // The platform's default protocol, recorded on the key.
    assert_eq!(keys[0].ecdsa_protocol, Some(EcdsaProtocol::Dkls23));
    assert_eq!(keys[1].ecdsa_protocol, None);
    let nodes = cluster
        .admin()
        .list_nodes(cluster.organization_id())
        .await
        .unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(
        nodes
            .iter()
            .all(|n| n.key_share_status == KeyStatus::Generated)
    );
    // The console is served.
    let r = cluster
        .https()
        .get(cluster.console_url())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // Readiness and metrics: three nodes connected, two keygens done, per-party outcomes.
    let get = |path: &'static str| {
        let url = format!("{}{path}", cluster.api_url());
        let client = cluster.https().clone();
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, ready) = get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert!(ready.contains("3 nodes connected"), "{ready}");
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("mpc_proxy_connected_nodes 3"), "{metrics}");
    assert!(
        metrics.contains("mpc_coordinator_online_nodes 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mpc_coordinator_keygen_outcomes"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_algorithm_and_sign_type_verifies() {
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(opts(tmp.path())).await.unwrap();
    let (report, all_ok) = scenario::run(&mut cluster).await.unwrap();
    assert!(all_ok);
    assert_eq!(report.signatures.len(), scenario::standard_jobs().len());
    let path = cluster.layout().report();
    scenario::write_report(&report, &path).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(v["keys"].as_array().unwrap().len(), 2);
}

/// The CMP path: an organization created with `cggmp24` gets a CGGMP24 key (aux info from the
/// test primes) and signs every algorithm with it.
#[tokio::test(flavor = "multi_thread")]
async fn every_algorithm_verifies_with_a_cggmp24_organization() {
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut o = opts(tmp.path());
    o.ecdsa = Some(EcdsaProtocol::Cggmp24);
    let mut cluster = Cluster::start(o).await.unwrap();
    let (report, all_ok) = scenario::run(&mut cluster).await.unwrap();
    assert!(all_ok);
    assert_eq!(report.signatures.len(), scenario::standard_jobs().len());
    let keys = cluster
        .admin()
        .list_keys(cluster.organization_id())
        .await
        .unwrap();
    let secp = keys.iter().find(|k| k.root_public_key.len() == 66).unwrap();
    assert_eq!(secp.ecdsa_protocol, Some(EcdsaProtocol::Cggmp24));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_of_three_signs_with_node_c_stopped() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut o = default_opts();
    o.threshold = 2;
    o.admin_keygen = Some(2);
    let (_tmp, mut cluster, mut signer) = started(o).await;
    cluster.stop_node("c");
    for (i, job) in scenario::standard_jobs().iter().enumerate() {
        let out = signer.run(job, &rid(&format!("2of3-{i}"))).await.unwrap();
        scenario::require_verified(&out).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_rejects_by_amount_and_destination() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (_tmp, _cluster, mut signer) = started(default_opts()).await;
    for (tag, job) in [
        (
            "amount",
            tx_job(mpc_devnet::render::DEVNET_DESTINATION, "20"),
        ),
        (
            "dest",
            tx_job(mpc_devnet::render::UNLISTED_DESTINATION, "0.01"),
        ),
    ] {
        let id = rid(&format!("reject-{tag}"));
        let out = signer.run(&job, &id).await.unwrap();
        assert_eq!(out.state, Some(SignState::Failed), "{tag}");
        assert!(out.entry.signature.is_empty());
        let reason = failed_reason(&signer, &id).await;
        // The coordinator names the party whose callback refused, with the server's reason.
        assert!(reason.contains("party a rejected: "), "{tag}: {reason}");
        assert!(
            reason.len() > "party a rejected: ".len(),
            "{tag}: no reason: {reason}"
        );
    }
    // An approved one still goes through.
    let out = signer
        .run(
            &tx_job(mpc_devnet::render::DEVNET_DESTINATION, "1"),
            &rid("approve"),
        )
        .await
        .unwrap();
    scenario::require_verified(&out).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_wait_is_released_by_approve() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (_tmp, cluster, mut signer) = started(default_opts()).await;
    let job = tx_job(mpc_devnet::render::DEVNET_DESTINATION, "6");
    let id = rid("wait");
    signer.submit(&job, &id).await.unwrap();
    // The demo holds it in its WAIT band.
    let end = Instant::now() + Duration::from_secs(60);
    let callback_id = loop {
        let p = cluster.callback_pending().await.unwrap();
        if let Some((cid, _)) = p["pending"]
            .as_object()
            .and_then(|m| m.iter().find(|(_, v)| v["request_id"] == json!(id)))
        {
            break cid.clone();
        }
        assert!(Instant::now() < end, "no pending callback for {id}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let r = signer.api.sign_result(&id).await.unwrap();
    assert_eq!(r.state, SignState::Pending);
    cluster.callback_approve(&callback_id).unwrap();
    let r = signer
        .api
        .wait_sign_result(&id, Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(r.state, SignState::Done);
    let pk = signer.public_key(&job).await.unwrap();
    let (_, digest, _) = Signer::expected(&job, &pk).unwrap();
    Signer::check(&job, &pk, &digest, &hex::decode(&r.signature).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn node_killed_mid_signing_fails_cleanly_then_recovers() {
    let _one = ONE_AT_A_TIME.lock().await;
    // A CGGMP24 signature takes seconds, so the kill lands in the middle of the run (a DKLs23
    // one is over in milliseconds, before the kill).
    let mut o = default_opts();
    o.ecdsa = Some(EcdsaProtocol::Cggmp24);
    let (_tmp, mut cluster, mut signer) = started(o).await;
    let id = rid("killed");
    signer.submit(&ecdsa_job("killed"), &id).await.unwrap();
    cluster.kill_node("b");
    let r = signer
        .api
        .wait_sign_result(&id, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(r.state, SignState::Failed);
    let reason = failed_reason(&signer, &id).await;
    let node_b = cluster.node_id("b").unwrap().to_owned();
    assert!(
        reason.contains(" b") || reason.contains("\"b\"") || reason.contains(&node_b),
        "the reason does not name party b: {reason}"
    );
    cluster.start_node("b").await.unwrap();
    wait_online(&cluster, &["a", "b", "c"], Duration::from_secs(60)).await;
    let out = signer
        .run(&ecdsa_job("after restart"), &rid("after"))
        .await
        .unwrap();
    scenario::require_verified(&out).unwrap();
}

/// The organization's secp256k1 key as the admin API shows it now.
async fn secp_key(cluster: &Cluster) -> KeyInfo {
    let keys = cluster
        .admin()
        .list_keys(cluster.organization_id())
        .await
        .unwrap();
    keys.into_iter()
        .find(|k| k.root_public_key.len() == 66 && k.status == KeyStatus::Generated)
        .expect("a generated secp256k1 key")
}

/// Starts a refresh of `key_id` through the admin API; its task id.
async fn start_refresh(cluster: &Cluster, key_id: &str) -> String {
    let run = cluster
        .admin()
        .refresh_key(cluster.organization_id(), key_id)
        .await
        .unwrap();
    assert_eq!(run.status, RefreshStatus::Pending);
    run.task_id
}

/// Waits until a refresh is no longer pending (bounded).
async fn refresh_end(cluster: &Cluster, key_id: &str, task_id: &str) -> KeyRefreshInfo {
    cluster
        .admin()
        .wait_refresh(
            cluster.organization_id(),
            key_id,
            task_id,
            Duration::from_secs(120),
        )
        .await
        .unwrap()
}

/// Key refresh as an operation (DKLs23): a refresh that loses a party part-way (node c killed
/// during the run) and one whose coordinator restarts during the run both fail naming why, and
/// leave the old shares in force at every node (3-of-3 signatures go on); a complete refresh
/// switches the key to the new generation (same key, same addresses) and every algorithm
/// signs and verifies after it, also after node c is killed and restarted before it used its
/// new share. A CGGMP24-less key (ed25519) and an unknown key are refused.
#[tokio::test(flavor = "multi_thread")]
async fn key_refresh_fails_safely_part_way_and_switches_when_complete() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (_tmp, mut cluster, mut signer) = started(default_opts()).await;
    let org = cluster.organization_id().to_owned();
    let before = secp_key(&cluster).await;
    assert_eq!(before.ecdsa_protocol, Some(EcdsaProtocol::Dkls23));
    assert_eq!(before.generation, "");

    // 1. Node c dies during the run.
    let run = start_refresh(&cluster, &before.key_id).await;
    cluster.kill_node("c");
    let r = refresh_end(&cluster, &before.key_id, &run).await;
    assert_eq!(r.status, RefreshStatus::Failed, "{r:?}");
    assert!(r.failed_reason.contains("party c"), "{}", r.failed_reason);
    assert_eq!(secp_key(&cluster).await.generation, "");
    cluster.start_node("c").await.unwrap();
    wait_online(&cluster, &["a", "b", "c"], Duration::from_secs(60)).await;
    let out = signer
        .run(&ecdsa_job("after a failed refresh"), &rid("refresh-failed"))
        .await
        .unwrap();
    scenario::require_verified(&out).unwrap();

    // 2. The coordinator restarts during the run: the run fails, nothing switches.
    let run = start_refresh(&cluster, &before.key_id).await;
    cluster.restart_platform().await.unwrap();
    wait_online(&cluster, &["a", "b", "c"], Duration::from_secs(60)).await;
    let r = refresh_end(&cluster, &before.key_id, &run).await;
    assert_eq!(r.status, RefreshStatus::Failed, "{r:?}");
    assert_eq!(secp_key(&cluster).await.generation, "");
    let out = signer
        .run(&ecdsa_job("after a restart"), &rid("refresh-restart"))
        .await
        .unwrap();
    scenario::require_verified(&out).unwrap();

    // 3. A complete refresh: every party answers one generation, the key switches to it.
    let run = start_refresh(&cluster, &before.key_id).await;
    let r = refresh_end(&cluster, &before.key_id, &run).await;
    assert_eq!(r.status, RefreshStatus::Done, "{r:?}");
    assert_eq!(r.outcomes.len(), 3, "{r:?}");
    let after = secp_key(&cluster).await;
    assert!(!after.generation.is_empty());
    assert!(
        r.outcomes
            .values()
            .all(|o| o == &format!("refreshed to {}", after.generation)),
        "{r:?}"
    );
    assert_eq!(
        (&after.root_public_key, &after.chain_code, &after.xpub),
        (&before.root_public_key, &before.chain_code, &before.xpub)
    );
    // Node c crashes before it used its new share; it takes it at its first task.
    cluster.kill_node("c");
    cluster.start_node("c").await.unwrap();
    wait_online(&cluster, &["a", "b", "c"], Duration::from_secs(60)).await;
    for (i, job) in scenario::standard_jobs().iter().enumerate() {
        let out = signer
            .run(job, &rid(&format!("refreshed-{i}")))
            .await
            .unwrap();
        scenario::require_verified(&out).unwrap();
    }

    // Refusals: the ed25519 key (FROST shares have no refresh), an unknown key.
    let keys = cluster.admin().list_keys(&org).await.unwrap();
    let ed = keys.iter().find(|k| k.root_public_key.len() == 64).unwrap();
    let e = cluster
        .admin()
        .refresh_key(&org, &ed.key_id)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("code 400") && e.contains("only DKLs23 keys"),
        "{e}"
    );
    let e = cluster
        .admin()
        .refresh_key(&org, "key_nope")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("code 404"), "{e}");
}

/// Waits until `party`'s node shows offline in the organization's node list (bounded).
async fn wait_offline(cluster: &Cluster, party: &str) {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = cluster
            .admin()
            .list_nodes(cluster.organization_id())
            .await
            .unwrap();
        if nodes
            .iter()
            .any(|n| n.party_id == party && n.online_status == OnlineStatus::Offline)
        {
            return;
        }
        assert!(Instant::now() < end, "node {party} still online: {nodes:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The secp256k1 jobs (ECDSA, BIP340, Taproot) a DKLs23 share signs.
fn secp_jobs() -> Vec<Job> {
    scenario::standard_jobs()
        .into_iter()
        .filter(|j| j.algorithm() != "eddsa")
        .collect()
}

/// Key repair as an operation on a 2-of-3 DKLs23 key, with real processes: node c is lost and
/// a new node (own store and identity, configured as party c) is bound in its place
/// (`node/replace`); a and b sign meanwhile. A repair onto the new node is rejected by node a's
/// callback until its policy names that node; one during which node b is killed fails; neither
/// switches anything, and a and b go on signing with their old shares. A complete repair
/// switches the key to the new generation (same key, chain code, xpub) and the new node signs
/// ECDSA, BIP340 and Taproot with b and with a, every signature verified.
#[tokio::test(flavor = "multi_thread")]
async fn lost_node_is_replaced_and_its_share_repaired_on_the_new_node() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut o = default_opts();
    o.threshold = 2;
    let (_tmp, mut cluster, mut signer) = started(o).await;
    let org = cluster.organization_id().to_owned();
    let before = secp_key(&cluster).await;
    assert_eq!(
        (before.threshold, before.ecdsa_protocol),
        (2, Some(EcdsaProtocol::Dkls23))
    );
    let repair = |cluster: &Cluster| {
        let (org, key) = (org.clone(), before.key_id.clone());
        let admin = cluster.admin().clone();
        async move {
            let run = admin.repair_key(&org, &key, "c").await.unwrap();
            assert_eq!(run.status, RefreshStatus::Pending);
            admin
                .wait_repair(&org, &key, &run.task_id, Duration::from_secs(120))
                .await
                .unwrap()
        }
    };

    // Node c is lost. A new node takes party c.
    let old_c = cluster.node_id("c").unwrap().to_owned();
    cluster.kill_node("c");
    let new_c = cluster.start_unbound_node_as("c2", "c").await.unwrap();
    assert_ne!(new_c, old_c);
    let info = cluster
        .admin()
        .replace_node(&org, "c", &new_c)
        .await
        .unwrap();
    assert_eq!(
        (info.party_id.as_str(), info.node_id.as_str()),
        ("c", new_c.as_str())
    );
    wait_online(&cluster, &["a", "b", "c"], Duration::from_secs(60)).await;
    let out = signer
        .run(&ecdsa_job("while c is lost"), &rid("repair-lost"))
        .await
        .unwrap();
    scenario::require_verified(&out).unwrap();

    // 1. Node a's callback does not know the new node yet.
    let r = repair(&cluster).await;
    assert_eq!(r.status, RefreshStatus::Failed, "{r:?}");
    assert!(
        r.failed_reason.contains("party a") && r.failed_reason.contains("does not list it"),
        "{}",
        r.failed_reason
    );
    assert_eq!(secp_key(&cluster).await.generation, "");
    // Its policy names the new node now.
    cluster.allow_key_repair_onto(&new_c).await.unwrap();

    // 2. Node b dies during the repair.
    let admin = cluster.admin().clone();
    let run = admin.repair_key(&org, &before.key_id, "c").await.unwrap();
    cluster.kill_node("b");
    let r = admin
        .wait_repair(&org, &before.key_id, &run.task_id, Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(r.status, RefreshStatus::Failed, "{r:?}");
    assert!(r.failed_reason.contains("party b"), "{}", r.failed_reason);
    assert_eq!(secp_key(&cluster).await.generation, "");
    cluster.start_node("b").await.unwrap();
    wait_online(&cluster, &["a", "b", "c"], Duration::from_secs(60)).await;
    let out = signer
        .run(&ecdsa_job("after a failed repair"), &rid("repair-failed"))
        .await
        .unwrap();
    scenario::require_verified(&out).unwrap();

    // 3. A complete repair.
    let r = repair(&cluster).await;
    assert_eq!(r.status, RefreshStatus::Done, "{r:?}");
    eprintln!(
        "complete repair of a 2-of-3 DKLs23 key: {} ms from start to switch",
        r.finished_at.unwrap_or(r.created_at) - r.created_at
    );
    assert_eq!(r.outcomes.len(), 3, "{r:?}");
    let after = secp_key(&cluster).await;
    assert!(!after.generation.is_empty());
    assert_eq!(
        (&after.root_public_key, &after.chain_code, &after.xpub),
        (&before.root_public_key, &before.chain_code, &before.xpub)
    );
    // The new node signs with b (a stopped), then with a (b stopped).
    for (down, up) in [("a", None), ("b", Some("a"))] {
        if let Some(up) = up {
            cluster.start_node(up).await.unwrap();
            wait_online(&cluster, &[up], Duration::from_secs(60)).await;
        }
        cluster.stop_node(down);
        wait_offline(&cluster, down).await;
        for (i, job) in secp_jobs().iter().enumerate() {
            let out = signer
                .run(job, &rid(&format!("repaired-without-{down}-{i}")))
                .await
                .unwrap();
            scenario::require_verified(&out).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_restart_nodes_reconnect() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (_tmp, mut cluster, mut signer) = started(default_opts()).await;
    let out = signer
        .run(&ecdsa_job("before"), &rid("before"))
        .await
        .unwrap();
    scenario::require_verified(&out).unwrap();
    cluster.restart_platform().await.unwrap();
    // Reconnect backoff is at most 10 s (docs/platform.md).
    wait_online(&cluster, &["a", "b", "c"], Duration::from_secs(60)).await;
    for (i, job) in scenario::standard_jobs().iter().enumerate().take(3) {
        let out = signer.run(job, &rid(&format!("after-{i}"))).await.unwrap();
        scenario::require_verified(&out).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_request_id_returns_the_first_result() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (_tmp, _cluster, mut signer) = started(default_opts()).await;
    let id = rid("repeat");
    let job = ecdsa_job("repeat");
    let first = signer.run(&job, &id).await.unwrap();
    scenario::require_verified(&first).unwrap();
    // Same id, same parameters: the first request (no second run).
    let _ = signer.submit(&job, &id).await;
    let again = signer.api.sign_result(&id).await.unwrap();
    assert_eq!(again.state, SignState::Done);
    assert_eq!(again.signature, first.entry.signature);
    // Same id, other parameters: refused or the first request, never a new signature.
    let _ = signer.submit(&ecdsa_job("other"), &id).await;
    let again = signer.api.sign_result(&id).await.unwrap();
    assert_eq!(again.signature, first.entry.signature);
    let list = signer.api.list_mpc_requests().await.unwrap();
    assert_eq!(list.list.iter().filter(|r| r.request_id == id).count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn unbound_node_is_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(opts(tmp.path())).await.unwrap();
    let id = cluster.start_unbound_node("d").await.unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let node_log = std::fs::read_to_string(cluster.node_log("d")).unwrap_or_default();
        let platform_log = std::fs::read_to_string(cluster.platform_log()).unwrap_or_default();
        let platform_file =
            std::fs::read_to_string(cluster.layout().platform_dir().join("logs/platform.log"))
                .unwrap_or_default();
        if node_log.contains("unbound node")
            || platform_log.contains("unbound node")
            || platform_file.contains("unbound node")
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "no 'unbound node' refusal logged for node d"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let nodes = cluster
        .admin()
        .list_nodes(cluster.organization_id())
        .await
        .unwrap();
    assert!(nodes.iter().all(|n| n.node_id != id));
}

/// Waits up to 15 s for a line of the audit log `path` that contains every one of `needles`;
/// returns the log's lines.
async fn audit_lines_with(path: &std::path::Path, needles: &[&str]) -> Vec<serde_json::Value> {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        assert!(
            Instant::now() < end,
            "no entry with {needles:?} in {}:\n{text}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `mpc-devnet COMPONENT verify-audit FILE`; returns (exit status, stdout).
fn verify_audit(component: &str, file: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(EXE)
        .args([component, "verify-audit"])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The audit trails and node metrics of a real devnet: each node's log records its unseal, the
/// callback's decision and the signature (request, key, path, digest); the platform's records
/// every API request with its caller, an unauthenticated one as such. `verify-audit` (the real
/// binaries) finds them intact, and names the line after an entry altered in a copy. Node b,
/// restarted with `[metrics]` on, counts the signature, the callback's approval and its
/// connection on `/metrics`.
#[tokio::test(flavor = "multi_thread")]
async fn audit_logs_record_decisions_signatures_and_callers_and_show_tampering() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (tmp, mut cluster, mut signer) = started(default_opts()).await;
    // Node b with `[metrics]` on (an operator's edit, kept by the devnet), restarted.
    let metrics_port = mpc_devnet::state::free_port().unwrap();
    let config = cluster.layout().node_config("b");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[metrics]\nenable = true\naddress = \"127.0.0.1:{metrics_port}\"\n"
    ));
    std::fs::write(&config, text).unwrap();
    cluster.start_node("b").await.unwrap();
    wait_online(&cluster, &["a", "b", "c"], Duration::from_secs(60)).await;
    let request_id = rid("audited");
    let job = ecdsa_job("audited");
    let out = signer.run(&job, &request_id).await.unwrap();
    scenario::require_verified(&out).unwrap();
    let Job::EcdsaRaw { digest, .. } = &job else {
        unreachable!()
    };

    for party in ["a", "b", "c"] {
        let path = cluster.layout().node_dir(party).join("audit.log");
        let rid_field = format!("\"requestId\":\"{request_id}\"");
        let entries = audit_lines_with(&path, &["\"event\":\"signature\"", &rid_field]).await;
        let event = |e: &serde_json::Value| e["event"].as_str().unwrap().to_owned();
        assert!(entries.iter().any(|e| event(e) == "unsealed"), "{party}");
        let decision = entries
            .iter()
            .find(|e| {
                event(e) == "callback-decision" && e["fields"]["requestId"] == request_id.as_str()
            })
            .unwrap_or_else(|| panic!("no callback decision on {party}"));
        assert_eq!(decision["fields"]["decision"], "approved");
        assert_eq!(decision["fields"]["requestType"], "sign");
        let sig = entries
            .iter()
            .find(|e| event(e) == "signature" && e["fields"]["requestId"] == request_id.as_str())
            .unwrap();
        assert_eq!(sig["fields"]["digest"], hex::encode(digest));
        assert_eq!(sig["fields"]["path"], "m/1/1/60/0");
        assert_eq!(sig["fields"]["algorithm"], "ecdsa");
        // No secret in the log: no password of the devnet's node.
        let password = std::fs::read_to_string(cluster.layout().node_dir(party).join("password"))
            .unwrap_or_default();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            password.trim().is_empty() || !text.contains(password.trim()),
            "the password is in the audit log"
        );
        let (code, report) = verify_audit("node", &path);
        assert_eq!(code, 0, "{report}");
        assert!(report.contains("intact"), "{report}");
    }

    // Node b's metrics after the signature: its task, the callback's answer, the connection.
    let scrape = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "mpc_node_tasks_total{kind=\"dkls23_sign\",outcome=\"signed\"} 1",
        "mpc_node_callback_decisions_total{decision=\"approved\"} 1",
        "mpc_node_task_duration_seconds_count{kind=\"dkls23_sign\"} 1",
        "mpc_node_platform_connected 1",
        "mpc_node_sealed 0",
    ] {
        assert!(scrape.contains(line), "missing {line:?} in\n{scrape}");
    }

    // An entry altered in a copy: verify-audit names the line after it.
    let path = cluster.layout().node_dir("a").join("audit.log");
    let copy = tmp.path().join("audit-copy.log");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(lines.len() >= 3, "{lines:?}");
    lines[1] = lines[1].replacen("\"at\":", "\"at\":1", 1);
    std::fs::write(&copy, lines.join("\n") + "\n").unwrap();
    let (code, report) = verify_audit("node", &copy);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("line 3:"), "{report}");

    // The platform: the signing request with its caller; a request without credentials.
    let anon = cluster
        .https()
        .post(format!(
            "{}{}",
            cluster.api_url(),
            mpc_api::types::PATH_SIGN_RESULT
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);
    let platform_log = cluster.layout().platform_dir().join("audit.log");
    let entries =
        audit_lines_with(&platform_log, &["\"authenticated\":false", "sign_result"]).await;
    let signed = entries
        .iter()
        .find(|e| {
            e["fields"]["path"] == mpc_api::types::PATH_SIGN_RAW_DATA && e["fields"]["code"] == 200
        })
        .expect("the sign_raw_data request");
    assert_eq!(signed["fields"]["caller"]["authenticated"], true);
    assert_eq!(
        signed["fields"]["caller"]["apiKey"],
        cluster.api().api_key_hex().as_str()
    );
    assert_eq!(
        signed["fields"]["caller"]["organizationId"],
        cluster.organization_id()
    );
    let (code, report) = verify_audit("platform", &platform_log);
    assert_eq!(code, 0, "{report}");
}
