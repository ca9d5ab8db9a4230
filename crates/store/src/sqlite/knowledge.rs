//! Knowledge sources, documents and chunks on SQLite, and their side of the
//! index feed.

use super::records::log;
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
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::BTreeMap;

const SOURCE_COLUMNS: &str = "s.id, s.name, s.description, s.created_at, s.updated_at,
    (SELECT COUNT(*) FROM knowledge_documents d WHERE d.source_id = s.id),
    (SELECT COALESCE(SUM(chunks), 0) FROM knowledge_documents d WHERE d.source_id = s.id)";

fn source(row: &Row<'_>) -> Result<KnowledgeSource, StoreError> {
    Ok(KnowledgeSource {
        id: SourceId::from_stored(row.get(0)?),
        name: row.get(1)?,
        description: row.get(2)?,
        created_at: from_millis(row.get(3)?),
        updated_at: from_millis(row.get(4)?),
        documents: row.get(5)?,
        chunks: row.get(6)?,
    })
}

const DOCUMENT_COLUMNS: &str = "id, source_id, path, kind, content_hash, bytes, chars, version, chunks, error_code, error_message, created_at, updated_at, max_chunks";

fn document(row: &Row<'_>) -> Result<KnowledgeDocument, StoreError> {
    let code: Option<String> = row.get(9)?;
    let message: Option<String> = row.get(10)?;
    Ok(KnowledgeDocument {
        id: DocumentId::from_stored(row.get(0)?),
        source_id: SourceId::from_stored(row.get(1)?),
        path: row.get(2)?,
        kind: row.get(3)?,
        content_hash: row.get(4)?,
        bytes: row.get(5)?,
        chars: row.get(6)?,
        version: row.get(7)?,
        chunks: row.get(8)?,
        error: code.map(|code| DocumentError {
            code,
            message: message.unwrap_or_default(),
        }),
        created_at: from_millis(row.get(11)?),
        updated_at: from_millis(row.get(12)?),
    })
}

pub(crate) fn create_source(
    conn: &Connection,
    tenant: &TenantId,
    name: &str,
    description: &str,
) -> Result<KnowledgeSource, StoreError> {
    let now = millis(Utc::now());
    let id = SourceId::generate();
    rows::exec(
        conn,
        "INSERT INTO knowledge_sources (id, tenant_id, name, description, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![id.as_str(), tenant.as_str(), name, description, now],
    )
    .map_err(|e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => {
            StoreError::Conflict(format!("a knowledge source named `{name}` already exists"))
        }
        _ => StoreError::from(e),
    })?;
    get_source(conn, tenant, name)?.ok_or_else(|| StoreError::NotFound("source".into()))
}

pub(crate) fn list_sources(
    conn: &Connection,
    tenant: &TenantId,
) -> Result<Vec<KnowledgeSource>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SOURCE_COLUMNS} FROM knowledge_sources s WHERE s.tenant_id = ?1 ORDER BY s.name"
    ))?;
    rows::collect(&mut stmt, params![tenant.as_str()], source)
}

pub(crate) fn get_source(
    conn: &Connection,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<KnowledgeSource>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SOURCE_COLUMNS} FROM knowledge_sources s WHERE s.tenant_id = ?1 AND s.name = ?2"
    ))?;
    rows::first(&mut stmt, params![tenant.as_str(), name], source)
}

fn find_document(
    conn: &Connection,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
) -> Result<Option<(KnowledgeDocument, i64)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents WHERE tenant_id = ?1 AND source_id = ?2 AND path = ?3"
    ))?;
    rows::first(
        &mut stmt,
        params![tenant.as_str(), source.as_str(), path],
        |row| Ok((document(row)?, row.get::<_, i64>(13)?)),
    )
}

fn check_source(conn: &Connection, tenant: &TenantId, source: &SourceId) -> Result<(), StoreError> {
    let found: Option<i64> = rows::row(
        conn,
        "SELECT 1 FROM knowledge_sources WHERE tenant_id = ?1 AND id = ?2",
        params![tenant.as_str(), source.as_str()],
        |r| r.get(0),
    )
    .optional()?;
    found
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound("knowledge source".into()))
}

pub(crate) fn delete_source(
    conn: &Connection,
    tenant: &TenantId,
    source: &SourceId,
) -> Result<i64, StoreError> {
    check_source(conn, tenant, source)?;
    let now = millis(Utc::now());
    let mut stmt = conn.prepare_cached(
        "SELECT id, max_chunks FROM knowledge_documents WHERE tenant_id = ?1 AND source_id = ?2",
    )?;
    let docs = rows::collect(&mut stmt, params![tenant.as_str(), source.as_str()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut log_id = 0;
    for (id, max) in docs {
        rows::exec(
            conn,
            "DELETE FROM knowledge_chunks WHERE document_id = ?1",
            params![id],
        )?;
        log_id = log(conn, tenant, "document", &format!("{id}:{max}"), now)?;
    }
    rows::exec(
        conn,
        "DELETE FROM knowledge_documents WHERE tenant_id = ?1 AND source_id = ?2",
        params![tenant.as_str(), source.as_str()],
    )?;
    rows::exec(
        conn,
        "DELETE FROM knowledge_sources WHERE tenant_id = ?1 AND id = ?2",
        params![tenant.as_str(), source.as_str()],
    )?;
    Ok(log_id)
}

pub(crate) fn list_documents(
    conn: &Connection,
    tenant: &TenantId,
    source: &SourceId,
    after: &str,
    limit: i64,
) -> Result<Vec<KnowledgeDocument>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents WHERE tenant_id = ?1 AND source_id = ?2 AND path > ?3 ORDER BY path LIMIT ?4"
    ))?;
    rows::collect(
        &mut stmt,
        params![tenant.as_str(), source.as_str(), after, limit],
        document,
    )
}

pub(crate) fn get_document(
    conn: &Connection,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
) -> Result<Option<KnowledgeDocument>, StoreError> {
    Ok(find_document(conn, tenant, source, path)?.map(|(d, _)| d))
}

pub(crate) fn put_document(
    conn: &Connection,
    tenant: &TenantId,
    new: &NewDocumentVersion,
) -> Result<DocumentPut, StoreError> {
    check_source(conn, tenant, &new.source_id)?;
    let now = millis(Utc::now());
    let existing = find_document(conn, tenant, &new.source_id, &new.path)?;
    if let Some((doc, _)) = &existing {
        if doc.content_hash.as_deref() == Some(new.content_hash.as_str()) && doc.version > 0 {
            if doc.error.is_some() {
                rows::exec(
                    conn,
                    "UPDATE knowledge_documents SET error_code = NULL, error_message = NULL WHERE id = ?1",
                    params![doc.id.as_str()],
                )?;
            }
            let mut doc = doc.clone();
            doc.error = None;
            return Ok(DocumentPut::Unchanged(doc));
        }
    }
    let count = i64::try_from(new.chunks.len()).unwrap_or(i64::MAX);
    let (id, version, max) = match &existing {
        Some((doc, max)) => {
            rows::exec(
                conn,
                "DELETE FROM knowledge_chunks WHERE document_id = ?1",
                params![doc.id.as_str()],
            )?;
            let max = (*max).max(count);
            rows::exec(
                conn,
                "UPDATE knowledge_documents SET kind = ?2, content_hash = ?3, bytes = ?4, chars = ?5, version = version + 1,
                     chunks = ?6, max_chunks = ?7, error_code = NULL, error_message = NULL, updated_at = ?8 WHERE id = ?1",
                params![doc.id.as_str(), new.kind, new.content_hash, new.bytes, new.chars, count, max, now],
            )?;
            (doc.id.clone(), doc.version + 1, max)
        }
        None => {
            let id = DocumentId::generate();
            rows::exec(
                conn,
                "INSERT INTO knowledge_documents (id, tenant_id, source_id, path, kind, content_hash, bytes, chars, version, chunks, max_chunks, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9, ?10, ?10)",
                params![id.as_str(), tenant.as_str(), new.source_id.as_str(), new.path, new.kind, new.content_hash, new.bytes, new.chars, count, now],
            )?;
            (id, 1, count)
        }
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO knowledge_chunks (document_id, ordinal, tenant_id, version, text, location, citation, embedding, embedding_model)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (ordinal, chunk) in new.chunks.iter().enumerate() {
        let (vector, model) = match &chunk.embedding {
            Some(e) => (Some(encode_vector(&e.vector)), Some(e.model.as_str())),
            None => (None, None),
        };
        insert.execute(params![
            id.as_str(),
            i64::try_from(ordinal).unwrap_or(i64::MAX),
            tenant.as_str(),
            version,
            chunk.text,
            serde_json::to_string(&chunk.location)?,
            chunk.citation,
            vector,
            model
        ])?;
    }
    let log_id = log(conn, tenant, "document", &format!("{id}:{max}"), now)?;
    let document = find_document(conn, tenant, &new.source_id, &new.path)?
        .map(|(d, _)| d)
        .ok_or_else(|| StoreError::NotFound("document".into()))?;
    Ok(DocumentPut::Stored { document, log_id })
}

pub(crate) fn fail_document(
    conn: &Connection,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
    error: &DocumentError,
) -> Result<KnowledgeDocument, StoreError> {
    check_source(conn, tenant, source)?;
    let now = millis(Utc::now());
    match find_document(conn, tenant, source, path)? {
        Some((doc, _)) => {
            rows::exec(
                conn,
                "UPDATE knowledge_documents SET error_code = ?2, error_message = ?3, updated_at = ?4 WHERE id = ?1",
                params![doc.id.as_str(), error.code, error.message, now],
            )?;
        }
        None => {
            rows::exec(
                conn,
                "INSERT INTO knowledge_documents (id, tenant_id, source_id, path, bytes, chars, version, chunks, max_chunks, error_code, error_message, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 0, 0, 0, 0, 0, ?5, ?6, ?7, ?7)",
                params![DocumentId::generate().as_str(), tenant.as_str(), source.as_str(), path, error.code, error.message, now],
            )?;
        }
    }
    get_document(conn, tenant, source, path)?.ok_or_else(|| StoreError::NotFound("document".into()))
}

pub(crate) fn delete_document(
    conn: &Connection,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
) -> Result<Option<i64>, StoreError> {
    let Some((doc, max)) = find_document(conn, tenant, source, path)? else {
        return Ok(None);
    };
    rows::exec(
        conn,
        "DELETE FROM knowledge_chunks WHERE document_id = ?1",
        params![doc.id.as_str()],
    )?;
    rows::exec(
        conn,
        "DELETE FROM knowledge_documents WHERE id = ?1",
        params![doc.id.as_str()],
    )?;
    let now = millis(Utc::now());
    Ok(Some(log(
        conn,
        tenant,
        "document",
        &format!("{}:{max}", doc.id),
        now,
    )?))
}

pub(crate) fn get_passages(
    conn: &Connection,
    tenant: &TenantId,
    chunks: &[(DocumentId, i64)],
) -> Result<Vec<Passage>, StoreError> {
    let keys: Vec<(String, i64)> = chunks.iter().map(|(d, o)| (d.to_string(), *o)).collect();
    let mut stmt = conn.prepare_cached(
        "SELECT s.name, d.id, d.path, c.ordinal, c.text, c.location, c.citation
         FROM json_each(?2) k
         JOIN knowledge_chunks c ON c.document_id = json_extract(k.value, '$[0]') AND c.ordinal = json_extract(k.value, '$[1]')
         JOIN knowledge_documents d ON d.id = c.document_id
         JOIN knowledge_sources s ON s.id = d.source_id
         WHERE c.tenant_id = ?1 AND d.tenant_id = ?1",
    )?;
    rows::collect(
        &mut stmt,
        params![tenant.as_str(), serde_json::to_string(&keys)?],
        |row| {
            let source: String = row.get(0)?;
            let path: String = row.get(2)?;
            let location: String = row.get(5)?;
            let cite: String = row.get(6)?;
            Ok(Passage {
                citation: format!("{source}:{path} ({cite})"),
                source,
                document_id: DocumentId::from_stored(row.get(1)?),
                path,
                ordinal: row.get(3)?,
                text: row.get(4)?,
                location: json(&location)?,
            })
        },
    )
}

// --- the index feed ---

fn document_rows(
    conn: &Connection,
    docs: Vec<(TenantId, String, String, i64)>,
) -> Result<Vec<DocumentRows>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT ordinal, text, embedding, embedding_model FROM knowledge_chunks WHERE document_id = ?1 ORDER BY ordinal",
    )?;
    let mut out = Vec::with_capacity(docs.len());
    for (tenant, id, source, max_chunks) in docs {
        let mut rows = Vec::new();
        let mut query = stmt.query(params![id])?;
        while let Some(row) = query.next()? {
            let ordinal: i64 = row.get(0)?;
            let vector: Option<Vec<u8>> = row.get(2)?;
            let model: Option<String> = row.get(3)?;
            let embedding = stored_embedding(vector, model)?;
            rows.push(IndexRow {
                tenant: tenant.clone(),
                id: format!("{id}:{ordinal}"),
                scope: source.clone(),
                text: row.get(1)?,
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

fn doc_header(row: &Row<'_>) -> Result<(TenantId, String, String, i64), StoreError> {
    Ok((
        TenantId::from_stored(row.get(0)?),
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
    ))
}

pub(crate) fn document_index_rows(
    conn: &Connection,
    ids: &[String],
) -> Result<Vec<DocumentRows>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT tenant_id, id, source_id, max_chunks FROM knowledge_documents WHERE id IN (SELECT value FROM json_each(?1))",
    )?;
    let docs = rows::collect(&mut stmt, params![serde_json::to_string(ids)?], doc_header)?;
    document_rows(conn, docs)
}

pub(crate) fn scan_document_index_rows(
    conn: &Connection,
    after: &str,
    limit: i64,
) -> Result<Vec<DocumentRows>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT tenant_id, id, source_id, max_chunks FROM knowledge_documents WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let docs = rows::collect(&mut stmt, params![after, limit], doc_header)?;
    document_rows(conn, docs)
}

pub(crate) fn unembedded_chunks(
    conn: &Connection,
    model: &str,
    limit: i64,
) -> Result<Vec<UnembeddedRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT tenant_id, id, version, text FROM (
             SELECT * FROM (SELECT tenant_id, document_id || ':' || ordinal AS id, version, text FROM knowledge_chunks WHERE embedding_model IS NULL LIMIT ?2)
             UNION ALL
             SELECT * FROM (SELECT tenant_id, document_id || ':' || ordinal AS id, version, text FROM knowledge_chunks WHERE embedding_model < ?1 LIMIT ?2)
             UNION ALL
             SELECT * FROM (SELECT tenant_id, document_id || ':' || ordinal AS id, version, text FROM knowledge_chunks WHERE embedding_model > ?1 LIMIT ?2)
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

pub(crate) fn set_chunk_embeddings(
    conn: &Connection,
    updates: &[EmbeddingUpdate],
) -> Result<usize, StoreError> {
    let now = millis(Utc::now());
    let mut stored = 0;
    let mut touched: BTreeMap<String, TenantId> = BTreeMap::new();
    for update in updates {
        let Some((doc, ordinal)) = split_chunk_id(&update.id) else {
            continue;
        };
        let changed = rows::exec(
            conn,
            "UPDATE knowledge_chunks SET embedding = ?5, embedding_model = ?6
             WHERE tenant_id = ?1 AND document_id = ?2 AND ordinal = ?3 AND version = ?4",
            params![
                update.tenant.as_str(),
                doc,
                ordinal,
                update.version,
                encode_vector(&update.embedding.vector),
                update.embedding.model
            ],
        )?;
        if changed > 0 {
            stored += 1;
            touched.insert(doc.to_owned(), update.tenant.clone());
        }
    }
    for (doc, tenant) in touched {
        let max: Option<i64> = rows::row(
            conn,
            "SELECT max_chunks FROM knowledge_documents WHERE id = ?1",
            params![doc],
            |r| r.get(0),
        )
        .optional()?;
        if let Some(max) = max {
            log(conn, &tenant, "document", &format!("{doc}:{max}"), now)?;
        }
    }
    Ok(stored)
}
