//! [`SqlStore`]: the store traits implemented once for both backends.

use super::db::{Db, Faults};
use super::{agents, journal, runs, sessions};
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::*;
use async_trait::async_trait;
use roster_core::agent::{Agent, AgentConfig, NewAgent};
use roster_core::event::SequencedEvent;
use roster_core::item::Item;
use roster_core::ledger::LedgerEntry;
use roster_core::memory::{MemoryBlock, MemoryBlockVersion};
use roster_core::run::{Run, Step};
use roster_core::{AgentId, KeyId, RunId, SessionId, TenantId};
use std::path::Path;
use std::sync::Arc;

/// The store on SQLite or PostgreSQL.
pub struct SqlStore {
    pub(crate) db: Db,
}

impl SqlStore {
    /// Opens (creating if needed) a SQLite database file and applies migrations.
    pub async fn sqlite(path: &Path) -> StoreResult<Self> {
        Ok(Self {
            db: Db::Sqlite(Arc::new(SqliteStore::open(path).await?)),
        })
    }

    /// Connects to `url` (`postgres://…`) and applies pending migrations.
    pub async fn postgres(url: &str) -> StoreResult<Self> {
        Ok(Self {
            db: Db::Postgres(Arc::new(PgStore::connect(url).await?)),
        })
    }

    /// The PostgreSQL connection pool, for diagnostics and tests; `None` on SQLite.
    pub fn postgres_pool(&self) -> Option<&sqlx::PgPool> {
        let mut db = &self.db;
        loop {
            match db {
                Db::Postgres(store) => return Some(store.pool()),
                Db::Sqlite(_) => return None,
                Db::Faulty(inner, _) => db = inner,
            }
        }
    }

    /// The same store, failing on demand through the returned [`Faults`].
    pub fn with_faults(self) -> (Self, Arc<Faults>) {
        let faults = Arc::new(Faults::default());
        let store = Self {
            db: Db::Faulty(Box::new(self.db), faults.clone()),
        };
        (store, faults)
    }
}

/// Runs shared store code on the executor: `run!(self.read("op", [owned
/// copies of borrowed arguments], |c| body))`. The copies are needed because
/// a SQLite write runs on the writer thread.
macro_rules! run {
    ($self:ident.$how:ident($op:literal, [$($owned:ident),*], |$c:ident| $body:expr)) => {{
        $(let $owned = $owned.to_owned();)*
        $self.db.$how($op, move |$c| Box::pin(async move { $body })).await
    }};
}
#[allow(unused_imports)]
pub(crate) use run;

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.db.backend()
    }

    async fn ensure_tenant(&self, tenant: &TenantId, name: &str) -> StoreResult<()> {
        run!(self.write("ensure_tenant", [tenant, name], |c| {
            agents::ensure_tenant(c, &tenant, &name).await
        }))
    }

    async fn insert_api_key(&self, tenant: &TenantId, key: NewApiKey) -> StoreResult<ApiKeyRecord> {
        run!(self.write("insert_api_key", [tenant], |c| {
            agents::insert_api_key(c, &tenant, &key).await
        }))
    }

    async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRecord>> {
        run!(self.read("find_api_key", [key_hash], |c| {
            agents::find_api_key(c, &key_hash).await
        }))
    }

    async fn count_admin_keys(&self, tenant: &TenantId) -> StoreResult<i64> {
        run!(self.read("count_admin_keys", [tenant], |c| {
            agents::count_admin_keys(c, &tenant).await
        }))
    }

    async fn revoke_admin_keys(&self, tenant: &TenantId) -> StoreResult<()> {
        run!(self.write("revoke_admin_keys", [tenant], |c| {
            agents::revoke_admin_keys(c, &tenant).await
        }))
    }

    async fn set_admin_key(&self, tenant: &TenantId, key: NewApiKey) -> StoreResult<ApiKeyRecord> {
        run!(self.write("set_admin_key", [tenant], |c| {
            agents::set_admin_key(c, &tenant, &key).await
        }))
    }

    async fn get_key(&self, tenant: &TenantId, id: &KeyId) -> StoreResult<Option<ApiKeyRecord>> {
        run!(self.read("get_key", [tenant, id], |c| {
            agents::get_key(c, &tenant, &id).await
        }))
    }

    async fn create_agent(
        &self,
        tenant: &TenantId,
        agent: NewAgent,
        principal: &str,
    ) -> StoreResult<Agent> {
        run!(self.write("create_agent", [tenant, principal], |c| {
            agents::create_agent_audited(c, &tenant, &agent, &principal).await
        }))
    }

    async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>> {
        run!(self.read("list_agents", [tenant], |c| {
            agents::list_agents(c, &tenant).await
        }))
    }

    async fn get_agent(&self, tenant: &TenantId, agent: &AgentRef) -> StoreResult<Option<Agent>> {
        run!(self.read("get_agent", [tenant, agent], |c| {
            agents::get_agent(c, &tenant, &agent).await
        }))
    }

    async fn get_agent_version(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        version: i64,
    ) -> StoreResult<Option<Agent>> {
        run!(self.read("get_agent_version", [tenant, agent], |c| {
            agents::get_agent_version(c, &tenant, &agent, version).await
        }))
    }

    async fn update_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        config: AgentConfig,
        principal: &str,
    ) -> StoreResult<Agent> {
        run!(self.write("update_agent", [tenant, agent, principal], |c| {
            agents::update_agent_audited(c, &tenant, &agent, &config, &principal).await
        }))
    }

    async fn delete_agent(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        principal: &str,
    ) -> StoreResult<bool> {
        run!(self.write("delete_agent", [tenant, agent, principal], |c| {
            agents::delete_agent_audited(c, &tenant, &agent, &principal).await
        }))
    }

    async fn list_memory_blocks(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<MemoryBlock>> {
        run!(self.read("list_memory_blocks", [tenant, agent], |c| {
            agents::list_memory_blocks(c, &tenant, &agent).await
        }))
    }

    async fn memory_block_history(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<MemoryBlockVersion>> {
        run!(self.read("memory_block_history", [tenant, agent], |c| {
            agents::memory_block_history(c, &tenant, &agent).await
        }))
    }

    async fn create_session_for(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        agent_version: i64,
        user: Option<&str>,
    ) -> StoreResult<Session> {
        let user = user.map(str::to_owned);
        run!(self.write("create_session", [tenant, agent], |c| {
            sessions::create_session(c, &tenant, &agent, agent_version, user.as_deref()).await
        }))
    }

    async fn get_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<Session>> {
        run!(
            self.read("get_session", [tenant, session], |c| sessions::get_session(
                c, &tenant, &session
            )
            .await)
        )
    }

    async fn list_sessions(
        &self,
        tenant: &TenantId,
        query: &SessionQuery,
    ) -> StoreResult<Vec<Session>> {
        run!(self.read("list_sessions", [tenant, query], |c| {
            sessions::list_sessions(c, &tenant, &query).await
        }))
    }

    async fn list_items(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Item>> {
        run!(
            self.read("list_items", [tenant, session], |c| sessions::list_items(
                c, &tenant, &session, after, limit
            )
            .await)
        )
    }

    async fn tail_items(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        limit: i64,
    ) -> StoreResult<Vec<Item>> {
        run!(
            self.read("tail_items", [tenant, session], |c| sessions::tail_items(
                c, &tenant, &session, limit
            )
            .await)
        )
    }

    async fn create_run(&self, tenant: &TenantId, run: NewRun) -> StoreResult<CreatedRun> {
        run!(self.write("create_run", [tenant], |c| runs::create_run(
            c, &tenant, &run
        )
        .await))
    }

    async fn get_run(&self, tenant: &TenantId, run: &RunId) -> StoreResult<Option<Run>> {
        run!(self.read("get_run", [tenant, run], |c| runs::get_run(
            c, &tenant, &run
        )
        .await))
    }

    async fn list_runs(&self, tenant: &TenantId, session: &SessionId) -> StoreResult<Vec<Run>> {
        run!(
            self.read("list_runs", [tenant, session], |c| runs::list_runs(
                c, &tenant, &session
            )
            .await)
        )
    }

    async fn list_steps(&self, tenant: &TenantId, run: &RunId) -> StoreResult<Vec<Step>> {
        run!(self.read("list_steps", [tenant, run], |c| runs::list_steps(
            c, &tenant, &run
        )
        .await))
    }

    async fn next_queued_run(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<Run>> {
        run!(self.read("next_queued_run", [tenant, session], |c| {
            runs::next_queued_run(c, &tenant, &session).await
        }))
    }

    async fn commit(&self, tenant: &TenantId, write: JournalWrite) -> StoreResult<Committed> {
        run!(
            self.write("commit", [tenant], |c| journal::commit(c, &tenant, &write)
                .await)
        )
    }

    async fn list_events(
        &self,
        tenant: &TenantId,
        run: &RunId,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SequencedEvent>> {
        run!(
            self.read("list_events", [tenant, run], |c| runs::list_events(
                c, &tenant, &run, after, limit
            )
            .await)
        )
    }

    async fn list_ledger(
        &self,
        tenant: &TenantId,
        query: &LedgerQuery,
    ) -> StoreResult<Vec<LedgerEntry>> {
        run!(
            self.read("list_ledger", [tenant, query], |c| runs::list_ledger(
                c, &tenant, &query
            )
            .await)
        )
    }

    async fn unfinished_runs(&self) -> StoreResult<Vec<(TenantId, Run)>> {
        run!(self.read("unfinished_runs", [], |c| runs::unfinished_runs(c).await))
    }
}
