//! Memory extraction jobs: created with the run that completes, their model
//! reply journaled before it is applied, applied with their completion.

use super::{Conn, Row};
use chrono::Utc;
use roster_core::ledger::NewLedgerEntry;
use roster_core::{AgentId, RunId, SessionId, TenantId};
use roster_store::millis;
use roster_store::MemoryJob;
use roster_store::{JournalWrite, StoreError};
use roster_store::{MemoryWrite, MemoryWritten};

type Result<T> = std::result::Result<T, StoreError>;

const COLUMNS: &str = "id, tenant_id, agent_id, agent_version, session_id, run_id, strategy, from_seq, to_seq, status, attempts, output, error, created_at, finished_at";

fn job(row: &Row<'_>) -> Result<MemoryJob> {
    Ok(MemoryJob {
        id: row.get(0)?,
        tenant: Some(TenantId::from_stored(row.get(1)?)),
        agent_id: AgentId::from_stored(row.get(2)?),
        agent_version: row.get(3)?,
        session_id: SessionId::from_stored(row.get(4)?),
        run_id: RunId::from_stored(row.get(5)?),
        strategy: row.get(6)?,
        from_seq: row.get(7)?,
        to_seq: row.get(8)?,
        status: row.get(9)?,
        attempts: row.get(10)?,
        output: row.opt_json(11)?,
        error: row.get(12)?,
        created_at: row.time(13)?,
        finished_at: row.opt_time(14)?,
    })
}

/// Creates the jobs of a finishing run, over its items `first..=last`.
pub(crate) async fn create_jobs(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    write: &JournalWrite,
    first: i64,
    last: i64,
    now: i64,
) -> Result<()> {
    for new in &write.memory_jobs {
        c.exec(
            crate::sql!(
                "INSERT INTO memory_jobs (id, tenant_id, agent_id, agent_version, session_id, run_id, strategy, from_seq, to_seq, status, attempts, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', 0, $10)"
            ),
            crate::args![
                &new.id,
                tenant,
                &new.agent_id,
                new.agent_version,
                &write.session_id,
                &write.run_id,
                new.strategy,
                first,
                last,
                now
            ],
        )
        .await?;
    }
    Ok(())
}

/// Locks the job row (on PostgreSQL) and checks it is still queued.
async fn lock_queued(c: &mut Conn<'_>, tenant: &TenantId, id: &str) -> Result<()> {
    let status: Option<String> = c
        .opt(
            crate::sql!(
                "SELECT status FROM memory_jobs WHERE id = $1 AND tenant_id = $2 FOR UPDATE"
            ),
            crate::args![id, tenant],
            |row| row.get(0),
        )
        .await?;
    match status.as_deref() {
        Some("queued") => Ok(()),
        Some(other) => Err(StoreError::Conflict(format!("memory job {id} is {other}"))),
        None => Err(StoreError::NotFound(format!("memory job {id}"))),
    }
}

pub(crate) async fn record_output(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &str,
    output: &serde_json::Value,
    ledger: &[NewLedgerEntry],
) -> Result<()> {
    lock_queued(c, tenant, id).await?;
    let output = serde_json::to_string(output)?;
    c.exec(
        crate::sql!(
            "UPDATE memory_jobs SET output = $3, attempts = attempts + 1 WHERE id = $1 AND tenant_id = $2"
        ),
        crate::args![id, tenant, output.as_str()],
    )
    .await?;
    super::journal::insert_ledger(c, tenant, ledger, millis(Utc::now())).await
}

pub(crate) async fn fail_attempt(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &str,
    error: &str,
    give_up: bool,
    ledger: &[NewLedgerEntry],
) -> Result<()> {
    lock_queued(c, tenant, id).await?;
    let now = millis(Utc::now());
    c.exec(
        crate::sql!(
            "UPDATE memory_jobs SET attempts = attempts + 1, error = $3,
                 status = CASE WHEN $4 THEN 'failed' ELSE status END,
                 finished_at = CASE WHEN $4 THEN $5 ELSE finished_at END
             WHERE id = $1 AND tenant_id = $2"
        ),
        crate::args![id, tenant, error, give_up, now],
    )
    .await?;
    super::journal::insert_ledger(c, tenant, ledger, now).await
}

pub(crate) async fn finish(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &str,
    writes: &[MemoryWrite],
) -> Result<MemoryWritten> {
    lock_queued(c, tenant, id).await?;
    c.exec(
        crate::sql!(
            "UPDATE memory_jobs SET status = 'completed', error = NULL, finished_at = $3 WHERE id = $1 AND tenant_id = $2"
        ),
        crate::args![id, tenant, millis(Utc::now())],
    )
    .await?;
    // Last: the memory writes append to the search log under its lock.
    super::records::write_memories(c, tenant, writes).await
}

crate::store_impl! {
    impl crate::JobStore {
        read queued_memory_jobs(limit: i64) -> Vec<MemoryJob> = |c| c.all(
            crate::sql!("SELECT {COLUMNS} FROM memory_jobs WHERE status = 'queued' ORDER BY id LIMIT $1"),
            &[super::Arg::Limit(limit)], job).await;
        read memory_jobs_for_run(tenant: &TenantId, run: &RunId) -> Vec<MemoryJob> = |c| c.all(
            crate::sql!("SELECT {COLUMNS} FROM memory_jobs WHERE run_id = $1 AND tenant_id = $2 ORDER BY strategy"),
            crate::args![&run, &tenant], job).await;
        write record_job_output(tenant: &TenantId, job: &str, output: serde_json::Value, ledger: Vec<NewLedgerEntry>) -> () = |c| record_output(c, &tenant, &job, &output, &ledger).await;
        write fail_job_attempt(tenant: &TenantId, job: &str, error: &str, give_up: bool, ledger: Vec<NewLedgerEntry>) -> () = |c| fail_attempt(c, &tenant, &job, &error, give_up, &ledger).await;
        write finish_memory_job(tenant: &TenantId, job: &str, writes: Vec<MemoryWrite>) -> MemoryWritten = |c| finish(c, &tenant, &job, &writes).await;
    }
}
