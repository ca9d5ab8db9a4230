//! Run events: what a client watching a run sees, persisted so a stream can be
//! replayed from the start.

use crate::item::Item;
use crate::run::{RunError, RunStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run was accepted and is waiting for earlier runs of its session.
    RunQueued,
    RunStarted,
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
            RunEvent::RunQueued => "run_queued",
            RunEvent::RunStarted => "run_started",
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
