//! The JSON of every DTO, pinned by snapshots, plus parsing of SDK-shaped bodies and the
//! validation rules.

use mpc_api::envelope::{ApiCode, Envelope};
use mpc_api::types::admin::*;
use mpc_api::types::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

const NODE_KEY_SEED: [u8; 32] = [3; 32];

fn node_id() -> String {
    let k = p256::ecdsa::SigningKey::from_slice(&NODE_KEY_SEED).unwrap();
    mpc_wire::keys::node_id(k.verifying_key())
}

fn api_key() -> String {
    let k = p256::ecdsa::SigningKey::from_slice(&[4; 32]).unwrap();
    mpc_wire::keys::api_key_hex(k.verifying_key())
}

/// Serializes, parses back, and checks nothing changed.
#[track_caller]
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let json = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, v, "{json}");
}

macro_rules! pin {
    ($name:literal, $value:expr) => {{
        let v = $value;
        round_trip(&v);
        insta::assert_json_snapshot!($name, v);
    }};
}

fn keygen_key() -> KeyInfo {
    KeyInfo {
        key_id: "kg-1".into(),
        organization_id: "org-1".into(),
        curve: Curve::EcdsaSecp256k1,
        threshold: 2,
        ecdsa_protocol: Some(EcdsaProtocol::Dkls23),
        parties: vec!["a".into(), "b".into(), "c".into()],
        status: KeyStatus::Generated,
        root_public_key: "02".to_owned() + &"11".repeat(32),
        chain_code: "22".repeat(32),
        xpub: Some("xpub661MyMwAqRbcF".into()),
        failed_reason: String::new(),
        generation: String::new(),
        created_at: 1_700_000_000_000,
    }
}

#[test]
fn waas_dto_snapshots() {
    pin!(
        "create_wallets_request",
        CreateWalletsRequest {
            request_id: "req-1".into(),
            vault_id: "vault-1".into(),
            count: 2,
            wallet_infos: vec![
                WalletInfo {
                    wallet_name: "hot".into(),
                    advanced_enabled: Switch::On,
                },
                WalletInfo {
                    wallet_name: String::new(),
                    advanced_enabled: Switch::Off,
                },
            ],
        }
    );
    pin!(
        "create_wallets_response",
        vec![WalletInfoResult {
            wallet_id: "wallet-1".into(),
            wallet_name: "hot".into(),
            advanced_enabled: Switch::On,
        }]
    );
    pin!(
        "gen_address_by_path_request",
        GenAddressByPathRequest {
            vault_id: "vault-1".into(),
            wallet_id: "wallet-1".into(),
            index: 7,
            algorithm_type: AddressAlgorithm::Secp256k1,
            coin_type: 60,
        }
    );
    let btc = |id: &str, encoding: AddressEncoding, address: &str| AddressInfo {
        id: id.into(),
        address: address.into(),
        hd_path: "m/1/1/0/7".into(),
        encoding,
        pubkey: "03".to_owned() + &"ab".repeat(32),
    };
    let addresses = vec![
        btc("addr-1", AddressEncoding::Legacy, "1..."),
        btc("addr-2", AddressEncoding::SegwitNative, "bc1q..."),
        btc("addr-3", AddressEncoding::SegwitNested, "3..."),
        btc("addr-4", AddressEncoding::Taproot, "bc1p..."),
    ];
    let answered = addresses[1].clone();
    assert_eq!(answered.encoding, DEFAULT_BITCOIN_ENCODING);
    let response = GenAddressByPathResponse {
        id: answered.id.clone(),
        address: answered.address.clone(),
        hd_path: answered.hd_path.clone(),
        encoding: answered.encoding,
        pubkey: answered.pubkey.clone(),
        addresses,
    };
    assert_eq!(response.primary(), answered);
    assert_eq!(
        response.by_encoding(AddressEncoding::Taproot).unwrap().id,
        "addr-4"
    );
    pin!("gen_address_by_path_response", response);
    pin!(
        "gen_address_by_path_response_evm",
        GenAddressByPathResponse {
            id: "addr-5".into(),
            address: "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf".into(),
            hd_path: "m/1/1/60/0".into(),
            encoding: AddressEncoding::Account,
            pubkey: "02".to_owned() + &"79".repeat(32),
            addresses: vec![AddressInfo {
                id: "addr-5".into(),
                address: "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf".into(),
                hd_path: "m/1/1/60/0".into(),
                encoding: AddressEncoding::Account,
                pubkey: "02".to_owned() + &"79".repeat(32),
            }],
        }
    );
    pin!(
        "sign_message_request",
        SignMessageRequest {
            request_id: "req-2".into(),
            chain_symbol: "ETH".into(),
            hd_path: "m/1/1/60/0".into(),
            sign_algorithm: SignAlgorithm::SignTypedDataV4,
            message: "{\"types\":{}}".into(),
        }
    );
    pin!(
        "sign_message_response",
        SignMessageResponse {
            sino_id: "sino-2".into(),
            message_hash: "cd".repeat(32),
        }
    );
    pin!(
        "sign_raw_data_request",
        SignRawDataRequest {
            vault_id: "vault-1".into(),
            request_id: "req-3".into(),
            wallet_id: "wallet-1".into(),
            hd_path: "m/1/1/0/0".into(),
            raw_data: "ef".repeat(32),
            algorithm_type: RawSignAlgorithm::Taproot,
            tap_script_root: "01".repeat(32),
        }
    );
    pin!(
        "sign_raw_data_response",
        SignRawDataResponse {
            sino_id: "sino-3".into()
        }
    );
    pin!(
        "sign_result_request",
        SignResultRequest {
            request_id: Some("req-3".into()),
            sino_id: None,
            wait_ms: None,
        }
    );
    pin!(
        "sign_result_request_by_sino_id",
        SignResultRequest {
            request_id: None,
            sino_id: Some("sino-3".into()),
            wait_ms: None,
        }
    );
    pin!(
        "sign_result_response",
        SignResultResponse {
            request_id: "req-3".into(),
            sino_id: "sino-3".into(),
            message: "ef".repeat(32),
            signature: "aa".repeat(64),
            state: SignState::Done,
            failed_reason: String::new(),
        }
    );
    pin!(
        "sign_transaction_request",
        SignTransactionRequest {
            vault_id: "vault-1".into(),
            request_id: "req-4".into(),
            wallet_id: "wallet-1".into(),
            hd_path: "m/1/1/0/0".into(),
            sighash: "ab".repeat(32),
            algorithm_type: RawSignAlgorithm::Taproot,
            tap_script_root: String::new(),
            tx_info: serde_json::json!({"chain": "BTC", "outputs": [{"address": "bc1q...", "value": 1000}]}),
        }
    );
    pin!(
        "sign_transaction_response",
        SignTransactionResponse {
            sino_id: "sino-4".into(),
        }
    );
    pin!(
        "mpc_node_status",
        MpcNodeStatus {
            node_id: node_id(),
            online_status: OnlineStatus::Online,
        }
    );
    pin!(
        "list_mpc_requests_request",
        ListMpcRequestsRequest {
            business_exec_type: Some(BusinessExecType::SignRawData),
            business_exec_status: Some(BusinessExecStatus::InProgress),
            sino_id: None,
            page_index: 1,
            page_size: 50,
        }
    );
    pin!(
        "list_mpc_requests_response",
        ListMpcRequestsResponse {
            page_index: 1,
            page_size: 10,
            total_size: 2,
            list: vec![
                MpcRequestRecord {
                    request_id: String::new(),
                    sino_id: "kg-1".into(),
                    request_time: format_request_time(1_700_000_000_000),
                    param: "ecdsa-secp256k1".into(),
                    business_exec_type: BusinessExecType::KeyGen,
                    business_exec_status: BusinessExecStatus::Success,
                    is_success: true,
                    failed_reason: String::new(),
                },
                MpcRequestRecord {
                    request_id: "req-3".into(),
                    sino_id: "sino-3".into(),
                    request_time: format_request_time(1_700_000_100_000),
                    param: "ef".repeat(32),
                    business_exec_type: BusinessExecType::SignRawData,
                    business_exec_status: BusinessExecStatus::Failed,
                    is_success: false,
                    failed_reason: "callback rejected".into(),
                },
            ],
        }
    );
}

#[test]
fn admin_dto_snapshots() {
    pin!(
        "admin_create_organization_request",
        CreateOrganizationRequest {
            name: "Acme".into(),
            ecdsa_protocol: Some(EcdsaProtocol::Cggmp24),
        }
    );
    pin!(
        "admin_create_organization_request_default_protocol",
        CreateOrganizationRequest {
            name: "Acme".into(),
            ecdsa_protocol: None,
        }
    );
    pin!(
        "admin_organization",
        Organization {
            organization_id: "org-1".into(),
            name: "Acme".into(),
            vault_id: "vault-1".into(),
            created_at: 1_700_000_000_000,
            ecdsa_protocol: EcdsaProtocol::Dkls23,
        }
    );
    pin!(
        "admin_create_api_user_request",
        CreateApiUserRequest {
            organization_id: "org-1".into(),
            name: "backend".into(),
            api_key: api_key(),
        }
    );
    pin!(
        "admin_api_user",
        ApiUserInfo {
            user_id: "user-1".into(),
            organization_id: "org-1".into(),
            name: "backend".into(),
            api_key: api_key(),
            created_at: 1_700_000_000_000,
        }
    );
    pin!(
        "admin_bind_node_request",
        BindNodeRequest {
            organization_id: "org-1".into(),
            party_id: "a".into(),
            node_id: node_id(),
        }
    );
    pin!(
        "admin_list_nodes_request",
        ListNodesRequest {
            organization_id: "org-1".into()
        }
    );
    pin!(
        "admin_list_nodes_response",
        vec![
            NodeInfo {
                node_id: node_id(),
                party_id: "a".into(),
                organization_id: "org-1".into(),
                online_status: OnlineStatus::Online,
                last_seen_at: Some(1_700_000_000_000),
                key_share_status: KeyStatus::Generated,
            },
            NodeInfo {
                node_id: "sino...".into(),
                party_id: "b".into(),
                organization_id: "org-1".into(),
                online_status: OnlineStatus::Offline,
                last_seen_at: None,
                key_share_status: KeyStatus::Pending,
            },
        ]
    );
    pin!(
        "admin_bind_node_response",
        NodeInfo {
            node_id: node_id(),
            party_id: "c".into(),
            organization_id: "org-1".into(),
            online_status: OnlineStatus::Offline,
            last_seen_at: None,
            key_share_status: KeyStatus::Pending,
        }
    );
    pin!(
        "admin_list_keys_request",
        ListKeysRequest {
            organization_id: "org-1".into()
        }
    );
    pin!(
        "admin_list_keys_response",
        vec![
            keygen_key(),
            KeyInfo {
                key_id: "kg-2".into(),
                curve: Curve::EddsaEd25519,
                ecdsa_protocol: None,
                status: KeyStatus::Failed,
                root_public_key: String::new(),
                chain_code: String::new(),
                xpub: None,
                failed_reason: "party c offline".into(),
                ..keygen_key()
            },
        ]
    );
    pin!(
        "admin_request_keygen_request",
        RequestKeygenRequest {
            organization_id: "org-1".into(),
            curve: Curve::EcdsaSecp256k1,
            threshold: 2,
            parties: vec!["a".into(), "b".into(), "c".into()],
        }
    );
    pin!(
        "admin_request_keygen_response",
        RequestKeygenResponse {
            status: KeyStatus::Pending,
            root_public_key: String::new(),
            chain_code: String::new(),
            xpub: None,
            ..keygen_key()
        }
    );
    pin!(
        "admin_refresh_key_request",
        RefreshKeyRequest {
            organization_id: "org-1".into(),
            key_id: "kg-1".into(),
        }
    );
    pin!(
        "admin_list_key_refreshes_request",
        ListKeyRefreshesRequest {
            organization_id: "org-1".into(),
            key_id: "kg-1".into(),
        }
    );
    pin!(
        "admin_list_key_refreshes_response",
        vec![
            KeyRefreshInfo {
                task_id: "task-2".into(),
                key_id: "kg-1".into(),
                status: RefreshStatus::Pending,
                failed_reason: String::new(),
                outcomes: Default::default(),
                created_at: 1_700_000_000_500,
                finished_at: None,
            },
            KeyRefreshInfo {
                task_id: "task-1".into(),
                key_id: "kg-1".into(),
                status: RefreshStatus::Done,
                failed_reason: String::new(),
                outcomes: [
                    ("a", "refreshed to 0f1e"),
                    ("b", "refreshed to 0f1e"),
                    ("c", "refreshed to 0f1e")
                ]
                .into_iter()
                .map(|(p, o)| (p.to_owned(), o.to_owned()))
                .collect(),
                created_at: 1_700_000_000_000,
                finished_at: Some(1_700_000_000_300),
            },
        ]
    );
    let replace = ReplaceNodeRequest {
        organization_id: "org-1".into(),
        party_id: "c".into(),
        node_id: node_id(),
    };
    replace.validate().unwrap();
    pin!("admin_replace_node_request", replace);
    let repair = RepairKeyRequest {
        organization_id: "org-1".into(),
        key_id: "kg-1".into(),
        party_id: "c".into(),
    };
    repair.validate().unwrap();
    pin!("admin_repair_key_request", repair.clone());
    for (bad, field) in [
        (
            RepairKeyRequest {
                party_id: "d".into(),
                ..repair.clone()
            },
            "partyId",
        ),
        (
            RepairKeyRequest {
                key_id: String::new(),
                ..repair.clone()
            },
            "keyId",
        ),
    ] {
        let e = bad.validate().unwrap_err();
        assert!(e.to_string().contains(field), "{e}");
    }
    assert!(
        ReplaceNodeRequest {
            node_id: "sino-not-a-node-id".into(),
            ..ReplaceNodeRequest {
                organization_id: "org-1".into(),
                party_id: "c".into(),
                node_id: node_id(),
            }
        }
        .validate()
        .unwrap_err()
        .to_string()
        .contains("nodeId")
    );
    pin!(
        "admin_key_after_refresh",
        KeyInfo {
            generation: "0f1e".into(),
            ..keygen_key()
        }
    );
}

#[test]
fn envelope_snapshots() {
    pin!(
        "envelope_ok",
        Envelope::ok(
            "trace-1",
            SignRawDataResponse {
                sino_id: "s".into()
            }
        )
    );
    pin!(
        "envelope_error",
        Envelope::<()>::error("trace-2", ApiCode::Conflict, "requestId already used")
    );
    let codes: Vec<(u16, u16)> = [
        ApiCode::Success,
        ApiCode::BadRequest,
        ApiCode::Unauthorized,
        ApiCode::Forbidden,
        ApiCode::NotFound,
        ApiCode::Conflict,
        ApiCode::TooManyRequests,
        ApiCode::Internal,
        ApiCode::Unavailable,
    ]
    .iter()
    .map(|c| (c.as_u16(), c.http_status()))
    .collect();
    insta::assert_json_snapshot!("envelope_codes", codes);
}

#[test]
fn envelope_parsing() {
    let ok: Envelope<SignRawDataResponse> = serde_json::from_str(
        r#"{"code":200,"msg":"success","success":true,"requestId":"t","data":{"sinoId":"s"}}"#,
    )
    .unwrap();
    assert_eq!(ok.into_result().unwrap().sino_id, "s");
    let err: Envelope<SignRawDataResponse> =
        serde_json::from_str(r#"{"code":404,"msg":"no wallet","success":false,"requestId":"t"}"#)
            .unwrap();
    assert_eq!(
        err.into_result().unwrap_err(),
        (ApiCode::NotFound, "no wallet".to_owned())
    );
    assert!(
        serde_json::from_str::<Envelope<()>>(
            r#"{"code":201,"msg":"","success":true,"requestId":"t"}"#
        )
        .is_err()
    );
    let auth = Envelope::auth_error("t", &mpc_api::auth::AuthError::UnknownKey);
    assert_eq!((auth.code, auth.success), (ApiCode::Unauthorized, false));
}

// ---------------------------------------------------------------- parsing SDK bodies

#[test]
fn parses_go_sdk_shaped_bodies() {
    // What the Go SDK's structs marshal to (omitempty fields absent, zero values present).
    let raw: SignRawDataRequest = serde_json::from_str(
        r#"{"vaultId":"v","requestId":"r","walletId":"w","hdPath":"m/1/1/60/0","rawData":"00ff","algorithmType":0,"tapScriptRoot":""}"#,
    )
    .unwrap();
    assert_eq!(raw.algorithm_type, RawSignAlgorithm::KeyDefault);
    raw.validate().unwrap();
    assert_eq!(raw.raw_data_bytes().unwrap(), vec![0, 255]);
    assert_eq!(raw.tap_script_root_bytes().unwrap(), None);

    let wallets: CreateWalletsRequest = serde_json::from_str(
        r#"{"vaultId":"v","walletInfos":[{"advancedEnabled":1}],"requestId":"r"}"#,
    )
    .unwrap();
    assert_eq!(wallets.count, 1);
    wallets.validate().unwrap();

    let list: ListMpcRequestsRequest = serde_json::from_str("{}").unwrap();
    assert_eq!((list.page_index, list.page_size), (1, 10));
    assert_eq!(list.business_exec_type, None);
    list.validate().unwrap();

    // The Java SDK's extra field is ignored.
    let msg: SignMessageRequest = serde_json::from_str(
        r#"{"requestId":"r","chainSymbol":"ETH","hdPath":"m/1/1/60/0","signAlgorithm":"personal_sign","message":"hi","assetId":"ETH"}"#,
    )
    .unwrap();
    msg.validate().unwrap();

    let result: SignResultRequest = serde_json::from_str(r#"{"sinoId":"s"}"#).unwrap();
    result.validate().unwrap();

    // WaaSAddressPathParam: every field always sent.
    let address: GenAddressByPathRequest = serde_json::from_str(
        r#"{"vaultId":"v","walletId":"w","index":0,"algorithmType":1,"coinType":501}"#,
    )
    .unwrap();
    assert_eq!(address.algorithm_type, AddressAlgorithm::Ed25519);
    address.validate().unwrap();

    // SignMessageParam with Go's HTML-safe escaping of `<`, `>` and `&`.
    let msg: SignMessageRequest = serde_json::from_str(
        r#"{"requestId":"r","chainSymbol":"ETH","hdPath":"m/1/1/60/0","signAlgorithm":"personal_sign","message":"\u003cb\u003e \u0026"}"#,
    )
    .unwrap();
    assert_eq!(msg.message, "<b> &");

    // WaasMpcNodeExecRecordParam with a filter and paging.
    let list: ListMpcRequestsRequest = serde_json::from_str(
        r#"{"businessExecType":4,"businessExecStatus":2,"sinoId":"s","pageIndex":2,"pageSize":50}"#,
    )
    .unwrap();
    assert_eq!(list.business_exec_type, Some(BusinessExecType::SignRawData));
    assert_eq!(list.business_exec_status, Some(BusinessExecStatus::Failed));
    list.validate().unwrap();
}

#[test]
fn refuses_bad_enumerations_and_duplicates() {
    let bad = [
        r#"{"vaultId":"v","walletId":"w","index":0,"algorithmType":2,"coinType":60}"#,
        r#"{"vaultId":"v","walletId":"w","index":-1,"algorithmType":0,"coinType":60}"#,
        r#"{"vaultId":"v","walletId":"w","index":0,"algorithmType":"0","coinType":60}"#,
        r#"{"vaultId":"v","vaultId":"x","walletId":"w","index":0,"algorithmType":0,"coinType":60}"#,
    ];
    for b in bad {
        assert!(
            serde_json::from_str::<GenAddressByPathRequest>(b).is_err(),
            "{b}"
        );
    }
    assert!(
        serde_json::from_str::<SignMessageRequest>(
            r#"{"requestId":"r","chainSymbol":"ETH","hdPath":"m/0","signAlgorithm":"eth_sign","message":"x"}"#
        )
        .is_err()
    );
    assert!(serde_json::from_str::<ListMpcRequestsRequest>(r#"{"businessExecType":0}"#).is_err());
    assert!(serde_json::from_str::<ListMpcRequestsRequest>(r#"{"businessExecStatus":3}"#).is_err());
    assert!(
        serde_json::from_str::<CreateWalletsRequest>(
            r#"{"vaultId":"v","requestId":"r","walletInfos":[{"advancedEnabled":2}]}"#
        )
        .is_err()
    );
}

// ---------------------------------------------------------------- validation

fn raw(algo: RawSignAlgorithm, data: &str, root: &str) -> SignRawDataRequest {
    SignRawDataRequest {
        vault_id: "v".into(),
        request_id: "r".into(),
        wallet_id: "w".into(),
        hd_path: "m/1/1/0/0".into(),
        raw_data: data.into(),
        algorithm_type: algo,
        tap_script_root: root.into(),
    }
}

#[test]
fn validation_errors() {
    let wallets = |count: u32, infos: usize| CreateWalletsRequest {
        request_id: "r".into(),
        vault_id: "v".into(),
        count,
        wallet_infos: vec![
            WalletInfo {
                wallet_name: "w".into(),
                advanced_enabled: Switch::Off
            };
            infos
        ],
    };
    wallets(50, 0).validate().unwrap();
    wallets(3, 3).validate().unwrap();
    let mut long_name = wallets(1, 1);
    long_name.wallet_infos[0].wallet_name = "x".repeat(MAX_NAME_LEN + 1);
    let mut no_request_id = wallets(1, 0);
    no_request_id.request_id.clear();
    let mut spaced_vault = wallets(1, 0);
    spaced_vault.vault_id = "a b".into();

    let addr = |index: u32, coin_type: u32| GenAddressByPathRequest {
        vault_id: "v".into(),
        wallet_id: "w".into(),
        index,
        algorithm_type: AddressAlgorithm::Ed25519,
        coin_type,
    };
    addr((1 << 31) - 1, 501).validate().unwrap();

    let msg = |path: &str, message: &str| SignMessageRequest {
        request_id: "r".into(),
        chain_symbol: "ETH".into(),
        hd_path: path.into(),
        sign_algorithm: SignAlgorithm::PersonalSign,
        message: message.into(),
    };
    msg("m/1/1/60/0", "hello").validate().unwrap();

    let list = |page_index: u32, page_size: u32| ListMpcRequestsRequest {
        business_exec_type: None,
        business_exec_status: None,
        sino_id: None,
        page_index,
        page_size,
    };
    list(1, 50).validate().unwrap();

    raw(RawSignAlgorithm::KeyDefault, "00", "")
        .validate()
        .unwrap();
    raw(RawSignAlgorithm::Bip340, &"00".repeat(32), "")
        .validate()
        .unwrap();
    raw(
        RawSignAlgorithm::Taproot,
        &"00".repeat(32),
        &"11".repeat(32),
    )
    .validate()
    .unwrap();

    let keygen = |threshold: u16, parties: &[&str]| RequestKeygenRequest {
        organization_id: "org-1".into(),
        curve: Curve::EddsaEd25519,
        threshold,
        parties: parties.iter().map(|s| s.to_string()).collect(),
    };
    keygen(2, &["a", "b", "c"]).validate().unwrap();
    keygen(3, &["a", "b", "c"]).validate().unwrap();
    assert!(keygen(4, &["a", "b", "c"]).validate().is_err());
    let bind = |party: &str, node: String| BindNodeRequest {
        organization_id: "org-1".into(),
        party_id: party.into(),
        node_id: node,
    };
    bind("a", node_id()).validate().unwrap();
    let user = |key: String| CreateApiUserRequest {
        organization_id: "org-1".into(),
        name: "u".into(),
        api_key: key,
    };
    user(api_key()).validate().unwrap();

    let errors: Vec<String> = [
        wallets(0, 0).validate(),
        wallets(51, 0).validate(),
        wallets(3, 2).validate(),
        long_name.validate(),
        no_request_id.validate(),
        spaced_vault.validate(),
        addr(1 << 31, 60).validate(),
        addr(0, 1 << 31).validate(),
        msg("m/44'/60'/0'/0/0", "x").validate(),
        msg("m/1/01", "x").validate(),
        msg("1/2", "x").validate(),
        msg("m/1", "").validate(),
        list(0, 10).validate(),
        list(1, 0).validate(),
        list(1, 51).validate(),
        raw(RawSignAlgorithm::KeyDefault, "0x00", "").validate(),
        raw(RawSignAlgorithm::KeyDefault, "abc", "").validate(),
        raw(RawSignAlgorithm::KeyDefault, "", "").validate(),
        raw(RawSignAlgorithm::Bip340, "00", "").validate(),
        raw(RawSignAlgorithm::Taproot, &"00".repeat(32), "11").validate(),
        raw(RawSignAlgorithm::Bip340, &"00".repeat(32), &"11".repeat(32)).validate(),
        SignResultRequest::default().validate(),
        SignResultRequest {
            request_id: Some(String::new()),
            sino_id: Some(String::new()),
            wait_ms: None,
        }
        .validate(),
        keygen(1, &["a", "b", "c"]).validate(),
        keygen(2, &["a", "b"]).validate(),
        keygen(2, &["c", "b", "a"]).validate(),
        bind("d", node_id()).validate(),
        bind("a", "sino".into()).validate(),
        user(api_key().to_uppercase()).validate(),
        user("00".into()).validate(),
        CreateOrganizationRequest {
            name: " ".into(),
            ecdsa_protocol: None,
        }
        .validate(),
        CreateOrganizationRequest {
            name: "a\nb".into(),
            ecdsa_protocol: None,
        }
        .validate(),
        ListNodesRequest {
            organization_id: String::new(),
        }
        .validate(),
        ListKeysRequest {
            organization_id: "x".repeat(MAX_ID_LEN + 1),
        }
        .validate(),
    ]
    .into_iter()
    .map(|r| r.unwrap_err().to_string())
    .collect();
    insta::assert_json_snapshot!("validation_errors", errors);
}

/// `waitMs` (our long-poll extension of `sign_result`): absent from what the Go SDK sends and
/// from what we send when unset, at most 10 s.
#[test]
fn sign_result_wait_is_optional_and_bounded() {
    let sdk: SignResultRequest = serde_json::from_str(r#"{"requestId":"req-3"}"#).unwrap();
    assert_eq!(sdk.wait_ms, None);
    let waiting: SignResultRequest =
        serde_json::from_str(r#"{"requestId":"req-3","waitMs":2500}"#).unwrap();
    assert_eq!(waiting.wait_ms, Some(2500));
    waiting.validate().unwrap();
    assert_eq!(
        serde_json::to_string(&waiting).unwrap(),
        r#"{"requestId":"req-3","waitMs":2500}"#
    );
    SignResultRequest {
        wait_ms: Some(MAX_SIGN_RESULT_WAIT_MS),
        ..waiting.clone()
    }
    .validate()
    .unwrap();
    let too_long = SignResultRequest {
        wait_ms: Some(MAX_SIGN_RESULT_WAIT_MS + 1),
        ..waiting
    };
    assert_eq!(
        too_long.validate().unwrap_err().to_string(),
        "waitMs: at most 10000 ms"
    );
}

/// `sign_transaction`'s `txInfo` cannot speak for the node: `signAlgorithm` (written by the node
/// for sign_type 2 messages only) is refused, and `tapScriptRoot` only when it is the request's
/// own root (any hex case); the node would refuse the task anyway, this names the field up front.
#[test]
fn sign_transaction_tx_info_cannot_speak_for_the_node() {
    let root = "ab".repeat(32);
    let tx = |algorithm_type, tap_script_root: &str, tx_info| SignTransactionRequest {
        vault_id: "v".into(),
        request_id: "r".into(),
        wallet_id: "w".into(),
        hd_path: "m/1/1/0/0".into(),
        sighash: "11".repeat(32),
        algorithm_type,
        tap_script_root: tap_script_root.into(),
        tx_info,
    };
    use serde_json::json;
    let taproot = RawSignAlgorithm::Taproot;
    for ok in [
        tx(RawSignAlgorithm::KeyDefault, "", json!({"to": "0x1"})),
        tx(taproot, &root, json!({"to": "bc1p"})),
        tx(taproot, &root, json!({"tapScriptRoot": root})),
        tx(
            taproot,
            &root,
            json!({"tapScriptRoot": root.to_uppercase()}),
        ),
        // Nested keys are the platform's business.
        tx(
            taproot,
            "",
            json!({"x": {"signAlgorithm": "personal_sign"}}),
        ),
    ] {
        ok.validate().unwrap();
    }
    for bad in [
        tx(
            RawSignAlgorithm::KeyDefault,
            "",
            json!({"signAlgorithm": "personal_sign"}),
        ),
        tx(
            taproot,
            &root,
            json!({"signAlgorithm": "eth_signTypedData_v4"}),
        ),
        tx(taproot, "", json!({"tapScriptRoot": root})),
        tx(taproot, "", json!({"tapScriptRoot": ""})),
        tx(taproot, &root, json!({"tapScriptRoot": "cd".repeat(32)})),
        tx(taproot, &root, json!({"tapScriptRoot": 1})),
    ] {
        let e = bad.validate().unwrap_err();
        assert_eq!(e.field, "txInfo", "{bad:?}");
        assert!(
            e.reason.contains("signAlgorithm") || e.reason.contains("tapScriptRoot"),
            "{e}"
        );
    }
}
