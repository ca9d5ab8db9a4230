//! Privacy between users, on both backends: memory block copies per user
//! and per session (separate rows, each with its own history, never seen
//! by another user or tenant), block changes as agent versions with their
//! audit rows, and the user filters of session and memory listings.

use crate::common;

use roster_core::agent::{AgentConfig, NewAgent};
use roster_core::blocks::{BlockOwner, BlockScope};
use roster_core::item::ItemContent;
use roster_core::memory::MemoryBlockSpec;
use roster_core::record::{MemoryRecord, Provenance};
use roster_core::run::StepKind;
use roster_core::{AgentId, MemoryId, SessionId, TenantId};
use roster_store::*;
use serde_json::json;

fn spec(label: &str, value: &str, scope: BlockScope) -> MemoryBlockSpec {
    MemoryBlockSpec {
        label: label.into(),
        value: value.into(),
        limit: Some(200),
        scope,
    }
}

fn config() -> AgentConfig {
    serde_json::from_value(json!({"instructions": "", "model": "openai/m"})).expect("config")
}

fn copy_write(agent: &AgentId, owner: BlockOwner, version: i64, value: &str) -> BlockWrite {
    BlockWrite {
        agent_id: agent.clone(),
        label: "human".into(),
        owner,
        expected_version: version,
        value: value.into(),
        limit: 200,
        operation: "append".into(),
        principal: "agent:helper".into(),
    }
}

/// A run's tool step that edits a block, as the runner commits it.
async fn tool_edit(
    store: &DynStore,
    tenant: &TenantId,
    session: &SessionId,
    write: BlockWrite,
) -> StoreResult<()> {
    let run = store
        .create_run(
            tenant,
            NewRun {
                turn: Default::default(),
                notify: Default::default(),
                parent: Default::default(),
                session_id: session.clone(),
                input: "hi".into(),
                idempotency_key: None,
                if_busy: BusyPolicy::Queue,
                actor: None,
            },
        )
        .await?
        .run()
        .clone();
    // An idle session's run is started by `create_run` itself.
    assert_eq!(run.status, roster_core::run::RunStatus::Running);
    let mut edit = JournalWrite::new(run.id.clone(), session.clone());
    edit.steps.push(StepWrite::Completed {
        n: 1,
        kind: StepKind::ToolCall,
        input: json!({}),
        output: json!({}),
    });
    edit.items = vec![ItemContent::ToolResult {
        call_id: "c1".into(),
        name: "memory_append".into(),
        output: "ok".into(),
        is_error: false,
    }];
    edit.block_write = Some(write);
    let result = store.commit(tenant, edit).await.map(|_| ());
    let mut finish = JournalWrite::new(run.id, session.clone());
    finish.transition = Some(RunTransition::Finish {
        status: roster_core::run::RunStatus::Completed,
        output: None,
        error: None,
    });
    store.commit(tenant, finish).await?;
    result
}

/// The blocks an agent version lists, with their scopes.
fn defs(agent: &roster_core::agent::Agent) -> Vec<(&str, BlockScope)> {
    agent
        .config
        .memory_blocks
        .iter()
        .map(|d| (d.label.as_str(), d.scope))
        .collect()
}

fn values(blocks: &[roster_core::memory::MemoryBlock]) -> Vec<(String, String, String, i64)> {
    blocks
        .iter()
        .map(|b| {
            (
                b.label.clone(),
                b.owner.to_string(),
                b.value.clone(),
                b.version,
            )
        })
        .collect()
}

async fn blocks(store: DynStore) {
    let a = TenantId::generate();
    let b = TenantId::generate();
    store.ensure_tenant(&a, "A").await.expect("tenant a");
    store.ensure_tenant(&b, "B").await.expect("tenant b");
    let agent = store
        .create_agent(
            &a,
            NewAgent {
                name: "helper".into(),
                config: config(),
                memory_blocks: vec![
                    spec("persona", "I am terse.", BlockScope::Agent),
                    spec("human", "Name: unknown", BlockScope::User),
                ],
            },
            "key:admin",
        )
        .await
        .expect("agent");
    // The version lists its blocks with their scopes.
    assert_eq!(
        defs(&agent),
        [("persona", BlockScope::Agent), ("human", BlockScope::User)]
    );

    let ada = store
        .create_session_for(&a, &agent.id, 1, Some("ada"))
        .await
        .expect("ada's session");
    let bob = store
        .create_session_for(&a, &agent.id, 1, Some("bob"))
        .await
        .expect("bob's session");
    let ada_copy = BlockOwner::User("ada".into());
    let bob_copy = BlockOwner::User("bob".into());
    tool_edit(
        &store,
        &a,
        &ada.id,
        copy_write(&agent.id, ada_copy.clone(), 0, "Name: Ada"),
    )
    .await
    .expect("ada's copy made");
    tool_edit(
        &store,
        &a,
        &bob.id,
        copy_write(&agent.id, bob_copy.clone(), 0, "Name: Bob"),
    )
    .await
    .expect("bob's copy made");
    // A second first-write of the same copy lost the race.
    let err = tool_edit(
        &store,
        &a,
        &ada.id,
        copy_write(&agent.id, ada_copy.clone(), 0, "Name: Eve"),
    )
    .await
    .expect_err("copy exists");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    tool_edit(
        &store,
        &a,
        &ada.id,
        copy_write(&agent.id, ada_copy.clone(), 1, "Name: Ada\nLikes tea"),
    )
    .await
    .expect("ada's second edit");

    // Separate rows: each user reads the agent's rows and its own copy.
    let seen = store
        .memory_blocks_of(&a, &agent.id, &[BlockOwner::Agent, ada_copy.clone()])
        .await
        .expect("ada's rows");
    assert_eq!(
        values(&seen),
        [
            ("human".into(), "agent".into(), "Name: unknown".into(), 1),
            (
                "human".into(),
                "user:ada".into(),
                "Name: Ada\nLikes tea".into(),
                2
            ),
            ("persona".into(), "agent".into(), "I am terse.".into(), 1),
        ]
    );
    let seen = store
        .memory_blocks_of(&a, &agent.id, std::slice::from_ref(&bob_copy))
        .await
        .expect("bob's rows");
    assert_eq!(
        values(&seen),
        [("human".into(), "user:bob".into(), "Name: Bob".into(), 1)]
    );
    // Four owners in one call (more than one statement's worth on SQLite).
    let session_copy = BlockOwner::Session(ada.id.clone());
    let all = store
        .memory_blocks_of(
            &a,
            &agent.id,
            &[
                BlockOwner::Agent,
                ada_copy.clone(),
                bob_copy.clone(),
                session_copy,
            ],
        )
        .await
        .expect("rows");
    assert_eq!(all.len(), 4);

    // The agent's own rows and history never include a copy.
    assert_eq!(
        values(&store.list_memory_blocks(&a, &agent.id).await.expect("own")),
        [
            ("human".into(), "agent".into(), "Name: unknown".into(), 1),
            ("persona".into(), "agent".into(), "I am terse.".into(), 1),
        ]
    );
    let agent_history = store
        .memory_block_history(&a, &agent.id)
        .await
        .expect("history");
    assert!(agent_history.iter().all(|v| v.operation == "create"));
    assert!(!agent_history.iter().any(|v| v.value.contains("Ada")));
    // Each copy has its own history.
    let history = store
        .block_history(&a, &agent.id, &ada_copy, "human")
        .await
        .expect("ada's history");
    assert_eq!(
        history
            .iter()
            .map(|v| (v.version, v.value.as_str()))
            .collect::<Vec<_>>(),
        [(1, "Name: Ada"), (2, "Name: Ada\nLikes tea")]
    );
    assert!(history.iter().all(|v| v.run_id.is_some()));

    // Tenant B sees none of it, and cannot plant a copy for A's agent.
    assert!(store
        .memory_blocks_of(&b, &agent.id, &[BlockOwner::Agent, ada_copy.clone()])
        .await
        .expect("b")
        .is_empty());
    assert!(store
        .block_history(&b, &agent.id, &ada_copy, "human")
        .await
        .expect("b")
        .is_empty());
    let err = store
        .set_memory_block(
            &b,
            copy_write(&agent.id, BlockOwner::User("carol".into()), 0, "planted"),
            audit("block.set"),
        )
        .await
        .expect_err("not b's agent");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(store
        .list_audit(
            &b,
            &AuditQuery {
                limit: 10,
                ..Default::default()
            }
        )
        .await
        .expect("audit b")
        .is_empty());

    // A person's edit lands with its audit event; a stale one changes nothing.
    let before = audit_count(&store, &a).await;
    let set = store
        .set_memory_block(
            &a,
            BlockWrite {
                operation: "set".into(),
                principal: "key:key_1".into(),
                limit: 500,
                ..copy_write(&agent.id, bob_copy.clone(), 1, "Name: Robert")
            },
            audit("block.set"),
        )
        .await
        .expect("set");
    assert_eq!(
        (set.version, set.limit, set.value.as_str()),
        (2, 500, "Name: Robert")
    );
    assert_eq!(audit_count(&store, &a).await, before + 1);
    let err = store
        .set_memory_block(
            &a,
            copy_write(&agent.id, bob_copy.clone(), 1, "stale"),
            audit("block.set"),
        )
        .await
        .expect_err("stale");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        audit_count(&store, &a).await,
        before + 1,
        "no audit for a refused edit"
    );
    let bob_history = store
        .block_history(&a, &agent.id, &bob_copy, "human")
        .await
        .expect("bob's history");
    assert_eq!(
        bob_history.last().map(|v| v.principal.as_str()),
        Some("key:key_1")
    );

    block_changes(&store, &a, &b, &agent.id).await;
}

fn audit(action: &str) -> NewAuditEvent {
    NewAuditEvent {
        actor: "key:key_1".into(),
        action: action.into(),
        resource: "agent:helper/block:human".into(),
        decision: None,
        detail: json!({}),
    }
}

async fn audit_count(store: &DynStore, tenant: &TenantId) -> usize {
    store
        .list_audit(
            tenant,
            &AuditQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await
        .expect("audit")
        .len()
}

/// A change of blocks alone (the version's configuration otherwise kept).
fn blocks_change(add: Vec<MemoryBlockSpec>, remove: &[&str]) -> BlockChange {
    BlockChange {
        add,
        remove: remove.iter().map(|l| (*l).to_owned()).collect(),
        config: None,
    }
}

/// Adding and removing blocks stores new agent versions, keeps values and
/// history, and audits each change with its actor.
async fn block_changes(store: &DynStore, a: &TenantId, b: &TenantId, agent: &AgentId) {
    let err = store
        .change_agent_blocks(b, agent, blocks_change(vec![], &["persona"]), "key:b")
        .await
        .expect_err("another tenant's agent");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    let v2 = store
        .change_agent_blocks(
            a,
            agent,
            blocks_change(vec![spec("scratch", "", BlockScope::Session)], &["persona"]),
            "key:ann",
        )
        .await
        .expect("change");
    assert_eq!(v2.version, 2);
    let labels: Vec<&str> = v2
        .config
        .memory_blocks
        .iter()
        .map(|d| d.label.as_str())
        .collect();
    assert_eq!(labels, ["human", "scratch"]);
    // Version 1 still lists what it had; the removed block's row stays.
    let v1 = store
        .get_agent_version(a, agent, 1)
        .await
        .expect("v1")
        .expect("some");
    assert!(v1.config.block("persona").is_some());
    assert!(store
        .list_memory_blocks(a, agent)
        .await
        .expect("rows")
        .iter()
        .any(|r| r.label == "persona"));
    let events = store
        .list_audit(
            a,
            &AuditQuery {
                limit: 100,
                actor: Some("key:ann".into()),
                ..Default::default()
            },
        )
        .await
        .expect("audit");
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.resource.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("agent.update", "agent:helper"),
            ("block.remove", "agent:helper/block:persona"),
            ("block.add", "agent:helper/block:scratch"),
        ]
    );

    // Adding a label the version has, or removing one it lacks, is refused
    // and stores nothing.
    let err = store
        .change_agent_blocks(
            a,
            agent,
            blocks_change(vec![spec("human", "x", BlockScope::Agent)], &[]),
            "key:ann",
        )
        .await
        .expect_err("exists");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = store
        .change_agent_blocks(a, agent, blocks_change(vec![], &["persona"]), "key:ann")
        .await
        .expect_err("gone");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    // Added back with a new value: a new version of the same row.
    let v3 = store
        .change_agent_blocks(
            a,
            agent,
            BlockChange {
                config: Some(AgentConfig {
                    instructions: "New instructions".into(),
                    ..v2.config.clone()
                }),
                add: vec![spec("persona", "I am chatty.", BlockScope::Agent)],
                ..Default::default()
            },
            "key:ann",
        )
        .await
        .expect("re-add");
    assert_eq!(v3.version, 3);
    assert_eq!(v3.config.instructions, "New instructions");
    let persona: Vec<(i64, String)> = store
        .memory_block_history(a, agent)
        .await
        .expect("history")
        .into_iter()
        .filter(|v| v.label == "persona")
        .map(|v| (v.version, v.operation))
        .collect();
    assert_eq!(persona, [(1, "create".to_owned()), (2, "add".to_owned())]);
}

fn record(namespace: &str) -> MemoryWrite {
    MemoryWrite {
        op: MemoryOp::Create {
            id: MemoryId::generate(),
            namespace: namespace.into(),
            kind: "fact".into(),
            key: None,
            content: format!("a fact in {namespace}"),
            metadata: json!({}),
            source: Some(Provenance::default()),
            expires_at: None,
            embedding: None,
        },
        principal: "key:admin".into(),
        run_id: None,
    }
}

/// Listings for a key that may act for only some users.
async fn listings(store: DynStore) {
    let t = TenantId::generate();
    store.ensure_tenant(&t, "T").await.expect("tenant");
    let agent = store
        .create_agent(
            &t,
            NewAgent {
                name: "helper".into(),
                config: config(),
                memory_blocks: vec![],
            },
            "key:admin",
        )
        .await
        .expect("agent");
    let mut made = vec![];
    for user in [Some("ada"), Some("bob"), None, Some("ada_x")] {
        made.push(
            store
                .create_session_for(&t, &agent.id, 1, user)
                .await
                .expect("session")
                .id,
        );
    }
    let listed = |query: SessionQuery| {
        let store = store.clone();
        let t = t.clone();
        async move {
            let mut users: Vec<Option<String>> = store
                .list_sessions(
                    &t,
                    &SessionQuery {
                        limit: 100,
                        ..query
                    },
                )
                .await
                .expect("list")
                .into_iter()
                .map(|s| s.user)
                .collect();
            users.sort();
            users
        }
    };
    let s = |u: &str| Some(u.to_owned());
    assert_eq!(
        listed(SessionQuery {
            visible_users: Some(vec!["ada".into()]),
            ..Default::default()
        })
        .await,
        [None, s("ada")]
    );
    assert_eq!(
        listed(SessionQuery {
            visible_users: Some(vec![]),
            ..Default::default()
        })
        .await,
        [None]
    );
    assert_eq!(
        listed(SessionQuery {
            user: s("bob"),
            ..Default::default()
        })
        .await,
        [s("bob")]
    );
    assert_eq!(listed(SessionQuery::default()).await.len(), 4);

    let writes = [
        "users/ada",
        "users/ada/prefs",
        "users/ada_x",
        "users/bob",
        "users",
        "agents/helper",
    ]
    .into_iter()
    .map(record)
    .collect();
    store.write_memories(&t, writes).await.expect("records");
    let namespaces = |visible: Option<Vec<String>>| {
        let store = store.clone();
        let t = t.clone();
        async move {
            let mut found: Vec<String> = store
                .list_memories(
                    &t,
                    &MemoryQuery {
                        limit: 100,
                        visible_users: visible,
                        ..Default::default()
                    },
                )
                .await
                .expect("list")
                .into_iter()
                .map(|r: MemoryRecord| r.namespace)
                .collect();
            found.sort();
            found
        }
    };
    assert_eq!(
        namespaces(Some(vec!["ada".into()])).await,
        ["agents/helper", "users", "users/ada", "users/ada/prefs"]
    );
    assert_eq!(namespaces(Some(vec![])).await, ["agents/helper", "users"]);
    assert_eq!(namespaces(None).await.len(), 6);
}

#[tokio::test]
async fn sqlite_keeps_users_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    blocks(common::sqlite(&dir).await).await;
    let dir = tempfile::tempdir().expect("tempdir");
    listings(common::sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres_keeps_users_apart() {
    let Some(store) = common::postgres().await else {
        return;
    };
    blocks(store).await;
    let Some(store) = common::postgres().await else {
        return;
    };
    listings(store).await;
}

/// An agent as stored before blocks had owners and versions listed them.
const OLD_CONFIG: &str = r#"{"instructions":"","model":"openai/m"}"#;

fn check_migrated(agent: &roster_core::agent::Agent, rows: &[roster_core::memory::MemoryBlock]) {
    assert_eq!(
        defs(agent),
        [("human", BlockScope::Agent), ("persona", BlockScope::Agent)]
    );
    assert_eq!(
        values(rows),
        [
            ("human".into(), "agent".into(), "Name: Ada".into(), 2),
            ("persona".into(), "agent".into(), "Terse.".into(), 1),
        ]
    );
}

#[tokio::test]
async fn sqlite_migration_gives_existing_blocks_to_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("roster.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("open");
        for sql in [
            include_str!("../../migrations/sqlite/0001_core.sql"),
            include_str!("../../migrations/sqlite/0002_memory_records.sql"),
            include_str!("../../migrations/sqlite/0003_knowledge.sql"),
            include_str!("../../migrations/sqlite/0004_context.sql"),
            include_str!("../../migrations/sqlite/0005_memory_jobs.sql"),
            include_str!("../../migrations/sqlite/0006_session_user.sql"),
            include_str!("../../migrations/sqlite/0007_integrations.sql"),
            include_str!("../../migrations/sqlite/0008_governance.sql"),
        ] {
            conn.execute_batch(sql).expect("old migration");
        }
        conn.execute_batch(&format!(
            "PRAGMA user_version = 8;
             INSERT INTO tenants (id, name, created_at) VALUES ('ten_m', 'M', 0);
             INSERT INTO agents (id, tenant_id, name, current_version, created_at, updated_at)
                 VALUES ('agt_m', 'ten_m', 'old', 1, 0, 0);
             INSERT INTO agent_versions (agent_id, version, tenant_id, config, created_at)
                 VALUES ('agt_m', 1, 'ten_m', '{OLD_CONFIG}', 0);
             INSERT INTO memory_blocks (agent_id, label, tenant_id, value, char_limit, version, updated_at)
                 VALUES ('agt_m', 'persona', 'ten_m', 'Terse.', 100, 1, 0),
                        ('agt_m', 'human', 'ten_m', 'Name: Ada', 100, 2, 0);
             INSERT INTO memory_block_versions (agent_id, label, version, tenant_id, value, operation, run_id, principal, created_at)
                 VALUES ('agt_m', 'human', 2, 'ten_m', 'Name: Ada', 'append', NULL, 'agent:x', 0);"
        ))
        .expect("old rows");
    }
    let store = common::sqlite(&dir).await;
    let t = TenantId::from_stored("ten_m".into());
    let agent = store
        .get_agent(&t, &AgentRef::Name("old".into()))
        .await
        .expect("agent")
        .expect("some");
    let rows = store.list_memory_blocks(&t, &agent.id).await.expect("rows");
    check_migrated(&agent, &rows);
    let history = store
        .block_history(&t, &agent.id, &BlockOwner::Agent, "human")
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
}

#[tokio::test]
async fn postgres_migration_gives_existing_blocks_to_the_agent() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    // Apply the migrations before this change, as an older binary did.
    let old = tempfile::tempdir().expect("tempdir");
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    for entry in std::fs::read_dir(&all).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if name.as_str() < "0012" {
            std::fs::copy(&path, old.path().join(&name)).expect("copy");
        }
    }
    let pool = sqlx::PgPool::connect(&url).await.expect("pool");
    sqlx::migrate::Migrator::new(old.path())
        .await
        .expect("old migrator")
        .run(&pool)
        .await
        .expect("old migrations");
    for sql in [
        "INSERT INTO tenants (id, name, created_at) VALUES ('ten_m', 'M', 0)".to_owned(),
        "INSERT INTO agents (id, tenant_id, name, current_version, created_at, updated_at)
             VALUES ('agt_m', 'ten_m', 'old', 1, 0, 0)"
            .to_owned(),
        format!(
            "INSERT INTO agent_versions (agent_id, version, tenant_id, config, created_at)
             VALUES ('agt_m', 1, 'ten_m', '{OLD_CONFIG}', 0)"
        ),
        "INSERT INTO memory_blocks (agent_id, label, tenant_id, value, char_limit, version, updated_at)
             VALUES ('agt_m', 'persona', 'ten_m', 'Terse.', 100, 1, 0),
                    ('agt_m', 'human', 'ten_m', 'Name: Ada', 100, 2, 0)"
            .to_owned(),
    ] {
        sqlx::query(&sql).execute(&pool).await.expect("old rows");
    }
    pool.close().await;
    let store = roster_store_sql::open(&url)
        .await
        .expect("open and migrate");
    let t = TenantId::from_stored("ten_m".into());
    let agent = store
        .get_agent(&t, &AgentRef::Name("old".into()))
        .await
        .expect("agent")
        .expect("some");
    let rows = store.list_memory_blocks(&t, &agent.id).await.expect("rows");
    check_migrated(&agent, &rows);
}
