//! Row decoding for the PostgreSQL backend, column for column the same as
//! the SQLite backend's (the schemas match: BIGINT millis, JSON as TEXT).

use crate::types::from_millis;
use crate::{ApiKeyRecord, Session, StoreError};
use roster_core::agent::{Agent, AgentConfig};
use roster_core::event::{RunEvent, SequencedEvent};
use roster_core::item::{Item, ItemContent};
use roster_core::ledger::LedgerEntry;
use roster_core::memory::{MemoryBlock, MemoryBlockVersion};
use roster_core::run::{Run, RunError, RunStatus, Step, StepKind, StepStatus};
use roster_core::{AgentId, KeyId, RunId, SessionId, TenantId};
use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::query::Query;
use sqlx::{Postgres, Row};

pub(crate) type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

pub(crate) fn json<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A BIGINT column holding a `u32` (token counts, character limits).
fn u32_at(row: &PgRow, index: usize, what: &str) -> Result<u32, StoreError> {
    let raw: i64 = row.try_get(index)?;
    u32::try_from(raw).map_err(|_| StoreError::Corrupt(format!("{what} `{raw}`")))
}

fn millis_at(row: &PgRow, index: usize) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    Ok(from_millis(row.try_get(index)?))
}

fn opt_millis_at(
    row: &PgRow,
    index: usize,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
    Ok(row.try_get::<Option<i64>, _>(index)?.map(from_millis))
}

pub(crate) const KEY_COLUMNS: &str = "id, tenant_id, name, is_admin";

pub(crate) fn key_record(row: &PgRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: KeyId::from_stored(row.try_get(0)?),
        tenant_id: TenantId::from_stored(row.try_get(1)?),
        name: row.try_get(2)?,
        is_admin: row.try_get(3)?,
    })
}

pub(crate) const AGENT_COLUMNS: &str =
    "a.id, a.name, v.version, v.config, a.created_at, v.created_at";

pub(crate) fn agent(row: &PgRow) -> Result<Agent, StoreError> {
    let config: String = row.try_get(3)?;
    Ok(Agent {
        id: AgentId::from_stored(row.try_get(0)?),
        name: row.try_get(1)?,
        version: row.try_get(2)?,
        config: json::<AgentConfig>(&config)?,
        created_at: millis_at(row, 4)?,
        updated_at: millis_at(row, 5)?,
    })
}

pub(crate) const SESSION_COLUMNS: &str = "id, agent_id, agent_version, created_at, user_id";

pub(crate) fn session(row: &PgRow) -> Result<Session, StoreError> {
    Ok(Session {
        id: SessionId::from_stored(row.try_get(0)?),
        agent_id: AgentId::from_stored(row.try_get(1)?),
        agent_version: row.try_get(2)?,
        created_at: millis_at(row, 3)?,
        user: row.try_get(4)?,
    })
}

pub(crate) const ITEM_COLUMNS: &str = "seq, run_id, content, tokens, created_at";

pub(crate) fn item(row: &PgRow) -> Result<Item, StoreError> {
    let content: String = row.try_get(2)?;
    let run_id: Option<String> = row.try_get(1)?;
    Ok(Item {
        seq: row.try_get(0)?,
        run_id: run_id.map(RunId::from_stored),
        content: json::<ItemContent>(&content)?,
        tokens: u32_at(row, 3, "item tokens")?,
        created_at: millis_at(row, 4)?,
    })
}

pub(crate) const RUN_COLUMNS: &str = "id, session_id, status, input, output, error, agent_version, created_at, started_at, finished_at, actor, waiting";

pub(crate) fn run(row: &PgRow) -> Result<Run, StoreError> {
    run_from(row, 0)
}

/// Decodes [`RUN_COLUMNS`] starting at column `at`.
pub(crate) fn run_from(row: &PgRow, at: usize) -> Result<Run, StoreError> {
    let status: String = row.try_get(at + 2)?;
    let error: Option<String> = row.try_get(at + 5)?;
    Ok(Run {
        id: RunId::from_stored(row.try_get(at)?),
        session_id: SessionId::from_stored(row.try_get(at + 1)?),
        status: RunStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("run status `{status}`")))?,
        input: row.try_get(at + 3)?,
        output: row.try_get(at + 4)?,
        error: error.as_deref().map(json::<RunError>).transpose()?,
        agent_version: row.try_get(at + 6)?,
        created_at: millis_at(row, at + 7)?,
        started_at: opt_millis_at(row, at + 8)?,
        finished_at: opt_millis_at(row, at + 9)?,
        actor: row.try_get(at + 10)?,
        waiting: row
            .try_get::<Option<String>, _>(at + 11)?
            .as_deref()
            .map(json)
            .transpose()?,
    })
}

pub(crate) const STEP_COLUMNS: &str = "n, kind, status, input, output, started_at, finished_at";

pub(crate) fn step(row: &PgRow) -> Result<Step, StoreError> {
    let kind: String = row.try_get(1)?;
    let status: String = row.try_get(2)?;
    let input: String = row.try_get(3)?;
    let output: Option<String> = row.try_get(4)?;
    Ok(Step {
        n: row.try_get(0)?,
        kind: StepKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("step kind `{kind}`")))?,
        status: if status == "completed" {
            StepStatus::Completed
        } else {
            StepStatus::Started
        },
        input: json(&input)?,
        output: output.as_deref().map(json).transpose()?,
        started_at: millis_at(row, 5)?,
        finished_at: opt_millis_at(row, 6)?,
    })
}

pub(crate) fn event(row: &PgRow) -> Result<SequencedEvent, StoreError> {
    let body: String = row.try_get(1)?;
    Ok(SequencedEvent {
        seq: row.try_get(0)?,
        event: json::<RunEvent>(&body)?,
    })
}

pub(crate) const BLOCK_COLUMNS: &str = "label, value, char_limit, version, updated_at, owner";

pub(crate) fn block(row: &PgRow) -> Result<MemoryBlock, StoreError> {
    let owner: String = row.try_get(5)?;
    Ok(MemoryBlock {
        label: row.try_get(0)?,
        owner: crate::blocks::owner_of(&owner)?,
        value: row.try_get(1)?,
        limit: u32_at(row, 2, "memory block limit")?,
        version: row.try_get(3)?,
        updated_at: millis_at(row, 4)?,
    })
}

pub(crate) const BLOCK_VERSION_COLUMNS: &str =
    "label, version, value, operation, run_id, principal, created_at";

pub(crate) fn block_version(row: &PgRow) -> Result<MemoryBlockVersion, StoreError> {
    Ok(MemoryBlockVersion {
        label: row.try_get(0)?,
        version: row.try_get(1)?,
        value: row.try_get(2)?,
        operation: row.try_get(3)?,
        run_id: row.try_get(4)?,
        principal: row.try_get(5)?,
        created_at: millis_at(row, 6)?,
    })
}

pub(crate) const LEDGER_COLUMNS: &str = "id, provider, model, tokens_in, tokens_out, latency_ms, outcome, error, agent_id, session_id, run_id, step, created_at, region, route, cost_micros";

pub(crate) fn ledger_entry(row: &PgRow) -> Result<LedgerEntry, StoreError> {
    Ok(LedgerEntry {
        id: row.try_get(0)?,
        provider: row.try_get(1)?,
        model: row.try_get(2)?,
        tokens_in: row.try_get(3)?,
        tokens_out: row.try_get(4)?,
        latency_ms: row.try_get(5)?,
        outcome: row.try_get(6)?,
        error: row.try_get(7)?,
        agent_id: row.try_get(8)?,
        session_id: row.try_get(9)?,
        run_id: row.try_get(10)?,
        step: row.try_get(11)?,
        created_at: millis_at(row, 12)?,
        region: row.try_get(13)?,
        route: row
            .try_get::<Option<String>, _>(14)?
            .as_deref()
            .map(json)
            .transpose()?,
        cost_micros: row.try_get(15)?,
    })
}

/// Runs `query` and decodes every row.
pub(crate) async fn collect<T>(
    conn: &mut PgConnection,
    query: PgQuery<'_>,
    map: fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    query.fetch_all(conn).await?.iter().map(map).collect()
}

/// Runs `query` and decodes its first row, if any.
pub(crate) async fn first<T>(
    conn: &mut PgConnection,
    query: PgQuery<'_>,
    map: fn(&PgRow) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    query
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(map)
        .transpose()
}

/// A LIMIT value: SQLite reads a negative limit as "no limit", PostgreSQL
/// rejects it but reads NULL that way.
pub(crate) fn limit(n: i64) -> Option<i64> {
    (n >= 0).then_some(n)
}
