//! OpenAI chat-completions wire format: the request body built from a neutral
//! `ChatRequest`, the JSON response parsed into a `ChatResponse`, and error
//! statuses classified into `ProviderError`s.
//!
//! Owns no I/O and no streaming (see `stream.rs`). Must never unwrap a value
//! that came off the network.

use crate::error::ProviderError;
use crate::error_body::{quote, retry_after, ErrorBody};
use crate::request::{tokens, ChatMessage, ChatRequest, ChatResponse, ToolChoice, Usage};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use roster_core::item::ToolCall;
use serde::Deserialize;
use serde_json::{json, Value};

/// The request body. `max_tokens` is sent only when set (the plain field, not
/// `max_completion_tokens`, so that local servers understand it).
pub(crate) fn request_body(req: &ChatRequest, max_tokens: Option<u32>, stream: bool) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    messages.extend(req.messages.iter().map(message));
    let mut body = json!({"model": req.model, "messages": messages});
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
        if req.tool_choice == ToolChoice::Required {
            body["tool_choice"] = json!("required");
        }
    }
    if let Some(max) = max_tokens {
        body["max_tokens"] = json!(max);
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn message(m: &ChatMessage) -> Value {
    match m {
        ChatMessage::User { text } => json!({"role": "user", "content": text}),
        ChatMessage::Assistant { text, tool_calls } if tool_calls.is_empty() => {
            json!({"role": "assistant", "content": text})
        }
        ChatMessage::Assistant { text, tool_calls } => {
            let calls: Vec<Value> = tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                           "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
            let content = if text.is_empty() {
                Value::Null
            } else {
                json!(text)
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        ChatMessage::ToolResult {
            call_id, output, ..
        } => json!({"role": "tool", "tool_call_id": call_id, "content": output}),
    }
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Value,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: String,
    #[serde(default)]
    arguments: Value,
}

#[derive(Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl WireUsage {
    pub(crate) fn usage(&self) -> Usage {
        Usage {
            input_tokens: tokens(self.prompt_tokens),
            output_tokens: tokens(self.completion_tokens),
        }
    }
}

/// `content` as a string: a string, null, or an array of `{type:"text",text}`
/// parts (some servers).
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str).or_else(|| p.as_str()))
            .collect(),
        _ => String::new(),
    }
}

/// Arguments as the raw string the model produced (some servers send an
/// object instead of a string: it is re-serialised).
pub(crate) fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A tool-call id, made up from the position when the server sent none.
pub(crate) fn call_id(id: Option<String>, position: usize) -> String {
    id.filter(|id| !id.is_empty())
        .unwrap_or_else(|| format!("call_{position}"))
}

/// Parses a non-stream response body.
pub(crate) fn parse_response(body: &str) -> Result<ChatResponse, ProviderError> {
    let completion: Completion = serde_json::from_str(body).map_err(|e| {
        ProviderError::invalid(format!("not a chat completion ({e}): {}", quote(body)))
    })?;
    let Some(choice) = completion.choices.and_then(|c| c.into_iter().next()) else {
        let why = completion
            .error
            .as_ref()
            .and_then(ErrorBody::from_value)
            .map_or_else(|| "no choices in response".to_owned(), |e| e.message);
        return Err(ProviderError::invalid(why));
    };
    let message = choice
        .message
        .ok_or_else(|| ProviderError::invalid("choice without a message"))?;
    let tool_calls = message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, c)| ToolCall {
            id: call_id(c.id, i),
            name: c.function.name,
            arguments: arguments_text(&c.function.arguments),
        })
        .collect();
    Ok(ChatResponse {
        text: content_text(&message.content),
        tool_calls,
        usage: completion.usage.map(|u| u.usage()).unwrap_or_default(),
        stop_reason: choice.finish_reason,
    })
}

/// Whether an error body says the prompt is too long.
pub(crate) fn is_overflow(body: &ErrorBody) -> bool {
    let message = body.message.to_ascii_lowercase();
    body.code.as_deref() == Some("context_length_exceeded")
        || message.contains("maximum context length")
        || message.contains("context_length_exceeded")
        || message.contains("context window")
}

/// Maps an error status and body to a `ProviderError`.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> ProviderError {
    let parsed = ErrorBody::parse(body);
    let message = parsed.describe(status);
    match status.as_u16() {
        429 => ProviderError::RateLimited {
            retry_after: retry_after(headers),
            message,
        },
        401 | 403 => ProviderError::Auth { message },
        404 => ProviderError::NotFound { message },
        408 => ProviderError::Timeout { message },
        413 => ProviderError::ContextOverflow { message },
        400..=499 if is_overflow(&parsed) => ProviderError::ContextOverflow { message },
        400..=499 => ProviderError::BadRequest { message },
        500..=599 => ProviderError::Transient { message },
        _ => ProviderError::InvalidResponse { message },
    }
}
