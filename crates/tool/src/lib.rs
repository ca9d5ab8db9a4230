//! The tool model every kind of tool shares.
//!
//! Owns: the [`Tool`] trait (name, description, argument schema, timeout,
//! output limit, idempotency), what a call returns ([`ToolOutput`]), who is
//! calling ([`ToolCallContext`]), and [`ToolProvider`], which turns an
//! agent's tool entry with a scheme (`mcp:files`, `sql:warehouse`) into the
//! tools it stands for, per tenant, at the start of each run.
//!
//! Adapters (MCP, SQL sources, HTTP services, the code sandbox) implement
//! these traits; the runtime only calls them. Must never: depend on a
//! transport, a store or the runtime.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// A tool result, as the model will read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolOutput {
    pub text: String,
    pub is_error: bool,
}

impl ToolOutput {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: false,
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            is_error: true,
        }
    }
}

/// Who is calling, for tools that need to know.
#[derive(Clone, Debug)]
pub struct ToolCallContext {
    pub tenant: roster_core::TenantId,
    pub agent_id: roster_core::AgentId,
    pub session_id: roster_core::SessionId,
    pub run_id: roster_core::RunId,
    /// The model's id of this call: stable across a crash and the call's
    /// retry, so a tool can make its effect once per call.
    pub call_id: String,
}

/// Default time a call may take before the runner gives up on it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default size of a result before it is cut.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 * 1024;

#[async_trait]
pub trait Tool: Send + Sync {
    /// The name the model sees: letters, digits, `_` and `-` only, at most
    /// 64 characters (what every provider accepts).
    fn name(&self) -> &str;
    fn description(&self) -> &str;
    /// JSON Schema of the arguments object. The runner validates arguments
    /// against it before calling, and tells the model what is wrong.
    fn parameters(&self) -> serde_json::Value;
    /// Safe to run twice with the same arguments (a crash mid-call retries it).
    fn idempotent(&self) -> bool {
        false
    }
    fn timeout(&self) -> Duration {
        DEFAULT_TIMEOUT
    }
    /// Results longer than this are cut, with a notice to the model.
    fn max_output_bytes(&self) -> usize {
        DEFAULT_MAX_OUTPUT_BYTES
    }
    /// What kind of tool this is for policies (`resource.kind`): `builtin`,
    /// `mcp`, `sql`, `http` or `sandbox`.
    fn policy_kind(&self) -> &str {
        "builtin"
    }
    /// The MCP server, SQL or HTTP source it belongs to (`resource.server`).
    fn policy_server(&self) -> &str {
        ""
    }
    /// Facts about a call that policies may test beside its arguments
    /// (e.g. the tables a query reads); they win over arguments of the
    /// same name. Must be cheap and must not act.
    fn policy_facts(
        &self,
        _arguments: &serde_json::Value,
    ) -> serde_json::Map<String, serde_json::Value> {
        serde_json::Map::new()
    }
    /// Runs the call. Dropping the future cancels it (a timeout or a
    /// cancelled run does), so implementations must stop their work then.
    async fn call(&self, ctx: &ToolCallContext, arguments: serde_json::Value) -> ToolOutput;
}

pub type DynTool = Arc<dyn Tool>;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The entry names something the tenant does not have (unknown server,
    /// unknown tool, a tool outside the allow-list).
    #[error("{0}")]
    Unknown(String),
    /// The entry is well-formed and known, but its tools cannot be reached
    /// now (a server that does not start or answer).
    #[error("{0}")]
    Unavailable(String),
}

/// Resolves agent tool entries of one scheme (`mcp:NAME`, `mcp:NAME/TOOL`).
#[async_trait]
pub trait ToolProvider: Send + Sync {
    /// The scheme before the colon, e.g. `mcp`.
    fn scheme(&self) -> &str;
    /// Checks an entry when an agent is saved: the tenant has what it names.
    async fn check(&self, tenant: &roster_core::TenantId, entry: &str)
        -> Result<(), ProviderError>;
    /// The tools the entry gives an agent of `tenant`, for one run.
    async fn resolve(
        &self,
        tenant: &roster_core::TenantId,
        entry: &str,
    ) -> Result<Vec<DynTool>, ProviderError>;
    /// All of one run's entries of this scheme (without the scheme). By
    /// default each is resolved on its own, concurrently; a provider whose
    /// entries share one tool (every `sql:` source goes through one
    /// `sql_query`) resolves them together.
    async fn resolve_all(
        &self,
        tenant: &roster_core::TenantId,
        entries: &[String],
    ) -> ResolvedEntries {
        let answers =
            futures::future::join_all(entries.iter().map(|e| self.resolve(tenant, e))).await;
        let mut out = ResolvedEntries::default();
        for (entry, answer) in entries.iter().zip(answers) {
            match answer {
                Ok(tools) => out.tools.extend(tools),
                Err(e) => out.failed.push((entry.clone(), e)),
            }
        }
        out
    }
}

pub type DynToolProvider = Arc<dyn ToolProvider>;

/// One run's entries of a scheme, resolved together.
#[derive(Default)]
pub struct ResolvedEntries {
    pub tools: Vec<DynTool>,
    /// Entries (without the scheme) that gave nothing, and why.
    pub failed: Vec<(String, ProviderError)>,
}

/// The JSON Schema of a typed argument struct, as the model sees it
/// (without the wrapper keys providers do not want).
pub fn parameters_of<T: schemars::JsonSchema>() -> serde_json::Value {
    let mut parameters = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    if let Some(object) = parameters.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
    }
    parameters
}

/// Splits `scheme:rest`; `None` for a plain tool name.
pub fn split_entry(entry: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = entry.split_once(':')?;
    (!scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    .then_some((scheme, rest))
}

/// Longest name of an integration (MCP server, SQL source, HTTP service):
/// `NAME__TOOL` must still fit the providers' 64 characters.
pub const MAX_INTEGRATION_NAME_LEN: usize = 32;

/// Checks the name a tenant gives an integration; the error says the rule.
pub fn check_integration_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_INTEGRATION_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !name.contains("__")
        && !name.starts_with('_')
        && !name.ends_with('_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name `{name}`: use 1-{MAX_INTEGRATION_NAME_LEN} of a-z, 0-9, `_` and `-`, without `__` or a leading or trailing `_`"
        ))
    }
}

/// True for a name every model provider accepts for a tool.
pub fn is_valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_on_their_scheme() {
        assert_eq!(split_entry("mcp:files"), Some(("mcp", "files")));
        assert_eq!(split_entry("mcp:files/read"), Some(("mcp", "files/read")));
        assert_eq!(split_entry("memory_search"), None);
        assert_eq!(split_entry(":x"), None);
        assert_eq!(split_entry("MCP:x"), None);
    }

    #[test]
    fn tool_names_follow_the_providers_rules() {
        assert!(is_valid_tool_name("files__read_file"));
        assert!(!is_valid_tool_name("files.read"));
        assert!(!is_valid_tool_name(""));
        assert!(!is_valid_tool_name(&"a".repeat(65)));
    }
}
