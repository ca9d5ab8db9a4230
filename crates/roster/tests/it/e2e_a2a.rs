//! The A2A server with the official `a2a-sdk` Python client, unmodified,
//! against the real binary: card discovery, send, the same context
//! continued, get, list with pages, stream, cancel, an approval surfacing
//! as input-required (also on re-subscribe), 0.3 names and shapes. The
//! checks are in `tests/clients/a2a_sdk.py`.

use crate::common;

use common::Server;
use roster_testkit::{FakeModelServer, Reply};
use serde_json::{json, Value};
use std::time::Duration;

fn answer(body: &Value) -> Reply {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let said: Vec<String> = messages
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    let last = said.last().cloned().unwrap_or_default();
    if last == "please nap" {
        return Reply::tool_call("call_n", "conversation_search", r#"{"query":"naps"}"#);
    }
    if last == "slow" {
        return Reply::text("finally").delayed(Duration::from_secs(3));
    }
    if last.contains("what did I say") {
        return Reply::text(format!("you said: {}", said.join(" | ")));
    }
    Reply::text(format!("echo: {last}"))
}

const POLICY: &str = r#"
permit(principal, action == Roster::Action::"invoke_agent", resource);
@approval("every nap needs a person")
permit(principal == Roster::Agent::"guarded", action == Roster::Action::"call_tool", resource == Roster::Tool::"conversation_search");
"#;

#[tokio::test]
async fn the_a2a_python_sdk_works_unmodified() {
    if !common::python_has("a2a") {
        return;
    }
    let model = FakeModelServer::start().await;
    model.respond_with(answer);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let api = server.client();
    for agent in [
        json!({"name": "concierge", "instructions": "Help.", "model": "openai/gpt-4.1-mini"}),
        json!({"name": "guarded", "instructions": "Nap.", "model": "openai/gpt-4.1-mini",
               "tools": ["conversation_search"]}),
    ] {
        let (status, body) = api.post("/v1/agents", agent).await;
        assert_eq!(status, 201, "{body}");
    }
    let status = reqwest::Client::new()
        .put(format!("{}/v1/policies/a2a", server.url))
        .bearer_auth(common::ADMIN_KEY)
        .json(&json!({ "text": POLICY }))
        .send()
        .await
        .expect("policy")
        .status();
    assert!(status.is_success(), "{status}");
    let url = server.url.clone();
    tokio::task::spawn_blocking(move || {
        common::run_client_script("a2a_sdk.py", &[&url, common::ADMIN_KEY]);
    })
    .await
    .expect("the script ran");
}
