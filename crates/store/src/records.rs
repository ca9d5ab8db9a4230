//! Long-term memory records in the store, and the feed the derived search
//! index follows.
//!
//! [`RecordStore`] is the tenant-scoped API (every method takes the tenant).
//! [`IndexFeed`] is the system principal's view, across tenants, used only by
//! the search indexer and the embedding backfill: the index is derived data
//! that must see every tenant's rows, and it filters by tenant at query time.

use crate::{StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::record::{MemoryRecord, MemoryRecordVersion, Provenance};
use roster_core::{MemoryId, RunId, TenantId};

/// One change to a memory record, with who makes it.
#[derive(Clone, Debug)]
pub struct MemoryWrite {
    pub op: MemoryOp,
    /// `key:…`, `agent:…` or `system:…`: recorded in the record's history.
    pub principal: String,
    pub run_id: Option<RunId>,
}

/// An embedding to store beside a record: the embedder's id and the vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    pub model: String,
    pub vector: Vec<f32>,
}

#[derive(Clone, Debug)]
pub enum MemoryOp {
    /// Creates a record. With a `key` that already names a record in the
    /// namespace, updates that one instead (a new version).
    Create {
        id: MemoryId,
        namespace: String,
        kind: String,
        key: Option<String>,
        content: String,
        metadata: serde_json::Value,
        source: Option<Provenance>,
        expires_at: Option<DateTime<Utc>>,
        embedding: Option<Embedding>,
    },
    /// Changes what is given; `expected_version` guards against lost updates.
    Update {
        id: MemoryId,
        expected_version: Option<i64>,
        content: Option<String>,
        metadata: Option<serde_json::Value>,
        /// `Some(None)` clears the expiry.
        expires_at: Option<Option<DateTime<Utc>>>,
        source: Option<Provenance>,
        /// Must accompany a content change when an embedder is in use;
        /// without it the record waits for the embedding backfill.
        embedding: Option<Embedding>,
    },
    /// Removes the record; its history keeps a `delete` version.
    Delete {
        id: MemoryId,
        expected_version: Option<i64>,
    },
}

/// What a batch of memory writes left behind.
#[derive(Clone, Debug, Default)]
pub struct MemoryWritten {
    /// Each record after its write (for a delete: its last state).
    pub records: Vec<MemoryRecord>,
    /// The search log position that covers these writes (0 if none).
    pub log_id: i64,
}

#[derive(Clone, Debug, Default)]
pub struct MemoryQuery {
    pub namespace: Option<String>,
    pub kind: Option<String>,
    /// Records with `id > after`, ascending.
    pub after: Option<MemoryId>,
    pub limit: i64,
    pub include_expired: bool,
    /// Newest first (by id), ignoring `after`.
    pub newest_first: bool,
    /// Leave out `users/NAME` namespaces (and paths under them) except
    /// those of these users (`None`: every namespace), for a key that may
    /// act for only some users.
    pub visible_users: Option<Vec<String>>,
}

#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Applies the writes atomically, in order, with one search log entry
    /// per record touched.
    async fn write_memories(
        &self,
        tenant: &TenantId,
        writes: Vec<MemoryWrite>,
    ) -> StoreResult<MemoryWritten>;
    async fn get_memory(
        &self,
        tenant: &TenantId,
        id: &MemoryId,
    ) -> StoreResult<Option<MemoryRecord>>;
    /// The records that exist among `ids`, in no particular order.
    async fn get_memories(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> StoreResult<Vec<MemoryRecord>>;
    async fn list_memories(
        &self,
        tenant: &TenantId,
        query: &MemoryQuery,
    ) -> StoreResult<Vec<MemoryRecord>>;
    /// Every version, oldest first; empty when the record never existed.
    async fn memory_history(
        &self,
        tenant: &TenantId,
        id: &MemoryId,
    ) -> StoreResult<Vec<MemoryRecordVersion>>;
}

/// What context assembly and `conversation_search` read besides the tail.
#[async_trait]
pub trait ContextStore: Send + Sync {
    /// The newest version of the session's running summary.
    async fn latest_summary(
        &self,
        tenant: &TenantId,
        session: &roster_core::SessionId,
    ) -> StoreResult<Option<crate::SessionSummary>>;
    /// The session's items among `seqs`, ascending.
    async fn items_by_seq(
        &self,
        tenant: &TenantId,
        session: &roster_core::SessionId,
        seqs: &[i64],
    ) -> StoreResult<Vec<roster_core::item::Item>>;
}

/// A change the index must apply: read the row named by `kind` + `reference`
/// and index it, or remove it if it is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchLogEntry {
    pub id: i64,
    pub tenant: TenantId,
    /// `memory`.
    pub kind: String,
    pub reference: String,
}

/// A searchable row as the index needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexRow {
    pub tenant: TenantId,
    /// The record's id.
    pub id: String,
    /// The partition inside the tenant (a record's namespace).
    pub scope: String,
    pub text: String,
    pub embedding: Option<Embedding>,
}

/// The two kinds of searchable rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// A memory record; its id is the record's id.
    Memory,
    /// A knowledge chunk; its id is `document_id:ordinal`.
    Chunk,
}

/// A document's chunks as the index needs them. `max_chunks` is the most
/// chunks any version had, so ordinals from `rows.len()` up to it are
/// removed from the index.
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentRows {
    pub tenant: TenantId,
    pub document_id: String,
    pub max_chunks: i64,
    pub rows: Vec<IndexRow>,
}

/// A row still waiting for its vector.
#[derive(Clone, Debug, PartialEq)]
pub struct UnembeddedRow {
    pub tenant: TenantId,
    pub id: String,
    pub version: i64,
    pub text: String,
}

/// A vector computed for one version of a row.
#[derive(Clone, Debug)]
pub struct EmbeddingUpdate {
    pub tenant: TenantId,
    pub id: String,
    /// Applied only if the row is still at this version (its text unchanged).
    pub version: i64,
    pub embedding: Embedding,
}

/// A nearest-neighbour search the database runs itself.
#[derive(Clone, Copy, Debug)]
pub struct NearestQuery<'a> {
    pub kind: RowKind,
    pub tenant: &'a TenantId,
    /// Namespaces (records) or source ids (chunks); at least one.
    pub scopes: &'a [String],
    /// Only vectors from this embedder are compared.
    pub model: &'a str,
    pub vector: &'a [f32],
    pub limit: usize,
}

#[async_trait]
pub trait IndexFeed: Send + Sync {
    /// The database's own vector search (`pgvector 0.8.2`), or `None`: the
    /// caller then searches vectors in an index of its own.
    fn native_vectors(&self) -> Option<String> {
        None
    }
    /// Readies native search for `model`'s vectors of `dims` dimensions (an
    /// ANN index over existing and future rows). Idempotent.
    async fn prepare_native_vectors(&self, _model: &str, _dims: usize) -> StoreResult<()> {
        Err(StoreError::Config(
            "this database has no vector search of its own".into(),
        ))
    }
    /// The nearest rows to `query.vector` by cosine: `(id, similarity)`,
    /// most similar first. Needs [`IndexFeed::native_vectors`].
    async fn nearest(&self, _query: &NearestQuery<'_>) -> StoreResult<Vec<(String, f32)>> {
        Err(StoreError::Config(
            "this database has no vector search of its own".into(),
        ))
    }
    /// Log entries with `id > after`, ascending, at most `limit`.
    async fn search_log_after(&self, after: i64, limit: i64) -> StoreResult<Vec<SearchLogEntry>>;
    /// The newest log id (0 when the log is empty).
    async fn search_log_head(&self) -> StoreResult<i64>;
    /// The memory records among `ids` (missing ones were deleted).
    async fn memory_index_rows(&self, ids: &[String]) -> StoreResult<Vec<IndexRow>>;
    /// Every memory record with `id > after`, ascending, for a rebuild.
    async fn scan_memory_index_rows(&self, after: &str, limit: i64) -> StoreResult<Vec<IndexRow>>;
    /// The current chunks of the documents among `ids` (a missing document
    /// was deleted).
    async fn document_index_rows(&self, ids: &[String]) -> StoreResult<Vec<DocumentRows>>;
    /// Every document with `id > after`, ascending, with its chunks.
    async fn scan_document_index_rows(
        &self,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<DocumentRows>>;
    /// Rows without a vector from `model`.
    async fn unembedded(
        &self,
        kind: RowKind,
        model: &str,
        limit: i64,
    ) -> StoreResult<Vec<UnembeddedRow>>;
    /// Stores vectors (skipping rows whose version moved on) and logs each
    /// stored one for the index. Returns how many were stored.
    async fn set_embeddings(
        &self,
        kind: RowKind,
        updates: Vec<EmbeddingUpdate>,
    ) -> StoreResult<usize>;
}

/// A chunk's row id, `document_id:ordinal`, split.
pub fn split_chunk_id(id: &str) -> Option<(&str, i64)> {
    let (doc, ordinal) = id.rsplit_once(':')?;
    Some((doc, ordinal.parse().ok()?))
}

/// A stored vector and its model, if the row has both.
pub fn stored_embedding(
    vector: Option<Vec<u8>>,
    model: Option<String>,
) -> Result<Option<Embedding>, crate::StoreError> {
    match (vector, model) {
        (Some(bytes), Some(model)) => Ok(Some(Embedding {
            model,
            vector: decode_vector(&bytes).ok_or_else(|| {
                crate::StoreError::Corrupt("a stored vector has a torn length".into())
            })?,
        })),
        _ => Ok(None),
    }
}

/// Vectors are stored as little-endian `f32` bytes in both backends.
pub fn encode_vector(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode_vector(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip() {
        let v = vec![0.25_f32, -1.5, 3.0e-7];
        assert_eq!(decode_vector(&encode_vector(&v)), Some(v));
        assert_eq!(decode_vector(&[1, 2, 3]), None);
    }
}
