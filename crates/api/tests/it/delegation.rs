//! Delegation over HTTP: agents as tools, the run tree, policies for agent
//! principals, and `if_busy: rollback`.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{eventually, Reply, TestApp};
use serde_json::json;

async fn team(admin: &common::Client, coordinator_tools: serde_json::Value) -> String {
    admin
        .create_agent(json!({
            "name": "researcher", "model": "openai/test-model",
            "instructions": "You research.", "description": "Finds facts in papers.",
        }))
        .await;
    admin
        .create_agent(json!({
            "name": "coordinator", "model": "openai/test-model",
            "instructions": "You coordinate.", "tools": coordinator_tools,
        }))
        .await;
    admin.session("coordinator").await
}

#[tokio::test]
async fn a_delegation_shows_in_the_run_its_child_and_the_tree() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = team(&admin, json!(["agent:researcher"])).await;
    app.fake.push(Reply::tool_call(
        "c1",
        "ask_researcher",
        r#"{"input":"find X"}"#,
    ));
    app.fake.push(Reply::text("X is 42"));
    app.fake.push(Reply::text("The answer is 42"));
    let done = admin.say(&session, "what is X?").await;
    assert_eq!(done["run"]["output"], "The answer is 42", "{done}");
    let root = done["run"]["id"].as_str().unwrap().to_owned();
    // The coordinator's model was offered the researcher with its description.
    let first = &app.fake.requests()[0].body;
    let tools = first["tools"].to_string();
    assert!(
        tools.contains("ask_researcher") && tools.contains("Finds facts in papers."),
        "{tools}"
    );

    let detail = admin.get(&format!("/v1/runs/{root}")).await.ok(200).clone();
    let children = detail["children"].as_array().unwrap();
    assert_eq!(children.len(), 1, "{detail}");
    assert_eq!(children[0]["agent"], "researcher");
    assert_eq!(children[0]["mode"], "call");
    assert_eq!(children[0]["status"], "completed");
    let child = children[0]["id"].as_str().unwrap();
    let child_detail = admin
        .get(&format!("/v1/runs/{child}"))
        .await
        .ok(200)
        .clone();
    assert_eq!(child_detail["parent_run_id"], root.as_str());
    assert_eq!(child_detail["depth"], 1);
    let actor = child_detail["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("key:") && actor.ends_with(" > agent:coordinator"),
        "{actor}"
    );
    // The child's tool-free run still journals its actor chain in the tree.
    let tree = admin
        .get(&format!("/v1/runs/{root}/tree"))
        .await
        .ok(200)
        .clone();
    assert_eq!(tree["runs"], 2, "{tree}");
    assert_eq!(tree["root"]["id"], root.as_str());
    assert_eq!(tree["root"]["agent"], "coordinator");
    assert_eq!(tree["root"]["mode"], "root");
    assert_eq!(tree["root"]["usage"]["model_calls"], 2);
    let node = &tree["root"]["children"][0];
    assert_eq!(node["agent"], "researcher");
    assert_eq!(node["usage"]["model_calls"], 1);
    assert_eq!(tree["total"]["model_calls"], 3);
    assert_eq!(tree["truncated"], false);
    // The child's tree is its own subtree.
    let sub = admin
        .get(&format!("/v1/runs/{child}/tree"))
        .await
        .ok(200)
        .clone();
    assert_eq!(sub["runs"], 1);
    // The delegate session is listed under the researcher, linked to ours.
    let child_session = child_detail["session_id"].as_str().unwrap();
    let s = admin
        .get(&format!("/v1/sessions/{child_session}"))
        .await
        .ok(200)
        .clone();
    assert_eq!(s["parent_session_id"], session.as_str(), "{s}");
    admin
        .get("/v1/runs/run_00000000-0000-0000-0000-000000000000/tree")
        .await
        .err(404, "not_found");
}

#[tokio::test]
async fn an_agent_entry_must_name_an_agent_of_the_tenant() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let resp = admin
        .post(
            "/v1/agents",
            json!({"name": "lonely", "model": "openai/test-model", "tools": ["agent:nobody"]}),
        )
        .await;
    resp.err(400, "invalid_request");
    assert!(resp.text.contains("nobody"), "{}", resp.text);
    // Another tenant's agent is nobody here either.
    app.tenant_b()
        .create_agent(json!({"name": "theirs", "model": "openai/test-model"}))
        .await;
    admin
        .post(
            "/v1/agents",
            json!({"name": "lonely", "model": "openai/test-model", "tools": ["agent:theirs"]}),
        )
        .await
        .err(400, "invalid_request");
}

#[tokio::test]
async fn a_policy_decides_whether_one_agent_may_invoke_another() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = team(&admin, json!(["agent:researcher"])).await;
    admin
        .put(
            "/v1/policies/no-research",
            json!({"text": r#"permit(principal, action, resource);
forbid(principal == Roster::Agent::"coordinator", action == Roster::Action::"invoke_agent", resource == Roster::Agent::"researcher");"#}),
        )
        .await
        .ok(201);
    app.fake.push(Reply::tool_call(
        "c1",
        "ask_researcher",
        r#"{"input":"find X"}"#,
    ));
    app.fake.push(Reply::text("could not ask"));
    let done = admin.say(&session, "what is X?").await;
    assert_eq!(done["run"]["output"], "could not ask");
    let root = done["run"]["id"].as_str().unwrap();
    let detail = admin.get(&format!("/v1/runs/{root}")).await.ok(200).clone();
    assert!(detail["children"].as_array().unwrap().is_empty());
    // The model was told why; the decision is audited with the chain.
    let told = app.fake.requests()[1].body["messages"].to_string();
    assert!(told.contains("not allowed to ask"), "{told}");
    let audit = admin.get("/v1/audit?limit=50").await.ok(200).clone();
    let denied = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "policy.invoke_agent" && e["decision"] == "deny")
        .cloned()
        .unwrap_or_default();
    assert_eq!(denied["resource"], "agent:researcher", "{audit}");
    assert!(
        denied["actor"]
            .as_str()
            .unwrap_or_default()
            .ends_with("> agent:coordinator"),
        "{denied}"
    );
}

#[tokio::test]
async fn rollback_drops_the_busy_run_from_what_the_model_sees() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let session = admin.agent_session("bot").await;
    app.fake.push(Reply::text("never").hang());
    let busy = admin
        .message(
            &session,
            json!({"content": "the mistaken question", "background": true}),
        )
        .await;
    let busy_run = busy.ok(202)["run"]["id"].as_str().unwrap().to_owned();
    eventually(|| async { (app.fake.request_count() == 1).then_some(()) }).await;

    app.fake.push(Reply::text("fresh answer"));
    let done = admin
        .message(
            &session,
            json!({"content": "the real question", "if_busy": "rollback"}),
        )
        .await
        .ok(200)
        .clone();
    assert_eq!(done["run"]["output"], "fresh answer");
    let stopped = admin.wait_run(&busy_run).await;
    assert_eq!(stopped["status"], "cancelled");
    assert_eq!(stopped["rolled_back"], true);
    assert_eq!(stopped["interrupted_by"], done["run"]["id"]);
    let sent = app.fake.last_request().unwrap().body["messages"].to_string();
    assert!(!sent.contains("mistaken"), "{sent}");
    assert!(sent.contains("the real question"));
    // The session's items keep it, for the record.
    let items = admin.items(&session).await;
    assert!(items.iter().any(|i| i["text"] == "the mistaken question"));
}

#[tokio::test]
async fn a_child_awaiting_approval_leaves_its_parent_visibly_waiting() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({"name": "payer", "model": "openai/test-model", "tools": ["sleep"]}))
        .await;
    admin
        .create_agent(
            json!({"name": "coordinator", "model": "openai/test-model", "tools": ["agent:payer"]}),
        )
        .await;
    admin
        .put(
            "/v1/policies/sleeping",
            json!({"text": r#"
permit(principal, action == Roster::Action::"invoke_agent", resource);
permit(principal == Roster::Agent::"coordinator", action == Roster::Action::"call_tool", resource);
@approval("sleeps need a manager")
permit(principal == Roster::Agent::"payer", action == Roster::Action::"call_tool", resource == Roster::Tool::"sleep");
"#}),
        )
        .await
        .ok(201);
    let session = admin.session("coordinator").await;
    app.fake.push(Reply::tool_call(
        "c1",
        "ask_payer",
        r#"{"input":"sleep 150 ms"}"#,
    ));
    app.fake
        .push(Reply::tool_call("s1", "sleep", r#"{"ms": 150}"#));
    app.fake.push(Reply::text("slept"));
    app.fake.push(Reply::text("the payer slept"));
    let started = admin
        .message(
            &session,
            json!({"content": "get some sleep", "background": true}),
        )
        .await;
    let root = started.ok(202)["run"]["id"].as_str().unwrap().to_owned();
    let approval = eventually(|| async {
        let inbox = admin.get("/v1/approvals").await.ok(200)["data"].clone();
        inbox.as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert_eq!(approval["agent"], "payer");
    // The parent runs on, waiting on its child; both say so.
    let detail = admin.get(&format!("/v1/runs/{root}")).await.ok(200).clone();
    assert_eq!(detail["status"], "running");
    assert_eq!(
        detail["children"][0]["status"], "awaiting_approval",
        "{detail}"
    );
    let tree = admin
        .get(&format!("/v1/runs/{root}/tree"))
        .await
        .ok(200)
        .clone();
    assert_eq!(tree["root"]["children"][0]["status"], "awaiting_approval");
    // The key whose message started the tree cannot approve its own request.
    let id = approval["id"].as_str().unwrap();
    admin
        .post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await
        .err(403, "self_approval_forbidden");
    app.member()
        .post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await
        .ok(200);
    let done = admin.wait_run(&root).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["output"], "the payer slept");
}
