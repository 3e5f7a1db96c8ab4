//! The console's read-only state (`GET /console/state`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mpc_api::types as t;

use super::{Answer, CONSOLE_STATE_PATH};
use crate::Coordinator;
use crate::store::MpcRequestQuery;

impl Coordinator {
    pub(super) async fn console_state(self: Arc<Self>, req: Request) -> Response {
        let loopback = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ConnectInfo(a)| a.ip().is_loopback());
        if !loopback {
            let headers = req.headers().clone();
            if let Err(f) = self
                .authenticate(&headers, CONSOLE_STATE_PATH, Bytes::new(), true)
                .await
            {
                tracing::info!(msg = %f.msg, "coordinator: console state refused");
                return (
                    StatusCode::FORBIDDEN,
                    "console state: loopback clients or admin signature only",
                )
                    .into_response();
            }
        }
        match self.console_json().await {
            Ok(v) => axum::Json(v).into_response(),
            Err(f) => (StatusCode::SERVICE_UNAVAILABLE, f.msg).into_response(),
        }
    }

    async fn console_json(&self) -> Answer {
        let orgs = self.db(|s| s.organizations()).await?;
        let nodes = self.node_infos(None).await?;
        let keys = self.key_infos(None).await?;
        let q = MpcRequestQuery {
            limit: 50,
            ..MpcRequestQuery::default()
        };
        let (_, recent) = self.db(move |s| s.list_mpc_requests(&q)).await?;
        Ok(serde_json::json!({
            "organizations": orgs.into_iter().map(super::admin::organization_info).collect::<Vec<_>>(),
            "nodes": nodes,
            "keys": keys,
            "requests": recent.into_iter().map(|m| serde_json::json!({
                "taskId": m.task_id,
                "organizationId": m.organization_id,
                "kind": m.kind,
                "sinoId": m.sino_id,
                "requestId": m.request_id,
                "status": m.status,
                "failedReason": m.failed_reason,
                "outcomes": serde_json::from_str::<serde_json::Value>(&m.outcomes).unwrap_or_default(),
                "requestTime": t::format_request_time(i64::try_from(m.created_at).unwrap_or(0)),
            })).collect::<Vec<_>>(),
        }))
    }
}
