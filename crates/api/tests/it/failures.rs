//! Model and tool failures: recorded on the run, returned to the caller, and
//! written to the ledger once per attempt.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{assert_calls_answered, kinds, Client, Reply, TestApp};
use roster_testkit::Protocol;
use serde_json::{json, Value};

/// Sends one message in a new session of a new agent and waits; returns `{run, items}`.
async fn run_with(app: &TestApp, replies: Vec<Reply>) -> Value {
    let admin = app.admin();
    let name = format!("bot-{}", app.fake.request_count());
    let session = admin.agent_session(&name).await;
    app.fake.push_all(replies);
    admin.say(&session, "hi").await
}

/// The run's ledger entries, oldest first.
async fn ledger(admin: &Client, run: &Value) -> Vec<Value> {
    let id = run["run"]["id"].as_str().unwrap();
    let page = admin.get(&format!("/v1/ledger?run_id={id}")).await;
    let mut entries = page.ok(200)["data"].as_array().unwrap().clone();
    entries.reverse();
    entries
}

fn outcomes(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect()
}

#[track_caller]
fn assert_failed(done: &Value, code: &str) {
    assert_eq!(done["run"]["status"], "failed", "{done}");
    assert_eq!(done["run"]["error"]["code"], code, "{done}");
    assert!(done["run"]["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(done["run"]["output"].is_null());
    assert_eq!(kinds(done["items"].as_array().unwrap()), ["user_message"]);
}

#[tokio::test]
async fn provider_auth_failure_fails_the_run_after_one_attempt() {
    let app = TestApp::start().await;
    let done = run_with(&app, vec![Reply::error(401, "invalid api key")]).await;
    assert_failed(&done, "provider_auth");
    let entries = ledger(&app.admin(), &done).await;
    assert_eq!(outcomes(&entries), ["provider_auth"]);
    assert_eq!(entries[0]["provider"], "openai");
    assert_eq!(entries[0]["model"], "test-model");
    assert!(entries[0]["error"].as_str().is_some());
    assert_eq!(app.fake.request_count(), 1);
    // The same error is in the run's event stream.
    let run = done["run"]["id"].as_str().unwrap();
    let (_, events) = app.admin().events(run, None).await;
    let last = events.last().unwrap();
    assert_eq!(last.data["status"], "failed");
    assert_eq!(last.data["error"]["code"], "provider_auth");
}

#[tokio::test]
async fn server_errors_are_retried_then_fail_as_transient() {
    let app = TestApp::start().await;
    let errors = [500, 503, 502, 500].map(|status| Reply::error(status, "boom"));
    let done = run_with(&app, errors.to_vec()).await;
    assert_failed(&done, "provider_transient");
    let entries = ledger(&app.admin(), &done).await;
    assert!(entries.len() >= 2, "retried: {entries:#?}");
    assert_eq!(
        entries.len(),
        app.fake.request_count(),
        "one entry per attempt"
    );
    assert!(entries
        .iter()
        .all(|e| e["outcome"] == "provider_transient" && e["step"] == 1));
}

/// The harness's router has `RetryPolicy { max_retries: 1 }`, so a target
/// gets two attempts. Every provider built from config reports its own
/// `max_retries` (default 2), so the policy's number is never used.
#[tokio::test]
async fn the_router_policy_bounds_attempts() {
    let app = TestApp::start().await;
    let errors = [500, 503, 502].map(|status| Reply::error(status, "boom"));
    let done = run_with(&app, errors.to_vec()).await;
    assert_failed(&done, "provider_transient");
    assert_eq!(app.fake.request_count(), 2, "max_retries is 1");
    assert_eq!(ledger(&app.admin(), &done).await.len(), 2);
}

#[tokio::test]
async fn a_retry_that_succeeds_completes_and_both_attempts_are_in_the_ledger() {
    let app = TestApp::start().await;
    let done = run_with(
        &app,
        vec![
            Reply::error(500, "boom"),
            Reply::text("recovered").with_usage(123, 45),
        ],
    )
    .await;
    assert_eq!(done["run"]["status"], "completed");
    assert_eq!(done["run"]["output"], "recovered");
    let entries = ledger(&app.admin(), &done).await;
    assert_eq!(outcomes(&entries), ["provider_transient", "ok"]);
    assert_eq!(entries[1]["tokens_in"], 123);
    assert_eq!(entries[1]["tokens_out"], 45);
    assert!(entries[1]["error"].is_null());
    let run = &done["run"];
    for e in &entries {
        assert_eq!(e["run_id"], run["id"]);
        assert_eq!(e["session_id"], run["session_id"]);
        assert!(e["agent_id"].as_str().unwrap().starts_with("agt_"));
    }
}

#[tokio::test]
async fn empty_choices_are_an_invalid_response() {
    let app = TestApp::start().await;
    let done = run_with(&app, vec![Reply::empty_choices()]).await;
    assert_failed(&done, "provider_invalid_response");
    assert_eq!(
        outcomes(&ledger(&app.admin(), &done).await),
        ["provider_invalid_response"]
    );
}

#[tokio::test]
async fn a_cut_stream_is_transient() {
    let app = TestApp::start().await;
    let done = run_with(
        &app,
        vec![Reply::text("half of a long answer").cut_stream(); 2],
    )
    .await;
    assert_failed(&done, "provider_transient");
    let recovered = run_with(
        &app,
        vec![
            Reply::text("half of a long answer").cut_stream(),
            Reply::text("whole answer"),
        ],
    )
    .await;
    assert_eq!(recovered["run"]["output"], "whole answer");
    let items = recovered["items"].as_array().unwrap();
    assert_eq!(
        items[1]["text"], "whole answer",
        "no text of the cut attempt"
    );
}

#[tokio::test]
async fn unknown_or_disallowed_tools_are_reported_to_the_model() {
    let app = TestApp::start().await;
    // `memory_append` exists but this agent was not given it.
    let done = run_with(
        &app,
        vec![
            Reply::tool_call("c1", "teleport", r#"{"to":"mars"}"#).and_tool_call(
                "c2",
                "memory_append",
                r#"{"label":"x","content":"y"}"#,
            ),
            Reply::text("I cannot do that."),
        ],
    )
    .await;
    assert_eq!(done["run"]["status"], "completed");
    let items = done["items"].as_array().unwrap();
    assert_eq!(
        kinds(items),
        [
            "user_message",
            "assistant_message",
            "tool_result",
            "tool_result",
            "assistant_message"
        ]
    );
    assert_calls_answered(items);
    for result in &items[2..4] {
        assert_eq!(result["is_error"], true);
        assert!(
            result["output"].as_str().unwrap().contains("unknown tool"),
            "{result}"
        );
    }
    let second = &app.fake.requests()[1].body["messages"];
    let tool_messages: Vec<&Value> = second
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(tool_messages.len(), 2, "{second:#}");
    assert!(tool_messages[0]["content"]
        .as_str()
        .unwrap()
        .contains("teleport"));
}

#[tokio::test]
async fn invalid_tool_arguments_are_reported_and_the_run_continues() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({
            "name": "bot", "model": "openai/m", "tools": ["memory_append"],
            "memory_blocks": [{"label": "facts"}]
        }))
        .await;
    let session = admin.session("bot").await;
    app.fake.push_all([
        Reply::tool_call("c1", "memory_append", r#"{"label": "facts", "content": "#),
        Reply::tool_call("c2", "memory_append", r#"["not", "an", "object"]"#),
        Reply::tool_call(
            "c3",
            "memory_append",
            r#"{"label": "nope", "content": "x"}"#,
        ),
        Reply::text("Gave up."),
    ]);
    let done = admin.say(&session, "hi").await;
    assert_eq!(done["run"]["status"], "completed");
    let items = done["items"].as_array().unwrap();
    assert_calls_answered(items);
    let results: Vec<&Value> = items
        .iter()
        .filter(|i| i["type"] == "tool_result")
        .collect();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r["is_error"] == true));
    assert!(results[0]["output"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    assert!(results[1]["output"]
        .as_str()
        .unwrap()
        .contains("JSON object"));
    assert!(results[2]["output"]
        .as_str()
        .unwrap()
        .contains("no memory block"));
    let memory = admin.get("/v1/agents/bot/memory").await;
    assert_eq!(
        memory.ok(200)["blocks"][0]["value"],
        "",
        "nothing was written"
    );
}

#[tokio::test]
async fn max_steps_stops_a_run_that_keeps_calling_tools() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({
            "name": "bot", "model": "openai/m", "tools": ["memory_append"],
            "memory_blocks": [{"label": "facts"}], "max_steps": 2
        }))
        .await;
    let session = admin.session("bot").await;
    let call =
        |id: &str| Reply::tool_call(id, "memory_append", r#"{"label":"facts","content":"x"}"#);
    app.fake
        .push_all([call("c1"), call("c2"), Reply::text("unused")]);
    let done = admin.say(&session, "loop").await;
    assert_eq!(done["run"]["status"], "failed");
    assert_eq!(done["run"]["error"]["code"], "max_steps_exceeded");
    assert_calls_answered(done["items"].as_array().unwrap());
    assert_eq!(app.fake.request_count(), 2);
}

#[tokio::test]
async fn an_unconfigured_provider_fails_the_run() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("lost", "nowhere/model-x").await;
    let session = admin.session("lost").await;
    let done = admin.say(&session, "hi").await;
    assert_failed(&done, "unknown_provider");
    let entries = ledger(&admin, &done).await;
    assert_eq!(outcomes(&entries), ["unknown_provider"]);
    assert_eq!(entries[0]["provider"], "nowhere");
    assert_eq!(app.fake.request_count(), 0);
}

#[tokio::test]
async fn a_fallback_answers_when_the_primary_fails() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({
            "name": "bot", "model": "openai/primary", "fallbacks": ["anthropic/claude-x"]
        }))
        .await;
    let session = admin.session("bot").await;
    app.fake
        .push_all([Reply::error(401, "revoked"), Reply::text("from claude")]);
    let done = admin.say(&session, "hi").await;
    assert_eq!(done["run"]["output"], "from claude");
    let protocols: Vec<Protocol> = app.fake.requests().iter().map(|r| r.protocol).collect();
    assert_eq!(protocols, [Protocol::OpenAi, Protocol::Anthropic]);
    let entries = ledger(&admin, &done).await;
    assert_eq!(outcomes(&entries), ["provider_auth", "ok"]);
    assert_eq!(entries[1]["provider"], "anthropic");
    assert_eq!(entries[1]["model"], "claude-x");
    let detail = admin
        .get(&format!("/v1/runs/{}", done["run"]["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        detail.ok(200)["steps"][0]["input"]["route"],
        "anthropic/claude-x"
    );
}

#[tokio::test]
async fn ledger_lists_newest_first_with_filters_and_pages() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let s1 = admin.agent_session("one").await;
    let s2 = admin.agent_session("two").await;
    app.fake.push_all([
        Reply::text("a").with_usage(1, 1),
        Reply::text("b").with_usage(2, 2),
        Reply::text("c").with_usage(3, 3),
    ]);
    admin.say(&s1, "x").await;
    admin.say(&s2, "y").await;
    admin.say(&s1, "z").await;
    let all = admin.get("/v1/ledger").await;
    let all = all.ok(200)["data"].as_array().unwrap().clone();
    let tokens: Vec<i64> = all
        .iter()
        .map(|e| e["tokens_in"].as_i64().unwrap())
        .collect();
    assert_eq!(tokens, [3, 2, 1]);
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]));

    let one = admin.get("/v1/ledger?agent=one").await;
    assert_eq!(one.ok(200)["data"].as_array().unwrap().len(), 2);

    let mut before: Option<i64> = None;
    let mut walked = vec![];
    loop {
        let path = match before {
            Some(b) => format!("/v1/ledger?limit=2&before={b}"),
            None => "/v1/ledger?limit=2".to_owned(),
        };
        let page = admin.get(&path).await.ok(200).clone();
        walked.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match page["next_before"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(walked, ids);
}
