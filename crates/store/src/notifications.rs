//! Notifications (webhooks out). A webhook is a URL and a signing secret a
//! tenant registers; runs, schedules and agents name webhooks. The
//! transaction that finishes a run adds a notification per webhook to the
//! outbox; a sender claims due ones with a lease, sends them and records
//! every attempt, retrying with backoff until one is accepted or the
//! attempts run out.

use crate::{NewAuditEvent, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::{NotificationId, RunId, TenantId, WebhookId};
use serde::Serialize;

/// A webhook as people see it (never its secret).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewWebhook {
    /// Chosen by the caller: the secret is sealed to it.
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    pub secret_sealed: String,
    pub created_by: String,
}

/// `pending` (waiting for its next attempt), `delivered` or `failed` (its
/// attempts ran out; it can be sent again by hand).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    Pending,
    Delivered,
    Failed,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// One try at sending a notification.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1 for the first.
    pub n: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    /// The receiver's HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Why it did not count as delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: NotificationId,
    pub webhook_id: WebhookId,
    pub run_id: RunId,
    /// `run.finished`.
    pub event: String,
    pub status: NotificationStatus,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// The JSON body sent.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// Every attempt so far, oldest first.
    pub attempt_log: Vec<Attempt>,
}

/// A notification a sender claimed: what to send where, signed with which
/// secret.
#[derive(Clone, Debug)]
pub struct DueNotification {
    pub tenant: TenantId,
    pub id: NotificationId,
    pub webhook_id: WebhookId,
    pub url: String,
    pub secret_sealed: String,
    pub event: String,
    pub body: String,
    /// Attempts before this one.
    pub attempts: u32,
}

/// What became of an attempt.
#[derive(Clone, Debug)]
pub enum AttemptOutcome {
    Delivered,
    /// Tried again at this time.
    RetryAt(DateTime<Utc>),
    /// No more attempts.
    GaveUp,
}

#[derive(Clone, Debug, Default)]
pub struct NotificationQuery {
    pub webhook: Option<WebhookId>,
    pub run: Option<RunId>,
    pub status: Option<NotificationStatus>,
    /// Newest first, ids below this one.
    pub before: Option<NotificationId>,
    pub limit: u32,
}

#[async_trait]
pub trait NotificationStore: Send + Sync {
    async fn create_webhook(
        &self,
        tenant: &TenantId,
        webhook: NewWebhook,
        audit: NewAuditEvent,
    ) -> StoreResult<Webhook>;
    async fn get_webhook(&self, tenant: &TenantId, id: &WebhookId) -> StoreResult<Option<Webhook>>;
    async fn list_webhooks(&self, tenant: &TenantId) -> StoreResult<Vec<Webhook>>;
    /// Its pending notifications are not sent any more (they fail with a
    /// note); what was delivered stays readable.
    async fn delete_webhook(
        &self,
        tenant: &TenantId,
        id: &WebhookId,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Changes its URL (checked by the caller) and description; `None`
    /// when there is no such webhook. Pending notifications go to the new
    /// URL.
    async fn update_webhook(
        &self,
        tenant: &TenantId,
        id: &WebhookId,
        url: &str,
        description: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<Option<Webhook>>;
    /// Replaces its signing secret; notifications not yet sent are signed
    /// with the new one. `false` when there is no such webhook.
    async fn set_webhook_secret(
        &self,
        tenant: &TenantId,
        id: &WebhookId,
        secret_sealed: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Newest first, each with its attempts.
    async fn list_notifications(
        &self,
        tenant: &TenantId,
        query: NotificationQuery,
    ) -> StoreResult<Vec<Notification>>;
    async fn get_notification(
        &self,
        tenant: &TenantId,
        id: &NotificationId,
    ) -> StoreResult<Option<Notification>>;
    /// Across tenants: up to `limit` pending notifications due by `now`
    /// and not leased, each leased until `lease_until` so no other sender
    /// takes it meanwhile.
    async fn claim_notifications(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueNotification>>;
    /// Records an attempt and what follows from it, releasing the lease.
    async fn record_attempt(
        &self,
        tenant: &TenantId,
        id: &NotificationId,
        attempt: Attempt,
        outcome: AttemptOutcome,
    ) -> StoreResult<()>;
    /// Sends a failed (or delivered) notification again: pending, due now.
    async fn resend_notification(
        &self,
        tenant: &TenantId,
        id: &NotificationId,
        audit: NewAuditEvent,
    ) -> StoreResult<Option<Notification>>;
}
