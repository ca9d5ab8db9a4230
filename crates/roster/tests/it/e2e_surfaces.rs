//! One conversation through every surface of the real binary: made with
//! the Conversations API, a turn through Responses, one through A2A (its
//! `contextId` the conversation's id), one through the native API, one
//! through MCP (`continue_session` with its id) — the same session, so the agent sees every earlier turn whichever surface
//! brought it.

use crate::common;

use common::Server;
use roster_testkit::{FakeModelServer, Reply};
use serde_json::{json, Value};

fn answer(body: &Value) -> Reply {
    let said: Vec<String> = body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    let last = said.last().cloned().unwrap_or_default();
    if last == "what did I say" {
        return Reply::text(format!("you said: {}", said.join(" | ")));
    }
    Reply::text(format!("echo: {last}"))
}

#[tokio::test]
async fn a_conversation_is_one_session_in_every_surface() {
    let model = FakeModelServer::start().await;
    model.respond_with(answer);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let api = server.client();
    let (status, body) = api
        .post(
            "/v1/agents",
            json!({"name": "concierge", "instructions": "Help.", "model": "openai/gpt-4.1-mini"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, conversation) = api.post("/v1/conversations", json!({})).await;
    assert_eq!(status, 200, "{conversation}");
    let id = conversation["id"].as_str().expect("id").to_owned();

    let (status, response) = api
        .post(
            "/v1/responses",
            json!({"model": "concierge", "input": "first", "conversation": id}),
        )
        .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["output"][0]["content"][0]["text"], "echo: first");

    let a2a: Value = reqwest::Client::new()
        .post(format!("{}/v1/a2a/concierge", server.url))
        .bearer_auth(common::ADMIN_KEY)
        .header("A2A-Version", "1.0")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
            "messageId": "m-second", "role": "ROLE_USER", "contextId": id, "parts": [{"text": "second"}]}}}))
        .send()
        .await
        .expect("a2a")
        .json()
        .await
        .expect("json");
    let task = &a2a["result"]["task"];
    assert_eq!(task["contextId"], json!(id), "{a2a}");
    assert_eq!(task["artifacts"][0]["parts"][0]["text"], "echo: second");

    let (status, native) = api
        .post(
            &format!("/v1/sessions/{id}/messages"),
            json!({"content": "what did I say"}),
        )
        .await;
    assert_eq!(status, 200, "{native}");
    assert_eq!(
        native["run"]["output"],
        "you said: first | second | what did I say"
    );

    // MCP: the same session by its id.
    let mcp = reqwest::Client::new()
        .post(format!("{}/mcp", server.url))
        .bearer_auth(common::ADMIN_KEY)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "continue_session", "arguments": {"session": id, "message": "what did I say"}}}))
        .send()
        .await
        .expect("mcp")
        .text()
        .await
        .expect("body");
    assert!(
        mcp.contains("you said: first | second | what did I say | what did I say"),
        "{mcp}"
    );

    let (status, items) = api
        .get(&format!("/v1/conversations/{id}/items?order=asc"))
        .await;
    assert_eq!(status, 200, "{items}");
    let texts: Vec<&str> = items["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|i| i["content"][0]["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "first",
            "echo: first",
            "second",
            "echo: second",
            "what did I say",
            "you said: first | second | what did I say",
            "what did I say",
            "you said: first | second | what did I say | what did I say"
        ]
    );
}
