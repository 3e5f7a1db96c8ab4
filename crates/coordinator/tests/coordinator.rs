// End-to-end tests of the coordinator: HTTP API in-process, fake nodes on the InProcessBus.
// (Plain comments: `coordinator_postgres.rs` includes this file to run it on PostgreSQL.)

mod common;
mod sdk;

use std::time::Duration;

use common::{Behaviour, Harness, test_config};
use mpc_api::types::admin::{self, KeyStatus};
use mpc_api::types::{
    self as t, AddressAlgorithm, AddressEncoding, GenAddressByPathResponse, RawSignAlgorithm,
    SignState,
};
use mpc_transport::task::{EcdsaProtocol, TaskBody};
use p256::ecdsa::SigningKey;

fn derive_bip32(root: &[u8; 33], cc: [u8; 32], path: &[u32]) -> [u8; 33] {
    use bip32::{ChildNumber, ExtendedKeyAttrs, ExtendedPublicKey, PublicKey};
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(root).unwrap();
    let attrs = ExtendedKeyAttrs {
        depth: 0,
        parent_fingerprint: [0; 4],
        child_number: ChildNumber(0),
        chain_code: cc,
    };
    let mut x = ExtendedPublicKey::new(vk, attrs);
    for i in path {
        x = x
            .derive_child(ChildNumber::new(*i, false).unwrap())
            .unwrap();
    }
    x.public_key().to_bytes()
}

async fn wallet(h: &Harness, vault: &str, rid: &str) -> String {
    let w: t::CreateWalletsResponse = h
        .user_call(
            t::PATH_CREATE_WALLETS,
            &t::CreateWalletsRequest {
                request_id: rid.into(),
                vault_id: vault.into(),
                count: 1,
                wallet_infos: vec![t::WalletInfo {
                    wallet_name: format!("w-{rid}"),
                    advanced_enabled: t::Switch::On,
                }],
            },
        )
        .await
        .unwrap();
    w[0].wallet_id.clone()
}

async fn gen_address(
    h: &Harness,
    vault: &str,
    wallet: &str,
    algo: AddressAlgorithm,
    coin: u32,
    index: u32,
) -> GenAddressByPathResponse {
    h.user_call(
        t::PATH_GEN_ADDRESS_BY_PATH,
        &t::GenAddressByPathRequest {
            vault_id: vault.into(),
            wallet_id: wallet.into(),
            index,
            algorithm_type: algo,
            coin_type: coin,
        },
    )
    .await
    .unwrap()
}

#[allow(clippy::too_many_arguments)]
async fn raw(
    h: &Harness,
    vault: &str,
    wallet: &str,
    rid: &str,
    path: &str,
    data: &[u8],
    algo: RawSignAlgorithm,
    root: Option<[u8; 32]>,
) -> t::SignResultResponse {
    let _: t::SignRawDataResponse = h
        .user_call(
            t::PATH_SIGN_RAW_DATA,
            &t::SignRawDataRequest {
                vault_id: vault.into(),
                request_id: rid.into(),
                wallet_id: wallet.into(),
                hd_path: path.into(),
                raw_data: hex::encode(data),
                algorithm_type: algo,
                tap_script_root: root.map(hex::encode).unwrap_or_default(),
            },
        )
        .await
        .unwrap();
    h.sign_result(rid).await
}

async fn personal(h: &Harness, rid: &str, path: &str, msg: &str) -> t::SignResultResponse {
    let _: t::SignMessageResponse = h
        .user_call(
            t::PATH_SIGN_MESSAGE,
            &t::SignMessageRequest {
                request_id: rid.into(),
                chain_symbol: "ETH".into(),
                hd_path: path.into(),
                sign_algorithm: t::SignAlgorithm::PersonalSign,
                message: msg.into(),
            },
        )
        .await
        .unwrap();
    h.sign_result(rid).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures() {
    let h = Harness::new(test_config(":memory:")).await;
    let (_org, vault) = h.setup_org().await;
    let user = h.user.lock().unwrap().clone().unwrap();
    let body = serde_json::to_vec(&t::SignResultRequest {
        request_id: Some("x".into()),
        sino_id: None,
        wait_ms: None,
    })
    .unwrap();

    // Bad signature: signed over another body.
    let mut headers = mpc_api::auth::sign_request(
        &mpc_wire::signature::EcdsaSigner::new(&user),
        t::PATH_SIGN_RESULT,
        b"{}",
        h.now(),
    );
    let (status, v) = h
        .post_with(t::PATH_SIGN_RESULT, body.clone(), &headers)
        .await;
    assert_eq!((status, v["code"].as_u64()), (401, Some(401)), "{v}");
    assert!(v["msg"].as_str().unwrap().contains("signature"), "{v}");

    // Unknown key.
    let stranger = SigningKey::from_slice(&[9; 32]).unwrap();
    let (status, v) = h
        .post_raw(&stranger, t::PATH_SIGN_RESULT, body.clone())
        .await;
    assert_eq!(status, 401);
    assert!(
        v["msg"].as_str().unwrap().contains("unknown API key"),
        "{v}"
    );

    // Replayed nonce: the same signed request twice.
    headers = mpc_api::auth::sign_request(
        &mpc_wire::signature::EcdsaSigner::new(&user),
        t::PATH_SIGN_RESULT,
        &body,
        h.now(),
    );
    let (_, v) = h
        .post_with(t::PATH_SIGN_RESULT, body.clone(), &headers)
        .await;
    assert_eq!(v["code"], 404, "first use authenticates: {v}");
    let (status, v) = h
        .post_with(t::PATH_SIGN_RESULT, body.clone(), &headers)
        .await;
    assert_eq!(status, 401);
    assert!(v["msg"].as_str().unwrap().contains("already used"), "{v}");

    // An API user is not an admin, and an admin is no API user.
    let (status, _) = h
        .post_raw(
            &user,
            admin::PATH_CREATE_ORGANIZATION,
            br#"{"name":"x"}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 401);
    let admin_key = h.admin.clone();
    let (status, _) = h
        .post_raw(
            &admin_key,
            t::PATH_CREATE_WALLETS,
            format!(r#"{{"requestId":"r","vaultId":"{vault}"}}"#).into_bytes(),
        )
        .await;
    assert_eq!(status, 401);

    // Missing headers.
    let (status, v) = h
        .post_with(
            t::PATH_SIGN_RESULT,
            body,
            &mpc_api::auth::Headers {
                api_key: String::new(),
                nonce: String::new(),
                signature: String::new(),
            },
        )
        .await;
    assert_eq!(status, 401, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_flow_auto_keygen_and_console() {
    let h = Harness::new(test_config(":memory:")).await;
    let (org, _vault) = h.setup_org().await;
    // Binding is unique both ways.
    let dup = h
        .admin_call::<admin::NodeInfo>(
            admin::PATH_BIND_NODE,
            &admin::BindNodeRequest {
                organization_id: org.clone(),
                party_id: "a".into(),
                node_id: h.node_id("b"),
            },
        )
        .await;
    assert_eq!(dup.unwrap_err().0, 409);

    // Two parties online: nothing starts.
    h.online("a").await;
    h.online("b").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.keys().await.is_empty());
    h.online("c").await;
    let keys = h.until_keys_generated().await;
    for k in &keys {
        assert_eq!(k.threshold, 3);
        assert_eq!(k.parties, ["a", "b", "c"]);
    }
    let secp = keys
        .iter()
        .find(|k| k.curve == admin::Curve::EcdsaSecp256k1)
        .unwrap();
    assert_eq!(
        secp.root_public_key,
        hex::encode(common::secp_root_public())
    );
    let xpub = secp.xpub.clone().unwrap();
    assert!(xpub.starts_with("xpub"));
    let ed = keys
        .iter()
        .find(|k| k.curve == admin::Curve::EddsaEd25519)
        .unwrap();
    assert_eq!(ed.root_public_key, hex::encode(common::ed_root_public()));
    assert!(ed.xpub.is_none());
    // Exactly one keygen per curve, each to all three nodes, 3-of-3.
    let keygens: Vec<_> = h
        .log
        .lock()
        .unwrap()
        .tasks
        .iter()
        .filter(|(_, t)| matches!(t.body, TaskBody::Keygen(_)))
        .cloned()
        .collect();
    assert_eq!(keygens.len(), 6, "{keygens:?}");
    // The organization's protocol (the platform default here) is on the secp256k1 keygen
    // task and on the key.
    for (_, t) in &keygens {
        if let TaskBody::Keygen(k) = &t.body {
            assert_eq!(k.ecdsa_protocol, EcdsaProtocol::Cggmp24);
        }
    }
    assert_eq!(secp.ecdsa_protocol, Some(EcdsaProtocol::Cggmp24));
    assert_eq!(ed.ecdsa_protocol, None);
    // An organization created with a protocol keeps it (and the console shows it).
    let dkls: admin::Organization = h
        .admin_call(
            admin::PATH_CREATE_ORGANIZATION,
            &admin::CreateOrganizationRequest {
                name: "fast".into(),
                ecdsa_protocol: Some(EcdsaProtocol::Dkls23),
            },
        )
        .await
        .unwrap();
    assert_eq!(dkls.ecdsa_protocol, EcdsaProtocol::Dkls23);
    let bad = h
        .admin_call::<serde_json::Value>(
            admin::PATH_CREATE_ORGANIZATION,
            &serde_json::json!({"name": "x", "ecdsaProtocol": "cmp"}),
        )
        .await
        .unwrap_err();
    assert_eq!(bad.0, 400, "{bad:?}");
    assert!(bad.1.contains("cmp"), "{bad:?}");
    // Admin keygen for a curve that has a key: 409.
    let again = h
        .admin_call::<admin::KeyInfo>(
            admin::PATH_REQUEST_KEYGEN,
            &admin::RequestKeygenRequest {
                organization_id: org.clone(),
                curve: admin::Curve::EddsaEd25519,
                threshold: 2,
                parties: vec!["a".into(), "b".into(), "c".into()],
            },
        )
        .await;
    assert_eq!(again.unwrap_err().0, 409);

    // Nodes list.
    let nodes: admin::ListNodesResponse = h
        .admin_call(
            admin::PATH_LIST_NODES,
            &admin::ListNodesRequest {
                organization_id: org.clone(),
            },
        )
        .await
        .unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(
        nodes
            .iter()
            .all(|n| n.online_status == t::OnlineStatus::Online
                && n.key_share_status == KeyStatus::Generated)
    );

    // mpcnode/status and list_mpc_requests for the API user.
    let st: t::MpcNodeStatus = h
        .user_call(t::PATH_MPC_NODE_STATUS, &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(st.node_id, h.node_id("a"));
    assert_eq!(st.online_status, t::OnlineStatus::Online);
    let list: t::ListMpcRequestsResponse = h
        .user_call(
            t::PATH_LIST_MPC_REQUESTS,
            &serde_json::json!({"businessExecType": 1}),
        )
        .await
        .unwrap();
    assert_eq!(list.total_size, 2);
    assert!(list.list.iter().all(|r| r.is_success));

    // Console: the page and its files (strict CSP), and the state only for an admin's
    // signature: neither an anonymous nor a loopback peer reads it unsigned.
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    for (path, kind, needle) in [
        ("/console", "text/html", "/console/console.js"),
        ("/console/console.js", "text/javascript", "/console/state"),
        ("/console/console.css", "text/css", "table"),
    ] {
        let res = h
            .app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let header = |name: &str| res.headers()[name].to_str().unwrap().to_owned();
        assert!(header("content-type").starts_with(kind), "{path}");
        assert!(
            header("content-security-policy").contains("script-src 'self'"),
            "{path}"
        );
        assert_eq!(header("x-frame-options"), "DENY");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert!(
            std::str::from_utf8(&body).unwrap().contains(needle),
            "{path}"
        );
    }
    let anon = h
        .app
        .clone()
        .oneshot(Request::get("/console/state").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(anon.status(), 403);
    let mut loopback = Request::get("/console/state").body(Body::empty()).unwrap();
    loopback
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            5555,
        ))));
    assert_eq!(h.app.clone().oneshot(loopback).await.unwrap().status(), 403);
    // An API user's signature is not an admin's.
    let user_key = h.user.lock().unwrap().clone().unwrap();
    let user_headers = mpc_api::auth::sign_request(
        &mpc_wire::signature::EcdsaSigner::new(&user_key),
        "/console/state",
        b"",
        h.now(),
    );
    let mut as_user = Request::get("/console/state");
    for (k, v) in user_headers.pairs() {
        as_user = as_user.header(k, v);
    }
    assert_eq!(
        h.app
            .clone()
            .oneshot(as_user.body(Body::empty()).unwrap())
            .await
            .unwrap()
            .status(),
        403
    );
    let headers = mpc_api::auth::sign_request(
        &mpc_wire::signature::EcdsaSigner::new(&h.admin),
        "/console/state",
        b"",
        h.now(),
    );
    let mut signed = Request::get("/console/state");
    for (k, v) in headers.pairs() {
        signed = signed.header(k, v);
    }
    let res = h
        .app
        .clone()
        .oneshot(signed.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let state: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(state["keys"].as_array().unwrap().len(), 2);
    assert_eq!(state["nodes"].as_array().unwrap().len(), 3);
    let protocols: Vec<&str> = state["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["ecdsaProtocol"].as_str().unwrap())
        .collect();
    assert_eq!(protocols, ["cggmp24", "dkls23"]);
    assert_eq!(state["defaultEcdsaProtocol"], "cggmp24");
    let users = state["apiUsers"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        users[0]["apiKey"],
        mpc_wire::keys::api_key_hex(user_key.verifying_key())
    );
    assert_eq!(users[0]["organizationId"], org.as_str());
    assert!(state["addresses"].as_array().unwrap().is_empty());
    let requests = state["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2);
    for r in requests {
        assert_eq!(r["status"], 1, "{r}");
        assert!(r["latencyMs"].is_u64(), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_keygen_fails_and_admin_requests_two_of_three() {
    let h = Harness::new(test_config(":memory:")).await;
    let (org, vault) = h.setup_org().await;
    h.set_behaviour("b", Behaviour::WrongKey);
    for p in ["a", "b", "c"] {
        h.online(p).await;
    }
    let end = tokio::time::Instant::now() + common::WAIT;
    let keys = loop {
        let keys = h.keys().await;
        if keys.len() == 2 && keys.iter().all(|k| k.status == KeyStatus::Failed) {
            break keys;
        }
        assert!(tokio::time::Instant::now() < end, "{keys:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for k in &keys {
        assert!(
            k.failed_reason.contains("different keys"),
            "{}",
            k.failed_reason
        );
        assert!(k.failed_reason.contains("b="), "{}", k.failed_reason);
    }
    // No automatic retry within 60 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(h.keys().await.len(), 2);

    // The admin asks for 2-of-3 (secp256k1 and ed25519) with b fixed.
    h.set_behaviour("b", Behaviour::Honest);
    for curve in [admin::Curve::EcdsaSecp256k1, admin::Curve::EddsaEd25519] {
        let k: admin::KeyInfo = h
            .admin_call(
                admin::PATH_REQUEST_KEYGEN,
                &admin::RequestKeygenRequest {
                    organization_id: org.clone(),
                    curve,
                    threshold: 2,
                    parties: vec!["a".into(), "b".into(), "c".into()],
                },
            )
            .await
            .unwrap();
        assert_eq!(k.status, KeyStatus::Pending);
        assert_eq!(k.threshold, 2);
    }
    let end = tokio::time::Instant::now() + common::WAIT;
    loop {
        let keys = h.keys().await;
        if keys
            .iter()
            .filter(|k| k.status == KeyStatus::Generated && k.threshold == 2)
            .count()
            == 2
        {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "{keys:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 2-of-3: with c offline the signers are a and b.
    h.offline("c").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = personal(&h, "two-of-three", "m/1/1/60/0", "hello").await;
    assert_eq!(r.state, SignState::Done, "{r:?}");
    let tasks = h.sign_tasks();
    let members: Vec<_> = match &tasks[0].1.body {
        TaskBody::Sign(_) => tasks[0].1.members.iter().map(|m| m.party.clone()).collect(),
        _ => unreachable!(),
    };
    assert_eq!(members, ["a", "b"]);
    assert_eq!(tasks.len(), 2, "one task per signer");
    let _ = vault;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallets_and_addresses() {
    let (h, _org, vault) = Harness::ready_org().await;
    let w1 = wallet(&h, &vault, "w-req-1").await;
    // Same requestId: same wallet.
    assert_eq!(wallet(&h, &vault, "w-req-1").await, w1);
    // Wrong vault.
    let bad = h
        .user_call::<t::CreateWalletsResponse>(
            t::PATH_CREATE_WALLETS,
            &t::CreateWalletsRequest {
                request_id: "w2".into(),
                vault_id: "vault-nope".into(),
                count: 1,
                wallet_infos: vec![],
            },
        )
        .await;
    assert_eq!(bad.unwrap_err().0, 404);

    use mpc_chains::address::{BtcEncoding, Network, bitcoin_address, evm_address};
    let child = |coin: u32, index: u32| {
        derive_bip32(
            &common::secp_root_public(),
            common::secrets().secp_cc,
            &[1, 1, coin, index],
        )
    };
    // The four Bitcoin encodings of `key` on `network`, in `encoding` order.
    let btc = |key: &[u8; 33], network: Network| {
        [
            (AddressEncoding::Legacy, BtcEncoding::Legacy),
            (AddressEncoding::SegwitNative, BtcEncoding::SegwitNative),
            (AddressEncoding::SegwitNested, BtcEncoding::SegwitNested),
            (AddressEncoding::Taproot, BtcEncoding::Taproot),
        ]
        .map(|(e, b)| (e, bitcoin_address(key, b, network).unwrap()))
    };
    let check = |r: &GenAddressByPathResponse,
                 path: &str,
                 key: &[u8],
                 answered: (AddressEncoding, &str),
                 all: &[(AddressEncoding, String)]| {
        assert_eq!((r.encoding, r.address.as_str()), answered, "{r:?}");
        assert_eq!(r.hd_path, path);
        assert_eq!(r.pubkey, hex::encode(key));
        let got: Vec<(AddressEncoding, String)> = r
            .addresses
            .iter()
            .map(|a| (a.encoding, a.address.clone()))
            .collect();
        assert_eq!(got, all, "{r:?}");
        assert!(r.addresses.contains(&r.primary()), "{r:?}");
        for a in &r.addresses {
            assert_eq!(
                (a.hd_path.as_str(), a.pubkey.as_str()),
                (path, r.pubkey.as_str())
            );
        }
    };

    // Bitcoin mainnet: native SegWit answered, the other encodings listed.
    let key = child(0, 7);
    let all = btc(&key, Network::Mainnet);
    let r = gen_address(&h, &vault, &w1, AddressAlgorithm::Secp256k1, 0, 7).await;
    check(
        &r,
        "m/1/1/0/7",
        &key,
        (AddressEncoding::SegwitNative, all[1].1.as_str()),
        &all,
    );
    assert!(r.address.starts_with("bc1q") && all[3].1.starts_with("bc1p"));
    // Asking again returns the same records.
    assert_eq!(
        gen_address(&h, &vault, &w1, AddressAlgorithm::Secp256k1, 0, 7).await,
        r
    );

    // Bitcoin testnet (coin type 1): testnet prefixes.
    let key = child(1, 0);
    let all = btc(&key, Network::Testnet);
    let r = gen_address(&h, &vault, &w1, AddressAlgorithm::Secp256k1, 1, 0).await;
    check(
        &r,
        "m/1/1/1/0",
        &key,
        (AddressEncoding::SegwitNative, all[1].1.as_str()),
        &all,
    );
    assert!(r.address.starts_with("tb1q"), "{r:?}");

    // EVM coin types: the EIP-55 address alone.
    for coin in [60, 61, 1007] {
        let key = child(coin, 2);
        let evm = evm_address(&key).unwrap();
        let r = gen_address(&h, &vault, &w1, AddressAlgorithm::Secp256k1, coin, 2).await;
        let path = format!("m/1/1/{coin}/2");
        check(
            &r,
            &path,
            &key,
            (AddressEncoding::Account, evm.as_str()),
            &[(AddressEncoding::Account, evm.clone())],
        );
        assert!(r.address.starts_with("0x") && r.address != r.address.to_lowercase());
    }

    // A secp256k1 coin type without an address format: refused, naming the field.
    let (code, msg) = h
        .user_call::<GenAddressByPathResponse>(
            t::PATH_GEN_ADDRESS_BY_PATH,
            &t::GenAddressByPathRequest {
                vault_id: vault.clone(),
                wallet_id: w1.clone(),
                index: 0,
                algorithm_type: AddressAlgorithm::Secp256k1,
                coin_type: 195,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code, 400);
    assert!(
        msg.starts_with("coinType: 195 ") && msg.contains("60"),
        "{msg}"
    );

    // ed25519: the Solana-style address of the key, any coin type.
    let ed = gen_address(&h, &vault, &w1, AddressAlgorithm::Ed25519, 501, 3).await;
    use hd_wallet::HdWallet;
    let ed_child =
        hd_wallet::Edwards::derive_child_key_pair_with_path(&common::ed_pair(), [1u32, 1, 501, 3]);
    let ed_pk = ed_child
        .public_key()
        .public_key
        .to_bytes(true)
        .as_ref()
        .to_vec();
    let b58 = bs58::encode(&ed_pk).into_string();
    check(
        &ed,
        "m/1/1/501/3",
        &ed_pk,
        (AddressEncoding::Account, b58.as_str()),
        &[(AddressEncoding::Account, b58.clone())],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_message_personal_and_typed_data() {
    let (h, _org, vault) = Harness::ready_org().await;
    let w = wallet(&h, &vault, "w").await;
    let evm = gen_address(&h, &vault, &w, AddressAlgorithm::Secp256k1, 60, 0)
        .await
        .address;

    let recover = |digest: [u8; 32], sig_hex: &str| {
        let sig = hex::decode(sig_hex).unwrap();
        assert_eq!(sig.len(), 65);
        assert!(sig[64] == 27 || sig[64] == 28);
        let s = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
        let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(
            &digest,
            &s,
            k256::ecdsa::RecoveryId::from_byte(sig[64] - 27).unwrap(),
        )
        .unwrap();
        mpc_chains::address::evm_address(vk.to_encoded_point(true).as_bytes()).unwrap()
    };

    let r = personal(&h, "pm-1", "m/1/1/60/0", "hello coordinator").await;
    assert_eq!(r.state, SignState::Done, "{r:?}");
    assert_eq!(r.message, "hello coordinator");
    let digest = mpc_chains::message::sign_message_payload(
        mpc_chains::message::SignMessageKind::PersonalSign,
        "hello coordinator",
    )
    .unwrap()
    .digest();
    assert_eq!(recover(digest, &r.signature), evm);

    let typed = serde_json::json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
            "Mail": [{"name": "contents", "type": "string"}, {"name": "to", "type": "address"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "Test", "chainId": 1},
        "message": {"contents": "Hello", "to": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"}
    })
    .to_string();
    let resp: t::SignMessageResponse = h
        .user_call(
            t::PATH_SIGN_MESSAGE,
            &t::SignMessageRequest {
                request_id: "v4-1".into(),
                chain_symbol: "ETH".into(),
                hd_path: "m/1/1/60/0".into(),
                sign_algorithm: t::SignAlgorithm::SignTypedDataV4,
                message: typed.clone(),
            },
        )
        .await
        .unwrap();
    let digest = mpc_chains::message::sign_message_payload(
        mpc_chains::message::SignMessageKind::TypedDataV4,
        &typed,
    )
    .unwrap()
    .digest();
    assert_eq!(resp.message_hash, hex::encode(digest));
    let r = h.sign_result("v4-1").await;
    assert_eq!(r.state, SignState::Done, "{r:?}");
    assert_eq!(recover(digest, &r.signature), evm);
    // The nodes got the message, not a digest.
    let tasks = h.sign_tasks();
    let TaskBody::Sign(s) = &tasks.last().unwrap().1.body else {
        unreachable!()
    };
    assert_eq!(s.sign_type, 2);
    assert!(
        matches!(&s.payload, mpc_transport::task::Payload::SignMessage { kind, .. } if kind == "eth_signTypedData_v4")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_raw_data_every_algorithm_and_sign_transaction() {
    let (h, _org, vault) = Harness::ready_org().await;
    let w = wallet(&h, &vault, "w").await;
    gen_address(&h, &vault, &w, AddressAlgorithm::Secp256k1, 0, 1).await;
    gen_address(&h, &vault, &w, AddressAlgorithm::Ed25519, 501, 1).await;
    let digest = [0xabu8; 32];

    let r = raw(
        &h,
        &vault,
        &w,
        "ecdsa",
        "m/1/1/0/1",
        &digest,
        RawSignAlgorithm::KeyDefault,
        None,
    )
    .await;
    assert_eq!(r.state, SignState::Done, "{r:?}");
    let sig = hex::decode(&r.signature).unwrap();
    assert_eq!(sig.len(), 65);
    assert!(sig[64] <= 1);

    let r = raw(
        &h,
        &vault,
        &w,
        "bip340",
        "m/1/1/0/1",
        &digest,
        RawSignAlgorithm::Bip340,
        None,
    )
    .await;
    assert_eq!(r.state, SignState::Done, "{r:?}");
    let child = derive_bip32(
        &common::secp_root_public(),
        common::secrets().secp_cc,
        &[1, 1, 0, 1],
    );
    let vk = k256::schnorr::VerifyingKey::from_bytes(&child[1..]).unwrap();
    vk.verify_raw(
        &digest,
        &k256::schnorr::Signature::try_from(hex::decode(&r.signature).unwrap().as_slice()).unwrap(),
    )
    .unwrap();

    let root = [0x5eu8; 32];
    let r = raw(
        &h,
        &vault,
        &w,
        "taproot",
        "m/1/1/0/1",
        &digest,
        RawSignAlgorithm::Taproot,
        Some(root),
    )
    .await;
    assert_eq!(r.state, SignState::Done, "{r:?}");
    let out = mpc_chains::address::taproot_output_key(&child, Some(root)).unwrap();
    k256::schnorr::VerifyingKey::from_bytes(&out)
        .unwrap()
        .verify_raw(
            &digest,
            &k256::schnorr::Signature::try_from(hex::decode(&r.signature).unwrap().as_slice())
                .unwrap(),
        )
        .unwrap();
    let tasks = h.sign_tasks();
    let TaskBody::Sign(s) = &tasks.last().unwrap().1.body else {
        unreachable!()
    };
    assert_eq!(s.sign_type, 3);
    assert_eq!(
        s.tx_info.as_deref(),
        Some(format!(r#"{{"tapScriptRoot":"{}"}}"#, hex::encode(root)).as_str())
    );

    // ed25519 path: the key's default is EdDSA over the raw message (any length).
    let msg = b"solana transaction message bytes".to_vec();
    let r = raw(
        &h,
        &vault,
        &w,
        "eddsa",
        "m/1/1/501/1",
        &msg,
        RawSignAlgorithm::KeyDefault,
        None,
    )
    .await;
    assert_eq!(r.state, SignState::Done, "{r:?}");
    use hd_wallet::HdWallet;
    let ed_child =
        hd_wallet::Edwards::derive_child_key_pair_with_path(&common::ed_pair(), [1u32, 1, 501, 1]);
    let pk: [u8; 32] = ed_child
        .public_key()
        .public_key
        .to_bytes(true)
        .as_ref()
        .try_into()
        .unwrap();
    let sig: [u8; 64] = hex::decode(&r.signature).unwrap().try_into().unwrap();
    ed25519_dalek::VerifyingKey::from_bytes(&pk)
        .unwrap()
        .verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .unwrap();

    // ECDSA with a non-32-byte digest is refused.
    let e = h
        .user_call::<t::SignRawDataResponse>(
            t::PATH_SIGN_RAW_DATA,
            &t::SignRawDataRequest {
                vault_id: vault.clone(),
                request_id: "short".into(),
                wallet_id: w.clone(),
                hd_path: "m/1/1/0/1".into(),
                raw_data: "abcd".into(),
                algorithm_type: RawSignAlgorithm::KeyDefault,
                tap_script_root: String::new(),
            },
        )
        .await;
    assert_eq!(e.unwrap_err().0, 400);

    // sign_transaction: sighash + txInfo, sign_type 1.
    let _: t::SignRawDataResponse = h
        .user_call(
            t::PATH_SIGN_TRANSACTION,
            &t::SignTransactionRequest {
                vault_id: vault.clone(),
                request_id: "tx-1".into(),
                wallet_id: w.clone(),
                hd_path: "m/1/1/0/1".into(),
                sighash: hex::encode([0x77u8; 32]),
                algorithm_type: RawSignAlgorithm::KeyDefault,
                tap_script_root: String::new(),
                tx_info: serde_json::json!({"to": "bc1qexample", "amount": "1000"}),
            },
        )
        .await
        .unwrap();
    let r = h.sign_result("tx-1").await;
    assert_eq!(r.state, SignState::Done, "{r:?}");
    let tasks = h.sign_tasks();
    let TaskBody::Sign(s) = &tasks.last().unwrap().1.body else {
        unreachable!()
    };
    assert_eq!(s.sign_type, 1);
    let info: serde_json::Value = serde_json::from_str(s.tx_info.as_deref().unwrap()).unwrap();
    assert_eq!(info["amount"], "1000");

    // Listed as MPC requests of kinds 2 and 4.
    let list: t::ListMpcRequestsResponse = h
        .user_call(
            t::PATH_LIST_MPC_REQUESTS,
            &serde_json::json!({"businessExecType": 4, "pageSize": 50}),
        )
        .await
        .unwrap();
    assert_eq!(list.total_size, 4);
    let list: t::ListMpcRequestsResponse = h
        .user_call(
            t::PATH_LIST_MPC_REQUESTS,
            &serde_json::json!({"businessExecType": 2}),
        )
        .await
        .unwrap();
    assert_eq!(list.total_size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_request_id_returns_the_first_request() {
    let (h, _org, _vault) = Harness::ready_org().await;
    let first = personal(&h, "same", "m/1/1/60/0", "one").await;
    assert_eq!(first.state, SignState::Done);
    let tasks_before = h.sign_tasks().len();
    // Same id, other message: the first request, no second run.
    let again = personal(&h, "same", "m/1/1/60/0", "two").await;
    assert_eq!(again.sino_id, first.sino_id);
    assert_eq!(again.message, "one");
    assert_eq!(again.signature, first.signature);
    // Concurrent repeats.
    let mut handles = Vec::new();
    let h = std::sync::Arc::new(h);
    for i in 0..4 {
        let h = h.clone();
        handles.push(tokio::spawn(async move {
            let r: t::SignMessageResponse = h
                .user_call(
                    t::PATH_SIGN_MESSAGE,
                    &t::SignMessageRequest {
                        request_id: "race".into(),
                        chain_symbol: "ETH".into(),
                        hd_path: "m/1/1/60/0".into(),
                        sign_algorithm: t::SignAlgorithm::PersonalSign,
                        message: format!("m{i}"),
                    },
                )
                .await
                .unwrap();
            r.sino_id
        }));
    }
    let mut ids = Vec::new();
    for j in handles {
        ids.push(j.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    h.sign_result("race").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Exactly one more run (3 signers → 3 tasks).
    assert_eq!(h.sign_tasks().len(), tasks_before + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_propagates_and_aborts_the_others() {
    let (h, _org, _vault) = Harness::ready_org().await;
    h.set_behaviour("b", Behaviour::Reject("policy: amount too high".into()));
    let r = personal(&h, "rej", "m/1/1/60/0", "pay").await;
    assert_eq!(r.state, SignState::Failed);
    assert!(
        r.failed_reason
            .contains("party b rejected: policy: amount too high"),
        "{}",
        r.failed_reason
    );
    let a = h.node_id("a");
    let c = h.node_id("c");
    let b = h.node_id("b");
    h.until("aborts", |h| {
        let log = h.log.lock().unwrap();
        log.aborts.iter().any(|(n, _)| *n == a) && log.aborts.iter().any(|(n, _)| *n == c)
    })
    .await;
    assert!(!h.log.lock().unwrap().aborts.iter().any(|(n, _)| *n == b));

    // An invalid signature fails the request.
    h.set_behaviour("b", Behaviour::Honest);
    h.set_behaviour("a", Behaviour::BadSignature);
    let r = personal(&h, "bad-sig", "m/1/1/60/0", "pay").await;
    assert_eq!(r.state, SignState::Failed);
    assert!(
        r.failed_reason.contains("invalid aggregate signature"),
        "{}",
        r.failed_reason
    );
}

/// Submits a personal_sign request `rid` that stays pending: c is silent; returns once c has
/// its task.
async fn pending_at_silent_c(h: &Harness, rid: &str) {
    h.set_behaviour("c", Behaviour::Silent);
    let _: t::SignMessageResponse = h
        .user_call(
            t::PATH_SIGN_MESSAGE,
            &t::SignMessageRequest {
                request_id: rid.into(),
                chain_symbol: "ETH".into(),
                hd_path: "m/1/1/60/0".into(),
                sign_algorithm: t::SignAlgorithm::PersonalSign,
                message: "x".into(),
            },
        )
        .await
        .unwrap();
    let c = h.node_id("c");
    h.until("task at c", |h| h.sign_tasks().iter().any(|(n, _)| *n == c))
        .await;
}

/// A long poll of sign_result (`waitMs`) in flight while the request is pending is answered
/// with its end: one call, no polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_answered_when_the_request_ends() {
    let (h, _org, _vault) = Harness::ready_org().await;
    pending_at_silent_c(&h, "long").await;
    let long = t::SignResultRequest {
        request_id: Some("long".into()),
        sino_id: None,
        wait_ms: Some(t::MAX_SIGN_RESULT_WAIT_MS),
    };
    let poll = h.user_call::<t::SignResultResponse>(t::PATH_SIGN_RESULT, &long);
    // c drops out while the poll waits: the request fails, and the poll answers with that.
    let (r, ()) = tokio::join!(poll, async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        h.offline("c").await;
    });
    let r = r.unwrap();
    assert_eq!(r.state, SignState::Failed);
    assert!(
        r.failed_reason.contains("party c went offline"),
        "{}",
        r.failed_reason
    );
    // A wait beyond the bound is refused by name.
    let user = h.user.lock().unwrap().clone().unwrap();
    let (status, v) = h
        .post_raw(
            &user,
            t::PATH_SIGN_RESULT,
            br#"{"requestId":"long","waitMs":10001}"#.to_vec(),
        )
        .await;
    assert_eq!(status, 200);
    assert!(v.to_string().contains("waitMs: at most 10000 ms"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_mid_sign_deadline_and_too_few_online() {
    let (h, _org, _vault) = Harness::ready_org().await;
    // c never answers, then goes offline: the request fails naming c.
    pending_at_silent_c(&h, "off").await;
    h.offline("c").await;
    let r = h.sign_result("off").await;
    assert_eq!(r.state, SignState::Failed);
    assert!(
        r.failed_reason.contains("party c went offline"),
        "{}",
        r.failed_reason
    );

    // Fewer than t (3) online: fails at once naming c, without any task.
    let before = h.sign_tasks().len();
    let r = personal(&h, "few", "m/1/1/60/0", "x").await;
    assert_eq!(r.state, SignState::Failed);
    assert!(
        r.failed_reason.contains("offline: c"),
        "{}",
        r.failed_reason
    );
    assert_eq!(h.sign_tasks().len(), before);

    // Deadline (2 s in tests): names the silent party.
    h.online("c").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let r = personal(&h, "late", "m/1/1/60/0", "x").await;
    assert_eq!(r.state, SignState::Failed);
    assert!(
        r.failed_reason
            .contains("deadline passed; no answer from: c"),
        "{}",
        r.failed_reason
    );
    assert!(started.elapsed() >= Duration::from_millis(1900));
    let list: t::ListMpcRequestsResponse = h
        .user_call(
            t::PATH_LIST_MPC_REQUESTS,
            &serde_json::json!({"businessExecStatus": 2}),
        )
        .await
        .unwrap();
    assert_eq!(
        list.total_size, 2,
        "few fails before a run; off and late are failed runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_the_database_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("platform.db");
    let db = db.to_str().unwrap();
    let (org, vault, w, sig) = {
        let h = Harness::new(test_config(db)).await;
        let (org, vault) = h.setup_org().await;
        for p in ["a", "b", "c"] {
            h.online(p).await;
        }
        h.until_keys_generated().await;
        let w = wallet(&h, &vault, "persist").await;
        let r = personal(&h, "persist-sig", "m/1/1/60/0", "kept").await;
        assert_eq!(r.state, SignState::Done);
        (org, vault, w, r.signature)
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let h = Harness::new(test_config(db)).await;
    *h.user.lock().unwrap() = Some(SigningKey::from_slice(&[0x42; 32]).unwrap());
    *h.org.lock().unwrap() = Some((org.clone(), vault.clone()));
    let keys = h.keys().await;
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.status == KeyStatus::Generated));
    assert_eq!(wallet(&h, &vault, "persist").await, w);
    let r = h.sign_result("persist-sig").await;
    assert_eq!(r.signature, sig);
    let nodes: admin::ListNodesResponse = h
        .admin_call(
            admin::PATH_LIST_NODES,
            &admin::ListNodesRequest {
                organization_id: org,
            },
        )
        .await
        .unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(
        nodes
            .iter()
            .all(|n| n.online_status == t::OnlineStatus::Offline && n.last_seen_at.is_some())
    );
    assert!(h.coord.ready().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_directory_metrics_and_readiness() {
    use mpc_bus::NodeDirectory;
    let h = Harness::new(test_config(":memory:")).await;
    let (org, _vault) = h.setup_org().await;
    let b = h.coord.binding(&h.node_id("b")).await.unwrap().unwrap();
    assert_eq!(
        (b.organization_id.as_str(), b.party.as_str()),
        (org.as_str(), "b")
    );
    assert!(h.coord.binding("sinounknown").await.unwrap().is_none());
    assert!(h.coord.ready().await);

    // Metrics are registered under coordinator_ and count requests.
    let bus = std::sync::Arc::new(mpc_bus::InProcessBus::new());
    let mut registry = prometheus_client::registry::Registry::default();
    let c =
        mpc_coordinator::Coordinator::open(test_config(":memory:"), bus, &mut registry).unwrap();
    let res = tower::ServiceExt::oneshot(
        c.router(),
        axum::http::Request::post(t::PATH_SIGN_RESULT)
            .body(axum::body::Body::from("{}"))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 401);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for name in [
        "mpc_coordinator_api_requests_total",
        "mpc_coordinator_sign_latency_seconds",
        "mpc_coordinator_online_nodes",
    ] {
        assert!(text.contains(name), "{name} missing in {text}");
    }
    assert!(
        text.contains(r#"endpoint="sign_result",outcome="401""#),
        "{text}"
    );

    // Bad configuration is refused.
    let mut cfg = test_config(":memory:");
    cfg.default_threshold = 4;
    let mut registry = prometheus_client::registry::Registry::default();
    assert!(
        mpc_coordinator::Coordinator::open(
            cfg,
            std::sync::Arc::new(mpc_bus::InProcessBus::new()),
            &mut registry
        )
        .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keygen_deadline_names_the_silent_party() {
    let mut cfg = test_config(":memory:");
    cfg.keygen_timeout = Duration::from_millis(800);
    let h = Harness::new(cfg).await;
    h.setup_org().await;
    h.set_behaviour("c", Behaviour::Silent);
    for p in ["a", "b", "c"] {
        h.online(p).await;
    }
    let end = tokio::time::Instant::now() + common::WAIT;
    let keys = loop {
        let keys = h.keys().await;
        if keys.len() == 2 && keys.iter().all(|k| k.status == KeyStatus::Failed) {
            break keys;
        }
        assert!(tokio::time::Instant::now() < end, "{keys:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for k in keys {
        assert!(
            k.failed_reason
                .contains("deadline passed; no answer from: c"),
            "{}",
            k.failed_reason
        );
    }
    let c = h.node_id("c");
    h.until("abort at c", |h| {
        h.log.lock().unwrap().aborts.iter().any(|(n, _)| *n == c)
    })
    .await;
}

/// The proxy or the bus stands in for party b: b's signed keygen result arrives with another
/// public key under b's signature, and a rejection in b's name signed by the relay's own key.
/// Neither is accepted; no key is stored (every member must report the same key, each in its
/// own signature), nobody is blamed for a rejection, and the run ends at its deadline naming b
/// as not having answered. The same relay cannot turn a signing run into a rejection either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_altered_or_forged_in_transit_are_refused() {
    let mut cfg = test_config(":memory:");
    cfg.keygen_timeout = Duration::from_millis(1500);
    let h = Harness::new(cfg).await;
    h.setup_org().await;
    h.set_behaviour("b", Behaviour::AlteredInTransit);
    for p in ["a", "b", "c"] {
        h.online(p).await;
    }
    let end = tokio::time::Instant::now() + common::WAIT;
    let keys = loop {
        let keys = h.keys().await;
        if keys.len() == 2 && keys.iter().all(|k| k.status == KeyStatus::Failed) {
            break keys;
        }
        assert!(
            keys.iter().all(|k| k.status != KeyStatus::Generated),
            "{keys:?}"
        );
        assert!(tokio::time::Instant::now() < end, "{keys:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for k in &keys {
        assert!(
            k.failed_reason
                .contains("deadline passed; no answer from: b"),
            "{}",
            k.failed_reason
        );
        assert!(!k.failed_reason.contains("rejected"), "{}", k.failed_reason);
    }

    // Signing: the keys are generated with b honest, then b's signature is altered in transit.
    let (h, _org, _vault) = Harness::ready_org().await;
    h.set_behaviour("b", Behaviour::AlteredInTransit);
    let r = personal(&h, "altered", "m/1/1/60/0", "pay").await;
    assert_eq!(r.state, SignState::Failed, "{r:?}");
    assert!(
        r.failed_reason
            .contains("deadline passed; no answer from: b"),
        "{}",
        r.failed_reason
    );
}

/// Whether the admin API shows `party`'s node online.
async fn is_online(h: &Harness, org: &str, party: &str) -> bool {
    let nodes: Vec<admin::NodeInfo> = h
        .admin_call(
            admin::PATH_LIST_NODES,
            &admin::ListNodesRequest {
                organization_id: org.into(),
            },
        )
        .await
        .unwrap();
    nodes
        .iter()
        .any(|n| n.party_id == party && n.online_status == t::OnlineStatus::Online)
}

/// Waits until the coordinator sees `party` online (or offline).
async fn until_online(h: &Harness, org: &str, party: &str, online: bool) {
    let end = tokio::time::Instant::now() + common::WAIT;
    while is_online(h, org, party).await != online {
        assert!(
            tokio::time::Instant::now() < end,
            "party {party} not {} in time",
            if online { "online" } else { "offline" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn key_generation(h: &Harness, key_id: &str) -> String {
    h.keys()
        .await
        .into_iter()
        .find(|k| k.key_id == key_id)
        .unwrap()
        .generation
}

/// Key refresh (DKLs23 keys) through the admin API: refused for the ed25519 key, an unknown
/// key, while a party is offline and while another refresh of the key runs; a refresh that
/// loses a party or gets another key back fails naming why and leaves the key's generation as
/// it was; a complete one switches it, and later sign tasks name the new generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_refresh_switches_the_generation_only_when_every_party_answered() {
    let mut cfg = test_config(":memory:");
    cfg.default_ecdsa_protocol = EcdsaProtocol::Dkls23;
    let h = Harness::new(cfg).await;
    let (org, _vault) = h.setup_org().await;
    for p in ["a", "b", "c"] {
        h.online(p).await;
    }
    let keys = h.until_keys_generated().await;
    let secp = keys
        .iter()
        .find(|k| k.curve == admin::Curve::EcdsaSecp256k1)
        .unwrap()
        .clone();
    let ed = keys
        .iter()
        .find(|k| k.curve == admin::Curve::EddsaEd25519)
        .unwrap()
        .clone();
    assert_eq!(secp.generation, "");
    let refresh = |key_id: &str| admin::RefreshKeyRequest {
        organization_id: org.clone(),
        key_id: key_id.into(),
    };
    let start = |key_id: String| {
        let body = refresh(&key_id);
        let h = &h;
        async move {
            h.admin_call::<admin::KeyRefreshInfo>(admin::PATH_REFRESH_KEY, &body)
                .await
        }
    };
    let finished = |task_id: String| {
        let h = &h;
        let body = admin::ListKeyRefreshesRequest {
            organization_id: org.clone(),
            key_id: secp.key_id.clone(),
        };
        async move {
            let end = tokio::time::Instant::now() + common::WAIT;
            loop {
                let list: Vec<admin::KeyRefreshInfo> = h
                    .admin_call(admin::PATH_LIST_KEY_REFRESHES, &body)
                    .await
                    .unwrap();
                let r = list.into_iter().find(|r| r.task_id == task_id).unwrap();
                if r.status != admin::RefreshStatus::Pending {
                    return r;
                }
                assert!(tokio::time::Instant::now() < end, "{r:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    // Refusals.
    let (code, msg) = start(ed.key_id.clone()).await.unwrap_err();
    assert!(
        code == 400 && msg.contains("only DKLs23 keys"),
        "{code} {msg}"
    );
    let (code, _) = start("key_nope".into()).await.unwrap_err();
    assert_eq!(code, 404);
    h.offline("c").await;
    until_online(&h, &org, "c", false).await;
    let (code, msg) = start(secp.key_id.clone()).await.unwrap_err();
    assert!(code == 503 && msg.contains("offline: c"), "{code} {msg}");
    h.online("c").await;
    until_online(&h, &org, "c", true).await;

    // A party goes offline during the run (and a second refresh meanwhile is refused).
    h.set_behaviour("c", Behaviour::Silent);
    let run = start(secp.key_id.clone()).await.unwrap();
    assert_eq!(run.status, admin::RefreshStatus::Pending);
    let (code, msg) = start(secp.key_id.clone()).await.unwrap_err();
    assert!(code == 409 && msg.contains("is running"), "{code} {msg}");
    h.offline("c").await;
    let r = finished(run.task_id).await;
    assert_eq!(r.status, admin::RefreshStatus::Failed);
    assert!(r.failed_reason.contains("party c went offline"), "{r:?}");
    assert_eq!(key_generation(&h, &secp.key_id).await, "");
    h.set_behaviour("c", Behaviour::Honest);
    h.online("c").await;
    until_online(&h, &org, "c", true).await;

    // A party reports another key.
    h.set_behaviour("b", Behaviour::WrongKey);
    let run = start(secp.key_id.clone()).await.unwrap();
    let r = finished(run.task_id).await;
    assert_eq!(r.status, admin::RefreshStatus::Failed);
    assert!(
        r.failed_reason
            .contains("party b reported a refresh of another key"),
        "{r:?}"
    );
    assert_eq!(key_generation(&h, &secp.key_id).await, "");
    h.set_behaviour("b", Behaviour::Honest);

    // Sign tasks before any switch name no generation.
    let s = personal(&h, "before-refresh", "m/1/1/60/0", "hello").await;
    assert_eq!(s.state, SignState::Done, "{s:?}");
    let last_generation = |h: &Harness| match &h.sign_tasks().last().unwrap().1.body {
        TaskBody::Sign(s) => s.generation.clone(),
        _ => unreachable!(),
    };
    assert_eq!(last_generation(&h), None);

    // A complete refresh: the key switches; its root key stays.
    let run = start(secp.key_id.clone()).await.unwrap();
    let r = finished(run.task_id.clone()).await;
    assert_eq!(r.status, admin::RefreshStatus::Done, "{r:?}");
    let task = h
        .log
        .lock()
        .unwrap()
        .tasks
        .iter()
        .find(|(_, t)| t.task_id == run.task_id)
        .unwrap()
        .1
        .clone();
    let TaskBody::Refresh(rt) = &task.body else {
        panic!("{task:?}")
    };
    assert_eq!(rt.generation, None);
    assert_eq!(task.members.len(), 3);
    let g = hex::encode(&task.execution_unique[..8]);
    assert_eq!(key_generation(&h, &secp.key_id).await, g);
    let k = h
        .keys()
        .await
        .into_iter()
        .find(|k| k.key_id == secp.key_id)
        .unwrap();
    assert_eq!(
        (&k.root_public_key, &k.chain_code),
        (&secp.root_public_key, &secp.chain_code)
    );
    let s = personal(&h, "after-refresh", "m/1/1/60/0", "hello").await;
    assert_eq!(s.state, SignState::Done, "{s:?}");
    assert_eq!(last_generation(&h), Some(g.clone()));
    // The next refresh starts from that generation.
    let run = start(secp.key_id.clone()).await.unwrap();
    assert_eq!(
        finished(run.task_id).await.status,
        admin::RefreshStatus::Done
    );
    let TaskBody::Refresh(rt) = &h.log.lock().unwrap().tasks.last().unwrap().1.body.clone() else {
        panic!()
    };
    assert_eq!(rt.generation.as_deref(), Some(g.as_str()));
    assert_ne!(key_generation(&h, &secp.key_id).await, g);
}

/// Waits for the end of a refresh or repair run (`list`: its list path).
async fn reshare_end(
    h: &Harness,
    org: &str,
    key_id: &str,
    task_id: &str,
    list: &str,
) -> admin::KeyRefreshInfo {
    let body = admin::ListKeyRefreshesRequest {
        organization_id: org.into(),
        key_id: key_id.into(),
    };
    let end = tokio::time::Instant::now() + common::WAIT;
    loop {
        let runs: Vec<admin::KeyRefreshInfo> = h.admin_call(list, &body).await.unwrap();
        let r = runs.into_iter().find(|r| r.task_id == task_id).unwrap();
        if r.status != admin::RefreshStatus::Pending {
            return r;
        }
        assert!(tokio::time::Instant::now() < end, "{r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Replacing a lost node and repairing a 2-of-3 DKLs23 key onto it through the admin API: the
/// old node is unbound, signatures go on with the other two; a repair is refused for the
/// ed25519 key, an n-of-n key's party, while the new node is offline and while another
/// refresh or repair of the key runs; one that loses the new node fails and leaves the key's
/// generation as it was; a complete one (a repair task to every party, the new node among
/// them, the key's chain code and threshold) switches it, and only `key/repair/list` lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_repair_rebuilds_a_replaced_node_and_switches_only_when_complete() {
    let mut cfg = test_config(":memory:");
    cfg.default_ecdsa_protocol = EcdsaProtocol::Dkls23;
    cfg.default_threshold = 2;
    let h = Harness::new(cfg).await;
    let (org, _vault) = h.setup_org().await;
    for p in ["a", "b", "c"] {
        h.online(p).await;
    }
    let keys = h.until_keys_generated().await;
    let key_of = |curve| keys.iter().find(|k| k.curve == curve).unwrap().clone();
    let (secp, ed) = (
        key_of(admin::Curve::EcdsaSecp256k1),
        key_of(admin::Curve::EddsaEd25519),
    );
    assert_eq!(secp.threshold, 2);
    let repair = |key_id: String, party: &str| {
        let body = admin::RepairKeyRequest {
            organization_id: org.clone(),
            key_id,
            party_id: party.into(),
        };
        let h = &h;
        async move {
            h.admin_call::<admin::KeyRefreshInfo>(admin::PATH_REPAIR_KEY, &body)
                .await
        }
    };

    // Node c is lost: another node takes party c. A node bound already cannot.
    let old_c = h.node_id("c");
    h.offline("c").await;
    let taken = h.replace_node("c", 0x60).await.unwrap_err();
    assert_eq!(taken.0, 409, "{taken:?}");
    let info = h.replace_node("c", 0x77).await.unwrap();
    assert_eq!(info.party_id, "c");
    assert_ne!(info.node_id, old_c);
    assert_eq!(info.node_id, h.node_id("c"));
    // Signing goes on with a and b (their shares and committee are untouched).
    let s = personal(&h, "while-c-is-lost", "m/1/1/60/0", "hello").await;
    assert_eq!(s.state, SignState::Done, "{s:?}");

    // Refusals.
    let (code, msg) = repair(ed.key_id.clone(), "c").await.unwrap_err();
    assert!(
        code == 400 && msg.contains("only DKLs23 keys"),
        "{code} {msg}"
    );
    let (code, _) = repair("key_nope".into(), "c").await.unwrap_err();
    assert_eq!(code, 404);
    let (code, msg) = repair(secp.key_id.clone(), "c").await.unwrap_err();
    assert!(code == 503 && msg.contains("offline: c"), "{code} {msg}");
    h.online("c").await;
    until_online(&h, &org, "c", true).await;

    // The new node goes silent, then offline, during the run; a refresh meanwhile is refused.
    h.set_behaviour("c", Behaviour::Silent);
    let run = repair(secp.key_id.clone(), "c").await.unwrap();
    assert_eq!(run.status, admin::RefreshStatus::Pending);
    let (code, msg) = h
        .admin_call::<admin::KeyRefreshInfo>(
            admin::PATH_REFRESH_KEY,
            &admin::RefreshKeyRequest {
                organization_id: org.clone(),
                key_id: secp.key_id.clone(),
            },
        )
        .await
        .unwrap_err();
    assert!(code == 409 && msg.contains("is running"), "{code} {msg}");
    h.offline("c").await;
    let r = reshare_end(
        &h,
        &org,
        &secp.key_id,
        &run.task_id,
        admin::PATH_LIST_KEY_REPAIRS,
    )
    .await;
    assert_eq!(r.status, admin::RefreshStatus::Failed);
    assert!(r.failed_reason.contains("party c went offline"), "{r:?}");
    assert_eq!(key_generation(&h, &secp.key_id).await, "");
    h.set_behaviour("c", Behaviour::Honest);
    h.online("c").await;
    until_online(&h, &org, "c", true).await;

    // A complete repair.
    let run = repair(secp.key_id.clone(), "c").await.unwrap();
    let r = reshare_end(
        &h,
        &org,
        &secp.key_id,
        &run.task_id,
        admin::PATH_LIST_KEY_REPAIRS,
    )
    .await;
    assert_eq!(r.status, admin::RefreshStatus::Done, "{r:?}");
    let task = h
        .log
        .lock()
        .unwrap()
        .tasks
        .iter()
        .find(|(_, t)| t.task_id == run.task_id)
        .unwrap()
        .1
        .clone();
    let TaskBody::Repair(rt) = &task.body else {
        panic!("{task:?}")
    };
    assert_eq!(
        (rt.party.as_str(), rt.threshold, rt.generation.as_deref()),
        ("c", 2, None)
    );
    assert_eq!(hex::encode(rt.chain_code), secp.chain_code);
    assert_eq!(hex::encode(&rt.root_public_key), secp.root_public_key);
    let members: Vec<(&str, &str)> = task
        .members
        .iter()
        .map(|m| (m.party.as_str(), m.node_id.as_str()))
        .collect();
    let c_now = h.node_id("c");
    assert_eq!(members.len(), 3);
    assert!(members.contains(&("c", c_now.as_str())), "{members:?}");
    let g = hex::encode(&task.execution_unique[..8]);
    assert_eq!(key_generation(&h, &secp.key_id).await, g);
    // Listed as a repair (with the node it went to), not as a refresh.
    let refreshes: Vec<admin::KeyRefreshInfo> = h
        .admin_call(
            admin::PATH_LIST_KEY_REFRESHES,
            &admin::ListKeyRefreshesRequest {
                organization_id: org.clone(),
                key_id: secp.key_id.clone(),
            },
        )
        .await
        .unwrap();
    assert!(refreshes.is_empty(), "{refreshes:?}");
    // Signing names the new generation; with a offline the signers are b and the new c.
    h.offline("a").await;
    until_online(&h, &org, "a", false).await;
    let s = personal(&h, "after-repair", "m/1/1/60/0", "hello").await;
    assert_eq!(s.state, SignState::Done, "{s:?}");
    let (_, last) = h.sign_tasks().last().unwrap().clone();
    let TaskBody::Sign(st) = &last.body else {
        panic!()
    };
    assert_eq!(st.generation.as_deref(), Some(g.as_str()));
    let signers: Vec<_> = last.members.iter().map(|m| m.node_id.clone()).collect();
    assert_eq!(signers, vec![h.node_id("b"), c_now]);
}

/// Online tracking on a shared bus (several proxies, a lossy bus): a node that moved to another
/// proxy stays online when its older connection's `NodeOffline` arrives late; a node the
/// proxies keep announcing stays online; one no proxy announces any more is taken as offline
/// after `node_announce_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_moving_between_proxies_stay_online_and_unannounced_ones_expire() {
    let mut cfg = test_config(":memory:");
    cfg.node_announce_timeout = Some(Duration::from_millis(800));
    let h = Harness::new(cfg).await;
    let (org, _vault) = h.setup_org().await;
    h.online_via("a", "proxy-1/1").await;
    until_online(&h, &org, "a", true).await;
    // a moves to proxy 2; proxy 1's close of the old connection arrives after that.
    h.online_via("a", "proxy-2/9").await;
    h.offline_via("a", "proxy-1/1").await;
    // Announced every 200 ms for 2 s: online throughout.
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        h.online_via("a", "proxy-2/9").await;
        assert!(is_online(&h, &org, "a").await);
    }
    // No more announcements: offline within the timeout (and a tick).
    until_online(&h, &org, "a", false).await;
    // The current connection's own NodeOffline takes it offline at once.
    h.online_via("a", "proxy-2/10").await;
    until_online(&h, &org, "a", true).await;
    h.offline_via("a", "proxy-2/10").await;
    until_online(&h, &org, "a", false).await;
}
