//! Roster's storage on SQL: the store traits of `roster-store` implemented
//! once, for the embedded SQLite default and for PostgreSQL. Each store
//! concern's SQL and logic exist in one module here and run on either
//! backend through [`Conn`]; the drivers (rusqlite, sqlx) are linked only by
//! this crate, so crates that need only the traits never compile them.
//!
//! - `text.rs`: statements in PostgreSQL's spelling, rendered for SQLite;
//! - `conn.rs` and `row.rs`: arguments, execution and row decoding, the
//!   only code that touches a driver;
//! - `db.rs`: the executor (writer thread and read pool, or a PostgreSQL
//!   pool and transaction) and the fault-injection wrapper;
//! - `store.rs`: [`SqlStore`], the one implementation of the store traits;
//! - `sqlite/` (the group-commit writer, migrations) and `postgres/`
//!   (pool, migrations, pgvector, the server lock): what only one backend has;
//! - one module per concern (`agents.rs`, `runs.rs`, `journal.rs`, …).
//!
//! This crate must never call a model, run a tool or speak HTTP, and must not
//! decide what a run does next: it records what the runtime decided.

mod agents;
mod approvals;
mod audit;
mod blocks;
mod budgets;
mod conn;
mod conversations;
mod db;
mod governance;
mod index_documents;
mod index_feed;
mod integrations;
mod jobs;
mod journal;
mod keys;
mod knowledge;
mod knowledge_chunks;
mod lifecycle;
mod limits;
mod notifications;
pub mod postgres;
mod record_plan;
mod records;
mod remotes;
mod row;
mod rows;
mod runs;
mod schedules;
mod sessions;
pub mod sqlite;
mod store;
mod text;
mod triggers;

pub use db::Faults;
pub use store::SqlStore;

pub(crate) use conn::{Arg, Conn, OnUnique};
pub(crate) use db::Db;
pub(crate) use row::Row;
pub(crate) use store::{store_impl, Own};
pub(crate) use text::Sql;

use roster_store::*;
use std::sync::Arc;

/// Opens the backend a URL names: `sqlite://PATH` or `postgres://…`.
pub async fn open(url: &str) -> StoreResult<DynStore> {
    Ok(Arc::new(open_sql(url).await?))
}

/// Like [`open`], with failures injected on demand through the returned
/// [`Faults`]: for tests of what Roster does when its database fails.
pub async fn open_with_faults(url: &str) -> StoreResult<(DynStore, Arc<Faults>)> {
    let (store, faults) = open_sql(url).await?.with_faults();
    Ok((Arc::new(store), faults))
}

async fn open_sql(url: &str) -> StoreResult<SqlStore> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        SqlStore::postgres(url).await
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        SqlStore::sqlite(std::path::Path::new(path)).await
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL `{}`: use sqlite://PATH or postgres://…",
            url.split('@').next_back().unwrap_or_default()
        )))
    }
}

/// A driver's error as the store's: the drivers' error types are this
/// crate's business, so `roster-store` cannot convert them itself.
pub(crate) fn db_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}
