//! Human approvals of tool calls. A run whose call a policy sends for
//! approval journals the request with its move to `awaiting_approval`;
//! deciding the last pending request of a run moves it back to `running`,
//! in the same transaction, with an audit event.

use crate::{NewAuditEvent, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::{RunId, SessionId, TenantId};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Approval {
    pub id: String,
    pub run_id: RunId,
    pub session_id: SessionId,
    pub step: i64,
    pub call_id: String,
    pub agent: String,
    pub tool: String,
    pub arguments: serde_json::Value,
    /// Why it needs approval: the policy's annotation.
    pub reason: String,
    pub policies: Vec<String>,
    /// The actor chain of the call.
    pub actor: String,
    /// `pending`, `approved`, `denied`, `expired` or `cancelled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
}

/// An approval request, journaled with the run's pause.
#[derive(Clone, Debug, PartialEq)]
pub struct NewApproval {
    pub id: String,
    pub step: i64,
    pub call_id: String,
    pub agent: String,
    pub tool: String,
    pub arguments: serde_json::Value,
    pub reason: String,
    pub policies: Vec<String>,
    pub actor: String,
    pub expires_at: DateTime<Utc>,
}

/// What a human decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalDecision {
    Approve,
    Deny,
}

impl ApprovalDecision {
    pub fn status(self) -> &'static str {
        match self {
            ApprovalDecision::Approve => "approved",
            ApprovalDecision::Deny => "denied",
        }
    }
}

pub fn approval_id() -> String {
    format!("apr_{}", uuid::Uuid::now_v7().simple())
}

#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Newest first; `status` `None` is every status.
    async fn list_approvals(
        &self,
        tenant: &TenantId,
        status: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Approval>>;
    async fn get_approval(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Approval>>;
    async fn approval_for_call(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
    ) -> StoreResult<Option<Approval>>;
    /// A pending approval of a waiting run becomes `decision`; the run goes
    /// back to `running` once none of its approvals is pending. `Conflict`
    /// when it is not pending or its run is not waiting; `NotFound` when the
    /// tenant has no such approval.
    async fn decide_approval(
        &self,
        tenant: &TenantId,
        id: &str,
        decision: ApprovalDecision,
        by: &str,
        note: Option<&str>,
        audit: NewAuditEvent,
    ) -> StoreResult<Approval>;
    /// Pending approvals past their expiry become `expired` (each with an
    /// audit event by `system`), their runs going back to `running`; a
    /// system sweep across tenants.
    async fn expire_approvals(&self, now: DateTime<Utc>) -> StoreResult<Vec<(TenantId, Approval)>>;
    /// A waiting run being cancelled: its pending approvals become
    /// `cancelled` and it goes back to `running` so the runner can end it.
    async fn cancel_approvals(&self, tenant: &TenantId, run: &RunId) -> StoreResult<usize>;
}
