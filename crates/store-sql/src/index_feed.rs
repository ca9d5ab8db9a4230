//! The memory side of the search index feed (the search log, memory rows
//! to index or embed) and the [`crate::IndexFeed`] impl; documents and
//! chunks are read in `index_documents.rs`.

use super::db::Db;
use super::index_documents;
use super::records::log_all;
use super::{Arg, Conn, Row};
use crate::postgres::PgStore;
use chrono::Utc;
use roster_core::TenantId;
use roster_store::millis;
use roster_store::{
    encode_vector, stored_embedding, EmbeddingUpdate, IndexRow, SearchLogEntry, UnembeddedRow,
};
use roster_store::{DocumentRows, NearestQuery, RowKind, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;

type Result<T> = std::result::Result<T, StoreError>;

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

crate::store_impl! {
    impl crate::IndexFeed {
        read search_log_after(after: i64, limit: i64) -> Vec<SearchLogEntry> = |c| search_log_after(c, after, limit).await;
        read search_log_head() -> i64 = |c| search_log_head(c).await;
        read memory_index_rows(ids: &[String]) -> Vec<IndexRow> = |c| memory_index_rows(c, &ids).await;
        read scan_memory_index_rows(after: &str, limit: i64) -> Vec<IndexRow> = |c| scan_memory_index_rows(c, &after, limit).await;
        read document_index_rows(ids: &[String]) -> Vec<DocumentRows> = |c| index_documents::document_index_rows(c, &ids).await;
        read scan_document_index_rows(after: &str, limit: i64) -> Vec<DocumentRows> = |c| index_documents::scan_document_index_rows(c, &after, limit).await;
        read unembedded(kind: RowKind, model: &str, limit: i64) -> Vec<UnembeddedRow> = |c| match kind { RowKind::Memory => unembedded_memories(c, &model, limit).await, RowKind::Chunk => index_documents::unembedded_chunks(c, &model, limit).await, };
        write set_embeddings(kind: RowKind, updates: Vec<EmbeddingUpdate>) -> usize = |c| match kind { RowKind::Memory => set_memory_embeddings(c, &updates).await, RowKind::Chunk => index_documents::set_chunk_embeddings(c, &updates).await, };
    }
    extra {
        fn native_vectors(&self) -> Option<String> {
            postgres(&self.db).and_then(|store| store.native_vectors())
        }
        async fn prepare_native_vectors(&self, model: &str, dims: usize) -> Result<()> {
            match postgres(&self.db) {
                Some(store) => store.prepare_vector_index(model, dims).await,
                None => Err(no_native_vectors()),
            }
        }
        async fn nearest(&self, query: &NearestQuery<'_>) -> Result<Vec<(String, f32)>> {
            match postgres(&self.db) {
                Some(store) => store.nearest_vectors(query).await,
                None => Err(no_native_vectors()),
            }
        }
    }
}
