//! End to end with no provider and no key: the server offers its built-in
//! model (the real SmolLM2-135M-Instruct, from the file
//! `ROSTER_TEST_LOCAL_MODEL` names, which `.ci/run` obtains as a user
//! would), an agent made without a model uses it, and a chat streams its
//! answer over SSE.

use crate::common;

use common::Server;
use std::io::Write;
use std::process::{Command, Stdio};

/// A server with no provider configured, whose model cache holds the
/// test model (`None` where no model file is named, outside CI).
async fn built_in_server() -> Option<(Server, [tempfile::TempDir; 2])> {
    let model = roster_testkit::local_model::local_model_file()?;
    let cache = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(&model, cache.path().join("SmolLM2-135M-Instruct.Q4_1.gguf"))
        .expect("link the model into the cache");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_without_providers(&dir.path().join("data"), cache.path()).await;
    Some((server, [cache, dir]))
}

#[tokio::test]
async fn with_no_provider_the_built_in_model_answers_a_chat() {
    let Some((server, _dirs)) = built_in_server().await else {
        return;
    };

    let (ok, models, err) = common::cli(&server, &["models"]);
    assert!(ok, "{err}");
    assert!(
        models.lines().any(|l| l.contains("local/smollm2-135m")
            && l.contains("local")
            && l.contains("default")),
        "{models}"
    );
    // The in-process model shows its queue; nothing runs yet.
    let (_, catalogue) = server.client().get("/v1/models").await;
    assert_eq!(
        catalogue["providers"][0]["queue"],
        serde_json::json!({"running": 0, "waiting": 0}),
        "{catalogue}"
    );
    let (ok, out, err) = common::cli(&server, &["agent", "create", "helper"]);
    assert!(ok, "{out}{err}");
    let (_, agent) = server.client().get("/v1/agents/helper").await;
    assert_eq!(agent["config"]["model"], "local/smollm2-135m", "{agent}");

    // `roster chat` streams the run's deltas (SSE) to the terminal.
    let mut chat = Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(["chat", "helper"])
        .env("ROSTER_URL", &server.url)
        .env("ROSTER_API_KEY", common::ADMIN_KEY)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("roster chat");
    chat.stdin
        .take()
        .expect("stdin")
        .write_all(b"What is the capital of France?\n")
        .expect("ask");
    let out = chat.wait_with_output().expect("chat ends with its input");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.trim().len() > 3, "{stdout}");
    assert!(!stdout.contains("<|im_end|>"), "{stdout}");

    // The call is in the ledger like any provider's, with real token counts.
    let (_, ledger) = server.client().get("/v1/ledger").await;
    let entry = &ledger["data"][0];
    assert_eq!(entry["provider"], "local", "{ledger}");
    assert_eq!(entry["model"], "smollm2-135m", "{ledger}");
    assert!(entry["tokens_in"].as_u64().unwrap_or(0) > 10, "{ledger}");
    assert!(entry["tokens_out"].as_u64().unwrap_or(0) > 0, "{ledger}");
}

/// The built-in model calls a tool through the whole runtime loop: the
/// agent requires a tool call on the run's first step, the call is held to
/// the tool's schema by constrained decoding, the tool runs, and the
/// model's second step (free to answer) ends the run.
#[tokio::test]
async fn the_built_in_model_makes_a_well_formed_tool_call() {
    let Some((server, _dirs)) = built_in_server().await else {
        return;
    };

    let (ok, out, err) = common::cli(
        &server,
        &[
            "agent",
            "create",
            "noter",
            "--tool",
            "memory_append",
            "--tool-choice",
            "required",
            "--block",
            "notes=",
            "--max-steps",
            "2",
        ],
    );
    assert!(ok, "{out}{err}");
    let client = server.client();
    let (status, session) = client
        .post("/v1/sessions", serde_json::json!({"agent": "noter"}))
        .await;
    assert_eq!(status, 201, "{session}");
    let id = session["id"].as_str().expect("session id");
    let (status, result) = client
        .post(
            &format!("/v1/sessions/{id}/messages"),
            serde_json::json!({"content": "Remember in your notes that my favourite colour is green."}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    // After its forced call the model answers, or keeps calling until the
    // repeated-call guard or the step limit ends the run: each is the
    // runtime loop working; which one is the small model's judgement.
    let status = result["run"]["status"].as_str().unwrap_or_default();
    let code = result["run"]["error"]["code"].as_str().unwrap_or_default();
    assert!(
        status == "completed"
            || (status == "failed" && ["repeated_tool_call", "max_steps_exceeded"].contains(&code)),
        "{result}"
    );

    let items = result["items"].as_array().expect("items");
    let calls: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["type"] == "assistant_message")
        .filter_map(|i| i["tool_calls"].as_array())
        .flatten()
        .collect();
    assert!(
        !calls.is_empty(),
        "the first step must call a tool: {result}"
    );
    for content in &calls {
        assert_eq!(content["name"], "memory_append", "{content}");
        // Valid for memory_append's schema: exactly `label` and `content`,
        // both strings.
        let args: serde_json::Value =
            serde_json::from_str(content["arguments"].as_str().expect("arguments as text"))
                .expect("arguments are JSON");
        let args = args.as_object().expect("an object");
        assert_eq!(args.len(), 2, "{args:?}");
        // `label` is held to the agent's blocks.
        assert_eq!(args["label"], "notes", "{args:?}");
        assert!(args["content"].is_string(), "{args:?}");
    }
    let results = items.iter().filter(|i| i["type"] == "tool_result").count();
    assert_eq!(results, calls.len(), "every call ran: {result}");
    // No call markup leaks into what the model said.
    assert!(!result.to_string().contains("<tool_call>"), "{result}");

    // Two model calls (the forced call, then the answer), both in the ledger.
    let (_, ledger) = client.get("/v1/ledger").await;
    let local_calls = ledger["data"]
        .as_array()
        .expect("ledger")
        .iter()
        .filter(|e| e["provider"] == "local")
        .count();
    assert!(local_calls >= 2, "{ledger}");

    // The calls ran: the block holds what the model wrote.
    let (_, memory) = client.get("/v1/agents/noter/memory").await;
    let first = calls[0]["arguments"].as_str().unwrap_or_default();
    let written: serde_json::Value = serde_json::from_str(first).unwrap_or_default();
    let content = written["content"].as_str().unwrap_or_default();
    assert!(
        !content.is_empty() && memory.to_string().contains(&content.replace('"', "\\\"")),
        "{memory}"
    );

    // Whichever way the run ended, the session takes the next message.
    let (status, next) = client
        .post(
            &format!("/v1/sessions/{id}/messages"),
            serde_json::json!({"content": "Thanks!"}),
        )
        .await;
    assert_eq!(status, 200, "{next}");
    assert!(next["run"]["status"].is_string(), "{next}");
}
