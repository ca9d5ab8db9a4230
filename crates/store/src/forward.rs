//! A forwarding implementation of the record, knowledge and index-feed
//! traits, for test doubles that wrap a real store.

/// Implements [`RecordStore`], [`crate::BlockStore`], [`crate::KnowledgeStore`], [`IndexFeed`] and the other store traits for a wrapper type by
/// forwarding every method to an inner `DynStore` field, for test doubles
/// that wrap a real store to inject failures elsewhere.
#[macro_export]
macro_rules! forward_record_traits {
    ($ty:ty, $field:ident) => {
        $crate::forward_record_traits!(@RecordStore $ty, $field);
        $crate::forward_record_traits!(@BlockStore $ty, $field);
        $crate::forward_record_traits!(@JobStore $ty, $field);
        $crate::forward_record_traits!(@ContextStore $ty, $field);
        $crate::forward_record_traits!(@KnowledgeStore $ty, $field);
        $crate::forward_record_traits!(@IndexFeed $ty, $field);
        $crate::forward_record_traits!(@IntegrationStore $ty, $field);
        $crate::forward_record_traits!(@GovernanceStore $ty, $field);
        $crate::forward_record_traits!(@ApprovalStore $ty, $field);
        $crate::forward_record_traits!(@BudgetStore $ty, $field);
        $crate::forward_record_traits!(@LifecycleStore $ty, $field);
    };
    (@RecordStore $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::RecordStore for $ty {
            async fn write_memories(
                &self,
                tenant: &roster_core::TenantId,
                writes: Vec<$crate::MemoryWrite>,
            ) -> $crate::StoreResult<$crate::MemoryWritten> {
                self.$field.write_memories(tenant, writes).await
            }
            async fn get_memory(
                &self,
                tenant: &roster_core::TenantId,
                id: &roster_core::MemoryId,
            ) -> $crate::StoreResult<Option<roster_core::record::MemoryRecord>> {
                self.$field.get_memory(tenant, id).await
            }
            async fn get_memories(
                &self,
                tenant: &roster_core::TenantId,
                ids: &[roster_core::MemoryId],
            ) -> $crate::StoreResult<Vec<roster_core::record::MemoryRecord>> {
                self.$field.get_memories(tenant, ids).await
            }
            async fn list_memories(
                &self,
                tenant: &roster_core::TenantId,
                query: &$crate::MemoryQuery,
            ) -> $crate::StoreResult<Vec<roster_core::record::MemoryRecord>> {
                self.$field.list_memories(tenant, query).await
            }
            async fn memory_history(
                &self,
                tenant: &roster_core::TenantId,
                id: &roster_core::MemoryId,
            ) -> $crate::StoreResult<Vec<roster_core::record::MemoryRecordVersion>> {
                self.$field.memory_history(tenant, id).await
            }
        }

    };
    (@BlockStore $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::BlockStore for $ty {
            async fn memory_blocks_of(
                &self,
                tenant: &roster_core::TenantId,
                agent: &roster_core::AgentId,
                owners: &[roster_core::blocks::BlockOwner],
            ) -> $crate::StoreResult<Vec<roster_core::memory::MemoryBlock>> {
                self.$field.memory_blocks_of(tenant, agent, owners).await
            }
            async fn block_history(
                &self,
                tenant: &roster_core::TenantId,
                agent: &roster_core::AgentId,
                owner: &roster_core::blocks::BlockOwner,
                label: &str,
            ) -> $crate::StoreResult<Vec<roster_core::memory::MemoryBlockVersion>> {
                self.$field.block_history(tenant, agent, owner, label).await
            }
            async fn set_memory_block(
                &self,
                tenant: &roster_core::TenantId,
                write: $crate::BlockWrite,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<roster_core::memory::MemoryBlock> {
                self.$field.set_memory_block(tenant, write, audit).await
            }
            async fn change_agent_blocks(
                &self,
                tenant: &roster_core::TenantId,
                agent: &roster_core::AgentId,
                change: $crate::BlockChange,
                principal: &str,
            ) -> $crate::StoreResult<roster_core::agent::Agent> {
                self.$field
                    .change_agent_blocks(tenant, agent, change, principal)
                    .await
            }
        }

    };
    (@JobStore $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::JobStore for $ty {
            async fn queued_memory_jobs(
                &self,
                limit: i64,
            ) -> $crate::StoreResult<Vec<$crate::MemoryJob>> {
                self.$field.queued_memory_jobs(limit).await
            }
            async fn memory_jobs_for_run(
                &self,
                tenant: &roster_core::TenantId,
                run: &roster_core::RunId,
            ) -> $crate::StoreResult<Vec<$crate::MemoryJob>> {
                self.$field.memory_jobs_for_run(tenant, run).await
            }
            async fn record_job_output(
                &self,
                tenant: &roster_core::TenantId,
                job: &str,
                output: serde_json::Value,
                ledger: Vec<roster_core::ledger::NewLedgerEntry>,
            ) -> $crate::StoreResult<()> {
                self.$field
                    .record_job_output(tenant, job, output, ledger)
                    .await
            }
            async fn fail_job_attempt(
                &self,
                tenant: &roster_core::TenantId,
                job: &str,
                error: &str,
                give_up: bool,
                ledger: Vec<roster_core::ledger::NewLedgerEntry>,
            ) -> $crate::StoreResult<()> {
                self.$field
                    .fail_job_attempt(tenant, job, error, give_up, ledger)
                    .await
            }
            async fn finish_memory_job(
                &self,
                tenant: &roster_core::TenantId,
                job: &str,
                writes: Vec<$crate::MemoryWrite>,
            ) -> $crate::StoreResult<$crate::MemoryWritten> {
                self.$field.finish_memory_job(tenant, job, writes).await
            }
        }

    };
    (@ContextStore $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::ContextStore for $ty {
            async fn latest_summary(
                &self,
                tenant: &roster_core::TenantId,
                session: &roster_core::SessionId,
            ) -> $crate::StoreResult<Option<$crate::SessionSummary>> {
                self.$field.latest_summary(tenant, session).await
            }
            async fn items_by_seq(
                &self,
                tenant: &roster_core::TenantId,
                session: &roster_core::SessionId,
                seqs: &[i64],
            ) -> $crate::StoreResult<Vec<roster_core::item::Item>> {
                self.$field.items_by_seq(tenant, session, seqs).await
            }
        }

    };
    (@KnowledgeStore $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::KnowledgeStore for $ty {
            async fn create_source(
                &self,
                tenant: &roster_core::TenantId,
                name: &str,
                description: &str,
            ) -> $crate::StoreResult<roster_core::knowledge::KnowledgeSource> {
                self.$field.create_source(tenant, name, description).await
            }
            async fn list_sources(
                &self,
                tenant: &roster_core::TenantId,
            ) -> $crate::StoreResult<Vec<roster_core::knowledge::KnowledgeSource>> {
                self.$field.list_sources(tenant).await
            }
            async fn get_source(
                &self,
                tenant: &roster_core::TenantId,
                name: &str,
            ) -> $crate::StoreResult<Option<roster_core::knowledge::KnowledgeSource>> {
                self.$field.get_source(tenant, name).await
            }
            async fn delete_source(
                &self,
                tenant: &roster_core::TenantId,
                source: &roster_core::SourceId,
            ) -> $crate::StoreResult<i64> {
                self.$field.delete_source(tenant, source).await
            }
            async fn list_documents(
                &self,
                tenant: &roster_core::TenantId,
                source: &roster_core::SourceId,
                after: &str,
                limit: i64,
            ) -> $crate::StoreResult<Vec<roster_core::knowledge::KnowledgeDocument>> {
                self.$field
                    .list_documents(tenant, source, after, limit)
                    .await
            }
            async fn get_document(
                &self,
                tenant: &roster_core::TenantId,
                source: &roster_core::SourceId,
                path: &str,
            ) -> $crate::StoreResult<Option<roster_core::knowledge::KnowledgeDocument>> {
                self.$field.get_document(tenant, source, path).await
            }
            async fn put_document(
                &self,
                tenant: &roster_core::TenantId,
                version: $crate::NewDocumentVersion,
            ) -> $crate::StoreResult<$crate::DocumentPut> {
                self.$field.put_document(tenant, version).await
            }
            async fn fail_document(
                &self,
                tenant: &roster_core::TenantId,
                source: &roster_core::SourceId,
                path: &str,
                error: roster_core::knowledge::DocumentError,
            ) -> $crate::StoreResult<roster_core::knowledge::KnowledgeDocument> {
                self.$field.fail_document(tenant, source, path, error).await
            }
            async fn delete_document(
                &self,
                tenant: &roster_core::TenantId,
                source: &roster_core::SourceId,
                path: &str,
            ) -> $crate::StoreResult<Option<i64>> {
                self.$field.delete_document(tenant, source, path).await
            }
            async fn get_passages(
                &self,
                tenant: &roster_core::TenantId,
                chunks: &[(roster_core::DocumentId, i64)],
            ) -> $crate::StoreResult<Vec<roster_core::knowledge::Passage>> {
                self.$field.get_passages(tenant, chunks).await
            }
        }

    };
    (@IndexFeed $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::IndexFeed for $ty {
            fn native_vectors(&self) -> Option<String> {
                self.$field.native_vectors()
            }
            async fn prepare_native_vectors(
                &self,
                model: &str,
                dims: usize,
            ) -> $crate::StoreResult<()> {
                self.$field.prepare_native_vectors(model, dims).await
            }
            async fn nearest(
                &self,
                query: &$crate::NearestQuery<'_>,
            ) -> $crate::StoreResult<Vec<(String, f32)>> {
                self.$field.nearest(query).await
            }
            async fn search_log_after(
                &self,
                after: i64,
                limit: i64,
            ) -> $crate::StoreResult<Vec<$crate::SearchLogEntry>> {
                self.$field.search_log_after(after, limit).await
            }
            async fn search_log_head(&self) -> $crate::StoreResult<i64> {
                self.$field.search_log_head().await
            }
            async fn memory_index_rows(
                &self,
                ids: &[String],
            ) -> $crate::StoreResult<Vec<$crate::IndexRow>> {
                self.$field.memory_index_rows(ids).await
            }
            async fn scan_memory_index_rows(
                &self,
                after: &str,
                limit: i64,
            ) -> $crate::StoreResult<Vec<$crate::IndexRow>> {
                self.$field.scan_memory_index_rows(after, limit).await
            }
            async fn document_index_rows(
                &self,
                ids: &[String],
            ) -> $crate::StoreResult<Vec<$crate::DocumentRows>> {
                self.$field.document_index_rows(ids).await
            }
            async fn scan_document_index_rows(
                &self,
                after: &str,
                limit: i64,
            ) -> $crate::StoreResult<Vec<$crate::DocumentRows>> {
                self.$field.scan_document_index_rows(after, limit).await
            }
            async fn unembedded(
                &self,
                kind: $crate::RowKind,
                model: &str,
                limit: i64,
            ) -> $crate::StoreResult<Vec<$crate::UnembeddedRow>> {
                self.$field.unembedded(kind, model, limit).await
            }
            async fn set_embeddings(
                &self,
                kind: $crate::RowKind,
                updates: Vec<$crate::EmbeddingUpdate>,
            ) -> $crate::StoreResult<usize> {
                self.$field.set_embeddings(kind, updates).await
            }
        }

    };
    (@IntegrationStore $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::IntegrationStore for $ty {
            async fn create_integration(
                &self,
                tenant: &roster_core::TenantId,
                new: $crate::NewIntegration,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<$crate::Integration> {
                self.$field.create_integration(tenant, new, audit).await
            }
            async fn list_integrations(
                &self,
                tenant: &roster_core::TenantId,
                kind: &str,
            ) -> $crate::StoreResult<Vec<$crate::Integration>> {
                self.$field.list_integrations(tenant, kind).await
            }
            async fn get_integration(
                &self,
                tenant: &roster_core::TenantId,
                kind: &str,
                name: &str,
            ) -> $crate::StoreResult<Option<$crate::Integration>> {
                self.$field.get_integration(tenant, kind, name).await
            }
            async fn delete_integration(
                &self,
                tenant: &roster_core::TenantId,
                kind: &str,
                name: &str,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<bool> {
                self.$field
                    .delete_integration(tenant, kind, name, audit)
                    .await
            }
        }

    };
    (@GovernanceStore $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::GovernanceStore for $ty {
            async fn create_tenant(
                &self,
                id: &roster_core::TenantId,
                name: &str,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<$crate::TenantRecord> {
                self.$field.create_tenant(id, name, audit).await
            }
            async fn list_tenants(&self) -> $crate::StoreResult<Vec<$crate::TenantRecord>> {
                self.$field.list_tenants().await
            }
            async fn get_tenant(
                &self,
                id: &roster_core::TenantId,
            ) -> $crate::StoreResult<Option<$crate::TenantRecord>> {
                self.$field.get_tenant(id).await
            }
            async fn find_tenant_by_name(
                &self,
                name: &str,
            ) -> $crate::StoreResult<Option<$crate::TenantRecord>> {
                self.$field.find_tenant_by_name(name).await
            }
            async fn create_key(
                &self,
                tenant: &roster_core::TenantId,
                key: $crate::NewKey,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<$crate::KeyInfo> {
                self.$field.create_key(tenant, key, audit).await
            }
            async fn list_keys(
                &self,
                tenant: &roster_core::TenantId,
            ) -> $crate::StoreResult<Vec<$crate::KeyInfo>> {
                self.$field.list_keys(tenant).await
            }
            async fn key_info(
                &self,
                tenant: &roster_core::TenantId,
                id: &roster_core::KeyId,
            ) -> $crate::StoreResult<Option<$crate::KeyInfo>> {
                self.$field.key_info(tenant, id).await
            }
            async fn find_key(
                &self,
                id: &roster_core::KeyId,
            ) -> $crate::StoreResult<Option<$crate::KeyInfo>> {
                self.$field.find_key(id).await
            }
            async fn key_by_hash(
                &self,
                key_hash: &str,
            ) -> $crate::StoreResult<Option<$crate::KeyInfo>> {
                self.$field.key_by_hash(key_hash).await
            }
            async fn revoke_key(
                &self,
                tenant: &roster_core::TenantId,
                id: &roster_core::KeyId,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<$crate::KeyInfo> {
                self.$field.revoke_key(tenant, id, audit).await
            }
            async fn policies(
                &self,
                tenant: &roster_core::TenantId,
            ) -> $crate::StoreResult<$crate::PolicySnapshot> {
                self.$field.policies(tenant).await
            }
            async fn policy_revision(
                &self,
                tenant: &roster_core::TenantId,
            ) -> $crate::StoreResult<i64> {
                self.$field.policy_revision(tenant).await
            }
            async fn put_policy(
                &self,
                tenant: &roster_core::TenantId,
                name: &str,
                text: &str,
                expected: i64,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<$crate::PolicyDocument> {
                self.$field
                    .put_policy(tenant, name, text, expected, audit)
                    .await
            }
            async fn delete_policy(
                &self,
                tenant: &roster_core::TenantId,
                name: &str,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<bool> {
                self.$field.delete_policy(tenant, name, audit).await
            }
            async fn append_audit(
                &self,
                tenant: &roster_core::TenantId,
                events: Vec<$crate::NewAuditEvent>,
            ) -> $crate::StoreResult<()> {
                self.$field.append_audit(tenant, events).await
            }
            async fn list_audit(
                &self,
                tenant: &roster_core::TenantId,
                query: &$crate::AuditQuery,
            ) -> $crate::StoreResult<Vec<$crate::AuditEvent>> {
                self.$field.list_audit(tenant, query).await
            }
        }

    };
    (@ApprovalStore $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::ApprovalStore for $ty {
            async fn list_approvals(
                &self,
                tenant: &roster_core::TenantId,
                status: Option<&str>,
                limit: i64,
            ) -> $crate::StoreResult<Vec<$crate::Approval>> {
                self.$field.list_approvals(tenant, status, limit).await
            }
            async fn get_approval(
                &self,
                tenant: &roster_core::TenantId,
                id: &str,
            ) -> $crate::StoreResult<Option<$crate::Approval>> {
                self.$field.get_approval(tenant, id).await
            }
            async fn approval_for_call(
                &self,
                tenant: &roster_core::TenantId,
                run: &roster_core::RunId,
                call_id: &str,
            ) -> $crate::StoreResult<Option<$crate::Approval>> {
                self.$field.approval_for_call(tenant, run, call_id).await
            }
            async fn decide_approval(
                &self,
                tenant: &roster_core::TenantId,
                id: &str,
                decision: $crate::ApprovalDecision,
                by: &str,
                note: Option<&str>,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<$crate::Approval> {
                self.$field
                    .decide_approval(tenant, id, decision, by, note, audit)
                    .await
            }
            async fn expire_approvals(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<Vec<(roster_core::TenantId, $crate::Approval)>> {
                self.$field.expire_approvals(now).await
            }
            async fn cancel_approvals(
                &self,
                tenant: &roster_core::TenantId,
                run: &roster_core::RunId,
            ) -> $crate::StoreResult<usize> {
                self.$field.cancel_approvals(tenant, run).await
            }
        }

    };
    (@BudgetStore $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::BudgetStore for $ty {
            async fn budgets(
                &self,
                tenant: &roster_core::TenantId,
            ) -> $crate::StoreResult<Vec<$crate::Budget>> {
                self.$field.budgets(tenant).await
            }
            async fn set_budget(
                &self,
                tenant: &roster_core::TenantId,
                budget: $crate::Budget,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<$crate::Budget> {
                self.$field.set_budget(tenant, budget, audit).await
            }
            async fn delete_budget(
                &self,
                tenant: &roster_core::TenantId,
                scope: &str,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<bool> {
                self.$field.delete_budget(tenant, scope, audit).await
            }
            async fn spent_since(
                &self,
                tenant: &roster_core::TenantId,
                agent: Option<&roster_core::AgentId>,
                since: chrono::DateTime<chrono::Utc>,
            ) -> $crate::StoreResult<$crate::Spent> {
                self.$field.spent_since(tenant, agent, since).await
            }
            async fn ledger_summary(
                &self,
                tenant: &roster_core::TenantId,
                query: &$crate::LedgerSummaryQuery,
            ) -> $crate::StoreResult<Vec<$crate::LedgerSum>> {
                self.$field.ledger_summary(tenant, query).await
            }
        }

    };
    (@LifecycleStore $ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::LifecycleStore for $ty {
            async fn delete_session(
                &self,
                tenant: &roster_core::TenantId,
                session: &roster_core::SessionId,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<$crate::DeletedSession> {
                self.$field.delete_session(tenant, session, audit).await
            }
            async fn upgrade_session(
                &self,
                tenant: &roster_core::TenantId,
                session: &roster_core::SessionId,
                audit: $crate::NewAuditEvent,
            ) -> $crate::StoreResult<($crate::Session, i64)> {
                self.$field.upgrade_session(tenant, session, audit).await
            }
            async fn list_agent_versions(
                &self,
                tenant: &roster_core::TenantId,
                agent: &roster_core::AgentId,
            ) -> $crate::StoreResult<Vec<$crate::AgentVersion>> {
                self.$field.list_agent_versions(tenant, agent).await
            }
            async fn update_agent_from(
                &self,
                tenant: &roster_core::TenantId,
                agent: &roster_core::AgentId,
                base: i64,
                config: roster_core::agent::AgentConfig,
                action: &str,
                principal: &str,
            ) -> $crate::StoreResult<roster_core::agent::Agent> {
                self.$field
                    .update_agent_from(tenant, agent, base, config, action, principal)
                    .await
            }
        }
    };
}
