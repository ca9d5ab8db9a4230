//! `POST /v1/runs/{id}/cancel`: prompt, final, and leaving the session whole.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{assert_calls_answered, eventually, kinds, Client, Reply, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Posts in the background; returns the run id.
async fn start(admin: &Client, session: &str, content: &str) -> String {
    let resp = admin
        .message(session, json!({"content": content, "background": true}))
        .await;
    resp.ok(202)["run"]["id"].as_str().unwrap().to_owned()
}

/// Cancels and asserts it answered 200 `cancelled` within three seconds.
async fn cancel(admin: &Client, run: &str) -> Value {
    let started = Instant::now();
    let resp = admin
        .post(&format!("/v1/runs/{run}/cancel"), json!({}))
        .await;
    let body = resp.ok(200).clone();
    assert_eq!(body["status"], "cancelled", "{body}");
    assert!(body["finished_at"].is_string());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cancel took {:?}",
        started.elapsed()
    );
    body
}

#[tokio::test]
async fn cancel_a_run_waiting_on_a_model_that_never_answers() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push(Reply::text("never").hang());
    let run = start(&admin, &session, "stuck").await;
    eventually(|| async { (app.fake.request_count() == 1).then_some(()) }).await;

    let cancelled = cancel(&admin, &run).await;
    assert_eq!(cancelled["id"], run.as_str());
    assert_eq!(
        admin.get(&format!("/v1/runs/{run}")).await.body["status"],
        "cancelled"
    );
    admin
        .post(&format!("/v1/runs/{run}/cancel"), json!({}))
        .await
        .err(409, "run_finished");
    let (_, events) = admin.events(&run, None).await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "run_finished");
    assert_eq!(last.data["status"], "cancelled");

    // The session goes on.
    app.fake.push(Reply::text("back"));
    let next = admin.say(&session, "hello?").await;
    assert_eq!(next["run"]["status"], "completed");
    let items = admin.items(&session).await;
    assert_eq!(
        kinds(&items),
        ["user_message", "user_message", "assistant_message"]
    );
    assert_calls_answered(&items);
}

#[tokio::test]
async fn a_waiting_request_returns_the_cancelled_run() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake
        .push(Reply::text("too late").delayed(Duration::from_secs(5)));
    let waiting = {
        let (admin, session) = (admin.clone(), session.clone());
        tokio::spawn(async move { admin.message(&session, json!({"content": "wait"})).await })
    };
    eventually(|| async { (app.fake.request_count() == 1).then_some(()) }).await;
    let run = admin.items(&session).await[0]["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    cancel(&admin, &run).await;
    let answered = waiting.await.unwrap();
    let answered = answered.ok(200);
    assert_eq!(answered["run"]["status"], "cancelled");
    assert_eq!(
        kinds(answered["items"].as_array().unwrap()),
        ["user_message"]
    );
}

#[tokio::test]
async fn cancel_while_a_tool_runs_answers_every_call() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({
            "name": "worker", "model": "openai/m", "tools": ["sleep", "memory_append"],
            "memory_blocks": [{"label": "log"}]
        }))
        .await;
    let session = admin.session("worker").await;
    app.fake.push(
        Reply::tool_call(
            "c_mem",
            "memory_append",
            r#"{"label":"log","content":"begun"}"#,
        )
        .and_tool_call("c_sleep", "sleep", r#"{"ms": 60000}"#),
    );
    let run = start(&admin, &session, "work").await;
    // Wait until the slow tool has been journaled as started.
    eventually(|| async {
        let detail = admin.get(&format!("/v1/runs/{run}")).await.body;
        let steps = detail["steps"].as_array().cloned().unwrap_or_default();
        steps
            .iter()
            .any(|s| s["kind"] == "tool_call" && s["status"] == "started")
            .then_some(())
    })
    .await;
    cancel(&admin, &run).await;

    let items = admin.items(&session).await;
    assert_eq!(
        kinds(&items),
        [
            "user_message",
            "assistant_message",
            "tool_result",
            "tool_result"
        ]
    );
    assert_calls_answered(&items);
    let result = |id: &str| items.iter().find(|i| i["call_id"] == id).unwrap().clone();
    assert_eq!(result("c_sleep")["is_error"], true);
    assert!(result("c_sleep")["output"]
        .as_str()
        .unwrap()
        .contains("cancelled"));

    // The next run shows the model a result for every call it made.
    app.fake.push(Reply::text("ok"));
    assert_eq!(
        admin.say(&session, "next").await["run"]["status"],
        "completed"
    );
    let messages = app.fake.last_request().unwrap().body["messages"].clone();
    for id in ["c_mem", "c_sleep"] {
        assert!(
            messages
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["role"] == "tool" && m["tool_call_id"] == id),
            "no tool message for {id}: {messages:#}"
        );
    }
}

#[tokio::test]
async fn cancel_while_a_tool_call_reply_is_pending_leaves_no_dangling_call() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({"name": "worker", "model": "openai/m", "tools": ["sleep"]}))
        .await;
    let session = admin.session("worker").await;
    app.fake
        .push(Reply::tool_call("c1", "sleep", r#"{"ms": 1}"#).delayed(Duration::from_secs(5)));
    let run = start(&admin, &session, "work").await;
    eventually(|| async { (app.fake.request_count() == 1).then_some(()) }).await;
    cancel(&admin, &run).await;
    let items = admin.items(&session).await;
    assert_eq!(kinds(&items), ["user_message"]);
    let detail = admin.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(detail.ok(200)["steps"], json!([]));
}

#[tokio::test]
async fn cancel_a_queued_run_and_the_running_one() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push(Reply::text("never").hang());
    let running = start(&admin, &session, "first").await;
    let queued = start(&admin, &session, "second").await;
    eventually(|| async { (app.fake.request_count() == 1).then_some(()) }).await;

    let body = cancel(&admin, &queued).await;
    assert!(body["started_at"].is_null(), "it never started: {body}");
    let (_, events) = admin.events(&queued, None).await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["run_queued", "run_finished"]);
    assert_eq!(
        admin.get(&format!("/v1/runs/{running}")).await.body["status"],
        "running"
    );
    cancel(&admin, &running).await;

    app.fake.push(Reply::text("fine"));
    assert_eq!(
        admin.say(&session, "third").await["run"]["status"],
        "completed"
    );
    let texts: Vec<String> = admin
        .items(&session)
        .await
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        texts,
        ["first", "third", "fine"],
        "the queued input never ran"
    );
    assert_eq!(app.fake.request_count(), 2);
}

#[tokio::test]
async fn a_finished_run_cannot_be_cancelled() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push(Reply::text("done"));
    let run = admin.say(&session, "hi").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin
        .post(&format!("/v1/runs/{run}/cancel"), json!({}))
        .await
        .err(409, "run_finished");
    assert_eq!(
        admin.get(&format!("/v1/runs/{run}")).await.body["status"],
        "completed"
    );
}

/// The ledger promises one entry per model call, success or failure; a call
/// abandoned by a cancel was still sent (and may be billed).
#[tokio::test]
async fn a_cancelled_model_call_is_in_the_ledger() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push(Reply::text("never").hang());
    let run = start(&admin, &session, "stuck").await;
    eventually(|| async { (app.fake.request_count() == 1).then_some(()) }).await;
    cancel(&admin, &run).await;
    let ledger = admin.get(&format!("/v1/ledger?run_id={run}")).await;
    let entries = ledger.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:#?}");
    assert_eq!(entries[0]["outcome"], "cancelled");
}
