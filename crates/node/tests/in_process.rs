//! The same server started in-process with `mpc_node::run` on 127.0.0.1:0.

mod common;

use std::time::Duration;

use common::*;
use mpc_node::Config;

struct InProc {
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), mpc_node::Error>>>,
    _dir: tempfile::TempDir,
}

impl InProc {
    fn start(storage: &str) -> Self {
        Self::start_with(storage, true)
    }

    fn start_with(storage: &str, fast_kdf: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            format!(
                "[log.file]\nenable = false\n[mpc-service]\nprotocol = \"ws\"\naddress = \"127.0.0.1:9\"\n[storage]\ndb-file-path = \"asset.db\"\nunseal-server-address = \"127.0.0.1:0\"\n{storage}"
            ),
        )
        .unwrap();
        let mut cfg = Config::load(&path).unwrap();
        cfg.insecure_fast_kdf = fast_kdf;
        // Published primes: no prime filler burning a core while these tests run.
        cfg.insecure_test_primes = Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tss/tests/fixtures/test-primes.json"),
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                mpc_node::run(cfg, listener, async move {
                    let _ = rx.await;
                })
                .await
            })
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Self {
            addr: addr.to_string(),
            stop: Some(tx),
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let r = self.thread.take().unwrap().join().unwrap();
        assert!(r.is_ok(), "{r:?}");
    }
}

#[test]
fn graceful_shutdown_and_status_while_busy() {
    let n = InProc::start("");
    let a = n.addr.clone();
    assert_eq!(status(&a)["state"], "uninitialized");
    let (code, v) = post(&a, "/sys/init", STRONG);
    assert_eq!(code, 200, "{v}");
    // Many concurrent status reads and wrong attempts: every request answers, none hangs.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let a = a.clone();
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    status(&a)["state"].as_str().unwrap().to_owned()
                } else {
                    let r = post(&a, "/sys/in-bkey", "Wrong-Password-1");
                    assert_eq!(r.0, 400);
                    "refused".to_owned()
                }
            })
        })
        .collect();
    for h in handles {
        let s = h.join().unwrap();
        assert!(s == "sealed" || s == "refused", "{s}");
    }
    n.shutdown();
}

#[test]
fn sgx_engine_full_cycle() {
    let n = InProc::start("engine = \"sgx\"\n");
    let a = n.addr.clone();
    let (code, v) = post(&a, "/sys/init", STRONG);
    assert_eq!(code, 200, "{v}");
    let id = v["data"]["node_id"].as_str().unwrap().to_owned();
    assert_ok(&post(&a, "/sys/in-bkey", STRONG), "in-bkey success");
    assert_ok(
        &post(&a, "/sys/re-bkey-init", STRONG),
        "re-bkey-init success",
    );
    assert_ok(&post(&a, "/sys/re-bkey", STRONG2), "re-bkey success");
    let st = status(&a);
    assert_eq!(st["state"], "unsealed");
    assert_eq!(st["node_id"], id.as_str());
    let text = std::fs::read_to_string(n._dir.path().join("asset.db")).unwrap();
    assert!(text.contains("\"engine\": \"sgx\""), "sgx is a text file");
    for s in [STRONG, STRONG2] {
        assert!(!text.contains(s));
    }
    n.shutdown();
}

#[test]
fn default_argon2_and_status_not_blocked_by_key_derivation() {
    let n = InProc::start_with("", false);
    let a = n.addr.clone();
    let t0 = std::time::Instant::now();
    let (code, v) = post(&a, "/sys/init", STRONG);
    assert_eq!(code, 200, "{v}");
    let kdf_time = t0.elapsed();
    // While an unseal derives its key (64 MiB Argon2id), seal-status answers from its snapshot.
    let a2 = a.clone();
    let unseal = std::thread::spawn(move || post(&a2, "/sys/in-bkey", STRONG));
    std::thread::sleep(Duration::from_millis(20));
    let t1 = std::time::Instant::now();
    let st = status(&a);
    let status_time = t1.elapsed();
    assert!(st["state"] == "sealed" || st["state"] == "unsealed");
    assert_ok(&unseal.join().unwrap(), "in-bkey success");
    assert!(
        status_time < kdf_time,
        "status took {status_time:?}, a key derivation {kdf_time:?}"
    );
    let text = std::fs::read_to_string(n._dir.path().join("asset.db")).ok();
    assert!(text.is_none() || !text.unwrap().contains(STRONG));
    n.shutdown();
}

/// `[metrics] enable = true`: `GET /metrics` on a listener of its own, Prometheus text; the
/// store's state is read at each scrape (sealed before init); the local API has no /metrics.
#[test]
fn metrics_listener_serves_prometheus_text_when_enabled() {
    use std::io::{Read as _, Write as _};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let node = InProc::start(&format!(
        "[metrics]\nenable = true\naddress = \"127.0.0.1:{port}\"\n"
    ));
    let get = |addr: &str| {
        let end = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
                    .unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                return out;
            }
            assert!(std::time::Instant::now() < end, "nothing listens on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let text = get(&format!("127.0.0.1:{port}"));
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    for line in [
        "mpc_node_sealed 1",
        "mpc_node_platform_connected 0",
        "# TYPE mpc_node_platform_connections counter",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let api = get(&node.addr);
    assert!(!api.contains("mpc_node_sealed"), "{api}");
    node.shutdown();
}
