//! Knowledge sources and their documents; the writes that replace or remove
//! chunks are in `knowledge_chunks.rs`.

use super::knowledge_chunks;
use super::{Conn, OnUnique, Row};
use crate::StoreError;
use chrono::Utc;
use roster_core::knowledge::{DocumentError, KnowledgeDocument, KnowledgeSource, Passage};
use roster_core::{DocumentId, SourceId, TenantId};
use roster_store::millis;
use roster_store::{DocumentPut, NewDocumentVersion};

type Result<T> = std::result::Result<T, StoreError>;

// SUM() is NUMERIC on PostgreSQL: cast it back to the BIGINT the row holds.
const SOURCE_COLUMNS: &str = "s.id, s.name, s.description, s.created_at, s.updated_at,
    CAST((SELECT COUNT(*) FROM knowledge_documents d WHERE d.source_id = s.id) AS BIGINT),
    CAST((SELECT COALESCE(SUM(chunks), 0) FROM knowledge_documents d WHERE d.source_id = s.id) AS BIGINT)";

fn source(row: &Row<'_>) -> Result<KnowledgeSource> {
    Ok(KnowledgeSource {
        id: SourceId::from_stored(row.get(0)?),
        name: row.get(1)?,
        description: row.get(2)?,
        created_at: row.time(3)?,
        updated_at: row.time(4)?,
        documents: row.get(5)?,
        chunks: row.get(6)?,
    })
}

const DOCUMENT_COLUMNS: &str = "id, source_id, path, kind, content_hash, bytes, chars, version, chunks, error_code, error_message, created_at, updated_at, max_chunks";

fn document(row: &Row<'_>) -> Result<KnowledgeDocument> {
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
        created_at: row.time(11)?,
        updated_at: row.time(12)?,
    })
}

/// A document with the most chunks any of its versions had.
fn document_with_max(row: &Row<'_>) -> Result<(KnowledgeDocument, i64)> {
    Ok((document(row)?, row.get(13)?))
}

pub(crate) async fn create_source(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    name: &str,
    description: &str,
) -> Result<KnowledgeSource> {
    let now = millis(Utc::now());
    let id = SourceId::generate();
    c.exec(
        crate::sql!(
            "INSERT INTO knowledge_sources (id, tenant_id, name, description, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)"
        ),
        crate::args![&id, tenant, name, description, now],
    )
    .await
    .on_unique(|| StoreError::Conflict(format!("a knowledge source named `{name}` already exists")))?;
    get_source(c, tenant, name)
        .await?
        .ok_or_else(|| StoreError::NotFound("source".into()))
}

pub(crate) async fn get_source(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    name: &str,
) -> Result<Option<KnowledgeSource>> {
    Ok(c.opt(
        crate::sql!("SELECT {SOURCE_COLUMNS} FROM knowledge_sources s WHERE s.tenant_id = $1 AND s.name = $2"),
        crate::args![tenant, name],
        source,
    )
    .await?)
}

/// The document at `path`, row-locked on PostgreSQL when `lock` (a write
/// follows), with its most chunks ever.
pub(super) async fn find_document(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
    lock: bool,
) -> Result<Option<(KnowledgeDocument, i64)>> {
    let args = crate::args![tenant, source, path];
    let found = if lock {
        c.opt(
            crate::sql!("SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents WHERE tenant_id = $1 AND source_id = $2 AND path = $3 FOR UPDATE"),
            args,
            document_with_max,
        )
        .await?
    } else {
        c.opt(
            crate::sql!("SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents WHERE tenant_id = $1 AND source_id = $2 AND path = $3"),
            args,
            document_with_max,
        )
        .await?
    };
    Ok(found)
}

/// Locks the source row, so a document write and the source's deletion
/// take turns.
pub(super) async fn lock_source(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    source: &SourceId,
) -> Result<()> {
    c.opt(
        crate::sql!("SELECT 1 FROM knowledge_sources WHERE tenant_id = $1 AND id = $2 FOR UPDATE"),
        crate::args![tenant, source],
        |_| Ok(()),
    )
    .await?
    .ok_or_else(|| StoreError::NotFound("knowledge source".into()))
}

pub(crate) async fn get_document(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
) -> Result<Option<KnowledgeDocument>> {
    Ok(find_document(c, tenant, source, path, false)
        .await?
        .map(|(d, _)| d))
}

pub(crate) async fn fail_document(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    source: &SourceId,
    path: &str,
    error: &DocumentError,
) -> Result<KnowledgeDocument> {
    lock_source(c, tenant, source).await?;
    let now = millis(Utc::now());
    match find_document(c, tenant, source, path, true).await? {
        Some((doc, _)) => {
            c.exec(
                crate::sql!(
                    "UPDATE knowledge_documents SET error_code = $2, error_message = $3, updated_at = $4 WHERE id = $1"
                ),
                crate::args![&doc.id, &error.code, &error.message, now],
            )
            .await?;
        }
        None => {
            let id = DocumentId::generate();
            c.exec(
                crate::sql!(
                    "INSERT INTO knowledge_documents (id, tenant_id, source_id, path, bytes, chars, version, chunks, max_chunks, error_code, error_message, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, 0, 0, 0, 0, 0, $5, $6, $7, $7)"
                ),
                crate::args![&id, tenant, source, path, &error.code, &error.message, now],
            )
            .await?;
        }
    }
    get_document(c, tenant, source, path)
        .await?
        .ok_or_else(|| StoreError::NotFound("document".into()))
}

crate::store_impl! {
    impl crate::KnowledgeStore {
        write create_source(tenant: &TenantId, name: &str, description: &str) -> KnowledgeSource = |c| create_source(c, &tenant, &name, &description).await;
        read list_sources(tenant: &TenantId) -> Vec<KnowledgeSource> = |c| c.all(
            crate::sql!("SELECT {SOURCE_COLUMNS} FROM knowledge_sources s WHERE s.tenant_id = $1 ORDER BY s.name"), crate::args![&tenant], source).await;
        read get_source(tenant: &TenantId, name: &str) -> Option<KnowledgeSource> = |c| get_source(c, &tenant, &name).await;
        write delete_source(tenant: &TenantId, source: &SourceId) -> i64 = |c| knowledge_chunks::delete_source(c, &tenant, &source).await;
        read list_documents(tenant: &TenantId, source: &SourceId, after: &str, limit: i64) -> Vec<KnowledgeDocument> = |c| c.all(
            crate::sql!("SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents
                         WHERE tenant_id = $1 AND source_id = $2 AND path > $3 ORDER BY path LIMIT $4"),
            &[(&tenant).into(), (&source).into(), after.as_str().into(), super::Arg::Limit(limit)], document).await;
        read get_document(tenant: &TenantId, source: &SourceId, path: &str) -> Option<KnowledgeDocument> = |c| get_document(c, &tenant, &source, &path).await;
        write put_document(tenant: &TenantId, version: NewDocumentVersion) -> DocumentPut = |c| knowledge_chunks::put_document(c, &tenant, &version).await;
        write fail_document(tenant: &TenantId, source: &SourceId, path: &str, error: DocumentError) -> KnowledgeDocument = |c| fail_document(c, &tenant, &source, &path, &error).await;
        write delete_document(tenant: &TenantId, source: &SourceId, path: &str) -> Option<i64> = |c| knowledge_chunks::delete_document(c, &tenant, &source, &path).await;
        read get_passages(tenant: &TenantId, chunks: &[(DocumentId, i64)]) -> Vec<Passage> = |c| knowledge_chunks::get_passages(c, &tenant, &chunks).await;
    }
}
