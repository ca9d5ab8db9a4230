//! Knowledge sources, documents and chunks on PostgreSQL, and their side of
//! the index feed. Mirrors `sqlite/knowledge.rs`.

use super::records::log_all;
use super::rows::{self, json};
use crate::knowledge::{DocumentPut, NewDocumentVersion};
use crate::records::stored_embedding;
use crate::records::{
    encode_vector, split_chunk_id, DocumentRows, EmbeddingUpdate, IndexRow, UnembeddedRow,
};
use crate::types::{from_millis, millis};
use crate::StoreError;
use chrono::Utc;
use roster_core::knowledge::{DocumentError, KnowledgeDocument, KnowledgeSource, Passage};
use roster_core::{DocumentId, SourceId, TenantId};
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;
use std::collections::BTreeMap;

const SOURCE_COLUMNS: &str = "s.id, s.name, s.description, s.created_at, s.updated_at,
    (SELECT COUNT(*) FROM knowledge_documents d WHERE d.source_id = s.id)::BIGINT,
    (SELECT COALESCE(SUM(chunks), 0) FROM knowledge_documents d WHERE d.source_id = s.id)::BIGINT";

fn source(row: &PgRow) -> Result<KnowledgeSource, StoreError> {
    Ok(KnowledgeSource {
        id: SourceId::from_stored(row.try_get(0)?),
        name: row.try_get(1)?,
        description: row.try_get(2)?,
        created_at: from_millis(row.try_get(3)?),
        updated_at: from_millis(row.try_get(4)?),
        documents: row.try_get(5)?,
        chunks: row.try_get(6)?,
    })
}

const DOCUMENT_COLUMNS: &str = "id, source_id, path, kind, content_hash, bytes, chars, version, chunks, error_code, error_message, created_at, updated_at, max_chunks";

fn document(row: &PgRow) -> Result<KnowledgeDocument, StoreError> {
    let code: Option<String> = row.try_get(9)?;
    let message: Option<String> = row.try_get(10)?;
    Ok(KnowledgeDocument {
        id: DocumentId::from_stored(row.try_get(0)?),
        source_id: SourceId::from_stored(row.try_get(1)?),
        path: row.try_get(2)?,
        kind: row.try_get(3)?,
        content_hash: row.try_get(4)?,
        bytes: row.try_get(5)?,
        chars: row.try_get(6)?,
        version: row.try_get(7)?,
        chunks: row.try_get(8)?,
        error: code.map(|code| DocumentError {
            code,
            message: message.unwrap_or_default(),
        }),
        created_at: from_millis(row.try_get(11)?),
        updated_at: from_millis(row.try_get(12)?),
    })
}

fn document_with_max(row: &PgRow) -> Result<(KnowledgeDocument, i64), StoreError> {
    Ok((document(row)?, row.try_get(13)?))
}

pub(crate) async fn create_source(
    conn: &mut PgConnection,
    tenant: &TenantId,
    name: &str,
    description: &str,
) -> Result<KnowledgeSource, StoreError> {
    let now = millis(Utc::now());
    sqlx::query(
        "INSERT INTO knowledge_sources (id, tenant_id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(SourceId::generate().as_str())
    .bind(tenant.as_str())
    .bind(name)
    .bind(description)
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            StoreError::Conflict(format!("a knowledge source named `{name}` already exists"))
        }
        _ => StoreError::from(e),
    })?;
    get_source(conn, tenant, name)
        .await?
        .ok_or_else(|| StoreError::NotFound("source".into()))
}

pub(crate) async fn list_sources(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<KnowledgeSource>, StoreError> {
    let sql = format!(
        "SELECT {SOURCE_COLUMNS} FROM knowledge_sources s WHERE s.tenant_id = $1 ORDER BY s.name"
    );
    rows::collect(conn, sqlx::query(&sql).bind(tenant.as_str()), source).await
}

pub(crate) async fn get_source(
    conn: &mut PgConnection,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<KnowledgeSource>, StoreError> {
    let sql = format!(
        "SELECT {SOURCE_COLUMNS} FROM knowledge_sources s WHERE s.tenant_id = $1 AND s.name = $2"
    );
    rows::first(
        conn,
        sqlx::query(&sql).bind(tenant.as_str()).bind(name),
        source,
    )
    .await
}

async fn find_document(
    conn: &mut PgConnection,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
    lock: bool,
) -> Result<Option<(KnowledgeDocument, i64)>, StoreError> {
    let sql = format!(
        "SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents WHERE tenant_id = $1 AND source_id = $2 AND path = $3{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let q = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(source.as_str())
        .bind(path);
    rows::first(conn, q, document_with_max).await
}

/// Locks the source row, so a document write and the source's deletion
/// take turns.
async fn lock_source(
    conn: &mut PgConnection,
    tenant: &TenantId,
    source: &SourceId,
) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM knowledge_sources WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
        .bind(tenant.as_str())
        .bind(source.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound("knowledge source".into()))
}

pub(crate) async fn delete_source(
    conn: &mut PgConnection,
    tenant: &TenantId,
    source: &SourceId,
) -> Result<i64, StoreError> {
    lock_source(conn, tenant, source).await?;
    let docs: Vec<(String, i64)> = sqlx::query_as(
        "SELECT id, max_chunks FROM knowledge_documents WHERE tenant_id = $1 AND source_id = $2",
    )
    .bind(tenant.as_str())
    .bind(source.as_str())
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM knowledge_chunks WHERE document_id IN (SELECT id FROM knowledge_documents WHERE tenant_id = $1 AND source_id = $2)",
    )
    .bind(tenant.as_str())
    .bind(source.as_str())
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM knowledge_documents WHERE tenant_id = $1 AND source_id = $2")
        .bind(tenant.as_str())
        .bind(source.as_str())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM knowledge_sources WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(source.as_str())
        .execute(&mut *conn)
        .await?;
    let refs: Vec<String> = docs
        .into_iter()
        .map(|(id, max)| format!("{id}:{max}"))
        .collect();
    log_all(conn, tenant, "document", &refs, millis(Utc::now())).await
}

pub(crate) async fn list_documents(
    conn: &mut PgConnection,
    tenant: &TenantId,
    source: &SourceId,
    after: &str,
    limit: i64,
) -> Result<Vec<KnowledgeDocument>, StoreError> {
    let sql = format!(
        "SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents WHERE tenant_id = $1 AND source_id = $2 AND path > $3 ORDER BY path LIMIT $4"
    );
    let q = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(source.as_str())
        .bind(after)
        .bind(rows::limit(limit));
    rows::collect(conn, q, document).await
}

pub(crate) async fn get_document(
    conn: &mut PgConnection,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
) -> Result<Option<KnowledgeDocument>, StoreError> {
    Ok(find_document(conn, tenant, source, path, false)
        .await?
        .map(|(d, _)| d))
}

pub(crate) async fn put_document(
    conn: &mut PgConnection,
    tenant: &TenantId,
    new: &NewDocumentVersion,
) -> Result<DocumentPut, StoreError> {
    lock_source(conn, tenant, &new.source_id).await?;
    let now = millis(Utc::now());
    let existing = find_document(conn, tenant, &new.source_id, &new.path, true).await?;
    if let Some((doc, _)) = &existing {
        if doc.content_hash.as_deref() == Some(new.content_hash.as_str()) && doc.version > 0 {
            sqlx::query(
                "UPDATE knowledge_documents SET error_code = NULL, error_message = NULL WHERE id = $1",
            )
            .bind(doc.id.as_str())
            .execute(&mut *conn)
            .await?;
            let mut doc = doc.clone();
            doc.error = None;
            return Ok(DocumentPut::Unchanged(doc));
        }
    }
    let count = i64::try_from(new.chunks.len()).unwrap_or(i64::MAX);
    let (id, version, max) = match &existing {
        Some((doc, max)) => {
            sqlx::query("DELETE FROM knowledge_chunks WHERE document_id = $1")
                .bind(doc.id.as_str())
                .execute(&mut *conn)
                .await?;
            let max = (*max).max(count);
            sqlx::query(
                "UPDATE knowledge_documents SET kind = $2, content_hash = $3, bytes = $4, chars = $5, version = version + 1,
                     chunks = $6, max_chunks = $7, error_code = NULL, error_message = NULL, updated_at = $8 WHERE id = $1",
            )
            .bind(doc.id.as_str())
            .bind(&new.kind)
            .bind(&new.content_hash)
            .bind(new.bytes)
            .bind(new.chars)
            .bind(count)
            .bind(max)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            (doc.id.clone(), doc.version + 1, max)
        }
        None => {
            let id = DocumentId::generate();
            sqlx::query(
                "INSERT INTO knowledge_documents (id, tenant_id, source_id, path, kind, content_hash, bytes, chars, version, chunks, max_chunks, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10, $10)",
            )
            .bind(id.as_str())
            .bind(tenant.as_str())
            .bind(new.source_id.as_str())
            .bind(&new.path)
            .bind(&new.kind)
            .bind(&new.content_hash)
            .bind(new.bytes)
            .bind(new.chars)
            .bind(count)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            (id, 1, count)
        }
    };
    // One multi-row insert per batch: a round trip per chunk would make a
    // large document slow to store.
    for (batch_index, batch) in new.chunks.chunks(500).enumerate() {
        let mut builder = sqlx::QueryBuilder::new(
            "INSERT INTO knowledge_chunks (document_id, ordinal, tenant_id, version, text, location, citation, embedding, embedding_model, source_id) ",
        );
        let location: Vec<String> = batch
            .iter()
            .map(|c| serde_json::to_string(&c.location))
            .collect::<Result<_, _>>()?;
        builder.push_values(
            batch.iter().zip(location).enumerate(),
            |mut b, (i, (chunk, location))| {
                let ordinal = i64::try_from(batch_index * 500 + i).unwrap_or(i64::MAX);
                b.push_bind(id.as_str())
                    .push_bind(ordinal)
                    .push_bind(tenant.as_str())
                    .push_bind(version)
                    .push_bind(&chunk.text)
                    .push_bind(location)
                    .push_bind(&chunk.citation)
                    .push_bind(chunk.embedding.as_ref().map(|e| encode_vector(&e.vector)))
                    .push_bind(chunk.embedding.as_ref().map(|e| e.model.clone()))
                    .push_bind(new.source_id.as_str());
            },
        );
        builder.build().execute(&mut *conn).await?;
    }
    let log_id = log_all(conn, tenant, "document", &[format!("{id}:{max}")], now).await?;
    let document = find_document(conn, tenant, &new.source_id, &new.path, false)
        .await?
        .map(|(d, _)| d)
        .ok_or_else(|| StoreError::NotFound("document".into()))?;
    Ok(DocumentPut::Stored { document, log_id })
}

pub(crate) async fn fail_document(
    conn: &mut PgConnection,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
    error: &DocumentError,
) -> Result<KnowledgeDocument, StoreError> {
    lock_source(conn, tenant, source).await?;
    let now = millis(Utc::now());
    match find_document(conn, tenant, source, path, true).await? {
        Some((doc, _)) => {
            sqlx::query(
                "UPDATE knowledge_documents SET error_code = $2, error_message = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(doc.id.as_str())
            .bind(&error.code)
            .bind(&error.message)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query(
                "INSERT INTO knowledge_documents (id, tenant_id, source_id, path, bytes, chars, version, chunks, max_chunks, error_code, error_message, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0, $5, $6, $7, $7)",
            )
            .bind(DocumentId::generate().as_str())
            .bind(tenant.as_str())
            .bind(source.as_str())
            .bind(path)
            .bind(&error.code)
            .bind(&error.message)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
    }
    get_document(conn, tenant, source, path)
        .await?
        .ok_or_else(|| StoreError::NotFound("document".into()))
}

pub(crate) async fn delete_document(
    conn: &mut PgConnection,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
) -> Result<Option<i64>, StoreError> {
    let Some((doc, max)) = find_document(conn, tenant, source, path, true).await? else {
        return Ok(None);
    };
    sqlx::query("DELETE FROM knowledge_chunks WHERE document_id = $1")
        .bind(doc.id.as_str())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM knowledge_documents WHERE id = $1")
        .bind(doc.id.as_str())
        .execute(&mut *conn)
        .await?;
    let refs = [format!("{}:{max}", doc.id)];
    Ok(Some(
        log_all(conn, tenant, "document", &refs, millis(Utc::now())).await?,
    ))
}

pub(crate) async fn get_passages(
    conn: &mut PgConnection,
    tenant: &TenantId,
    chunks: &[(DocumentId, i64)],
) -> Result<Vec<Passage>, StoreError> {
    let docs: Vec<&str> = chunks.iter().map(|(d, _)| d.as_str()).collect();
    let ordinals: Vec<i64> = chunks.iter().map(|(_, o)| *o).collect();
    let q = sqlx::query(
        "SELECT s.name, d.id, d.path, c.ordinal, c.text, c.location, c.citation
         FROM UNNEST($2::text[], $3::bigint[]) AS k(doc, ordinal)
         JOIN knowledge_chunks c ON c.document_id = k.doc AND c.ordinal = k.ordinal
         JOIN knowledge_documents d ON d.id = c.document_id
         JOIN knowledge_sources s ON s.id = d.source_id
         WHERE c.tenant_id = $1 AND d.tenant_id = $1",
    )
    .bind(tenant.as_str())
    .bind(docs)
    .bind(ordinals);
    rows::collect(conn, q, |row| {
        let source: String = row.try_get(0)?;
        let path: String = row.try_get(2)?;
        let location: String = row.try_get(5)?;
        let cite: String = row.try_get(6)?;
        Ok(Passage {
            citation: format!("{source}:{path} ({cite})"),
            source,
            document_id: DocumentId::from_stored(row.try_get(1)?),
            path,
            ordinal: row.try_get(3)?,
            text: row.try_get(4)?,
            location: json(&location)?,
        })
    })
    .await
}

// --- the index feed ---

async fn document_rows(
    conn: &mut PgConnection,
    docs: Vec<(String, String, String, i64)>,
) -> Result<Vec<DocumentRows>, StoreError> {
    let mut out = Vec::with_capacity(docs.len());
    for (tenant, id, source, max_chunks) in docs {
        let chunks = sqlx::query(
            "SELECT ordinal, text, embedding, embedding_model FROM knowledge_chunks WHERE document_id = $1 ORDER BY ordinal",
        )
        .bind(&id)
        .fetch_all(&mut *conn)
        .await?;
        let tenant = TenantId::from_stored(tenant);
        let mut rows = Vec::with_capacity(chunks.len());
        for row in &chunks {
            let ordinal: i64 = row.try_get(0)?;
            let vector: Option<Vec<u8>> = row.try_get(2)?;
            let model: Option<String> = row.try_get(3)?;
            let embedding = stored_embedding(vector, model)?;
            rows.push(IndexRow {
                tenant: tenant.clone(),
                id: format!("{id}:{ordinal}"),
                scope: source.clone(),
                text: row.try_get(1)?,
                embedding,
            });
        }
        out.push(DocumentRows {
            tenant,
            document_id: id,
            max_chunks,
            rows,
        });
    }
    Ok(out)
}

pub(crate) async fn document_index_rows(
    conn: &mut PgConnection,
    ids: &[String],
) -> Result<Vec<DocumentRows>, StoreError> {
    let docs: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT tenant_id, id, source_id, max_chunks FROM knowledge_documents WHERE id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    document_rows(conn, docs).await
}

pub(crate) async fn scan_document_index_rows(
    conn: &mut PgConnection,
    after: &str,
    limit: i64,
) -> Result<Vec<DocumentRows>, StoreError> {
    let docs: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT tenant_id, id, source_id, max_chunks FROM knowledge_documents WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(rows::limit(limit))
    .fetch_all(&mut *conn)
    .await?;
    document_rows(conn, docs).await
}

pub(crate) async fn unembedded_chunks(
    conn: &mut PgConnection,
    model: &str,
    limit: i64,
) -> Result<Vec<UnembeddedRow>, StoreError> {
    let q = sqlx::query(
        "SELECT tenant_id, document_id || ':' || ordinal, version, text FROM knowledge_chunks
         WHERE embedding_model IS NULL OR embedding_model <> $1 LIMIT $2",
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

pub(crate) async fn set_chunk_embeddings(
    conn: &mut PgConnection,
    updates: &[EmbeddingUpdate],
) -> Result<usize, StoreError> {
    let mut stored = 0;
    let mut touched: BTreeMap<TenantId, Vec<String>> = BTreeMap::new();
    for update in updates {
        let Some((doc, ordinal)) = split_chunk_id(&update.id) else {
            continue;
        };
        let changed = sqlx::query(
            "UPDATE knowledge_chunks SET embedding = $5, embedding_model = $6
             WHERE tenant_id = $1 AND document_id = $2 AND ordinal = $3 AND version = $4",
        )
        .bind(update.tenant.as_str())
        .bind(doc)
        .bind(ordinal)
        .bind(update.version)
        .bind(encode_vector(&update.embedding.vector))
        .bind(&update.embedding.model)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if changed > 0 {
            stored += 1;
            let docs = touched.entry(update.tenant.clone()).or_default();
            if !docs.iter().any(|d| d == doc) {
                docs.push(doc.to_owned());
            }
        }
    }
    for (tenant, docs) in touched {
        let refs: Vec<String> = sqlx::query_scalar(
            "SELECT id || ':' || max_chunks FROM knowledge_documents WHERE id = ANY($1) ORDER BY id",
        )
        .bind(&docs)
        .fetch_all(&mut *conn)
        .await?;
        log_all(conn, &tenant, "document", &refs, millis(Utc::now())).await?;
    }
    Ok(stored)
}
