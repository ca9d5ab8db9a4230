//! The OpenAI-compatible surface at the HTTP level: what another tenant's
//! key can reach (nothing), errors in OpenAI's envelope, and bad input
//! refused before anything is stored. The official SDKs' own tests are in
//! the binary's e2e tests (`e2e_openai.rs`).
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Reply, TestApp};
use serde_json::{json, Value};

async fn setup() -> (TestApp, String, String) {
    let app = TestApp::start().await;
    let a = app.admin();
    a.create_agent(json!({
        "name": "concierge", "model": "openai/test-model",
        "tools": ["memory_append"], "memory_blocks": [{"label": "notes", "value": ""}],
    }))
    .await;
    app.fake.push(Reply::text("hello from a"));
    let created = a
        .post(
            "/v1/responses",
            json!({"model": "concierge", "input": "secret-zq"}),
        )
        .await;
    let response = created.ok(200).clone();
    assert_eq!(response["output"][0]["content"][0]["text"], "hello from a");
    let conversation = a
        .post("/v1/conversations", json!({"metadata": {"k": "v"}}))
        .await
        .ok(200)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        app,
        response["id"].as_str().unwrap().to_owned(),
        conversation,
    )
}

#[tokio::test]
async fn another_tenant_reaches_no_response_and_no_conversation() {
    let (app, response, conversation) = setup().await;
    let b = app.tenant_b();
    b.agent("concierge", "openai/test-model").await;
    for path in [
        format!("/v1/responses/{response}"),
        format!("/v1/responses/{response}/input_items"),
        format!("/v1/responses/{response}?stream=true"),
        format!("/v1/conversations/{conversation}"),
        format!("/v1/conversations/{conversation}/items"),
        format!("/v1/conversations/{conversation}/items/msg_1"),
    ] {
        let answer = b.get(&path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert!(!answer.body.to_string().contains("secret-zq"), "{path}");
    }
    for (path, body) in [
        (format!("/v1/responses/{response}/cancel"), json!({})),
        (
            format!("/v1/conversations/{conversation}"),
            json!({"metadata": {"x": "y"}}),
        ),
        (
            format!("/v1/conversations/{conversation}/items"),
            json!({"items": [{"role": "user", "content": "injected"}]}),
        ),
        (
            "/v1/responses".to_owned(),
            json!({"model": "concierge", "input": "x", "previous_response_id": response}),
        ),
        (
            "/v1/responses".to_owned(),
            json!({"model": "concierge", "input": "x", "conversation": conversation}),
        ),
    ] {
        let answer = b.post(&path, body).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    for path in [
        format!("/v1/responses/{response}"),
        format!("/v1/conversations/{conversation}"),
        format!("/v1/conversations/{conversation}/items/msg_1"),
    ] {
        assert_eq!(b.delete(&path).await.status, 404, "{path}");
    }
    // A's are as they were.
    let a = app.admin();
    a.get(&format!("/v1/responses/{response}")).await.ok(200);
    let conv = a.get(&format!("/v1/conversations/{conversation}")).await;
    assert_eq!(conv.ok(200)["metadata"], json!({"k": "v"}));
    let items = a
        .get(&format!("/v1/conversations/{conversation}/items"))
        .await;
    assert_eq!(items.ok(200)["data"], json!([]));
}

#[tokio::test]
async fn errors_use_openais_envelope_and_say_where() {
    let (app, response, conversation) = setup().await;
    let a = app.admin();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"input": "x"}), 400, "model"),
        (json!({"model": "nobody", "input": "x"}), 404, "model"),
        (json!({"model": "concierge"}), 400, "input"),
        (json!({"model": "concierge", "input": 5}), 400, "input"),
        (
            json!({"model": "concierge", "input": [{"role": "robot", "content": "x"}]}),
            400,
            "input[0].role",
        ),
        (
            json!({"model": "concierge", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}),
            400,
            "input[0].content[0]",
        ),
        (
            json!({"model": "concierge", "input": "x", "previous_response_id": response, "conversation": conversation}),
            400,
            "conversation",
        ),
        (
            json!({"model": "concierge", "input": "x", "tools": [{"type": "web_search"}]}),
            400,
            "tools[0]",
        ),
        (
            json!({"model": "concierge", "input": "x", "tools": [{"type": "function", "name": "bad name"}]}),
            400,
            "body",
        ),
        (
            json!({"model": "concierge", "input": "x", "tools": [{"type": "function", "name": "memory_append"}]}),
            400,
            "body",
        ),
        (
            json!({"model": "concierge", "input": "x", "metadata": {"k": 1}}),
            400,
            "metadata",
        ),
    ];
    for (body, status, param) in cases {
        let answer = a.post("/v1/responses", body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        let error = &answer.body["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(
            error["type"].is_string() && error["code"].is_string(),
            "{answer:?}"
        );
        if param != "body" {
            assert_eq!(error["param"], param, "{body}: {error}");
        }
        assert_eq!(answer.headers["x-should-retry"], "false", "{body}");
    }
    // Nothing was made by the refused requests: the one session so far,
    // with its one run.
    let sessions = a.get("/v1/sessions").await;
    let sessions = sessions.ok(200)["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let conv = a
        .get(&format!("/v1/conversations/{conversation}/items"))
        .await;
    assert_eq!(conv.ok(200)["data"], json!([]));
}

#[tokio::test]
async fn a_busy_conversation_refuses_added_items_without_a_retry() {
    let (app, _, conversation) = setup().await;
    let a = app.admin();
    app.fake
        .push(Reply::text("late").delayed(std::time::Duration::from_secs(2)));
    let started = a
        .post(
            "/v1/responses",
            json!({"model": "concierge", "input": "work", "conversation": conversation, "background": true}),
        )
        .await;
    started.ok(200);
    let refused = a
        .post(
            &format!("/v1/conversations/{conversation}/items"),
            json!({"items": [{"role": "user", "content": "meanwhile"}]}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(refused.headers["x-should-retry"], "false");
    assert_eq!(refused.body["error"]["code"], "session_busy");
}

#[tokio::test]
async fn a_refused_first_turn_leaves_no_session_through_any_surface() {
    let app = TestApp::start().await;
    let a = app.admin();
    a.agent("vault", "openai/test-model").await;
    a.put(
        "/v1/policies/closed",
        json!({"text": "forbid(principal, action == Roster::Action::\"invoke_agent\", resource == Roster::Agent::\"vault\");"}),
    )
    .await
    .ok(201);
    let refused = a
        .post("/v1/responses", json!({"model": "vault", "input": "open"}))
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "denied_by_policy");
    let refused = a
        .post(
            "/v1/chat/completions",
            json!({"model": "vault", "messages": [{"role": "user", "content": "open"}]}),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let refused = a
        .send(
            a.request(reqwest::Method::POST, "/v1/a2a/vault")
                .header("A2A-Version", "1.0")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
                    "params": {"message": {"messageId": "m", "parts": [{"text": "open"}]}}})),
        )
        .await;
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("denied_by_policy"),
        "{}",
        refused.body
    );
    let sessions = a.get("/v1/sessions").await;
    assert_eq!(
        sessions.ok(200)["data"],
        json!([]),
        "no session stays behind"
    );
}
