//! Knowledge documents and chunks as the search index feed reads them
//! (the [`crate::IndexFeed`] impl is in `records.rs`).

use super::index_feed::unembedded_row;
use super::records::log_all;
use super::{Arg, Conn, Row};
use crate::StoreError;
use chrono::Utc;
use roster_core::TenantId;
use roster_store::millis;
use roster_store::{
    encode_vector, split_chunk_id, stored_embedding, DocumentRows, EmbeddingUpdate, IndexRow,
    UnembeddedRow,
};
use std::collections::BTreeMap;

type Result<T> = std::result::Result<T, StoreError>;

/// A document's tenant, id, source and most chunks any version had.
type Header = (TenantId, String, String, i64);

fn header(row: &Row<'_>) -> Result<Header> {
    Ok((
        TenantId::from_stored(row.get(0)?),
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
    ))
}

async fn document_rows(c: &mut Conn<'_>, docs: Vec<Header>) -> Result<Vec<DocumentRows>> {
    let mut out = Vec::with_capacity(docs.len());
    for (tenant, id, source, max_chunks) in docs {
        let rows = c
            .all(
                crate::sql!("SELECT ordinal, text, embedding, embedding_model FROM knowledge_chunks WHERE document_id = $1 ORDER BY ordinal"),
                crate::args![&id],
                |row| {
                    let ordinal: i64 = row.get(0)?;
                    Ok(IndexRow {
                        tenant: tenant.clone(),
                        id: format!("{id}:{ordinal}"),
                        scope: source.clone(),
                        text: row.get(1)?,
                        embedding: stored_embedding(row.get(2)?, row.get(3)?)?,
                    })
                },
            )
            .await?;
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
    c: &mut Conn<'_>,
    ids: &[String],
) -> Result<Vec<DocumentRows>> {
    let docs = c
        .all(
            crate::sql!("SELECT tenant_id, id, source_id, max_chunks FROM knowledge_documents WHERE id = ANY($1)"),
            crate::args![ids],
            header,
        )
        .await?;
    document_rows(c, docs).await
}

pub(crate) async fn scan_document_index_rows(
    c: &mut Conn<'_>,
    after: &str,
    limit: i64,
) -> Result<Vec<DocumentRows>> {
    let docs = c
        .all(
            crate::sql!("SELECT tenant_id, id, source_id, max_chunks FROM knowledge_documents WHERE id > $1 ORDER BY id LIMIT $2"),
            &[after.into(), Arg::Limit(limit)],
            header,
        )
        .await?;
    document_rows(c, docs).await
}

pub(crate) async fn unembedded_chunks(
    c: &mut Conn<'_>,
    model: &str,
    limit: i64,
) -> Result<Vec<UnembeddedRow>> {
    Ok(c.all(
        crate::sql_pick!(
            postgres: "SELECT tenant_id, document_id || ':' || ordinal, version, text FROM knowledge_chunks
                       WHERE embedding_model IS NULL OR embedding_model <> $1 LIMIT $2",
            // Three index ranges rather than `IS NULL OR <> ?`, which SQLite
            // would answer with a scan of every chunk.
            sqlite: "SELECT tenant_id, id, version, text FROM (
                         SELECT * FROM (SELECT tenant_id, document_id || ':' || ordinal AS id, version, text FROM knowledge_chunks WHERE embedding_model IS NULL LIMIT $2)
                         UNION ALL
                         SELECT * FROM (SELECT tenant_id, document_id || ':' || ordinal AS id, version, text FROM knowledge_chunks WHERE embedding_model < $1 LIMIT $2)
                         UNION ALL
                         SELECT * FROM (SELECT tenant_id, document_id || ':' || ordinal AS id, version, text FROM knowledge_chunks WHERE embedding_model > $1 LIMIT $2)
                     ) LIMIT $2",
        ),
        &[model.into(), Arg::Limit(limit)],
        unembedded_row,
    )
    .await?)
}

/// Stores chunk vectors and logs each touched document once, as
/// `document_id:max_chunks` (what the index reads to replace its chunks).
pub(crate) async fn set_chunk_embeddings(
    c: &mut Conn<'_>,
    updates: &[EmbeddingUpdate],
) -> Result<usize> {
    let mut stored = 0;
    let mut touched: BTreeMap<TenantId, Vec<String>> = BTreeMap::new();
    for update in updates {
        let Some((doc, ordinal)) = split_chunk_id(&update.id) else {
            continue;
        };
        let vector = encode_vector(&update.embedding.vector);
        let changed = c
            .exec(
                crate::sql!(
                    "UPDATE knowledge_chunks SET embedding = $5, embedding_model = $6
                     WHERE tenant_id = $1 AND document_id = $2 AND ordinal = $3 AND version = $4"
                ),
                crate::args![
                    &update.tenant,
                    doc,
                    ordinal,
                    update.version,
                    &vector,
                    &update.embedding.model
                ],
            )
            .await?;
        if changed > 0 {
            stored += 1;
            let docs = touched.entry(update.tenant.clone()).or_default();
            if !docs.iter().any(|d| d == doc) {
                docs.push(doc.to_owned());
            }
        }
    }
    for (tenant, docs) in touched {
        let refs = c
            .all(
                crate::sql!("SELECT id || ':' || max_chunks FROM knowledge_documents WHERE id = ANY($1) ORDER BY id"),
                crate::args![&docs],
                |row| row.get::<String>(0),
            )
            .await?;
        log_all(c, &tenant, "document", &refs, millis(Utc::now())).await?;
    }
    Ok(stored)
}
