//! Memory records and the search log on PostgreSQL.

use super::rows::{self, json};
use crate::record_plan::{plan, target, RowChange, Target};
use crate::records::stored_embedding;
use crate::records::{
    encode_vector, Embedding, EmbeddingUpdate, IndexRow, MemoryQuery, MemoryWrite, MemoryWritten,
    SearchLogEntry, UnembeddedRow,
};
use crate::types::{from_millis, millis};
use crate::StoreError;
use chrono::Utc;
use roster_core::record::{MemoryRecord, MemoryRecordVersion, Provenance};
use roster_core::{MemoryId, RunId, TenantId};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;

const COLUMNS: &str = "id, namespace, record_key, kind, content, metadata, source, version, created_at, updated_at, expires_at";

/// Any constant: the transaction-level advisory lock that orders search log
/// appends (see the migration).
const SEARCH_LOG_LOCK: i64 = 0x5eac_4109;

fn record(row: &PgRow) -> Result<MemoryRecord, StoreError> {
    let metadata: String = row.try_get(5)?;
    let source: Option<String> = row.try_get(6)?;
    Ok(MemoryRecord {
        id: MemoryId::from_stored(row.try_get(0)?),
        namespace: row.try_get(1)?,
        key: row.try_get(2)?,
        kind: row.try_get(3)?,
        content: row.try_get(4)?,
        metadata: json(&metadata)?,
        source: source.as_deref().map(json::<Provenance>).transpose()?,
        version: row.try_get(7)?,
        created_at: from_millis(row.try_get(8)?),
        updated_at: from_millis(row.try_get(9)?),
        expires_at: row.try_get::<Option<i64>, _>(10)?.map(from_millis),
    })
}

async fn load(
    conn: &mut PgConnection,
    tenant: &TenantId,
    target: &Target<'_>,
) -> Result<Option<MemoryRecord>, StoreError> {
    match target {
        Target::Id(id) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM memories WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
            );
            let q = sqlx::query(&sql).bind(tenant.as_str()).bind(id.as_str());
            rows::first(conn, q, record).await
        }
        Target::Key { namespace, key } => {
            let sql = format!(
                "SELECT {COLUMNS} FROM memories WHERE tenant_id = $1 AND namespace = $2 AND record_key = $3 FOR UPDATE"
            );
            let q = sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(*namespace)
                .bind(*key);
            rows::first(conn, q, record).await
        }
    }
}

fn split(embedding: Option<&Embedding>) -> (Option<Vec<u8>>, Option<&str>) {
    match embedding {
        Some(e) => (Some(encode_vector(&e.vector)), Some(e.model.as_str())),
        None => (None, None),
    }
}

fn conflict_on_unique(e: sqlx::Error, what: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            StoreError::Conflict(format!("{what} already exists"))
        }
        _ => StoreError::from(e),
    }
}

pub(crate) async fn write_memories(
    conn: &mut PgConnection,
    tenant: &TenantId,
    writes: &[MemoryWrite],
) -> Result<MemoryWritten, StoreError> {
    let now_ms = millis(Utc::now());
    let mut written = MemoryWritten::default();
    let mut logged = Vec::with_capacity(writes.len());
    for write in writes {
        let current = load(conn, tenant, &target(&write.op)).await?;
        let planned = plan(write.op.clone(), current, from_millis(now_ms))?;
        let r = &planned.record;
        let metadata = serde_json::to_string(&r.metadata)?;
        let source = r.source.as_ref().map(serde_json::to_string).transpose()?;
        let expires = r.expires_at.map(millis);
        match planned.change {
            RowChange::Insert => {
                let (vector, model) = split(planned.embedding.as_ref());
                sqlx::query(
                    "INSERT INTO memories (id, tenant_id, namespace, record_key, kind, content, metadata, source, version, created_at, updated_at, expires_at, embedding, embedding_model)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11, $12, $13)",
                )
                .bind(r.id.as_str())
                .bind(tenant.as_str())
                .bind(&r.namespace)
                .bind(&r.key)
                .bind(&r.kind)
                .bind(&r.content)
                .bind(&metadata)
                .bind(&source)
                .bind(r.version)
                .bind(now_ms)
                .bind(expires)
                .bind(vector)
                .bind(model)
                .execute(&mut *conn)
                .await
                .map_err(|e| conflict_on_unique(e, &format!("memory {}", r.id)))?;
            }
            RowChange::Update => {
                sqlx::query(
                    "UPDATE memories SET kind = $3, content = $4, metadata = $5, source = $6, version = $7, updated_at = $8, expires_at = $9
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.as_str())
                .bind(r.id.as_str())
                .bind(&r.kind)
                .bind(&r.content)
                .bind(&metadata)
                .bind(&source)
                .bind(r.version)
                .bind(now_ms)
                .bind(expires)
                .execute(&mut *conn)
                .await?;
                if !planned.keep_embedding {
                    let (vector, model) = split(planned.embedding.as_ref());
                    sqlx::query(
                        "UPDATE memories SET embedding = $3, embedding_model = $4 WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(r.id.as_str())
                    .bind(vector)
                    .bind(model)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            RowChange::Delete => {
                sqlx::query("DELETE FROM memories WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(r.id.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO memory_versions (memory_id, version, tenant_id, content, metadata, operation, principal, run_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(r.id.as_str())
        .bind(r.version)
        .bind(tenant.as_str())
        .bind(&r.content)
        .bind(&metadata)
        .bind(planned.operation)
        .bind(&write.principal)
        .bind(write.run_id.as_ref().map(RunId::as_str))
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
        logged.push(r.id.to_string());
        written.records.push(planned.record);
    }
    written.log_id = log_all(conn, tenant, "memory", &logged, now_ms).await?;
    Ok(written)
}

/// Appends search log entries last in the transaction, under the lock that
/// keeps log ids committing in order; returns the last id (0 if none).
pub(crate) async fn log_all(
    conn: &mut PgConnection,
    tenant: &TenantId,
    kind: &str,
    references: &[String],
    now_ms: i64,
) -> Result<i64, StoreError> {
    if references.is_empty() {
        return Ok(0);
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SEARCH_LOG_LOCK)
        .execute(&mut *conn)
        .await?;
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO search_log (tenant_id, kind, ref, created_at)
         SELECT $1, $2, r, $4 FROM UNNEST($3::text[]) WITH ORDINALITY AS t(r, n) ORDER BY n
         RETURNING id",
    )
    .bind(tenant.as_str())
    .bind(kind)
    .bind(references)
    .bind(now_ms)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .max()
    .unwrap_or(0);
    Ok(last)
}

pub(crate) async fn get_memory(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &MemoryId,
) -> Result<Option<MemoryRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM memories WHERE tenant_id = $1 AND id = $2");
    let q = sqlx::query(&sql).bind(tenant.as_str()).bind(id.as_str());
    rows::first(conn, q, record).await
}

pub(crate) async fn get_memories(
    conn: &mut PgConnection,
    tenant: &TenantId,
    ids: &[MemoryId],
) -> Result<Vec<MemoryRecord>, StoreError> {
    let ids: Vec<&str> = ids.iter().map(MemoryId::as_str).collect();
    let sql = format!("SELECT {COLUMNS} FROM memories WHERE tenant_id = $1 AND id = ANY($2)");
    let q = sqlx::query(&sql).bind(tenant.as_str()).bind(ids);
    rows::collect(conn, q, record).await
}

pub(crate) async fn list_memories(
    conn: &mut PgConnection,
    tenant: &TenantId,
    query: &MemoryQuery,
) -> Result<Vec<MemoryRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM memories
         WHERE tenant_id = $1 AND ($2::text IS NULL OR namespace = $2) AND ($3::text IS NULL OR kind = $3)
           AND id > $4 AND ($5 OR expires_at IS NULL OR expires_at > $6)
           AND ($8::text[] IS NULL OR substr(namespace, 1, 6) <> 'users/'
                OR EXISTS (SELECT 1 FROM unnest($8::text[]) AS u(name)
                           WHERE namespace = 'users/' || u.name
                              OR substr(namespace, 1, length(u.name) + 7) = 'users/' || u.name || '/'))
         ORDER BY id {order} LIMIT $7",
        order = if query.newest_first { "DESC" } else { "ASC" }
    );
    let q = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(&query.namespace)
        .bind(&query.kind)
        .bind(if query.newest_first {
            ""
        } else {
            query.after.as_ref().map_or("", MemoryId::as_str)
        })
        .bind(query.include_expired)
        .bind(millis(Utc::now()))
        .bind(rows::limit(query.limit))
        .bind(query.visible_users.as_deref());
    rows::collect(conn, q, record).await
}

pub(crate) async fn memory_history(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &MemoryId,
) -> Result<Vec<MemoryRecordVersion>, StoreError> {
    let q = sqlx::query(
        "SELECT version, content, metadata, operation, principal, run_id, created_at FROM memory_versions
         WHERE tenant_id = $1 AND memory_id = $2 ORDER BY version",
    )
    .bind(tenant.as_str())
    .bind(id.as_str());
    rows::collect(conn, q, |row| {
        let metadata: String = row.try_get(2)?;
        let run_id: Option<String> = row.try_get(5)?;
        Ok(MemoryRecordVersion {
            version: row.try_get(0)?,
            content: row.try_get(1)?,
            metadata: json(&metadata)?,
            operation: row.try_get(3)?,
            principal: row.try_get(4)?,
            run_id: run_id.map(RunId::from_stored),
            created_at: from_millis(row.try_get(6)?),
        })
    })
    .await
}

pub(crate) async fn search_log_after(
    conn: &mut PgConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<SearchLogEntry>, StoreError> {
    let q = sqlx::query(
        "SELECT id, tenant_id, kind, ref FROM search_log WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(rows::limit(limit));
    rows::collect(conn, q, |row| {
        Ok(SearchLogEntry {
            id: row.try_get(0)?,
            tenant: TenantId::from_stored(row.try_get(1)?),
            kind: row.try_get(2)?,
            reference: row.try_get(3)?,
        })
    })
    .await
}

pub(crate) async fn search_log_head(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0)::BIGINT FROM search_log")
            .fetch_one(conn)
            .await?,
    )
}

const INDEX_COLUMNS: &str = "tenant_id, id, namespace, content, embedding, embedding_model";

fn index_row(row: &PgRow) -> Result<IndexRow, StoreError> {
    let vector: Option<Vec<u8>> = row.try_get(4)?;
    let model: Option<String> = row.try_get(5)?;
    let embedding = stored_embedding(vector, model)?;
    Ok(IndexRow {
        tenant: TenantId::from_stored(row.try_get(0)?),
        id: row.try_get(1)?,
        scope: row.try_get(2)?,
        text: row.try_get(3)?,
        embedding,
    })
}

pub(crate) async fn memory_index_rows(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<IndexRow>, StoreError> {
    let sql = format!("SELECT {INDEX_COLUMNS} FROM memories WHERE id = ANY($1)");
    let q = sqlx::query(&sql).bind(ids);
    rows::collect(conn, q, index_row).await
}

pub(crate) async fn scan_memory_index_rows(
    conn: &mut PgConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<IndexRow>, StoreError> {
    let sql = format!("SELECT {INDEX_COLUMNS} FROM memories WHERE id > $1 ORDER BY id LIMIT $2");
    let q = sqlx::query(&sql).bind(after).bind(rows::limit(limit));
    rows::collect(conn, q, index_row).await
}

pub(crate) async fn unembedded_memories(
    conn: &mut PgConnection,
    model: &str,
    limit: i64,
) -> Result<Vec<UnembeddedRow>, StoreError> {
    let q = sqlx::query(
        "SELECT tenant_id, id, version, content FROM memories
         WHERE embedding_model IS NULL OR embedding_model <> $1 ORDER BY id LIMIT $2",
    )
    .bind(model)
    .bind(rows::limit(limit));
    rows::collect(conn, q, |row| {
        Ok(UnembeddedRow {
            tenant: TenantId::from_stored(row.try_get(0)?),
            id: row.try_get(1)?,
            version: row.try_get(2)?,
            text: row.try_get(3)?,
        })
    })
    .await
}

pub(crate) async fn set_memory_embeddings(
    conn: &mut PgConnection,
    updates: &[EmbeddingUpdate],
) -> Result<usize, StoreError> {
    let now_ms = millis(Utc::now());
    let mut stored: Vec<(TenantId, String)> = Vec::new();
    for update in updates {
        let changed = sqlx::query(
            "UPDATE memories SET embedding = $4, embedding_model = $5 WHERE tenant_id = $1 AND id = $2 AND version = $3",
        )
        .bind(update.tenant.as_str())
        .bind(&update.id)
        .bind(update.version)
        .bind(encode_vector(&update.embedding.vector))
        .bind(&update.embedding.model)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if changed > 0 {
            stored.push((update.tenant.clone(), update.id.clone()));
        }
    }
    let count = stored.len();
    let mut by_tenant: std::collections::BTreeMap<TenantId, Vec<String>> = Default::default();
    for (tenant, id) in stored {
        by_tenant.entry(tenant).or_default().push(id);
    }
    for (tenant, ids) in by_tenant {
        log_all(conn, &tenant, "memory", &ids, now_ms).await?;
    }
    Ok(count)
}
