//! What a run asks beyond one user message, for surfaces that speak in
//! items (the OpenAI Responses API): several input items, instructions for
//! this run only, and tools the caller runs itself.

use crate::item::ItemContent;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most input items one run may append.
pub const MAX_TURN_ITEMS: usize = 1000;
/// Most client tools one run may offer.
pub const MAX_CLIENT_TOOLS: usize = 128;

/// A run's request beyond its `input`, stored with the run so a restart
/// runs it the same way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Turn {
    /// Appended to the session when the run starts, in place of one user
    /// message made of `input`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemContent>,
    /// Said to the model after the agent's own instructions, for this run
    /// only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Tools the caller runs itself. When the model calls one, the run ends
    /// with the call unanswered; the caller's next input carries its result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_tools: Vec<ClientTool>,
    /// The route (`provider/model`) this run's model calls take instead of
    /// its agent's: a call addressed to a model rather than an agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Whether the model must, may or must not call a tool in this run's
    /// first model call (`None`: the agent's own `tool_choice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<TurnToolChoice>,
    /// The surface's own record of the request (what it echoes back),
    /// opaque to the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub surface: Option<serde_json::Value>,
}

impl Turn {
    pub fn is_client_tool(&self, name: &str) -> bool {
        self.client_tools.iter().any(|t| t.name == name)
    }

    /// The text a run of these items is listed with: its user messages.
    pub fn input_text(&self) -> String {
        let texts: Vec<&str> = self
            .items
            .iter()
            .filter_map(|i| match i {
                ItemContent::UserMessage { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n\n")
    }

    /// Checks sizes and names; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.items.len() > MAX_TURN_ITEMS {
            return Err(format!(
                "input: at most {MAX_TURN_ITEMS} items in one request"
            ));
        }
        if self.client_tools.len() > MAX_CLIENT_TOOLS {
            return Err(format!("tools: at most {MAX_CLIENT_TOOLS} tools"));
        }
        let mut seen = std::collections::HashSet::new();
        for tool in &self.client_tools {
            if !valid_tool_name(&tool.name) {
                return Err(format!(
                    "tools: `{}` is not a valid function name (1-64 of a-z, A-Z, 0-9, _ and -)",
                    tool.name
                ));
            }
            if !seen.insert(tool.name.as_str()) {
                return Err(format!("tools: `{}` is given twice", tool.name));
            }
            if !tool.parameters.is_object() {
                return Err(format!(
                    "tools: the parameters of `{}` must be a JSON Schema object",
                    tool.name
                ));
            }
        }
        Ok(())
    }
}

/// A request's `tool_choice`: `required` holds the run's first model call
/// to calling a tool (as an agent's `tool_choice: required` does); `none`
/// offers the model no tool in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TurnToolChoice {
    Auto,
    Required,
    None,
}

/// A function the caller runs (the model sees it like any tool).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClientTool {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
}

/// The names model providers accept for functions.
pub fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn tool(name: &str) -> ClientTool {
        ClientTool {
            name: name.into(),
            description: String::new(),
            parameters: json!({"type": "object"}),
        }
    }

    #[test]
    fn names_and_duplicates_are_checked() {
        let mut turn = Turn {
            client_tools: vec![tool("get_weather"), tool("lookup-2")],
            ..Turn::default()
        };
        assert!(turn.validate().is_ok());
        turn.client_tools.push(tool("get_weather"));
        assert!(turn.validate().unwrap_err().contains("twice"));
        turn.client_tools = vec![tool("bad name")];
        assert!(turn.validate().unwrap_err().contains("not a valid"));
        turn.client_tools = vec![ClientTool {
            parameters: json!([]),
            ..tool("f")
        }];
        assert!(turn.validate().unwrap_err().contains("JSON Schema object"));
    }

    #[test]
    fn input_text_joins_the_user_messages() {
        let turn = Turn {
            items: vec![
                ItemContent::SystemNote {
                    text: "be brief".into(),
                },
                ItemContent::UserMessage { text: "a".into() },
                ItemContent::UserMessage { text: "b".into() },
            ],
            ..Turn::default()
        };
        assert_eq!(turn.input_text(), "a\n\nb");
    }
}
