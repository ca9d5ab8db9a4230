//! Knowledge sources, their documents and chunks in the store.
//!
//! A document's new version replaces its chunks whole, in one transaction
//! with a search log entry, so the derived index moves from one complete
//! version to the next and search never sees half of one.

use crate::records::Embedding;
use crate::StoreResult;
use async_trait::async_trait;
use roster_core::knowledge::{DocumentError, KnowledgeDocument, KnowledgeSource, Passage};
use roster_core::{DocumentId, SourceId, TenantId};

/// A chunk of a new document version.
#[derive(Clone, Debug)]
pub struct NewChunk {
    pub text: String,
    /// Where in the document (lines, pages, rows, heading), as JSON.
    pub location: serde_json::Value,
    /// The location for people: `lines 10-24`, `page 3`.
    pub citation: String,
    pub embedding: Option<Embedding>,
}

/// A document's content after a successful parse.
#[derive(Clone, Debug)]
pub struct NewDocumentVersion {
    pub source_id: SourceId,
    pub path: String,
    pub kind: String,
    pub content_hash: String,
    pub bytes: i64,
    pub chars: i64,
    pub chunks: Vec<NewChunk>,
}

#[derive(Clone, Debug)]
pub enum DocumentPut {
    /// A new version is stored; `log_id` covers it in the search log.
    Stored {
        document: KnowledgeDocument,
        log_id: i64,
    },
    /// The same bytes are already the document's current version.
    Unchanged(KnowledgeDocument),
}

#[async_trait]
pub trait KnowledgeStore: Send + Sync {
    /// `Conflict` when the tenant already has a source of that name.
    async fn create_source(
        &self,
        tenant: &TenantId,
        name: &str,
        description: &str,
    ) -> StoreResult<KnowledgeSource>;
    async fn list_sources(&self, tenant: &TenantId) -> StoreResult<Vec<KnowledgeSource>>;
    async fn get_source(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> StoreResult<Option<KnowledgeSource>>;
    /// Deletes the source with its documents and chunks; returns the search
    /// log position covering the removal (0 if it held nothing).
    async fn delete_source(&self, tenant: &TenantId, source: &SourceId) -> StoreResult<i64>;
    /// Documents with `path > after`, by path.
    async fn list_documents(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<KnowledgeDocument>>;
    async fn get_document(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        path: &str,
    ) -> StoreResult<Option<KnowledgeDocument>>;
    /// Makes `version` the document's content (creating the document if
    /// needed), replacing its chunks, and clears any recorded error.
    async fn put_document(
        &self,
        tenant: &TenantId,
        version: NewDocumentVersion,
    ) -> StoreResult<DocumentPut>;
    /// Records why an ingest failed; the current version stays searchable.
    async fn fail_document(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        path: &str,
        error: DocumentError,
    ) -> StoreResult<KnowledgeDocument>;
    /// Deletes a document and its chunks; `None` when there was none.
    async fn delete_document(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        path: &str,
    ) -> StoreResult<Option<i64>>;
    /// The chunks among `(document, ordinal)` that exist, with citations.
    async fn get_passages(
        &self,
        tenant: &TenantId,
        chunks: &[(DocumentId, i64)],
    ) -> StoreResult<Vec<Passage>>;
}
