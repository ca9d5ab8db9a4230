//! What the model asks for: bad calls are told back to it as error results
//! and the run goes on; parallel calls run concurrently; a model that never
//! stops calling tools hits `max_steps` with every call answered.

use crate::common;

use common::model::{call, calls, request_results, text, ScriptedModel};
use common::tools::{BarrierTool, ProbeTool};
use common::*;
use roster_core::item::ItemContent;
use roster_core::run::RunStatus;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Barrier;

on_both_backends!(
    bad_calls_are_told_to_the_model,
    made_up_call_ids_never_collide,
    parallel_calls_run_concurrently,
    max_steps_fails_with_every_call_answered,
    the_same_call_three_times_in_a_row_stops_the_run,
    arguments_failing_the_schema_are_refused_then_the_run_stops,
    a_required_tool_choice_holds_only_the_runs_first_call,
);

async fn a_required_tool_choice_holds_only_the_runs_first_call(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "probe", r#"{"x":"1"}"#)]),
        text("done"),
        calls(vec![call("c2", "probe", r#"{"x":"2"}"#)]),
        text("again"),
    ]);
    let probe = ProbeTool::new("probe", false);
    let store = db.open().await;
    let mut agent = config(&["probe"]);
    agent.tool_choice = roster_core::agent::ToolChoice::Required;
    let fx = Fixture::new(&store, agent).await;
    let rt = runtime(store.clone(), model.clone(), vec![probe.clone()]);
    for (run_input, output) in [("go", "done"), ("more", "again")] {
        let run = submit(&rt, &fx, run_input).await;
        let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
        assert_eq!(done.output.as_deref(), Some(output));
    }
    let choices: Vec<_> = (0..4).map(|i| model.request(i).tool_choice).collect();
    use roster_core::agent::ToolChoice::{Auto, Required};
    // Each run's first call must call a tool; the one after the results
    // is free to answer.
    assert_eq!(choices, vec![Required, Auto, Required, Auto]);
}

async fn bad_calls_are_told_to_the_model(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![
            call("bad_json", "probe", "{not json"),
            call("unknown", "launch_missiles", "{}"),
            call("array", "probe", "[1, 2]"),
            call("dup", "probe", r#"{"x":"first"}"#),
            call("dup", "probe", r#"{"x":"second"}"#),
            call("", "probe", r#"{"x":"no id"}"#),
            // Registered in the runtime, but not one of this agent's tools.
            call("not_mine", "other", "{}"),
            call("no_args", "probe", ""),
        ]),
        text("recovered"),
    ]);
    let probe = ProbeTool::new("probe", false);
    let other = ProbeTool::new("other", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["probe"])).await;
    let rt = runtime(
        store.clone(),
        model.clone(),
        vec![probe.clone(), other.clone()],
    );
    let run = submit(&rt, &fx, "go").await;
    let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("recovered"));

    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    let ItemContent::AssistantMessage { tool_calls, .. } = &items[1] else {
        panic!("expected the model's calls, got {:?}", items[1]);
    };
    let ids: HashSet<&str> = tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), 8, "call ids must be unique: {tool_calls:?}");
    assert!(tool_calls.iter().all(|c| !c.id.trim().is_empty()));

    let told = request_results(&model.request(1));
    assert_eq!(told.len(), 8, "{told:?}");
    let result = |id: &str| {
        told.iter()
            .find(|(call, _, _)| call == id)
            .unwrap_or_else(|| panic!("no result for {id}: {told:?}"))
            .clone()
    };
    let (_, out, err) = result("bad_json");
    assert!(err && out.contains("not valid JSON"), "{out}");
    let (_, out, err) = result("unknown");
    assert!(err && out.contains("unknown tool `launch_missiles`") && out.contains("probe"));
    let (_, out, err) = result("array");
    assert!(err && out.contains("must be a JSON object"), "{out}");
    let (_, out, err) = result("not_mine");
    assert!(err && out.contains("unknown tool `other`"), "{out}");
    let (_, out, err) = result("no_args");
    assert!(!err && out == "probe did {}", "{out}");
    // Both calls sharing an id ran, each under its own id.
    let (_, out, err) = result("dup");
    assert!(!err && out.contains("first"), "{out}");
    let renamed: Vec<_> = told
        .iter()
        .filter(|(id, _, _)| {
            !["bad_json", "unknown", "array", "dup", "not_mine", "no_args"].contains(&id.as_str())
        })
        .collect();
    assert_eq!(renamed.len(), 2, "{renamed:?}");
    assert!(renamed.iter().all(|(_, _, err)| !err));
    // Only the well-formed calls to the agent's own tool ran.
    assert_eq!((probe.executions(), other.executions()), (4, 0));
}

/// A call without an id gets one made up (`call_<step>_<index>`), which must
/// not be one the model already used.
async fn made_up_call_ids_never_collide(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![
            call("call_1_1", "probe", "{}"),
            call("", "probe", "{}"),
            call("call_1_1", "probe", "{}"),
        ]),
        text("ok"),
    ]);
    let probe = ProbeTool::new("probe", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["probe"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![probe.clone()]);
    let run = submit(&rt, &fx, "go").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    assert_eq!(results(&items).len(), 3);
    assert_eq!(probe.executions(), 3);
    assert_valid_request(&model.request(1).messages);
}

async fn parallel_calls_run_concurrently(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("m1", "meet", "{}"), call("m2", "meet", "{}")]),
        text("met"),
    ]);
    let meet = Arc::new(BarrierTool {
        barrier: Arc::new(Barrier::new(2)),
    });
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["meet"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![meet]);
    let run = submit(&rt, &fx, "meet twice").await;
    // Run one after the other, each call would wait for the other forever.
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let results = results(&contents(&store, &fx).await);
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|(_, out, err)| out == "met" && !err));
}

async fn max_steps_fails_with_every_call_answered(db: Db) {
    let model = ScriptedModel::new(vec![]);
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = counter.clone();
    model.set_fallback(move |_| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Different arguments each time: the same calls repeated would be
        // stopped earlier, by the repeated-call guard.
        let (a, b) = (format!(r#"{{"x": "a{i}"}}"#), format!(r#"{{"x": "b{i}"}}"#));
        calls(vec![
            call(&format!("a{i}"), "probe", &a),
            call(&format!("b{i}"), "probe", &b),
        ])
    });
    let probe = ProbeTool::new("probe", false);
    let store = db.open().await;
    let mut config = config(&["probe"]);
    config.max_steps = 3;
    let fx = Fixture::new(&store, config).await;
    let rt = runtime(store.clone(), model.clone(), vec![probe.clone()]);
    let run = submit(&rt, &fx, "loop forever").await;
    let failed = finished(&rt, &fx, &run.id, RunStatus::Failed).await;
    assert_eq!(
        failed.error.as_ref().map(|e| e.code.as_str()),
        Some("max_steps_exceeded")
    );
    assert_eq!(model.request_count(), 3);
    assert_eq!(probe.executions(), 6);
    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    assert_eq!(results(&items).len(), 6);
    assert_eq!(steps(&store, &fx, &run.id).await.len(), 9);

    // The session goes on.
    model.push(text("stopped"));
    let next = submit(&rt, &fx, "enough").await;
    finished(&rt, &fx, &next.id, RunStatus::Completed).await;
    assert_valid_request(&model.request(3).messages);
}

/// A model that makes the same call with the same arguments three times in
/// a row is stopped: the third call is not run and gets an error result,
/// and the session goes on.
async fn the_same_call_three_times_in_a_row_stops_the_run(db: Db) {
    let model = ScriptedModel::new(vec![]);
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = counter.clone();
    model.set_fallback(move |_| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        calls(vec![call(&format!("r{i}"), "probe", r#"{"x": "same"}"#)])
    });
    let probe = ProbeTool::new("probe", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["probe"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![probe.clone()]);
    let run = submit(&rt, &fx, "loop on one call").await;
    let failed = finished(&rt, &fx, &run.id, RunStatus::Failed).await;
    let error = failed.error.expect("an error");
    assert_eq!(error.code, "repeated_tool_call");
    assert!(error.message.contains("probe"), "{}", error.message);
    assert_eq!(model.request_count(), 3);
    assert_eq!(probe.executions(), 2);
    let items = contents(&store, &fx).await;
    assert_history_closed(&items);
    assert_eq!(results(&items).len(), 3);

    model.push(text("fine"));
    let next = submit(&rt, &fx, "something else").await;
    finished(&rt, &fx, &next.id, RunStatus::Completed).await;
    assert_valid_request(&model.request(3).messages);
}

/// Arguments that fail the tool's JSON Schema never reach the tool: the
/// model is told what is wrong and may retry; a third refusal stops the run.
async fn arguments_failing_the_schema_are_refused_then_the_run_stops(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "probe", r#"{"x": 42}"#)]),
        calls(vec![call("c2", "probe", r#"{"x": "fixed"}"#)]),
        text("done"),
    ]);
    let probe = ProbeTool::new("probe", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["probe"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![probe.clone()]);
    let run = submit(&rt, &fx, "go").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let told = request_results(&model.request(1));
    let (_, out, err) = told[0].clone();
    assert!(err, "{out}");
    assert!(out.contains("invalid arguments for `probe`"), "{out}");
    assert!(out.contains("/x"), "names where: {out}");
    // Only the corrected call ran.
    assert_eq!(probe.executions(), 1);

    // A model that keeps sending bad arguments is stopped.
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = counter.clone();
    model.set_fallback(move |_| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Different bad arguments each time (the same ones repeated would
        // meet the repeated-call guard first).
        calls(vec![call(
            &format!("bad{i}"),
            "probe",
            &format!(r#"{{"x": [{i}]}}"#),
        )])
    });
    let run = submit(&rt, &fx, "again").await;
    let failed = finished(&rt, &fx, &run.id, RunStatus::Failed).await;
    assert_eq!(
        failed.error.as_ref().map(|e| e.code.as_str()),
        Some("invalid_tool_arguments")
    );
    assert_eq!(counter.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(probe.executions(), 1);
    assert_history_closed(&contents(&store, &fx).await);
}
