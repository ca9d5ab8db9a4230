//! Schedules and their firings. A firing is written in the transaction
//! that starts its run (and makes its session, when each firing has a new
//! one), checked against the schedule's stored next fire time under a row
//! lock: a fire time fires once, however many processes try it.

use crate::{NewAuditEvent, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::run::Run;
use roster_core::schedule::{CatchUp, Firing, Schedule};
use roster_core::{AgentId, KeyId, ScheduleId, SessionId, TenantId};

#[derive(Clone, Debug)]
pub struct NewSchedule {
    pub agent_id: AgentId,
    pub cron: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub timezone: String,
    pub input: String,
    pub session_id: Option<SessionId>,
    pub catch_up: CatchUp,
    /// Webhooks told when each firing's run finishes.
    pub notify: Vec<String>,
    pub paused: bool,
    pub next_fire_at: Option<DateTime<Utc>>,
    /// `key:key_…`.
    pub created_by: String,
    pub key_id: KeyId,
}

/// A schedule whose next fire time has come, with the key it acts for.
#[derive(Clone, Debug)]
pub struct DueSchedule {
    pub tenant: TenantId,
    pub schedule: Schedule,
    pub key_id: KeyId,
}

/// What one pass fires of a due schedule.
#[derive(Clone, Debug)]
pub struct FireRequest {
    pub schedule: ScheduleId,
    /// The next fire time the caller read: nothing is written unless the
    /// schedule is still at it (another process fired it, or it changed).
    pub due: DateTime<Utc>,
    /// Fire times to start a run for, oldest first.
    pub fire: Vec<DateTime<Utc>>,
    /// Instead of runs, record each fire time as refused, with this reason.
    pub refused: Option<String>,
    /// Pause the schedule too: the refusal will not pass by itself (its
    /// key or agent is gone), so it should not be retried every fire time.
    pub pause: bool,
    /// Its next fire time after these (none: a one-off that is done).
    pub next: Option<DateTime<Utc>>,
    /// The runs' actor chain (`key:… > schedule:sch_…`).
    pub actor: String,
    /// The user new sessions work for.
    pub user: Option<String>,
}

#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Stores it with its audit event.
    async fn create_schedule(
        &self,
        tenant: &TenantId,
        schedule: NewSchedule,
        audit: NewAuditEvent,
    ) -> StoreResult<Schedule>;
    async fn get_schedule(
        &self,
        tenant: &TenantId,
        id: &ScheduleId,
    ) -> StoreResult<Option<Schedule>>;
    /// Oldest first; only `agent`'s when given.
    async fn list_schedules(
        &self,
        tenant: &TenantId,
        agent: Option<&AgentId>,
    ) -> StoreResult<Vec<Schedule>>;
    /// Writes its changeable fields (timing, input, session, catch-up,
    /// paused, next fire time) with the audit event; `NotFound` if gone.
    async fn update_schedule(
        &self,
        tenant: &TenantId,
        schedule: Schedule,
        audit: NewAuditEvent,
    ) -> StoreResult<Schedule>;
    /// Removes it (its firings stay readable through their runs).
    async fn delete_schedule(
        &self,
        tenant: &TenantId,
        id: &ScheduleId,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Newest first.
    async fn list_firings(
        &self,
        tenant: &TenantId,
        id: &ScheduleId,
        limit: i64,
    ) -> StoreResult<Vec<Firing>>;
    /// Across tenants (the scheduler's system view): unpaused schedules
    /// whose next fire time is at or before `now`, soonest first.
    async fn due_schedules(&self, now: DateTime<Utc>, limit: i64) -> StoreResult<Vec<DueSchedule>>;
    /// Fires one pass of a due schedule, all in one transaction: for each
    /// fire time a session (when the schedule names none) and a queued run,
    /// and its firing row; then the next fire time. Returns the runs
    /// started; nothing when the schedule is no longer at `due`.
    async fn fire_schedule(&self, tenant: &TenantId, request: FireRequest)
        -> StoreResult<Vec<Run>>;
}
