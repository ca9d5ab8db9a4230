//! The OpenAPI document matches the router: every route is documented, every
//! documented operation is routed, and each lists its responses.
#![allow(clippy::unwrap_used)]

use crate::common;

use axum::body::Body;
use axum::http::Request;
use common::{TestApp, ADMIN_KEY};
use serde_json::Value;

const METHODS: &[&str] = &[
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

async fn document(app: &TestApp) -> Value {
    let request = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let (status, doc) = app.oneshot(request).await;
    assert_eq!(status, 200);
    doc
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_route_is_documented_and_every_operation_is_routed() {
    let app = TestApp::start().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["title"], "Roster API");
    let ops = operations(&doc);
    // Routes and entries come from one table (`router.rs`); these are the
    // properties a route added anywhere else would break.
    for path in doc["paths"].as_object().unwrap().keys() {
        assert!(
            !path.contains("{*"),
            "{path}: axum's wildcard in the document"
        );
        // Every `/v1` operation belongs to a scope area, or a scoped key
        // would reach it unchecked.
        // Hook deliveries carry a signature instead of a key.
        if path.starts_with("/v1/") && !path.starts_with("/v1/hooks/") {
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let method = axum::http::Method::from_bytes(method.as_bytes()).unwrap();
                assert!(
                    roster_api::scopes::needed(&method, path).is_some(),
                    "{path} is in no scope area"
                );
            }
        }
    }
    for (method, path) in [("get", "/healthz"), ("post", "/v1/sessions/{id}/messages")] {
        assert!(
            ops.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path} is not documented"
        );
    }

    // Each documented operation reaches a handler: neither the fallback's
    // `no such endpoint` nor a 405.
    for (method, path, _) in &ops {
        let (status, body) = app.oneshot(call(method, path)).await;
        assert_ne!(status, 405, "{method} {path}");
        assert_ne!(
            body["error"]["message"], "no such endpoint",
            "{method} {path} is documented but not routed"
        );
    }

    // A method the document does not list for a path is not served there.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                continue;
            }
            let (status, _) = app.oneshot(call(method, path)).await;
            assert_eq!(status, 405, "{method} {path} is served but not documented");
        }
    }
}

/// An admin's request of `method` on the documented `path`, with made-up
/// values for its parameters.
fn call(method: &str, path: &str) -> Request<Body> {
    let concrete = path
        .replace("{agent}", "nobody")
        .replace("{tenant}", "nobody")
        .replace("{id}", "nothing")
        .replace("{name}", "nowhere")
        .replace("{label}", "notes")
        .replace("{path}", "some/file.md");
    Request::builder()
        .method(method.to_uppercase().as_str())
        .uri(&concrete)
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap()
}

#[tokio::test]
async fn each_operation_lists_its_responses() {
    let app = TestApp::start().await;
    let doc = document(&app).await;
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        let has = |code: &str| responses.contains_key(code);
        assert!(
            responses.keys().any(|c| c.starts_with('2')),
            "{method} {path}: no success response"
        );
        for (code, response) in responses {
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path} {code}: no description"
            );
        }
        if path.starts_with("/v1/") && !path.starts_with("/v1/hooks/") {
            assert!(has("401"), "{method} {path}: 401 not listed");
            assert_ne!(op["security"], serde_json::json!([]), "{method} {path}");
        } else {
            assert_eq!(
                op["security"],
                serde_json::json!([]),
                "{method} {path} needs no key"
            );
        }
        if path.contains('{') {
            assert!(has("404"), "{method} {path}: 404 not listed");
        }
        if op.get("requestBody").is_some()
            || op["parameters"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["in"] == "query" || p["in"] == "header"))
        {
            assert!(has("400"), "{method} {path}: 400 not listed");
        }
    }
    let schemes = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(schemes["scheme"], "bearer");
}

#[tokio::test]
async fn every_schema_reference_resolves() {
    let app = TestApp::start().await;
    let doc = document(&app).await;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = vec![];
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected reference {r}"));
        assert!(schemas.contains_key(name), "dangling reference {r}");
    }
    for name in [
        "Agent",
        "Run",
        "Item",
        "Session",
        "ErrorBody",
        "RunEvent",
        "LedgerEntry",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
