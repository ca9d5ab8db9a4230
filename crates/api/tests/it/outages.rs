//! Outages, retries and inputs too large, seen through the API: a run that
//! waits for its provider shows the wait on `GET /v1/runs/{id}` and in its
//! event stream, ends it on cancel, and completes when the provider is
//! back; a failed run is retried with `POST /v1/runs/{id}/retry` (policy
//! decided again, audited, `409 run_not_failed` otherwise); an input larger
//! than the agent's context budget is refused with `413 input_too_large`
//! before any run exists, or cut when the agent says so; every answer of
//! `POST …/messages` names its run in a header and its first event.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Reply, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const RUN_HEADER: &str = "x-roster-run-id";

async fn patient_app() -> TestApp {
    TestApp::start_patient(Duration::from_secs(60)).await
}

/// Polls the run until it waits for the provider after `attempts` failed
/// attempts; returns the run.
async fn waiting(app: &TestApp, run: &str, attempts: u64) -> Value {
    let admin = app.admin();
    common::eventually(|| async {
        let run = admin.get(&format!("/v1/runs/{run}")).await.ok(200).clone();
        (run["waiting"]["attempts"].as_u64().unwrap_or(0) >= attempts).then_some(run)
    })
    .await
}

fn end_outage_after(app: &TestApp, after: Duration) {
    let fake = app.fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        fake.end_outage().await;
    });
}

#[tokio::test]
async fn a_waiting_run_shows_its_wait_and_a_cancel_ends_it() {
    let app = patient_app().await;
    let admin = app.admin();
    let session = admin.agent_session("patient").await;
    app.fake.fail_with(503);
    let accepted = admin
        .message(&session, json!({"content": "hello", "background": true}))
        .await;
    let run = accepted.ok(202)["run"]["id"].as_str().unwrap().to_owned();
    assert_eq!(accepted.headers[RUN_HEADER], run.as_str());

    let shown = waiting(&app, &run, 2).await;
    assert_eq!(shown["status"], "running");
    let wait = &shown["waiting"];
    assert_eq!(wait["for"], "provider");
    assert_eq!(wait["step"], 1);
    assert_eq!(wait["last_error"]["code"], "provider_transient");
    for field in ["since", "next_attempt_at", "gives_up_at"] {
        assert!(
            wait[field]
                .as_str()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
            "{field}: {wait}"
        );
    }

    let started = Instant::now();
    let cancelled = admin
        .post(&format!("/v1/runs/{run}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.ok(200)["status"], "cancelled");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        cancelled.body.get("waiting").is_none(),
        "{}",
        cancelled.text
    );
    let asked = app.fake.request_count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.fake.request_count(),
        asked,
        "no attempt after the cancel"
    );
    // A late reader of the stream sees the wait, then the end.
    let (status, events) = admin.events(&run, None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert!(names.contains(&"waiting"), "{names:?}");
    assert_eq!(names.last(), Some(&"run_finished"));
    let first_wait = events.iter().find(|e| e.event == "waiting").unwrap();
    assert_eq!(first_wait.data["for"], "provider");
    assert!(first_wait.data["next_attempt_at"].is_string());
}

#[tokio::test]
async fn a_streamed_run_outlasts_an_outage_and_names_itself_first() {
    let app = patient_app().await;
    let admin = app.admin();
    let session = admin.agent_session("patient").await;
    app.fake.fail_with(503);
    app.fake.push(Reply::text("the provider is back"));
    end_outage_after(&app, Duration::from_millis(1_200));
    let builder = admin
        .request(
            reqwest::Method::POST,
            &format!("/v1/sessions/{session}/messages"),
        )
        .json(&json!({"content": "hello", "stream": true}));
    let resp = admin.send(builder).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let header = resp.headers[RUN_HEADER].to_str().unwrap().to_owned();
    let events = common::parse_sse(&resp.text);
    assert_eq!(events[0].event, "run_queued");
    assert_eq!(
        events[0].data["run_id"],
        header.as_str(),
        "the first event names the run"
    );
    let names: Vec<&str> = events
        .iter()
        .map(|e| e.event.as_str())
        .filter(|n| *n != "text_delta" && *n != "text_reset")
        .collect();
    let waits = names.iter().filter(|n| **n == "waiting").count();
    assert!(waits >= 3, "{names:?}");
    let ended = names.iter().position(|n| *n == "wait_ended").unwrap();
    assert!(ended > names.iter().position(|n| *n == "waiting").unwrap());
    assert_eq!(names.last(), Some(&"run_finished"));
    let finished = events.last().unwrap();
    assert_eq!(finished.data["status"], "completed");
    assert_eq!(finished.data["output"], "the provider is back");
    // Every attempt is in the ledger.
    let ledger = admin
        .get(&format!("/v1/ledger?run_id={header}&limit=1000"))
        .await
        .ok(200)
        .clone();
    let outcomes: Vec<&str> = ledger["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes.len(), app.fake.request_count(), "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == "ok").count(), 1);
    let run = admin
        .get(&format!("/v1/runs/{header}"))
        .await
        .ok(200)
        .clone();
    assert!(run.get("waiting").is_none(), "{run}");
}

#[tokio::test]
async fn the_run_id_is_in_a_header_in_every_mode() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("named").await;
    app.fake.push(Reply::text("waited"));
    let waited = admin.message(&session, json!({"content": "a"})).await;
    let run = waited.ok(200)["run"]["id"].as_str().unwrap().to_owned();
    assert_eq!(waited.headers[RUN_HEADER], run.as_str());
    app.fake.push(Reply::text("background"));
    let background = admin
        .message(&session, json!({"content": "b", "background": true}))
        .await;
    let run = background.ok(202)["run"]["id"].as_str().unwrap().to_owned();
    assert_eq!(background.headers[RUN_HEADER], run.as_str());
    admin.wait_run(&run).await;
    // An idempotent repeat names the first run.
    app.fake.push(Reply::text("once"));
    let keyed = |body: Value| {
        admin
            .request(
                reqwest::Method::POST,
                &format!("/v1/sessions/{session}/messages"),
            )
            .header("idempotency-key", "k1")
            .json(&body)
    };
    let first = admin.send(keyed(json!({"content": "c"}))).await;
    let again = admin
        .send(keyed(json!({"content": "c", "background": true})))
        .await;
    assert_eq!(first.headers[RUN_HEADER], again.headers[RUN_HEADER]);
    assert_eq!(again.ok(202)["run"]["id"], first.body["run"]["id"]);
}

#[tokio::test]
async fn a_failed_run_is_retried_from_its_journal() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({
            "name": "keeper", "model": "openai/m", "tools": ["memory_append"],
            "memory_blocks": [{"label": "notes"}]
        }))
        .await;
    let session = admin.session("keeper").await;
    // The tool call completes, then the provider fails (twice: the
    // harness retries once) and, with no patience here, the run fails.
    app.fake.push_all([
        Reply::tool_call(
            "c1",
            "memory_append",
            r#"{"label":"notes","content":"once"}"#,
        ),
        Reply::error(503, "down"),
        Reply::error(503, "down"),
    ]);
    let failed = admin.say(&session, "note it").await;
    assert_eq!(failed["run"]["status"], "failed");
    let run = failed["run"]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.fake.request_count(), 3);

    // Not someone else's to retry, and only failed runs can be.
    app.tenant_b()
        .post(&format!("/v1/runs/{run}/retry"), json!({}))
        .await
        .err(404, "not_found");
    let other = admin.agent_session("other").await;
    app.fake.push(Reply::text("fine"));
    let done = admin.say(&other, "hi").await;
    let completed = done["run"]["id"].as_str().unwrap();
    admin
        .post(&format!("/v1/runs/{completed}/retry"), json!({}))
        .await
        .err(409, "run_not_failed");

    // Policy is decided again for the key that retries.
    admin
        .put(
            "/v1/policies/only-other",
            json!({"text": r#"permit(principal, action == Roster::Action::"invoke_agent", resource == Roster::Agent::"other");"#}),
        )
        .await
        .ok(201);
    admin
        .post(&format!("/v1/runs/{run}/retry"), json!({}))
        .await
        .err(403, "denied_by_policy");
    let still = admin.get(&format!("/v1/runs/{run}")).await.ok(200).clone();
    assert_eq!(still["status"], "failed");
    admin.delete("/v1/policies/only-other").await.ok(204);

    app.fake.push(Reply::text("noted, at last"));
    let retried = admin
        .post(&format!("/v1/runs/{run}/retry"), json!({}))
        .await;
    let body = retried.ok(200);
    assert_eq!(body["id"], run.as_str(), "it keeps its id");
    assert!(matches!(
        body["status"].as_str().unwrap(),
        "queued" | "running" | "completed"
    ));
    let done = admin.wait_run(&run).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"], "noted, at last");
    assert!(done["error"].is_null(), "{done}");
    // Completed steps were not repeated: one model call more, the tool ran
    // once.
    assert_eq!(app.fake.request_count(), 5);
    let memory = admin.get("/v1/agents/keeper/memory").await.ok(200).clone();
    assert_eq!(memory["blocks"][0]["value"], "once");
    let steps: Vec<(String, String)> = done["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("model_call".to_owned(), "completed".to_owned()),
            ("tool_call".to_owned(), "completed".to_owned()),
            ("model_call".to_owned(), "completed".to_owned()),
        ]
    );
    let audit = admin
        .get("/v1/audit?action=run.retry")
        .await
        .ok(200)
        .clone();
    let rows = audit["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{audit}");
    assert!(rows[0]["actor"].as_str().unwrap().starts_with("key:"));
    assert_eq!(rows[0]["resource"], format!("run:{run}"));
    let (_, events) = admin.events(&run, None).await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    let retried_at = names.iter().position(|n| *n == "run_retried").unwrap();
    assert_eq!(names[retried_at - 1], "run_finished", "{names:?}");
    assert_eq!(
        names.last(),
        Some(&"run_finished"),
        "the stream goes on past the first end"
    );
}

#[tokio::test]
async fn an_input_larger_than_the_context_is_refused_or_cut() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({"name": "small", "model": "openai/m", "context_tokens": 1000}))
        .await;
    let session = admin.session("small").await;
    let big = "word ".repeat(2_000); // about 2,504 tokens
    let refused = admin.message(&session, json!({"content": big})).await;
    refused.err(413, "input_too_large");
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("2504 tokens"), "{message}");
    assert!(message.contains("context_tokens 1000"), "{message}");
    assert!(refused.headers.get(RUN_HEADER).is_none());
    assert!(admin.items(&session).await.is_empty(), "no run was made");
    assert_eq!(app.fake.request_count(), 0);

    admin
        .create_agent(
            json!({"name": "cutter", "model": "openai/m", "context_tokens": 1000,
            "context": {"oversized_input": "truncate"}}),
        )
        .await;
    let agent = admin.get("/v1/agents/cutter").await.ok(200).clone();
    assert_eq!(agent["config"]["context"]["oversized_input"], "truncate");
    let session = admin.session("cutter").await;
    app.fake.push(Reply::text("read the start"));
    let done = admin.say(&session, &big).await;
    assert_eq!(done["run"]["status"], "completed");
    let stored = admin.items(&session).await;
    assert_eq!(stored[0]["text"], big.as_str(), "stored whole");
    let sent = app.fake.last_request().unwrap().body;
    let user = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "user")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(user.len() < 4_500, "{}", user.len());
    assert!(
        user.contains("[Roster: this message is about 2504 tokens"),
        "{user}"
    );
}

#[tokio::test]
async fn an_unknown_provider_says_how_to_configure_one() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("lost", "foo/some-model").await;
    let session = admin.session("lost").await;
    let done = admin.say(&session, "hi").await;
    assert_eq!(done["run"]["status"], "failed");
    let error = &done["run"]["error"];
    assert_eq!(error["code"], "unknown_provider");
    let message = error["message"].as_str().unwrap();
    for hint in ["no provider `foo`", "OPENAI_API_KEY", "[providers.foo]"] {
        assert!(message.contains(hint), "{hint}: {message}");
    }
    assert!(!message.contains("ProviderError"), "{message}");
}
