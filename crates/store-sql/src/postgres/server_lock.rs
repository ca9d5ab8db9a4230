//! One serving node per database, until run leases exist.
//!
//! The store itself is safe for several nodes (row locks settle every race),
//! but the runtime does not yet claim runs with leases: two servers on one
//! database would both resume the same unfinished runs. A serving node
//! therefore holds a session-level advisory lock for its lifetime, and a
//! second one is refused with a clear error instead of running twice.

use crate::StoreError;
use sqlx::postgres::PgConnection;
use sqlx::Connection;

/// Advisory lock key: "roster" in ASCII, so it is recognisable in `pg_locks`.
const SERVER_LOCK_KEY: i64 = 0x726f_7374_6572;

/// Holds the lock until dropped (the connection closes with it).
pub struct ServerLock {
    _conn: PgConnection,
}

pub async fn lock_for_server(url: &str) -> Result<ServerLock, StoreError> {
    let mut conn = PgConnection::connect(url)
        .await
        .map_err(|e| StoreError::Config(format!("cannot connect to PostgreSQL: {e}")))?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(SERVER_LOCK_KEY)
        .fetch_one(&mut conn)
        .await
        .map_err(crate::db_error)?;
    if !locked {
        return Err(StoreError::Conflict(
            "another roster server is using this database (one server per database until run leases land)".into(),
        ));
    }
    Ok(ServerLock { _conn: conn })
}
