//! Memory extraction jobs: created with the run that completes, their model
//! reply journaled before it is applied, applied with their completion.

use super::{Conn, OnUnique, Row};
use crate::jobs::MemoryJob;
use crate::record_plan::{plan, target, RowChange, Target};
use crate::records::{encode_vector, Embedding, MemoryWrite, MemoryWritten};
use crate::types::{from_millis, millis};
use crate::{JournalWrite, StoreError};
use chrono::Utc;
use roster_core::ledger::NewLedgerEntry;
use roster_core::record::{MemoryRecord, Provenance};
use roster_core::{AgentId, MemoryId, RunId, SessionId, TenantId};

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
#[allow(dead_code)] // called by the journal commit once it moves here
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

pub(crate) async fn queued(c: &mut Conn<'_>, limit: i64) -> Result<Vec<MemoryJob>> {
    Ok(c.all(
        crate::sql!(
            "SELECT {COLUMNS} FROM memory_jobs WHERE status = 'queued' ORDER BY id LIMIT $1"
        ),
        &[super::Arg::Limit(limit)],
        job,
    )
    .await?)
}

pub(crate) async fn for_run(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    run: &RunId,
) -> Result<Vec<MemoryJob>> {
    Ok(c.all(
        crate::sql!(
            "SELECT {COLUMNS} FROM memory_jobs WHERE run_id = $1 AND tenant_id = $2 ORDER BY strategy"
        ),
        crate::args![run, tenant],
        job,
    )
    .await?)
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
    insert_ledger(c, tenant, ledger, millis(Utc::now())).await
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
    insert_ledger(c, tenant, ledger, now).await
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
    write_memories(c, tenant, writes).await
}

#[async_trait::async_trait]
impl crate::JobStore for super::SqlStore {
    async fn queued_memory_jobs(&self, limit: i64) -> Result<Vec<MemoryJob>> {
        super::store::run!(self.read("queued_memory_jobs", [], |c| queued(c, limit).await))
    }

    async fn memory_jobs_for_run(&self, tenant: &TenantId, run: &RunId) -> Result<Vec<MemoryJob>> {
        super::store::run!(self.read("memory_jobs_for_run", [tenant, run], |c| {
            for_run(c, &tenant, &run).await
        }))
    }

    async fn record_job_output(
        &self,
        tenant: &TenantId,
        job: &str,
        output: serde_json::Value,
        ledger: Vec<NewLedgerEntry>,
    ) -> Result<()> {
        super::store::run!(self.write("record_job_output", [tenant, job], |c| {
            record_output(c, &tenant, &job, &output, &ledger).await
        }))
    }

    async fn fail_job_attempt(
        &self,
        tenant: &TenantId,
        job: &str,
        error: &str,
        give_up: bool,
        ledger: Vec<NewLedgerEntry>,
    ) -> Result<()> {
        super::store::run!(self.write("fail_job_attempt", [tenant, job, error], |c| {
            fail_attempt(c, &tenant, &job, &error, give_up, &ledger).await
        }))
    }

    async fn finish_memory_job(
        &self,
        tenant: &TenantId,
        job: &str,
        writes: Vec<MemoryWrite>,
    ) -> Result<MemoryWritten> {
        super::store::run!(self.write("finish_memory_job", [tenant, job], |c| {
            finish(c, &tenant, &job, &writes).await
        }))
    }
}

// TODO(merge): shared with journal (the ledger insert)
async fn insert_ledger(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    entries: &[NewLedgerEntry],
    now: i64,
) -> Result<()> {
    for entry in entries {
        let route = entry
            .route
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        c.exec(
            crate::sql!(
                "INSERT INTO ledger (tenant_id, provider, model, tokens_in, tokens_out, latency_ms, outcome, error, agent_id, session_id, run_id, step, created_at, region, route, cost_micros)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
            ),
            crate::args![
                tenant,
                &entry.provider,
                &entry.model,
                entry.tokens_in,
                entry.tokens_out,
                entry.latency_ms,
                &entry.outcome,
                &entry.error,
                &entry.agent_id,
                &entry.session_id,
                &entry.run_id,
                entry.step,
                now,
                &entry.region,
                &route,
                entry.cost_micros
            ],
        )
        .await?;
    }
    Ok(())
}

// TODO(merge): shared with records (writing memories and the search log)
const MEMORY_COLUMNS: &str = "id, namespace, record_key, kind, content, metadata, source, version, created_at, updated_at, expires_at";

/// Any constant: the transaction-level advisory lock that orders search log
/// appends (see the migration).
const SEARCH_LOG_LOCK: i64 = 0x5eac_4109;

fn memory(row: &Row<'_>) -> Result<MemoryRecord> {
    Ok(MemoryRecord {
        id: MemoryId::from_stored(row.get(0)?),
        namespace: row.get(1)?,
        key: row.get(2)?,
        kind: row.get(3)?,
        content: row.get(4)?,
        metadata: row.json(5)?,
        source: row.opt_json::<Provenance>(6)?,
        version: row.get(7)?,
        created_at: row.time(8)?,
        updated_at: row.time(9)?,
        expires_at: row.opt_time(10)?,
    })
}

async fn load(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    target: &Target<'_>,
) -> Result<Option<MemoryRecord>> {
    Ok(match target {
        Target::Id(id) => {
            c.opt(
                crate::sql!("SELECT {MEMORY_COLUMNS} FROM memories WHERE tenant_id = $1 AND id = $2 FOR UPDATE"),
                crate::args![tenant, *id],
                memory,
            )
            .await?
        }
        Target::Key { namespace, key } => {
            c.opt(
                crate::sql!("SELECT {MEMORY_COLUMNS} FROM memories WHERE tenant_id = $1 AND namespace = $2 AND record_key = $3 FOR UPDATE"),
                crate::args![tenant, *namespace, *key],
                memory,
            )
            .await?
        }
    })
}

fn split(embedding: Option<&Embedding>) -> (Option<Vec<u8>>, Option<&str>) {
    match embedding {
        Some(e) => (Some(encode_vector(&e.vector)), Some(e.model.as_str())),
        None => (None, None),
    }
}

async fn write_memories(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    writes: &[MemoryWrite],
) -> Result<MemoryWritten> {
    let now_ms = millis(Utc::now());
    let mut written = MemoryWritten::default();
    let mut logged = Vec::with_capacity(writes.len());
    for write in writes {
        let current = load(c, tenant, &target(&write.op)).await?;
        let planned = plan(write.op.clone(), current, from_millis(now_ms))?;
        let r = &planned.record;
        let metadata = serde_json::to_string(&r.metadata)?;
        let source = r.source.as_ref().map(serde_json::to_string).transpose()?;
        let expires = r.expires_at.map(millis);
        match planned.change {
            RowChange::Insert => {
                let (vector, model) = split(planned.embedding.as_ref());
                c.exec(
                    crate::sql!(
                        "INSERT INTO memories (id, tenant_id, namespace, record_key, kind, content, metadata, source, version, created_at, updated_at, expires_at, embedding, embedding_model)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13)"
                    ),
                    crate::args![&r.id, tenant, &r.namespace, &r.key, &r.kind, &r.content, metadata.as_str(), &source, r.version, now_ms, expires, vector.as_deref(), model],
                )
                .await
                .on_unique(|| StoreError::Conflict(format!("memory {} already exists", r.id)))?;
            }
            RowChange::Update => {
                c.exec(
                    crate::sql!(
                        "UPDATE memories SET kind = $3, content = $4, metadata = $5, source = $6, version = $7, updated_at = $8, expires_at = $9
                         WHERE tenant_id = $1 AND id = $2"
                    ),
                    crate::args![tenant, &r.id, &r.kind, &r.content, metadata.as_str(), &source, r.version, now_ms, expires],
                )
                .await?;
                if !planned.keep_embedding {
                    let (vector, model) = split(planned.embedding.as_ref());
                    c.exec(
                        crate::sql!("UPDATE memories SET embedding = $3, embedding_model = $4 WHERE tenant_id = $1 AND id = $2"),
                        crate::args![tenant, &r.id, vector.as_deref(), model],
                    )
                    .await?;
                }
            }
            RowChange::Delete => {
                c.exec(
                    crate::sql!("DELETE FROM memories WHERE tenant_id = $1 AND id = $2"),
                    crate::args![tenant, &r.id],
                )
                .await?;
            }
        }
        c.exec(
            crate::sql!(
                "INSERT INTO memory_versions (memory_id, version, tenant_id, content, metadata, operation, principal, run_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ),
            crate::args![&r.id, r.version, tenant, &r.content, metadata.as_str(), planned.operation, &write.principal, write.run_id.as_ref(), now_ms],
        )
        .await?;
        logged.push(r.id.to_string());
        written.records.push(planned.record);
    }
    written.log_id = log_all(c, tenant, "memory", &logged, now_ms).await?;
    Ok(written)
}

/// Appends search log entries last in the transaction, under the lock that
/// keeps log ids committing in order (SQLite's single writer already does);
/// returns the last id (0 if none).
pub(super) async fn log_all(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    kind: &str,
    references: &[String],
    now_ms: i64,
) -> Result<i64> {
    if references.is_empty() {
        return Ok(0);
    }
    if c.is_postgres() {
        c.exec(
            crate::sql!("SELECT pg_advisory_xact_lock($1)"),
            crate::args![SEARCH_LOG_LOCK],
        )
        .await?;
    }
    let mut last = 0;
    for reference in references {
        last = c
            .one(
                crate::sql!(
                    "INSERT INTO search_log (tenant_id, kind, ref, created_at) VALUES ($1, $2, $3, $4) RETURNING id"
                ),
                crate::args![tenant, kind, reference, now_ms],
                |row| row.get::<i64>(0),
            )
            .await?
            .max(last);
    }
    Ok(last)
}
