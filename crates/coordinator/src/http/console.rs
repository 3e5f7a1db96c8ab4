//! The console: its page and assets (`GET /console`, [`crate::console`]) and its state
//! (`GET /console/state`), which only an administrator's signed request reads (BIZ-API headers
//! over the path `/console/state` and an empty body, signed in the browser by the page).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpc_api::types as t;

use super::{Answer, CONSOLE_STATE_PATH};
use crate::Coordinator;
use crate::console::Asset;
use crate::store::MpcRequestQuery;

/// Rows of MPC requests the console state carries.
const STATE_REQUESTS: u64 = 100;
/// Addresses the console state carries.
const STATE_ADDRESSES: u32 = 200;

/// A console asset with the headers a page that holds an admin key needs: scripts and styles
/// from this origin only, no framing, no referrer, nothing cached.
pub(super) fn asset(a: &'static Asset) -> Response {
    (
        [
            (header::CONTENT_TYPE, a.content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, crate::console::CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        a.body,
    )
        .into_response()
}

impl Coordinator {
    pub(super) async fn console_state(self: Arc<Self>, req: Request) -> Response {
        let headers = req.headers().clone();
        if let Err(f) = self
            .authenticate(&headers, CONSOLE_STATE_PATH, Bytes::new(), true)
            .await
        {
            tracing::info!(msg = %f.msg, "coordinator: console state refused");
            return (
                StatusCode::FORBIDDEN,
                [(header::CACHE_CONTROL, "no-store")],
                format!(
                    "console state: an administrator's signed request only ({})",
                    f.msg
                ),
            )
                .into_response();
        }
        match self.console_json().await {
            Ok(v) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(v)).into_response(),
            Err(f) => (StatusCode::SERVICE_UNAVAILABLE, f.msg).into_response(),
        }
    }

    async fn console_json(&self) -> Answer {
        let orgs = self.db(|s| s.organizations()).await?;
        let users = self.db(|s| s.api_users(None)).await?;
        let nodes = self.node_infos(None).await?;
        let keys = self.key_infos(None).await?;
        let addresses = self.db(|s| s.list_addresses(None, STATE_ADDRESSES)).await?;
        let q = MpcRequestQuery {
            limit: STATE_REQUESTS,
            ..MpcRequestQuery::default()
        };
        let (_, recent) = self.db(move |s| s.list_mpc_requests(&q)).await?;
        Ok(serde_json::json!({
            "defaultEcdsaProtocol": self.config.default_ecdsa_protocol,
            "organizations": orgs.into_iter().map(super::admin::organization_info).collect::<Vec<_>>(),
            "apiUsers": users.into_iter().map(|u| serde_json::json!({
                "userId": u.id,
                "organizationId": u.organization_id,
                "name": u.name,
                "apiKey": u.api_key,
                "createdAt": u.created_at,
            })).collect::<Vec<_>>(),
            "nodes": nodes,
            "keys": keys,
            "addresses": addresses.into_iter().map(|l| serde_json::json!({
                "organizationId": l.organization_id,
                "walletId": l.address.wallet_id,
                "walletName": l.wallet_name,
                "path": l.address.path,
                "algorithmType": l.address.algorithm,
                "encoding": l.address.encoding,
                "address": l.address.address,
                "publicKey": l.address.pubkey,
            })).collect::<Vec<_>>(),
            "requests": recent.into_iter().map(|m| serde_json::json!({
                "taskId": m.task_id,
                "organizationId": m.organization_id,
                "kind": m.kind,
                "sinoId": m.sino_id,
                "requestId": m.request_id,
                "status": m.status,
                "failedReason": m.failed_reason,
                "outcomes": serde_json::from_str::<serde_json::Value>(&m.outcomes).unwrap_or_default(),
                "createdAt": m.created_at,
                "latencyMs": m.finished_at.map(|f| f.saturating_sub(m.created_at)),
                "requestTime": t::format_request_time(i64::try_from(m.created_at).unwrap_or(0)),
            })).collect::<Vec<_>>(),
        }))
    }
}
