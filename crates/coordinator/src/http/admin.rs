//! Admin (console) routes: organizations, API users, node bindings, keys. Callers are the
//! administrators of `admin-public-keys`; the DTOs are ours (`mpc_api::types::admin`; the
//! public Go SDK has no admin API).

use mpc_api::envelope::ApiCode;
use mpc_api::types::OnlineStatus;
use mpc_api::types::admin::{
    self, ApiUserInfo, BindNodeRequest, CreateApiUserRequest, CreateOrganizationRequest, KeyInfo,
    KeyRefreshInfo, KeyStatus, ListKeyRefreshesRequest, ListKeysRequest, ListNodesRequest,
    NodeInfo, Organization, RefreshKeyRequest, RefreshStatus, RepairKeyRequest, ReplaceNodeRequest,
    RequestKeygenRequest,
};
use mpc_api::types::{BusinessExecStatus, BusinessExecType};
use mpc_transport::task::Curve;

use super::{Answer, Failure, fail, json};
use crate::store::{
    ApiUserRow, KeyRow, KeyState, MpcRequestQuery, MpcRequestRow, NodeBindingRow, OrganizationRow,
    now_ms,
};
use crate::{Coordinator, new_id};

impl Coordinator {
    pub(super) async fn list_nodes(&self, r: ListNodesRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        json(self.node_infos(Some(r.organization_id)).await?)
    }

    pub(super) async fn list_keys(&self, r: ListKeysRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        json(self.key_infos(Some(r.organization_id)).await?)
    }

    pub(super) async fn create_organization(&self, r: CreateOrganizationRequest) -> Answer {
        let row = OrganizationRow {
            id: new_id("org"),
            name: r.name,
            vault_id: new_id("vault"),
            created_at: now_ms(),
            ecdsa_protocol: r
                .ecdsa_protocol
                .unwrap_or(self.config.default_ecdsa_protocol),
        };
        let ro = row.clone();
        self.db(move |s| s.create_organization(&ro)).await?;
        tracing::info!(organization = %row.id, ecdsa_protocol = %row.ecdsa_protocol, "coordinator: organization created");
        json(organization_info(row))
    }

    pub(super) async fn create_api_user(&self, r: CreateApiUserRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        let row = ApiUserRow {
            id: new_id("user"),
            organization_id: r.organization_id,
            name: r.name,
            api_key: r.api_key,
            created_at: now_ms(),
        };
        let ro = row.clone();
        self.db(move |s| s.create_api_user(&ro)).await?;
        tracing::info!(organization = %row.organization_id, user = %row.id, "coordinator: API user created");
        json(ApiUserInfo {
            user_id: row.id,
            organization_id: row.organization_id,
            name: row.name,
            api_key: row.api_key,
            created_at: row.created_at,
        })
    }

    pub(super) async fn bind_node(&self, r: BindNodeRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        let row = NodeBindingRow {
            node_id: r.node_id.clone(),
            organization_id: r.organization_id.clone(),
            party: r.party_id.clone(),
            created_at: now_ms(),
            last_seen_at: None,
        };
        self.db(move |s| s.bind_node(&row)).await?;
        tracing::info!(organization = %r.organization_id, party = %r.party_id, "coordinator: node bound");
        let infos = self.node_infos(Some(r.organization_id)).await?;
        let info = infos
            .into_iter()
            .find(|n| n.node_id == r.node_id)
            .ok_or_else(|| fail(ApiCode::Internal, "binding vanished"))?;
        json(info)
    }

    pub(super) async fn request_keygen(&self, r: RequestKeygenRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        let curve = match r.curve {
            admin::Curve::EcdsaSecp256k1 => Curve::Secp256k1,
            admin::Curve::EddsaEd25519 => Curve::Ed25519,
        };
        let key = self
            .start_keygen(&r.organization_id, curve, r.threshold)
            .await?;
        json(key_info(key))
    }

    pub(super) async fn refresh_key(&self, r: RefreshKeyRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        let row = self.start_refresh(&r.organization_id, &r.key_id).await?;
        json(refresh_info(row))
    }

    pub(super) async fn repair_key(&self, r: RepairKeyRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        let row = self
            .start_repair(&r.organization_id, &r.key_id, &r.party_id)
            .await?;
        json(refresh_info(row))
    }

    pub(super) async fn replace_node(&self, r: ReplaceNodeRequest) -> Answer {
        self.require_org(&r.organization_id).await?;
        let (org, party, node) = (
            r.organization_id.clone(),
            r.party_id.clone(),
            r.node_id.clone(),
        );
        let old = self
            .db(move |s| s.replace_node(&org, &party, &node, now_ms()))
            .await?;
        tracing::warn!(organization = %r.organization_id, party = %r.party_id, old_node = %old, "coordinator: node replaced; the old node is unbound, and each DKLs23 key of the organization needs a repair before the new node holds a share of it");
        let infos = self.node_infos(Some(r.organization_id)).await?;
        let info = infos
            .into_iter()
            .find(|n| n.node_id == r.node_id)
            .ok_or_else(|| fail(ApiCode::Internal, "binding vanished"))?;
        json(info)
    }

    /// `key/refresh/list` (`kind` KeyRefresh) and `key/repair/list` (KeyRepair).
    pub(super) async fn list_reshares(
        &self,
        r: ListKeyRefreshesRequest,
        kind: BusinessExecType,
    ) -> Answer {
        self.require_org(&r.organization_id).await?;
        let q = MpcRequestQuery {
            organization_id: Some(r.organization_id),
            kind: Some(kind.as_number()),
            status: None,
            sino_id: Some(r.key_id),
            offset: 0,
            limit: 100,
        };
        let (_, rows) = self.db(move |s| s.list_mpc_requests(&q)).await?;
        json(rows.into_iter().map(refresh_info).collect::<Vec<_>>())
    }

    pub(crate) async fn node_infos(&self, org: Option<String>) -> Result<Vec<NodeInfo>, Failure> {
        let o = org.clone();
        let bindings = self.db(move |s| s.bindings(o.as_deref())).await?;
        let o = org.clone();
        let keys = self.db(move |s| s.keys(o.as_deref())).await?;
        let online = self.lock().online.clone();
        Ok(bindings
            .into_iter()
            .map(|b| {
                let org_keys: Vec<&KeyRow> = keys
                    .iter()
                    .filter(|k| {
                        k.organization_id == b.organization_id && k.parties.contains(&b.party)
                    })
                    .collect();
                let status = if org_keys
                    .first()
                    .is_some_and(|k| k.status == KeyState::Failed)
                {
                    KeyStatus::Failed
                } else if !org_keys.is_empty()
                    && org_keys.iter().all(|k| k.status != KeyState::Generating)
                    && org_keys.iter().any(|k| k.status == KeyState::Generated)
                {
                    KeyStatus::Generated
                } else {
                    KeyStatus::Pending
                };
                NodeInfo {
                    online_status: if online.contains_key(&b.node_id) {
                        OnlineStatus::Online
                    } else {
                        OnlineStatus::Offline
                    },
                    node_id: b.node_id,
                    party_id: b.party,
                    organization_id: b.organization_id,
                    last_seen_at: b.last_seen_at,
                    key_share_status: status,
                }
            })
            .collect())
    }

    pub(crate) async fn key_infos(&self, org: Option<String>) -> Result<Vec<KeyInfo>, Failure> {
        let keys = self.db(move |s| s.keys(org.as_deref())).await?;
        Ok(keys.into_iter().map(key_info).collect())
    }
}

/// The API's view of a refresh run.
fn refresh_info(m: MpcRequestRow) -> KeyRefreshInfo {
    KeyRefreshInfo {
        status: match BusinessExecStatus::try_from(i64::from(m.status)) {
            Ok(BusinessExecStatus::Success) => RefreshStatus::Done,
            Ok(BusinessExecStatus::Failed) => RefreshStatus::Failed,
            _ => RefreshStatus::Pending,
        },
        outcomes: serde_json::from_str(&m.outcomes).unwrap_or_default(),
        task_id: m.task_id,
        key_id: m.sino_id,
        failed_reason: m.failed_reason,
        created_at: m.created_at,
        finished_at: m.finished_at,
    }
}

/// The API's view of an organization.
pub(crate) fn organization_info(o: OrganizationRow) -> Organization {
    Organization {
        organization_id: o.id,
        name: o.name,
        vault_id: o.vault_id,
        created_at: o.created_at,
        ecdsa_protocol: o.ecdsa_protocol,
    }
}

fn key_info(k: KeyRow) -> KeyInfo {
    let xpub = match (k.curve, k.status, k.chain_code) {
        (Curve::Secp256k1, KeyState::Generated, Some(cc)) => {
            <[u8; 33]>::try_from(k.root_public_key.as_slice())
                .ok()
                .and_then(|root| mpc_tss::derive::xpub_secp256k1(&root, &cc).ok())
        }
        _ => None,
    };
    KeyInfo {
        key_id: k.id,
        organization_id: k.organization_id,
        curve: match k.curve {
            Curve::Secp256k1 => admin::Curve::EcdsaSecp256k1,
            Curve::Ed25519 => admin::Curve::EddsaEd25519,
        },
        threshold: k.threshold,
        ecdsa_protocol: k.ecdsa_protocol,
        parties: k.parties,
        status: match k.status {
            KeyState::Generating => KeyStatus::Pending,
            KeyState::Generated => KeyStatus::Generated,
            KeyState::Failed => KeyStatus::Failed,
        },
        root_public_key: hex::encode(&k.root_public_key),
        chain_code: k.chain_code.map(hex::encode).unwrap_or_default(),
        xpub,
        failed_reason: k.failure_reason,
        generation: k.generation,
        created_at: k.created_at,
    }
}
