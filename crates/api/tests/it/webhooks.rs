//! Webhooks out and limits through the API: a webhook is checked against
//! the egress policy when registered; a run, a schedule or an agent names
//! it; the run's end puts a signed notification in the outbox, and every
//! attempt shows on the run and the webhook. A tenant's limits are the
//! operator's to set; a run they hold says why.
#![allow(clippy::unwrap_used)]

use crate::common;

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::{Reply, TestApp};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn receiver() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/hook"), seen)
}

fn sender(app: &TestApp) -> Arc<roster_notify::Sender> {
    let integrations = app.state.integrations.as_ref().unwrap();
    roster_notify::Sender::new(
        app.state.store.clone(),
        integrations.secrets.clone(),
        integrations.egress.clone(),
        roster_notify::NotifyOptions::default(),
        app.state.runtime.outbox_wakeup(),
    )
}

async fn webhook(app: &TestApp, url: &str) -> (String, String) {
    let made = app
        .admin()
        .post("/v1/webhooks", json!({"url": url, "description": "ops"}))
        .await
        .ok(201)
        .clone();
    assert_eq!(made["url"], url);
    (
        made["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_webhook_url_is_checked_before_it_is_stored() {
    let app = TestApp::start().await;
    let admin = app.admin();
    for (url, code) in [
        ("ftp://127.0.0.1/x", "invalid_request"),
        ("http://user:pw@127.0.0.1:9/x", "invalid_request"),
        ("not a url", "invalid_request"),
    ] {
        admin
            .post("/v1/webhooks", json!({"url": url}))
            .await
            .err(400, code);
    }
    // The test server's egress allows 127.0.0.1 only.
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/hook",
        "http://[::1]:8080/hook",
    ] {
        admin
            .post("/v1/webhooks", json!({"url": url}))
            .await
            .err(403, "egress_denied");
    }
    assert_eq!(
        admin.get("/v1/webhooks").await.ok(200)["data"],
        json!([]),
        "nothing refused was stored"
    );
    // The secret is shown once.
    let (id, _) = webhook(&app, "http://127.0.0.1:9/hook").await;
    // A new URL is checked the same way; a refused one changes nothing.
    admin
        .patch(
            &format!("/v1/webhooks/{id}"),
            json!({"url": "http://10.0.0.1/hook"}),
        )
        .await
        .err(403, "egress_denied");
    let changed = admin
        .patch(
            &format!("/v1/webhooks/{id}"),
            json!({"url": "http://127.0.0.1:10/new", "description": "moved"}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(
        (changed["url"].as_str(), changed["description"].as_str()),
        (Some("http://127.0.0.1:10/new"), Some("moved"))
    );
    admin
        .patch(&format!("/v1/webhooks/{id}"), json!({"secret": "x"}))
        .await
        .err(400, "invalid_request");
    let shown = admin
        .get(&format!("/v1/webhooks/{id}"))
        .await
        .ok(200)
        .clone();
    assert!(shown.get("secret").is_none(), "{shown}");
    assert!(!shown.to_string().contains("whsec_"), "{shown}");
}

#[tokio::test]
async fn a_finished_run_notifies_each_webhook_it_names_once_signed() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let (url, seen) = receiver().await;
    let (run_hook, run_secret) = webhook(&app, &url).await;
    let (agent_hook, _) = webhook(&app, &url).await;
    admin
        .create_agent(
            json!({"name": "notifier", "model": "openai/test-model", "notify": [agent_hook]}),
        )
        .await;
    let session = admin.session("notifier").await;
    // An unknown or malformed webhook is refused before any run is made.
    admin
        .message(
            &session,
            json!({"content": "hi", "notify": ["whk_00000000000000000000000000000000"]}),
        )
        .await
        .err(400, "invalid_request");
    admin
        .message(
            &session,
            json!({"content": "hi", "notify": ["https://example.com"]}),
        )
        .await
        .err(400, "invalid_request");

    app.fake.push(Reply::text("the report"));
    let done = admin
        .message(
            &session,
            json!({"content": "write the report", "notify": [run_hook, agent_hook]}),
        )
        .await
        .ok(200)
        .clone();
    let run = done["run"]["id"].as_str().unwrap().to_owned();
    let listed = admin
        .get(&format!("/v1/runs/{run}/notifications"))
        .await
        .ok(200)
        .clone();
    let listed = listed["data"].as_array().unwrap().clone();
    // Named twice (by the run and its agent), told once per webhook.
    assert_eq!(listed.len(), 2, "{listed:?}");
    for n in &listed {
        assert_eq!(n["status"], "pending");
        assert_eq!(n["body"]["data"]["run"]["output"], "the report");
        assert_eq!(n["body"]["data"]["run"]["agent"], "notifier");
    }

    assert_eq!(sender(&app).drain().await.unwrap(), 2);
    let received = seen.clone();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let to_run_hook = seen
        .iter()
        .find(|(_, body)| {
            serde_json::from_slice::<Value>(body).unwrap()["webhook_id"] == json!(run_hook)
        })
        .unwrap();
    let timestamp: i64 = to_run_hook.0["x-roster-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        to_run_hook.0["x-roster-signature"].to_str().unwrap(),
        roster_notify::sign(&run_secret, timestamp, &to_run_hook.1)
    );
    let listed = admin
        .get(&format!(
            "/v1/webhooks/{run_hook}/notifications?status=delivered"
        ))
        .await
        .ok(200)
        .clone();
    let n = &listed["data"][0];
    assert_eq!(
        (n["status"].as_str(), n["attempts"].as_u64()),
        (Some("delivered"), Some(1))
    );
    assert_eq!(n["attempt_log"][0]["status_code"], 200);
    let id = n["id"].as_str().unwrap();
    assert_eq!(
        admin.get(&format!("/v1/notifications/{id}")).await.ok(200)["id"],
        id
    );

    // A rotated secret signs what is sent from now on.
    let rotated = admin
        .post(&format!("/v1/webhooks/{run_hook}/rotate-secret"), json!({}))
        .await
        .ok(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, run_secret);
    admin
        .post(
            "/v1/webhooks/whk_00000000000000000000000000000000/rotate-secret",
            json!({}),
        )
        .await
        .err(404, "not_found");

    // Sent again by hand: pending, then delivered a second time.
    let resent = admin
        .post(&format!("/v1/notifications/{id}/resend"), json!({}))
        .await;
    assert_eq!(resent.ok(200)["status"], "pending");
    assert_eq!(sender(&app).drain().await.unwrap(), 1);
    let again = admin
        .get(&format!("/v1/notifications/{id}"))
        .await
        .ok(200)
        .clone();
    assert_eq!(again["attempts"], 2);
    let (headers, body) = received.lock().unwrap().last().cloned().unwrap();
    let timestamp: i64 = headers["x-roster-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        headers["x-roster-signature"].to_str().unwrap(),
        roster_notify::sign(&rotated, timestamp, &body)
    );
    let audit = admin
        .get("/v1/audit?action=notification.resend")
        .await
        .ok(200)
        .clone();
    assert_eq!(audit["data"].as_array().unwrap().len(), 1, "{audit}");

    // Deleted: nothing more is sent, and it cannot be resent.
    admin
        .delete(&format!("/v1/webhooks/{run_hook}"))
        .await
        .ok(204);
    admin
        .post(&format!("/v1/notifications/{id}/resend"), json!({}))
        .await
        .err(409, "conflict");
    admin
        .message(&session, json!({"content": "x", "notify": [run_hook]}))
        .await
        .err(400, "invalid_request");

    // Deleting the session deletes what its runs' notifications carried.
    admin
        .delete(&format!("/v1/sessions/{session}"))
        .await
        .ok(204);
    admin
        .get(&format!("/v1/notifications/{id}"))
        .await
        .err(404, "not_found");
    let left = admin
        .get(&format!("/v1/webhooks/{agent_hook}/notifications"))
        .await
        .ok(200)["data"]
        .clone();
    assert_eq!(left, json!([]));
}

#[tokio::test]
async fn a_schedule_names_its_webhooks() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let (hook, _) = webhook(&app, "http://127.0.0.1:9/hook").await;
    admin.agent("waker", "openai/test-model").await;
    let made = admin
        .post(
            "/v1/schedules",
            json!({"agent": "waker", "cron": "0 9 * * *", "input": "morning", "notify": [hook]}),
        )
        .await
        .ok(201)
        .clone();
    assert_eq!(made["notify"], json!([hook]));
    let id = made["id"].as_str().unwrap();
    admin
        .patch(
            &format!("/v1/schedules/{id}"),
            json!({"notify": ["whk_00000000000000000000000000000000"]}),
        )
        .await
        .err(400, "invalid_request");
    let cleared = admin
        .patch(&format!("/v1/schedules/{id}"), json!({"notify": []}))
        .await;
    assert!(cleared.ok(200).get("notify").is_none());
}

#[tokio::test]
async fn a_receiver_that_hangs_does_not_slow_runs() {
    let app = TestApp::start().await;
    let admin = app.admin();
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let (hook, _) = webhook(&app, &format!("http://{address}/hook")).await;
    let sender = roster_notify::Sender::new(
        app.state.store.clone(),
        app.state.integrations.as_ref().unwrap().secrets.clone(),
        app.state.integrations.as_ref().unwrap().egress.clone(),
        roster_notify::NotifyOptions {
            timeout: Duration::from_secs(30),
            ..roster_notify::NotifyOptions::default()
        },
        app.state.runtime.outbox_wakeup(),
    );
    let task = sender.spawn();
    admin
        .create_agent(json!({"name": "quick", "model": "openai/test-model", "notify": [hook]}))
        .await;
    let session = admin.session("quick").await;
    let started = std::time::Instant::now();
    for i in 0..20 {
        app.fake.push(Reply::text(format!("answer {i}")));
        admin.say(&session, &format!("q{i}")).await;
    }
    let elapsed = started.elapsed();
    task.abort();
    // Twenty runs, each notifying a receiver that never answers: no run
    // waited for it (one request alone would take 30 s).
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
    let pending = admin
        .get(&format!(
            "/v1/webhooks/{hook}/notifications?status=pending&limit=200"
        ))
        .await
        .ok(200)["data"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(pending, 20);
}

#[tokio::test]
async fn limits_are_the_operators_and_a_held_run_says_why() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let shown = admin.get("/v1/limits").await.ok(200).clone();
    assert_eq!(
        shown["limits"],
        json!({"runs": null, "runs_per_agent": null})
    );
    let tenant = app.tenant_b.to_string();
    // Only the admin key sets a tenant's limits.
    app.tenant_b()
        .put(&format!("/v1/tenants/{tenant}/limits"), json!({"runs": 5}))
        .await
        .err(403, "forbidden");
    admin
        .put(&format!("/v1/tenants/{tenant}/limits"), json!({"runs": 0}))
        .await
        .err(400, "invalid_request");
    // serde would read the struct from an array of its fields (found by
    // schemathesis): refused like any body that is not an object.
    admin
        .put(&format!("/v1/tenants/{tenant}/limits"), json!([null, null]))
        .await
        .err(400, "invalid_request");
    admin
        .post("/v1/webhooks", json!(["http://127.0.0.1:9/hook", "x"]))
        .await
        .err(400, "invalid_request");
    admin
        .put(
            &format!("/v1/tenants/{tenant}/limits"),
            json!({"runs": 1, "bogus": 1}),
        )
        .await
        .err(400, "invalid_request");
    let set = admin
        .put(&format!("/v1/tenants/{tenant}/limits"), json!({"runs": 1}))
        .await
        .ok(200)
        .clone();
    assert_eq!(set["limits"]["runs"], 1);
    assert_eq!(
        app.tenant_b().get("/v1/limits").await.ok(200)["limits"]["runs"],
        1
    );

    let b = app.tenant_b();
    b.agent("worker", "openai/test-model").await;
    let first = b.session("worker").await;
    let second = b.session("worker").await;
    app.fake
        .push(Reply::text("slow").delayed(Duration::from_millis(1500)));
    app.fake.push(Reply::text("next"));
    let slow = b
        .message(&first, json!({"content": "one", "background": true}))
        .await
        .ok(202)["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let held = b
        .message(&second, json!({"content": "two", "background": true}))
        .await
        .ok(202)["run"]
        .clone();
    assert_eq!(held["status"], "queued");
    assert_eq!(held["queued_reason"]["reason"], "tenant_limit", "{held}");
    let held = held["id"].as_str().unwrap().to_owned();
    let usage = b.get("/v1/limits").await.ok(200).clone();
    assert_eq!(
        (usage["running"].as_u64(), usage["waiting"].as_u64()),
        (Some(1), Some(1)),
        "{usage}"
    );
    assert_eq!(usage["agents"][0]["agent"], "worker");
    b.wait_run(&slow).await;
    let done = b.wait_run(&held).await;
    assert_eq!(done["status"], "completed");
    assert!(done.get("queued_reason").is_none(), "{done}");
    let audit = app
        .tenant_b()
        .get("/v1/audit?action=limits.set")
        .await
        .ok(200)
        .clone();
    assert_eq!(audit["data"].as_array().unwrap().len(), 1, "{audit}");
}
