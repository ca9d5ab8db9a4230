//! The tool model: what every tool declares, and the registry agents pick
//! their tools from by name.
//!
//! Two kinds exist. External tools ([`Tool`]) act outside the store, so the
//! runner journals a `started` step before calling them and retries an
//! interrupted call only if the tool says it is idempotent. Memory tools act
//! only on the store, so their effect commits in the same transaction as
//! their result: they run exactly once by construction.

pub mod memory;
pub mod recall;

use async_trait::async_trait;
use roster_models::ToolSpec;
use std::collections::BTreeMap;
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
}

#[async_trait]
pub trait Tool: Send + Sync {
    fn name(&self) -> &str;
    fn description(&self) -> &str;
    /// JSON Schema of the arguments object.
    fn parameters(&self) -> serde_json::Value;
    /// Safe to run twice with the same arguments (a crash mid-call retries it).
    fn idempotent(&self) -> bool {
        false
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
    /// Results longer than this are cut, with a notice to the model.
    fn max_output_bytes(&self) -> usize {
        64 * 1024
    }
    async fn call(&self, ctx: &ToolCallContext, arguments: serde_json::Value) -> ToolOutput;
}

/// How the runner must execute a tool.
#[derive(Clone)]
pub enum ToolKind {
    External(Arc<dyn Tool>),
    /// Pinned memory blocks.
    Memory(memory::MemoryTool),
    /// Long-term memory records.
    Recall(recall::RecallTool),
}

#[derive(Clone)]
pub struct RegisteredTool {
    pub spec: ToolSpec,
    pub kind: ToolKind,
}

#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, RegisteredTool>,
}

impl ToolRegistry {
    /// The built-in tools every deployment has.
    pub fn with_builtins() -> Self {
        let mut registry = Self::default();
        for tool in [memory::MemoryTool::Append, memory::MemoryTool::Replace] {
            registry.tools.insert(
                tool.name().to_owned(),
                RegisteredTool {
                    spec: tool.spec(),
                    kind: ToolKind::Memory(tool),
                },
            );
        }
        for tool in [
            recall::RecallTool::Search,
            recall::RecallTool::Write,
            recall::RecallTool::Knowledge,
            recall::RecallTool::Conversation,
        ] {
            registry.tools.insert(
                tool.name().to_owned(),
                RegisteredTool {
                    spec: tool.spec(),
                    kind: ToolKind::Recall(tool),
                },
            );
        }
        registry
    }

    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        let spec = ToolSpec {
            name: tool.name().to_owned(),
            description: tool.description().to_owned(),
            parameters: tool.parameters(),
        };
        self.tools.insert(
            spec.name.clone(),
            RegisteredTool {
                spec,
                kind: ToolKind::External(tool),
            },
        );
    }

    pub fn get(&self, name: &str) -> Option<&RegisteredTool> {
        self.tools.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.tools.keys().map(String::as_str).collect()
    }

    pub fn specs(&self) -> impl Iterator<Item = &ToolSpec> {
        self.tools.values().map(|t| &t.spec)
    }
}

/// A tool spec whose parameters are the JSON Schema derived from the
/// argument type, without the wrapper keys providers do not want.
pub(crate) fn tool_spec(name: &str, description: &str, schema: schemars::Schema) -> ToolSpec {
    let mut parameters = serde_json::to_value(schema).unwrap_or_default();
    if let Some(object) = parameters.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
    }
    ToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, saying so.
pub fn truncate_output(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[output cut: {} of {} bytes shown]",
        &text[..end],
        end,
        text.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_char_boundaries_and_says_so() {
        assert_eq!(truncate_output("short".into(), 10), "short");
        let cut = truncate_output("ééééé".into(), 3);
        assert!(cut.starts_with('é'));
        assert!(cut.contains("output cut: 2 of 10 bytes"));
    }

    #[test]
    fn builtins_are_registered() {
        let r = ToolRegistry::with_builtins();
        assert_eq!(
            r.names(),
            vec![
                "conversation_search",
                "knowledge_search",
                "memory_append",
                "memory_replace",
                "memory_search",
                "memory_write"
            ]
        );
    }
}
