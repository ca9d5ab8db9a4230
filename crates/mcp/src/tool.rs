//! MCP tools as Roster tools, and the provider that resolves an agent's
//! `mcp:NAME` and `mcp:NAME/TOOL` entries into them.

use crate::connection::ServerTool;
use crate::manager::McpManager;
use crate::spec::validate_name;
use crate::{McpError, KIND};
use async_trait::async_trait;
use roster_core::TenantId;
use roster_tool::{
    is_valid_tool_name, DynTool, ProviderError, Tool, ToolCallContext, ToolOutput, ToolProvider,
};
use std::sync::Arc;
use std::time::Duration;

/// The name the model sees: `SERVER__TOOL` (providers allow no dots), with
/// any other character a provider would reject replaced by `_`.
pub fn exposed_name(server: &str, tool: &str) -> String {
    let tool: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{server}__{tool}")
}

pub struct McpTool {
    manager: Arc<McpManager>,
    tenant: TenantId,
    server: String,
    tool: ServerTool,
    name: String,
    timeout: Duration,
}

#[async_trait]
impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.tool.description
    }

    fn parameters(&self) -> serde_json::Value {
        self.tool.input_schema.clone()
    }

    fn idempotent(&self) -> bool {
        self.tool.idempotent
    }

    fn policy_kind(&self) -> &str {
        "mcp"
    }

    fn policy_server(&self) -> &str {
        &self.server
    }

    fn timeout(&self) -> Duration {
        // The manager enforces the server's own timeout; the runner's is a
        // backstop a little later, so the manager's clearer message wins.
        self.timeout + Duration::from_secs(1)
    }

    async fn call(&self, ctx: &ToolCallContext, arguments: serde_json::Value) -> ToolOutput {
        debug_assert_eq!(ctx.tenant, self.tenant);
        self.manager
            .call(
                &self.tenant,
                &self.server,
                &self.tool.name,
                arguments,
                self.timeout,
            )
            .await
    }
}

/// Resolves `mcp:` entries for the runtime.
pub struct McpProvider {
    manager: Arc<McpManager>,
}

impl McpProvider {
    pub fn new(manager: Arc<McpManager>) -> Arc<Self> {
        Arc::new(Self { manager })
    }
}

fn parse_entry(entry: &str) -> Result<(&str, Option<&str>), ProviderError> {
    let (server, tool) = match entry.split_once('/') {
        Some((server, tool)) => (server, Some(tool)),
        None => (entry, None),
    };
    validate_name(server).map_err(|e| ProviderError::Unknown(e.to_string()))?;
    if tool.is_some_and(str::is_empty) {
        return Err(ProviderError::Unknown(format!(
            "`mcp:{entry}` names no tool after the `/`"
        )));
    }
    Ok((server, tool))
}

fn provider_error(e: McpError) -> ProviderError {
    match e {
        McpError::NotFound(m) | McpError::Invalid(m) => ProviderError::Unknown(m),
        other => ProviderError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl ToolProvider for McpProvider {
    fn scheme(&self) -> &str {
        KIND
    }

    async fn check(&self, tenant: &TenantId, entry: &str) -> Result<(), ProviderError> {
        let (server, tool) = parse_entry(entry)?;
        let stored = self
            .manager
            .registration(tenant, server)
            .await
            .map_err(provider_error)?;
        if let Some(tool) = tool {
            let config: crate::McpServerConfig = serde_json::from_value(stored.config)
                .map_err(|e| ProviderError::Unknown(format!("stored config of `{server}`: {e}")))?;
            if !config.allows(tool) {
                return Err(ProviderError::Unknown(format!(
                    "tool `{tool}` is not on MCP server `{server}`'s allow-list"
                )));
            }
        }
        Ok(())
    }

    async fn resolve(&self, tenant: &TenantId, entry: &str) -> Result<Vec<DynTool>, ProviderError> {
        let (server, only) = parse_entry(entry)?;
        let (config, tools) = self
            .manager
            .allowed_tools(tenant, server)
            .await
            .map_err(provider_error)?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut out: Vec<DynTool> = Vec::new();
        for tool in tools {
            if only.is_some_and(|t| t != tool.name) {
                continue;
            }
            let name = exposed_name(server, &tool.name);
            if !is_valid_tool_name(&name) {
                tracing::warn!(server, tool = %tool.name, "tool name too long for model providers; skipped");
                continue;
            }
            out.push(Arc::new(McpTool {
                manager: self.manager.clone(),
                tenant: tenant.clone(),
                server: server.to_owned(),
                tool,
                name,
                timeout,
            }));
        }
        if let Some(only) = only {
            if out.is_empty() {
                return Err(ProviderError::Unknown(format!(
                    "MCP server `{server}` has no tool `{only}`"
                )));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_names_keep_to_the_providers_alphabet() {
        assert_eq!(exposed_name("files", "read_file"), "files__read_file");
        assert_eq!(exposed_name("gh", "repos.list"), "gh__repos_list");
    }

    #[test]
    fn entries_name_a_server_and_maybe_a_tool() {
        assert_eq!(parse_entry("files").ok(), Some(("files", None)));
        assert_eq!(
            parse_entry("files/read").ok(),
            Some(("files", Some("read")))
        );
        assert!(parse_entry("files/").is_err());
        assert!(parse_entry("Bad Name").is_err());
    }
}
