//! Knowledge in the memory service: ingesting one document (parse, chunk,
//! embed, store its version whole) and hybrid search over sources with
//! citations.

use crate::indexer::{CHUNK_KEY_PREFIX, SOURCE_SCOPE_PREFIX};
use crate::search::{SearchMode, MAX_LIMIT};
use crate::{MemoryError, MemoryService};
use roster_core::knowledge::{DocumentError, KnowledgeDocument, KnowledgeSource, Passage};
use roster_core::{DocumentId, TenantId};
use roster_index::Query;
use roster_ingest::{ChunkOptions, IngestError};
use roster_store::{DocumentPut, Embedding, NewChunk, NewDocumentVersion};
use serde::Serialize;
use std::collections::HashMap;

/// What became of an uploaded document.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IngestOutcome {
    /// `stored` (a new version), `unchanged` (same bytes as the current one).
    pub status: &'static str,
    pub document: KnowledgeDocument,
    /// Chunks embedded now (the rest are embedded by the backfill).
    pub embedded: usize,
}

#[derive(Clone, Debug)]
pub struct KnowledgeRequest {
    pub sources: Vec<KnowledgeSource>,
    pub query: String,
    pub limit: usize,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PassageHit {
    #[serde(flatten)]
    pub passage: Passage,
    pub score: f32,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct KnowledgeResults {
    pub mode: SearchMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    pub data: Vec<PassageHit>,
}

/// An ingest that failed for this document alone.
#[derive(Debug, thiserror::Error)]
pub enum IngestFailure {
    /// The bytes cannot become chunks (garbled, empty, unsupported, ...):
    /// recorded on the document, which keeps any earlier version.
    #[error("{0}")]
    Document(#[from] IngestError),
    #[error(transparent)]
    Service(#[from] MemoryError),
}

impl MemoryService {
    /// Parses, chunks and embeds `bytes` and stores them as the document's
    /// new version in one transaction; searchable when this returns.
    pub async fn ingest(
        &self,
        tenant: &TenantId,
        source: &KnowledgeSource,
        path: &str,
        content_type: Option<&str>,
        bytes: Vec<u8>,
        options: ChunkOptions,
    ) -> Result<IngestOutcome, IngestFailure> {
        let (owned_path, owned_type) = (path.to_owned(), content_type.map(str::to_owned));
        let byte_count = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let parsed = tokio::task::spawn_blocking(move || {
            roster_ingest::parse(&owned_path, owned_type.as_deref(), &bytes, &options)
        })
        .await
        .map_err(|e| MemoryError::Internal(format!("parse task failed: {e}")))?;
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(e) => {
                self.store
                    .fail_document(
                        tenant,
                        &source.id,
                        path,
                        DocumentError {
                            code: e.code().to_owned(),
                            message: e.to_string(),
                        },
                    )
                    .await
                    .map_err(MemoryError::from)?;
                return Err(e.into());
            }
        };
        // Same bytes as the stored version: nothing to embed or write.
        if let Some(existing) = self
            .store
            .get_document(tenant, &source.id, path)
            .await
            .map_err(MemoryError::from)?
        {
            if existing.version > 0
                && existing.content_hash.as_deref() == Some(parsed.content_hash.as_str())
            {
                let put = self
                    .store
                    .put_document(
                        tenant,
                        version_of(source, path, byte_count, &parsed, Vec::new()),
                    )
                    .await
                    .map_err(MemoryError::from)?;
                if let DocumentPut::Unchanged(document) = put {
                    return Ok(IngestOutcome {
                        status: "unchanged",
                        document,
                        embedded: 0,
                    });
                }
            }
        }
        let texts: Vec<String> = parsed.chunks.iter().map(|c| c.text.clone()).collect();
        let vectors = self.embed_all(&texts).await;
        let embedded = vectors.iter().filter(|v| v.is_some()).count();
        let put = self
            .store
            .put_document(
                tenant,
                version_of(source, path, byte_count, &parsed, vectors),
            )
            .await
            .map_err(MemoryError::from)?;
        match put {
            DocumentPut::Stored { document, log_id } => {
                self.wait_indexed(log_id).await;
                Ok(IngestOutcome {
                    status: "stored",
                    document,
                    embedded,
                })
            }
            DocumentPut::Unchanged(document) => Ok(IngestOutcome {
                status: "unchanged",
                document,
                embedded: 0,
            }),
        }
    }

    /// Vectors for `texts` in batches; where the embedder fails, `None`
    /// (the backfill retries those later).
    async fn embed_all(&self, texts: &[String]) -> Vec<Option<Embedding>> {
        let Some(embedder) = &self.embedder else {
            return vec![None; texts.len()];
        };
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(embedder.max_batch().max(1)) {
            match embedder.embed(batch).await {
                Ok(vectors) if vectors.len() == batch.len() => {
                    out.extend(vectors.into_iter().map(|vector| {
                        Some(Embedding {
                            model: embedder.id().to_owned(),
                            vector,
                        })
                    }));
                }
                Ok(_) | Err(_) => {
                    tracing::warn!("embedding a document's chunks failed; the backfill will retry");
                    out.extend(std::iter::repeat_n(None, batch.len()));
                }
            }
        }
        out
    }

    pub async fn search_knowledge(
        &self,
        tenant: &TenantId,
        request: &KnowledgeRequest,
    ) -> Result<KnowledgeResults, MemoryError> {
        crate::search::check_query(&request.query)?;
        if request.sources.is_empty() {
            return Err(MemoryError::Invalid(
                "name at least one knowledge source".into(),
            ));
        }
        let limit = request.limit.clamp(1, MAX_LIMIT);
        let (vector, mode, notice) = self.query_vector(&request.query).await;
        let query = Query {
            tenant: tenant.to_string(),
            scopes: request
                .sources
                .iter()
                .map(|s| format!("{SOURCE_SCOPE_PREFIX}{}", s.id))
                .collect(),
            text: request.query.clone(),
            vector,
            limit: limit * 2,
            candidates: (limit * 4).max(40),
        };
        // The index part runs on the calling thread, as in `search.rs`.
        let source_ids: Vec<String> = request.sources.iter().map(|s| s.id.to_string()).collect();
        let hits = self
            .hybrid(roster_store::RowKind::Chunk, tenant, &query, &source_ids)
            .await?;
        let keys: Vec<(DocumentId, i64)> = hits.iter().filter_map(|h| chunk_key(&h.key)).collect();
        let mut passages: HashMap<(DocumentId, i64), Passage> = self
            .store
            .get_passages(tenant, &keys)
            .await?
            .into_iter()
            .map(|p| ((p.document_id.clone(), p.ordinal), p))
            .collect();
        let data = hits
            .iter()
            .filter_map(|hit| {
                let passage = passages.remove(&chunk_key(&hit.key)?)?;
                Some(PassageHit {
                    passage,
                    score: hit.score,
                })
            })
            .take(limit)
            .collect();
        Ok(KnowledgeResults { mode, notice, data })
    }
}

fn version_of(
    source: &KnowledgeSource,
    path: &str,
    bytes: i64,
    parsed: &roster_ingest::ParsedDocument,
    vectors: Vec<Option<Embedding>>,
) -> NewDocumentVersion {
    let mut vectors = vectors.into_iter();
    NewDocumentVersion {
        source_id: source.id.clone(),
        path: path.to_owned(),
        kind: parsed.kind.as_str().to_owned(),
        content_hash: parsed.content_hash.clone(),
        bytes,
        chars: i64::try_from(parsed.text_chars).unwrap_or(i64::MAX),
        chunks: parsed
            .chunks
            .iter()
            .map(|c| NewChunk {
                text: c.text.clone(),
                location: serde_json::to_value(&c.location).unwrap_or_default(),
                citation: flat_citation(&c.location.cite()),
                embedding: vectors.next().flatten(),
            })
            .collect(),
    }
}

/// `lines 3-9 (§ Leave)` as `lines 3-9, § Leave`: the citation is shown
/// inside parentheses itself.
fn flat_citation(cite: &str) -> String {
    match cite.split_once(" (§ ") {
        Some((place, heading)) => format!(
            "{place}, § {}",
            heading.strip_suffix(')').unwrap_or(heading)
        ),
        None => cite.to_owned(),
    }
}

/// `c:document:ordinal` back to its parts.
fn chunk_key(key: &str) -> Option<(DocumentId, i64)> {
    let rest = key.strip_prefix(CHUNK_KEY_PREFIX)?;
    let (doc, ordinal) = roster_store::split_chunk_id(rest)?;
    Some((DocumentId::parse(doc)?, ordinal))
}

#[cfg(test)]
mod tests {
    #[test]
    fn citations_do_not_nest_parentheses() {
        assert_eq!(
            super::flat_citation("lines 3-9 (§ Leave > Parental leave)"),
            "lines 3-9, § Leave > Parental leave"
        );
        assert_eq!(super::flat_citation("page 2"), "page 2");
    }
}
