//! `/v1/sessions`: create, list, show, items, and posting messages.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::sse::run_events;
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use roster_core::event::RunEvent;
use roster_core::item::Item;
use roster_core::run::Run;
use roster_core::SessionId;
use roster_runtime::RunRequest;
use roster_store::{BusyPolicy, Session, SessionQuery};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// Agent id or name; the session is pinned to its current version.
    pub agent: String,
    /// Who the session works for, so memories in namespaces like
    /// `users/{user}` and the agent's `user` blocks follow them across
    /// sessions. A key bound to a user makes its own user's sessions (this
    /// may only repeat it); a service key (or the admin key) names any user
    /// it may act for; any other user answers `403 user_not_allowed`.
    #[serde(default)]
    #[schema(pattern = r"^[A-Za-z0-9._@-]{1,100}$")]
    pub user: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SessionListParams {
    /// Agent id or name.
    pub agent: Option<String>,
    /// Only this user's sessions (a user the key may act for).
    #[param(pattern = r"^[A-Za-z0-9._@-]{1,100}$")]
    pub user: Option<String>,
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub data: Vec<Session>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ItemParams {
    /// Items with `seq` greater than this (the previous page's `next_after`).
    pub after: Option<i64>,
    /// 1..=1000, default 100.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ItemPage {
    pub data: Vec<Item>,
    pub next_after: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    pub content: String,
    /// Send the run's events as Server-Sent Events while it runs.
    #[serde(default)]
    pub stream: bool,
    /// Answer 202 with the run at once; follow it with `/v1/runs/{id}`.
    #[serde(default)]
    pub background: bool,
    /// What to do if the session has a run in progress: `queue`, `reject`
    /// (409), `interrupt` (cancel it, then run this) or `rollback` (cancel
    /// it and drop its items from the history the model sees, then run
    /// this); unset, the agent's `if_busy` (itself `queue` unless set).
    #[serde(default)]
    pub if_busy: Option<BusyPolicy>,
    /// Webhooks (`whk_…`) told when the run finishes, besides the agent's.
    #[serde(default)]
    #[schema(max_items = 8)]
    pub notify: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RunResult {
    pub run: Run,
    /// Items the run appended to the session (for a finished run).
    pub items: Vec<Item>,
}

/// How long a waiting `POST …/messages` holds the request open.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

pub(crate) async fn find(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<Session, ApiError> {
    let Some(id) = SessionId::parse(id) else {
        return Err(ApiError::not_found("session"));
    };
    // Another user's session does not exist for this key.
    Ok(state.runtime.session_for(&principal.actor(), &id).await?)
}

#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = CreateSession,
    responses((status = 201, body = Session), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "user_not_allowed: a user this key may not act for"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateSession>,
) -> Result<(StatusCode, axum::Json<Session>), ApiError> {
    let user = crate::identity::session_user(&principal, body.user.as_deref())?;
    let agent = crate::routes::agents::find(&state, &principal, &body.agent).await?;
    let session = state
        .store
        .create_session_for(&principal.tenant, &agent.id, agent.version, user.as_deref())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(session)))
}

#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", params(SessionListParams),
    responses((status = 200, body = SessionList), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "user_not_allowed"),
        (status = 404, body = crate::error::ErrorBody, description = "no such agent")))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<SessionListParams>,
) -> Result<axum::Json<SessionList>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let agent = match params.agent.as_deref() {
        Some(raw) => Some(
            crate::routes::agents::find(&state, &principal, raw)
                .await?
                .id,
        ),
        None => None,
    };
    if let Some(user) = &params.user {
        roster_core::record::validate_user_id(user)?;
        crate::identity::require_user(&principal, user)?;
    }
    // A key that acts for some users only lists theirs and the tenant's.
    let query = SessionQuery {
        agent,
        user: params.user,
        visible_users: principal.acting_users(),
        limit,
    };
    let data = state.store.list_sessions(&principal.tenant, &query).await?;
    Ok(axum::Json(SessionList { data }))
}

#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = Session), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Session>, ApiError> {
    Ok(axum::Json(find(&state, &principal, &id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct SessionUpgraded {
    pub session: Session,
    /// The agent version the session was on.
    pub from_version: i64,
}

#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", params(("id" = String, Path)),
    responses((status = 204, description = "the session, its history, runs, journal, notifications and workspace are gone"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "session_busy: a run of the session is not finished; cancel it first")))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session = find(&state, &principal, &id).await?;
    remove(&state, &principal, &session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a session (audited) and its workspace; every surface that
/// deletes a session (a conversation's delete too) comes here.
pub(crate) async fn remove(
    state: &AppState,
    principal: &Principal,
    session: &Session,
) -> Result<(), ApiError> {
    let audit = roster_store::NewAuditEvent {
        actor: principal.label(),
        action: "session.delete".into(),
        resource: format!("session:{}", session.id),
        decision: None,
        detail: serde_json::json!({
            "agent": session.agent_id, "user": session.user,
        }),
    };
    state
        .store
        .delete_session(&principal.tenant, &session.id, audit)
        .await
        .map_err(|e| match e {
            roster_store::StoreError::Conflict(message) => {
                ApiError::new(crate::codes::Code::SessionBusy, message)
            }
            other => other.into(),
        })?;
    if let Some(sandbox) = &state.sandbox {
        // The session is gone either way; a workspace that cannot be
        // removed is named in the log for the operator.
        if let Err(e) = sandbox.remove_workspace(&principal.tenant, &session.id) {
            tracing::error!(session = %session.id, error = %e, "could not remove a deleted session's workspace");
            return Err(ApiError::new(
                crate::codes::Code::WorkspaceNotRemoved,
                "the session was deleted but its workspace could not be removed; the server log names it",
            ));
        }
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/sessions/{id}/upgrade", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, body = SessionUpgraded, description = "later runs use the agent's current version"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "agent_deleted")))]
pub async fn upgrade(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<SessionUpgraded>, ApiError> {
    let session = find(&state, &principal, &id).await?;
    let audit = roster_store::NewAuditEvent {
        actor: principal.label(),
        action: "session.upgrade".into(),
        resource: format!("session:{}", session.id),
        decision: None,
        detail: serde_json::json!({ "agent": session.agent_id }),
    };
    let (session, from_version) = state
        .store
        .upgrade_session(&principal.tenant, &session.id, audit)
        .await
        .map_err(|e| match e {
            roster_store::StoreError::NotFound(what) if what == "agent" => ApiError::new(
                crate::codes::Code::AgentDeleted,
                "the agent of this session was deleted; there is no version to move to",
            ),
            other => other.into(),
        })?;
    Ok(axum::Json(SessionUpgraded {
        session,
        from_version,
    }))
}

#[utoipa::path(get, path = "/v1/sessions/{id}/items", tag = "sessions", params(("id" = String, Path), ItemParams),
    responses((status = 200, body = ItemPage), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn items(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(params): Query<ItemParams>,
) -> Result<axum::Json<ItemPage>, ApiError> {
    let session = find(&state, &principal, &id).await?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let data = state
        .store
        .list_items(
            &principal.tenant,
            &session.id,
            params.after.unwrap_or(0),
            limit,
        )
        .await?;
    let next_after = (data.len() as i64 == limit)
        .then(|| data.last().map(|i| i.seq))
        .flatten();
    Ok(axum::Json(ItemPage { data, next_after }))
}

#[utoipa::path(post, path = "/v1/sessions/{id}/messages", tag = "sessions", request_body = PostMessage,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "a retry with the same key returns the first run")),
    responses(
        (status = 200, description = "the finished run (or the run as it stands after 10 minutes); with `stream: true`, the run's events as Server-Sent Events, the first (`run_queued`) naming the run. Every answer names the run in `X-Roster-Run-Id`.",
            headers(("X-Roster-Run-Id" = String, description = "the run's id")),
            content((RunResult = "application/json"), (RunEvent = "text/event-stream"))),
        (status = 202, body = RunResult, description = "background: the accepted run",
            headers(("X-Roster-Run-Id" = String, description = "the run's id"))),
        (status = 400, body = crate::error::ErrorBody, description = "invalid_request: empty content or content over 1 MiB, conflicting options, bad Idempotency-Key"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "session_busy with if_busy=reject; agent_deleted"),
        (status = 413, body = crate::error::ErrorBody, description = "payload_too_large: the body is over 2 MiB; input_too_large: the content is larger than the agent's context budget leaves for an input (the message names both, in tokens); no run is made")))]
pub async fn post_message(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<PostMessage>,
) -> Result<Response, ApiError> {
    if body.stream && body.background {
        return Err(ApiError::invalid(
            "`stream` and `background` cannot both be true",
        ));
    }
    let session = SessionId::parse(&id).ok_or_else(|| ApiError::not_found("session"))?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::invalid("Idempotency-Key must be ASCII"))?
                .to_owned(),
        ),
    };
    let created = state
        .runtime
        .start_run(
            &principal.actor(),
            &session,
            RunRequest {
                turn: Default::default(),
                input: body.content,
                idempotency_key,
                if_busy: body.if_busy,
                notify: body.notify,
            },
        )
        .await?;
    let run = created.run().clone();
    let run_header = [(RUN_ID_HEADER, run.id.to_string())];
    if body.stream {
        let events = run_events(state, principal.tenant, run.id, 0);
        return Ok((run_header, events).into_response());
    }
    if body.background {
        return Ok((
            StatusCode::ACCEPTED,
            run_header,
            axum::Json(RunResult { run, items: vec![] }),
        )
            .into_response());
    }
    let run = state
        .runtime
        .wait_settled(&principal.tenant, &run.id, WAIT_LIMIT)
        .await?;
    let items = run_items(&state, &principal, &run).await?;
    Ok((run_header, axum::Json(RunResult { run, items })).into_response())
}

/// The response header of `POST …/messages` naming the run, in every mode.
pub const RUN_ID_HEADER: &str = "x-roster-run-id";

/// The items a run appended, read from its persisted `item` events.
pub(crate) async fn run_items(
    state: &AppState,
    principal: &Principal,
    run: &Run,
) -> Result<Vec<Item>, ApiError> {
    const PAGE: i64 = 1000;
    let mut items = Vec::new();
    let mut after = 0;
    loop {
        let events = state
            .store
            .list_events(&principal.tenant, &run.id, after, PAGE)
            .await?;
        let Some(last) = events.last() else { break };
        after = last.seq;
        // A short page is the last: no second read to find it empty.
        let more = events.len() as i64 == PAGE;
        items.extend(events.into_iter().filter_map(|e| match e.event {
            RunEvent::Item { item, .. } => Some(item),
            _ => None,
        }));
        if !more {
            break;
        }
    }
    Ok(items)
}
