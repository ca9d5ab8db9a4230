//! When the store fails: `internal_error` (500) without its details, and a
//! health check that says the service is unavailable (503).
#![allow(clippy::unwrap_used)]

use crate::common;

use common::TestApp;
use serde_json::json;

/// Every call fails except the key lookup, so requests authenticate.
const FAILING_AFTER_AUTH: &[&str] = &["find_api_key"];
const FAILING: &[&str] = &[];
const SECRET: &str = "/var/secret/roster.db: disk I/O error";

#[tokio::test]
async fn store_failures_are_internal_errors_without_details() {
    let (app, faults) = TestApp::start_with_faults().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    for failing in [FAILING_AFTER_AUTH, FAILING] {
        faults.fail_all(SECRET, failing);
        let responses = [
            admin.get("/v1/agents").await,
            admin.get("/v1/agents/bot").await,
            admin
                .post("/v1/agents", json!({"name": "x", "model": "openai/m"}))
                .await,
            admin.get(&format!("/v1/sessions/{session}/items")).await,
            admin.message(&session, json!({"content": "hi"})).await,
            admin.get("/v1/ledger").await,
        ];
        for resp in responses {
            resp.err(500, "internal_error");
            assert!(
                !resp.text.contains("secret"),
                "details leaked: {}",
                resp.text
            );
        }
    }
    faults.recover();
    assert_eq!(admin.get("/v1/agents").await.status, 200);
    assert!(
        admin.items(&session).await.is_empty(),
        "no run was accepted"
    );
}

#[tokio::test]
async fn health_check_reports_an_unavailable_store() {
    let (app, faults) = TestApp::start_with_faults().await;
    assert_eq!(app.anon().get("/healthz").await.status, 200);
    faults.fail_all(SECRET, FAILING);
    let resp = app.anon().get("/healthz").await;
    resp.err(503, "unavailable");
    assert!(!resp.text.contains("secret"), "{}", resp.text);
    faults.recover();
    assert_eq!(app.anon().get("/healthz").await.status, 200);
}
