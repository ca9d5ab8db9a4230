//! [`SqlStore`]: the store traits implemented once for both backends.

use super::db::{Db, Faults};
use super::rows::{self, AGENT_COLUMNS, BLOCK_COLUMNS, BLOCK_VERSION_COLUMNS, ITEM_COLUMNS};
use super::rows::{KEY_COLUMNS, RUN_COLUMNS, STEP_COLUMNS};
use super::{agents, journal, runs, sessions, Arg};
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::*;
use crate::{args, sql};
use chrono::Utc;
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

/// The store traits' methods as a table, one entry each:
/// `read|write name(params) -> T = |c| body;` runs the body on a read
/// connection or in a write transaction, with the method's name for fault
/// injection. A body is one statement (`c.opt(sql!(…), args![…], row).await`)
/// or a call of the concern's shared code; its error is converted with `?`.
/// Borrowed arguments are copied first ([`Own`]), because a SQLite write
/// runs on the writer thread. Methods that do more than run on one
/// connection (a scrub after the write, pgvector) are written under `extra`.
macro_rules! store_impl {
    (impl $trait:path {
        $( $(#[$doc:meta])* $how:ident $name:ident ( $($param:ident : $ty:ty),* $(,)? ) -> $ret:ty = |$c:ident| $body:expr; )*
    } $(extra { $($extra:tt)* })?) => {
        #[async_trait::async_trait]
        impl $trait for $crate::SqlStore {
            $( $(#[$doc])* async fn $name(&self, $($param: $ty),*) -> $crate::StoreResult<$ret> {
                $(let $param = $crate::Own::own($param);)*
                self.db
                    .$how(stringify!($name), move |$c| Box::pin(async move { Ok($body?) }))
                    .await
            } )*
            $($($extra)*)?
        }
    };
}
pub(crate) use store_impl;

/// One irregular method's body: `run!(self.read|write("op", [borrowed
/// arguments to copy], |c| body))`.
macro_rules! run {
    ($self:ident.$how:ident($op:literal, [$($owned:ident),*], |$c:ident| $body:expr)) => {{
        $(let $owned = $owned.to_owned();)*
        $self.db.$how($op, move |$c| Box::pin(async move { $body })).await
    }};
}
pub(crate) use run;

/// An argument copied so shared store code can own it: borrowed values
/// become their owned form, owned values stay as they are.
pub trait Own {
    type Owned: Send + 'static;
    fn own(self) -> Self::Owned;
}

impl<T: ?Sized + ToOwned> Own for &T
where
    T::Owned: Send + 'static,
{
    type Owned = T::Owned;
    fn own(self) -> T::Owned {
        self.to_owned()
    }
}

impl<T: ?Sized + ToOwned> Own for Option<&T>
where
    T::Owned: Send + 'static,
{
    type Owned = Option<T::Owned>;
    fn own(self) -> Self::Owned {
        self.map(T::to_owned)
    }
}

impl<T: Send + 'static> Own for Vec<T> {
    type Owned = Vec<T>;
    fn own(self) -> Vec<T> {
        self
    }
}

macro_rules! owned_as_is {
    ($($ty:ty),* $(,)?) => {
        $(impl Own for $ty {
            type Owned = $ty;
            fn own(self) -> $ty {
                self
            }
        })*
    };
}

owned_as_is!(
    i64,
    usize,
    bool,
    chrono::DateTime<chrono::Utc>,
    serde_json::Value,
    Option<serde_json::Value>,
    Option<Vec<String>>,
    roster_store::conversations::ItemPage,
    roster_core::agent::AgentConfig,
    roster_core::agent::NewAgent,
    crate::ApprovalDecision,
    crate::BlockChange,
    crate::BlockWrite,
    crate::Budget,
    roster_core::knowledge::DocumentError,
    crate::JournalWrite,
    crate::NewApiKey,
    crate::NewAuditEvent,
    crate::NewDocumentVersion,
    crate::NewIntegration,
    crate::NewKey,
    crate::NewRun,
    crate::RowKind,
    roster_store::schedules::NewSchedule,
    roster_store::schedules::FireRequest,
    roster_core::schedule::Schedule,
    roster_store::triggers::NewTrigger,
    roster_store::triggers::Delivery,
    u32,
    roster_core::limits::RunLimits,
    roster_store::notifications::NewWebhook,
    roster_store::notifications::Attempt,
    roster_store::notifications::AttemptOutcome,
    roster_store::notifications::NotificationQuery,
);

crate::store_impl! {
    impl Store {
        write ensure_tenant(tenant: &TenantId, name: &str) -> () = |c| c.exec(
            sql!("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING"),
            args![&tenant, &name, Utc::now()]).await.map(drop);
        write insert_api_key(tenant: &TenantId, key: NewApiKey) -> ApiKeyRecord = |c| agents::insert_api_key(c, &tenant, &key).await;
        read find_api_key(key_hash: &str) -> Option<ApiKeyRecord> = |c| c.opt(
            sql!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"),
            args![&key_hash], rows::key_record).await;
        read count_admin_keys(tenant: &TenantId) -> i64 = |c| c.one(
            sql!("SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1 AND is_admin = TRUE AND revoked_at IS NULL"),
            args![&tenant], |row| row.get(0)).await;
        write revoke_admin_keys(tenant: &TenantId) -> () = |c| c.exec(
            sql!("UPDATE api_keys SET revoked_at = $2 WHERE tenant_id = $1 AND is_admin = TRUE AND revoked_at IS NULL"),
            args![&tenant, Utc::now()]).await.map(drop);
        write set_admin_key(tenant: &TenantId, key: NewApiKey) -> ApiKeyRecord = |c| agents::set_admin_key(c, &tenant, &key).await;
        read get_key(tenant: &TenantId, id: &KeyId) -> Option<ApiKeyRecord> = |c| c.opt(
            sql!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL"),
            args![&tenant, &id], rows::key_record).await;
        write create_agent(tenant: &TenantId, agent: NewAgent, principal: &str) -> Agent = |c| agents::create_agent(c, &tenant, &agent, &principal).await;
        read list_agents(tenant: &TenantId) -> Vec<Agent> = |c| c.all(
            sql!("SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v ON v.agent_id = a.id AND v.version = a.current_version
                  WHERE a.tenant_id = $1 AND a.deleted_at IS NULL ORDER BY a.name"),
            args![&tenant], rows::agent).await;
        read get_agent(tenant: &TenantId, agent: &AgentRef) -> Option<Agent> = |c| agents::get_agent(c, &tenant, &agent).await;
        read get_agent_version(tenant: &TenantId, agent: &AgentId, version: i64) -> Option<Agent> = |c| c.opt(
            sql!("SELECT {AGENT_COLUMNS} FROM agents a JOIN agent_versions v ON v.agent_id = a.id
                  WHERE a.tenant_id = $1 AND a.id = $2 AND v.version = $3"),
            args![&tenant, &agent, version], rows::agent).await;
        write update_agent(tenant: &TenantId, agent: &AgentId, config: AgentConfig, principal: &str) -> Agent = |c| {
            let updated = agents::update_agent(c, &tenant, &agent, &config).await?;
            agents::audit_agent(c, &tenant, "agent.update", &principal, updated).await
        };
        write delete_agent(tenant: &TenantId, agent: &AgentId, principal: &str) -> bool = |c| agents::delete_agent(c, &tenant, &agent, &principal).await;
        read list_memory_blocks(tenant: &TenantId, agent: &AgentId) -> Vec<MemoryBlock> = |c| c.all(
            sql!("SELECT {BLOCK_COLUMNS} FROM memory_blocks WHERE tenant_id = $1 AND agent_id = $2 AND owner = 'agent' ORDER BY label"),
            args![&tenant, &agent], rows::block).await;
        read memory_block_history(tenant: &TenantId, agent: &AgentId) -> Vec<MemoryBlockVersion> = |c| c.all(
            sql!("SELECT {BLOCK_VERSION_COLUMNS} FROM memory_block_versions
                  WHERE tenant_id = $1 AND agent_id = $2 AND owner = 'agent' ORDER BY label, version"),
            args![&tenant, &agent], rows::block_version).await;
        read get_session(tenant: &TenantId, session: &SessionId) -> Option<Session> = |c| sessions::get_session(c, &tenant, &session).await;
        read list_sessions(tenant: &TenantId, query: &SessionQuery) -> Vec<Session> = |c| sessions::list_sessions(c, &tenant, &query).await;
        read list_items(tenant: &TenantId, session: &SessionId, after: i64, limit: i64) -> Vec<Item> = |c| c.all(
            sql!("SELECT {ITEM_COLUMNS} FROM items WHERE session_id = $1 AND tenant_id = $2 AND seq > $3 ORDER BY seq LIMIT $4"),
            &[(&session).into(), (&tenant).into(), after.into(), Arg::Limit(limit)], rows::item).await;
        read history_after(tenant: &TenantId, session: &SessionId, after: i64, limit: i64) -> Vec<Item> = |c| c.all(
            sql!("SELECT {ITEM_COLUMNS} FROM items WHERE session_id = $1 AND tenant_id = $2 AND seq > $3
                  AND (run_id IS NULL OR run_id NOT IN (SELECT id FROM runs WHERE session_id = $1 AND rolled_back))
                  ORDER BY seq LIMIT $4"),
            &[(&session).into(), (&tenant).into(), after.into(), Arg::Limit(limit)], rows::item).await;
        read tail_items(tenant: &TenantId, session: &SessionId, limit: i64) -> Vec<Item> = |c| sessions::tail_items(c, &tenant, &session, limit).await;
        write create_run(tenant: &TenantId, run: NewRun) -> CreatedRun = |c| runs::create_run(c, &tenant, &run).await;
        read get_run(tenant: &TenantId, run: &RunId) -> Option<Run> = |c| c.opt(
            sql!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND id = $2"),
            args![&tenant, &run], rows::run).await;
        read list_runs(tenant: &TenantId, session: &SessionId) -> Vec<Run> = |c| c.all(
            sql!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND session_id = $2 ORDER BY id"),
            args![&tenant, &session], rows::run).await;
        read list_steps(tenant: &TenantId, run: &RunId) -> Vec<Step> = |c| c.all(
            sql!("SELECT {STEP_COLUMNS} FROM steps WHERE run_id = $1 AND tenant_id = $2 ORDER BY n"),
            args![&run, &tenant], rows::step).await;
        read next_queued_run(tenant: &TenantId, session: &SessionId) -> Option<Run> = |c| runs::next_queued_run(c, &tenant, &session).await;
        write commit(tenant: &TenantId, write: JournalWrite) -> Committed = |c| journal::commit(c, &tenant, &write).await;
        read list_events(tenant: &TenantId, run: &RunId, after: i64, limit: i64) -> Vec<SequencedEvent> = |c| c.all(
            sql!("SELECT seq, body FROM run_events WHERE run_id = $1 AND tenant_id = $2 AND seq > $3 ORDER BY seq LIMIT $4"),
            &[(&run).into(), (&tenant).into(), after.into(), Arg::Limit(limit)], rows::event).await;
        read list_ledger(tenant: &TenantId, query: &LedgerQuery) -> Vec<LedgerEntry> = |c| runs::list_ledger(c, &tenant, &query).await;
        /// Across tenants: the system principal's view, used only by recovery.
        read unfinished_runs() -> Vec<(TenantId, Run)> = |c| c.all(
            sql!("SELECT tenant_id, {RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running', 'awaiting_approval') ORDER BY id"),
            &[], |row| Ok((TenantId::from_stored(row.get(0)?), rows::run_from(row, 1)?))).await;
        write create_session_for(tenant: &TenantId, agent: &AgentId, agent_version: i64, user: Option<&str>) -> Session =
            |c| sessions::create_session(c, &tenant, &agent, agent_version, user.as_deref()).await;
        write delegate_session(tenant: &TenantId, parent: &SessionId, agent: &AgentId, agent_version: i64) -> Session =
            |c| sessions::delegate_session(c, &tenant, &parent, &agent, agent_version).await;
        read child_runs(tenant: &TenantId, parents: &[RunId]) -> Vec<Run> = |c| {
            let parents: Vec<String> = parents.iter().map(|r| r.to_string()).collect();
            c.all(
                sql!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND parent_run_id = ANY($2) ORDER BY id"),
                args![&tenant, &parents], rows::run).await
        };
        read find_child_run(tenant: &TenantId, parent: &RunId, idempotency_key: &str) -> Option<Run> = |c| c.opt(
            sql!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND parent_run_id = $2 AND idempotency_key = $3"),
            args![&tenant, &parent, idempotency_key.as_str()], rows::run).await;
        read run_usage(tenant: &TenantId, runs: &[RunId]) -> Vec<RunUsage> = |c| {
            let runs: Vec<String> = runs.iter().map(|r| r.to_string()).collect();
            c.all(
                // SQLite's planner, seeing `tenant_id = ?`, took the
                // tenant's time index and scanned the tenant's whole ledger
                // for each call (half a millisecond per response once a
                // tenant had a few thousand rows); the run index is the one.
                crate::sql_pick!(
                    postgres: "SELECT run_id, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT),
                                      CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT), CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT)
                               FROM ledger WHERE tenant_id = $1 AND run_id = ANY($2) GROUP BY run_id",
                    sqlite: "SELECT run_id, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(tokens_in), 0) AS BIGINT),
                                    CAST(COALESCE(SUM(tokens_out), 0) AS BIGINT), CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT)
                             FROM ledger INDEXED BY ledger_by_run WHERE tenant_id = $1 AND run_id = ANY($2) GROUP BY run_id",
                ),
                args![&tenant, &runs],
                |row| Ok(RunUsage {
                    run_id: RunId::from_stored(row.get(0)?),
                    model_calls: row.get(1)?,
                    tokens_in: row.get(2)?,
                    tokens_out: row.get(3)?,
                    cost_micros: row.get(4)?,
                })).await
        };
    }
    extra {
        fn backend(&self) -> &'static str {
            self.db.backend()
        }
    }
}
