//! Triggers (webhooks in) and their deliveries. A delivery is recorded in
//! the transaction that starts its run (and makes its session when the
//! trigger names none): a delivery id starts one run, however often sent.

use crate::{NewAuditEvent, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::run::Run;
use roster_core::{AgentId, KeyId, SessionId, TenantId, TriggerId};
use serde::Serialize;

/// A trigger as people see it (never its secret).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Trigger {
    pub id: TriggerId,
    pub agent_id: AgentId,
    /// The run's input: `{{payload}}` is the delivered JSON, and
    /// `{{payload.a.b}}` one value of it.
    pub template: String,
    /// Every delivery goes to this session; unset, each starts a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// The key that made it (`key:key_…`): deliveries act for that key.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewTrigger {
    /// Chosen by the caller: the secret is sealed to it.
    pub id: TriggerId,
    pub agent_id: AgentId,
    pub template: String,
    pub session_id: Option<SessionId>,
    pub secret_sealed: String,
    pub created_by: String,
    pub key_id: KeyId,
}

/// A trigger found by its id alone (a hook carries no key): its tenant,
/// the sealed secret and the key its deliveries act for.
#[derive(Clone, Debug)]
pub struct HookTarget {
    pub tenant: TenantId,
    pub trigger: Trigger,
    pub secret_sealed: String,
    pub key_id: KeyId,
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub trigger: TriggerId,
    pub delivery_id: String,
    pub input: String,
    /// `key:… > trigger:trg_…`.
    pub actor: String,
    /// The user a new session works for.
    pub user: Option<String>,
}

#[async_trait]
pub trait TriggerStore: Send + Sync {
    async fn create_trigger(
        &self,
        tenant: &TenantId,
        trigger: NewTrigger,
        audit: NewAuditEvent,
    ) -> StoreResult<Trigger>;
    async fn get_trigger(&self, tenant: &TenantId, id: &TriggerId) -> StoreResult<Option<Trigger>>;
    async fn list_triggers(&self, tenant: &TenantId) -> StoreResult<Vec<Trigger>>;
    async fn delete_trigger(
        &self,
        tenant: &TenantId,
        id: &TriggerId,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// By id alone, across tenants: how a hook finds what it is for.
    async fn hook_target(&self, id: &TriggerId) -> StoreResult<Option<HookTarget>>;
    /// Starts the delivery's run, or returns the run an earlier delivery
    /// with the same id started (`true`: it existed). `NotFound` when the
    /// trigger's session or agent is gone.
    async fn deliver(&self, tenant: &TenantId, delivery: Delivery) -> StoreResult<(Run, bool)>;
}
