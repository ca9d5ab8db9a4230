//! The A2A server: every agent of the key's tenant as an A2A agent at
//! `/v1/a2a/{agent}` (JSON-RPC), its card at
//! `/v1/a2a/{agent}/.well-known/agent-card.json`, and the cards of all at
//! `GET /v1/a2a`. A task is a run through the runtime's front door (the
//! same `invoke_agent` policy, budgets, ledger, audit and busy-session
//! rules as the native API); `contextId` is the session; a run waiting for
//! a person's approval is `input-required`. The `A2A-Version` header picks
//! 1.0 or (absent) 0.3 method names and shapes.

mod rpc;
mod wire;

use crate::auth::Principal;
use crate::{auth, AppState};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use roster_core::agent::Agent;
use roster_store::AgentRef;
use serde_json::{json, Value};

pub(crate) fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/a2a", get(directory))
        .route("/v1/a2a/{agent}", axum::routing::post(rpc::handle))
        .route("/v1/a2a/{agent}/.well-known/agent-card.json", get(card))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            auth::require_key,
        ))
}

/// The address the caller reached this server at (behind a proxy, what it
/// says in `X-Forwarded-Proto`/`Host`), so a card names a URL that works.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(axum::http::header::HOST))
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|s| *s == "https" || *s == "http")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

fn agent_card(agent: &Agent, base: &str) -> Value {
    let url = format!("{base}/v1/a2a/{}", agent.name);
    let description = agent
        .config
        .instructions
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("A Roster agent")
        .chars()
        .take(300)
        .collect::<String>();
    json!({
        "name": agent.name,
        "description": description,
        "version": agent.version.to_string(),
        "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
        // For 0.3 clients, which read these instead.
        "url": url,
        "preferredTransport": "JSONRPC",
        "protocolVersion": "0.3.0",
        "provider": {"organization": "Roster", "url": base},
        "capabilities": {"streaming": true, "pushNotifications": false},
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{
            "id": agent.name,
            "name": agent.name,
            "description": description,
            "tags": ["roster"],
        }],
        "securitySchemes": {"bearer": {"httpAuthSecurityScheme": {"scheme": "Bearer"}}},
        "securityRequirements": [{"schemes": {"bearer": {"list": []}}}],
    })
}

async fn find_agent(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> Result<Agent, crate::ApiError> {
    state
        .store
        .get_agent(&principal.tenant, &AgentRef::parse(name))
        .await?
        .ok_or_else(|| crate::ApiError::not_found("agent"))
}

/// An agent's card.
async fn card(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
    headers: HeaderMap,
) -> Result<axum::response::Response, crate::ApiError> {
    use axum::response::IntoResponse;
    let agent = find_agent(&state, &principal, &agent).await?;
    let card = agent_card(&agent, &base_url(&headers));
    // A card changes when its agent gets a new version.
    let etag = format!("\"{}-{}\"", agent.id, agent.version);
    Ok((
        [
            (
                axum::http::header::CACHE_CONTROL,
                "private, max-age=60".to_owned(),
            ),
            (axum::http::header::ETAG, etag),
        ],
        Json(card),
    )
        .into_response())
}

/// The cards of every agent the key's tenant has.
async fn directory(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Json<Value>, crate::ApiError> {
    let base = base_url(&headers);
    let agents = state.store.list_agents(&principal.tenant).await?;
    Ok(Json(json!({
        "agents": agents.iter().map(|a| agent_card(a, &base)).collect::<Vec<_>>(),
    })))
}
