//! The OpenAPI document matches the router: every route is documented, every
//! documented operation is routed, and each lists its responses.
#![allow(clippy::unwrap_used)]

use crate::common;

use axum::body::Body;
use axum::http::Request;
use common::{TestApp, ADMIN_KEY};
use serde_json::Value;

/// Every (method, path) `roster_api::app()` registers.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/openapi.json"),
    ("post", "/v1/agents"),
    ("get", "/v1/agents"),
    ("get", "/v1/agents/{agent}"),
    ("patch", "/v1/agents/{agent}"),
    ("delete", "/v1/agents/{agent}"),
    ("get", "/v1/agents/{agent}/memory"),
    ("get", "/v1/agents/{agent}/versions"),
    ("post", "/v1/agents/{agent}/rollback"),
    ("get", "/v1/agents/{agent}/blocks"),
    ("post", "/v1/agents/{agent}/blocks"),
    ("get", "/v1/agents/{agent}/blocks/{label}"),
    ("patch", "/v1/agents/{agent}/blocks/{label}"),
    ("delete", "/v1/agents/{agent}/blocks/{label}"),
    ("post", "/v1/sessions"),
    ("get", "/v1/sessions"),
    ("get", "/v1/sessions/{id}"),
    ("delete", "/v1/sessions/{id}"),
    ("post", "/v1/sessions/{id}/upgrade"),
    ("get", "/v1/sessions/{id}/items"),
    ("post", "/v1/sessions/{id}/messages"),
    ("get", "/v1/runs/{id}"),
    ("post", "/v1/runs/{id}/cancel"),
    ("post", "/v1/runs/{id}/retry"),
    ("get", "/v1/runs/{id}/events"),
    ("get", "/v1/ledger"),
    ("post", "/v1/memories"),
    ("get", "/v1/memories"),
    ("post", "/v1/memories/search"),
    ("get", "/v1/memories/{id}"),
    ("patch", "/v1/memories/{id}"),
    ("delete", "/v1/memories/{id}"),
    ("post", "/v1/knowledge/sources"),
    ("get", "/v1/knowledge/sources"),
    ("get", "/v1/knowledge/sources/{name}"),
    ("delete", "/v1/knowledge/sources/{name}"),
    ("get", "/v1/knowledge/sources/{name}/documents"),
    ("get", "/v1/knowledge/sources/{name}/documents/{path}"),
    ("put", "/v1/knowledge/sources/{name}/documents/{path}"),
    ("delete", "/v1/knowledge/sources/{name}/documents/{path}"),
    ("post", "/v1/knowledge/search"),
    ("get", "/v1/index"),
    ("post", "/v1/index/rebuild"),
    ("post", "/v1/mcp/servers"),
    ("get", "/v1/mcp/servers"),
    ("get", "/v1/mcp/servers/{name}"),
    ("delete", "/v1/mcp/servers/{name}"),
    ("get", "/v1/mcp/servers/{name}/tools"),
    ("get", "/v1/mcp/catalogue"),
    ("get", "/v1/tools"),
    ("post", "/v1/sources/sql"),
    ("get", "/v1/sources/sql"),
    ("get", "/v1/sources/sql/{name}"),
    ("delete", "/v1/sources/sql/{name}"),
    ("get", "/v1/sources/sql/{name}/schema"),
    ("post", "/v1/sources/sql/{name}/query"),
    ("post", "/v1/sources/http"),
    ("get", "/v1/sources/http"),
    ("get", "/v1/sources/http/{name}"),
    ("delete", "/v1/sources/http/{name}"),
    ("get", "/v1/sessions/{id}/files"),
    ("get", "/v1/sessions/{id}/files/{path}"),
    ("put", "/v1/sessions/{id}/files/{path}"),
    ("delete", "/v1/sessions/{id}/files/{path}"),
    ("post", "/v1/tenants"),
    ("get", "/v1/tenants"),
    ("get", "/v1/tenants/{tenant}"),
    ("post", "/v1/keys"),
    ("get", "/v1/keys"),
    ("get", "/v1/keys/{id}"),
    ("delete", "/v1/keys/{id}"),
    ("get", "/v1/policies"),
    ("get", "/v1/policies/schema"),
    ("get", "/v1/policies/{name}"),
    ("put", "/v1/policies/{name}"),
    ("delete", "/v1/policies/{name}"),
    ("get", "/v1/audit"),
    ("get", "/v1/audit/export"),
    ("get", "/v1/approvals"),
    ("get", "/v1/approvals/events"),
    ("get", "/v1/approvals/{id}"),
    ("post", "/v1/approvals/{id}/approve"),
    ("post", "/v1/approvals/{id}/deny"),
    ("get", "/v1/ledger/summary"),
    ("get", "/v1/budgets"),
    ("put", "/v1/budgets/tenant"),
    ("delete", "/v1/budgets/tenant"),
    ("put", "/v1/budgets/agents/{agent}"),
    ("delete", "/v1/budgets/agents/{agent}"),
];

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
    let mut documented: Vec<(&str, &str)> = ops
        .iter()
        .map(|(m, p, _)| (m.as_str(), p.as_str()))
        .collect();
    documented.sort_unstable();
    let mut routed = ROUTES.to_vec();
    routed.sort_unstable();
    assert_eq!(documented, routed);

    // Each documented operation reaches a handler: neither the fallback's
    // `no such endpoint` nor a 405.
    for (method, path, _) in &ops {
        let concrete = path
            .replace("{agent}", "nobody")
            .replace("{tenant}", "nobody")
            .replace("{id}", "nothing")
            .replace("{name}", "nowhere")
            .replace("{path}", "some/file.md");
        let request = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(&concrete)
            .header("authorization", format!("Bearer {ADMIN_KEY}"))
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (status, body) = app.oneshot(request).await;
        assert_ne!(status, 405, "{method} {path}");
        assert_ne!(
            body["error"]["message"], "no such endpoint",
            "{method} {path} is documented but not routed"
        );
    }
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
        if path.starts_with("/v1/") {
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
