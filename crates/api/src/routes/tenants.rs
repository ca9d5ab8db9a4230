//! `/v1/tenants`: the organisations this server holds. Only the admin key
//! (the bootstrap key of the default tenant) may see or create them.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use roster_core::TenantId;
use roster_store::{NewAuditEvent, TenantRecord};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1-100 characters; unique.
    #[schema(
        pattern = r"^\s*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        max_length = 100
    )]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    #[schema(value_type = String)]
    pub id: TenantId,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<TenantRecord> for TenantView {
    fn from(t: TenantRecord) -> Self {
        Self {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub data: Vec<TenantView>,
}

fn check_name(name: &str) -> Result<&str, ApiError> {
    // The limit holds for the name as sent, as the document says.
    let too_long = name.chars().count() > 100;
    let name = name.trim();
    if name.is_empty() || too_long || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "a tenant name is 1-100 characters, without control characters",
        ));
    }
    Ok(name)
}

#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
    (status = 409, body = crate::error::ErrorBody, description = "a tenant has that name")))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateTenant>,
) -> Result<(StatusCode, axum::Json<TenantView>), ApiError> {
    principal.require_admin("creating tenants")?;
    let name = check_name(&body.name)?;
    let id = TenantId::generate();
    let tenant = state
        .store
        .create_tenant(
            &id,
            name,
            NewAuditEvent {
                actor: principal.label(),
                action: "tenant.create".into(),
                resource: format!("tenant:{id}"),
                decision: None,
                detail: json!({ "name": name, "by_tenant": principal.tenant }),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(tenant.into())))
}

#[utoipa::path(get, path = "/v1/tenants", tag = "tenants",
    responses((status = 200, body = TenantList), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<TenantList>, ApiError> {
    principal.require_admin("listing tenants")?;
    let data = state.store.list_tenants().await?;
    Ok(axum::Json(TenantList {
        data: data.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "tenant id or name")),
    responses((status = 200, body = TenantView), (status = 403, body = crate::error::ErrorBody),
    (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(tenant): Path<String>,
) -> Result<axum::Json<TenantView>, ApiError> {
    principal.require_admin("reading tenants")?;
    Ok(axum::Json(
        crate::tenancy::find_tenant(&state, &tenant).await?.into(),
    ))
}
