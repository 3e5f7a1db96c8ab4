//! `mpc_httpd::serve` on 127.0.0.1:0 with short timeouts: slow clients are closed, bodies over
//! the limit are refused unread, complete requests are served, the connection cap holds.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use mpc_httpd::Limits;
use mpc_httpd::attack::{Slow, open, still_open_after};

fn limits(max_connections: usize, timeout: Duration) -> Limits {
    let mut l = Limits::new(1000, |status, reason| (status, reason).into_response());
    l.header_read = timeout;
    l.body_read = timeout;
    l.max_connections = max_connections;
    l
}

fn start(limits: Limits) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap()).unwrap();
            let app =
                Router::new().route("/echo", post(|b: Bytes| async move { (StatusCode::OK, b) }));
            mpc_httpd::serve(l, app, limits, std::future::pending())
                .await
                .unwrap();
        });
    });
    rx.recv().unwrap()
}

fn request(addr: std::net::SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn slow_clients_are_closed_and_limits_hold() {
    let addr = start(limits(100, Duration::from_secs(1)));
    let mut conns = open(addr, 10, Slow::Silent, "/echo");
    conns.extend(open(addr, 10, Slow::PartialHead, "/echo"));
    conns.extend(open(addr, 10, Slow::PartialBody, "/echo"));
    assert_eq!(conns.len(), 30);
    assert_eq!(still_open_after(conns, Duration::from_secs(30)), 0);

    let ok = request(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.ends_with("hello"), "{ok}");

    let big = request(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n",
    );
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    assert!(big.contains("larger than 1000 bytes"), "{big}");

    // Chunked, no length announced: refused once it passes the limit.
    let mut chunked =
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        chunked.extend_from_slice(b"1f4\r\n");
        chunked.extend_from_slice(&[b'a'; 500]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = request(addr, &chunked);
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
}

#[test]
fn connections_beyond_the_cap_are_closed_at_accept() {
    // Timeouts far longer than the bound: only the cap can close the extra ones in time.
    let addr = start(limits(5, Duration::from_secs(120)));
    let held = open(addr, 5, Slow::Silent, "/echo");
    assert_eq!(held.len(), 5);
    // Give the server a moment to accept the five.
    std::thread::sleep(Duration::from_millis(300));
    let extra = open(addr, 3, Slow::Silent, "/echo");
    assert_eq!(
        still_open_after(extra, Duration::from_secs(20)),
        0,
        "connections over the cap were kept"
    );
    drop(held);
}
