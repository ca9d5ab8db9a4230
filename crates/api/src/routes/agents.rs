//! `/v1/agents`: create, list, show, update (new version), delete, memory.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use roster_core::agent::{
    validate_agent_name, Agent, AgentConfig, ContextSettings, MemorySettings, NewAgent, ToolChoice,
    DEFAULT_CONTEXT_TOKENS, DEFAULT_KNOWLEDGE_RECALL, DEFAULT_MAX_STEPS,
};
use roster_core::agent_diff::{diff, ConfigChange};
use roster_core::memory::{MemoryBlock, MemoryBlockSpec, MemoryBlockVersion};
use roster_core::run::BusyPolicy;
use roster_store::{AgentRef, AgentVersion, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgent {
    #[schema(pattern = r"^(?!agt_)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub name: String,
    #[serde(default)]
    pub instructions: String,
    /// What the agent does, in a sentence; agents that have it as a tool
    /// (`agent:NAME`) read it.
    #[serde(default)]
    pub description: String,
    /// Route `provider/model`, e.g. `openai/gpt-4.1-mini`; unset, the
    /// server's default model (`GET /v1/models`), if it has one.
    #[schema(pattern = r"^\s*[A-Za-z0-9_-]+/.*\S.*$")]
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub fallbacks: Vec<String>,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub memory_blocks: Vec<MemoryBlockSpec>,
    #[schema(minimum = 1, maximum = 1000)]
    pub max_steps: Option<u32>,
    #[schema(minimum = 256, maximum = 10000000)]
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
    /// `auto` (default) or `required`: the first model call of each run
    /// must call one of the agent's tools.
    pub tool_choice: Option<ToolChoice>,
    /// What a message does when its session is busy and it does not say:
    /// `queue` (default), `reject`, `interrupt` or `rollback`.
    pub if_busy: Option<BusyPolicy>,
    /// Webhooks (`whk_…`) told when any run of this agent finishes.
    #[serde(default)]
    #[schema(max_items = 8)]
    pub notify: Vec<String>,
    /// Most of this agent's runs executing at once; unset, the tenant's
    /// per-agent limit.
    #[schema(minimum = 1, maximum = 100000)]
    pub max_running: Option<u32>,
}

/// Fields to change; each PATCH that changes something stores a new
/// version of the agent. `tools` and `knowledge` replace the whole list;
/// `add_*` / `remove_*` change the current list instead (not both for one
/// list).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgent {
    pub instructions: Option<String>,
    pub description: Option<String>,
    #[schema(pattern = r"^\s*[A-Za-z0-9_-]+/.*\S.*$")]
    pub model: Option<String>,
    pub fallbacks: Option<Vec<String>>,
    pub tools: Option<Vec<String>>,
    /// Tools added to the current list (ones it has already are kept once).
    pub add_tools: Option<Vec<String>>,
    /// Tools removed from the current list (each must be on it).
    pub remove_tools: Option<Vec<String>>,
    /// Knowledge sources added to the current list.
    pub add_knowledge: Option<Vec<String>>,
    /// Knowledge sources removed from the current list (each must be on it).
    pub remove_knowledge: Option<Vec<String>>,
    #[schema(minimum = 1, maximum = 1000)]
    pub max_steps: Option<u32>,
    #[schema(minimum = 256, maximum = 10000000)]
    pub context_tokens: Option<u32>,
    pub memory: Option<MemorySettings>,
    pub knowledge: Option<Vec<String>>,
    pub knowledge_recall: Option<u32>,
    pub context: Option<ContextSettings>,
    /// `required`: the first model call of each run must call a tool.
    pub tool_choice: Option<ToolChoice>,
    /// The default for messages to a busy session.
    pub if_busy: Option<BusyPolicy>,
    /// Replaces the webhooks told when a run of this agent finishes.
    #[schema(max_items = 8)]
    pub notify: Option<Vec<String>>,
    /// Most of this agent's runs at once; `null` goes back to the tenant's
    /// per-agent limit.
    #[serde(default, with = "super::memories::double_option")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 100000)]
    pub max_running: Option<Option<u32>>,
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

/// An agent as a create or update left it, with what changed and what
/// will not work yet.
#[derive(Serialize, ToSchema)]
pub struct AgentChanged {
    #[serde(flatten)]
    pub agent: Agent,
    /// Fields that differ from the previous version (empty for a new agent,
    /// and for an update that changed nothing, which stores no version).
    pub changes: Vec<ConfigChange>,
    /// Things that will make this agent's runs fail, e.g. a model provider
    /// this server has not configured.
    pub warnings: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AgentVersionList {
    /// Newest first.
    pub data: Vec<AgentVersion>,
    pub current: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The version whose configuration becomes current again (as a new version).
    pub version: i64,
}

/// Warnings for a config about to be saved: route targets whose provider
/// this server does not have.
fn warnings(state: &AppState, config: &AgentConfig) -> Vec<String> {
    let configured = state.runtime.providers();
    let mut seen: Vec<String> = Vec::new();
    let routes = std::iter::once(&config.model).chain(&config.fallbacks);
    for route in routes {
        let Some((provider, _)) = route.split_once('/') else {
            continue;
        };
        if configured.iter().any(|p| p == provider) || seen.iter().any(|p| p == provider) {
            continue;
        }
        seen.push(provider.to_owned());
    }
    seen.into_iter()
        .map(|provider| {
            let env = match provider.as_str() {
                "openai" => "set OPENAI_API_KEY before `roster serve`, or ",
                "anthropic" => "set ANTHROPIC_API_KEY before `roster serve`, or ",
                _ => "",
            };
            format!(
                "model provider `{provider}` is not configured on this server: {env}add \
                 [providers.{provider}] to the config file; this agent's runs fail until it is"
            )
        })
        .collect()
}

fn changed(state: &AppState, agent: Agent, changes: Vec<ConfigChange>) -> axum::Json<AgentChanged> {
    let warnings = warnings(state, &agent.config);
    axum::Json(AgentChanged {
        agent,
        changes,
        warnings,
    })
}

/// `list` after adding `add` (each once) and removing `remove` (each must
/// be there).
fn edit_list(
    field: &str,
    list: &mut Vec<String>,
    add: Option<&Vec<String>>,
    remove: Option<&Vec<String>>,
) -> Result<(), ApiError> {
    for name in remove.into_iter().flatten() {
        let before = list.len();
        list.retain(|t| t != name);
        if list.len() == before {
            return Err(ApiError::invalid(format!(
                "{field}: the agent has no `{name}` to remove (it has: {})",
                if list.is_empty() {
                    "none".to_owned()
                } else {
                    list.join(", ")
                }
            )));
        }
    }
    for name in add.into_iter().flatten() {
        if !list.contains(name) {
            list.push(name.clone());
        }
    }
    Ok(())
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
    state
        .runtime
        .check_webhooks(&principal.tenant, "notify", &config.notify)
        .await?;
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

/// An agent's name for answers that name it; its id if it was deleted.
pub(crate) async fn name_of(
    state: &AppState,
    principal: &Principal,
    agent: &roster_core::AgentId,
) -> Result<String, ApiError> {
    Ok(state
        .store
        .get_agent(
            &principal.tenant,
            &roster_store::AgentRef::Id(agent.clone()),
        )
        .await?
        .map_or_else(|| agent.to_string(), |a| a.name))
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
    responses((status = 201, body = AgentChanged), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateAgent>,
) -> Result<(StatusCode, axum::Json<AgentChanged>), ApiError> {
    validate_agent_name(&body.name)?;
    let model = match (body.model, &state.models.default) {
        (Some(model), _) => model,
        (None, Some(default)) => default.clone(),
        (None, None) => {
            return Err(ApiError::invalid(
                "`model` is required: this server has no default model; give a route \
                 (`--model provider/model` in the CLI; `roster models` or GET /v1/models lists them)",
            ))
        }
    };
    let config = AgentConfig {
        notify: body.notify,
        max_running: body.max_running,
        if_busy: body.if_busy.unwrap_or_default(),
        tool_choice: body.tool_choice.unwrap_or_default(),
        instructions: body.instructions,
        description: body.description,
        model,
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
    Ok((StatusCode::CREATED, changed(&state, agent, Vec::new())))
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
    responses((status = 200, body = AgentChanged), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
    Json(body): Json<UpdateAgent>,
) -> Result<axum::Json<AgentChanged>, ApiError> {
    if body.tools.is_some() && (body.add_tools.is_some() || body.remove_tools.is_some()) {
        return Err(ApiError::invalid(
            "give either tools (the whole list) or add_tools/remove_tools, not both",
        ));
    }
    if body.knowledge.is_some() && (body.add_knowledge.is_some() || body.remove_knowledge.is_some())
    {
        return Err(ApiError::invalid(
            "give either knowledge (the whole list) or add_knowledge/remove_knowledge, not both",
        ));
    }
    // The change is applied to the version it was read from; if another
    // update lands in between, it is applied again to the newer one, so
    // neither is lost.
    let mut attempts = 0;
    loop {
        let current = find(&state, &principal, &agent).await?;
        let config = apply(&body, current.config.clone())?;
        let blocks_change =
            !body.add_memory_blocks.is_empty() || !body.remove_memory_blocks.is_empty();
        let changes = diff(&current.config, &config);
        if changes.is_empty() && !blocks_change {
            return Ok(changed(&state, current, changes));
        }
        check_config(&state, &principal, &config).await?;
        if blocks_change {
            // Blocks change with their rows, in the store's own transaction.
            let before = current.config.clone();
            let proposed = Agent { config, ..current };
            super::blocks::check_change(
                &proposed,
                &body.add_memory_blocks,
                &body.remove_memory_blocks,
            )?;
            let change = roster_store::BlockChange {
                config: Some(proposed.config),
                add: body.add_memory_blocks.clone(),
                remove: body.remove_memory_blocks.clone(),
            };
            let updated = state
                .store
                .change_agent_blocks(&principal.tenant, &proposed.id, change, &principal.label())
                .await?;
            let changes = diff(&before, &updated.config);
            return Ok(changed(&state, updated, changes));
        }
        match state
            .store
            .update_agent_from(
                &principal.tenant,
                &current.id,
                current.version,
                config,
                "agent.update",
                &principal.label(),
            )
            .await
        {
            Ok(updated) => {
                return Ok(changed(&state, updated, changes));
            }
            Err(StoreError::Conflict(_)) if attempts < 4 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The configuration an update asks for, from the current one.
fn apply(body: &UpdateAgent, mut config: AgentConfig) -> Result<AgentConfig, ApiError> {
    if let Some(v) = &body.instructions {
        config.instructions.clone_from(v);
    }
    if let Some(v) = &body.model {
        config.model.clone_from(v);
    }
    if let Some(v) = &body.fallbacks {
        config.fallbacks.clone_from(v);
    }
    if let Some(v) = &body.tools {
        config.tools.clone_from(v);
    }
    edit_list(
        "tools",
        &mut config.tools,
        body.add_tools.as_ref(),
        body.remove_tools.as_ref(),
    )?;
    if let Some(v) = body.max_steps {
        config.max_steps = v;
    }
    if let Some(v) = body.context_tokens {
        config.context_tokens = v;
    }
    if let Some(v) = &body.memory {
        config.memory = v.clone();
    }
    if let Some(v) = &body.knowledge {
        config.knowledge.clone_from(v);
    }
    edit_list(
        "knowledge",
        &mut config.knowledge,
        body.add_knowledge.as_ref(),
        body.remove_knowledge.as_ref(),
    )?;
    if let Some(v) = body.knowledge_recall {
        config.knowledge_recall = v;
    }
    if let Some(v) = &body.context {
        config.context = v.clone();
    }
    if let Some(v) = body.tool_choice {
        config.tool_choice = v;
    }
    if let Some(v) = body.if_busy {
        config.if_busy = v;
    }
    if let Some(v) = &body.notify {
        config.notify.clone_from(v);
    }
    if let Some(v) = body.max_running {
        config.max_running = v;
    }
    if let Some(v) = &body.description {
        config.description.clone_from(v);
    }
    Ok(config)
}

#[utoipa::path(get, path = "/v1/agents/{agent}/versions", tag = "agents", params(("agent" = String, Path, description = "id or name")),
    responses((status = 200, body = AgentVersionList), (status = 404, body = crate::error::ErrorBody)))]
pub async fn versions(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
) -> Result<axum::Json<AgentVersionList>, ApiError> {
    let agent = find(&state, &principal, &agent).await?;
    let data = state
        .store
        .list_agent_versions(&principal.tenant, &agent.id)
        .await?;
    Ok(axum::Json(AgentVersionList {
        data,
        current: agent.version,
    }))
}

#[utoipa::path(post, path = "/v1/agents/{agent}/rollback", tag = "agents", request_body = Rollback,
    params(("agent" = String, Path, description = "id or name")),
    responses((status = 200, body = AgentChanged, description = "the old configuration stored as a new version"),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "the agent changed meanwhile")))]
pub async fn rollback(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
    Json(body): Json<Rollback>,
) -> Result<axum::Json<AgentChanged>, ApiError> {
    let current = find(&state, &principal, &agent).await?;
    let target = state
        .store
        .get_agent_version(&principal.tenant, &current.id, body.version)
        .await?
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "agent `{}` has no version {} (its versions are 1 to {})",
                current.name, body.version, current.version
            ))
        })?;
    let changes = diff(&current.config, &target.config);
    if changes.is_empty() {
        return Ok(changed(&state, current, changes));
    }
    // What the old version names (tools, sources) must still exist.
    check_config(&state, &principal, &target.config)
        .await
        .map_err(|e| {
            ApiError::invalid(format!(
                "version {} cannot be restored as it is: {}",
                body.version, e.message
            ))
        })?;
    let updated = state
        .store
        .update_agent_from(
            &principal.tenant,
            &current.id,
            current.version,
            target.config,
            "agent.rollback",
            &principal.label(),
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(message) => ApiError::new(crate::codes::Code::Conflict, message),
            other => other.into(),
        })?;
    Ok(changed(&state, updated, changes))
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
