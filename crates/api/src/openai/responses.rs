//! `/v1/responses`: a turn of a Roster agent (named as the `model`) in the
//! OpenAI Responses API's shape, through the runtime's front door.

use super::error::OpenAiError;
use super::items::{self, CallView};
use super::response::{self, ResponseView};
use super::stream::Renderer;
use super::{body_json, idempotency_key, page, Page};
use crate::auth::Principal;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use roster_core::agent::Agent;
use roster_core::event::RunEvent;
use roster_core::run::Run;
use roster_core::turn::{ClientTool, Turn};
use roster_core::{RunId, SessionId};
use roster_runtime::RunRequest;
use roster_store::{AgentRef, Session};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// How long a plain (not streamed, not background) request waits.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
struct CreateRequest {
    model: Option<String>,
    #[serde(default)]
    input: Value,
    instructions: Option<String>,
    previous_response_id: Option<String>,
    conversation: Option<Value>,
    store: Option<bool>,
    stream: Option<bool>,
    background: Option<bool>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    metadata: Option<Map<String, Value>>,
    parallel_tool_calls: Option<bool>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_output_tokens: Option<u64>,
    user: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, OpenAiError> {
    let raw = body_json(&body)?;
    let request: CreateRequest = serde_json::from_value(raw).map_err(|e| {
        OpenAiError::invalid(
            "body",
            roster_core::plain::plain_serde_error(&e.to_string()),
        )
    })?;
    let model = request
        .model
        .clone()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            OpenAiError::invalid("model", "`model` is required: the name of an agent")
        })?;
    if request.previous_response_id.is_some() && request.conversation.is_some() {
        return Err(OpenAiError::invalid(
            "conversation",
            "`previous_response_id` and `conversation` cannot be used together",
        ));
    }
    if let Some(metadata) = &request.metadata {
        super::check_metadata(metadata)?;
    }
    let actor = principal.actor();
    let (agent, route) = super::target(&state, &principal, &model).await?;
    let conversation_id = request
        .conversation
        .as_ref()
        .map(conversation_id)
        .transpose()?;
    // Everything is checked before a session is made or a conversation
    // started: a refused request leaves nothing behind.
    let previous = match &request.previous_response_id {
        Some(previous) => Some(continue_from(&state, &principal, previous, &agent).await?),
        None => None,
    };
    let conversation = match &conversation_id {
        Some(id) => {
            let parsed =
                SessionId::parse(id).ok_or_else(|| OpenAiError::not_found("conversation", id))?;
            let found = state
                .runtime
                .conversation(&actor, &parsed)
                .await
                .map_err(|e| not_found_as(e, "conversation", id))?;
            Some((parsed, found))
        }
        None => None,
    };
    // Earlier items name the calls a `function_call_output` answers; read
    // only when the input has an output whose call it does not hold.
    let earlier = match (&previous, &conversation) {
        _ if !items::answers_earlier_calls(&request.input) => Vec::new(),
        (Some(session), _) | (None, Some((_, roster_runtime::Conversation::Session(session)))) => {
            state
                .store
                .tail_items(&principal.tenant, &session.id, 50)
                .await?
        }
        (None, Some((_, roster_runtime::Conversation::Pending(pending)))) => pending.items.clone(),
        (None, None) => Vec::new(),
    };
    let turn_items = items::parse_input(&request.input, &earlier)?;
    if turn_items.is_empty() {
        return Err(OpenAiError::invalid("input", "`input` must not be empty"));
    }
    let client_tools = parse_tools(request.tools.as_deref().unwrap_or(&[]))?;
    let echo = json!({
        "model": model,
        "instructions": request.instructions,
        "tools": request.tools.clone().unwrap_or_default(),
        "tool_choice": request.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        "metadata": request.metadata.clone().unwrap_or_default(),
        "parallel_tool_calls": request.parallel_tool_calls.unwrap_or(true),
        "temperature": request.temperature,
        "top_p": request.top_p,
        "max_output_tokens": request.max_output_tokens,
        "previous_response_id": request.previous_response_id,
        "conversation": conversation_id.as_ref().map(|id| json!({"id": id})),
        "store": request.store.unwrap_or(true),
        "background": request.background.unwrap_or(false),
        "user": request.user,
    });
    let turn = Turn {
        items: turn_items,
        instructions: request.instructions.clone(),
        client_tools,
        tool_choice: super::tool_choice(request.tool_choice.as_ref())?,
        route,
        surface: Some(echo),
    };
    state
        .runtime
        .check_turn(&principal.tenant, &agent, &turn)
        .await?;
    let request_run = RunRequest {
        input: turn.input_text(),
        idempotency_key: idempotency_key(&headers)?,
        if_busy: None,
        notify: Vec::new(),
        turn: Some(turn),
    };
    let created = match (previous, conversation) {
        (Some(session), _) => {
            state
                .runtime
                .start_run(&actor, &session.id, request_run)
                .await?
        }
        (None, Some((id, found))) => {
            let session = state
                .runtime
                .conversation_session_of(&actor, found, &agent)
                .await
                .map_err(|e| not_found_as(e, "conversation", &id.to_string()))?;
            state
                .runtime
                .start_run(&actor, &session.id, request_run)
                .await?
        }
        (None, None) => {
            let user = crate::identity::session_user(&principal, None)?;
            state
                .runtime
                .start_first_run(&actor, &agent, user.as_deref(), request_run)
                .await?
        }
    };
    let run = created.run().clone();
    if request.stream.unwrap_or(false) {
        return Ok(stream(state, principal, run, model, None).into_response());
    }
    let run = if request.background.unwrap_or(false) {
        run
    } else {
        state
            .runtime
            .wait_settled(&principal.tenant, &run.id, WAIT_LIMIT)
            .await?
    };
    Ok(axum::Json(render(&state, &principal, &run, &model).await?).into_response())
}

fn conversation_id(value: &Value) -> Result<String, OpenAiError> {
    match value {
        Value::String(id) => Ok(id.clone()),
        Value::Object(object) => match object.get("id") {
            Some(Value::String(id)) => Ok(id.clone()),
            _ => Err(OpenAiError::invalid(
                "conversation",
                "`conversation.id` must be a string",
            )),
        },
        _ => Err(OpenAiError::invalid(
            "conversation",
            "`conversation` must be an id or {\"id\": …}",
        )),
    }
}

fn not_found_as(e: roster_runtime::RuntimeError, what: &str, id: &str) -> OpenAiError {
    match e {
        roster_runtime::RuntimeError::NotFound(_) => OpenAiError::not_found(what, id),
        other => other.into(),
    }
}

/// The session a response continues: its previous response's, which must
/// be that session's newest run (a session is one line of history).
async fn continue_from(
    state: &AppState,
    principal: &Principal,
    previous: &str,
    agent: &Agent,
) -> Result<Session, OpenAiError> {
    let run = visible_response(state, principal, previous)
        .await
        .map_err(|e| OpenAiError {
            param: Some("previous_response_id".into()),
            ..e
        })?;
    let session = state
        .runtime
        .session_for(&principal.actor(), &run.session_id)
        .await?;
    if session.agent_id != agent.id {
        return Err(OpenAiError::invalid(
            "model",
            format!(
                "response `{previous}` was made by another agent; continue it with that agent as the model"
            ),
        ));
    }
    let runs = state
        .store
        .list_runs(&principal.tenant, &session.id)
        .await?;
    if runs.last().is_some_and(|newest| newest.id != run.id) {
        return Err(OpenAiError::invalid(
            "previous_response_id",
            format!(
                "response `{previous}` is not the newest of its conversation `{}`; continue from the newest one (or use `conversation`)",
                session.id
            ),
        ));
    }
    Ok(session)
}

fn parse_tools(tools: &[Value]) -> Result<Vec<ClientTool>, OpenAiError> {
    tools
        .iter()
        .enumerate()
        .map(|(index, tool)| {
            let param = format!("tools[{index}]");
            let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
            if kind != "function" {
                return Err(OpenAiError::invalid(
                    param,
                    format!("tool type `{kind}` is not offered here: pass functions (`type: function`); the agent's own tools are configured on the agent"),
                ));
            }
            super::client_tool(tool, &param)
        })
        .collect()
}

/// A run `id` names, if the caller may see it as a response (not deleted,
/// not made with `store: false`).
pub(super) async fn visible_response(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<Run, OpenAiError> {
    let missing = || OpenAiError::not_found("response", id);
    let run_id = RunId::parse(id).ok_or_else(missing)?;
    let run = state
        .store
        .get_run(&principal.tenant, &run_id)
        .await?
        .ok_or_else(missing)?;
    match state
        .runtime
        .session_for(&principal.actor(), &run.session_id)
        .await
    {
        Ok(_) => {}
        Err(roster_runtime::RuntimeError::NotFound(_)) => return Err(missing()),
        Err(e) => return Err(e.into()),
    }
    let hidden = response::surface(&run).is_some_and(|s| {
        s.get("deleted").and_then(Value::as_bool) == Some(true)
            || s.get("store").and_then(Value::as_bool) == Some(false)
    });
    if hidden {
        return Err(missing());
    }
    Ok(run)
}

/// `model` of a response: as the caller named it, else its agent's name.
async fn model_of(
    state: &AppState,
    principal: &Principal,
    run: &Run,
) -> Result<String, OpenAiError> {
    if let Some(model) = response::surface(run)
        .and_then(|s| s.get("model"))
        .and_then(Value::as_str)
    {
        return Ok(model.to_owned());
    }
    let session = state
        .runtime
        .session_for(&principal.actor(), &run.session_id)
        .await?;
    Ok(state
        .store
        .get_agent(&principal.tenant, &AgentRef::Id(session.agent_id))
        .await?
        .map_or_else(|| "deleted-agent".to_owned(), |a| a.name))
}

async fn render(
    state: &AppState,
    principal: &Principal,
    run: &Run,
    model: &str,
) -> Result<Value, OpenAiError> {
    let run_items = crate::routes::sessions::run_items(state, principal, run).await?;
    let usage = state
        .store
        .run_usage(&principal.tenant, std::slice::from_ref(&run.id))
        .await?;
    Ok(response::render(&ResponseView {
        run,
        items: &run_items,
        usage: usage.first(),
        model,
    }))
}

#[derive(Deserialize)]
pub struct ShowParams {
    stream: Option<bool>,
    starting_after: Option<u64>,
}

pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(params): Query<ShowParams>,
) -> Result<Response, OpenAiError> {
    let run = visible_response(&state, &principal, &id).await?;
    let model = model_of(&state, &principal, &run).await?;
    if params.stream.unwrap_or(false) {
        return Ok(stream(state, principal, run, model, params.starting_after).into_response());
    }
    Ok(axum::Json(render(&state, &principal, &run, &model).await?).into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, OpenAiError> {
    let run = visible_response(&state, &principal, &id).await?;
    let mut surface = response::surface(&run)
        .cloned()
        .unwrap_or_else(|| json!({}));
    surface["deleted"] = json!(true);
    state
        .store
        .set_run_surface(&principal.tenant, &run.id, surface)
        .await?;
    Ok(axum::Json(json!({"id": run.id, "object": "response", "deleted": true})).into_response())
}

pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, OpenAiError> {
    let run = visible_response(&state, &principal, &id).await?;
    let run = match state.runtime.cancel(&principal.tenant, &run.id).await {
        Ok(run) => run,
        // Cancelling a finished response answers it as it is.
        Err(roster_runtime::RuntimeError::AlreadyFinished(_)) => run,
        Err(e) => return Err(e.into()),
    };
    let model = model_of(&state, &principal, &run).await?;
    Ok(axum::Json(render(&state, &principal, &run, &model).await?).into_response())
}

pub async fn input_items(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(params): Query<Page>,
) -> Result<Response, OpenAiError> {
    let run = visible_response(&state, &principal, &id).await?;
    let run_items = crate::routes::sessions::run_items(&state, &principal, &run).await?;
    let count = response::input_count(&run).min(run_items.len());
    let function = |_: &roster_core::item::ToolCall| CallView::Function;
    let rendered: Vec<Value> = run_items[..count]
        .iter()
        .flat_map(|item| items::render(item, &function))
        .collect();
    Ok(axum::Json(page(rendered, &params, "desc")?).into_response())
}

/// The response's events as SSE, from `response.created` to its terminal
/// event; with `starting_after`, only the events numbered after it.
fn stream(
    state: AppState,
    principal: Principal,
    run: Run,
    model: String,
    starting_after: Option<u64>,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let tenant = principal.tenant.clone();
    let events = async_stream::stream! {
        let mut renderer = Renderer::new(run.clone());
        let snapshot = response::render(&ResponseView { run: &run, items: &[], usage: None, model: &model });
        for event in renderer.start(&snapshot) {
            yield event;
        }
        let mut events = Box::pin(crate::sse::event_stream(state.clone(), tenant.clone(), run.id.clone(), 0));
        while let Some((_, event)) = events.next().await {
            if let RunEvent::RunFinished { .. } = &event {
                let current = match state.store.get_run(&tenant, &run.id).await {
                    Ok(Some(current)) => current,
                    _ => break,
                };
                if !current.status.is_finished() {
                    continue; // retried: the run goes on
                }
                let status = current.status;
                match render(&state, &principal, &current, &model).await {
                    Ok(last) => {
                        for event in renderer.finish(status, last) {
                            yield event;
                        }
                    }
                    Err(e) => tracing::error!(run = %run.id, error = ?e, "cannot render a finished response"),
                }
                break;
            }
            for event in renderer.on_event(&event) {
                yield event;
            }
        }
    };
    let events = events
        .filter(move |event| {
            let seen = starting_after.is_some_and(|after| {
                event["sequence_number"]
                    .as_u64()
                    .is_some_and(|n| n <= after)
            });
            std::future::ready(!seen)
        })
        .map(|event| {
            let name = event["type"].as_str().unwrap_or("message").to_owned();
            Ok(Event::default().event(name).data(event.to_string()))
        });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Items of a session as OpenAI items (its replies' calls as functions).
pub(super) fn render_items(items: &[roster_core::item::Item]) -> Vec<Value> {
    let function = |_: &roster_core::item::ToolCall| CallView::Function;
    items
        .iter()
        .flat_map(|item| items::render(item, &function))
        .collect()
}
