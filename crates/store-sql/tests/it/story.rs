//! One story, told to every backend: what the runtime and API rely on the
//! store to do. SQLite always runs; PostgreSQL runs when
//! `ROSTER_TEST_DATABASE_URL` is set (and must be set in CI).

use crate::common;

use roster_core::agent::{AgentConfig, NewAgent};
use roster_core::blocks::{BlockOwner, BlockScope};
use roster_core::event::RunEvent;
use roster_core::item::{ItemContent, ToolCall};
use roster_core::ledger::NewLedgerEntry;
use roster_core::memory::MemoryBlockSpec;
use roster_core::run::{RunError, RunStatus, StepKind, StepStatus};
use roster_core::{KeyId, RunId, SessionId, TenantId};
use roster_store::*;
use serde_json::json;

fn config(model: &str) -> AgentConfig {
    AgentConfig {
        max_running: Default::default(),
        notify: Default::default(),
        description: Default::default(),
        if_busy: Default::default(),
        tool_choice: Default::default(),
        instructions: "Be helpful.".into(),
        model: model.into(),
        fallbacks: vec![],
        tools: vec!["memory_append".into()],
        max_steps: 8,
        context_tokens: 4000,
        memory: Default::default(),
        knowledge: vec![],
        knowledge_recall: 3,
        context: Default::default(),
        memory_blocks: vec![],
    }
}

fn new_agent(name: &str) -> NewAgent {
    NewAgent {
        name: name.into(),
        config: config("openai/gpt-4.1-mini"),
        memory_blocks: vec![MemoryBlockSpec {
            label: "persona".into(),
            value: "I am terse.".into(),
            limit: Some(100),
            scope: BlockScope::Agent,
        }],
    }
}

async fn story(store: DynStore) {
    let a = TenantId::from_stored("ten_a".into());
    let b = TenantId::from_stored("ten_b".into());
    store.ensure_tenant(&a, "A").await.expect("tenant a");
    store
        .ensure_tenant(&a, "A")
        .await
        .expect("tenant a again is a no-op");
    store.ensure_tenant(&b, "B").await.expect("tenant b");

    // Keys: found by hash, scoped by tenant, revocable.
    let key = store
        .insert_api_key(
            &a,
            NewApiKey {
                id: KeyId::generate(),
                name: "admin".into(),
                key_hash: "h1".into(),
                is_admin: true,
            },
        )
        .await
        .expect("key");
    assert_eq!(
        store.find_api_key("h1").await.expect("find"),
        Some(key.clone())
    );
    assert_eq!(store.find_api_key("nope").await.expect("find"), None);
    assert_eq!(store.count_admin_keys(&a).await.expect("count"), 1);
    assert!(
        store.get_key(&b, &key.id).await.expect("get").is_none(),
        "tenant B sees A's key"
    );
    // Rotating the admin key away and back: the earlier key is restored.
    let admin = |hash: &str| NewApiKey {
        id: KeyId::generate(),
        name: "admin".into(),
        key_hash: hash.into(),
        is_admin: true,
    };
    store
        .set_admin_key(&a, admin("h2"))
        .await
        .expect("rotate to h2");
    assert_eq!(store.find_api_key("h1").await.expect("find"), None);
    assert!(store.find_api_key("h2").await.expect("find").is_some());
    let back = store
        .set_admin_key(&a, admin("h1"))
        .await
        .expect("rotate back to h1");
    assert_eq!(
        back.id, key.id,
        "the earlier key is restored, not duplicated"
    );
    assert_eq!(store.find_api_key("h2").await.expect("find"), None);
    assert_eq!(store.count_admin_keys(&a).await.expect("count"), 1);
    assert!(matches!(
        store.set_admin_key(&b, admin("h1")).await,
        Err(StoreError::Conflict(_))
    ));
    store.revoke_admin_keys(&a).await.expect("revoke");
    assert_eq!(store.find_api_key("h1").await.expect("find"), None);

    // Agents: unique names per tenant, versions on update, soft delete.
    let agent = store
        .create_agent(&a, new_agent("helper"), "key:admin")
        .await
        .expect("agent");
    assert_eq!(agent.version, 1);
    let dup = store
        .create_agent(&a, new_agent("helper"), "key:admin")
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    store
        .create_agent(&b, new_agent("helper"), "key:b")
        .await
        .expect("same name in another tenant");
    let by_name = store
        .get_agent(&a, &AgentRef::Name("helper".into()))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(by_name.id, agent.id);
    assert!(store
        .get_agent(&b, &AgentRef::Id(agent.id.clone()))
        .await
        .expect("get")
        .is_none());
    let updated = store
        .update_agent(&a, &agent.id, config("anthropic/claude"), "key:test")
        .await
        .expect("update");
    assert_eq!(updated.version, 2);
    assert_eq!(updated.config.model, "anthropic/claude");
    let v1 = store
        .get_agent_version(&a, &agent.id, 1)
        .await
        .expect("v1")
        .expect("some");
    assert_eq!(v1.config.model, "openai/gpt-4.1-mini");
    assert!(matches!(
        store
            .update_agent(&b, &agent.id, config("x/y"), "key:test")
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.list_agents(&a).await.expect("list").len(), 1);

    // Memory blocks start at version 1 with a `create` history entry.
    let blocks = store
        .list_memory_blocks(&a, &agent.id)
        .await
        .expect("blocks");
    assert_eq!(blocks.len(), 1);
    assert_eq!(
        (blocks[0].label.as_str(), blocks[0].version, blocks[0].limit),
        ("persona", 1, 100)
    );
    assert!(store
        .list_memory_blocks(&b, &agent.id)
        .await
        .expect("blocks")
        .is_empty());

    // Sessions pin the agent version they were created with.
    let session = store
        .create_session(&a, &agent.id, updated.version)
        .await
        .expect("session");
    assert_eq!(
        store.get_session(&a, &session.id).await.expect("get"),
        Some(session.clone())
    );
    assert_eq!(store.get_session(&b, &session.id).await.expect("get"), None);
    let listed = store
        .list_sessions(
            &a,
            &SessionQuery {
                agent: Some(agent.id.clone()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("sessions");
    assert_eq!(listed, vec![session.clone()]);

    // Runs: queued, idempotent by key, rejectable when busy.
    let new_run = |input: &str, key: Option<&str>, if_busy| NewRun {
        turn: Default::default(),
        notify: Default::default(),
        parent: Default::default(),
        session_id: session.id.clone(),
        input: input.into(),
        idempotency_key: key.map(str::to_owned),
        if_busy,
        actor: None,
    };
    let created = store
        .create_run(&a, new_run("hello", Some("k1"), BusyPolicy::Queue))
        .await
        .expect("run");
    let CreatedRun::Created(run) = created else {
        panic!("expected a new run")
    };
    // Nothing is ahead of it, so it starts as it is created.
    assert_eq!(run.status, RunStatus::Running);
    assert!(run.started_at.is_some());
    assert_eq!(run.agent_version, 2);
    let again = store
        .create_run(&a, new_run("hello", Some("k1"), BusyPolicy::Queue))
        .await
        .expect("retry");
    assert!(matches!(&again, CreatedRun::Existing(r) if r.id == run.id));
    let busy = store
        .create_run(&a, new_run("second", None, BusyPolicy::Reject))
        .await;
    assert!(matches!(busy, Err(StoreError::SessionBusy(_))), "{busy:?}");
    let missing = store
        .create_run(&b, new_run("x", None, BusyPolicy::Queue))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "tenant B created a run in A's session"
    );
    let CreatedRun::Created(queued) = store
        .create_run(&a, new_run("second", None, BusyPolicy::Queue))
        .await
        .expect("queued")
    else {
        panic!("expected a new run")
    };
    assert_eq!(
        store
            .next_queued_run(&a, &session.id)
            .await
            .expect("next")
            .map(|r| r.id),
        Some(run.id.clone())
    );

    assert_eq!(queued.status, RunStatus::Queued, "the second run waits");

    // Starting appended the input and said so in the events; starting twice
    // (or starting a run that is not queued) is refused.
    let items = store
        .list_items(&a, &session.id, 0, 10)
        .await
        .expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].seq, 1);
    assert_eq!(
        items[0].content,
        ItemContent::UserMessage {
            text: "hello".into()
        }
    );
    let events = store.list_events(&a, &run.id, 0, 10).await.expect("events");
    assert_eq!(
        events[0].event,
        RunEvent::RunQueued {
            run_id: Some(run.id.clone())
        }
    );
    assert_eq!(events[1].event, RunEvent::RunStarted);
    let mut start = JournalWrite::new(run.id.clone(), session.id.clone());
    start.transition = Some(RunTransition::Start);
    assert!(matches!(
        store.commit(&a, start).await,
        Err(StoreError::Conflict(_))
    ));

    // Journal: a model step with a tool call, a started-then-completed tool
    // step with a block edit, and the finish.
    let call = ToolCall {
        id: "c1".into(),
        name: "memory_append".into(),
        arguments: "{}".into(),
    };
    let mut model = JournalWrite::new(run.id.clone(), session.id.clone());
    model.steps.push(StepWrite::Completed {
        n: 1,
        kind: StepKind::ModelCall,
        input: json!({}),
        output: json!({"text": ""}),
    });
    model.items = vec![ItemContent::AssistantMessage {
        text: String::new(),
        tool_calls: vec![call.clone()],
    }];
    model.ledger = vec![NewLedgerEntry {
        provider: "openai".into(),
        model: "gpt".into(),
        tokens_in: 10,
        tokens_out: 5,
        latency_ms: 3,
        outcome: "ok".into(),
        error: None,
        agent_id: Some(agent.id.to_string()),
        session_id: Some(session.id.to_string()),
        run_id: Some(run.id.to_string()),
        step: Some(1),
        region: Some("eu".into()),
        route: Some(roster_core::ledger::RouteDecision {
            decision: "allow".into(),
            policies: vec!["eu-only".into()],
        }),
        cost_micros: Some(42),
    }];
    store.commit(&a, model).await.expect("model step");

    let mut started = JournalWrite::new(run.id.clone(), session.id.clone());
    started.steps.push(StepWrite::Started {
        n: 2,
        kind: StepKind::ToolCall,
        input: json!({"call": "c1"}),
    });
    store.commit(&a, started).await.expect("tool started");
    let steps = store.list_steps(&a, &run.id).await.expect("steps");
    assert_eq!(
        steps.iter().map(|s| (s.n, s.status)).collect::<Vec<_>>(),
        vec![(1, StepStatus::Completed), (2, StepStatus::Started)]
    );

    // A stale block version fails the whole write: no item, no step change.
    let mut stale = JournalWrite::new(run.id.clone(), session.id.clone());
    stale.steps.push(StepWrite::Completed {
        n: 2,
        kind: StepKind::ToolCall,
        input: json!({}),
        output: json!({"ok": true}),
    });
    stale.items = vec![ItemContent::ToolResult {
        call_id: "c1".into(),
        name: "memory_append".into(),
        output: "ok".into(),
        is_error: false,
    }];
    stale.block_write = Some(BlockWrite {
        agent_id: agent.id.clone(),
        label: "persona".into(),
        owner: BlockOwner::Agent,
        expected_version: 7,
        value: "x".into(),
        limit: 100,
        operation: "append".into(),
        principal: "agent:helper".into(),
    });
    assert!(matches!(
        store.commit(&a, stale.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .tail_items(&a, &session.id, 100)
            .await
            .expect("tail")
            .len(),
        2,
        "failed write left items behind"
    );
    assert_eq!(
        store.list_steps(&a, &run.id).await.expect("steps")[1].status,
        StepStatus::Started
    );

    let mut tool = stale;
    if let Some(block) = tool.block_write.as_mut() {
        block.expected_version = 1;
        block.value = "I am terse.\nLikes tea.".into();
    }
    store.commit(&a, tool).await.expect("tool completed");
    let history = store
        .memory_block_history(&a, &agent.id)
        .await
        .expect("history");
    assert_eq!(
        history
            .iter()
            .map(|h| (h.version, h.operation.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "create"), (2, "append")]
    );
    assert_eq!(history[1].run_id.as_deref(), Some(run.id.as_str()));
    assert_eq!(history[1].principal, "agent:helper");
    assert!(store
        .memory_block_history(&b, &agent.id)
        .await
        .expect("history")
        .is_empty());

    let mut finish = JournalWrite::new(run.id.clone(), session.id.clone());
    finish.steps.push(StepWrite::Completed {
        n: 3,
        kind: StepKind::ModelCall,
        input: json!({}),
        output: json!({"text": "done"}),
    });
    finish.items = vec![ItemContent::AssistantMessage {
        text: "done".into(),
        tool_calls: vec![],
    }];
    finish.transition = Some(RunTransition::Finish {
        status: RunStatus::Completed,
        output: Some("done".into()),
        error: None,
    });
    let committed = store.commit(&a, finish).await.expect("finish");
    assert!(matches!(
        committed.events.last().map(|e| &e.event),
        Some(RunEvent::RunFinished {
            status: RunStatus::Completed,
            ..
        })
    ));

    let done = store
        .get_run(&a, &run.id)
        .await
        .expect("get")
        .expect("some");
    assert_eq!(
        (done.status, done.output.as_deref()),
        (RunStatus::Completed, Some("done"))
    );
    assert!(done.started_at.is_some() && done.finished_at.is_some());
    assert!(store.get_run(&b, &run.id).await.expect("get").is_none());

    // A finished run takes no more writes.
    let late = JournalWrite::new(run.id.clone(), session.id.clone());
    assert!(matches!(
        store.commit(&a, late).await,
        Err(StoreError::Conflict(_))
    ));
    // Nor can another tenant write into it.
    let foreign = JournalWrite::new(queued.id.clone(), session.id.clone());
    assert!(matches!(
        store.commit(&b, foreign).await,
        Err(StoreError::NotFound(_))
    ));

    // Items: ordered, paginated, tail in ascending order.
    let items = store
        .list_items(&a, &session.id, 0, 100)
        .await
        .expect("items");
    assert_eq!(
        items.iter().map(|i| i.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(
        store.list_items(&a, &session.id, 2, 1).await.expect("page")[0].seq,
        3
    );
    assert_eq!(
        store
            .tail_items(&a, &session.id, 2)
            .await
            .expect("tail")
            .iter()
            .map(|i| i.seq)
            .collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert!(store
        .list_items(&b, &session.id, 0, 100)
        .await
        .expect("items")
        .is_empty());

    // Events replay in order from the start and from any point.
    let events = store
        .list_events(&a, &run.id, 0, 1000)
        .await
        .expect("events");
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(
        events[0].event,
        RunEvent::RunQueued {
            run_id: Some(run.id.clone())
        }
    );
    assert_eq!(
        store
            .list_events(&a, &run.id, 3, 1000)
            .await
            .expect("events")
            .len(),
        events.len() - 3
    );
    assert!(store
        .list_events(&b, &run.id, 0, 1000)
        .await
        .expect("events")
        .is_empty());

    // Ledger is per tenant and filterable by run.
    let ledger = store
        .list_ledger(
            &a,
            &LedgerQuery {
                run_id: Some(run.id.clone()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("ledger");
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].region.as_deref(), Some("eu"));
    assert_eq!(
        ledger[0].route.as_ref().map(|r| r.policies.clone()),
        Some(vec!["eu-only".to_owned()])
    );
    assert_eq!(
        (ledger[0].tokens_in, ledger[0].outcome.as_str()),
        (10, "ok")
    );
    assert!(store
        .list_ledger(
            &b,
            &LedgerQuery {
                limit: 10,
                ..Default::default()
            }
        )
        .await
        .expect("ledger")
        .is_empty());

    // Only the queued run is unfinished; failing it records the error.
    let unfinished = store.unfinished_runs().await.expect("unfinished");
    assert_eq!(
        unfinished
            .iter()
            .map(|(t, r)| (t.clone(), r.id.clone()))
            .collect::<Vec<_>>(),
        vec![(a.clone(), queued.id.clone())]
    );
    let mut fail = JournalWrite::new(queued.id.clone(), session.id.clone());
    fail.transition = Some(RunTransition::Finish {
        status: RunStatus::Failed,
        output: None,
        error: Some(RunError::new("provider_auth", "bad key")),
    });
    store.commit(&a, fail).await.expect("fail");
    let failed = store
        .get_run(&a, &queued.id)
        .await
        .expect("get")
        .expect("some");
    assert_eq!(failed.error.map(|e| e.code), Some("provider_auth".into()));
    assert!(store
        .unfinished_runs()
        .await
        .expect("unfinished")
        .is_empty());
    assert_eq!(
        store.list_runs(&a, &session.id).await.expect("runs").len(),
        2
    );

    // Deleting frees the name; unknown ids are simply absent.
    assert!(store
        .delete_agent(&a, &agent.id, "key:test")
        .await
        .expect("delete"));
    assert!(!store
        .delete_agent(&a, &agent.id, "key:test")
        .await
        .expect("delete twice"));
    assert!(store
        .get_agent(&a, &AgentRef::Name("helper".into()))
        .await
        .expect("get")
        .is_none());
    store
        .create_agent(&a, new_agent("helper"), "key:admin")
        .await
        .expect("name reusable after delete");
    assert!(store
        .get_run(&a, &RunId::generate())
        .await
        .expect("get")
        .is_none());
    assert!(store
        .get_session(&a, &SessionId::generate())
        .await
        .expect("get")
        .is_none());
}

/// Many concurrent commits to different sessions all land, each in order.
async fn concurrent_sessions(store: DynStore) {
    let t = TenantId::from_stored("ten_c".into());
    store.ensure_tenant(&t, "C").await.expect("tenant");
    let agent = store
        .create_agent(&t, new_agent("conc"), "test")
        .await
        .expect("agent");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let (t, agent_id) = (t.clone(), agent.id.clone());
        tasks.push(tokio::spawn(async move {
            let session = store
                .create_session(&t, &agent_id, 1)
                .await
                .expect("session");
            let run = store
                .create_run(
                    &t,
                    NewRun {
                        turn: Default::default(),
                        notify: Default::default(),
                        parent: Default::default(),
                        session_id: session.id.clone(),
                        input: "go".into(),
                        idempotency_key: None,
                        if_busy: BusyPolicy::Queue,
                        actor: None,
                    },
                )
                .await
                .expect("run");
            assert_eq!(
                run.run().status,
                RunStatus::Running,
                "idle session: started at once"
            );
            for i in 0..10 {
                let mut w = JournalWrite::new(run.run().id.clone(), session.id.clone());
                w.items = vec![ItemContent::SystemNote {
                    text: format!("note {i}"),
                }];
                store.commit(&t, w).await.expect("note");
            }
            let items = store
                .list_items(&t, &session.id, 0, 100)
                .await
                .expect("items");
            assert_eq!(items.len(), 11);
            assert_eq!(
                items.last().map(|i| i.content.clone()),
                Some(ItemContent::SystemNote {
                    text: "note 9".into()
                })
            );
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
}

#[tokio::test]
async fn sqlite_story() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::sqlite(&dir).await;
    story(store).await;
}

#[tokio::test]
async fn sqlite_concurrent_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    concurrent_sessions(common::sqlite(&dir).await).await;
}

#[tokio::test]
async fn sqlite_reopen_keeps_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = TenantId::from_stored("ten_r".into());
    {
        let store = common::sqlite(&dir).await;
        store.ensure_tenant(&t, "R").await.expect("tenant");
        store
            .create_agent(&t, new_agent("keep"), "test")
            .await
            .expect("agent");
    }
    let store = common::sqlite(&dir).await;
    assert_eq!(store.list_agents(&t).await.expect("agents").len(), 1);
}

#[tokio::test]
async fn postgres_story() {
    let Some(store) = common::postgres().await else {
        return;
    };
    story(store).await;
}

#[tokio::test]
async fn postgres_concurrent_sessions() {
    let Some(store) = common::postgres().await else {
        return;
    };
    concurrent_sessions(store).await;
}
