//! `/v1/mcp/servers`: the tenant's MCP servers. Any key enables an entry of
//! the operator's catalogue (`/v1/mcp/catalogue`) or adds a Streamable HTTP
//! server the egress policy allows; only the admin key registers a command.
//! Credentials go in with the registration and are stored sealed; answers
//! show only their names. `/v1/tools`: the built-in tools with their
//! argument schemas.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Json;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use roster_mcp::{CatalogueEntryView, McpError, McpServerConfig, McpServerInput, Transport};
use roster_store::Integration;
use serde::Serialize;
use utoipa::ToSchema;

/// A registered MCP server, without credential values.
#[derive(Serialize, ToSchema)]
pub struct McpServerView {
    pub name: String,
    #[serde(flatten)]
    pub transport: Transport,
    /// Environment variables set from stored secrets (names only).
    pub env: Vec<String>,
    /// Headers sent from stored secrets (names only).
    pub headers: Vec<String>,
    /// Only these tools are offered; all when absent.
    pub allow: Option<Vec<String>>,
    pub timeout_secs: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct McpServerList {
    pub data: Vec<McpServerView>,
}

/// The stdio servers the operator offers tenants.
#[derive(Serialize, ToSchema)]
pub struct McpCatalogue {
    pub data: Vec<CatalogueEntryView>,
}

/// One of a server's tools as the agent would see it.
#[derive(Serialize, ToSchema)]
pub struct McpToolView {
    /// The server's name for it.
    pub name: String,
    /// The name the model sees: `SERVER__TOOL`.
    pub model_name: String,
    pub description: String,
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
    /// On the server's allow-list (or no allow-list).
    pub allowed: bool,
    /// Retried after a crash mid-call (the server marks it read-only or idempotent).
    pub idempotent: bool,
}

#[derive(Serialize, ToSchema)]
pub struct McpToolList {
    pub data: Vec<McpToolView>,
}

/// A built-in tool.
#[derive(Serialize, ToSchema)]
pub struct ToolView {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct ToolList {
    pub data: Vec<ToolView>,
    /// Schemes of tool entries resolved per tenant, e.g. `mcp:` (`mcp:NAME`
    /// for a whole server, `mcp:NAME/TOOL` for one tool).
    pub schemes: Vec<String>,
}

pub(crate) fn mcp_error(e: McpError) -> ApiError {
    match e {
        McpError::Invalid(m) => ApiError::invalid(m),
        McpError::NotFound(m) => ApiError::new(crate::codes::Code::NotFound, m),
        McpError::Unavailable(m) => ApiError::new(crate::codes::Code::McpUnavailable, m),
        McpError::CommandNeedsAdmin(m) => {
            ApiError::new(crate::codes::Code::McpCommandNeedsAdmin, m)
        }
        McpError::SandboxUnavailable(m) => ApiError::new(crate::codes::Code::SandboxUnavailable, m),
        McpError::Egress(e) => e.into(),
        McpError::Secret(m) => ApiError::new(
            crate::codes::Code::SecretUnreadable,
            format!("stored credentials cannot be opened: {m}"),
        ),
        McpError::Store(e) => e.into(),
    }
}

pub(crate) fn integrations(state: &AppState) -> Result<&crate::Integrations, ApiError> {
    state.integrations.as_ref().ok_or_else(|| {
        ApiError::new(
            crate::codes::Code::IntegrationsUnavailable,
            "integrations are not enabled on this server",
        )
    })
}

fn view(stored: Integration) -> Result<McpServerView, ApiError> {
    let config: McpServerConfig = serde_json::from_value(stored.config)
        .map_err(|e| ApiError::internal(format!("stored MCP config of {}: {e}", stored.name)))?;
    Ok(McpServerView {
        name: stored.name,
        transport: config.transport,
        env: config.env,
        headers: config.headers,
        allow: config.allow,
        timeout_secs: config.timeout_secs,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    })
}

#[utoipa::path(post, path = "/v1/mcp/servers", tag = "mcp", request_body = McpServerInput,
    responses((status = 201, body = McpServerView), (status = 409, body = crate::error::ErrorBody),
        (status = 403, description = "mcp_command_needs_admin: a command needs the admin key (enable a catalogue entry instead); egress_denied: the egress policy refuses the URL's address", body = crate::error::ErrorBody),
        (status = 503, description = "sandbox_unavailable: stdio servers need bubblewrap", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<McpServerInput>,
) -> Result<(StatusCode, axum::Json<McpServerView>), ApiError> {
    let integrations = integrations(&state)?;
    let name = body.name.clone();
    let stored = match integrations
        .mcp
        .register(
            &principal.tenant,
            body,
            &principal.label(),
            principal.is_admin,
        )
        .await
    {
        Ok(stored) => stored,
        Err(e) => {
            return Err(super::audit_refusal(
                &state,
                &principal,
                roster_mcp::KIND,
                &name,
                mcp_error(e),
            )
            .await)
        }
    };
    Ok((StatusCode::CREATED, axum::Json(view(stored)?)))
}

#[utoipa::path(get, path = "/v1/mcp/catalogue", tag = "mcp", responses((status = 200, body = McpCatalogue)))]
pub async fn catalogue(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<axum::Json<McpCatalogue>, ApiError> {
    Ok(axum::Json(McpCatalogue {
        data: integrations(&state)?.mcp.catalogue().views(),
    }))
}

#[utoipa::path(get, path = "/v1/mcp/servers", tag = "mcp", responses((status = 200, body = McpServerList)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<McpServerList>, ApiError> {
    let stored = state
        .store
        .list_integrations(&principal.tenant, roster_mcp::KIND)
        .await?;
    Ok(axum::Json(McpServerList {
        data: stored.into_iter().map(view).collect::<Result<_, _>>()?,
    }))
}

async fn find(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> Result<Integration, ApiError> {
    state
        .store
        .get_integration(&principal.tenant, roster_mcp::KIND, name)
        .await?
        .ok_or_else(|| ApiError::not_found(&format!("MCP server `{name}`")))
}

#[utoipa::path(get, path = "/v1/mcp/servers/{name}", tag = "mcp", params(("name" = String, Path)),
    responses((status = 200, body = McpServerView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<McpServerView>, ApiError> {
    Ok(axum::Json(view(find(&state, &principal, &name).await?)?))
}

#[utoipa::path(delete, path = "/v1/mcp/servers/{name}", tag = "mcp", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    integrations(&state)?
        .mcp
        .remove(&principal.tenant, &name, &principal.label())
        .await
        .map_err(mcp_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/mcp/servers/{name}/tools", tag = "mcp", params(("name" = String, Path)),
    responses((status = 200, body = McpToolList), (status = 404, body = crate::error::ErrorBody),
        (status = 502, description = "mcp_unavailable: the server did not start or answer", body = crate::error::ErrorBody)))]
pub async fn tools(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<McpToolList>, ApiError> {
    let integrations = integrations(&state)?;
    let tools = integrations
        .mcp
        .tools(&principal.tenant, &name)
        .await
        .map_err(mcp_error)?;
    Ok(axum::Json(McpToolList {
        data: tools
            .into_iter()
            .map(|(tool, allowed)| McpToolView {
                model_name: roster_mcp::exposed_name(&name, &tool.name),
                name: tool.name,
                description: tool.description,
                input_schema: tool.input_schema,
                allowed,
                idempotent: tool.idempotent,
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/tools", tag = "tools", responses((status = 200, body = ToolList)))]
pub async fn builtins(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<axum::Json<ToolList>, ApiError> {
    let registry = state.runtime.tools();
    let data = registry
        .specs()
        .map(|spec| ToolView {
            name: spec.name.clone(),
            description: spec.description.clone(),
            parameters: spec.parameters.clone(),
        })
        .collect();
    let schemes = registry
        .names()
        .into_iter()
        .filter(|n| n.ends_with(':'))
        .collect();
    Ok(axum::Json(ToolList { data, schemes }))
}
