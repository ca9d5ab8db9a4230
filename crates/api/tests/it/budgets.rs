//! Daily budgets and what the ledger sums: costs from configured prices, a
//! run stopped with `budget_exceeded` once the tenant's or an agent's
//! budget is used up (nothing more is sent), ledger filters and sums.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Reply, TestApp};
use roster_runtime::governance::Price;
use serde_json::{json, Value};

fn priced(app: &TestApp) {
    app.state.runtime.governance().set_prices(
        [(
            "openai/*".to_owned(),
            Price {
                input_per_mtok: 1000.0,
                output_per_mtok: 2000.0,
            },
        )]
        .into_iter()
        .collect(),
    );
}

/// A cost under one micro-dollar (the unit costs are kept in) used to be
/// stored as a budget of nothing; it is refused.
#[tokio::test]
async fn a_cost_budget_under_one_micro_dollar_is_refused() {
    let app = TestApp::start().await;
    let admin = app.admin();
    for tiny in [5e-324, 1e-9, 0.000_000_9] {
        admin
            .put("/v1/budgets/tenant", json!({ "cost_usd_per_day": tiny }))
            .await
            .err(400, "invalid_request");
    }
    let set = admin
        .put(
            "/v1/budgets/tenant",
            json!({ "cost_usd_per_day": 0.000_001 }),
        )
        .await;
    assert_eq!(set.ok(200)["cost_usd_per_day"], json!(0.000_001));
}

#[tokio::test]
async fn a_tenant_token_budget_stops_runs_once_used_up() {
    let app = TestApp::start().await;
    priced(&app);
    let admin = app.admin();
    let session = admin.agent_session("helper").await;
    admin
        .put("/v1/budgets/tenant", json!({"tokens_per_day": 40}))
        .await
        .ok(200);
    // Each answer reports 10 tokens in and 5 out: 15 per call.
    for _ in 0..3 {
        app.fake.push(Reply::text("ok"));
        assert_eq!(
            admin.say(&session, "hi").await["run"]["status"],
            "completed"
        );
    }
    let stopped = admin.say(&session, "one more").await;
    assert_eq!(stopped["run"]["status"], "failed");
    assert_eq!(stopped["run"]["error"]["code"], "budget_exceeded");
    let message = stopped["run"]["error"]["message"].as_str().unwrap();
    assert!(message.contains("45 of 40 tokens"), "{message}");
    assert_eq!(
        app.fake.request_count(),
        3,
        "nothing was sent past the budget"
    );
    // Raising it lets work go on.
    admin
        .put("/v1/budgets/tenant", json!({"tokens_per_day": 1000}))
        .await
        .ok(200);
    app.fake.push(Reply::text("again"));
    assert_eq!(
        admin.say(&session, "hi").await["run"]["status"],
        "completed"
    );
    // Another tenant has its own budget (none).
    let b = app.tenant_b();
    let b_session = b.agent_session("other").await;
    app.fake.push(Reply::text("free"));
    assert_eq!(b.say(&b_session, "hi").await["run"]["status"], "completed");
    assert_eq!(b.get("/v1/budgets").await.ok(200)["data"], json!([]));
}

#[tokio::test]
async fn an_agent_cost_budget_and_the_ledger_sums() {
    let app = TestApp::start().await;
    priced(&app);
    let admin = app.admin();
    let cheap = admin.agent_session("cheap").await;
    let free = admin.agent_session("free").await;
    let set = admin
        .put(
            "/v1/budgets/agents/cheap",
            json!({"cost_usd_per_day": 0.03}),
        )
        .await;
    assert_eq!(set.ok(200)["scope"], "agent:cheap");
    // 10 in x $1000/M + 5 out x $2000/M = $0.02 a call.
    for _ in 0..2 {
        app.fake.push(Reply::text("ok"));
        admin.say(&cheap, "hi").await;
    }
    let stopped = admin.say(&cheap, "hi").await;
    assert_eq!(stopped["run"]["error"]["code"], "budget_exceeded");
    assert!(stopped["run"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cost budget"));
    app.fake.push(Reply::text("other agents go on"));
    assert_eq!(admin.say(&free, "hi").await["run"]["status"], "completed");

    let ledger = admin
        .get("/v1/ledger?provider=openai")
        .await
        .ok(200)
        .clone();
    assert_eq!(ledger["data"].as_array().unwrap().len(), 3);
    assert_eq!(ledger["data"][0]["cost_micros"], 20_000);
    // The list also sums what its filters select, across pages.
    let page = admin
        .get("/v1/ledger?agent=cheap&limit=1")
        .await
        .ok(200)
        .clone();
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["totals"]["calls"], 2);
    assert_eq!(page["totals"]["tokens_out"], 10);
    assert!((page["totals"]["cost_usd"].as_f64().unwrap() - 0.04).abs() < 1e-9);
    let today = chrono::Utc::now().date_naive().to_string();
    let by_day = admin
        .get(&format!("/v1/ledger?day={today}&model=test-model"))
        .await
        .ok(200)
        .clone();
    assert_eq!(by_day["data"].as_array().unwrap().len(), 3);
    let none = admin.get("/v1/ledger?day=2020-01-01").await.ok(200).clone();
    assert_eq!(none["data"], json!([]));

    let total = admin.get("/v1/ledger/summary").await.ok(200).clone();
    assert_eq!(total["data"][0]["calls"], 3);
    assert_eq!(total["data"][0]["tokens_in"], 30);
    assert!((total["data"][0]["cost_usd"].as_f64().unwrap() - 0.06).abs() < 1e-9);
    let grouped = admin
        .get("/v1/ledger/summary?group_by=day,agent,model")
        .await
        .ok(200)
        .clone();
    let rows = grouped["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r["day"] == today && r["model"] == "test-model"));
    let cheap_id = admin.get("/v1/agents/cheap").await.ok(200)["id"].clone();
    let cheap_row = rows.iter().find(|r| r["agent_id"] == cheap_id).unwrap();
    assert_eq!(cheap_row["calls"], 2);
    let only_cheap = admin
        .get("/v1/ledger/summary?agent=cheap")
        .await
        .ok(200)
        .clone();
    assert_eq!(only_cheap["data"][0]["calls"], 2);

    // Bad input: clear errors, nothing changed.
    for body in [
        json!({"tokens_per_day": 0}),
        json!({"cost_usd_per_day": -1}),
        json!({}),
        json!({"tokens_per_day": 5, "extra": 1}),
    ] {
        admin
            .put("/v1/budgets/tenant", body)
            .await
            .err(400, "invalid_request");
    }
    admin
        .put("/v1/budgets/agents/nobody", json!({"tokens_per_day": 5}))
        .await
        .err(404, "not_found");
    admin
        .delete("/v1/budgets/tenant")
        .await
        .err(404, "not_found");
    admin
        .get("/v1/ledger/summary?group_by=weather")
        .await
        .err(400, "invalid_request");
    let budgets = admin.get("/v1/budgets").await.ok(200).clone();
    assert_eq!(budgets["data"].as_array().unwrap().len(), 1);
    assert!((budgets["data"][0]["cost_usd_per_day"].as_f64().unwrap() - 0.03).abs() < 1e-9);
    admin.delete("/v1/budgets/agents/cheap").await.ok(204);
    let audit = admin.get("/v1/audit?action=budget").await.ok(200).clone();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["budget.set", "budget.delete"]);
}

#[tokio::test]
async fn the_admin_key_reads_any_tenants_ledger_others_only_their_own() {
    let app = TestApp::start().await;
    let b = app.tenant_b();
    let session = b.agent_session("bee").await;
    app.fake.push(Reply::text("hi"));
    b.say(&session, "hi").await;
    let tenant_b = app.tenant_b.to_string();
    let seen = app
        .admin()
        .get(&format!("/v1/ledger/summary?tenant={tenant_b}&agent=bee"))
        .await
        .ok(200)
        .clone();
    assert_eq!(seen["data"][0]["calls"], 1);
    let listed = app
        .admin()
        .get(&format!("/v1/ledger?tenant={tenant_b}"))
        .await
        .ok(200)
        .clone();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.admin().get("/v1/ledger").await.ok(200)["data"],
        json!([])
    );
    app.member()
        .get(&format!("/v1/ledger?tenant={tenant_b}"))
        .await
        .err(404, "not_found");
}

/// A turn that cannot pay is refused before it does any work: no memory is
/// recalled (no `read_memory` decision is taken) and no model is called.
#[tokio::test]
async fn a_turn_over_budget_recalls_nothing() {
    let app = TestApp::start().await;
    priced(&app);
    let admin = app.admin();
    admin
        .put(
            "/v1/policies/memory",
            json!({"text": r#"permit(principal, action == Roster::Action::"invoke_agent", resource);
permit(principal, action == Roster::Action::"read_memory", resource);"#}),
        )
        .await
        .ok(201);
    let session = admin.agent_session("helper").await;
    app.fake.push(Reply::text("ok"));
    assert_eq!(
        admin.say(&session, "hi").await["run"]["status"],
        "completed"
    );
    let reads = |audit: &Value| {
        audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "policy.read_memory")
            .count()
    };
    let before = reads(admin.get("/v1/audit?limit=200").await.ok(200));
    assert!(before > 0, "the paid turn recalled memory");
    admin
        .put("/v1/budgets/tenant", json!({"tokens_per_day": 10}))
        .await
        .ok(200);
    let requests = app.fake.request_count();
    let stopped = admin.say(&session, "one more").await;
    assert_eq!(stopped["run"]["error"]["code"], "budget_exceeded");
    assert_eq!(app.fake.request_count(), requests, "no model was called");
    let after = reads(admin.get("/v1/audit?limit=200").await.ok(200));
    assert_eq!(after, before, "the refused turn read no memory");
}
