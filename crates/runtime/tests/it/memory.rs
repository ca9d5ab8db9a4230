//! The built-in memory tools: edits land with their result in one commit,
//! mistakes are told to the model, every version records who made it, and
//! concurrent edits of one block from two sessions both land.

use crate::common;

use common::model::{call, calls, request_results, text, ScriptedModel};
use common::tools::ProbeTool;
use common::*;
use roster_core::memory::{MemoryBlock, MemoryBlockSpec, MemoryBlockVersion};
use roster_core::run::RunStatus;
use roster_store::DynStore;
use serde_json::json;

on_both_backends!(
    edits_and_their_errors,
    two_sessions_append_at_once_and_both_land,
    many_sessions_append_at_once_and_all_land,
    a_run_sees_blocks_edited_by_another_session_meanwhile,
);

const TOOLS: [&str; 2] = ["memory_append", "memory_replace"];

fn blocks() -> Vec<MemoryBlockSpec> {
    vec![
        MemoryBlockSpec {
            label: "human".into(),
            value: "Name: Ann".into(),
            limit: Some(40),
            scope: Default::default(),
        },
        MemoryBlockSpec {
            label: "notes".into(),
            value: "a b a".into(),
            limit: Some(100),
            scope: Default::default(),
        },
    ]
}

fn append(id: &str, label: &str, content: &str) -> roster_core::item::ToolCall {
    let args = json!({ "label": label, "content": content }).to_string();
    call(id, "memory_append", &args)
}

fn replace(id: &str, label: &str, old: &str, new: &str) -> roster_core::item::ToolCall {
    let args = json!({ "label": label, "old": old, "new": new }).to_string();
    call(id, "memory_replace", &args)
}

async fn block(store: &DynStore, fx: &Fixture, label: &str) -> MemoryBlock {
    store
        .list_memory_blocks(&fx.tenant, &fx.agent.id)
        .await
        .expect("blocks")
        .into_iter()
        .find(|b| b.label == label)
        .expect("block exists")
}

async fn history(store: &DynStore, fx: &Fixture, label: &str) -> Vec<MemoryBlockVersion> {
    store
        .memory_block_history(&fx.tenant, &fx.agent.id)
        .await
        .expect("history")
        .into_iter()
        .filter(|v| v.label == label)
        .collect()
}

async fn edits_and_their_errors(db: Db) {
    let model = ScriptedModel::new(vec![
        // One batch: the two good edits of `human` race each other.
        calls(vec![
            append("ok_append", "human", "Likes tea"),
            append("no_block", "nope", "x"),
            append("too_long", "human", &"x".repeat(100)),
            replace("not_found", "human", "zzz", "y"),
            replace("ambiguous", "notes", "a", "c"),
            replace("ok_replace", "human", "Ann", "Anna"),
            call("bad_args", "memory_append", r#"{"label":"human"}"#),
        ]),
        text("saved"),
    ]);
    let store = db.open().await;
    let fx = Fixture::with_blocks(&store, config(&TOOLS), blocks()).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let run = submit(&rt, &fx, "remember me").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;

    let told = request_results(&model.request(1));
    let result = |id: &str| {
        told.iter()
            .find(|(call, _, _)| call == id)
            .unwrap_or_else(|| panic!("no result for {id}: {told:?}"))
            .clone()
    };
    let (_, out, err) = result("ok_append");
    assert!(!err && out.contains("block `human` updated"), "{out}");
    let (_, out, err) = result("ok_replace");
    assert!(!err && out.contains("block `human` updated"), "{out}");
    let (_, out, err) = result("no_block");
    assert!(
        err && out.contains("no memory block `nope`") && out.contains("human"),
        "{out}"
    );
    let (_, out, err) = result("too_long");
    assert!(err && out.contains("40"), "{out}");
    let (_, out, err) = result("not_found");
    assert!(err && out.contains("does not occur"), "{out}");
    let (_, out, err) = result("ambiguous");
    assert!(err && out.contains("occurs 2 times"), "{out}");
    let (_, out, err) = result("bad_args");
    assert!(
        err && out.contains("invalid arguments") && out.contains("content"),
        "{out}"
    );

    let human = block(&store, &fx, "human").await;
    assert_eq!(human.value, "Name: Anna\nLikes tea");
    assert_eq!(human.version, 3);
    assert_eq!(
        block(&store, &fx, "notes").await.version,
        1,
        "failed edits change nothing"
    );
    // The model's next call sees the edited block in its instructions.
    assert!(model.request(1).system.contains("Name: Anna\nLikes tea"));

    let versions = history(&store, &fx, "human").await;
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let principal = format!("agent:{}", fx.agent.id);
    for v in &versions[1..] {
        assert_eq!(v.run_id.as_deref(), Some(run.id.as_str()), "{v:?}");
        assert_eq!(v.principal, principal);
    }
    let mut operations: Vec<&str> = versions[1..].iter().map(|v| v.operation.as_str()).collect();
    operations.sort_unstable();
    assert_eq!(operations, ["append", "replace"]);
    assert_eq!(versions[2].value, human.value);
    assert_history_closed(&contents(&store, &fx).await);
}

async fn two_sessions_append_at_once_and_both_land(db: Db) {
    let (model, gate) = ScriptedModel::gated(vec![
        calls(vec![append("c1", "human", "Fact one")]),
        calls(vec![append("c2", "human", "Fact two")]),
        text("ok"),
        text("ok"),
    ]);
    let store = db.open().await;
    let fx = Fixture::with_blocks(&store, config(&TOOLS), blocks()).await;
    let other = fx.new_session(&store).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let a = submit(&rt, &fx, "remember one").await;
    let b = submit_to(&rt, &fx, &other, "remember two").await;
    // Both read version 1 before either writes.
    wait_until("both sessions are at the model", || {
        model.request_count() == 2
    })
    .await;
    gate.add_permits(4);
    finished(&rt, &fx, &a.id, RunStatus::Completed).await;
    finished(&rt, &fx, &b.id, RunStatus::Completed).await;

    let human = block(&store, &fx, "human").await;
    assert_eq!(human.version, 3);
    assert!(human.value.starts_with("Name: Ann\n"), "{}", human.value);
    assert!(
        human.value.contains("Fact one") && human.value.contains("Fact two"),
        "an update was lost: {}",
        human.value
    );
    let versions = history(&store, &fx, "human").await;
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let mut runs: Vec<&str> = versions[1..]
        .iter()
        .filter_map(|v| v.run_id.as_deref())
        .collect();
    runs.sort_unstable();
    let mut expected = [a.id.as_str(), b.id.as_str()];
    expected.sort_unstable();
    assert_eq!(runs, expected);
    for run in [&a, &b] {
        let session = &run.session_id;
        let results = results(
            &items(&store, &fx, session)
                .await
                .into_iter()
                .map(|i| i.content)
                .collect::<Vec<_>>(),
        );
        assert_eq!(results.len(), 1);
        assert!(!results[0].2, "{results:?}");
    }
}

/// Heavy contention on one block: every edit still lands, none is lost, and
/// no run is left hanging.
async fn many_sessions_append_at_once_and_all_land(db: Db) {
    const SESSIONS: usize = 16;
    let (model, gate) = ScriptedModel::gated(vec![]);
    let n = std::sync::atomic::AtomicUsize::new(0);
    model.set_fallback(move |req| {
        if common::model::request_results(req).is_empty() {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            calls(vec![append("c", "log", &format!("entry {i}"))])
        } else {
            text("ok")
        }
    });
    let store = db.open().await;
    let log = MemoryBlockSpec {
        label: "log".into(),
        value: String::new(),
        limit: Some(10_000),
        scope: Default::default(),
    };
    let fx = Fixture::with_blocks(&store, config(&TOOLS), vec![log]).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let mut runs = Vec::new();
    for _ in 0..SESSIONS {
        let session = fx.new_session(&store).await;
        runs.push(submit_to(&rt, &fx, &session, "log something").await);
    }
    wait_until("every session is at the model", || {
        model.request_count() == SESSIONS
    })
    .await;
    gate.add_permits(2 * SESSIONS);
    for run in &runs {
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
    let log = block(&store, &fx, "log").await;
    assert_eq!(log.version, 1 + SESSIONS as i64);
    let mut lines: Vec<&str> = log.value.lines().collect();
    lines.sort_unstable();
    let mut expected: Vec<String> = (0..SESSIONS).map(|i| format!("entry {i}")).collect();
    expected.sort_unstable();
    assert_eq!(lines, expected, "an update was lost");
    assert_eq!(history(&store, &fx, "log").await.len(), 1 + SESSIONS);
}

/// Blocks belong to the agent: a run must see an edit another session made
/// between two of its model calls.
async fn a_run_sees_blocks_edited_by_another_session_meanwhile(db: Db) {
    let store = db.open().await;
    // Requests in order: A's first call, B's two, A's second.
    let model = ScriptedModel::new(vec![
        calls(vec![call("w1", "wait", "{}")]),
        calls(vec![append("b1", "human", "Likes tea")]),
        text("noted"),
        text("done waiting"),
    ]);
    let tool = ProbeTool::blocking("wait", false);
    let fx = Fixture::with_blocks(&store, config(&["wait", "memory_append"]), blocks()).await;
    let rt = runtime(store.clone(), model.clone(), vec![tool.clone()]);
    let a = submit(&rt, &fx, "wait for me").await;
    wait_until("session A's tool runs", || tool.executions() == 1).await;
    let other = fx.new_session(&store).await;
    let b = submit_to(&rt, &fx, &other, "I like tea").await;
    finished(&rt, &fx, &b.id, RunStatus::Completed).await;
    tool.release();
    finished(&rt, &fx, &a.id, RunStatus::Completed).await;
    assert_eq!(model.request_count(), 4);
    let before = model.request(0).system;
    let after = model.request(3).system;
    assert!(!before.contains("Likes tea"), "{before}");
    assert!(
        after.contains("Likes tea"),
        "A's second call used a stale block: {after}"
    );
}
