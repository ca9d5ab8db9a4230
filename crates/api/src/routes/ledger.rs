//! `/v1/ledger`: every model call, newest first.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Query;
use crate::AppState;
use axum::extract::State;
use roster_core::ledger::LedgerEntry;
use roster_core::{AgentId, RunId};
use roster_store::LedgerQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LedgerParams {
    pub run_id: Option<String>,
    /// Agent id or name.
    pub agent: Option<String>,
    /// Entries with an id below this one (the previous page's `next_before`).
    pub before: Option<i64>,
    /// 1..=1000, default 100.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct LedgerPage {
    pub data: Vec<LedgerEntry>,
    pub next_before: Option<i64>,
}

#[utoipa::path(get, path = "/v1/ledger", tag = "ledger", params(LedgerParams), responses((status = 200, body = LedgerPage), (status = 400, body = crate::error::ErrorBody),
    (status = 404, body = crate::error::ErrorBody, description = "no such agent")))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<LedgerParams>,
) -> Result<axum::Json<LedgerPage>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let run_id = match params.run_id.as_deref() {
        None => None,
        Some(raw) => match RunId::parse(raw) {
            Some(id) => Some(id),
            None => {
                return Ok(axum::Json(LedgerPage {
                    data: vec![],
                    next_before: None,
                }))
            }
        },
    };
    let agent_id: Option<AgentId> = match params.agent.as_deref() {
        None => None,
        Some(raw) => Some(
            crate::routes::agents::find(&state, &principal, raw)
                .await?
                .id,
        ),
    };
    let data = state
        .store
        .list_ledger(
            &principal.tenant,
            &LedgerQuery {
                run_id,
                agent_id,
                before: params.before,
                limit,
            },
        )
        .await?;
    let next_before = (data.len() as i64 == limit)
        .then(|| data.last().map(|e| e.id))
        .flatten();
    Ok(axum::Json(LedgerPage { data, next_before }))
}
