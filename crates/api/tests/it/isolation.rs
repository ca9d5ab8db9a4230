//! Tenant isolation, derived from the OpenAPI document: every operation it
//! lists is called with a key of tenant A against the objects of tenant B,
//! and again against objects that do not exist anywhere. The two answers
//! must be the same (so nothing reveals that B's object exists), never a
//! success on B's object, and no answer may carry anything of B's. B's
//! state, read through every operation B may call, must be unchanged.
//!
//! A new endpoint is covered without editing this file: its path and query
//! parameters and body fields are filled from the tables below, and one
//! this test cannot fill fails it, naming what to add.
#![allow(clippy::unwrap_used)]

use crate::common;

use axum::body::Body;
use axum::http::Request;
use common::{Client, Reply, TestApp};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Map, Value};

/// One object of tenant B per kind, and a value naming nothing.
struct Names {
    /// (parameter, first path segment or `*`) -> (B's value, absent value).
    values: Vec<(&'static str, &'static str, String, String)>,
    /// Text of B's that must never reach A.
    secrets: Vec<String>,
}

impl Names {
    fn lookup(&self, param: &str, path: &str) -> Option<(String, String)> {
        let segment = path
            .trim_start_matches("/v1/")
            .split('/')
            .next()
            .unwrap_or("");
        let sub = path.split('/').nth(3).unwrap_or("");
        self.values
            .iter()
            .find(|(p, s, _, _)| *p == param && (*s == segment || *s == sub))
            .or_else(|| {
                self.values
                    .iter()
                    .find(|(p, s, _, _)| *p == param && *s == "*")
            })
            .map(|(_, _, b, absent)| (b.clone(), absent.clone()))
    }
}

async fn tenant_b_objects(app: &TestApp, dir: &std::path::Path) -> Names {
    let b = app.tenant_b();
    let agent = b
        .create_agent(json!({
            "name": "zq-agent", "model": "openai/test-model",
            "instructions": "zq-instructions",
            "memory_blocks": [{"label": "notes", "value": "zq-block"},
                              {"label": "persona", "value": "zq-template", "scope": "user"}],
        }))
        .await;
    let session = b.session("zq-agent").await;
    // A user's session of B's and that user's copy of a block, made with a
    // service key acting for the user (which only the admin key may make
    // for a tenant whose keys act for no user).
    let service = app
        .admin()
        .post(
            "/v1/keys",
            json!({"tenant": app.tenant_b.to_string(), "name": "zq-service", "kind": "service"}),
        )
        .await
        .ok(201)["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let service = app.with_key(&service);
    service
        .post(
            "/v1/sessions",
            json!({"agent": "zq-agent", "user": "zq-user"}),
        )
        .await
        .ok(201);
    service
        .patch(
            "/v1/agents/zq-agent/blocks/persona?owner=user:zq-user",
            json!({"value": "zq-copy"}),
        )
        .await
        .ok(200);
    app.fake.push(Reply::text("zq-reply"));
    let run = b.say(&session, "zq-input").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let memory = b
        .post(
            "/v1/memories",
            json!({"namespace": "agents/zq-agent", "content": "zq-fact about the zq project"}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.post("/v1/knowledge/sources", json!({"name": "zq-source"}))
        .await
        .ok(201);
    let upload = b
        .request(
            Method::PUT,
            "/v1/knowledge/sources/zq-source/documents/zq/doc.md",
        )
        .header("content-type", "text/markdown")
        .body("# zq-document\n\nzq-passage of B.\n");
    let uploaded = b.send(upload).await;
    assert!(uploaded.status < 300, "{}", uploaded.text);
    b.put(
        "/v1/policies/zq-policy",
        json!({"text": "permit(principal, action == Roster::Action::\"invoke_agent\", resource) when { context == {} };"}),
    )
    .await
    .ok(201);
    b.put(
        "/v1/budgets/agents/zq-agent",
        json!({"tokens_per_day": 777_777}),
    )
    .await
    .ok(200);
    // A tool call of B's waiting for approval.
    b.put(
        "/v1/policies/zq-approvals",
        json!({"text": "@approval(\"zq-approval-reason\")\npermit(principal, action == Roster::Action::\"call_tool\", resource == Roster::Tool::\"sleep\");"}),
    )
    .await
    .ok(201);
    b.create_agent(json!({"name": "zq-payer", "model": "openai/test-model", "tools": ["sleep"]}))
        .await;
    let paused_session = b.session("zq-payer").await;
    app.fake
        .push(Reply::tool_call("zq-call", "sleep", r#"{"ms": 1}"#));
    let paused = b.say(&paused_session, "zq-pause").await;
    assert_eq!(paused["run"]["status"], "awaiting_approval", "{paused}");
    let approval = b.get("/v1/approvals").await.ok(200)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = b
        .post("/v1/keys", json!({"name": "zq-key"}))
        .await
        .ok(201)
        .clone();
    let db = dir.join("zq.db");
    sqlite_with_table(&db);
    b.post(
        "/v1/sources/sql",
        json!({"name": "zq-sql", "url": format!("sqlite://{}", db.display()), "allow": ["zq_table"]}),
    )
    .await
    .ok(201);
    b.post(
        "/v1/sources/http",
        json!({"name": "zq-http", "base_url": "http://127.0.0.1:9",
            "spec": {"openapi": "3.0.3", "info": {"title": "zq", "version": "1"},
                "paths": {"/zq": {"get": {"operationId": "zqOp", "responses": {"200": {"description": "ok"}}}}}}}),
    )
    .await
    .ok(201);
    b.post(
        "/v1/mcp/servers",
        json!({"name": "zq-mcp", "url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "zq-header-secret"}}),
    )
    .await
    .ok(201);
    // A remote A2A agent: its card is fetched at registration, so it is served.
    let cards = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let card_base = format!("http://{}", cards.local_addr().unwrap());
    let card = json!({"name": "zq-remote-card", "url": format!("{card_base}/rpc"), "protocolVersion": "1.0"});
    let served = axum::Router::new().route(
        "/.well-known/agent-card.json",
        axum::routing::get(move || std::future::ready(axum::Json(card.clone()))),
    );
    tokio::spawn(async move { axum::serve(cards, served).await });
    b.post(
        "/v1/remotes",
        json!({"name": "zq-remote", "url": card_base, "bearer_token": "zq-remote-secret"}),
    )
    .await
    .ok(201);
    if app.state.sandbox.is_some() {
        let put = b
            .request(Method::PUT, &format!("/v1/sessions/{session}/files/zq.txt"))
            .body("zq-file");
        let put = b.send(put).await;
        assert!(put.status < 300, "{}", put.text);
    }
    let schedule = b
        .post(
            "/v1/schedules",
            json!({"agent": "zq-agent", "cron": "0 9 * * *", "input": "zq-scheduled-input"}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trigger = b
        .post(
            "/v1/triggers",
            json!({"agent": "zq-agent", "template": "zq-template {{payload}}"}),
        )
        .await
        .ok(201)
        .clone();
    let webhook = b
        .post(
            "/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/zq-hook", "description": "zq-hook-description"}),
        )
        .await
        .ok(201)
        .clone();
    let webhook_secret = webhook["secret"].as_str().unwrap().to_owned();
    let webhook = webhook["id"].as_str().unwrap().to_owned();
    app.fake.push(Reply::text("zq-notified-reply"));
    b.post(
        &format!("/v1/sessions/{session}/messages"),
        json!({"content": "zq-notified-input", "notify": [webhook]}),
    )
    .await
    .ok(200);
    let notification = b
        .get(&format!("/v1/webhooks/{webhook}/notifications"))
        .await
        .ok(200)["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trigger_secret = trigger["secret"].as_str().unwrap().to_owned();
    let trigger = trigger["id"].as_str().unwrap().to_owned();
    let agent_id = agent["id"].as_str().unwrap().to_owned();
    let key_id = key["id"].as_str().unwrap().to_owned();
    let none = |prefix: &str| format!("{prefix}_{}", "0".repeat(32));
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    let mut values = vec![];
    for (param, segment, (present, absent)) in [
        ("agent", "*", pair("zq-agent", "zq-nobody")),
        ("id", "sessions", (session.clone(), none("ses"))),
        ("id", "runs", (run.clone(), none("run"))),
        ("id", "memories", (memory.clone(), none("mem"))),
        ("id", "keys", (key_id.clone(), none("key"))),
        ("id", "approvals", (approval.clone(), none("apr"))),
        ("id", "schedules", (schedule.clone(), none("sch"))),
        ("id", "triggers", (trigger.clone(), none("trg"))),
        ("id", "hooks", (trigger.clone(), none("trg"))),
        ("id", "webhooks", (webhook.clone(), none("whk"))),
        ("id", "notifications", (notification.clone(), none("ntf"))),
        ("label", "*", pair("persona", "zq-nolabel")),
        ("owner", "*", pair("user:zq-user", "user:zq-nouser")),
        ("user", "*", pair("zq-user", "zq-nouser")),
        ("name", "knowledge", pair("zq-source", "zq-nosource")),
        ("name", "policies", pair("zq-policy", "zq-nopolicy")),
        ("name", "mcp", pair("zq-mcp", "zq-nomcp")),
        ("name", "sql", pair("zq-sql", "zq-nosql")),
        ("name", "http", pair("zq-http", "zq-nohttp")),
        ("name", "remotes", pair("zq-remote", "zq-noremote")),
        ("path", "knowledge", pair("zq/doc.md", "zq/nodoc.md")),
        ("path", "sessions", pair("zq.txt", "zq-nofile.txt")),
        ("tenant", "*", (app.tenant_b.to_string(), none("ten"))),
        ("run_id", "*", (run.clone(), none("run"))),
        ("session", "*", (session.clone(), none("ses"))),
        ("session_id", "*", (session.clone(), none("ses"))),
        ("source", "*", pair("zq-sql", "zq-nosql")),
        ("sources", "*", pair("zq-source", "zq-nosource")),
        (
            "namespace",
            "*",
            pair("agents/zq-agent", "agents/zq-nobody"),
        ),
    ] {
        values.push((param, segment, present, absent));
    }
    let secrets = [
        agent_id,
        session,
        run,
        memory,
        key_id,
        app.tenant_b.to_string(),
        "zq-instructions".into(),
        "zq-block".into(),
        "zq-template".into(),
        "zq-copy".into(),
        "zq-user".into(),
        "zq-reply".into(),
        "zq-input".into(),
        "zq-scheduled-input".into(),
        schedule,
        trigger_secret,
        webhook_secret,
        webhook,
        notification,
        "zq-hook".into(),
        "zq-notified-reply".into(),
        "zq-fact".into(),
        "zq-passage".into(),
        "zq-document".into(),
        "zq-header-secret".into(),
        "zq-remote-secret".into(),
        "zq-remote-card".into(),
        "zq_table".into(),
        "zq-row".into(),
        "zqOp".into(),
        "zq-file".into(),
        "context == {}".into(),
        "zq-approval-reason".into(),
        approval,
    ]
    .to_vec();
    Names { values, secrets }
}

/// A SQLite database with one table of B's.
fn sqlite_with_table(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE zq_table (id INTEGER PRIMARY KEY, secret TEXT);
         INSERT INTO zq_table (secret) VALUES ('zq-row');",
    )
    .unwrap();
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// A body for `schema`: its required fields with plain values, and every
/// field that names an object filled with `pick`'s value.
fn body_for(
    doc: &Value,
    schema: &Value,
    path: &str,
    names: &Names,
    pick: fn((String, String)) -> String,
) -> Value {
    let schema = resolve(doc, schema);
    let mut body = Map::new();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for (field, spec) in schema["properties"].as_object().into_iter().flatten() {
        let spec = resolve(doc, spec);
        let named = names.lookup(field, path).map(pick);
        let is_array = spec["type"] == "array"
            || spec["type"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("array")));
        let value = match named {
            Some(v) if is_array => json!([v]),
            Some(v) => json!(v),
            None if !required.contains(&field.as_str()) => continue,
            None => match spec["type"].as_str() {
                Some("integer" | "number") => json!(1),
                Some("boolean") => json!(false),
                Some("array") => json!([]),
                Some("object") => json!({}),
                _ => json!("probe"),
            },
        };
        body.insert(field.clone(), value);
    }
    Value::Object(body)
}

struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
}

/// The operation's request with B's objects (`pick` = present) or absent
/// ones; `None` for a parameter this test cannot fill.
fn request(
    doc: &Value,
    method: &str,
    template: &str,
    op: &Value,
    names: &Names,
    pick: fn((String, String)) -> String,
) -> Result<Call, String> {
    let mut path = template.to_owned();
    let mut query = vec![];
    for param in op["parameters"].as_array().into_iter().flatten() {
        let name = param["name"].as_str().unwrap_or_default();
        match param["in"].as_str() {
            Some("path") => {
                let value = names.lookup(name, template).map(pick).ok_or_else(|| {
                    format!("{method} {template}: no value for path parameter `{name}`")
                })?;
                path = path.replace(&format!("{{{name}}}"), &value);
            }
            Some("query") => {
                if let Some(value) = names.lookup(name, template).map(pick) {
                    query.push(format!("{name}={}", urlencode(&value)));
                }
            }
            _ => {}
        }
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let body = op["requestBody"]["content"]["application/json"]["schema"]
        .as_object()
        .map(|_| {
            body_for(
                doc,
                &op["requestBody"]["content"]["application/json"]["schema"],
                template,
                names,
                pick,
            )
        });
    Ok(Call {
        method: Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
        path,
        body,
    })
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn send(client: &Client, call: &Call) -> common::Resp {
    let mut builder = client.request(call.method.clone(), &call.path);
    if let Some(body) = &call.body {
        builder = builder.json(body);
    } else if call.method == Method::PUT {
        builder = builder.body("probe");
    }
    let response = builder.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    // A feed (Server-Sent Events) never ends: what it says within a moment
    // is what is checked for B's objects.
    let streaming = headers
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let text = if streaming {
        let mut text = String::new();
        let mut body = response.bytes_stream();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(1500);
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, body.next()).await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    } else {
        response.text().await.unwrap()
    };
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    common::Resp {
        status,
        headers,
        text,
        body,
    }
}

/// Everything B can read through the API, by operation.
async fn snapshot(b: &Client, doc: &Value, names: &Names) -> Vec<(String, u16, Value)> {
    let mut out = vec![];
    for (template, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        // Feeds never end, and an export is a read that records itself.
        if !template.starts_with("/v1/")
            || template.ends_with("/events")
            || template.ends_with("/export")
            || template == "/v1/index"
        {
            continue;
        }
        let Ok(call) = request(doc, "get", template, op, names, |(b, _)| b) else {
            continue;
        };
        let resp = send(b, &call).await;
        out.push((call.path, resp.status, resp.body));
    }
    out
}

#[tokio::test]
async fn no_endpoint_lets_one_tenant_read_change_or_detect_anothers_objects() {
    let app = TestApp::start().await;
    if std::env::var_os("CI").is_some() {
        assert!(
            app.state.sandbox.is_some(),
            "CI must run the file endpoints against a real sandbox"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let names = tenant_b_objects(&app, dir.path()).await;
    let (status, doc) = app
        .oneshot(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, 200);
    let b = app.tenant_b();
    let before = snapshot(&b, &doc, &names).await;
    let fake_requests = app.fake.request_count();

    // Tenant A's full key (not the admin key, which manages all tenants).
    let a = app.member();
    let mut walked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        // Hooks take no key (a signature instead): `triggers.rs` checks
        // that one for another tenant's trigger answers as an absent one.
        if !template.starts_with("/v1/") || template.starts_with("/v1/hooks/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let present = request(&doc, method, template, op, &names, |(b, _)| b)
                .unwrap_or_else(|e| panic!("{e}: add tenant B's object to tenant_b_objects"));
            let absent = request(&doc, method, template, op, &names, |(_, a)| a).unwrap();
            let on_b = send(&a, &present).await;
            let on_nothing = send(&a, &absent).await;
            let names_b = present.path != absent.path || present.body != absent.body;
            if names_b {
                assert!(
                    !(200..300).contains(&on_b.status) || on_b.status == on_nothing.status,
                    "{method} {template}: A's key succeeded on B's object ({}): {}",
                    on_b.status,
                    on_b.text
                );
                assert_eq!(
                    (on_b.status, &on_b.body["error"]["code"]),
                    (on_nothing.status, &on_nothing.body["error"]["code"]),
                    "{method} {template}: B's object answers differently from a missing one: {} / {}",
                    on_b.text,
                    on_nothing.text
                );
            }
            // An id A itself sent may come back in the error; nothing else may.
            let sent = format!(
                "{} {}",
                present.path,
                present.body.clone().unwrap_or_default()
            );
            for secret in names.secrets.iter().filter(|s| !sent.contains(s.as_str())) {
                assert!(
                    !on_b.text.contains(secret.as_str()),
                    "{method} {}: answer reveals `{secret}` of tenant B: {}",
                    present.path,
                    on_b.text
                );
            }
            walked += 1;
        }
    }
    assert!(walked >= 60, "walked only {walked} operations");

    // B's state is exactly as it was, and A started no model call for B.
    let after = snapshot(&b, &doc, &names).await;
    assert_eq!(before.len(), after.len());
    for ((path, status, body), (_, status_after, body_after)) in before.iter().zip(&after) {
        assert_eq!(
            (status, body),
            (status_after, body_after),
            "GET {path} changed for tenant B"
        );
    }
    assert_eq!(app.fake.request_count(), fake_requests);
}
