//! The MCP server itself: what rmcp asks of it (server info, `tools/list`,
//! `tools/call`). rmcp does the protocol — both eras, `initialize`,
//! `server/discover`, `ping`, the headers and `_meta` checks — and makes
//! one of these per request; it holds nothing but the API's state, so no
//! request depends on an earlier one reaching the same node.

use crate::args;
use crate::catalogue::{self, Entry};
use crate::error::ToolError;
use crate::gate;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use roster_api::AppState;

const INSTRUCTIONS: &str = "Roster runs this tenant's AI agents with their memory. \
Each `ask_NAME` tool asks one agent and waits for its answer; the answer names its \
`session`: pass it back (to the same tool, or to `continue_session`) to go on with \
the same conversation, which the agent remembers. `knowledge_search` and \
`memory_search` search the tenant's documents and long-term memory.";

pub(crate) struct RosterMcp {
    state: AppState,
}

impl RosterMcp {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl ServerHandler for RosterMcp {
    fn get_info(&self) -> ServerConfig {
        // `listChanged` stays off: with no MCP session there is no stream
        // to announce a change on; clients list again when they need to.
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("roster", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = gate::principal(&context)?;
        let tools = catalogue::list(&self.state, &principal)
            .await
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        let mut result = ListToolsResult::with_all_items(tools);
        // The list is this key's and changes with the tenant's agents:
        // not to be kept, nor shared with another key.
        result.ttl_ms = Some(0);
        result.cache_scope = Some(CacheScope::Private);
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let principal = gate::principal(&context)?;
        let name = request.name.as_ref();
        let entry = match catalogue::find(&self.state, &principal, name).await {
            Ok(Some(entry)) => entry,
            // The one protocol error: the call names nothing this key has
            // (another tenant's agent included).
            Ok(None) => {
                return Err(McpError::invalid_params(
                    format!("unknown tool `{name}`"),
                    None,
                ))
            }
            Err(refused) => return Ok(refused.into_result().into()),
        };
        let arguments = request.arguments;
        let state = &self.state;
        let outcome: Result<CallToolResult, ToolError> = async {
            match entry {
                Entry::Ask(agent) => {
                    crate::ask::ask(state, &principal, &agent, args::parse(arguments)?).await
                }
                Entry::Continue => {
                    crate::ask::continue_session(state, &principal, args::parse(arguments)?).await
                }
                Entry::Knowledge => {
                    crate::search::knowledge(state, &principal, args::parse(arguments)?).await
                }
                Entry::Memory => {
                    crate::search::memory(state, &principal, args::parse(arguments)?).await
                }
            }
        }
        .await;
        Ok(outcome.unwrap_or_else(ToolError::into_result).into())
    }
}
