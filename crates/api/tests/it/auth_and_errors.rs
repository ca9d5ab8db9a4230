//! Authentication, and the JSON error answer to every kind of bad request.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Reply, TestApp, ADMIN_KEY};
use reqwest::Method;
use roster_core::{AgentId, RunId, SessionId};
use serde_json::{json, Value};

/// Every `/v1` route with a body that would be valid for it.
fn v1_routes(agent: &str, session: &str, run: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/v1/agents".into(), None),
        (
            Method::POST,
            "/v1/agents".into(),
            Some(json!({"name": "x", "model": "openai/m"})),
        ),
        (Method::GET, format!("/v1/agents/{agent}"), None),
        (
            Method::PATCH,
            format!("/v1/agents/{agent}"),
            Some(json!({"instructions": "x"})),
        ),
        (Method::DELETE, format!("/v1/agents/{agent}"), None),
        (Method::GET, format!("/v1/agents/{agent}/memory"), None),
        (Method::GET, "/v1/sessions".into(), None),
        (
            Method::POST,
            "/v1/sessions".into(),
            Some(json!({"agent": agent})),
        ),
        (Method::GET, format!("/v1/sessions/{session}"), None),
        (Method::GET, format!("/v1/sessions/{session}/items"), None),
        (
            Method::POST,
            format!("/v1/sessions/{session}/messages"),
            Some(json!({"content": "hi"})),
        ),
        (Method::GET, format!("/v1/runs/{run}"), None),
        (Method::POST, format!("/v1/runs/{run}/cancel"), None),
        (Method::GET, format!("/v1/runs/{run}/events"), None),
        (Method::GET, "/v1/ledger".into(), None),
    ]
}

#[tokio::test]
async fn every_v1_route_needs_a_valid_bearer_key() {
    let app = TestApp::start().await;
    let agent = app.admin().agent("bot", "openai/m").await;
    let session = app.admin().session(&agent).await;
    let routes = v1_routes(&agent, &session, RunId::generate().as_str());
    let bad_headers: [Option<&str>; 6] = [
        None,
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer"),
        Some("Bearer "),
        Some("Token test-admin-key-0123456789"),
        Some("Bearer not-a-key"),
    ];
    for (method, path, body) in routes {
        for header in bad_headers {
            let anon = app.anon();
            let mut builder = anon.request(method.clone(), &path);
            if let Some(h) = header {
                builder = builder.header("authorization", h);
            }
            if let Some(body) = &body {
                builder = builder.json(body);
            }
            let resp = anon.send(builder).await;
            assert_eq!(resp.status, 401, "{method} {path} with {header:?}");
            resp.err(401, "unauthorized");
        }
    }
    // Nothing was created or run by the refused requests.
    let agents = app.admin().get("/v1/agents").await;
    assert_eq!(agents.ok(200)["data"].as_array().unwrap().len(), 1);
    assert!(app.admin().items(&session).await.is_empty());
    assert_eq!(app.fake.request_count(), 0);
}

#[tokio::test]
async fn health_and_openapi_need_no_key_and_lowercase_scheme_works() {
    let app = TestApp::start().await;
    let health = app.anon().get("/healthz").await;
    assert_eq!(health.ok(200), &json!({"status": "ok", "store": "sqlite"}));
    assert_eq!(app.anon().get("/openapi.json").await.status, 200);
    let anon = app.anon();
    let lower = anon
        .request(Method::GET, "/v1/agents")
        .header("authorization", format!("bearer {ADMIN_KEY}"));
    assert_eq!(anon.send(lower).await.status, 200);
}

#[tokio::test]
async fn malformed_bodies_are_refused_and_change_nothing() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("keep", "openai/m").await;
    let before = admin.get("/v1/agents").await.body;

    let raw = |body: &str| {
        admin
            .request(Method::POST, "/v1/agents")
            .header("content-type", "application/json")
            .body(body.to_owned())
    };
    admin
        .send(raw("{not json"))
        .await
        .err(400, "malformed_json");
    admin.send(raw("")).await.err(400, "malformed_json");
    admin
        .send(raw(r#"{"name": "a", "model": "openai/m""#))
        .await
        .err(400, "malformed_json");
    admin.send(raw("[]")).await.err(400, "invalid_request");
    admin
        .send(raw(r#"{"name": 5, "model": "openai/m"}"#))
        .await
        .err(400, "invalid_request");
    // The messages speak JSON, not the server's Rust types.
    for body in [
        r#""an agent""#,
        "[[1]]",
        r#"{"name": "a", "model": "openai/m", "max_steps": -1}"#,
        r#"{"name": "a", "model": "openai/m", "context": 7}"#,
    ] {
        let refused = admin.send(raw(body)).await;
        refused.err(400, "invalid_request");
        let message = refused.body["error"]["message"].as_str().unwrap();
        for rust in [
            "struct ",
            "CreateAgent",
            "ContextSettings",
            "u32",
            "target type",
        ] {
            assert!(!message.contains(rust), "{body}: `{rust}` in {message}");
        }
    }
    admin
        .send(raw(r#"{"name": "a"}"#))
        .await
        .err(400, "invalid_request");
    admin
        .send(raw(
            r#"{"name": "a", "model": "openai/m", "colour": "red"}"#,
        ))
        .await
        .err(400, "invalid_request");
    admin
        .send(raw(
            r#"{"name": "a", "model": "openai/m", "max_steps": -1}"#,
        ))
        .await
        .err(400, "invalid_request");

    let no_type = admin
        .request(Method::POST, "/v1/agents")
        .body(r#"{"name": "a", "model": "openai/m"}"#);
    admin.send(no_type).await.err(415, "unsupported_media_type");
    let text = admin
        .request(Method::POST, "/v1/agents")
        .header("content-type", "text/plain")
        .body(r#"{"name": "a", "model": "openai/m"}"#);
    admin.send(text).await.err(415, "unsupported_media_type");

    let huge = format!(
        r#"{{"name": "a", "model": "openai/m", "instructions": "{}"}}"#,
        "x".repeat(2 * 1024 * 1024 + 1)
    );
    admin.send(raw(&huge)).await.err(413, "payload_too_large");

    assert_eq!(admin.get("/v1/agents").await.body, before);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_not_found_everywhere() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    let before_items = admin.items(&session).await;
    let unknown = [
        AgentId::generate().to_string(),
        SessionId::generate().to_string(),
        RunId::generate().to_string(),
        "nobody".to_owned(),
        "agt_123".to_owned(),
        "ses_zz".to_owned(),
        "run_%20".to_owned(),
        "%FF%FE".to_owned(),
    ];
    for id in &unknown {
        for (method, path, body) in v1_routes(id, id, id) {
            if !path.contains(id.as_str()) {
                continue;
            }
            let mut builder = admin.request(method.clone(), &path);
            if let Some(body) = &body {
                builder = builder.json(body);
            }
            let resp = admin.send(builder).await;
            assert_eq!(resp.status, 404, "{method} {path}: {}", resp.text);
            resp.err(404, "not_found");
        }
        admin
            .post("/v1/sessions", json!({"agent": id}))
            .await
            .err(404, "not_found");
        admin
            .get(&format!("/v1/sessions?agent={id}"))
            .await
            .err(404, "not_found");
        admin
            .get(&format!("/v1/ledger?agent={id}"))
            .await
            .err(404, "not_found");
    }
    // A run id that parses but names nothing is an empty ledger page.
    let ledger = admin
        .get(&format!("/v1/ledger?run_id={}", RunId::generate()))
        .await;
    assert_eq!(ledger.ok(200)["data"], json!([]));
    // The only agent and its session are untouched.
    assert_eq!(admin.get("/v1/agents").await.body["data"][0]["name"], "bot");
    assert_eq!(admin.items(&session).await, before_items);
    assert_eq!(app.fake.request_count(), 0);
}

#[tokio::test]
async fn unknown_endpoints_and_wrong_methods_answer_json() {
    let app = TestApp::start().await;
    let admin = app.admin();
    for path in [
        "/nope",
        "/v1/nope",
        "/v1/agents/a/b/c",
        "/v2/agents",
        "/v1/agents/",
    ] {
        let resp = admin.get(path).await;
        assert_eq!(resp.status, 404, "{path}");
        resp.err(404, "not_found");
    }
    let session = admin.agent_session("bot").await;
    let wrong = [
        (Method::DELETE, "/v1/agents".to_owned()),
        (Method::PUT, "/v1/agents/bot".to_owned()),
        (Method::POST, "/v1/agents/bot/memory".to_owned()),
        (Method::PATCH, "/v1/sessions".to_owned()),
        (Method::PUT, format!("/v1/sessions/{session}")),
        (Method::GET, format!("/v1/sessions/{session}/messages")),
        (Method::POST, format!("/v1/sessions/{session}/items")),
        (
            Method::GET,
            format!("/v1/runs/{}/cancel", RunId::generate()),
        ),
        (Method::POST, "/v1/ledger".to_owned()),
        (Method::POST, "/healthz".to_owned()),
        (Method::DELETE, "/openapi.json".to_owned()),
    ];
    for (method, path) in wrong {
        let resp = admin.send(admin.request(method.clone(), &path)).await;
        assert_eq!(resp.status, 405, "{method} {path}: {}", resp.text);
        resp.err(405, "method_not_allowed");
        assert!(
            resp.headers.contains_key("allow"),
            "{method} {path} lacks Allow"
        );
    }
}

#[tokio::test]
async fn bad_query_strings_and_headers_are_invalid_requests() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push(Reply::text("hello"));
    let done = admin.say(&session, "hi").await;
    let run = done["run"]["id"].as_str().unwrap();
    let bad = [
        "/v1/sessions?limit=0".to_owned(),
        "/v1/sessions?limit=1001".to_owned(),
        "/v1/sessions?limit=ten".to_owned(),
        "/v1/sessions?colour=red".to_owned(),
        format!("/v1/sessions/{session}/items?limit=0"),
        format!("/v1/sessions/{session}/items?limit=-3"),
        format!("/v1/sessions/{session}/items?after=first"),
        "/v1/ledger?limit=0".to_owned(),
        "/v1/ledger?limit=100000".to_owned(),
        "/v1/ledger?before=yesterday".to_owned(),
    ];
    for path in bad {
        let resp = admin.get(&path).await;
        assert_eq!(resp.status, 400, "{path}: {}", resp.text);
        resp.err(400, "invalid_request");
    }
    for id in ["abc", "-1", "1.5", ""] {
        let builder = admin
            .request(Method::GET, &format!("/v1/runs/{run}/events"))
            .header("last-event-id", id);
        admin.send(builder).await.err(400, "invalid_request");
    }
}

/// A whole number written as a float (`5.0`) is an integer to JSON Schema
/// and to clients generated from the OpenAPI document; a fraction is not.
#[tokio::test]
async fn whole_floats_are_accepted_where_integers_are_expected() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({"name": "helper", "model": "openai/test-model",
            "memory_blocks": [{"label": "notes", "value": "", "limit": 100.0}]}))
        .await;
    let set = admin
        .patch("/v1/agents/helper/blocks/notes", json!({"limit": 200.0}))
        .await;
    assert_eq!(set.ok(200)["limit"], 200);
    let refused = admin
        .patch("/v1/agents/helper/blocks/notes", json!({"limit": 200.5}))
        .await;
    refused.err(400, "invalid_request");
    assert!(refused.text.contains("floating point"), "{}", refused.text);
}
