//! A fleet on the real binary: a schedule firing every second across a
//! SIGKILL (none lost, none doubled), a delegation chain killed while the
//! child runs (both resume; the tool runs once; the answer arrives once),
//! and twenty sessions appending to one shared block at once.

use crate::common;

use common::{until, Server};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::{json, Value};
use std::time::Duration;

fn env(url: Option<&String>) -> Vec<(&str, &str)> {
    url.iter()
        .map(|u| ("ROSTER_DATABASE_URL", u.as_str()))
        .collect()
}

#[tokio::test]
async fn a_schedule_every_second_survives_a_sigkill_sqlite() {
    schedule_across_sigkill(None).await;
}

#[tokio::test]
async fn a_schedule_every_second_survives_a_sigkill_postgres() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    schedule_across_sigkill(Some(url)).await;
}

async fn schedule_across_sigkill(database_url: Option<String>) {
    let model = FakeModelServer::start().await;
    model.respond_with(|_| Reply::text("tick noted"));
    let dir = tempfile::tempdir().expect("tempdir");
    let env = env(database_url.as_ref());
    let mut server = Server::start(dir.path(), &model.openai_base_url(), &env).await;
    let api = server.client();
    let (status, body) = api
        .post("/v1/agents", json!({"name": "ticker", "model": "openai/m"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, schedule) = api
        .post(
            "/v1/schedules",
            json!({"agent": "ticker", "cron": "* * * * * *", "input": "tick", "catch_up": "all"}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    let id = schedule["id"].as_str().expect("id").to_owned();
    let fired = |api: common::Api, id: String, at_least: i64| async move {
        let (_, s) = api.get(&format!("/v1/schedules/{id}")).await;
        (s["fired_count"].as_i64().unwrap_or(0) >= at_least).then_some(())
    };
    until("three firings", Duration::from_secs(20), || {
        fired(server.client(), id.clone(), 3)
    })
    .await;
    server.kill();
    // Down for a while: those fire times are owed (catch-up `all`).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let server = Server::start(dir.path(), &model.openai_base_url(), &env).await;
    let api = server.client();
    let (_, before) = api.get(&format!("/v1/schedules/{id}")).await;
    let target = before["fired_count"].as_i64().unwrap_or(0) + 3;
    until("firings after the restart", Duration::from_secs(20), || {
        fired(server.client(), id.clone(), target)
    })
    .await;
    let (status, _) = api
        .post(&format!("/v1/schedules/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, detail) = api.get(&format!("/v1/schedules/{id}")).await;
    let firings = detail["firings"].as_array().expect("firings");
    let mut times: Vec<i64> = firings
        .iter()
        .map(|f| {
            chrono::DateTime::parse_from_rfc3339(f["fire_at"].as_str().unwrap_or_default())
                .map(|t| t.timestamp())
                .unwrap_or_default()
        })
        .collect();
    times.sort_unstable();
    // One firing per second, from the first to the last: none lost across
    // the kill and the downtime, none doubled.
    let expected: Vec<i64> = (times[0]..=times[times.len() - 1]).collect();
    assert_eq!(times, expected, "{detail}");
    assert!(firings
        .iter()
        .all(|f| f["outcome"] == "started" && f["run_id"].is_string()));
    let runs: std::collections::HashSet<&str> = firings
        .iter()
        .filter_map(|f| f["run_id"].as_str())
        .collect();
    assert_eq!(runs.len(), firings.len(), "a run per firing");
    // Every run finishes.
    for run in runs {
        until("the firing's run", Duration::from_secs(20), || {
            let api = server.client();
            async move {
                let (_, r) = api.get(&format!("/v1/runs/{run}")).await;
                (r["status"] == "completed").then_some(())
            }
        })
        .await;
    }
}

#[tokio::test]
async fn a_delegation_chain_survives_a_sigkill_while_the_child_runs() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let api = server.client();
    for body in [
        json!({"name": "researcher", "model": "openai/m", "description": "Finds facts.",
               "tools": ["memory_append"], "memory_blocks": [{"label": "findings", "value": "", "scope": "shared"}]}),
        json!({"name": "coordinator", "model": "openai/m", "tools": ["agent:researcher"],
               "memory_blocks": [{"label": "findings", "value": "", "scope": "shared"}]}),
    ] {
        let (status, made) = api.post("/v1/agents", body).await;
        assert_eq!(status, 201, "{made}");
    }
    let (_, session) = api
        .post("/v1/sessions", json!({"agent": "coordinator"}))
        .await;
    let sid = session["id"].as_str().expect("id").to_owned();
    model.push(Reply::tool_call(
        "c1",
        "ask_researcher",
        r#"{"input":"find X"}"#,
    ));
    model.push(Reply::tool_call(
        "t1",
        "memory_append",
        r#"{"label":"findings","content":"X is 42"}"#,
    ));
    model.push(Reply::text("never").hang());
    let (status, started) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "what is X?", "background": true}),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    let root = started["run"]["id"].as_str().expect("run").to_owned();
    until(
        "the researcher's second model call",
        Duration::from_secs(20),
        || {
            let n = model.request_count();
            async move { (n == 3).then_some(()) }
        },
    )
    .await;
    server.kill();

    model.push(Reply::text("X is 42, noted"));
    model.push(Reply::text("The researcher says X is 42."));
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let api = server.client();
    let done = until("the coordinator's answer", Duration::from_secs(30), || {
        let api = server.client();
        let root = root.clone();
        async move {
            let (_, r) = api.get(&format!("/v1/runs/{root}")).await;
            (r["status"] == "completed").then_some(r)
        }
    })
    .await;
    assert_eq!(done["output"], "The researcher says X is 42.");
    // 3 before the kill, the researcher's resent call, the coordinator's.
    assert_eq!(model.request_count(), 5);
    let last = &model.requests()[4].body["messages"];
    assert!(last.to_string().contains("X is 42, noted"), "{last}");
    // The tool ran once; its version names the whole chain.
    let (_, block) = api.get("/v1/agents/coordinator/blocks/findings").await;
    assert_eq!(block["value"], "X is 42", "{block}");
    let history = block["history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    let chain = history[1]["principal"].as_str().unwrap_or_default();
    assert!(
        chain.starts_with("key:") && chain.ends_with("> agent:coordinator > agent:researcher"),
        "{chain}"
    );
    // One child, completed, in the tree with both agents' model calls.
    let (_, tree) = api.get(&format!("/v1/runs/{root}/tree")).await;
    assert_eq!(tree["runs"], 2, "{tree}");
    let child = &tree["root"]["children"][0];
    assert_eq!(child["agent"], "researcher");
    assert_eq!(child["status"], "completed");
    // Four answered calls; the one killed mid-way never answered.
    assert_eq!(tree["total"]["model_calls"], 4, "{tree}");
    assert_eq!(
        child["usage"]["model_calls"], 2,
        "charged to the researcher"
    );
    let (ok, out, err) = common::cli(&server, &["run", "tree", &root]);
    assert!(ok, "{err}");
    assert!(out.contains("researcher [call] completed"), "{out}");
}

#[tokio::test]
async fn twenty_sessions_append_to_one_shared_block_at_once() {
    let model = FakeModelServer::start().await;
    // Each session's first call appends its own note; its second answers.
    model.respond_with(|body: &Value| {
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let last = messages.last().cloned().unwrap_or_default();
        if last["role"] == "tool" {
            return Reply::text("noted");
        }
        let note = last["content"].as_str().unwrap_or_default().to_owned();
        Reply::tool_call(
            "a1",
            "memory_append",
            &json!({"label": "project", "content": note}).to_string(),
        )
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let api = server.client();
    for name in ["writer-a", "writer-b"] {
        let (status, made) = api
            .post(
                "/v1/agents",
                json!({"name": name, "model": "openai/m", "tools": ["memory_append"],
                       "memory_blocks": [{"label": "project", "value": "Team log", "scope": "shared", "limit": 50000}]}),
            )
            .await;
        assert_eq!(status, 201, "{made}");
    }
    let mut runs = Vec::new();
    for i in 0..20 {
        let agent = if i % 2 == 0 { "writer-a" } else { "writer-b" };
        let (_, session) = api.post("/v1/sessions", json!({"agent": agent})).await;
        let sid = session["id"].as_str().expect("id").to_owned();
        let (status, started) = api
            .post(
                &format!("/v1/sessions/{sid}/messages"),
                json!({"content": format!("note {i:02}"), "background": true}),
            )
            .await;
        assert_eq!(status, 202, "{started}");
        runs.push(started["run"]["id"].as_str().expect("run").to_owned());
    }
    for run in &runs {
        until("every writer", Duration::from_secs(30), || {
            let api = server.client();
            let run = run.clone();
            async move {
                let (_, r) = api.get(&format!("/v1/runs/{run}")).await;
                (r["status"] == "completed").then_some(())
            }
        })
        .await;
    }
    let (_, block) = api.get("/v1/agents/writer-b/blocks/project").await;
    let value = block["value"].as_str().unwrap_or_default();
    let mut notes: Vec<&str> = value.lines().skip(1).collect();
    notes.sort_unstable();
    let expected: Vec<String> = (0..20).map(|i| format!("note {i:02}")).collect();
    assert_eq!(notes, expected, "{value}");
    assert_eq!(block["version"], 21);
}

#[tokio::test]
async fn a_signed_webhook_starts_a_run_and_a_forged_one_is_refused() {
    use hmac::{Hmac, Mac};
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), &model.openai_base_url(), &[]).await;
    let api = server.client();
    let (status, made) = api
        .post(
            "/v1/agents",
            json!({"name": "triager", "model": "openai/m"}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let (ok, out, err) = common::cli(
        &server,
        &[
            "trigger",
            "add",
            "triager",
            "--template",
            "Alert: {{payload.alert}}",
        ],
    );
    assert!(ok, "{err}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let (url, secret) = (field("url"), field("secret"));
    assert!(
        url.starts_with(&server.url) && secret.starts_with("whsec_"),
        "{out}"
    );
    let body = br#"{"alert": "disk full on db-1"}"#;
    let sign = |key: &str, at: i64| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("key");
        mac.update(format!("{at}.").as_bytes());
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let now = chrono::Utc::now().timestamp();
    let http = reqwest::Client::new();
    let send = |signature: String| {
        http.post(&url)
            .header("content-type", "application/json")
            .header("x-roster-timestamp", now.to_string())
            .header("x-roster-signature", signature)
            .body(body.to_vec())
            .send()
    };
    let forged = send(sign("whsec_not-the-secret", now)).await.expect("send");
    assert_eq!(forged.status(), 401);
    model.push(Reply::text("paging the on-call engineer"));
    let accepted = send(sign(&secret, now)).await.expect("send");
    assert_eq!(accepted.status(), 202);
    let accepted: Value = accepted.json().await.expect("json");
    let run = accepted["run_id"].as_str().expect("run").to_owned();
    let done = until("the hook's run", Duration::from_secs(20), || {
        let api = server.client();
        let run = run.clone();
        async move {
            let (_, r) = api.get(&format!("/v1/runs/{run}")).await;
            (r["status"] == "completed").then_some(r)
        }
    })
    .await;
    assert_eq!(done["input"], "Alert: disk full on db-1");
    assert_eq!(
        model.request_count(),
        1,
        "the forged delivery started nothing"
    );
}
