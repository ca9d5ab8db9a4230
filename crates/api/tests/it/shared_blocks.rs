//! A shared block over HTTP: made by the first agent that attaches it,
//! the same value for every agent that does, editable through any of them.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Reply, TestApp};
use serde_json::json;

#[tokio::test]
async fn agents_attach_one_shared_block_and_see_each_others_edits() {
    let app = TestApp::start().await;
    let admin = app.admin();
    for (name, value) in [("lead", "Goal: ship"), ("dev", "not used")] {
        admin
            .create_agent(json!({
                "name": name, "model": "openai/test-model", "tools": ["memory_append"],
                "memory_blocks": [{"label": "project", "scope": "shared", "value": value}],
            }))
            .await;
    }
    let view = admin.get("/v1/agents/dev/blocks").await.ok(200).clone();
    let block = &view["data"][0];
    assert_eq!(block["owner"], "shared", "{view}");
    assert_eq!(block["scope"], "shared");
    assert_eq!(block["value"], "Goal: ship");

    // The lead's run appends; the dev agent's next turn pins the new value.
    let lead = admin.session("lead").await;
    app.fake.push(Reply::tool_call(
        "a1",
        "memory_append",
        r#"{"label":"project","content":"Step 1 done"}"#,
    ));
    app.fake.push(Reply::text("noted"));
    admin.say(&lead, "log step 1").await;
    let dev = admin.session("dev").await;
    app.fake.push(Reply::text("I see step 1"));
    admin.say(&dev, "status?").await;
    let sent = app.fake.last_request().unwrap().body["messages"].to_string();
    assert!(sent.contains("Step 1 done"), "{sent}");

    // A person edits it through either agent; both show the one value.
    admin
        .patch(
            "/v1/agents/dev/blocks/project",
            json!({"value": "Goal: ship\nStep 1 done\nStep 2 next", "expected_version": 2}),
        )
        .await
        .ok(200);
    let shown = admin
        .get("/v1/agents/lead/blocks/project")
        .await
        .ok(200)
        .clone();
    assert_eq!(shown["value"], "Goal: ship\nStep 1 done\nStep 2 next");
    assert_eq!(shown["version"], 3);
    let history = shown["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[1]["operation"], "append");
    assert!(
        history[1]["principal"]
            .as_str()
            .unwrap()
            .ends_with("> agent:lead"),
        "{shown}"
    );
    assert!(history[1]["run_id"].is_string());
    // Another tenant's agent of the same label has a block of its own.
    let b = app.tenant_b();
    b.create_agent(json!({
        "name": "theirs", "model": "openai/test-model",
        "memory_blocks": [{"label": "project", "scope": "shared", "value": "B's"}],
    }))
    .await;
    let theirs = b
        .get("/v1/agents/theirs/blocks/project")
        .await
        .ok(200)
        .clone();
    assert_eq!(theirs["value"], "B's");
    assert_eq!(theirs["version"], 1);
}
