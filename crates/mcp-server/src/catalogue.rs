//! Which tools a key sees, and which one a call names.
//!
//! The list is read from the store on every `tools/list` (no cache, no MCP
//! session): a new or deleted agent shows on the next list, on any node.
//! A tool is listed only when the key's scopes allow it, each checked as
//! the API checks the route it stands for:
//! - `ask_NAME`: `agents:read` (it lists the tenant's agents) and
//!   `sessions:write` (it makes sessions and posts messages);
//! - `continue_session`: `sessions:write`;
//! - `knowledge_search`: `knowledge:read`; `memory_search`:
//!   `memories:read` — both only where memory is enabled.
//!
//! A call is checked the same way, so an unlisted tool is refused with the
//! scope it lacks rather than run.

use crate::args::{self, Answer};
use crate::error::ToolError;
use crate::naming::{agent_tool_names, ASK_PREFIX};
use rmcp::handler::server::common::{schema_for_input, schema_for_output};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use roster_api::auth::Principal;
use roster_api::codes::Code;
use roster_api::{ApiError, AppState};
use roster_core::agent::Agent;
use schemars::JsonSchema;
use std::sync::Arc;

pub(crate) const CONTINUE: &str = "continue_session";
pub(crate) const KNOWLEDGE: &str = "knowledge_search";
pub(crate) const MEMORY: &str = "memory_search";

/// How much of an agent's description (or instructions) its tool shows.
const ABOUT_CHARS: usize = 300;

/// What a tool name stands for.
pub(crate) enum Entry {
    Ask(Box<Agent>),
    Continue,
    Knowledge,
    Memory,
}

/// The tools `principal` may call now.
pub(crate) async fn list(state: &AppState, principal: &Principal) -> Result<Vec<Tool>, ToolError> {
    let mut tools = Vec::new();
    if principal.has_scope("agents:read") && principal.has_scope("sessions:write") {
        for (name, agent) in agents(state, principal).await? {
            tools.push(ask_tool(name, &agent)?);
        }
    }
    if principal.has_scope("sessions:write") {
        tools.push(
            tool::<args::Continue>(
                CONTINUE,
                "Say something more in an existing session (the `session` of an earlier answer) \
                 and wait for its agent's answer. The agent remembers the conversation.",
            )?
            .with_raw_output_schema(schema_for_output::<Answer>())
            .with_annotations(ToolAnnotations::new().read_only(false).destructive(false)),
        );
    }
    if state.runtime.memory().is_some() {
        if principal.has_scope("knowledge:read") {
            tools.push(
                tool::<args::KnowledgeSearch>(
                    KNOWLEDGE,
                    "Search the tenant's knowledge sources (documents); returns the passages \
                     that match best, with their citations.",
                )?
                .with_annotations(ToolAnnotations::new().read_only(true)),
            );
        }
        if principal.has_scope("memories:read") {
            tools.push(
                tool::<args::MemorySearch>(
                    MEMORY,
                    "Search long-term memory records in the namespaces named (a user's are \
                     `users/NAME`); returns the records that match best.",
                )?
                .with_annotations(ToolAnnotations::new().read_only(true)),
            );
        }
    }
    Ok(tools)
}

/// What `name` stands for, for `principal`: `Ok(None)` for no such tool,
/// a refusal when the key's scopes do not allow it.
pub(crate) async fn find(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> Result<Option<Entry>, ToolError> {
    match name {
        CONTINUE => {
            require(principal, "sessions:write")?;
            Ok(Some(Entry::Continue))
        }
        KNOWLEDGE => {
            require(principal, "knowledge:read")?;
            Ok(Some(Entry::Knowledge))
        }
        MEMORY => {
            require(principal, "memories:read")?;
            Ok(Some(Entry::Memory))
        }
        _ if name.starts_with(ASK_PREFIX) => {
            require(principal, "agents:read")?;
            require(principal, "sessions:write")?;
            Ok(agents(state, principal)
                .await?
                .into_iter()
                .find(|(tool, _)| tool == name)
                .map(|(_, agent)| Entry::Ask(Box::new(agent))))
        }
        _ => Ok(None),
    }
}

/// The tenant's agents with their tool names, oldest first (ids sort by
/// creation), so names that needed a counter keep it.
async fn agents(
    state: &AppState,
    principal: &Principal,
) -> Result<Vec<(String, Agent)>, ToolError> {
    let mut agents = state.store.list_agents(&principal.tenant).await?;
    agents.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    let tools = agent_tool_names(&names);
    Ok(tools.into_iter().zip(agents).collect())
}

fn ask_tool(name: String, agent: &Agent) -> Result<Tool, ToolError> {
    let description = format!(
        "Ask agent `{}` and wait for its answer. About it: {} Pass the `session` of an earlier \
         answer to continue that conversation; the agent remembers it.",
        agent.name,
        about(agent)
    );
    Ok(tool::<args::Ask>(name, description)?
        .with_title(format!("Ask {}", agent.name))
        .with_raw_output_schema(schema_for_output::<Answer>())
        .with_annotations(ToolAnnotations::new().read_only(false).destructive(false)))
}

fn tool<T: JsonSchema + 'static>(
    name: impl Into<String>,
    description: impl Into<String>,
) -> Result<Tool, ToolError> {
    let schema: Arc<JsonObject> = schema_for_input::<T>().map_err(|e| {
        // The argument types are ours: a bad schema is a bug, not input.
        tracing::error!(error = %e, "an MCP tool's argument schema is not an object");
        ApiError::new(Code::InternalError, "internal error; see the server log")
    })?;
    Ok(Tool::new(name.into(), description.into(), schema))
}

/// An agent's description, or the start of its instructions.
fn about(agent: &Agent) -> String {
    let text = match agent.config.description.trim() {
        "" => agent.config.instructions.trim(),
        described => described,
    };
    if text.is_empty() {
        return "(no description)".to_owned();
    }
    let mut cut: String = text.chars().take(ABOUT_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// Fails with the API's `insufficient_scope` unless the key holds `scope`.
fn require(principal: &Principal, scope: &str) -> Result<(), ToolError> {
    if principal.has_scope(scope) {
        return Ok(());
    }
    Err(ApiError::new(
        Code::InsufficientScope,
        format!("this key's scopes do not include `{scope}`"),
    )
    .into())
}
