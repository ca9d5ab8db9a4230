//! The Anthropic Messages provider against the fake model server over real
//! HTTP: text, tool use, streaming, usage, message shaping, every error kind.

use crate::common;

use common::{anthropic, anthropic_config, call, ignore, request, tool_round, Deltas};
use roster_models::{AnthropicProvider, ModelProvider, ProviderError};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn json_text_with_usage_and_request_shape() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Sunny.").with_usage(12, 3));
    let r = anthropic(&server)
        .chat(&request(false), &ignore)
        .await
        .expect("ok");
    assert_eq!(r.text, "Sunny.");
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (12, 3));
    assert_eq!(r.stop_reason.as_deref(), Some("end_turn"));

    let sent = server.last_request().expect("recorded");
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("ant-test-secret"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["max_tokens"], 4096);
    assert_eq!(sent.body["system"], "You are terse.");
    assert_eq!(sent.body["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?"}]}])
    );
}

#[tokio::test]
async fn base_url_with_v1_is_not_doubled() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("ok"));
    let mut config = anthropic_config(&server);
    config.base_url = format!("{}/v1/", server.anthropic_base_url());
    config.max_tokens = Some(321);
    AnthropicProvider::new(config)
        .expect("builds")
        .chat(&request(false), &ignore)
        .await
        .expect("ok");
    let sent = server.last_request().expect("recorded");
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["max_tokens"], 321);
}

#[tokio::test]
async fn streaming_text_arrives_in_deltas() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("It is sunny in Paris.").with_usage(20, 6));
    let deltas = Deltas::default();
    let r = anthropic(&server)
        .chat(&request(true), &|t: &str| deltas.push(t))
        .await
        .expect("ok");
    assert_eq!(r.text, "It is sunny in Paris.");
    assert!(deltas.all().len() > 1);
    assert_eq!(deltas.all().concat(), r.text);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (20, 6));
    assert_eq!(
        server.last_request().expect("recorded").body["stream"],
        true
    );
}

#[tokio::test]
async fn parallel_tool_use_json_and_stream() {
    for stream in [false, true] {
        let server = FakeModelServer::start().await;
        server.push(
            Reply::tool_call(
                "toolu_1",
                "get_weather",
                r#"{"city":"Paris","unit":"celsius"}"#,
            )
            .and_tool_call("toolu_2", "get_weather", r#"{"city":"Rome"}"#)
            .with_text("Let me check."),
        );
        let r = anthropic(&server)
            .chat(&request(stream), &ignore)
            .await
            .expect("ok");
        assert_eq!(r.text, "Let me check.", "stream={stream}");
        assert_eq!(
            r.tool_calls,
            vec![
                call(
                    "toolu_1",
                    "get_weather",
                    r#"{"city":"Paris","unit":"celsius"}"#
                ),
                call("toolu_2", "get_weather", r#"{"city":"Rome"}"#),
            ],
            "stream={stream}"
        );
        assert_eq!(r.stop_reason.as_deref(), Some("tool_use"));
    }
}

#[tokio::test]
async fn tool_use_with_empty_or_invalid_input() {
    for stream in [false, true] {
        let server = FakeModelServer::start().await;
        server.push(Reply::tool_call("t1", "now", "").and_tool_call("t2", "f", "{bad"));
        let r = anthropic(&server)
            .chat(&request(stream), &ignore)
            .await
            .expect("ok");
        assert_eq!(
            r.tool_calls,
            vec![call("t1", "now", "{}"), call("t2", "f", "{bad")]
        );
    }
}

#[tokio::test]
async fn tool_round_merges_results_into_one_user_turn() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("done"));
    anthropic(&server)
        .chat(&tool_round(true), &ignore)
        .await
        .expect("ok");
    let messages = server.last_request().expect("recorded").body["messages"].clone();
    let roles: Vec<_> = messages
        .as_array()
        .expect("array")
        .iter()
        .map(|m| m["role"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(messages[1]["content"][1]["input"], json!({"city": "Paris"}));
    assert_eq!(messages[1]["content"][2]["input"], json!({}));
    assert_eq!(
        messages[2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "call_a", "content": "sunny", "is_error": false},
            {"type": "tool_result", "tool_use_id": "call_b", "content": "arguments are not valid JSON", "is_error": true},
        ])
    );
}

async fn error_of(reply: Reply, stream: bool) -> ProviderError {
    let server = FakeModelServer::start().await;
    server.push(reply);
    anthropic(&server)
        .chat(&request(stream), &ignore)
        .await
        .expect_err("must fail")
}

#[tokio::test]
async fn error_statuses_map_to_kinds() {
    for stream in [false, true] {
        for status in [429, 529] {
            match error_of(Reply::error(status, "Overloaded").retry_after(3), stream).await {
                ProviderError::RateLimited { retry_after, .. } => {
                    assert_eq!(retry_after, Some(Duration::from_secs(3)));
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        let codes = [
            (Reply::error(401, "invalid x-api-key"), "provider_auth"),
            (Reply::error(403, "not allowed"), "provider_auth"),
            (Reply::context_overflow(), "provider_context_overflow"),
            (
                Reply::error(413, "request too large"),
                "provider_context_overflow",
            ),
            (
                Reply::error(400, "tools.0: bad schema"),
                "provider_bad_request",
            ),
            (Reply::error(404, "model not found"), "provider_not_found"),
            (Reply::error(500, "internal"), "provider_transient"),
            (
                Reply::raw(502, "text/html", "<html>bad gateway</html>"),
                "provider_transient",
            ),
        ];
        for (reply, code) in codes {
            assert_eq!(
                error_of(reply, stream).await.code(),
                code,
                "stream={stream}"
            );
        }
    }
}

#[tokio::test]
async fn error_event_mid_stream_is_mapped() {
    let overloaded = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":1}}}\n\n\
        event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let e = error_of(Reply::raw(200, "text/event-stream", overloaded), true).await;
    assert_eq!(e.code(), "provider_rate_limited", "{e:?}");
    let api = overloaded.replace("overloaded_error", "api_error");
    let e = error_of(Reply::raw(200, "text/event-stream", &api), true).await;
    assert_eq!(e.code(), "provider_transient", "{e:?}");
}

#[tokio::test]
async fn garbage_is_invalid_and_empty_content_is_empty_text() {
    let e = error_of(
        Reply::raw(200, "application/json", "{\"content\":[{"),
        false,
    )
    .await;
    assert_eq!(e.code(), "provider_invalid_response");
    let e = error_of(Reply::raw(200, "application/json", "{\"id\":\"x\"}"), false).await;
    assert_eq!(e.code(), "provider_invalid_response");
    // Anthropic may legitimately answer with no content blocks.
    for stream in [false, true] {
        let server = FakeModelServer::start().await;
        server.push(Reply::empty_choices());
        let r = anthropic(&server)
            .chat(&request(stream), &ignore)
            .await
            .expect("ok");
        assert_eq!(r.text, "");
        assert!(r.tool_calls.is_empty());
    }
}

#[tokio::test]
async fn cut_streams_are_transient() {
    let e = error_of(
        Reply::text("one two three four five six").cut_stream(),
        true,
    )
    .await;
    assert_eq!(e.code(), "provider_transient", "{e:?}");
    let e = error_of(Reply::tool_call("t", "f", r#"{"a":1}"#).cut_stream(), true).await;
    assert_eq!(e.code(), "provider_transient", "{e:?}");
    let no_stop = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n";
    let e = error_of(Reply::raw(200, "text/event-stream", no_stop), true).await;
    assert_eq!(
        e,
        ProviderError::Transient {
            message: "stream ended early".into()
        }
    );
}

#[tokio::test]
async fn hang_times_out_with_short_timeout() {
    for stream in [false, true] {
        let server = FakeModelServer::start().await;
        server.push(Reply::text("never").hang());
        let mut config = anthropic_config(&server);
        config.timeout_secs = 1;
        let provider = AnthropicProvider::new(config).expect("builds");
        let started = Instant::now();
        let e = provider
            .chat(&request(stream), &ignore)
            .await
            .expect_err("times out");
        assert_eq!(e.code(), "provider_timeout", "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
