//! Schedules and their firings. See [`roster_store::schedules`].

use super::{Conn, Row};
use chrono::{DateTime, Utc};
use roster_core::run::Run;
use roster_core::schedule::{CatchUp, Firing, Schedule};
use roster_core::{AgentId, KeyId, RunId, ScheduleId, SessionId, TenantId};
use roster_store::millis;
use roster_store::schedules::{DueSchedule, FireRequest, NewSchedule};
use roster_store::{BusyPolicy, CreatedRun, NewAuditEvent, NewRun, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

const SCHEDULE_COLUMNS: &str = "id, agent_id, cron, at_time, timezone, input, session_id, catch_up, paused, next_fire_at, fired_count, last_fired_at, created_by, created_at, updated_at, key_id, notify";

fn schedule(row: &Row<'_>) -> Result<Schedule> {
    let catch_up: String = row.get(7)?;
    Ok(Schedule {
        id: ScheduleId::from_stored(row.get(0)?),
        agent_id: AgentId::from_stored(row.get(1)?),
        cron: row.get(2)?,
        at: row.opt_time(3)?,
        timezone: row.get(4)?,
        input: row.get(5)?,
        session_id: row.get::<Option<String>>(6)?.map(SessionId::from_stored),
        catch_up: CatchUp::parse(&catch_up)
            .ok_or_else(|| StoreError::Corrupt(format!("catch-up policy `{catch_up}`")))?,
        paused: row.get(8)?,
        next_fire_at: row.opt_time(9)?,
        fired_count: row.get(10)?,
        last_fired_at: row.opt_time(11)?,
        created_by: row.get(12)?,
        created_at: row.time(13)?,
        updated_at: row.time(14)?,
        notify: row.opt_json(16)?.unwrap_or_default(),
    })
}

fn notify_text(ids: &[String]) -> Result<Option<String>> {
    if ids.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::to_string(ids)?))
}

fn key_of(row: &Row<'_>) -> Result<KeyId> {
    Ok(KeyId::from_stored(row.get(15)?))
}

async fn create(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    new: &NewSchedule,
    audit: &NewAuditEvent,
) -> Result<Schedule> {
    let id = ScheduleId::generate();
    let now = Utc::now();
    c.exec(
        crate::sql!(
            "INSERT INTO schedules (id, tenant_id, agent_id, cron, at_time, timezone, input, session_id, catch_up,
                                    paused, next_fire_at, created_by, key_id, created_at, updated_at, notify)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15)"
        ),
        crate::args![
            &id,
            tenant,
            &new.agent_id,
            &new.cron,
            new.at.map(millis),
            new.timezone.as_str(),
            new.input.as_str(),
            new.session_id.as_ref(),
            new.catch_up.as_str(),
            new.paused,
            new.next_fire_at.map(millis),
            new.created_by.as_str(),
            &new.key_id,
            millis(now),
            notify_text(&new.notify)?.as_deref()
        ],
    )
    .await?;
    let mut audit = audit.clone();
    audit.resource = format!("schedule:{id}");
    super::audit::append(c, tenant, std::slice::from_ref(&audit)).await?;
    get(c, tenant, &id)
        .await?
        .ok_or_else(|| StoreError::NotFound("schedule".into()))
}

async fn get(c: &mut Conn<'_>, tenant: &TenantId, id: &ScheduleId) -> Result<Option<Schedule>> {
    Ok(c.opt(
        crate::sql!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, id.as_str()],
        schedule,
    )
    .await?)
}

async fn update(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    s: &Schedule,
    audit: &NewAuditEvent,
) -> Result<Schedule> {
    let changed = c
        .exec(
            crate::sql!(
                "UPDATE schedules SET cron = $3, at_time = $4, timezone = $5, input = $6, session_id = $7,
                        catch_up = $8, paused = $9, next_fire_at = $10, updated_at = $11, notify = $12
                 WHERE tenant_id = $1 AND id = $2"
            ),
            crate::args![
                tenant,
                s.id.as_str(),
                &s.cron,
                s.at.map(millis),
                s.timezone.as_str(),
                s.input.as_str(),
                s.session_id.as_ref(),
                s.catch_up.as_str(),
                s.paused,
                s.next_fire_at.map(millis),
                millis(Utc::now()),
                notify_text(&s.notify)?.as_deref()
            ],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::NotFound("schedule".into()));
    }
    super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    get(c, tenant, &s.id)
        .await?
        .ok_or_else(|| StoreError::NotFound("schedule".into()))
}

async fn delete(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &ScheduleId,
    audit: &NewAuditEvent,
) -> Result<bool> {
    let n = c
        .exec(
            crate::sql!("DELETE FROM schedules WHERE tenant_id = $1 AND id = $2"),
            crate::args![tenant, id.as_str()],
        )
        .await?;
    if n > 0 {
        super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    }
    Ok(n > 0)
}

fn firing(row: &Row<'_>) -> Result<Firing> {
    Ok(Firing {
        fire_at: row.time(0)?,
        outcome: row.get(1)?,
        run_id: row.get::<Option<String>>(2)?.map(RunId::from_stored),
        session_id: row.get::<Option<String>>(3)?.map(SessionId::from_stored),
        detail: row.get(4)?,
        created_at: row.time(5)?,
    })
}

/// The schedule's row is locked first (PostgreSQL; SQLite's single writer
/// serialises anyway) and its next fire time compared with what the caller
/// read, so of two processes firing the same time one writes and the other
/// finds nothing to do. A firing row per fire time (primary key: schedule
/// and time) is the second guard.
async fn fire(c: &mut Conn<'_>, tenant: &TenantId, request: &FireRequest) -> Result<Vec<Run>> {
    let found = c
        .opt(
            crate::sql!(
                "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
            ),
            crate::args![tenant, request.schedule.as_str()],
            schedule,
        )
        .await?;
    let Some(found) = found else {
        return Ok(Vec::new());
    };
    if found.paused || found.next_fire_at != Some(request.due) {
        return Ok(Vec::new());
    }
    let now = millis(Utc::now());
    let mut runs = Vec::new();
    for at in &request.fire {
        let (outcome, run, session, detail) = match &request.refused {
            Some(reason) => ("refused", None, None, Some(reason.clone())),
            None => match start(c, tenant, &found, request, *at).await? {
                Ok(run) => {
                    let session = run.session_id.clone();
                    runs.push(run.clone());
                    ("started", Some(run.id), Some(session), None)
                }
                Err(reason) => ("refused", None, None, Some(reason)),
            },
        };
        c.exec(
            crate::sql!(
                "INSERT INTO schedule_firings (schedule_id, fire_at, tenant_id, outcome, run_id, session_id, detail, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            crate::args![
                found.id.as_str(),
                millis(*at),
                tenant,
                outcome,
                run.as_ref(),
                session.as_ref(),
                &detail,
                now
            ],
        )
        .await?;
    }
    let last = request.fire.last().copied().map(millis);
    c.exec(
        crate::sql!(
            "UPDATE schedules SET next_fire_at = $3, fired_count = fired_count + $4,
                    last_fired_at = COALESCE($5, last_fired_at), paused = (paused OR $6)
             WHERE tenant_id = $1 AND id = $2"
        ),
        crate::args![
            tenant,
            found.id.as_str(),
            request.next.map(millis),
            i64::try_from(runs.len()).unwrap_or(i64::MAX),
            last,
            request.pause
        ],
    )
    .await?;
    Ok(runs)
}

/// The run of one fire time, in the schedule's session or a new one; the
/// reason it cannot start (its agent or session gone) otherwise.
async fn start(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    found: &Schedule,
    request: &FireRequest,
    at: DateTime<Utc>,
) -> Result<std::result::Result<Run, String>> {
    let session = match &found.session_id {
        Some(session) => session.clone(),
        None => {
            let version: Option<i64> = c
                .opt(
                    crate::sql!("SELECT current_version FROM agents WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"),
                    crate::args![tenant, &found.agent_id],
                    |row| row.get(0),
                )
                .await?;
            let Some(version) = version else {
                return Ok(Err("the schedule's agent was deleted".into()));
            };
            super::sessions::create_session(
                c,
                tenant,
                &found.agent_id,
                version,
                request.user.as_deref(),
            )
            .await?
            .id
        }
    };
    let new = NewRun {
        turn: Default::default(),
        session_id: session,
        input: found.input.clone(),
        idempotency_key: Some(format!("schedule:{}:{}", found.id, millis(at))),
        if_busy: BusyPolicy::Queue,
        actor: Some(request.actor.clone()),
        parent: None,
        notify: found.notify.clone(),
    };
    match super::runs::queue_run(c, tenant, &new).await {
        Ok(CreatedRun::Created(run) | CreatedRun::Existing(run)) => Ok(Ok(run)),
        Err(StoreError::NotFound(_)) => Ok(Err("the schedule's session was deleted".into())),
        Err(e) => Err(e),
    }
}

crate::store_impl! {
    impl roster_store::schedules::ScheduleStore {
        write create_schedule(tenant: &TenantId, schedule: NewSchedule, audit: NewAuditEvent) -> Schedule =
            |c| create(c, &tenant, &schedule, &audit).await;
        read get_schedule(tenant: &TenantId, id: &ScheduleId) -> Option<Schedule> = |c| get(c, &tenant, &id).await;
        read list_schedules(tenant: &TenantId, agent: Option<&AgentId>) -> Vec<Schedule> = |c| c.all(
            crate::sql!("SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE tenant_id = $1 AND ($2 IS NULL OR agent_id = $2) ORDER BY id"),
            crate::args![&tenant, agent.as_ref()], schedule).await;
        write update_schedule(tenant: &TenantId, schedule: Schedule, audit: NewAuditEvent) -> Schedule =
            |c| update(c, &tenant, &schedule, &audit).await;
        write delete_schedule(tenant: &TenantId, id: &ScheduleId, audit: NewAuditEvent) -> bool =
            |c| delete(c, &tenant, &id, &audit).await;
        read list_firings(tenant: &TenantId, id: &ScheduleId, limit: i64) -> Vec<Firing> = |c| c.all(
            crate::sql!("SELECT fire_at, outcome, run_id, session_id, detail, created_at FROM schedule_firings
                         WHERE tenant_id = $1 AND schedule_id = $2 ORDER BY fire_at DESC LIMIT $3"),
            &[(&tenant).into(), id.as_str().into(), crate::Arg::Limit(limit)], firing).await;
        /// Across tenants: the scheduler's system view.
        read due_schedules(now: DateTime<Utc>, limit: i64) -> Vec<DueSchedule> = |c| c.all(
            crate::sql!("SELECT {SCHEDULE_COLUMNS}, tenant_id FROM schedules
                         WHERE next_fire_at IS NOT NULL AND next_fire_at <= $1 AND NOT paused
                         ORDER BY next_fire_at LIMIT $2"),
            &[millis(now).into(), crate::Arg::Limit(limit)],
            |row| Ok(DueSchedule {
                schedule: schedule(row)?,
                key_id: key_of(row)?,
                tenant: TenantId::from_stored(row.get(17)?),
            })).await;
        write fire_schedule(tenant: &TenantId, request: FireRequest) -> Vec<Run> = |c| fire(c, &tenant, &request).await;
    }
}
