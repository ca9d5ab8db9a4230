//! The PostgreSQL backend, for several Roster nodes sharing one database.
//!
//! Every write runs in one PostgreSQL transaction on a pooled connection and
//! returns after `COMMIT`, which is durable under the server's default
//! `synchronous_commit = on`. Races between nodes are settled by row locks:
//! run creation locks its session row, a journal commit locks its run and
//! session rows. Migrations are applied at connect time under sqlx's advisory
//! lock, so nodes may start together.

mod server_lock;
mod vectors;

pub use server_lock::{lock_for_server, ServerLock};

use crate::StoreError;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Most connections one node holds open.
const MAX_CONNECTIONS: u32 = 16;
/// How long a query waits for a free connection before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Prefix of the databases [`create_test_database`] makes.
const TEST_DATABASE_PREFIX: &str = "roster_test_";
/// Test databases older than this are dropped by the next test run.
const TEST_DATABASE_MAX_AGE_MS: i64 = 24 * 60 * 60 * 1000;

pub struct PgStore {
    pool: PgPool,
    /// pgvector's version when the server has it (see `vectors.rs`).
    pgvector: Option<String>,
}

impl PgStore {
    /// Connects to `url` (`postgres://…`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        let options = vectors::with_session_options(options);
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate(&options).await?;
        warn_if_not_durable(&pool).await;
        let pgvector = vectors::setup(&pool).await?;
        match &pgvector {
            Some(version) => tracing::info!(version, "vectors are searched by pgvector"),
            None => tracing::info!(
                "no pgvector on this server: each node searches vectors in its local index"
            ),
        }
        Ok(Self { pool, pgvector })
    }

    /// The connection pool, for diagnostics and tests.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Applies migrations through a one-connection pool of its own: if migrating
/// fails, closing that pool also ends the session holding the migrator's
/// advisory lock, which a connection returned to the main pool would keep.
async fn migrate(options: &PgConnectOptions) -> Result<(), StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options.clone())
        .await
        .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {e}")))?;
    let result = MIGRATOR.run(&pool).await;
    pool.close().await;
    result.map_err(|e| match e {
        MigrateError::VersionMissing(version) => StoreError::Config(format!(
            "the database has migration {version}, newer than this binary knows; upgrade Roster"
        )),
        e => StoreError::Database(format!("migration: {e}")),
    })
}

/// The store promises durable commits; say so loudly if the server does not.
async fn warn_if_not_durable(pool: &PgPool) {
    match sqlx::query("SELECT current_setting('synchronous_commit')")
        .fetch_one(pool)
        .await
        .and_then(|row| row.try_get::<String, _>(0))
    {
        Ok(setting) if setting == "off" => tracing::warn!(
            "PostgreSQL has synchronous_commit=off: a crash may lose recently committed steps"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read synchronous_commit"),
    }
}

/// Creates an empty database `roster_test_<hex>` on the server `admin_url`
/// names and returns the URL of the new database. Also drops test databases
/// left behind by runs more than a day old (best effort).
pub async fn create_test_database(admin_url: &str) -> Result<String, StoreError> {
    let mut conn = PgConnection::connect(admin_url)
        .await
        .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {e}")))?;
    // The name starts with the creation time (hex Unix millis) so stale ones
    // can be recognised later, and ends with randomness from the server.
    let now = chrono::Utc::now().timestamp_millis();
    let random: String =
        sqlx::query_scalar("SELECT substr(md5(random()::text || clock_timestamp()::text), 1, 16)")
            .fetch_one(&mut conn)
            .await
            .map_err(crate::db_error)?;
    let name = format!("{TEST_DATABASE_PREFIX}{now:012x}{random}");
    drop_stale_test_databases(&mut conn, now).await;
    // CREATE DATABASE takes no parameters; the name is ours and plain hex.
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .map_err(crate::db_error)?;
    conn.close().await.map_err(crate::db_error)?;
    with_database(admin_url, &name)
}

async fn drop_stale_test_databases(conn: &mut PgConnection, now: i64) {
    let names: Vec<String> = match sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'roster\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    {
        Ok(names) => names,
        Err(e) => {
            tracing::debug!(error = %e, "cannot list old test databases");
            return;
        }
    };
    for name in names {
        let Some(stamp) = name
            .strip_prefix(TEST_DATABASE_PREFIX)
            .and_then(|rest| rest.get(..12))
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
        else {
            continue;
        };
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || now - stamp < TEST_DATABASE_MAX_AGE_MS
        {
            continue;
        }
        if let Err(e) = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\""))
            .execute(&mut *conn)
            .await
        {
            tracing::debug!(error = %e, database = %name, "cannot drop an old test database");
        }
    }
}

/// `url` with its path (the database name) replaced by `database`, keeping
/// any query string.
fn with_database(url: &str, database: &str) -> Result<String, StoreError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| StoreError::Config("a PostgreSQL URL needs a scheme".into()))?;
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_and_keeps_the_query() {
        let cases = [
            ("postgres://u@h:5432/test", "postgres://u@h:5432/db"),
            ("postgres://u@h:5432", "postgres://u@h:5432/db"),
            ("postgres://u@h/", "postgres://u@h/db"),
            (
                "postgresql://u:p@h/test?sslmode=disable",
                "postgresql://u:p@h/db?sslmode=disable",
            ),
            (
                "postgres://h?sslmode=disable",
                "postgres://h/db?sslmode=disable",
            ),
        ];
        for (url, want) in cases {
            assert_eq!(
                with_database(url, "db").ok().as_deref(),
                Some(want),
                "{url}"
            );
        }
        assert!(with_database("test", "db").is_err());
    }
}
