//! Cedar policies through the API: validated on write, enforced before an
//! agent is invoked and before each tool call, every decision audited.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Reply, TestApp};
use serde_json::json;

#[tokio::test]
async fn bad_policies_are_refused_with_the_validators_message_and_nothing_changes() {
    let app = TestApp::start().await;
    let admin = app.admin();
    for (text, expected) in [
        (
            "permit(principal, action, resource",
            "unexpected end of input",
        ),
        (
            r#"permit(principal == Roster::Robot::"r2", action, resource);"#,
            "unrecognized entity type `Roster::Robot`",
        ),
        (
            r#"permit(principal, action == Roster::Action::"launch", resource);"#,
            "unrecognized action",
        ),
        (
            r#"permit(principal, action == Roster::Action::"invoke_agent", resource) when { resource.owner == "x" };"#,
            "attribute `owner`",
        ),
        ("", "holds no Cedar policy"),
    ] {
        let resp = admin.put("/v1/policies/p", json!({ "text": text })).await;
        resp.err(400, "invalid_policy");
        let message = resp.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{text}: {message}");
    }
    admin
        .put(
            "/v1/policies/bad name!",
            json!({"text": "permit(principal, action, resource);"}),
        )
        .await
        .err(400, "invalid_request");
    let list = admin.get("/v1/policies").await.ok(200).clone();
    assert_eq!(list["revision"], 0);
    assert_eq!(list["data"], json!([]));
    assert_eq!(list["governed"], json!([]));

    let text = r#"permit(principal, action == Roster::Action::"invoke_agent", resource);"#;
    admin
        .put("/v1/policies/invoke-all", json!({ "text": text }))
        .await
        .ok(201);
    admin
        .put("/v1/policies/invoke-all", json!({ "text": text }))
        .await
        .ok(200);
    let list = admin.get("/v1/policies").await.ok(200).clone();
    assert_eq!(list["revision"], 2);
    assert_eq!(list["governed"], json!(["invoke_agent"]));
    assert_eq!(
        admin.get("/v1/policies/invoke-all").await.ok(200)["text"],
        text
    );
    // A document that would clash with the stored ones is refused whole.
    admin
        .put(
            "/v1/policies/worse",
            json!({"text": "forbid(principal, action, resource) when { context.x };"}),
        )
        .await
        .err(400, "invalid_policy");
    let schema = admin.get("/v1/policies/schema").await.ok(200).clone();
    assert!(schema["schema"]
        .as_str()
        .unwrap()
        .contains("action call_tool"));
    admin.delete("/v1/policies/invoke-all").await.ok(204);
    admin
        .delete("/v1/policies/invoke-all")
        .await
        .err(404, "not_found");
    // Tenant B sees none of it.
    assert_eq!(
        app.tenant_b().get("/v1/policies").await.ok(200)["revision"],
        0
    );
    let audit = admin.get("/v1/audit?action=policy").await.ok(200).clone();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["policy.put", "policy.put", "policy.delete"]);
}

#[tokio::test]
async fn invoking_an_agent_no_policy_permits_is_refused_before_anything_runs() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let open = admin.agent_session("open").await;
    let closed = admin.agent_session("closed").await;
    admin
        .put(
            "/v1/policies/who-may-invoke",
            json!({"text": r#"permit(principal, action == Roster::Action::"invoke_agent", resource == Roster::Agent::"open");"#}),
        )
        .await
        .ok(201);
    let refused = admin.message(&closed, json!({"content": "hi"})).await;
    refused.err(403, "denied_by_policy");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no policy permits key"),
        "{}",
        refused.text
    );
    assert_eq!(admin.items(&closed).await, Vec::<serde_json::Value>::new());
    assert_eq!(app.fake.request_count(), 0);
    app.fake.push(Reply::text("hello"));
    admin.say(&open, "hi").await;
    let audit = admin
        .get("/v1/audit?action=policy.invoke_agent")
        .await
        .ok(200)
        .clone();
    let decisions: Vec<(&str, &str)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["resource"].as_str().unwrap(),
                e["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        vec![("agent:closed", "deny"), ("agent:open", "allow")]
    );
}

#[tokio::test]
async fn a_tool_call_is_decided_on_its_arguments_before_it_runs() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({"name": "worker", "model": "openai/test-model", "tools": ["sleep"]}))
        .await;
    let session = admin.session("worker").await;
    admin
        .put(
            "/v1/policies/short-sleeps",
            json!({"text": r#"permit(principal == Roster::Agent::"worker", action == Roster::Action::"call_tool", resource == Roster::Tool::"sleep") when { context.ms < 100 };"#}),
        )
        .await
        .ok(201);
    app.fake
        .push(Reply::tool_call("c1", "sleep", r#"{"ms": 60000}"#));
    app.fake.push(Reply::text("could not sleep"));
    let started = std::time::Instant::now();
    let result = admin.say(&session, "sleep long").await;
    assert_eq!(result["run"]["status"], "completed");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let denied = result["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "tool_result")
        .unwrap()
        .clone();
    assert_eq!(denied["is_error"], true);
    let output = denied["output"].as_str().unwrap();
    assert!(
        output.starts_with(
            "denied by policy: no policy permits agent `worker` to call_tool tool `sleep`"
        ),
        "{output}"
    );
    // The model was told.
    let told = app.fake.requests()[1].body.to_string();
    assert!(told.contains("denied by policy"), "{told}");

    app.fake
        .push(Reply::tool_call("c2", "sleep", r#"{"ms": 5}"#));
    app.fake.push(Reply::text("slept"));
    let result = admin.say(&session, "sleep briefly").await;
    let slept = result["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "tool_result")
        .unwrap()
        .clone();
    assert_eq!(slept["is_error"], false, "{slept}");

    let audit = admin
        .get("/v1/audit?action=policy.call_tool")
        .await
        .ok(200)
        .clone();
    let events = audit["data"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["decision"], "deny");
    assert_eq!(events[1]["decision"], "allow");
    assert_eq!(events[0]["detail"]["arguments"]["ms"], 60000);
    assert_eq!(events[1]["detail"]["policies"], json!(["short-sleeps"]));
    let actor = events[0]["actor"].as_str().unwrap();
    assert!(
        actor.starts_with("key:key_") && actor.ends_with(" > agent:worker > tool:sleep"),
        "{actor}"
    );
    // The run records who started it; each step its actor chain.
    let run = admin
        .get(&format!(
            "/v1/runs/{}",
            result["run"]["id"].as_str().unwrap()
        ))
        .await
        .ok(200)
        .clone();
    assert!(run["actor"].as_str().unwrap().starts_with("key:key_"));
    let chains: Vec<Vec<String>> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["input"]["actors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().split(':').next().unwrap().to_owned())
                .collect()
        })
        .collect();
    assert_eq!(chains[0], vec!["key", "agent"]);
    assert_eq!(chains[1], vec!["key", "agent", "tool"]);
}

#[tokio::test]
async fn routing_policy_keeps_a_tenant_on_one_provider_and_the_ledger_says_why() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .put(
            "/v1/policies/anthropic-only",
            json!({"text": r#"permit(principal, action == Roster::Action::"invoke_agent", resource);
permit(principal, action == Roster::Action::"use_route", resource) when { resource.vendor == "anthropic" };"#}),
        )
        .await
        .ok(201);
    // The primary is refused before any byte is sent; the allowed fallback answers.
    admin
        .create_agent(json!({"name": "eu", "model": "openai/test-model", "fallbacks": ["anthropic/claude-test"]}))
        .await;
    let session = admin.session("eu").await;
    app.fake.push(Reply::text("from anthropic"));
    let result = admin.say(&session, "hi").await;
    assert_eq!(result["run"]["status"], "completed", "{result}");
    assert_eq!(app.requested_models(), vec!["claude-test"]);
    let run = result["run"]["id"].as_str().unwrap();
    let ledger = admin
        .get(&format!("/v1/ledger?run_id={run}"))
        .await
        .ok(200)
        .clone();
    let rows = ledger["data"].as_array().unwrap();
    let denied = rows.iter().find(|r| r["provider"] == "openai").unwrap();
    assert_eq!(denied["outcome"], "route_denied");
    assert_eq!(denied["tokens_in"], 0);
    assert_eq!(denied["route"]["decision"], "deny");
    let served = rows.iter().find(|r| r["provider"] == "anthropic").unwrap();
    assert_eq!(served["outcome"], "ok");
    assert_eq!(served["route"]["decision"], "allow");
    assert_eq!(served["route"]["policies"], json!(["anthropic-only[2]"]));
    assert_eq!(served["region"], "unknown");

    // No allowed target: the run fails with a clear error and nothing is sent.
    admin
        .create_agent(json!({"name": "us", "model": "openai/test-model"}))
        .await;
    let session = admin.session("us").await;
    let result = admin.say(&session, "hi").await;
    assert_eq!(result["run"]["status"], "failed");
    assert_eq!(result["run"]["error"]["code"], "route_denied");
    assert!(result["run"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("nothing was sent"));
    assert_eq!(app.fake.request_count(), 1);
    let audit = admin
        .get("/v1/audit?action=policy.use_route")
        .await
        .ok(200)
        .clone();
    assert_eq!(audit["data"].as_array().unwrap().len(), 3);
    // Another tenant is not governed by these policies.
    let b = app.tenant_b();
    let b_session = b.agent_session("other").await;
    app.fake.push(Reply::text("open"));
    assert_eq!(b.say(&b_session, "hi").await["run"]["status"], "completed");
}

async fn upload(client: &common::Client, source: &str, path: &str, text: &str) {
    let builder = client
        .request(
            reqwest::Method::PUT,
            &format!("/v1/knowledge/sources/{source}/documents/{path}"),
        )
        .header("content-type", "text/markdown")
        .body(text.to_owned());
    let resp = client.send(builder).await;
    assert!(resp.status < 300, "{}", resp.text);
}

#[tokio::test]
async fn sources_and_memory_namespaces_are_read_and_written_only_as_permitted() {
    let app = TestApp::start().await;
    let admin = app.admin();
    for source in ["handbook", "payroll"] {
        admin
            .post("/v1/knowledge/sources", json!({"name": source}))
            .await
            .ok(201);
    }
    upload(
        &admin,
        "handbook",
        "leave.md",
        "# Leave\n\nStaff get 25 days of annual leave.\n",
    )
    .await;
    upload(
        &admin,
        "payroll",
        "pay.md",
        "# Pay\n\nThe annual leave payout is 9999 euros.\n",
    )
    .await;
    admin
        .put(
            "/v1/policies/reading",
            json!({"text": r#"permit(principal, action == Roster::Action::"invoke_agent", resource);
permit(principal, action == Roster::Action::"call_tool", resource);
permit(principal == Roster::Agent::"reader", action == Roster::Action::"read_source", resource == Roster::Source::"handbook");
permit(principal, action in [Roster::Action::"read_memory", Roster::Action::"write_memory"], resource);
forbid(principal, action == Roster::Action::"write_memory", resource) when { resource.name like "shared/*" };"#}),
        )
        .await
        .ok(201);
    admin
        .create_agent(json!({
            "name": "reader", "model": "openai/test-model",
            "knowledge": ["handbook", "payroll"],
            "tools": ["knowledge_search", "memory_write"],
            "memory": {"namespace": "agents/{agent}", "search": ["agents/{agent}", "shared/team"]},
        }))
        .await;
    let session = admin.session("reader").await;
    app.fake.push(
        Reply::tool_call(
            "k1",
            "knowledge_search",
            r#"{"query": "annual leave", "source": "payroll"}"#,
        )
        .and_tool_call("k2", "knowledge_search", r#"{"query": "annual leave"}"#)
        .and_tool_call(
            "w1",
            "memory_write",
            r#"{"content": "team fact", "namespace": "shared/team"}"#,
        )
        .and_tool_call("w2", "memory_write", r#"{"content": "my fact"}"#),
    );
    app.fake.push(Reply::text("done"));
    let result = admin.say(&session, "How much annual leave do I get?").await;
    assert_eq!(result["run"]["status"], "completed", "{result}");
    // Recall put only the permitted source into the context.
    let system = app.fake.requests()[0].body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.contains("25 days"), "{system}");
    assert!(!system.contains("9999"), "{system}");
    let output = |id: &str| {
        result["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "tool_result" && i["call_id"] == id)
            .unwrap()
            .clone()
    };
    let denied = output("k1");
    assert_eq!(denied["is_error"], true);
    assert!(denied["output"]
        .as_str()
        .unwrap()
        .contains("reading knowledge source `payroll` is denied by policy"));
    let searched = output("k2")["output"].as_str().unwrap().to_owned();
    assert!(
        searched.contains("25 days") && !searched.contains("9999"),
        "{searched}"
    );
    let shared = output("w1");
    assert_eq!(shared["is_error"], true);
    assert!(
        shared["output"]
            .as_str()
            .unwrap()
            .contains("forbidden by policy `reading[5]`"),
        "{shared}"
    );
    assert_eq!(output("w2")["is_error"], false, "{}", output("w2"));
    let memories = admin
        .get("/v1/memories?namespace=shared/team")
        .await
        .ok(200)
        .clone();
    assert_eq!(memories["data"], json!([]));
    let audit = admin
        .get("/v1/audit?action=policy.read_source")
        .await
        .ok(200)
        .clone();
    assert!(audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["resource"] == "source:payroll" && e["decision"] == "deny"));
}

#[tokio::test]
async fn a_sql_query_reads_its_source_only_if_read_source_permits() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shop.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE orders (id INTEGER); INSERT INTO orders VALUES (1);")
        .unwrap();
    admin
        .post(
            "/v1/sources/sql",
            json!({"name": "shop", "url": format!("sqlite://{}", db.display()), "allow": ["orders"]}),
        )
        .await
        .ok(201);
    admin
        .put(
            "/v1/policies/no-shop",
            json!({"text": r#"forbid(principal, action == Roster::Action::"read_source", resource) when { resource.kind == "sql" && resource.name == "shop" };
permit(principal, action == Roster::Action::"read_source", resource);"#}),
        )
        .await
        .ok(201);
    admin
        .create_agent(
            json!({"name": "analyst", "model": "openai/test-model", "tools": ["sql:shop"]}),
        )
        .await;
    let session = admin.session("analyst").await;
    app.fake.push(Reply::tool_call(
        "q1",
        "sql_query",
        r#"{"source": "shop", "query": "SELECT count(*) FROM orders"}"#,
    ));
    app.fake.push(Reply::text("cannot"));
    let result = admin.say(&session, "how many orders?").await;
    let output = result["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "tool_result")
        .unwrap()
        .clone();
    assert_eq!(output["is_error"], true);
    assert!(
        output["output"].as_str().unwrap().contains(
            "reading source `shop` is denied by policy: forbidden by policy `no-shop[1]`"
        ),
        "{output}"
    );
}
