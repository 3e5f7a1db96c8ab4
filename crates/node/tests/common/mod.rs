//! Test harness: temporary node directories, the real binary, a tiny blocking HTTP client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_mpc-node");

/// The published test primes of `mpc-tss` (see `MPC_NODE_INSECURE_TEST_PRIMES`).
pub fn test_primes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tss/tests/fixtures/test-primes.json")
}
pub const STRONG: &str = "Correct-Horse-9";
pub const STRONG2: &str = "Battery-Staple-7!";

/// A directory with a config.toml for one node (port 0, insecure fast KDF via env).
pub struct NodeDir {
    pub dir: tempfile::TempDir,
}

impl NodeDir {
    pub fn new(extra_storage: &str) -> Self {
        Self::with_config(&format!(
            "[app]\nname = \"test-node\"\n\n[log.stdout]\nenable = false\n\n[log.file]\nenable = true\nlevel = 6\npath = \"logs/node.log\"\n[mpc-service]\nprotocol = \"ws\"\naddress = \"127.0.0.1:9\"\n\n[storage]\ndb-file-path = \"asset.db\"\nunseal-server-address = \"127.0.0.1:0\"\n{extra_storage}\n"
        ))
    }

    pub fn with_config(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), text).unwrap();
        Self { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("asset.db")
    }

    pub fn start(&self) -> NodeProc {
        NodeProc::start(&self.config()).unwrap_or_else(|e| panic!("node did not start: {e}"))
    }
}

/// A running `mpc-node start`.
pub struct NodeProc {
    pub child: Child,
    pub addr: SocketAddr,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// Standard output after the "listening" line.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl NodeProc {
    /// Starts the binary and waits (at most 10 s) for its "listening on" line. `Err` carries
    /// the exit status and stderr if it stopped instead.
    pub fn start(config: &Path) -> Result<Self, String> {
        let mut child = Command::new(BIN)
            .args(["start", "--config"])
            .arg(config)
            .env("MPC_NODE_INSECURE_FAST_KDF", "i-know-this-is-insecure")
            // Published primes: no prime filler burning a core while these tests run.
            .env("MPC_NODE_INSECURE_TEST_PRIMES", test_primes())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("mpc-node: local API listening on ") {
                        let addr = a.trim().parse().unwrap();
                        // keep collecting stdout in the background
                        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                        let o2 = out.clone();
                        std::thread::spawn(move || {
                            while let Ok(l) = rx.recv() {
                                o2.lock().unwrap().push(l);
                            }
                        });
                        return Ok(Self {
                            child,
                            addr,
                            stderr: Some(err_thread),
                            stdout: out,
                        });
                    }
                }
                Err(_) => {
                    let status = wait_timeout(&mut child, Duration::from_secs(5));
                    let err = err_thread.join().unwrap_or_default();
                    let code = status.and_then(|s| s.code());
                    return Err(format!("exit status: {code:?}, stderr: {err}"));
                }
            }
        }
    }

    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    /// SIGTERM, then wait (at most 10 s); returns stderr.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let st = wait_timeout(&mut self.child, Duration::from_secs(10));
        let st = st.expect("node did not stop on SIGTERM");
        assert!(st.success(), "node exited with {st} on SIGTERM");
        self.stderr.take().unwrap().join().unwrap_or_default()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_timeout(child: &mut Child, d: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

/// Result of one CLI run.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Last stdout line as JSON.
    pub fn json(&self) -> Value {
        let line = self.stdout.lines().last().unwrap_or("");
        serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {:?}", self))
    }
}

/// Runs the binary with `args`, feeding `stdin`; at most 60 s.
pub fn cli(args: &[&str], stdin: &str) -> Out {
    let mut child = Command::new(BIN)
        .args(args)
        .env("MPC_NODE_INSECURE_FAST_KDF", "i-know-this-is-insecure")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut si = child.stdin.take().unwrap();
    let input = stdin.to_owned();
    std::thread::spawn(move || {
        let _ = si.write_all(input.as_bytes());
    });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let st = wait_timeout(&mut child, Duration::from_secs(60)).expect("CLI timed out");
    Out {
        code: st.code().unwrap_or(-1),
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
    }
}

/// One HTTP/1.1 request; returns (status, body as JSON).
pub fn http(addr: &str, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8(resp).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let v = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    (status, v)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// node.sh's body: pretty JSON, password not escaped, sent as text/plain.
pub fn node_sh_body(pw: &str) -> Vec<u8> {
    format!("{{\n  \"shard_bkey\": \"{pw}\"\n}}").into_bytes()
}

pub fn post(addr: &str, path: &str, bkey: &str) -> (u16, Value) {
    http(addr, "POST", path, "text/plain", &node_sh_body(bkey))
}

pub fn status(addr: &str) -> Value {
    let (code, v) = http(addr, "GET", "/sys/seal-status", "text/plain", b"");
    assert_eq!(code, 200, "{v}");
    v["data"].clone()
}

pub fn assert_ok(r: &(u16, Value), data: &str) {
    assert_eq!(r.0, 200, "{}", r.1);
    assert_eq!(r.1["status"], "ok", "{}", r.1);
    assert_eq!(r.1["data"], data, "{}", r.1);
}

pub fn assert_err(r: &(u16, Value), contains: &str) -> String {
    assert_eq!(r.0, 400, "{}", r.1);
    assert_eq!(r.1["status"], "error", "{}", r.1);
    let e = r.1["error"].as_str().unwrap().to_owned();
    assert!(
        e.contains(contains),
        "error {e:?} does not contain {contains:?}"
    );
    assert_eq!(r.1.as_object().unwrap().len(), 2, "{}", r.1);
    e
}

/// Waits out the wrong-password back-off (the error says how long; default 0.5 s doubling).
pub fn wait_backoff(err: &str) {
    let secs = err
        .rsplit("in ")
        .next()
        .and_then(|s| s.trim_end_matches('s').parse::<f64>().ok())
        .unwrap_or(1.0);
    std::thread::sleep(Duration::from_secs_f64(secs.min(8.0) + 0.1));
}

// --- an independent GF(2^8) (polynomial 0x11B) Lagrange interpolation at x = 0 --------------

fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let hi = a & 0x80;
        a <<= 1;
        if hi != 0 {
            a ^= 0x1b;
        }
        b >>= 1;
    }
    p
}

fn gf_inv(a: u8) -> u8 {
    // a^254 = a^-1 in GF(2^8)
    let mut r = 1u8;
    for _ in 0..254 {
        r = gf_mul(r, a);
    }
    r
}

/// Combines Vault-format shares (`y-bytes ‖ x`) by Lagrange interpolation at 0.
pub fn independent_combine(shares: &[Vec<u8>]) -> Vec<u8> {
    let len = shares[0].len() - 1;
    let xs: Vec<u8> = shares.iter().map(|s| s[len]).collect();
    (0..len)
        .map(|k| {
            let mut acc = 0u8;
            for (i, s) in shares.iter().enumerate() {
                let mut basis = 1u8;
                for (j, &xj) in xs.iter().enumerate() {
                    if i != j {
                        basis = gf_mul(basis, gf_mul(xj, gf_inv(xj ^ xs[i])));
                    }
                }
                acc ^= gf_mul(s[k], basis);
            }
            acc
        })
        .collect()
}

pub fn b64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}
