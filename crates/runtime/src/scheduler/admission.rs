//! What the runtime checks of an input before a run is made for it, and
//! the retry of a failed run, which sends it back through the same queue.

use super::{Runtime, Scheduler};
use crate::context::input_budget;
use crate::error::RuntimeError;
use roster_core::agent::OversizedInput;
use roster_core::run::{Run, RunStatus};
use roster_core::tokens::estimate_tokens;
use roster_core::{RunId, SessionId, TenantId};
use roster_store::{JournalWrite, NewAuditEvent, RunTransition, StoreError};
use serde_json::json;

impl Scheduler {
    /// Refuses an input larger than the session's agent version leaves room
    /// for (unless that agent cuts oversized inputs). An unknown session or
    /// agent version is left for the run's creation and start to report.
    pub(super) async fn check_input(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        input: &str,
    ) -> Result<(), RuntimeError> {
        let Some(session) = self.services.session_of(tenant, session).await? else {
            return Ok(());
        };
        let Some(agent) = self
            .services
            .agent_version(tenant, &session.agent_id, session.agent_version)
            .await?
        else {
            return Ok(());
        };
        if agent.config.context.oversized_input == OversizedInput::Truncate {
            return Ok(());
        }
        let blocks =
            crate::runner::session_blocks(&self.services.store, tenant, &agent, &session).await?;
        let budget = input_budget(&agent.config, &blocks);
        let tokens = estimate_tokens(input);
        if tokens > budget.available {
            return Err(RuntimeError::InputTooLarge {
                tokens,
                available: budget.available,
                context_tokens: budget.context_tokens,
                pinned: budget.pinned,
            });
        }
        Ok(())
    }
}

impl Runtime {
    /// Sends a failed run back to its session's queue, behind whatever is
    /// queued there now, to continue from its journal: completed model and
    /// tool calls are not made again. It keeps its id; `actor` (who asks)
    /// becomes its actor, and the retry is audited in the same write.
    /// Deciding whether `actor` may invoke the agent is the caller's.
    pub async fn retry(
        &self,
        tenant: &TenantId,
        run_id: &RunId,
        actor: &str,
    ) -> Result<Run, RuntimeError> {
        self.inner.check_running()?;
        let store = &self.inner.services.store;
        let run = store
            .get_run(tenant, run_id)
            .await?
            .ok_or(RuntimeError::NotFound("run"))?;
        let not_failed = |run: &Run| RuntimeError::NotRetryable {
            run: run.id.to_string(),
            status: run.status,
        };
        if run.status != RunStatus::Failed {
            return Err(not_failed(&run));
        }
        let mut write = JournalWrite::new(run.id.clone(), run.session_id.clone());
        write.transition = Some(RunTransition::Retry {
            actor: Some(actor.to_owned()),
            previous_error: run.error.clone(),
        });
        write.audit = vec![NewAuditEvent {
            actor: actor.to_owned(),
            action: "run.retry".to_owned(),
            resource: format!("run:{}", run.id),
            decision: None,
            detail: json!({
                "session": run.session_id,
                "previous_error": run.error,
                "previous_actor": run.actor,
            }),
        }];
        match store.commit(tenant, write).await {
            Ok(committed) => {
                self.inner.services.bus.open(&run.id);
                self.inner.services.publish(tenant, &run.id, &committed);
            }
            Err(StoreError::Conflict(_)) => {
                // Retried (or otherwise changed) meanwhile.
                let now = store.get_run(tenant, run_id).await?;
                return Err(not_failed(now.as_ref().unwrap_or(&run)));
            }
            Err(e) => return Err(e.into()),
        }
        self.inner.kick(tenant, &run.session_id);
        store
            .get_run(tenant, run_id)
            .await?
            .ok_or(RuntimeError::NotFound("run"))
    }
}
