//! Crash recovery: a "crash" stops a runtime mid-run without journaling
//! anything (`Runtime::shutdown`), then a new runtime on a reopened store
//! resumes the run with `recover()`. Completed steps are never redone; a
//! tool interrupted mid-flight is retried only if it is idempotent.

use crate::common;

use common::model::{call, calls, request_results, text, Answer, ScriptedModel};
use common::tools::ProbeTool;
use common::*;
use roster_core::item::ItemContent;
use roster_core::run::{RunStatus, StepKind, StepStatus};
use roster_testkit::{FakeModelServer, Reply};

on_both_backends!(
    crash_during_model_call_resends_it,
    crash_during_non_idempotent_tool_records_interrupted,
    crash_during_idempotent_tool_reruns_it_under_the_same_step,
    crash_between_tool_step_and_model_call_redoes_nothing,
    shutdown_journals_nothing_and_refuses_new_work,
);

async fn crash_during_model_call_resends_it(db: Db) {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("never delivered").hang());
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store, openai(&server), vec![]);
    let run = submit(&rt, &fx, "hello").await;
    wait_until("the model is called", || server.request_count() == 1).await;
    crash(rt).await;

    server.push(Reply::text("Hi there"));
    let store = db.open().await;
    let rt = runtime(store.clone(), openai(&server), vec![]);
    assert_eq!(rt.recover().await.expect("recover"), 1);
    let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("Hi there"));

    // The call had no effect, so it was sent again, with the same context.
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body["messages"], requests[1].body["messages"]);
    assert_eq!(
        contents(&store, &fx).await,
        vec![
            ItemContent::UserMessage {
                text: "hello".into()
            },
            ItemContent::AssistantMessage {
                text: "Hi there".into(),
                tool_calls: vec![]
            },
        ]
    );
    let steps = steps(&store, &fx, &run.id).await;
    assert_eq!(steps.len(), 1);
    assert_step(&steps[0], 1, StepKind::ModelCall);
}

async fn crash_during_non_idempotent_tool_records_interrupted(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "charge", r#"{"x":"card"}"#)]),
        text("done"),
    ]);
    let tool = ProbeTool::blocking("charge", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["charge"])).await;
    let rt = runtime(store, model.clone(), vec![tool.clone()]);
    let run = submit(&rt, &fx, "pay").await;
    // Queued behind the interrupted run: must still run, after it.
    let next = submit(&rt, &fx, "and then?").await;
    wait_until("the tool runs", || tool.executions() == 1).await;
    crash(rt).await;

    tool.release(); // a re-run would now finish, and be counted
    model.push(text("nothing more"));
    let store = db.open().await;
    let rt = runtime(store.clone(), model.clone(), vec![tool.clone()]);
    assert_eq!(rt.recover().await.expect("recover"), 2);
    let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("done"));
    finished(&rt, &fx, &next.id, RunStatus::Completed).await;

    assert_eq!(tool.executions(), 1, "a non-idempotent tool was run again");
    assert_eq!(model.request_count(), 3);
    // The model was told, and went on.
    let told = request_results(&model.request(1));
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].0, "c1");
    assert!(told[0].1.starts_with("interrupted"), "{}", told[0].1);
    assert!(told[0].2);
    assert_eq!(
        common::model::last_user_text(&model.request(2)).as_deref(),
        Some("and then?")
    );

    let steps = steps(&store, &fx, &run.id).await;
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_step(&steps[0], 1, StepKind::ModelCall);
    assert_step(&steps[1], 2, StepKind::ToolCall);
    assert_step(&steps[2], 3, StepKind::ModelCall);
    let outcome = tool_outcome(&steps[1]);
    assert!(outcome.is_error && outcome.output.starts_with("interrupted"));

    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    let results = results(&items);
    assert_eq!(results.len(), 1);
    assert!(results[0].2 && results[0].1.starts_with("interrupted"));
}

async fn crash_during_idempotent_tool_reruns_it_under_the_same_step(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "lookup", r#"{"x":"q"}"#)]),
        text("found"),
    ]);
    let tool = ProbeTool::blocking("lookup", true);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["lookup"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![tool.clone()]);
    let run = submit(&rt, &fx, "look it up").await;
    wait_until("the tool runs", || tool.executions() == 1).await;
    // Each step is journaled before the next begins.
    let before = steps(&store, &fx, &run.id).await;
    assert_eq!(before.len(), 2, "{before:?}");
    assert_step(&before[0], 1, StepKind::ModelCall);
    assert_eq!((before[1].n, before[1].status), (2, StepStatus::Started));
    drop(store);
    crash(rt).await;

    tool.release();
    let store = db.open().await;
    let rt = runtime(store.clone(), model.clone(), vec![tool.clone()]);
    assert_eq!(rt.recover().await.expect("recover"), 1);
    let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("found"));

    assert_eq!(tool.executions(), 2, "re-run exactly once more");
    assert_eq!(model.request_count(), 2, "the model call was not re-sent");
    let steps = steps(&store, &fx, &run.id).await;
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_step(&steps[1], 2, StepKind::ToolCall);
    let outcome = tool_outcome(&steps[1]);
    assert!(!outcome.is_error, "{outcome:?}");
    assert_eq!(outcome.output, r#"lookup did {"x":"q"}"#);
    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    assert_eq!(results(&items).len(), 1);
}

async fn crash_between_tool_step_and_model_call_redoes_nothing(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "note", "{}")]),
        // The second model call is in flight when the process dies.
        Answer::Hang,
    ]);
    let tool = ProbeTool::new("note", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["note"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![tool.clone()]);
    let run = submit(&rt, &fx, "write it down").await;
    wait_until("the second model call", || model.request_count() == 2).await;
    let before = steps(&store, &fx, &run.id).await;
    assert_eq!(before.len(), 2, "the tool step is journaled: {before:?}");
    assert_step(&before[1], 2, StepKind::ToolCall);
    drop(store);
    crash(rt).await;

    model.push(text("noted"));
    let store = db.open().await;
    let rt = runtime(store.clone(), model.clone(), vec![tool.clone()]);
    assert_eq!(rt.recover().await.expect("recover"), 1);
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;

    assert_eq!(tool.executions(), 1, "the completed tool call ran again");
    // Only the lost call is sent again: first call once, second twice.
    assert_eq!(model.request_count(), 3);
    assert_eq!(model.request(1).messages, model.request(2).messages);
    let steps = steps(&store, &fx, &run.id).await;
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_step(&steps[2], 3, StepKind::ModelCall);
    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    assert_eq!(items.len(), 4, "{items:?}");
}

async fn shutdown_journals_nothing_and_refuses_new_work(db: Db) {
    let model = ScriptedModel::new(vec![Answer::Hang]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let running = submit(&rt, &fx, "first").await;
    let queued = submit(&rt, &fx, "second").await;
    wait_until("the model is called", || model.request_count() == 1).await;
    let events_before = store
        .list_events(&fx.tenant, &running.id, 0, 100)
        .await
        .expect("events");
    rt.shutdown().await;

    let refused = rt.submit(&fx.tenant, &fx.session, input("third")).await;
    assert!(
        matches!(refused, Err(roster_runtime::RuntimeError::ShuttingDown)),
        "{refused:?}"
    );
    assert!(rt.recover().await.is_err());
    assert!(rt.subscribe(&running.id).is_none());
    // Left exactly as a crash leaves it.
    let status = |id| {
        let store = store.clone();
        let tenant = fx.tenant.clone();
        async move {
            store
                .get_run(&tenant, &id)
                .await
                .expect("get")
                .expect("run")
                .status
        }
    };
    assert_eq!(status(running.id.clone()).await, RunStatus::Running);
    assert_eq!(status(queued.id.clone()).await, RunStatus::Queued);
    let events_after = store
        .list_events(&fx.tenant, &running.id, 0, 100)
        .await
        .expect("events");
    assert_eq!(events_before, events_after);
    assert_eq!(
        store
            .list_runs(&fx.tenant, &fx.session)
            .await
            .expect("runs")
            .len(),
        2
    );
}
