//! Human approval: a policy sends a call for approval, the run waits in
//! `awaiting_approval` with the request in the inbox; approval resumes it
//! where it stopped, denial and expiry are told to the model, decisions
//! cannot be made twice or on runs that do not wait, and each is audited.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Client, Reply, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const POLICY: &str = r#"
permit(principal, action == Roster::Action::"invoke_agent", resource);
permit(principal == Roster::Agent::"payer", action == Roster::Action::"call_tool", resource == Roster::Tool::"sleep")
  when { context.ms < 100 };
@approval("sleeps of 100 ms or more need a manager")
permit(principal == Roster::Agent::"payer", action == Roster::Action::"call_tool", resource == Roster::Tool::"sleep")
  when { context.ms >= 100 };
"#;

async fn setup(app: &TestApp) -> (Client, String) {
    let admin = app.admin();
    admin
        .create_agent(json!({"name": "payer", "model": "openai/test-model", "tools": ["sleep"]}))
        .await;
    admin
        .put("/v1/policies/sleeping", json!({ "text": POLICY }))
        .await
        .ok(201);
    let session = admin.session("payer").await;
    (admin, session)
}

fn tool_results(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .filter(|i| i["type"] == "tool_result")
        .cloned()
        .collect()
}

async fn pending(admin: &Client) -> Vec<Value> {
    admin.get("/v1/approvals").await.ok(200)["data"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn approval_resumes_the_run_where_it_stopped() {
    let app = TestApp::start().await;
    let (admin, session) = setup(&app).await;
    // Someone other than the key whose run asked decides.
    let manager = app.member();
    app.fake
        .push(Reply::tool_call("c1", "sleep", r#"{"ms": 150}"#));
    app.fake.push(Reply::text("slept"));
    let paused = admin.say(&session, "sleep a while").await;
    assert_eq!(paused["run"]["status"], "awaiting_approval", "{paused}");
    let run = paused["run"]["id"].as_str().unwrap().to_owned();
    assert!(tool_results(&admin.items(&session).await).is_empty());
    assert_eq!(app.fake.request_count(), 1);

    let inbox = pending(&admin).await;
    assert_eq!(inbox.len(), 1);
    let approval = inbox[0].clone();
    assert_eq!(approval["tool"], "sleep");
    assert_eq!(approval["agent"], "payer");
    assert_eq!(approval["arguments"]["ms"], 150);
    assert_eq!(
        approval["reason"],
        "sleeps of 100 ms or more need a manager"
    );
    assert_eq!(approval["status"], "pending");
    let id = approval["id"].as_str().unwrap().to_owned();

    // Another tenant neither sees nor decides it.
    let b = app.tenant_b();
    b.get(&format!("/v1/approvals/{id}"))
        .await
        .err(404, "not_found");
    b.post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await
        .err(404, "not_found");
    assert_eq!(b.get("/v1/approvals").await.ok(200)["data"], json!([]));

    // A second message waits behind the paused run.
    let queued = admin
        .message(
            &session,
            json!({"content": "and then?", "background": true}),
        )
        .await;
    let queued_run = queued.ok(202)["run"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        admin.get(&format!("/v1/runs/{queued_run}")).await.ok(200)["status"],
        "queued"
    );

    // The key whose run asked cannot approve its own request.
    admin
        .post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await
        .err(403, "self_approval_forbidden");
    admin
        .post(&format!("/v1/approvals/{id}/deny"), json!({}))
        .await
        .err(403, "self_approval_forbidden");
    assert_eq!(pending(&admin).await.len(), 1, "still pending");

    let decided = manager
        .post(
            &format!("/v1/approvals/{id}/approve"),
            json!({"note": "ok"}),
        )
        .await;
    assert_eq!(decided.ok(200)["status"], "approved");
    app.fake.push(Reply::text("then nothing"));
    let done = admin.wait_run(&run).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"], "slept");
    let results = tool_results(&admin.items(&session).await);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["is_error"], false, "{}", results[0]);
    assert_eq!(admin.wait_run(&queued_run).await["status"], "completed");

    manager
        .post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await
        .err(409, "approval_not_pending");
    manager
        .post(&format!("/v1/approvals/{id}/deny"), json!({}))
        .await
        .err(409, "approval_not_pending");
    admin
        .post("/v1/approvals/apr_nothing/approve", json!({}))
        .await
        .err(404, "not_found");
    admin
        .get("/v1/approvals?status=maybe")
        .await
        .err(400, "invalid_request");
    let all = admin.get("/v1/approvals?status=all").await.ok(200).clone();
    assert_eq!(
        all["data"][0]["decided_by"].as_str().unwrap().get(..8),
        Some("key:key_")
    );

    let audit = admin.get("/v1/audit").await.ok(200).clone();
    let trail: Vec<(String, String)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["resource"] == "tool:sleep" || e["action"].as_str().unwrap().starts_with("approval")
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["decision"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        trail,
        vec![
            ("policy.call_tool".to_owned(), "needs_approval".to_owned()),
            ("approval.approve".to_owned(), "allow".to_owned()),
        ]
    );
}

#[tokio::test]
async fn denial_and_expiry_are_told_to_the_model() {
    let app = TestApp::start().await;
    let (admin, session) = setup(&app).await;
    // Someone other than the key whose run asked decides.
    let manager = app.member();
    app.fake
        .push(Reply::tool_call("c1", "sleep", r#"{"ms": 500}"#));
    app.fake.push(Reply::text("I was not allowed"));
    let run = admin.say(&session, "sleep long").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = pending(&admin).await[0]["id"].as_str().unwrap().to_owned();
    let denied = manager
        .post(
            &format!("/v1/approvals/{id}/deny"),
            json!({"note": "not today"}),
        )
        .await;
    assert_eq!(denied.ok(200)["status"], "denied");
    assert_eq!(admin.wait_run(&run).await["status"], "completed");
    let results = tool_results(&admin.items(&session).await);
    assert_eq!(results[0]["is_error"], true);
    let told = results[0]["output"].as_str().unwrap();
    assert!(
        told.contains("a human denied this call to `sleep`: not today"),
        "{told}"
    );
    assert!(app.fake.requests()[1]
        .body
        .to_string()
        .contains("not today"));

    // Nobody decides: the request expires and counts as denied.
    app.state
        .runtime
        .governance()
        .set_approval_ttl(Duration::from_millis(300));
    app.state
        .runtime
        .start_approval_expiry(Duration::from_millis(50));
    app.fake
        .push(Reply::tool_call("c2", "sleep", r#"{"ms": 900}"#));
    app.fake.push(Reply::text("it expired"));
    let run = admin.say(&session, "again").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = admin.wait_run(&run).await;
    assert_eq!(done["output"], "it expired");
    let results = tool_results(&admin.items(&session).await);
    let told = results[1]["output"].as_str().unwrap();
    assert!(told.contains("expired"), "{told}");
    let expired = admin
        .get("/v1/approvals?status=expired")
        .await
        .ok(200)
        .clone();
    let expired_id = expired["data"][0]["id"].as_str().unwrap().to_owned();
    manager
        .post(&format!("/v1/approvals/{expired_id}/approve"), json!({}))
        .await
        .err(409, "approval_not_pending");
    let audit = admin.get("/v1/audit?action=approval").await.ok(200).clone();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["approval.deny", "approval.expire"]);
}

#[tokio::test]
async fn cancelling_a_waiting_run_withdraws_its_request() {
    let app = TestApp::start().await;
    let (admin, session) = setup(&app).await;
    // Someone other than the key whose run asked decides.
    let manager = app.member();
    app.fake
        .push(Reply::tool_call("c1", "sleep", r#"{"ms": 200}"#));
    let run = admin.say(&session, "sleep").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = pending(&admin).await[0]["id"].as_str().unwrap().to_owned();
    let cancelled = admin
        .post(&format!("/v1/runs/{run}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.ok(200)["status"], "cancelled");
    let approval = admin
        .get(&format!("/v1/approvals/{id}"))
        .await
        .ok(200)
        .clone();
    assert_eq!(approval["status"], "cancelled");
    manager
        .post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await
        .err(409, "approval_not_pending");
    common::assert_calls_answered(&admin.items(&session).await);
}

#[tokio::test]
async fn a_policy_may_let_the_requester_decide() {
    let app = TestApp::start().await;
    let (admin, session) = setup(&app).await;
    let policy = POLICY.replace(
        "@approval(\"sleeps of 100 ms or more need a manager\")",
        "@approval(\"a second look\")\n@self_approval(\"the requester may confirm\")",
    );
    assert_ne!(policy, POLICY);
    admin
        .put("/v1/policies/sleeping", json!({ "text": policy }))
        .await
        .ok(200);
    app.fake
        .push(Reply::tool_call("c1", "sleep", r#"{"ms": 150}"#));
    app.fake.push(Reply::text("slept"));
    let run = admin.say(&session, "sleep").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = pending(&admin).await[0]["id"].as_str().unwrap().to_owned();
    admin
        .post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await
        .ok(200);
    assert_eq!(admin.wait_run(&run).await["output"], "slept");
}

/// Reads `/v1/approvals/events` until `count` events have arrived.
async fn feed_events(
    feed: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
    count: usize,
) -> Vec<(String, Value)> {
    use futures::StreamExt;
    let mut out = Vec::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let event = block
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(|v| v.trim().to_owned());
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(|v| serde_json::from_str::<Value>(v.trim()).unwrap());
            if let (Some(event), Some(data)) = (event, data) {
                out.push((event, data));
            }
        }
        if out.len() >= count {
            return out;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), feed.next())
            .await
            .expect("the feed said nothing for 10 s")
            .expect("the feed ended")
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk).replace("\r\n", "\n"));
    }
}

#[tokio::test]
async fn approvers_are_told_when_a_run_waits_and_when_it_is_settled() {
    let app = TestApp::start().await;
    let (admin, session) = setup(&app).await;
    let manager = app.member();
    // One request already waiting when the approver starts listening.
    app.fake
        .push(Reply::tool_call("c1", "sleep", r#"{"ms": 150}"#));
    app.fake.push(Reply::text("first done"));
    let first = admin.say(&session, "sleep").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = manager
        .request(reqwest::Method::GET, "/v1/approvals/events")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut feed = response.bytes_stream();
    let mut buffer = String::new();
    let opened = feed_events(&mut feed, &mut buffer, 1).await;
    assert_eq!(opened[0].0, "approval_requested");
    assert_eq!(opened[0].1["run_id"], first.as_str());
    let first_id = opened[0].1["id"].as_str().unwrap().to_owned();

    // Deciding it is told; then a new request arrives while listening.
    manager
        .post(&format!("/v1/approvals/{first_id}/approve"), json!({}))
        .await
        .ok(200);
    let settled = feed_events(&mut feed, &mut buffer, 1).await;
    assert_eq!(settled[0].0, "approval_settled");
    assert_eq!(settled[0].1["status"], "approved");
    assert_eq!(admin.wait_run(&first).await["output"], "first done");

    app.fake
        .push(Reply::tool_call("c2", "sleep", r#"{"ms": 300}"#));
    let second = admin
        .message(&session, json!({"content": "again", "background": true}))
        .await
        .ok(202)["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let arrived = feed_events(&mut feed, &mut buffer, 1).await;
    assert_eq!(arrived[0].0, "approval_requested");
    assert_eq!(arrived[0].1["run_id"], second.as_str());
    assert_eq!(arrived[0].1["arguments"]["ms"], 300);

    // Another tenant's feed says nothing of this tenant's requests.
    let other = app
        .tenant_b()
        .request(reqwest::Method::GET, "/v1/approvals/events")
        .send()
        .await
        .unwrap();
    let mut other = other.bytes_stream();
    let heard = tokio::time::timeout(Duration::from_millis(1200), async {
        use futures::StreamExt;
        other.next().await
    })
    .await;
    assert!(heard.is_err(), "tenant B heard {heard:?}");
}

async fn new_key(app: &TestApp, body: Value) -> Client {
    let created = app.admin().post("/v1/keys", body).await;
    app.with_key(created.ok(201)["key"].as_str().unwrap())
}

#[tokio::test]
async fn a_users_requests_are_theirs_and_they_cannot_approve_them_with_another_key() {
    let app = TestApp::start().await;
    let (admin, _) = setup(&app).await;
    let ann = new_key(&app, json!({"name": "ann-laptop", "user": "ann"})).await;
    let ann_phone = new_key(&app, json!({"name": "ann-phone", "user": "ann"})).await;
    let bob = new_key(&app, json!({"name": "bob", "user": "bob"})).await;
    let approver = new_key(&app, json!({"name": "desk", "kind": "service"})).await;
    let session = ann
        .post("/v1/sessions", json!({"agent": "payer"}))
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.fake
        .push(Reply::tool_call("c1", "sleep", r#"{"ms": 150}"#));
    app.fake.push(Reply::text("slept"));
    let run = ann.say(&session, "sleep for me").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = pending(&admin).await[0]["id"].as_str().unwrap().to_owned();

    // Bob sees nothing of Ann's request, not even that it exists.
    assert_eq!(pending(&bob).await, Vec::<Value>::new());
    bob.get(&format!("/v1/approvals/{id}"))
        .await
        .err(404, "not_found");
    bob.post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await
        .err(404, "not_found");
    // Ann sees it, but neither of her keys may decide her own request.
    assert_eq!(pending(&ann).await.len(), 1);
    ann_phone
        .post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await
        .err(403, "self_approval_forbidden");
    approver
        .post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await
        .ok(200);
    assert_eq!(ann.wait_run(&run).await["output"], "slept");
}
