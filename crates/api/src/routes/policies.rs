//! `/v1/policies`: a tenant's Cedar policies, as named documents. Every
//! write is validated, with the tenant's other documents, against Roster's
//! Cedar schema (`GET /v1/policies/schema`) before it is stored.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use roster_policy::{Action, TenantPolicies};
use roster_store::PolicyDocument;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct PolicyView {
    pub name: String,
    /// Cedar source.
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PolicyDocument> for PolicyView {
    fn from(d: PolicyDocument) -> Self {
        Self {
            name: d.name,
            text: d.text,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PolicyList {
    /// Bumped by every change.
    pub revision: i64,
    /// Actions some policy governs; the others are allowed until one does.
    pub governed: Vec<&'static str>,
    pub data: Vec<PolicyView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    /// One or more Cedar policies.
    pub text: String,
}

#[derive(Serialize, ToSchema)]
pub struct SchemaView {
    /// Roster's Cedar schema, in Cedar's schema syntax.
    pub schema: &'static str,
    pub actions: Vec<&'static str>,
}

#[utoipa::path(get, path = "/v1/policies", tag = "policies",
    responses((status = 200, body = PolicyList)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<PolicyList>, ApiError> {
    let snapshot = state.store.policies(&principal.tenant).await?;
    let compiled = TenantPolicies::compile(
        snapshot
            .documents
            .iter()
            .map(|d| (d.name.as_str(), d.text.as_str())),
    );
    let governed = match &compiled {
        Ok(set) => Action::ALL
            .into_iter()
            .filter(|a| set.governs(*a))
            .map(Action::name)
            .collect(),
        // Stored policies that no longer compile deny everything.
        Err(_) => Action::ALL.into_iter().map(Action::name).collect(),
    };
    Ok(axum::Json(PolicyList {
        revision: snapshot.revision,
        governed,
        data: snapshot.documents.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/policies/schema", tag = "policies",
    responses((status = 200, body = SchemaView)))]
pub async fn schema() -> axum::Json<SchemaView> {
    axum::Json(SchemaView {
        schema: roster_policy::SCHEMA,
        actions: Action::ALL.into_iter().map(Action::name).collect(),
    })
}

#[utoipa::path(get, path = "/v1/policies/{name}", tag = "policies",
    params(("name" = String, Path, description = "policy name")),
    responses((status = 200, body = PolicyView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<PolicyView>, ApiError> {
    let snapshot = state.store.policies(&principal.tenant).await?;
    snapshot
        .documents
        .into_iter()
        .find(|d| d.name == name)
        .map(|d| axum::Json(d.into()))
        .ok_or_else(|| ApiError::not_found("policy"))
}

#[utoipa::path(put, path = "/v1/policies/{name}", tag = "policies", request_body = PutPolicy,
    params(("name" = String, Path, description = "policy name")),
    responses((status = 200, body = PolicyView, description = "replaced"), (status = 201, body = PolicyView, description = "created"),
    (status = 400, body = crate::error::ErrorBody, description = "invalid_policy: the validator's message"), (status = 404, body = crate::error::ErrorBody),
    (status = 409, body = crate::error::ErrorBody, description = "the policies changed meanwhile")))]
pub async fn put(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Json(body): Json<PutPolicy>,
) -> Result<(StatusCode, axum::Json<PolicyView>), ApiError> {
    let (stored, created) = state
        .runtime
        .put_policy(&principal.actor(), &name, &body.text)
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(stored.into())))
}

#[utoipa::path(delete, path = "/v1/policies/{name}", tag = "policies",
    params(("name" = String, Path, description = "policy name")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .runtime
        .delete_policy(&principal.actor(), &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
