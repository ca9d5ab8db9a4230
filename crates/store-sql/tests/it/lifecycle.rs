//! Whole-session and agent-version lifecycle on both backends: deleting a
//! session removes everything it holds (and tells the search index) but
//! never while a run is unfinished; upgrading moves later runs to the
//! agent's current version; agent updates checked against their base
//! version never lose a concurrent change; each change is audited.

use crate::common;

use roster_core::agent::{AgentConfig, NewAgent};
use roster_core::blocks::BlockOwner;
use roster_core::item::ItemContent;
use roster_core::run::RunStatus;
use roster_core::TenantId;
use roster_store::{
    AuditQuery, BlockWrite, BusyPolicy, DynStore, JournalWrite, NewAuditEvent, NewRun,
    RunTransition, StoreError, SESSION_DELETED_LOG,
};
use serde_json::json;

fn audit(action: &str, resource: &str) -> NewAuditEvent {
    NewAuditEvent {
        actor: "key:key_owner".into(),
        action: action.into(),
        resource: resource.into(),
        decision: None,
        detail: json!({}),
    }
}

fn config(model: &str) -> AgentConfig {
    AgentConfig {
        max_running: Default::default(),
        notify: Default::default(),
        description: Default::default(),
        if_busy: Default::default(),
        tool_choice: Default::default(),
        instructions: String::new(),
        model: model.into(),
        fallbacks: vec![],
        tools: vec![],
        max_steps: 8,
        context_tokens: 4000,
        memory: Default::default(),
        knowledge: vec![],
        knowledge_recall: 3,
        context: Default::default(),
        memory_blocks: vec![],
    }
}

fn new_run(session: &roster_store::Session) -> NewRun {
    NewRun {
        turn: Default::default(),
        notify: Default::default(),
        parent: Default::default(),
        session_id: session.id.clone(),
        input: "hello".into(),
        idempotency_key: None,
        if_busy: BusyPolicy::Queue,
        actor: Some("key:key_owner".into()),
    }
}

async fn finish(store: &DynStore, tenant: &TenantId, run: &roster_core::run::Run) {
    let mut write = JournalWrite::new(run.id.clone(), run.session_id.clone());
    write.items = vec![ItemContent::AssistantMessage {
        text: "hi there".into(),
        tool_calls: vec![],
    }];
    write.transition = Some(RunTransition::Finish {
        status: RunStatus::Completed,
        output: Some("hi there".into()),
        error: None,
    });
    store.commit(tenant, write).await.expect("finish");
}

async fn actions(store: &DynStore, tenant: &TenantId) -> Vec<(String, String)> {
    store
        .list_audit(
            tenant,
            &AuditQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("audit")
        .into_iter()
        .map(|e| (e.action, e.resource))
        .collect()
}

async fn story(store: DynStore) {
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let agent = store
        .create_agent(
            &tenant,
            NewAgent {
                name: "helper".into(),
                config: config("openai/one"),
                memory_blocks: vec![],
            },
            "key:key_owner",
        )
        .await
        .expect("agent");
    let session = store
        .create_session(&tenant, &agent.id, 1)
        .await
        .expect("session");
    let run = store
        .create_run(&tenant, new_run(&session))
        .await
        .expect("run")
        .run()
        .clone();
    let resource = format!("session:{}", session.id);

    // Never while a run is unfinished; never from another tenant.
    let err = store
        .delete_session(&tenant, &session.id, audit("session.delete", &resource))
        .await
        .expect_err("busy");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    finish(&store, &tenant, &run).await;
    let err = store
        .delete_session(
            &TenantId::generate(),
            &session.id,
            audit("session.delete", &resource),
        )
        .await
        .expect_err("other tenant");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert!(store
        .get_session(&tenant, &session.id)
        .await
        .expect("get")
        .is_some());

    // The session's own copy of a block goes with it; the agent's stays.
    let owner = BlockOwner::Session(session.id.clone());
    store
        .set_memory_block(
            &tenant,
            BlockWrite {
                agent_id: agent.id.clone(),
                label: "scratch".into(),
                owner: owner.clone(),
                expected_version: 0,
                value: "session notes".into(),
                limit: 100,
                operation: "set".into(),
                principal: "key:key_owner".into(),
            },
            audit("block.set", "block:scratch"),
        )
        .await
        .expect("a session copy");
    assert_eq!(
        store
            .memory_blocks_of(&tenant, &agent.id, std::slice::from_ref(&owner))
            .await
            .expect("copies")
            .len(),
        1
    );
    let log_before = store.search_log_head().await.expect("head");
    let deleted = store
        .delete_session(&tenant, &session.id, audit("session.delete", &resource))
        .await
        .expect("delete");
    assert_eq!((deleted.runs, deleted.items), (1, 2));
    assert_eq!(deleted.session.id, session.id);
    assert!(store
        .get_session(&tenant, &session.id)
        .await
        .expect("get")
        .is_none());
    assert!(store
        .get_run(&tenant, &run.id)
        .await
        .expect("run")
        .is_none());
    assert!(store
        .list_items(&tenant, &session.id, 0, 100)
        .await
        .expect("items")
        .is_empty());
    assert!(store
        .list_events(&tenant, &run.id, 0, 100)
        .await
        .expect("events")
        .is_empty());
    assert!(store
        .list_steps(&tenant, &run.id)
        .await
        .expect("steps")
        .is_empty());
    assert!(store
        .memory_blocks_of(&tenant, &agent.id, std::slice::from_ref(&owner))
        .await
        .expect("copies")
        .is_empty());
    assert!(store
        .block_history(&tenant, &agent.id, &owner, "scratch")
        .await
        .expect("history")
        .is_empty());
    let logged = store.search_log_after(log_before, 10).await.expect("log");
    assert!(
        logged.iter().any(|e| e.kind == SESSION_DELETED_LOG
            && e.reference == format!("{}:2", session.id)
            && e.tenant == tenant),
        "{logged:?}"
    );
    let err = store
        .delete_session(&tenant, &session.id, audit("session.delete", &resource))
        .await
        .expect_err("twice");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");

    // Upgrading: later runs use the agent's current version.
    let session = store
        .create_session(&tenant, &agent.id, 1)
        .await
        .expect("session");
    let v2 = store
        .update_agent(&tenant, &agent.id, config("openai/two"), "key:key_owner")
        .await
        .expect("v2");
    assert_eq!(v2.version, 2);
    let (upgraded, from) = store
        .upgrade_session(
            &tenant,
            &session.id,
            audit("session.upgrade", &format!("session:{}", session.id)),
        )
        .await
        .expect("upgrade");
    assert_eq!((upgraded.agent_version, from), (2, 1));
    // Again: already there, nothing changes and nothing is recorded.
    let (again, from) = store
        .upgrade_session(
            &tenant,
            &session.id,
            audit("session.upgrade", &format!("session:{}", session.id)),
        )
        .await
        .expect("upgrade again");
    assert_eq!((again.agent_version, from), (2, 2));
    let stored = store
        .get_session(&tenant, &session.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(stored.agent_version, 2);
    let run = store
        .create_run(&tenant, new_run(&session))
        .await
        .expect("run")
        .run()
        .clone();
    assert_eq!(run.agent_version, 2);
    let err = store
        .upgrade_session(
            &TenantId::generate(),
            &session.id,
            audit("session.upgrade", "x"),
        )
        .await
        .expect_err("other tenant");
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");

    // Versions, newest first; a change from a stale base is refused.
    let versions = store
        .list_agent_versions(&tenant, &agent.id)
        .await
        .expect("versions");
    let listed: Vec<(i64, &str)> = versions
        .iter()
        .map(|v| (v.version, v.config.model.as_str()))
        .collect();
    assert_eq!(listed, vec![(2, "openai/two"), (1, "openai/one")]);
    assert!(store
        .list_agent_versions(&TenantId::generate(), &agent.id)
        .await
        .expect("other tenant")
        .is_empty());
    let err = store
        .update_agent_from(
            &tenant,
            &agent.id,
            1,
            config("openai/stale"),
            "agent.update",
            "key:key_owner",
        )
        .await
        .expect_err("stale");
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let rolled = store
        .update_agent_from(
            &tenant,
            &agent.id,
            2,
            versions[1].config.clone(),
            "agent.rollback",
            "key:key_owner",
        )
        .await
        .expect("rollback");
    assert_eq!(
        (rolled.version, rolled.config.model.as_str()),
        (3, "openai/one")
    );

    let trail = actions(&store, &tenant).await;
    let wanted = [
        ("session.delete", resource.clone()),
        ("session.upgrade", format!("session:{}", session.id)),
        ("agent.rollback", "agent:helper".to_owned()),
    ];
    for (action, resource) in wanted {
        assert!(
            trail.contains(&(action.to_owned(), resource.clone())),
            "{action} {resource} missing from {trail:?}"
        );
    }
    assert_eq!(
        trail.iter().filter(|(a, _)| a == "session.delete").count(),
        1,
        "a refused delete leaves no audit row: {trail:?}"
    );
    assert_eq!(
        trail.iter().filter(|(a, _)| a == "session.upgrade").count(),
        1,
        "an upgrade that changes nothing leaves no audit row: {trail:?}"
    );
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    story(common::sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres() {
    if let Some(store) = common::postgres().await {
        story(store).await;
    }
}

/// On SQLite, what a deleted session said is not left readable in the
/// database file's free pages or in the write-ahead log.
#[tokio::test]
async fn sqlite_leaves_no_readable_trace_of_a_deleted_session() {
    let dir = tempfile::tempdir().expect("dir");
    let store = common::sqlite(&dir).await;
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let agent = store
        .create_agent(
            &tenant,
            NewAgent {
                name: "helper".into(),
                config: config("openai/one"),
                memory_blocks: vec![],
            },
            "key:key_owner",
        )
        .await
        .expect("agent");
    let session = store
        .create_session(&tenant, &agent.id, 1)
        .await
        .expect("session");
    let secret = "uniquely-zebra-secret-7731";
    let run = store
        .create_run(
            &tenant,
            NewRun {
                input: format!("my secret is {secret}").repeat(200),
                ..new_run(&session)
            },
        )
        .await
        .expect("run")
        .run()
        .clone();
    finish(&store, &tenant, &run).await;
    store
        .delete_session(&tenant, &session.id, audit("session.delete", "s"))
        .await
        .expect("delete");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
            found.push(path.display().to_string());
        }
    }
    assert!(found.is_empty(), "the deleted text is still in {found:?}");
}
