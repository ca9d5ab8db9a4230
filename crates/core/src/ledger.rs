//! The usage ledger: one entry per model call, success or failure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntry {
    pub id: i64,
    pub provider: String,
    pub model: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub latency_ms: i64,
    /// `ok` or an error code such as `provider_rate_limited`.
    pub outcome: String,
    pub error: Option<String>,
    pub agent_id: Option<String>,
    pub session_id: Option<String>,
    pub run_id: Option<String>,
    pub step: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// The provider's region as configured (`unknown` if it did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<RouteDecision>,
    /// Millionths of a US dollar, from the model's configured price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_micros: Option<i64>,
}

/// Why a call could go where it went: the tenant's routing policy decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteDecision {
    /// `allow`, `deny`, or `open` (no policy governs routes).
    pub decision: String,
    /// The policies that decided it.
    pub policies: Vec<String>,
}

/// A ledger entry before the store numbers it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewLedgerEntry {
    pub provider: String,
    pub model: String,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub latency_ms: i64,
    pub outcome: String,
    pub error: Option<String>,
    pub agent_id: Option<String>,
    pub session_id: Option<String>,
    pub run_id: Option<String>,
    pub step: Option<i64>,
    pub region: Option<String>,
    pub route: Option<RouteDecision>,
    pub cost_micros: Option<i64>,
}
