//! SQL data sources: a tenant's PostgreSQL, MySQL/MariaDB and SQLite
//! databases, offered to agents through one `sql_query {source, query}`
//! tool that returns a table.
//!
//! Owns: what a tenant registers ([`SqlSourceInput`], split into a stored
//! [`SqlSourceConfig`] and a sealed URL), the allow-list of tables and
//! columns ([`AllowedTable`]), the check every query passes before it is
//! sent ([`check_query`]), the three database engines, the manager that
//! keeps one pool per source ([`SqlSources`]) and the `sql:` tool provider.
//!
//! Read-only by construction, in layers the database enforces:
//! - PostgreSQL and MySQL/MariaDB: queries run as a login role Roster
//!   creates at registration with SELECT on the allow-listed tables (or
//!   columns) and nothing else, inside a READ ONLY transaction with a
//!   statement time limit. Where Roster may not create roles it runs as the
//!   connecting role, and only after checking that role sees nothing
//!   outside the allow-list.
//! - SQLite: the file is opened read-only and an authorizer callback lets
//!   the statement read only allow-listed tables and columns.
//!
//! The parser check on top gives the model a clear refusal (a write, a
//! table outside the list) before a byte is sent, and caps the row count;
//! it is never the only guard.
//!
//! Where a source may point is walled too ([`SqlPolicy`]): SQLite files
//! only under the operator's directories and never in the data directory,
//! database servers only where the egress policy allows, connected at the
//! address Roster resolved and checked.
//!
//! Must never: run a statement other than a query, show a stored URL's
//! password, open a file or reach a server its policy refuses, or let a
//! slow query hold a run past its time limit.

mod allow;
mod check;
mod engine;
mod manager;
mod mysql;
mod postgres;
mod spec;
mod sqlite;
mod table;
mod tool;
mod walls;

pub use allow::{parse_allow_list, AllowedTable};
pub use check::{check_query, Dialect};
pub use engine::{ColumnSchema, TableSchema};
pub use manager::{secret_context, SqlSources};
pub use spec::{
    Access, Engine, Limits, SqlSecrets, SqlSourceConfig, SqlSourceInput, DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS, DEFAULT_TIMEOUT_SECS, MAX_MAX_BYTES, MAX_MAX_ROWS, MAX_TIMEOUT_SECS,
};
pub use table::ResultTable;
pub use tool::{SqlProvider, SqlQueryTool, TOOL_NAME};
pub use walls::SqlPolicy;

/// The integration kind SQL sources are stored under, and the scheme of
/// agents' `sql:NAME` tool entries.
pub const KIND: &str = "sql";

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// A registration the server cannot accept (bad URL, unknown table).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// Roster's own check turned the query away (not a query, a table
    /// outside the allow-list).
    #[error("{0}")]
    Refused(String),
    /// The database answered with an error (including its own refusals).
    #[error("{0}")]
    Database(String),
    /// The database could not be reached.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    /// A SQLite file the operator's directories do not hold.
    #[error("{0}")]
    PathRefused(String),
    /// The egress policy refuses the server's address.
    #[error(transparent)]
    Egress(roster_egress::EgressError),
    #[error("stored credentials cannot be opened: {0}")]
    Secret(String),
    #[error(transparent)]
    Store(#[from] roster_store::StoreError),
}

impl SqlError {
    /// Stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            SqlError::Invalid(_) => "invalid_request",
            SqlError::NotFound(_) => "not_found",
            SqlError::Refused(_) => "query_refused",
            SqlError::Database(_) => "database_error",
            SqlError::Unavailable(_) => "database_unavailable",
            SqlError::Timeout(_) => "query_timeout",
            SqlError::PathRefused(_) => "path_not_allowed",
            SqlError::Egress(e) => e.code(),
            SqlError::Secret(_) => "secret_unreadable",
            SqlError::Store(_) => "store_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(SqlError::Refused(String::new()).code(), "query_refused");
        assert_eq!(
            SqlError::PathRefused(String::new()).code(),
            "path_not_allowed"
        );
        assert_eq!(
            SqlError::Egress(roster_egress::EgressError::Denied(String::new())).code(),
            "egress_denied"
        );
    }
}
