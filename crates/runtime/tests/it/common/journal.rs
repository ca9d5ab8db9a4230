//! Journals written straight through the store: the exact state a crash
//! leaves at a chosen point, and long sessions built fast.

use super::model::call;
use super::Fixture;
use roster_core::item::{ItemContent, ToolCall};
use roster_core::machine::{ModelReply, StepOutput};
use roster_core::run::{RunStatus, StepKind};
use roster_core::RunId;
use roster_store::{DynStore, JournalWrite, NewRun, RunTransition, StepWrite};
use serde_json::json;

/// A run of the fixture's session, started (its input is the first item).
pub async fn started_run(store: &DynStore, fx: &Fixture, input: &str) -> RunId {
    let run = store
        .create_run(
            &fx.tenant,
            NewRun {
                turn: Default::default(),
                notify: Default::default(),
                parent: Default::default(),
                session_id: fx.session.clone(),
                input: input.into(),
                idempotency_key: None,
                if_busy: Default::default(),
                actor: None,
            },
        )
        .await
        .expect("run")
        .run()
        .clone();
    // A run with nothing ahead of it starts as it is created.
    if run.status == roster_core::run::RunStatus::Queued {
        let mut start = JournalWrite::new(run.id.clone(), fx.session.clone());
        start.transition = Some(RunTransition::Start);
        store.commit(&fx.tenant, start).await.expect("start");
    }
    run.id
}

/// The two calls the model of [`after_model_step`] asked for.
pub fn two_calls() -> Vec<ToolCall> {
    vec![call("c1", "slow", "{}"), call("c2", "quick", "{}")]
}

/// The journal a crash leaves right after the first model call (step 1)
/// asked for [`two_calls`], before any tool began.
pub async fn after_model_step(store: &DynStore, fx: &Fixture) -> RunId {
    let run = started_run(store, fx, "do two things").await;
    let reply = ModelReply {
        text: String::new(),
        tool_calls: two_calls(),
        route: "fake/test-model".into(),
    };
    let mut write = JournalWrite::new(run.clone(), fx.session.clone());
    write.steps.push(StepWrite::Completed {
        n: 1,
        kind: StepKind::ModelCall,
        input: json!({}),
        output: serde_json::to_value(StepOutput::ModelCall(reply)).expect("json"),
    });
    write.items = vec![ItemContent::AssistantMessage {
        text: String::new(),
        tool_calls: two_calls(),
    }];
    store.commit(&fx.tenant, write).await.expect("model step");
    run
}

/// Like [`after_model_step`], with the first call (`c1`, step 2) started
/// and never finished.
pub async fn mid_tool(store: &DynStore, fx: &Fixture) -> RunId {
    let run = after_model_step(store, fx).await;
    let mut started = JournalWrite::new(run.clone(), fx.session.clone());
    started.steps.push(StepWrite::Started {
        n: 2,
        kind: StepKind::ToolCall,
        input: json!({ "call": two_calls()[0] }),
    });
    store
        .commit(&fx.tenant, started)
        .await
        .expect("tool started");
    run
}

/// Appends `items` to the session as one finished run, in large commits.
pub async fn seed(store: &DynStore, fx: &Fixture, items: Vec<ItemContent>) {
    let run = started_run(store, fx, "seed").await;
    let write = || JournalWrite::new(run.clone(), fx.session.clone());
    for chunk in items.chunks(250) {
        let mut batch = write();
        batch.items = chunk.to_vec();
        store.commit(&fx.tenant, batch).await.expect("items");
    }
    let mut finish = write();
    finish.transition = Some(RunTransition::Finish {
        status: RunStatus::Completed,
        output: Some("seeded".into()),
        error: None,
    });
    store.commit(&fx.tenant, finish).await.expect("finish");
}
