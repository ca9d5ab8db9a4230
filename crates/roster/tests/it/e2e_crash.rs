//! The durability proof: SIGKILL the real binary in the middle of a run,
//! start it again, and check that the run resumed from its journal without
//! re-sending a completed model call or re-running a completed tool call.

use crate::common;

use common::Server;
use roster_testkit::{FakeModelServer, Reply};
use serde_json::json;
use std::time::{Duration, Instant};

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sigkill_mid_run_resumes_from_the_journal_sqlite() {
    sigkill_mid_run(None).await;
}

#[tokio::test]
async fn sigkill_mid_run_resumes_from_the_journal_postgres() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    sigkill_mid_run(Some(url)).await;
}

async fn sigkill_mid_run(database_url: Option<String>) {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env: Vec<(&str, &str)> = database_url
        .iter()
        .map(|u| ("ROSTER_DATABASE_URL", u.as_str()))
        .collect();
    let mut server = Server::start(dir.path(), &model.openai_base_url(), &env).await;
    let api = server.client();
    let (status, body) = api
        .post(
            "/v1/agents",
            json!({"name": "keeper", "model": "openai/m", "tools": ["memory_append"],
                   "memory_blocks": [{"label": "notes", "value": ""}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, session) = api.post("/v1/sessions", json!({"agent": "keeper"})).await;
    let sid = session["id"].as_str().expect("id").to_owned();

    // Step 1: the model asks for a memory edit (completes at once).
    // Step 2: the tool runs. Step 3: the model call hangs: we kill there.
    model.push(Reply::tool_call(
        "c1",
        "memory_append",
        r#"{"label":"notes","content":"remember me"}"#,
    ));
    model.push(Reply::text("too late").hang());
    let (status, first) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "note this", "background": true}),
        )
        .await;
    assert_eq!(status, 202, "{first}");
    let run1 = first["run"]["id"].as_str().expect("run id").to_owned();
    // A second input queues behind the first; it must survive the crash too.
    let (status, second) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "and then?", "background": true}),
        )
        .await;
    assert_eq!(status, 202, "{second}");
    let run2 = second["run"]["id"].as_str().expect("run id").to_owned();

    wait_for("the third model call to be in flight", || {
        model.request_count() == 2
    })
    .await;
    server.kill();

    model.push(Reply::text("noted"));
    model.push(Reply::text("then nothing"));
    let server = Server::start(dir.path(), &model.openai_base_url(), &env).await;
    let api = server.client();
    let mut finished = json!(null);
    for _ in 0..400 {
        let (_, run) = api.get(&format!("/v1/runs/{run2}")).await;
        if run["status"] == "completed" || run["status"] == "failed" {
            finished = run;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(finished["status"], "completed", "{finished}");

    // Model calls: 1 (tool call), 2 (killed), 3 (resent), 4 (run 2). The
    // completed first call was not sent again.
    assert_eq!(model.request_count(), 4);
    let resent = &model.requests()[2].body["messages"];
    let roles: Vec<&str> = resent
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(
        roles,
        vec!["system", "user", "assistant", "tool"],
        "the resent call saw the journaled tool result"
    );

    // The tool ran exactly once.
    let (_, memory) = api.get("/v1/agents/keeper/memory").await;
    assert_eq!(memory["blocks"][0]["value"], "remember me");
    assert_eq!(memory["history"].as_array().expect("history").len(), 2);

    // Run 1 finished with the resent call's answer; its journal is whole.
    let (_, run) = api.get(&format!("/v1/runs/{run1}")).await;
    assert_eq!(run["status"], "completed", "{run}");
    assert_eq!(run["output"], "noted");
    let steps: Vec<(i64, &str, &str)> = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["n"].as_i64().unwrap_or(-1),
                s["kind"].as_str().unwrap_or(""),
                s["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (1, "model_call", "completed"),
            (2, "tool_call", "completed"),
            (3, "model_call", "completed")
        ]
    );

    // The history has each item once, in order, and run 2 came after run 1.
    let (_, items) = api.get(&format!("/v1/sessions/{sid}/items")).await;
    let kinds: Vec<String> = items["data"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["type"].as_str().unwrap_or(""),
                i["text"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "user_message:note this",
            "assistant_message:",
            "tool_result:",
            "assistant_message:noted",
            "user_message:and then?",
            "assistant_message:then nothing"
        ]
    );
}
