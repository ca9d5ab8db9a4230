//! `/v1/memories` and `/v1/index`: create, list, show with history, edit,
//! delete, search; bad input; tenant isolation; rebuilding the index.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::TestApp;
use serde_json::{json, Value};

#[tokio::test]
async fn create_search_edit_delete() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let created = admin
        .post(
            "/v1/memories",
            json!({"namespace": "users/ada", "content": "Ada prefers window seats on trains",
                   "kind": "preference", "metadata": {"topic": "travel"}}),
        )
        .await;
    let record = created.ok(201).clone();
    let id = record["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("mem_"), "{id}");
    assert_eq!(record["version"], 1);
    assert_eq!(record["kind"], "preference");

    // Searchable as soon as it was created.
    let found = admin
        .post(
            "/v1/memories/search",
            json!({"query": "which seat does Ada like on the train?", "namespace": "users/ada"}),
        )
        .await;
    let found = found.ok(200);
    assert_eq!(found["mode"], "full_text");
    assert!(found["notice"]
        .as_str()
        .is_some_and(|n| n.contains("embedder")));
    assert_eq!(found["data"][0]["record"]["id"], id.as_str());

    // Edit: a new version; the old text stays in the history.
    let edited = admin
        .patch(
            &format!("/v1/memories/{id}"),
            json!({"content": "Ada prefers aisle seats on trains", "expected_version": 1}),
        )
        .await;
    assert_eq!(edited.ok(200)["version"], 2);
    admin
        .patch(
            &format!("/v1/memories/{id}"),
            json!({"content": "stale", "expected_version": 1}),
        )
        .await
        .err(409, "conflict");
    let shown = admin.get(&format!("/v1/memories/{id}")).await;
    let shown = shown.ok(200);
    assert_eq!(shown["content"], "Ada prefers aisle seats on trains");
    let history: Vec<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        history,
        [
            "Ada prefers window seats on trains",
            "Ada prefers aisle seats on trains"
        ]
    );
    let search = |q: &'static str| {
        let admin = app.admin();
        async move {
            admin
                .post(
                    "/v1/memories/search",
                    json!({"query": q, "namespaces": ["users/ada"]}),
                )
                .await
                .ok(200)["data"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(search("window").await, 0, "the index follows edits");
    assert_eq!(search("aisle").await, 1);

    // List with filters and paging.
    for i in 0..3 {
        admin
            .post(
                "/v1/memories",
                json!({"namespace": "agents/helper", "content": format!("fact {i}")}),
            )
            .await
            .ok(201);
    }
    let page = admin
        .get("/v1/memories?namespace=agents/helper&limit=2")
        .await;
    let page = page.ok(200);
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let next = page["next_after"].as_str().unwrap();
    let rest = admin
        .get(&format!(
            "/v1/memories?namespace=agents/helper&limit=2&after={next}"
        ))
        .await;
    assert_eq!(rest.ok(200)["data"].as_array().unwrap().len(), 1);
    let prefs = admin.get("/v1/memories?kind=preference").await;
    assert_eq!(prefs.ok(200)["data"].as_array().unwrap().len(), 1);

    // Delete: gone from list, show and search; a second delete is 404.
    admin.delete(&format!("/v1/memories/{id}")).await.ok(204);
    admin
        .get(&format!("/v1/memories/{id}"))
        .await
        .err(404, "not_found");
    admin
        .delete(&format!("/v1/memories/{id}"))
        .await
        .err(404, "not_found");
    assert_eq!(search("aisle").await, 0);
}

#[tokio::test]
async fn keyed_records_update_in_place_and_expiry_hides_records() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let body = |content: &str| json!({"namespace": "sessions/s1", "key": "summary", "kind": "summary", "content": content});
    let first = admin
        .post("/v1/memories", body("first summary"))
        .await
        .ok(201)
        .clone();
    let second = admin
        .post("/v1/memories", body("second summary"))
        .await
        .ok(201)
        .clone();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["version"], 2);

    admin
        .post(
            "/v1/memories",
            json!({"namespace": "tmp", "content": "expired note", "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await
        .ok(201);
    let listed = admin.get("/v1/memories?namespace=tmp").await;
    assert!(listed.ok(200)["data"].as_array().unwrap().is_empty());
    let all = admin
        .get("/v1/memories?namespace=tmp&include_expired=true")
        .await;
    let id = all.ok(200)["data"][0]["id"].as_str().unwrap().to_owned();
    let found = admin
        .post(
            "/v1/memories/search",
            json!({"query": "expired note", "namespace": "tmp"}),
        )
        .await;
    assert!(found.ok(200)["data"].as_array().unwrap().is_empty());
    // Clearing the expiry brings it back.
    admin
        .patch(&format!("/v1/memories/{id}"), json!({"expires_at": null}))
        .await
        .ok(200);
    let found = admin
        .post(
            "/v1/memories/search",
            json!({"query": "expired note", "namespace": "tmp"}),
        )
        .await;
    assert_eq!(found.ok(200)["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let bad_creates: Vec<Value> = vec![
        json!({"namespace": "", "content": "x"}),
        json!({"namespace": "a//b", "content": "x"}),
        json!({"namespace": "../etc", "content": "x"}),
        json!({"namespace": "ok", "content": "  "}),
        json!({"namespace": "ok", "content": "x".repeat(10_001)}),
        json!({"namespace": "ok", "content": "x", "kind": "rumour"}),
        json!({"namespace": "ok", "content": "x", "metadata": [1, 2]}),
        json!({"namespace": "ok", "content": "x", "unknown": 1}),
        json!({"namespace": "ok", "content": "x", "expires_at": "tomorrow"}),
        json!({"content": "x"}),
    ];
    for body in bad_creates {
        let resp = admin.post("/v1/memories", body.clone()).await;
        assert_eq!(resp.status, 400, "{body} -> {}", resp.text);
        assert_eq!(
            resp.body["error"]["code"], "invalid_request",
            "{}",
            resp.text
        );
    }
    let listed = admin.get("/v1/memories").await;
    assert!(listed.ok(200)["data"].as_array().unwrap().is_empty());

    admin
        .get("/v1/memories/mem_nope")
        .await
        .err(404, "not_found");
    admin
        .get("/v1/memories?limit=0")
        .await
        .err(400, "invalid_request");
    admin
        .get("/v1/memories?after=xyz")
        .await
        .err(400, "invalid_request");
    admin
        .get("/v1/memories?namespace=a%20b")
        .await
        .err(400, "invalid_request");
    for body in [
        json!({"query": "x"}),
        json!({"query": "", "namespace": "a"}),
        json!({"query": "x", "namespace": "a", "limit": 0}),
        json!({"query": "x", "namespace": "bad space"}),
    ] {
        admin
            .post("/v1/memories/search", body)
            .await
            .err(400, "invalid_request");
    }
    let created = admin
        .post(
            "/v1/memories",
            json!({"namespace": "ok", "content": "kept"}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    admin
        .patch(&format!("/v1/memories/{id}"), json!({}))
        .await
        .err(400, "invalid_request");
    admin
        .patch(&format!("/v1/memories/{id}"), json!({"content": ""}))
        .await
        .err(400, "invalid_request");
    let shown = admin.get(&format!("/v1/memories/{id}")).await;
    assert_eq!(shown.ok(200)["content"], "kept");
    assert_eq!(shown.ok(200)["version"], 1);
}

#[tokio::test]
async fn tenants_never_see_each_others_memories() {
    let app = TestApp::start().await;
    let admin = app.admin();
    let other = app.tenant_b();
    let id = admin
        .post(
            "/v1/memories",
            json!({"namespace": "shared", "content": "the launch code is 1234"}),
        )
        .await
        .ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    other
        .get(&format!("/v1/memories/{id}"))
        .await
        .err(404, "not_found");
    other
        .patch(
            &format!("/v1/memories/{id}"),
            json!({"content": "mine now"}),
        )
        .await
        .err(404, "not_found");
    other
        .delete(&format!("/v1/memories/{id}"))
        .await
        .err(404, "not_found");
    let found = other
        .post(
            "/v1/memories/search",
            json!({"query": "launch code", "namespace": "shared"}),
        )
        .await;
    assert!(found.ok(200)["data"].as_array().unwrap().is_empty());
    let listed = other.get("/v1/memories").await;
    assert!(listed.ok(200)["data"].as_array().unwrap().is_empty());
    let mine = admin.get(&format!("/v1/memories/{id}")).await;
    assert_eq!(mine.ok(200)["content"], "the launch code is 1234");
}

#[tokio::test]
async fn the_index_reports_its_state_and_rebuilds_for_admins_only() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .post(
            "/v1/memories",
            json!({"namespace": "ns", "content": "the wifi password is on the fridge"}),
        )
        .await
        .ok(201);
    let status = admin.get("/v1/index").await;
    let status = status.ok(200);
    assert_eq!(status["applied"], status["head"]);
    assert_eq!(status["documents"], 1);
    assert_eq!(status["embedder"], Value::Null);
    app.member().get("/v1/index").await.err(403, "forbidden");
    app.member()
        .post("/v1/index/rebuild", json!({}))
        .await
        .err(403, "forbidden");
    let rebuilt = admin.post("/v1/index/rebuild", json!({})).await;
    assert_eq!(rebuilt.ok(200)["records"], 1);
    let found = admin
        .post(
            "/v1/memories/search",
            json!({"query": "wifi password", "namespace": "ns"}),
        )
        .await;
    assert_eq!(found.ok(200)["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn sessions_carry_a_user_and_refuse_bad_ones() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin.agent("helper", "openai/m").await;
    let created = admin
        .post(
            "/v1/sessions",
            json!({"agent": "helper", "user": "ada@example.com"}),
        )
        .await;
    let id = created.ok(201)["id"].as_str().unwrap().to_owned();
    assert_eq!(created.ok(201)["user"], "ada@example.com");
    let shown = admin.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(shown.ok(200)["user"], "ada@example.com");
    for bad in ["", "a/b", "two words", &"x".repeat(101)] {
        admin
            .post("/v1/sessions", json!({"agent": "helper", "user": bad}))
            .await
            .err(400, "invalid_request");
    }
}
