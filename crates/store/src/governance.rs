//! Identity and governance records: tenants, API keys with scopes and
//! expiry, each tenant's Cedar policy documents, and the append-only audit
//! log. Every change to keys or policies is written in the same transaction
//! as its audit event, so the log cannot miss one.

use crate::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::{KeyId, TenantId};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// An API key as stored: never the key itself, only its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: KeyId,
    pub tenant_id: TenantId,
    pub name: String,
    /// `user` or `service`.
    pub kind: String,
    /// Manages every tenant (the bootstrap key of the default tenant).
    pub is_admin: bool,
    /// `None`: every scope within its tenant.
    pub scopes: Option<Vec<String>>,
    /// A `user` key's user (`None`: it acts as no user).
    pub user: Option<String>,
    /// The users a `service` key may act for (`None`: any).
    pub act_for: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct NewKey {
    pub id: KeyId,
    pub name: String,
    pub kind: String,
    pub key_hash: String,
    pub scopes: Option<Vec<String>>,
    pub user: Option<String>,
    pub act_for: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDocument {
    pub name: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A tenant's policy documents and the revision they are at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySnapshot {
    pub revision: i64,
    pub documents: Vec<PolicyDocument>,
}

/// One audit event to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAuditEvent {
    /// Who acted: a chain such as `key:key_… > agent:analyst`.
    pub actor: String,
    /// What happened, e.g. `key.create`, `policy.put`, `tool.call`.
    pub action: String,
    /// What it happened to, e.g. `tool:sql_query`.
    pub resource: String,
    /// For policy decisions: `allow`, `deny` or `needs_approval`.
    pub decision: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Increases with every event of the store; the cursor for paging.
    pub seq: i64,
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    pub detail: serde_json::Value,
}

/// Which audit events to read, oldest first.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only events with a larger `seq`.
    pub after: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only this action, or actions under it (`policy` matches `policy.put`).
    pub action: Option<String>,
    /// Only events whose actor chain contains this text.
    pub actor: Option<String>,
    pub limit: i64,
}

#[async_trait]
pub trait GovernanceStore: Send + Sync {
    /// `Conflict` when a tenant of that name exists.
    async fn create_tenant(
        &self,
        id: &TenantId,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<TenantRecord>;
    /// Every tenant: a system view for the bootstrap admin only.
    async fn list_tenants(&self) -> StoreResult<Vec<TenantRecord>>;
    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<TenantRecord>>;
    async fn find_tenant_by_name(&self, name: &str) -> StoreResult<Option<TenantRecord>>;

    async fn create_key(
        &self,
        tenant: &TenantId,
        key: NewKey,
        audit: NewAuditEvent,
    ) -> StoreResult<KeyInfo>;
    /// Revoked keys too, newest first.
    async fn list_keys(&self, tenant: &TenantId) -> StoreResult<Vec<KeyInfo>>;
    async fn key_info(&self, tenant: &TenantId, id: &KeyId) -> StoreResult<Option<KeyInfo>>;
    /// A key of any tenant: a system view for the bootstrap admin only.
    async fn find_key(&self, id: &KeyId) -> StoreResult<Option<KeyInfo>>;
    /// Authentication's lookup: by hash alone, revoked and expired keys
    /// included so the caller can say which.
    async fn key_by_hash(&self, key_hash: &str) -> StoreResult<Option<KeyInfo>>;
    /// `NotFound` when the tenant has no such key; `Conflict` when it is
    /// already revoked.
    async fn revoke_key(
        &self,
        tenant: &TenantId,
        id: &KeyId,
        audit: NewAuditEvent,
    ) -> StoreResult<KeyInfo>;

    async fn policies(&self, tenant: &TenantId) -> StoreResult<PolicySnapshot>;
    /// Cheap staleness check for compiled copies.
    async fn policy_revision(&self, tenant: &TenantId) -> StoreResult<i64>;
    /// Creates or replaces a document and bumps the revision, only if the
    /// revision is still `expected` (`Conflict` otherwise), so two writers
    /// cannot each validate against a set the other changed.
    async fn put_policy(
        &self,
        tenant: &TenantId,
        name: &str,
        text: &str,
        expected: i64,
        audit: NewAuditEvent,
    ) -> StoreResult<PolicyDocument>;
    /// `false` when there was none (nothing is written then).
    async fn delete_policy(
        &self,
        tenant: &TenantId,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;

    async fn append_audit(&self, tenant: &TenantId, events: Vec<NewAuditEvent>) -> StoreResult<()>;
    async fn list_audit(
        &self,
        tenant: &TenantId,
        query: &AuditQuery,
    ) -> StoreResult<Vec<AuditEvent>>;
}

/// The audit event of an agent change.
pub fn agent_event(
    action: &str,
    principal: &str,
    agent: &roster_core::agent::Agent,
) -> NewAuditEvent {
    let detail = if action == "agent.delete" {
        serde_json::json!({ "id": agent.id })
    } else {
        serde_json::json!({ "id": agent.id, "version": agent.version, "config": agent.config })
    };
    NewAuditEvent {
        actor: principal.to_owned(),
        action: action.to_owned(),
        resource: format!("agent:{}", agent.name),
        decision: None,
        detail,
    }
}

/// A fresh audit event id.
pub fn audit_id() -> String {
    format!("aud_{}", uuid::Uuid::now_v7().simple())
}
