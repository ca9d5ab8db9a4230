//! `/v1/remotes` at the API level: a registration answers with the card
//! and never the credential; another tenant sees nothing of it; a key
//! scoped to reading tools may list but not register; bad bodies, missing
//! cards, unusable cards and walled addresses (Roster's own listener among
//! them) are refused with stable codes, the walls on the record.

#![allow(clippy::unwrap_used)]

use crate::common;

use axum::routing::get;
use common::TestApp;
use serde_json::{json, Value};

/// A server of agent cards on loopback (which the test walls open): a good
/// 1.0 card at the well-known path, and one offering only HTTP+JSON.
async fn cards() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let endpoint = format!("{base}/rpc");
    let app = axum::Router::new()
        .route(
            "/.well-known/agent-card.json",
            get(move || {
                let endpoint = endpoint.clone();
                async move {
                    axum::Json(json!({
                        "name": "Echo", "description": "Echoes.", "version": "1",
                        "supportedInterfaces": [{"url": endpoint, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}],
                        "skills": [{"id": "echo", "name": "Echo", "description": "Repeats.", "tags": []}]
                    }))
                }
            }),
        )
        .route(
            "/rest/.well-known/agent-card.json",
            get(|| async {
                axum::Json(json!({
                    "name": "Rest only",
                    "supportedInterfaces": [{"url": "http://127.0.0.1:9/", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"}]
                }))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn names(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn remotes_are_the_tenants_own_and_never_show_their_credential() {
    let app = TestApp::start().await;
    let base = cards().await;
    let admin = app.admin();
    let created = admin
        .post(
            "/v1/remotes",
            json!({"name": "echo", "url": base, "bearer_token": "tok-api-secret",
                   "headers": {"X-Team": "ops-secret"}}),
        )
        .await;
    let view = created.ok(201).clone();
    assert!(!created.text.contains("secret"), "{}", created.text);
    assert_eq!(view["tool"], "ask_remote_echo");
    assert_eq!(view["credential_set"], true);
    assert_eq!(view["headers"], json!(["Authorization", "X-Team"]));
    assert_eq!(view["card"]["endpoint"], format!("{base}/rpc"));
    assert_eq!(view["card"]["protocol"], "1.0");
    assert_eq!(view["card"]["skills"][0]["name"], "Echo");
    for path in ["/v1/remotes", "/v1/remotes/echo"] {
        let shown = admin.get(path).await;
        shown.ok(200);
        assert!(!shown.text.contains("secret"), "{path}: {}", shown.text);
    }
    admin
        .post("/v1/remotes", json!({"name": "echo", "url": base}))
        .await
        .err(409, "conflict");
    let refreshed = admin.post("/v1/remotes/echo/refresh", json!({})).await;
    assert_eq!(refreshed.ok(200)["card"]["name"], "Echo");
    assert!(!refreshed.text.contains("secret"));

    // Another tenant sees, refreshes and removes nothing of it.
    let other = app.tenant_b();
    assert!(names(other.get("/v1/remotes").await.ok(200)).is_empty());
    other.get("/v1/remotes/echo").await.err(404, "not_found");
    other
        .post("/v1/remotes/echo/refresh", json!({}))
        .await
        .err(404, "not_found");
    other.delete("/v1/remotes/echo").await.err(404, "not_found");
    // Its agents cannot name it either.
    let refused = other
        .post(
            "/v1/agents",
            json!({"name": "x", "model": "openai/m", "tools": ["a2a:echo"]}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);

    // A key that may read tools lists remotes and registers none.
    let key = admin
        .post(
            "/v1/keys",
            json!({"name": "reader", "kind": "service", "scopes": ["tools:read"]}),
        )
        .await
        .ok(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let reader = app.with_key(&key);
    assert_eq!(names(reader.get("/v1/remotes").await.ok(200)), ["echo"]);
    reader
        .post("/v1/remotes", json!({"name": "more", "url": base}))
        .await
        .err(403, "insufficient_scope");
    reader
        .delete("/v1/remotes/echo")
        .await
        .err(403, "insufficient_scope");

    admin.delete("/v1/remotes/echo").await.ok(204);
    admin.get("/v1/remotes/echo").await.err(404, "not_found");
    admin.delete("/v1/remotes/echo").await.err(404, "not_found");
}

#[tokio::test]
async fn bad_registrations_are_refused_with_stable_codes_and_the_walls_audited() {
    let app = TestApp::start().await;
    let base = cards().await;
    let admin = app.admin();
    for body in [
        json!({"name": "Bad Name", "url": base}),
        json!({"name": "x"}),
        json!({"name": "x", "url": "ftp://h/"}),
        json!({"name": "x", "url": base, "surprise": true}),
        json!({"name": "x", "url": base, "timeout_secs": 0}),
        json!({"name": "x", "url": base, "headers": {"A2A-Version": "9"}}),
    ] {
        admin
            .post("/v1/remotes", body)
            .await
            .err(400, "invalid_request");
    }
    admin
        .post(
            "/v1/remotes",
            json!({"name": "x", "url": format!("{base}/nothing.json")}),
        )
        .await
        .err(502, "remote_unavailable");
    let rest = admin
        .post(
            "/v1/remotes",
            json!({"name": "x", "url": format!("{base}/rest/")}),
        )
        .await;
    rest.err(422, "invalid_agent_card");
    assert!(rest.text.contains("no JSON-RPC interface"), "{}", rest.text);
    // Roster's own listener, and the metadata service.
    for url in [
        format!("{}/", app.url),
        "http://169.254.169.254/".to_owned(),
    ] {
        admin
            .post("/v1/remotes", json!({"name": "walled", "url": url}))
            .await
            .err(403, "egress_denied");
    }
    assert!(names(admin.get("/v1/remotes").await.ok(200)).is_empty());
    let audit = admin.get("/v1/audit?limit=100").await.ok(200).clone();
    let refusals = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "a2a.add" && e["decision"] == "deny")
        .count();
    assert_eq!(refusals, 2, "{audit}");
}
