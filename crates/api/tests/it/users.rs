//! Privacy between the users of one tenant: keys bound to a user, service
//! keys acting for named users, sessions and `users/NAME` memories that
//! only their user's keys reach, and memory blocks with a copy per user
//! that people read and edit through the API (versioned and audited).
#![allow(clippy::unwrap_used)]

use crate::common;

use common::{Client, Reply, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

/// A key made by the admin key; returns a client using it.
async fn key(app: &TestApp, body: Value) -> Client {
    let created = app.admin().post("/v1/keys", body).await;
    app.with_key(created.ok(201)["key"].as_str().unwrap())
}

struct People {
    ann: Client,
    bob: Client,
    /// A service key that may act for Ann only.
    ann_service: Client,
    /// A service key that may act for anyone.
    service: Client,
}

async fn people(app: &TestApp) -> People {
    People {
        ann: key(app, json!({"name": "Ann's laptop", "user": "ann"})).await,
        bob: key(app, json!({"name": "bob", "user": "bob"})).await,
        ann_service: key(
            app,
            json!({"name": "ann-app", "kind": "service", "act_for": ["ann"]}),
        )
        .await,
        service: key(app, json!({"name": "backend", "kind": "service"})).await,
    }
}

#[tokio::test]
async fn a_session_belongs_to_the_keys_user_and_no_key_claims_another() {
    let app = TestApp::start().await;
    let p = people(&app).await;
    app.admin().agent("helper", "openai/test-model").await;
    let created = |client: &Client, user: Value| {
        let client = client.clone();
        async move {
            let mut body = json!({"agent": "helper"});
            if !user.is_null() {
                body["user"] = user;
            }
            client.post("/v1/sessions", body).await
        }
    };
    // A bound key's sessions are its user's; naming another is refused.
    let own = created(&p.ann, Value::Null).await;
    assert_eq!(own.ok(201)["user"], "ann");
    assert_eq!(created(&p.ann, json!("ann")).await.ok(201)["user"], "ann");
    let claimed = created(&p.ann, json!("bob")).await;
    claimed.err(403, "user_not_allowed");
    assert!(claimed.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("acts for user `ann`"));
    // A key bound to no user names none.
    created(&app.member(), json!("bob"))
        .await
        .err(403, "user_not_allowed");
    assert_eq!(
        created(&app.member(), Value::Null).await.ok(201)["user"],
        Value::Null
    );
    // Service keys name users per request, within their list.
    assert_eq!(
        created(&p.ann_service, json!("ann")).await.ok(201)["user"],
        "ann"
    );
    created(&p.ann_service, json!("bob"))
        .await
        .err(403, "user_not_allowed");
    assert_eq!(
        created(&p.service, json!("bob")).await.ok(201)["user"],
        "bob"
    );
    assert_eq!(
        created(&app.admin(), json!("carol")).await.ok(201)["user"],
        "carol"
    );
    created(&p.service, json!("not/a user"))
        .await
        .err(400, "invalid_request");

    // A user's key made without scopes holds the user default: no keys.
    p.ann
        .post("/v1/keys", json!({"name": "x", "user": "ann"}))
        .await
        .err(403, "insufficient_scope");
    // Keys cannot hand out more identity than they have.
    let ann_keys = key(
        &app,
        json!({"name": "ann-keys", "user": "ann", "scopes": ["keys:write", "sessions:write"]}),
    )
    .await;
    ann_keys
        .post("/v1/keys", json!({"name": "x", "user": "bob"}))
        .await
        .err(403, "user_not_allowed");
    let minted = ann_keys
        .post("/v1/keys", json!({"name": "ann-robot", "kind": "service"}))
        .await;
    assert_eq!(minted.ok(201)["act_for"], json!(["ann"]));
    // The tenant's manager key (bound to no user, keys:write) acts for no
    // user itself but issues its users' keys.
    let minted = app
        .member()
        .post("/v1/keys", json!({"name": "carol", "user": "carol"}))
        .await;
    let minted = minted.ok(201);
    assert_eq!(minted["user"], "carol");
    assert_eq!(
        minted["scopes"],
        json!([
            "agents:read",
            "sessions:write",
            "memories:write",
            "knowledge:read",
            "tools:read",
            "approvals:write"
        ])
    );
    let carol = app.with_key(minted["key"].as_str().unwrap());
    assert_eq!(carol.get("/v1/audit").await.status, 403);
    assert_eq!(carol.get("/v1/keys").await.status, 403);
    carol
        .post(
            "/v1/policies",
            json!({"name": "p", "text": "permit(principal, action, resource);"}),
        )
        .await
        .err(403, "insufficient_scope");
    p.ann_service
        .post(
            "/v1/keys",
            json!({"name": "z", "kind": "service", "act_for": ["ann", "bob"]}),
        )
        .await
        .err(403, "user_not_allowed");
    app.admin()
        .post(
            "/v1/keys",
            json!({"name": "w", "kind": "user", "act_for": ["ann"]}),
        )
        .await
        .err(400, "invalid_request");
    let listed = app.admin().get("/v1/keys").await;
    let ann = listed.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "Ann's laptop")
        .cloned()
        .unwrap();
    assert_eq!(ann["user"], "ann");
}

/// Every operation on one session or run, from the OpenAPI document: on
/// Bob's session (or run) Ann's key gets exactly what it gets for one that
/// does not exist, and Bob's session is unchanged.
#[tokio::test]
async fn anns_key_cannot_reach_bobs_session_through_any_operation() {
    let app = TestApp::start().await;
    let p = people(&app).await;
    app.admin().agent("helper", "openai/test-model").await;
    let bob_session = p.bob.session("helper").await;
    app.fake.push(Reply::text("bob-secret-reply"));
    let bob_run = p.bob.say(&bob_session, "bob-secret-input").await["run"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    if app.state.sandbox.is_some() {
        let put = p
            .bob
            .request(
                Method::PUT,
                &format!("/v1/sessions/{bob_session}/files/b.txt"),
            )
            .body("bob-file");
        assert!(p.bob.send(put).await.status < 300);
    }
    let before = p.bob.items(&bob_session).await;
    let requests = app.fake.request_count();
    let (_, doc) = app
        .oneshot(
            axum::http::Request::get("/openapi.json")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    let none = |prefix: &str| format!("{prefix}_{}", "0".repeat(32));
    let mut walked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let (present, absent) = if template.starts_with("/v1/sessions/{id}") {
            (bob_session.clone(), none("ses"))
        } else if template.starts_with("/v1/runs/{id}") {
            (bob_run.clone(), none("run"))
        } else {
            continue;
        };
        for (method, op) in item.as_object().unwrap() {
            let body = match op["requestBody"]["content"]["application/json"]["schema"].as_object()
            {
                None => None,
                Some(_) if template.ends_with("/messages") => Some(json!({"content": "ann-probe"})),
                Some(_) => panic!("{method} {template}: add a request body for it here"),
            };
            let call = |id: &str| {
                let path = template.replace("{id}", id).replace("{path}", "b.txt");
                let mut builder = p.ann.request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &path,
                );
                if let Some(body) = &body {
                    builder = builder.json(body);
                } else if method == "put" {
                    builder = builder.body("ann-file");
                }
                builder
            };
            let on_bob = p.ann.send(call(&present)).await;
            let on_nothing = p.ann.send(call(&absent)).await;
            assert_eq!(
                (on_bob.status, &on_bob.body["error"]["code"]),
                (on_nothing.status, &on_nothing.body["error"]["code"]),
                "{method} {template}: Bob's answers differently from a missing one: {}",
                on_bob.text
            );
            assert!(on_bob.status >= 400, "{method} {template}: {}", on_bob.text);
            for secret in ["bob-secret", "bob-file"] {
                assert!(
                    !on_bob.text.contains(secret),
                    "{method} {template}: {}",
                    on_bob.text
                );
            }
            walked += 1;
        }
    }
    assert!(walked >= 8, "walked only {walked} operations");
    assert_eq!(p.bob.items(&bob_session).await, before);
    assert_eq!(app.fake.request_count(), requests, "no run started for Ann");

    // Listing: Ann sees hers and the tenant's, never Bob's.
    let ann_session = p.ann.session("helper").await;
    let tenant_session = app.member().session("helper").await;
    let listed = p.ann.get("/v1/sessions").await;
    let ids: Vec<&str> = listed.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&ann_session.as_str()) && ids.contains(&tenant_session.as_str()));
    assert!(!ids.contains(&bob_session.as_str()), "{ids:?}");
    p.ann
        .get("/v1/sessions?user=bob")
        .await
        .err(403, "user_not_allowed");
    // Keys that may act for Bob reach his session.
    for client in [&p.service, &app.admin()] {
        client
            .get(&format!("/v1/sessions/{bob_session}/items"))
            .await
            .ok(200);
        client.get(&format!("/v1/runs/{bob_run}")).await.ok(200);
    }
    p.ann_service
        .get(&format!("/v1/sessions/{bob_session}"))
        .await
        .err(404, "not_found");
    let bobs = p.service.get("/v1/sessions?user=bob").await;
    assert_eq!(bobs.ok(200)["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn users_memories_are_reached_only_for_their_user() {
    let app = TestApp::start().await;
    let p = people(&app).await;
    let fact = |client: &Client, namespace: &str| {
        let client = client.clone();
        let namespace = namespace.to_owned();
        async move {
            client
                .post(
                    "/v1/memories",
                    json!({"namespace": namespace, "content": format!("secret of {namespace}")}),
                )
                .await
        }
    };
    let bobs = fact(&p.bob, "users/bob/prefs").await.ok(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fact(&p.ann, "users/ann").await.ok(201);
    fact(&p.ann, "shared").await.ok(201);
    fact(&p.ann, "users/bob").await.err(403, "user_not_allowed");
    fact(&p.ann_service, "users/bob")
        .await
        .err(403, "user_not_allowed");

    // Bob's record does not exist for Ann: not shown, changed or deleted.
    let path = format!("/v1/memories/{bobs}");
    p.ann.get(&path).await.err(404, "not_found");
    p.ann
        .patch(&path, json!({"content": "overwritten"}))
        .await
        .err(404, "not_found");
    p.ann.delete(&path).await.err(404, "not_found");
    let listed = p.ann.get("/v1/memories").await;
    let namespaces: Vec<&str> = listed.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces.len(), 2, "{namespaces:?}");
    assert!(!namespaces.contains(&"users/bob/prefs"));
    p.ann
        .get("/v1/memories?namespace=users/bob/prefs")
        .await
        .err(403, "user_not_allowed");
    p.ann
        .post(
            "/v1/memories/search",
            json!({"query": "secret", "namespaces": ["shared", "users/bob/prefs"]}),
        )
        .await
        .err(403, "user_not_allowed");
    let found = p
        .ann
        .post(
            "/v1/memories/search",
            json!({"query": "secret", "namespaces": ["users/ann"]}),
        )
        .await;
    assert!(!found.ok(200).to_string().contains("users/bob"));
    // Bob's record is as he left it; keys acting for him reach it.
    let shown = p.bob.get(&path).await;
    assert_eq!(shown.ok(200)["content"], "secret of users/bob/prefs");
    p.service.get(&path).await.ok(200);
    assert_eq!(
        app.admin().get("/v1/memories").await.ok(200)["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// The blocks of `helper` as `client` lists them: (label, owner, value).
async fn listed(client: &Client, query: &str) -> Vec<(String, String, String)> {
    let listed = client
        .get(&format!("/v1/agents/helper/blocks{query}"))
        .await;
    listed.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["label"].as_str().unwrap().to_owned(),
                b["owner"].as_str().unwrap().to_owned(),
                b["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row(label: &str, owner: &str, value: &str) -> (String, String, String) {
    (label.into(), owner.into(), value.into())
}

#[tokio::test]
async fn people_read_and_edit_their_own_copies_of_user_blocks() {
    let app = TestApp::start().await;
    let p = people(&app).await;
    app.admin()
        .create_agent(json!({
            "name": "helper", "model": "openai/test-model",
            "memory_blocks": [
                {"label": "persona", "value": "I help the team."},
                {"label": "human", "value": "Name: ?", "scope": "user", "limit": 100},
            ],
        }))
        .await;
    let human = "/v1/agents/helper/blocks/human";
    let set = p.ann.patch(human, json!({"value": "Name: Ann"})).await;
    let set = set.ok(200);
    assert_eq!(
        (set["owner"].as_str(), set["version"].as_i64()),
        (Some("user:ann"), Some(1))
    );
    assert_eq!(set["scope"], "user");
    assert_eq!(
        listed(&p.ann, "").await,
        [
            row("human", "agent", "Name: ?"),
            row("human", "user:ann", "Name: Ann"),
            row("persona", "agent", "I help the team."),
        ]
    );
    // Bob sees the template, never Ann's copy; his own is not made yet.
    assert_eq!(
        listed(&p.bob, "").await,
        [
            row("human", "agent", "Name: ?"),
            row("persona", "agent", "I help the team.")
        ]
    );
    let bobs = p.bob.get(human).await;
    assert_eq!(
        (
            bobs.ok(200)["value"].as_str(),
            bobs.body["version"].as_i64(),
            bobs.body["owner"].as_str()
        ),
        (Some("Name: ?"), Some(0), Some("user:bob"))
    );
    for resp in [
        p.bob.get(&format!("{human}?owner=user:ann")).await,
        p.bob
            .patch(&format!("{human}?owner=user:ann"), json!({"value": "x"}))
            .await,
        p.ann_service
            .get("/v1/agents/helper/blocks?owner=user:bob")
            .await,
    ] {
        resp.err(403, "user_not_allowed");
    }
    // A service key acting for Ann reads and edits her copy.
    let via = p.ann_service.get(&format!("{human}?owner=user:ann")).await;
    assert_eq!(via.ok(200)["value"], "Name: Ann");
    let edited = p
        .ann_service
        .patch(
            &format!("{human}?owner=user:ann"),
            json!({"value": "Name: Ann\nTeam: data", "expected_version": 1}),
        )
        .await;
    assert_eq!(edited.ok(200)["version"], 2);
    let detail = p.ann.get(human).await;
    let history: Vec<(i64, String)> = detail.ok(200)["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["principal"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(history.len(), 2);
    assert!(
        history.iter().all(|(_, who)| who.starts_with("key:key_")),
        "{history:?}"
    );
    assert_ne!(history[0].1, history[1].1, "each version names its editor");

    // Refusals change nothing.
    p.ann
        .patch(human, json!({"value": "stale", "expected_version": 1}))
        .await
        .err(409, "conflict");
    p.ann
        .patch(human, json!({"value": "x".repeat(101)}))
        .await
        .err(400, "invalid_request");
    p.ann
        .patch(human, json!({}))
        .await
        .err(400, "invalid_request");
    p.ann
        .patch(human, json!({"limit": 0}))
        .await
        .err(400, "invalid_request");
    p.ann
        .patch("/v1/agents/helper/blocks/nope", json!({"value": "x"}))
        .await
        .err(404, "not_found");
    p.ann
        .get("/v1/agents/helper/blocks?owner=group:x")
        .await
        .err(400, "invalid_request");
    // A shared block has no copy of Ann's to edit: not taken as the shared one.
    let shared = p
        .ann
        .patch(
            "/v1/agents/helper/blocks/persona?owner=user:ann",
            json!({"value": "x"}),
        )
        .await;
    shared.err(400, "invalid_request");
    assert!(shared.text.contains("scope agent"), "{}", shared.text);
    assert_eq!(
        p.ann.get(human).await.ok(200)["value"],
        "Name: Ann\nTeam: data"
    );

    // The agent's own rows need agents:write; a copy needs memories:write.
    let scoped = key(
        &app,
        json!({"name": "ann-phone", "user": "ann", "scopes": ["agents:read", "memories:write"]}),
    )
    .await;
    scoped
        .patch("/v1/agents/helper/blocks/persona", json!({"value": "x"}))
        .await
        .err(403, "insufficient_scope");
    scoped
        .patch(&format!("{human}?owner=agent"), json!({"value": "x"}))
        .await
        .err(403, "insufficient_scope");
    scoped.patch(human, json!({"limit": 60})).await.ok(200);
    let config_only = key(
        &app,
        json!({"name": "ann-ci", "user": "ann", "scopes": ["agents:write"]}),
    )
    .await;
    config_only
        .patch(human, json!({"value": "x"}))
        .await
        .err(403, "insufficient_scope");
    let persona = config_only
        .patch(
            "/v1/agents/helper/blocks/persona",
            json!({"value": "I help Ann's team."}),
        )
        .await;
    assert_eq!(persona.ok(200)["version"], 2);

    // Every edit by a person is audited with its actor; no value is logged.
    let audit = app.admin().get("/v1/audit?action=block.set").await;
    let events = audit.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(events
        .iter()
        .all(|e| e["actor"].as_str().unwrap().starts_with("key:key_")));
    assert!(!audit.text.contains("Team: data"), "{}", audit.text);
    assert!(events
        .iter()
        .any(|e| e["resource"] == "agent:helper/block:persona" && e["detail"]["owner"] == "agent"));
}

#[tokio::test]
async fn each_users_context_pins_their_own_human_block() {
    let app = TestApp::start().await;
    let p = people(&app).await;
    app.admin()
        .create_agent(json!({
            "name": "helper", "model": "openai/test-model",
            "tools": ["memory_append"],
            "memory_blocks": [{"label": "human", "value": "", "scope": "user"}],
        }))
        .await;
    for (client, name) in [(&p.ann, "Ann"), (&p.bob, "Bob")] {
        let session = client.session("helper").await;
        app.fake.push(Reply::tool_call(
            "c1",
            "memory_append",
            &json!({"label": "human", "content": format!("Name: {name}")}).to_string(),
        ));
        app.fake.push(Reply::text("Noted."));
        client.say(&session, &format!("I am {name}")).await;
        app.fake.push(Reply::text("Hi."));
        client.say(&session, "Who am I?").await;
        let system = app.fake.last_request().unwrap().body["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(system.contains(&format!("Name: {name}")), "{system}");
        let other = if name == "Ann" { "Bob" } else { "Ann" };
        assert!(!system.contains(other), "{system}");
    }
}

#[tokio::test]
async fn adding_and_removing_blocks_makes_audited_versions() {
    let app = TestApp::start().await;
    let admin = app.admin();
    admin
        .create_agent(json!({
            "name": "helper", "model": "openai/test-model",
            "memory_blocks": [{"label": "persona", "value": "Terse."}],
        }))
        .await;
    let added = admin
        .post(
            "/v1/agents/helper/blocks",
            json!({"label": "human", "value": "Name: ?", "scope": "user"}),
        )
        .await;
    assert_eq!(added.ok(201)["version"], 2);
    assert_eq!(
        added.body["config"]["memory_blocks"],
        json!([{"label": "persona", "scope": "agent"}, {"label": "human", "scope": "user"}])
    );
    admin
        .post(
            "/v1/agents/helper/blocks",
            json!({"label": "human", "value": ""}),
        )
        .await
        .err(409, "conflict");
    admin
        .post(
            "/v1/agents/helper/blocks",
            json!({"label": "bad label", "value": ""}),
        )
        .await
        .err(400, "invalid_request");
    for bad in [
        json!({"label": "x", "value": "", "scope": "everyone"}),
        json!({"label": "x", "value": "", "scpoe": "user"}),
    ] {
        admin
            .post("/v1/agents/helper/blocks", bad)
            .await
            .err(400, "invalid_request");
    }
    // Naming one copy when removing the block for everyone is refused.
    let refused = admin
        .delete("/v1/agents/helper/blocks/persona?owner=user:ann")
        .await;
    refused.err(400, "invalid_request");
    assert!(refused.text.contains("PATCH"), "{}", refused.text);
    let removed = admin.delete("/v1/agents/helper/blocks/persona").await;
    assert_eq!(removed.ok(200)["version"], 3, "the refusal made no version");
    admin
        .delete("/v1/agents/helper/blocks/persona")
        .await
        .err(404, "not_found");
    // One update may change the configuration and the blocks together.
    let updated = admin
        .patch(
            "/v1/agents/helper",
            json!({"instructions": "Be kind.", "add_memory_blocks": [{"label": "persona", "value": "Warm."}],
                   "remove_memory_blocks": ["human"]}),
        )
        .await;
    assert_eq!(updated.ok(200)["version"], 4);
    assert_eq!(updated.body["config"]["instructions"], "Be kind.");
    assert_eq!(
        updated.body["config"]["memory_blocks"],
        json!([{"label": "persona", "scope": "agent"}])
    );
    admin
        .patch(
            "/v1/agents/helper",
            json!({"remove_memory_blocks": ["nope"]}),
        )
        .await
        .err(404, "not_found");
    let memory = admin.get("/v1/agents/helper/memory").await;
    assert_eq!(memory.ok(200)["blocks"][0]["value"], "Warm.");
    assert_eq!(memory.body["blocks"].as_array().unwrap().len(), 1);
    let versions: Vec<&str> = memory.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["operation"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["create", "add"]);

    let audit = admin.get("/v1/audit?action=block").await;
    let actions: Vec<(String, String)> = audit.ok(200)["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["resource"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let pair = |a: &str, r: &str| (a.to_owned(), r.to_owned());
    assert_eq!(
        actions,
        [
            pair("block.add", "agent:helper/block:human"),
            pair("block.remove", "agent:helper/block:persona"),
            pair("block.remove", "agent:helper/block:human"),
            pair("block.add", "agent:helper/block:persona"),
        ]
    );
    let updates = admin.get("/v1/audit?action=agent.update").await;
    assert_eq!(updates.ok(200)["data"].as_array().unwrap().len(), 3);
}
