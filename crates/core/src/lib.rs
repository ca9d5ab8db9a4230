//! Roster's domain: the words of the architecture brief as types, and the run
//! state machine.
//!
//! This crate owns the meaning of tenants, agents, sessions, items, runs, steps,
//! memory blocks and ledger entries, and the pure function that decides what a
//! run does next. It must never do I/O: no files, no network, no clock reads
//! inside the state machine, no async runtime. Everything here is serialisable
//! so the store can journal it and the API can show it.

pub mod actor;
pub mod agent;
pub mod agent_diff;
pub mod blocks;
pub mod delegation;
pub mod error;
pub mod event;
pub mod ids;
pub mod item;
pub mod knowledge;
pub mod ledger;
pub mod limits;
pub mod machine;
pub mod memory;
pub mod names;
pub mod plain;
pub mod record;
pub mod route;
pub mod run;
pub mod schedule;
pub mod tokens;
pub mod turn;

pub use error::ValidationError;
pub use ids::{
    AgentId, DocumentId, KeyId, MemoryId, NotificationId, RunId, ScheduleId, SessionId, SourceId,
    TenantId, TriggerId, WebhookId,
};

/// The one timestamp type: UTC, stored with millisecond precision.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
