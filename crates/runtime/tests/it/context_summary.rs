//! A session that outgrows its context budget: the oldest history is folded
//! into a running summary by a journaled model call, the context stays
//! within budget and keeps the summary, the full history stays stored and
//! searchable, a failing summariser never breaks the turn, and no item goes
//! to the summariser larger than a quarter of the budget.

use crate::common;

use common::model::{text, Answer, ScriptedModel};
use common::*;
use roster_core::run::{RunStatus, StepKind};
use roster_models::{ChatMessage, ChatRequest, ProviderError};
use roster_store::{DynStore, LedgerQuery};

on_both_backends!(
    old_history_is_folded_into_a_summary,
    a_failing_summariser_leaves_the_turn_working,
    history_beyond_the_tail_is_folded_in_batches,
    oversized_items_reach_the_summariser_cut,
);

const BUDGET: u32 = 1_200;

fn is_summary_request(request: &ChatRequest) -> bool {
    request
        .system
        .starts_with("You maintain the running summary")
}

fn tokens(request: &ChatRequest) -> u64 {
    let messages: u64 = request
        .messages
        .iter()
        .map(|m| match m {
            ChatMessage::User { text } => text.len(),
            ChatMessage::Assistant { text, .. } => text.len(),
            ChatMessage::ToolResult { output, .. } => output.len(),
        } as u64)
        .sum();
    (messages + request.system.len() as u64) / 4
}

/// Answers summary requests with a summary naming the items it folded, and
/// turns with a short answer.
fn summarising_model() -> std::sync::Arc<ScriptedModel> {
    let model = ScriptedModel::new(vec![]);
    model.set_fallback(|request| {
        if is_summary_request(request) {
            let ChatMessage::User { text: prompt } = &request.messages[0] else {
                return text("bad request");
            };
            let span = prompt
                .split("(items ")
                .nth(1)
                .and_then(|s| s.split(')').next())
                .unwrap_or("?");
            text(&format!(
                "Summary covering {span}; the codeword is AZURE-17."
            ))
        } else {
            text("Noted.")
        }
    });
    model
}

async fn old_history_is_folded_into_a_summary(db: Db) {
    let store = db.open().await;
    let dir = tempfile::tempdir().expect("dir");
    let model = summarising_model();
    let mut config = config(&["conversation_search"]);
    config.context_tokens = BUDGET;
    let fx = Fixture::new(&store, config).await;
    let (rt, memory) = runtime_with_memory(store.clone(), model.clone(), dir.path()).await;
    let filler = "lorem ipsum dolor sit amet ".repeat(12);
    for turn in 0..40 {
        let input = if turn == 0 {
            format!("Remember that my locker number is 4711. {filler}")
        } else {
            format!("Turn {turn}: {filler}")
        };
        let run = submit(&rt, &fx, &input).await;
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }

    let requests = model.requests();
    let summaries: Vec<&ChatRequest> = requests.iter().filter(|r| is_summary_request(r)).collect();
    let turns: Vec<&ChatRequest> = requests.iter().filter(|r| !is_summary_request(r)).collect();
    assert_eq!(turns.len(), 40);
    assert!(summaries.len() >= 2, "folded {} times", summaries.len());
    // Folds come in batches (hysteresis), not on every turn.
    assert!(summaries.len() < 20, "folded {} times", summaries.len());
    // Every turn stayed within its budget (the estimate the runtime uses),
    // and once folding began, carried the summary.
    let first_fold = requests
        .iter()
        .position(is_summary_request)
        .expect("a fold happened");
    for request in &turns {
        assert!(
            tokens(request) <= u64::from(BUDGET),
            "{} tokens",
            tokens(request)
        );
    }
    let last = turns.last().expect("turns");
    assert!(
        last.system.contains("<conversation_summary>"),
        "{}",
        last.system
    );
    assert!(last.system.contains("AZURE-17"));
    assert!(requests[first_fold + 1..]
        .iter()
        .filter(|r| !is_summary_request(r))
        .all(|r| r.system.contains("<conversation_summary>")));
    // The first input left the context long ago.
    assert!(!last
        .messages
        .iter()
        .any(|m| matches!(m, ChatMessage::User { text } if text.contains("4711"))));
    // A later fold merges the previous summary.
    let later = summaries.last().expect("summary");
    let ChatMessage::User { text: prompt } = &later.messages[0] else {
        panic!("summary prompt");
    };
    assert!(prompt.contains("AZURE-17"), "{prompt}");

    // The summary is stored, versioned, and journaled as summary steps with
    // their ledger rows.
    let summary = store
        .latest_summary(&fx.tenant, &fx.session)
        .await
        .expect("summary")
        .expect("exists");
    assert_eq!(summary.version, summaries.len() as i64);
    let runs = store
        .list_runs(&fx.tenant, &fx.session)
        .await
        .expect("runs");
    let mut summary_steps = 0;
    for run in &runs {
        for step in store.list_steps(&fx.tenant, &run.id).await.expect("steps") {
            if step.kind == StepKind::Summary {
                summary_steps += 1;
                assert!(step.output.is_some());
            }
        }
    }
    assert_eq!(summary_steps, summaries.len());
    let ledger = store
        .list_ledger(
            &fx.tenant,
            &LedgerQuery {
                limit: 1000,
                ..LedgerQuery::default()
            },
        )
        .await
        .expect("ledger");
    assert_eq!(
        ledger.len(),
        requests.len(),
        "every model call is in the ledger"
    );

    // Nothing is lost: every item is stored, and the early message is found
    // by conversation_search.
    let all = items(&store, &fx, &fx.session).await;
    assert_eq!(all.len(), 80);
    model.push(Answer::Reply(roster_models::ChatResponse {
        tool_calls: vec![common::model::call(
            "c1",
            "conversation_search",
            r#"{"query": "locker number"}"#,
        )],
        ..Default::default()
    }));
    model.push(text("Your locker is 4711."));
    let run = submit(&rt, &fx, "What was my locker number?").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let told = common::model::request_results(&model.requests().last().cloned().expect("request"));
    let found = &told.iter().find(|(id, _, _)| id == "c1").expect("result").1;
    assert!(
        found.contains("#1 user") && found.contains("4711"),
        "{found}"
    );
    memory.shutdown().await;
}

async fn a_failing_summariser_leaves_the_turn_working(db: Db) {
    let store: DynStore = db.open().await;
    let model = ScriptedModel::new(vec![]);
    model.set_fallback(|request| {
        if is_summary_request(request) {
            Answer::Fail(ProviderError::Transient {
                message: "summariser down".into(),
            })
        } else {
            text("Noted.")
        }
    });
    let mut config = config(&[]);
    config.context_tokens = 600;
    let fx = Fixture::new(&store, config).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let filler = "lorem ipsum dolor sit amet ".repeat(12);
    for turn in 0..12 {
        let run = submit(&rt, &fx, &format!("Turn {turn}: {filler}")).await;
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
    assert!(store
        .latest_summary(&fx.tenant, &fx.session)
        .await
        .expect("summary")
        .is_none());
    let requests = model.requests();
    assert!(requests.iter().any(is_summary_request), "a fold was tried");
    // One try per run at most, and every turn still answered within budget.
    let turns: Vec<&ChatRequest> = requests.iter().filter(|r| !is_summary_request(r)).collect();
    assert_eq!(turns.len(), 12);
    let ledger = store
        .list_ledger(
            &fx.tenant,
            &LedgerQuery {
                limit: 1000,
                ..LedgerQuery::default()
            },
        )
        .await
        .expect("ledger");
    assert!(
        ledger.iter().any(|e| e.outcome != "ok"),
        "the failed call is in the ledger"
    );
}

/// A long session of short turns outgrows the tail's item bound long
/// before the token budget: history leaving the tail is folded in batches,
/// not on every turn, and no turn ever sends more than the tail.
async fn history_beyond_the_tail_is_folded_in_batches(db: Db) {
    let store = db.open().await;
    let model = summarising_model();
    let fx = Fixture::new(&store, config(&[])).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let turns = 150;
    for turn in 0..turns {
        let run = submit(&rt, &fx, &format!("short turn {turn}")).await;
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
    let requests = model.requests();
    let folds = requests.iter().filter(|r| is_summary_request(r)).count();
    // 300 items through a 200-item tail: about (300 - 200) / 100 + 1 folds.
    assert!((1..=4).contains(&folds), "{folds} folds");
    let last = requests
        .iter()
        .rev()
        .find(|r| !is_summary_request(r))
        .expect("a turn");
    assert!(last.messages.len() <= roster_runtime::MAX_CONTEXT_ITEMS as usize);
    assert!(last.system.contains("<conversation_summary>"));
    let summary = store
        .latest_summary(&fx.tenant, &fx.session)
        .await
        .expect("summary")
        .expect("exists");
    // Everything older than what the last turn saw is in the summary (it
    // saw the items up to its own input, #2*turns - 1).
    let first_seen = 2 * turns as i64 - last.messages.len() as i64;
    assert!(
        summary.through_seq >= first_seen - 1,
        "{} < {first_seen}",
        summary.through_seq
    );
}

/// Answers with a large text: a tool result far over the budget.
struct Bulky;

#[async_trait::async_trait]
impl roster_runtime::tools::Tool for Bulky {
    fn name(&self) -> &str {
        "fetch"
    }

    fn description(&self) -> &str {
        "Fetches a long page."
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }

    async fn call(
        &self,
        _ctx: &roster_runtime::tools::ToolCallContext,
        _arguments: serde_json::Value,
    ) -> roster_runtime::tools::ToolOutput {
        roster_runtime::tools::ToolOutput::ok("page ".repeat(8_000))
    }
}

async fn oversized_items_reach_the_summariser_cut(db: Db) {
    let store = db.open().await;
    let model = ScriptedModel::new(vec![]);
    model.set_fallback(|request| {
        if is_summary_request(request) {
            return text("Summary: a long message and a long page.");
        }
        let asks_to_fetch =
            common::model::last_user_text(request).is_some_and(|t| t.starts_with("fetch"));
        if asks_to_fetch && common::model::request_results(request).is_empty() {
            common::model::calls(vec![common::model::call("f1", "fetch", "{}")])
        } else {
            text("Noted.")
        }
    });
    let mut config = config(&["fetch"]);
    config.context_tokens = BUDGET;
    config.context.oversized_input = roster_core::agent::OversizedInput::Truncate;
    let fx = Fixture::new(&store, config).await;
    let rt = runtime(
        store.clone(),
        model.clone(),
        vec![std::sync::Arc::new(Bulky)],
    );
    let huge = "word ".repeat(8_000); // about 10,000 tokens
    for input in [
        huge.as_str(),
        "fetch the page",
        "and now?",
        "anything else?",
    ] {
        let run = submit(&rt, &fx, input).await;
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    }
    let requests = model.requests();
    let summaries: Vec<&ChatRequest> = requests.iter().filter(|r| is_summary_request(r)).collect();
    assert!(!summaries.is_empty(), "the history was folded");
    let prompts: Vec<&str> = summaries
        .iter()
        .map(|r| match &r.messages[0] {
            ChatMessage::User { text } => text.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("[Roster: this message is about 10004 tokens")),
        "the input was cut: {prompts:?}"
    );
    assert!(
        prompts
            .iter()
            .any(|p| p.contains("[Roster: this tool result is about 10004 tokens")),
        "the tool result was cut"
    );
    for request in &summaries {
        assert!(
            tokens(request) <= u64::from(BUDGET),
            "{} tokens",
            tokens(request)
        );
    }
    // And no turn was sent more than its budget either.
    for request in requests.iter().filter(|r| !is_summary_request(r)) {
        assert!(
            tokens(request) <= u64::from(BUDGET),
            "{} tokens",
            tokens(request)
        );
    }
}
