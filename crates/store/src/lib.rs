//! Roster's storage boundary: the [`Store`] traits (what the runtime and API
//! may ask of durable state, split by concern) and the types they speak.
//! Every method that touches tenant data takes the tenant, so no caller can
//! forget the filter. The implementation (SQLite and PostgreSQL, written
//! once) is `roster-store-sql`; crates that only need the traits depend on
//! this crate alone and never compile a database driver.
//!
//! This crate must never name a database, call a model, run a tool or speak
//! HTTP.

pub mod approvals;
pub mod blocks;
pub mod budgets;
pub mod conversations;
mod error;
pub mod governance;
mod integrations;
mod jobs;
mod knowledge;
mod lifecycle;
pub mod limits;
pub mod notifications;
mod records;
pub mod remotes;
pub mod schedules;
pub mod triggers;
mod types;

pub use approvals::*;
pub use blocks::{BlockChange, BlockStore};
pub use budgets::*;
pub use error::StoreError;
pub use governance::*;
pub use integrations::*;
pub use jobs::*;
pub use knowledge::*;
pub use lifecycle::*;
pub use records::*;
pub use types::*;

use async_trait::async_trait;
use roster_core::agent::{Agent, AgentConfig, NewAgent};
use roster_core::event::SequencedEvent;
use roster_core::item::Item;
use roster_core::ledger::LedgerEntry;
use roster_core::memory::{MemoryBlock, MemoryBlockVersion};
use roster_core::run::{Run, Step};
use roster_core::{AgentId, KeyId, RunId, SessionId, TenantId};
use std::sync::Arc;

pub type StoreResult<T> = Result<T, StoreError>;

/// Durable state. Implementations must make each method atomic and must make
/// [`Store::commit`] durable (fsynced) before it returns.
#[async_trait]
pub trait Store:
    RecordStore
    + BlockStore
    + KnowledgeStore
    + ContextStore
    + JobStore
    + IndexFeed
    + IntegrationStore
    + GovernanceStore
    + ApprovalStore
    + BudgetStore
    + LifecycleStore
    + schedules::ScheduleStore
    + triggers::TriggerStore
    + notifications::NotificationStore
    + limits::LimitStore
    + conversations::ConversationStore
    + remotes::RemoteStore
    + Send
    + Sync
    + 'static
{
    /// Short backend name for logs and benchmarks: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    // --- tenants and keys ---
    async fn ensure_tenant(&self, tenant: &TenantId, name: &str) -> StoreResult<()>;
    async fn insert_api_key(&self, tenant: &TenantId, key: NewApiKey) -> StoreResult<ApiKeyRecord>;
    /// Authentication is how a request learns its tenant, so this one lookup
    /// is by the key's hash alone. Revoked keys are not returned.
    async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    async fn count_admin_keys(&self, tenant: &TenantId) -> StoreResult<i64>;
    async fn revoke_admin_keys(&self, tenant: &TenantId) -> StoreResult<()>;
    /// Makes `key` the tenant's only admin key, atomically: the others are
    /// revoked; an earlier admin key with the same hash is restored.
    async fn set_admin_key(&self, tenant: &TenantId, key: NewApiKey) -> StoreResult<ApiKeyRecord>;
    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> StoreResult<Option<ApiKeyRecord>>;

    // --- agents and memory blocks ---
    async fn create_agent(
        &self,
        tenant: &TenantId,
        agent: NewAgent,
        principal: &str,
    ) -> StoreResult<Agent>;
    async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>>;
    async fn get_agent(&self, tenant: &TenantId, agent: &AgentRef) -> StoreResult<Option<Agent>>;
    async fn get_agent_version(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        version: i64,
    ) -> StoreResult<Option<Agent>>;
    /// Stores `config` as a new version; existing sessions stay on theirs.
    /// Creating, updating and deleting an agent append their audit event
    /// (actor `principal`) in the same transaction.
    async fn update_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        config: AgentConfig,
        principal: &str,
    ) -> StoreResult<Agent>;
    async fn delete_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        principal: &str,
    ) -> StoreResult<bool>;
    /// The agent's own block rows (for `user` and `session` blocks, their
    /// templates), of every version; copies are read with
    /// [`BlockStore::memory_blocks_of`].
    async fn list_memory_blocks(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<MemoryBlock>>;
    /// The history of the agent's own block rows, never of a copy.
    async fn memory_block_history(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<MemoryBlockVersion>>;

    // --- sessions and items ---
    async fn create_session(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        agent_version: i64,
    ) -> StoreResult<Session> {
        self.create_session_for(tenant, agent, agent_version, None)
            .await
    }
    /// A session working for `user` (memory namespaces may name `{user}`).
    async fn create_session_for(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        agent_version: i64,
        user: Option<&str>,
    ) -> StoreResult<Session>;
    async fn get_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<Session>>;
    async fn list_sessions(
        &self,
        tenant: &TenantId,
        query: &SessionQuery,
    ) -> StoreResult<Vec<Session>>;
    /// Items with `seq > after`, ascending, at most `limit`.
    async fn list_items(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Item>>;
    /// Like [`Store::list_items`], without the items of rolled-back runs:
    /// the history the model sees.
    async fn history_after(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Item>>;
    /// The newest `limit` items of the history the model sees (items of
    /// rolled-back runs left out), ascending. Cost depends on `limit`, never
    /// on the session's length.
    async fn tail_items(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        limit: i64,
    ) -> StoreResult<Vec<Item>>;

    /// The callee's session under the caller's session `parent` (one per
    /// caller session and callee agent, working for the same user), made by
    /// the first call.
    async fn delegate_session(
        &self,
        tenant: &TenantId,
        parent: &SessionId,
        agent: &AgentId,
        agent_version: i64,
    ) -> StoreResult<Session>;
    /// Runs started by any of `parents` (delegations and hand-offs), oldest
    /// first.
    async fn child_runs(&self, tenant: &TenantId, parents: &[RunId]) -> StoreResult<Vec<Run>>;
    /// The run `parent` started with `idempotency_key`, if it did.
    async fn find_child_run(
        &self,
        tenant: &TenantId,
        parent: &RunId,
        idempotency_key: &str,
    ) -> StoreResult<Option<Run>>;
    /// Model usage and cost of each of `runs` from the ledger (runs without
    /// a ledger row are absent).
    async fn run_usage(&self, tenant: &TenantId, runs: &[RunId]) -> StoreResult<Vec<RunUsage>>;

    // --- runs and the journal ---
    async fn create_run(&self, tenant: &TenantId, run: NewRun) -> StoreResult<CreatedRun>;
    async fn get_run(&self, tenant: &TenantId, run: &RunId) -> StoreResult<Option<Run>>;
    async fn list_runs(&self, tenant: &TenantId, session: &SessionId) -> StoreResult<Vec<Run>>;
    async fn list_steps(&self, tenant: &TenantId, run: &RunId) -> StoreResult<Vec<Step>>;
    /// The session's next run to execute: the oldest that is queued or still
    /// `running` (one interrupted by a crash is resumed before newer input).
    async fn next_queued_run(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<Run>>;
    /// Appends a journal entry atomically and durably. See [`JournalWrite`].
    async fn commit(&self, tenant: &TenantId, write: JournalWrite) -> StoreResult<Committed>;
    async fn list_events(
        &self,
        tenant: &TenantId,
        run: &RunId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SequencedEvent>>;
    async fn list_ledger(
        &self,
        tenant: &TenantId,
        query: &LedgerQuery,
    ) -> StoreResult<Vec<LedgerEntry>>;

    /// Runs not yet finished, across tenants: the system principal's view,
    /// used only by recovery at start-up.
    async fn unfinished_runs(&self) -> StoreResult<Vec<(TenantId, Run)>>;
}

pub type DynStore = Arc<dyn Store>;
