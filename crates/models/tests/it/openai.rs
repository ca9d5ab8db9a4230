//! The OpenAI-compatible provider against the fake model server over real
//! HTTP: text, tool calls, streaming, usage, configuration on the wire.
//! Failures are in `openai_errors.rs`.

use crate::common;

use common::{call, ignore, openai, openai_config, request, tool_round, Deltas};
use roster_models::{ModelProvider, OpenAiProvider};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::json;

#[tokio::test]
async fn json_text_with_usage_and_request_shape() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Sunny.").with_usage(12, 3));
    let deltas = Deltas::default();
    let r = openai(&server)
        .chat(&request(false), &|t: &str| deltas.push(t))
        .await
        .expect("ok");
    assert_eq!(r.text, "Sunny.");
    assert!(r.tool_calls.is_empty());
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (12, 3));
    assert_eq!(r.stop_reason.as_deref(), Some("stop"));
    assert!(deltas.all().is_empty(), "no deltas without streaming");

    let sent = server.last_request().expect("recorded");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test-secret"));
    assert_eq!(sent.body["model"], "test-model");
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "You are terse."})
    );
    assert_eq!(sent.body["tools"][0]["function"]["name"], "get_weather");
    assert!(sent.body.get("stream").is_none() && sent.body.get("max_tokens").is_none());
}

#[tokio::test]
async fn streaming_text_arrives_in_deltas() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("It is sunny in Paris.").with_usage(20, 6));
    let deltas = Deltas::default();
    let r = openai(&server)
        .chat(&request(true), &|t: &str| deltas.push(t))
        .await
        .expect("ok");
    assert_eq!(r.text, "It is sunny in Paris.");
    assert!(deltas.all().len() > 1, "{:?}", deltas.all());
    assert_eq!(deltas.all().concat(), r.text);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (20, 6));
    let sent = server.last_request().expect("recorded");
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn parallel_tool_calls_json_and_stream() {
    for stream in [false, true] {
        let server = FakeModelServer::start().await;
        server.push(
            Reply::tool_call(
                "call_1",
                "get_weather",
                r#"{"city":"Paris","unit":"celsius"}"#,
            )
            .and_tool_call("call_2", "get_weather", r#"{"city":"Rome"}"#)
            .with_text("Let me check."),
        );
        let r = openai(&server)
            .chat(&request(stream), &ignore)
            .await
            .expect("ok");
        assert_eq!(r.text, "Let me check.", "stream={stream}");
        assert_eq!(
            r.tool_calls,
            vec![
                call(
                    "call_1",
                    "get_weather",
                    r#"{"city":"Paris","unit":"celsius"}"#
                ),
                call("call_2", "get_weather", r#"{"city":"Rome"}"#),
            ],
            "stream={stream}"
        );
        assert_eq!(r.stop_reason.as_deref(), Some("tool_calls"));
    }
}

#[tokio::test]
async fn invalid_json_arguments_are_kept_raw() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call("c", "f", "{oops"));
    let r = openai(&server)
        .chat(&request(true), &ignore)
        .await
        .expect("ok");
    assert_eq!(r.tool_calls, vec![call("c", "f", "{oops")]);
}

#[tokio::test]
async fn tool_round_is_sent_in_openai_shape() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("done"));
    openai(&server)
        .chat(&tool_round(false), &ignore)
        .await
        .expect("ok");
    let body = server.last_request().expect("recorded").body;
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 5);
    assert_eq!(messages[2]["content"], "Checking.");
    assert_eq!(
        messages[2]["tool_calls"][1]["function"]["arguments"],
        "{not json"
    );
    assert_eq!(
        messages[4],
        json!({"role": "tool", "tool_call_id": "call_b", "content": "arguments are not valid JSON"})
    );
}

#[tokio::test]
async fn configured_auth_header_query_and_extra_headers() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("hi"));
    let mut config = openai_config(&server);
    config.base_url = format!("{}/", server.openai_base_url());
    config.auth_header = Some("api-key".into());
    config
        .query
        .insert("api-version".into(), "2024-06-01".into());
    config.headers.insert("x-extra".into(), "1".into());
    config.max_tokens = Some(99);
    config.stream = Some(false);
    let provider = OpenAiProvider::new(config).expect("builds");
    let deltas = Deltas::default();
    let r = provider
        .chat(&request(true), &|t: &str| deltas.push(t))
        .await
        .expect("ok");
    assert_eq!(
        deltas.all(),
        vec![r.text.clone()],
        "whole text handed on once"
    );
    let sent = server.last_request().expect("recorded");
    assert_eq!(sent.header("api-key"), Some("sk-test-secret"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.header("x-extra"), Some("1"));
    assert_eq!(sent.body["max_tokens"], 99);
    assert!(
        sent.body.get("stream").is_none(),
        "stream disabled by config"
    );
}

#[tokio::test]
async fn keyless_provider_sends_no_auth() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("hi"));
    let mut config = openai_config(&server);
    config.api_key = None;
    OpenAiProvider::new(config)
        .expect("builds")
        .chat(&request(false), &ignore)
        .await
        .expect("ok");
    assert_eq!(
        server
            .last_request()
            .expect("recorded")
            .header("authorization"),
        None
    );
}
