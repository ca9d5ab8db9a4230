//! `/v1/approvals`: the inbox of tool calls waiting for a human. Approving
//! resumes the run exactly where it stopped; denying tells the model; a
//! request nobody decides expires and counts as denied.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::AppState;
use axum::extract::State;
use chrono::{DateTime, Utc};
use roster_core::{RunId, SessionId};
use roster_store::{Approval, ApprovalDecision};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

const STATUSES: &[&str] = &["pending", "approved", "denied", "expired", "cancelled"];

#[derive(Serialize, ToSchema)]
pub struct ApprovalView {
    pub id: String,
    #[schema(value_type = String)]
    pub run_id: RunId,
    #[schema(value_type = String)]
    pub session_id: SessionId,
    pub step: i64,
    pub call_id: String,
    pub agent: String,
    pub tool: String,
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    /// Why a policy asks for approval.
    pub reason: String,
    pub policies: Vec<String>,
    /// The call's actor chain.
    pub actor: String,
    /// `pending`, `approved`, `denied`, `expired` or `cancelled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    /// A pending request is denied at this time.
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
}

impl From<Approval> for ApprovalView {
    fn from(a: Approval) -> Self {
        Self {
            id: a.id,
            run_id: a.run_id,
            session_id: a.session_id,
            step: a.step,
            call_id: a.call_id,
            agent: a.agent,
            tool: a.tool,
            arguments: a.arguments,
            reason: a.reason,
            policies: a.policies,
            actor: a.actor,
            status: a.status,
            created_at: a.created_at,
            expires_at: a.expires_at,
            decided_at: a.decided_at,
            decided_by: a.decided_by,
            note: a.note,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ApprovalList {
    pub data: Vec<ApprovalView>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ApprovalParams {
    /// `pending` (default), `approved`, `denied`, `expired`, `cancelled` or `all`.
    #[param(pattern = r"^(pending|approved|denied|expired|cancelled|all)$")]
    pub status: Option<String>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// Told to the model with a denial; kept with the decision.
    pub note: Option<String>,
}

#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ApprovalParams),
    responses((status = 200, body = ApprovalList), (status = 400, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<ApprovalParams>,
) -> Result<axum::Json<ApprovalList>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let status = match params.status.as_deref() {
        None => Some("pending"),
        Some("all") => None,
        Some(s) if STATUSES.contains(&s) => Some(s),
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "unknown status `{other}`: one of {}, or all",
                STATUSES.join(", ")
            )))
        }
    };
    let data = state
        .store
        .list_approvals(&principal.tenant, status, limit)
        .await?;
    let data = visible(&state, &principal, data).await?;
    Ok(axum::Json(ApprovalList {
        data: data.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "approvals",
    params(("id" = String, Path, description = "approval id")),
    responses((status = 200, body = ApprovalView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<ApprovalView>, ApiError> {
    let found = state.store.get_approval(&principal.tenant, &id).await?;
    visible(&state, &principal, found.into_iter().collect())
        .await?
        .pop()
        .map(|a| axum::Json(a.into()))
        .ok_or_else(|| ApiError::not_found("approval"))
}

/// The optional body: none, or `{"note": …}`.
fn parse(body: &[u8]) -> Result<Decide, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Decide::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(format!(
            "invalid request body: {}",
            roster_core::plain::plain_serde_error(&e.to_string())
        ))
    })
}

async fn decide(
    state: &AppState,
    principal: &Principal,
    id: &str,
    decision: ApprovalDecision,
    body: Decide,
) -> Result<axum::Json<ApprovalView>, ApiError> {
    let decided = state
        .runtime
        .decide_approval(&principal.actor(), id, decision, body.note.as_deref())
        .await?;
    Ok(axum::Json(decided.into()))
}

#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "approvals", request_body(content = Decide, description = "optional"),
    params(("id" = String, Path, description = "approval id")),
    responses((status = 200, body = ApprovalView, description = "approved; the run resumes"), (status = 400, body = crate::error::ErrorBody),
    (status = 404, body = crate::error::ErrorBody),
    (status = 409, body = crate::error::ErrorBody, description = "approval_not_pending: already decided or expired, or its run is not waiting")))]
pub async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<ApprovalView>, ApiError> {
    decide(
        &state,
        &principal,
        &id,
        ApprovalDecision::Approve,
        parse(&body)?,
    )
    .await
}

#[utoipa::path(post, path = "/v1/approvals/{id}/deny", tag = "approvals", request_body(content = Decide, description = "optional"),
    params(("id" = String, Path, description = "approval id")),
    responses((status = 200, body = ApprovalView, description = "denied; the model is told"), (status = 400, body = crate::error::ErrorBody),
    (status = 404, body = crate::error::ErrorBody),
    (status = 409, body = crate::error::ErrorBody, description = "approval_not_pending: already decided or expired, or its run is not waiting")))]
pub async fn deny(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<axum::Json<ApprovalView>, ApiError> {
    decide(
        &state,
        &principal,
        &id,
        ApprovalDecision::Deny,
        parse(&body)?,
    )
    .await
}

/// The approvals of runs this key may see: a request shows its tool's
/// arguments, so one made in a user's session is that user's, like the
/// session itself (keys that act for anyone see all).
async fn visible(
    state: &AppState,
    principal: &Principal,
    approvals: Vec<Approval>,
) -> Result<Vec<Approval>, ApiError> {
    if principal.acting_users().is_none() {
        return Ok(approvals);
    }
    let mut users: std::collections::HashMap<SessionId, Option<Option<String>>> =
        std::collections::HashMap::new();
    let mut out = Vec::with_capacity(approvals.len());
    for approval in approvals {
        let user = match users.get(&approval.session_id) {
            Some(known) => known.clone(),
            None => {
                let found = session_user_of(state, principal, &approval).await?;
                users.insert(approval.session_id.clone(), found.clone());
                found
            }
        };
        if user.is_some() {
            out.push(approval);
        }
    }
    Ok(out)
}

/// The user of the approval's session (`Some(None)`: a session without a
/// user), or `None` when this key may not see that session (or it is gone).
async fn session_user_of(
    state: &AppState,
    principal: &Principal,
    approval: &Approval,
) -> Result<Option<Option<String>>, ApiError> {
    match state
        .runtime
        .session_for(&principal.actor(), &approval.session_id)
        .await
    {
        Ok(session) => Ok(Some(session.user)),
        Err(roster_runtime::RuntimeError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// How often the feed looks for new and settled requests. The store is the
/// truth (requests are written by whichever runner paused), so the feed
/// reads it rather than a bus; one indexed read per tick per listener.
const FEED_TICK: std::time::Duration = std::time::Duration::from_millis(500);

#[utoipa::path(get, path = "/v1/approvals/events", tag = "approvals",
    responses((status = 200, content_type = "text/event-stream",
        description = "Server-Sent Events: `approval_requested` for every pending request (those waiting when the \
        stream opens, then each new one as its run pauses) and `approval_settled` when one is approved, denied, \
        expires or is withdrawn; `data` is the request as `GET /v1/approvals/{id}` shows it, `id` its id")))]
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
) -> axum::response::sse::Sse<
    impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let tenant = principal.tenant.clone();
    let stream = async_stream::stream! {
        let mut waiting: std::collections::HashSet<String> = std::collections::HashSet::new();
        loop {
            let pending = match state.store.list_approvals(&tenant, Some("pending"), 1000).await {
                Ok(pending) => match visible(&state, &principal, pending).await {
                    Ok(pending) => pending,
                    Err(_) => break,
                },
                Err(e) => {
                    tracing::error!(tenant = %tenant, error = %e, "approvals feed cannot read the store");
                    break;
                }
            };
            let now: std::collections::HashSet<String> =
                pending.iter().map(|a| a.id.clone()).collect();
            // Oldest first, so a listener sees them in the order runs paused.
            for approval in pending.into_iter().rev() {
                if !waiting.contains(&approval.id) {
                    yield Ok(feed_event(Event::default(), "approval_requested", approval));
                }
            }
            let gone: Vec<String> = waiting.difference(&now).cloned().collect();
            for id in gone {
                match state.store.get_approval(&tenant, &id).await {
                    Ok(Some(settled)) => {
                        yield Ok(feed_event(Event::default(), "approval_settled", settled))
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(tenant = %tenant, error = %e, "approvals feed cannot read the store");
                        break;
                    }
                }
            }
            waiting = now;
            tokio::time::sleep(FEED_TICK).await;
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
}

fn feed_event(
    event: axum::response::sse::Event,
    name: &str,
    approval: Approval,
) -> axum::response::sse::Event {
    let id = approval.id.clone();
    let view: ApprovalView = approval.into();
    event
        .event(name)
        .id(id)
        .data(serde_json::to_string(&view).unwrap_or_else(|_| "{}".to_owned()))
}
