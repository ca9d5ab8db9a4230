//! Recovery of a run whose model asked for several tool calls: each call is
//! resolved on its own (done, never begun, or interrupted), so a crash in a
//! batch neither repeats nor loses any of them.

use crate::common;

use common::journal::{after_model_step, mid_tool};
use common::model::{call, calls, request_results, text, ScriptedModel};
use common::tools::ProbeTool;
use common::*;
use roster_core::run::{RunStatus, StepKind};

on_both_backends!(
    crash_mid_batch_keeps_done_calls_and_closes_the_interrupted_one,
    crash_right_after_the_model_step_runs_its_tools_once,
    crash_mid_tool_runs_the_calls_never_begun,
);

async fn crash_mid_batch_keeps_done_calls_and_closes_the_interrupted_one(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "slow", "{}"), call("c2", "quick", "{}")]),
        text("done"),
    ]);
    let slow = ProbeTool::blocking("slow", false);
    let quick = ProbeTool::new("quick", false);
    let tools = || vec![slow.clone() as _, quick.clone() as _];
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["slow", "quick"])).await;
    let rt = runtime(store.clone(), model.clone(), tools());
    let run = submit(&rt, &fx, "both").await;
    wait_until("the slow tool runs", || slow.executions() == 1).await;
    eventually("the quick result is stored", || async {
        results(&contents(&store, &fx).await).len() == 1
    })
    .await;
    drop(store);
    crash(rt).await;

    slow.release();
    let store = db.open().await;
    let rt = runtime(store.clone(), model.clone(), tools());
    assert_eq!(rt.recover().await.expect("recover"), 1);
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;

    assert_eq!((slow.executions(), quick.executions()), (1, 1));
    assert_eq!(model.request_count(), 2);
    let mut told = request_results(&model.request(1));
    told.sort();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told[0].0 == "c1" && told[0].2 && told[0].1.starts_with("interrupted"));
    assert!(told[1].0 == "c2" && !told[1].2, "{told:?}");
    let steps = steps(&store, &fx, &run.id).await;
    assert_eq!(steps.len(), 4, "{steps:?}");
    for (i, step) in steps.iter().enumerate() {
        let kind = if i == 0 || i == 3 {
            StepKind::ModelCall
        } else {
            StepKind::ToolCall
        };
        assert_step(step, i as i64 + 1, kind);
    }
    assert_history_closed(&contents(&store, &fx).await);
}

async fn crash_right_after_the_model_step_runs_its_tools_once(db: Db) {
    let model = ScriptedModel::new(vec![text("both done")]);
    let slow = ProbeTool::new("slow", false);
    let quick = ProbeTool::new("quick", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["slow", "quick"])).await;
    let run = after_model_step(&store, &fx).await;

    let rt = runtime(
        store.clone(),
        model.clone(),
        vec![slow.clone(), quick.clone()],
    );
    assert_eq!(rt.recover().await.expect("recover"), 1);
    finished(&rt, &fx, &run, RunStatus::Completed).await;
    // The model step was done: not asked again, its calls simply run.
    assert_eq!(model.request_count(), 1);
    assert_eq!((slow.executions(), quick.executions()), (1, 1));
    let told = request_results(&model.request(0));
    assert_eq!(told.len(), 2);
    assert!(told.iter().all(|(_, _, err)| !err), "{told:?}");
    let steps = steps(&store, &fx, &run).await;
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert_step(&steps[3], 4, StepKind::ModelCall);
    assert_history_closed(&contents(&store, &fx).await);
}

async fn crash_mid_tool_runs_the_calls_never_begun(db: Db) {
    let model = ScriptedModel::new(vec![text("as far as I know")]);
    let slow = ProbeTool::new("slow", false);
    let quick = ProbeTool::new("quick", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["slow", "quick"])).await;
    let run = mid_tool(&store, &fx).await;

    let rt = runtime(
        store.clone(),
        model.clone(),
        vec![slow.clone(), quick.clone()],
    );
    assert_eq!(rt.recover().await.expect("recover"), 1);
    finished(&rt, &fx, &run, RunStatus::Completed).await;
    assert_eq!((slow.executions(), quick.executions()), (0, 1));
    let mut told = request_results(&model.request(0));
    told.sort();
    assert!(told[0].0 == "c1" && told[0].2 && told[0].1.starts_with("interrupted"));
    assert!(told[1].0 == "c2" && !told[1].2, "{told:?}");
    let steps = steps(&store, &fx, &run).await;
    assert_eq!(steps.len(), 4, "{steps:?}");
    assert!(tool_outcome(&steps[1]).is_error);
    assert!(!tool_outcome(&steps[2]).is_error);
    assert_history_closed(&contents(&store, &fx).await);
}
