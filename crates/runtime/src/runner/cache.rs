//! What a run reads once and then keeps up to date itself, so a turn does
//! not re-read the store for state it wrote: the session's context window.
//! Also the process-wide cache of sessions and agent versions, which never
//! change once written. (Memory blocks are not cached: they belong to the
//! agent, and its other sessions edit them.)

use roster_core::agent::Agent;
use roster_core::item::Item;
use roster_core::{AgentId, SessionId, TenantId};
use roster_store::Session;
use std::collections::HashMap;
use std::sync::Mutex;

/// The run's view of its session's tail. Only this run appends to the
/// session while it is active (one active run per session), so adding the
/// items it commits keeps the view exact.
#[derive(Default)]
pub(crate) struct Window {
    items: Mutex<Option<Vec<Item>>>,
}

impl Window {
    pub(crate) fn items(&self) -> Option<Vec<Item>> {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_items(&self, items: Vec<Item>) {
        *self.items.lock().unwrap_or_else(|p| p.into_inner()) = Some(items);
    }

    /// Adds committed items, keeping `seq` order and at most `limit` items.
    pub(crate) fn append(&self, committed: &[Item], limit: usize) {
        let mut guard = self.items.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(items) = guard.as_mut() {
            items.extend_from_slice(committed);
            items.sort_by_key(|i| i.seq);
            if items.len() > limit {
                items.drain(..items.len() - limit);
            }
        }
    }
}

/// Entries kept before the cache starts over; both kinds are small.
const MAX_ENTRIES: usize = 10_000;

/// Sessions and agent versions by key. Both are immutable once stored, so
/// a cached copy is never stale.
#[derive(Default)]
pub(crate) struct Immutable {
    sessions: Mutex<HashMap<(TenantId, SessionId), Session>>,
    agents: Mutex<HashMap<(TenantId, AgentId, i64), Agent>>,
}

impl Immutable {
    pub(crate) fn session(&self, tenant: &TenantId, id: &SessionId) -> Option<Session> {
        let key = (tenant.clone(), id.clone());
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
    }

    pub(crate) fn keep_session(&self, tenant: &TenantId, session: &Session) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert((tenant.clone(), session.id.clone()), session.clone());
    }

    pub(crate) fn agent(&self, tenant: &TenantId, id: &AgentId, version: i64) -> Option<Agent> {
        let key = (tenant.clone(), id.clone(), version);
        self.agents
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned()
    }

    pub(crate) fn keep_agent(&self, tenant: &TenantId, agent: &Agent) {
        let mut map = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(
            (tenant.clone(), agent.id.clone(), agent.version),
            agent.clone(),
        );
    }
}

impl crate::scheduler::Inner {
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
