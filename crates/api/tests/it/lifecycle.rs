//! What users do to whole sessions and agents: delete a session (history,
//! runs, workspace, search entries; audited; never mid-run), move a
//! session to its agent's current version, list versions and roll back,
//! and change an agent's lists without replacing them, seeing what changed;
//! and an audit export, which is itself on the record.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Client, Reply, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

async fn index_documents(admin: &Client) -> u64 {
    // A read through the search path waits for the index to catch up.
    admin.get("/v1/index").await.ok(200)["documents"]
        .as_u64()
        .unwrap()
}

async fn settled_index_documents(admin: &Client, want: impl Fn(u64) -> bool) -> u64 {
    common::eventually(|| async {
        let n = index_documents(admin).await;
        want(n).then_some(n)
    })
    .await
}

fn audit_actions(audit: &Value) -> Vec<(String, String)> {
    audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["resource"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn deleting_a_session_removes_everything_it_holds() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let before = index_documents(&admin).await;
    let session = admin.agent_session("helper").await;
    app.fake.push(Reply::text("the zebra answer"));
    let reply = admin.say(&session, "tell me about zebras").await;
    let run = reply["run"]["id"].as_str().unwrap().to_owned();
    let indexed = settled_index_documents(&admin, |n| n == before + 2).await;
    if app.state.sandbox.is_some() {
        let put = admin
            .request(
                Method::PUT,
                &format!("/v1/sessions/{session}/files/notes.txt"),
            )
            .body("zebra notes");
        assert_eq!(admin.send(put).await.status, 200);
    }

    // Another tenant cannot, and cannot tell it exists.
    app.tenant_b()
        .delete(&format!("/v1/sessions/{session}"))
        .await
        .err(404, "not_found");

    let gone = admin.delete(&format!("/v1/sessions/{session}")).await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    admin
        .get(&format!("/v1/sessions/{session}"))
        .await
        .err(404, "not_found");
    admin
        .get(&format!("/v1/sessions/{session}/items"))
        .await
        .err(404, "not_found");
    admin
        .get(&format!("/v1/runs/{run}"))
        .await
        .err(404, "not_found");
    admin
        .delete(&format!("/v1/sessions/{session}"))
        .await
        .err(404, "not_found");
    if let Some(sandbox) = &app.state.sandbox {
        let dir = sandbox
            .config()
            .root
            .join(roster_core::TenantId::default_tenant().as_str())
            .join(&session);
        assert!(!dir.exists(), "workspace {} still there", dir.display());
    }
    settled_index_documents(&admin, |n| n == indexed - 2).await;
    let listed = admin.get("/v1/sessions").await.ok(200).clone();
    assert!(!listed.to_string().contains(&session));
    let trail = audit_actions(admin.get("/v1/audit?action=session").await.ok(200));
    assert_eq!(
        trail,
        vec![("session.delete".to_owned(), format!("session:{session}"))]
    );
}

#[tokio::test]
async fn a_session_with_an_unfinished_run_is_not_deleted() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({"name": "sleeper", "model": "openai/test-model", "tools": ["sleep"]}))
        .await;
    let session = admin.session("sleeper").await;
    app.fake
        .push(Reply::tool_call("c1", "sleep", r#"{"ms": 3000}"#));
    app.fake.push(Reply::text("rested"));
    let run = admin
        .message(&session, json!({"content": "rest", "background": true}))
        .await
        .ok(202)["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin
        .delete(&format!("/v1/sessions/{session}"))
        .await
        .err(409, "session_busy");
    // Still whole: the run finishes and the history is there.
    assert_eq!(admin.wait_run(&run).await["status"], "completed");
    assert_eq!(admin.items(&session).await.len(), 4);
    assert_eq!(
        admin
            .delete(&format!("/v1/sessions/{session}"))
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn upgrading_moves_later_runs_to_the_current_version() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({"name": "helper", "model": "openai/model-one"}))
        .await;
    let session = admin.session("helper").await;
    let updated = admin
        .patch("/v1/agents/helper", json!({"model": "openai/model-two"}))
        .await
        .ok(200)
        .clone();
    assert_eq!(updated["version"], 2);
    app.fake.push(Reply::text("one"));
    admin.say(&session, "first").await;
    let upgraded = admin
        .post(&format!("/v1/sessions/{session}/upgrade"), json!({}))
        .await
        .ok(200)
        .clone();
    assert_eq!(upgraded["from_version"], 1);
    assert_eq!(upgraded["session"]["agent_version"], 2);
    app.fake.push(Reply::text("two"));
    admin.say(&session, "second").await;
    assert_eq!(app.requested_models(), vec!["model-one", "model-two"]);
    let trail = audit_actions(admin.get("/v1/audit?action=session").await.ok(200));
    assert_eq!(trail[0].0, "session.upgrade");
    app.tenant_b()
        .post(&format!("/v1/sessions/{session}/upgrade"), json!({}))
        .await
        .err(404, "not_found");
}

#[tokio::test]
async fn versions_are_listed_and_a_rollback_is_a_new_version() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({"name": "helper", "model": "openai/model-one", "instructions": "v1"}))
        .await;
    admin
        .patch(
            "/v1/agents/helper",
            json!({"instructions": "v2", "model": "openai/model-two"}),
        )
        .await
        .ok(200);
    let versions = admin
        .get("/v1/agents/helper/versions")
        .await
        .ok(200)
        .clone();
    assert_eq!(versions["current"], 2);
    let listed: Vec<(i64, &str)> = versions["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["config"]["instructions"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, vec![(2, "v2"), (1, "v1")]);

    let rolled = admin
        .post("/v1/agents/helper/rollback", json!({"version": 1}))
        .await
        .ok(200)
        .clone();
    assert_eq!(rolled["version"], 3);
    assert_eq!(rolled["config"]["instructions"], "v1");
    let fields: Vec<&str> = rolled["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["instructions", "model"]);
    admin
        .post("/v1/agents/helper/rollback", json!({"version": 9}))
        .await
        .err(400, "invalid_request");
    admin
        .post("/v1/agents/helper/rollback", json!({"version": "one"}))
        .await
        .err(400, "invalid_request");
    let trail = audit_actions(admin.get("/v1/audit?action=agent").await.ok(200));
    assert!(trail.contains(&("agent.rollback".to_owned(), "agent:helper".to_owned())));
    app.tenant_b()
        .get("/v1/agents/helper/versions")
        .await
        .err(404, "not_found");
}

#[tokio::test]
async fn lists_are_changed_in_place_and_the_answer_says_what_changed() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({"name": "helper", "model": "openai/m", "tools": ["memory_append"]}))
        .await;
    let added = admin
        .patch(
            "/v1/agents/helper",
            json!({"add_tools": ["memory_replace", "memory_append"]}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(
        added["config"]["tools"],
        json!(["memory_append", "memory_replace"])
    );
    assert_eq!(
        added["changes"],
        json!([{"field": "tools", "added": ["memory_replace"]}])
    );
    let removed = admin
        .patch(
            "/v1/agents/helper",
            json!({"remove_tools": ["memory_append"]}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(removed["config"]["tools"], json!(["memory_replace"]));
    assert_eq!(removed["version"], 3);
    // Nothing to change: no new version.
    let same = admin
        .patch(
            "/v1/agents/helper",
            json!({"add_tools": ["memory_replace"]}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(
        (same["version"].as_i64(), same["changes"].clone()),
        (Some(3), json!([]))
    );
    admin
        .patch("/v1/agents/helper", json!({"remove_tools": ["run_away"]}))
        .await
        .err(400, "invalid_request");
    admin
        .patch(
            "/v1/agents/helper",
            json!({"tools": ["memory_append"], "add_tools": ["memory_search"]}),
        )
        .await
        .err(400, "invalid_request");
    admin
        .patch(
            "/v1/agents/helper",
            json!({"add_knowledge": ["no-such-source"]}),
        )
        .await
        .err(400, "invalid_request");
    assert_eq!(
        admin.get("/v1/agents/helper").await.ok(200)["version"],
        3,
        "refused changes store nothing"
    );

    // Concurrent additions are all kept.
    let names = [
        "memory_search",
        "memory_write",
        "conversation_search",
        "memory_append",
    ];
    let patches = names.iter().map(|tool| {
        let admin = admin.clone();
        async move {
            admin
                .patch("/v1/agents/helper", json!({"add_tools": [tool]}))
                .await
                .ok(200);
        }
    });
    futures::future::join_all(patches).await;
    let tools = admin.get("/v1/agents/helper").await.ok(200)["config"]["tools"].clone();
    for tool in names.iter().chain(["memory_replace"].iter()) {
        assert!(
            tools.as_array().unwrap().contains(&json!(tool)),
            "{tool} lost: {tools}"
        );
    }
}

#[tokio::test]
async fn saving_an_agent_warns_of_an_unconfigured_provider() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let made = admin
        .post(
            "/v1/agents",
            json!({"name": "ghostly", "model": "ghost/x", "fallbacks": ["openai/m"]}),
        )
        .await
        .ok(201)
        .clone();
    let warnings = made["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{made}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.contains("`ghost`") && warning.contains("[providers.ghost]"),
        "{warning}"
    );
    let fine = admin
        .post("/v1/agents", json!({"name": "fine", "model": "openai/m"}))
        .await
        .ok(201)
        .clone();
    assert_eq!(fine["warnings"], json!([]));
    let switched = admin
        .patch("/v1/agents/fine", json!({"model": "anthropic/claude"}))
        .await
        .ok(200)
        .clone();
    assert_eq!(switched["warnings"], json!([]));
}

#[tokio::test]
async fn an_audit_export_streams_the_log_and_is_itself_on_the_record() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("one", "openai/m").await;
    admin.agent("two", "openai/m").await;
    let export = admin.get("/v1/audit/export?action=agent").await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert_eq!(export.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = export
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let resources: Vec<&str> = lines
        .iter()
        .map(|e| e["resource"].as_str().unwrap())
        .collect();
    assert_eq!(resources, vec!["agent:one", "agent:two"]);
    assert!(export.text.ends_with('\n'));

    let recorded = admin
        .get("/v1/audit?action=audit.export")
        .await
        .ok(200)
        .clone();
    let event = &recorded["data"][0];
    assert_eq!(event["detail"]["action"], "agent");
    assert!(event["actor"].as_str().unwrap().starts_with("key:key_"));
    // Another tenant's export holds nothing of this one's.
    let theirs = app.tenant_b().get("/v1/audit/export").await;
    assert_eq!(theirs.status, 200);
    assert!(!theirs.text.contains("agent:one"), "{}", theirs.text);
    admin
        .get("/v1/audit/export?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z")
        .await
        .err(400, "invalid_request");
}
