//! Decoding rows into domain types, once for both backends (the schemas
//! match column for column: BIGINT milliseconds, JSON as TEXT).

use super::Row;
use roster_core::agent::{Agent, AgentConfig};
use roster_core::event::{RunEvent, SequencedEvent};
use roster_core::item::{Item, ItemContent};
use roster_core::ledger::LedgerEntry;
use roster_core::memory::{MemoryBlock, MemoryBlockVersion};
use roster_core::run::{Run, RunError, RunStatus, Step, StepKind, StepStatus};
use roster_core::{AgentId, KeyId, RunId, SessionId, TenantId};
use roster_store::{ApiKeyRecord, Session, StoreError};

pub(crate) fn json<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) const KEY_COLUMNS: &str = "id, tenant_id, name, is_admin";

pub(crate) fn key_record(row: &Row<'_>) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: KeyId::from_stored(row.get(0)?),
        tenant_id: TenantId::from_stored(row.get(1)?),
        name: row.get(2)?,
        is_admin: row.get(3)?,
    })
}

pub(crate) const AGENT_COLUMNS: &str =
    "a.id, a.name, v.version, v.config, a.created_at, v.created_at";

pub(crate) fn agent(row: &Row<'_>) -> Result<Agent, StoreError> {
    let config: String = row.get(3)?;
    Ok(Agent {
        id: AgentId::from_stored(row.get(0)?),
        name: row.get(1)?,
        version: row.get(2)?,
        config: json::<AgentConfig>(&config)?,
        created_at: row.time(4)?,
        updated_at: row.time(5)?,
    })
}

pub(crate) const SESSION_COLUMNS: &str =
    "id, agent_id, agent_version, created_at, user_id, parent_session_id, metadata";

pub(crate) fn session(row: &Row<'_>) -> Result<Session, StoreError> {
    Ok(Session {
        id: SessionId::from_stored(row.get(0)?),
        agent_id: AgentId::from_stored(row.get(1)?),
        agent_version: row.get(2)?,
        created_at: row.time(3)?,
        user: row.get(4)?,
        parent_session_id: row.get::<Option<String>>(5)?.map(SessionId::from_stored),
        metadata: row.opt_json(6)?,
    })
}

pub(crate) const ITEM_COLUMNS: &str = "seq, run_id, content, tokens, created_at";

pub(crate) fn item(row: &Row<'_>) -> Result<Item, StoreError> {
    let content: String = row.get(2)?;
    let run_id: Option<String> = row.get(1)?;
    Ok(Item {
        seq: row.get(0)?,
        run_id: run_id.map(RunId::from_stored),
        content: json::<ItemContent>(&content)?,
        tokens: row.u32(3, "item tokens")?,
        created_at: row.time(4)?,
    })
}

pub(crate) const RUN_COLUMNS: &str = "id, session_id, status, input, output, error, agent_version, created_at, started_at, finished_at, actor, waiting, interrupted_by, rolled_back, parent_run_id, depth, deliver_to, queued_reason, notify, turn";

pub(crate) fn run(row: &Row<'_>) -> Result<Run, StoreError> {
    run_from(row, 0)
}

/// Decodes [`RUN_COLUMNS`] starting at column `at`.
pub(crate) fn run_from(row: &Row<'_>, at: usize) -> Result<Run, StoreError> {
    let status: String = row.get(at + 2)?;
    let error: Option<String> = row.get(at + 5)?;
    Ok(Run {
        id: RunId::from_stored(row.get(at)?),
        session_id: SessionId::from_stored(row.get(at + 1)?),
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status `{status}`")))?,
        input: row.get(at + 3)?,
        output: row.get(at + 4)?,
        error: error.as_deref().map(json::<RunError>).transpose()?,
        agent_version: row.get(at + 6)?,
        created_at: row.time(at + 7)?,
        started_at: row.opt_time(at + 8)?,
        finished_at: row.opt_time(at + 9)?,
        actor: row.get(at + 10)?,
        waiting: row.opt_json(at + 11)?,
        interrupted_by: row.get::<Option<String>>(at + 12)?.map(RunId::from_stored),
        rolled_back: row.get(at + 13)?,
        parent_run_id: row.get::<Option<String>>(at + 14)?.map(RunId::from_stored),
        depth: u32::try_from(row.get::<i64>(at + 15)?).unwrap_or(0),
        deliver_to: row
            .get::<Option<String>>(at + 16)?
            .map(SessionId::from_stored),
        queued_reason: row.opt_json(at + 17)?,
        notify: row.opt_json(at + 18)?.unwrap_or_default(),
        turn: row.opt_json(at + 19)?,
    })
}

pub(crate) const STEP_COLUMNS: &str = "n, kind, status, input, output, started_at, finished_at";

pub(crate) fn step(row: &Row<'_>) -> Result<Step, StoreError> {
    let kind: String = row.get(1)?;
    let status: String = row.get(2)?;
    let input: String = row.get(3)?;
    let output: Option<String> = row.get(4)?;
    Ok(Step {
        n: row.get(0)?,
        kind: StepKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("step kind `{kind}`")))?,
        status: if status == "completed" {
            StepStatus::Completed
        } else {
            StepStatus::Started
        },
        input: json(&input)?,
        output: output.as_deref().map(json).transpose()?,
        started_at: row.time(5)?,
        finished_at: row.opt_time(6)?,
    })
}

pub(crate) fn event(row: &Row<'_>) -> Result<SequencedEvent, StoreError> {
    let body: String = row.get(1)?;
    Ok(SequencedEvent {
        seq: row.get(0)?,
        event: json::<RunEvent>(&body)?,
    })
}

pub(crate) const BLOCK_COLUMNS: &str = "label, value, char_limit, version, updated_at, owner";

pub(crate) fn block(row: &Row<'_>) -> Result<MemoryBlock, StoreError> {
    let owner: String = row.get(5)?;
    Ok(MemoryBlock {
        label: row.get(0)?,
        owner: roster_store::blocks::owner_of(&owner)?,
        value: row.get(1)?,
        limit: row.u32(2, "memory block limit")?,
        version: row.get(3)?,
        updated_at: row.time(4)?,
    })
}

pub(crate) const BLOCK_VERSION_COLUMNS: &str =
    "label, version, value, operation, run_id, principal, created_at";

pub(crate) fn block_version(row: &Row<'_>) -> Result<MemoryBlockVersion, StoreError> {
    Ok(MemoryBlockVersion {
        label: row.get(0)?,
        version: row.get(1)?,
        value: row.get(2)?,
        operation: row.get(3)?,
        run_id: row.get(4)?,
        principal: row.get(5)?,
        created_at: row.time(6)?,
    })
}

pub(crate) const LEDGER_COLUMNS: &str = "id, provider, model, tokens_in, tokens_out, latency_ms, outcome, error, agent_id, session_id, run_id, step, created_at, region, route, cost_micros";

pub(crate) fn ledger_entry(row: &Row<'_>) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        id: row.get(0)?,
        provider: row.get(1)?,
        model: row.get(2)?,
        tokens_in: row.get(3)?,
        tokens_out: row.get(4)?,
        latency_ms: row.get(5)?,
        outcome: row.get(6)?,
        error: row.get(7)?,
        agent_id: row.get(8)?,
        session_id: row.get(9)?,
        run_id: row.get(10)?,
        step: row.get(11)?,
        created_at: row.time(12)?,
        region: row.get(13)?,
        route: row.opt_json(14)?,
        cost_micros: row.get(15)?,
    })
}
