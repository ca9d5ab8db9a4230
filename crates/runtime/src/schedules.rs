//! The front door for runs a schedule starts. A firing acts for the key
//! that made the schedule: it must still be valid, may still see the
//! schedule's session, and must still be allowed to invoke the agent
//! (`invoke_agent`, decided and audited with the chain `key:… >
//! schedule:sch_…`) — or the firing is recorded as refused, with why. The
//! store writes each firing in the transaction that starts its run, so a
//! fire time fires once however many times (or processes) try it.

use crate::error::RuntimeError;
use crate::scheduler::Runtime;
use chrono::{DateTime, Duration as Span, Utc};
use roster_core::run::Run;
use roster_schedule::{plan, Timing};
use roster_store::schedules::{DueSchedule, FireRequest};
use std::time::Duration;

/// Most due schedules read per query while catching up.
const BATCH: i64 = 500;

impl Runtime {
    /// Fires every schedule due at `now` (and any that come due while it
    /// works), each in its own transaction; returns the runs started.
    pub async fn fire_due(
        &self,
        now: DateTime<Utc>,
        grace: Duration,
    ) -> Result<usize, RuntimeError> {
        let grace = Span::from_std(grace).unwrap_or(Span::seconds(60));
        let mut started = 0;
        loop {
            let due = self.store().due_schedules(now, BATCH).await?;
            if due.is_empty() {
                return Ok(started);
            }
            let count = due.len();
            let mut failed = 0;
            for schedule in due {
                match self.fire_one(&schedule, now, grace).await {
                    Ok(runs) => started += runs.len(),
                    Err(e) => {
                        // Left for the next pass; the others still fire.
                        tracing::warn!(schedule = %schedule.schedule.id, error = %e, "cannot fire a schedule; trying again next pass");
                        failed += 1;
                    }
                }
            }
            // A short batch was the last; a full one of failures would be
            // read again unchanged.
            if count < BATCH as usize || failed == count {
                return Ok(started);
            }
        }
    }

    async fn fire_one(
        &self,
        due: &DueSchedule,
        now: DateTime<Utc>,
        grace: Span,
    ) -> Result<Vec<Run>, RuntimeError> {
        let schedule = &due.schedule;
        let Some(due_at) = schedule.next_fire_at else {
            return Ok(Vec::new());
        };
        let timing = Timing::parse(
            schedule.cron.as_deref(),
            schedule.at,
            Some(&schedule.timezone),
        )
        .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        let planned = plan(&timing, due_at, now, grace, schedule.catch_up);
        if planned.skipped > 0 {
            tracing::info!(schedule = %schedule.id, skipped = planned.skipped, policy = schedule.catch_up.as_str(), "missed firings not caught up");
        }
        let chain_head = format!("key:{}", due.key_id);
        let actor = format!("{chain_head} > schedule:{}", schedule.id);
        let (refused, user, pause) = if planned.fire.is_empty() {
            (None, None, false)
        } else {
            let at = serde_json::json!({ "schedule": schedule.id, "session": schedule.session_id });
            match self
                .may_act_for(
                    &due.tenant,
                    &due.key_id,
                    &schedule.agent_id,
                    schedule.session_id.as_ref(),
                    &actor,
                    at,
                )
                .await?
            {
                Ok(user) => (None, user, false),
                Err(refusal) => {
                    tracing::info!(schedule = %schedule.id, reason = %refusal.reason, paused = refusal.lasting, "schedule firing refused");
                    (Some(refusal.reason), None, refusal.lasting)
                }
            }
        };
        let runs = self
            .store()
            .fire_schedule(
                &due.tenant,
                FireRequest {
                    schedule: schedule.id.clone(),
                    due: due_at,
                    fire: planned.fire,
                    refused,
                    pause,
                    next: planned.next,
                    actor,
                    user,
                },
            )
            .await?;
        for run in &runs {
            self.inner.services.bus.open(&run.id);
            self.inner.kick(&due.tenant, &run.session_id);
        }
        Ok(runs)
    }

    /// Fires due schedules every `every`, with `grace` as the lateness past
    /// which a fire time counts as missed; stops with the runtime.
    pub fn start_schedules(&self, every: Duration, grace: Duration) {
        let runtime = self.clone();
        let halt = self.inner.halt.clone();
        self.inner.tasks.spawn(async move {
            loop {
                if let Err(e) = runtime.fire_due(Utc::now(), grace).await {
                    tracing::warn!(error = %e, "cannot read due schedules");
                }
                tokio::select! {
                    () = halt.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
    }
}
