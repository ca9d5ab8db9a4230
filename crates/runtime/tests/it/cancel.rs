//! Cancellation: a queued run never starts, a running one stops at once, and
//! either way the session stays usable: every tool call has its result.

use crate::common;

use common::model::{call, calls, request_results, text, Answer, ScriptedModel};
use common::tools::ProbeTool;
use common::*;
use roster_core::event::RunEvent;
use roster_core::run::{RunStatus, StepStatus};
use roster_runtime::RuntimeError;

on_both_backends!(
    cancelling_a_queued_run_means_it_never_starts,
    cancelling_during_the_model_call,
    cancelling_while_a_tool_blocks_closes_every_call,
    cancelling_an_interrupted_run_before_it_resumes,
    cancel_racing_the_start_of_a_run,
    an_interrupting_message_cancels_the_runs_ahead_then_runs,
    a_retried_interrupting_message_cancels_nothing,
    a_rollback_drops_the_interrupted_runs_from_the_history,
    an_interrupt_stored_before_a_crash_is_carried_out_on_recovery,
);

fn interrupting(text: &str, key: Option<&str>) -> roster_runtime::Submission {
    roster_runtime::Submission {
        idempotency_key: key.map(str::to_owned),
        if_busy: roster_store::BusyPolicy::Interrupt,
        ..input(text)
    }
}

/// Every user and assistant text the model was sent in request `i`.
fn texts_sent(model: &ScriptedModel, i: usize) -> Vec<String> {
    use roster_models::ChatMessage;
    model
        .request(i)
        .messages
        .iter()
        .map(|m| match m {
            ChatMessage::User { text } | ChatMessage::Assistant { text, .. } => text.clone(),
            ChatMessage::ToolResult { output, .. } => output.clone(),
        })
        .collect()
}

async fn a_rollback_drops_the_interrupted_runs_from_the_history(db: Db) {
    let model = ScriptedModel::new(vec![
        text("first answer"),
        calls(vec![call("c1", "slow", "{}")]),
        text("the new answer"),
        text("third answer"),
    ]);
    let slow = ProbeTool::blocking("slow", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["slow"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![slow.clone()]);
    let kept = submit(&rt, &fx, "remember the kept question").await;
    finished(&rt, &fx, &kept.id, RunStatus::Completed).await;
    let running = submit(&rt, &fx, "the mistaken request").await;
    let queued = submit(&rt, &fx, "a queued follow-up").await;
    wait_until("the slow tool runs", || slow.executions() == 1).await;

    let created = rt
        .submit(
            &fx.tenant,
            &fx.session,
            roster_runtime::Submission {
                if_busy: roster_store::BusyPolicy::Rollback,
                ..input("do this instead")
            },
        )
        .await
        .expect("submit");
    let roster_store::CreatedRun::Created(new) = created else {
        panic!("a new run");
    };
    let stopped = finished(&rt, &fx, &running.id, RunStatus::Cancelled).await;
    assert!(stopped.rolled_back, "{stopped:?}");
    assert_eq!(stopped.interrupted_by.as_ref(), Some(&new.id));
    let never = finished(&rt, &fx, &queued.id, RunStatus::Cancelled).await;
    assert!(never.rolled_back);
    finished(&rt, &fx, &new.id, RunStatus::Completed).await;

    // The new input is answered as if the rolled-back runs were never sent:
    // the earlier completed turn stays, theirs is gone, calls and all.
    let sent = texts_sent(&model, 2);
    assert!(
        sent.iter().any(|t| t == "remember the kept question"),
        "{sent:?}"
    );
    assert!(sent.iter().any(|t| t == "first answer"), "{sent:?}");
    assert!(!sent.iter().any(|t| t.contains("mistaken")), "{sent:?}");
    assert!(request_results(&model.request(2)).is_empty());
    assert_valid_request(&model.request(2).messages);
    assert_eq!(sent.last().map(String::as_str), Some("do this instead"));
    // And it stays gone for the turns after it.
    let later = submit(&rt, &fx, "and then?").await;
    finished(&rt, &fx, &later.id, RunStatus::Completed).await;
    let sent = texts_sent(&model, 3);
    assert!(!sent.iter().any(|t| t.contains("mistaken")), "{sent:?}");
    assert!(sent.iter().any(|t| t == "the new answer"), "{sent:?}");
    // The session's record keeps everything, closed.
    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    assert!(items.iter().any(|i| matches!(i,
        roster_core::item::ItemContent::UserMessage { text } if text == "the mistaken request")));
    // A non-rolled-back interrupt is not marked.
    assert!(
        !store
            .get_run(&fx.tenant, &kept.id)
            .await
            .expect("get")
            .expect("run")
            .rolled_back
    );
}

async fn an_interrupt_stored_before_a_crash_is_carried_out_on_recovery(db: Db) {
    let model = ScriptedModel::new(vec![text("fresh answer")]);
    let slow = ProbeTool::new("slow", false);
    let quick = ProbeTool::new("quick", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["slow", "quick"])).await;
    let interrupted = common::journal::mid_tool(&store, &fx).await;
    // The interrupting input was stored, then the process died before it
    // cancelled anything.
    let created = store
        .create_run(
            &fx.tenant,
            roster_store::NewRun {
                turn: Default::default(),
                notify: Default::default(),
                parent: Default::default(),
                session_id: fx.session.clone(),
                input: "stop that".into(),
                idempotency_key: None,
                if_busy: roster_store::BusyPolicy::Interrupt,
                actor: None,
            },
        )
        .await
        .expect("create");
    let roster_store::CreatedRun::Created(new) = created else {
        panic!("a new run");
    };
    let rt = runtime(
        store.clone(),
        model.clone(),
        vec![slow.clone(), quick.clone()],
    );
    rt.recover().await.expect("recover");
    let stopped = finished(&rt, &fx, &interrupted, RunStatus::Cancelled).await;
    assert_eq!(stopped.interrupted_by.as_ref(), Some(&new.id));
    assert!(!stopped.rolled_back);
    let done = finished(&rt, &fx, &new.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("fresh answer"));
    // The interrupted run resumed nothing: no tool ran, no model call of its own.
    assert_eq!((slow.executions(), quick.executions()), (0, 0));
    assert_eq!(model.request_count(), 1);
    assert_history_closed(&contents(&store, &fx).await);
    assert_valid_request(&model.request(0).messages);
}

async fn an_interrupting_message_cancels_the_runs_ahead_then_runs(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "slow", "{}")]),
        text("the new answer"),
    ]);
    let slow = ProbeTool::blocking("slow", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["slow"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![slow.clone()]);
    let running = submit(&rt, &fx, "long job").await;
    let queued = submit(&rt, &fx, "queued behind it").await;
    wait_until("the slow tool runs", || slow.executions() == 1).await;

    let created = rt
        .submit(&fx.tenant, &fx.session, interrupting("stop, do this", None))
        .await
        .expect("submit");
    let roster_store::CreatedRun::Created(new) = created else {
        panic!("a new run");
    };
    finished(&rt, &fx, &running.id, RunStatus::Cancelled).await;
    finished(&rt, &fx, &queued.id, RunStatus::Cancelled).await;
    let done = finished(&rt, &fx, &new.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("the new answer"));
    // The interrupted run's call was closed; the model saw a valid history.
    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    assert_valid_request(&model.request(1).messages);
    assert_eq!(
        model.request_count(),
        2,
        "the queued run never reached the model"
    );
}

async fn a_retried_interrupting_message_cancels_nothing(db: Db) {
    let (model, gate) = ScriptedModel::gated(vec![text("done")]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let first = rt
        .submit(&fx.tenant, &fx.session, interrupting("go", Some("k1")))
        .await
        .expect("submit");
    let roster_store::CreatedRun::Created(first) = first else {
        panic!("a new run");
    };
    wait_until("the run is at the model", || model.request_count() == 1).await;
    // The client retries the same request: it gets the same run, still
    // running, not a cancelled one.
    let again = rt
        .submit(&fx.tenant, &fx.session, interrupting("go", Some("k1")))
        .await
        .expect("submit");
    assert!(
        matches!(&again, roster_store::CreatedRun::Existing(r) if r.id == first.id),
        "{again:?}"
    );
    gate.add_permits(1);
    finished(&rt, &fx, &first.id, RunStatus::Completed).await;
}

async fn cancelling_a_queued_run_means_it_never_starts(db: Db) {
    let (model, gate) = ScriptedModel::gated(vec![text("first")]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let first = submit(&rt, &fx, "first").await;
    let queued = submit(&rt, &fx, "never").await;
    wait_until("the first run is at the model", || {
        model.request_count() == 1
    })
    .await;

    let cancelled = rt.cancel(&fx.tenant, &queued.id).await.expect("cancel");
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert!(cancelled.started_at.is_none(), "{cancelled:?}");
    gate.add_permits(1);
    finished(&rt, &fx, &first.id, RunStatus::Completed).await;

    assert_eq!(
        model.request_count(),
        1,
        "the cancelled run reached the model"
    );
    let items = items(&store, &fx, &fx.session).await;
    assert!(
        items.iter().all(|i| i.run_id.as_ref() != Some(&queued.id)),
        "{items:?}"
    );
    assert!(steps(&store, &fx, &queued.id).await.is_empty());
    let events: Vec<&str> = store
        .list_events(&fx.tenant, &queued.id, 0, 100)
        .await
        .expect("events")
        .iter()
        .map(|e| e.event.name())
        .collect();
    assert_eq!(events, ["run_queued", "run_finished"]);
    let again = rt.cancel(&fx.tenant, &queued.id).await;
    assert!(
        matches!(again, Err(RuntimeError::AlreadyFinished(_))),
        "{again:?}"
    );
}

async fn cancelling_during_the_model_call(db: Db) {
    let model = ScriptedModel::new(vec![Answer::Hang, text("back")]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let run = submit(&rt, &fx, "think hard").await;
    wait_until("the model is called", || model.request_count() == 1).await;
    let cancelled = rt.cancel(&fx.tenant, &run.id).await.expect("cancel");
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert!(steps(&store, &fx, &run.id).await.is_empty());

    let next = submit(&rt, &fx, "again").await;
    finished(&rt, &fx, &next.id, RunStatus::Completed).await;
    assert_valid_request(&model.request(1).messages);
    assert_eq!(model.request(1).messages.len(), 2, "both inputs, no answer");
}

async fn cancelling_while_a_tool_blocks_closes_every_call(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "slow", "{}"), call("c2", "quick", "{}")]),
        text("fine"),
    ]);
    let slow = ProbeTool::blocking("slow", false);
    let quick = ProbeTool::new("quick", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["slow", "quick"])).await;
    let rt = runtime(
        store.clone(),
        model.clone(),
        vec![slow.clone(), quick.clone()],
    );
    let run = submit(&rt, &fx, "do both").await;
    wait_until("the slow tool runs", || slow.executions() == 1).await;
    eventually("the quick result is stored", || async {
        results(&contents(&store, &fx).await).len() == 1
    })
    .await;

    let cancelled = rt.cancel(&fx.tenant, &run.id).await.expect("cancel");
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    let mut results = results(&items);
    results.sort();
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0].0, "c1");
    assert!(
        results[0].2 && results[0].1.starts_with("cancelled"),
        "{results:?}"
    );
    assert_eq!(
        (results[1].0.as_str(), results[1].2),
        ("c2", false),
        "{results:?}"
    );
    // The journal keeps no step half done either.
    let steps = steps(&store, &fx, &run.id).await;
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert!(steps.iter().all(|s| s.status == StepStatus::Completed));

    let next = submit(&rt, &fx, "and now?").await;
    finished(&rt, &fx, &next.id, RunStatus::Completed).await;
    let request = model.request(1);
    assert_valid_request(&request.messages);
    assert_eq!(request_results(&request).len(), 2);
    assert_eq!((slow.executions(), quick.executions()), (1, 1));
}

async fn cancelling_an_interrupted_run_before_it_resumes(db: Db) {
    let model = ScriptedModel::new(vec![text("ok")]);
    let slow = ProbeTool::new("slow", false);
    let quick = ProbeTool::new("quick", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["slow", "quick"])).await;
    let run = common::journal::mid_tool(&store, &fx).await;

    // A new process; the user cancels before (or instead of) recovery.
    let rt = runtime(
        store.clone(),
        model.clone(),
        vec![slow.clone(), quick.clone()],
    );
    let cancelled = rt.cancel(&fx.tenant, &run).await.expect("cancel");
    assert_eq!(cancelled.status, RunStatus::Cancelled);
    assert_eq!((slow.executions(), quick.executions()), (0, 0));
    assert_eq!(model.request_count(), 0);
    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    let mut results = results(&items);
    results.sort();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        results[0].2 && results[0].1.starts_with("interrupted"),
        "{results:?}"
    );
    assert!(
        results[1].2 && results[1].1.starts_with("not executed"),
        "{results:?}"
    );
    assert_eq!(rt.recover().await.expect("recover"), 0);

    let next = submit(&rt, &fx, "next").await;
    finished(&rt, &fx, &next.id, RunStatus::Completed).await;
    assert_valid_request(&model.request(0).messages);
}

/// Cancels land at every point of a run's start (before the worker takes
/// it, while it starts, once it is at the model): each run ends cancelled,
/// nothing is left running, and the session serves the next input.
async fn cancel_racing_the_start_of_a_run(db: Db) {
    let model = ScriptedModel::new(vec![]);
    model.set_fallback(|_| Answer::Hang);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    for i in 0..20 {
        let run = submit(&rt, &fx, &format!("input {i}")).await;
        if i % 4 == 3 {
            tokio::task::yield_now().await;
        }
        let ended = rt.cancel(&fx.tenant, &run.id).await.expect("cancel");
        assert_eq!(ended.status, RunStatus::Cancelled, "run {i}: {ended:?}");
    }
    model.push(text("still here"));
    let last = submit(&rt, &fx, "last").await;
    let done = finished(&rt, &fx, &last.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("still here"));
    assert_history_closed(&contents(&store, &fx).await);
    for run in store
        .list_runs(&fx.tenant, &fx.session)
        .await
        .expect("runs")
    {
        let events = store
            .list_events(&fx.tenant, &run.id, 0, 1000)
            .await
            .expect("events");
        let finishes = events
            .iter()
            .filter(|e| matches!(e.event, RunEvent::RunFinished { .. }))
            .count();
        assert_eq!(finishes, 1, "run {} finished {finishes} times", run.id);
    }
}
