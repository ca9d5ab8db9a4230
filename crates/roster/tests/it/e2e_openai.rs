//! The OpenAI-compatible surface with the official `openai` Python SDK,
//! unmodified, against the real binary on both backends: create, stream,
//! the strict stream helper, resuming, a function-tool round trip,
//! conversations (the same sessions as the native API), background and
//! cancel, Chat Completions. The checks are in `tests/clients/openai_sdk.py`.

use crate::common;

use common::Server;
use roster_testkit::{FakeModelServer, Reply};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn the_openai_python_sdk_works_unmodified_sqlite() {
    openai_sdk(None).await;
}

#[tokio::test]
async fn the_openai_python_sdk_works_unmodified_postgres() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    openai_sdk(Some(url)).await;
}

/// The fake model's part in the script (see the script's docstring).
fn answer(body: &Value) -> Reply {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let text = |m: &Value| m["content"].as_str().unwrap_or_default().to_owned();
    if let Some(last) = messages.last().filter(|m| m["role"] == "tool") {
        return Reply::text(format!("It rains: {}", text(last)));
    }
    let said: Vec<String> = messages
        .iter()
        .filter(|m| m["role"] == "user")
        .map(text)
        .collect();
    let last = said.last().cloned().unwrap_or_default();
    let offered = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    if offered && (last.contains("weather") || body["tool_choice"] == "required") {
        let city = if last.contains("Bergen") {
            "Bergen"
        } else {
            "Oslo"
        };
        return Reply::tool_call("call_w", "get_weather", &json!({"city": city}).to_string());
    }
    if last == "slow" {
        return Reply::text("finally").delayed(Duration::from_secs(3));
    }
    if last.contains("what did I say") {
        return Reply::text(format!("you said: {}", said.join(" | ")));
    }
    Reply::text(format!("echo: {last}"))
}

async fn openai_sdk(database_url: Option<String>) {
    if !common::python_has("openai") {
        return;
    }
    let model = FakeModelServer::start().await;
    model.respond_with(answer);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = Vec::new();
    if let Some(url) = &database_url {
        env.push(("ROSTER_DATABASE_URL", url.as_str()));
    }
    let server = Server::start(dir.path(), &model.openai_base_url(), &env).await;
    let api = server.client();
    let (status, body) = api
        .post(
            "/v1/agents",
            json!({"name": "concierge", "instructions": "Help.", "model": "openai/gpt-4.1-mini"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let url = server.url.clone();
    tokio::task::spawn_blocking(move || {
        common::run_client_script("openai_sdk.py", &[&url, common::ADMIN_KEY, "concierge"]);
    })
    .await
    .expect("the script ran");
}

/// The `openai` npm package's directory (`ROSTER_TEST_NODE_OPENAI`, set by
/// `.ci/run`); without it the test is skipped with a notice, except in CI.
fn node_openai() -> Option<String> {
    match std::env::var("ROSTER_TEST_NODE_OPENAI") {
        Ok(dir) => Some(dir),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set ROSTER_TEST_NODE_OPENAI (see .ci/run)"
            );
            eprintln!("notice: ROSTER_TEST_NODE_OPENAI is not set; skipping the npm SDK test");
            None
        }
    }
}

#[tokio::test]
async fn the_openai_npm_package_works_unmodified() {
    let Some(modules) = node_openai() else {
        return;
    };
    let model = FakeModelServer::start().await;
    model.respond_with(answer);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let (status, body) = server
        .client()
        .post(
            "/v1/agents",
            json!({"name": "concierge", "instructions": "Help.", "model": "openai/gpt-4.1-mini"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let url = server.url.clone();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/openai_sdk.cjs");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .args([&modules, &url, common::ADMIN_KEY, "concierge"])
            .output()
            .expect("run node")
    })
    .await
    .expect("the script ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim_end().ends_with("ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
