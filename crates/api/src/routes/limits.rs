//! Limits on runs executing at once. An operator (the admin key) sets a
//! tenant's with `PUT /v1/tenants/{tenant}/limits`, over the server's
//! `[limits]` defaults; an agent may set a lower or higher own limit
//! (`max_running`). Runs past a limit stay `queued` with their
//! `queued_reason` and start in the order they began to wait.
//! `GET /v1/limits` shows a tenant its limits and how full they are.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::AppState;
use axum::extract::State;
use roster_core::limits::RunLimits;
use roster_store::NewAuditEvent;
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct AgentLimitView {
    pub agent_id: roster_core::AgentId,
    /// The agent's name.
    pub agent: String,
    /// Most of its runs at once (its own `max_running`, or the tenant's
    /// per-agent limit); absent: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    pub running: u32,
    /// Queued only because of a limit.
    pub waiting: u32,
}

#[derive(Serialize, ToSchema)]
pub struct LimitsView {
    /// In force: the tenant's own values over the server's defaults.
    pub limits: RunLimits,
    /// The tenant's own values, set by the operator.
    pub tenant: RunLimits,
    /// The server's `[limits]`.
    pub defaults: RunLimits,
    /// Runs executing now (a synchronous ask runs on its caller's slot and
    /// is not counted).
    pub running: u32,
    /// Runs queued only because of a limit.
    pub waiting: u32,
    pub agents: Vec<AgentLimitView>,
}

async fn view(state: &AppState, tenant: &roster_core::TenantId) -> Result<LimitsView, ApiError> {
    let usage = state.store.limit_usage(tenant).await?;
    let names: HashMap<_, _> = state
        .store
        .list_agents(tenant)
        .await?
        .into_iter()
        .map(|a| (a.id, a.name))
        .collect();
    Ok(LimitsView {
        limits: usage.limits,
        tenant: usage.tenant,
        defaults: usage.defaults,
        running: usage.running,
        waiting: usage.waiting,
        agents: usage
            .agents
            .into_iter()
            .map(|a| AgentLimitView {
                agent: names
                    .get(&a.agent_id)
                    .cloned()
                    .unwrap_or_else(|| "(deleted agent)".to_owned()),
                agent_id: a.agent_id,
                limit: a.limit,
                running: a.running,
                waiting: a.waiting,
            })
            .collect(),
    })
}

#[utoipa::path(get, path = "/v1/limits", tag = "limits",
    responses((status = 200, body = LimitsView)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<LimitsView>, ApiError> {
    Ok(axum::Json(view(&state, &principal.tenant).await?))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/limits", tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id or name")),
    responses((status = 200, body = LimitsView), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn show_tenant(
    State(state): State<AppState>,
    principal: Principal,
    Path(tenant): Path<String>,
) -> Result<axum::Json<LimitsView>, ApiError> {
    principal.require_admin("reading a tenant's limits")?;
    let tenant = crate::tenancy::find_tenant(&state, &tenant).await?;
    Ok(axum::Json(view(&state, &tenant.id).await?))
}

#[utoipa::path(put, path = "/v1/tenants/{tenant}/limits", tag = "tenants", request_body = RunLimits,
    params(("tenant" = String, Path, description = "tenant id or name")),
    responses((status = 200, body = LimitsView, description = "the tenant's limits as they now apply; an unset value falls back to the server's default"),
        (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn put_tenant(
    State(state): State<AppState>,
    principal: Principal,
    Path(tenant): Path<String>,
    Json(body): Json<RunLimits>,
) -> Result<axum::Json<LimitsView>, ApiError> {
    principal.require_admin("setting a tenant's limits")?;
    let tenant = crate::tenancy::find_tenant(&state, &tenant).await?;
    body.validate()?;
    state
        .store
        .set_tenant_limits(
            &tenant.id,
            body,
            NewAuditEvent {
                actor: principal.label(),
                action: "limits.set".into(),
                resource: format!("tenant:{}", tenant.id),
                decision: None,
                detail: json!({"runs": body.runs, "runs_per_agent": body.runs_per_agent}),
            },
        )
        .await?;
    // Raised limits free slots now.
    state.runtime.admit_waiting(&tenant.id).await;
    Ok(axum::Json(view(&state, &tenant.id).await?))
}
