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
    /// Another tenant's ledger (admin key only), by id or name.
    pub tenant: Option<String>,
    pub run_id: Option<String>,
    /// Agent id or name.
    pub agent: Option<String>,
    /// Entries with an id below this one (the previous page's `next_before`).
    pub before: Option<i64>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// A UTC day (`2026-12-03`): that day only.
    pub day: Option<chrono::NaiveDate>,
    /// RFC 3339: entries at or after.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339: entries at or before.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct LedgerPage {
    pub data: Vec<LedgerEntry>,
    pub next_before: Option<i64>,
    /// Sums over every entry the filters select (all pages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totals: Option<LedgerSumView>,
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
    let (since, until) = window(params.day, params.since, params.until)?;
    let principal = in_tenant(&state, principal, params.tenant.as_deref()).await?;
    let run_id = match params.run_id.as_deref() {
        None => None,
        Some(raw) => match RunId::parse(raw) {
            Some(id) => Some(id),
            None => {
                return Ok(axum::Json(LedgerPage {
                    data: vec![],
                    next_before: None,
                    totals: None,
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
    let (agent_id_for_totals, run_id_for_totals) = (agent_id.clone(), run_id.clone());
    let data = state
        .store
        .list_ledger(
            &principal.tenant,
            &LedgerQuery {
                run_id,
                agent_id,
                before: params.before,
                limit,
                provider: params.provider.clone(),
                model: params.model.clone(),
                since,
                until,
            },
        )
        .await?;
    let next_before = (data.len() as i64 == limit)
        .then(|| data.last().map(|e| e.id))
        .flatten();
    let totals = state
        .store
        .ledger_summary(
            &principal.tenant,
            &roster_store::LedgerSummaryQuery {
                group_by: Vec::new(),
                agent_id: agent_id_for_totals,
                provider: params.provider,
                model: params.model,
                since,
                until,
                run_id: run_id_for_totals,
            },
        )
        .await?
        .into_iter()
        .next()
        .map(view);
    Ok(axum::Json(LedgerPage {
        data,
        next_before,
        totals,
    }))
}

/// The caller, working in the tenant `named` (the admin key may name any;
/// another key only its own).
async fn in_tenant(
    state: &AppState,
    principal: Principal,
    named: Option<&str>,
) -> Result<Principal, ApiError> {
    let tenant = crate::tenancy::target_tenant(state, &principal, named).await?;
    Ok(Principal {
        tenant,
        ..principal
    })
}

/// (since, until), either open.
type Window = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// The time window of `day`, `since` and `until` (a day is UTC midnight to
/// midnight, narrowed by the others).
fn window(
    day: Option<chrono::NaiveDate>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Window, ApiError> {
    let (mut since, mut until) = (since, until);
    if let Some(day) = day {
        let start = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        let end = start.map(|s| s + chrono::Duration::days(1) - chrono::Duration::milliseconds(1));
        since = since.max(start);
        until = match (until, end) {
            (Some(u), Some(e)) => Some(u.min(e)),
            (u, e) => u.or(e),
        };
    }
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(ApiError::invalid(
                "the time window is empty (since after until)",
            ));
        }
    }
    Ok((since, until))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    /// Another tenant's ledger (admin key only), by id or name.
    pub tenant: Option<String>,
    /// Comma-separated: `day`, `agent`, `provider`, `model`, `outcome`;
    /// none: one total.
    pub group_by: Option<String>,
    /// Agent id or name.
    pub agent: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub day: Option<chrono::NaiveDate>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

/// One group's sums, with the cost also in dollars.
#[derive(Serialize, ToSchema)]
pub struct LedgerSumView {
    #[serde(flatten)]
    pub sum: roster_store::LedgerSum,
    /// From the configured prices; calls without a price count 0.
    pub cost_usd: f64,
}

#[derive(Serialize, ToSchema)]
pub struct LedgerSummary {
    pub data: Vec<LedgerSumView>,
}

#[utoipa::path(get, path = "/v1/ledger/summary", tag = "ledger", params(SummaryParams),
    responses((status = 200, body = LedgerSummary), (status = 400, body = crate::error::ErrorBody),
    (status = 404, body = crate::error::ErrorBody, description = "no such agent")))]
pub async fn summary(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<SummaryParams>,
) -> Result<axum::Json<LedgerSummary>, ApiError> {
    let group_by: Vec<String> = params
        .group_by
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(unknown) = group_by
        .iter()
        .find(|g| !roster_store::GROUPS.contains(&g.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "cannot group by `{unknown}`: one of {}",
            roster_store::GROUPS.join(", ")
        )));
    }
    let (since, until) = window(params.day, params.since, params.until)?;
    let principal = in_tenant(&state, principal, params.tenant.as_deref()).await?;
    let agent_id = match params.agent.as_deref() {
        None => None,
        Some(raw) => Some(
            crate::routes::agents::find(&state, &principal, raw)
                .await?
                .id,
        ),
    };
    let sums = state
        .store
        .ledger_summary(
            &principal.tenant,
            &roster_store::LedgerSummaryQuery {
                group_by,
                agent_id,
                provider: params.provider,
                model: params.model,
                since,
                until,
                run_id: None,
            },
        )
        .await?;
    let data = sums.into_iter().map(view).collect();
    Ok(axum::Json(LedgerSummary { data }))
}

#[allow(clippy::cast_precision_loss)]
fn view(sum: roster_store::LedgerSum) -> LedgerSumView {
    LedgerSumView {
        cost_usd: sum.cost_micros as f64 / 1e6,
        sum,
    }
}
