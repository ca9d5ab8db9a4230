//! Context assembly reads a bounded tail of the session, never hands the
//! model a tool result whose call was cut off, and never hands it an input
//! or a result larger than its context: an oversized input is refused
//! before a run is made, or cut with a note when the agent allows it.

use crate::common;

use common::journal::seed;
use common::model::{call, last_user_text, text, ScriptedModel};
use common::*;
use roster_core::item::ItemContent;
use roster_core::run::RunStatus;
use roster_models::ChatMessage;
use roster_runtime::tools::{Tool, ToolCallContext, ToolOutput};
use roster_runtime::MAX_CONTEXT_ITEMS;
use std::sync::Arc;

on_both_backends!(
    a_long_session_is_read_as_a_bounded_tail,
    a_token_budget_never_cuts_between_call_and_result,
    an_oversized_input_is_refused_before_any_run,
    an_agent_that_truncates_gets_its_input_and_results_cut,
);

/// One finished turn: a question, three tool calls with their results, and
/// an answer (six items).
fn turn(k: usize, result_len: usize) -> Vec<ItemContent> {
    let ids = ["a", "b", "c"].map(|s| format!("t{k}_{s}"));
    let mut items = vec![
        ItemContent::UserMessage {
            text: format!("question {k}"),
        },
        ItemContent::AssistantMessage {
            text: String::new(),
            tool_calls: ids.iter().map(|id| call(id, "probe", "{}")).collect(),
        },
    ];
    items.extend(ids.iter().map(|id| ItemContent::ToolResult {
        call_id: id.clone(),
        name: "probe".into(),
        output: format!("result {id} {}", "r".repeat(result_len)),
        is_error: false,
    }));
    items.push(ItemContent::AssistantMessage {
        text: format!("answer {k}"),
        tool_calls: vec![],
    });
    items
}

async fn a_long_session_is_read_as_a_bounded_tail(db: Db) {
    let model = ScriptedModel::new(vec![text("short answer")]);
    let store = db.open().await;
    let mut config = config(&[]);
    config.context.summarize = false; // this file tests trimming alone
    config.context_tokens = 10_000_000; // only the item bound applies
    let fx = Fixture::new(&store, config).await;
    let mut items: Vec<ItemContent> = (0..170).flat_map(|k| turn(k, 10)).collect();
    // Four more items put the tail's first item on a tool result once the
    // next input is appended.
    for k in 0..2 {
        items.push(ItemContent::UserMessage {
            text: format!("filler {k}"),
        });
        items.push(ItemContent::AssistantMessage {
            text: format!("filler answer {k}"),
            tool_calls: vec![],
        });
    }
    seed(&store, &fx, items).await;
    let total = store
        .list_items(&fx.tenant, &fx.session, 0, 10_000)
        .await
        .expect("items")
        .len();
    assert!(total > 1_000, "{total}");
    let tail = store
        .tail_items(&fx.tenant, &fx.session, MAX_CONTEXT_ITEMS - 1)
        .await
        .expect("tail");
    assert!(
        matches!(tail[0].content, ItemContent::ToolResult { .. }),
        "the scenario needs the window to open on a result: {:?}",
        tail[0]
    );

    let rt = runtime(store.clone(), model.clone(), vec![]);
    let run = submit(&rt, &fx, "latest question").await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
    let messages = model.request(0).messages;
    let bound = usize::try_from(MAX_CONTEXT_ITEMS).expect("bound");
    assert!(messages.len() <= bound, "{} messages", messages.len());
    assert!(messages.len() >= bound - 6, "{} messages", messages.len());
    assert_valid_request(&messages);
    assert!(
        matches!(messages[0], ChatMessage::Assistant { .. }),
        "{:?}",
        messages[0]
    );
    assert_eq!(
        last_user_text(&model.request(0)).as_deref(),
        Some("latest question")
    );
    assert!(
        !messages
            .iter()
            .any(|m| matches!(m, ChatMessage::User { text } if text == "question 0")),
        "the head of the session was read"
    );
}

async fn a_token_budget_never_cuts_between_call_and_result(db: Db) {
    let store = db.open().await;
    for budget in (256..=640).step_by(16) {
        let model = ScriptedModel::new(vec![text("ok")]);
        let mut config = config(&[]);
        config.context.summarize = false; // this file tests trimming alone
        config.instructions = "Be brief.".into();
        config.context_tokens = budget;
        let fx = Fixture::new(&store, config).await;
        let items = (0..12).flat_map(|k| turn(k, 120)).collect();
        seed(&store, &fx, items).await;
        let rt = runtime(store.clone(), model.clone(), vec![]);
        let run = submit(&rt, &fx, "now").await;
        finished(&rt, &fx, &run.id, RunStatus::Completed).await;
        let messages = model.request(0).messages;
        assert!(!messages.is_empty(), "budget {budget}: nothing sent");
        assert!(messages.len() < 12 * 6, "budget {budget}: not cut at all");
        assert_valid_request(&messages);
        assert_eq!(last_user_text(&model.request(0)).as_deref(), Some("now"));
    }
}

/// An input (or a tool result) larger than the whole budget is still sent,
/// with whatever it answers: the provider then says whether it fits, rather
/// than the model getting an empty conversation.
async fn an_oversized_input_is_refused_before_any_run(db: Db) {
    let model = ScriptedModel::new(vec![text("ok")]);
    let store = db.open().await;
    let mut config = config(&[]);
    config.context_tokens = 1_000;
    let fx = Fixture::new(&store, config).await;
    let rt = runtime(store.clone(), model.clone(), vec![]);
    let big = "word ".repeat(1_000); // about 1,254 tokens
    let refused = rt
        .submit(&fx.tenant, &fx.session, input(&big))
        .await
        .expect_err("refused");
    let message = refused.to_string();
    assert!(
        matches!(
            refused,
            roster_runtime::RuntimeError::InputTooLarge {
                tokens: 1254,
                context_tokens: 1000,
                ..
            }
        ),
        "{refused:?}"
    );
    assert!(message.contains("1254 tokens"), "{message}");
    assert!(message.contains("context_tokens 1000"), "{message}");
    assert!(message.contains("oversized_input"), "{message}");
    assert!(
        store
            .list_runs(&fx.tenant, &fx.session)
            .await
            .expect("runs")
            .is_empty(),
        "no run was made"
    );
    assert!(items(&store, &fx, &fx.session).await.is_empty());
    assert_eq!(model.request_count(), 0);
    // What fits is taken.
    let run = submit(&rt, &fx, &"word ".repeat(500)).await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;
}

async fn an_agent_that_truncates_gets_its_input_and_results_cut(db: Db) {
    let big = "word ".repeat(1_000); // about 1,254 tokens
    let model = ScriptedModel::new(vec![
        common::model::calls(vec![call("c1", "probe", "{}")]),
        text("ok"),
    ]);
    let store = db.open().await;
    let mut config = config(&["probe"]);
    config.context.summarize = false;
    config.context.oversized_input = roster_core::agent::OversizedInput::Truncate;
    config.context_tokens = 512;
    let fx = Fixture::new(&store, config).await;
    seed(&store, &fx, turn(0, 10)).await;
    let probe = Arc::new(BigTool(big.clone()));
    let rt = runtime(store.clone(), model.clone(), vec![probe]);
    let run = submit(&rt, &fx, &big).await;
    finished(&rt, &fx, &run.id, RunStatus::Completed).await;

    // Stored whole.
    let stored = items(&store, &fx, &fx.session).await;
    assert!(stored
        .iter()
        .any(|i| matches!(&i.content, ItemContent::UserMessage { text } if text == &big)));
    // Sent cut, with the note, within the budget.
    let first = model.request(0);
    assert_eq!(
        first.messages.len(),
        1,
        "only the input: {:?}",
        first.messages
    );
    let sent = last_user_text(&first).expect("input");
    assert!(sent.starts_with("word word"));
    assert!(sent.len() < big.len());
    assert!(
        sent.contains("[Roster: this message is about 1254 tokens"),
        "{sent}"
    );
    assert!(request_tokens(&first) <= 512, "{}", request_tokens(&first));
    // After a result larger than the budget: the input, the call and its
    // result, both cut.
    let second = model.request(1);
    assert_valid_request(&second.messages);
    assert!(matches!(second.messages[0], ChatMessage::User { .. }));
    assert!(
        matches!(second.messages.last(), Some(ChatMessage::ToolResult { output, .. })
            if output.contains("[Roster: this tool result is about 1254 tokens")),
        "{:?}",
        second.messages
    );
    assert!(
        request_tokens(&second) <= 512,
        "{}",
        request_tokens(&second)
    );
}

/// The tokens of a request as the budget counts them.
fn request_tokens(req: &roster_models::ChatRequest) -> u32 {
    use roster_core::tokens::estimate_tokens;
    let tools: u32 = req
        .tools
        .iter()
        .map(|t| estimate_tokens(&t.description) + estimate_tokens(&t.parameters.to_string()))
        .sum();
    let messages: u32 = req
        .messages
        .iter()
        .map(|m| match m {
            ChatMessage::User { text } => estimate_tokens(text),
            ChatMessage::Assistant { text, tool_calls } => {
                estimate_tokens(text)
                    + tool_calls
                        .iter()
                        .map(|c| estimate_tokens(&c.arguments) + estimate_tokens(&c.name))
                        .sum::<u32>()
            }
            ChatMessage::ToolResult { output, .. } => estimate_tokens(output),
        })
        .sum();
    estimate_tokens(&req.system) + tools + messages
}

struct BigTool(String);

#[async_trait::async_trait]
impl Tool for BigTool {
    fn name(&self) -> &str {
        "probe"
    }

    fn description(&self) -> &str {
        "Answers at length."
    }

    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }

    async fn call(&self, _ctx: &ToolCallContext, _arguments: serde_json::Value) -> ToolOutput {
        ToolOutput::ok(self.0.clone())
    }
}
