//! `/v1/agents`: create, list, show, versioned update, delete, validation.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Reply, TestApp};
use serde_json::{json, Value};

#[tokio::test]
async fn create_list_show_and_memory() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let created = admin
        .create_agent(json!({
            "name": "support-bot",
            "instructions": "Be kind.",
            "model": "openai/gpt-test",
            "fallbacks": ["anthropic/claude-x"],
            "tools": ["memory_append"],
            "memory_blocks": [
                {"label": "persona", "value": "I help.", "limit": 100},
                {"label": "human"}
            ],
            "max_steps": 4
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("agt_"), "{id}");
    assert_eq!(created["name"], "support-bot");
    assert_eq!(created["version"], 1);
    let config = &created["config"];
    assert_eq!(config["instructions"], "Be kind.");
    assert_eq!(config["model"], "openai/gpt-test");
    assert_eq!(config["fallbacks"], json!(["anthropic/claude-x"]));
    assert_eq!(config["tools"], json!(["memory_append"]));
    assert_eq!(config["max_steps"], 4);
    assert_eq!(config["context_tokens"], 32_000, "default applies");

    admin.agent("another", "openai/m").await;
    let list = admin.get("/v1/agents").await;
    let names: Vec<&str> = list.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["another", "support-bot"], "sorted by name");

    let by_id = admin.get(&format!("/v1/agents/{id}")).await;
    let by_name = admin.get("/v1/agents/support-bot").await;
    // The answer to a create is the agent plus what changed and warnings.
    assert_eq!(
        (&created["changes"], &created["warnings"]),
        (&json!([]), &json!([]))
    );
    let agent = without_change_report(&created);
    assert_eq!(by_id.ok(200), &agent);
    assert_eq!(by_name.ok(200), &agent);

    let memory = admin.get("/v1/agents/support-bot/memory").await;
    let memory = memory.ok(200);
    let blocks = memory["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0]["label"], "human");
    assert_eq!(blocks[0]["value"], "");
    assert_eq!(blocks[0]["limit"], 5_000, "default limit");
    assert_eq!(blocks[1]["label"], "persona");
    assert_eq!(blocks[1]["value"], "I help.");
    assert_eq!(blocks[1]["limit"], 100);
    let history = memory["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|h| h["operation"] == "create"));
}

#[tokio::test]
async fn invalid_agents_are_refused_and_nothing_is_stored() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("keep", "openai/m").await;
    let before = admin.get("/v1/agents").await.body;

    let base = json!({"name": "fresh", "model": "openai/m"});
    let with = |patch: Value| {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let long_name = "a".repeat(65);
    let mut bad = vec![];
    for name in [
        "",
        "-x",
        "a b",
        "agt_123",
        long_name.as_str(),
        "ü",
        "a/b",
        ".hidden",
    ] {
        bad.push(with(json!({ "name": name })));
    }
    for model in ["gpt-4", "/gpt", "openai/", "op en/x", ""] {
        bad.push(with(json!({ "model": model })));
    }
    bad.push(with(json!({"fallbacks": ["gpt-4"]})));
    bad.push(with(json!({"tools": ["no_such_tool"]})));
    bad.push(with(json!({"tools": ["memory_append", "rm_rf"]})));
    bad.push(with(json!({"max_steps": 0})));
    bad.push(with(json!({"max_steps": 1001})));
    bad.push(with(json!({"context_tokens": 10})));
    bad.push(with(json!({"instructions": "x".repeat(200_001)})));
    bad.push(with(
        json!({"memory_blocks": [{"label": "notes", "value": "x".repeat(11), "limit": 10}]}),
    ));
    bad.push(with(
        json!({"memory_blocks": [{"label": "notes", "value": "x".repeat(5_001)}]}),
    ));
    bad.push(with(
        json!({"memory_blocks": [{"label": "notes", "limit": 0}]}),
    ));
    bad.push(with(
        json!({"memory_blocks": [{"label": "notes", "limit": 100_001}]}),
    ));
    bad.push(with(json!({"memory_blocks": [{"label": "bad label"}]})));
    bad.push(with(json!({"memory_blocks": [{"label": ""}]})));
    bad.push(with(
        json!({"memory_blocks": [{"label": "a"}, {"label": "a"}]}),
    ));
    let many: Vec<Value> = (0..65).map(|i| json!({"label": format!("b{i}")})).collect();
    bad.push(with(json!({ "memory_blocks": many })));
    for body in bad {
        let resp = admin.post("/v1/agents", body.clone()).await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text);
        resp.err(400, "invalid_request");
    }

    admin
        .post(
            "/v1/agents",
            json!({"name": "keep", "model": "openai/other"}),
        )
        .await
        .err(409, "conflict");
    assert_eq!(admin.get("/v1/agents").await.body, before);
    let memory = admin.get("/v1/agents/keep/memory").await;
    assert_eq!(memory.ok(200)["blocks"], json!([]));
}

#[tokio::test]
async fn update_makes_a_new_version_and_sessions_stay_pinned() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let id = admin.agent("pin", "openai/model-a").await;
    let old_session = admin.session("pin").await;

    let updated = admin
        .patch(
            "/v1/agents/pin",
            json!({"model": "openai/model-b", "instructions": "second"}),
        )
        .await;
    let updated = updated.ok(200);
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["config"]["model"], "openai/model-b");
    assert_eq!(updated["config"]["instructions"], "second");
    assert_eq!(updated["config"]["max_steps"], 16, "untouched fields kept");
    assert_eq!(
        admin.get(&format!("/v1/agents/{id}")).await.body,
        without_change_report(updated)
    );
    let new_session = admin.session(&id).await;

    let session = admin.get(&format!("/v1/sessions/{old_session}")).await;
    assert_eq!(session.ok(200)["agent_version"], 1);
    let session = admin.get(&format!("/v1/sessions/{new_session}")).await;
    assert_eq!(session.ok(200)["agent_version"], 2);

    app.fake
        .push_all([Reply::text("a1"), Reply::text("b1"), Reply::text("a2")]);
    let first = admin.say(&old_session, "hi").await;
    assert_eq!(first["run"]["agent_version"], 1);
    let second = admin.say(&new_session, "hi").await;
    assert_eq!(second["run"]["agent_version"], 2);
    admin.say(&old_session, "again").await;
    assert_eq!(app.requested_models(), ["model-a", "model-b", "model-a"]);
    // The instructions of each version reach the model too.
    let requests = app.fake.requests();
    let system = |i: usize| requests[i].body["messages"][0].to_string();
    assert!(!system(0).contains("second"), "{}", system(0));
    assert!(system(1).contains("second"), "{}", system(1));
}

#[tokio::test]
async fn invalid_updates_are_refused_and_keep_the_version() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("bot", "openai/m").await;
    let before = admin.get("/v1/agents/bot").await.body;
    for body in [
        json!({"model": "gpt-4"}),
        json!({"fallbacks": ["nope"]}),
        json!({"tools": ["unknown_tool"]}),
        json!({"max_steps": 0}),
        json!({"context_tokens": 1}),
    ] {
        let resp = admin.patch("/v1/agents/bot", body.clone()).await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text);
        resp.err(400, "invalid_request");
    }
    for body in [
        json!({"name": "renamed"}),
        json!({"memory_blocks": []}),
        json!({"model": 7}),
    ] {
        let resp = admin.patch("/v1/agents/bot", body.clone()).await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text);
        resp.err(400, "invalid_request");
    }
    assert_eq!(admin.get("/v1/agents/bot").await.body, before);
}

#[tokio::test]
async fn delete_hides_the_agent_and_frees_its_name() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let id = admin.agent("gone", "openai/m").await;
    let session = admin.session(&id).await;
    assert_eq!(admin.delete("/v1/agents/gone").await.status, 204);
    for path in [
        format!("/v1/agents/{id}"),
        "/v1/agents/gone".to_owned(),
        format!("/v1/agents/{id}/memory"),
    ] {
        admin.get(&path).await.err(404, "not_found");
    }
    admin
        .delete(&format!("/v1/agents/{id}"))
        .await
        .err(404, "not_found");
    admin
        .patch(&format!("/v1/agents/{id}"), json!({"instructions": "x"}))
        .await
        .err(404, "not_found");
    admin
        .post("/v1/sessions", json!({"agent": "gone"}))
        .await
        .err(404, "not_found");
    assert_eq!(admin.get("/v1/agents").await.body["data"], json!([]));
    // The session's history stays readable.
    assert_eq!(
        admin.get(&format!("/v1/sessions/{session}")).await.status,
        200
    );
    // ... but it takes no new messages.
    admin
        .post(
            &format!("/v1/sessions/{session}/messages"),
            json!({"content": "still there?"}),
        )
        .await
        .err(409, "agent_deleted");

    let again = admin.agent("gone", "openai/m").await;
    assert_ne!(again, id, "a new agent under the old name");
    assert_eq!(
        admin.get("/v1/agents/gone").await.body["id"],
        again.as_str()
    );
}

#[tokio::test]
async fn names_are_per_tenant() {
    let app = TestApp::start().await;
    let a = app.admin().agent("same", "openai/m").await;
    let b = app.tenant_b().agent("same", "openai/m").await;
    assert_ne!(a, b);
    assert_eq!(
        app.admin().get("/v1/agents/same").await.body["id"],
        a.as_str()
    );
    assert_eq!(
        app.tenant_b().get("/v1/agents/same").await.body["id"],
        b.as_str()
    );
}

#[tokio::test]
async fn sessions_are_listed_per_agent() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("one", "openai/m").await;
    admin.agent("two", "openai/m").await;
    let s1 = admin.session("one").await;
    let s2 = admin.session("two").await;
    let s3 = admin.session("one").await;
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let all = admin.get("/v1/sessions").await;
    let mut expected = vec![s1.clone(), s2.clone(), s3.clone()];
    expected.sort();
    assert_eq!(ids(all.ok(200)), expected);
    let one = admin.get("/v1/sessions?agent=one").await;
    let mut expected = vec![s1, s3];
    expected.sort();
    assert_eq!(ids(one.ok(200)), expected);
    let limited = admin.get("/v1/sessions?limit=1").await;
    assert_eq!(limited.ok(200)["data"].as_array().unwrap().len(), 1);
}

/// An answer to a create or update without its `changes` and `warnings`:
/// the agent as `GET /v1/agents/{id}` shows it.
fn without_change_report(answer: &Value) -> Value {
    let mut agent = answer.clone();
    if let Some(fields) = agent.as_object_mut() {
        fields.remove("changes");
        fields.remove("warnings");
    }
    agent
}

#[tokio::test]
async fn an_agent_without_a_model_needs_a_server_default() {
    // This server has no default model (`GET /v1/models` says so).
    let app = TestApp::start().await;
    let admin = app.admin();
    let models = admin.get("/v1/models").await;
    assert_eq!(models.status, 200);
    assert_eq!(models.body["default"], Value::Null, "{}", models.body);
    let refused = admin.post("/v1/agents", json!({"name": "nomodel"})).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "invalid_request");
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("default model"));
    assert_eq!(admin.get("/v1/agents/nomodel").await.status, 404);
}

#[tokio::test]
async fn tool_choice_is_set_shown_and_changed() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let refused = admin
        .post(
            "/v1/agents",
            json!({"name": "forced", "model": "openai/m", "tool_choice": "required"}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("tool_choice"));
    let odd = admin
        .post(
            "/v1/agents",
            json!({"name": "forced", "model": "openai/m", "tools": ["memory_append"], "tool_choice": "always"}),
        )
        .await;
    assert_eq!(odd.status, 400, "{}", odd.body);
    let created = admin
        .post(
            "/v1/agents",
            json!({"name": "forced", "model": "openai/m", "tools": ["memory_append"], "tool_choice": "required"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["config"]["tool_choice"], "required");
    let changed = admin
        .patch("/v1/agents/forced", json!({"tool_choice": "auto"}))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["config"]["tool_choice"], "auto");
    assert_eq!(changed.body["version"], 2);
}
