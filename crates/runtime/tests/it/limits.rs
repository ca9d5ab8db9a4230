//! Limits on runs executing at once: runs past a tenant's or an agent's
//! limit stay queued with the reason, start in the order they began to
//! wait (a busy session does not jump the queue), never deadlock a
//! delegation, and survive a restart.

use crate::common;

use common::model::{call, calls, last_user_text, text, ScriptedModel};
use common::*;
use roster_core::agent::NewAgent;
use roster_core::limits::RunLimits;
use roster_core::run::{Run, RunStatus};
use roster_store::{CreatedRun, DynStore, NewAuditEvent};

on_both_backends!(
    a_tenant_limit_holds_the_rest_with_a_reason_and_starts_them_in_order,
    an_agent_limit_holds_only_that_agents_runs,
    a_busy_session_does_not_jump_the_queue,
    a_synchronous_ask_runs_on_its_callers_slot,
    held_runs_wait_across_a_restart,
    a_held_run_is_cancelled_at_once,
);

async fn limit_tenant(store: &DynStore, fx: &Fixture, limits: RunLimits) {
    store
        .set_tenant_limits(
            &fx.tenant,
            limits,
            NewAuditEvent {
                actor: "test".into(),
                action: "limits.set".into(),
                resource: String::new(),
                decision: None,
                detail: serde_json::json!({}),
            },
        )
        .await
        .expect("limits");
}

async fn send(
    rt: &roster_runtime::Runtime,
    fx: &Fixture,
    session: &roster_core::SessionId,
    text: &str,
) -> Run {
    match rt
        .submit(&fx.tenant, session, input(text))
        .await
        .expect("submit")
    {
        CreatedRun::Created(run) | CreatedRun::Existing(run) => run,
    }
}

async fn run_of(store: &DynStore, fx: &Fixture, run: &Run) -> Run {
    store
        .get_run(&fx.tenant, &run.id)
        .await
        .expect("get")
        .expect("run")
}

/// A tenant allowed `runs` at once, its agent answering `done` to each
/// model call the returned gate lets through.
async fn limited(
    db: &Db,
    runs: u32,
) -> (
    std::sync::Arc<ScriptedModel>,
    std::sync::Arc<tokio::sync::Semaphore>,
    DynStore,
    Fixture,
) {
    let (model, gate) = ScriptedModel::gated(vec![]);
    model.set_fallback(|_| text("done"));
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    limit_tenant(
        &store,
        &fx,
        RunLimits {
            runs: Some(runs),
            runs_per_agent: None,
        },
    )
    .await;
    (model, gate, store, fx)
}

/// The inputs of the model calls so far, in the order they were made.
fn order(model: &ScriptedModel) -> Vec<String> {
    model.requests().iter().filter_map(last_user_text).collect()
}

async fn a_tenant_limit_holds_the_rest_with_a_reason_and_starts_them_in_order(db: Db) {
    let (model, gate, store, fx) = limited(&db, 2).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let mut runs = Vec::new();
    for i in 0..5 {
        let session = fx.new_session(&store).await;
        runs.push(send(&rt, &fx, &session, &format!("s{i}")).await);
    }
    wait_until("two runs call the model", || model.request_count() == 2).await;
    let usage = store.limit_usage(&fx.tenant).await.expect("usage");
    assert_eq!((usage.running, usage.waiting), (2, 3), "{usage:?}");
    for run in &runs[2..] {
        let now = run_of(&store, &fx, run).await;
        assert_eq!(now.status, RunStatus::Queued);
        let reason = now.queued_reason.expect("a reason");
        assert_eq!(reason.reason, "tenant_limit", "{reason:?}");
        assert!(reason.detail.contains("2 of the tenant's 2"), "{reason:?}");
    }
    gate.add_permits(100);
    for run in &runs {
        let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
        assert!(done.queued_reason.is_none(), "{done:?}");
    }
    assert_eq!(model.max_in_flight(), 2);
    // The first two started at once; the waiting ones only as slots freed
    // (two slots freed together start two waiting runs at once, in either
    // order; the strict order is `a_busy_session_does_not_jump_the_queue`'s).
    let mut order = order(&model);
    order[0..2].sort();
    assert_eq!(order[0..2], ["s0", "s1"]);
    let usage = store.limit_usage(&fx.tenant).await.expect("usage");
    assert_eq!((usage.running, usage.waiting), (0, 0));
}

async fn an_agent_limit_holds_only_that_agents_runs(db: Db) {
    let (model, gate) = ScriptedModel::gated(vec![]);
    model.set_fallback(|_| text("done"));
    let store = db.open().await;
    let mut narrow = config(&[]);
    narrow.max_running = Some(1);
    let fx = Fixture::new(&store, narrow).await;
    let other = store
        .create_agent(
            &fx.tenant,
            NewAgent {
                name: "other".into(),
                config: config(&[]),
                memory_blocks: vec![],
            },
            "test",
        )
        .await
        .expect("agent");
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let a1 = fx.new_session(&store).await;
    let a2 = fx.new_session(&store).await;
    let first = send(&rt, &fx, &a1, "a1").await;
    let held = send(&rt, &fx, &a2, "a2").await;
    let mut others = Vec::new();
    for i in 0..2 {
        let session = store
            .create_session(&fx.tenant, &other.id, other.version)
            .await
            .expect("session")
            .id;
        others.push(send(&rt, &fx, &session, &format!("b{i}")).await);
    }
    wait_until("three runs call the model", || model.request_count() == 3).await;
    let now = run_of(&store, &fx, &held).await;
    assert_eq!(now.status, RunStatus::Queued);
    assert_eq!(now.queued_reason.expect("reason").reason, "agent_limit");
    let usage = store.limit_usage(&fx.tenant).await.expect("usage");
    let mine = usage
        .agents
        .iter()
        .find(|a| a.agent_id == fx.agent.id)
        .expect("the limited agent is listed");
    assert_eq!((mine.limit, mine.running, mine.waiting), (Some(1), 1, 1));
    gate.add_permits(100);
    for run in [&first, &held, &others[0], &others[1]] {
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
}

async fn a_busy_session_does_not_jump_the_queue(db: Db) {
    let (model, gate, store, fx) = limited(&db, 1).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let busy = fx.new_session(&store).await;
    let quiet = fx.new_session(&store).await;
    let mut runs = Vec::new();
    for text in ["x1", "x2", "x3"] {
        runs.push(send(&rt, &fx, &busy, text).await);
    }
    wait_until("x1 calls the model", || model.request_count() == 1).await;
    runs.push(send(&rt, &fx, &quiet, "y1").await);
    gate.add_permits(100);
    for run in &runs {
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
    // y1 began waiting while x1 ran; x2 only when x1 ended.
    assert_eq!(order(&model), ["x1", "y1", "x2", "x3"]);
    assert_eq!(model.max_in_flight(), 1);
}

async fn a_synchronous_ask_runs_on_its_callers_slot(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "ask_researcher", r#"{"input":"find X"}"#)]),
        text("X is 42"),
        text("The answer is 42"),
    ]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["agent:researcher"])).await;
    store
        .create_agent(
            &fx.tenant,
            NewAgent {
                name: "researcher".into(),
                config: config(&[]),
                memory_blocks: vec![],
            },
            "test",
        )
        .await
        .expect("researcher");
    limit_tenant(
        &store,
        &fx,
        RunLimits {
            runs: Some(1),
            runs_per_agent: Some(1),
        },
    )
    .await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let run = match rt
        .submit(
            &fx.tenant,
            &fx.session,
            roster_runtime::Submission {
                actor: Some("key:key_test".into()),
                ..input("what is X?")
            },
        )
        .await
        .expect("submit")
    {
        CreatedRun::Created(run) | CreatedRun::Existing(run) => run,
    };
    let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("The answer is 42"));
}

async fn held_runs_wait_across_a_restart(db: Db) {
    let (model, gate, store, fx) = limited(&db, 1).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let mut runs = Vec::new();
    for i in 0..3 {
        let session = fx.new_session(&store).await;
        runs.push(send(&rt, &fx, &session, &format!("s{i}")).await);
    }
    wait_until("the first run calls the model", || {
        model.request_count() == 1
    })
    .await;
    rt.shutdown().await;

    let (model, gate2) = ScriptedModel::gated(vec![]);
    model.set_fallback(|_| text("done"));
    drop(gate);
    let store = db.open().await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    rt.recover().await.expect("recover");
    wait_until("the resumed run calls the model", || {
        model.request_count() == 1
    })
    .await;
    let waiting = store.limit_usage(&fx.tenant).await.expect("usage").waiting;
    assert_eq!(waiting, 2);
    gate2.add_permits(100);
    for run in &runs {
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
    assert_eq!(model.max_in_flight(), 1);
    assert_eq!(order(&model), ["s0", "s1", "s2"]);
}

async fn a_held_run_is_cancelled_at_once(db: Db) {
    let (model, gate, store, fx) = limited(&db, 1).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let first = send(&rt, &fx, &fx.session, "first").await;
    let other = fx.new_session(&store).await;
    let held = send(&rt, &fx, &other, "held").await;
    wait_until("the first run calls the model", || {
        model.request_count() == 1
    })
    .await;
    // Its worker tried to start it, was refused a slot and left.
    eventually("the held run's reason", || {
        let (store, fx_tenant, id) = (store.clone(), fx.tenant.clone(), held.id.clone());
        async move {
            let run = store
                .get_run(&fx_tenant, &id)
                .await
                .expect("get")
                .expect("run");
            run.queued_reason.is_some()
        }
    })
    .await;
    let started = std::time::Instant::now();
    let cancelled = rt.cancel(&fx.tenant, &held.id).await.expect("cancel");
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the cancel waited {:?} for a worker that had left",
        started.elapsed()
    );
    gate.add_permits(10);
    finished(&rt, &fx, &first.id, RunStatus::Completed).await;
    assert_eq!(order(&model), ["first"]);
}
