//! Rendering a scripted [`Reply`] in the OpenAI Chat Completions wire format:
//! the `chat.completion` JSON body, the `chat.completion.chunk` SSE stream
//! ending in `data: [DONE]`, and the native `{"error": {...}}` error body.

use serde_json::{json, Value};

use crate::reply::{Reply, ReplyKind, ScriptedToolCall};
use crate::wire::{now_unix, split_pieces, split_words, Body, Rendered, RequestInfo, Usage};

/// Renders a reply for an OpenAI request.
pub(crate) fn render(reply: &Reply, info: &RequestInfo) -> Rendered {
    let usage = Usage::of(reply);
    match &reply.kind {
        ReplyKind::Message { text, tool_calls } => {
            if info.stream {
                stream(text.as_deref(), tool_calls, usage, info)
            } else {
                Rendered::json(200, &completion(text.as_deref(), tool_calls, usage, info))
            }
        }
        ReplyKind::EmptyChoices => {
            if info.stream {
                let mut chunk = envelope(info, "chat.completion.chunk");
                chunk["choices"] = json!([]);
                if info.include_usage {
                    chunk["usage"] = usage_json(usage);
                }
                Rendered::events(vec![data(&chunk), done()])
            } else {
                let mut body = envelope(info, "chat.completion");
                body["choices"] = json!([]);
                body["usage"] = usage_json(usage);
                Rendered::json(200, &body)
            }
        }
        ReplyKind::Error { status, message } => error(*status, message),
        ReplyKind::ContextOverflow => Rendered::json(
            400,
            &json!({"error": {
                "message": "This model's maximum context length is 128000 tokens. However, your \
                            messages resulted in 250000 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }}),
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

/// An OpenAI-format error with this status: `type` and `code` follow the
/// status the way the real API does (429 rate limit, 401 bad key, 5xx server).
pub(crate) fn error(status: u16, message: &str) -> Rendered {
    let (kind, code) = match status {
        429 => ("rate_limit_exceeded", Value::from("rate_limit_exceeded")),
        401 => ("invalid_request_error", Value::from("invalid_api_key")),
        500..=599 => ("server_error", Value::Null),
        _ => ("invalid_request_error", Value::Null),
    };
    Rendered::json(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

fn envelope(info: &RequestInfo, object: &str) -> Value {
    json!({
        "id": format!("chatcmpl-fake{}", info.seq),
        "object": object,
        "created": now_unix(),
        "model": info.model,
    })
}

fn usage_json(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": u64::from(usage.input) + u64::from(usage.output),
    })
}

fn finish_reason(tool_calls: &[ScriptedToolCall]) -> &'static str {
    if tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    }
}

fn completion(
    text: Option<&str>,
    tool_calls: &[ScriptedToolCall],
    usage: Usage,
    info: &RequestInfo,
) -> Value {
    let mut message = json!({"role": "assistant", "content": text});
    if !tool_calls.is_empty() {
        let calls: Vec<Value> = tool_calls
            .iter()
            .map(|c| {
                json!({"id": c.id, "type": "function",
                       "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    let mut body = envelope(info, "chat.completion");
    body["choices"] = json!([{
        "index": 0,
        "message": message,
        "logprobs": null,
        "finish_reason": finish_reason(tool_calls),
    }]);
    body["usage"] = usage_json(usage);
    body
}

fn stream(
    text: Option<&str>,
    tool_calls: &[ScriptedToolCall],
    usage: Usage,
    info: &RequestInfo,
) -> Rendered {
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut c = envelope(info, "chat.completion.chunk");
        c["choices"] =
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
        data(&c)
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        for piece in split_words(text) {
            events.push(chunk(json!({"content": piece}), None));
        }
    }
    for (index, call) in tool_calls.iter().enumerate() {
        events.push(chunk(
            json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                   "function": {"name": call.name, "arguments": ""}}]}),
            None,
        ));
        for piece in split_pieces(&call.arguments, 3) {
            events.push(chunk(
                json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                None,
            ));
        }
    }
    events.push(chunk(json!({}), Some(finish_reason(tool_calls))));
    if info.include_usage {
        let mut last = envelope(info, "chat.completion.chunk");
        last["choices"] = json!([]);
        last["usage"] = usage_json(usage);
        events.push(data(&last));
    }
    events.push(done());
    Rendered::events(events)
}

fn data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

fn done() -> String {
    "data: [DONE]\n\n".to_owned()
}
