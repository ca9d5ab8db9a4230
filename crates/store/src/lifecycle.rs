//! What users do to whole sessions and agent versions: delete a session
//! with everything it holds, move a session to its agent's current version,
//! list an agent's versions, and change an agent only if it is still at the
//! version the change was computed from (so two edits never lose one).
//!
//! Each change appends its audit event in the same transaction.

use crate::{NewAuditEvent, Session, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::agent::{Agent, AgentConfig};
use roster_core::{AgentId, SessionId, TenantId};
use serde::Serialize;

/// What deleting a session removed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeletedSession {
    pub session: Session,
    pub runs: i64,
    pub items: i64,
}

/// One stored version of an agent's configuration.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentVersion {
    pub version: i64,
    pub config: AgentConfig,
    pub created_at: DateTime<Utc>,
}

/// The search log kind that removes a deleted session's items from the
/// index; its reference is `SESSION:LAST_SEQ`.
pub const SESSION_DELETED_LOG: &str = "session_deleted";

#[async_trait]
pub trait LifecycleStore: Send + Sync {
    /// Deletes the session with its items, runs, journal, events,
    /// summaries, approvals and extraction jobs, logs the removal of its
    /// items from the search index, and appends `audit`, in one
    /// transaction. Ledger rows stay: they are the record of spend and hold
    /// no conversation. `Conflict` while the session has a run that is not
    /// finished; `NotFound` when the tenant has no such session.
    async fn delete_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        audit: NewAuditEvent,
    ) -> StoreResult<DeletedSession>;

    /// Pins the session to its agent's current version (runs already
    /// created keep theirs). Returns the session and the version it left.
    /// `NotFound` when the session, or its agent, is gone.
    async fn upgrade_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        audit: NewAuditEvent,
    ) -> StoreResult<(Session, i64)>;

    /// Every version of the agent, newest first.
    async fn list_agent_versions(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<AgentVersion>>;

    /// Stores `config` as a new version if the agent is still at `base`
    /// (`Conflict` otherwise), with an audit event `action` by `principal`.
    async fn update_agent_from(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        base: i64,
        config: AgentConfig,
        action: &str,
        principal: &str,
    ) -> StoreResult<Agent>;
}
