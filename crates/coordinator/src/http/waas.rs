//! WaaS routes: the public API's MPC endpoints for an organization's API users, plus our
//! `sign_transaction` extension. Request and response shapes are the Go SDK's where it has
//! them (`docs/platform.md`, "The API and the Go SDK").

use mpc_api::envelope::ApiCode;
use mpc_api::types::{
    self as t, AddressAlgorithm, AddressEncoding, AddressInfo, BusinessExecStatus,
    BusinessExecType, CreateWalletsRequest, DEFAULT_BITCOIN_ENCODING, GenAddressByPathRequest,
    GenAddressByPathResponse, ListMpcRequestsRequest, ListMpcRequestsResponse, MpcNodeStatus,
    MpcRequestRecord, OnlineStatus, RawSignAlgorithm, SignAlgorithm, SignMessageRequest,
    SignMessageResponse, SignRawDataRequest, SignRawDataResponse, SignResultRequest,
    SignResultResponse, SignTransactionRequest, Switch, WalletInfoResult,
};
use mpc_chains::address::{self as addr, BtcEncoding};
use mpc_chains::coin::{CoinFamily, EVM_COIN_TYPES, coin_family};
use mpc_chains::error::AddressError;
use mpc_chains::message::SignMessageKind;
use mpc_transport::task::{Algorithm, Curve, Payload};
use mpc_tss::DerivationPath;

use super::{Answer, Failure, derive, fail, json, parse_path};
use crate::engine::SignPlan;
use crate::store::{AddressRow, MpcRequestQuery, SignRequestRow, SignState, WalletRow, now_ms};
use crate::verify::VerifyInput;
use crate::{Coordinator, new_id};

impl Coordinator {
    pub(super) async fn create_wallets(&self, org: String, r: CreateWalletsRequest) -> Answer {
        self.require_vault(&org, &r.vault_id).await?;
        let now = now_ms();
        let rows: Vec<WalletRow> = (0..r.count as usize)
            .map(|i| {
                let id = new_id("wallet");
                let info = r.wallet_infos.get(i);
                let name = info
                    .map(|w| w.wallet_name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| format!("wallet-{}", &id[6..18]));
                WalletRow {
                    id,
                    organization_id: org.clone(),
                    vault_id: r.vault_id.clone(),
                    name,
                    advanced: info.is_some_and(|w| w.advanced_enabled == Switch::On),
                    request_id: r.request_id.clone(),
                    created_at: now,
                }
            })
            .collect();
        let (o, rid) = (org.clone(), r.request_id.clone());
        let stored = self.db(move |s| s.create_wallets(&o, &rid, &rows)).await?;
        json(
            stored
                .into_iter()
                .map(|w| WalletInfoResult {
                    wallet_id: w.id,
                    wallet_name: w.name,
                    advanced_enabled: if w.advanced { Switch::On } else { Switch::Off },
                })
                .collect::<Vec<_>>(),
        )
    }

    /// One address, the coin type's (the Go SDK's `WaaSAddressInfoData`), plus every address of
    /// the key at the path for that chain in `addresses`; see [`GenAddressByPathResponse`].
    pub(super) async fn gen_address(&self, org: String, r: GenAddressByPathRequest) -> Answer {
        let family = match r.algorithm_type {
            AddressAlgorithm::Secp256k1 => Some(coin_family(r.coin_type).ok_or_else(|| {
                fail(
                    ApiCode::BadRequest,
                    format!(
                        "coinType: {} has no secp256k1 address format on this platform; use 0 \
                         (Bitcoin), 1 (Bitcoin testnet) or an EVM coin type ({}; 60 serves every \
                         EVM chain)",
                        r.coin_type,
                        EVM_COIN_TYPES.map(|c| c.to_string()).join(", ")
                    ),
                )
            })?),
            AddressAlgorithm::Ed25519 => None,
        };
        let wallet = self
            .require_advanced_wallet(&org, &r.vault_id, &r.wallet_id)
            .await?;
        let path_text = format!("m/1/1/{}/{}", r.coin_type, r.index);
        let path: DerivationPath = path_text
            .parse()
            .map_err(|e: mpc_tss::InputError| fail(ApiCode::BadRequest, e.to_string()))?;
        let curve = match r.algorithm_type {
            AddressAlgorithm::Secp256k1 => Curve::Secp256k1,
            AddressAlgorithm::Ed25519 => Curve::Ed25519,
        };
        let key = self.require_key(&org, curve).await?;
        let pubkey = derive(&key, &path)?;
        let (computed, primary) = chain_addresses(family, &pubkey)
            .map_err(|e| fail(ApiCode::Internal, format!("address of a derived key: {e}")))?;
        let rows: Vec<AddressRow> = computed
            .iter()
            .map(|(encoding, address)| AddressRow {
                id: new_id("addr"),
                wallet_id: wallet.id.clone(),
                path: path_text.clone(),
                algorithm: r.algorithm_type.as_number(),
                encoding: encoding.as_number(),
                address: address.clone(),
                pubkey: hex::encode(&pubkey),
            })
            .collect();
        let stored = self.db(move |s| s.save_addresses(&rows)).await?;
        // Records of this path in other encodings (an older build stored every format at every
        // coin type) are not this chain's addresses.
        let addresses: Vec<AddressInfo> = stored
            .into_iter()
            .filter(|a| computed.iter().any(|(e, _)| e.as_number() == a.encoding))
            .map(|a| AddressInfo {
                id: a.id,
                address: a.address,
                hd_path: a.path,
                encoding: AddressEncoding::try_from(i64::from(a.encoding))
                    .unwrap_or(AddressEncoding::Account),
                pubkey: a.pubkey,
            })
            .collect();
        let answer = addresses
            .iter()
            .find(|a| a.encoding == primary)
            .cloned()
            .ok_or_else(|| fail(ApiCode::Internal, "the address record was not stored"))?;
        json(GenAddressByPathResponse {
            id: answer.id,
            address: answer.address,
            hd_path: answer.hd_path,
            encoding: answer.encoding,
            pubkey: answer.pubkey,
            addresses,
        })
    }

    pub(super) async fn sign_message(&self, org: String, r: SignMessageRequest) -> Answer {
        let kind = match r.sign_algorithm {
            SignAlgorithm::PersonalSign => SignMessageKind::PersonalSign,
            SignAlgorithm::SignTypedDataV3 => SignMessageKind::TypedDataV3,
            SignAlgorithm::SignTypedDataV4 => SignMessageKind::TypedDataV4,
            SignAlgorithm::SignTypedData => {
                return Err(fail(
                    ApiCode::BadRequest,
                    "signAlgorithm: legacy signTypedData (v1) is not supported",
                ));
            }
        };
        let payload = mpc_chains::message::sign_message_payload(kind, &r.message)
            .map_err(|e| fail(ApiCode::BadRequest, format!("message: {e}")))?;
        let digest = payload.digest();
        let path = parse_path(&r.hd_path)?;
        let key = self.require_key(&org, Curve::Secp256k1).await?;
        let pk = derive(&key, &path)?;
        let plan = SignPlan {
            organization_id: org,
            request_id: r.request_id.clone(),
            kind: BusinessExecType::SignMessage,
            key,
            path: path.to_string(),
            algorithm: Algorithm::Ecdsa,
            sign_type: 2,
            payload: Payload::SignMessage {
                kind: kind.as_str().to_owned(),
                message: r.message.clone(),
            },
            api_message: r.message,
            verify: VerifyInput {
                algorithm: Algorithm::Ecdsa,
                public_key: pk,
                signed: digest.to_vec(),
                v_offset: 27,
                tap_script_root: None,
            },
            tx_info: None,
        };
        let row = self.submit_sign(plan).await?;
        json(SignMessageResponse {
            sino_id: row.sino_id,
            message_hash: row.digest,
        })
    }

    pub(super) async fn sign_raw_data(&self, org: String, r: SignRawDataRequest) -> Answer {
        let wallet = self
            .require_advanced_wallet(&org, &r.vault_id, &r.wallet_id)
            .await?;
        let path = parse_path(&r.hd_path)?;
        let data = r
            .raw_data_bytes()
            .map_err(|e| fail(ApiCode::BadRequest, e.to_string()))?;
        let root = r
            .tap_script_root_bytes()
            .map_err(|e| fail(ApiCode::BadRequest, e.to_string()))?;
        let algorithm = match r.algorithm_type {
            RawSignAlgorithm::Bip340 => Algorithm::Bip340,
            RawSignAlgorithm::Taproot => Algorithm::Taproot,
            RawSignAlgorithm::KeyDefault => {
                // The key's own scheme: the curve of the addresses generated at this path
                // (ed25519 only when the path has ed25519 addresses and no secp256k1 ones).
                let (w, p) = (wallet.id.clone(), path.to_string());
                let at = self.db(move |s| s.addresses_at(&w, &p)).await?;
                let ed = at
                    .iter()
                    .any(|a| a.algorithm == AddressAlgorithm::Ed25519.as_number());
                let secp = at
                    .iter()
                    .any(|a| a.algorithm == AddressAlgorithm::Secp256k1.as_number());
                if ed && !secp {
                    Algorithm::Eddsa
                } else {
                    Algorithm::Ecdsa
                }
            }
        };
        let payload = if algorithm == Algorithm::Eddsa {
            Payload::Message {
                message: data.clone(),
            }
        } else {
            let digest: [u8; 32] = data.as_slice().try_into().map_err(|_| {
                fail(
                    ApiCode::BadRequest,
                    format!(
                        "rawData: is {} bytes; ECDSA signs a 32-byte digest",
                        data.len()
                    ),
                )
            })?;
            Payload::Digest { digest }
        };
        let tx_info =
            root.map(|r| serde_json::json!({ "tapScriptRoot": hex::encode(r) }).to_string());
        let row = self
            .plan_and_submit(
                org,
                r.request_id,
                BusinessExecType::SignRawData,
                3,
                algorithm,
                path,
                payload,
                r.raw_data,
                data,
                root,
                tx_info,
            )
            .await?;
        json(SignRawDataResponse {
            sino_id: row.sino_id,
        })
    }

    pub(super) async fn sign_transaction(&self, org: String, r: SignTransactionRequest) -> Answer {
        self.require_advanced_wallet(&org, &r.vault_id, &r.wallet_id)
            .await?;
        let path = parse_path(&r.hd_path)?;
        let digest = r
            .sighash_bytes()
            .map_err(|e| fail(ApiCode::BadRequest, e.to_string()))?;
        let root = r
            .tap_script_root_bytes()
            .map_err(|e| fail(ApiCode::BadRequest, e.to_string()))?;
        let algorithm = match r.algorithm_type {
            RawSignAlgorithm::KeyDefault => Algorithm::Ecdsa,
            RawSignAlgorithm::Bip340 => Algorithm::Bip340,
            RawSignAlgorithm::Taproot => Algorithm::Taproot,
        };
        let mut tx_info = r.tx_info.clone();
        if let (Some(root), Some(obj)) = (root, tx_info.as_object_mut()) {
            obj.insert(
                "tapScriptRoot".into(),
                serde_json::Value::String(hex::encode(root)),
            );
        }
        let row = self
            .plan_and_submit(
                org,
                r.request_id,
                BusinessExecType::SignTx,
                1,
                algorithm,
                path,
                Payload::Digest { digest },
                r.sighash,
                digest.to_vec(),
                root,
                Some(tx_info.to_string()),
            )
            .await?;
        json(SignRawDataResponse {
            sino_id: row.sino_id,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_and_submit(
        &self,
        org: String,
        request_id: String,
        kind: BusinessExecType,
        sign_type: u8,
        algorithm: Algorithm,
        path: DerivationPath,
        payload: Payload,
        api_message: String,
        signed: Vec<u8>,
        tap_script_root: Option<[u8; 32]>,
        tx_info: Option<String>,
    ) -> Result<SignRequestRow, Failure> {
        let key = self.require_key(&org, algorithm.curve()).await?;
        let pk = derive(&key, &path)?;
        let plan = SignPlan {
            organization_id: org,
            request_id,
            kind,
            key,
            path: path.to_string(),
            algorithm,
            sign_type,
            payload,
            api_message,
            verify: VerifyInput {
                algorithm,
                public_key: pk,
                signed,
                v_offset: 0,
                tap_script_root,
            },
            tx_info,
        };
        Ok(self.submit_sign(plan).await?)
    }

    pub(super) async fn sign_result(&self, org: String, r: SignResultRequest) -> Answer {
        let (rid, sino) = (
            r.request_id.filter(|s| !s.is_empty()),
            r.sino_id.filter(|s| !s.is_empty()),
        );
        // A long poll (`waitMs`): subscribed before the first read, so that a finish between
        // the read and the wait is not missed. No free slot: answered at once.
        let wait = std::time::Duration::from_millis(r.wait_ms.unwrap_or(0));
        let until = tokio::time::Instant::now() + wait;
        let mut waiter = (!wait.is_zero())
            .then(|| self.result_waits.waiter())
            .flatten();
        let row = loop {
            let (org, rid, sino) = (org.clone(), rid.clone(), sino.clone());
            let row = self
                .db(move |s| s.sign_request(&org, rid.as_deref(), sino.as_deref()))
                .await?
                .ok_or_else(|| fail(ApiCode::NotFound, "no such signing request"))?;
            match waiter.as_mut() {
                Some(w)
                    if row.state == SignState::Pending && tokio::time::Instant::now() < until =>
                {
                    w.wait(&row.sino_id, until).await;
                }
                _ => break row,
            }
        };
        json(SignResultResponse {
            request_id: row.request_id,
            sino_id: row.sino_id,
            message: row.message,
            signature: row.signature,
            state: match row.state {
                SignState::Pending => t::SignState::Pending,
                SignState::Done => t::SignState::Done,
                SignState::Rejected | SignState::Failed => t::SignState::Failed,
            },
            failed_reason: row.reason,
        })
    }

    pub(super) async fn node_status(&self, org: String) -> Answer {
        let o = org.clone();
        let bindings = self.db(move |s| s.bindings(Some(&o))).await?;
        let b = bindings
            .into_iter()
            .find(|b| b.party == "a")
            .ok_or_else(|| {
                fail(
                    ApiCode::NotFound,
                    "the organization's node (party a) is not bound",
                )
            })?;
        let online = self.lock().online.contains_key(&b.node_id);
        json(MpcNodeStatus {
            node_id: b.node_id,
            online_status: if online {
                OnlineStatus::Online
            } else {
                OnlineStatus::Offline
            },
        })
    }

    pub(super) async fn list_mpc_requests(&self, org: String, r: ListMpcRequestsRequest) -> Answer {
        let q = MpcRequestQuery {
            organization_id: Some(org),
            kind: r.business_exec_type.map(BusinessExecType::as_number),
            status: r.business_exec_status.map(BusinessExecStatus::as_number),
            sino_id: r.sino_id.clone().filter(|s| !s.is_empty()),
            offset: u64::from(r.page_index - 1) * u64::from(r.page_size),
            limit: u64::from(r.page_size),
        };
        let (total, rows) = self.db(move |s| s.list_mpc_requests(&q)).await?;
        json(ListMpcRequestsResponse {
            page_index: r.page_index,
            page_size: r.page_size,
            total_size: total,
            list: rows
                .into_iter()
                .map(|m| {
                    let status = BusinessExecStatus::try_from(i64::from(m.status))
                        .unwrap_or(BusinessExecStatus::Failed);
                    MpcRequestRecord {
                        request_id: m.request_id,
                        sino_id: m.sino_id,
                        request_time: t::format_request_time(
                            i64::try_from(m.created_at).unwrap_or(0),
                        ),
                        param: m.param,
                        business_exec_type: BusinessExecType::try_from(i64::from(m.kind))
                            .unwrap_or(BusinessExecType::KeyGen),
                        business_exec_status: status,
                        is_success: status == BusinessExecStatus::Success,
                        failed_reason: m.failed_reason,
                    }
                })
                .collect(),
        })
    }
}

/// The addresses of `pubkey` for a coin type's chain (`family`; `None` for ed25519 keys), in
/// ascending `encoding`, and the encoding `gen_address_by_path` answers.
fn chain_addresses(
    family: Option<CoinFamily>,
    pubkey: &[u8],
) -> Result<(Vec<(AddressEncoding, String)>, AddressEncoding), AddressError> {
    Ok(match family {
        Some(CoinFamily::Bitcoin(network)) => {
            let mut out = Vec::new();
            for (encoding, btc) in [
                (AddressEncoding::Legacy, BtcEncoding::Legacy),
                (AddressEncoding::SegwitNative, BtcEncoding::SegwitNative),
                (AddressEncoding::SegwitNested, BtcEncoding::SegwitNested),
                (AddressEncoding::Taproot, BtcEncoding::Taproot),
            ] {
                out.push((encoding, addr::bitcoin_address(pubkey, btc, network)?));
            }
            (out, DEFAULT_BITCOIN_ENCODING)
        }
        Some(CoinFamily::Evm) => (
            vec![(AddressEncoding::Account, addr::evm_address(pubkey)?)],
            AddressEncoding::Account,
        ),
        None => (
            vec![(AddressEncoding::Account, addr::solana_address(pubkey)?)],
            AddressEncoding::Account,
        ),
    })
}
