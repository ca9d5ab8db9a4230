//! Agents and their versioned configuration.

use crate::memory::MemoryBlockSpec;
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

    pub fn validate(&self, known_tools: &[&str]) -> Result<(), ValidationError> {
        self.route()?;
        if self.instructions.len() > 200_000 {
            return Err(ValidationError::new(
                "instructions",
                "longer than 200000 bytes",
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
        for (i, tool) in self.tools.iter().enumerate() {
            if self.tools[..i].contains(tool) {
                return Err(ValidationError::new(
                    "tools",
                    format!("tool `{tool}` is listed twice"),
                ));
            }
            if !known_tools.contains(&tool.as_str()) {
                return Err(ValidationError::new(
                    "tools",
                    format!(
                        "unknown tool `{tool}`; known tools: {}",
                        known_tools.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Agent names are path segments and CLI arguments: keep them plain.
pub fn validate_agent_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && !name.starts_with("agt_");
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "name",
            "must be 1-64 characters of letters, digits, '-', '_' or '.', starting with a letter or digit (and not `agt_`)",
        ))
    }
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
            instructions: String::new(),
            model: "openai/m".into(),
            fallbacks: vec![],
            tools: vec!["a".into(), "b".into()],
            max_steps: DEFAULT_MAX_STEPS,
            context_tokens: DEFAULT_CONTEXT_TOKENS,
        };
        assert!(config.validate(&["a", "b"]).is_ok());
        assert!(config.validate(&["a"]).is_err());
        config.tools.push("a".into());
        let err = config.validate(&["a", "b"]).expect_err("duplicate");
        assert!(err.message.contains("twice"), "{err}");
    }

    #[test]
    fn names() {
        assert!(validate_agent_name("support-bot_2").is_ok());
        for bad in ["", "-x", "a b", "agt_123", &"a".repeat(65), "ü"] {
            assert!(validate_agent_name(bad).is_err(), "{bad}");
        }
    }
}
