//! A run as an OpenAI Response object: its status, its output items (the
//! items the run appended after its input), usage from the ledger, and the
//! request's own fields echoed from what the surface stored with the run.

use super::items::{self, CallView};
use roster_core::item::{Item, ItemContent};
use roster_core::run::{Run, RunStatus};
use roster_store::RunUsage;
use serde_json::{json, Value};

/// What a response needs beyond its run.
pub struct ResponseView<'a> {
    pub run: &'a Run,
    /// The items the run appended, in order (its input first).
    pub items: &'a [Item],
    pub usage: Option<&'a RunUsage>,
    /// `model` as the caller named it (or the agent's name).
    pub model: &'a str,
}

/// The request fields a response echoes, stored with its run.
pub fn surface(run: &Run) -> Option<&Value> {
    run.turn.as_ref().and_then(|t| t.surface.as_ref())
}

/// How many of the run's items were its input.
pub fn input_count(run: &Run) -> usize {
    match &run.turn {
        Some(turn) if !turn.items.is_empty() => turn.items.len(),
        _ => 1,
    }
}

pub fn status(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Queued => "queued",
        RunStatus::Running | RunStatus::AwaitingApproval => "in_progress",
        RunStatus::Completed => "completed",
        RunStatus::Failed => "failed",
        RunStatus::Cancelled => "cancelled",
    }
}

/// Whether the run's caller runs the tool `name` (it was offered as a
/// function): its calls are `function_call` items, the rest Roster ran.
pub fn is_function(run: &Run, name: &str) -> bool {
    run.turn.as_ref().is_some_and(|t| t.is_client_tool(name))
}

/// The output items of a run: its items after the input, each reply's
/// calls shown as functions for the caller or as calls Roster ran (with
/// their results, which are not listed again).
pub fn output(run: &Run, items: &[Item]) -> Vec<Value> {
    let produced = items
        .get(input_count(run).min(items.len())..)
        .unwrap_or(&[]);
    let mut out = Vec::new();
    for item in produced {
        if !matches!(item.content, ItemContent::AssistantMessage { .. }) {
            continue;
        }
        let view = |call: &roster_core::item::ToolCall| {
            if is_function(run, &call.name) {
                CallView::Function
            } else {
                CallView::Ran(produced.iter().map(|i| &i.content).find(
                    |c| matches!(c, ItemContent::ToolResult { call_id, .. } if *call_id == call.id),
                ))
            }
        };
        out.extend(items::render(item, &view));
    }
    out
}

fn seconds(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp()
}

/// The request's functions as a response lists them: every field the spec
/// requires present (`description`, `parameters`, `strict`, each may be
/// null).
fn tools(given: Option<&Value>) -> Value {
    let listed = given.and_then(Value::as_array).cloned().unwrap_or_default();
    Value::Array(
        listed
            .into_iter()
            .map(|mut tool| {
                if let Some(object) = tool.as_object_mut() {
                    for field in ["description", "parameters", "strict"] {
                        object.entry(field).or_insert(Value::Null);
                    }
                }
                tool
            })
            .collect(),
    )
}

/// The Response object.
pub fn render(view: &ResponseView<'_>) -> Value {
    let run = view.run;
    let echo = surface(run).cloned().unwrap_or_else(|| json!({}));
    let field = |name: &str| echo.get(name).cloned().unwrap_or(Value::Null);
    let error = run
        .error
        .as_ref()
        .map(|e| json!({"code": e.code, "message": e.message}));
    let usage = view.usage.map(|u| {
        json!({
            "input_tokens": u.tokens_in,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": u.tokens_out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": u.tokens_in + u.tokens_out,
        })
    });
    json!({
        "id": run.id,
        "object": "response",
        "created_at": seconds(run.created_at),
        "status": status(run.status),
        "background": field("background").as_bool().unwrap_or(false),
        "completed_at": run.finished_at.filter(|_| run.status == RunStatus::Completed).map(seconds),
        "error": error,
        "incomplete_details": Value::Null,
        "instructions": field("instructions"),
        "max_output_tokens": field("max_output_tokens"),
        "metadata": echo.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "model": view.model,
        "output": output(run, view.items),
        "parallel_tool_calls": echo.get("parallel_tool_calls").cloned().unwrap_or(Value::Bool(true)),
        "previous_response_id": field("previous_response_id"),
        "conversation": field("conversation"),
        "store": echo.get("store").cloned().unwrap_or(Value::Bool(true)),
        // Sampling as the request set it, else the values a model uses
        // when none is given (the spec wants numbers here).
        "temperature": echo.get("temperature").filter(|v| v.is_number()).cloned().unwrap_or(json!(1.0)),
        "top_p": echo.get("top_p").filter(|v| v.is_number()).cloned().unwrap_or(json!(1.0)),
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "top_logprobs": 0,
        "reasoning": Value::Null,
        "max_tool_calls": Value::Null,
        "service_tier": "default",
        "safety_identifier": Value::Null,
        "prompt_cache_key": Value::Null,
        "text": {"format": {"type": "text"}},
        "tool_choice": echo.get("tool_choice").cloned().unwrap_or_else(|| json!("auto")),
        "tools": tools(echo.get("tools")),
        "truncation": "disabled",
        "usage": usage,
        "user": field("user"),
    })
}
