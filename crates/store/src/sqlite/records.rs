//! Memory records and the search log on SQLite.

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
use rusqlite::{params, Connection, Row};

const COLUMNS: &str = "id, namespace, record_key, kind, content, metadata, source, version, created_at, updated_at, expires_at";

fn record(row: &Row<'_>) -> Result<MemoryRecord, StoreError> {
    let metadata: String = row.get(5)?;
    let source: Option<String> = row.get(6)?;
    Ok(MemoryRecord {
        id: MemoryId::from_stored(row.get(0)?),
        namespace: row.get(1)?,
        key: row.get(2)?,
        kind: row.get(3)?,
        content: row.get(4)?,
        metadata: json(&metadata)?,
        source: source.as_deref().map(json::<Provenance>).transpose()?,
        version: row.get(7)?,
        created_at: from_millis(row.get(8)?),
        updated_at: from_millis(row.get(9)?),
        expires_at: row.get::<_, Option<i64>>(10)?.map(from_millis),
    })
}

fn load(
    conn: &Connection,
    tenant: &TenantId,
    target: &Target<'_>,
) -> Result<Option<MemoryRecord>, StoreError> {
    match target {
        Target::Id(id) => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM memories WHERE tenant_id = ?1 AND id = ?2"
            ))?;
            rows::first(&mut stmt, params![tenant.as_str(), id.as_str()], record)
        }
        Target::Key { namespace, key } => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM memories WHERE tenant_id = ?1 AND namespace = ?2 AND record_key = ?3"
            ))?;
            rows::first(&mut stmt, params![tenant.as_str(), namespace, key], record)
        }
    }
}

pub(crate) fn write_memories(
    conn: &Connection,
    tenant: &TenantId,
    writes: &[MemoryWrite],
) -> Result<MemoryWritten, StoreError> {
    let now = Utc::now();
    let now_ms = millis(now);
    let mut written = MemoryWritten::default();
    for write in writes {
        let current = load(conn, tenant, &target(&write.op))?;
        let planned = plan(write.op.clone(), current, crate::types::from_millis(now_ms))?;
        let r = &planned.record;
        let metadata = serde_json::to_string(&r.metadata)?;
        let source = r.source.as_ref().map(serde_json::to_string).transpose()?;
        let expires = r.expires_at.map(millis);
        match planned.change {
            RowChange::Insert => {
                let (vector, model) = split(planned.embedding.as_ref());
                rows::exec(
                    conn,
                    "INSERT INTO memories (id, tenant_id, namespace, record_key, kind, content, metadata, source, version, created_at, updated_at, expires_at, embedding, embedding_model)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11, ?12, ?13)",
                    params![r.id.as_str(), tenant.as_str(), r.namespace, r.key, r.kind, r.content, metadata, source, r.version, now_ms, expires, vector, model],
                )
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        StoreError::Conflict(format!("memory {} already exists", r.id))
                    }
                    _ => StoreError::from(e),
                })?;
            }
            RowChange::Update => {
                rows::exec(
                    conn,
                    "UPDATE memories SET kind = ?3, content = ?4, metadata = ?5, source = ?6, version = ?7, updated_at = ?8, expires_at = ?9
                     WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant.as_str(), r.id.as_str(), r.kind, r.content, metadata, source, r.version, now_ms, expires],
                )?;
                if !planned.keep_embedding {
                    let (vector, model) = split(planned.embedding.as_ref());
                    rows::exec(
                        conn,
                        "UPDATE memories SET embedding = ?3, embedding_model = ?4 WHERE tenant_id = ?1 AND id = ?2",
                        params![tenant.as_str(), r.id.as_str(), vector, model],
                    )?;
                }
            }
            RowChange::Delete => {
                rows::exec(
                    conn,
                    "DELETE FROM memories WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant.as_str(), r.id.as_str()],
                )?;
            }
        }
        rows::exec(
            conn,
            "INSERT INTO memory_versions (memory_id, version, tenant_id, content, metadata, operation, principal, run_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![r.id.as_str(), r.version, tenant.as_str(), r.content, metadata, planned.operation, write.principal, write.run_id.as_ref().map(RunId::as_str), now_ms],
        )?;
        written.log_id = log(conn, tenant, "memory", r.id.as_str(), now_ms)?;
        written.records.push(planned.record);
    }
    Ok(written)
}

fn split(embedding: Option<&Embedding>) -> (Option<Vec<u8>>, Option<&str>) {
    match embedding {
        Some(e) => (Some(encode_vector(&e.vector)), Some(e.model.as_str())),
        None => (None, None),
    }
}

/// Appends a search log entry; the writer thread commits in order, so ids
/// become visible in increasing order.
pub(crate) fn log(
    conn: &Connection,
    tenant: &TenantId,
    kind: &str,
    reference: &str,
    now_ms: i64,
) -> Result<i64, StoreError> {
    rows::exec(
        conn,
        "INSERT INTO search_log (tenant_id, kind, ref, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![tenant.as_str(), kind, reference, now_ms],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn get_memories(
    conn: &Connection,
    tenant: &TenantId,
    ids: &[MemoryId],
) -> Result<Vec<MemoryRecord>, StoreError> {
    let ids: Vec<&str> = ids.iter().map(MemoryId::as_str).collect();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM memories WHERE tenant_id = ?1 AND id IN (SELECT value FROM json_each(?2))"
    ))?;
    rows::collect(
        &mut stmt,
        params![tenant.as_str(), serde_json::to_string(&ids)?],
        record,
    )
}

pub(crate) fn get_memory(
    conn: &Connection,
    tenant: &TenantId,
    id: &MemoryId,
) -> Result<Option<MemoryRecord>, StoreError> {
    load(conn, tenant, &Target::Id(id))
}

pub(crate) fn list_memories(
    conn: &Connection,
    tenant: &TenantId,
    query: &MemoryQuery,
) -> Result<Vec<MemoryRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM memories
         WHERE tenant_id = ?1 AND (?2 IS NULL OR namespace = ?2) AND (?3 IS NULL OR kind = ?3)
           AND id > ?4 AND (?5 OR expires_at IS NULL OR expires_at > ?6)
           AND (?8 IS NULL OR substr(namespace, 1, 6) <> 'users/'
                OR EXISTS (SELECT 1 FROM json_each(?8) AS u
                           WHERE namespace = 'users/' || u.value
                              OR substr(namespace, 1, length(u.value) + 7) = 'users/' || u.value || '/'))
         ORDER BY id {order} LIMIT ?7",
        order = if query.newest_first { "DESC" } else { "ASC" }
    ))?;
    let visible = query
        .visible_users
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    rows::collect(
        &mut stmt,
        params![
            tenant.as_str(),
            query.namespace,
            query.kind,
            if query.newest_first {
                ""
            } else {
                query.after.as_ref().map_or("", MemoryId::as_str)
            },
            query.include_expired,
            millis(Utc::now()),
            query.limit,
            visible
        ],
        record,
    )
}

pub(crate) fn memory_history(
    conn: &Connection,
    tenant: &TenantId,
    id: &MemoryId,
) -> Result<Vec<MemoryRecordVersion>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, content, metadata, operation, principal, run_id, created_at FROM memory_versions
         WHERE tenant_id = ?1 AND memory_id = ?2 ORDER BY version",
    )?;
    rows::collect(&mut stmt, params![tenant.as_str(), id.as_str()], |row| {
        let metadata: String = row.get(2)?;
        let run_id: Option<String> = row.get(5)?;
        Ok(MemoryRecordVersion {
            version: row.get(0)?,
            content: row.get(1)?,
            metadata: json(&metadata)?,
            operation: row.get(3)?,
            principal: row.get(4)?,
            run_id: run_id.map(RunId::from_stored),
            created_at: from_millis(row.get(6)?),
        })
    })
}

pub(crate) fn search_log_after(
    conn: &Connection,
    after: i64,
    limit: i64,
) -> Result<Vec<SearchLogEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, tenant_id, kind, ref FROM search_log WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    rows::collect(&mut stmt, params![after, limit], |row| {
        Ok(SearchLogEntry {
            id: row.get(0)?,
            tenant: TenantId::from_stored(row.get(1)?),
            kind: row.get(2)?,
            reference: row.get(3)?,
        })
    })
}

pub(crate) fn search_log_head(conn: &Connection) -> Result<i64, StoreError> {
    Ok(rows::row(
        conn,
        "SELECT COALESCE(MAX(id), 0) FROM search_log",
        [],
        |r| r.get(0),
    )?)
}

fn index_row(row: &Row<'_>) -> Result<IndexRow, StoreError> {
    let vector: Option<Vec<u8>> = row.get(4)?;
    let model: Option<String> = row.get(5)?;
    let embedding = stored_embedding(vector, model)?;
    Ok(IndexRow {
        tenant: TenantId::from_stored(row.get(0)?),
        id: row.get(1)?,
        scope: row.get(2)?,
        text: row.get(3)?,
        embedding,
    })
}

const INDEX_COLUMNS: &str = "tenant_id, id, namespace, content, embedding, embedding_model";

pub(crate) fn memory_index_rows(
    conn: &Connection,
    ids: &[String],
) -> Result<Vec<IndexRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INDEX_COLUMNS} FROM memories WHERE id IN (SELECT value FROM json_each(?1))"
    ))?;
    rows::collect(&mut stmt, params![serde_json::to_string(ids)?], index_row)
}

pub(crate) fn scan_memory_index_rows(
    conn: &Connection,
    after: &str,
    limit: i64,
) -> Result<Vec<IndexRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {INDEX_COLUMNS} FROM memories WHERE id > ?1 ORDER BY id LIMIT ?2"
    ))?;
    rows::collect(&mut stmt, params![after, limit], index_row)
}

pub(crate) fn unembedded_memories(
    conn: &Connection,
    model: &str,
    limit: i64,
) -> Result<Vec<UnembeddedRow>, StoreError> {
    // Three index ranges rather than `IS NULL OR <> ?`, which SQLite would
    // answer with a scan of every record.
    let mut stmt = conn.prepare_cached(
        "SELECT tenant_id, id, version, content FROM (
             SELECT * FROM (SELECT tenant_id, id, version, content FROM memories WHERE embedding_model IS NULL ORDER BY id LIMIT ?2)
             UNION ALL
             SELECT * FROM (SELECT tenant_id, id, version, content FROM memories WHERE embedding_model < ?1 ORDER BY embedding_model LIMIT ?2)
             UNION ALL
             SELECT * FROM (SELECT tenant_id, id, version, content FROM memories WHERE embedding_model > ?1 ORDER BY embedding_model LIMIT ?2)
         ) LIMIT ?2",
    )?;
    rows::collect(&mut stmt, params![model, limit], |row| {
        Ok(UnembeddedRow {
            tenant: TenantId::from_stored(row.get(0)?),
            id: row.get(1)?,
            version: row.get(2)?,
            text: row.get(3)?,
        })
    })
}

pub(crate) fn set_memory_embeddings(
    conn: &Connection,
    updates: &[EmbeddingUpdate],
) -> Result<usize, StoreError> {
    let now_ms = millis(Utc::now());
    let mut stored = 0;
    for update in updates {
        let changed = rows::exec(
            conn,
            "UPDATE memories SET embedding = ?4, embedding_model = ?5 WHERE tenant_id = ?1 AND id = ?2 AND version = ?3",
            params![
                update.tenant.as_str(),
                update.id,
                update.version,
                encode_vector(&update.embedding.vector),
                update.embedding.model
            ],
        )?;
        if changed > 0 {
            log(conn, &update.tenant, "memory", &update.id, now_ms)?;
            stored += 1;
        }
    }
    Ok(stored)
}
