//! Tenant isolation: another tenant's key sees none of a tenant's state and
//! can change none of it.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{eventually, Reply, TestApp};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn another_tenant_gets_not_found_for_everything() {
    let app = TestApp::start().await;
    let a = app.admin();
    let b = app.tenant_b();
    a.create_agent(json!({
        "name": "secret-agent", "model": "openai/m", "memory_blocks": [{"label": "notes", "value": "hidden"}]
    }))
    .await;
    let agent = a.get("/v1/agents/secret-agent").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = a.session(&agent).await;
    app.fake.push(Reply::text("done"));
    let finished = a.say(&session, "hi").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A second run left in progress, which B must not be able to cancel.
    app.fake.push(Reply::text("never").hang());
    let running = a
        .message(&session, json!({"content": "slow", "background": true}))
        .await
        .ok(202)["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(|| async { (app.fake.request_count() == 2).then_some(()) }).await;
    let a_agent_before = a.get(&format!("/v1/agents/{agent}")).await.body;
    let a_items_before = a.items(&session).await;

    let mut requests: Vec<(Method, String, Option<serde_json::Value>)> = vec![];
    for name in [agent.as_str(), "secret-agent"] {
        requests.extend([
            (Method::GET, format!("/v1/agents/{name}"), None),
            (Method::GET, format!("/v1/agents/{name}/memory"), None),
            (
                Method::PATCH,
                format!("/v1/agents/{name}"),
                Some(json!({"model": "openai/stolen"})),
            ),
            (Method::DELETE, format!("/v1/agents/{name}"), None),
            (
                Method::POST,
                "/v1/sessions".to_owned(),
                Some(json!({"agent": name})),
            ),
            (Method::GET, format!("/v1/sessions?agent={name}"), None),
            (Method::GET, format!("/v1/ledger?agent={name}"), None),
        ]);
    }
    requests.extend([
        (Method::GET, format!("/v1/sessions/{session}"), None),
        (Method::GET, format!("/v1/sessions/{session}/items"), None),
        (
            Method::POST,
            format!("/v1/sessions/{session}/messages"),
            Some(json!({"content": "injected"})),
        ),
    ]);
    for run in [&finished, &running] {
        requests.extend([
            (Method::GET, format!("/v1/runs/{run}"), None),
            (Method::GET, format!("/v1/runs/{run}/events"), None),
            (Method::POST, format!("/v1/runs/{run}/cancel"), None),
        ]);
    }
    for (method, path, body) in requests {
        let mut builder = b.request(method.clone(), &path);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        let resp = b.send(builder).await;
        assert_eq!(resp.status, 404, "{method} {path}: {}", resp.text);
        resp.err(404, "not_found");
    }

    for path in ["/v1/agents", "/v1/sessions", "/v1/ledger"] {
        let resp = b.get(path).await;
        assert_eq!(resp.ok(200)["data"], json!([]), "{path}");
    }
    let resp = b.get(&format!("/v1/ledger?run_id={finished}")).await;
    assert_eq!(resp.ok(200)["data"], json!([]));

    // A's state is exactly as it was.
    assert_eq!(
        a.get(&format!("/v1/agents/{agent}")).await.body,
        a_agent_before
    );
    assert_eq!(a.items(&session).await, a_items_before);
    let run = a.get(&format!("/v1/runs/{running}")).await;
    assert_eq!(run.ok(200)["status"], "running");
    let memory = a.get("/v1/agents/secret-agent/memory").await;
    assert_eq!(memory.ok(200)["blocks"][0]["value"], "hidden");
    assert_eq!(app.fake.request_count(), 2, "B started no run");
    let cancelled = a
        .post(&format!("/v1/runs/{running}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.ok(200)["status"], "cancelled");
}

#[tokio::test]
async fn each_tenant_lists_only_its_own() {
    let app = TestApp::start().await;
    let (a, b) = (app.admin(), app.tenant_b());
    let sa = a.agent_session("alpha").await;
    let sb = b.agent_session("beta").await;
    app.fake
        .push_all([Reply::text("for a"), Reply::text("for b")]);
    a.say(&sa, "x").await;
    b.say(&sb, "y").await;
    for (client, agent, session) in [(&a, "alpha", &sa), (&b, "beta", &sb)] {
        let agents = client.get("/v1/agents").await;
        let agents = agents.ok(200)["data"].as_array().unwrap().clone();
        assert_eq!(agents.len(), 1);
        assert_eq!(agents[0]["name"], agent);
        let sessions = client.get("/v1/sessions").await;
        let sessions = sessions.ok(200)["data"].as_array().unwrap().clone();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0]["id"], session.as_str());
        let ledger = client.get("/v1/ledger").await;
        assert_eq!(ledger.ok(200)["data"].as_array().unwrap().len(), 1);
    }
    a.get(&format!("/v1/sessions/{sb}"))
        .await
        .err(404, "not_found");
    a.get("/v1/agents/beta").await.err(404, "not_found");
}
