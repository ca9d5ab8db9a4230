//! Remote A2A agents. Their registrations are integrations (kind `a2a`,
//! config and sealed credentials like every other); what is theirs alone
//! is the conversation each Roster session holds with each remote — the
//! remote's `contextId`, and a task it left waiting for the caller — kept
//! durably so a later call, after a restart too, continues it. A
//! conversation belongs to one registration (by its id): a remote removed
//! and registered again starts afresh.

use crate::{Integration, NewAuditEvent, StoreResult};
use async_trait::async_trait;
use roster_core::{SessionId, TenantId};

/// Where a session's conversation with a remote stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteContext {
    /// The remote's `contextId`.
    pub context_id: String,
    /// A task of the remote waiting for input; the next message goes to it.
    pub task_id: Option<String>,
}

#[async_trait]
pub trait RemoteStore: Send + Sync {
    /// Replaces the config of the tenant's integration `kind`/`name` (a
    /// remote's card fetched again), keeping its id, credentials and
    /// conversations; `audit` is appended in the same transaction. `None`
    /// when there is no such integration (and then nothing is audited).
    async fn update_integration_config(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
        config: serde_json::Value,
        audit: NewAuditEvent,
    ) -> StoreResult<Option<Integration>>;

    /// The session's conversation with the remote registered as `remote`
    /// (the integration's id).
    async fn remote_context(
        &self,
        tenant: &TenantId,
        remote: &str,
        session: &SessionId,
    ) -> StoreResult<Option<RemoteContext>>;

    /// Records where the conversation stands; `context_id: None` forgets it.
    async fn set_remote_context(
        &self,
        tenant: &TenantId,
        remote: &str,
        session: &SessionId,
        context_id: Option<&str>,
        task_id: Option<&str>,
    ) -> StoreResult<()>;

    /// Removes the integration `kind`/`name` with every conversation held
    /// with it; `audit` is appended in the same transaction. `false` when
    /// there was none (and then nothing is audited).
    async fn delete_remote(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
}
