//! Neutral request and response types: the conversation as the runtime hands
//! it to any provider, and the answer as any provider returns it.
//!
//! Owns no wire format. Must never grow provider-specific fields: each
//! provider module converts from and to these types.

pub use roster_core::agent::ToolChoice;
use roster_core::item::ToolCall;
use serde::{Deserialize, Serialize};

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// A JSON Schema object describing the arguments.
    pub parameters: serde_json::Value,
}

/// One message of the conversation as sent to a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ChatMessage {
    User {
        text: String,
    },
    Assistant {
        text: String,
        #[serde(default)]
        tool_calls: Vec<ToolCall>,
    },
    ToolResult {
        call_id: String,
        name: String,
        output: String,
        is_error: bool,
    },
}

/// One model call. `model` is the provider's model name (the part of a route
/// after `provider/`); the router overwrites it per target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    /// `Required`: the answer must call one of `tools`.
    #[serde(default)]
    pub tool_choice: ToolChoice,
    pub max_tokens: Option<u32>,
    pub stream: bool,
}

/// Tokens a call consumed, as the provider reported them (zeros if it did not).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// What the model answered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    /// The provider's own word for why it stopped (`stop`, `tool_calls`,
    /// `end_turn`, `tool_use`, `length`, `max_tokens`, ...).
    pub stop_reason: Option<String>,
}

/// Saturating conversion of a wire token count.
pub(crate) fn tokens(n: Option<u64>) -> u32 {
    n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}
