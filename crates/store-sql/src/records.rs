//! Memory records and the search log.

use super::{Arg, Conn, OnUnique, Row};
use crate::record_plan::{plan, target, RowChange, Target};
use crate::StoreError;
use chrono::Utc;
use roster_core::record::{MemoryRecord, MemoryRecordVersion, Provenance};
use roster_core::{MemoryId, RunId, TenantId};
use roster_store::{encode_vector, Embedding, MemoryQuery, MemoryWrite, MemoryWritten};
use roster_store::{from_millis, millis};

type Result<T> = std::result::Result<T, StoreError>;

const COLUMNS: &str = "id, namespace, record_key, kind, content, metadata, source, version, created_at, updated_at, expires_at";

/// Any constant: the transaction-level advisory lock that orders search log
/// appends (see the migration).
const SEARCH_LOG_LOCK: i64 = 0x5eac_4109;

fn record(row: &Row<'_>) -> Result<MemoryRecord> {
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

/// The record a write addresses, locked on PostgreSQL until the write commits.
async fn load(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    target: &Target<'_>,
) -> Result<Option<MemoryRecord>> {
    Ok(match target {
        Target::Id(id) => {
            c.opt(
                crate::sql!(
                    "SELECT {COLUMNS} FROM memories WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
                ),
                crate::args![tenant, *id],
                record,
            )
            .await?
        }
        Target::Key { namespace, key } => {
            c.opt(
                crate::sql!("SELECT {COLUMNS} FROM memories WHERE tenant_id = $1 AND namespace = $2 AND record_key = $3 FOR UPDATE"),
                crate::args![tenant, *namespace, *key],
                record,
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

pub(crate) async fn write_memories(
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
                    crate::args![
                        &r.id, tenant, &r.namespace, &r.key, &r.kind, &r.content, metadata.as_str(),
                        &source, r.version, now_ms, expires, vector.as_deref(), model
                    ],
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
                    crate::args![
                        tenant, &r.id, &r.kind, &r.content, metadata.as_str(), &source,
                        r.version, now_ms, expires
                    ],
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
            crate::args![
                &r.id, r.version, tenant, &r.content, metadata.as_str(), planned.operation,
                &write.principal, write.run_id.as_ref(), now_ms
            ],
        )
        .await?;
        logged.push(r.id.to_string());
        written.records.push(planned.record);
    }
    written.log_id = log_all(c, tenant, "memory", &logged, now_ms).await?;
    Ok(written)
}

/// Appends search log entries last in the transaction and returns the last
/// id (0 if none). Ids must become visible in increasing order: SQLite's one
/// writer commits in order; PostgreSQL appends under a lock held to commit.
pub(crate) async fn log_all(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    kind: &str,
    ids: &[String],
    now: i64,
) -> Result<i64> {
    if ids.is_empty() {
        return Ok(0);
    }
    if c.is_postgres() {
        c.exec(
            crate::sql!("SELECT pg_advisory_xact_lock($1)"),
            crate::args![SEARCH_LOG_LOCK],
        )
        .await?;
        let inserted = c
            .all(
                crate::sql!(
                    "INSERT INTO search_log (tenant_id, kind, ref, created_at)
                     SELECT $1, $2, r, $4 FROM UNNEST($3::text[]) WITH ORDINALITY AS t(r, n) ORDER BY n
                     RETURNING id"
                ),
                crate::args![tenant, kind, ids, now],
                |row| row.get::<i64>(0),
            )
            .await?;
        return Ok(inserted.into_iter().max().unwrap_or(0));
    }
    let mut last = 0;
    for id in ids {
        last = c
            .one(
                crate::sql!("INSERT INTO search_log (tenant_id, kind, ref, created_at) VALUES ($1, $2, $3, $4) RETURNING id"),
                crate::args![tenant, kind, id, now],
                |row| row.get::<i64>(0),
            )
            .await?;
    }
    Ok(last)
}

/// `list_memories`' statement, with the `users/NAME` filter's list of
/// names (`$8`) read as a table named `u` with a `value` column.
fn list_sql(users: &str, order: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM memories
         WHERE tenant_id = $1 AND ($2 IS NULL OR namespace = $2) AND ($3 IS NULL OR kind = $3)
           AND id > $4 AND ($5 OR expires_at IS NULL OR expires_at > $6)
           AND ($8 IS NULL OR substr(namespace, 1, 6) <> 'users/'
                OR EXISTS (SELECT 1 FROM {users}
                           WHERE namespace = 'users/' || u.value
                              OR substr(namespace, 1, length(u.value) + 7) = 'users/' || u.value || '/'))
         ORDER BY id {order} LIMIT $7"
    )
}

const PG_USERS: &str = "unnest($8::text[]) AS u(value)";
const SQLITE_USERS: &str = "json_each($8) AS u";

pub(crate) async fn list_memories(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    query: &MemoryQuery,
) -> Result<Vec<MemoryRecord>> {
    let sql = if query.newest_first {
        crate::sql_pick!(postgres: list_sql(PG_USERS, "DESC"), sqlite: list_sql(SQLITE_USERS, "DESC"))
    } else {
        crate::sql_pick!(postgres: list_sql(PG_USERS, "ASC"), sqlite: list_sql(SQLITE_USERS, "ASC"))
    };
    let after = if query.newest_first {
        ""
    } else {
        query.after.as_ref().map_or("", MemoryId::as_str)
    };
    Ok(c.all(
        sql,
        &[
            tenant.into(),
            (&query.namespace).into(),
            (&query.kind).into(),
            after.into(),
            query.include_expired.into(),
            millis(Utc::now()).into(),
            Arg::Limit(query.limit),
            (&query.visible_users).into(),
        ],
        record,
    )
    .await?)
}

crate::store_impl! {
    impl crate::RecordStore {
        write write_memories(tenant: &TenantId, writes: Vec<MemoryWrite>) -> MemoryWritten = |c| write_memories(c, &tenant, &writes).await;
        read get_memory(tenant: &TenantId, id: &MemoryId) -> Option<MemoryRecord> = |c| c.opt(
            crate::sql!("SELECT {COLUMNS} FROM memories WHERE tenant_id = $1 AND id = $2"), crate::args![&tenant, &id], record).await;
        read get_memories(tenant: &TenantId, ids: &[MemoryId]) -> Vec<MemoryRecord> = |c| {
            let ids: Vec<String> = ids.iter().map(MemoryId::to_string).collect();
            c.all(crate::sql!("SELECT {COLUMNS} FROM memories WHERE tenant_id = $1 AND id = ANY($2)"), crate::args![&tenant, &ids], record).await
        };
        read list_memories(tenant: &TenantId, query: &MemoryQuery) -> Vec<MemoryRecord> = |c| list_memories(c, &tenant, &query).await;
        read memory_history(tenant: &TenantId, id: &MemoryId) -> Vec<MemoryRecordVersion> = |c| c.all(
            crate::sql!("SELECT version, content, metadata, operation, principal, run_id, created_at FROM memory_versions
                         WHERE tenant_id = $1 AND memory_id = $2 ORDER BY version"),
            crate::args![&tenant, &id],
            |row| Ok(MemoryRecordVersion {
                version: row.get(0)?, content: row.get(1)?, metadata: row.json(2)?, operation: row.get(3)?,
                principal: row.get(4)?, run_id: row.get::<Option<String>>(5)?.map(RunId::from_stored), created_at: row.time(6)?,
            }),
        ).await;
    }
}
