//! Runs, steps, events and the ledger (reads and run creation) on SQLite.

use super::rows::{self, RUN_COLUMNS};
use crate::types::{from_millis, millis};
use crate::{BusyPolicy, CreatedRun, LedgerQuery, NewRun, StoreError};
use chrono::Utc;
use roster_core::event::SequencedEvent;
use roster_core::ledger::LedgerEntry;
use roster_core::run::{Run, RunStatus, Step};
use roster_core::{RunId, SessionId, TenantId};
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn create_run(
    conn: &Connection,
    tenant: &TenantId,
    new: &NewRun,
) -> Result<CreatedRun, StoreError> {
    let version: Option<i64> = rows::row(
        conn,
        "SELECT agent_version FROM sessions WHERE tenant_id = ?1 AND id = ?2",
        params![tenant.as_str(), new.session_id.as_str()],
        |r| r.get(0),
    )
    .optional()?;
    let version = version.ok_or_else(|| StoreError::NotFound("session".into()))?;
    if let Some(key) = &new.idempotency_key {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE session_id = ?1 AND idempotency_key = ?2 AND tenant_id = ?3"
        ))?;
        if let Some(run) = rows::first(
            &mut stmt,
            params![new.session_id.as_str(), key, tenant.as_str()],
            rows::run,
        )? {
            return Ok(CreatedRun::Existing(run));
        }
    }
    if new.if_busy == BusyPolicy::Reject {
        let busy: i64 = rows::row(
        conn,
            "SELECT COUNT(*) FROM runs WHERE session_id = ?1 AND tenant_id = ?2 AND status IN ('queued', 'running', 'awaiting_approval')",
            params![new.session_id.as_str(), tenant.as_str()],
            |r| r.get(0),
        )?;
        if busy > 0 {
            return Err(StoreError::SessionBusy(new.session_id.to_string()));
        }
    }
    let now = Utc::now();
    let run = Run {
        id: RunId::generate(),
        session_id: new.session_id.clone(),
        status: RunStatus::Queued,
        input: new.input.clone(),
        output: None,
        error: None,
        agent_version: version,
        created_at: from_millis(millis(now)),
        started_at: None,
        finished_at: None,
        actor: new.actor.clone(),
        waiting: None,
    };
    rows::exec(
        conn,
        "INSERT INTO runs (id, tenant_id, session_id, status, input, agent_version, idempotency_key, created_at, actor)
         VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8)",
        params![run.id.as_str(), tenant.as_str(), run.session_id.as_str(), run.input, version, new.idempotency_key, millis(now), new.actor],
    )?;
    let event = serde_json::to_string(&crate::types::queued_event(&run.id))?;
    rows::exec(
        conn,
        "INSERT INTO run_events (run_id, seq, tenant_id, body, created_at) VALUES (?1, 1, ?2, ?3, ?4)",
        params![run.id.as_str(), tenant.as_str(), event, millis(now)],
    )?;
    let ahead: i64 = rows::row(
        conn,
        "SELECT COUNT(*) FROM runs WHERE session_id = ?1 AND tenant_id = ?2 AND id <> ?3
         AND status IN ('queued', 'running', 'awaiting_approval')",
        params![run.session_id.as_str(), tenant.as_str(), run.id.as_str()],
        |r| r.get(0),
    )?;
    if ahead > 0 {
        return Ok(CreatedRun::Created(run));
    }
    // Nothing ahead of it: it starts in the same transaction, saving the
    // runner a commit (and an fsync) per turn.
    let mut start = crate::JournalWrite::new(run.id.clone(), run.session_id.clone());
    start.transition = Some(crate::RunTransition::Start);
    super::journal::commit(conn, tenant, &start)?;
    Ok(CreatedRun::Created(Run {
        status: RunStatus::Running,
        started_at: Some(run.created_at),
        ..run
    }))
}

pub(crate) fn get_run(
    conn: &Connection,
    tenant: &TenantId,
    id: &RunId,
) -> Result<Option<Run>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = ?1 AND id = ?2"
    ))?;
    rows::first(&mut stmt, params![tenant.as_str(), id.as_str()], rows::run)
}

pub(crate) fn list_runs(
    conn: &Connection,
    tenant: &TenantId,
    session: &SessionId,
) -> Result<Vec<Run>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = ?1 AND session_id = ?2 ORDER BY id"
    ))?;
    rows::collect(
        &mut stmt,
        params![tenant.as_str(), session.as_str()],
        rows::run,
    )
}

pub(crate) fn next_queued_run(
    conn: &Connection,
    tenant: &TenantId,
    session: &SessionId,
) -> Result<Option<Run>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE session_id = ?1 AND status IN ('queued', 'running', 'awaiting_approval') AND tenant_id = ?2 ORDER BY COALESCE(queue_key, id) LIMIT 1"
    ))?;
    let first = rows::first(
        &mut stmt,
        params![session.as_str(), tenant.as_str()],
        rows::run,
    )?;
    // A run waiting for approval holds its session: later runs wait behind it.
    Ok(first.filter(|run| run.status != roster_core::run::RunStatus::AwaitingApproval))
}

pub(crate) fn list_steps(
    conn: &Connection,
    tenant: &TenantId,
    run: &RunId,
) -> Result<Vec<Step>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT n, kind, status, input, output, started_at, finished_at FROM steps WHERE run_id = ?1 AND tenant_id = ?2 ORDER BY n",
    )?;
    rows::collect(
        &mut stmt,
        params![run.as_str(), tenant.as_str()],
        rows::step,
    )
}

pub(crate) fn list_events(
    conn: &Connection,
    tenant: &TenantId,
    run: &RunId,
    after: i64,
    limit: i64,
) -> Result<Vec<SequencedEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, body FROM run_events WHERE run_id = ?1 AND tenant_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
    )?;
    rows::collect(
        &mut stmt,
        params![run.as_str(), tenant.as_str(), after, limit],
        rows::event,
    )
}

fn ledger_entry(row: &rusqlite::Row<'_>) -> Result<LedgerEntry, StoreError> {
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
        created_at: from_millis(row.get(12)?),
        region: row.get(13)?,
        route: row
            .get::<_, Option<String>>(14)?
            .as_deref()
            .map(rows::json)
            .transpose()?,
        cost_micros: row.get(15)?,
    })
}

pub(crate) fn list_ledger(
    conn: &Connection,
    tenant: &TenantId,
    query: &LedgerQuery,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, provider, model, tokens_in, tokens_out, latency_ms, outcome, error, agent_id, session_id, run_id, step, created_at, region, route, cost_micros
         FROM ledger WHERE tenant_id = ?1 AND (?2 IS NULL OR run_id = ?2) AND (?3 IS NULL OR agent_id = ?3) AND (?4 IS NULL OR id < ?4)
           AND (?6 IS NULL OR provider = ?6) AND (?7 IS NULL OR model = ?7) AND created_at >= ?8 AND created_at <= ?9
         ORDER BY id DESC LIMIT ?5",
    )?;
    let run = query.run_id.as_ref().map(|r| r.as_str().to_owned());
    let agent = query.agent_id.as_ref().map(|a| a.as_str().to_owned());
    rows::collect(
        &mut stmt,
        params![
            tenant.as_str(),
            run,
            agent,
            query.before,
            query.limit,
            query.provider,
            query.model,
            query.since.map_or(i64::MIN, crate::types::millis),
            query.until.map_or(i64::MAX, crate::types::millis)
        ],
        ledger_entry,
    )
}

pub(crate) fn unfinished_runs(conn: &Connection) -> Result<Vec<(TenantId, Run)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT tenant_id, {RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running', 'awaiting_approval') ORDER BY id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let tenant = TenantId::from_stored(row.get(0)?);
        // Decode the run columns, which start at index 1.
        let run = Run {
            id: RunId::from_stored(row.get(1)?),
            session_id: SessionId::from_stored(row.get(2)?),
            status: {
                let s: String = row.get(3)?;
                RunStatus::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt(format!("run status `{s}`")))?
            },
            input: row.get(4)?,
            output: row.get(5)?,
            error: None,
            agent_version: row.get(7)?,
            created_at: from_millis(row.get(8)?),
            started_at: row.get::<_, Option<i64>>(9)?.map(from_millis),
            finished_at: None,
            actor: row.get(11)?,
            waiting: row
                .get::<_, Option<String>>(12)?
                .as_deref()
                .map(rows::json)
                .transpose()?,
        };
        out.push((tenant, run));
    }
    Ok(out)
}
