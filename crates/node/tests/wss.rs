//! `wss` with a private CA (`[mpc-service] ca-cert-path`): a TLS WebSocket server on loopback
//! with a certificate from a test CA (rcgen) checks that the node's hello is bound to this TLS
//! session (the exporter both ends compute), then closes with `unbound node`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mpc_transport::auth::{Challenge, TLS_EXPORTER_LABEL, verify_hello};
use mpc_transport::frame::Frame;
use rand_core::OsRng;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_is_bound_to_the_tls_session_of_a_private_ca() {
    // Test CA and a server certificate for 127.0.0.1.
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls_pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der()).into(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let exporter = tls
            .get_ref()
            .1
            .export_keying_material([0u8; 32], TLS_EXPORTER_LABEL, None)
            .unwrap();
        let ws = tokio_tungstenite::accept_async(tls).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let challenge = Challenge::new(&mut OsRng);
        sink.send(Message::binary(
            Frame::Challenge(challenge.clone()).encode().unwrap(),
        ))
        .await
        .unwrap();
        let Some(Ok(Message::Binary(b))) = stream.next().await else {
            panic!("no hello")
        };
        let Frame::Hello(hello) = Frame::decode(&b).unwrap() else {
            panic!("not a hello")
        };
        let node = verify_hello(&hello, &challenge, &exporter).expect("bound to this session");
        // Not valid for another session (a relayed hello).
        assert!(verify_hello(&hello, &challenge, &[0; 32]).is_err());
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 4001.into(),
                reason: "unbound node".into(),
            })))
            .await;
        done_tx.send(node.node_id().to_owned()).unwrap();
    });

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[log.file]\nenable = false\n\n[storage]\ndb-file-path = \"asset.db\"\nunseal-server-address = \"127.0.0.1:0\"\n\n[mpc-service]\nprotocol = \"wss\"\naddress = \"{addr}\"\npath = \"/proxy\"\nca-cert-path = \"ca.pem\"\n"
        ),
    )
    .unwrap();
    let mut cfg = mpc_node::Config::load(&dir.path().join("config.toml")).unwrap();
    cfg.insecure_fast_kdf = true;
    cfg.insecure_test_primes = Some(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tss/tests/fixtures/test-primes.json"),
    );
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(mpc_node::run(cfg, api, async move {
        let _ = stopped.await;
    }));
    let client = mpc_node::client::Client::new(&api_addr.to_string()).unwrap();
    let r = client
        .post_bkey("/sys/init", "Correct-Horse-9")
        .await
        .unwrap();
    assert!(r.is_ok(), "{}", r.body);
    let node_id = r.data().unwrap()["node_id"].as_str().unwrap().to_owned();
    let r = client
        .post_bkey("/sys/in-bkey", "Correct-Horse-9")
        .await
        .unwrap();
    assert!(r.is_ok(), "{}", r.body);

    let authenticated = tokio::time::timeout(Duration::from_secs(30), done_rx)
        .await
        .expect("the node connected over wss")
        .unwrap();
    assert_eq!(authenticated, node_id);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), node)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
