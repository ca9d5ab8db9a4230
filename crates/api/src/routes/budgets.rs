//! `/v1/budgets`: daily token and cost limits of the tenant and of each
//! agent. A run whose next model call would start over a limit stops with
//! `budget_exceeded`; days are UTC.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use roster_store::{Budget, NewAuditEvent};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBudget {
    /// Tokens (in + out) per UTC day; absent: no token limit.
    #[schema(minimum = 1)]
    pub tokens_per_day: Option<i64>,
    /// US dollars per UTC day, from the configured model prices; absent:
    /// no cost limit.
    #[schema(minimum = 0.000001, exclusive_maximum = 1e9)]
    pub cost_usd_per_day: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub struct BudgetView {
    /// `tenant` or `agent:NAME`.
    pub scope: String,
    pub tokens_per_day: Option<i64>,
    pub cost_usd_per_day: Option<f64>,
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct BudgetList {
    pub data: Vec<BudgetView>,
}

#[allow(clippy::cast_precision_loss)]
fn view(budget: Budget, scope: String) -> BudgetView {
    BudgetView {
        scope,
        tokens_per_day: budget.tokens_per_day,
        cost_usd_per_day: budget.cost_micros_per_day.map(|m| m as f64 / 1e6),
        updated_at: budget.updated_at,
    }
}

/// The stored scope and the one shown: agents by id inside, by name outside.
async fn scope_of(
    state: &AppState,
    principal: &Principal,
    agent: Option<&str>,
) -> Result<(String, String), ApiError> {
    Ok(match agent {
        None => ("tenant".to_owned(), "tenant".to_owned()),
        Some(raw) => {
            let agent = super::agents::find(state, principal, raw).await?;
            (
                format!("agent:{}", agent.id),
                format!("agent:{}", agent.name),
            )
        }
    })
}

async fn set(
    state: &AppState,
    principal: &Principal,
    agent: Option<&str>,
    body: SetBudget,
) -> Result<axum::Json<BudgetView>, ApiError> {
    if body.tokens_per_day.is_some_and(|t| t <= 0) {
        return Err(ApiError::invalid("tokens_per_day must be positive"));
    }
    let cost = match body.cost_usd_per_day {
        None => None,
        // At least one micro-dollar, the unit a cost is kept in: a smaller
        // positive value would round to a budget of nothing.
        Some(usd) if (0.000_001..1e9).contains(&usd) =>
        {
            #[allow(clippy::cast_possible_truncation)]
            Some((usd * 1e6).round() as i64)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "cost_usd_per_day must be at least 0.000001 dollars (and below 1e9)",
            ))
        }
    };
    if body.tokens_per_day.is_none() && cost.is_none() {
        return Err(ApiError::invalid(
            "give tokens_per_day, cost_usd_per_day or both (DELETE removes a budget)",
        ));
    }
    let (scope, shown) = scope_of(state, principal, agent).await?;
    let stored = state
        .store
        .set_budget(
            &principal.tenant,
            Budget {
                scope: scope.clone(),
                tokens_per_day: body.tokens_per_day,
                cost_micros_per_day: cost,
                updated_at: None,
            },
            NewAuditEvent {
                actor: principal.label(),
                action: "budget.set".into(),
                resource: format!("budget:{shown}"),
                decision: None,
                detail: json!({ "tokens_per_day": body.tokens_per_day, "cost_usd_per_day": body.cost_usd_per_day }),
            },
        )
        .await?;
    Ok(axum::Json(view(stored, shown)))
}

async fn remove(
    state: &AppState,
    principal: &Principal,
    agent: Option<&str>,
) -> Result<StatusCode, ApiError> {
    let (scope, shown) = scope_of(state, principal, agent).await?;
    let removed = state
        .store
        .delete_budget(
            &principal.tenant,
            &scope,
            NewAuditEvent {
                actor: principal.label(),
                action: "budget.delete".into(),
                resource: format!("budget:{shown}"),
                decision: None,
                detail: json!({}),
            },
        )
        .await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("budget"))
    }
}

#[utoipa::path(get, path = "/v1/budgets", tag = "budgets",
    responses((status = 200, body = BudgetList)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<BudgetList>, ApiError> {
    let budgets = state.store.budgets(&principal.tenant).await?;
    let agents = state.store.list_agents(&principal.tenant).await?;
    let data = budgets
        .into_iter()
        .filter_map(|b| {
            let shown = match b.scope.strip_prefix("agent:") {
                None => b.scope.clone(),
                // A deleted agent's budget no longer applies to anything.
                Some(id) => format!(
                    "agent:{}",
                    agents.iter().find(|a| a.id.as_str() == id)?.name
                ),
            };
            Some(view(b, shown))
        })
        .collect();
    Ok(axum::Json(BudgetList { data }))
}

#[utoipa::path(put, path = "/v1/budgets/tenant", tag = "budgets", request_body = SetBudget,
    responses((status = 200, body = BudgetView), (status = 400, body = crate::error::ErrorBody)))]
pub async fn put_tenant(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<SetBudget>,
) -> Result<axum::Json<BudgetView>, ApiError> {
    set(&state, &principal, None, body).await
}

#[utoipa::path(delete, path = "/v1/budgets/tenant", tag = "budgets",
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_tenant(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<StatusCode, ApiError> {
    remove(&state, &principal, None).await
}

#[utoipa::path(put, path = "/v1/budgets/agents/{agent}", tag = "budgets", request_body = SetBudget,
    params(("agent" = String, Path, description = "id or name")),
    responses((status = 200, body = BudgetView), (status = 400, body = crate::error::ErrorBody),
    (status = 404, body = crate::error::ErrorBody)))]
pub async fn put_agent(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
    Json(body): Json<SetBudget>,
) -> Result<axum::Json<BudgetView>, ApiError> {
    set(&state, &principal, Some(&agent), body).await
}

#[utoipa::path(delete, path = "/v1/budgets/agents/{agent}", tag = "budgets",
    params(("agent" = String, Path, description = "id or name")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_agent(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
) -> Result<StatusCode, ApiError> {
    remove(&state, &principal, Some(&agent)).await
}
