//! [`RecordStore`] and [`IndexFeed`] for [`SqliteStore`].

use super::{jobs, knowledge, records, sessions, SqliteStore};
use crate::*;
use async_trait::async_trait;
use roster_core::knowledge::{DocumentError, KnowledgeDocument, KnowledgeSource, Passage};
use roster_core::record::{MemoryRecord, MemoryRecordVersion};
use roster_core::{DocumentId, MemoryId, SourceId};

#[async_trait]
impl RecordStore for SqliteStore {
    async fn write_memories(
        &self,
        tenant: &TenantId,
        writes: Vec<MemoryWrite>,
    ) -> StoreResult<MemoryWritten> {
        let tenant = tenant.clone();
        self.write(move |c| records::write_memories(c, &tenant, &writes))
            .await
    }

    async fn get_memory(
        &self,
        tenant: &TenantId,
        id: &MemoryId,
    ) -> StoreResult<Option<MemoryRecord>> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.read(move |c| records::get_memory(c, &tenant, &id))
            .await
    }

    async fn get_memories(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> StoreResult<Vec<MemoryRecord>> {
        let (tenant, ids) = (tenant.clone(), ids.to_vec());
        self.read(move |c| records::get_memories(c, &tenant, &ids))
            .await
    }

    async fn list_memories(
        &self,
        tenant: &TenantId,
        query: &MemoryQuery,
    ) -> StoreResult<Vec<MemoryRecord>> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.read(move |c| records::list_memories(c, &tenant, &query))
            .await
    }

    async fn memory_history(
        &self,
        tenant: &TenantId,
        id: &MemoryId,
    ) -> StoreResult<Vec<MemoryRecordVersion>> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.read(move |c| records::memory_history(c, &tenant, &id))
            .await
    }
}

#[async_trait]
impl IndexFeed for SqliteStore {
    async fn search_log_after(&self, after: i64, limit: i64) -> StoreResult<Vec<SearchLogEntry>> {
        self.read(move |c| records::search_log_after(c, after, limit))
            .await
    }

    async fn search_log_head(&self) -> StoreResult<i64> {
        self.read(records::search_log_head).await
    }

    async fn memory_index_rows(&self, ids: &[String]) -> StoreResult<Vec<IndexRow>> {
        let ids = ids.to_vec();
        self.read(move |c| records::memory_index_rows(c, &ids))
            .await
    }

    async fn scan_memory_index_rows(&self, after: &str, limit: i64) -> StoreResult<Vec<IndexRow>> {
        let after = after.to_owned();
        self.read(move |c| records::scan_memory_index_rows(c, &after, limit))
            .await
    }

    async fn document_index_rows(&self, ids: &[String]) -> StoreResult<Vec<DocumentRows>> {
        let ids = ids.to_vec();
        self.read(move |c| knowledge::document_index_rows(c, &ids))
            .await
    }

    async fn scan_document_index_rows(
        &self,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<DocumentRows>> {
        let after = after.to_owned();
        self.read(move |c| knowledge::scan_document_index_rows(c, &after, limit))
            .await
    }

    async fn unembedded(
        &self,
        kind: RowKind,
        model: &str,
        limit: i64,
    ) -> StoreResult<Vec<UnembeddedRow>> {
        let model = model.to_owned();
        self.read(move |c| match kind {
            RowKind::Memory => records::unembedded_memories(c, &model, limit),
            RowKind::Chunk => knowledge::unembedded_chunks(c, &model, limit),
        })
        .await
    }

    async fn set_embeddings(
        &self,
        kind: RowKind,
        updates: Vec<EmbeddingUpdate>,
    ) -> StoreResult<usize> {
        self.write(move |c| match kind {
            RowKind::Memory => records::set_memory_embeddings(c, &updates),
            RowKind::Chunk => knowledge::set_chunk_embeddings(c, &updates),
        })
        .await
    }
}

#[async_trait]
impl KnowledgeStore for SqliteStore {
    async fn create_source(
        &self,
        tenant: &TenantId,
        name: &str,
        description: &str,
    ) -> StoreResult<KnowledgeSource> {
        let (tenant, name, description) = (tenant.clone(), name.to_owned(), description.to_owned());
        self.write(move |c| knowledge::create_source(c, &tenant, &name, &description))
            .await
    }

    async fn list_sources(&self, tenant: &TenantId) -> StoreResult<Vec<KnowledgeSource>> {
        let tenant = tenant.clone();
        self.read(move |c| knowledge::list_sources(c, &tenant))
            .await
    }

    async fn get_source(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> StoreResult<Option<KnowledgeSource>> {
        let (tenant, name) = (tenant.clone(), name.to_owned());
        self.read(move |c| knowledge::get_source(c, &tenant, &name))
            .await
    }

    async fn delete_source(&self, tenant: &TenantId, source: &SourceId) -> StoreResult<i64> {
        let (tenant, source) = (tenant.clone(), source.clone());
        self.write(move |c| knowledge::delete_source(c, &tenant, &source))
            .await
    }

    async fn list_documents(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<KnowledgeDocument>> {
        let (tenant, source, after) = (tenant.clone(), source.clone(), after.to_owned());
        self.read(move |c| knowledge::list_documents(c, &tenant, &source, &after, limit))
            .await
    }

    async fn get_document(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        path: &str,
    ) -> StoreResult<Option<KnowledgeDocument>> {
        let (tenant, source, path) = (tenant.clone(), source.clone(), path.to_owned());
        self.read(move |c| knowledge::get_document(c, &tenant, &source, &path))
            .await
    }

    async fn put_document(
        &self,
        tenant: &TenantId,
        version: NewDocumentVersion,
    ) -> StoreResult<DocumentPut> {
        let tenant = tenant.clone();
        self.write(move |c| knowledge::put_document(c, &tenant, &version))
            .await
    }

    async fn fail_document(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        path: &str,
        error: DocumentError,
    ) -> StoreResult<KnowledgeDocument> {
        let (tenant, source, path) = (tenant.clone(), source.clone(), path.to_owned());
        self.write(move |c| knowledge::fail_document(c, &tenant, &source, &path, &error))
            .await
    }

    async fn delete_document(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        path: &str,
    ) -> StoreResult<Option<i64>> {
        let (tenant, source, path) = (tenant.clone(), source.clone(), path.to_owned());
        self.write(move |c| knowledge::delete_document(c, &tenant, &source, &path))
            .await
    }

    async fn get_passages(
        &self,
        tenant: &TenantId,
        chunks: &[(DocumentId, i64)],
    ) -> StoreResult<Vec<Passage>> {
        let (tenant, chunks) = (tenant.clone(), chunks.to_vec());
        self.read(move |c| knowledge::get_passages(c, &tenant, &chunks))
            .await
    }
}

#[async_trait]
impl ContextStore for SqliteStore {
    async fn latest_summary(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<SessionSummary>> {
        let (tenant, session) = (tenant.clone(), session.clone());
        self.read(move |c| sessions::latest_summary(c, &tenant, &session))
            .await
    }

    async fn items_by_seq(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        seqs: &[i64],
    ) -> StoreResult<Vec<Item>> {
        let (tenant, session, seqs) = (tenant.clone(), session.clone(), seqs.to_vec());
        self.read(move |c| sessions::items_by_seq(c, &tenant, &session, &seqs))
            .await
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn queued_memory_jobs(&self, limit: i64) -> StoreResult<Vec<MemoryJob>> {
        self.read(move |c| jobs::queued(c, limit)).await
    }

    async fn memory_jobs_for_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> StoreResult<Vec<MemoryJob>> {
        let (tenant, run) = (tenant.clone(), run.clone());
        self.read(move |c| jobs::for_run(c, &tenant, &run)).await
    }

    async fn record_job_output(
        &self,
        tenant: &TenantId,
        job: &str,
        output: serde_json::Value,
        ledger: Vec<roster_core::ledger::NewLedgerEntry>,
    ) -> StoreResult<()> {
        let (tenant, job) = (tenant.clone(), job.to_owned());
        self.write(move |c| jobs::record_output(c, &tenant, &job, &output, &ledger))
            .await
    }

    async fn fail_job_attempt(
        &self,
        tenant: &TenantId,
        job: &str,
        error: &str,
        give_up: bool,
        ledger: Vec<roster_core::ledger::NewLedgerEntry>,
    ) -> StoreResult<()> {
        let (tenant, job, error) = (tenant.clone(), job.to_owned(), error.to_owned());
        self.write(move |c| jobs::fail_attempt(c, &tenant, &job, &error, give_up, &ledger))
            .await
    }

    async fn finish_memory_job(
        &self,
        tenant: &TenantId,
        job: &str,
        writes: Vec<MemoryWrite>,
    ) -> StoreResult<MemoryWritten> {
        let (tenant, job) = (tenant.clone(), job.to_owned());
        self.write(move |c| jobs::finish(c, &tenant, &job, &writes))
            .await
    }
}

#[async_trait]
impl IntegrationStore for SqliteStore {
    async fn create_integration(
        &self,
        tenant: &TenantId,
        new: NewIntegration,
        audit: NewAuditEvent,
    ) -> StoreResult<Integration> {
        let tenant = tenant.clone();
        self.write(move |c| {
            let created = super::integrations::create(c, &tenant, &new)?;
            super::governance::append(c, &tenant, &[audit])?;
            Ok(created)
        })
        .await
    }

    async fn list_integrations(
        &self,
        tenant: &TenantId,
        kind: &str,
    ) -> StoreResult<Vec<Integration>> {
        let (tenant, kind) = (tenant.clone(), kind.to_owned());
        self.read(move |c| super::integrations::list(c, &tenant, &kind))
            .await
    }

    async fn get_integration(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
    ) -> StoreResult<Option<Integration>> {
        let (tenant, kind, name) = (tenant.clone(), kind.to_owned(), name.to_owned());
        self.read(move |c| super::integrations::get(c, &tenant, &kind, &name))
            .await
    }

    async fn delete_integration(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let (tenant, kind, name) = (tenant.clone(), kind.to_owned(), name.to_owned());
        self.write(move |c| {
            let deleted = super::integrations::delete(c, &tenant, &kind, &name)?;
            if deleted {
                super::governance::append(c, &tenant, &[audit])?;
            }
            Ok(deleted)
        })
        .await
    }
}
