//! Runs that outlast provider outages, against the fake model server over
//! real HTTP: a running run waits (visibly, durably) through 503s and
//! refused connections and completes when the provider is back; a cancel
//! ends the wait at once; a crash resumes the wait without resetting its
//! clock; a run whose patience runs out fails, and retrying it continues
//! from its journal without repeating a model or tool call.

use crate::common;

use common::*;
use roster_core::event::RunEvent;
use roster_core::item::ItemContent;
use roster_core::run::{RunStatus, RunWait};
use roster_core::RunId;
use roster_models::{ProviderConfig, ProviderKind, RetryPolicy};
use roster_runtime::tools::{Tool, ToolCallContext, ToolOutput};
use roster_runtime::{Runtime, RuntimeError};
use roster_store::{AuditQuery, DynStore, LedgerQuery};
use roster_testkit::{FakeModelServer, Reply};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

on_both_backends!(
    a_run_outlasts_an_outage,
    a_cancel_ends_a_wait_at_once,
    a_crash_during_a_wait_resumes_it_on_the_same_clock,
    a_run_out_of_patience_fails_and_a_retry_continues_from_its_journal,
    errors_no_wait_can_fix_fail_the_run_at_once,
);

/// Short backoff, so a test sees many attempts in little time.
fn patient(patience: Duration) -> RetryPolicy {
    RetryPolicy {
        max_retries: 1,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        patience,
    }
}

/// A runtime whose provider [`common::model::PROVIDER`] is `server`,
/// spoken to over HTTP.
fn http_runtime(
    store: DynStore,
    server: &FakeModelServer,
    tools: Vec<Arc<dyn Tool>>,
    retry: RetryPolicy,
) -> Runtime {
    let mut config = ProviderConfig::new(
        common::model::PROVIDER,
        ProviderKind::Openai,
        server.openai_base_url(),
    );
    config.connect_timeout_secs = 1;
    config.timeout_secs = 5;
    let provider = roster_models::build_provider(config).expect("provider");
    runtime_with_retry(store, provider, tools, retry)
}

/// Waits until the run waits for the provider after at least `attempts`
/// failed attempts; returns the wait.
async fn waits(store: &DynStore, fx: &Fixture, run: &RunId, attempts: u32) -> RunWait {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = store
            .get_run(&fx.tenant, run)
            .await
            .expect("get")
            .expect("run");
        if let Some(wait) = now.waiting.as_ref().filter(|w| w.attempts >= attempts) {
            assert_eq!(now.status, RunStatus::Running, "a waiting run is running");
            return wait.clone();
        }
        assert!(Instant::now() < deadline, "run {run} never waited: {now:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn event_names(store: &DynStore, fx: &Fixture, run: &RunId) -> Vec<&'static str> {
    store
        .list_events(&fx.tenant, run, 0, 10_000)
        .await
        .expect("events")
        .iter()
        .map(|e| e.event.name())
        .collect()
}

/// The ledger's outcomes for the run, oldest first.
async fn outcomes(store: &DynStore, fx: &Fixture, run: &RunId) -> Vec<String> {
    let mut entries = store
        .list_ledger(
            &fx.tenant,
            &LedgerQuery {
                run_id: Some(run.clone()),
                limit: 10_000,
                ..LedgerQuery::default()
            },
        )
        .await
        .expect("ledger");
    entries.reverse();
    entries.into_iter().map(|e| e.outcome).collect()
}

/// A provider in an outage (answering 503 until it ends, then `answer`),
/// an agent on it, and a runtime with the `retry` policy.
async fn down(
    db: &Db,
    answer: Option<&str>,
    retry: RetryPolicy,
) -> (FakeModelServer, DynStore, Fixture, Runtime) {
    let server = FakeModelServer::start().await;
    server.fail_with(503);
    if let Some(answer) = answer {
        server.push(Reply::text(answer));
    }
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = http_runtime(store.clone(), &server, vec![], retry);
    (server, store, fx, rt)
}

async fn a_run_outlasts_an_outage(db: Db) {
    let (server, store, fx, rt) =
        down(&db, Some("made it"), patient(Duration::from_secs(60))).await;
    let run = submit(&rt, &fx, "hello").await;

    let first = waits(&store, &fx, &run.id, 3).await;
    assert_eq!(first.waiting_for, "provider");
    assert_eq!(first.step, 1);
    assert_eq!(first.last_error.code, "provider_transient");
    assert!(first.next_attempt_at > first.since);
    assert_eq!(
        first.gives_up_at,
        first.since + chrono::Duration::seconds(60)
    );
    let stored = store
        .list_events(&fx.tenant, &run.id, 0, 1000)
        .await
        .expect("events");
    assert!(
        stored
            .iter()
            .any(|e| matches!(&e.event, RunEvent::Waiting { wait } if wait.attempts >= 1)),
        "the wait is a persisted event"
    );

    // The outage changes shape: nobody listens any more.
    server.refuse_connections().await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let later = waits(&store, &fx, &run.id, first.attempts + 2).await;
    assert_eq!(later.since, first.since, "one clock for the whole outage");
    server.end_outage().await;

    let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("made it"));
    assert_eq!(done.waiting, None);
    // Every attempt is in the ledger: the failures, then the answer.
    let outcomes = outcomes(&store, &fx, &run.id).await;
    assert!(outcomes.len() >= 8, "many attempts: {outcomes:?}");
    assert_eq!(outcomes.last().map(String::as_str), Some("ok"));
    assert!(outcomes[..outcomes.len() - 1]
        .iter()
        .all(|o| o == "provider_transient"));
    assert_eq!(server.outage_answers(), server.request_count() - 1);
    let names = event_names(&store, &fx, &run.id).await;
    let waits_seen = names.iter().filter(|n| **n == "waiting").count();
    assert!(waits_seen >= 3, "{names:?}");
    let ended = names
        .iter()
        .position(|n| *n == "wait_ended")
        .expect("ended");
    assert!(names[ended..].contains(&"item"), "{names:?}");
    assert_eq!(names.last(), Some(&"run_finished"));
}

async fn a_cancel_ends_a_wait_at_once(db: Db) {
    // A long pause between passes: only a cancel can end it soon.
    let retry = RetryPolicy {
        max_retries: 0,
        base_delay: Duration::from_secs(60),
        max_delay: Duration::from_secs(60),
        patience: Duration::from_secs(600),
    };
    let (server, store, fx, rt) = down(&db, None, retry).await;
    let run = submit(&rt, &fx, "hello").await;
    let wait = waits(&store, &fx, &run.id, 1).await;
    assert!(wait.next_attempt_at > chrono::Utc::now() + chrono::Duration::seconds(20));
    let started = Instant::now();
    let ended = rt.cancel(&fx.tenant, &run.id).await.expect("cancel");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(ended.status, RunStatus::Cancelled);
    assert_eq!(ended.waiting, None);
    assert_eq!(outcomes(&store, &fx, &run.id).await, ["provider_transient"]);
    assert_eq!(server.request_count(), 1, "no attempt after the cancel");
}

async fn a_crash_during_a_wait_resumes_it_on_the_same_clock(db: Db) {
    let (server, store, fx, rt) = down(
        &db,
        Some("after the restart"),
        patient(Duration::from_secs(120)),
    )
    .await;
    let run = submit(&rt, &fx, "hello").await;
    let before = waits(&store, &fx, &run.id, 2).await;
    rt.shutdown().await;
    let kept = store
        .get_run(&fx.tenant, &run.id)
        .await
        .expect("get")
        .expect("run");
    assert_eq!(kept.status, RunStatus::Running);
    let kept = kept.waiting.expect("the wait is stored");
    assert_eq!(kept.since, before.since);

    let store = db.open().await;
    let rt = http_runtime(
        store.clone(),
        &server,
        vec![],
        patient(Duration::from_secs(120)),
    );
    assert_eq!(rt.recover().await.expect("recover"), 1);
    let resumed = waits(&store, &fx, &run.id, kept.attempts + 1).await;
    assert_eq!(
        resumed.since, before.since,
        "the patience clock is not reset"
    );
    assert_eq!(resumed.gives_up_at, before.gives_up_at);
    server.end_outage().await;
    let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("after the restart"));
    let names = event_names(&store, &fx, &run.id).await;
    assert_eq!(names.iter().filter(|n| **n == "run_started").count(), 1);
}

/// A tool that counts its executions and starts an outage of `server`.
struct OutageTool {
    server: FakeModelServer,
    executions: AtomicUsize,
}

#[async_trait::async_trait]
impl Tool for OutageTool {
    fn name(&self) -> &str {
        "probe"
    }

    fn description(&self) -> &str {
        "Does something once."
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }

    async fn call(&self, _ctx: &ToolCallContext, _arguments: serde_json::Value) -> ToolOutput {
        self.executions.fetch_add(1, Ordering::SeqCst);
        self.server.fail_with(503);
        ToolOutput::ok("probed")
    }
}

async fn a_run_out_of_patience_fails_and_a_retry_continues_from_its_journal(db: Db) {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call("c1", "probe", "{}"));
    let tool = Arc::new(OutageTool {
        server: server.clone(),
        executions: AtomicUsize::new(0),
    });
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&["probe"])).await;
    let rt = http_runtime(
        store.clone(),
        &server,
        vec![tool.clone()],
        patient(Duration::from_millis(800)),
    );
    let run = submit(&rt, &fx, "probe it").await;
    let failed = finished(&rt, &fx, &run.id, RunStatus::Failed).await;
    let error = failed.error.clone().expect("error");
    assert_eq!(error.code, "provider_transient");
    assert!(error.message.contains("kept failing"), "{}", error.message);
    assert!(error.message.contains("retry"), "{}", error.message);
    assert_eq!(failed.waiting, None);
    assert_eq!(tool.executions.load(Ordering::SeqCst), 1);
    let served = || server.request_count() - server.outage_answers();
    assert_eq!(served(), 1);

    // The provider is back; a later input of the session runs first.
    server.end_outage().await;
    server.push(Reply::text("answer to the second"));
    let second = submit(&rt, &fx, "second question").await;
    finished(&rt, &fx, &second.id, RunStatus::Completed).await;

    // Retrying a run that is not failed is refused.
    let refused = rt
        .retry(&fx.tenant, &second.id, "key:key_retrier")
        .await
        .expect_err("completed runs are not retried");
    assert!(
        matches!(
            refused,
            RuntimeError::NotRetryable {
                status: RunStatus::Completed,
                ..
            }
        ),
        "{refused:?}"
    );

    server.push(Reply::text("done after the retry"));
    let retried = rt
        .retry(&fx.tenant, &run.id, "key:key_retrier")
        .await
        .expect("retry");
    assert_eq!(retried.id, run.id, "it keeps its id");
    assert_eq!(retried.error, None);
    let done = finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(done.output.as_deref(), Some("done after the retry"));
    assert_eq!(done.actor.as_deref(), Some("key:key_retrier"));
    // Nothing completed was done again: one tool execution, and the model
    // was asked once more, with the journaled tool result.
    assert_eq!(tool.executions.load(Ordering::SeqCst), 1);
    assert_eq!(served(), 3, "tool call, second run, the retry's answer");
    let last = server.last_request().expect("request");
    let roles: Vec<&str> = last.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "user", "assistant"],
        "the retried run saw its own journal and the later run"
    );
    let history: Vec<String> = items(&store, &fx, &fx.session)
        .await
        .into_iter()
        .map(|i| match i.content {
            ItemContent::UserMessage { text } => format!("user:{text}"),
            ItemContent::AssistantMessage { text, .. } => format!("assistant:{text}"),
            ItemContent::ToolResult { output, .. } => format!("tool:{output}"),
            ItemContent::SystemNote { text } => format!("note:{text}"),
            ItemContent::Opaque { .. } => "opaque".into(),
        })
        .collect();
    assert_eq!(
        history,
        [
            "user:probe it",
            "assistant:",
            "tool:probed",
            "user:second question",
            "assistant:answer to the second",
            "assistant:done after the retry",
        ]
    );
    let audit = store
        .list_audit(
            &fx.tenant,
            &AuditQuery {
                action: Some("run.retry".into()),
                limit: 10,
                ..AuditQuery::default()
            },
        )
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "key:key_retrier");
    assert_eq!(audit[0].resource, format!("run:{}", run.id));
    let names = event_names(&store, &fx, &run.id).await;
    assert!(names.contains(&"run_retried"), "{names:?}");
    assert_eq!(names.last(), Some(&"run_finished"));
    // Every request of the run is in the ledger: the tool call, the
    // failed attempts, the answer.
    let outcomes = outcomes(&store, &fx, &run.id).await;
    assert_eq!(outcomes.first().map(String::as_str), Some("ok"));
    assert_eq!(outcomes.last().map(String::as_str), Some("ok"));
    assert_eq!(outcomes.len(), 2 + server.outage_answers());
}

async fn errors_no_wait_can_fix_fail_the_run_at_once(db: Db) {
    let server = FakeModelServer::start().await;
    server.push(Reply::error(401, "invalid api key"));
    let store = db.open().await;
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = http_runtime(
        store.clone(),
        &server,
        vec![],
        patient(Duration::from_secs(600)),
    );
    let started = Instant::now();
    let run = submit(&rt, &fx, "hello").await;
    let failed = finished(&rt, &fx, &run.id, RunStatus::Failed).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        failed.error.map(|e| e.code).as_deref(),
        Some("provider_auth")
    );
    assert_eq!(server.request_count(), 1);
    let names = event_names(&store, &fx, &run.id).await;
    assert!(!names.contains(&"waiting"), "{names:?}");
}
