//! Knowledge chunks: the writes that replace or remove them, each with its
//! search log entry, and reading them back as cited passages.
//!
//! A document's new version replaces its chunks whole, in one transaction
//! with a search log entry, so the derived index moves from one complete
//! version to the next and search never sees half of one.
//!
//! On PostgreSQL with pgvector, `knowledge_chunks.embedding_vec` is a stored
//! generated column (see `postgres/vectors.rs`), so writing `embedding`
//! here keeps the in-database vector index in step.

use super::knowledge::{find_document, lock_source};
use super::records::log_all;
use super::rows::json;
use super::Conn;
use crate::StoreError;
use chrono::Utc;
use roster_core::knowledge::Passage;
use roster_core::{DocumentId, SourceId, TenantId};
use roster_store::encode_vector;
use roster_store::millis;
use roster_store::{DocumentPut, NewDocumentVersion};
use std::fmt::Write as _;

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) async fn delete_source(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    source: &SourceId,
) -> Result<i64> {
    lock_source(c, tenant, source).await?;
    let refs = c
        .all(
            crate::sql!(
                "SELECT id, max_chunks FROM knowledge_documents WHERE tenant_id = $1 AND source_id = $2 ORDER BY id"
            ),
            crate::args![tenant, source],
            |row| Ok(format!("{}:{}", row.get::<String>(0)?, row.get::<i64>(1)?)),
        )
        .await?;
    c.exec(
        crate::sql!(
            "DELETE FROM knowledge_chunks WHERE document_id IN
               (SELECT id FROM knowledge_documents WHERE tenant_id = $1 AND source_id = $2)"
        ),
        crate::args![tenant, source],
    )
    .await?;
    c.exec(
        crate::sql!("DELETE FROM knowledge_documents WHERE tenant_id = $1 AND source_id = $2"),
        crate::args![tenant, source],
    )
    .await?;
    c.exec(
        crate::sql!("DELETE FROM knowledge_sources WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, source],
    )
    .await?;
    log_all(c, tenant, "document", &refs, millis(Utc::now())).await
}

pub(crate) async fn put_document(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    new: &NewDocumentVersion,
) -> Result<DocumentPut> {
    lock_source(c, tenant, &new.source_id).await?;
    let now = millis(Utc::now());
    let existing = find_document(c, tenant, &new.source_id, &new.path, true).await?;
    if let Some((doc, _)) = &existing {
        if doc.content_hash.as_deref() == Some(new.content_hash.as_str()) && doc.version > 0 {
            if doc.error.is_some() {
                c.exec(
                    crate::sql!("UPDATE knowledge_documents SET error_code = NULL, error_message = NULL WHERE id = $1"),
                    crate::args![&doc.id],
                )
                .await?;
            }
            let mut doc = doc.clone();
            doc.error = None;
            return Ok(DocumentPut::Unchanged(doc));
        }
    }
    let count = i64::try_from(new.chunks.len()).unwrap_or(i64::MAX);
    let (id, version, max) = match &existing {
        Some((doc, max)) => {
            c.exec(
                crate::sql!("DELETE FROM knowledge_chunks WHERE document_id = $1"),
                crate::args![&doc.id],
            )
            .await?;
            let max = (*max).max(count);
            c.exec(
                crate::sql!(
                    "UPDATE knowledge_documents SET kind = $2, content_hash = $3, bytes = $4, chars = $5, version = version + 1,
                         chunks = $6, max_chunks = $7, error_code = NULL, error_message = NULL, updated_at = $8 WHERE id = $1"
                ),
                crate::args![&doc.id, &new.kind, &new.content_hash, new.bytes, new.chars, count, max, now],
            )
            .await?;
            (doc.id.clone(), doc.version + 1, max)
        }
        None => {
            let id = DocumentId::generate();
            c.exec(
                crate::sql!(
                    "INSERT INTO knowledge_documents (id, tenant_id, source_id, path, kind, content_hash, bytes, chars, version, chunks, max_chunks, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10, $10)"
                ),
                crate::args![&id, tenant, &new.source_id, &new.path, &new.kind, &new.content_hash, new.bytes, new.chars, count, now],
            )
            .await?;
            (id, 1, count)
        }
    };
    insert_chunks(c, tenant, &id, version, new).await?;
    let log_id = log_all(c, tenant, "document", &[format!("{id}:{max}")], now).await?;
    let document = find_document(c, tenant, &new.source_id, &new.path, false)
        .await?
        .map(|(d, _)| d)
        .ok_or_else(|| StoreError::NotFound("document".into()))?;
    Ok(DocumentPut::Stored { document, log_id })
}

/// Writes a version's chunks, numbered from 0 in order.
async fn insert_chunks(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    document: &DocumentId,
    version: i64,
    new: &NewDocumentVersion,
) -> Result<()> {
    let locations: Vec<String> = new
        .chunks
        .iter()
        .map(|chunk| serde_json::to_string(&chunk.location))
        .collect::<std::result::Result<_, _>>()?;
    if !c.is_postgres() {
        // No round trips on SQLite: one cached statement per chunk is fast.
        for (ordinal, (chunk, location)) in new.chunks.iter().zip(&locations).enumerate() {
            let vector = chunk.embedding.as_ref().map(|e| encode_vector(&e.vector));
            let model = chunk.embedding.as_ref().map(|e| e.model.as_str());
            c.exec(
                crate::sql!(
                    "INSERT INTO knowledge_chunks (document_id, ordinal, tenant_id, version, text, location, citation, embedding, embedding_model)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ),
                crate::args![
                    document,
                    i64::try_from(ordinal).unwrap_or(i64::MAX),
                    tenant,
                    version,
                    &chunk.text,
                    location,
                    &chunk.citation,
                    vector.as_deref(),
                    model
                ],
            )
            .await?;
        }
        return Ok(());
    }
    // One statement for the whole version, columns passed as arrays: a round
    // trip per chunk would make a large document slow to store. Arrays of
    // text carry no NULLs, so vectors travel as hex with a flag for "none".
    // Chunks carry their source on PostgreSQL, for pgvector's filtered scan.
    let mut texts = Vec::with_capacity(new.chunks.len());
    let mut citations = Vec::with_capacity(new.chunks.len());
    let mut vectors = Vec::with_capacity(new.chunks.len());
    let mut models = Vec::with_capacity(new.chunks.len());
    let mut embedded = Vec::with_capacity(new.chunks.len());
    for chunk in &new.chunks {
        texts.push(chunk.text.clone());
        citations.push(chunk.citation.clone());
        match &chunk.embedding {
            Some(e) => {
                vectors.push(hex(&encode_vector(&e.vector)));
                models.push(e.model.clone());
                embedded.push(1_i64);
            }
            None => {
                vectors.push(String::new());
                models.push(String::new());
                embedded.push(0);
            }
        }
    }
    c.exec(
        crate::sql!(
            "INSERT INTO knowledge_chunks (document_id, ordinal, tenant_id, version, text, location, citation, embedding, embedding_model, source_id)
             SELECT $1, k.n - 1, $2, $3, k.text, k.location, k.citation,
                    CASE WHEN k.embedded = 1 THEN decode(k.vector, 'hex') END,
                    CASE WHEN k.embedded = 1 THEN k.model END, $4
             FROM UNNEST($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[])
                  WITH ORDINALITY AS k(text, location, citation, vector, model, embedded, n)"
        ),
        crate::args![
            document,
            tenant,
            version,
            &new.source_id,
            &texts,
            &locations,
            &citations,
            &vectors,
            &models,
            &embedded
        ],
    )
    .await?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

pub(crate) async fn delete_document(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
) -> Result<Option<i64>> {
    let Some((doc, max)) = find_document(c, tenant, source, path, true).await? else {
        return Ok(None);
    };
    c.exec(
        crate::sql!("DELETE FROM knowledge_chunks WHERE document_id = $1"),
        crate::args![&doc.id],
    )
    .await?;
    c.exec(
        crate::sql!("DELETE FROM knowledge_documents WHERE id = $1"),
        crate::args![&doc.id],
    )
    .await?;
    let refs = [format!("{}:{max}", doc.id)];
    Ok(Some(
        log_all(c, tenant, "document", &refs, millis(Utc::now())).await?,
    ))
}

pub(crate) async fn get_passages(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    chunks: &[(DocumentId, i64)],
) -> Result<Vec<Passage>> {
    // The (document, ordinal) pairs are a table to join: two parallel
    // arrays on PostgreSQL, a JSON array of pairs on SQLite.
    let passages = if c.is_postgres() {
        let docs: Vec<String> = chunks.iter().map(|(d, _)| d.to_string()).collect();
        let ordinals: Vec<i64> = chunks.iter().map(|(_, o)| *o).collect();
        c.all(
            crate::sql!(
                "SELECT s.name, d.id, d.path, c.ordinal, c.text, c.location, c.citation
                 FROM UNNEST($2::text[], $3::bigint[]) AS k(doc, ordinal)
                 JOIN knowledge_chunks c ON c.document_id = k.doc AND c.ordinal = k.ordinal
                 JOIN knowledge_documents d ON d.id = c.document_id
                 JOIN knowledge_sources s ON s.id = d.source_id
                 WHERE c.tenant_id = $1 AND d.tenant_id = $1"
            ),
            crate::args![tenant, &docs, &ordinals],
            passage,
        )
        .await?
    } else {
        let keys: Vec<(&str, i64)> = chunks.iter().map(|(d, o)| (d.as_str(), *o)).collect();
        let keys = serde_json::to_string(&keys)?;
        c.all(
            crate::sql!(
                "SELECT s.name, d.id, d.path, c.ordinal, c.text, c.location, c.citation
                 FROM json_each($2) k
                 JOIN knowledge_chunks c ON c.document_id = json_extract(k.value, '$[0]') AND c.ordinal = json_extract(k.value, '$[1]')
                 JOIN knowledge_documents d ON d.id = c.document_id
                 JOIN knowledge_sources s ON s.id = d.source_id
                 WHERE c.tenant_id = $1 AND d.tenant_id = $1"
            ),
            crate::args![tenant, keys.as_str()],
            passage,
        )
        .await?
    };
    Ok(passages)
}

fn passage(row: &super::Row<'_>) -> Result<Passage> {
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
}
