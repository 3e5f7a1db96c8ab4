//! Test harness: a proxy served over TLS (test CA made with rcgen) or plain TCP on 127.0.0.1,
//! the real `InProcessBus`, a fake `NodeDirectory`, and WebSocket node clients.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mpc_bus::{Binding, Bus, BusFuture, InProcessBus, NodeDirectory, ProxyEvent, Subscription};
use mpc_proxy::{Proxy, ProxyConfig, tls};
use mpc_transport::auth::{Challenge, TLS_EXPORTER_LABEL, hello};
use mpc_transport::frame::Frame;
use mpc_transport::keys::{TransportCert, TransportSecret};
use mpc_transport::seal::{EnvelopeHeader, SealedBody, SealedEnvelope};
use mpc_wire::p256::ecdsa::SigningKey;
use prometheus_client::registry::Registry;
use rand_core::OsRng;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// Bound of every single wait in the tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Default)]
pub struct FakeDirectory(Mutex<HashMap<String, Binding>>);

impl FakeDirectory {
    pub fn bind(&self, node_id: &str, organization_id: &str, party: &str) {
        self.0.lock().unwrap().insert(
            node_id.to_owned(),
            Binding {
                organization_id: organization_id.to_owned(),
                party: party.to_owned(),
            },
        );
    }
}

impl NodeDirectory for FakeDirectory {
    fn binding<'a>(&'a self, node_id: &'a str) -> BusFuture<'a, Option<Binding>> {
        let found = self.0.lock().unwrap().get(node_id).cloned();
        Box::pin(async move { Ok(found) })
    }
}

pub struct Harness {
    pub addr: SocketAddr,
    pub tls: bool,
    pub proxy: Arc<Proxy>,
    pub bus: Arc<dyn Bus>,
    pub events: Subscription<ProxyEvent>,
    pub directory: Arc<FakeDirectory>,
    pub registry: Registry,
    pub client_tls: Arc<rustls::ClientConfig>,
    /// The roots trusting the test CA (to build other client configurations).
    pub roots: rustls::RootCertStore,
    pub stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A test CA and a server certificate for 127.0.0.1, written as PEM files; returns the
/// server config (through `load_server_config`) and a client config trusting the CA.
pub fn test_pki(dir: &std::path::Path) -> (rustls::ServerConfig, Arc<rustls::ClientConfig>) {
    let (server, roots) = test_pki_roots(dir);
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (server, Arc::new(client))
}

/// Like [`test_pki`], returning the roots a client trusts.
pub fn test_pki_roots(dir: &std::path::Path) -> (rustls::ServerConfig, rustls::RootCertStore) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mpc-proxy test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let cert_path = dir.join("server.crt");
    let key_path = dir.join("server.key");
    std::fs::write(&cert_path, server_cert.pem() + &ca.pem()).unwrap();
    std::fs::write(&key_path, server_key.serialize_pem()).unwrap();
    let server = tls::load_server_config(&cert_path, &key_path).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    (server, roots)
}

pub async fn start(config: ProxyConfig, use_tls: bool) -> Harness {
    start_on(config, use_tls, Arc::new(InProcessBus::new())).await
}

/// A proxy on `bus` (e.g. one of several proxies sharing a NATS bus).
pub async fn start_on(config: ProxyConfig, use_tls: bool, bus: Arc<dyn Bus>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (server_tls, roots) = test_pki_roots(dir.path());
    let client_tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth(),
    );
    let events = bus.subscribe_events().await.unwrap();
    let directory = Arc::new(FakeDirectory::default());
    let mut registry = Registry::default();
    let proxy = Proxy::new(
        config,
        bus.clone(),
        directory.clone() as Arc<dyn NodeDirectory>,
        &mut registry,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    tokio::spawn(proxy.clone().run(until(stop_rx.clone())));
    let app = proxy.router();
    if use_tls {
        tokio::spawn(tls::serve_tls(
            listener,
            Arc::new(server_tls),
            app,
            until(stop_rx),
        ));
    } else {
        tokio::spawn(tls::serve_plain(listener, app, until(stop_rx)));
    }
    Harness {
        addr,
        tls: use_tls,
        proxy,
        bus,
        events,
        directory,
        registry,
        client_tls,
        roots,
        stop,
        _dir: dir,
    }
}

pub struct Node {
    pub key: mpc_wire::signature::EcdsaSigner,
    pub node_id: String,
    pub cert: TransportCert,
}

impl Node {
    pub fn new() -> Self {
        let key = mpc_wire::signature::EcdsaSigner::new(&SigningKey::random(&mut OsRng));
        let node_id = mpc_wire::keys::node_id(key.verifying_key());
        let cert = TransportSecret::generate(&mut OsRng).certify(&key);
        Node { key, node_id, cert }
    }
}

impl Harness {
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/proxy", self.addr)
    }

    fn connector(&self) -> Option<Connector> {
        self.tls.then(|| Connector::Rustls(self.client_tls.clone()))
    }

    /// Opens a WebSocket to the proxy (no authentication yet).
    pub async fn open(&self) -> Ws {
        let config = WebSocketConfig::default().max_message_size(Some(64 << 20));
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async_tls_with_config(
                self.url(),
                Some(config),
                true,
                self.connector(),
            ),
        )
        .await
        .unwrap()
        .unwrap();
        ws
    }

    /// Opens a WebSocket over a socket with a tiny receive buffer (a client that never reads
    /// then fills up quickly).
    pub async fn open_small_buffer(&self) -> Ws {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket.connect(self.addr).await.unwrap();
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async_tls_with_config(
                self.url(),
                tcp,
                None,
                self.connector(),
            ),
        )
        .await
        .unwrap()
        .unwrap();
        ws
    }

    /// Connects and authenticates `node` (the proxy's answer is not awaited).
    pub async fn connect(&self, node: &Node) -> Ws {
        let mut ws = self.open().await;
        let ex = exporter(&ws);
        answer_challenge(&mut ws, node, ex).await;
        ws
    }

    /// Connects, authenticates, and waits for the node's `NodeOnline`.
    pub async fn online(&mut self, node: &Node) -> Ws {
        let ws = self.connect(node).await;
        match self.next_event().await {
            ProxyEvent::NodeOnline { node_id, .. } => assert_eq!(node_id, node.node_id),
            other => panic!("expected NodeOnline, got {other:?}"),
        }
        ws
    }

    pub async fn next_event(&mut self) -> ProxyEvent {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("no proxy event in time")
            .expect("bus closed")
    }

    /// No event arrives within `d`.
    pub async fn no_event_for(&mut self, d: Duration) {
        if let Ok(ev) = tokio::time::timeout(d, self.events.recv()).await {
            panic!("unexpected event {ev:?}");
        }
    }

    /// The value of a metric line of the registry's text encoding (0 when absent).
    pub fn metric(&self, line_prefix: &str) -> f64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0)
    }
}

/// The TLS exporter value of the client's end (32 zero bytes over plain `ws`).
pub fn exporter(ws: &Ws) -> [u8; 32] {
    let mut out = [0u8; 32];
    match ws.get_ref() {
        MaybeTlsStream::Rustls(s) => {
            s.get_ref()
                .1
                .export_keying_material(&mut out, TLS_EXPORTER_LABEL, None)
                .unwrap();
        }
        MaybeTlsStream::Plain(_) => {}
        _ => panic!("unexpected stream kind"),
    }
    out
}

/// Reads the challenge and answers it with a `Hello` signed over `exporter`.
pub async fn answer_challenge(ws: &mut Ws, node: &Node, exporter: [u8; 32]) {
    let challenge: Challenge = match recv_frame(ws).await {
        Frame::Challenge(c) => c,
        other => panic!("expected a challenge, got {other:?}"),
    };
    let h = hello(&node.key, &challenge, &exporter, node.cert.clone());
    send_frame(ws, &Frame::Hello(h)).await;
}

pub async fn send_frame(ws: &mut Ws, frame: &Frame) {
    send_bytes(ws, frame.encode().unwrap()).await;
}

pub async fn send_bytes(ws: &mut Ws, bytes: Vec<u8>) {
    tokio::time::timeout(WAIT, ws.send(Message::Binary(bytes.into())))
        .await
        .unwrap()
        .unwrap();
}

/// The next binary message's bytes (pings and pongs skipped).
pub async fn recv_bytes(ws: &mut Ws) -> Vec<u8> {
    for _ in 0..100 {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no message in time")
            .expect("stream ended")
            .expect("read error");
        match msg {
            Message::Binary(b) => return b.to_vec(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected message {other:?}"),
        }
    }
    panic!("only control messages");
}

pub async fn recv_frame(ws: &mut Ws) -> Frame {
    Frame::decode(&recv_bytes(ws).await).unwrap()
}

/// Reads until the proxy's close frame; returns its reason.
pub async fn close_reason(ws: &mut Ws) -> String {
    close_reason_within(ws, WAIT).await
}

/// Like [`close_reason`], waiting at most `wait` for each message.
pub async fn close_reason_within(ws: &mut Ws, wait: Duration) -> String {
    for _ in 0..1000 {
        let msg = tokio::time::timeout(wait, ws.next())
            .await
            .expect("no close in time");
        match msg {
            Some(Ok(Message::Close(Some(frame)))) => return frame.reason.to_string(),
            Some(Ok(Message::Close(None))) => return String::new(),
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("connection failed without a close frame: {e}"),
            None => panic!("connection ended without a close frame"),
        }
    }
    panic!("no close frame among 1000 messages");
}

/// A `Protocol` frame (broadcast body with a dummy signature: the proxy never checks it).
pub fn protocol_frame(sender: &str, receiver: Option<&str>, marker: u8) -> Vec<u8> {
    protocol_frame_sized(sender, receiver, marker, 8)
}

pub fn protocol_frame_sized(
    sender: &str,
    receiver: Option<&str>,
    marker: u8,
    payload_len: usize,
) -> Vec<u8> {
    Frame::Protocol(SealedEnvelope {
        header: EnvelopeHeader {
            version: 1,
            execution_id: [marker; 32],
            protocol: "ecdsa_sign".into(),
            round: 1,
            sender: sender.into(),
            receiver: receiver.map(Into::into),
            seq: u64::from(marker),
        },
        body: SealedBody::Broadcast {
            payload: vec![marker; payload_len],
            signature: "3006020101020101".into(),
        },
    })
    .encode()
    .unwrap()
}

pub fn default_config() -> ProxyConfig {
    ProxyConfig::default()
}
