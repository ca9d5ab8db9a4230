//! Memory extraction jobs on SQLite.

use super::journal::insert_ledger;
use super::rows;
use crate::jobs::MemoryJob;
use crate::records::{MemoryWrite, MemoryWritten};
use crate::types::{from_millis, millis};
use crate::{JournalWrite, StoreError};
use chrono::Utc;
use roster_core::ledger::NewLedgerEntry;
use roster_core::{AgentId, RunId, SessionId, TenantId};
use rusqlite::{params, Connection, Row};

const COLUMNS: &str = "id, tenant_id, agent_id, agent_version, session_id, run_id, strategy, from_seq, to_seq, status, attempts, output, error, created_at, finished_at";

fn job(row: &Row<'_>) -> Result<MemoryJob, StoreError> {
    let output: Option<String> = row.get(11)?;
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
        output: output.as_deref().map(rows::json).transpose()?,
        error: row.get(12)?,
        created_at: from_millis(row.get(13)?),
        finished_at: row.get::<_, Option<i64>>(14)?.map(from_millis),
    })
}

/// Creates the jobs of a finishing run, over its items `first..=last`.
pub(crate) fn create_jobs(
    conn: &Connection,
    tenant: &TenantId,
    write: &JournalWrite,
    first: i64,
    last: i64,
    now: i64,
) -> Result<(), StoreError> {
    for new in &write.memory_jobs {
        rows::exec(
            conn,
            "INSERT INTO memory_jobs (id, tenant_id, agent_id, agent_version, session_id, run_id, strategy, from_seq, to_seq, status, attempts, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'queued', 0, ?10)",
            params![new.id, tenant.as_str(), new.agent_id.as_str(), new.agent_version, write.session_id.as_str(), write.run_id.as_str(), new.strategy, first, last, now],
        )?;
    }
    Ok(())
}

pub(crate) fn queued(conn: &Connection, limit: i64) -> Result<Vec<MemoryJob>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM memory_jobs WHERE status = 'queued' ORDER BY id LIMIT ?1"
    ))?;
    rows::collect(&mut stmt, params![limit], job)
}

pub(crate) fn for_run(
    conn: &Connection,
    tenant: &TenantId,
    run: &RunId,
) -> Result<Vec<MemoryJob>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM memory_jobs WHERE run_id = ?1 AND tenant_id = ?2 ORDER BY strategy"
    ))?;
    rows::collect(&mut stmt, params![run.as_str(), tenant.as_str()], job)
}

fn check_queued(conn: &Connection, tenant: &TenantId, id: &str) -> Result<(), StoreError> {
    let status: Option<String> = {
        let mut stmt =
            conn.prepare_cached("SELECT status FROM memory_jobs WHERE id = ?1 AND tenant_id = ?2")?;
        rows::first(&mut stmt, params![id, tenant.as_str()], |r| Ok(r.get(0)?))?
    };
    match status.as_deref() {
        Some("queued") => Ok(()),
        Some(other) => Err(StoreError::Conflict(format!("memory job {id} is {other}"))),
        None => Err(StoreError::NotFound(format!("memory job {id}"))),
    }
}

pub(crate) fn record_output(
    conn: &Connection,
    tenant: &TenantId,
    id: &str,
    output: &serde_json::Value,
    ledger: &[NewLedgerEntry],
) -> Result<(), StoreError> {
    check_queued(conn, tenant, id)?;
    let now = millis(Utc::now());
    rows::exec(
        conn,
        "UPDATE memory_jobs SET output = ?3, attempts = attempts + 1 WHERE id = ?1 AND tenant_id = ?2",
        params![id, tenant.as_str(), serde_json::to_string(output)?],
    )?;
    insert_ledger(conn, tenant, ledger, now)
}

pub(crate) fn fail_attempt(
    conn: &Connection,
    tenant: &TenantId,
    id: &str,
    error: &str,
    give_up: bool,
    ledger: &[NewLedgerEntry],
) -> Result<(), StoreError> {
    check_queued(conn, tenant, id)?;
    let now = millis(Utc::now());
    rows::exec(
        conn,
        "UPDATE memory_jobs SET attempts = attempts + 1, error = ?3,
             status = CASE WHEN ?4 THEN 'failed' ELSE status END,
             finished_at = CASE WHEN ?4 THEN ?5 ELSE finished_at END
         WHERE id = ?1 AND tenant_id = ?2",
        params![id, tenant.as_str(), error, give_up, now],
    )?;
    insert_ledger(conn, tenant, ledger, now)
}

pub(crate) fn finish(
    conn: &Connection,
    tenant: &TenantId,
    id: &str,
    writes: &[MemoryWrite],
) -> Result<MemoryWritten, StoreError> {
    check_queued(conn, tenant, id)?;
    let written = super::records::write_memories(conn, tenant, writes)?;
    rows::exec(
        conn,
        "UPDATE memory_jobs SET status = 'completed', error = NULL, finished_at = ?3 WHERE id = ?1 AND tenant_id = ?2",
        params![id, tenant.as_str(), millis(Utc::now())],
    )?;
    Ok(written)
}
