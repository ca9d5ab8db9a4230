//! End to end: the real binary, a fake model server, and a conversation
//! that survives a restart.

use crate::common;

use common::Server;
use roster_testkit::{FakeModelServer, Reply};
use serde_json::json;

#[tokio::test]
async fn chat_with_memory_tool_across_a_restart() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let api = server.client();

    let (status, agent) = api
        .post(
            "/v1/agents",
            json!({
                "name": "helper",
                "instructions": "You are helpful.",
                "model": "openai/gpt-4.1-mini",
                "tools": ["memory_append"],
                "memory_blocks": [{"label": "human", "value": "", "limit": 200}]
            }),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let (status, session) = api.post("/v1/sessions", json!({"agent": "helper"})).await;
    assert_eq!(status, 201, "{session}");
    let sid = session["id"].as_str().expect("session id").to_owned();

    model.push(Reply::tool_call(
        "c1",
        "memory_append",
        r#"{"label":"human","content":"Name: Ada"}"#,
    ));
    model.push(Reply::text("Nice to meet you, Ada."));
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "I am Ada."}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["run"]["status"], "completed", "{result}");
    assert_eq!(result["run"]["output"], "Nice to meet you, Ada.");
    let kinds: Vec<&str> = result["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["type"].as_str())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "user_message",
            "assistant_message",
            "tool_result",
            "assistant_message"
        ]
    );

    server.kill();
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let api = server.client();
    model.push(Reply::text("You are Ada."));
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "Who am I?"}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["run"]["output"], "You are Ada.");

    // The third model call saw the pinned block and the whole history.
    let last = model.last_request().expect("request").body;
    let system = last["messages"][0]["content"]
        .as_str()
        .expect("system")
        .to_owned();
    assert!(system.contains("Name: Ada"), "{system}");
    assert_eq!(
        last["messages"].as_array().expect("messages").len(),
        1 + 4 + 1
    );

    let (_, memory) = api.get("/v1/agents/helper/memory").await;
    assert_eq!(memory["blocks"][0]["value"], "Name: Ada");
    assert_eq!(memory["history"].as_array().expect("history").len(), 2);
    let (_, items) = api.get(&format!("/v1/sessions/{sid}/items")).await;
    assert_eq!(items["data"].as_array().expect("items").len(), 6);
    let (_, ledger) = api.get("/v1/ledger").await;
    assert_eq!(ledger["data"].as_array().expect("ledger").len(), 3);
}
