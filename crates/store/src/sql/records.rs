//! Memory records and the search log.

use super::db::Db;
use super::index_documents;
use super::{Arg, Conn, OnUnique, Row};
use crate::postgres::PgStore;
use crate::record_plan::{plan, target, RowChange, Target};
use crate::records::{
    encode_vector, stored_embedding, Embedding, EmbeddingUpdate, IndexRow, MemoryQuery,
    MemoryWrite, MemoryWritten, SearchLogEntry, UnembeddedRow,
};
use crate::types::{from_millis, millis};
use crate::{DocumentRows, NearestQuery, RowKind, StoreError};
use chrono::Utc;
use roster_core::record::{MemoryRecord, MemoryRecordVersion, Provenance};
use roster_core::{MemoryId, RunId, TenantId};
use std::collections::BTreeMap;
use std::sync::Arc;

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

pub(crate) async fn get_memory(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &MemoryId,
) -> Result<Option<MemoryRecord>> {
    Ok(c.opt(
        crate::sql!("SELECT {COLUMNS} FROM memories WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, id],
        record,
    )
    .await?)
}

pub(crate) async fn get_memories(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    ids: &[MemoryId],
) -> Result<Vec<MemoryRecord>> {
    let ids: Vec<String> = ids.iter().map(MemoryId::to_string).collect();
    Ok(c.all(
        crate::sql!("SELECT {COLUMNS} FROM memories WHERE tenant_id = $1 AND id = ANY($2)"),
        crate::args![tenant, &ids],
        record,
    )
    .await?)
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

pub(crate) async fn memory_history(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &MemoryId,
) -> Result<Vec<MemoryRecordVersion>> {
    Ok(c.all(
        crate::sql!(
            "SELECT version, content, metadata, operation, principal, run_id, created_at FROM memory_versions
             WHERE tenant_id = $1 AND memory_id = $2 ORDER BY version"
        ),
        crate::args![tenant, id],
        |row| {
            Ok(MemoryRecordVersion {
                version: row.get(0)?,
                content: row.get(1)?,
                metadata: row.json(2)?,
                operation: row.get(3)?,
                principal: row.get(4)?,
                run_id: row.get::<Option<String>>(5)?.map(RunId::from_stored),
                created_at: row.time(6)?,
            })
        },
    )
    .await?)
}

pub(crate) async fn search_log_after(
    c: &mut Conn<'_>,
    after: i64,
    limit: i64,
) -> Result<Vec<SearchLogEntry>> {
    Ok(c.all(
        crate::sql!(
            "SELECT id, tenant_id, kind, ref FROM search_log WHERE id > $1 ORDER BY id LIMIT $2"
        ),
        &[after.into(), Arg::Limit(limit)],
        |row| {
            Ok(SearchLogEntry {
                id: row.get(0)?,
                tenant: TenantId::from_stored(row.get(1)?),
                kind: row.get(2)?,
                reference: row.get(3)?,
            })
        },
    )
    .await?)
}

pub(crate) async fn search_log_head(c: &mut Conn<'_>) -> Result<i64> {
    Ok(c.one(
        crate::sql!("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM search_log"),
        &[],
        |row| row.get(0),
    )
    .await?)
}

const INDEX_COLUMNS: &str = "tenant_id, id, namespace, content, embedding, embedding_model";

fn index_row(row: &Row<'_>) -> Result<IndexRow> {
    Ok(IndexRow {
        tenant: TenantId::from_stored(row.get(0)?),
        id: row.get(1)?,
        scope: row.get(2)?,
        text: row.get(3)?,
        embedding: stored_embedding(row.get(4)?, row.get(5)?)?,
    })
}

pub(crate) async fn memory_index_rows(c: &mut Conn<'_>, ids: &[String]) -> Result<Vec<IndexRow>> {
    Ok(c.all(
        crate::sql!("SELECT {INDEX_COLUMNS} FROM memories WHERE id = ANY($1)"),
        crate::args![ids],
        index_row,
    )
    .await?)
}

pub(crate) async fn scan_memory_index_rows(
    c: &mut Conn<'_>,
    after: &str,
    limit: i64,
) -> Result<Vec<IndexRow>> {
    Ok(c.all(
        crate::sql!("SELECT {INDEX_COLUMNS} FROM memories WHERE id > $1 ORDER BY id LIMIT $2"),
        &[after.into(), Arg::Limit(limit)],
        index_row,
    )
    .await?)
}

pub(crate) fn unembedded_row(row: &Row<'_>) -> Result<UnembeddedRow> {
    Ok(UnembeddedRow {
        tenant: TenantId::from_stored(row.get(0)?),
        id: row.get(1)?,
        version: row.get(2)?,
        text: row.get(3)?,
    })
}

pub(crate) async fn unembedded_memories(
    c: &mut Conn<'_>,
    model: &str,
    limit: i64,
) -> Result<Vec<UnembeddedRow>> {
    Ok(c.all(
        crate::sql_pick!(
            postgres: "SELECT tenant_id, id, version, content FROM memories
                       WHERE embedding_model IS NULL OR embedding_model <> $1 ORDER BY id LIMIT $2",
            // Three index ranges rather than `IS NULL OR <> ?`, which SQLite
            // would answer with a scan of every record.
            sqlite: "SELECT tenant_id, id, version, content FROM (
                         SELECT * FROM (SELECT tenant_id, id, version, content FROM memories WHERE embedding_model IS NULL ORDER BY id LIMIT $2)
                         UNION ALL
                         SELECT * FROM (SELECT tenant_id, id, version, content FROM memories WHERE embedding_model < $1 ORDER BY embedding_model LIMIT $2)
                         UNION ALL
                         SELECT * FROM (SELECT tenant_id, id, version, content FROM memories WHERE embedding_model > $1 ORDER BY embedding_model LIMIT $2)
                     ) LIMIT $2",
        ),
        &[model.into(), Arg::Limit(limit)],
        unembedded_row,
    )
    .await?)
}

pub(crate) async fn set_memory_embeddings(
    c: &mut Conn<'_>,
    updates: &[EmbeddingUpdate],
) -> Result<usize> {
    let now_ms = millis(Utc::now());
    let mut stored = 0;
    let mut by_tenant: BTreeMap<TenantId, Vec<String>> = BTreeMap::new();
    for update in updates {
        let vector = encode_vector(&update.embedding.vector);
        let changed = c
            .exec(
                crate::sql!("UPDATE memories SET embedding = $4, embedding_model = $5 WHERE tenant_id = $1 AND id = $2 AND version = $3"),
                crate::args![&update.tenant, &update.id, update.version, &vector, &update.embedding.model],
            )
            .await?;
        if changed > 0 {
            stored += 1;
            by_tenant
                .entry(update.tenant.clone())
                .or_default()
                .push(update.id.clone());
        }
    }
    for (tenant, ids) in by_tenant {
        log_all(c, &tenant, "memory", &ids, now_ms).await?;
    }
    Ok(stored)
}

/// The PostgreSQL store behind `db`, which alone may search vectors itself.
fn postgres(db: &Db) -> Option<&Arc<PgStore>> {
    match db {
        Db::Postgres(store) => Some(store),
        Db::Sqlite(_) => None,
        Db::Faulty(inner, _) => postgres(inner),
    }
}

fn no_native_vectors() -> StoreError {
    StoreError::Config("this database has no vector search of its own".into())
}

#[async_trait::async_trait]
impl crate::RecordStore for super::SqlStore {
    async fn write_memories(
        &self,
        tenant: &TenantId,
        writes: Vec<MemoryWrite>,
    ) -> Result<MemoryWritten> {
        super::store::run!(self.write("write_memories", [tenant], |c| {
            write_memories(c, &tenant, &writes).await
        }))
    }

    async fn get_memory(&self, tenant: &TenantId, id: &MemoryId) -> Result<Option<MemoryRecord>> {
        super::store::run!(self.read("get_memory", [tenant, id], |c| {
            get_memory(c, &tenant, &id).await
        }))
    }

    async fn get_memories(&self, tenant: &TenantId, ids: &[MemoryId]) -> Result<Vec<MemoryRecord>> {
        super::store::run!(self.read("get_memories", [tenant, ids], |c| {
            get_memories(c, &tenant, &ids).await
        }))
    }

    async fn list_memories(
        &self,
        tenant: &TenantId,
        query: &MemoryQuery,
    ) -> Result<Vec<MemoryRecord>> {
        super::store::run!(self.read("list_memories", [tenant, query], |c| {
            list_memories(c, &tenant, &query).await
        }))
    }

    async fn memory_history(
        &self,
        tenant: &TenantId,
        id: &MemoryId,
    ) -> Result<Vec<MemoryRecordVersion>> {
        super::store::run!(self.read("memory_history", [tenant, id], |c| {
            memory_history(c, &tenant, &id).await
        }))
    }
}

#[async_trait::async_trait]
impl crate::IndexFeed for super::SqlStore {
    fn native_vectors(&self) -> Option<String> {
        postgres(&self.db).and_then(|store| crate::IndexFeed::native_vectors(store.as_ref()))
    }

    async fn prepare_native_vectors(&self, model: &str, dims: usize) -> Result<()> {
        match postgres(&self.db) {
            Some(store) => {
                crate::IndexFeed::prepare_native_vectors(store.as_ref(), model, dims).await
            }
            None => Err(no_native_vectors()),
        }
    }

    async fn nearest(&self, query: &NearestQuery<'_>) -> Result<Vec<(String, f32)>> {
        match postgres(&self.db) {
            Some(store) => crate::IndexFeed::nearest(store.as_ref(), query).await,
            None => Err(no_native_vectors()),
        }
    }

    async fn search_log_after(&self, after: i64, limit: i64) -> Result<Vec<SearchLogEntry>> {
        super::store::run!(self.read("search_log_after", [], |c| {
            search_log_after(c, after, limit).await
        }))
    }

    async fn search_log_head(&self) -> Result<i64> {
        super::store::run!(self.read("search_log_head", [], |c| search_log_head(c).await))
    }

    async fn memory_index_rows(&self, ids: &[String]) -> Result<Vec<IndexRow>> {
        super::store::run!(self.read("memory_index_rows", [ids], |c| {
            memory_index_rows(c, &ids).await
        }))
    }

    async fn scan_memory_index_rows(&self, after: &str, limit: i64) -> Result<Vec<IndexRow>> {
        super::store::run!(self.read("scan_memory_index_rows", [after], |c| {
            scan_memory_index_rows(c, &after, limit).await
        }))
    }

    async fn document_index_rows(&self, ids: &[String]) -> Result<Vec<DocumentRows>> {
        super::store::run!(self.read("document_index_rows", [ids], |c| {
            index_documents::document_index_rows(c, &ids).await
        }))
    }

    async fn scan_document_index_rows(&self, after: &str, limit: i64) -> Result<Vec<DocumentRows>> {
        super::store::run!(self.read("scan_document_index_rows", [after], |c| {
            index_documents::scan_document_index_rows(c, &after, limit).await
        }))
    }

    async fn unembedded(
        &self,
        kind: RowKind,
        model: &str,
        limit: i64,
    ) -> Result<Vec<UnembeddedRow>> {
        super::store::run!(self.read("unembedded", [model], |c| match kind {
            RowKind::Memory => unembedded_memories(c, &model, limit).await,
            RowKind::Chunk => index_documents::unembedded_chunks(c, &model, limit).await,
        }))
    }

    async fn set_embeddings(&self, kind: RowKind, updates: Vec<EmbeddingUpdate>) -> Result<usize> {
        super::store::run!(self.write("set_embeddings", [], |c| match kind {
            RowKind::Memory => set_memory_embeddings(c, &updates).await,
            RowKind::Chunk => index_documents::set_chunk_embeddings(c, &updates).await,
        }))
    }
}
