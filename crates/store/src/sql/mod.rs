//! Storage written once: each store concern's SQL and logic exist in one
//! module here and run on either backend through [`Conn`].
//!
//! - `text.rs`: statements in PostgreSQL's spelling, rendered for SQLite;
//! - `conn.rs` and `row.rs`: arguments, execution and row decoding, the
//!   only code that touches a driver;
//! - `db.rs`: the executor (writer thread and read pool, or a PostgreSQL
//!   pool and transaction) and the fault-injection wrapper;
//! - `store.rs`: [`SqlStore`], the one implementation of the store traits.

mod agents;
mod approvals;
mod audit;
mod blocks;
mod budgets;
mod conn;
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
mod records;
mod row;
mod rows;
mod runs;
mod sessions;
mod store;
mod text;

pub use conn::{Arg, Conn, DbError, OnUnique};
pub use db::{BoxFuture, Db, Faults, Work};
pub use row::{Column, Row};
pub(crate) use store::store_impl;
pub use store::{Own, SqlStore};
pub use text::{Dialect, Sql};
