//! The coordinator with nodes running the real protocols (`mpc_tss::sim`): the root keys come
//! from real FROST / CGGMP key generation, and the EdDSA, BIP340 and Taproot signatures from
//! real FROST signing, and two CGGMP ECDSA signatures (slow), all verified by the coordinator
//! against its share-free derivation.

mod common;

use common::{Harness, test_config};
use mpc_api::types::{self as t, AddressAlgorithm, RawSignAlgorithm, SignState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_keygen_and_every_signature_scheme() {
    let mut config = test_config(":memory:");
    config.sign_timeout = std::time::Duration::from_secs(120);
    let h = Harness::new_real(config).await;
    let (_org, vault) = h.setup_org().await;
    for p in ["a", "b", "c"] {
        h.online(p).await;
    }
    let keys = h.until_keys_generated().await;
    assert!(keys.iter().all(|k| k.threshold == 3));
    let w: t::CreateWalletsResponse = h
        .user_call(
            t::PATH_CREATE_WALLETS,
            &t::CreateWalletsRequest {
                request_id: "w".into(),
                vault_id: vault.clone(),
                count: 1,
                wallet_infos: vec![t::WalletInfo {
                    wallet_name: "hot".into(),
                    advanced_enabled: t::Switch::On,
                }],
            },
        )
        .await
        .unwrap();
    let wallet = w[0].wallet_id.clone();
    for (algo, coin) in [
        (AddressAlgorithm::Ed25519, 501),
        (AddressAlgorithm::Secp256k1, 0),
    ] {
        let _: t::GenAddressByPathResponse = h
            .user_call(
                t::PATH_GEN_ADDRESS_BY_PATH,
                &t::GenAddressByPathRequest {
                    vault_id: vault.clone(),
                    wallet_id: wallet.clone(),
                    index: 2,
                    algorithm_type: algo,
                    coin_type: coin,
                },
            )
            .await
            .unwrap();
    }
    let cases = [
        (
            "ed",
            "m/1/1/501/2",
            b"a solana message".to_vec(),
            RawSignAlgorithm::KeyDefault,
            String::new(),
        ),
        (
            "bip340",
            "m/1/1/0/2",
            vec![0x42; 32],
            RawSignAlgorithm::Bip340,
            String::new(),
        ),
        (
            "taproot",
            "m/1/1/0/2",
            vec![0x43; 32],
            RawSignAlgorithm::Taproot,
            hex::encode([0x99u8; 32]),
        ),
        (
            "taproot-bip86",
            "m/1/1/0/2",
            vec![0x44; 32],
            RawSignAlgorithm::Taproot,
            String::new(),
        ),
    ];
    for (rid, path, data, algo, root) in cases {
        let _: t::SignRawDataResponse = h
            .user_call(
                t::PATH_SIGN_RAW_DATA,
                &t::SignRawDataRequest {
                    vault_id: vault.clone(),
                    request_id: rid.into(),
                    wallet_id: wallet.clone(),
                    hd_path: path.into(),
                    raw_data: hex::encode(&data),
                    algorithm_type: algo,
                    tap_script_root: root,
                },
            )
            .await
            .unwrap();
        let r = h.sign_result(rid).await;
        // The coordinator verified the signature against its own derivation before `done`.
        assert_eq!(r.state, SignState::Done, "{rid}: {r:?}");
        assert_eq!(hex::decode(&r.signature).unwrap().len(), 64);
    }

    // ECDSA (CGGMP): one raw digest and one personal_sign, recovered to the derived key.
    let _: t::SignRawDataResponse = h
        .user_call(
            t::PATH_SIGN_RAW_DATA,
            &t::SignRawDataRequest {
                vault_id: vault.clone(),
                request_id: "ecdsa".into(),
                wallet_id: wallet.clone(),
                hd_path: "m/1/1/0/2".into(),
                raw_data: hex::encode([0x45u8; 32]),
                algorithm_type: RawSignAlgorithm::KeyDefault,
                tap_script_root: String::new(),
            },
        )
        .await
        .unwrap();
    let r = h.sign_result("ecdsa").await;
    assert_eq!(r.state, SignState::Done, "{r:?}");
    assert!(hex::decode(&r.signature).unwrap()[64] <= 1);
    let _: t::SignMessageResponse = h
        .user_call(
            t::PATH_SIGN_MESSAGE,
            &t::SignMessageRequest {
                request_id: "pm".into(),
                chain_symbol: "ETH".into(),
                hd_path: "m/1/1/60/0".into(),
                sign_algorithm: t::SignAlgorithm::PersonalSign,
                message: "hello".into(),
            },
        )
        .await
        .unwrap();
    let r = h.sign_result("pm").await;
    assert_eq!(r.state, SignState::Done, "{r:?}");
    assert!(hex::decode(&r.signature).unwrap()[64] >= 27);
}
