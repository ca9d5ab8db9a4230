//! `/v1/agents`: create, list, show, update (new version), delete, memory.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use roster_core::agent::{
    validate_agent_name, Agent, AgentConfig, ContextSettings, MemorySettings, NewAgent,
    DEFAULT_CONTEXT_TOKENS, DEFAULT_KNOWLEDGE_RECALL, DEFAULT_MAX_STEPS,
};
use roster_core::memory::{MemoryBlock, MemoryBlockSpec, MemoryBlockVersion};
use roster_store::AgentRef;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    pub name: String,
    #[serde(default)]
    pub instructions: String,
    /// Route `provider/model`, e.g. `openai/gpt-4.1-mini`.
    pub model: String,
    #[serde(default)]
    pub fallbacks: Vec<String>,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub memory_blocks: Vec<MemoryBlockSpec>,
    pub max_steps: Option<u32>,
    pub context_tokens: Option<u32>,
    /// Long-term memory settings (namespace, searched namespaces, recall).
    pub memory: Option<MemorySettings>,
    /// Knowledge sources (by name) the agent may search and cite.
    #[serde(default)]
    pub knowledge: Vec<String>,
    /// Passages retrieved into the context per turn (default 3; 0 = off).
    pub knowledge_recall: Option<u32>,
    /// Summarising old history (`summarize`, default on; `summary_model`).
    pub context: Option<ContextSettings>,
}

/// Fields to change; each PATCH stores a new version of the agent.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    pub instructions: Option<String>,
    pub model: Option<String>,
    pub fallbacks: Option<Vec<String>>,
    pub tools: Option<Vec<String>>,
    pub max_steps: Option<u32>,
    pub context_tokens: Option<u32>,
    pub memory: Option<MemorySettings>,
    pub knowledge: Option<Vec<String>>,
    pub knowledge_recall: Option<u32>,
    pub context: Option<ContextSettings>,
    /// Memory blocks to add to the current ones (a label the agent has is
    /// refused; remove it in the same request to replace it).
    #[serde(default)]
    pub add_memory_blocks: Vec<MemoryBlockSpec>,
    /// Labels of memory blocks to remove; their values and history stay,
    /// for sessions on older versions.
    #[serde(default)]
    pub remove_memory_blocks: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AgentList {
    pub data: Vec<Agent>,
}

/// The agent's own values of its current version's blocks (for `user` and
/// `session` blocks, the templates; copies are under `/blocks`).
#[derive(Serialize, ToSchema)]
pub struct AgentMemory {
    pub blocks: Vec<MemoryBlock>,
    /// Every version of every block, oldest first per label.
    pub history: Vec<MemoryBlockVersion>,
}

/// Every knowledge source the config names must exist in the tenant.
/// Everything a saved config must satisfy: its own rules, tool entries the
/// tenant has, and knowledge sources that exist.
async fn check_config(
    state: &AppState,
    principal: &Principal,
    config: &AgentConfig,
) -> Result<(), ApiError> {
    config.validate(&state.runtime.tools().names())?;
    state
        .runtime
        .tools()
        .check_entries(&principal.tenant, &config.tools)
        .await
        .map_err(ApiError::invalid)?;
    check_sources(state, principal, config).await
}

async fn check_sources(
    state: &AppState,
    principal: &Principal,
    config: &AgentConfig,
) -> Result<(), ApiError> {
    for name in &config.knowledge {
        if state
            .store
            .get_source(&principal.tenant, name)
            .await?
            .is_none()
        {
            return Err(ApiError::invalid(format!(
                "knowledge: no knowledge source named `{name}`; create it first"
            )));
        }
    }
    Ok(())
}

pub(crate) async fn find(
    state: &AppState,
    principal: &Principal,
    reference: &str,
) -> Result<Agent, ApiError> {
    state
        .store
        .get_agent(&principal.tenant, &AgentRef::parse(reference))
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))
}

#[utoipa::path(post, path = "/v1/agents", request_body = CreateAgent, tag = "agents",
    responses((status = 201, body = Agent), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateAgent>,
) -> Result<(StatusCode, axum::Json<Agent>), ApiError> {
    validate_agent_name(&body.name)?;
    let config = AgentConfig {
        instructions: body.instructions,
        model: body.model,
        fallbacks: body.fallbacks,
        tools: body.tools,
        max_steps: body.max_steps.unwrap_or(DEFAULT_MAX_STEPS),
        context_tokens: body.context_tokens.unwrap_or(DEFAULT_CONTEXT_TOKENS),
        memory: body.memory.unwrap_or_default(),
        knowledge: body.knowledge,
        knowledge_recall: body.knowledge_recall.unwrap_or(DEFAULT_KNOWLEDGE_RECALL),
        context: body.context.unwrap_or_default(),
        memory_blocks: body
            .memory_blocks
            .iter()
            .map(MemoryBlockSpec::def)
            .collect(),
    };
    check_config(&state, &principal, &config).await?;
    let mut labels = HashSet::new();
    for block in &body.memory_blocks {
        block.validate()?;
        if !labels.insert(block.label.as_str()) {
            return Err(ApiError::invalid(format!(
                "memory block `{}` is listed twice",
                block.label
            )));
        }
    }
    if body.memory_blocks.len() > 64 {
        return Err(ApiError::invalid("at most 64 memory blocks per agent"));
    }
    let agent = state
        .store
        .create_agent(
            &principal.tenant,
            NewAgent {
                name: body.name,
                config,
                memory_blocks: body.memory_blocks,
            },
            &principal.label(),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(agent)))
}

#[utoipa::path(get, path = "/v1/agents", tag = "agents", responses((status = 200, body = AgentList)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<AgentList>, ApiError> {
    Ok(axum::Json(AgentList {
        data: state.store.list_agents(&principal.tenant).await?,
    }))
}

#[utoipa::path(get, path = "/v1/agents/{agent}", tag = "agents", params(("agent" = String, Path, description = "id or name")),
    responses((status = 200, body = Agent), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
) -> Result<axum::Json<Agent>, ApiError> {
    Ok(axum::Json(find(&state, &principal, &agent).await?))
}

#[utoipa::path(patch, path = "/v1/agents/{agent}", tag = "agents", request_body = UpdateAgent, params(("agent" = String, Path, description = "id or name")),
    responses((status = 200, body = Agent), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
    Json(body): Json<UpdateAgent>,
) -> Result<axum::Json<Agent>, ApiError> {
    let current = find(&state, &principal, &agent).await?;
    let mut config = current.config;
    if let Some(v) = body.instructions {
        config.instructions = v;
    }
    if let Some(v) = body.model {
        config.model = v;
    }
    if let Some(v) = body.fallbacks {
        config.fallbacks = v;
    }
    if let Some(v) = body.tools {
        config.tools = v;
    }
    if let Some(v) = body.max_steps {
        config.max_steps = v;
    }
    if let Some(v) = body.context_tokens {
        config.context_tokens = v;
    }
    if let Some(v) = body.memory {
        config.memory = v;
    }
    if let Some(v) = body.knowledge {
        config.knowledge = v;
    }
    if let Some(v) = body.knowledge_recall {
        config.knowledge_recall = v;
    }
    if let Some(v) = body.context {
        config.context = v;
    }
    check_config(&state, &principal, &config).await?;
    if !body.add_memory_blocks.is_empty() || !body.remove_memory_blocks.is_empty() {
        let current = Agent { config, ..current };
        super::blocks::check_change(
            &current,
            &body.add_memory_blocks,
            &body.remove_memory_blocks,
        )?;
        let change = roster_store::BlockChange {
            config: Some(current.config),
            add: body.add_memory_blocks,
            remove: body.remove_memory_blocks,
        };
        let agent = state
            .store
            .change_agent_blocks(&principal.tenant, &current.id, change, &principal.label())
            .await?;
        return Ok(axum::Json(agent));
    }
    let agent = state
        .store
        .update_agent(&principal.tenant, &current.id, config, &principal.label())
        .await?;
    Ok(axum::Json(agent))
}

#[utoipa::path(delete, path = "/v1/agents/{agent}", tag = "agents", params(("agent" = String, Path, description = "id or name")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
) -> Result<StatusCode, ApiError> {
    let current = find(&state, &principal, &agent).await?;
    if state
        .store
        .delete_agent(&principal.tenant, &current.id, &principal.label())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("agent"))
    }
}

#[utoipa::path(get, path = "/v1/agents/{agent}/memory", tag = "agents", params(("agent" = String, Path, description = "id or name")),
    responses((status = 200, body = AgentMemory), (status = 404, body = crate::error::ErrorBody)))]
pub async fn memory(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
) -> Result<axum::Json<AgentMemory>, ApiError> {
    let agent = find(&state, &principal, &agent).await?;
    // The current version's blocks: the agent's own rows, never a copy.
    let current = |label: &str| agent.config.block(label).is_some();
    let mut blocks = state
        .store
        .list_memory_blocks(&principal.tenant, &agent.id)
        .await?;
    blocks.retain(|b| current(&b.label));
    let mut history = state
        .store
        .memory_block_history(&principal.tenant, &agent.id)
        .await?;
    history.retain(|v| current(&v.label));
    Ok(axum::Json(AgentMemory { blocks, history }))
}
