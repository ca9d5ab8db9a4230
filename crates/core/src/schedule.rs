//! Schedules: an agent woken at set times with a set input. When a
//! schedule fires is `roster-schedule`'s business; this is what one is.

use crate::{AgentId, ScheduleId, SessionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a start does about firings that were due while nothing could fire
/// them (the server was down or far behind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Fire none of them; go on from the next time to come.
    Skip,
    /// Fire the latest of them, once (the default).
    #[default]
    Once,
    /// Fire each of them, oldest first (at most 1,000).
    All,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Skip => "skip",
            CatchUp::Once => "once",
            CatchUp::All => "all",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "skip" => Some(CatchUp::Skip),
            "once" => Some(CatchUp::Once),
            "all" => Some(CatchUp::All),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Schedule {
    pub id: ScheduleId,
    pub agent_id: AgentId,
    /// Five fields (`min hour dom month dow`) or six with seconds first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A one-off time instead of `cron`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// IANA name the cron expression is read in.
    pub timezone: String,
    /// The message each firing sends.
    pub input: String,
    /// Every firing goes to this session; unset, each firing starts a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    pub catch_up: CatchUp,
    /// Webhooks (`whk_…`) told when each firing's run finishes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    pub paused: bool,
    /// When it fires next (none: a one-off that has fired).
    pub next_fire_at: Option<DateTime<Utc>>,
    pub fired_count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<DateTime<Utc>>,
    /// The key that made it (`key:key_…`): its firings act for that key.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One firing: the run it started, or why it started none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Firing {
    /// The fire time it was for.
    pub fire_at: DateTime<Utc>,
    /// `started` or `refused`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<crate::RunId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
}
