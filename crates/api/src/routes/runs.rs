//! `/v1/runs/{id}`: status (and what a running run waits for) and steps,
//! cancellation, retrying a failed run, the event stream.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Path;
use crate::sse::run_events;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use roster_core::event::RunEvent;
use roster_core::run::{Run, Step};
use roster_core::RunId;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    pub steps: Vec<Step>,
    /// Memory extraction jobs the run's completion queued (run after it, in
    /// the background).
    pub memory_jobs: Vec<roster_store::MemoryJob>,
    /// The runs it started (agents it asked, tasks it handed off), oldest
    /// first; `GET /v1/runs/{id}/tree` follows them all the way down. A
    /// running run whose child awaits approval waits with it.
    pub children: Vec<super::run_tree::ChildRun>,
}

pub(crate) async fn find(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<Run, ApiError> {
    let Some(id) = RunId::parse(id) else {
        return Err(ApiError::not_found("run"));
    };
    let run = state
        .store
        .get_run(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("run"))?;
    // A run of another user's session does not exist for this key.
    match super::sessions::find(state, principal, run.session_id.as_str()).await {
        Ok(_) => Ok(run),
        Err(e) if e.code == "not_found" => Err(ApiError::not_found("run")),
        Err(e) => Err(e),
    }
}

#[utoipa::path(get, path = "/v1/runs/{id}", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = RunDetail), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<RunDetail>, ApiError> {
    let run = find(&state, &principal, &id).await?;
    let steps = state.store.list_steps(&principal.tenant, &run.id).await?;
    let memory_jobs = state
        .store
        .memory_jobs_for_run(&principal.tenant, &run.id)
        .await?;
    let children = super::run_tree::children_of(&state, &principal.tenant, &run.id).await?;
    Ok(axum::Json(RunDetail {
        run,
        steps,
        memory_jobs,
        children,
    }))
}

#[utoipa::path(post, path = "/v1/runs/{id}/cancel", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = Run), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody, description = "run_finished")))]
pub async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Run>, ApiError> {
    let run = find(&state, &principal, &id).await?;
    Ok(axum::Json(
        state.runtime.cancel(&principal.tenant, &run.id).await?,
    ))
}

#[utoipa::path(post, path = "/v1/runs/{id}/retry", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = Run, description = "the run, queued again: it continues from its journal (completed model and tool calls are not repeated) after the runs already queued in its session"),
        (status = 403, body = crate::error::ErrorBody, description = "denied_by_policy: this key may not invoke the agent"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "run_not_failed: only a failed run can be retried; agent_deleted")))]
pub async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Run>, ApiError> {
    let run = RunId::parse(&id).ok_or_else(|| ApiError::not_found("run"))?;
    Ok(axum::Json(
        state.runtime.retry_run(&principal.actor(), &run).await?,
    ))
}

#[utoipa::path(get, path = "/v1/runs/{id}/events", tag = "runs",
    params(("id" = String, Path), ("Last-Event-ID" = Option<i64>, Header, description = "resume after this event")),
    responses((status = 200, content_type = "text/event-stream", body = RunEvent, description = "the run's events from the start (or after Last-Event-ID); ends after `run_finished`"),
        (status = 400, body = crate::error::ErrorBody, description = "Last-Event-ID is not a non-negative integer"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let run = find(&state, &principal, &id).await?;
    let after = match headers.get("last-event-id") {
        None => 0,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::invalid("Last-Event-ID must be a non-negative integer"))?,
    };
    Ok(run_events(state, principal.tenant, run.id, after))
}
