//! Memory extraction jobs on PostgreSQL. Mirrors `sqlite/jobs.rs`.

use super::journal::insert_ledger;
use super::rows::{self, json};
use crate::jobs::MemoryJob;
use crate::records::{MemoryWrite, MemoryWritten};
use crate::types::{from_millis, millis};
use crate::{JournalWrite, StoreError};
use chrono::Utc;
use roster_core::ledger::NewLedgerEntry;
use roster_core::{AgentId, RunId, SessionId, TenantId};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;

const COLUMNS: &str = "id, tenant_id, agent_id, agent_version, session_id, run_id, strategy, from_seq, to_seq, status, attempts, output, error, created_at, finished_at";

fn job(row: &PgRow) -> Result<MemoryJob, StoreError> {
    let output: Option<String> = row.try_get(11)?;
    Ok(MemoryJob {
        id: row.try_get(0)?,
        tenant: Some(TenantId::from_stored(row.try_get(1)?)),
        agent_id: AgentId::from_stored(row.try_get(2)?),
        agent_version: row.try_get(3)?,
        session_id: SessionId::from_stored(row.try_get(4)?),
        run_id: RunId::from_stored(row.try_get(5)?),
        strategy: row.try_get(6)?,
        from_seq: row.try_get(7)?,
        to_seq: row.try_get(8)?,
        status: row.try_get(9)?,
        attempts: row.try_get(10)?,
        output: output.as_deref().map(json).transpose()?,
        error: row.try_get(12)?,
        created_at: from_millis(row.try_get(13)?),
        finished_at: row.try_get::<Option<i64>, _>(14)?.map(from_millis),
    })
}

/// Creates the jobs of a finishing run, over its items `first..=last`.
pub(crate) async fn create_jobs(
    conn: &mut PgConnection,
    tenant: &TenantId,
    write: &JournalWrite,
    first: i64,
    last: i64,
    now: i64,
) -> Result<(), StoreError> {
    if write.memory_jobs.is_empty() {
        return Ok(());
    }
    for new in &write.memory_jobs {
        sqlx::query(
            "INSERT INTO memory_jobs (id, tenant_id, agent_id, agent_version, session_id, run_id, strategy, from_seq, to_seq, status, attempts, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', 0, $10)",
        )
        .bind(&new.id)
        .bind(tenant.as_str())
        .bind(new.agent_id.as_str())
        .bind(new.agent_version)
        .bind(write.session_id.as_str())
        .bind(write.run_id.as_str())
        .bind(new.strategy)
        .bind(first)
        .bind(last)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(crate) async fn queued(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<MemoryJob>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM memory_jobs WHERE status = 'queued' ORDER BY id LIMIT $1");
    rows::collect(conn, sqlx::query(&sql).bind(rows::limit(limit)), job).await
}

pub(crate) async fn for_run(
    conn: &mut PgConnection,
    tenant: &TenantId,
    run: &RunId,
) -> Result<Vec<MemoryJob>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM memory_jobs WHERE run_id = $1 AND tenant_id = $2 ORDER BY strategy"
    );
    rows::collect(
        conn,
        sqlx::query(&sql).bind(run.as_str()).bind(tenant.as_str()),
        job,
    )
    .await
}

/// Locks the job row and checks it is still queued.
async fn lock_queued(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<(), StoreError> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM memory_jobs WHERE id = $1 AND tenant_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(tenant.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match status.as_deref() {
        Some("queued") => Ok(()),
        Some(other) => Err(StoreError::Conflict(format!("memory job {id} is {other}"))),
        None => Err(StoreError::NotFound(format!("memory job {id}"))),
    }
}

pub(crate) async fn record_output(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
    output: &serde_json::Value,
    ledger: &[NewLedgerEntry],
) -> Result<(), StoreError> {
    lock_queued(conn, tenant, id).await?;
    sqlx::query("UPDATE memory_jobs SET output = $3, attempts = attempts + 1 WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant.as_str())
        .bind(serde_json::to_string(output)?)
        .execute(&mut *conn)
        .await?;
    insert_ledger(conn, tenant, ledger, millis(Utc::now())).await
}

pub(crate) async fn fail_attempt(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
    error: &str,
    give_up: bool,
    ledger: &[NewLedgerEntry],
) -> Result<(), StoreError> {
    lock_queued(conn, tenant, id).await?;
    let now = millis(Utc::now());
    sqlx::query(
        "UPDATE memory_jobs SET attempts = attempts + 1, error = $3,
             status = CASE WHEN $4 THEN 'failed' ELSE status END,
             finished_at = CASE WHEN $4 THEN $5 ELSE finished_at END
         WHERE id = $1 AND tenant_id = $2",
    )
    .bind(id)
    .bind(tenant.as_str())
    .bind(error)
    .bind(give_up)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    insert_ledger(conn, tenant, ledger, now).await
}

pub(crate) async fn finish(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
    writes: &[MemoryWrite],
) -> Result<MemoryWritten, StoreError> {
    lock_queued(conn, tenant, id).await?;
    sqlx::query("UPDATE memory_jobs SET status = 'completed', error = NULL, finished_at = $3 WHERE id = $1 AND tenant_id = $2")
        .bind(id)
        .bind(tenant.as_str())
        .bind(millis(Utc::now()))
        .execute(&mut *conn)
        .await?;
    // Last: the memory writes append to the search log under its lock.
    super::records::write_memories(conn, tenant, writes).await
}
