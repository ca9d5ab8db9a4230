//! Hybrid search over memory records: BM25 and vector similarity fused in
//! the index, then hydrated from the store, which has the last word (a hit
//! the store no longer holds, or one that expired, is dropped).

use crate::indexer::{CHUNK_KEY_PREFIX, MEMORY_KEY_PREFIX, NAMESPACE_SCOPE_PREFIX};
use crate::{MemoryError, MemoryService, VectorSearch};
use chrono::Utc;
use roster_core::record::{validate_namespace, MemoryRecord};
use roster_core::{MemoryId, TenantId};
use roster_index::{fuse, Hit, Query, MAX_RESULTS};
use roster_store::{NearestQuery, RowKind};
use serde::Serialize;
use std::collections::HashMap;

pub const MAX_LIMIT: usize = 100;
pub const MAX_QUERY_BYTES: usize = 10_000;

#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// Namespaces to search (at least one).
    pub namespaces: Vec<String>,
    pub query: String,
    pub limit: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Full-text and vector similarity, fused.
    Hybrid,
    /// Full-text only: no embedder is configured, or it failed for this query.
    FullText,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MemoryHit {
    pub record: MemoryRecord,
    /// Fused relevance (higher is better); comparable within one answer only.
    pub score: f32,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    pub mode: SearchMode,
    /// Why the search was not hybrid, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    pub data: Vec<MemoryHit>,
}

/// A query must have words and stay within [`MAX_QUERY_BYTES`].
pub(crate) fn check_query(query: &str) -> Result<(), MemoryError> {
    if query.trim().is_empty() {
        return Err(MemoryError::Invalid("query must not be empty".into()));
    }
    if query.len() > MAX_QUERY_BYTES {
        return Err(MemoryError::Invalid(format!(
            "query is longer than {MAX_QUERY_BYTES} bytes"
        )));
    }
    Ok(())
}

impl MemoryService {
    /// The query's vector, or why there is none (search is then full-text).
    pub(crate) async fn query_vector(
        &self,
        query: &str,
    ) -> (Option<Vec<f32>>, SearchMode, Option<String>) {
        let Some(embedder) = &self.embedder else {
            return (
                None,
                SearchMode::FullText,
                Some("no embedder is configured: full-text search only".to_owned()),
            );
        };
        match embedder.embed(&[query.to_owned()]).await {
            Ok(mut vectors) if vectors.len() == 1 => {
                (Some(vectors.swap_remove(0)), SearchMode::Hybrid, None)
            }
            Ok(_) => (
                None,
                SearchMode::FullText,
                Some("the embedder returned no vector: full-text search only".to_owned()),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "query embedding failed; searching full-text only");
                (
                    None,
                    SearchMode::FullText,
                    Some(format!(
                        "the embedder failed ({}): full-text search only",
                        e.code()
                    )),
                )
            }
        }
    }

    /// Full-text and vector candidates fused by rank. `scopes` are the
    /// query's scopes as the store names them (namespaces, source ids).
    pub(crate) async fn hybrid(
        &self,
        kind: RowKind,
        tenant: &TenantId,
        query: &Query,
        scopes: &[String],
    ) -> Result<Vec<Hit>, MemoryError> {
        let index = self.index();
        let (VectorSearch::Database(_), Some(vector), Some(model)) =
            (&self.vectors, &query.vector, self.embedder_id())
        else {
            return Ok(index.search(query)?);
        };
        // The same depths the local index uses for its two lists.
        let depth = query.candidates.max(query.limit).min(MAX_RESULTS);
        let text = index.text_search(&Query {
            limit: depth,
            vector: None,
            ..query.clone()
        })?;
        let prefix = match kind {
            RowKind::Memory => MEMORY_KEY_PREFIX,
            RowKind::Chunk => CHUNK_KEY_PREFIX,
        };
        let near = self
            .store
            .nearest(&NearestQuery {
                kind,
                tenant,
                scopes,
                model,
                vector,
                limit: depth,
            })
            .await?;
        let near: Vec<Hit> = near
            .into_iter()
            .map(|(id, similarity)| Hit {
                key: format!("{prefix}{id}"),
                score: similarity,
                text_rank: None,
                vector_rank: None,
                scope: String::new(),
            })
            .collect();
        Ok(fuse(&text, &near, query.limit.min(MAX_RESULTS)))
    }

    pub async fn search(
        &self,
        tenant: &TenantId,
        request: &SearchRequest,
    ) -> Result<SearchResults, MemoryError> {
        check_query(&request.query)?;
        if request.namespaces.is_empty() {
            return Err(MemoryError::Invalid("name at least one namespace".into()));
        }
        for namespace in &request.namespaces {
            validate_namespace(namespace).map_err(|e| MemoryError::Invalid(e.to_string()))?;
        }
        let limit = request.limit.clamp(1, MAX_LIMIT);
        let (vector, mode, notice) = self.query_vector(&request.query).await;
        // Ask for more than needed: some hits may have expired or be gone.
        let query = Query {
            tenant: tenant.to_string(),
            scopes: request
                .namespaces
                .iter()
                .map(|n| format!("{NAMESPACE_SCOPE_PREFIX}{n}"))
                .collect(),
            text: request.query.clone(),
            vector,
            limit: limit * 2,
            candidates: (limit * 4).max(40),
        };
        // On the calling thread: a search reads a bounded number of postings
        // and vectors from memory (well under a millisecond at 10,000
        // records), and a hop to the blocking pool cost more than that in
        // `roster bench --memories` (the same finding as the SQLite reads).
        let hits = self
            .hybrid(RowKind::Memory, tenant, &query, &request.namespaces)
            .await?;
        let ids: Vec<MemoryId> = hits
            .iter()
            .filter_map(|h| h.key.strip_prefix(MEMORY_KEY_PREFIX))
            .filter_map(MemoryId::parse)
            .collect();
        let mut records: HashMap<MemoryId, MemoryRecord> = self
            .store
            .get_memories(tenant, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let now = Utc::now();
        let data = hits
            .iter()
            .filter_map(|hit| {
                let id = MemoryId::parse(hit.key.strip_prefix(MEMORY_KEY_PREFIX)?)?;
                let record = records.remove(&id)?;
                // The store's namespace is the truth (the index may lag a move).
                let wanted = request.namespaces.contains(&record.namespace);
                (wanted && !record.is_expired(now)).then_some(MemoryHit {
                    record,
                    score: hit.score,
                })
            })
            .take(limit)
            .collect();
        Ok(SearchResults { mode, notice, data })
    }
}
