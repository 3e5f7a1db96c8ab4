//! The real `mpc-platform` binary against unauthenticated clients that never finish: unstarted
//! and half-sent TLS handshakes, and half-sent request heads inside TLS, are all dropped within
//! a generous bound; a body announced larger than the API accepts is refused unread, before
//! authentication, in the API's envelope.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mpc_httpd::attack::{Slow, open, still_open_after};

const BIN: &str = env!("CARGO_BIN_EXE_mpc-platform");

/// The binary under test: this build's, or `MPC_PLATFORM_UNDER_TEST` (to measure another
/// build the same way, e.g. before a change).
fn bin() -> String {
    std::env::var("MPC_PLATFORM_UNDER_TEST").unwrap_or_else(|_| BIN.to_owned())
}

struct Platform {
    child: Child,
    addr: SocketAddr,
    cert: rcgen::CertifiedKey<rcgen::KeyPair>,
    _dir: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Platform {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("server.crt"), cert.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("server.key"),
        cert.signing_key.serialize_pem(),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    std::fs::write(
        dir.path().join("platform.toml"),
        format!(
            "[server]\nlisten = \"{addr}\"\ntls-cert-path = \"server.crt\"\ntls-key-path = \"server.key\"\n"
        ),
    )
    .unwrap();
    let child = Command::new(bin())
        .args(["start", "--config"])
        .arg(dir.path().join("platform.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut p = Platform {
        child,
        addr,
        cert,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "platform did not listen");
        assert!(p.child.try_wait().unwrap().is_none(), "platform exited");
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

fn tls_client(p: &Platform) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(p.cert.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let tcp = TcpStream::connect(p.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

#[test]
fn unfinished_handshakes_and_slow_heads_are_dropped() {
    let p = start();
    let mut conns = open(p.addr, 30, Slow::Silent, "/");
    conns.extend(open(p.addr, 30, Slow::PartialTlsHello, "/"));
    assert_eq!(conns.len(), 60);
    // Slowloris inside TLS: handshake done, half a request head, then nothing.
    let mut slow_heads = Vec::new();
    for _ in 0..10 {
        let mut s = tls_client(&p);
        s.write_all(
            b"POST /api/v1/waas/mpc/wallet/create_wallets HTTP/1.1\r\nHost: x\r\nBIZ-API-K",
        )
        .unwrap();
        s.flush().unwrap();
        slow_heads.push(s);
    }
    assert_eq!(
        still_open_after(conns, Duration::from_secs(60)),
        0,
        "TLS handshakes still open after 60 s"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    for mut s in slow_heads {
        s.sock
            .set_read_timeout(Some(
                deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1),
            ))
            .unwrap();
        let mut buf = Vec::new();
        match s.read_to_end(&mut buf) {
            Ok(_) => {}
            Err(e) => assert!(
                !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "a slow request head inside TLS was still open after 60 s"
            ),
        }
    }
}

#[test]
fn oversized_body_is_refused_before_authentication() {
    let p = start();
    let mut s = tls_client(&p);
    // No authentication headers at all, 100 MB announced, nothing sent.
    s.write_all(
        b"POST /api/v1/waas/mpc/wallet/create_wallets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n",
    )
    .unwrap();
    s.flush().unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(
        reply.contains(&format!("larger than {} bytes", mpc_api::MAX_BODY_BYTES)),
        "{reply}"
    );
    assert!(reply.contains("\"success\":false"), "{reply}");
}

/// Peak resident memory (VmHWM) of a process, KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One unauthenticated client: TLS, WebSocket upgrade to /proxy, then one 8 MiB binary message
/// that is a CBOR array of tiny items (the attack). Returns once the server closed
/// the connection or 60 s passed.
fn big_frame_client(p: &Platform) {
    let mut s = tls_client(p);
    s.write_all(
        b"GET /proxy HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    s.flush().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    const LEN: usize = 8 * 1024 * 1024 - 64;
    // CBOR: array with a 4-byte length, then LEN - 5 zeros (each the integer 0).
    let mut payload = vec![0u8; LEN];
    payload[0] = 0x9a;
    payload[1..5].copy_from_slice(&((LEN - 5) as u32).to_be_bytes());
    // Client frames are masked; a zero mask leaves the payload as it is.
    let mut frame = vec![0x82, 0x80 | 127];
    frame.extend_from_slice(&(LEN as u64).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    s.sock
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let _ = s.write_all(&frame);
    for chunk in payload.chunks(64 * 1024) {
        if s.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = s.flush();
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match s.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// 24 unauthenticated clients, one 8 MiB frame each: the platform's peak RSS grows by a
/// bounded amount (the pre-authentication budget is a few KiB per connection; before it, the
/// same attack raised the peak by hundreds of MiB). The measured growth is printed.
#[test]
fn unauthenticated_big_frames_cost_bounded_memory() {
    let p = start();
    // Warm up: one ordinary exchange, so lazily built state is in the baseline.
    {
        let mut s = tls_client(&p);
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
    }
    let pid = p.child.id();
    let before = peak_rss_kib(pid);
    std::thread::scope(|sc| {
        for _ in 0..24 {
            sc.spawn(|| big_frame_client(&p));
        }
    });
    let after = peak_rss_kib(pid);
    let grown_mib = (after.saturating_sub(before)) as f64 / 1024.0;
    println!(
        "peak RSS before {} MiB, after {} MiB: +{grown_mib:.1} MiB for 24 unauthenticated 8 MiB frames",
        before / 1024,
        after / 1024
    );
    assert!(
        grown_mib < 48.0,
        "24 unauthenticated 8 MiB frames raised peak RSS by {grown_mib:.1} MiB"
    );
}
