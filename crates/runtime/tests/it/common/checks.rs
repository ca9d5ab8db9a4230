//! Checks of what the store and the model saw, shared by the tests.

use roster_core::item::ItemContent;
use roster_core::machine::{StepOutput, ToolOutcome};
use roster_core::run::{Step, StepKind, StepStatus};
use roster_models::{ChatMessage, OpenAiProvider, ProviderConfig, ProviderKind, Secret};
use roster_runtime::Runtime;
use roster_testkit::FakeModelServer;
use std::collections::HashSet;
use std::sync::Arc;

/// Stops every worker the way a killed process would, and lets go of the
/// runtime (and its store handle).
pub async fn crash(rt: Runtime) {
    rt.shutdown().await;
    drop(rt);
}

/// A real OpenAI-protocol client, named like the scripted model, talking to
/// the fake model server.
pub fn openai(server: &FakeModelServer) -> Arc<OpenAiProvider> {
    let mut config = ProviderConfig::new(
        super::model::PROVIDER,
        ProviderKind::Openai,
        server.openai_base_url(),
    );
    config.api_key = Some(Secret::new("sk-test"));
    Arc::new(OpenAiProvider::new(config).expect("provider"))
}

/// The step is `n`, of this kind, and completed.
pub fn assert_step(step: &Step, n: i64, kind: StepKind) {
    assert_eq!(
        (step.n, step.kind, step.status),
        (n, kind, StepStatus::Completed),
        "{step:?}"
    );
}

/// What a completed tool step journaled.
pub fn tool_outcome(step: &Step) -> ToolOutcome {
    let output = step.output.clone().expect("completed step has output");
    match serde_json::from_value(output).expect("step output") {
        StepOutput::ToolCall(outcome) => outcome,
        other => panic!("step {} is not a tool call: {other:?}", step.n),
    }
}

/// The session history pairs every tool call with exactly one result that
/// follows it, and holds no result without its call.
pub fn assert_history_closed(items: &[ItemContent]) {
    let mut open: HashSet<String> = HashSet::new();
    let mut answered: HashSet<String> = HashSet::new();
    for item in items {
        match item {
            ItemContent::AssistantMessage { tool_calls, .. } => {
                assert!(
                    open.is_empty(),
                    "a new model turn began with calls unanswered: {open:?}"
                );
                for call in tool_calls {
                    assert!(open.insert(call.id.clone()), "call id {} repeated", call.id);
                }
            }
            ItemContent::ToolResult { call_id, .. } => {
                assert!(open.remove(call_id), "result for unknown call {call_id}");
                assert!(
                    answered.insert(call_id.clone()),
                    "two results for {call_id}"
                );
            }
            ItemContent::Opaque { .. } => {}
            ItemContent::UserMessage { .. } | ItemContent::SystemNote { .. } => {
                assert!(
                    open.is_empty(),
                    "input arrived with calls unanswered: {open:?}"
                );
            }
        }
    }
    assert!(open.is_empty(), "calls left without a result: {open:?}");
}

/// What a provider would require of a request: it does not open on a tool
/// result, every result answers a call of the assistant message before it,
/// and every call is answered before the next non-result message.
pub fn assert_valid_request(messages: &[ChatMessage]) {
    assert!(
        !matches!(messages.first(), Some(ChatMessage::ToolResult { .. })),
        "the request opens with an orphan tool result"
    );
    let mut open: HashSet<&str> = HashSet::new();
    for message in messages {
        match message {
            ChatMessage::ToolResult { call_id, .. } => {
                assert!(open.remove(call_id.as_str()), "orphan result {call_id}");
            }
            ChatMessage::Assistant { tool_calls, .. } => {
                assert!(open.is_empty(), "unanswered calls {open:?}");
                open.extend(tool_calls.iter().map(|c| c.id.as_str()));
            }
            ChatMessage::User { .. } => {
                assert!(open.is_empty(), "unanswered calls {open:?}");
            }
        }
    }
    assert!(open.is_empty(), "unanswered calls {open:?}");
}
