//! One role per process: a coordinator process and a proxy process (each `mpc_platform::run`
//! on its own listener, as `mpc-platform start --role …` runs them) sharing a real PostgreSQL
//! and a real nats-server. Three nodes connect to the proxy process: it admits them from the
//! bindings in the shared store (no coordinator in its process), the coordinator process learns
//! they are online over the bus (it records when it last saw each), starts the automatic key
//! generation and its signed tasks reach every node through the proxy process. Then the
//! coordinator process stops mid-run: a second one fails its runs when its lease lapses.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mpc_coordinator::store::{KeyState, NodeBindingRow, OrganizationRow, PostgresOptions, Store};
use mpc_platform::PlatformConfig;
use mpc_platform::config::Role;
use mpc_transport::auth::{TLS_EXPORTER_LABEL, hello};
use mpc_transport::frame::Frame;
use mpc_transport::keys::TransportSecret;
use mpc_transport::p256::ecdsa::SigningKey;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream};

const WAIT: Duration = Duration::from_secs(20);

type Ws = tokio_tungstenite::WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

struct Process {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), mpc_platform::Error>>,
}

async fn start(cfg: &PlatformConfig, role: Role) -> Process {
    let mut cfg = cfg.clone();
    cfg.roles = vec![role];
    cfg.validate().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(mpc_platform::run(cfg, listener, async move {
        let _ = stopped.await;
    }));
    Process {
        addr,
        stop: Some(stop),
        task,
    }
}

impl Process {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// A node: identity, transport certificate, and its authenticated WebSocket.
async fn connect_node(
    proxy: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    identity: &SigningKey,
) -> Ws {
    let url = format!("wss://127.0.0.1:{}/proxy", proxy.port());
    let (mut ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async_tls_with_config(
            url,
            None,
            true,
            Some(Connector::Rustls(tls)),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let mut exporter = [0u8; 32];
    match ws.get_ref() {
        MaybeTlsStream::Rustls(s) => s
            .get_ref()
            .1
            .export_keying_material(&mut exporter, TLS_EXPORTER_LABEL, None)
            .unwrap(),
        _ => panic!("not TLS"),
    };
    let challenge = match next_frame(&mut ws).await {
        Frame::Challenge(c) => c,
        other => panic!("expected the challenge, got {other:?}"),
    };
    let identity = mpc_wire::signature::EcdsaSigner::new(identity);
    let cert = TransportSecret::generate(&mut rand_core::OsRng).certify(&identity);
    let h = Frame::Hello(hello(&identity, &challenge, &exporter, cert));
    ws.send(Message::binary(h.encode().unwrap())).await.unwrap();
    ws
}

async fn next_frame(ws: &mut Ws) -> Frame {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => return Frame::decode(&b).unwrap(),
            Ok(Some(Ok(Message::Close(c)))) => panic!("closed: {c:?}"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no frame: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_process_and_a_proxy_process_share_postgres_and_nats() {
    let (pg, nats) = tokio::task::spawn_blocking(|| {
        (
            mpc_services::Postgres::start().unwrap(),
            mpc_services::NatsServer::start().unwrap(),
        )
    })
    .await
    .unwrap();
    let database = pg.create_database("platform").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    std::fs::write(dir.path().join("server.crt"), cert.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("server.key"),
        cert.signing_key.serialize_pem(),
    )
    .unwrap();
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntls-cert-path = {crt:?}\ntls-key-path = {key:?}\n\n[coordinator]\ndatabase = {database:?}\ndefault-ecdsa-protocol = \"dkls23\"\ntask-signing-key-path = {tk:?}\naudit-log = {audit:?}\n\n[bus]\nurl = {url:?}\n",
        crt = dir.path().join("server.crt").display().to_string(),
        key = dir.path().join("server.key").display().to_string(),
        tk = dir.path().join("task-signing.key").display().to_string(),
        // In the test's directory: `parse` does not resolve relative paths (the default
        // `audit.log` would land in the crate's source directory).
        audit = dir.path().join("audit.log").display().to_string(),
        url = nats.url(),
    );
    let cfg = PlatformConfig::parse(&toml, "platform.toml").unwrap();
    let coordinator = start(&cfg, Role::Coordinator).await;
    let proxy = start(&cfg, Role::Proxy).await;

    // The organization and its bindings, as the admin API would write them.
    let store: Arc<dyn Store> = {
        let database = database.clone();
        tokio::task::spawn_blocking(move || {
            mpc_coordinator::store::open(&database, &PostgresOptions::default()).unwrap()
        })
        .await
        .unwrap()
    };
    let identities: Vec<SigningKey> = (1..=3u8)
        .map(|i| SigningKey::from_slice(&[0x50 + i; 32]).unwrap())
        .collect();
    let node_ids: Vec<String> = identities
        .iter()
        .map(|k| mpc_wire::keys::node_id(k.verifying_key()))
        .collect();
    {
        let (store, node_ids) = (store.clone(), node_ids.clone());
        tokio::task::spawn_blocking(move || {
            store
                .create_organization(&OrganizationRow {
                    id: "org-1".into(),
                    name: "acme".into(),
                    vault_id: "vault-1".into(),
                    created_at: 1,
                    ecdsa_protocol: mpc_transport::task::EcdsaProtocol::Dkls23,
                })
                .unwrap();
            for (party, node_id) in ["a", "b", "c"].iter().zip(&node_ids) {
                store
                    .bind_node(&NodeBindingRow {
                        node_id: node_id.clone(),
                        organization_id: "org-1".into(),
                        party: (*party).into(),
                        created_at: 1,
                        last_seen_at: None,
                    })
                    .unwrap();
            }
        })
        .await
        .unwrap();
    }

    // The nodes connect to the proxy process, which admits them from the shared store.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let mut nodes = Vec::new();
    for id in &identities {
        nodes.push(connect_node(proxy.addr, tls.clone(), id).await);
    }

    // The coordinator process learns they are online (over NATS) and records it.
    let end = tokio::time::Instant::now() + WAIT;
    loop {
        let (store, ids) = (store.clone(), node_ids.clone());
        let seen = tokio::task::spawn_blocking(move || {
            ids.iter()
                .all(|id| store.binding(id).unwrap().unwrap().last_seen_at.is_some())
        })
        .await
        .unwrap();
        if seen {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "the coordinator did not see the nodes online"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its automatic key generation reaches every node through the proxy process, signed with
    // the coordinator process's task-signing key.
    let (platform_key, _) =
        mpc_platform::task_key::load_or_create(&dir.path().join("task-signing.key")).unwrap();
    for ws in &mut nodes {
        let task = loop {
            match next_frame(ws).await {
                Frame::Task(bytes) => break bytes,
                Frame::Ping(_) | Frame::Pong(_) => continue,
                other => panic!("expected a task, got {other:?}"),
            }
        };
        let signed = mpc_transport::signed::SignedTask::decode(&task).unwrap();
        let task = signed
            .verify(platform_key.verifying_key())
            .unwrap()
            .into_task();
        assert!(
            matches!(task.body, mpc_transport::task::TaskBody::Keygen(_)),
            "not a keygen task: {task:?}"
        );
    }
    assert!(coordinator.addr != proxy.addr);

    // The coordinator process stops while its key generations run (the nodes never answer). A
    // second coordinator process takes no part in them, and fails them once the first one's
    // lease lapses: nothing stays "generating".
    coordinator.stop().await;
    let second = start(&cfg, Role::Coordinator).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    let keys = loop {
        let store = store.clone();
        let keys = tokio::task::spawn_blocking(move || store.keys(Some("org-1")).unwrap())
            .await
            .unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
        if keys.iter().all(|k| k.status == KeyState::Failed) {
            break keys;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "the stopped coordinator's key generations were not ended: {keys:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for k in &keys {
        assert!(
            k.failure_reason
                .contains("the coordinator driving it stopped"),
            "{k:?}"
        );
    }
    second.stop().await;
    proxy.stop().await;
    drop(nats);
    drop(pg);
}
