//! Daily budgets of tokens and cost, per tenant and per agent, and the
//! ledger sums they are checked against.

use crate::{NewAuditEvent, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::{AgentId, TenantId};
use serde::Serialize;

/// Limits per UTC day; `None` is no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// `tenant`, or `agent:<agent id>`.
    pub scope: String,
    pub tokens_per_day: Option<i64>,
    pub cost_micros_per_day: Option<i64>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// What the ledger holds for a scope since a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    pub tokens: i64,
    pub cost_micros: i64,
}

/// Ledger sums, grouped.
#[derive(Clone, Debug, Default)]
pub struct LedgerSummaryQuery {
    /// Any of `day`, `agent`, `provider`, `model`, `outcome`.
    pub group_by: Vec<String>,
    pub agent_id: Option<AgentId>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub run_id: Option<roster_core::RunId>,
}

/// Sums of one group (only the grouped fields are set).
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LedgerSum {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    pub calls: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    /// Millionths of a US dollar.
    pub cost_micros: i64,
}

pub const GROUPS: &[&str] = &["day", "agent", "provider", "model", "outcome"];

#[async_trait]
pub trait BudgetStore: Send + Sync {
    async fn budgets(&self, tenant: &TenantId) -> StoreResult<Vec<Budget>>;
    async fn set_budget(
        &self,
        tenant: &TenantId,
        budget: Budget,
        audit: NewAuditEvent,
    ) -> StoreResult<Budget>;
    /// `false` when there was none.
    async fn delete_budget(
        &self,
        tenant: &TenantId,
        scope: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Tokens and cost in the ledger since `since`, of one agent or of the
    /// whole tenant.
    async fn spent_since(
        &self,
        tenant: &TenantId,
        agent: Option<&AgentId>,
        since: DateTime<Utc>,
    ) -> StoreResult<Spent>;
    async fn ledger_summary(
        &self,
        tenant: &TenantId,
        query: &LedgerSummaryQuery,
    ) -> StoreResult<Vec<LedgerSum>>;
}
