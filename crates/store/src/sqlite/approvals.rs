//! Approvals on SQLite, and [`ApprovalStore`] for [`SqliteStore`].

use super::{governance, rows, SqliteStore};
use crate::approvals::*;
use crate::types::{from_millis, millis};
use crate::{NewAuditEvent, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::{RunId, SessionId, TenantId};
use rusqlite::{params, Connection, Row};
use serde_json::json;

const COLUMNS: &str = "id, run_id, session_id, step, call_id, agent, tool, arguments, reason, policies, actor, status, created_at, expires_at, decided_at, decided_by, note";

fn approval(row: &Row<'_>) -> Result<Approval, StoreError> {
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
        created_at: from_millis(row.get(12)?),
        expires_at: from_millis(row.get(13)?),
        decided_at: row.get::<_, Option<i64>>(14)?.map(from_millis),
        decided_by: row.get(15)?,
        note: row.get(16)?,
    })
}

/// Journals approval requests (inside the run's journal write).
pub(crate) fn insert(
    conn: &Connection,
    tenant: &TenantId,
    run: &str,
    session: &str,
    approvals: &[NewApproval],
    now: i64,
) -> Result<(), StoreError> {
    for a in approvals {
        rows::exec(
            conn,
            "INSERT INTO approvals (id, tenant_id, run_id, session_id, step, call_id, agent, tool, arguments, reason, policies, actor, status, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', ?13, ?14)",
            params![
                a.id,
                tenant.as_str(),
                run,
                session,
                a.step,
                a.call_id,
                a.agent,
                a.tool,
                serde_json::to_string(&a.arguments)?,
                a.reason,
                serde_json::to_string(&a.policies)?,
                a.actor,
                now,
                millis(a.expires_at)
            ],
        )?;
    }
    Ok(())
}

fn get(conn: &Connection, tenant: &TenantId, id: &str) -> Result<Option<Approval>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM approvals WHERE tenant_id = ?1 AND id = ?2"
    ))?;
    rows::first(&mut stmt, params![tenant.as_str(), id], approval)
}

/// Moves a waiting run back to `running` once none of its approvals is pending.
fn resume_if_settled(conn: &Connection, tenant: &TenantId, run: &str) -> Result<(), StoreError> {
    rows::exec(
        conn,
        "UPDATE runs SET status = 'running'
         WHERE id = ?1 AND tenant_id = ?2 AND status = 'awaiting_approval'
           AND NOT EXISTS (SELECT 1 FROM approvals WHERE tenant_id = ?2 AND run_id = ?1 AND status = 'pending')",
        params![run, tenant.as_str()],
    )?;
    Ok(())
}

fn decide(
    conn: &Connection,
    tenant: &TenantId,
    id: &str,
    decision: ApprovalDecision,
    by: &str,
    note: Option<&str>,
    audit: &NewAuditEvent,
) -> Result<Approval, StoreError> {
    let found = get(conn, tenant, id)?.ok_or_else(|| StoreError::NotFound("approval".into()))?;
    if found.status != "pending" {
        return Err(StoreError::Conflict(format!(
            "approval {id} is already {}",
            found.status
        )));
    }
    let mut stmt =
        conn.prepare_cached("SELECT status FROM runs WHERE tenant_id = ?1 AND id = ?2")?;
    let run_status: Option<String> = rows::first(
        &mut stmt,
        params![tenant.as_str(), found.run_id.as_str()],
        |r| Ok(r.get(0)?),
    )?;
    if run_status.as_deref() != Some("awaiting_approval") {
        return Err(StoreError::Conflict(format!(
            "run {} is not waiting for approval (it is {})",
            found.run_id,
            run_status.as_deref().unwrap_or("gone")
        )));
    }
    rows::exec(
        conn,
        "UPDATE approvals SET status = ?3, decided_at = ?4, decided_by = ?5, note = ?6
         WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'",
        params![
            tenant.as_str(),
            id,
            decision.status(),
            millis(Utc::now()),
            by,
            note
        ],
    )?;
    resume_if_settled(conn, tenant, found.run_id.as_str())?;
    governance::append(conn, tenant, std::slice::from_ref(audit))?;
    get(conn, tenant, id)?.ok_or_else(|| StoreError::NotFound("approval".into()))
}

fn expire(conn: &Connection, now: i64) -> Result<Vec<(TenantId, Approval)>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT tenant_id, {COLUMNS} FROM approvals WHERE status = 'pending' AND expires_at <= ?1 ORDER BY expires_at LIMIT 1000"
    ))?;
    let mut due = Vec::new();
    let mut found = stmt.query(params![now])?;
    while let Some(row) = found.next()? {
        let tenant = TenantId::from_stored(row.get(0)?);
        let id: String = row.get(1)?;
        due.push((tenant, id));
    }
    drop(found);
    let mut out = Vec::with_capacity(due.len());
    for (tenant, id) in due {
        rows::exec(
            conn,
            "UPDATE approvals SET status = 'expired', decided_at = ?3, decided_by = 'system'
             WHERE tenant_id = ?1 AND id = ?2 AND status = 'pending'",
            params![tenant.as_str(), id, now],
        )?;
        let Some(expired) = get(conn, &tenant, &id)? else {
            continue;
        };
        resume_if_settled(conn, &tenant, expired.run_id.as_str())?;
        governance::append(
            conn,
            &tenant,
            &[NewAuditEvent {
                actor: "system".into(),
                action: "approval.expire".into(),
                resource: format!("approval:{id}"),
                decision: Some("deny".into()),
                detail: json!({ "run": expired.run_id, "tool": expired.tool }),
            }],
        )?;
        out.push((tenant, expired));
    }
    Ok(out)
}

fn cancel(conn: &Connection, tenant: &TenantId, run: &RunId) -> Result<usize, StoreError> {
    let n = rows::exec(
        conn,
        "UPDATE approvals SET status = 'cancelled', decided_at = ?3, decided_by = 'system'
         WHERE tenant_id = ?1 AND run_id = ?2 AND status = 'pending'",
        params![tenant.as_str(), run.as_str(), millis(Utc::now())],
    )?;
    resume_if_settled(conn, tenant, run.as_str())?;
    Ok(n)
}

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn list_approvals(
        &self,
        tenant: &TenantId,
        status: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Approval>> {
        let (tenant, status) = (tenant.clone(), status.map(str::to_owned));
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM approvals WHERE tenant_id = ?1 AND (?2 IS NULL OR status = ?2)
                 ORDER BY created_at DESC, id DESC LIMIT ?3"
            ))?;
            rows::collect(&mut stmt, params![tenant.as_str(), status, limit], approval)
        })
        .await
    }

    async fn get_approval(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Approval>> {
        let (tenant, id) = (tenant.clone(), id.to_owned());
        self.read(move |c| get(c, &tenant, &id)).await
    }

    async fn approval_for_call(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
    ) -> StoreResult<Option<Approval>> {
        let (tenant, run, call) = (tenant.clone(), run.clone(), call_id.to_owned());
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM approvals WHERE tenant_id = ?1 AND run_id = ?2 AND call_id = ?3"
            ))?;
            rows::first(&mut stmt, params![tenant.as_str(), run.as_str(), call], approval)
        })
        .await
    }

    async fn decide_approval(
        &self,
        tenant: &TenantId,
        id: &str,
        decision: ApprovalDecision,
        by: &str,
        note: Option<&str>,
        audit: NewAuditEvent,
    ) -> StoreResult<Approval> {
        let (tenant, id, by, note) = (
            tenant.clone(),
            id.to_owned(),
            by.to_owned(),
            note.map(str::to_owned),
        );
        self.write(move |c| decide(c, &tenant, &id, decision, &by, note.as_deref(), &audit))
            .await
    }

    async fn expire_approvals(&self, now: DateTime<Utc>) -> StoreResult<Vec<(TenantId, Approval)>> {
        let now = millis(now);
        self.write(move |c| expire(c, now)).await
    }

    async fn cancel_approvals(&self, tenant: &TenantId, run: &RunId) -> StoreResult<usize> {
        let (tenant, run) = (tenant.clone(), run.clone());
        self.write(move |c| cancel(c, &tenant, &run)).await
    }
}
