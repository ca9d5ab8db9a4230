//! Process-wide state shared by every run: the cache of sessions and agent
//! versions, which never change once written, and the locks that make runs
//! of one agent take turns editing a memory block. (Memory blocks are not
//! cached: they belong to the agent, and its other sessions edit them.)

use roster_core::agent::Agent;
use roster_core::{AgentId, SessionId, TenantId};
use roster_store::Session;
use std::collections::HashMap;
use std::hash::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

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

/// Serialises edits of one memory block within this process, so runs of the
/// same agent take turns instead of failing each other's version check.
/// Striped: a fixed set of locks, each block always on the same one.
pub(crate) struct BlockLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Default for BlockLocks {
    fn default() -> Self {
        Self {
            stripes: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

impl BlockLocks {
    pub(crate) fn of(
        &self,
        tenant: &roster_core::TenantId,
        agent: &roster_core::AgentId,
        label: &str,
        owner: &roster_core::blocks::BlockOwner,
    ) -> &tokio::sync::Mutex<()> {
        let mut hasher = DefaultHasher::new();
        (tenant, agent, label, owner).hash(&mut hasher);
        let stripe = usize::try_from(hasher.finish() % self.stripes.len() as u64).unwrap_or(0);
        &self.stripes[stripe]
    }
}
