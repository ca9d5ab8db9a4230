//! Long-term memory in runs: `memory_write` lands with its result, a fact is
//! not stored twice, `memory_search` finds it, and a later session of the
//! agent has it recalled into its context without asking.

use crate::common;

use common::model::{call, calls, request_results, text, ScriptedModel};
use common::*;
use roster_core::run::RunStatus;
use roster_store::{DynStore, MemoryQuery};
use serde_json::json;

on_both_backends!(
    a_fact_written_in_one_session_is_recalled_in_the_next,
    bad_memory_calls_are_told_to_the_model,
    a_users_memories_follow_them_and_no_one_else,
    what_a_user_tells_a_shared_agent_stays_with_that_user,
);

const TOOLS: [&str; 2] = ["memory_write", "memory_search"];

fn write(id: &str, content: &str) -> roster_core::item::ToolCall {
    call(
        id,
        "memory_write",
        &json!({ "content": content }).to_string(),
    )
}

/// The result the model was told for call `id`.
fn result(request: &roster_models::ChatRequest, id: &str) -> (String, String, bool) {
    request_results(request)
        .into_iter()
        .find(|(call, _, _)| call == id)
        .unwrap_or_else(|| panic!("no result for {id}"))
}

async fn records(store: &DynStore, fx: &Fixture) -> Vec<roster_core::record::MemoryRecord> {
    store
        .list_memories(
            &fx.tenant,
            &MemoryQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("list")
}

async fn a_fact_written_in_one_session_is_recalled_in_the_next(db: Db) {
    let store = db.open().await;
    let dir = tempfile::tempdir().expect("dir");
    let model = ScriptedModel::new(vec![
        calls(vec![write("w1", "Ada prefers green tea over coffee")]),
        text("Noted."),
        // Said again in other words of the same fact: not stored twice.
        calls(vec![write("w2", "ada prefers green tea over coffee.")]),
        text("I know."),
    ]);
    let fx = Fixture::new(&store, config(&TOOLS)).await;
    let (rt, memory) = runtime_with_memory(store.clone(), model.clone(), dir.path()).await;

    let run = submit(&rt, &fx, "I prefer green tea to coffee").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let told = result(&model.request(1), "w1");
    assert!(
        told.1.starts_with("remembered as mem_") && !told.2,
        "{told:?}"
    );
    let stored = records(&store, &fx).await;
    assert_eq!(stored.len(), 1);
    let record = &stored[0];
    assert_eq!(record.namespace, "agents/helper");
    assert_eq!(record.content, "Ada prefers green tea over coffee");
    let source = record.source.clone().expect("provenance");
    assert_eq!(source.session_id.as_ref(), Some(&fx.session));
    assert_eq!(source.run_id.as_ref(), Some(&run.id));
    let history = store
        .memory_history(&fx.tenant, &record.id)
        .await
        .expect("history");
    assert_eq!(history[0].principal, format!("agent:{}", fx.agent.id));

    let run = submit(&rt, &fx, "Remember: green tea, not coffee").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let told = result(&model.request(3), "w2");
    assert_eq!(told.1, format!("already remembered as {}", record.id));
    assert_eq!(records(&store, &fx).await.len(), 1);

    // A new session: the fact is recalled into the system prompt unasked,
    // and memory_search finds it by id.
    let session = fx.new_session(&store).await;
    model.push(calls(vec![call(
        "s1",
        "memory_search",
        r#"{"query": "tea or coffee"}"#,
    )]));
    model.push(text("You prefer green tea."));
    let run = submit_to(&rt, &fx, &session, "Do I prefer tea or coffee?").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let first = model.request(4);
    assert!(
        first.system.contains("<recalled_memories>")
            && first.system.contains("Ada prefers green tea over coffee"),
        "{}",
        first.system
    );
    let told = result(&model.request(5), "s1");
    assert!(told.1.contains(record.id.as_str()), "{told:?}");
    let steps = store.list_steps(&fx.tenant, &run.id).await.expect("steps");
    assert_eq!(steps[0].input["recalled"], json!([record.id.as_str()]));
    memory.shutdown().await;
}

async fn bad_memory_calls_are_told_to_the_model(db: Db) {
    let store = db.open().await;
    let dir = tempfile::tempdir().expect("dir");
    let model = ScriptedModel::new(vec![
        calls(vec![
            call(
                "ns",
                "memory_write",
                r#"{"content": "x", "namespace": "users/zed"}"#,
            ),
            call("empty", "memory_write", r#"{"content": "   "}"#),
            call("args", "memory_write", r#"{"text": "x"}"#),
            call(
                "search_ns",
                "memory_search",
                r#"{"query": "x", "namespace": "agents/other"}"#,
            ),
            call("search_empty", "memory_search", r#"{"query": ""}"#),
        ]),
        text("ok"),
    ]);
    let fx = Fixture::new(&store, config(&TOOLS)).await;
    let (rt, memory) = runtime_with_memory(store.clone(), model.clone(), dir.path()).await;
    let run = submit(&rt, &fx, "try things").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let request = model.request(1);
    assert_eq!(request_results(&request).len(), 5);
    for (id, expected) in [
        ("ns", "not one of yours"),
        ("empty", "must not be empty"),
        ("args", "invalid arguments"),
        ("search_ns", "not one of yours"),
        ("search_empty", "must not be empty"),
    ] {
        let (_, output, is_error) = result(&request, id);
        assert!(is_error && output.contains(expected), "{id}: {output}");
    }
    assert!(records(&store, &fx).await.is_empty());
    memory.shutdown().await;
    // Stopped, so its worker (whose model has no answers left) cannot take
    // the next run from the shared store.
    rt.shutdown().await;

    // Without long-term memory on the server, the tools say so.
    let model = ScriptedModel::new(vec![calls(vec![write("w", "something")]), text("ok")]);
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let run = submit(&rt, &fx, "remember").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let told = result(&model.request(1), "w");
    assert!(told.1.contains("not available") && told.2, "{told:?}");
}

async fn a_users_memories_follow_them_and_no_one_else(db: Db) {
    let store = db.open().await;
    let dir = tempfile::tempdir().expect("dir");
    let model = ScriptedModel::new(vec![
        calls(vec![write("w1", "Prefers answers in French")]),
        text("D'accord."),
    ]);
    let mut config = config(&TOOLS);
    config.memory.namespace = "users/{user}".into();
    // A literal user namespace reaches only that user's own sessions.
    config.memory.search = vec!["users/{user}".into(), "users/ada/notes".into()];
    let fx = Fixture::new(&store, config).await;
    let (rt, memory) = runtime_with_memory(store.clone(), model.clone(), dir.path()).await;
    let for_user = |user: &'static str| {
        let store = store.clone();
        let (tenant, agent) = (fx.tenant.clone(), fx.agent.clone());
        async move {
            store
                .create_session_for(&tenant, &agent.id, agent.version, Some(user))
                .await
                .expect("session")
                .id
        }
    };
    let ada = for_user("ada").await;
    let run = submit_to(&rt, &fx, &ada, "I prefer answers in French").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let stored = records(&store, &fx).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].namespace, "users/ada");

    // Bob's session recalls nothing of Ada's; Ada's next session does.
    model.push(text("Hello Bob."));
    let bob = for_user("bob").await;
    let run = submit_to(&rt, &fx, &bob, "Which language do I prefer for answers?").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert!(!model.request(2).system.contains("French"));
    model.push(text("En français."));
    let ada_again = for_user("ada").await;
    let run = submit_to(
        &rt,
        &fx,
        &ada_again,
        "Which language do I prefer for answers?",
    )
    .await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert!(model
        .request(3)
        .system
        .contains("Prefers answers in French"));

    // A session without a user has no `users/{user}` namespace to write to.
    model.push(calls(vec![write("w2", "Something")]));
    model.push(text("ok"));
    let run = submit(&rt, &fx, "remember something").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let told = result(&model.request(5), "w2");
    assert!(told.2 && told.1.contains("needs a user"), "{told:?}");

    // Bob's agent cannot reach Ada's namespaces by naming them, not even
    // the one its configuration lists literally.
    model.push(calls(vec![
        call(
            "s1",
            "memory_search",
            r#"{"query": "French", "namespace": "users/ada"}"#,
        ),
        call(
            "s2",
            "memory_search",
            r#"{"query": "French", "namespace": "users/ada/notes"}"#,
        ),
        call(
            "w3",
            "memory_write",
            r#"{"content": "Ada is away", "namespace": "users/ada"}"#,
        ),
    ]));
    model.push(text("I cannot see that."));
    let bob_again = for_user("bob").await;
    let run = submit_to(&rt, &fx, &bob_again, "What does Ada prefer?").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    for id in ["s1", "s2", "w3"] {
        let told = result(&model.request(7), id);
        assert!(told.2 && told.1.contains("not one of yours"), "{told:?}");
    }
    assert!(!model.request(6).system.contains("French"));
    assert_eq!(
        records(&store, &fx).await.len(),
        1,
        "nothing written for Bob"
    );
    memory.shutdown().await;
}

async fn what_a_user_tells_a_shared_agent_stays_with_that_user(db: Db) {
    let store = db.open().await;
    let dir = tempfile::tempdir().expect("dir");
    // The agent's namespace is its own (`agents/{agent}`), read by all.
    let fx = Fixture::new(&store, config(&TOOLS)).await;
    let shared = format!("agents/{}", fx.agent.name);
    let model = ScriptedModel::new(vec![
        calls(vec![
            write("w1", "My salary is 90k"),
            // Naming the shared namespace does not reach it either.
            call(
                "w2",
                "memory_write",
                &json!({"content": "My badge number is 4411", "namespace": shared}).to_string(),
            ),
        ]),
        text("Noted."),
    ]);
    let (rt, memory) = runtime_with_memory(store.clone(), model.clone(), dir.path()).await;
    let session_of = |user: Option<&'static str>| {
        let store = store.clone();
        let (tenant, agent) = (fx.tenant.clone(), fx.agent.clone());
        async move {
            store
                .create_session_for(&tenant, &agent.id, agent.version, user)
                .await
                .expect("session")
                .id
        }
    };
    let ada = session_of(Some("ada")).await;
    let run = submit_to(&rt, &fx, &ada, "My salary is 90k").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let stored = records(&store, &fx).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    for record in &stored {
        assert_eq!(record.namespace, format!("users/ada/{shared}"));
    }
    for id in ["w1", "w2"] {
        let told = result(&model.request(1), id);
        assert!(
            !told.2 && told.1.contains(&format!("users/ada/{shared}")),
            "{told:?}"
        );
    }

    // A session without a user (the operator's) writes what all share.

    model.push(calls(vec![write("w3", "The office closes at 6pm")]));
    model.push(text("Noted for everyone."));
    let team = session_of(None).await;
    let run = submit_to(&rt, &fx, &team, "Remember: the office closes at 6pm").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert!(records(&store, &fx)
        .await
        .iter()
        .any(|r| r.namespace == shared && r.content.contains("6pm")));

    // Bob recalls what everyone shares and nothing Ada said; Ada both.
    let recalled_for = |user: &'static str, nth: usize| {
        let model = model.clone();
        let (rt, fx) = (&rt, &fx);
        let session_of = &session_of;
        async move {
            model.push(text("Hello."));
            let session = session_of(Some(user)).await;
            let asked = "What is my salary and when does the office close?";
            let run = submit_to(rt, fx, &session, asked).await;
            finished(rt, fx, &run.id, RunStatus::Completed).await;
            model.request(nth).system
        }
    };
    let bob_saw = recalled_for("bob", 4).await;
    assert!(
        !bob_saw.contains("90k") && bob_saw.contains("6pm"),
        "{bob_saw}"
    );
    let ada_saw = recalled_for("ada", 5).await;
    assert!(
        ada_saw.contains("90k") && ada_saw.contains("6pm"),
        "{ada_saw}"
    );

    // An agent whose users are one team may share what they say.
    let mut sharing = fx.agent.config.clone();
    sharing.memory.share_user_memories = true;
    let agent = store
        .update_agent(&fx.tenant, &fx.agent.id, sharing, "test")
        .await
        .expect("update");
    model.push(calls(vec![write("w4", "The team standup is at 9")]));
    model.push(text("Noted."));
    let carol = store
        .create_session_for(&fx.tenant, &agent.id, agent.version, Some("carol"))
        .await
        .expect("session")
        .id;
    let run = submit_to(&rt, &fx, &carol, "Standup is at 9").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert!(records(&store, &fx)
        .await
        .iter()
        .any(|r| r.namespace == shared && r.content.contains("standup")));
    memory.shutdown().await;
}
