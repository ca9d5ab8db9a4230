//! `/v1/sources/http`: the tenant's HTTP services, imported from OpenAPI 3
//! documents. The credential goes in with the registration and is stored
//! sealed; answers show only its kind.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Json;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use roster_openapi::{exposed_name, Auth, HttpError, HttpServiceConfig, HttpServiceInput};
use roster_store::Integration;
use serde::Serialize;
use utoipa::ToSchema;

/// One operation of a service, as an agent would see it.
#[derive(Serialize, ToSchema)]
pub struct HttpOperationView {
    /// The operationId (or `METHOD_PATH`): `http:SERVICE/ID` names it alone.
    pub id: String,
    pub method: String,
    pub path: String,
    /// The name the model sees: `SERVICE__ID`.
    pub tool: String,
    pub description: String,
    /// JSON Schema of the arguments.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
}

/// A registered HTTP service, without its credential.
#[derive(Serialize, ToSchema)]
pub struct HttpServiceView {
    pub name: String,
    pub title: String,
    pub version: String,
    pub base_url: String,
    pub allow_hosts: Vec<String>,
    pub auth: Option<Auth>,
    pub operations: Vec<HttpOperationView>,
    /// Operations of the document left out, and why (registration only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    pub timeout_secs: u64,
    pub max_response_bytes: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct HttpServiceList {
    pub data: Vec<HttpServiceView>,
}

pub(crate) fn http_error(e: HttpError) -> ApiError {
    match e {
        HttpError::Invalid(m) => ApiError::invalid(m),
        HttpError::NotFound(m) => ApiError::new(crate::codes::Code::NotFound, m),
        HttpError::Egress(e) => e.into(),
        HttpError::Secret(m) => ApiError::new(
            crate::codes::Code::SecretUnreadable,
            format!("stored credentials cannot be opened: {m}"),
        ),
        HttpError::Store(e) => e.into(),
    }
}

fn services(state: &AppState) -> Result<&std::sync::Arc<roster_openapi::HttpServices>, ApiError> {
    Ok(&crate::routes::mcp::integrations(state)?.http)
}

fn view(stored: Integration, config: HttpServiceConfig, skipped: Vec<String>) -> HttpServiceView {
    HttpServiceView {
        operations: config
            .operations
            .into_iter()
            .map(|op| HttpOperationView {
                tool: exposed_name(&stored.name, &op.id),
                id: op.id,
                method: op.method,
                path: op.path,
                description: op.description,
                parameters: op.input_schema,
            })
            .collect(),
        name: stored.name,
        title: config.title,
        version: config.version,
        base_url: config.base_url,
        allow_hosts: config.allow_hosts,
        auth: config.auth,
        skipped,
        timeout_secs: config.timeout_secs,
        max_response_bytes: config.max_response_bytes,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

#[utoipa::path(post, path = "/v1/sources/http", tag = "sources", request_body = HttpServiceInput,
    responses((status = 201, body = HttpServiceView), (status = 409, body = crate::error::ErrorBody),
        (status = 403, description = "egress_denied: the egress policy refuses the base URL's address", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<HttpServiceInput>,
) -> Result<(StatusCode, axum::Json<HttpServiceView>), ApiError> {
    let services = services(&state)?;
    let name = body.name.clone();
    let (stored, skipped) = match services
        .register(&principal.tenant, body, &principal.label())
        .await
    {
        Ok(registered) => registered,
        Err(e) => {
            return Err(super::audit_refusal(
                &state,
                &principal,
                roster_openapi::KIND,
                &name,
                http_error(e),
            )
            .await)
        }
    };
    let config = serde_json::from_value(stored.config.clone()).map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(view(stored, config, skipped)),
    ))
}

#[utoipa::path(get, path = "/v1/sources/http", tag = "sources", responses((status = 200, body = HttpServiceList)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<HttpServiceList>, ApiError> {
    let listed = services(&state)?
        .list(&principal.tenant)
        .await
        .map_err(http_error)?;
    Ok(axum::Json(HttpServiceList {
        data: listed
            .into_iter()
            .map(|(s, c)| view(s, c, Vec::new()))
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/sources/http/{name}", tag = "sources", params(("name" = String, Path)),
    responses((status = 200, body = HttpServiceView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<HttpServiceView>, ApiError> {
    let (stored, config) = services(&state)?
        .registration(&principal.tenant, &name)
        .await
        .map_err(http_error)?;
    Ok(axum::Json(view(stored, config, Vec::new())))
}

#[utoipa::path(delete, path = "/v1/sources/http/{name}", tag = "sources", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    services(&state)?
        .remove(&principal.tenant, &name, &principal.label())
        .await
        .map_err(http_error)?;
    Ok(StatusCode::NO_CONTENT)
}
