//! Memory blocks with a scope, through the real OpenAI wire protocol: two
//! users of one shared agent each get their own copy of a `user` block
//! (`human`), pinned into their own contexts only and edited by the
//! agent's tools in place; a `session` block is one copy per session; a
//! session without a user keeps its own copy of a `user` block.

use crate::common;

use common::*;
use roster_core::blocks::{BlockOwner, BlockScope};
use roster_core::memory::MemoryBlockSpec;
use roster_core::run::RunStatus;
use roster_core::SessionId;
use roster_testkit::{FakeModelServer, Reply};

on_both_backends!(
    two_users_each_see_only_their_own_human_block,
    session_blocks_and_sessions_without_a_user,
);

const TOOLS: [&str; 2] = ["memory_append", "memory_replace"];

fn spec(label: &str, value: &str, scope: BlockScope) -> MemoryBlockSpec {
    MemoryBlockSpec {
        label: label.into(),
        value: value.into(),
        limit: Some(500),
        scope,
    }
}

/// The system prompt of the fake server's request number `n` (0-based).
fn system(server: &FakeModelServer, n: usize) -> String {
    let requests = server.requests();
    let request = requests.get(n).unwrap_or_else(|| panic!("no request {n}"));
    request.body["messages"][0]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no system message: {}", request.body))
        .to_owned()
}

async fn session_for(
    store: &roster_store::DynStore,
    fx: &Fixture,
    user: Option<&str>,
) -> SessionId {
    store
        .create_session_for(&fx.tenant, &fx.agent.id, fx.agent.version, user)
        .await
        .expect("session")
        .id
}

/// The fake model server, and a runtime talking to it for an agent with
/// `blocks`.
async fn setup(
    db: &Db,
    blocks: Vec<MemoryBlockSpec>,
) -> (
    FakeModelServer,
    roster_store::DynStore,
    Fixture,
    roster_runtime::Runtime,
) {
    let server = FakeModelServer::start().await;
    let store = db.open().await;
    let fx = Fixture::with_blocks(&store, config(&TOOLS), blocks).await;
    let rt = runtime(store.clone(), openai(&server), vec![]);
    (server, store, fx, rt)
}

async fn two_users_each_see_only_their_own_human_block(db: Db) {
    let blocks = vec![
        spec("persona", "I am the team's assistant.", BlockScope::Agent),
        spec("human", "Name: unknown", BlockScope::User),
    ];
    let (server, store, fx, rt) = setup(&db, blocks).await;
    let ada = session_for(&store, &fx, Some("ada")).await;
    let bob = session_for(&store, &fx, Some("bob")).await;

    // Each user tells the agent their name; the agent writes it down.
    for (session, name) in [(&ada, "Ada"), (&bob, "Bob")] {
        server.push_all([
            Reply::tool_call(
                "c1",
                "memory_replace",
                &serde_json::json!({"label": "human", "old": "unknown", "new": name}).to_string(),
            ),
            Reply::text("Noted."),
        ]);
        let run = submit_to(&rt, &fx, session, &format!("I am {name}.")).await;
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
    // Both edits started from the template, so both landed.
    let told: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| {
            r.body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .cloned()
        })
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        told,
        [
            "block `human` updated (version 1)",
            "block `human` updated (version 1)"
        ]
    );

    // Next turns: each context pins its own user's copy, never the other's.
    for (session, own, other) in [(&ada, "Name: Ada", "Bob"), (&bob, "Name: Bob", "Ada")] {
        let before = server.request_count();
        server.push(Reply::text("Hello again."));
        let run = submit_to(&rt, &fx, session, "Who am I?").await;
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
        let prompt = system(&server, before);
        assert!(
            prompt.contains(&format!("<human chars=\"9/500\">\n{own}\n</human>")),
            "{prompt}"
        );
        assert!(!prompt.contains(other), "{prompt}");
        assert!(prompt.contains("I am the team's assistant."), "{prompt}");
    }
    // A third user starts from the template.
    let carol = session_for(&store, &fx, Some("carol")).await;
    let before = server.request_count();
    server.push(Reply::text("Hi."));
    let run = submit_to(&rt, &fx, &carol, "Hi").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let prompt = system(&server, before);
    assert!(prompt.contains("Name: unknown"), "{prompt}");
    assert!(
        !prompt.contains("Ada") && !prompt.contains("Bob"),
        "{prompt}"
    );

    // In the store: the template untouched, one row per user, each with its
    // own history recording the run that edited it.
    let rows = store
        .memory_blocks_of(
            &fx.tenant,
            &fx.agent.id,
            &[
                BlockOwner::Agent,
                BlockOwner::User("ada".into()),
                BlockOwner::User("bob".into()),
                BlockOwner::User("carol".into()),
            ],
        )
        .await
        .expect("rows");
    let humans: Vec<(String, &str)> = rows
        .iter()
        .filter(|b| b.label == "human")
        .map(|b| (b.owner.to_string(), b.value.as_str()))
        .collect();
    assert_eq!(
        humans,
        [
            ("agent".to_owned(), "Name: unknown"),
            ("user:ada".to_owned(), "Name: Ada"),
            ("user:bob".to_owned(), "Name: Bob"),
        ]
    );
    let history = store
        .block_history(
            &fx.tenant,
            &fx.agent.id,
            &BlockOwner::User("ada".into()),
            "human",
        )
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].operation, "replace");
    assert_eq!(history[0].principal, format!("agent:{}", fx.agent.id));
}

async fn session_blocks_and_sessions_without_a_user(db: Db) {
    let blocks = vec![
        spec("human", "", BlockScope::User),
        spec("scratch", "", BlockScope::Session),
    ];
    let (server, store, fx, rt) = setup(&db, blocks).await;
    let first = session_for(&store, &fx, Some("ada")).await;
    let second = session_for(&store, &fx, Some("ada")).await;
    let anonymous = session_for(&store, &fx, None).await;
    let append = |label: &str, content: &str| {
        Reply::tool_call(
            "c1",
            "memory_append",
            &serde_json::json!({"label": label, "content": content}).to_string(),
        )
    };
    server.push_all([
        append("scratch", "step one of the plan").and_tool_call(
            "c2",
            "memory_append",
            r#"{"label": "human", "content": "Likes tea"}"#,
        ),
        Reply::text("ok"),
    ]);
    let run = submit_to(&rt, &fx, &first, "plan").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;

    // Ada's other session: her `human` copy, but a fresh `scratch`.
    let before = server.request_count();
    server.push(Reply::text("ok"));
    let run = submit_to(&rt, &fx, &second, "hello").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let prompt = system(&server, before);
    assert!(prompt.contains("Likes tea"), "{prompt}");
    assert!(!prompt.contains("step one"), "{prompt}");

    // Without a user, `human` is the session's own: nothing of Ada's, and
    // an edit stays in that session.
    server.push_all([append("human", "Visitor"), Reply::text("ok")]);
    let before = server.request_count();
    let run = submit_to(&rt, &fx, &anonymous, "hi").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let prompt = system(&server, before);
    assert!(
        !prompt.contains("Likes tea") && !prompt.contains("step one"),
        "{prompt}"
    );
    let rows = store
        .memory_blocks_of(
            &fx.tenant,
            &fx.agent.id,
            &[
                BlockOwner::User("ada".into()),
                BlockOwner::Session(first.clone()),
                BlockOwner::Session(second.clone()),
                BlockOwner::Session(anonymous.clone()),
            ],
        )
        .await
        .expect("rows");
    let mut found: Vec<(String, String, String)> = rows
        .iter()
        .map(|b| (b.label.clone(), b.owner.to_string(), b.value.clone()))
        .collect();
    found.sort();
    let mut expected = vec![
        (
            "human".to_owned(),
            "user:ada".to_owned(),
            "Likes tea".to_owned(),
        ),
        (
            "human".to_owned(),
            format!("session:{anonymous}"),
            "Visitor".to_owned(),
        ),
        (
            "scratch".to_owned(),
            format!("session:{first}"),
            "step one of the plan".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(found, expected);
}
