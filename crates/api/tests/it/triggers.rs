//! Triggers: a signed delivery starts a run through the template; forged,
//! stale, oversize and malformed ones start nothing and are recorded; a
//! retried delivery starts nothing more; each hook is rate limited.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Reply, TestApp};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};

fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_hook(
    app: &TestApp,
    url: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> common::Resp {
    let anon = app.anon();
    let mut builder = anon
        .request(reqwest::Method::POST, url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    anon.send(builder).await
}

async fn trigger(app: &TestApp) -> (String, String, String) {
    let admin = app.admin();
    admin.agent("triager", "openai/test-model").await;
    let made = admin
        .post(
            "/v1/triggers",
            json!({"agent": "triager", "template": "New issue: {{payload.issue.title}} (by {{payload.sender}})"}),
        )
        .await
        .ok(201)
        .clone();
    (
        made["id"].as_str().unwrap().to_owned(),
        made["url"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_signed_delivery_starts_a_run_once() {
    let app = TestApp::start().await;
    let (id, url, secret) = trigger(&app).await;
    assert_eq!(url, format!("/v1/hooks/{id}"));
    // The secret is shown once.
    let shown = app
        .admin()
        .get(&format!("/v1/triggers/{id}"))
        .await
        .ok(200)
        .clone();
    assert!(shown.get("secret").is_none(), "{shown}");
    assert!(!shown.to_string().contains(&secret));

    app.fake.push(Reply::text("triaged"));
    let body =
        serde_json::to_vec(&json!({"issue": {"title": "Disk full"}, "sender": "ops-bot"})).unwrap();
    let now = chrono::Utc::now().timestamp();
    let headers = [
        ("x-roster-timestamp", now.to_string()),
        ("x-roster-signature", sign(&secret, now, &body)),
        ("x-roster-delivery", "gh-123".to_owned()),
    ];
    let first = post_hook(&app, &url, &body, &headers).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let run = first.body["run_id"].as_str().unwrap().to_owned();
    let done = app.admin().wait_run(&run).await;
    assert_eq!(done["input"], "New issue: Disk full (by ops-bot)");
    assert_eq!(done["output"], "triaged");
    assert!(
        done["actor"]
            .as_str()
            .unwrap()
            .ends_with(&format!("> trigger:{id}")),
        "{done}"
    );
    // The sender retries (a timeout on its side): the same run, nothing new.
    let again = post_hook(&app, &url, &body, &headers).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["run_id"], run.as_str());
    assert_eq!(again.body["started"], false);
    assert_eq!(app.fake.request_count(), 1);
}

#[tokio::test]
async fn forged_stale_oversize_and_malformed_deliveries_start_nothing() {
    let app = TestApp::start().await;
    let (id, url, secret) = trigger(&app).await;
    let body = br#"{"issue": {"title": "x"}}"#.to_vec();
    let now = chrono::Utc::now().timestamp();
    let stale = now - 3_600;
    let big = serde_json::to_vec(&json!({"blob": "x".repeat(300 * 1024)})).unwrap();
    type Case<'a> = (Vec<u8>, Vec<(&'a str, String)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (body.clone(), vec![], 401, "invalid_signature"),
        (
            body.clone(),
            vec![("x-roster-timestamp", now.to_string())],
            401,
            "invalid_signature",
        ),
        (
            body.clone(),
            vec![
                ("x-roster-timestamp", now.to_string()),
                ("x-roster-signature", sign("whsec_forged", now, &body)),
            ],
            401,
            "invalid_signature",
        ),
        (
            body.clone(),
            vec![
                ("x-roster-timestamp", now.to_string()),
                ("x-roster-signature", sign(&secret, now, b"{\"other\": 1}")),
            ],
            401,
            "invalid_signature",
        ),
        (
            body.clone(),
            vec![
                ("x-roster-timestamp", stale.to_string()),
                ("x-roster-signature", sign(&secret, stale, &body)),
            ],
            401,
            "invalid_signature",
        ),
        (
            body.clone(),
            vec![
                ("x-roster-timestamp", "yesterday".into()),
                ("x-roster-signature", sign(&secret, now, &body)),
            ],
            401,
            "invalid_signature",
        ),
        (
            big.clone(),
            vec![
                ("x-roster-timestamp", now.to_string()),
                ("x-roster-signature", sign(&secret, now, &big)),
            ],
            413,
            "payload_too_large",
        ),
        (
            b"not json".to_vec(),
            vec![
                ("x-roster-timestamp", now.to_string()),
                ("x-roster-signature", sign(&secret, now, b"not json")),
            ],
            400,
            "malformed_json",
        ),
    ];
    for (body, headers, status, code) in &cases {
        let resp = post_hook(&app, &url, body, headers).await;
        assert_eq!(resp.status, *status, "{headers:?}: {}", resp.text);
        assert_eq!(resp.body["error"]["code"], *code, "{}", resp.text);
    }
    // An unknown hook answers like a bad signature: ids cannot be probed.
    let unknown = post_hook(
        &app,
        "/v1/hooks/trg_00000000000000000000000000000000",
        &body,
        &[],
    )
    .await;
    assert_eq!(unknown.status, 401);
    assert_eq!(unknown.body["error"]["code"], "invalid_signature");
    // Nothing ran; every refusal is in the audit log.
    assert_eq!(app.fake.request_count(), 0);
    let sessions = app.admin().get("/v1/sessions").await.ok(200).clone();
    assert!(
        sessions["data"].as_array().unwrap().is_empty(),
        "{sessions}"
    );
    let audit = app.admin().get("/v1/audit?limit=100").await.ok(200).clone();
    let refused: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "trigger.delivery_refused" && e["resource"] == format!("trigger:{id}")
        })
        .collect();
    assert_eq!(refused.len(), cases.len(), "{audit}");
}

#[tokio::test]
async fn a_hook_is_rate_limited_and_a_revoked_key_refuses_deliveries() {
    let app = TestApp::start().await;
    let (_, url, _) = trigger(&app).await;
    let mut limited = 0;
    for _ in 0..40 {
        let resp = post_hook(&app, &url, b"{}", &[]).await;
        if resp.status == 429 {
            assert_eq!(resp.body["error"]["code"], "rate_limited");
            assert_eq!(resp.headers["retry-after"], "1");
            limited += 1;
        }
    }
    assert!(limited >= 15, "{limited} of 40 refused");

    // A trigger made by a key that is then revoked starts nothing.
    let admin = app.admin();
    let key = admin
        .post("/v1/keys", json!({"name": "hooks"}))
        .await
        .ok(201)
        .clone();
    let holder = app.with_key(key["key"].as_str().unwrap());
    let made = holder
        .post(
            "/v1/triggers",
            json!({"agent": "triager", "template": "{{payload}}"}),
        )
        .await
        .ok(201)
        .clone();
    admin
        .delete(&format!("/v1/keys/{}", key["id"].as_str().unwrap()))
        .await;
    let secret = made["secret"].as_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    let resp = post_hook(
        &app,
        made["url"].as_str().unwrap(),
        b"{}",
        &[
            ("x-roster-timestamp", now.to_string()),
            ("x-roster-signature", sign(secret, now, b"{}")),
        ],
    )
    .await;
    assert_eq!(resp.status, 403, "{}", resp.text);
    assert_eq!(app.fake.request_count(), 0);
}
