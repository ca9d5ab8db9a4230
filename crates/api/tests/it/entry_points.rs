//! Every way a run starts goes through the runtime's front door, so every
//! one of them refuses when the tenant's policies deny `invoke_agent`:
//! nothing is queued, no model is called. A new surface that starts runs
//! adds itself to `ENTRY_POINTS`.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Client, Reply, Resp, TestApp};
use serde_json::json;

/// A way in: given the client, a session and a failed run of it, starts
/// (or restarts) a run.
type EntryPoint = (
    &'static str,
    fn(Client, String, String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Resp> + Send>>,
);

const ENTRY_POINTS: &[EntryPoint] = &[
    ("POST /v1/sessions/{id}/messages", |c, session, _| {
        Box::pin(async move { c.message(&session, json!({"content": "hi"})).await })
    }),
    (
        "POST /v1/sessions/{id}/messages (stream)",
        |c, session, _| {
            Box::pin(async move {
                c.message(&session, json!({"content": "hi", "stream": true}))
                    .await
            })
        },
    ),
    (
        "POST /v1/sessions/{id}/messages (background)",
        |c, session, _| {
            Box::pin(async move {
                c.message(&session, json!({"content": "hi", "background": true}))
                    .await
            })
        },
    ),
    ("POST /v1/runs/{id}/retry", |c, _, run| {
        Box::pin(async move { c.post(&format!("/v1/runs/{run}/retry"), json!({})).await })
    }),
];

#[tokio::test]
async fn every_entry_point_refuses_when_invoke_agent_is_denied() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("helper").await;
    // A failed run to retry: the model refuses the request outright.
    app.fake.push(Reply::error(400, "bad request"));
    let failed = admin.say(&session, "first").await;
    assert_eq!(failed["run"]["status"], "failed", "{failed}");
    let run = failed["run"]["id"].as_str().unwrap().to_owned();
    admin
        .put(
            "/v1/policies/nobody",
            json!({"text": r#"forbid(principal, action == Roster::Action::"invoke_agent", resource);"#}),
        )
        .await
        .ok(201);
    let requests = app.fake.request_count();
    let items = admin.items(&session).await.len();
    for (name, enter) in ENTRY_POINTS {
        let answer = enter(admin.clone(), session.clone(), run.clone()).await;
        answer.err(403, "denied_by_policy");
        assert_eq!(app.fake.request_count(), requests, "{name} called a model");
        assert_eq!(
            admin.items(&session).await.len(),
            items,
            "{name} queued input"
        );
    }
    assert_eq!(
        admin.get(&format!("/v1/runs/{run}")).await.ok(200)["status"],
        "failed",
        "the refused retry left the run as it was"
    );
}
