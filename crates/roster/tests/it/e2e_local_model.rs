//! End to end with no provider and no key: the server offers its built-in
//! model (the real SmolLM2-135M-Instruct, from the file
//! `ROSTER_TEST_LOCAL_MODEL` names, which `.ci/run` obtains as a user
//! would), an agent made without a model uses it, and a chat streams its
//! answer over SSE.

use crate::common;

use common::Server;
use std::io::Write;
use std::process::{Command, Stdio};

#[tokio::test]
async fn with_no_provider_the_built_in_model_answers_a_chat() {
    let Some(model) = roster_testkit::local_model::local_model_file() else {
        return;
    };
    let cache = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(&model, cache.path().join("SmolLM2-135M-Instruct.Q4_1.gguf"))
        .expect("link the model into the cache");
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start_without_providers(&dir.path().join("data"), cache.path()).await;

    let (ok, models, err) = common::cli(&server, &["models"]);
    assert!(ok, "{err}");
    assert!(
        models.lines().any(|l| l.contains("local/smollm2-135m")
            && l.contains("local")
            && l.contains("default")),
        "{models}"
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
