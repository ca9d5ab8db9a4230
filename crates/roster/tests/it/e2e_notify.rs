//! Notifications and limits on the real binary: a run finishes while its
//! webhook's receiver is down, the server is SIGKILLed, and once it is back
//! (and the receiver too) the notification arrives, signed, from the
//! durable outbox; `[limits]` holds a second run until the first ends;
//! the CLI shows both.

use crate::common;

use axum::body::Bytes;
use axum::http::HeaderMap;
use common::{cli, until, Server};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test]
async fn a_notification_survives_a_sigkill_sqlite() {
    notification_across_sigkill(None).await;
}

#[tokio::test]
async fn a_notification_survives_a_sigkill_postgres() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    notification_across_sigkill(Some(url)).await;
}

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn notification_across_sigkill(database_url: Option<String>) {
    let model = FakeModelServer::start().await;
    model.respond_with(|_| Reply::text("report written").delayed(Duration::from_millis(300)));
    let dir = tempfile::tempdir().expect("tempdir");
    // The receiver's port, down for now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = dir.path().join("roster.toml");
    std::fs::write(
        &config,
        "[notifications]\nretry_base_ms = 200\nmax_retry_ms = 400\ntimeout_ms = 2000\nmax_attempts = 100\n\n[limits]\nruns = 1\n",
    )
    .expect("config");
    let allow = format!("127.0.0.1:{port}");
    let mut env = vec![
        ("ROSTER_CONFIG", config.to_str().expect("path")),
        ("ROSTER_EGRESS_ALLOW", allow.as_str()),
    ];
    if let Some(url) = &database_url {
        env.push(("ROSTER_DATABASE_URL", url.as_str()));
    }
    let mut server = Server::start(dir.path(), &model.openai_base_url(), &env).await;
    let api = server.client();
    // Any other loopback port stays walled.
    let (status, refused) = api
        .post("/v1/webhooks", json!({"url": "http://127.0.0.1:9/hook"}))
        .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (403, &json!("egress_denied")),
        "{refused}"
    );
    let (status, hook) = api
        .post(
            "/v1/webhooks",
            json!({"url": format!("http://127.0.0.1:{port}/hook")}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let (hook_id, secret) = (
        hook["id"].as_str().expect("id").to_owned(),
        hook["secret"].as_str().expect("secret").to_owned(),
    );
    let (status, body) = api
        .post(
            "/v1/agents",
            json!({"name": "reporter", "model": "openai/m", "notify": [hook_id]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let mut runs = Vec::new();
    for text in ["first", "second"] {
        let (_, session) = api.post("/v1/sessions", json!({"agent": "reporter"})).await;
        let session = session["id"].as_str().expect("session").to_owned();
        let (status, made) = api
            .post(
                &format!("/v1/sessions/{session}/messages"),
                json!({"content": text, "background": true}),
            )
            .await;
        assert_eq!(status, 202, "{made}");
        runs.push(made["run"].clone());
    }
    // `[limits] runs = 1`: the second waits, and says why.
    assert_eq!(runs[1]["status"], "queued", "{}", runs[1]);
    assert_eq!(runs[1]["queued_reason"]["reason"], "tenant_limit");
    let (ok, out, err) = cli(&server, &["limits", "show"]);
    assert!(ok, "{err}");
    assert!(out.contains("runs at once: 1"), "{out}");
    // Bad input: one line on stderr, a failing exit, nothing stored.
    let (ok, _, err) = cli(&server, &["limits", "set", "default", "--runs", "many"]);
    assert!(!ok && err.contains("--runs must be a number"), "{err}");
    let (ok, out, err) = cli(
        &server,
        &[
            "webhook",
            "add",
            &format!("http://127.0.0.1:{port}/other"),
            "--description",
            "cli",
        ],
    );
    assert!(
        ok && out.contains("webhook  whk_") && out.contains("secret   whsec_"),
        "{out}{err}"
    );
    let added = out
        .split_whitespace()
        .find(|w| w.starts_with("whk_"))
        .expect("id")
        .to_owned();
    let moved = format!("http://127.0.0.1:{port}/moved");
    let (ok, out, err) = cli(&server, &["webhook", "update", &added, "--to", &moved]);
    assert!(ok && out.contains("/moved"), "{out}{err}");
    let (ok, _, err) = cli(&server, &["webhook", "add", "ftp://127.0.0.1/x"]);
    assert!(!ok && err.contains("http or https"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let ids: Vec<String> = runs
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect();
    for id in &ids {
        until("the run to finish", Duration::from_secs(20), async || {
            let (_, run) = server.client().get(&format!("/v1/runs/{id}")).await;
            (run["status"] == "completed").then_some(())
        })
        .await;
    }
    // The receiver is down: attempts fail and are recorded.
    until("a failed attempt", Duration::from_secs(20), async || {
        let (_, list) = server
            .client()
            .get(&format!("/v1/webhooks/{hook_id}/notifications"))
            .await;
        let all = list["data"].as_array().cloned().unwrap_or_default();
        (all.len() == 2 && all.iter().all(|n| n["attempts"].as_u64() >= Some(1))).then_some(())
    })
    .await;
    server.kill();

    let seen: Seen = Arc::default();
    let record = seen.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                record.lock().expect("lock").push((headers, body));
                "thanks"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("receiver port");
    tokio::spawn(async move { axum::serve(listener, receiver).await.expect("serve") });

    let server = Server::start(dir.path(), &model.openai_base_url(), &env).await;
    let delivered = until(
        "both notifications delivered",
        Duration::from_secs(30),
        async || {
            let (_, list) = server
                .client()
                .get(&format!(
                    "/v1/webhooks/{hook_id}/notifications?status=delivered"
                ))
                .await;
            let all = list["data"].as_array().cloned().unwrap_or_default();
            (all.len() == 2).then_some(all)
        },
    )
    .await;
    let seen = seen.lock().expect("lock").clone();
    let mut runs_told: Vec<String> = Vec::new();
    for (headers, body) in &seen {
        let timestamp: i64 = headers["x-roster-timestamp"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("number");
        assert_eq!(
            headers["x-roster-signature"].to_str().expect("ascii"),
            roster_notify::sign(&secret, timestamp, body)
        );
        let sent: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(sent["data"]["run"]["output"], "report written");
        runs_told.push(sent["data"]["run"]["id"].as_str().expect("id").to_owned());
    }
    runs_told.sort();
    runs_told.dedup();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(runs_told, expected, "each run told");
    for n in &delivered {
        let attempts = n["attempt_log"].as_array().expect("attempts");
        assert!(attempts.len() >= 2, "{n}");
        assert!(attempts[0]["error"].as_str().is_some(), "{n}");
        assert_eq!(attempts.last().expect("last")["status_code"], 200);
    }
    let (ok, out, err) = cli(&server, &["webhook", "notifications", &hook_id]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("delivered").count(), 2, "{out}");
}
