//! An agent on an `anthropic/...` route talks to the Anthropic Messages
//! endpoint of the fake server, tools and streaming included.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{assert_calls_answered, kinds, Reply, TestApp};
use roster_testkit::Protocol;
use serde_json::json;

#[tokio::test]
async fn anthropic_route_answers_with_tools_and_usage() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({
            "name": "claude", "model": "anthropic/claude-x", "instructions": "Be brief.",
            "tools": ["memory_append"], "memory_blocks": [{"label": "facts"}]
        }))
        .await;
    let session = admin.session("claude").await;
    app.fake.push_all([
        Reply::tool_call(
            "toolu_1",
            "memory_append",
            r#"{"label":"facts","content":"likes tea"}"#,
        )
        .with_usage(20, 7),
        Reply::text("Noted: tea.").with_usage(30, 4),
    ]);
    let done = admin.say(&session, "I like tea").await;
    assert_eq!(done["run"]["status"], "completed", "{done}");
    assert_eq!(done["run"]["output"], "Noted: tea.");
    let items = done["items"].as_array().unwrap();
    assert_eq!(
        kinds(items),
        [
            "user_message",
            "assistant_message",
            "tool_result",
            "assistant_message"
        ]
    );
    assert_calls_answered(items);
    assert_eq!(items[2]["is_error"], false);

    let requests = app.fake.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.protocol, Protocol::Anthropic);
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(r.body["model"], "claude-x");
        assert_eq!(r.header("x-api-key"), Some("sk-ant"));
        assert!(r.body["system"].to_string().contains("Be brief."));
    }
    // The tool's result went back as a `tool_result` block for `toolu_1`.
    let second = requests[1].body["messages"].to_string();
    assert!(
        second.contains("tool_result") && second.contains("toolu_1"),
        "{second}"
    );

    let memory = admin.get("/v1/agents/claude/memory").await;
    assert_eq!(memory.ok(200)["blocks"][0]["value"], "likes tea");

    let run = done["run"]["id"].as_str().unwrap();
    let ledger = admin.get(&format!("/v1/ledger?run_id={run}")).await;
    let mut entries = ledger.ok(200)["data"].as_array().unwrap().clone();
    entries.reverse();
    let seen: Vec<(String, String, i64, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["provider"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
                e["tokens_in"].as_i64().unwrap(),
                e["tokens_out"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("anthropic".to_owned(), "ok".to_owned(), 20, 7),
            ("anthropic".to_owned(), "ok".to_owned(), 30, 4)
        ]
    );
}

#[tokio::test]
async fn anthropic_route_streams_text_deltas() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("claude", "anthropic/claude-x").await;
    let session = admin.session("claude").await;
    app.fake.push(Reply::text("one two three four"));
    let builder = admin
        .request(
            reqwest::Method::POST,
            &format!("/v1/sessions/{session}/messages"),
        )
        .json(&json!({"content": "count", "stream": true}));
    let (status, events) = admin.sse(builder).await;
    assert_eq!(status, 200);
    let text: String = events
        .iter()
        .filter(|e| e.event == "text_delta")
        .map(|e| e.data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "one two three four");
    let last = events.last().unwrap();
    assert_eq!(last.event, "run_finished");
    assert_eq!(last.data["output"], "one two three four");
}

#[tokio::test]
async fn anthropic_errors_are_recorded_like_openai_ones() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("claude", "anthropic/claude-x").await;
    let session = admin.session("claude").await;
    app.fake.push(Reply::error(401, "invalid x-api-key"));
    let done = admin.say(&session, "hi").await;
    assert_eq!(done["run"]["status"], "failed");
    assert_eq!(done["run"]["error"]["code"], "provider_auth");
    app.fake.push(Reply::context_overflow());
    let done = admin.say(&session, "hi again").await;
    assert_eq!(done["run"]["error"]["code"], "provider_context_overflow");
    assert_eq!(app.fake.request_count(), 2, "neither is retried");
}
