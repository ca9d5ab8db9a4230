//! The A2A server at the HTTP level: another tenant's key reaches none of
//! a tenant's tasks, contexts or agents; JSON-RPC errors carry A2A's codes.
//! The official client's own test is the binary's `e2e_a2a.rs`.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Client, Reply};
use serde_json::{json, Value};

async fn rpc(client: &Client, agent: &str, method: &str, params: Value) -> Value {
    let answer = client
        .send(
            client
                .request(reqwest::Method::POST, &format!("/v1/a2a/{agent}"))
                .header("A2A-Version", "1.0")
                .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

fn send(text: &str, context: Option<&str>) -> Value {
    let mut message = json!({"messageId": text, "role": "ROLE_USER", "parts": [{"text": text}]});
    if let Some(context) = context {
        message["contextId"] = json!(context);
    }
    json!({ "message": message })
}

#[tokio::test]
async fn another_tenant_reaches_no_task_no_context_and_no_agent() {
    let app = common::TestApp::start().await;
    let a = app.admin();
    a.agent("concierge", "openai/test-model").await;
    a.agent("only-a", "openai/test-model").await;
    app.fake.push(Reply::text("secret-zq answer"));
    let sent = rpc(&a, "concierge", "SendMessage", send("secret-zq", None)).await;
    let task = &sent["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{sent}");
    let (task_id, context) = (
        task["id"].as_str().unwrap(),
        task["contextId"].as_str().unwrap(),
    );

    let b = app.tenant_b();
    b.agent("concierge", "openai/test-model").await;
    for (method, params) in [
        ("GetTask", json!({"id": task_id})),
        ("CancelTask", json!({"id": task_id})),
        ("SubscribeToTask", json!({"id": task_id})),
    ] {
        let answer = rpc(&b, "concierge", method, params).await;
        assert_eq!(answer["error"]["code"], -32001, "{method}: {answer}");
    }
    let listed = rpc(&b, "concierge", "ListTasks", json!({})).await;
    assert_eq!(listed["result"]["tasks"], json!([]), "{listed}");
    let into = rpc(&b, "concierge", "SendMessage", send("x", Some(context))).await;
    assert_eq!(into["error"]["code"], -32602, "{into}");
    assert!(!into.to_string().contains("secret-zq"));
    assert_eq!(
        b.get("/v1/a2a/only-a/.well-known/agent-card.json")
            .await
            .status,
        404
    );
    let directory = b.get("/v1/a2a").await;
    assert!(
        !directory.body.to_string().contains("only-a"),
        "{}",
        directory.body
    );
    // A's task is as it was.
    let got = rpc(&a, "concierge", "GetTask", json!({"id": task_id})).await;
    assert_eq!(got["result"]["status"]["state"], "TASK_STATE_COMPLETED");
}

#[tokio::test]
async fn bad_requests_get_a2a_error_codes_and_change_nothing() {
    let app = common::TestApp::start().await;
    let a = app.admin();
    a.agent("concierge", "openai/test-model").await;
    let cases = [
        ("Nope", json!({}), -32601),
        ("SendMessage", json!({}), -32602),
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"url": "http://x", "mediaType": "image/png"}]}}),
            -32005,
        ),
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "taskId": "run_x", "parts": [{"text": "x"}]}}),
            -32004,
        ),
        (
            "SendMessage",
            json!({"message": {"messageId": "m", "contextId": "ses_nope", "parts": [{"text": "x"}]}}),
            -32602,
        ),
        ("GetTask", json!({}), -32602),
        ("GetTask", json!({"id": "run_nope"}), -32001),
        ("ListTasks", json!({"pageSize": 0}), -32602),
        ("CreateTaskPushNotificationConfig", json!({}), -32003),
    ];
    for (method, params, code) in cases {
        let answer = rpc(&a, "concierge", method, params.clone()).await;
        assert_eq!(answer["error"]["code"], code, "{method} {params}: {answer}");
        assert_eq!(answer["id"], 7);
    }
    let sessions = a.get("/v1/sessions").await;
    assert_eq!(
        sessions.ok(200)["data"],
        json!([]),
        "a refused message made no session"
    );
    let unknown_agent = rpc(&a, "nobody", "GetTask", json!({"id": "run_x"})).await;
    assert_eq!(unknown_agent["error"]["code"], -32001);
    let garbage = a
        .send(
            a.request(reqwest::Method::POST, "/v1/a2a/concierge")
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(garbage.body["error"]["code"], -32700);
    let anonymous = app.anon().post("/v1/a2a/concierge", json!({})).await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn a_key_without_the_sessions_scope_starts_nothing_through_any_surface() {
    let app = common::TestApp::start().await;
    let admin = app.admin();
    admin.agent("concierge", "openai/test-model").await;
    let created = admin
        .post(
            "/v1/keys",
            json!({"name": "auditor", "kind": "service", "scopes": ["ledger:read", "agents:read"]}),
        )
        .await
        .ok(201)
        .clone();
    let auditor = app.with_key(created["key"].as_str().unwrap());
    for (path, body) in [
        (
            "/v1/a2a/concierge",
            json!({"jsonrpc": "2.0", "id": 1, "method": "message/send",
            "params": {"message": {"messageId": "m", "parts": [{"text": "hi"}]}}}),
        ),
        (
            "/v1/responses",
            json!({"model": "concierge", "input": "hi"}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "concierge", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("/v1/conversations", json!({})),
    ] {
        auditor
            .post(path, body)
            .await
            .err(403, "insufficient_scope");
    }
    auditor
        .get("/v1/a2a/concierge/.well-known/agent-card.json")
        .await
        .err(403, "insufficient_scope");
    assert_eq!(admin.get("/v1/sessions").await.ok(200)["data"], json!([]));
}
