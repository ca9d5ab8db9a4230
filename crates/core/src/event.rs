//! Run events: what a client watching a run sees, persisted so a stream can be
//! replayed from the start.

use crate::item::Item;
use crate::run::{RunError, RunStatus, RunWait};
use crate::RunId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run was accepted and is waiting for earlier runs of its session.
    /// Always the first event of a run, so a stream names its run at once
    /// (absent only in events stored before it was recorded).
    RunQueued {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<RunId>,
    },
    RunStarted,
    /// A failed run was sent back to its session's queue to continue from
    /// its journal.
    RunRetried {
        /// Who retried it, e.g. `key:key_…`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
        /// Why it had failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_error: Option<RunError>,
    },
    /// A model call failed transiently; the run waits and tries again at
    /// `next_attempt_at` (it stays `running`). Sent again after each failed
    /// attempt, and when a restart resumes the wait.
    Waiting {
        #[serde(flatten)]
        wait: RunWait,
    },
    /// The provider answered after a wait; the run goes on.
    WaitEnded {
        step: i64,
    },
    /// Part of the assistant's text as the model streams it. Sent live only;
    /// the whole text is persisted as an `item` event.
    TextDelta {
        step: i64,
        delta: String,
    },
    /// The text streamed so far for `step` is void: that attempt failed and
    /// the call is being retried or sent elsewhere. Sent live only.
    TextReset {
        step: i64,
    },
    /// The model asked for a tool call.
    ToolCall {
        step: i64,
        call_id: String,
        name: String,
        arguments: String,
    },
    /// A tool call finished.
    ToolResult {
        step: i64,
        call_id: String,
        name: String,
        output: String,
        is_error: bool,
    },
    /// A tool call needs a human's approval; the run waits in
    /// `awaiting_approval` until it is approved, denied or expires.
    ApprovalRequested {
        step: i64,
        call_id: String,
        name: String,
        approval: String,
        reason: String,
    },
    /// An item was appended to the session.
    Item {
        item: Item,
        /// For a reply: the byte lengths of the pieces its text streamed
        /// in, so a replay of the run streams it in the same pieces.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chunks: Vec<u32>,
    },
    /// The run reached a final status.
    RunFinished {
        status: RunStatus,
        output: Option<String>,
        error: Option<RunError>,
    },
}

impl RunEvent {
    pub fn name(&self) -> &'static str {
        match self {
            RunEvent::RunQueued { .. } => "run_queued",
            RunEvent::RunStarted => "run_started",
            RunEvent::RunRetried { .. } => "run_retried",
            RunEvent::Waiting { .. } => "waiting",
            RunEvent::WaitEnded { .. } => "wait_ended",
            RunEvent::TextDelta { .. } => "text_delta",
            RunEvent::TextReset { .. } => "text_reset",
            RunEvent::ToolCall { .. } => "tool_call",
            RunEvent::ToolResult { .. } => "tool_result",
            RunEvent::ApprovalRequested { .. } => "approval_requested",
            RunEvent::Item { .. } => "item",
            RunEvent::RunFinished { .. } => "run_finished",
        }
    }

    /// Deltas are too many and too small to journal; everything else is kept.
    pub fn is_persisted(&self) -> bool {
        !matches!(
            self,
            RunEvent::TextDelta { .. } | RunEvent::TextReset { .. }
        )
    }
}

/// A persisted event with its position in the run's stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SequencedEvent {
    pub seq: i64,
    pub event: RunEvent,
}
