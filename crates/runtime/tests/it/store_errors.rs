//! A store error mid-run (a database hiccup) does not strand the run: the
//! worker resumes it from the journal, exactly as recovery would.

use crate::common;

use common::model::{call, calls, request_results, text, ScriptedModel};
use common::tools::ProbeTool;
use common::*;
use roster_core::run::RunStatus;

on_both_backends!(
    a_failed_model_step_commit_is_retried,
    a_lost_tool_result_is_resumed_as_interrupted,
);

/// The run starts as it is created, so the first commit the runner makes is
/// the model step's: when it fails, the call (which has no side effects) is
/// sent again and the run completes with one copy of each item.
async fn a_failed_model_step_commit_is_retried(db: Db) {
    let model = ScriptedModel::new(vec![text("lost"), text("hi")]);
    let (store, faults) = db.open_with_faults().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    faults.fail_next("commit");
    let run = submit(&rt, &fx, "hello").await;
    let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("hi"));
    assert_eq!(model.request_count(), 2);
    assert_eq!(contents(&store, &fx).await.len(), 2);
}

async fn a_lost_tool_result_is_resumed_as_interrupted(db: Db) {
    let model = ScriptedModel::new(vec![calls(vec![call("c1", "charge", "{}")]), text("done")]);
    let tool = ProbeTool::blocking("charge", false);
    let (store, faults) = db.open_with_faults().await;
    let fx = Fixture::new(&store, config(&["charge"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![tool.clone()]);
    let run = submit(&rt, &fx, "pay").await;
    wait_until("the tool runs", || tool.executions() == 1).await;
    // The tool finishes, but its result cannot be written.
    faults.fail_next("commit");
    tool.release();

    let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("done"));
    assert_eq!(tool.executions(), 1, "a non-idempotent tool ran twice");
    let told = request_results(&model.request(1));
    assert_eq!(told.len(), 1);
    assert!(
        told[0].2 && told[0].1.starts_with("interrupted"),
        "{told:?}"
    );
    assert_history_closed(&contents(&store, &fx).await);
}
