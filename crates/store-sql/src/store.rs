//! [`SqlStore`]: the store traits implemented once for both backends.

use super::db::{Db, Faults};
use super::{agents, journal, runs, sessions};
use crate::postgres::PgStore;
use crate::sqlite::SqliteStore;
use crate::*;
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

/// The store traits' methods as a table, one line each:
/// `read|write name(params) -> T = |c| shared_code(c, …).await;` runs the
/// shared code on a read connection or in a write transaction, with the
/// method's name for fault injection. Borrowed arguments are copied first
/// ([`Own`]), because a SQLite write runs on the writer thread. Methods that
/// need more than one call are written out under `extra`.
macro_rules! store_impl {
    (impl $trait:path {
        $( $(#[$doc:meta])* $how:ident $name:ident ( $($param:ident : $ty:ty),* $(,)? ) -> $ret:ty = |$c:ident| $body:expr; )*
    } $(extra { $($extra:tt)* })?) => {
        #[async_trait::async_trait]
        impl $trait for $crate::SqlStore {
            $( $(#[$doc])* async fn $name(&self, $($param: $ty),*) -> $crate::StoreResult<$ret> {
                $(let $param = $crate::Own::own($param);)*
                self.db
                    .$how(stringify!($name), move |$c| Box::pin(async move { $body }))
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

impl Own for Option<&str> {
    type Owned = Option<String>;
    fn own(self) -> Option<String> {
        self.map(str::to_owned)
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
    roster_core::agent::AgentConfig,
    roster_core::agent::NewAgent,
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
);

crate::store_impl! {
    impl Store {
        write ensure_tenant(tenant: &TenantId, name: &str) -> () = |c| agents::ensure_tenant(c, &tenant, &name).await;
        write insert_api_key(tenant: &TenantId, key: NewApiKey) -> ApiKeyRecord = |c| agents::insert_api_key(c, &tenant, &key).await;
        read find_api_key(key_hash: &str) -> Option<ApiKeyRecord> = |c| agents::find_api_key(c, &key_hash).await;
        read count_admin_keys(tenant: &TenantId) -> i64 = |c| agents::count_admin_keys(c, &tenant).await;
        write revoke_admin_keys(tenant: &TenantId) -> () = |c| agents::revoke_admin_keys(c, &tenant).await;
        write set_admin_key(tenant: &TenantId, key: NewApiKey) -> ApiKeyRecord = |c| agents::set_admin_key(c, &tenant, &key).await;
        read get_key(tenant: &TenantId, id: &KeyId) -> Option<ApiKeyRecord> = |c| agents::get_key(c, &tenant, &id).await;
        write create_agent(tenant: &TenantId, agent: NewAgent, principal: &str) -> Agent = |c| agents::create_agent_audited(c, &tenant, &agent, &principal).await;
        read list_agents(tenant: &TenantId) -> Vec<Agent> = |c| agents::list_agents(c, &tenant).await;
        read get_agent(tenant: &TenantId, agent: &AgentRef) -> Option<Agent> = |c| agents::get_agent(c, &tenant, &agent).await;
        read get_agent_version(tenant: &TenantId, agent: &AgentId, version: i64) -> Option<Agent> = |c| agents::get_agent_version(c, &tenant, &agent, version).await;
        write update_agent(tenant: &TenantId, agent: &AgentId, config: AgentConfig, principal: &str) -> Agent = |c| agents::update_agent_audited(c, &tenant, &agent, &config, &principal).await;
        write delete_agent(tenant: &TenantId, agent: &AgentId, principal: &str) -> bool = |c| agents::delete_agent_audited(c, &tenant, &agent, &principal).await;
        read list_memory_blocks(tenant: &TenantId, agent: &AgentId) -> Vec<MemoryBlock> = |c| agents::list_memory_blocks(c, &tenant, &agent).await;
        read memory_block_history(tenant: &TenantId, agent: &AgentId) -> Vec<MemoryBlockVersion> = |c| agents::memory_block_history(c, &tenant, &agent).await;
        read get_session(tenant: &TenantId, session: &SessionId) -> Option<Session> = |c| sessions::get_session( c, &tenant, &session ) .await;
        read list_sessions(tenant: &TenantId, query: &SessionQuery) -> Vec<Session> = |c| sessions::list_sessions(c, &tenant, &query).await;
        read list_items(tenant: &TenantId, session: &SessionId, after: i64, limit: i64) -> Vec<Item> = |c| sessions::list_items( c, &tenant, &session, after, limit ) .await;
        read tail_items(tenant: &TenantId, session: &SessionId, limit: i64) -> Vec<Item> = |c| sessions::tail_items( c, &tenant, &session, limit ) .await;
        write create_run(tenant: &TenantId, run: NewRun) -> CreatedRun = |c| runs::create_run( c, &tenant, &run ) .await;
        read get_run(tenant: &TenantId, run: &RunId) -> Option<Run> = |c| runs::get_run( c, &tenant, &run ) .await;
        read list_runs(tenant: &TenantId, session: &SessionId) -> Vec<Run> = |c| runs::list_runs( c, &tenant, &session ) .await;
        read list_steps(tenant: &TenantId, run: &RunId) -> Vec<Step> = |c| runs::list_steps( c, &tenant, &run ) .await;
        read next_queued_run(tenant: &TenantId, session: &SessionId) -> Option<Run> = |c| runs::next_queued_run(c, &tenant, &session).await;
        write commit(tenant: &TenantId, write: JournalWrite) -> Committed = |c| journal::commit(c, &tenant, &write) .await;
        read list_events(tenant: &TenantId, run: &RunId, after: i64, limit: i64) -> Vec<SequencedEvent> = |c| runs::list_events( c, &tenant, &run, after, limit ) .await;
        read list_ledger(tenant: &TenantId, query: &LedgerQuery) -> Vec<LedgerEntry> = |c| runs::list_ledger( c, &tenant, &query ) .await;
        read unfinished_runs() -> Vec<(TenantId, Run)> = |c| runs::unfinished_runs(c).await;
    }
    extra {
        fn backend(&self) -> &'static str {
            self.db.backend()
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
    }
}
