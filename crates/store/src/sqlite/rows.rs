//! Row decoding for the SQLite backend.

use crate::types::from_millis;
use crate::{Session, StoreError};
use roster_core::agent::{Agent, AgentConfig};
use roster_core::event::{RunEvent, SequencedEvent};
use roster_core::item::{Item, ItemContent};
use roster_core::memory::MemoryBlockVersion;
use roster_core::run::{Run, RunError, RunStatus, Step, StepKind, StepStatus};
use roster_core::{AgentId, RunId, SessionId};
use rusqlite::Row;

pub(crate) fn json<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()))
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
        created_at: from_millis(row.get(4)?),
        updated_at: from_millis(row.get(5)?),
    })
}

pub(crate) const SESSION_COLUMNS: &str = "id, agent_id, agent_version, created_at, user_id";

pub(crate) fn session(row: &Row<'_>) -> Result<Session, StoreError> {
    Ok(Session {
        id: SessionId::from_stored(row.get(0)?),
        agent_id: AgentId::from_stored(row.get(1)?),
        agent_version: row.get(2)?,
        created_at: from_millis(row.get(3)?),
        user: row.get(4)?,
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
        tokens: row.get(3)?,
        created_at: from_millis(row.get(4)?),
    })
}

pub(crate) const RUN_COLUMNS: &str = "id, session_id, status, input, output, error, agent_version, created_at, started_at, finished_at, actor, waiting";

pub(crate) fn run(row: &Row<'_>) -> Result<Run, StoreError> {
    let status: String = row.get(2)?;
    let error: Option<String> = row.get(5)?;
    Ok(Run {
        id: RunId::from_stored(row.get(0)?),
        session_id: SessionId::from_stored(row.get(1)?),
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status `{status}`")))?,
        input: row.get(3)?,
        output: row.get(4)?,
        error: error.as_deref().map(json::<RunError>).transpose()?,
        agent_version: row.get(6)?,
        created_at: from_millis(row.get(7)?),
        started_at: row.get::<_, Option<i64>>(8)?.map(from_millis),
        finished_at: row.get::<_, Option<i64>>(9)?.map(from_millis),
        actor: row.get(10)?,
        waiting: row
            .get::<_, Option<String>>(11)?
            .as_deref()
            .map(json)
            .transpose()?,
    })
}

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
        started_at: from_millis(row.get(5)?),
        finished_at: row.get::<_, Option<i64>>(6)?.map(from_millis),
    })
}

pub(crate) fn event(row: &Row<'_>) -> Result<SequencedEvent, StoreError> {
    let body: String = row.get(1)?;
    Ok(SequencedEvent {
        seq: row.get(0)?,
        event: json::<RunEvent>(&body)?,
    })
}

pub(crate) fn block_version(row: &Row<'_>) -> Result<MemoryBlockVersion, StoreError> {
    Ok(MemoryBlockVersion {
        label: row.get(0)?,
        version: row.get(1)?,
        value: row.get(2)?,
        operation: row.get(3)?,
        run_id: row.get(4)?,
        principal: row.get(5)?,
        created_at: from_millis(row.get(6)?),
    })
}

/// Collects mapped rows, turning both SQLite and decoding errors into `StoreError`.
pub(crate) fn collect<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    map: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// The first mapped row, if any.
pub(crate) fn first<T>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
    map: fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut rows = stmt.query(params)?;
    match rows.next()? {
        Some(row) => Ok(Some(map(row)?)),
        None => Ok(None),
    }
}

/// `Connection::execute` through the statement cache: hot writes are
/// prepared once per connection, not once per call.
pub(crate) fn exec(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `Connection::query_row` through the statement cache.
pub(crate) fn row<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, map)
}
