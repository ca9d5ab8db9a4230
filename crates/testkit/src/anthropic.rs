//! Rendering a scripted [`Reply`] in the Anthropic Messages wire format: the
//! `message` JSON body, the named-event SSE stream (`message_start` ...
//! `message_stop`), and the native `{"type": "error", ...}` error body.

use serde_json::{json, Value};

use crate::reply::{Reply, ReplyKind, ScriptedToolCall};
use crate::wire::{split_pieces, split_words, Body, Rendered, RequestInfo, Usage};

/// One content block of the answer.
enum Block<'a> {
    Text(&'a str),
    ToolUse(&'a ScriptedToolCall),
}

/// Renders a reply for an Anthropic request.
pub(crate) fn render(reply: &Reply, info: &RequestInfo) -> Rendered {
    let usage = Usage::of(reply);
    match &reply.kind {
        ReplyKind::Message { text, tool_calls } => {
            let mut blocks = Vec::new();
            if let Some(text) = text.as_deref() {
                if !text.is_empty() || tool_calls.is_empty() {
                    blocks.push(Block::Text(text));
                }
            }
            blocks.extend(tool_calls.iter().map(Block::ToolUse));
            let stop = if tool_calls.is_empty() {
                "end_turn"
            } else {
                "tool_use"
            };
            respond(&blocks, stop, usage, info)
        }
        ReplyKind::EmptyChoices => respond(&[], "end_turn", usage, info),
        ReplyKind::Error { status, message } => error(*status, message),
        ReplyKind::ContextOverflow => error_of(
            400,
            "invalid_request_error",
            "prompt is too long: 250000 tokens > 200000 maximum",
        ),
        ReplyKind::Raw {
            status,
            content_type,
            body,
        } => Rendered {
            status: *status,
            headers: Vec::new(),
            body: Body::Whole {
                content_type: content_type.clone(),
                bytes: body.clone().into_bytes(),
            },
        },
    }
}

/// An Anthropic-format error with this status; the error `type` follows the
/// status the way the real API does (429 rate limit, 529 overloaded, ...).
pub(crate) fn error(status: u16, message: &str) -> Rendered {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    error_of(status, kind, message)
}

fn error_of(status: u16, kind: &str, message: &str) -> Rendered {
    Rendered::json(
        status,
        &json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

fn respond(blocks: &[Block<'_>], stop: &str, usage: Usage, info: &RequestInfo) -> Rendered {
    if info.stream {
        return stream(blocks, stop, usage, info);
    }
    let content: Vec<Value> = blocks
        .iter()
        .map(|b| match b {
            Block::Text(text) => json!({"type": "text", "text": text}),
            Block::ToolUse(call) => json!({"type": "tool_use", "id": call.id,
                                           "name": call.name, "input": input_of(call)}),
        })
        .collect();
    let mut message = message(info, Value::Array(content), Value::from(stop));
    message["usage"] = json!({"input_tokens": usage.input, "output_tokens": usage.output});
    Rendered::json(200, &message)
}

/// The tool input as a JSON value: the parsed arguments, `{}` for empty
/// arguments, or the raw string when it is not JSON (so the client sees an
/// input that is not an object).
fn input_of(call: &ScriptedToolCall) -> Value {
    if call.arguments.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(&call.arguments).unwrap_or_else(|_| Value::from(call.arguments.clone()))
}

fn message(info: &RequestInfo, content: Value, stop: Value) -> Value {
    json!({
        "id": format!("msg_fake{}", info.seq),
        "type": "message",
        "role": "assistant",
        "model": info.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
    })
}

fn stream(blocks: &[Block<'_>], stop: &str, usage: Usage, info: &RequestInfo) -> Rendered {
    let mut start = message(info, json!([]), Value::Null);
    start["usage"] = json!({"input_tokens": usage.input, "output_tokens": 1});
    let mut events = vec![
        event(
            "message_start",
            &json!({"type": "message_start", "message": start}),
        ),
        event("ping", &json!({"type": "ping"})),
    ];
    for (index, block) in blocks.iter().enumerate() {
        let (content_block, deltas) = match block {
            Block::Text(text) => (
                json!({"type": "text", "text": ""}),
                split_words(text)
                    .into_iter()
                    .map(|p| json!({"type": "text_delta", "text": p}))
                    .collect::<Vec<_>>(),
            ),
            Block::ToolUse(call) => (
                json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}),
                split_pieces(&call.arguments, 3)
                    .into_iter()
                    .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                    .collect(),
            ),
        };
        events.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": content_block}),
        ));
        for delta in deltas {
            events.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        events.push(event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }
    events.push(event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"output_tokens": usage.output}}),
    ));
    events.push(event("message_stop", &json!({"type": "message_stop"})));
    Rendered::events(events)
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}
