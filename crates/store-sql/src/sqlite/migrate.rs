//! Versioned migrations for the SQLite backend, tracked in `user_version`.

use crate::StoreError;
use rusqlite::Connection;

/// In order; a migration is never edited once released, only followed by a new one.
/// `user_version` counts the entries applied, so numbers may leave gaps
/// (each change takes its own number, the same in both backends) as long as
/// the list stays in number order. The numbers were not in lockstep before
/// 0011: PostgreSQL's `0007_chunk_source` (a column SQLite does not need)
/// made its integrations and governance 0008 and 0009 against SQLite's 0007
/// and 0008. From 0011 on a change has one number on both, and
/// `tests/it/schema_parity.rs` checks the two schemas agree.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_core",
        include_str!("../../migrations/sqlite/0001_core.sql"),
    ),
    (
        "0002_memory_records",
        include_str!("../../migrations/sqlite/0002_memory_records.sql"),
    ),
    (
        "0003_knowledge",
        include_str!("../../migrations/sqlite/0003_knowledge.sql"),
    ),
    (
        "0004_context",
        include_str!("../../migrations/sqlite/0004_context.sql"),
    ),
    (
        "0005_memory_jobs",
        include_str!("../../migrations/sqlite/0005_memory_jobs.sql"),
    ),
    (
        "0006_session_user",
        include_str!("../../migrations/sqlite/0006_session_user.sql"),
    ),
    (
        "0007_integrations",
        include_str!("../../migrations/sqlite/0007_integrations.sql"),
    ),
    (
        "0008_governance",
        include_str!("../../migrations/sqlite/0008_governance.sql"),
    ),
    (
        "0011_run_waits",
        include_str!("../../migrations/sqlite/0011_run_waits.sql"),
    ),
    (
        "0012_user_privacy",
        include_str!("../../migrations/sqlite/0012_user_privacy.sql"),
    ),
    (
        "0013_busy_sessions",
        include_str!("../../migrations/sqlite/0013_busy_sessions.sql"),
    ),
    (
        "0014_delegation",
        include_str!("../../migrations/sqlite/0014_delegation.sql"),
    ),
    (
        "0015_schedules",
        include_str!("../../migrations/sqlite/0015_schedules.sql"),
    ),
    (
        "0016_triggers",
        include_str!("../../migrations/sqlite/0016_triggers.sql"),
    ),
    (
        "0017_notifications_limits",
        include_str!("../../migrations/sqlite/0017_notifications_limits.sql"),
    ),
    (
        "0018_open_surfaces",
        include_str!("../../migrations/sqlite/0018_open_surfaces.sql"),
    ),
    (
        "0019_remotes",
        include_str!("../../migrations/sqlite/0019_remotes.sql"),
    ),
];

pub(crate) fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(crate::db_error)?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    if current > known {
        return Err(StoreError::Config(format!(
            "the database is at schema version {current}, newer than this binary knows ({known}); upgrade Roster"
        )));
    }
    for (index, (name, sql)) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        let tx = conn.transaction().map_err(crate::db_error)?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Database(format!("migration {name}: {e}")))?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(crate::db_error)?;
        tx.commit().map_err(crate::db_error)?;
        tracing::info!(migration = name, "applied SQLite migration");
    }
    Ok(())
}
