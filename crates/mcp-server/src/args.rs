//! Each tool's arguments as a type: the JSON Schema clients see is derived
//! from it (never written beside it), and the same type reads a call's
//! arguments, so the two cannot drift apart. Unknown fields are refused,
//! as the API refuses them, so a caller learns of a misspelt field instead
//! of having it ignored.

use crate::error::ToolError;
use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

// Doc comments below are the descriptions clients show, one line each
// (schemars keeps line breaks).

/// `ask_NAME`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = absent_not_null)]
pub(crate) struct Ask {
    /// What to ask the agent, with everything it needs to know.
    pub message: String,
    /// A session of this agent to continue (`ses_…`, the `session` of an earlier answer); a new session when omitted.
    #[serde(default)]
    pub session: Option<String>,
    /// Who a new session works for, so the agent's memories of that user follow them across sessions; a key bound to a user may only name its own.
    #[serde(default)]
    pub user: Option<String>,
}

/// `continue_session`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Continue {
    /// The session to continue (`ses_…`, the `session` of an earlier answer).
    pub session: String,
    /// What to say next.
    pub message: String,
}

/// `knowledge_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = absent_not_null)]
pub(crate) struct KnowledgeSearch {
    /// What to look for, in words.
    pub query: String,
    /// Knowledge source names; every source of the tenant when omitted.
    #[serde(default)]
    pub sources: Vec<String>,
    /// How many passages, 1-100 (default 5).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<usize>,
}

/// `memory_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = absent_not_null)]
pub(crate) struct MemorySearch {
    /// What to look for, in words.
    pub query: String,
    /// Memory namespaces to search (at most 32), e.g. `users/ada`; for a key bound to a user, that user's `users/NAME` when omitted.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// How many records, 1-100 (default 10).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<usize>,
}

/// What an agent's answer carries besides its text (`structuredContent`):
/// enough to continue the conversation and to find the run.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(transform = absent_not_null)]
pub(crate) struct Answer {
    /// The session: pass it as `session` to continue the conversation.
    pub session: String,
    /// The run that answered (`run_…`).
    pub run: String,
    /// `completed`, or where the run stopped.
    pub status: String,
    /// The agent's answer, once it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// Optional fields are ones a caller leaves out, not `null`s to send: their
/// schema names their one type (clients that map tool schemas onto a
/// one-type dialect, as for Gemini, refuse a `["string", "null"]` pair) and
/// no `null` default. A `null` sent anyway still reads as absent.
fn absent_not_null(schema: &mut schemars::Schema) {
    let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for property in properties.values_mut() {
        let Some(property) = property.as_object_mut() else {
            continue;
        };
        if property.get("default").is_some_and(|d| d.is_null()) {
            property.remove("default");
        }
        if let Some(serde_json::Value::Array(types)) = property.get("type") {
            let kept: Vec<&serde_json::Value> = types.iter().filter(|t| *t != "null").collect();
            if let [one] = kept.as_slice() {
                let one = (*one).clone();
                property.insert("type".into(), one);
            }
        }
    }
}

/// Reads a call's arguments as `T`; absent arguments are an empty object.
pub(crate) fn parse<T: DeserializeOwned>(arguments: Option<JsonObject>) -> Result<T, ToolError> {
    let value = serde_json::Value::Object(arguments.unwrap_or_default());
    serde_json::from_value(value)
        .map_err(|e| ToolError::Arguments(roster_core::plain::plain_serde_error(&e.to_string())))
}

/// A message becomes a run's input: not blank, and within what the runtime
/// takes. Checked before anything is stored (a new session included).
pub(crate) fn check_message(message: &str) -> Result<(), ToolError> {
    if message.trim().is_empty() {
        return Err(ToolError::Arguments("`message` must not be empty".into()));
    }
    if message.len() > roster_runtime::MAX_INPUT_BYTES {
        return Err(ToolError::Arguments(format!(
            "`message` is longer than {} bytes",
            roster_runtime::MAX_INPUT_BYTES
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(value: serde_json::Value) -> Option<JsonObject> {
        match value {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        }
    }

    fn refusal<T: std::fmt::Debug>(result: Result<T, ToolError>) -> String {
        match result {
            Err(ToolError::Arguments(message)) => message,
            other => panic!("expected an argument error, got {other:?}"),
        }
    }

    #[test]
    fn an_ask_needs_a_message_and_may_name_a_session_and_a_user() {
        let ask: Ask = parse(args(json!({"message": "hi"}))).expect("minimal");
        assert_eq!(
            (ask.message.as_str(), ask.session, ask.user),
            ("hi", None, None)
        );
        let ask: Ask = parse(args(
            json!({"message": "hi", "session": "ses_1", "user": "ada"}),
        ))
        .expect("full");
        assert_eq!(ask.session.as_deref(), Some("ses_1"));
        assert_eq!(ask.user.as_deref(), Some("ada"));
    }

    #[test]
    fn missing_wrong_typed_and_unknown_arguments_are_named() {
        assert!(refusal(parse::<Ask>(None)).contains("missing field `message`"));
        assert!(refusal(parse::<Ask>(args(json!({})))).contains("`message`"));
        let wrong = refusal(parse::<Ask>(args(json!({"message": 5}))));
        assert!(wrong.contains("invalid type: integer `5`"), "{wrong}");
        let unknown = refusal(parse::<Ask>(args(json!({"message": "m", "sesion": "x"}))));
        assert!(unknown.contains("unknown field `sesion`"), "{unknown}");
        let session = refusal(parse::<Continue>(args(json!({"message": "m"}))));
        assert!(session.contains("missing field `session`"), "{session}");
        let limit = refusal(parse::<KnowledgeSearch>(args(
            json!({"query": "q", "limit": -1}),
        )));
        assert!(limit.contains("invalid value: integer `-1`"), "{limit}");
        // No Rust type name reaches the caller.
        let list = refusal(parse::<MemorySearch>(args(
            json!({"query": "q", "namespaces": "users/ada"}),
        )));
        assert!(!list.contains("Vec") && !list.contains("alloc"), "{list}");
    }

    #[test]
    fn messages_must_say_something_and_fit() {
        assert!(check_message("hello").is_ok());
        assert!(refusal(check_message(" \n")).contains("must not be empty"));
        let huge = "x".repeat(roster_runtime::MAX_INPUT_BYTES + 1);
        assert!(refusal(check_message(&huge)).contains("longer than"));
    }

    #[test]
    fn schemas_come_from_the_types() {
        let ask = rmcp::handler::server::common::schema_for_input::<Ask>().expect("object");
        let value = serde_json::Value::Object(ask.as_ref().clone());
        assert_eq!(value["type"], "object");
        assert_eq!(value["required"], json!(["message"]));
        assert_eq!(value["additionalProperties"], false);
        assert_eq!(value["properties"]["message"]["type"], "string");
        let search =
            rmcp::handler::server::common::schema_for_input::<KnowledgeSearch>().expect("object");
        let value = serde_json::Value::Object(search.as_ref().clone());
        assert_eq!(value["properties"]["limit"]["maximum"], 100);
        let answer = rmcp::handler::server::common::schema_for_output::<Answer>();
        let value = serde_json::Value::Object(answer.as_ref().clone());
        let mut required: Vec<&str> = value["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        required.sort_unstable();
        assert_eq!(required, ["run", "session", "status"]);
        // Optional fields have one type and no `null` default.
        for schema in [
            serde_json::Value::Object(ask.as_ref().clone()),
            value.clone(),
        ] {
            for (name, property) in schema["properties"].as_object().expect("properties") {
                assert!(property["type"].is_string(), "{name}: {property}");
                assert!(
                    property.get("default").is_none_or(|d| !d.is_null()),
                    "{name}"
                );
                assert!(!property["description"]
                    .as_str()
                    .unwrap_or_default()
                    .contains('\n'));
            }
        }
    }
}
