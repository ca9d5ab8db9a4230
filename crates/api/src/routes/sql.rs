//! `/v1/sources/sql`: the tenant's SQL databases. The URL goes in with the
//! registration and is stored sealed; answers show it without a password.
//! Registration checks the allow-list against the database and sets up the
//! read-only role queries run as.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Json;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use roster_sql::{
    Access, Engine, ResultTable, SqlError, SqlSourceConfig, SqlSourceInput, TableSchema,
};
use roster_store::Integration;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A registered SQL source, without its password.
#[derive(Serialize, ToSchema)]
pub struct SqlSourceView {
    pub name: String,
    pub engine: Engine,
    /// The URL without its password.
    pub location: String,
    /// Allowed tables as `SCHEMA.TABLE` or `SCHEMA.TABLE(COL,…)`.
    pub allow: Vec<String>,
    pub description: Option<String>,
    /// How the database keeps queries read-only and to the allow-list.
    pub access: Access,
    pub max_rows: u32,
    pub max_bytes: u32,
    pub timeout_secs: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct SqlSourceList {
    pub data: Vec<SqlSourceView>,
}

#[derive(Serialize, ToSchema)]
pub struct SqlSchema {
    /// The allowed tables, each with only its allowed columns.
    pub data: Vec<TableSchema>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlQueryRequest {
    /// One read-only query, as an agent's `sql_query` would send it.
    pub query: String,
}

pub(crate) fn sql_error(e: SqlError) -> ApiError {
    match e {
        SqlError::Invalid(m) => ApiError::invalid(m),
        SqlError::Egress(e) => e.into(),
        SqlError::Secret(m) => ApiError::new(
            crate::codes::Code::SecretUnreadable,
            format!("stored credentials cannot be opened: {m}"),
        ),
        SqlError::Store(e) => e.into(),
        other => ApiError::of_library(other.code(), other.to_string()),
    }
}

fn sources(state: &AppState) -> Result<&std::sync::Arc<roster_sql::SqlSources>, ApiError> {
    Ok(&crate::routes::mcp::integrations(state)?.sql)
}

fn view(stored: Integration, config: SqlSourceConfig) -> SqlSourceView {
    SqlSourceView {
        name: stored.name,
        engine: config.engine,
        location: config.location,
        allow: config.allow.iter().map(ToString::to_string).collect(),
        description: config.description,
        access: config.access,
        max_rows: config.limits.max_rows,
        max_bytes: config.limits.max_bytes,
        timeout_secs: config.limits.timeout_secs,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

#[utoipa::path(post, path = "/v1/sources/sql", tag = "sources", request_body = SqlSourceInput,
    responses((status = 201, body = SqlSourceView), (status = 409, body = crate::error::ErrorBody),
        (status = 403, description = "path_not_allowed: a SQLite file outside the operator's directories; egress_denied: the egress policy refuses the server's address", body = crate::error::ErrorBody),
        (status = 502, description = "database_unavailable: the database could not be reached", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<SqlSourceInput>,
) -> Result<(StatusCode, axum::Json<SqlSourceView>), ApiError> {
    let sources = sources(&state)?;
    let name = body.name.clone();
    if let Err(e) = sources
        .register(&principal.tenant, body, &principal.label())
        .await
    {
        return Err(super::audit_refusal(
            &state,
            &principal,
            roster_sql::KIND,
            &name,
            sql_error(e),
        )
        .await);
    }
    let (stored, config) = sources
        .registration(&principal.tenant, &name)
        .await
        .map_err(sql_error)?;
    Ok((StatusCode::CREATED, axum::Json(view(stored, config))))
}

#[utoipa::path(get, path = "/v1/sources/sql", tag = "sources", responses((status = 200, body = SqlSourceList)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<SqlSourceList>, ApiError> {
    let listed = sources(&state)?
        .list(&principal.tenant)
        .await
        .map_err(sql_error)?;
    Ok(axum::Json(SqlSourceList {
        data: listed.into_iter().map(|(s, c)| view(s, c)).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/sources/sql/{name}", tag = "sources", params(("name" = String, Path)),
    responses((status = 200, body = SqlSourceView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<SqlSourceView>, ApiError> {
    let (stored, config) = sources(&state)?
        .registration(&principal.tenant, &name)
        .await
        .map_err(sql_error)?;
    Ok(axum::Json(view(stored, config)))
}

#[utoipa::path(delete, path = "/v1/sources/sql/{name}", tag = "sources", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    sources(&state)?
        .remove(&principal.tenant, &name, &principal.label())
        .await
        .map_err(sql_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/sources/sql/{name}/schema", tag = "sources", params(("name" = String, Path)),
    responses((status = 200, body = SqlSchema), (status = 404, body = crate::error::ErrorBody),
        (status = 502, body = crate::error::ErrorBody)))]
pub async fn schema(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<SqlSchema>, ApiError> {
    let (_, tables) = sources(&state)?
        .schema(&principal.tenant, &name)
        .await
        .map_err(sql_error)?;
    Ok(axum::Json(SqlSchema {
        data: tables.as_ref().clone(),
    }))
}

#[utoipa::path(post, path = "/v1/sources/sql/{name}/query", tag = "sources", params(("name" = String, Path)),
    request_body = SqlQueryRequest,
    responses((status = 200, body = ResultTable), (status = 404, body = crate::error::ErrorBody),
        (status = 422, description = "database_error: the database refused or failed the query", body = crate::error::ErrorBody),
        (status = 504, description = "query_timeout", body = crate::error::ErrorBody)))]
pub async fn query(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Json(body): Json<SqlQueryRequest>,
) -> Result<axum::Json<ResultTable>, ApiError> {
    let table = sources(&state)?
        .query(&principal.tenant, &name, &body.query)
        .await
        .map_err(sql_error)?;
    Ok(axum::Json(table))
}
