//! `/v1/remotes`: the tenant's remote A2A agents, each a tool
//! (`ask_remote_NAME`) for agents that list `a2a:NAME`. A registration
//! fetches the agent card through the egress policy; the credential goes
//! in with it and is stored sealed — answers show only its header names.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Json;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use roster_a2a::{A2aError, Card, RemoteConfig, RemoteInput};
use roster_store::Integration;
use serde::Serialize;
use utoipa::ToSchema;

/// A registered remote agent, without its credential.
#[derive(Serialize, ToSchema)]
pub struct RemoteView {
    pub name: String,
    /// The URL given at registration.
    pub url: String,
    /// Where the card was fetched.
    pub card_url: String,
    /// The tool agents listing `a2a:NAME` get.
    pub tool: String,
    /// What the card said when it was last fetched: name, description,
    /// the JSON-RPC endpoint and its protocol version, skills.
    pub card: Card,
    /// The registration's own description of the tool, if it gave one.
    pub description: Option<String>,
    /// Headers sent from stored secrets (names only; values are never shown).
    pub headers: Vec<String>,
    /// A credential is stored (sealed).
    pub credential_set: bool,
    pub timeout_secs: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct RemoteList {
    pub data: Vec<RemoteView>,
}

pub(crate) fn a2a_error(e: A2aError) -> ApiError {
    use crate::codes::Code;
    match e {
        A2aError::Invalid(m) => ApiError::invalid(m),
        A2aError::NotFound(m) => ApiError::new(Code::NotFound, m),
        A2aError::Unavailable(m) => ApiError::new(Code::RemoteUnavailable, m),
        A2aError::InvalidCard(m) => ApiError::new(Code::InvalidAgentCard, m),
        A2aError::Egress(e) => e.into(),
        A2aError::Secret(m) => ApiError::new(
            Code::SecretUnreadable,
            format!("stored credentials cannot be opened: {m}"),
        ),
        A2aError::Store(e) => e.into(),
    }
}

fn remotes(state: &AppState) -> Result<&std::sync::Arc<roster_a2a::Remotes>, ApiError> {
    Ok(&crate::routes::mcp::integrations(state)?.a2a)
}

fn view(stored: Integration, config: RemoteConfig) -> RemoteView {
    RemoteView {
        tool: roster_a2a::tool_name(&stored.name),
        credential_set: stored.sealed.is_some(),
        name: stored.name,
        url: config.url,
        card_url: config.card_url,
        card: config.card,
        description: config.description,
        headers: config.headers,
        timeout_secs: config.timeout_secs,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

fn config_of(stored: &Integration) -> Result<RemoteConfig, ApiError> {
    serde_json::from_value(stored.config.clone()).map_err(ApiError::internal)
}

#[utoipa::path(post, path = "/v1/remotes", tag = "remotes", request_body = RemoteInput,
    responses((status = 201, body = RemoteView), (status = 409, body = crate::error::ErrorBody),
        (status = 403, description = "egress_denied: the egress policy refuses the card's or its endpoint's address", body = crate::error::ErrorBody),
        (status = 422, description = "invalid_agent_card: the card is not a usable A2A card (no JSON-RPC interface, no name)", body = crate::error::ErrorBody),
        (status = 502, description = "remote_unavailable: the card could not be fetched; host_unresolved: its host has no address", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<RemoteInput>,
) -> Result<(StatusCode, axum::Json<RemoteView>), ApiError> {
    let remotes = remotes(&state)?;
    let name = body.name.clone();
    let stored = match remotes
        .register(&principal.tenant, body, &principal.label())
        .await
    {
        Ok(stored) => stored,
        Err(e) => {
            return Err(super::audit_refusal(
                &state,
                &principal,
                roster_a2a::KIND,
                &name,
                a2a_error(e),
            )
            .await)
        }
    };
    let config = config_of(&stored)?;
    Ok((StatusCode::CREATED, axum::Json(view(stored, config))))
}

#[utoipa::path(get, path = "/v1/remotes", tag = "remotes", responses((status = 200, body = RemoteList)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<RemoteList>, ApiError> {
    let listed = remotes(&state)?
        .list(&principal.tenant)
        .await
        .map_err(a2a_error)?;
    Ok(axum::Json(RemoteList {
        data: listed.into_iter().map(|(s, c)| view(s, c)).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/remotes/{name}", tag = "remotes", params(("name" = String, Path)),
    responses((status = 200, body = RemoteView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<RemoteView>, ApiError> {
    let (stored, config) = remotes(&state)?
        .registration(&principal.tenant, &name)
        .await
        .map_err(a2a_error)?;
    Ok(axum::Json(view(stored, config)))
}

#[utoipa::path(delete, path = "/v1/remotes/{name}", tag = "remotes", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    remotes(&state)?
        .remove(&principal.tenant, &name, &principal.label())
        .await
        .map_err(a2a_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/remotes/{name}/refresh", tag = "remotes", params(("name" = String, Path)),
    responses((status = 200, body = RemoteView), (status = 404, body = crate::error::ErrorBody),
        (status = 403, description = "egress_denied: the card's endpoint now points where the egress policy refuses", body = crate::error::ErrorBody),
        (status = 422, description = "invalid_agent_card: the card is no longer a usable A2A card", body = crate::error::ErrorBody),
        (status = 502, description = "remote_unavailable: the card could not be fetched", body = crate::error::ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<RemoteView>, ApiError> {
    let stored = remotes(&state)?
        .refresh(&principal.tenant, &name, &principal.label())
        .await
        .map_err(a2a_error)?;
    let config = config_of(&stored)?;
    Ok(axum::Json(view(stored, config)))
}
