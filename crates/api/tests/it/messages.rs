//! Posting messages: waiting, background runs, items, idempotency, queueing.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{eventually, kinds, Reply, TestApp};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn waiting_message_returns_the_finished_run_and_its_items() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push(Reply::text("Hello there, friend."));
    let done = admin.say(&session, "hi").await;
    let run = &done["run"];
    let run_id = run["id"].as_str().unwrap();
    assert!(run_id.starts_with("run_"));
    assert_eq!(run["status"], "completed");
    assert_eq!(run["output"], "Hello there, friend.");
    assert_eq!(run["input"], "hi");
    assert_eq!(run["session_id"], session.as_str());
    assert!(run["error"].is_null());
    assert!(run["finished_at"].is_string());
    let items = done["items"].as_array().unwrap();
    assert_eq!(kinds(items), ["user_message", "assistant_message"]);
    assert_eq!(items[0]["text"], "hi");
    assert_eq!(items[1]["text"], "Hello there, friend.");
    assert!(items.iter().all(|i| i["run_id"] == run_id));
    assert_eq!(&admin.items(&session).await, items);
    // The model saw the user's message.
    let body = app.fake.last_request().unwrap().body;
    assert_eq!(body["model"], "test-model");
    assert!(body["messages"].to_string().contains("hi"));
}

#[tokio::test]
async fn items_are_ordered_and_paginated() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    for i in 0..3 {
        app.fake.push(Reply::text(format!("answer {i}")));
        admin.say(&session, &format!("question {i}")).await;
    }
    let (admin, session) = (&admin, &session);
    let page = |query: &str| {
        let path = format!("/v1/sessions/{session}/items?{query}");
        async move { admin.get(&path).await.ok(200).clone() }
    };
    let seqs = |page: &serde_json::Value| -> Vec<i64> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["seq"].as_i64().unwrap())
            .collect()
    };
    let all = page("").await;
    assert_eq!(seqs(&all), [1, 2, 3, 4, 5, 6]);
    assert!(all["next_after"].is_null());
    assert_eq!(all["data"][4]["text"], "question 2");
    assert_eq!(all["data"][5]["text"], "answer 2");

    let first = page("limit=4").await;
    assert_eq!(seqs(&first), [1, 2, 3, 4]);
    assert_eq!(first["next_after"], 4);
    let second = page("limit=4&after=4").await;
    assert_eq!(seqs(&second), [5, 6]);
    assert!(second["next_after"].is_null());

    let mut after = 0;
    let mut walked = vec![];
    loop {
        let p = page(&format!("limit=2&after={after}")).await;
        walked.extend(seqs(&p));
        match p["next_after"].as_i64() {
            Some(next) => after = next,
            None => break,
        }
    }
    assert_eq!(walked, [1, 2, 3, 4, 5, 6]);
    assert_eq!(seqs(&page("after=6").await), Vec::<i64>::new());
}

#[tokio::test]
async fn background_run_is_accepted_then_completes_with_steps() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({
            "name": "notes", "model": "openai/m", "tools": ["memory_append"],
            "memory_blocks": [{"label": "facts", "value": "sky: blue"}]
        }))
        .await;
    let session = admin.session("notes").await;
    app.fake.push_all([
        Reply::tool_call(
            "call_1",
            "memory_append",
            r#"{"label": "facts", "content": "grass: green"}"#,
        ),
        Reply::text("Noted."),
    ]);
    let accepted = admin
        .message(
            &session,
            json!({"content": "remember grass", "background": true}),
        )
        .await;
    let accepted = accepted.ok(202);
    assert_eq!(accepted["items"], json!([]));
    let status = accepted["run"]["status"].as_str().unwrap();
    assert!(
        ["queued", "running", "completed"].contains(&status),
        "{status}"
    );
    let run_id = accepted["run"]["id"].as_str().unwrap();

    let run = admin.wait_run(run_id).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(run["output"], "Noted.");
    let steps = run["steps"].as_array().unwrap();
    let step_kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(step_kinds, ["model_call", "tool_call", "model_call"]);
    assert!(steps.iter().all(|s| s["status"] == "completed"));
    assert_eq!(
        steps
            .iter()
            .map(|s| s["n"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let items = admin.items(&session).await;
    assert_eq!(
        kinds(&items),
        [
            "user_message",
            "assistant_message",
            "tool_result",
            "assistant_message"
        ]
    );
    assert_eq!(items[2]["is_error"], false);
    common::assert_calls_answered(&items);

    let memory = admin.get("/v1/agents/notes/memory").await;
    let memory = memory.ok(200);
    assert_eq!(memory["blocks"][0]["value"], "sky: blue\ngrass: green");
    assert_eq!(memory["blocks"][0]["version"], 2);
    let history = memory["history"].as_array().unwrap();
    assert_eq!(history[1]["operation"], "append");
    assert_eq!(history[1]["run_id"], run_id);
}

#[tokio::test]
async fn bad_messages_are_refused_and_run_nothing() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    let bad = [
        json!({"content": ""}),
        json!({"content": "   \n\t"}),
        json!({"content": "x".repeat(1_048_577)}),
        json!({"content": "hi", "stream": true, "background": true}),
        json!({"content": "hi", "if_busy": "wait_forever"}),
        json!({"content": 42}),
        json!({"text": "hi"}),
        json!({"content": "hi", "priority": 1}),
    ];
    for body in bad {
        let resp = admin.message(&session, body).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
        resp.err(400, "invalid_request");
    }
    for key in ["", &"k".repeat(256)] {
        let builder = admin
            .request(
                reqwest::Method::POST,
                &format!("/v1/sessions/{session}/messages"),
            )
            .header("idempotency-key", key)
            .json(&json!({"content": "hi"}));
        admin.send(builder).await.err(400, "invalid_request");
    }
    assert!(admin.items(&session).await.is_empty());
    assert_eq!(app.fake.request_count(), 0);
}

#[tokio::test]
async fn idempotency_key_returns_the_first_run_without_calling_the_model_again() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push(Reply::text("once"));
    let post = |key: &str, body: serde_json::Value| {
        let builder = admin
            .request(
                reqwest::Method::POST,
                &format!("/v1/sessions/{session}/messages"),
            )
            .header("idempotency-key", key)
            .json(&body);
        admin.send(builder)
    };
    let first = post("order-1", json!({"content": "hi"})).await;
    let first = first.ok(200).clone();
    let retry = post("order-1", json!({"content": "hi"})).await;
    assert_eq!(retry.ok(200)["run"]["id"], first["run"]["id"]);
    assert_eq!(retry.body["items"], first["items"]);
    let background = post("order-1", json!({"content": "hi", "background": true})).await;
    assert_eq!(background.ok(202)["run"]["id"], first["run"]["id"]);
    assert_eq!(background.body["run"]["status"], "completed");
    assert_eq!(app.fake.request_count(), 1);
    assert_eq!(admin.items(&session).await.len(), 2);

    // Concurrent first tries with one key make one run.
    app.fake.push(Reply::text("twice"));
    let body = json!({"content": "again", "background": true});
    let (a, b) = tokio::join!(post("order-2", body.clone()), post("order-2", body.clone()));
    assert_eq!(a.ok(202)["run"]["id"], b.ok(202)["run"]["id"]);
    admin.wait_run(a.body["run"]["id"].as_str().unwrap()).await;
    assert_eq!(app.fake.request_count(), 2);
    assert_eq!(admin.items(&session).await.len(), 4);
}

#[tokio::test]
async fn queued_messages_run_in_order() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push_all([
        Reply::text("first answer").delayed(Duration::from_millis(500)),
        Reply::text("second answer"),
    ]);
    let background =
        |content: &str| admin.message(&session, json!({"content": content, "background": true}));
    let first = background("first").await.ok(202).clone();
    let second = background("second").await.ok(202).clone();
    let first = admin.wait_run(first["run"]["id"].as_str().unwrap()).await;
    let second = admin.wait_run(second["run"]["id"].as_str().unwrap()).await;
    assert_eq!(first["status"], "completed");
    assert_eq!(second["status"], "completed");
    assert_eq!(second["output"], "second answer");
    let time =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert!(time(&second["started_at"]) >= time(&first["finished_at"]));

    let items = admin.items(&session).await;
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["first", "first answer", "second", "second answer"]);
    assert_eq!(items[2]["run_id"], second["id"]);
    // The second call's context holds the whole first exchange.
    let context = app.fake.requests()[1].body["messages"].to_string();
    assert!(context.contains("first answer"), "{context}");
}

#[tokio::test]
async fn reject_policy_refuses_a_busy_session() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    let busy_run = start_a_hanging_run(&app, &admin, &session).await;

    let refused = admin
        .message(&session, json!({"content": "now!", "if_busy": "reject"}))
        .await;
    refused.err(409, "session_busy");

    let cancelled = admin
        .post(&format!("/v1/runs/{busy_run}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.ok(200)["status"], "cancelled");
    app.fake.push(Reply::text("idle now"));
    let done = admin
        .message(&session, json!({"content": "now", "if_busy": "reject"}))
        .await;
    assert_eq!(done.ok(200)["run"]["status"], "completed");
    let texts: Vec<String> = admin
        .items(&session)
        .await
        .iter()
        .map(|i| i["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(!texts.iter().any(|t| t == "now!"), "{texts:?}");
}

#[tokio::test]
async fn interrupt_policy_cancels_the_busy_run_and_answers() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    let busy_run = start_a_hanging_run(&app, &admin, &session).await;

    app.fake.push(Reply::text("right away"));
    let done = admin
        .message(&session, json!({"content": "now!", "if_busy": "interrupt"}))
        .await;
    let done = done.ok(200);
    assert_eq!(done["run"]["status"], "completed", "{done}");
    assert_eq!(done["run"]["output"], "right away");
    assert_eq!(admin.wait_run(&busy_run).await["status"], "cancelled");
}

#[tokio::test]
async fn an_agents_if_busy_is_the_default_a_message_can_override() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    let changed = admin
        .patch("/v1/agents/bot", json!({"if_busy": "reject"}))
        .await;
    assert_eq!(changed.ok(200)["config"]["if_busy"], "reject");
    let busy_run = start_a_hanging_run(&app, &admin, &session).await;

    // No `if_busy`: the agent's `reject`.
    admin
        .message(&session, json!({"content": "now!"}))
        .await
        .err(409, "session_busy");
    // Said explicitly, the message's own policy wins.
    let queued = admin
        .message(
            &session,
            json!({"content": "after it", "if_busy": "queue", "background": true}),
        )
        .await;
    let queued_run = queued.ok(202)["run"]["id"].as_str().unwrap().to_owned();
    app.fake.push(Reply::text("done"));
    admin
        .post(&format!("/v1/runs/{busy_run}/cancel"), json!({}))
        .await
        .ok(200);
    assert_eq!(admin.wait_run(&queued_run).await["status"], "completed");
    admin
        .patch("/v1/agents/bot", json!({"if_busy": "sometimes"}))
        .await
        .err(400, "invalid_request");
}

/// Starts a run in `session` whose model call never answers; its id, once
/// the model has the request.
async fn start_a_hanging_run(app: &TestApp, admin: &common::Client, session: &str) -> String {
    app.fake.push(Reply::text("never").hang());
    let busy = admin
        .message(session, json!({"content": "slow", "background": true}))
        .await;
    let run = busy.ok(202)["run"]["id"].as_str().unwrap().to_owned();
    eventually(|| async { (app.fake.request_count() == 1).then_some(()) }).await;
    run
}
