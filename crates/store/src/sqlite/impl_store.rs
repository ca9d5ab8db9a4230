//! [`Store`] for [`SqliteStore`]: each method runs one of the query modules
//! on the writer (mutations) or a reader connection (queries).

use super::{agents, journal, runs, sessions, SqliteStore};
use crate::*;
use async_trait::async_trait;

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ensure_tenant(&self, tenant: &TenantId, name: &str) -> StoreResult<()> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        self.write(move |c| agents::ensure_tenant(c, &tenant, &name))
            .await
    }

    async fn insert_api_key(&self, tenant: &TenantId, key: NewApiKey) -> StoreResult<ApiKeyRecord> {
        let tenant = tenant.clone();
        self.write(move |c| agents::insert_api_key(c, &tenant, &key))
            .await
    }

    async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        let hash = key_hash.to_owned();
        self.read(move |c| agents::find_api_key(c, &hash)).await
    }

    async fn count_admin_keys(&self, tenant: &TenantId) -> StoreResult<i64> {
        let tenant = tenant.clone();
        self.read(move |c| agents::count_admin_keys(c, &tenant))
            .await
    }

    async fn revoke_admin_keys(&self, tenant: &TenantId) -> StoreResult<()> {
        let tenant = tenant.clone();
        self.write(move |c| agents::revoke_admin_keys(c, &tenant))
            .await
    }

    async fn set_admin_key(&self, tenant: &TenantId, key: NewApiKey) -> StoreResult<ApiKeyRecord> {
        let tenant = tenant.clone();
        self.write(move |c| agents::set_admin_key(c, &tenant, &key))
            .await
    }

    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> StoreResult<Option<ApiKeyRecord>> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.read(move |c| agents::get_key(c, &tenant, &id)).await
    }

    async fn create_agent(
        &self,
        tenant: &TenantId,
        agent: NewAgent,
        principal: &str,
    ) -> StoreResult<Agent> {
        let (tenant, principal) = (tenant.clone(), principal.to_owned());
        self.write(move |c| {
            let created = agents::create_agent(c, &tenant, &agent, &principal)?;
            super::governance::append(
                c,
                &tenant,
                &[crate::agent_event("agent.create", &principal, &created)],
            )?;
            Ok(created)
        })
        .await
    }

    async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>> {
        let tenant = tenant.clone();
        self.read(move |c| agents::list_agents(c, &tenant)).await
    }

    async fn get_agent(&self, tenant: &TenantId, agent: &AgentRef) -> StoreResult<Option<Agent>> {
        let (tenant, agent) = (tenant.clone(), agent.clone());
        self.read(move |c| agents::get_agent(c, &tenant, &agent))
            .await
    }

    async fn get_agent_version(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        version: i64,
    ) -> StoreResult<Option<Agent>> {
        let (tenant, agent) = (tenant.clone(), agent.clone());
        self.read(move |c| agents::get_agent_version(c, &tenant, &agent, version))
            .await
    }

    async fn update_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        config: AgentConfig,
        principal: &str,
    ) -> StoreResult<Agent> {
        let (tenant, agent, principal) = (tenant.clone(), agent.clone(), principal.to_owned());
        self.write(move |c| {
            let updated = agents::update_agent(c, &tenant, &agent, &config)?;
            super::governance::append(
                c,
                &tenant,
                &[crate::agent_event("agent.update", &principal, &updated)],
            )?;
            Ok(updated)
        })
        .await
    }

    async fn delete_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        principal: &str,
    ) -> StoreResult<bool> {
        let (tenant, agent, principal) = (tenant.clone(), agent.clone(), principal.to_owned());
        self.write(move |c| {
            let found = agents::get_agent(c, &tenant, &crate::AgentRef::Id(agent.clone()))?;
            let deleted = agents::delete_agent(c, &tenant, &agent)?;
            if let (true, Some(found)) = (deleted, found) {
                super::governance::append(
                    c,
                    &tenant,
                    &[crate::agent_event("agent.delete", &principal, &found)],
                )?;
            }
            Ok(deleted)
        })
        .await
    }

    async fn list_memory_blocks(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<MemoryBlock>> {
        let (tenant, agent) = (tenant.clone(), agent.clone());
        self.read(move |c| agents::list_memory_blocks(c, &tenant, &agent))
            .await
    }

    async fn memory_block_history(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<MemoryBlockVersion>> {
        let (tenant, agent) = (tenant.clone(), agent.clone());
        self.read(move |c| agents::memory_block_history(c, &tenant, &agent))
            .await
    }

    async fn create_session_for(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        agent_version: i64,
        user: Option<&str>,
    ) -> StoreResult<Session> {
        let (tenant, agent, user) = (tenant.clone(), agent.clone(), user.map(str::to_owned));
        self.write(move |c| {
            sessions::create_session(c, &tenant, &agent, agent_version, user.as_deref())
        })
        .await
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<Session>> {
        let (tenant, session) = (tenant.clone(), session.clone());
        self.read(move |c| sessions::get_session(c, &tenant, &session))
            .await
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        query: &SessionQuery,
    ) -> StoreResult<Vec<Session>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.read(move |c| sessions::list_sessions(c, &tenant, &query))
            .await
    }

    async fn list_items(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Item>> {
        let (tenant, session) = (tenant.clone(), session.clone());
        self.read(move |c| sessions::list_items(c, &tenant, &session, after, limit))
            .await
    }

    async fn tail_items(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        limit: i64,
    ) -> StoreResult<Vec<Item>> {
        let (tenant, session) = (tenant.clone(), session.clone());
        self.read(move |c| sessions::tail_items(c, &tenant, &session, limit))
            .await
    }

    async fn create_run(&self, tenant: &TenantId, run: NewRun) -> StoreResult<CreatedRun> {
        let tenant = tenant.clone();
        self.write(move |c| runs::create_run(c, &tenant, &run))
            .await
    }

    async fn get_run(&self, tenant: &TenantId, run: &RunId) -> StoreResult<Option<Run>> {
        let (tenant, run) = (tenant.clone(), run.clone());
        self.read(move |c| runs::get_run(c, &tenant, &run)).await
    }

    async fn list_runs(&self, tenant: &TenantId, session: &SessionId) -> StoreResult<Vec<Run>> {
        let (tenant, session) = (tenant.clone(), session.clone());
        self.read(move |c| runs::list_runs(c, &tenant, &session))
            .await
    }

    async fn list_steps(&self, tenant: &TenantId, run: &RunId) -> StoreResult<Vec<Step>> {
        let (tenant, run) = (tenant.clone(), run.clone());
        self.read(move |c| runs::list_steps(c, &tenant, &run)).await
    }

    async fn next_queued_run(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<Run>> {
        let (tenant, session) = (tenant.clone(), session.clone());
        self.read(move |c| runs::next_queued_run(c, &tenant, &session))
            .await
    }

    async fn commit(&self, tenant: &TenantId, write: JournalWrite) -> StoreResult<Committed> {
        let tenant = tenant.clone();
        self.write(move |c| journal::commit(c, &tenant, &write))
            .await
    }

    async fn list_events(
        &self,
        tenant: &TenantId,
        run: &RunId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SequencedEvent>> {
        let (tenant, run) = (tenant.clone(), run.clone());
        self.read(move |c| runs::list_events(c, &tenant, &run, after, limit))
            .await
    }

    async fn list_ledger(
        &self,
        tenant: &TenantId,
        query: &LedgerQuery,
    ) -> StoreResult<Vec<LedgerEntry>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.read(move |c| runs::list_ledger(c, &tenant, &query))
            .await
    }

    async fn unfinished_runs(&self) -> StoreResult<Vec<(TenantId, Run)>> {
        self.read(runs::unfinished_runs).await
    }
}
