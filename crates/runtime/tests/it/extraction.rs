//! Memory extraction after a run: it never delays the turn, writes facts and
//! a session summary with provenance, updates a fact that is contradicted
//! instead of adding another, survives a crash mid-call, and records a
//! model that answers garbage as a failed job.

use crate::common;

use common::model::{text, Answer, ScriptedModel};
use common::*;
use roster_core::agent::{StrategyConfig, StrategyKind};
use roster_core::record::MemoryRecord;
use roster_core::run::RunStatus;
use roster_core::RunId;
use roster_models::{ChatMessage, ChatRequest};
use roster_store::{DynStore, LedgerQuery, MemoryQuery};
use std::sync::Arc;

on_both_backends!(
    facts_and_a_summary_are_extracted_and_corrected,
    an_extraction_interrupted_by_a_crash_completes_after_restart,
    a_garbage_reply_fails_the_job_and_writes_nothing,
);

fn is_extraction(request: &ChatRequest) -> bool {
    request.system.starts_with("You extract")
}

fn is_summary(request: &ChatRequest) -> bool {
    request.system.starts_with("You keep a summary")
}

fn prompt(request: &ChatRequest) -> String {
    match &request.messages[0] {
        ChatMessage::User { text } => text.clone(),
        _ => String::new(),
    }
}

fn agent_config() -> roster_core::agent::AgentConfig {
    let mut config = config(&[]);
    config.memory.strategies = vec![
        StrategyConfig {
            kind: StrategyKind::Semantic,
            model: None,
            prompt: None,
            namespace: None,
        },
        StrategyConfig {
            kind: StrategyKind::Summary,
            model: None,
            prompt: None,
            namespace: Some("sessions/{session}".into()),
        },
    ];
    config
}

async fn records(store: &DynStore, fx: &Fixture, namespace: &str) -> Vec<MemoryRecord> {
    store
        .list_memories(
            &fx.tenant,
            &MemoryQuery {
                namespace: Some(namespace.into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .expect("list")
}

/// Waits until every extraction job of `run` has ended; returns statuses.
async fn jobs_done(store: &DynStore, fx: &Fixture, run: &RunId) -> Vec<String> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let jobs = store
            .memory_jobs_for_run(&fx.tenant, run)
            .await
            .expect("jobs");
        if !jobs.is_empty() && jobs.iter().all(|j| j.status != "queued") {
            return jobs.iter().map(|j| j.status.clone()).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "extraction jobs still queued: {jobs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

async fn facts_and_a_summary_are_extracted_and_corrected(db: Db) {
    let store = db.open().await;
    let dir = tempfile::tempdir().expect("dir");
    let model = ScriptedModel::new(vec![]);
    let shown_second: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let seen = shown_second.clone();
    model.set_fallback(move |request| {
        if is_extraction(request) {
            let prompt = prompt(request);
            if prompt.contains("coffee") {
                // The second conversation: the stored tea fact is shown;
                // correct it, and repeat the city fact, which is dropped.
                *seen.lock().expect("lock") = Some(prompt.clone());
                let id = prompt
                    .lines()
                    .find(|l| l.contains("tea"))
                    .and_then(|l| l.split("- [").nth(1))
                    .and_then(|s| s.split(']').next())
                    .unwrap_or("mem_missing")
                    .to_owned();
                text(&format!(
                    r#"{{"memories": [{{"op": "update", "id": "{id}", "content": "Ada now prefers coffee over tea"}}, {{"op": "add", "content": "Ada lives in Lyon."}}]}}"#
                ))
            } else {
                text(r#"{"memories": [{"op": "add", "content": "Ada prefers tea"}, {"op": "add", "content": "Ada lives in Lyon"}]}"#)
            }
        } else if is_summary(request) {
            let turns = prompt(request).matches(" user: ").count();
            text(&format!(r#"{{"summary": "Ada talked about drinks ({turns} messages)."}}"#))
        } else {
            text("Noted.")
        }
    });
    let fx = Fixture::new(&store, agent_config()).await;
    let (rt, memory) = runtime_with_memory(store.clone(), model.clone(), dir.path()).await;

    let run = submit(&rt, &fx, "I'm Ada from Lyon and I like tea.").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(
        jobs_done(&store, &fx, &run.id).await,
        ["completed", "completed"]
    );
    let facts = records(&store, &fx, "agents/helper").await;
    let contents: Vec<&str> = facts.iter().map(|r| r.content.as_str()).collect();
    assert_eq!(contents, ["Ada prefers tea", "Ada lives in Lyon"]);
    let source = facts[0].source.clone().expect("provenance");
    assert_eq!(source.run_id.as_ref(), Some(&run.id));
    assert_eq!(source.session_id.as_ref(), Some(&fx.session));
    assert_eq!((source.from_seq, source.to_seq), (Some(1), Some(2)));
    assert_eq!(facts[0].kind, "fact");
    let summary_ns = format!("sessions/{}", fx.session);
    let summaries = records(&store, &fx, &summary_ns).await;
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].kind, "summary");

    // A contradiction updates the stored fact; a repeat adds nothing.
    let run = submit(&rt, &fx, "Actually I switched to coffee.").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    jobs_done(&store, &fx, &run.id).await;
    let shown = shown_second.lock().expect("lock").clone().expect("asked");
    assert!(shown.contains("Ada prefers tea"), "{shown}");
    let facts = records(&store, &fx, "agents/helper").await;
    assert_eq!(facts.len(), 2, "{facts:?}");
    let tea = facts
        .iter()
        .find(|r| r.content.contains("coffee"))
        .expect("corrected");
    assert_eq!(tea.version, 2);
    let history = store
        .memory_history(&fx.tenant, &tea.id)
        .await
        .expect("history");
    let texts: Vec<&str> = history.iter().map(|v| v.content.as_str()).collect();
    assert_eq!(
        texts,
        ["Ada prefers tea", "Ada now prefers coffee over tea"]
    );
    let summaries = records(&store, &fx, &summary_ns).await;
    assert_eq!(summaries.len(), 1, "one summary record per session");
    assert_eq!(summaries[0].version, 2);

    // Every extraction call is in the ledger, under its run, without a step.
    let ledger = store
        .list_ledger(
            &fx.tenant,
            &LedgerQuery {
                limit: 100,
                ..LedgerQuery::default()
            },
        )
        .await
        .expect("ledger");
    let extraction_rows = ledger.iter().filter(|e| e.step.is_none()).count();
    assert_eq!(extraction_rows, 4);
    memory.shutdown().await;
}

async fn an_extraction_interrupted_by_a_crash_completes_after_restart(db: Db) {
    let store = db.open().await;
    let dir = tempfile::tempdir().expect("dir");
    let hanging = ScriptedModel::new(vec![]);
    hanging.set_fallback(|request| {
        if is_extraction(request) || is_summary(request) {
            Answer::Hang
        } else {
            text("Noted.")
        }
    });
    let fx = Fixture::new(&store, agent_config()).await;
    let (rt, memory) = runtime_with_memory(store.clone(), hanging.clone(), dir.path()).await;
    let run = submit(&rt, &fx, "I'm Ada and I like tea.").await;
    // The turn completes while its extraction hangs: it never waits on it.
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    wait_until("the extraction calls are in flight", || {
        hanging
            .requests()
            .iter()
            .filter(|r| is_extraction(r) || is_summary(r))
            .count()
            >= 1
    })
    .await;
    // Crash: the runtime stops mid-call, journaling nothing.
    rt.shutdown().await;
    memory.halt().await;
    drop((rt, memory));
    let jobs = store
        .memory_jobs_for_run(&fx.tenant, &run.id)
        .await
        .expect("jobs");
    assert!(jobs.iter().all(|j| j.status == "queued"), "{jobs:?}");

    let store = db.open().await;
    let answering = ScriptedModel::new(vec![]);
    answering.set_fallback(|request| {
        if is_extraction(request) {
            text(r#"{"memories": [{"op": "add", "content": "Ada prefers tea"}]}"#)
        } else if is_summary(request) {
            text(r#"{"summary": "Ada likes tea."}"#)
        } else {
            text("Noted.")
        }
    });
    let (rt, memory) = runtime_with_memory(store.clone(), answering.clone(), dir.path()).await;
    rt.recover().await.expect("recover");
    assert_eq!(
        jobs_done(&store, &fx, &run.id).await,
        ["completed", "completed"]
    );
    let facts = records(&store, &fx, "agents/helper").await;
    assert_eq!(facts.len(), 1, "applied exactly once: {facts:?}");
    // And the index agrees with the store.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let status = memory.status().await.expect("status");
        if status.applied == status.head {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let found = memory
        .search(
            &fx.tenant,
            &roster_memory::SearchRequest {
                namespaces: vec!["agents/helper".into()],
                query: "tea".into(),
                limit: 5,
            },
        )
        .await
        .expect("search");
    assert_eq!(found.data.len(), 1);
    memory.shutdown().await;
}

async fn a_garbage_reply_fails_the_job_and_writes_nothing(db: Db) {
    let store = db.open().await;
    let dir = tempfile::tempdir().expect("dir");
    let model = ScriptedModel::new(vec![]);
    model.set_fallback(|request| {
        if is_extraction(request) || is_summary(request) {
            text("Sure! Here are some thoughts, not JSON at all.")
        } else {
            text("Noted.")
        }
    });
    let fx = Fixture::new(&store, agent_config()).await;
    let (rt, memory) = runtime_with_memory(store.clone(), model.clone(), dir.path()).await;
    let run = submit(&rt, &fx, "I like tea.").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    assert_eq!(jobs_done(&store, &fx, &run.id).await, ["failed", "failed"]);
    let jobs = store
        .memory_jobs_for_run(&fx.tenant, &run.id)
        .await
        .expect("jobs");
    assert!(jobs.iter().all(|j| j
        .error
        .as_deref()
        .is_some_and(|e| e.contains("not the JSON"))));
    assert!(records(&store, &fx, "agents/helper").await.is_empty());
    // The session goes on.
    let run = submit(&rt, &fx, "Hello again").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    memory.shutdown().await;
}
