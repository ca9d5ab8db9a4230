//! Shared memory blocks: the tenant's block of a label, attached by several
//! agents; appends from many sessions at once all land, in order; a
//! replace whose text is gone tells the model what the block says now.

use crate::common;

use common::model::{call, calls, last_user_text, request_results, text, ScriptedModel};
use common::*;
use roster_core::agent::NewAgent;
use roster_core::blocks::{BlockOwner, BlockScope};
use roster_core::memory::MemoryBlockSpec;
use roster_core::run::RunStatus;
use roster_models::ChatMessage;

on_both_backends!(
    twenty_sessions_of_two_agents_append_to_one_shared_block_and_lose_nothing,
    a_replace_whose_text_is_gone_is_told_the_current_value,
);

fn project(value: &str) -> MemoryBlockSpec {
    MemoryBlockSpec {
        label: "project".into(),
        value: value.into(),
        limit: Some(20_000),
        scope: BlockScope::Shared,
    }
}

/// `helper` (the fixture's) and `second`, both attaching `project`.
async fn two_agents(
    store: &roster_store::DynStore,
    initial: &str,
) -> (Fixture, roster_core::agent::Agent) {
    let tools = ["memory_append", "memory_replace"];
    let fx = Fixture::with_blocks(store, config(&tools), vec![project(initial)]).await;
    let second = store
        .create_agent(
            &fx.tenant,
            NewAgent {
                name: "second".into(),
                config: config(&tools),
                // Its value is not used: the block already exists.
                memory_blocks: vec![project("ignored")],
            },
            "test",
        )
        .await
        .expect("second agent");
    (fx, second)
}

async fn twenty_sessions_of_two_agents_append_to_one_shared_block_and_lose_nothing(db: Db) {
    let model = ScriptedModel::new(vec![]);
    model.set_fallback(|req| {
        if matches!(req.messages.last(), Some(ChatMessage::ToolResult { .. })) {
            text("noted")
        } else {
            let note = last_user_text(req).unwrap_or_default();
            calls(vec![call(
                "a1",
                "memory_append",
                &serde_json::json!({"label": "project", "content": note}).to_string(),
            )])
        }
    });
    let store = db.open().await;
    let (fx, second) = two_agents(&store, "Project log:").await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let mut runs = Vec::new();
    for i in 0..20 {
        let (agent, version) = if i % 2 == 0 {
            (&fx.agent.id, fx.agent.version)
        } else {
            (&second.id, second.version)
        };
        let session = store
            .create_session(&fx.tenant, agent, version)
            .await
            .expect("session")
            .id;
        runs.push(submit_to(&rt, &fx, &session, &format!("note {i:02}")).await);
    }
    for run in &runs {
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
    let rows = store
        .memory_blocks_of(&fx.tenant, &second.id, &[BlockOwner::Shared])
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    let block = &rows[0];
    assert_eq!(block.version, 21, "{block:?}");
    let lines: Vec<&str> = block.value.lines().collect();
    assert_eq!(lines[0], "Project log:");
    let mut notes: Vec<&str> = lines[1..].to_vec();
    notes.sort_unstable();
    let expected: Vec<String> = (0..20).map(|i| format!("note {i:02}")).collect();
    assert_eq!(
        notes,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Every version records its run and the agent that made it.
    let history = store
        .block_history(&fx.tenant, &fx.agent.id, &BlockOwner::Shared, "project")
        .await
        .expect("history");
    assert_eq!(history.len(), 21);
    let versions: Vec<i64> = history.iter().map(|v| v.version).collect();
    assert_eq!(versions, (1..=21).collect::<Vec<_>>());
    let by_agent = |name: &str| {
        history
            .iter()
            .filter(|v| v.principal.ends_with(&format!("agent:{name}")))
            .count()
    };
    assert_eq!(
        (by_agent("helper"), by_agent("second")),
        (10, 10),
        "{history:?}"
    );
    assert!(history[1..].iter().all(|v| v.run_id.is_some()));
    // Each later model call of a session pinned the block as it then was.
    let seen = model
        .requests()
        .iter()
        .filter(|r| r.system.contains("Project log:"))
        .count();
    assert_eq!(seen, 40);
}

async fn a_replace_whose_text_is_gone_is_told_the_current_value(db: Db) {
    let model = ScriptedModel::new(vec![
        calls(vec![call(
            "r1",
            "memory_replace",
            r#"{"label":"project","old":"status: draft","new":"status: review"}"#,
        )]),
        text("moved to review"),
        calls(vec![call(
            "r2",
            "memory_replace",
            r#"{"label":"project","old":"status: draft","new":"status: final"}"#,
        )]),
        text("it had moved on"),
    ]);
    let store = db.open().await;
    let (fx, second) = two_agents(&store, "status: draft").await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let first = submit(&rt, &fx, "to review").await;
    finished(&rt, &fx, &first.id, RunStatus::Completed).await;
    let other = store
        .create_session(&fx.tenant, &second.id, second.version)
        .await
        .expect("session")
        .id;
    let late = submit_to(&rt, &fx, &other, "to final").await;
    finished(&rt, &fx, &late.id, RunStatus::Completed).await;
    let told = request_results(&model.request(3));
    let (_, output, is_error) = &told[0];
    assert!(is_error, "{told:?}");
    assert!(output.contains("does not occur"), "{output}");
    assert!(
        output.contains("status: review") && output.contains("version 2"),
        "{output}"
    );
}
