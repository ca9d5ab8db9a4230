//! Conversion of the neutral conversation into Anthropic `messages`: roles
//! strictly alternating, consecutive tool results merged into one user
//! message, tool calls as `tool_use` blocks with a JSON-object `input`.
//!
//! Owns only the shape of the messages. Must never drop a tool call or a tool
//! result, or change the text of any message.

use crate::request::ChatMessage;
use serde_json::{json, Map, Value};

/// What stands in for the opening user turn when a conversation (for example
/// one trimmed from the front) starts with the assistant.
const OPENING_USER_TEXT: &str = "(conversation continues)";

/// The `messages` array: user and assistant turns alternating, user first.
pub(crate) fn messages(conversation: &[ChatMessage]) -> Vec<Value> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in conversation {
        let (role, blocks) = blocks(message);
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    for (role, blocks) in &mut turns {
        if *role == "user" {
            // Tool results must open a user turn, before any text.
            blocks.sort_by_key(|b| b["type"] != "tool_result");
        }
    }
    if turns.first().is_some_and(|(role, _)| *role == "assistant") {
        turns.insert(0, ("user", vec![text_block(OPENING_USER_TEXT)]));
    }
    turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// One neutral message as a role and its content blocks. Empty text makes no
/// block: Anthropic rejects empty text blocks.
fn blocks(message: &ChatMessage) -> (&'static str, Vec<Value>) {
    match message {
        ChatMessage::User { text } => {
            let blocks = (!text.is_empty()).then(|| text_block(text));
            ("user", blocks.into_iter().collect())
        }
        ChatMessage::Assistant { text, tool_calls } => {
            let mut blocks: Vec<Value> = (!text.is_empty())
                .then(|| text_block(text))
                .into_iter()
                .collect();
            blocks.extend(tool_calls.iter().map(|c| {
                json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input(&c.arguments)})
            }));
            ("assistant", blocks)
        }
        ChatMessage::ToolResult {
            call_id,
            output,
            is_error,
            ..
        } => (
            "user",
            vec![
                json!({"type": "tool_result", "tool_use_id": call_id, "content": output, "is_error": is_error}),
            ],
        ),
    }
}

/// The stored arguments as a JSON object; `{}` when they are not one (such a
/// call was already answered with an error result).
fn input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => Value::Object(Map::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_core::item::ToolCall;

    fn user(text: &str) -> ChatMessage {
        ChatMessage::User { text: text.into() }
    }

    fn result(id: &str, output: &str, is_error: bool) -> ChatMessage {
        ChatMessage::ToolResult {
            call_id: id.into(),
            name: "f".into(),
            output: output.into(),
            is_error,
        }
    }

    fn assistant(text: &str, calls: &[(&str, &str)]) -> ChatMessage {
        ChatMessage::Assistant {
            text: text.into(),
            tool_calls: calls
                .iter()
                .map(|(id, args)| ToolCall {
                    id: (*id).into(),
                    name: "f".into(),
                    arguments: (*args).into(),
                })
                .collect(),
        }
    }

    fn roles(messages: &[Value]) -> Vec<&str> {
        messages.iter().filter_map(|m| m["role"].as_str()).collect()
    }

    #[test]
    fn merges_consecutive_tool_results_into_one_user_message() {
        let out = messages(&[
            user("go"),
            assistant("", &[("a", r#"{"x":1}"#), ("b", "not json")]),
            result("a", "1", false),
            result("b", "bad arguments", true),
            user("and then?"),
        ]);
        assert_eq!(roles(&out), ["user", "assistant", "user"]);
        let tool_use = &out[1]["content"];
        assert_eq!(
            tool_use.as_array().map(Vec::len),
            Some(2),
            "no empty text block"
        );
        assert_eq!(tool_use[0]["input"], json!({"x": 1}));
        assert_eq!(tool_use[1]["input"], json!({}));
        let merged = out[2]["content"].as_array().expect("blocks");
        assert_eq!(merged.len(), 3);
        assert_eq!(
            merged[0],
            json!({"type": "tool_result", "tool_use_id": "a", "content": "1", "is_error": false})
        );
        assert_eq!(merged[1]["is_error"], true);
        assert_eq!(merged[2], json!({"type": "text", "text": "and then?"}));
    }

    #[test]
    fn alternates_roles_and_opens_with_user() {
        let out = messages(&[
            assistant("earlier answer", &[]),
            assistant("more", &[]),
            user("a"),
            user(""),
            user("b"),
        ]);
        assert_eq!(roles(&out), ["user", "assistant", "user"]);
        assert_eq!(out[0]["content"][0]["text"], OPENING_USER_TEXT);
        assert_eq!(out[1]["content"].as_array().map(Vec::len), Some(2));
        assert_eq!(out[2]["content"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn tool_results_come_before_text_in_a_user_turn() {
        let out = messages(&[
            user("q"),
            assistant("", &[("a", "{}")]),
            user("interjection"),
            result("a", "r", false),
        ]);
        assert_eq!(roles(&out), ["user", "assistant", "user"]);
        assert_eq!(out[2]["content"][0]["type"], "tool_result");
        assert_eq!(out[2]["content"][1]["type"], "text");
    }
}
