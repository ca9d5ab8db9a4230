//! `/v1/schedules`: an agent woken at set times — a cron expression in a
//! time zone (daylight saving handled) or one moment — with a set input,
//! in a new session each time or in a named one. Each firing is a run that
//! acts for the key that made the schedule (`key:… > schedule:sch_…`) and
//! is written in the transaction that starts it, so nothing fires twice.
//! Fire times missed while the server was down follow the schedule's
//! `catch_up` (`skip`, `once`, `all`).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use roster_core::schedule::{CatchUp, Firing, Schedule};
use roster_core::{ScheduleId, SessionId};
use roster_schedule::Timing;
use roster_store::schedules::NewSchedule;
use roster_store::NewAuditEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

/// Fire times shown ahead.
const SHOWN_AHEAD: usize = 5;
/// Firings shown with one schedule.
const SHOWN_FIRINGS: i64 = 50;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// The agent (id or name).
    pub agent: String,
    /// `min hour dom month dow`, or six fields with seconds first; not with `at`.
    pub cron: Option<String>,
    /// One moment (RFC 3339), in the future; not with `cron`.
    pub at: Option<DateTime<Utc>>,
    /// IANA name `cron` is read in (default `UTC`).
    pub timezone: Option<String>,
    /// The message each firing sends.
    #[schema(min_length = 1)]
    pub input: String,
    /// A session of the agent every firing goes to; unset, each firing
    /// starts a new session.
    pub session: Option<String>,
    /// Fire times missed while the server was down: `skip`, `once`
    /// (default: the latest of them) or `all`.
    pub catch_up: Option<CatchUp>,
    /// Made paused (default false).
    #[serde(default)]
    pub paused: bool,
    /// Webhooks (`whk_…`) told when each firing's run finishes.
    #[serde(default)]
    #[schema(max_items = 8)]
    pub notify: Vec<String>,
}

/// Fields to change; a new timing counts from now.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSchedule {
    pub cron: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub timezone: Option<String>,
    #[schema(min_length = 1)]
    pub input: Option<String>,
    /// A session of the agent; `""` goes back to a new session per firing.
    pub session: Option<String>,
    pub catch_up: Option<CatchUp>,
    pub paused: Option<bool>,
    /// Replaces the webhooks told when a firing's run finishes.
    #[schema(max_items = 8)]
    pub notify: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduleView {
    #[serde(flatten)]
    pub schedule: Schedule,
    /// The agent's name.
    pub agent: String,
    /// The next fire times (none while paused, or when a one-off is done).
    pub next_fire_times: Vec<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduleDetail {
    #[serde(flatten)]
    pub view: ScheduleView,
    /// The latest firings, newest first: the run each started, or why not.
    pub firings: Vec<Firing>,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduleList {
    pub data: Vec<ScheduleView>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this agent's (id or name).
    pub agent: Option<String>,
}

fn timing(cron: Option<&str>, at: Option<DateTime<Utc>>, zone: &str) -> Result<Timing, ApiError> {
    Timing::parse(cron, at, Some(zone)).map_err(|e| ApiError::invalid(e.to_string()))
}

fn check_input(input: &str) -> Result<(), ApiError> {
    if input.trim().is_empty() {
        return Err(ApiError::invalid("`input` must not be empty"));
    }
    if input.len() > roster_runtime::MAX_INPUT_BYTES {
        return Err(ApiError::invalid(format!(
            "`input` is longer than {} bytes",
            roster_runtime::MAX_INPUT_BYTES
        )));
    }
    Ok(())
}

/// A session the key may use, of the schedule's agent.
async fn session_of(
    state: &AppState,
    principal: &Principal,
    agent: &roster_core::AgentId,
    raw: &str,
) -> Result<SessionId, ApiError> {
    let session = super::sessions::find(state, principal, raw).await?;
    if session.agent_id != *agent {
        return Err(ApiError::invalid(format!(
            "session {raw} belongs to another agent"
        )));
    }
    Ok(session.id)
}

async fn view(
    state: &AppState,
    principal: &Principal,
    schedule: Schedule,
) -> Result<ScheduleView, ApiError> {
    let agent = super::agents::name_of(state, principal, &schedule.agent_id).await?;
    let next_fire_times = match (schedule.paused, schedule.next_fire_at) {
        (false, Some(next)) => {
            let timing = timing(schedule.cron.as_deref(), schedule.at, &schedule.timezone)?;
            let mut times = vec![next];
            times.extend(timing.upcoming(next, SHOWN_AHEAD - 1));
            times
        }
        _ => Vec::new(),
    };
    Ok(ScheduleView {
        schedule,
        agent,
        next_fire_times,
    })
}

async fn find(state: &AppState, principal: &Principal, id: &str) -> Result<Schedule, ApiError> {
    let id = ScheduleId::parse(id).ok_or_else(|| ApiError::not_found("schedule"))?;
    state
        .store
        .get_schedule(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("schedule"))
}

fn audit(
    principal: &Principal,
    action: &str,
    id: &ScheduleId,
    detail: serde_json::Value,
) -> NewAuditEvent {
    NewAuditEvent {
        actor: principal.label(),
        action: action.into(),
        resource: format!("schedule:{id}"),
        decision: None,
        detail,
    }
}

#[utoipa::path(post, path = "/v1/schedules", tag = "schedules", request_body = CreateSchedule,
    responses((status = 201, body = ScheduleView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateSchedule>,
) -> Result<(StatusCode, axum::Json<ScheduleView>), ApiError> {
    let agent = super::agents::find(&state, &principal, &body.agent).await?;
    check_input(&body.input)?;
    let zone = body.timezone.unwrap_or_else(|| "UTC".to_owned());
    let timing = timing(body.cron.as_deref(), body.at, &zone)?;
    let now = Utc::now();
    if let Some(at) = body.at.filter(|at| *at <= now) {
        return Err(ApiError::invalid(format!("`at` ({at}) is in the past")));
    }
    let next_fire_at = timing.next_after(now);
    if next_fire_at.is_none() {
        return Err(ApiError::invalid("this timing never fires"));
    }
    let session_id = match body.session.as_deref() {
        Some(raw) => Some(session_of(&state, &principal, &agent.id, raw).await?),
        None => None,
    };
    let catch_up = body.catch_up.unwrap_or_default();
    state
        .runtime
        .check_webhooks(&principal.tenant, "notify", &body.notify)
        .await?;
    let schedule = state
        .store
        .create_schedule(
            &principal.tenant,
            NewSchedule {
                agent_id: agent.id.clone(),
                cron: body.cron.map(|c| c.trim().to_owned()),
                at: body.at,
                timezone: zone.clone(),
                input: body.input,
                session_id,
                catch_up,
                notify: body.notify,
                paused: body.paused,
                next_fire_at,
                created_by: principal.label(),
                key_id: principal.key_id.clone(),
            },
            NewAuditEvent {
                actor: principal.label(),
                action: "schedule.create".into(),
                resource: String::new(),
                decision: None,
                detail: json!({"agent": agent.name, "timezone": zone, "catch_up": catch_up.as_str()}),
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(view(&state, &principal, schedule).await?),
    ))
}

#[utoipa::path(get, path = "/v1/schedules", tag = "schedules", params(ListParams),
    responses((status = 200, body = ScheduleList), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<ScheduleList>, ApiError> {
    let agent = match params.agent.as_deref() {
        Some(raw) => Some(super::agents::find(&state, &principal, raw).await?.id),
        None => None,
    };
    let mut data = Vec::new();
    for schedule in state
        .store
        .list_schedules(&principal.tenant, agent.as_ref())
        .await?
    {
        data.push(view(&state, &principal, schedule).await?);
    }
    Ok(axum::Json(ScheduleList { data }))
}

#[utoipa::path(get, path = "/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleDetail), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<ScheduleDetail>, ApiError> {
    let schedule = find(&state, &principal, &id).await?;
    let firings = state
        .store
        .list_firings(&principal.tenant, &schedule.id, SHOWN_FIRINGS)
        .await?;
    Ok(axum::Json(ScheduleDetail {
        view: view(&state, &principal, schedule).await?,
        firings,
    }))
}

#[utoipa::path(patch, path = "/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    request_body = UpdateSchedule,
    responses((status = 200, body = ScheduleView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(body): Json<UpdateSchedule>,
) -> Result<axum::Json<ScheduleView>, ApiError> {
    let mut schedule = find(&state, &principal, &id).await?;
    let now = Utc::now();
    let retimed = body.cron.is_some() || body.at.is_some() || body.timezone.is_some();
    match (&body.cron, body.at) {
        (Some(_), Some(_)) => return Err(ApiError::invalid("give `cron` or `at`, not both")),
        (Some(cron), None) => {
            schedule.cron = Some(cron.trim().to_owned());
            schedule.at = None;
        }
        (None, Some(at)) => {
            if at <= now {
                return Err(ApiError::invalid(format!("`at` ({at}) is in the past")));
            }
            schedule.at = Some(at);
            schedule.cron = None;
        }
        (None, None) => {}
    }
    if let Some(zone) = body.timezone {
        schedule.timezone = zone;
    }
    let timing = timing(schedule.cron.as_deref(), schedule.at, &schedule.timezone)?;
    if let Some(input) = body.input {
        check_input(&input)?;
        schedule.input = input;
    }
    match body.session.as_deref() {
        Some("") => schedule.session_id = None,
        Some(raw) => {
            schedule.session_id =
                Some(session_of(&state, &principal, &schedule.agent_id, raw).await?);
        }
        None => {}
    }
    if let Some(catch_up) = body.catch_up {
        schedule.catch_up = catch_up;
    }
    if let Some(notify) = body.notify {
        state
            .runtime
            .check_webhooks(&principal.tenant, "notify", &notify)
            .await?;
        schedule.notify = notify;
    }
    let resumed = body.paused == Some(false) && schedule.paused;
    if let Some(paused) = body.paused {
        schedule.paused = paused;
    }
    // A new timing, or a resume, counts from now: a paused time is not owed.
    if retimed || resumed {
        schedule.next_fire_at = timing.next_after(now);
    }
    let detail = json!({"retimed": retimed, "paused": schedule.paused});
    let audit = audit(&principal, "schedule.update", &schedule.id, detail);
    let stored = state
        .store
        .update_schedule(&principal.tenant, schedule, audit)
        .await?;
    Ok(axum::Json(view(&state, &principal, stored).await?))
}

async fn set_paused(
    state: &AppState,
    principal: &Principal,
    id: &str,
    paused: bool,
) -> Result<ScheduleView, ApiError> {
    let mut schedule = find(state, principal, id).await?;
    if schedule.paused != paused {
        if !paused {
            let timing = timing(schedule.cron.as_deref(), schedule.at, &schedule.timezone)?;
            schedule.next_fire_at = timing.next_after(Utc::now());
        }
        schedule.paused = paused;
        let action = if paused {
            "schedule.pause"
        } else {
            "schedule.resume"
        };
        let audit = audit(principal, action, &schedule.id, json!({}));
        schedule = state
            .store
            .update_schedule(&principal.tenant, schedule, audit)
            .await?;
    }
    view(state, principal, schedule).await
}

#[utoipa::path(post, path = "/v1/schedules/{id}/pause", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<ScheduleView>, ApiError> {
    Ok(axum::Json(set_paused(&state, &principal, &id, true).await?))
}

#[utoipa::path(post, path = "/v1/schedules/{id}/resume", tag = "schedules", params(("id" = String, Path)),
    responses((status = 200, body = ScheduleView, description = "resumed: it fires next at its first time after now (times while paused are not owed)"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<ScheduleView>, ApiError> {
    Ok(axum::Json(
        set_paused(&state, &principal, &id, false).await?,
    ))
}

#[utoipa::path(delete, path = "/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let schedule = find(&state, &principal, &id).await?;
    let audit = audit(&principal, "schedule.delete", &schedule.id, json!({}));
    if state
        .store
        .delete_schedule(&principal.tenant, &schedule.id, audit)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("schedule"))
    }
}
