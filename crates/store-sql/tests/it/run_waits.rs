//! Runs that wait out an outage and runs that are retried, on both
//! backends: the wait is stored with the run and ends with it; only a failed
//! run can be retried, it goes to the back of its session's queue with its
//! audit row and event, and its next start adds no second input.

use crate::common;

use chrono::{Duration, Utc};
use roster_core::agent::{AgentConfig, NewAgent};
use roster_core::event::RunEvent;
use roster_core::item::ItemContent;
use roster_core::run::{RunError, RunStatus, RunWait, WAITING_FOR_PROVIDER};
use roster_core::{RunId, SessionId, TenantId};
use roster_store::{
    AuditQuery, BusyPolicy, CreatedRun, DynStore, JournalWrite, NewAuditEvent, NewRun,
    RunTransition, StoreError, WaitWrite,
};
use serde_json::json;

fn agent() -> NewAgent {
    NewAgent {
        name: "helper".into(),
        config: AgentConfig {
            max_running: Default::default(),
            notify: Default::default(),
            description: Default::default(),
            if_busy: Default::default(),
            tool_choice: Default::default(),
            instructions: "Be helpful.".into(),
            model: "openai/m".into(),
            fallbacks: vec![],
            tools: vec![],
            max_steps: 8,
            context_tokens: 4000,
            memory: Default::default(),
            knowledge: vec![],
            knowledge_recall: 3,
            context: Default::default(),
            memory_blocks: vec![],
        },
        memory_blocks: vec![],
    }
}

async fn submit(store: &DynStore, t: &TenantId, session: &SessionId, input: &str) -> RunId {
    let created = store
        .create_run(
            t,
            NewRun {
                turn: Default::default(),
                notify: Default::default(),
                parent: Default::default(),
                session_id: session.clone(),
                input: input.into(),
                idempotency_key: None,
                if_busy: BusyPolicy::Queue,
                actor: Some("key:key_first".into()),
            },
        )
        .await
        .expect("run");
    match created {
        CreatedRun::Created(run) => run.id,
        CreatedRun::Existing(run) => panic!("{} existed", run.id),
    }
}

async fn commit(
    store: &DynStore,
    t: &TenantId,
    session: &SessionId,
    run: &RunId,
    f: impl FnOnce(&mut JournalWrite),
) -> Result<(), StoreError> {
    let mut write = JournalWrite::new(run.clone(), session.clone());
    f(&mut write);
    store.commit(t, write).await.map(|_| ())
}

fn wait(attempts: u32) -> RunWait {
    let since = Utc::now() - Duration::seconds(30);
    RunWait {
        waiting_for: WAITING_FOR_PROVIDER.into(),
        step: 1,
        since,
        next_attempt_at: since + Duration::seconds(40),
        gives_up_at: since + Duration::seconds(600),
        attempts,
        rounds: attempts,
        last_error: RunError::new("provider_transient", "503 Service Unavailable"),
    }
}

fn fail() -> RunTransition {
    RunTransition::Finish {
        status: RunStatus::Failed,
        output: None,
        error: Some(RunError::new("provider_transient", "gave up")),
    }
}

fn retry() -> RunTransition {
    RunTransition::Retry {
        actor: Some("key:key_second".into()),
        previous_error: Some(RunError::new("provider_transient", "gave up")),
    }
}

async fn story(store: DynStore) {
    let t = TenantId::generate();
    store.ensure_tenant(&t, "T").await.expect("tenant");
    let agent = store
        .create_agent(&t, agent(), "test")
        .await
        .expect("agent");
    let session = store
        .create_session(&t, &agent.id, agent.version)
        .await
        .expect("session")
        .id;
    let first = submit(&store, &t, &session, "first").await;
    let events = store.list_events(&t, &first, 0, 10).await.expect("events");
    assert_eq!(
        events[0].event,
        RunEvent::RunQueued {
            run_id: Some(first.clone())
        },
        "the first event names its run"
    );

    // A wait is stored with the run, moves, and ends.
    let began = wait(1);
    commit(&store, &t, &session, &first, |w| {
        w.wait = Some(WaitWrite::Set(began.clone()))
    })
    .await
    .expect("wait");
    let run = store.get_run(&t, &first).await.expect("get").expect("run");
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.waiting.as_ref(), Some(&began));
    let unfinished = store.unfinished_runs().await.expect("unfinished");
    let (_, recovered) = unfinished
        .iter()
        .find(|(_, r)| r.id == first)
        .expect("recovery sees it");
    assert_eq!(recovered.waiting, run.waiting, "recovery reads the wait");
    commit(&store, &t, &session, &first, |w| {
        w.wait = Some(WaitWrite::Set(RunWait {
            attempts: 4,
            ..began.clone()
        }))
    })
    .await
    .expect("wait again");
    let moved = store.get_run(&t, &first).await.expect("get").expect("run");
    assert_eq!(moved.waiting.as_ref().map(|w| w.attempts), Some(4));
    assert_eq!(
        moved.waiting.as_ref().map(|w| w.since),
        run.waiting.as_ref().map(|w| w.since),
        "the clock is kept"
    );
    commit(&store, &t, &session, &first, |w| {
        w.wait = Some(WaitWrite::Clear)
    })
    .await
    .expect("over");
    let over = store.get_run(&t, &first).await.expect("get").expect("run");
    assert_eq!(over.waiting, None);

    // Only a failed run can be retried.
    let refused = commit(&store, &t, &session, &first, |w| {
        w.transition = Some(retry())
    })
    .await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );

    // A later run queues behind the first; the first fails while waiting
    // (finishing ends the wait), and the later one runs and completes.
    let second = submit(&store, &t, &session, "second").await;
    commit(&store, &t, &session, &first, |w| {
        w.wait = Some(WaitWrite::Set(wait(9)));
    })
    .await
    .expect("waits");
    commit(&store, &t, &session, &first, |w| {
        w.transition = Some(fail())
    })
    .await
    .expect("fails");
    let failed = store.get_run(&t, &first).await.expect("get").expect("run");
    assert_eq!(failed.status, RunStatus::Failed);
    assert_eq!(failed.waiting, None, "a finished run waits for nothing");
    let next = store.next_queued_run(&t, &session).await.expect("next");
    assert_eq!(next.map(|r| r.id), Some(second.clone()));
    commit(&store, &t, &session, &second, |w| {
        w.transition = Some(RunTransition::Start)
    })
    .await
    .expect("start");

    // The retry: queued at the back (behind the running second run), with
    // its actor, an event and an audit row in the same write.
    commit(&store, &t, &session, &first, |w| {
        w.transition = Some(retry());
        w.audit = vec![NewAuditEvent {
            actor: "key:key_second".into(),
            action: "run.retry".into(),
            resource: format!("run:{first}"),
            decision: None,
            detail: json!({"previous_error": "provider_transient"}),
        }];
    })
    .await
    .expect("retry");
    let retried = store.get_run(&t, &first).await.expect("get").expect("run");
    assert_eq!(retried.status, RunStatus::Queued);
    assert_eq!(retried.error, None);
    assert_eq!(retried.finished_at, None);
    assert!(
        retried.started_at.is_some(),
        "it keeps when it first started"
    );
    assert_eq!(retried.actor.as_deref(), Some("key:key_second"));
    let next = store.next_queued_run(&t, &session).await.expect("next");
    assert_eq!(
        next.map(|r| r.id),
        Some(second.clone()),
        "the running run first"
    );
    commit(&store, &t, &session, &second, |w| {
        w.transition = Some(RunTransition::Finish {
            status: RunStatus::Completed,
            output: Some("done".into()),
            error: None,
        })
    })
    .await
    .expect("second completes");
    let third = submit(&store, &t, &session, "third").await;
    let next = store.next_queued_run(&t, &session).await.expect("next");
    assert_eq!(
        next.map(|r| r.id),
        Some(first.clone()),
        "retried before later input"
    );
    let audit = store
        .list_audit(
            &t,
            &AuditQuery {
                action: Some("run.retry".into()),
                limit: 10,
                ..AuditQuery::default()
            },
        )
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "key:key_second");

    // Its start adds no second copy of its input, and its stream tells the
    // whole story in order.
    commit(&store, &t, &session, &first, |w| {
        w.transition = Some(RunTransition::Start)
    })
    .await
    .expect("restart");
    let inputs: Vec<String> = store
        .list_items(&t, &session, 0, 100)
        .await
        .expect("items")
        .into_iter()
        .filter_map(|i| match i.content {
            ItemContent::UserMessage { text } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(inputs, ["first", "second"]);
    let names: Vec<&str> = store
        .list_events(&t, &first, 0, 100)
        .await
        .expect("events")
        .iter()
        .map(|e| e.event.name())
        .collect();
    assert_eq!(
        names,
        [
            "run_queued",
            "run_started",
            "item",
            "run_finished",
            "run_retried",
            "run_started"
        ]
    );
    let events = store.list_events(&t, &first, 0, 100).await.expect("events");
    assert_eq!(
        events[4].event,
        RunEvent::RunRetried {
            actor: Some("key:key_second".into()),
            previous_error: Some(RunError::new("provider_transient", "gave up")),
        }
    );
    let _ = third;
}

#[tokio::test]
async fn waits_and_retries_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    story(common::sqlite(&dir).await).await;
}

#[tokio::test]
async fn waits_and_retries_postgres() {
    if let Some(store) = common::postgres().await {
        story(store).await;
    }
}
