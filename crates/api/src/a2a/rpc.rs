//! JSON-RPC 2.0 over HTTP POST: one request per body; errors with A2A's
//! codes in the JSON-RPC envelope (HTTP 200); streams as SSE, one JSON-RPC
//! response per event, closed when the task ends or waits for a person.

use super::wire::{self, Version};
use crate::auth::Principal;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use roster_core::agent::Agent;
use roster_core::event::RunEvent;
use roster_core::run::{Run, RunStatus};
use roster_core::{RunId, SessionId};
use roster_runtime::{RunRequest, RuntimeError};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a blocking `SendMessage` waits before it answers with the task
/// as it stands.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// A JSON-RPC error: A2A's codes (spec §5.4) and JSON-RPC's own.
#[derive(Debug)]
pub struct RpcError {
    code: i64,
    message: String,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }
    fn task_not_found(id: &str) -> Self {
        Self::new(-32001, format!("task `{id}` not found"))
    }
    fn unsupported(message: impl Into<String>) -> Self {
        Self::new(-32004, message)
    }
}

impl From<RuntimeError> for RpcError {
    fn from(e: RuntimeError) -> Self {
        let api = crate::ApiError::from(e);
        // The cause says what to do; the data carries Roster's stable code.
        let code = match api.status().as_u16() {
            400 | 413 => -32602,
            404 => -32001,
            _ => -32603,
        };
        Self::new(code, format!("{} ({})", api.message, api.code.as_str()))
    }
}

impl From<roster_store::StoreError> for RpcError {
    fn from(e: roster_store::StoreError) -> Self {
        RuntimeError::from(e).into()
    }
}

impl From<crate::ApiError> for RpcError {
    fn from(api: crate::ApiError) -> Self {
        let code = if api.status().as_u16() == 404 {
            -32001
        } else {
            -32603
        };
        Self::new(code, format!("{} ({})", api.message, api.code.as_str()))
    }
}

fn reply(id: &Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})
        }
    }
}

/// One request to an agent's endpoint.
struct Call {
    state: AppState,
    principal: Principal,
    agent: Agent,
    version: Version,
}

pub async fn handle(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return Json(reply(
                &Value::Null,
                Err(RpcError::new(-32700, format!("the body is not JSON: {e}"))),
            ))
            .into_response()
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let (Some(method), Some("2.0")) = (
        request.get("method").and_then(Value::as_str),
        request.get("jsonrpc").and_then(Value::as_str),
    ) else {
        return Json(reply(
            &id,
            Err(RpcError::new(
                -32600,
                "a JSON-RPC 2.0 request needs `jsonrpc: \"2.0\"` and a `method`",
            )),
        ))
        .into_response();
    };
    let header = headers.get("a2a-version").and_then(|v| v.to_str().ok());
    let Some(version) = Version::from_header(header) else {
        return Json(reply(
            &id,
            Err(RpcError::new(
                -32009,
                format!(
                    "A2A version `{}` is not supported; this server speaks 1.0 and 0.3",
                    header.unwrap_or_default()
                ),
            )),
        ))
        .into_response();
    };
    let agent = match super::find_agent(&state, &principal, &agent).await {
        Ok(agent) => agent,
        Err(e) => return Json(reply(&id, Err(e.into()))).into_response(),
    };
    let params = request.get("params").cloned().unwrap_or_else(|| json!({}));
    let call = Call {
        state,
        principal,
        agent,
        version,
    };
    let method = match (version, method) {
        (Version::V10, "SendMessage") | (Version::V03, "message/send") => "send",
        (Version::V10, "SendStreamingMessage") | (Version::V03, "message/stream") => "stream",
        (Version::V10, "GetTask") | (Version::V03, "tasks/get") => "get",
        (Version::V10, "ListTasks") | (Version::V03, "tasks/list") => "list",
        (Version::V10, "CancelTask") | (Version::V03, "tasks/cancel") => "cancel",
        (Version::V10, "SubscribeToTask") | (Version::V03, "tasks/resubscribe") => "subscribe",
        (Version::V10, m) | (Version::V03, m)
            if m.contains("PushNotification") || m.starts_with("tasks/pushNotificationConfig") =>
        {
            return Json(reply(&id, Err(RpcError::new(-32003, "push notifications are not offered; stream or poll the task (Roster's own webhooks: POST /v1/webhooks)")))).into_response();
        }
        (_, other) => {
            return Json(reply(
                &id,
                Err(RpcError::new(
                    -32601,
                    format!(
                        "no method `{other}` in A2A {}",
                        if version == Version::V10 {
                            "1.0"
                        } else {
                            "0.3 (send `A2A-Version: 1.0` for 1.0 names)"
                        }
                    ),
                )),
            ))
            .into_response();
        }
    };
    match method {
        "send" => Json(reply(&id, call.send(&params).await)).into_response(),
        "get" => Json(reply(&id, call.get(&params).await)).into_response(),
        "list" => Json(reply(&id, call.list(&params).await)).into_response(),
        "cancel" => Json(reply(&id, call.cancel(&params).await)).into_response(),
        "stream" => match call.start(&params).await {
            Ok(run) => call.stream(id, run, 0).into_response(),
            Err(e) => Json(reply(&id, Err(e))).into_response(),
        },
        _ => match call.subscribe(&params).await {
            Ok((run, after)) => call.stream(id, run, after).into_response(),
            Err(e) => Json(reply(&id, Err(e))).into_response(),
        },
    }
}

fn history_length(params: &Value, at: &str) -> Option<usize> {
    params
        .pointer(at)
        .and_then(Value::as_u64)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

impl Call {
    /// The run a task id names, if it is this agent's and the caller may
    /// see it.
    async fn task(&self, params: &Value) -> Result<Run, RpcError> {
        let id = params
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("`id` (the task's id) is required"))?;
        let missing = || RpcError::task_not_found(id);
        let run_id = RunId::parse(id).ok_or_else(missing)?;
        let run = self
            .state
            .store
            .get_run(&self.principal.tenant, &run_id)
            .await?
            .ok_or_else(missing)?;
        let session = match self
            .state
            .runtime
            .session_for(&self.principal.actor(), &run.session_id)
            .await
        {
            Ok(session) => session,
            Err(RuntimeError::NotFound(_)) => return Err(missing()),
            Err(e) => return Err(e.into()),
        };
        if session.agent_id != self.agent.id {
            return Err(missing());
        }
        Ok(run)
    }

    /// Starts the run a message asks for: in its `contextId`'s session (this
    /// agent's), else a new one; its `messageId` is the idempotency key, so
    /// a client's retry finds the first run.
    async fn start(&self, params: &Value) -> Result<Run, RpcError> {
        let message = params
            .get("message")
            .ok_or_else(|| RpcError::invalid_params("`message` is required"))?;
        if message
            .get("taskId")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            return Err(RpcError::unsupported(
                "a Roster task takes no further input once started; send a new message with the same contextId",
            ));
        }
        let text = wire::message_text(message).map_err(|e| RpcError::new(-32005, e))?;
        if text.trim().is_empty() {
            return Err(RpcError::invalid_params("the message has no text"));
        }
        let actor = self.principal.actor();
        let idempotency_key = message
            .get("messageId")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= 255 && k.is_ascii())
            .map(|k| format!("a2a:{k}"))
            .filter(|k| k.len() <= 255);
        let request = RunRequest {
            input: text,
            idempotency_key,
            if_busy: None,
            notify: Vec::new(),
            turn: None,
        };
        let context = message
            .get("contextId")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty());
        let Some(context) = context else {
            let user = crate::identity::session_user(&self.principal, None)?;
            let created = self
                .state
                .runtime
                .start_first_run(&actor, &self.agent, user.as_deref(), request)
                .await?;
            return Ok(created.run().clone());
        };
        let id = SessionId::parse(context)
            .ok_or_else(|| RpcError::invalid_params(format!("no context `{context}`")))?;
        let session = match self.state.runtime.session_for(&actor, &id).await {
            Ok(session) => session,
            Err(RuntimeError::NotFound(_)) => {
                return Err(RpcError::invalid_params(format!("no context `{context}`")))
            }
            Err(e) => return Err(e.into()),
        };
        if session.agent_id != self.agent.id {
            return Err(RpcError::invalid_params(format!(
                "context `{context}` is another agent's"
            )));
        }
        let created = self
            .state
            .runtime
            .start_run(&actor, &session.id, request)
            .await?;
        Ok(created.run().clone())
    }

    async fn send(&self, params: &Value) -> Result<Value, RpcError> {
        let run = self.start(params).await?;
        let immediately = params
            .pointer("/configuration/returnImmediately")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || params
                .pointer("/configuration/blocking")
                .and_then(Value::as_bool)
                == Some(false);
        let run = if immediately {
            run
        } else {
            self.state
                .runtime
                .wait_settled(&self.principal.tenant, &run.id, WAIT_LIMIT)
                .await?
        };
        let task = wire::task(
            &run,
            history_length(params, "/configuration/historyLength"),
            self.version,
        );
        Ok(wire::task_result(task, self.version))
    }

    async fn get(&self, params: &Value) -> Result<Value, RpcError> {
        let run = self.task(params).await?;
        Ok(wire::task(
            &run,
            history_length(params, "/historyLength"),
            self.version,
        ))
    }

    async fn cancel(&self, params: &Value) -> Result<Value, RpcError> {
        let run = self.task(params).await?;
        let run = match self
            .state
            .runtime
            .cancel(&self.principal.tenant, &run.id)
            .await
        {
            Ok(run) => run,
            Err(RuntimeError::AlreadyFinished(_)) => {
                return Err(RpcError::new(
                    -32002,
                    format!("task `{}` has already ended", run.id),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(wire::task(&run, None, self.version))
    }

    /// Tasks of this agent the caller may see, newest first; the page
    /// token is the last task's id.
    async fn list(&self, params: &Value) -> Result<Value, RpcError> {
        let size = params.get("pageSize").and_then(Value::as_i64).unwrap_or(50);
        if !(1..=100).contains(&size) {
            return Err(RpcError::invalid_params(
                "pageSize must be between 1 and 100",
            ));
        }
        let before = match params
            .get("pageToken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            Some(token) => Some(
                RunId::parse(token).ok_or_else(|| RpcError::invalid_params("unknown pageToken"))?,
            ),
            None => None,
        };
        let context = match params
            .get("contextId")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
        {
            Some(context) => Some(
                SessionId::parse(context)
                    .ok_or_else(|| RpcError::invalid_params(format!("no context `{context}`")))?,
            ),
            None => None,
        };
        let wanted = match params.get("status").and_then(Value::as_str) {
            None | Some("TASK_STATE_UNSPECIFIED") | Some("") => None,
            Some(state) => Some(
                wire::statuses_of(state)
                    .ok_or_else(|| RpcError::invalid_params(format!("unknown status `{state}`")))?,
            ),
        };
        let actor = self.principal.actor();
        // Read past runs the status filter drops, up to a bound.
        let mut tasks = Vec::new();
        let mut cursor = before;
        let mut more = false;
        for _ in 0..20 {
            let page = self
                .state
                .store
                .list_agent_runs(
                    &self.principal.tenant,
                    &self.agent.id,
                    context.as_ref(),
                    actor.acting_users(),
                    cursor.as_ref(),
                    size + 1,
                )
                .await?;
            let full = page.len() > usize::try_from(size).unwrap_or(0);
            for run in page.into_iter().take(usize::try_from(size).unwrap_or(0)) {
                cursor = Some(run.id.clone());
                if wanted.is_none_or(|s: RunStatus| s == run.status) {
                    tasks.push(run);
                }
                if tasks.len() == usize::try_from(size).unwrap_or(0) {
                    break;
                }
            }
            more = full || tasks.len() == usize::try_from(size).unwrap_or(0);
            if !full || tasks.len() == usize::try_from(size).unwrap_or(0) {
                break;
            }
        }
        let history = history_length(params, "/historyLength");
        let next = if more {
            tasks.last().map(|r| r.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(json!({
            "tasks": tasks.iter().map(|r| wire::task(r, history, self.version)).collect::<Vec<_>>(),
            "nextPageToken": next,
            "pageSize": size,
            "totalSize": tasks.len(),
        }))
    }

    /// The task to follow and the event its stream starts after (what has
    /// happened so far is in the task sent first).
    async fn subscribe(&self, params: &Value) -> Result<(Run, i64), RpcError> {
        let run = self.task(params).await?;
        if run.status.is_finished() {
            return Err(RpcError::unsupported(format!(
                "task `{}` has already ended",
                run.id
            )));
        }
        let mut after = 0;
        loop {
            let events = self
                .state
                .store
                .list_events(&self.principal.tenant, &run.id, after, 500)
                .await?;
            let Some(last) = events.last() else { break };
            after = last.seq;
        }
        // The run as of those events.
        let run = self.task(params).await?;
        Ok((run, after))
    }

    /// The task's events as SSE: the task first, then status changes, the
    /// answer as an artifact, and the final status; closed once the task
    /// has ended or waits for a person.
    fn stream(
        self,
        id: Value,
        run: Run,
        after: i64,
    ) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
        let version = self.version;
        let tenant = self.principal.tenant.clone();
        let state = self.state.clone();
        let events = async_stream::stream! {
            yield wire::task_result(wire::task(&run, None, version), version);
            if wire::settled(run.status) {
                return;
            }
            let mut working = run.status == RunStatus::Running;
            let mut events = Box::pin(crate::sse::event_stream(state.clone(), tenant.clone(), run.id.clone(), after));
            while let Some((_, event)) = events.next().await {
                let settles = matches!(event, RunEvent::RunFinished { .. } | RunEvent::ApprovalRequested { .. });
                let starts = matches!(event, RunEvent::RunStarted | RunEvent::RunRetried { .. });
                if !settles && (!starts || working) {
                    continue;
                }
                let Ok(Some(current)) = state.store.get_run(&tenant, &run.id).await else {
                    break;
                };
                if starts {
                    working = true;
                    yield wire::status_update(&current, version);
                    continue;
                }
                if !wire::settled(current.status) {
                    continue; // a failed run that was retried goes on
                }
                if let Some(artifact) = wire::answer(&current, version) {
                    yield wire::artifact_update(&current, artifact, version);
                }
                yield wire::status_update(&current, version);
                break;
            }
        };
        let events = events.map(move |result| {
            Ok(Event::default()
                .data(json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()))
        });
        Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
    }
}
