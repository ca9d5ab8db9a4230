//! Records and write descriptions shared by every backend.

use chrono::{DateTime, Utc};
use roster_core::event::{RunEvent, SequencedEvent};
use roster_core::item::{Item, ItemContent};
use roster_core::ledger::NewLedgerEntry;
use roster_core::run::{Run, RunError, RunStatus, RunWait, StepKind};
use roster_core::{AgentId, KeyId, RunId, SessionId, TenantId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub id: KeyId,
    pub name: String,
    /// Hex SHA-256 of the key; the key itself is never stored.
    pub key_hash: String,
    pub is_admin: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: KeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub is_admin: bool,
}

/// How a request names an agent: by id or by name.
#[derive(Clone, Debug)]
pub enum AgentRef {
    Id(AgentId),
    Name(String),
}

impl AgentRef {
    pub fn parse(raw: &str) -> Self {
        match AgentId::parse(raw) {
            Some(id) => AgentRef::Id(id),
            None => AgentRef::Name(raw.to_owned()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    pub id: SessionId,
    pub agent_id: AgentId,
    pub agent_version: i64,
    /// Who the session works for, when the caller said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// For a delegate session: the caller's session it belongs to (one per
    /// caller session and callee agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_session_id: Option<SessionId>,
    pub created_at: DateTime<Utc>,
    /// Key/value pairs a caller attached (a conversation's metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default)]
pub struct SessionQuery {
    pub agent: Option<AgentId>,
    /// Only the sessions of this user.
    pub user: Option<String>,
    /// Only sessions without a user or of one of these users (`None`: all),
    /// for a key that may act for only some users.
    pub visible_users: Option<Vec<String>>,
    pub limit: i64,
}

pub use roster_core::run::BusyPolicy;

#[derive(Clone, Debug)]
pub struct NewRun {
    pub session_id: SessionId,
    pub input: String,
    pub idempotency_key: Option<String>,
    pub if_busy: BusyPolicy,
    /// Who submits it (`key:key_…`), the head of every step's actor chain.
    pub actor: Option<String>,
    /// The run that started it, for a run another agent's run delegated.
    pub parent: Option<RunParent>,
    /// Webhooks (`whk_…`, checked by the caller) told when it finishes.
    pub notify: Vec<String>,
    /// Items, instructions and client tools beyond `input`.
    pub turn: Option<roster_core::turn::Turn>,
}

/// What a run's model calls used and cost, summed from the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunUsage {
    #[serde(skip)]
    pub run_id: RunId,
    pub model_calls: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    /// Millionths of a US dollar (0 for routes without a price).
    pub cost_micros: i64,
}

/// Where a delegated run comes from.
#[derive(Clone, Debug)]
pub struct RunParent {
    pub run_id: RunId,
    /// Hops from the run a person or a system started (that one is 0).
    pub depth: u32,
    /// For a hand-off: the session its result is delivered to, as a new
    /// input, in the transaction that finishes it.
    pub deliver_to: Option<SessionId>,
    /// Most runs the parent may start: checked in the transaction that
    /// stores this one (`LimitReached` past it), so calls made at once
    /// cannot all slip under it.
    pub max_siblings: Option<u32>,
    /// The parent waits for it (a synchronous ask): it runs on the
    /// parent's slot, outside the limits on runs executing at once, so a
    /// limit cannot hold a child its running parent waits for.
    pub caller_waits: bool,
}

#[derive(Clone, Debug)]
pub enum CreatedRun {
    Created(Run),
    /// A run with the same idempotency key already existed.
    Existing(Run),
}

impl CreatedRun {
    pub fn run(&self) -> &Run {
        match self {
            CreatedRun::Created(r) | CreatedRun::Existing(r) => r,
        }
    }
}

#[derive(Clone, Debug)]
pub enum StepWrite {
    /// Written before an external action with side effects.
    Started {
        n: i64,
        kind: StepKind,
        input: serde_json::Value,
    },
    /// Inserts the step or completes its started row.
    Completed {
        n: i64,
        kind: StepKind,
        input: serde_json::Value,
        output: serde_json::Value,
    },
}

#[derive(Clone, Debug)]
pub enum RunTransition {
    /// queued -> running; the store also appends the run's input as a user
    /// message item and emits `run_started`.
    Start,
    /// running -> awaiting_approval, with the write's approval requests.
    AwaitApproval,
    /// Emits `run_finished` after the write's items; ends any wait.
    Finish {
        status: RunStatus,
        output: Option<String>,
        error: Option<RunError>,
    },
    /// failed -> queued, at the back of its session's queue: the run
    /// continues from its journal when its turn comes (its next start
    /// appends no input: the first one did). Clears the error and the
    /// finish time, records `actor` as the run's actor, emits
    /// `run_retried`. Only a failed run can be retried (`Conflict`).
    Retry {
        actor: Option<String>,
        previous_error: Option<RunError>,
    },
}

/// A change of the run's wait (see [`roster_core::run::RunWait`]).
#[derive(Clone, Debug)]
pub enum WaitWrite {
    /// The run waits (or still waits) for this.
    Set(RunWait),
    /// The wait is over.
    Clear,
}

/// A versioned write to a memory block, applied only if the block is still
/// at `expected_version` (otherwise the whole write fails with `Conflict`).
#[derive(Clone, Debug)]
/// Version 0 is a copy not yet made: the write creates it, and fails with
/// `Conflict` if another writer created it first.
pub struct BlockWrite {
    pub agent_id: AgentId,
    pub label: String,
    pub owner: roster_core::blocks::BlockOwner,
    pub expected_version: i64,
    pub value: String,
    pub limit: u32,
    pub operation: String,
    pub principal: String,
}

/// One atomic journal entry of a run: everything in it lands together or
/// not at all, in one durable transaction.
#[derive(Clone, Debug)]
pub struct JournalWrite {
    pub run_id: RunId,
    pub session_id: SessionId,
    pub transition: Option<RunTransition>,
    /// Journal rows, in order: e.g. a model step's completion together with
    /// the `started` rows of the tool calls it asked for.
    pub steps: Vec<StepWrite>,
    /// Events persisted before the items' own `item` events.
    pub events: Vec<RunEvent>,
    /// Appended to the session in order; the store assigns `seq`.
    pub items: Vec<ItemContent>,
    /// The pieces (byte lengths) the text of the reply among `items`
    /// streamed in, kept on its `item` event.
    pub text_chunks: Vec<u32>,
    pub ledger: Vec<NewLedgerEntry>,
    pub block_write: Option<BlockWrite>,
    /// Memory record changes made by a tool, landing with its result.
    pub memory_writes: Vec<crate::MemoryWrite>,
    /// A new version of the session's running summary (a summary step's).
    pub summary: Option<NewSummary>,
    /// Extraction jobs created with the run's completion; they read the
    /// run's items (from its first to the session's last).
    pub memory_jobs: Vec<crate::NewMemoryJob>,
    /// Tool calls sent for a human's approval (with `AwaitApproval`).
    pub approvals: Vec<crate::NewApproval>,
    /// The run's wait begins, moves or ends.
    pub wait: Option<WaitWrite>,
    /// Audit events appended in the same transaction (e.g. a retry's).
    pub audit: Vec<crate::NewAuditEvent>,
}

/// The session's history up to `through_seq`, folded into `text` by the
/// summary step `step` of the writing run.
#[derive(Clone, Debug)]
pub struct NewSummary {
    pub through_seq: i64,
    pub text: String,
    pub step: i64,
}

/// A version of a session's running summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionSummary {
    pub version: i64,
    /// The newest item the summary covers.
    pub through_seq: i64,
    pub text: String,
    pub run_id: Option<RunId>,
    pub created_at: DateTime<Utc>,
}

impl JournalWrite {
    pub fn new(run_id: RunId, session_id: SessionId) -> Self {
        Self {
            run_id,
            session_id,
            transition: None,
            steps: Vec::new(),
            events: Vec::new(),
            items: Vec::new(),
            text_chunks: Vec::new(),
            ledger: Vec::new(),
            block_write: None,
            memory_writes: Vec::new(),
            summary: None,
            memory_jobs: Vec::new(),
            approvals: Vec::new(),
            wait: None,
            audit: Vec::new(),
        }
    }
}

/// What a commit produced: the stored items and every persisted event.
#[derive(Clone, Debug, Default)]
pub struct Committed {
    /// A hand-off's result, queued in the caller's session by this write
    /// (the write that finished the handed-off run).
    pub delivered: Option<Run>,
    pub items: Vec<Item>,
    pub events: Vec<SequencedEvent>,
    /// Memory records the write changed, and the search log position that
    /// covers them (0 if none).
    pub memories: crate::MemoryWritten,
    /// A `Start` the limits refused: the run stays queued, with this reason.
    pub held: Option<roster_core::limits::QueuedReason>,
    /// Notifications this write added to the outbox (a run finished).
    pub notifications: usize,
}

#[derive(Clone, Debug, Default)]
pub struct LedgerQuery {
    pub run_id: Option<RunId>,
    pub agent_id: Option<AgentId>,
    /// Entries with `id < before`, newest first.
    pub before: Option<i64>,
    pub limit: i64,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// The queued run's event: the first of every run, naming it.
pub fn queued_event(run: &roster_core::RunId) -> RunEvent {
    RunEvent::RunQueued {
        run_id: Some(run.clone()),
    }
}

/// The stored text of a wait change (`None` clears it).
pub fn wait_text(wait: &WaitWrite) -> Result<Option<String>, serde_json::Error> {
    match wait {
        WaitWrite::Set(wait) => serde_json::to_string(wait).map(Some),
        WaitWrite::Clear => Ok(None),
    }
}

/// A key that sorts after every run made so far: a retried run's place at
/// the back of its session's queue (runs are ordered by it, else by id).
pub fn back_of_queue() -> String {
    roster_core::RunId::generate().as_str().to_owned()
}

pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Events a journal write persists, in order: the run's start, the caller's
/// events, one per appended item, and the run's end. Shared by both backends
/// so they cannot disagree on the stream's shape.
pub fn events_for(write: &JournalWrite, items: &[Item]) -> Vec<RunEvent> {
    let mut events = Vec::with_capacity(write.events.len() + items.len() + 2);
    match &write.transition {
        Some(RunTransition::Start) => events.push(RunEvent::RunStarted),
        Some(RunTransition::Retry {
            actor,
            previous_error,
        }) => events.push(RunEvent::RunRetried {
            actor: actor.clone(),
            previous_error: previous_error.clone(),
        }),
        _ => {}
    }
    events.extend(write.events.iter().filter(|e| e.is_persisted()).cloned());
    events.extend(items.iter().map(|item| RunEvent::Item {
        chunks: match item.content {
            roster_core::item::ItemContent::AssistantMessage { .. } => write.text_chunks.clone(),
            _ => Vec::new(),
        },
        item: item.clone(),
    }));
    if let Some(RunTransition::Finish {
        status,
        output,
        error,
    }) = &write.transition
    {
        events.push(RunEvent::RunFinished {
            status: *status,
            output: output.clone(),
            error: error.clone(),
        });
    }
    events
}

/// Whether a journal write may apply to a run in `status`: a finished run
/// takes none, and only a queued run can start. Shared so both backends
/// refuse the same writes.
pub fn check_writable(
    run: &str,
    status: &str,
    write: &JournalWrite,
) -> Result<(), crate::StoreError> {
    if matches!(write.transition, Some(RunTransition::Retry { .. })) {
        if status != "failed" {
            return Err(crate::StoreError::Conflict(format!(
                "run {run} is {status}; only a failed run can be retried"
            )));
        }
        return Ok(());
    }
    if matches!(status, "completed" | "failed" | "cancelled") {
        return Err(crate::StoreError::Conflict(format!(
            "run {run} is already {status}"
        )));
    }
    if matches!(write.transition, Some(RunTransition::AwaitApproval)) && status != "running" {
        return Err(crate::StoreError::Conflict(format!(
            "run {run} cannot wait for approval: it is {status}"
        )));
    }
    if matches!(write.transition, Some(RunTransition::Start)) && status != "queued" {
        return Err(crate::StoreError::Conflict(format!(
            "run {run} cannot start: it is {status}"
        )));
    }
    Ok(())
}
