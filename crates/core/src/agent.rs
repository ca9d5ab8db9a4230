//! Agents and their versioned configuration.

use crate::blocks::BlockDef;
use crate::memory::{validate_label, MemoryBlockSpec};
use crate::record::validate_namespace_template;
use crate::route::ModelRoute;
use crate::{AgentId, ValidationError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const DEFAULT_MAX_STEPS: u32 = 16;
pub const DEFAULT_CONTEXT_TOKENS: u32 = 32_000;

/// Everything that makes up one version of an agent. Stored as JSON with a
/// `format` number so old versions stay readable as the shape grows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentConfig {
    pub instructions: String,
    /// What the agent does, in a sentence: other agents that have it as a
    /// tool (`agent:NAME`) read it (the start of `instructions` when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Route `provider/model`.
    pub model: String,
    /// Routes tried in order when the primary one fails with a retryable error.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Tool names the agent may call.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Upper bound on model calls in one run.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// Token budget for the assembled context.
    #[serde(default = "default_context_tokens")]
    pub context_tokens: u32,
    /// Long-term memory: where records go, what is searched and recalled.
    #[serde(default)]
    pub memory: MemorySettings,
    /// Knowledge sources (by name) the agent may search and cite.
    #[serde(default)]
    pub knowledge: Vec<String>,
    /// Passages from those sources retrieved into the context on each turn
    /// (0 turns it off; `knowledge_search` still works).
    #[serde(default = "default_knowledge_recall")]
    pub knowledge_recall: u32,
    /// How the context is kept within `context_tokens`.
    #[serde(default)]
    pub context: ContextSettings,
    /// The pinned memory blocks of this version and their scopes (their
    /// values are state, edited without a new version).
    #[serde(default)]
    pub memory_blocks: Vec<BlockDef>,
    /// Whether the first model call of each run must call a tool.
    #[serde(default)]
    pub tool_choice: ToolChoice,
    /// What a message does when its session has a run in progress, unless
    /// the message says.
    #[serde(default)]
    pub if_busy: crate::run::BusyPolicy,
    /// Webhooks (`whk_…`) told when any of this agent's runs finishes.
    /// Read from the agent's current version when a run finishes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    /// Most of this agent's runs executing at once (unset: the tenant's
    /// per-agent limit). Read from the agent's current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub max_running: Option<u32>,
}

/// Whether a model call may answer in prose or must call one of its tools.
/// `required` applies to the first model call of a run only, so the run
/// can still finish with an answer once the tools have run (a model forced
/// on every step would call tools forever). Small local models rarely
/// decide to call a tool on their own; `required` makes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    #[default]
    Auto,
    Required,
}

/// Most memory blocks one agent version pins.
pub const MAX_BLOCKS: usize = 64;

/// When a session's history outgrows the context budget, its oldest part
/// is folded into a running summary by a model call (unless turned off, in
/// which case the oldest items simply drop out of the context).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextSettings {
    #[serde(default = "default_true")]
    pub summarize: bool,
    /// Route of the summarising model; the agent's own model when unset.
    #[serde(default)]
    pub summary_model: Option<String>,
    /// What happens to an input larger than the context budget leaves for
    /// it: `refuse` (default; `input_too_large` before any run is made) or
    /// `truncate` (stored whole, given to the model cut, with a note).
    #[serde(default, skip_serializing_if = "OversizedInput::is_refuse")]
    pub oversized_input: OversizedInput,
}

/// See [`ContextSettings::oversized_input`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OversizedInput {
    #[default]
    Refuse,
    Truncate,
}

impl OversizedInput {
    fn is_refuse(&self) -> bool {
        *self == OversizedInput::Refuse
    }
}

fn default_true() -> bool {
    true
}

impl Default for ContextSettings {
    fn default() -> Self {
        Self {
            summarize: true,
            summary_model: None,
            oversized_input: OversizedInput::Refuse,
        }
    }
}

impl ContextSettings {
    /// The route summaries go to: `summary_model`, else the agent's.
    pub fn summary_route(&self, agent: &AgentConfig) -> Result<ModelRoute, ValidationError> {
        match &self.summary_model {
            Some(model) => ModelRoute::parse(model, &[]),
            None => agent.route(),
        }
    }
}

pub const DEFAULT_KNOWLEDGE_RECALL: u32 = 3;

fn default_knowledge_recall() -> u32 {
    DEFAULT_KNOWLEDGE_RECALL
}

fn default_max_steps() -> u32 {
    DEFAULT_MAX_STEPS
}

fn default_context_tokens() -> u32 {
    DEFAULT_CONTEXT_TOKENS
}

impl AgentConfig {
    pub fn route(&self) -> Result<ModelRoute, ValidationError> {
        ModelRoute::parse(&self.model, &self.fallbacks)
    }

    /// `known_tools` lists the fixed tool names and, as `SCHEME:`, the
    /// schemes whose entries (`mcp:files`) a provider checks separately.
    pub fn validate<S: AsRef<str>>(&self, known_tools: &[S]) -> Result<(), ValidationError> {
        let known: Vec<&str> = known_tools.iter().map(AsRef::as_ref).collect();
        self.route()?;
        if self.instructions.len() > 200_000 {
            return Err(ValidationError::new(
                "instructions",
                "longer than 200000 bytes",
            ));
        }
        if self.description.len() > 2_000 {
            return Err(ValidationError::new(
                "description",
                "longer than 2000 bytes",
            ));
        }
        if self.max_steps == 0 || self.max_steps > 1_000 {
            return Err(ValidationError::new(
                "max_steps",
                "must be between 1 and 1000",
            ));
        }
        if !(256..=10_000_000).contains(&self.context_tokens) {
            return Err(ValidationError::new(
                "context_tokens",
                "must be between 256 and 10000000",
            ));
        }
        self.memory.validate()?;
        if self.tool_choice == ToolChoice::Required && self.tools.is_empty() {
            return Err(ValidationError::new(
                "tool_choice",
                "`required` needs at least one tool",
            ));
        }
        if self.knowledge.len() > 32 {
            return Err(ValidationError::new("knowledge", "at most 32 sources"));
        }
        for (i, name) in self.knowledge.iter().enumerate() {
            crate::names::validate_source_name(name)
                .map_err(|e| ValidationError::new("knowledge", e.message))?;
            if self.knowledge[..i].contains(name) {
                return Err(ValidationError::new(
                    "knowledge",
                    format!("source `{name}` is listed twice"),
                ));
            }
        }
        if let Some(model) = &self.context.summary_model {
            ModelRoute::parse(model, &[])
                .map_err(|e| ValidationError::new("context.summary_model", e.message))?;
        }
        self.validate_blocks()?;
        crate::limits::validate_notify("notify", &self.notify)?;
        if let Some(max) = self.max_running {
            crate::limits::validate_limit("max_running", max)?;
        }
        if self.knowledge_recall > 20 {
            return Err(ValidationError::new(
                "knowledge_recall",
                "must be between 0 and 20",
            ));
        }
        for (i, tool) in self.tools.iter().enumerate() {
            if self.tools[..i].contains(tool) {
                return Err(ValidationError::new(
                    "tools",
                    format!("tool `{tool}` is listed twice"),
                ));
            }
            let known_here = match tool.split_once(':') {
                Some((scheme, rest)) => {
                    !rest.is_empty() && known.contains(&format!("{scheme}:").as_str())
                }
                None => known.contains(&tool.as_str()),
            };
            if !known_here {
                return Err(ValidationError::new(
                    "tools",
                    format!("unknown tool `{tool}`; known tools: {}", known.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

impl AgentConfig {
    fn validate_blocks(&self) -> Result<(), ValidationError> {
        if self.memory_blocks.len() > MAX_BLOCKS {
            return Err(ValidationError::new(
                "memory_blocks",
                format!("at most {MAX_BLOCKS} memory blocks per agent"),
            ));
        }
        for (i, def) in self.memory_blocks.iter().enumerate() {
            validate_label(&def.label)
                .map_err(|e| ValidationError::new("memory_blocks.label", e.message))?;
            if self.memory_blocks[..i].iter().any(|d| d.label == def.label) {
                return Err(ValidationError::new(
                    "memory_blocks",
                    format!("memory block `{}` is listed twice", def.label),
                ));
            }
        }
        Ok(())
    }

    /// The block of this version labelled `label`.
    pub fn block(&self, label: &str) -> Option<&BlockDef> {
        self.memory_blocks.iter().find(|d| d.label == label)
    }
}

/// Default namespace of an agent's long-term memory records.
pub const DEFAULT_MEMORY_NAMESPACE: &str = "agents/{agent}";
pub const DEFAULT_RECALL: u32 = 5;

/// An agent's long-term memory settings. Namespaces are templates that may
/// name `{agent}`, `{user}` and `{session}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySettings {
    /// Where `memory_write` puts records unless told otherwise.
    #[serde(default = "default_memory_namespace")]
    pub namespace: String,
    /// Namespaces `memory_search` and recall read; empty means just
    /// `namespace`.
    #[serde(default)]
    pub search: Vec<String>,
    /// Records recalled into the context on each turn (0 turns recall off).
    #[serde(default = "default_recall")]
    pub recall: u32,
    /// Extraction strategies run in the background after each completed
    /// run; none by default.
    #[serde(default)]
    pub strategies: Vec<StrategyConfig>,
    /// What a user's session writes to a namespace no user owns (such as
    /// `agents/{agent}`) goes to that user's `users/NAME/…` copy, so one
    /// user's facts never reach another's sessions; `true` writes it to
    /// the shared namespace instead, for agents whose users are one team.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub share_user_memories: bool,
}

/// What an extraction strategy looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StrategyKind {
    /// Durable facts about the user, their work and their world.
    Semantic,
    /// What the user likes, dislikes and wants done a certain way.
    Preferences,
    /// One running summary record per session.
    Summary,
}

impl StrategyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Semantic => "semantic",
            StrategyKind::Preferences => "preferences",
            StrategyKind::Summary => "summary",
        }
    }

    /// The `kind` of the records it writes.
    pub fn record_kind(self) -> &'static str {
        match self {
            StrategyKind::Semantic => "fact",
            StrategyKind::Preferences => "preference",
            StrategyKind::Summary => "summary",
        }
    }
}

/// One extraction strategy: a prompt plus a model route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StrategyConfig {
    pub kind: StrategyKind,
    /// Route of the extracting model; the agent's own when unset.
    #[serde(default)]
    pub model: Option<String>,
    /// Replaces the built-in instructions for this kind.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Namespace template for its records; the agent's `namespace` when unset.
    #[serde(default)]
    pub namespace: Option<String>,
}

fn default_memory_namespace() -> String {
    DEFAULT_MEMORY_NAMESPACE.to_owned()
}

fn default_recall() -> u32 {
    DEFAULT_RECALL
}

impl Default for MemorySettings {
    fn default() -> Self {
        Self {
            namespace: default_memory_namespace(),
            search: Vec::new(),
            recall: DEFAULT_RECALL,
            strategies: Vec::new(),
            share_user_memories: false,
        }
    }
}

impl MemorySettings {
    /// The namespace templates searched.
    pub fn search_namespaces(&self) -> Vec<&str> {
        if self.search.is_empty() {
            vec![self.namespace.as_str()]
        } else {
            self.search.iter().map(String::as_str).collect()
        }
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        let field = |e: ValidationError| ValidationError::new("memory.namespace", e.message);
        validate_namespace_template(&self.namespace).map_err(field)?;
        if self.search.len() > 16 {
            return Err(ValidationError::new(
                "memory.search",
                "at most 16 namespaces",
            ));
        }
        for template in &self.search {
            validate_namespace_template(template)
                .map_err(|e| ValidationError::new("memory.search", e.message))?;
        }
        if self.strategies.len() > 8 {
            return Err(ValidationError::new(
                "memory.strategies",
                "at most 8 strategies",
            ));
        }
        for strategy in &self.strategies {
            if let Some(model) = &strategy.model {
                ModelRoute::parse(model, &[])
                    .map_err(|e| ValidationError::new("memory.strategies.model", e.message))?;
            }
            if let Some(template) = &strategy.namespace {
                validate_namespace_template(template)
                    .map_err(|e| ValidationError::new("memory.strategies.namespace", e.message))?;
            }
            if strategy.prompt.as_ref().is_some_and(|p| p.len() > 20_000) {
                return Err(ValidationError::new(
                    "memory.strategies.prompt",
                    "longer than 20000 bytes",
                ));
            }
        }
        if self.recall > 50 {
            return Err(ValidationError::new(
                "memory.recall",
                "must be between 0 and 50",
            ));
        }
        Ok(())
    }
}

/// Agent names are path segments and CLI arguments: keep them plain.
pub fn validate_agent_name(name: &str) -> Result<(), ValidationError> {
    crate::names::validate_plain_name(name, "agt_")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    pub version: i64,
    pub config: AgentConfig,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a create request carries besides the config.
#[derive(Clone, Debug)]
pub struct NewAgent {
    pub name: String,
    pub config: AgentConfig,
    pub memory_blocks: Vec<MemoryBlockSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_must_be_known_and_listed_once() {
        let mut config = AgentConfig {
            max_running: Default::default(),
            notify: Default::default(),
            description: Default::default(),
            if_busy: Default::default(),
            instructions: String::new(),
            model: "openai/m".into(),
            fallbacks: vec![],
            tools: vec!["a".into(), "b".into()],
            max_steps: DEFAULT_MAX_STEPS,
            context_tokens: DEFAULT_CONTEXT_TOKENS,
            memory: MemorySettings::default(),
            knowledge: vec![],
            knowledge_recall: DEFAULT_KNOWLEDGE_RECALL,
            context: ContextSettings::default(),
            memory_blocks: vec![],
            tool_choice: Default::default(),
        };
        assert!(config.validate(&["a", "b"]).is_ok());
        assert!(config.validate(&["a"]).is_err());
        config.tools.push("a".into());
        let err = config.validate(&["a", "b"]).expect_err("duplicate");
        assert!(err.message.contains("twice"), "{err}");
        config.tools = vec!["mcp:files".into(), "mcp:files/read".into()];
        assert!(config.validate(&["a", "mcp:"]).is_ok());
        assert!(config.validate(&["a"]).is_err(), "no provider for mcp:");
        config.tools = vec!["mcp:".into()];
        assert!(
            config.validate(&["mcp:"]).is_err(),
            "a scheme names something"
        );
    }

    #[test]
    fn a_required_tool_choice_needs_a_tool() {
        let mut config: AgentConfig = serde_json::from_value(
            serde_json::json!({"instructions": "", "model": "openai/m", "tool_choice": "required"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let err = config.validate(&["a"]).expect_err("no tools");
        assert_eq!(err.field, "tool_choice");
        config.tools = vec!["a".into()];
        assert!(config.validate(&["a"]).is_ok());
        let older: AgentConfig =
            serde_json::from_value(serde_json::json!({"instructions": "", "model": "openai/m"}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            older.tool_choice,
            ToolChoice::Auto,
            "stored versions read as auto"
        );
    }

    #[test]
    fn blocks_are_checked_and_listed_once() {
        use crate::blocks::BlockScope;
        let mut config: AgentConfig =
            serde_json::from_value(serde_json::json!({"instructions": "", "model": "openai/m"}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(config.memory_blocks.is_empty(), "older versions list none");
        let def = |label: &str| BlockDef {
            label: label.into(),
            scope: BlockScope::User,
        };
        config.memory_blocks = vec![def("human"), def("notes")];
        assert!(config.validate::<&str>(&[]).is_ok());
        assert_eq!(
            config.block("human").map(|d| d.scope),
            Some(BlockScope::User)
        );
        config.memory_blocks.push(def("human"));
        let err = config.validate::<&str>(&[]).expect_err("twice");
        assert!(err.message.contains("twice"), "{err}");
        config.memory_blocks = vec![def("no spaces")];
        assert!(config.validate::<&str>(&[]).is_err());
        config.memory_blocks = (0..=MAX_BLOCKS).map(|i| def(&format!("b{i}"))).collect();
        assert!(config.validate::<&str>(&[]).is_err());
    }

    #[test]
    fn names() {
        assert!(validate_agent_name("support-bot_2").is_ok());
        for bad in ["", "-x", "a b", "agt_123", &"a".repeat(65), "ü"] {
            assert!(validate_agent_name(bad).is_err(), "{bad}");
        }
    }
}
