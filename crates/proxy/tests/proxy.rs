//! The proxy over real sockets on 127.0.0.1: TLS with a test CA (rcgen), the real
//! `InProcessBus` (and a real nats-server where proxies share a bus), a fake node directory,
//! tokio-tungstenite clients.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use mpc_bus::{Bus, Delivery, ProxyEvent};
use mpc_proxy::ProxyConfig;
use mpc_transport::frame::{Abort, Frame};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn authenticated_node_comes_online() {
    let mut h = start(default_config(), true).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "b");
    let mut ws = h.connect(&node).await;
    let ProxyEvent::NodeOnline {
        node_id,
        organization_id,
        party,
        transport_cert,
        connection,
    } = h.next_event().await
    else {
        panic!("expected NodeOnline")
    };
    assert_eq!(
        (
            node_id,
            organization_id.as_str(),
            party.as_str(),
            transport_cert
        ),
        (node.node_id.clone(), "org-1", "b", node.cert.clone())
    );
    // `<proxy instance>/<connection number>`.
    assert!(connection.contains('/'), "{connection}");
    assert!(h.proxy.is_connected(&node.node_id));
    assert_eq!(h.proxy.connected_nodes(), 1);
    assert_eq!(h.metric("mpc_proxy_connected_nodes "), 1.0);

    // Application heartbeat.
    send_frame(&mut ws, &Frame::Ping(42)).await;
    assert_eq!(recv_frame(&mut ws).await, Frame::Pong(42));

    // Closing ends it.
    ws.close(None).await.unwrap();
    // The connection that ended: the one announced.
    assert_eq!(
        h.next_event().await,
        ProxyEvent::NodeOffline {
            node_id: node.node_id.clone(),
            connection,
        }
    );
    assert!(!h.proxy.is_connected(&node.node_id));
    assert_eq!(h.proxy.connected_nodes(), 0);
}

#[tokio::test]
async fn authenticates_over_tls12_too() {
    let mut h = start(default_config(), true).await;
    h.client_tls = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(h.roots.clone())
            .with_no_client_auth(),
    );
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "a");
    let ws = h.online(&node).await;
    match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Rustls(s) => assert_eq!(
            s.get_ref().1.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_2)
        ),
        _ => panic!("not TLS"),
    }
}

#[tokio::test]
async fn plain_ws_uses_a_zero_exporter() {
    let mut h = start(default_config(), false).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "a");
    let mut ws = h.open().await;
    answer_challenge(&mut ws, &node, [0; 32]).await;
    assert!(matches!(
        h.next_event().await,
        ProxyEvent::NodeOnline { .. }
    ));
}

#[tokio::test]
async fn unbound_node_is_refused() {
    let mut h = start(default_config(), true).await;
    let node = Node::new();
    let mut ws = h.connect(&node).await;
    assert_eq!(close_reason(&mut ws).await, "unbound node");
    assert!(!h.proxy.is_connected(&node.node_id));
    assert_eq!(
        h.metric("mpc_proxy_auth_failures_total{reason=\"unbound_node\"} "),
        1.0
    );
    h.no_event_for(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn hello_signed_over_another_session_is_refused() {
    let mut h = start(default_config(), true).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "a");
    let mut ws = h.open().await;
    // Signed over zeros (as a relay to a plain connection would be) instead of this TLS
    // session's exporter.
    answer_challenge(&mut ws, &node, [0; 32]).await;
    assert_eq!(close_reason(&mut ws).await, "bad signature");
    assert_eq!(
        h.metric("mpc_proxy_auth_failures_total{reason=\"bad_signature\"} "),
        1.0
    );
    h.no_event_for(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn frames_other_than_hello_before_authentication_are_refused() {
    let h = start(default_config(), true).await;
    let mut ws = h.open().await;
    let _challenge = recv_frame(&mut ws).await;
    send_frame(&mut ws, &Frame::Ping(1)).await;
    assert_eq!(
        close_reason(&mut ws).await,
        "unexpected frame: ping (expected hello)"
    );
}

#[tokio::test]
async fn routes_p2p_to_the_receiver_and_broadcast_to_the_rest_of_the_organization() {
    let mut h = start(default_config(), true).await;
    let (na, nb, nc, other) = (Node::new(), Node::new(), Node::new(), Node::new());
    h.directory.bind(&na.node_id, "org-1", "a");
    h.directory.bind(&nb.node_id, "org-1", "b");
    h.directory.bind(&nc.node_id, "org-1", "c");
    h.directory.bind(&other.node_id, "org-2", "a");
    let mut a = h.online(&na).await;
    let mut b = h.online(&nb).await;
    let mut c = h.online(&nc).await;
    let mut o = h.online(&other).await;

    let p2p = protocol_frame("a", Some("b"), 1);
    let broadcast = protocol_frame("a", None, 2);
    send_bytes(&mut a, p2p.clone()).await;
    send_bytes(&mut a, broadcast.clone()).await;

    // b: the p2p frame then the broadcast, byte for byte as sent.
    assert_eq!(recv_bytes(&mut b).await, p2p);
    assert_eq!(recv_bytes(&mut b).await, broadcast);
    // c: only the broadcast (the p2p frame was queued first, so it would come first).
    assert_eq!(recv_bytes(&mut c).await, broadcast);
    // Neither the sender nor the other organization got anything: a sentinel delivery is the
    // first frame each of them sees.
    for node in [&na, &other] {
        h.bus
            .deliver(Delivery {
                node_id: node.node_id.clone(),
                frame: Frame::Ping(7).encode().unwrap(),
            })
            .await
            .unwrap();
    }
    assert_eq!(recv_frame(&mut a).await, Frame::Ping(7));
    assert_eq!(recv_frame(&mut o).await, Frame::Ping(7));

    // A p2p frame to a party that is not connected is dropped and counted.
    send_bytes(&mut a, protocol_frame("a", Some("d"), 3)).await;
    send_bytes(&mut a, protocol_frame("a", Some("c"), 4)).await;
    assert_eq!(recv_bytes(&mut c).await, protocol_frame("a", Some("c"), 4));
    assert_eq!(
        h.metric("mpc_proxy_frames_dropped_total{reason=\"offline\"} "),
        1.0
    );
    assert_eq!(
        h.metric("mpc_proxy_frames_routed_total{kind=\"protocol_p2p\"} "),
        2.0
    );
    assert_eq!(
        h.metric("mpc_proxy_frames_routed_total{kind=\"protocol_broadcast\"} "),
        2.0
    );
}

/// Two proxies sharing a NATS bus (a real nats-server): nodes of one organization held by
/// different proxies exchange p2p and broadcast frames through it, byte for byte; a frame is
/// never delivered twice (the origin proxy skips its own relays) and never to another
/// organization; a delivery from the coordinator reaches the node whichever proxy holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_sharing_a_bus_relay_frames_between_their_nodes() {
    let nats = tokio::task::spawn_blocking(mpc_services::NatsServer::start)
        .await
        .unwrap()
        .unwrap();
    let bus = |name: &'static str| {
        let url = nats.url();
        async move {
            Arc::new(mpc_bus::nats::NatsBus::connect(&url, name).await.unwrap()) as Arc<dyn Bus>
        }
    };
    let reannouncing = ProxyConfig {
        reannounce_interval: Duration::from_millis(200),
        ..default_config()
    };
    let mut h1 = start_on(reannouncing, true, bus("proxy-1").await).await;
    let h2 = start_on(default_config(), true, bus("proxy-2").await).await;
    let (na, nb, nc, other) = (Node::new(), Node::new(), Node::new(), Node::new());
    for h in [&h1, &h2] {
        h.directory.bind(&na.node_id, "org-1", "a");
        h.directory.bind(&nb.node_id, "org-1", "b");
        h.directory.bind(&nc.node_id, "org-1", "c");
        h.directory.bind(&other.node_id, "org-2", "a");
    }
    // a and the other organization's node on proxy 1; b and c on proxy 2.
    let mut a = h1.connect(&na).await;
    let mut o = h1.connect(&other).await;
    let mut b = h2.connect(&nb).await;
    let mut c = h2.connect(&nc).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(h1.proxy.is_connected(&na.node_id)
        && h1.proxy.is_connected(&other.node_id)
        && h2.proxy.is_connected(&nb.node_id)
        && h2.proxy.is_connected(&nc.node_id))
    {
        assert!(tokio::time::Instant::now() < end, "nodes not connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let p2p = protocol_frame("a", Some("b"), 1);
    let broadcast = protocol_frame("a", None, 2);
    send_bytes(&mut a, p2p.clone()).await;
    send_bytes(&mut a, broadcast.clone()).await;
    assert_eq!(recv_bytes(&mut b).await, p2p);
    assert_eq!(recv_bytes(&mut b).await, broadcast);
    assert_eq!(recv_bytes(&mut c).await, broadcast);
    // Back from proxy 2 to proxy 1: p2p c → a, and a broadcast of b reaching a (proxy 1) and
    // c (proxy 2, directly) once each.
    let back = protocol_frame("c", Some("a"), 3);
    send_bytes(&mut c, back.clone()).await;
    assert_eq!(recv_bytes(&mut a).await, back);
    let from_b = protocol_frame("b", None, 4);
    send_bytes(&mut b, from_b.clone()).await;
    assert_eq!(recv_bytes(&mut a).await, from_b);
    assert_eq!(recv_bytes(&mut c).await, from_b);
    // Sentinels: the next frame each node sees is the coordinator's delivery (through the
    // other proxy's bus connection), so nothing was duplicated or leaked to org-2.
    for node in [&na, &nb, &nc, &other] {
        h2.bus
            .deliver(Delivery {
                node_id: node.node_id.clone(),
                frame: Frame::Ping(9).encode().unwrap(),
            })
            .await
            .unwrap();
    }
    for ws in [&mut a, &mut b, &mut c, &mut o] {
        assert_eq!(recv_frame(ws).await, Frame::Ping(9));
    }
    assert_eq!(
        h1.metric("mpc_proxy_frames_routed_total{kind=\"relay_in\"} "),
        2.0
    );
    // Proxy 1 repeats NodeOnline for its nodes on the shared bus, always naming the same
    // connection (h1's subscription sees every proxy's events).
    let mut seen: Vec<String> = Vec::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.len() < 3 {
        assert!(tokio::time::Instant::now() < end, "{seen:?}");
        if let ProxyEvent::NodeOnline {
            node_id,
            connection,
            ..
        } = h1.next_event().await
            && node_id == na.node_id
        {
            seen.push(connection);
        }
    }
    assert!(seen.iter().all(|c| c == &seen[0]), "{seen:?}");
    // Proxy 2 took a's p2p frame to b and a's broadcast to b and c; proxy 1 took c's p2p
    // frame and b's broadcast to a.
    assert_eq!(
        h2.metric("mpc_proxy_frames_routed_total{kind=\"relay_in\"} "),
        3.0
    );
}

#[tokio::test]
async fn frame_with_a_forged_sender_is_dropped() {
    let mut h = start(default_config(), true).await;
    let (na, nb, nc) = (Node::new(), Node::new(), Node::new());
    h.directory.bind(&na.node_id, "org-1", "a");
    h.directory.bind(&nb.node_id, "org-1", "b");
    h.directory.bind(&nc.node_id, "org-1", "c");
    let mut a = h.online(&na).await;
    let _b = h.online(&nb).await;
    let mut c = h.online(&nc).await;

    // a claims to be b.
    send_bytes(&mut a, protocol_frame("b", Some("c"), 1)).await;
    send_bytes(&mut a, protocol_frame("b", None, 2)).await;
    let honest = protocol_frame("a", Some("c"), 3);
    send_bytes(&mut a, honest.clone()).await;
    assert_eq!(recv_bytes(&mut c).await, honest);
    assert_eq!(
        h.metric("mpc_proxy_frames_dropped_total{reason=\"wrong_sender\"} "),
        2.0
    );
    // The connection stays up.
    assert!(h.proxy.is_connected(&na.node_id));
}

#[tokio::test]
async fn newer_connection_replaces_the_older() {
    let mut h = start(default_config(), true).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "a");
    let mut first = h.online(&node).await;
    let mut second = h.online(&node).await;
    assert_eq!(close_reason(&mut first).await, "replaced");
    drop(first);
    // No NodeOffline for the replaced connection: the newer one is there.
    h.no_event_for(Duration::from_millis(300)).await;
    assert!(h.proxy.is_connected(&node.node_id));
    assert_eq!(h.proxy.connected_nodes(), 1);

    // The newer one works, and its end is the node's end.
    send_frame(&mut second, &Frame::Ping(3)).await;
    assert_eq!(recv_frame(&mut second).await, Frame::Pong(3));
    second.close(None).await.unwrap();
    assert!(matches!(
        h.next_event().await,
        ProxyEvent::NodeOffline { node_id, .. } if node_id == node.node_id
    ));
    assert!(!h.proxy.is_connected(&node.node_id));
}

#[tokio::test]
async fn deliveries_reach_the_node_and_offline_ones_are_dropped() {
    let mut h = start(default_config(), true).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "c");
    let mut ws = h.online(&node).await;
    let task = Frame::Task(vec![1, 2, 3]).encode().unwrap();
    h.bus
        .deliver(Delivery {
            node_id: node.node_id.clone(),
            frame: task.clone(),
        })
        .await
        .unwrap();
    assert_eq!(recv_bytes(&mut ws).await, task);

    h.bus
        .deliver(Delivery {
            node_id: "sino-not-connected".into(),
            frame: task.clone(),
        })
        .await
        .unwrap();
    let abort = Frame::Abort(Abort {
        execution_id: [5; 32],
        reason: "deadline".into(),
    })
    .encode()
    .unwrap();
    h.bus
        .deliver(Delivery {
            node_id: node.node_id.clone(),
            frame: abort.clone(),
        })
        .await
        .unwrap();
    assert_eq!(recv_bytes(&mut ws).await, abort);
    assert_eq!(
        h.metric("mpc_proxy_frames_dropped_total{reason=\"offline\"} "),
        1.0
    );
    assert_eq!(
        h.metric("mpc_proxy_frames_routed_total{kind=\"delivery\"} "),
        2.0
    );
}

#[tokio::test]
async fn task_results_become_events() {
    let mut h = start(default_config(), true).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "b");
    let mut ws = h.online(&node).await;
    send_frame(&mut ws, &Frame::TaskResult(vec![9, 8, 7])).await;
    assert_eq!(
        h.next_event().await,
        ProxyEvent::TaskResult {
            node_id: node.node_id.clone(),
            party: "b".into(),
            result: vec![9, 8, 7],
        }
    );
}

#[tokio::test]
async fn protocol_violations_close_with_a_reason() {
    let mut h = start(default_config(), true).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "a");

    let mut ws = h.online(&node).await;
    send_bytes(&mut ws, vec![0xff, 0x00]).await;
    let reason = close_reason(&mut ws).await;
    assert!(reason.starts_with("malformed frame: "), "{reason}");
    assert!(matches!(
        h.next_event().await,
        ProxyEvent::NodeOffline { .. }
    ));

    let mut ws = h.online(&node).await;
    let abort = Frame::Abort(Abort {
        execution_id: [0; 32],
        reason: "x".into(),
    });
    send_frame(&mut ws, &abort).await;
    assert_eq!(close_reason(&mut ws).await, "unexpected frame: abort");
    assert!(matches!(
        h.next_event().await,
        ProxyEvent::NodeOffline { .. }
    ));

    let mut ws = h.online(&node).await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(close_reason(&mut ws).await, "text message");
    assert!(matches!(
        h.next_event().await,
        ProxyEvent::NodeOffline { .. }
    ));
}

#[tokio::test]
async fn oversize_frame_closes_the_connection() {
    let config = ProxyConfig {
        max_frame_bytes: 4096,
        ..default_config()
    };
    let mut h = start(config, true).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "a");
    let mut ws = h.online(&node).await;
    // Just under the limit is fine.
    send_bytes(&mut ws, protocol_frame_sized("a", None, 1, 3000)).await;
    send_frame(&mut ws, &Frame::Ping(1)).await;
    assert_eq!(recv_frame(&mut ws).await, Frame::Pong(1));
    // Over it is not.
    send_bytes(&mut ws, protocol_frame_sized("a", None, 2, 10_000)).await;
    let reason = close_reason(&mut ws).await;
    assert!(reason.starts_with("frame too large"), "{reason}");
    assert!(matches!(
        h.next_event().await,
        ProxyEvent::NodeOffline { node_id, .. } if node_id == node.node_id
    ));
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let config = ProxyConfig {
        idle_timeout: Duration::from_millis(600),
        ping_interval: Duration::from_secs(60),
        ..default_config()
    };
    let mut h = start(config, true).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "a");
    let mut ws = h.online(&node).await;
    assert_eq!(close_reason(&mut ws).await, "idle timeout");
    assert!(matches!(
        h.next_event().await,
        ProxyEvent::NodeOffline { .. }
    ));
}

#[tokio::test]
async fn pings_keep_a_reading_client_alive() {
    // The client answers the proxy's WebSocket pings (tungstenite does so while reading), and
    // the pongs count as inbound traffic.
    let config = ProxyConfig {
        idle_timeout: Duration::from_millis(800),
        ping_interval: Duration::from_millis(100),
        ..default_config()
    };
    let mut h = start(config, true).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "a");
    let mut ws = h.online(&node).await;
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        use futures_util::StreamExt;
        match tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(other))) => panic!("unexpected {other:?}"),
            Ok(other) => panic!("connection ended: {other:?}"),
            Err(_) => {}
        }
    }
    assert!(pings >= 5, "{pings} pings");
    assert!(h.proxy.is_connected(&node.node_id));
    h.no_event_for(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn slow_consumer_is_disconnected_with_bounded_queue() {
    const QUEUE_BYTES: usize = 256 * 1024;
    const FRAME: usize = 64 * 1024;
    let config = ProxyConfig {
        max_frame_bytes: 1024 * 1024,
        queue_frames: 8,
        queue_bytes: QUEUE_BYTES,
        slow_consumer_grace: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(120),
        ping_interval: Duration::from_secs(120),
        ..default_config()
    };
    let mut h = start(config, true).await;
    let (fast, slow) = (Node::new(), Node::new());
    h.directory.bind(&fast.node_id, "org-1", "a");
    h.directory.bind(&slow.node_id, "org-1", "b");
    let mut a = h.online(&fast).await;
    // The slow node authenticates, then never reads again.
    let mut b = h.open_small_buffer().await;
    let ex = exporter(&b);
    answer_challenge(&mut b, &slow, ex).await;
    assert!(matches!(
        h.next_event().await,
        ProxyEvent::NodeOnline { .. }
    ));

    let frame = protocol_frame_sized("a", Some("b"), 1, FRAME);
    let started = tokio::time::Instant::now();
    let mut sent = 0;
    let mut max_queued = 0;
    while h.proxy.is_connected(&slow.node_id) {
        assert!(sent < 4000, "slow node still connected after {sent} frames");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "slow node still connected after 60 s"
        );
        send_bytes(&mut a, frame.clone()).await;
        sent += 1;
        let queued = h.proxy.queued_bytes();
        max_queued = max_queued.max(queued);
        assert!(queued <= QUEUE_BYTES, "{queued} bytes queued");
        if sent % 32 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(matches!(
        h.next_event().await,
        ProxyEvent::NodeOffline { node_id, .. } if node_id == slow.node_id
    ));
    assert!(max_queued > 0);
    assert!(h.metric("mpc_proxy_frames_dropped_total{reason=\"queue_full\"} ") > 0.0);
    assert_eq!(
        h.metric("mpc_proxy_disconnects_total{reason=\"slow_consumer\"} "),
        1.0
    );
    // The sender is unaffected.
    assert!(h.proxy.is_connected(&fast.node_id));
    send_frame(&mut a, &Frame::Ping(9)).await;
    assert_eq!(recv_frame(&mut a).await, Frame::Pong(9));
    drop(b);
}

#[tokio::test]
async fn request_without_exporter_is_refused() {
    // The router served by plain axum (no TlsExporter extension): refused with 500.
    let h = start(default_config(), false).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.proxy.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let err = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{addr}/proxy")),
    )
    .await
    .unwrap()
    .unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 500),
        other => panic!("expected an HTTP error, got {other}"),
    }
}

#[tokio::test]
async fn shutdown_closes_connections() {
    let mut h = start(default_config(), true).await;
    let node = Node::new();
    h.directory.bind(&node.node_id, "org-1", "a");
    let mut ws = h.online(&node).await;
    h.stop.send(true).unwrap();
    assert_eq!(close_reason(&mut ws).await, "shutdown");
    assert!(matches!(
        h.next_event().await,
        ProxyEvent::NodeOffline { .. }
    ));
}

#[test]
fn tls_config_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.crt");
    let err = mpc_proxy::tls::load_server_config(&missing, dir.path().join("nope.key"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.crt"), "{err}");

    let (_, _) = test_pki(dir.path());
    let empty = dir.path().join("empty.key");
    std::fs::write(&empty, "").unwrap();
    let err = mpc_proxy::tls::load_server_config(dir.path().join("server.crt"), &empty)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty.key"), "{err}");
    assert!(err.contains("no private key"), "{err}");
}

#[tokio::test]
async fn silent_client_is_refused_after_the_hello_timeout() {
    let h = start(default_config(), true).await;
    let mut ws = h.open().await;
    let started = std::time::Instant::now();
    let _challenge = recv_frame(&mut ws).await;
    let reason =
        close_reason_within(&mut ws, mpc_proxy::HELLO_TIMEOUT + Duration::from_secs(5)).await;
    assert_eq!(reason, "hello timeout");
    assert!(started.elapsed() >= mpc_proxy::HELLO_TIMEOUT - Duration::from_millis(100));
    assert_eq!(
        h.metric("mpc_proxy_auth_failures_total{reason=\"hello_timeout\"} "),
        1.0
    );
}
