//! A Go SDK client against the real coordinator (served in-process): every endpoint the SDK
//! has, bodies as Go marshals and signs them, answers decoded into the SDK's own structs. The
//! JSON shape of every real answer is pinned by a snapshot.

use std::collections::BTreeMap;
use std::time::Duration;

use mpc_api::types as t;
use mpc_chains::address::{BtcEncoding, Network, bitcoin_address, evm_address, solana_address};
use mpc_chains::message::{SignMessageKind, sign_message_payload};
use serde_json::Value;

use super::*;
use crate::common::{self, WAIT};

fn secp_child(coin: u32, index: u32) -> [u8; 33] {
    crate::derive_bip32(
        &common::secp_root_public(),
        common::secrets().secp_cc,
        &[1, 1, coin, index],
    )
}

fn ed_child(coin: u32, index: u32) -> Vec<u8> {
    use hd_wallet::HdWallet;
    hd_wallet::Edwards::derive_child_key_pair_with_path(&common::ed_pair(), [1u32, 1, coin, index])
        .public_key()
        .public_key
        .to_bytes(true)
        .as_ref()
        .to_vec()
}

fn address_param(vault: &str, wallet: &str, algorithm: i64, coin: i64) -> Vec<u8> {
    go_marshal(&WaaSAddressPathParam {
        vault_id: vault.into(),
        wallet_id: wallet.into(),
        index: 0,
        algorithm_type: algorithm,
        coin_type: coin,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_sdk_client_decodes_every_response() {
    let (h, _org, vault) = Harness::ready_org().await;
    let go = GoClient {
        harness: &h,
        key: h.user.lock().unwrap().clone().unwrap(),
    };
    let mut shapes: BTreeMap<&str, Value> = BTreeMap::new();
    // One SDK call; the answer's JSON shape recorded under `name`.
    macro_rules! sdk {
        ($name:literal, $path:expr, $body:expr) => {{
            let (status, v) = go.raw($path, $body).await;
            shapes.insert($name, shape(&v));
            GoClient::decode(status, v)
        }};
    }
    let sign_result = |request_id: &'static str| {
        let go = &go;
        async move {
            let end = tokio::time::Instant::now() + WAIT;
            loop {
                let body = go_marshal(&SignResultParam {
                    request_id: request_id.into(),
                });
                let (status, v) = go.raw(t::PATH_SIGN_RESULT, Some(body)).await;
                let Struct(r): Struct<SignResultDTO> = GoClient::decode(status, v.clone()).unwrap();
                if r.state != 0 {
                    return (r, shape(&v));
                }
                assert!(tokio::time::Instant::now() < end, "{request_id} pending");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };

    // AccountAndAddress.CreateWallets: `count` left out (omitempty), one wallet info.
    let wallets: Vec<Struct<WaaSWalletInfoData>> = sdk!(
        "create_wallets",
        t::PATH_CREATE_WALLETS,
        Some(go_marshal(&WaaSCreateBatchWalletParam {
            count: 0,
            vault_id: vault.clone(),
            wallet_infos: vec![WaaSCreateWalletInfo {
                wallet_name: String::new(),
                advanced_enabled: 1,
            }],
            request_id: "go-wallets-1".into(),
        }))
    )
    .unwrap();
    assert_eq!(wallets.len(), 1);
    assert_eq!(wallets[0].advanced_enabled, 1);
    assert!(!wallets[0].wallet_name.is_empty());
    let wallet = wallets[0].wallet_id.clone();

    // Advance.GenAddressByPath: ONE WaaSAddressInfoData, the coin type's address.
    let evm: Struct<WaaSAddressInfoData> = sdk!(
        "gen_address_by_path",
        t::PATH_GEN_ADDRESS_BY_PATH,
        Some(address_param(&vault, &wallet, 0, 60))
    )
    .unwrap();
    let key = secp_child(60, 0);
    assert_eq!(evm.address, evm_address(&key).unwrap());
    assert_eq!(
        (evm.encoding, evm.hd_path.as_str(), evm.pubkey.as_str()),
        (0, "m/1/1/60/0", hex::encode(key).as_str())
    );
    assert!(!evm.id.is_empty());

    let btc: Struct<WaaSAddressInfoData> = go
        .call(
            t::PATH_GEN_ADDRESS_BY_PATH,
            Some(address_param(&vault, &wallet, 0, 0)),
        )
        .await
        .unwrap();
    let key = secp_child(0, 0);
    assert_eq!(
        btc.address,
        bitcoin_address(&key, BtcEncoding::SegwitNative, Network::Mainnet).unwrap()
    );
    assert_eq!(btc.encoding, 2);
    assert_eq!(btc.pubkey, hex::encode(key));

    let ed: Struct<WaaSAddressInfoData> = go
        .call(
            t::PATH_GEN_ADDRESS_BY_PATH,
            Some(address_param(&vault, &wallet, 1, 501)),
        )
        .await
        .unwrap();
    let key = ed_child(501, 0);
    assert_eq!(ed.address, solana_address(&key).unwrap());
    assert_eq!((ed.encoding, ed.pubkey.clone()), (0, hex::encode(&key)));

    // Transaction.SignMessage: a message Go escapes (`<`, `>`, `&`) and whose spaces the
    // signature leaves out.
    let message = "hello <go> & sdk";
    let body = go_marshal(&SignMessageParam {
        request_id: "go-msg-1".into(),
        chain_symbol: "ETH".into(),
        hd_path: "m/1/1/60/0".into(),
        sign_algorithm: "personal_sign".into(),
        message: message.into(),
    });
    assert!(String::from_utf8_lossy(&body).contains(r"\u003cgo\u003e \u0026 sdk"));
    let hash: Struct<WaaSMessageHashResult> =
        sdk!("sign_message", t::PATH_SIGN_MESSAGE, Some(body)).unwrap();
    let digest = sign_message_payload(SignMessageKind::PersonalSign, message)
        .unwrap()
        .digest();
    assert_eq!(hash.message_hash, hex::encode(digest));
    let (done, result_shape) = sign_result("go-msg-1").await;
    shapes.insert("sign_result", result_shape);
    assert_eq!((done.state, done.request_id.as_str()), (1, "go-msg-1"));
    assert_eq!(
        (done.sino_id.as_str(), done.message.as_str()),
        (hash.sino_id.as_str(), message)
    );
    assert_eq!(hex::decode(&done.signature).unwrap().len(), 65);

    // Advance.SignRawData: algorithmType and tapScriptRoot always sent (no omitempty).
    let raw: Struct<WaaSSignRawDataRes> = sdk!(
        "sign_raw_data",
        t::PATH_SIGN_RAW_DATA,
        Some(go_marshal(&WaaSSignRawDataParam {
            vault_id: vault.clone(),
            request_id: "go-raw-1".into(),
            wallet_id: wallet.clone(),
            hd_path: "m/1/1/0/0".into(),
            raw_data: hex::encode([0x5a; 32]),
            algorithm_type: 0,
            tap_script_root: String::new(),
        }))
    )
    .unwrap();
    let (done, _) = sign_result("go-raw-1").await;
    assert_eq!(
        (done.state, done.sino_id.as_str()),
        (1, raw.sino_id.as_str())
    );

    // MPCNode.Status: a nil request, so an empty body signed as "".
    let Struct(status): Struct<WaaSMpcNodeStatusDTOData> =
        sdk!("mpcnode_status", t::PATH_MPC_NODE_STATUS, None).unwrap();
    assert_eq!((status.node_id, status.online_status), (h.node_id("a"), 1));

    // MPCNode.ListMPCRequests: every field left out, then a filter on signRawData (4).
    let Struct(all): Struct<WaaSMPCNodeRequestRes> = sdk!(
        "list_mpc_requests",
        t::PATH_LIST_MPC_REQUESTS,
        Some(go_marshal(&WaasMpcNodeExecRecordParam::default()))
    )
    .unwrap();
    // Absent pageIndex and pageSize: the first page of 10.
    assert_eq!((all.page_index, all.page_size), (1, 10));
    assert_eq!(all.total_size, all.list.len() as i64);
    let kinds: Vec<i64> = all.list.iter().map(|r| r.business_exec_type).collect();
    for kind in [1, 3, 4] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    for r in &all.list {
        assert_eq!(r.request_time.len(), "2024-01-01 00:00:00".len(), "{r:?}");
        assert_eq!((r.business_exec_status, r.is_success), (1, true), "{r:?}");
        assert!(!r.sino_id.is_empty() && r.failed_reason.is_empty(), "{r:?}");
        if r.business_exec_type == 1 {
            assert!(r.request_id.is_empty());
            assert!(["ecdsa-secp256k1", "eddsa-ed25519"].contains(&r.param.as_str()));
        }
    }
    // `ListMPCRequests(nil)`: Go marshals the nil pointer to `null`.
    let from_nil: Struct<WaaSMPCNodeRequestRes> = go
        .call(t::PATH_LIST_MPC_REQUESTS, Some(b"null".to_vec()))
        .await
        .unwrap();
    assert_eq!(from_nil.total_size, all.total_size);
    let raw_only: Struct<WaaSMPCNodeRequestRes> = go
        .call(
            t::PATH_LIST_MPC_REQUESTS,
            Some(go_marshal(&WaasMpcNodeExecRecordParam {
                business_exec_type: 4,
                page_index: 1,
                page_size: 50,
                ..Default::default()
            })),
        )
        .await
        .unwrap();
    assert_eq!(raw_only.list.len(), 1);
    assert_eq!(raw_only.list[0].request_id, "go-raw-1");

    // A nil parameter where fields are required: the first missing one is named.
    let err = go
        .call::<Struct<WaaSSignRawDataRes>>(t::PATH_SIGN_RAW_DATA, Some(b"null".to_vec()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SdkError::Code(400, msg) if msg.contains("missing field `vaultId`")),
        "{err:?}"
    );

    // An error the SDK reports with the platform's code and message: HTTP 200, code 404.
    let err = sdk!(
        "error",
        t::PATH_GEN_ADDRESS_BY_PATH,
        Some(address_param(&vault, "wallet-nope", 0, 60))
    )
    .map(|_: Struct<WaaSAddressInfoData>| ())
    .unwrap_err();
    assert!(
        matches!(&err, SdkError::Code(404, msg) if msg.contains("wallet")),
        "{err:?}"
    );
    // A key the platform does not know: HTTP 401, which the SDK reports as "unauthorized".
    let stranger = GoClient {
        harness: &h,
        key: p256::ecdsa::SigningKey::from_slice(&[0x77; 32]).unwrap(),
    };
    assert_eq!(
        stranger
            .call::<Struct<WaaSMpcNodeStatusDTOData>>(t::PATH_MPC_NODE_STATUS, None)
            .await
            .unwrap_err(),
        SdkError::Http(401)
    );

    // One snapshot for both runs of the suite (SQLite and PostgreSQL): not prefixed with the
    // test binary's name.
    insta::with_settings!({ prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!("real_response_shapes", shapes);
    });
}
