//! What a run needs to execute, as one explicit value: the store, long-term
//! memory, the model router, the tools, governance, the live-event bus and
//! the process-wide caches. The scheduler owns it next to its own
//! bookkeeping (workers, cancellations, shutdown); the runner and the
//! extraction worker receive it and reach nothing else of the scheduler.

use crate::bus::{Bus, LiveEvent};
use crate::caches::{BlockLocks, Immutable};
use crate::governance::Governance;
use crate::tools::ToolRegistry;
use roster_core::agent::Agent;
use roster_core::{AgentId, RunId, SessionId, TenantId};
use roster_memory::MemoryService;
use roster_models::Router;
use roster_store::{DynStore, Session};
use std::sync::Arc;

pub(crate) struct Services {
    /// The scheduler that owns these services, for what starts other runs
    /// (delegation, a hand-off's delivered result). Weak: it owns us.
    pub(crate) scheduler: std::sync::Weak<crate::scheduler::Scheduler>,
    pub(crate) delegation: roster_core::delegation::DelegationLimits,
    pub(crate) store: DynStore,
    pub(crate) memory: Option<Arc<MemoryService>>,
    pub(crate) router: Arc<Router>,
    pub(crate) tools: ToolRegistry,
    pub(crate) governance: Governance,
    pub(crate) bus: Bus,
    pub(crate) block_locks: BlockLocks,
    pub(crate) immutable: Immutable,
    /// Woken when a commit adds notifications to the outbox, so the sender
    /// takes them up without waiting for its next poll.
    pub(crate) outbox: Arc<tokio::sync::Notify>,
}

impl Services {
    /// Sends a commit's events to live subscribers of `run`, and has a
    /// hand-off result the commit queued taken up by its session's worker.
    pub(crate) fn publish(
        &self,
        tenant: &TenantId,
        run: &RunId,
        committed: &roster_store::Committed,
    ) {
        self.publish_events(run, &committed.events);
        if committed.notifications > 0 {
            self.outbox.notify_one();
        }
        if let Some(delivered) = &committed.delivered {
            if let Some(scheduler) = self.scheduler.upgrade() {
                self.bus.open(&delivered.id);
                scheduler.kick(tenant, &delivered.session_id);
            }
        }
    }

    /// Sends committed events to live subscribers of `run`.
    pub(crate) fn publish_events(
        &self,
        run: &RunId,
        events: &[roster_core::event::SequencedEvent],
    ) {
        for e in events {
            self.bus.publish(
                run,
                LiveEvent {
                    seq: Some(e.seq),
                    event: e.event.clone(),
                },
            );
        }
    }
}

impl Services {
    /// A session, from the cache or the store.
    pub(crate) async fn session_of(
        &self,
        tenant: &TenantId,
        id: &SessionId,
    ) -> Result<Option<Session>, roster_store::StoreError> {
        if let Some(session) = self.immutable.session(tenant, id) {
            return Ok(Some(session));
        }
        let session = self.store.get_session(tenant, id).await?;
        if let Some(session) = &session {
            self.immutable.keep_session(tenant, session);
        }
        Ok(session)
    }

    /// An agent version, from the cache or the store.
    pub(crate) async fn agent_version(
        &self,
        tenant: &TenantId,
        id: &AgentId,
        version: i64,
    ) -> Result<Option<Agent>, roster_store::StoreError> {
        if let Some(agent) = self.immutable.agent(tenant, id, version) {
            return Ok(Some(agent));
        }
        let agent = self.store.get_agent_version(tenant, id, version).await?;
        if let Some(agent) = &agent {
            self.immutable.keep_agent(tenant, agent);
        }
        Ok(agent)
    }
}
