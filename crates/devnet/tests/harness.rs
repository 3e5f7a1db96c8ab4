//! The harness without the platform: nodes a, b, c and the callback demo as real processes,
//! init/unseal through the local API, stop/start/kill, reuse of the directory, and no process
//! left behind when the cluster is dropped.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use mpc_devnet::{Cluster, Options};

fn opts(dir: &Path) -> Options {
    let mut o = Options::new(dir);
    o.exe = env!("CARGO_BIN_EXE_mpc-devnet").into();
    o.fast_kdf = true;
    o.with_platform = false;
    o.ready_timeout = Duration::from_secs(60);
    o
}

fn alive(pid: u32) -> bool {
    // Reaped children leave no /proc entry.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_and_callback_start_stop_restart_and_reuse() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(opts(tmp.path())).await.unwrap();
    let ids = cluster.node_ids();
    assert_eq!(ids.len(), 3);
    for (party, id) in &ids {
        mpc_wire::keys::verifying_key_from_node_id(id).unwrap();
        let pw = cluster.layout().node_password(party);
        assert_eq!(std::fs::read_to_string(&pw).unwrap().len(), 32);
        assert_eq!(
            std::fs::metadata(&pw).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let pending = cluster.callback_pending().await.unwrap();
    assert_eq!(pending["status"], "0");
    // The demo knows node a's key from its seal-status.
    let pem = std::fs::read_to_string(cluster.layout().callback_node_pub("a")).unwrap();
    let key = mpc_wire::keys::verifying_key_from_pem(&pem).unwrap();
    assert_eq!(&mpc_wire::keys::node_id(&key), &ids["a"]);

    cluster.stop_node("b");
    cluster.start_node("b").await.unwrap();
    cluster.kill_node("c");
    cluster.start_node("c").await.unwrap();
    assert_eq!(cluster.node_ids(), ids);
    cluster.check_alive().unwrap();

    // The demo's own `approve` command reaches it (and says when there is nothing to release).
    let e = cluster.callback_approve("no-such-callback").unwrap_err();
    assert!(format!("{e:#}").contains("404"), "{e:#}");

    // A fourth node with its own directory and port.
    let d = cluster.start_unbound_node("d").await.unwrap();
    mpc_wire::keys::verifying_key_from_node_id(&d).unwrap();
    assert!(!ids.values().any(|v| v == &d));
    assert!(cluster.node_log("d").exists());

    let pids = cluster.pids();
    assert_eq!(pids.len(), 5);
    drop(cluster);
    for pid in &pids {
        assert!(!alive(*pid), "process {pid} still running after drop");
    }

    // Same directory again: same CA, same nodes (unsealed with their stored passwords).
    let cluster = Cluster::start(opts(tmp.path())).await.unwrap();
    let again = cluster.node_ids();
    for p in ["a", "b", "c"] {
        assert_eq!(again[p], ids[p]);
    }
}
