//! Outages with the real binary: a run outlasts a minute-long provider
//! outage (503s, then refused connections) with a SIGKILL of the server in
//! the middle of its wait, resuming the wait on the same clock after the
//! restart; `roster run show` says what it waits for; a run whose patience
//! ran out is retried with `roster run retry` and continues from its
//! journal.

use crate::common;

use common::{cli, Server};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A config file: short backoff (many attempts in a minute), `patience`.
fn config(dir: &std::path::Path, patience_secs: u64) -> String {
    let path = dir.join("roster.toml");
    std::fs::write(
        &path,
        format!("[retry]\nmax_retries = 1\nbase_delay_ms = 100\nmax_delay_ms = 2000\npatience_secs = {patience_secs}\n"),
    )
    .expect("config");
    path.display().to_string()
}

async fn poll(api: &common::Api, run: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = api.get(&format!("/v1/runs/{run}")).await;
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_run_outlasts_a_minute_long_outage_and_a_sigkill_sqlite() {
    outage_with_a_crash(None).await;
}

#[tokio::test]
async fn a_run_outlasts_a_minute_long_outage_and_a_sigkill_postgres() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    outage_with_a_crash(Some(url)).await;
}

async fn outage_with_a_crash(database_url: Option<String>) {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), 300);
    let mut env: Vec<(&str, &str)> = vec![("ROSTER_CONFIG", config.as_str())];
    if let Some(url) = &database_url {
        env.push(("ROSTER_DATABASE_URL", url.as_str()));
    }
    let mut server = Server::start(dir.path(), &model.openai_base_url(), &env).await;
    let api = server.client();
    let (status, body) = api
        .post(
            "/v1/agents",
            json!({"name": "steady", "model": "openai/m", "tools": ["memory_append"],
                   "memory_blocks": [{"label": "notes", "value": ""}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, session) = api.post("/v1/sessions", json!({"agent": "steady"})).await;
    let sid = session["id"].as_str().expect("id").to_owned();

    // The first model call asks for a tool; then the provider goes down
    // for a minute: half of it answering 503, half refusing connections.
    model.push(Reply::tool_call(
        "c1",
        "memory_append",
        r#"{"label":"notes","content":"before the outage"}"#,
    ));
    let outage_began = Instant::now();
    let response = api
        .http
        .post(format!("{}/v1/sessions/{sid}/messages", api.url))
        .bearer_auth(common::ADMIN_KEY)
        .json(&json!({"content": "note it, then answer", "background": true}))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 202);
    let header = response.headers()["x-roster-run-id"]
        .to_str()
        .expect("header")
        .to_owned();
    let accepted: Value = response.json().await.expect("json");
    let run = accepted["run"]["id"].as_str().expect("run").to_owned();
    assert_eq!(header, run);
    // The tool runs, then the outage begins.
    let deadline = Instant::now() + Duration::from_secs(20);
    while model.request_count() < 1 {
        assert!(Instant::now() < deadline, "the first call never came");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    model.fail_with(503);

    let waiting = poll(&api, &run, "the run to wait", |r| {
        r["waiting"]["attempts"].as_u64().unwrap_or(0) >= 3
    })
    .await;
    assert_eq!(waiting["status"], "running");
    let since = waiting["waiting"]["since"].clone();

    // What a person sees.
    let (ok, out, err) = cli(&server, &["run", "show", &run]);
    assert!(ok, "{err}");
    assert!(out.contains("waiting for provider since"), "{out}");
    assert!(out.contains("next attempt at"), "{out}");
    assert!(out.contains("provider_transient"), "{out}");

    // Killed in the middle of the wait, and started again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    server.kill();
    // The wait is in the store as the killed server left it.
    {
        let url = database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("roster.db").display()));
        let store = roster_store_sql::open(&url).await.expect("open store");
        let unfinished = store.unfinished_runs().await.expect("unfinished");
        let (_, stored) = unfinished
            .iter()
            .find(|(_, r)| r.id.as_str() == run)
            .expect("the run is unfinished");
        assert_eq!(stored.status, roster_core::run::RunStatus::Running);
        let wait = stored.waiting.as_ref().expect("the wait is stored");
        assert_eq!(json!(wait.since), since);
        assert_eq!(wait.waiting_for, "provider");
    }
    let server = Server::start(dir.path(), &model.openai_base_url(), &env).await;
    let api = server.client();
    let resumed = poll(&api, &run, "the wait to resume", |r| {
        r["waiting"]["attempts"].as_u64().unwrap_or(0)
            > waiting["waiting"]["attempts"].as_u64().unwrap_or(0) + 2
    })
    .await;
    assert_eq!(resumed["status"], "running");
    assert_eq!(
        resumed["waiting"]["since"], since,
        "the patience clock was not reset"
    );

    // The second half: nobody listens.
    let half = Duration::from_secs(30).saturating_sub(outage_began.elapsed());
    tokio::time::sleep(half).await;
    model.refuse_connections().await;
    let rest = Duration::from_secs(60).saturating_sub(outage_began.elapsed());
    tokio::time::sleep(rest).await;
    let refused = poll(&api, &run, "refused connections to be seen", |r| {
        r["waiting"]["last_error"]["message"]
            .as_str()
            .is_some_and(|m| !m.contains("503"))
    })
    .await;
    assert_eq!(refused["waiting"]["since"], since);
    model.push(Reply::text("noted, after the outage"));
    model.end_outage().await;

    let done = poll(&api, &run, "the run to finish", |r| {
        matches!(
            r["status"].as_str(),
            Some("completed" | "failed" | "cancelled")
        )
    })
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"], "noted, after the outage");
    assert!(done.get("waiting").is_none(), "{done}");
    assert!(outage_began.elapsed() >= Duration::from_secs(60));
    // Completed steps were not repeated: the tool ran once, the first model
    // call was not sent again.
    let (_, memory) = api.get("/v1/agents/steady/memory").await;
    assert_eq!(memory["blocks"][0]["value"], "before the outage");
    let requests = model.requests();
    let carries_the_result = |r: &&roster_testkit::RecordedRequest| {
        r.body["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"))
    };
    assert!(
        requests.iter().skip(1).all(|r| carries_the_result(&r)),
        "every later call carries the journaled tool result: the first was never re-sent"
    );
    // Every attempt is in the ledger.
    let (_, ledger) = api
        .get(&format!("/v1/ledger?run_id={run}&limit=1000"))
        .await;
    let outcomes: Vec<&str> = ledger["data"]
        .as_array()
        .expect("ledger")
        .iter()
        .map(|e| e["outcome"].as_str().unwrap_or_default())
        .collect();
    let failed = outcomes.iter().filter(|o| **o != "ok").count();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "ok").count(),
        2,
        "{outcomes:?}"
    );
    assert!(failed >= 20, "many attempts over the minute: {failed}");
    let (_, events) = api.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(events["steps"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn a_run_out_of_patience_is_retried_from_the_cli() {
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path(), 1);
    let server = Server::start(
        dir.path(),
        &model.openai_base_url(),
        &[("ROSTER_CONFIG", config.as_str())],
    )
    .await;
    let api = server.client();
    let (status, body) = api
        .post("/v1/agents", json!({"name": "brief", "model": "openai/m"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (_, session) = api.post("/v1/sessions", json!({"agent": "brief"})).await;
    let sid = session["id"].as_str().expect("id");
    model.fail_with(503);
    let (status, failed) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "hello"}),
        )
        .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["run"]["status"], "failed", "{failed}");
    let message = failed["run"]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("kept failing"), "{message}");
    let run = failed["run"]["id"].as_str().expect("run").to_owned();

    model.end_outage().await;
    model.push(Reply::text("hello at last"));
    let (ok, out, err) = cli(&server, &["run", "retry", &run]);
    assert!(ok, "{err}");
    assert!(out.contains(&run), "{out}");
    let done = poll(&api, &run, "the retried run", |r| {
        matches!(r["status"].as_str(), Some("completed" | "failed"))
    })
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"], "hello at last");
    let (ok, out, _) = cli(&server, &["run", "show", &run]);
    assert!(ok);
    assert!(out.contains("completed"), "{out}");
    assert!(!out.contains("waiting"), "{out}");

    // A run that did not fail is not retried: one line, non-zero exit.
    let (ok, out, err) = cli(&server, &["run", "retry", &run]);
    assert!(!ok, "{out}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("only a failed run can be retried"), "{err}");
}
