//! Limits on runs executing at once: the operator's per-tenant values and
//! the server's defaults, kept in the store so every transaction that
//! starts a run reads the same ones; and what the fair queue holds.

use crate::{NewAuditEvent, StoreResult};
use async_trait::async_trait;
use roster_core::limits::RunLimits;
use roster_core::{AgentId, SessionId, TenantId};
use serde::Serialize;

/// One agent's share of the tenant's running and waiting runs.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentUsage {
    pub agent_id: AgentId,
    /// Its own `max_running`, or the tenant's per-agent limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    pub running: u32,
    /// Queued only because of a limit.
    pub waiting: u32,
}

/// A tenant's limits as they apply, and how full they are.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LimitUsage {
    /// The values in force: the tenant's own over the server's defaults.
    pub limits: RunLimits,
    /// The tenant's own values (set by the operator), if any.
    pub tenant: RunLimits,
    /// The server's defaults (its config).
    pub defaults: RunLimits,
    /// Runs executing now (a run its caller waits for runs on the
    /// caller's slot and is not counted).
    pub running: u32,
    /// Runs queued only because of a limit.
    pub waiting: u32,
    /// Agents with running or waiting runs, or a limit of their own.
    pub agents: Vec<AgentUsage>,
}

#[async_trait]
pub trait LimitStore: Send + Sync {
    /// The server's defaults, written at each start from its config.
    async fn set_default_limits(&self, limits: RunLimits) -> StoreResult<()>;
    /// A tenant's own limits (all unset: the defaults apply).
    async fn set_tenant_limits(
        &self,
        tenant: &TenantId,
        limits: RunLimits,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn limit_usage(&self, tenant: &TenantId) -> StoreResult<LimitUsage>;
    /// Sessions whose next run a limit holds and that may start now (a slot
    /// freed), oldest waiting first: across tenants, or of one.
    async fn startable_held(
        &self,
        tenant: Option<&TenantId>,
        max: u32,
    ) -> StoreResult<Vec<(TenantId, SessionId)>>;
}
