//! `/v1/audit`: the tenant's append-only audit log, oldest first: policy
//! decisions, key, policy, tenant and agent changes, with actor and time;
//! `/v1/audit/export` streams it as JSON Lines and is itself audited.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::AppState;
use axum::extract::State;
use chrono::{DateTime, Utc};
use roster_store::{AuditEvent, AuditQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Events after this one (the previous page's `next_after`).
    pub after: Option<i64>,
    /// RFC 3339; events at or after.
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339; events at or before.
    pub until: Option<DateTime<Utc>>,
    /// An action (`key.create`) or a family of them (`policy`).
    pub action: Option<String>,
    /// Events whose actor chain contains this (e.g. `agent:analyst`).
    pub actor: Option<String>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    pub id: String,
    pub at: DateTime<Utc>,
    /// Who acted, outermost first: `key:key_… > agent:analyst > tool:sql_query`.
    pub actor: String,
    pub action: String,
    pub resource: String,
    /// `allow`, `deny` or `needs_approval`, for policy decisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    pub detail: serde_json::Value,
}

impl From<AuditEvent> for AuditEventView {
    fn from(e: AuditEvent) -> Self {
        Self {
            seq: e.seq,
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            resource: e.resource,
            decision: e.decision,
            detail: e.detail,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub data: Vec<AuditEventView>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 400, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<AuditParams>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    if let (Some(since), Some(until)) = (params.since, params.until) {
        if since > until {
            return Err(ApiError::invalid("since must not be after until"));
        }
    }
    let events = state
        .store
        .list_audit(
            &principal.tenant,
            &AuditQuery {
                after: params.after,
                since: params.since,
                until: params.until,
                action: params.action,
                actor: params.actor,
                limit,
            },
        )
        .await?;
    let next_after = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(axum::Json(AuditPage {
        data: events.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditExportParams {
    /// RFC 3339; events at or after.
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339; events at or before.
    pub until: Option<DateTime<Utc>>,
    /// An action (`key.create`) or a family of them (`policy`).
    pub action: Option<String>,
    /// Events whose actor chain contains this (e.g. `agent:analyst`).
    pub actor: Option<String>,
}

/// Events read per page while streaming an export.
const EXPORT_PAGE: i64 = 1000;

#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", params(AuditExportParams),
    responses((status = 200, content_type = "application/x-ndjson",
        description = "every matching event, oldest first, one JSON object (as in `GET /v1/audit`) per line; \
        the export itself is recorded first, as an `audit.export` event with its filters"),
        (status = 400, body = crate::error::ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<AuditExportParams>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if let (Some(since), Some(until)) = (params.since, params.until) {
        if since > until {
            return Err(ApiError::invalid("since must not be after until"));
        }
    }
    // Data leaving the system is accountable: the export is on the record
    // before a byte of it is sent.
    state
        .store
        .append_audit(
            &principal.tenant,
            vec![roster_store::NewAuditEvent {
                actor: principal.label(),
                action: "audit.export".into(),
                resource: "audit".into(),
                decision: None,
                detail: serde_json::json!({
                    "since": params.since, "until": params.until,
                    "action": params.action, "actor": params.actor,
                }),
            }],
        )
        .await?;
    let tenant = principal.tenant;
    let lines = async_stream::stream! {
        let mut after = None;
        loop {
            let query = AuditQuery {
                after,
                since: params.since,
                until: params.until,
                action: params.action.clone(),
                actor: params.actor.clone(),
                limit: EXPORT_PAGE,
            };
            let events = match state.store.list_audit(&tenant, &query).await {
                Ok(events) => events,
                Err(e) => {
                    // Headers are sent: a cut stream (no final newline) is
                    // the only way left to say it failed.
                    tracing::error!(tenant = %tenant, error = %e, "audit export failed mid-stream");
                    yield Err(std::io::Error::other("the audit export could not be completed"));
                    break;
                }
            };
            let full = events.len() as i64 == EXPORT_PAGE;
            after = events.last().map(|e| e.seq);
            let mut chunk = Vec::new();
            for event in events {
                let view: AuditEventView = event.into();
                if serde_json::to_writer(&mut chunk, &view).is_ok() {
                    chunk.push(b'\n');
                }
            }
            yield Ok::<_, std::io::Error>(bytes::Bytes::from(chunk));
            if !full {
                break;
            }
        }
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response())
}
