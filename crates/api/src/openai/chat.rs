//! `POST /v1/chat/completions`, for clients that speak only Chat
//! Completions. The protocol is stateless (each request carries the whole
//! conversation), so each request is a run in a new session of the agent
//! `model` names, with the messages as its items and the request's
//! functions as client tools.

use super::error::OpenAiError;
use super::{body_json, check_metadata, idempotency_key};
use crate::auth::Principal;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use roster_core::event::RunEvent;
use roster_core::item::{ItemContent, ToolCall};
use roster_core::run::{Run, RunStatus};
use roster_core::turn::{ClientTool, Turn};
use roster_runtime::RunRequest;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT_LIMIT: Duration = Duration::from_secs(600);

fn text_of(content: Option<&Value>, param: &str) -> Result<String, OpenAiError> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (index, part) in parts.iter().enumerate() {
                match (
                    part.get("type").and_then(Value::as_str),
                    part.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(part_text)) => text.push_str(part_text),
                    (kind, _) => {
                        return Err(OpenAiError::invalid(
                            format!("{param}[{index}]"),
                            format!(
                                "content part type `{}` is not supported; send text",
                                kind.unwrap_or("")
                            ),
                        ))
                    }
                }
            }
            Ok(text)
        }
        Some(_) => Err(OpenAiError::invalid(
            param,
            "content must be a string or a list of parts",
        )),
    }
}

/// `messages` as session items.
fn parse_messages(messages: &[Value]) -> Result<Vec<ItemContent>, OpenAiError> {
    let mut items: Vec<ItemContent> = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        let param = format!("messages[{index}]");
        let role = message.get("role").and_then(Value::as_str).unwrap_or("");
        let text = text_of(message.get("content"), &format!("{param}.content"))?;
        items.push(match role {
            "user" => ItemContent::UserMessage { text },
            "system" | "developer" => ItemContent::SystemNote { text },
            "assistant" => {
                let calls = message
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let mut tool_calls = Vec::with_capacity(calls.len());
                for (n, call) in calls.iter().enumerate() {
                    let at = format!("{param}.tool_calls[{n}]");
                    let field = |path: &[&str]| {
                        path.iter()
                            .try_fold(call, |v, key| v.get(key))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    };
                    tool_calls.push(ToolCall {
                        id: field(&["id"]).ok_or_else(|| {
                            OpenAiError::invalid(&at, "a tool call needs an `id`")
                        })?,
                        name: field(&["function", "name"]).ok_or_else(|| {
                            OpenAiError::invalid(&at, "a tool call needs `function.name`")
                        })?,
                        arguments: field(&["function", "arguments"]).unwrap_or_else(|| "{}".into()),
                    });
                }
                ItemContent::AssistantMessage { text, tool_calls }
            }
            "tool" => {
                let call_id = message
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        OpenAiError::invalid(
                            format!("{param}.tool_call_id"),
                            "a tool message needs `tool_call_id`",
                        )
                    })?
                    .to_owned();
                let name = items
                    .iter()
                    .rev()
                    .find_map(|i| match i {
                        ItemContent::AssistantMessage { tool_calls, .. } => tool_calls
                            .iter()
                            .find(|c| c.id == call_id)
                            .map(|c| c.name.clone()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "function".into());
                ItemContent::ToolResult {
                    call_id,
                    name,
                    output: text,
                    is_error: false,
                }
            }
            other => {
                return Err(OpenAiError::invalid(
                    format!("{param}.role"),
                    format!(
                        "role `{other}` is not one of system, developer, user, assistant, tool"
                    ),
                ))
            }
        });
    }
    Ok(items)
}

fn parse_tools(tools: &[Value]) -> Result<Vec<ClientTool>, OpenAiError> {
    tools
        .iter()
        .enumerate()
        .map(|(index, tool)| {
            let param = format!("tools[{index}]");
            if tool.get("type").and_then(Value::as_str) != Some("function") {
                return Err(OpenAiError::invalid(
                    param,
                    "only `function` tools are offered here",
                ));
            }
            let function = tool.get("function").ok_or_else(|| {
                OpenAiError::invalid(
                    format!("{param}.function"),
                    "a function tool needs `function`",
                )
            })?;
            super::client_tool(function, &format!("{param}.function"))
        })
        .collect()
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, OpenAiError> {
    let body = body_json(&body)?;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| OpenAiError::invalid("model", "`model` is required: the name of an agent"))?
        .to_owned();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| OpenAiError::invalid("messages", "`messages` must be a non-empty list"))?;
    if let Some(Value::Object(metadata)) = body.get("metadata") {
        check_metadata(metadata)?;
    }
    let items = parse_messages(messages)?;
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .map(|t| parse_tools(t))
        .transpose()?
        .unwrap_or_default();
    let (agent, route) = super::target(&state, &principal, &model).await?;
    let user = crate::identity::session_user(&principal, None)?;
    let turn = Turn {
        items,
        instructions: None,
        client_tools: tools,
        tool_choice: super::tool_choice(body.get("tool_choice"))?,
        route,
        surface: Some(json!({"model": model, "store": false})),
    };
    let created = state
        .runtime
        .start_first_run(
            &principal.actor(),
            &agent,
            user.as_deref(),
            RunRequest {
                input: turn.input_text(),
                idempotency_key: idempotency_key(&headers)?,
                if_busy: None,
                notify: Vec::new(),
                turn: Some(turn),
            },
        )
        .await?;
    let run = created.run().clone();
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if body.get("stream").and_then(Value::as_bool).unwrap_or(false) {
        return Ok(stream(state, principal, run, model, include_usage).into_response());
    }
    let run = state
        .runtime
        .wait_settled(&principal.tenant, &run.id, WAIT_LIMIT)
        .await?;
    let items = crate::routes::sessions::run_items(&state, &principal, &run).await?;
    match run.status {
        RunStatus::Completed => {}
        RunStatus::AwaitingApproval => {
            return Err(OpenAiError {
                status: axum::http::StatusCode::CONFLICT,
                code: "awaiting_approval".into(),
                message: format!("run {} waits for a human's approval (GET /v1/approvals); Chat Completions cannot wait for it", run.id),
                param: None,
            })
        }
        _ => return Ok(failed(&run)),
    }
    let usage = usage_of(&state, &principal, &run).await?;
    let (text, calls) = answer(&run, &items);
    let mut message = json!({"role": "assistant", "content": text, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls.iter().map(tool_call).collect());
    }
    Ok(axum::Json(json!({
        "id": format!("chatcmpl-{}", run.id),
        "object": "chat.completion",
        "created": run.created_at.timestamp(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": if calls.is_empty() { "stop" } else { "tool_calls" },
            "logprobs": null,
        }],
        "usage": usage,
    }))
    .into_response())
}

/// A run that did not complete: its error, not retried by the SDK (a retry
/// would run the turn again).
fn failed(run: &Run) -> Response {
    let (code, message) = run.error.as_ref().map_or_else(
        || {
            (
                "run_cancelled".to_owned(),
                format!("run {} was cancelled", run.id),
            )
        },
        |e| (e.code.clone(), e.message.clone()),
    );
    let mut response = OpenAiError {
        status: axum::http::StatusCode::BAD_GATEWAY,
        code,
        message,
        param: None,
    }
    .into_response();
    response.headers_mut().insert(
        "x-should-retry",
        axum::http::HeaderValue::from_static("false"),
    );
    response
}

/// The reply's text (the run's output) and the calls left for the caller.
fn answer(run: &Run, items: &[roster_core::item::Item]) -> (String, Vec<ToolCall>) {
    let calls = items
        .iter()
        .rev()
        .find_map(|i| match &i.content {
            ItemContent::AssistantMessage { tool_calls, .. } => Some(
                tool_calls
                    .iter()
                    .filter(|c| super::response::is_function(run, &c.name))
                    .cloned()
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .unwrap_or_default();
    (run.output.clone().unwrap_or_default(), calls)
}

fn tool_call(call: &ToolCall) -> Value {
    json!({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}})
}

async fn usage_of(
    state: &AppState,
    principal: &Principal,
    run: &Run,
) -> Result<Value, OpenAiError> {
    let usage = state
        .store
        .run_usage(&principal.tenant, std::slice::from_ref(&run.id))
        .await?;
    let (tokens_in, tokens_out) = usage
        .first()
        .map_or((0, 0), |u| (u.tokens_in, u.tokens_out));
    Ok(
        json!({"prompt_tokens": tokens_in, "completion_tokens": tokens_out, "total_tokens": tokens_in + tokens_out}),
    )
}

fn chunk(id: &str, created: i64, model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
    })
}

/// The reply as `chat.completion.chunk`s: text as it streams (the rest of
/// each reply when it is stored), the caller's calls, the finish reason,
/// usage when asked, then `[DONE]`.
fn stream(
    state: AppState,
    principal: Principal,
    run: Run,
    model: String,
    include_usage: bool,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let tenant = principal.tenant.clone();
    let id = format!("chatcmpl-{}", run.id);
    let created = run.created_at.timestamp();
    let events = async_stream::stream! {
        yield chunk(&id, created, &model, json!({"role": "assistant", "content": ""}), None).to_string();
        let mut streamed = String::new();
        let mut inputs_left = super::response::input_count(&run);
        let mut calls: Vec<ToolCall> = Vec::new();
        let mut events = Box::pin(crate::sse::event_stream(state.clone(), tenant.clone(), run.id.clone(), 0));
        while let Some((_, event)) = events.next().await {
            match event {
                RunEvent::TextDelta { delta, .. } => {
                    streamed.push_str(&delta);
                    yield chunk(&id, created, &model, json!({"content": delta}), None).to_string();
                }
                RunEvent::Item { .. } if inputs_left > 0 => {
                    inputs_left -= 1;
                }
                RunEvent::Item { item, .. } => {
                    if let ItemContent::AssistantMessage { text, tool_calls } = item.content {
                        if let Some(rest) = text.strip_prefix(streamed.as_str()).filter(|r| !r.is_empty()) {
                            yield chunk(&id, created, &model, json!({"content": rest}), None).to_string();
                        }
                        streamed.clear();
                        calls = tool_calls.into_iter().filter(|c| super::response::is_function(&run, &c.name)).collect();
                    }
                }
                RunEvent::RunFinished { status, error, .. } => {
                    let current = state.store.get_run(&tenant, &run.id).await.ok().flatten();
                    if current.as_ref().is_some_and(|r| !r.status.is_finished()) {
                        continue;
                    }
                    if status != RunStatus::Completed {
                        let (code, message) = error.map_or_else(
                            || ("run_cancelled".to_owned(), "the run was cancelled".to_owned()),
                            |e| (e.code, e.message),
                        );
                        yield json!({"error": {"message": message, "type": "server_error", "code": code, "param": null}}).to_string();
                        break;
                    }
                    if !calls.is_empty() {
                        let list: Vec<Value> = calls.iter().enumerate().map(|(index, c)| {
                            let mut call = tool_call(c);
                            call["index"] = json!(index);
                            call
                        }).collect();
                        yield chunk(&id, created, &model, json!({"tool_calls": list}), None).to_string();
                    }
                    let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
                    yield chunk(&id, created, &model, json!({}), Some(finish)).to_string();
                    if include_usage {
                        if let Ok(usage) = usage_of(&state, &principal, &run).await {
                            yield json!({"id": id, "object": "chat.completion.chunk", "created": created,
                                         "model": model, "choices": [], "usage": usage}).to_string();
                        }
                    }
                    break;
                }
                _ => {}
            }
        }
        yield "[DONE]".to_owned();
    };
    Sse::new(events.map(|data| Ok(Event::default().data(data))))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
