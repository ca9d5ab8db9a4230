//! [`RecordStore`] and [`IndexFeed`] for [`PgStore`].

use super::{jobs, knowledge, records, sessions, PgStore};
use crate::*;
use async_trait::async_trait;
use roster_core::knowledge::{DocumentError, KnowledgeDocument, KnowledgeSource, Passage};
use roster_core::record::{MemoryRecord, MemoryRecordVersion};
use roster_core::{DocumentId, MemoryId, SourceId};

#[async_trait]
impl RecordStore for PgStore {
    async fn write_memories(
        &self,
        tenant: &TenantId,
        writes: Vec<MemoryWrite>,
    ) -> StoreResult<MemoryWritten> {
        let mut tx = self.begin().await?;
        let out = records::write_memories(&mut tx, tenant, &writes).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn get_memory(
        &self,
        tenant: &TenantId,
        id: &MemoryId,
    ) -> StoreResult<Option<MemoryRecord>> {
        let mut c = self.conn().await?;
        records::get_memory(&mut c, tenant, id).await
    }

    async fn get_memories(
        &self,
        tenant: &TenantId,
        ids: &[MemoryId],
    ) -> StoreResult<Vec<MemoryRecord>> {
        let mut c = self.conn().await?;
        records::get_memories(&mut c, tenant, ids).await
    }

    async fn list_memories(
        &self,
        tenant: &TenantId,
        query: &MemoryQuery,
    ) -> StoreResult<Vec<MemoryRecord>> {
        let mut c = self.conn().await?;
        records::list_memories(&mut c, tenant, query).await
    }

    async fn memory_history(
        &self,
        tenant: &TenantId,
        id: &MemoryId,
    ) -> StoreResult<Vec<MemoryRecordVersion>> {
        let mut c = self.conn().await?;
        records::memory_history(&mut c, tenant, id).await
    }
}

#[async_trait]
impl IndexFeed for PgStore {
    fn native_vectors(&self) -> Option<String> {
        self.pgvector.as_ref().map(|v| format!("pgvector {v}"))
    }

    async fn prepare_native_vectors(&self, model: &str, dims: usize) -> StoreResult<()> {
        self.prepare_vector_index(model, dims).await
    }

    async fn nearest(&self, query: &NearestQuery<'_>) -> StoreResult<Vec<(String, f32)>> {
        self.nearest_vectors(query).await
    }

    async fn search_log_after(&self, after: i64, limit: i64) -> StoreResult<Vec<SearchLogEntry>> {
        let mut c = self.conn().await?;
        records::search_log_after(&mut c, after, limit).await
    }

    async fn search_log_head(&self) -> StoreResult<i64> {
        let mut c = self.conn().await?;
        records::search_log_head(&mut c).await
    }

    async fn memory_index_rows(&self, ids: &[String]) -> StoreResult<Vec<IndexRow>> {
        let mut c = self.conn().await?;
        records::memory_index_rows(&mut c, ids).await
    }

    async fn scan_memory_index_rows(&self, after: &str, limit: i64) -> StoreResult<Vec<IndexRow>> {
        let mut c = self.conn().await?;
        records::scan_memory_index_rows(&mut c, after, limit).await
    }

    async fn document_index_rows(&self, ids: &[String]) -> StoreResult<Vec<DocumentRows>> {
        let mut c = self.conn().await?;
        knowledge::document_index_rows(&mut c, ids).await
    }

    async fn scan_document_index_rows(
        &self,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<DocumentRows>> {
        let mut c = self.conn().await?;
        knowledge::scan_document_index_rows(&mut c, after, limit).await
    }

    async fn unembedded(
        &self,
        kind: RowKind,
        model: &str,
        limit: i64,
    ) -> StoreResult<Vec<UnembeddedRow>> {
        let mut c = self.conn().await?;
        match kind {
            RowKind::Memory => records::unembedded_memories(&mut c, model, limit).await,
            RowKind::Chunk => knowledge::unembedded_chunks(&mut c, model, limit).await,
        }
    }

    async fn set_embeddings(
        &self,
        kind: RowKind,
        updates: Vec<EmbeddingUpdate>,
    ) -> StoreResult<usize> {
        let mut tx = self.begin().await?;
        let n = match kind {
            RowKind::Memory => records::set_memory_embeddings(&mut tx, &updates).await?,
            RowKind::Chunk => knowledge::set_chunk_embeddings(&mut tx, &updates).await?,
        };
        tx.commit().await?;
        Ok(n)
    }
}

#[async_trait]
impl KnowledgeStore for PgStore {
    async fn create_source(
        &self,
        tenant: &TenantId,
        name: &str,
        description: &str,
    ) -> StoreResult<KnowledgeSource> {
        let mut c = self.conn().await?;
        knowledge::create_source(&mut c, tenant, name, description).await
    }

    async fn list_sources(&self, tenant: &TenantId) -> StoreResult<Vec<KnowledgeSource>> {
        let mut c = self.conn().await?;
        knowledge::list_sources(&mut c, tenant).await
    }

    async fn get_source(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> StoreResult<Option<KnowledgeSource>> {
        let mut c = self.conn().await?;
        knowledge::get_source(&mut c, tenant, name).await
    }

    async fn delete_source(&self, tenant: &TenantId, source: &SourceId) -> StoreResult<i64> {
        let mut tx = self.begin().await?;
        let log_id = knowledge::delete_source(&mut tx, tenant, source).await?;
        tx.commit().await?;
        Ok(log_id)
    }

    async fn list_documents(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<KnowledgeDocument>> {
        let mut c = self.conn().await?;
        knowledge::list_documents(&mut c, tenant, source, after, limit).await
    }

    async fn get_document(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        path: &str,
    ) -> StoreResult<Option<KnowledgeDocument>> {
        let mut c = self.conn().await?;
        knowledge::get_document(&mut c, tenant, source, path).await
    }

    async fn put_document(
        &self,
        tenant: &TenantId,
        version: NewDocumentVersion,
    ) -> StoreResult<DocumentPut> {
        let mut tx = self.begin().await?;
        let put = knowledge::put_document(&mut tx, tenant, &version).await?;
        tx.commit().await?;
        Ok(put)
    }

    async fn fail_document(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        path: &str,
        error: DocumentError,
    ) -> StoreResult<KnowledgeDocument> {
        let mut tx = self.begin().await?;
        let doc = knowledge::fail_document(&mut tx, tenant, source, path, &error).await?;
        tx.commit().await?;
        Ok(doc)
    }

    async fn delete_document(
        &self,
        tenant: &TenantId,
        source: &SourceId,
        path: &str,
    ) -> StoreResult<Option<i64>> {
        let mut tx = self.begin().await?;
        let log_id = knowledge::delete_document(&mut tx, tenant, source, path).await?;
        tx.commit().await?;
        Ok(log_id)
    }

    async fn get_passages(
        &self,
        tenant: &TenantId,
        chunks: &[(DocumentId, i64)],
    ) -> StoreResult<Vec<Passage>> {
        let mut c = self.conn().await?;
        knowledge::get_passages(&mut c, tenant, chunks).await
    }
}

#[async_trait]
impl ContextStore for PgStore {
    async fn latest_summary(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Option<SessionSummary>> {
        let mut c = self.conn().await?;
        sessions::latest_summary(&mut c, tenant, session).await
    }

    async fn items_by_seq(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        seqs: &[i64],
    ) -> StoreResult<Vec<Item>> {
        let mut c = self.conn().await?;
        sessions::items_by_seq(&mut c, tenant, session, seqs).await
    }
}

#[async_trait]
impl JobStore for PgStore {
    async fn queued_memory_jobs(&self, limit: i64) -> StoreResult<Vec<MemoryJob>> {
        let mut c = self.conn().await?;
        jobs::queued(&mut c, limit).await
    }

    async fn memory_jobs_for_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> StoreResult<Vec<MemoryJob>> {
        let mut c = self.conn().await?;
        jobs::for_run(&mut c, tenant, run).await
    }

    async fn record_job_output(
        &self,
        tenant: &TenantId,
        job: &str,
        output: serde_json::Value,
        ledger: Vec<roster_core::ledger::NewLedgerEntry>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        jobs::record_output(&mut tx, tenant, job, &output, &ledger).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn fail_job_attempt(
        &self,
        tenant: &TenantId,
        job: &str,
        error: &str,
        give_up: bool,
        ledger: Vec<roster_core::ledger::NewLedgerEntry>,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        jobs::fail_attempt(&mut tx, tenant, job, error, give_up, &ledger).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn finish_memory_job(
        &self,
        tenant: &TenantId,
        job: &str,
        writes: Vec<MemoryWrite>,
    ) -> StoreResult<MemoryWritten> {
        let mut tx = self.begin().await?;
        let written = jobs::finish(&mut tx, tenant, job, &writes).await?;
        tx.commit().await?;
        Ok(written)
    }
}

#[async_trait]
impl IntegrationStore for PgStore {
    async fn create_integration(
        &self,
        tenant: &TenantId,
        new: NewIntegration,
        audit: NewAuditEvent,
    ) -> StoreResult<Integration> {
        let mut tx = self.begin().await?;
        let created = super::integrations::create(&mut tx, tenant, &new).await?;
        super::governance::append(&mut tx, tenant, &[audit]).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn list_integrations(
        &self,
        tenant: &TenantId,
        kind: &str,
    ) -> StoreResult<Vec<Integration>> {
        let mut c = self.conn().await?;
        super::integrations::list(&mut c, tenant, kind).await
    }

    async fn get_integration(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
    ) -> StoreResult<Option<Integration>> {
        let mut c = self.conn().await?;
        super::integrations::get(&mut c, tenant, kind, name).await
    }

    async fn delete_integration(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let deleted = super::integrations::delete(&mut tx, tenant, kind, name).await?;
        if deleted {
            super::governance::append(&mut tx, tenant, &[audit]).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }
}
