//! Runs and their journaled steps.

use crate::{RunId, SessionId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What to do when a session already has a run in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BusyPolicy {
    /// Wait behind the runs in progress (the default).
    #[default]
    Queue,
    /// Refuse (`409 session_busy`) while a run is in progress.
    Reject,
    /// Cancel the runs in progress (their tool calls closed, as by
    /// `POST /v1/runs/{id}/cancel`), then run this input. A retry with the
    /// same idempotency key cancels nothing.
    Interrupt,
    /// Like `interrupt`, and the cancelled runs' items (their input, replies
    /// and tool calls) leave the history the model sees: the new input is
    /// answered as if they had never been sent. They stay in the session's
    /// item list, their runs marked `rolled_back`.
    Rollback,
}

impl BusyPolicy {
    /// Whether this policy stops the session's runs in progress.
    pub fn stops_earlier_runs(self) -> bool {
        matches!(self, BusyPolicy::Interrupt | BusyPolicy::Rollback)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    AwaitingApproval,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "awaiting_approval" => RunStatus::AwaitingApproval,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// Why a run failed, recorded on the run and returned to the caller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunError {
    /// Stable code, e.g. `provider_rate_limited`, `max_steps_exceeded`.
    pub code: String,
    pub message: String,
}

impl RunError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub id: RunId,
    pub session_id: SessionId,
    pub status: RunStatus,
    pub input: String,
    pub output: Option<String>,
    pub error: Option<RunError>,
    pub agent_version: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Who started it (or last retried it), e.g. `key:key_…` (absent for
    /// runs from before actors were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Set while a `running` run waits out a provider outage before it
    /// tries the model call again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<RunWait>,
    /// The run whose `if_busy: interrupt` or `rollback` stopped this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<RunId>,
    /// Its items are left out of the history the model sees (`if_busy:
    /// rollback`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rolled_back: bool,
    /// The run that started this one (a delegation or a hand-off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<RunId>,
    /// Delegation hops from the run a person or a system started.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub depth: u32,
    /// For a hand-off: the session its result is delivered to when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_to: Option<SessionId>,
    /// Why it is still `queued` although its session is free: a limit on
    /// runs executing at once, and its place in the fair queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_reason: Option<crate::limits::QueuedReason>,
    /// Webhooks told when it finishes (named by the request or the
    /// schedule that started it; the agent's own are added then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    /// What the request asked beyond `input` (items, instructions for this
    /// run, the caller's own tools), from a surface that speaks items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<crate::turn::Turn>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What a running run is waiting for, and until when. Persisted with the
/// run, so a restart resumes the wait where it was (the patience clock is
/// not reset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunWait {
    /// `provider`: the model call failed transiently and is tried again.
    #[serde(rename = "for")]
    pub waiting_for: String,
    /// The journal step of the model call that waits.
    pub step: i64,
    /// When the call first failed; the patience counts from here.
    pub since: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    /// When the patience runs out: a call still failing then fails the run.
    pub gives_up_at: DateTime<Utc>,
    /// Failed attempts so far (every request sent, on every target).
    pub attempts: u32,
    /// Passes through the route's targets so far; the backoff grows with them.
    pub rounds: u32,
    pub last_error: RunError,
}

/// What [`RunWait::waiting_for`] says while a provider is waited for.
pub const WAITING_FOR_PROVIDER: &str = "provider";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    ModelCall,
    ToolCall,
    /// A model call that folded the oldest history into the session's
    /// running summary.
    Summary,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::ModelCall => "model_call",
            StepKind::ToolCall => "tool_call",
            StepKind::Summary => "summary",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "model_call" => Some(StepKind::ModelCall),
            "tool_call" => Some(StepKind::ToolCall),
            "summary" => Some(StepKind::Summary),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Started,
    Completed,
}

/// One journaled step. `output` is the step's result as the state machine
/// consumes it (a [`crate::machine::ModelReply`] or a [`crate::machine::ToolOutcome`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Step {
    pub n: i64,
    pub kind: StepKind,
    pub status: StepStatus,
    #[schema(value_type = Object)]
    pub input: serde_json::Value,
    #[schema(value_type = Option<Object>)]
    pub output: Option<serde_json::Value>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}
