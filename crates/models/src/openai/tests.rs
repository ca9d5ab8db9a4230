//! Unit tests of the OpenAI wire conversion and stream accumulation. Must
//! never touch the network.

use super::stream::Accumulator;
use super::wire::{classify, parse_response, request_body};
use crate::error::ProviderError;
use crate::request::{ChatMessage, ChatRequest, ToolSpec};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use roster_core::item::ToolCall;
use serde_json::json;
use std::sync::Mutex;

fn call(id: &str, args: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: "lookup".into(),
        arguments: args.into(),
    }
}

#[test]
fn request_body_shapes_messages_and_tools() {
    let req = ChatRequest {
        tool_choice: Default::default(),
        model: "gpt".into(),
        system: "be brief".into(),
        messages: vec![
            ChatMessage::User { text: "hi".into() },
            ChatMessage::Assistant {
                text: String::new(),
                tool_calls: vec![call("c1", r#"{"q":1}"#)],
            },
            ChatMessage::ToolResult {
                call_id: "c1".into(),
                name: "lookup".into(),
                output: "42".into(),
                is_error: false,
            },
        ],
        tools: vec![ToolSpec {
            name: "lookup".into(),
            description: "d".into(),
            parameters: json!({"type": "object"}),
        }],
        max_tokens: None,
        stream: true,
    };
    let body = request_body(&req, Some(100), true);
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(body["messages"][2]["content"], json!(null));
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["arguments"],
        r#"{"q":1}"#
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "tool_call_id": "c1", "content": "42"})
    );
    assert_eq!(body["tools"][0]["type"], "function");
    assert!(body.get("tool_choice").is_none(), "auto is the default");
    let required = ChatRequest {
        tool_choice: crate::ToolChoice::Required,
        ..req.clone()
    };
    assert_eq!(
        request_body(&required, None, false)["tool_choice"],
        "required"
    );
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(body["stream_options"]["include_usage"], true);

    let plain = request_body(&ChatRequest::default(), None, false);
    assert!(plain.get("tools").is_none() && plain.get("max_tokens").is_none());
    assert!(plain.get("stream").is_none());
    assert_eq!(plain["messages"], json!([]));
}

#[test]
fn parses_content_parts_and_tool_calls() {
    let body = json!({"choices": [{"message": {
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        "tool_calls": [{"id": "", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]
    }, "finish_reason": "tool_calls"}]});
    let r = parse_response(&body.to_string()).expect("parses");
    assert_eq!(r.text, "ab");
    assert_eq!(r.tool_calls[0].id, "call_0");
    assert_eq!(r.tool_calls[0].arguments, r#"{"x":1}"#);
    assert_eq!(r.usage.input_tokens, 0);
    assert!(matches!(
        parse_response(r#"{"choices":[]}"#),
        Err(ProviderError::InvalidResponse { .. })
    ));
    assert!(matches!(
        parse_response("nope"),
        Err(ProviderError::InvalidResponse { .. })
    ));
}

#[test]
fn accumulates_fragments_by_index() {
    let seen = Mutex::new(String::new());
    let on_text = |t: &str| seen.lock().expect("lock").push_str(t);
    let mut acc = Accumulator::default();
    for data in [
        json!({"choices": [{"delta": {"content": "He"}}]}),
        json!({"choices": [{"delta": {"content": "llo"}}]}),
        json!({"choices": [{"delta": {"tool_calls": [
            {"index": 0, "id": "a", "function": {"name": "f", "arguments": "{\"x\""}},
            {"index": 1, "id": "b", "function": {"name": "g", "arguments": ""}}]}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}}]}),
        json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]}),
        json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}),
    ] {
        acc.apply(&data.to_string(), &on_text).expect("applies");
    }
    let r = acc.into_response();
    assert_eq!(seen.lock().expect("lock").as_str(), "Hello");
    assert_eq!(r.text, "Hello");
    assert_eq!(
        r.tool_calls,
        vec![
            ToolCall {
                id: "a".into(),
                name: "f".into(),
                arguments: r#"{"x":1}"#.into()
            },
            ToolCall {
                id: "b".into(),
                name: "g".into(),
                arguments: "{}".into()
            },
        ]
    );
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (5, 7));
    assert_eq!(r.stop_reason.as_deref(), Some("tool_calls"));
}

#[test]
fn classifies_statuses() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("2"));
    let e = classify(
        StatusCode::TOO_MANY_REQUESTS,
        &headers,
        r#"{"error":{"message":"slow"}}"#,
    );
    assert!(
        matches!(e, ProviderError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 2)
    );
    let none = HeaderMap::new();
    let overflow = r#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#;
    assert_eq!(
        classify(StatusCode::BAD_REQUEST, &none, overflow).code(),
        "provider_context_overflow"
    );
    let vllm = r#"{"message":"This model's maximum context length is 4096 tokens"}"#;
    assert_eq!(
        classify(StatusCode::BAD_REQUEST, &none, vllm).code(),
        "provider_context_overflow"
    );
    assert_eq!(
        classify(StatusCode::BAD_REQUEST, &none, "x").code(),
        "provider_bad_request"
    );
    assert_eq!(
        classify(StatusCode::FORBIDDEN, &none, "").code(),
        "provider_auth"
    );
    assert_eq!(
        classify(StatusCode::BAD_GATEWAY, &none, "<html>").code(),
        "provider_transient"
    );
}
