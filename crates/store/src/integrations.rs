//! Integrations: the company systems a tenant connects its agents to (MCP
//! servers, SQL databases, HTTP services). The store keeps each one's
//! config as JSON and its credentials only as sealed text: sealing and
//! opening happen outside the store, which never sees a plaintext secret.
//! Every registration and removal appends its audit event in the same
//! transaction, so the log cannot miss one.

use crate::{NewAuditEvent, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::TenantId;

#[derive(Clone, Debug, PartialEq)]
pub struct Integration {
    pub id: String,
    pub tenant: TenantId,
    /// `mcp`, `sql` or `http`.
    pub kind: String,
    /// Unique per tenant and kind.
    pub name: String,
    /// Without credentials.
    pub config: serde_json::Value,
    /// The credentials, sealed (see roster-secrets).
    pub sealed: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewIntegration {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub config: serde_json::Value,
    pub sealed: Option<String>,
}

impl NewIntegration {
    /// A registration with a fresh id (`int_…`, time-ordered).
    pub fn new(kind: &str, name: &str, config: serde_json::Value, sealed: Option<String>) -> Self {
        Self {
            id: format!("int_{}", uuid::Uuid::now_v7().simple()),
            kind: kind.to_owned(),
            name: name.to_owned(),
            config,
            sealed,
        }
    }
}

#[async_trait]
pub trait IntegrationStore: Send + Sync {
    /// `Conflict` when the tenant already has one of that kind and name.
    /// `audit` is appended in the same transaction.
    async fn create_integration(
        &self,
        tenant: &TenantId,
        new: NewIntegration,
        audit: NewAuditEvent,
    ) -> StoreResult<Integration>;
    async fn list_integrations(
        &self,
        tenant: &TenantId,
        kind: &str,
    ) -> StoreResult<Vec<Integration>>;
    async fn get_integration(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
    ) -> StoreResult<Option<Integration>>;
    /// `false` when there was none (and then nothing is audited);
    /// otherwise `audit` is appended in the same transaction.
    async fn delete_integration(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;

    /// [`IntegrationStore::delete_integration`] with its `KIND.remove`
    /// audit event naming what went.
    async fn remove_integration(
        &self,
        tenant: &TenantId,
        kind: &str,
        name: &str,
        actor: &str,
    ) -> StoreResult<bool> {
        let audit = integration_event(
            actor,
            kind,
            "remove",
            name,
            serde_json::json!({ "name": name }),
        );
        self.delete_integration(tenant, kind, name, audit).await
    }
}

/// The audit event of an integration change: action `KIND.CHANGE` (e.g.
/// `mcp.enable`, `sql.remove`) on `KIND:NAME` by `actor`, with what changed
/// (never a credential).
pub fn integration_event(
    actor: &str,
    kind: &str,
    change: &str,
    name: &str,
    detail: serde_json::Value,
) -> NewAuditEvent {
    NewAuditEvent {
        actor: actor.to_owned(),
        action: format!("{kind}.{change}"),
        resource: format!("{kind}:{name}"),
        decision: None,
        detail,
    }
}
