//! A failed run ends `failed` with the provider's error, its attempts are in
//! the ledger, its history is closed, and the session serves the next input.

use crate::common;

use common::model::{call, calls, text, Answer, ScriptedModel};
use common::tools::ProbeTool;
use common::*;
use roster_core::ledger::LedgerEntry;
use roster_core::run::RunStatus;
use roster_models::ProviderError;
use roster_store::{DynStore, LedgerQuery};

on_both_backends!(
    a_model_error_fails_the_run_not_the_session,
    a_model_error_after_tools_leaves_every_call_answered,
    an_unknown_provider_fails_the_run,
);

async fn ledger(store: &DynStore, fx: &Fixture, run: &roster_core::RunId) -> Vec<LedgerEntry> {
    let mut entries = store
        .list_ledger(
            &fx.tenant,
            &LedgerQuery {
                run_id: Some(run.clone()),
                limit: 100,
                ..LedgerQuery::default()
            },
        )
        .await
        .expect("ledger");
    entries.reverse(); // oldest first
    entries
}

async fn a_model_error_fails_the_run_not_the_session(db: Db) {
    let model = ScriptedModel::new(vec![
        Answer::Fail(ProviderError::Transient {
            message: "upstream 503".into(),
        }),
        text("better now"),
    ]);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let run = submit(&rt, &fx, "hello").await;
    let failed = finished(&rt, &fx, &run.id, RunStatus::Failed).await;
    let error = failed.error.expect("error recorded");
    assert_eq!(error.code, "provider_transient");
    assert!(error.message.contains("upstream 503"), "{error:?}");
    let entries = ledger(&store, &fx, &run.id).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].outcome, "provider_transient");
    assert_eq!(entries[0].step, Some(1));

    let next = submit(&rt, &fx, "again").await;
    let done = finished(&rt, &fx, &next.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("better now"));
    assert_valid_request(&model.request(1).messages);
    let entries = ledger(&store, &fx, &next.id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].outcome, "ok");
}

async fn a_model_error_after_tools_leaves_every_call_answered(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call("c1", "probe", "{}"), call("c2", "probe", "{}")]),
        Answer::Fail(ProviderError::RateLimited {
            retry_after: None,
            message: "slow down".into(),
        }),
        text("ok"),
    ]);
    let probe = ProbeTool::new("probe", false);
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["probe"])).await;
    let rt = runtime(store.clone(), model.clone(), vec![probe.clone()]);
    let run = submit(&rt, &fx, "work").await;
    let failed = finished(&rt, &fx, &run.id, RunStatus::Failed).await;
    assert_eq!(
        failed.error.map(|e| e.code).as_deref(),
        Some("provider_rate_limited")
    );
    assert_eq!(probe.executions(), 2);
    let outcomes: Vec<String> = ledger(&store, &fx, &run.id)
        .await
        .into_iter()
        .map(|e| e.outcome)
        .collect();
    assert_eq!(outcomes, ["ok", "provider_rate_limited"]);
    assert_history_closed(&contents(&store, &fx).await);

    let next = submit(&rt, &fx, "retry").await;
    finished(&rt, &fx, &next.id, RunStatus::Completed).await;
    assert_valid_request(&model.request(2).messages);
}

async fn an_unknown_provider_fails_the_run(db: Db) {
    let model = ScriptedModel::new(vec![]);
    let store = db.open().await;
    let mut config = config(&[]);
    config.model = "nowhere/some-model".into();
    let fx = Fixture::new(&store, config).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let run = submit(&rt, &fx, "hello?").await;
    let failed = finished(&rt, &fx, &run.id, RunStatus::Failed).await;
    let error = failed.error.expect("error");
    assert_eq!(error.code, "unknown_provider");
    // The error says how to configure the provider.
    for hint in [
        "no provider `nowhere`",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "[providers.nowhere]",
    ] {
        assert!(error.message.contains(hint), "{hint}: {}", error.message);
    }
    assert_eq!(model.request_count(), 0);
    // The next input is taken (and fails the same way) rather than stuck.
    let next = submit(&rt, &fx, "anyone?").await;
    finished(&rt, &fx, &next.id, RunStatus::Failed).await;
}
