//! A store that fails on demand: wraps a real one and makes its next
//! commit fail, as a database hiccup would (nothing is written).

use async_trait::async_trait;
use roster_core::agent::{Agent, AgentConfig, NewAgent};
use roster_core::event::SequencedEvent;
use roster_core::item::Item;
use roster_core::ledger::LedgerEntry;
use roster_core::memory::{MemoryBlock, MemoryBlockVersion};
use roster_core::run::{Run, Step};
use roster_core::{AgentId, KeyId, RunId, SessionId, TenantId};
use roster_store::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct FlakyStore {
    inner: DynStore,
    fail_next_commit: AtomicBool,
}

impl FlakyStore {
    pub fn new(inner: DynStore) -> Arc<Self> {
        Arc::new(Self {
            inner,
            fail_next_commit: AtomicBool::new(false),
        })
    }

    /// The next commit fails with a database error, without writing.
    pub fn fail_next_commit(&self) {
        self.fail_next_commit.store(true, Ordering::SeqCst);
    }
}

roster_store::forward_record_traits!(FlakyStore, inner);

#[async_trait]
impl Store for FlakyStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    async fn ensure_tenant(&self, tenant: &TenantId, name: &str) -> StoreResult<()> {
        self.inner.ensure_tenant(tenant, name).await
    }

    async fn insert_api_key(&self, tenant: &TenantId, key: NewApiKey) -> StoreResult<ApiKeyRecord> {
        self.inner.insert_api_key(tenant, key).await
    }

    async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.find_api_key(key_hash).await
    }

    async fn count_admin_keys(&self, tenant: &TenantId) -> StoreResult<i64> {
        self.inner.count_admin_keys(tenant).await
    }

    async fn revoke_admin_keys(&self, tenant: &TenantId) -> StoreResult<()> {
        self.inner.revoke_admin_keys(tenant).await
    }

    async fn set_admin_key(&self, tenant: &TenantId, key: NewApiKey) -> StoreResult<ApiKeyRecord> {
        self.inner.set_admin_key(tenant, key).await
    }

    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> StoreResult<Option<ApiKeyRecord>> {
        self.inner.get_key(tenant, id).await
    }

    async fn create_agent(
        &self,
        tenant: &TenantId,
        agent: NewAgent,
        principal: &str,
    ) -> StoreResult<Agent> {
        self.inner.create_agent(tenant, agent, principal).await
    }

    async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>> {
        self.inner.list_agents(tenant).await
    }

    async fn get_agent(&self, tenant: &TenantId, agent: &AgentRef) -> StoreResult<Option<Agent>> {
        self.inner.get_agent(tenant, agent).await
    }

    async fn get_agent_version(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        version: i64,
    ) -> StoreResult<Option<Agent>> {
        self.inner.get_agent_version(tenant, agent, version).await
    }

    async fn update_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        config: AgentConfig,
        principal: &str,
    ) -> StoreResult<Agent> {
        self.inner
            .update_agent(tenant, agent, config, principal)
            .await
    }

    async fn delete_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        principal: &str,
    ) -> StoreResult<bool> {
        self.inner.delete_agent(tenant, agent, principal).await
    }

    async fn list_memory_blocks(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<MemoryBlock>> {
        self.inner.list_memory_blocks(tenant, agent).await
    }

    async fn memory_block_history(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<MemoryBlockVersion>> {
        self.inner.memory_block_history(tenant, agent).await
    }

    async fn create_session_for(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        agent_version: i64,
        user: Option<&str>,
    ) -> StoreResult<Session> {
        self.inner
            .create_session_for(tenant, agent, agent_version, user)
            .await
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<Session>> {
        self.inner.get_session(tenant, session).await
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        query: &SessionQuery,
    ) -> StoreResult<Vec<Session>> {
        self.inner.list_sessions(tenant, query).await
    }

    async fn list_items(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Item>> {
        self.inner.list_items(tenant, session, after, limit).await
    }

    async fn tail_items(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        limit: i64,
    ) -> StoreResult<Vec<Item>> {
        self.inner.tail_items(tenant, session, limit).await
    }

    async fn create_run(&self, tenant: &TenantId, run: NewRun) -> StoreResult<CreatedRun> {
        self.inner.create_run(tenant, run).await
    }

    async fn get_run(&self, tenant: &TenantId, run: &RunId) -> StoreResult<Option<Run>> {
        self.inner.get_run(tenant, run).await
    }

    async fn list_runs(&self, tenant: &TenantId, session: &SessionId) -> StoreResult<Vec<Run>> {
        self.inner.list_runs(tenant, session).await
    }

    async fn list_steps(&self, tenant: &TenantId, run: &RunId) -> StoreResult<Vec<Step>> {
        self.inner.list_steps(tenant, run).await
    }

    async fn next_queued_run(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<Run>> {
        self.inner.next_queued_run(tenant, session).await
    }

    async fn commit(&self, tenant: &TenantId, write: JournalWrite) -> StoreResult<Committed> {
        if self.fail_next_commit.swap(false, Ordering::SeqCst) {
            return Err(StoreError::Database(
                "injected: the database went away".into(),
            ));
        }
        self.inner.commit(tenant, write).await
    }

    async fn list_events(
        &self,
        tenant: &TenantId,
        run: &RunId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SequencedEvent>> {
        self.inner.list_events(tenant, run, after, limit).await
    }

    async fn list_ledger(
        &self,
        tenant: &TenantId,
        query: &LedgerQuery,
    ) -> StoreResult<Vec<LedgerEntry>> {
        self.inner.list_ledger(tenant, query).await
    }

    async fn unfinished_runs(&self) -> StoreResult<Vec<(TenantId, Run)>> {
        self.inner.unfinished_runs().await
    }
}
