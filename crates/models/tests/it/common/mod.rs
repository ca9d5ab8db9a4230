//! Helpers shared by the integration tests: providers pointed at the fake
//! model server, a text collector, and a small conversation. Must never reach
//! a real provider.
#![allow(dead_code)]

use roster_core::item::ToolCall;
use roster_models::{
    AnthropicProvider, ChatMessage, ChatRequest, OpenAiProvider, ProviderConfig, ProviderKind,
    ToolSpec,
};
use roster_testkit::FakeModelServer;
use serde_json::json;
use std::sync::Mutex;

pub fn openai_config(server: &FakeModelServer) -> ProviderConfig {
    ProviderConfig::new(
        "fake-openai",
        ProviderKind::Openai,
        server.openai_base_url(),
    )
    .with_api_key("sk-test-secret")
}

pub fn anthropic_config(server: &FakeModelServer) -> ProviderConfig {
    ProviderConfig::new(
        "fake-anthropic",
        ProviderKind::Anthropic,
        server.anthropic_base_url(),
    )
    .with_api_key("ant-test-secret")
}

pub fn openai(server: &FakeModelServer) -> OpenAiProvider {
    OpenAiProvider::new(openai_config(server)).expect("provider builds")
}

pub fn anthropic(server: &FakeModelServer) -> AnthropicProvider {
    AnthropicProvider::new(anthropic_config(server)).expect("provider builds")
}

pub fn request(stream: bool) -> ChatRequest {
    ChatRequest {
        tool_choice: Default::default(),
        model: "test-model".into(),
        system: "You are terse.".into(),
        messages: vec![ChatMessage::User {
            text: "What is the weather in Paris?".into(),
        }],
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: "Weather for a city".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        max_tokens: None,
        stream,
    }
}

/// A conversation with a tool round: user, assistant with two calls, two
/// results.
pub fn tool_round(stream: bool) -> ChatRequest {
    let mut req = request(stream);
    req.messages.push(ChatMessage::Assistant {
        text: "Checking.".into(),
        tool_calls: vec![
            ToolCall {
                id: "call_a".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
            },
            ToolCall {
                id: "call_b".into(),
                name: "get_weather".into(),
                arguments: "{not json".into(),
            },
        ],
    });
    req.messages.push(ChatMessage::ToolResult {
        call_id: "call_a".into(),
        name: "get_weather".into(),
        output: "sunny".into(),
        is_error: false,
    });
    req.messages.push(ChatMessage::ToolResult {
        call_id: "call_b".into(),
        name: "get_weather".into(),
        output: "arguments are not valid JSON".into(),
        is_error: true,
    });
    req
}

/// Collects the text deltas a provider streams.
#[derive(Default)]
pub struct Deltas(Mutex<Vec<String>>);

impl Deltas {
    pub fn push(&self, text: &str) {
        self.0.lock().expect("lock").push(text.to_owned());
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }
}

pub fn ignore(_: &str) {}

pub fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}
