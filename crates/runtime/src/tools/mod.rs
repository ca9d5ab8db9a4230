//! The tool model: what every tool declares, and the registry agents pick
//! their tools from by name.
//!
//! Tools with a scheme (`mcp:files`) are resolved per tenant at the start
//! of each run by the registry's [`ToolProvider`]s; the rest are fixed.
//!
//! Two kinds exist. External tools ([`Tool`]) act outside the store, so the
//! runner journals a `started` step before calling them and retries an
//! interrupted call only if the tool says it is idempotent. Memory tools act
//! only on the store, so their effect commits in the same transaction as
//! their result: they run exactly once by construction.

pub mod agents;
pub mod memory;
pub mod recall;

use roster_models::ToolSpec;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use roster_tool::{
    DynTool, DynToolProvider, ProviderError, Tool, ToolCallContext, ToolOutput, ToolProvider,
};

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
    /// The compiled argument schema of an external tool. Built-in tools
    /// parse into typed arguments instead; a schema that does not compile
    /// (a server's mistake) leaves its arguments to the tool.
    pub validator: Option<Arc<jsonschema::Validator>>,
}

/// Most schema errors told to the model for one call.
const MAX_REPORTED_ERRORS: usize = 5;

impl RegisteredTool {
    /// Checks arguments against the tool's schema; the error says, for the
    /// model, what is wrong and where.
    pub fn check_arguments(&self, arguments: &serde_json::Value) -> Result<(), String> {
        let Some(validator) = &self.validator else {
            return Ok(());
        };
        let errors: Vec<String> = validator
            .iter_errors(arguments)
            .take(MAX_REPORTED_ERRORS)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("at {at}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "invalid arguments for `{}`: {}; fix them and call again",
                self.spec.name,
                errors.join("; ")
            ))
        }
    }
}

#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, RegisteredTool>,
    providers: BTreeMap<String, DynToolProvider>,
}

/// The tools one run may call, by the name the model sees.
#[derive(Clone, Default)]
pub struct ResolvedTools {
    tools: BTreeMap<String, RegisteredTool>,
    /// Entries whose tools could not be had, and why (told to the model).
    pub unavailable: Vec<String>,
}

impl ResolvedTools {
    pub fn get(&self, name: &str) -> Option<&RegisteredTool> {
        self.tools.get(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.tools.keys().map(String::as_str).collect()
    }

    pub fn specs(&self) -> impl Iterator<Item = &ToolSpec> {
        self.tools.values().map(|t| &t.spec)
    }

    /// The specs as this agent's model sees them: the memory tools' `label`
    /// lists the blocks the agent has, so a model (and the local model's
    /// constrained decoding) names a block that exists.
    pub fn specs_for(&self, block_labels: &[&str]) -> Vec<ToolSpec> {
        self.tools
            .values()
            .map(|t| match t.kind {
                ToolKind::Memory(_) => memory::with_labels(&t.spec, block_labels),
                _ => t.spec.clone(),
            })
            .collect()
    }
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
                    validator: None,
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
                    validator: None,
                },
            );
        }
        registry
    }

    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        let registered = external(tool);
        self.tools.insert(registered.spec.name.clone(), registered);
    }

    /// Adds the resolver of agent tool entries `SCHEME:…`.
    pub fn add_provider(&mut self, provider: DynToolProvider) {
        self.providers
            .insert(provider.scheme().to_owned(), provider);
    }

    /// Checks an agent's entries that name tools through a provider (the
    /// fixed names are checked by `AgentConfig::validate`).
    pub async fn check_entries(
        &self,
        tenant: &roster_core::TenantId,
        entries: &[String],
    ) -> Result<(), String> {
        for entry in entries {
            let Some((scheme, rest)) = roster_tool::split_entry(entry) else {
                continue;
            };
            let Some(provider) = self.providers.get(scheme) else {
                return Err(format!("unknown tool `{entry}`"));
            };
            provider
                .check(tenant, rest)
                .await
                .map_err(|e| format!("tool `{entry}`: {e}"))?;
        }
        Ok(())
    }

    /// The tools an agent's entries give one run of `tenant`. An entry
    /// whose provider fails (a server that does not start) contributes
    /// nothing and is listed in `unavailable`; the run goes on without it.
    pub async fn resolve(
        &self,
        tenant: &roster_core::TenantId,
        entries: &[String],
    ) -> ResolvedTools {
        let mut resolved = ResolvedTools::default();
        // Entries grouped by provider, in the order they first appear.
        let mut pending: Vec<(&str, DynToolProvider, Vec<String>)> = Vec::new();
        for entry in entries {
            match roster_tool::split_entry(entry) {
                None => {
                    if let Some(tool) = self.tools.get(entry) {
                        resolved.tools.insert(entry.clone(), tool.clone());
                    }
                }
                Some((scheme, rest)) => match self.providers.get(scheme) {
                    Some(provider) => match pending.iter_mut().find(|(s, _, _)| *s == scheme) {
                        Some((_, _, rests)) => rests.push(rest.to_owned()),
                        None => pending.push((scheme, provider.clone(), vec![rest.to_owned()])),
                    },
                    None => resolved
                        .unavailable
                        .push(format!("`{entry}`: no provider for `{scheme}:`")),
                },
            }
        }
        // Providers are asked together: one slow server must not add its
        // start-up time to every other's.
        let answers = futures::future::join_all(
            pending
                .iter()
                .map(|(_, provider, rests)| provider.resolve_all(tenant, rests)),
        )
        .await;
        for ((scheme, _, _), answer) in pending.iter().zip(answers) {
            for tool in answer.tools {
                let registered = external(tool);
                // A fixed tool keeps its name; the first entry wins a clash.
                resolved
                    .tools
                    .entry(registered.spec.name.clone())
                    .or_insert(registered);
            }
            for (rest, e) in answer.failed {
                let entry = format!("{scheme}:{rest}");
                tracing::warn!(entry = %entry, error = %e, "tool entry unavailable for this run");
                resolved.unavailable.push(format!("`{entry}`: {e}"));
            }
        }
        resolved
    }

    pub fn get(&self, name: &str) -> Option<&RegisteredTool> {
        self.tools.get(name)
    }

    /// The fixed tool names, and `SCHEME:` for each provider.
    pub fn names(&self) -> Vec<String> {
        self.tools
            .keys()
            .cloned()
            .chain(self.providers.keys().map(|s| format!("{s}:")))
            .collect()
    }

    pub fn specs(&self) -> impl Iterator<Item = &ToolSpec> {
        self.tools.values().map(|t| &t.spec)
    }
}

fn external(tool: Arc<dyn Tool>) -> RegisteredTool {
    let parameters = tool.parameters();
    let validator = match jsonschema::validator_for(&parameters) {
        Ok(validator) => Some(Arc::new(validator)),
        Err(e) => {
            tracing::warn!(tool = tool.name(), error = %e, "tool schema does not compile; arguments go unchecked");
            None
        }
    };
    RegisteredTool {
        spec: ToolSpec {
            name: tool.name().to_owned(),
            description: tool.description().to_owned(),
            parameters,
        },
        kind: ToolKind::External(tool),
        validator,
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
