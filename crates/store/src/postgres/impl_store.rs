//! [`Store`] for [`PgStore`]: each method runs one of the query modules on a
//! pooled connection; multi-statement writes run in one transaction, which
//! commits only if the whole write succeeded.

use super::{agents, journal, runs, sessions, PgStore};
use crate::*;
use async_trait::async_trait;

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ensure_tenant(&self, tenant: &TenantId, name: &str) -> StoreResult<()> {
        let mut c = self.conn().await?;
        agents::ensure_tenant(&mut c, tenant, name).await
    }

    async fn insert_api_key(&self, tenant: &TenantId, key: NewApiKey) -> StoreResult<ApiKeyRecord> {
        let mut c = self.conn().await?;
        agents::insert_api_key(&mut c, tenant, &key).await
    }

    async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let mut c = self.conn().await?;
        agents::find_api_key(&mut c, key_hash).await
    }

    async fn count_admin_keys(&self, tenant: &TenantId) -> StoreResult<i64> {
        let mut c = self.conn().await?;
        agents::count_admin_keys(&mut c, tenant).await
    }

    async fn revoke_admin_keys(&self, tenant: &TenantId) -> StoreResult<()> {
        let mut c = self.conn().await?;
        agents::revoke_admin_keys(&mut c, tenant).await
    }

    async fn set_admin_key(&self, tenant: &TenantId, key: NewApiKey) -> StoreResult<ApiKeyRecord> {
        let mut tx = self.begin().await?;
        let out = agents::set_admin_key(&mut tx, tenant, &key).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> StoreResult<Option<ApiKeyRecord>> {
        let mut c = self.conn().await?;
        agents::get_key(&mut c, tenant, id).await
    }

    async fn create_agent(
        &self,
        tenant: &TenantId,
        agent: NewAgent,
        principal: &str,
    ) -> StoreResult<Agent> {
        let mut tx = self.begin().await?;
        let out = agents::create_agent(&mut tx, tenant, &agent, principal).await?;
        super::governance::append(
            &mut tx,
            tenant,
            &[crate::agent_event("agent.create", principal, &out)],
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>> {
        let mut c = self.conn().await?;
        agents::list_agents(&mut c, tenant).await
    }

    async fn get_agent(&self, tenant: &TenantId, agent: &AgentRef) -> StoreResult<Option<Agent>> {
        let mut c = self.conn().await?;
        agents::get_agent(&mut c, tenant, agent).await
    }

    async fn get_agent_version(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        version: i64,
    ) -> StoreResult<Option<Agent>> {
        let mut c = self.conn().await?;
        agents::get_agent_version(&mut c, tenant, agent, version).await
    }

    async fn update_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        config: AgentConfig,
        principal: &str,
    ) -> StoreResult<Agent> {
        let mut tx = self.begin().await?;
        let out = agents::update_agent(&mut tx, tenant, agent, &config).await?;
        super::governance::append(
            &mut tx,
            tenant,
            &[crate::agent_event("agent.update", principal, &out)],
        )
        .await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn delete_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        principal: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let found = agents::get_agent(&mut tx, tenant, &AgentRef::Id(agent.clone())).await?;
        let deleted = agents::delete_agent(&mut tx, tenant, agent).await?;
        if let (true, Some(found)) = (deleted, found) {
            super::governance::append(
                &mut tx,
                tenant,
                &[crate::agent_event("agent.delete", principal, &found)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn list_memory_blocks(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<MemoryBlock>> {
        let mut c = self.conn().await?;
        agents::list_memory_blocks(&mut c, tenant, agent).await
    }

    async fn memory_block_history(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<MemoryBlockVersion>> {
        let mut c = self.conn().await?;
        agents::memory_block_history(&mut c, tenant, agent).await
    }

    async fn create_session_for(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        agent_version: i64,
        user: Option<&str>,
    ) -> StoreResult<Session> {
        let mut c = self.conn().await?;
        sessions::create_session(&mut c, tenant, agent, agent_version, user).await
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<Session>> {
        let mut c = self.conn().await?;
        sessions::get_session(&mut c, tenant, session).await
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        query: &SessionQuery,
    ) -> StoreResult<Vec<Session>> {
        let mut c = self.conn().await?;
        sessions::list_sessions(&mut c, tenant, query).await
    }

    async fn list_items(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Item>> {
        let mut c = self.conn().await?;
        sessions::list_items(&mut c, tenant, session, after, limit).await
    }

    async fn tail_items(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        limit: i64,
    ) -> StoreResult<Vec<Item>> {
        let mut c = self.conn().await?;
        sessions::tail_items(&mut c, tenant, session, limit).await
    }

    async fn create_run(&self, tenant: &TenantId, run: NewRun) -> StoreResult<CreatedRun> {
        let mut tx = self.begin().await?;
        let out = runs::create_run(&mut tx, tenant, &run).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn get_run(&self, tenant: &TenantId, run: &RunId) -> StoreResult<Option<Run>> {
        let mut c = self.conn().await?;
        runs::get_run(&mut c, tenant, run).await
    }

    async fn list_runs(&self, tenant: &TenantId, session: &SessionId) -> StoreResult<Vec<Run>> {
        let mut c = self.conn().await?;
        runs::list_runs(&mut c, tenant, session).await
    }

    async fn list_steps(&self, tenant: &TenantId, run: &RunId) -> StoreResult<Vec<Step>> {
        let mut c = self.conn().await?;
        runs::list_steps(&mut c, tenant, run).await
    }

    async fn next_queued_run(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<Run>> {
        let mut c = self.conn().await?;
        runs::next_queued_run(&mut c, tenant, session).await
    }

    async fn commit(&self, tenant: &TenantId, write: JournalWrite) -> StoreResult<Committed> {
        let mut tx = self.begin().await?;
        let out = journal::commit(&mut tx, tenant, &write).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn list_events(
        &self,
        tenant: &TenantId,
        run: &RunId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SequencedEvent>> {
        let mut c = self.conn().await?;
        runs::list_events(&mut c, tenant, run, after, limit).await
    }

    async fn list_ledger(
        &self,
        tenant: &TenantId,
        query: &LedgerQuery,
    ) -> StoreResult<Vec<LedgerEntry>> {
        let mut c = self.conn().await?;
        runs::list_ledger(&mut c, tenant, query).await
    }

    async fn unfinished_runs(&self) -> StoreResult<Vec<(TenantId, Run)>> {
        let mut c = self.conn().await?;
        runs::unfinished_runs(&mut c).await
    }
}
