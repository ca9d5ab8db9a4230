//! Memory extraction jobs in the store: created with the run that completes,
//! their model reply journaled before it is applied, applied atomically with
//! their completion.

use crate::records::{MemoryWrite, MemoryWritten};
use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::ledger::NewLedgerEntry;
use roster_core::{AgentId, RunId, SessionId, TenantId};
use serde::{Deserialize, Serialize};

/// A job to create with the run's completion: strategy `strategy` (its
/// index in the agent version's `memory.strategies`).
#[derive(Clone, Debug)]
pub struct NewMemoryJob {
    pub id: String,
    pub agent_id: AgentId,
    pub agent_version: i64,
    pub strategy: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemoryJob {
    pub id: String,
    #[serde(skip)]
    pub tenant: Option<TenantId>,
    pub agent_id: AgentId,
    pub agent_version: i64,
    pub session_id: SessionId,
    pub run_id: RunId,
    pub strategy: i64,
    /// The session items the job reads.
    pub from_seq: i64,
    pub to_seq: i64,
    /// `queued`, `completed` or `failed`.
    pub status: String,
    pub attempts: i64,
    /// The model's reply, once journaled.
    #[schema(value_type = Option<Object>)]
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait JobStore: Send + Sync {
    /// Queued jobs across tenants, oldest first: the system principal's
    /// view, for the extraction worker only.
    async fn queued_memory_jobs(&self, limit: i64) -> StoreResult<Vec<MemoryJob>>;
    async fn memory_jobs_for_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
    ) -> StoreResult<Vec<MemoryJob>>;
    /// Journals the job's model reply (and the ledger rows of its call).
    async fn record_job_output(
        &self,
        tenant: &TenantId,
        job: &str,
        output: serde_json::Value,
        ledger: Vec<NewLedgerEntry>,
    ) -> StoreResult<()>;
    /// Counts a failed attempt; with `give_up` the job ends `failed`.
    async fn fail_job_attempt(
        &self,
        tenant: &TenantId,
        job: &str,
        error: &str,
        give_up: bool,
        ledger: Vec<NewLedgerEntry>,
    ) -> StoreResult<()>;
    /// Applies the job's memory writes and completes it, atomically; a job
    /// that is no longer queued is refused with `Conflict`.
    async fn finish_memory_job(
        &self,
        tenant: &TenantId,
        job: &str,
        writes: Vec<MemoryWrite>,
    ) -> StoreResult<MemoryWritten>;
}
