//! Session items: the append-only conversation a session holds.

use crate::RunId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A tool call as the model asked for it. `arguments` is kept as the raw
/// string the model produced: it may not even be JSON, and the model must be
/// told so rather than the run failing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// What an item says. The `type` tag is part of the stored format and the API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ItemContent {
    UserMessage {
        text: String,
    },
    AssistantMessage {
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    ToolResult {
        call_id: String,
        name: String,
        output: String,
        is_error: bool,
    },
    SystemNote {
        text: String,
    },
    /// An item of a kind Roster does not act on (a surface that speaks
    /// more item types sent it), kept as it came; the model does not see it.
    Opaque {
        #[schema(value_type = Object)]
        item: serde_json::Value,
    },
}

impl ItemContent {
    pub fn kind(&self) -> &'static str {
        match self {
            ItemContent::UserMessage { .. } => "user_message",
            ItemContent::AssistantMessage { .. } => "assistant_message",
            ItemContent::ToolResult { .. } => "tool_result",
            ItemContent::SystemNote { .. } => "system_note",
            ItemContent::Opaque { .. } => "opaque",
        }
    }

    pub fn token_estimate(&self) -> u32 {
        let text_tokens = match self {
            ItemContent::UserMessage { text } | ItemContent::SystemNote { text } => {
                crate::tokens::estimate_tokens(text)
            }
            ItemContent::AssistantMessage { text, tool_calls } => {
                tool_calls
                    .iter()
                    .fold(crate::tokens::estimate_tokens(text), |sum, c| {
                        sum.saturating_add(crate::tokens::estimate_tokens(&c.arguments))
                            .saturating_add(crate::tokens::estimate_tokens(&c.name))
                    })
            }
            ItemContent::ToolResult { output, .. } => crate::tokens::estimate_tokens(output),
            // Never sent to a model.
            ItemContent::Opaque { .. } => 0,
        };
        text_tokens
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    pub seq: i64,
    pub run_id: Option<RunId>,
    #[serde(flatten)]
    pub content: ItemContent,
    pub tokens: u32,
    pub created_at: DateTime<Utc>,
}
