//! Runs, steps, events and the ledger (reads and run creation) on PostgreSQL.

use super::rows::{self, LEDGER_COLUMNS, RUN_COLUMNS, STEP_COLUMNS};
use crate::types::{from_millis, millis};
use crate::{BusyPolicy, CreatedRun, LedgerQuery, NewRun, StoreError};
use chrono::Utc;
use roster_core::event::SequencedEvent;
use roster_core::ledger::LedgerEntry;
use roster_core::run::{Run, RunStatus, Step};
use roster_core::{RunId, SessionId, TenantId};
use sqlx::postgres::PgConnection;

/// Runs inside a transaction. The session row is locked first, so the
/// idempotency and busy checks below cannot race another `create_run` on the
/// same session, from this node or any other.
pub(crate) async fn create_run(
    conn: &mut PgConnection,
    tenant: &TenantId,
    new: &NewRun,
) -> Result<CreatedRun, StoreError> {
    let version: Option<i64> = sqlx::query_scalar(
        "SELECT agent_version FROM sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(tenant.as_str())
    .bind(new.session_id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let version = version.ok_or_else(|| StoreError::NotFound("session".into()))?;
    if let Some(key) = &new.idempotency_key {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE session_id = $1 AND idempotency_key = $2 AND tenant_id = $3"
        );
        let query = sqlx::query(&sql)
            .bind(new.session_id.as_str())
            .bind(key)
            .bind(tenant.as_str());
        if let Some(run) = rows::first(&mut *conn, query, rows::run).await? {
            return Ok(CreatedRun::Existing(run));
        }
    }
    if new.if_busy == BusyPolicy::Reject {
        let busy: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM runs WHERE session_id = $1 AND tenant_id = $2 AND status IN ('queued', 'running', 'awaiting_approval')",
        )
        .bind(new.session_id.as_str())
        .bind(tenant.as_str())
        .fetch_one(&mut *conn)
        .await?;
        if busy > 0 {
            return Err(StoreError::SessionBusy(new.session_id.to_string()));
        }
    }
    let now = millis(Utc::now());
    let run = Run {
        id: RunId::generate(),
        session_id: new.session_id.clone(),
        status: RunStatus::Queued,
        input: new.input.clone(),
        output: None,
        error: None,
        agent_version: version,
        created_at: from_millis(now),
        started_at: None,
        finished_at: None,
        actor: new.actor.clone(),
        waiting: None,
    };
    sqlx::query(
        "INSERT INTO runs (id, tenant_id, session_id, status, input, agent_version, idempotency_key, created_at, actor)
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8)",
    )
    .bind(run.id.as_str())
    .bind(tenant.as_str())
    .bind(run.session_id.as_str())
    .bind(&run.input)
    .bind(version)
    .bind(new.idempotency_key.as_deref())
    .bind(now)
    .bind(new.actor.as_deref())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO run_events (run_id, seq, tenant_id, body, created_at) VALUES ($1, 1, $2, $3, $4)",
    )
    .bind(run.id.as_str())
    .bind(tenant.as_str())
    .bind(serde_json::to_string(&crate::types::queued_event(&run.id))?)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let ahead: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM runs WHERE session_id = $1 AND tenant_id = $2 AND id <> $3
         AND status IN ('queued', 'running', 'awaiting_approval')",
    )
    .bind(run.session_id.as_str())
    .bind(tenant.as_str())
    .bind(run.id.as_str())
    .fetch_one(&mut *conn)
    .await?;
    if ahead > 0 {
        return Ok(CreatedRun::Created(run));
    }
    // Nothing ahead of it: it starts in the same transaction, saving the
    // runner a commit (and an fsync) per turn.
    let mut start = crate::JournalWrite::new(run.id.clone(), run.session_id.clone());
    start.transition = Some(crate::RunTransition::Start);
    super::journal::commit(conn, tenant, &start).await?;
    Ok(CreatedRun::Created(Run {
        status: RunStatus::Running,
        started_at: Some(from_millis(now)),
        ..run
    }))
}

pub(crate) async fn get_run(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &RunId,
) -> Result<Option<Run>, StoreError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND id = $2");
    let query = sqlx::query(&sql).bind(tenant.as_str()).bind(id.as_str());
    rows::first(conn, query, rows::run).await
}

pub(crate) async fn list_runs(
    conn: &mut PgConnection,
    tenant: &TenantId,
    session: &SessionId,
) -> Result<Vec<Run>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND session_id = $2 ORDER BY id"
    );
    let query = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(session.as_str());
    rows::collect(conn, query, rows::run).await
}

pub(crate) async fn next_queued_run(
    conn: &mut PgConnection,
    tenant: &TenantId,
    session: &SessionId,
) -> Result<Option<Run>, StoreError> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE session_id = $1 AND status IN ('queued', 'running', 'awaiting_approval') AND tenant_id = $2 ORDER BY COALESCE(queue_key, id) LIMIT 1"
    );
    let query = sqlx::query(&sql)
        .bind(session.as_str())
        .bind(tenant.as_str());
    let first = rows::first(conn, query, rows::run).await?;
    // A run waiting for approval holds its session: later runs wait behind it.
    Ok(first.filter(|run| run.status != roster_core::run::RunStatus::AwaitingApproval))
}

pub(crate) async fn list_steps(
    conn: &mut PgConnection,
    tenant: &TenantId,
    run: &RunId,
) -> Result<Vec<Step>, StoreError> {
    let sql =
        format!("SELECT {STEP_COLUMNS} FROM steps WHERE run_id = $1 AND tenant_id = $2 ORDER BY n");
    let query = sqlx::query(&sql).bind(run.as_str()).bind(tenant.as_str());
    rows::collect(conn, query, rows::step).await
}

pub(crate) async fn list_events(
    conn: &mut PgConnection,
    tenant: &TenantId,
    run: &RunId,
    after: i64,
    limit: i64,
) -> Result<Vec<SequencedEvent>, StoreError> {
    let query = sqlx::query(
        "SELECT seq, body FROM run_events WHERE run_id = $1 AND tenant_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
    )
    .bind(run.as_str())
    .bind(tenant.as_str())
    .bind(after)
    .bind(rows::limit(limit));
    rows::collect(conn, query, rows::event).await
}

pub(crate) async fn list_ledger(
    conn: &mut PgConnection,
    tenant: &TenantId,
    query: &LedgerQuery,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let sql = format!(
        "SELECT {LEDGER_COLUMNS} FROM ledger
         WHERE tenant_id = $1 AND ($2::text IS NULL OR run_id = $2) AND ($3::text IS NULL OR agent_id = $3)
           AND ($4::bigint IS NULL OR id < $4) AND ($6::text IS NULL OR provider = $6)
           AND ($7::text IS NULL OR model = $7) AND created_at >= $8 AND created_at <= $9
         ORDER BY id DESC LIMIT $5"
    );
    let q = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(query.run_id.as_ref().map(|r| r.as_str()))
        .bind(query.agent_id.as_ref().map(|a| a.as_str()))
        .bind(query.before)
        .bind(rows::limit(query.limit))
        .bind(query.provider.as_deref())
        .bind(query.model.as_deref())
        .bind(query.since.map_or(i64::MIN, crate::types::millis))
        .bind(query.until.map_or(i64::MAX, crate::types::millis));
    rows::collect(conn, q, rows::ledger_entry).await
}

/// Across tenants: the system principal's view, used only by recovery.
pub(crate) async fn unfinished_runs(
    conn: &mut PgConnection,
) -> Result<Vec<(TenantId, Run)>, StoreError> {
    let sql = format!(
        "SELECT tenant_id, {RUN_COLUMNS} FROM runs WHERE status IN ('queued', 'running', 'awaiting_approval') ORDER BY id"
    );
    let rows = sqlx::query(&sql).fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            use sqlx::Row;
            let tenant = TenantId::from_stored(row.try_get(0)?);
            Ok((tenant, rows::run_from(row, 1)?))
        })
        .collect()
}
