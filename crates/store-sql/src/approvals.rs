//! Approvals of tool calls. A decision locks the run row on PostgreSQL, as
//! the journal does, so it cannot cross a journal write of the same run;
//! SQLite's single writer already serialises them.

use super::audit::append;
use super::{rows, Arg, Conn, Row};
use chrono::{DateTime, Utc};
use roster_core::{RunId, SessionId, TenantId};
use roster_store::{Approval, ApprovalDecision, NewApproval, NewAuditEvent, StoreError};
use serde_json::json;

type Result<T> = std::result::Result<T, StoreError>;

const COLUMNS: &str = "id, run_id, session_id, step, call_id, agent, tool, arguments, reason, policies, actor, status, created_at, expires_at, decided_at, decided_by, note";

fn approval(row: &Row<'_>) -> Result<Approval> {
    let arguments: String = row.get(7)?;
    let policies: String = row.get(9)?;
    Ok(Approval {
        id: row.get(0)?,
        run_id: RunId::from_stored(row.get(1)?),
        session_id: SessionId::from_stored(row.get(2)?),
        step: row.get(3)?,
        call_id: row.get(4)?,
        agent: row.get(5)?,
        tool: row.get(6)?,
        arguments: rows::json(&arguments)?,
        reason: row.get(8)?,
        policies: rows::json(&policies)?,
        actor: row.get(10)?,
        status: row.get(11)?,
        created_at: row.time(12)?,
        expires_at: row.time(13)?,
        decided_at: row.opt_time(14)?,
        decided_by: row.get(15)?,
        note: row.get(16)?,
    })
}

/// Journals approval requests (inside the run's journal write).
pub(crate) async fn insert(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    run: &str,
    session: &str,
    approvals: &[NewApproval],
    now: i64,
) -> Result<()> {
    for a in approvals {
        let arguments = serde_json::to_string(&a.arguments)?;
        let policies = serde_json::to_string(&a.policies)?;
        c.exec(
            crate::sql!(
                "INSERT INTO approvals (id, tenant_id, run_id, session_id, step, call_id, agent, tool, arguments, reason, policies, actor, status, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $14)"
            ),
            crate::args![
                &a.id,
                tenant,
                run,
                session,
                a.step,
                &a.call_id,
                &a.agent,
                &a.tool,
                arguments.as_str(),
                &a.reason,
                policies.as_str(),
                &a.actor,
                now,
                a.expires_at
            ],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn get(c: &mut Conn<'_>, tenant: &TenantId, id: &str) -> Result<Option<Approval>> {
    Ok(c.opt(
        crate::sql!("SELECT {COLUMNS} FROM approvals WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, id],
        approval,
    )
    .await?)
}

/// Moves a waiting run back to `running` once none of its approvals is pending.
async fn resume_if_settled(c: &mut Conn<'_>, tenant: &TenantId, run: &str) -> Result<()> {
    c.exec(
        crate::sql!(
            "UPDATE runs SET status = 'running'
             WHERE id = $1 AND tenant_id = $2 AND status = 'awaiting_approval'
               AND NOT EXISTS (SELECT 1 FROM approvals WHERE tenant_id = $2 AND run_id = $1 AND status = 'pending')"
        ),
        crate::args![run, tenant],
    )
    .await?;
    Ok(())
}

/// The run's status, its row locked for the transaction on PostgreSQL.
async fn lock_run(c: &mut Conn<'_>, tenant: &TenantId, run: &str) -> Result<Option<String>> {
    Ok(c.opt(
        crate::sql!("SELECT status FROM runs WHERE tenant_id = $1 AND id = $2 FOR UPDATE"),
        crate::args![tenant, run],
        |row| row.get::<String>(0),
    )
    .await?)
}

pub(crate) async fn decide(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &str,
    decision: ApprovalDecision,
    by: &str,
    note: Option<&str>,
    audit: &NewAuditEvent,
) -> Result<Approval> {
    let found = get(c, tenant, id)
        .await?
        .ok_or_else(|| StoreError::NotFound("approval".into()))?;
    let run_status = lock_run(c, tenant, found.run_id.as_str()).await?;
    // Read again under the run's lock: a concurrent decision is seen here.
    let found = get(c, tenant, id)
        .await?
        .ok_or_else(|| StoreError::NotFound("approval".into()))?;
    if found.status != "pending" {
        return Err(StoreError::Conflict(format!(
            "approval {id} is already {}",
            found.status
        )));
    }
    if run_status.as_deref() != Some("awaiting_approval") {
        return Err(StoreError::Conflict(format!(
            "run {} is not waiting for approval (it is {})",
            found.run_id,
            run_status.as_deref().unwrap_or("gone")
        )));
    }
    c.exec(
        crate::sql!(
            "UPDATE approvals SET status = $3, decided_at = $4, decided_by = $5, note = $6
             WHERE tenant_id = $1 AND id = $2 AND status = 'pending'"
        ),
        crate::args![tenant, id, decision.status(), Utc::now(), by, note],
    )
    .await?;
    resume_if_settled(c, tenant, found.run_id.as_str()).await?;
    append(c, tenant, std::slice::from_ref(audit)).await?;
    get(c, tenant, id)
        .await?
        .ok_or_else(|| StoreError::NotFound("approval".into()))
}

pub(crate) async fn expire(
    c: &mut Conn<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<(TenantId, Approval)>> {
    let due = c
        .all(
            crate::sql!(
                "SELECT tenant_id, id, run_id FROM approvals WHERE status = 'pending' AND expires_at <= $1
                 ORDER BY expires_at LIMIT 1000"
            ),
            crate::args![now],
            |row| {
                Ok((
                    TenantId::from_stored(row.get(0)?),
                    row.get::<String>(1)?,
                    row.get::<String>(2)?,
                ))
            },
        )
        .await?;
    let mut out = Vec::with_capacity(due.len());
    for (tenant, id, run) in due {
        if c.is_postgres() {
            lock_run(c, &tenant, &run).await?;
        }
        // Conditional: a decision may have landed since the select above.
        let changed = c
            .exec(
                crate::sql!(
                    "UPDATE approvals SET status = 'expired', decided_at = $3, decided_by = 'system'
                     WHERE tenant_id = $1 AND id = $2 AND status = 'pending'"
                ),
                crate::args![&tenant, id.as_str(), now],
            )
            .await?;
        if changed == 0 {
            continue;
        }
        resume_if_settled(c, &tenant, &run).await?;
        let Some(expired) = get(c, &tenant, &id).await? else {
            continue;
        };
        append(
            c,
            &tenant,
            &[NewAuditEvent {
                actor: "system".into(),
                action: "approval.expire".into(),
                resource: format!("approval:{id}"),
                decision: Some("deny".into()),
                detail: json!({ "run": expired.run_id, "tool": expired.tool }),
            }],
        )
        .await?;
        out.push((tenant, expired));
    }
    Ok(out)
}

pub(crate) async fn cancel(c: &mut Conn<'_>, tenant: &TenantId, run: &RunId) -> Result<usize> {
    if c.is_postgres() {
        lock_run(c, tenant, run.as_str()).await?;
    }
    let n = c
        .exec(
            crate::sql!(
                "UPDATE approvals SET status = 'cancelled', decided_at = $3, decided_by = 'system'
                 WHERE tenant_id = $1 AND run_id = $2 AND status = 'pending'"
            ),
            crate::args![tenant, run, Utc::now()],
        )
        .await?;
    resume_if_settled(c, tenant, run.as_str()).await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

crate::store_impl! {
    impl crate::ApprovalStore {
        read list_approvals(tenant: &TenantId, status: Option<&str>, limit: i64) -> Vec<Approval> = |c| c.all(
            crate::sql!("SELECT {COLUMNS} FROM approvals WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2)
                         ORDER BY created_at DESC, id DESC LIMIT $3"),
            &[(&tenant).into(), status.as_deref().into(), Arg::Limit(limit)], approval).await;
        read get_approval(tenant: &TenantId, id: &str) -> Option<Approval> = |c| get(c, &tenant, &id).await;
        read approval_for_call(tenant: &TenantId, run: &RunId, call_id: &str) -> Option<Approval> = |c| c.opt(
            crate::sql!("SELECT {COLUMNS} FROM approvals WHERE tenant_id = $1 AND run_id = $2 AND call_id = $3"),
            crate::args![&tenant, &run, &call_id], approval).await;
        write decide_approval(tenant: &TenantId, id: &str, decision: ApprovalDecision, by: &str, note: Option<&str>, audit: NewAuditEvent) -> Approval =
            |c| decide(c, &tenant, &id, decision, &by, note.as_deref(), &audit).await;
        write expire_approvals(now: DateTime<Utc>) -> Vec<(TenantId, Approval)> = |c| expire(c, now).await;
        write cancel_approvals(tenant: &TenantId, run: &RunId) -> usize = |c| cancel(c, &tenant, &run).await;
    }
}
