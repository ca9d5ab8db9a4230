//! End to end, as a new user would: with the real binary and the CLI, a
//! Cedar policy lets an agent query only one table of a database and sends
//! refunds above a threshold for approval; the run pauses, the server is
//! killed and restarted, the refund is approved from the CLI, the run ends
//! where it stopped, and the audit export shows the whole chain.

use crate::common;

use axum::routing::post;
use common::{cli, Server};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::json;
use std::sync::{Arc, Mutex};

const SPEC: &str = r#"
openapi: 3.0.3
info: {title: Payments, version: "1"}
paths:
  /refunds:
    post:
      operationId: createRefund
      description: Refund an order.
      parameters:
        - {name: order, in: query, required: true, schema: {type: integer}}
        - {name: amount, in: query, required: true, schema: {type: integer}}
      responses: {"200": {description: ok}}
"#;

const POLICY: &str = r#"
// Anyone with a key may talk to the clerk.
permit(principal, action == Roster::Action::"invoke_agent", resource);

// The clerk reads the orders table, and nothing else of the database.
permit(principal == Roster::Agent::"clerk", action == Roster::Action::"call_tool", resource == Roster::Tool::"sql_query")
  when { context.table == "orders" };

// Small refunds go through; larger ones wait for a manager.
permit(principal == Roster::Agent::"clerk", action == Roster::Action::"call_tool", resource)
  when { resource.server == "payments" && context.amount < 100 };
@approval("refunds of 100 or more need a manager")
permit(principal == Roster::Agent::"clerk", action == Roster::Action::"call_tool", resource)
  when { resource.server == "payments" && context.amount >= 100 };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_waits_for_approval_across_a_restart_and_the_audit_shows_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("shop.db");
    {
        let conn = rusqlite::Connection::open(&db).expect("sqlite");
        conn.execute_batch(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER);
             CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT);
             INSERT INTO orders VALUES (7, 250);
             INSERT INTO customers VALUES (1, 'ann@example.com');",
        )
        .expect("tables");
    }
    let refunds: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = refunds.clone();
    let service = axum::Router::new().route(
        "/refunds",
        post(move |uri: axum::http::Uri| {
            let seen = seen.clone();
            async move {
                seen.lock()
                    .expect("lock")
                    .push(uri.query().unwrap_or_default().to_owned());
                axum::Json(json!({"refunded": true}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, service).await });
    let spec = dir.path().join("payments.yaml");
    std::fs::write(&spec, SPEC).expect("spec");
    let policy = dir.path().join("clerk.cedar");
    std::fs::write(&policy, POLICY).expect("policy");

    let model = FakeModelServer::start().await;
    let data = dir.path().join("data");
    // The operator opens the test's loopback services and its directory of
    // SQLite files (the data directory stays closed inside it).
    let sqlite_dir = dir.path().display().to_string();
    let walls = [
        ("ROSTER_EGRESS_ALLOW", "127.0.0.1"),
        ("ROSTER_SQLITE_DIRS", sqlite_dir.as_str()),
    ];
    let mut server = Server::start(&data, &model.openai_base_url(), &walls).await;
    let run_cli = |server: &Server, args: &[&str]| {
        let (ok, out, err) = cli(server, args);
        assert!(ok, "roster {}: {out}{err}", args.join(" "));
        out
    };
    run_cli(
        &server,
        &[
            "source",
            "add-sql",
            "shop",
            "--url",
            &format!("sqlite://{}", db.display()),
            "--allow",
            "orders,customers",
        ],
    );
    run_cli(
        &server,
        &[
            "source",
            "add-openapi",
            "payments",
            "--spec",
            spec.to_str().expect("path"),
            "--base-url",
            &base,
        ],
    );
    // A policy that does not validate is refused with the validator's words.
    let bad = dir.path().join("bad.cedar");
    std::fs::write(
        &bad,
        "permit(principal == Roster::Clerk::\"x\", action, resource);",
    )
    .expect("bad");
    let (ok, _, err) = cli(
        &server,
        &[
            "policy",
            "put",
            "bad",
            "--file",
            bad.to_str().expect("path"),
        ],
    );
    assert!(
        !ok && err.contains("unrecognized entity type `Roster::Clerk`"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = run_cli(
        &server,
        &[
            "policy",
            "put",
            "clerk",
            "--file",
            policy.to_str().expect("path"),
        ],
    );
    assert!(out.contains("stored policy clerk"), "{out}");
    let out = run_cli(&server, &["policy", "list"]);
    assert!(out.contains("invoke_agent, call_tool"), "{out}");

    let api = server.client();
    let (status, agent) = api
        .post(
            "/v1/agents",
            json!({"name": "clerk", "model": "openai/gpt-4.1-mini", "tools": ["sql:shop", "http:payments"]}),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let (_, session) = api.post("/v1/sessions", json!({"agent": "clerk"})).await;
    let sid = session["id"].as_str().expect("session").to_owned();

    let customers = json!({"source": "shop", "query": "SELECT email FROM customers"}).to_string();
    let orders =
        json!({"source": "shop", "query": "SELECT total FROM orders WHERE id = 7"}).to_string();
    model.push(
        Reply::tool_call("c1", "sql_query", &customers).and_tool_call("c2", "sql_query", &orders),
    );
    model.push(Reply::tool_call(
        "c3",
        "payments__createRefund",
        &json!({"order": 7, "amount": 250}).to_string(),
    ));
    let (status, paused) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "Refund order 7 in full."}),
        )
        .await;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["run"]["status"], "awaiting_approval", "{paused}");
    let run = paused["run"]["id"].as_str().expect("run").to_owned();
    let results: Vec<&serde_json::Value> = paused["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["type"] == "tool_result")
        .collect();
    assert_eq!(results.len(), 2, "{paused}");
    let customers_result = results.iter().find(|r| r["call_id"] == "c1").expect("c1");
    assert_eq!(customers_result["is_error"], true);
    assert!(customers_result["output"]
        .as_str()
        .expect("text")
        .contains("denied by policy"));
    let orders_result = results.iter().find(|r| r["call_id"] == "c2").expect("c2");
    assert!(
        orders_result["output"]
            .as_str()
            .expect("text")
            .contains("250"),
        "{orders_result}"
    );
    assert!(refunds.lock().expect("lock").is_empty());

    // The server dies; the request survives it.
    server.kill();
    let server = Server::start(&data, &model.openai_base_url(), &walls).await;
    let out = run_cli(&server, &["approvals", "list"]);
    assert!(
        out.contains("payments__createRefund") && out.contains("refunds of 100 or more"),
        "{out}"
    );
    let id = out
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("approval id")
        .to_owned();
    // An approver following the feed is told of the waiting request.
    let (watched, out, err) = cli(&server, &["approvals", "watch", "--count", "1", "--json"]);
    assert!(watched, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let heard: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(heard["event"], "approval_requested");
    assert_eq!(heard["approval"]["id"], id.as_str());
    // The key whose run asked may not approve it; a manager's key does.
    let (ok, _, err) = cli(&server, &["approvals", "approve", &id]);
    assert!(!ok && err.contains("another key must decide it"), "{err}");
    let created = run_cli(&server, &["key", "create", "manager"]);
    let manager = created
        .lines()
        .nth(1)
        .expect("the new key")
        .trim()
        .to_owned();
    model.push(Reply::text("Refunded 250 for order 7."));
    let out = run_cli(
        &server,
        &[
            "approvals",
            "approve",
            &id,
            "--note",
            "checked with the customer",
            "--api-key",
            &manager,
        ],
    );
    assert!(out.contains("approved"), "{out}");
    let (ok, _, err) = cli(
        &server,
        &["approvals", "approve", &id, "--api-key", &manager],
    );
    assert!(!ok && err.contains("already approved"), "{err}");

    let api = server.client();
    let mut finished = serde_json::Value::Null;
    for _ in 0..200 {
        let (_, current) = api.get(&format!("/v1/runs/{run}")).await;
        if current["status"] == "completed" {
            finished = current;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        finished["output"], "Refunded 250 for order 7.",
        "{finished}"
    );
    assert_eq!(
        refunds.lock().expect("lock").as_slice(),
        ["order=7&amount=250"],
        "the refund ran exactly once"
    );

    let export = dir.path().join("audit.jsonl");
    run_cli(
        &server,
        &[
            "audit",
            "export",
            "--output",
            export.to_str().expect("path"),
        ],
    );
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&export)
        .expect("export")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let trail: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["resource"].as_str().unwrap_or_default().to_owned(),
                e["decision"].as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect();
    let expect = |action: &str, resource: &str, decision: &str| {
        assert!(
            trail.contains(&(action.to_owned(), resource.to_owned(), decision.to_owned())),
            "missing {action} {resource} {decision} in {trail:#?}"
        );
    };
    expect("policy.put", "policy:clerk", "-");
    expect("agent.create", "agent:clerk", "-");
    expect("policy.invoke_agent", "agent:clerk", "allow");
    expect("policy.call_tool", "tool:sql_query", "deny");
    expect("policy.call_tool", "tool:sql_query", "allow");
    expect(
        "policy.call_tool",
        "tool:payments__createRefund",
        "needs_approval",
    );
    expect("approval.approve", &format!("approval:{id}"), "allow");
    // The export is on the record, with who asked for it.
    expect("audit.export", "audit", "-");
    let exported = events
        .iter()
        .find(|e| e["action"] == "audit.export")
        .expect("export event");
    assert!(exported["actor"]
        .as_str()
        .is_some_and(|a| a.starts_with("key:key_")));
    let refund = events
        .iter()
        .find(|e| e["decision"] == "needs_approval")
        .expect("refund decision");
    let chain = refund["actor"].as_str().expect("actor");
    assert!(
        chain.starts_with("key:key_")
            && chain.ends_with(" > agent:clerk > tool:payments__createRefund"),
        "{chain}"
    );
    assert_eq!(refund["detail"]["arguments"]["amount"], 250);
    let denied = events
        .iter()
        .find(|e| e["decision"] == "deny")
        .expect("denied query");
    assert_eq!(denied["detail"]["facts"]["table"], "customers");

    // What it cost, and a budget that stops the next run.
    let out = run_cli(
        &server,
        &["ledger", "summary", "--group-by", "provider,model"],
    );
    assert!(
        out.contains("openai") && out.contains("gpt-4.1-mini"),
        "{out}"
    );
    let out = run_cli(&server, &["budget", "set", "--tokens-per-day", "10"]);
    assert!(out.contains("budget of tenant: 10 tokens/day"), "{out}");
    assert!(run_cli(&server, &["budget", "list"]).contains("tenant"));
    let (status, stopped) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "Anything else?"}),
        )
        .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(
        stopped["run"]["error"]["code"], "budget_exceeded",
        "{stopped}"
    );
    let (ok, _, err) = cli(&server, &["budget", "set"]);
    assert!(!ok && err.contains("--tokens-per-day"), "{err}");
}
