//! Anthropic Messages wire format: the request body, the JSON response parsed
//! into a `ChatResponse`, and error statuses and error types classified into
//! `ProviderError`s.
//!
//! Owns no I/O and no streaming (see `stream.rs`); message shaping lives in
//! `convert.rs`. Must never unwrap a value that came off the network.

use super::convert;
use crate::error::ProviderError;
use crate::error_body::{quote, retry_after, ErrorBody};
use crate::request::{tokens, ChatRequest, ChatResponse, ToolChoice, Usage};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use roster_core::item::ToolCall;
use serde::Deserialize;
use serde_json::{json, Value};

pub(crate) fn request_body(req: &ChatRequest, max_tokens: u32, stream: bool) -> Value {
    let mut body = json!({
        "model": req.model,
        "max_tokens": max_tokens,
        "messages": convert::messages(&req.messages),
    });
    if !req.system.is_empty() {
        body["system"] = json!(req.system);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        if req.tool_choice == ToolChoice::Required {
            body["tool_choice"] = json!({"type": "any"});
        }
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// Token counts; cached prompt tokens count as input.
#[derive(Deserialize, Default)]
pub(crate) struct WireUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// All input tokens, cached ones included; `None` when none were reported.
    pub(crate) fn input(&self) -> Option<u64> {
        let parts = [
            self.input_tokens,
            self.cache_creation_input_tokens,
            self.cache_read_input_tokens,
        ];
        parts
            .iter()
            .any(Option::is_some)
            .then(|| parts.iter().flatten().sum())
    }
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<Vec<Value>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// Tool arguments as a string: the input re-serialised (a string input, which
/// some servers send for arguments that are not JSON, is kept as it is).
pub(crate) fn arguments(input: &Value) -> String {
    match input {
        Value::Null => "{}".to_owned(),
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn parse_response(body: &str) -> Result<ChatResponse, ProviderError> {
    let value: Value = serde_json::from_str(body)
        .map_err(|e| ProviderError::invalid(format!("not a message ({e}): {}", quote(body))))?;
    if value["type"] == "error" {
        return Err(stream_error(&value));
    }
    let message: Message = serde_json::from_value(value)
        .map_err(|e| ProviderError::invalid(format!("not a message ({e}): {}", quote(body))))?;
    let content = message.content.ok_or_else(|| {
        ProviderError::invalid(format!("message without content: {}", quote(body)))
    })?;
    let mut response = ChatResponse {
        stop_reason: message.stop_reason,
        ..ChatResponse::default()
    };
    for block in content {
        match block["type"].as_str() {
            Some("text") => response
                .text
                .push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => response.tool_calls.push(ToolCall {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                arguments: arguments(&block["input"]),
            }),
            _ => {} // thinking and other blocks carry nothing the runtime keeps
        }
    }
    if let Some(usage) = message.usage {
        response.usage = Usage {
            input_tokens: tokens(usage.input()),
            output_tokens: tokens(usage.output_tokens),
        };
    }
    Ok(response)
}

fn is_prompt_too_long(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("prompt is too long") || message.contains("context window")
}

/// Maps Anthropic's error `type` (from a body or an `error` event).
fn from_type(
    kind: &str,
    message: String,
    retry_after: Option<std::time::Duration>,
) -> Option<ProviderError> {
    Some(match kind {
        "overloaded_error" | "rate_limit_error" => ProviderError::RateLimited {
            retry_after,
            message,
        },
        "api_error" => ProviderError::Transient { message },
        "timeout_error" => ProviderError::Timeout { message },
        "authentication_error" | "permission_error" => ProviderError::Auth { message },
        "request_too_large" => ProviderError::ContextOverflow { message },
        "invalid_request_error" if is_prompt_too_long(&message) => {
            ProviderError::ContextOverflow { message }
        }
        "not_found_error" => ProviderError::NotFound { message },
        "invalid_request_error" => ProviderError::BadRequest { message },
        _ => return None,
    })
}

/// An `error` event (or a 200 body of type `error`); unknown types are
/// `Transient`.
pub(crate) fn stream_error(value: &Value) -> ProviderError {
    let parsed = ErrorBody::from_value(value).unwrap_or_default();
    let message = if parsed.message.is_empty() {
        "error event without a message".to_owned()
    } else {
        parsed.message
    };
    let kind = parsed.kind.unwrap_or_default();
    from_type(&kind, message.clone(), None).unwrap_or(ProviderError::Transient { message })
}

/// Maps an error status and body to a `ProviderError`.
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, body: &str) -> ProviderError {
    let parsed = ErrorBody::parse(body);
    let message = parsed.describe(status);
    match status.as_u16() {
        429 | 529 => ProviderError::RateLimited {
            retry_after: retry_after(headers),
            message,
        },
        401 | 403 => ProviderError::Auth { message },
        404 => ProviderError::NotFound { message },
        408 => ProviderError::Timeout { message },
        413 => ProviderError::ContextOverflow { message },
        400..=499 if is_prompt_too_long(&parsed.message) => {
            ProviderError::ContextOverflow { message }
        }
        400..=499 => ProviderError::BadRequest { message },
        500..=599 => ProviderError::Transient { message },
        _ => ProviderError::InvalidResponse { message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ToolChoice, ToolSpec};

    #[test]
    fn a_required_tool_choice_is_any_tool() {
        let mut req = ChatRequest {
            tools: vec![ToolSpec {
                name: "lookup".into(),
                description: "d".into(),
                parameters: json!({"type": "object"}),
            }],
            ..ChatRequest::default()
        };
        assert!(request_body(&req, 10, false).get("tool_choice").is_none());
        req.tool_choice = ToolChoice::Required;
        assert_eq!(
            request_body(&req, 10, false)["tool_choice"],
            json!({"type": "any"})
        );
    }

    #[test]
    fn parses_text_and_tool_use_blocks() {
        let body = json!({"type": "message", "content": [
            {"type": "text", "text": "Hi "}, {"type": "thinking", "thinking": "..."},
            {"type": "text", "text": "there"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": [1]}}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 3, "cache_read_input_tokens": 10, "output_tokens": 4}});
        let r = parse_response(&body.to_string()).expect("parses");
        assert_eq!(r.text, "Hi there");
        assert_eq!(r.tool_calls[0].arguments, r#"{"a":[1]}"#);
        assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (13, 4));
        assert!(matches!(
            parse_response("{}"),
            Err(ProviderError::InvalidResponse { .. })
        ));
    }

    #[test]
    fn classifies_statuses_and_error_types() {
        let none = HeaderMap::new();
        let long = r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}}"#;
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, &none, long).code(),
            "provider_context_overflow"
        );
        assert_eq!(
            classify(StatusCode::PAYLOAD_TOO_LARGE, &none, "").code(),
            "provider_context_overflow"
        );
        let overloaded = StatusCode::from_u16(529).expect("valid");
        assert_eq!(
            classify(overloaded, &none, "").code(),
            "provider_rate_limited"
        );
        let event = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert_eq!(stream_error(&event).code(), "provider_rate_limited");
        let event = json!({"type": "error", "error": {"type": "api_error", "message": "boom"}});
        assert_eq!(stream_error(&event).code(), "provider_transient");
    }
}
