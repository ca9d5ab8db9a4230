//! Runs, steps, events and the ledger: run creation and the reads.

use super::rows::{self, LEDGER_COLUMNS, RUN_COLUMNS};
use super::{Arg, Conn};
use chrono::Utc;
use roster_core::ledger::LedgerEntry;
use roster_core::run::{Run, RunStatus};
use roster_core::{RunId, SessionId, TenantId};
use roster_store::{from_millis, millis};
use roster_store::{BusyPolicy, CreatedRun, LedgerQuery, NewRun, RunParent, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Runs inside a write transaction: [`queue_run`], then the run starts in
/// the same transaction when nothing is ahead of it in the session.
pub(crate) async fn create_run(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    new: &NewRun,
) -> Result<CreatedRun> {
    let run = match queue_run(c, tenant, new).await? {
        CreatedRun::Created(run) => run,
        existing @ CreatedRun::Existing(_) => return Ok(existing),
    };
    let ahead: i64 = c
        .one(
            crate::sql!(
                "SELECT COUNT(*) FROM runs WHERE session_id = $1 AND tenant_id = $2 AND id <> $3
                 AND status IN ('queued', 'running', 'awaiting_approval')"
            ),
            crate::args![&run.session_id, tenant, &run.id],
            |row| row.get(0),
        )
        .await?;
    if ahead > 0 {
        return Ok(CreatedRun::Created(run));
    }
    let caller_waits = new.parent.as_ref().is_some_and(|p| p.caller_waits);
    if let Some(reason) =
        super::limits::admit(c, tenant, &run.id, &run.session_id, caller_waits, None).await?
    {
        return Ok(CreatedRun::Created(Run {
            queued_reason: Some(reason),
            ..run
        }));
    }
    // Nothing ahead of it: it starts in the same transaction, saving the
    // runner a commit (and an fsync) per turn.
    let mut start = crate::JournalWrite::new(run.id.clone(), run.session_id.clone());
    start.transition = Some(crate::RunTransition::Start);
    super::journal::commit(c, tenant, &start).await?;
    Ok(CreatedRun::Created(Run {
        status: RunStatus::Running,
        started_at: Some(run.created_at),
        ..run
    }))
}

/// Stores a `queued` run (or finds the one its idempotency key names). On
/// PostgreSQL the session row is locked first, so the idempotency and busy
/// checks below cannot race another `create_run` on the same session from
/// any node; SQLite's single writer already serialises them.
pub(crate) async fn queue_run(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    new: &NewRun,
) -> Result<CreatedRun> {
    let version: i64 = c
        .opt(
            crate::sql!(
                "SELECT agent_version FROM sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
            ),
            crate::args![tenant, &new.session_id],
            |row| row.get(0),
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("session".into()))?;
    if let Some(key) = &new.idempotency_key {
        let existing = c
            .opt(
                crate::sql!("SELECT {RUN_COLUMNS} FROM runs WHERE session_id = $1 AND idempotency_key = $2 AND tenant_id = $3"),
                crate::args![&new.session_id, key, tenant],
                rows::run,
            )
            .await?;
        if let Some(run) = existing {
            return Ok(CreatedRun::Existing(run));
        }
    }
    if let Some(parent) = &new.parent {
        check_siblings(c, tenant, parent).await?;
    }
    if new.if_busy == BusyPolicy::Reject {
        let busy: i64 = c
            .one(
                crate::sql!("SELECT COUNT(*) FROM runs WHERE session_id = $1 AND tenant_id = $2 AND status IN ('queued', 'running', 'awaiting_approval')"),
                crate::args![&new.session_id, tenant],
                |row| row.get(0),
            )
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
        interrupted_by: None,
        rolled_back: false,
        parent_run_id: new.parent.as_ref().map(|p| p.run_id.clone()),
        depth: new.parent.as_ref().map_or(0, |p| p.depth),
        deliver_to: new.parent.as_ref().and_then(|p| p.deliver_to.clone()),
        queued_reason: None,
        notify: new.notify.clone(),
        turn: new.turn.clone(),
    };
    let turn = new.turn.as_ref().map(serde_json::to_string).transpose()?;
    let notify = if new.notify.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&new.notify)?)
    };
    c.exec(
        crate::sql!(
            "INSERT INTO runs (id, tenant_id, session_id, status, input, agent_version, idempotency_key, created_at, actor,
                               parent_run_id, depth, deliver_to, notify, caller_waits, turn)
             VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ),
        crate::args![
            &run.id,
            tenant,
            &run.session_id,
            &run.input,
            version,
            &new.idempotency_key,
            now,
            &new.actor,
            run.parent_run_id.as_ref(),
            i64::from(run.depth),
            run.deliver_to.as_ref(),
            notify.as_deref(),
            new.parent.as_ref().is_some_and(|p| p.caller_waits),
            turn.as_deref()
        ],
    )
    .await?;
    let event = serde_json::to_string(&roster_store::queued_event(&run.id))?;
    c.exec(
        crate::sql!("INSERT INTO run_events (run_id, seq, tenant_id, body, created_at) VALUES ($1, 1, $2, $3, $4)"),
        crate::args![&run.id, tenant, event.as_str(), now],
    )
    .await?;
    if new.if_busy.stops_earlier_runs() {
        // Recorded with the new run, so recovery cancels what a crash left
        // before the runtime could.
        c.exec(
            crate::sql!(
                "UPDATE runs SET interrupted_by = $3, rolled_back = $4
                 WHERE session_id = $1 AND tenant_id = $2 AND id <> $3
                   AND status IN ('queued', 'running', 'awaiting_approval')"
            ),
            crate::args![
                &run.session_id,
                tenant,
                &run.id,
                new.if_busy == BusyPolicy::Rollback
            ],
        )
        .await?;
    }
    Ok(CreatedRun::Created(run))
}

/// Refuses a run past its parent's `max_siblings`. The parent's row is
/// locked first (PostgreSQL), so runs it starts at once are counted in turn.
async fn check_siblings(c: &mut Conn<'_>, tenant: &TenantId, parent: &RunParent) -> Result<()> {
    let Some(max) = parent.max_siblings else {
        return Ok(());
    };
    c.opt(
        crate::sql!("SELECT id FROM runs WHERE id = $1 AND tenant_id = $2 FOR UPDATE"),
        crate::args![&parent.run_id, tenant],
        |row| row.get::<String>(0),
    )
    .await?
    .ok_or_else(|| StoreError::NotFound("run".into()))?;
    let started: i64 = c
        .one(
            crate::sql!("SELECT COUNT(*) FROM runs WHERE tenant_id = $1 AND parent_run_id = $2"),
            crate::args![tenant, &parent.run_id],
            |row| row.get(0),
        )
        .await?;
    if started >= i64::from(max) {
        return Err(StoreError::LimitReached(format!(
            "this run already started {started} agent runs, the most allowed is {max}"
        )));
    }
    Ok(())
}

pub(crate) async fn next_queued_run(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    session: &SessionId,
) -> Result<Option<Run>> {
    let first = c
        .opt(
            crate::sql!("SELECT {RUN_COLUMNS} FROM runs WHERE session_id = $1 AND status IN ('queued', 'running', 'awaiting_approval') AND tenant_id = $2 ORDER BY COALESCE(queue_key, id) LIMIT 1"),
            crate::args![session, tenant],
            rows::run,
        )
        .await?;
    // A run waiting for approval holds its session: later runs wait behind it.
    Ok(first.filter(|run| run.status != RunStatus::AwaitingApproval))
}

pub(crate) async fn list_ledger(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    query: &LedgerQuery,
) -> Result<Vec<LedgerEntry>> {
    Ok(c.all(
        crate::sql!(
            "SELECT {LEDGER_COLUMNS} FROM ledger
             WHERE tenant_id = $1 AND ($2 IS NULL OR run_id = $2) AND ($3 IS NULL OR agent_id = $3)
               AND ($4 IS NULL OR id < $4) AND ($6 IS NULL OR provider = $6)
               AND ($7 IS NULL OR model = $7) AND created_at >= $8 AND created_at <= $9
             ORDER BY id DESC LIMIT $5"
        ),
        &[
            tenant.into(),
            query.run_id.as_ref().into(),
            query.agent_id.as_ref().into(),
            query.before.into(),
            Arg::Limit(query.limit),
            query.provider.as_deref().into(),
            query.model.as_deref().into(),
            query.since.map_or(i64::MIN, millis).into(),
            query.until.map_or(i64::MAX, millis).into(),
        ],
        rows::ledger_entry,
    )
    .await?)
}
