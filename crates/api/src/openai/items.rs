//! Items between the two vocabularies: OpenAI input items into Roster
//! session items, and Roster items out as OpenAI items.
//!
//! One Roster item is one OpenAI item, except an assistant reply, which is
//! a `message` (when it has text) followed by one item per tool call. Ids
//! name the item's `seq` in its session (`msg_12`, `fc_12_0`, `fco_13`,
//! `item_14`), so a conversation's ids are stable and its cursor is a seq.

use roster_core::item::{Item, ItemContent, ToolCall};
use serde_json::{json, Map, Value};

/// Why an input cannot be taken, said to the caller (`param` names where).
#[derive(Debug)]
pub struct Refused {
    pub param: String,
    pub message: String,
}

fn refused(param: impl Into<String>, message: impl Into<String>) -> Refused {
    Refused {
        param: param.into(),
        message: message.into(),
    }
}

/// `input` (a string or a list of items) as session items. Consecutive
/// function calls join one assistant reply, as providers expect them;
/// a call's output takes its name from its call, here or in `earlier`.
pub fn parse_input(input: &Value, earlier: &[Item]) -> Result<Vec<ItemContent>, Refused> {
    let list = match input {
        Value::String(text) => return Ok(vec![ItemContent::UserMessage { text: text.clone() }]),
        Value::Array(list) => list,
        Value::Null => return Ok(Vec::new()),
        _ => {
            return Err(refused(
                "input",
                "input must be a string or a list of items",
            ))
        }
    };
    let mut items: Vec<ItemContent> = Vec::with_capacity(list.len());
    for (index, raw) in list.iter().enumerate() {
        let param = format!("input[{index}]");
        let Some(object) = raw.as_object() else {
            return Err(refused(param, "each input item must be an object"));
        };
        let kind = object.get("type").and_then(Value::as_str);
        match kind {
            None | Some("message") => items.push(message(object, &param)?),
            Some("function_call") => {
                let call = ToolCall {
                    id: text_field(object, "call_id", &param)?,
                    name: text_field(object, "name", &param)?,
                    arguments: object
                        .get("arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}")
                        .to_owned(),
                };
                match items.last_mut() {
                    Some(ItemContent::AssistantMessage { tool_calls, .. }) => tool_calls.push(call),
                    _ => items.push(ItemContent::AssistantMessage {
                        text: String::new(),
                        tool_calls: vec![call],
                    }),
                }
            }
            Some("function_call_output") => {
                let call_id = text_field(object, "call_id", &param)?;
                let output = match object.get("output") {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Array(parts)) => parts_text(parts, &format!("{param}.output"))?,
                    _ => {
                        return Err(refused(
                            format!("{param}.output"),
                            "output must be a string or a list of content parts",
                        ))
                    }
                };
                let name = call_name(&call_id, &items, earlier);
                items.push(ItemContent::ToolResult {
                    call_id,
                    name,
                    output,
                    is_error: false,
                });
            }
            // Kept as they came: a later model or surface may use them.
            Some(_) => items.push(ItemContent::Opaque { item: raw.clone() }),
        }
    }
    Ok(items)
}

/// Whether `input` holds a `function_call_output` whose call is not in
/// it (so the call's name must come from the session's earlier items).
pub fn answers_earlier_calls(input: &Value) -> bool {
    let Some(list) = input.as_array() else {
        return false;
    };
    let kind = |item: &Value, k: &str| item.get("type").and_then(Value::as_str) == Some(k);
    let call_id = |item: &Value| {
        item.get("call_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let calls: std::collections::HashSet<String> = list
        .iter()
        .filter(|i| kind(i, "function_call"))
        .filter_map(call_id)
        .collect();
    list.iter()
        .filter(|i| kind(i, "function_call_output"))
        .any(|i| call_id(i).is_none_or(|id| !calls.contains(&id)))
}

fn text_field(object: &Map<String, Value>, field: &str, param: &str) -> Result<String, Refused> {
    match object.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
        _ => Err(refused(
            format!("{param}.{field}"),
            format!("`{field}` must be a non-empty string"),
        )),
    }
}

fn message(object: &Map<String, Value>, param: &str) -> Result<ItemContent, Refused> {
    let role = object.get("role").and_then(Value::as_str).unwrap_or("user");
    let text = match object.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts_text(parts, &format!("{param}.content"))?,
        _ => {
            return Err(refused(
                format!("{param}.content"),
                "content must be a string or a list of content parts",
            ))
        }
    };
    Ok(match role {
        "user" => ItemContent::UserMessage { text },
        "assistant" => ItemContent::AssistantMessage {
            text,
            tool_calls: Vec::new(),
        },
        "system" | "developer" => ItemContent::SystemNote { text },
        other => {
            return Err(refused(
                format!("{param}.role"),
                format!("role `{other}` is not one of user, assistant, system, developer"),
            ))
        }
    })
}

/// The text of content parts; parts that are not text are refused (no
/// model behind Roster is sent images or files through this surface).
fn parts_text(parts: &[Value], param: &str) -> Result<String, Refused> {
    let mut text = String::new();
    for (index, part) in parts.iter().enumerate() {
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        match (kind, part.get("text").and_then(Value::as_str)) {
            ("input_text" | "output_text" | "text", Some(part_text)) => text.push_str(part_text),
            ("refusal", _) => {
                text.push_str(part.get("refusal").and_then(Value::as_str).unwrap_or(""));
            }
            _ => {
                return Err(refused(
                    format!("{param}[{index}]"),
                    format!(
                        "content part type `{kind}` is not supported; send text (`input_text`)"
                    ),
                ))
            }
        }
    }
    Ok(text)
}

fn call_name(call_id: &str, items: &[ItemContent], earlier: &[Item]) -> String {
    let find = |content: &ItemContent| match content {
        ItemContent::AssistantMessage { tool_calls, .. } => tool_calls
            .iter()
            .find(|c| c.id == call_id)
            .map(|c| c.name.clone()),
        _ => None,
    };
    items
        .iter()
        .rev()
        .find_map(find)
        .or_else(|| earlier.iter().rev().find_map(|i| find(&i.content)))
        .unwrap_or_else(|| "function".to_owned())
}

/// How an assistant's tool call is shown: a `function_call` the caller
/// answers, or a call Roster ran (an `mcp_call` of server `roster`, with
/// its output when known).
pub enum CallView<'a> {
    Function,
    Ran(Option<&'a ItemContent>),
}

/// A Roster item as OpenAI items. `view` says how each of a reply's
/// calls is shown.
pub fn render<'a>(item: &'a Item, view: &dyn Fn(&'a ToolCall) -> CallView<'a>) -> Vec<Value> {
    let seq = item.seq;
    match &item.content {
        ItemContent::UserMessage { text } => vec![input_message(seq, "user", text)],
        ItemContent::SystemNote { text } => vec![input_message(seq, "developer", text)],
        ItemContent::AssistantMessage { text, tool_calls } => {
            let mut out = Vec::with_capacity(tool_calls.len() + 1);
            if !text.is_empty() || tool_calls.is_empty() {
                out.push(output_message(seq, text, "completed"));
            }
            for (index, call) in tool_calls.iter().enumerate() {
                out.push(match view(call) {
                    CallView::Function => function_call(seq, index, call, "completed"),
                    CallView::Ran(result) => ran_call(seq, index, call, result),
                });
            }
            out
        }
        ItemContent::ToolResult {
            call_id, output, ..
        } => vec![json!({
            "type": "function_call_output",
            "id": format!("fco_{seq}"),
            "call_id": call_id,
            "output": output,
            "status": "completed",
        })],
        ItemContent::Opaque { item: raw } => {
            let mut raw = raw.clone();
            if let Some(object) = raw.as_object_mut() {
                object
                    .entry("id")
                    .or_insert_with(|| Value::String(format!("item_{seq}")));
            }
            vec![raw]
        }
    }
}

fn input_message(seq: i64, role: &str, text: &str) -> Value {
    json!({
        "type": "message",
        "id": format!("msg_{seq}"),
        "role": role,
        "status": "completed",
        "content": [{"type": "input_text", "text": text}],
    })
}

pub fn message_id(seq: i64) -> String {
    format!("msg_{seq}")
}

pub fn output_message(seq: i64, text: &str, status: &str) -> Value {
    json!({
        "type": "message",
        "id": message_id(seq),
        "role": "assistant",
        "status": status,
        "content": [output_text(text)],
    })
}

pub fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

pub fn function_call(seq: i64, index: usize, call: &ToolCall, status: &str) -> Value {
    json!({
        "type": "function_call",
        "id": format!("fc_{seq}_{index}"),
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    })
}

pub fn ran_call(seq: i64, index: usize, call: &ToolCall, result: Option<&ItemContent>) -> Value {
    let (output, error) = match result {
        Some(ItemContent::ToolResult {
            output, is_error, ..
        }) if *is_error => (Value::Null, Value::String(output.clone())),
        Some(ItemContent::ToolResult { output, .. }) => {
            (Value::String(output.clone()), Value::Null)
        }
        _ => (Value::Null, Value::Null),
    };
    json!({
        "type": "mcp_call",
        "id": format!("mcp_{seq}_{index}"),
        "server_label": "roster",
        "name": call.name,
        "arguments": call.arguments,
        "output": output,
        "error": error,
        "status": if result.is_some() { "completed" } else { "in_progress" },
    })
}

/// The session `seq` an item id names (`msg_12`, `fc_12_0`, …).
pub fn seq_of(id: &str) -> Option<i64> {
    let (_, rest) = id.split_once('_')?;
    let digits = rest.split('_').next()?;
    digits.parse().ok().filter(|seq: &i64| *seq > 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strings_messages_calls_and_outputs_become_items() {
        let input = json!([
            {"role": "developer", "content": "be brief"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "rain"},
            {"type": "reasoning", "summary": []},
        ]);
        let items = parse_input(&input, &[]).unwrap();
        assert_eq!(items.len(), 5);
        assert!(matches!(&items[0], ItemContent::SystemNote { text } if text == "be brief"));
        assert!(
            matches!(&items[2], ItemContent::AssistantMessage { tool_calls, .. } if tool_calls.len() == 2)
        );
        assert!(
            matches!(&items[3], ItemContent::ToolResult { name, output, .. } if name == "get_weather" && output == "rain")
        );
        assert!(matches!(&items[4], ItemContent::Opaque { .. }));
        assert_eq!(parse_input(&json!("hi"), &[]).unwrap().len(), 1);
    }

    #[test]
    fn bad_input_names_where() {
        let err = parse_input(&json!([{"role": "robot", "content": "x"}]), &[]).unwrap_err();
        assert_eq!(err.param, "input[0].role");
        let err = parse_input(
            &json!([{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.param, "input[0].content[0]");
        let err = parse_input(
            &json!([{"type": "function_call_output", "output": "x"}]),
            &[],
        )
        .unwrap_err();
        assert_eq!(err.param, "input[0].call_id");
        assert!(parse_input(&json!(5), &[]).is_err());
    }

    #[test]
    fn ids_name_their_seq() {
        assert_eq!(seq_of("msg_12"), Some(12));
        assert_eq!(seq_of("fc_12_3"), Some(12));
        assert_eq!(seq_of("msg_x"), None);
        assert_eq!(seq_of("msg_0"), None);
        assert_eq!(seq_of("nothing"), None);
    }
}
