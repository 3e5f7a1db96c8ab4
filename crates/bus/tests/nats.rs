//! The NATS bus against a real `nats-server` (Debian's package, a private instance on
//! loopback): both flows between two connections as a proxy and a coordinator would hold
//! them, junk and misrouted messages dropped without losing the next one, a server restart
//! survived (messages in flight may be lost; later ones arrive), and a clear error when no
//! server answers. Every wait is bounded.

use std::time::Duration;

use mpc_bus::nats::{NatsBus, node_token};
use mpc_bus::{Bus, Delivery, ProxyEvent, Subscription, codec};
use mpc_services::NatsServer;
use mpc_transport::keys::TransportCert;

const STEP: Duration = Duration::from_secs(10);

async fn next<T>(sub: &mut Subscription<T>) -> T {
    tokio::time::timeout(STEP, sub.recv())
        .await
        .expect("no message within 10 s")
        .expect("subscription closed")
}

fn delivery(node: &str, i: u8) -> Delivery {
    Delivery {
        node_id: node.into(),
        frame: vec![i; 3],
    }
}

async fn pair(url: &str) -> (NatsBus, NatsBus) {
    let proxy = NatsBus::connect(url, "test-proxy").await.unwrap();
    let coordinator = NatsBus::connect(url, "test-coordinator").await.unwrap();
    (proxy, coordinator)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_flows_cross_the_bus_and_bad_messages_are_dropped() {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let (proxy, coordinator) = pair(&server.url()).await;
    let mut deliveries = proxy.subscribe_deliveries().await.unwrap();
    let mut events = coordinator.subscribe_events().await.unwrap();

    // Deliveries for two nodes, in order; one of 2 MiB (the largest task frame).
    for i in 0..3u8 {
        coordinator.deliver(delivery("node-x", i)).await.unwrap();
        coordinator.deliver(delivery("node-y", i)).await.unwrap();
    }
    let big = Delivery {
        node_id: "node-x".into(),
        frame: vec![9; 2 * 1024 * 1024],
    };
    coordinator.deliver(big.clone()).await.unwrap();
    for i in 0..3u8 {
        assert_eq!(next(&mut deliveries).await, delivery("node-x", i));
        assert_eq!(next(&mut deliveries).await, delivery("node-y", i));
    }
    assert_eq!(next(&mut deliveries).await, big);

    // Events of each kind.
    let all = [
        ProxyEvent::NodeOnline {
            node_id: "node-x".into(),
            organization_id: "org-1".into(),
            party: "a".into(),
            transport_cert: TransportCert {
                node_id: "node-x".into(),
                x25519_public: [5; 32],
                signature: "30".into(),
            },
            connection: "p1/1".into(),
        },
        ProxyEvent::TaskResult {
            node_id: "node-x".into(),
            party: "a".into(),
            result: vec![1, 2],
        },
        ProxyEvent::NodeOffline {
            node_id: "node-x".into(),
            connection: "p1/1".into(),
        },
    ];
    for e in &all {
        proxy.publish(e.clone()).await.unwrap();
    }
    for e in &all {
        assert_eq!(&next(&mut events).await, e);
    }

    // Junk on the events subject, a delivery published on another node's subject, junk on a
    // delivery subject: each dropped; the next good message arrives.
    let raw = async_nats::connect(server.url()).await.unwrap();
    let prefix = coordinator.prefix().to_owned();
    raw.publish(format!("{prefix}.events"), vec![0xff, 0x00].into())
        .await
        .unwrap();
    raw.publish(
        format!("{prefix}.deliver.{}", node_token("node-y")),
        codec::encode_delivery(&delivery("node-x", 7)).into(),
    )
    .await
    .unwrap();
    raw.publish(
        format!("{prefix}.deliver.{}", node_token("node-x")),
        b"not cbor".to_vec().into(),
    )
    .await
    .unwrap();
    // A round trip on that connection: the server has routed the three before the good ones.
    let sync = raw
        .request(format!("{prefix}.sync"), Vec::new().into())
        .await;
    assert!(
        matches!(&sync, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders),
        "{sync:?}"
    );
    proxy.publish(all[2].clone()).await.unwrap();
    coordinator.deliver(delivery("node-y", 8)).await.unwrap();
    assert_eq!(next(&mut events).await, all[2]);
    assert_eq!(next(&mut deliveries).await, delivery("node-y", 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_is_survived() {
    let mut server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let (proxy, coordinator) = pair(&server.url()).await;
    let mut deliveries = proxy.subscribe_deliveries().await.unwrap();
    coordinator.deliver(delivery("n", 1)).await.unwrap();
    assert_eq!(next(&mut deliveries).await, delivery("n", 1));

    server = tokio::task::spawn_blocking(move || {
        server.restart().unwrap();
        server
    })
    .await
    .unwrap();
    // Both clients reconnect and resubscribe by themselves. Messages sent meanwhile may be
    // lost (core NATS keeps nothing): send until one arrives, at most 150 tries of 200 ms.
    let mut tries = 0u32;
    let got = loop {
        assert!(
            tries < 150,
            "nothing crossed the bus 30 s after the restart"
        );
        tries += 1;
        let _ = coordinator.deliver(delivery("n", 10)).await;
        if let Ok(Some(d)) =
            tokio::time::timeout(Duration::from_millis(200), deliveries.recv()).await
        {
            break d;
        }
    };
    assert_eq!(got, delivery("n", 10));
    // Drain what else of the retries arrives, then: in order and complete.
    while tokio::time::timeout(Duration::from_millis(300), deliveries.recv())
        .await
        .is_ok()
    {}
    for j in 200..205u8 {
        coordinator.deliver(delivery("n", j)).await.unwrap();
    }
    for j in 200..205u8 {
        assert_eq!(next(&mut deliveries).await, delivery("n", j));
    }
    tokio::task::spawn_blocking(move || drop(server))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_is_a_clear_error_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://user:secret@127.0.0.1:{port}");
    let e = NatsBus::connect(&url, "t").await.unwrap_err().to_string();
    assert!(
        e.contains(&format!("cannot reach NATS at nats://127.0.0.1:{port}")),
        "{e}"
    );
    assert!(!e.contains("secret"), "{e}");
}
