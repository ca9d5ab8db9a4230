//! Approvals on PostgreSQL, and [`ApprovalStore`] for [`PgStore`]. A
//! decision locks the run row, as the journal does, so it cannot cross a
//! journal write of the same run.

use super::{governance, rows, PgStore};
use crate::approvals::*;
use crate::types::{from_millis, millis};
use crate::{NewAuditEvent, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use roster_core::{RunId, SessionId, TenantId};
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

const COLUMNS: &str = "id, run_id, session_id, step, call_id, agent, tool, arguments, reason, policies, actor, status, created_at, expires_at, decided_at, decided_by, note";

fn approval(row: &PgRow) -> Result<Approval, StoreError> {
    let arguments: String = row.try_get(7)?;
    let policies: String = row.try_get(9)?;
    Ok(Approval {
        id: row.try_get(0)?,
        run_id: RunId::from_stored(row.try_get(1)?),
        session_id: SessionId::from_stored(row.try_get(2)?),
        step: row.try_get(3)?,
        call_id: row.try_get(4)?,
        agent: row.try_get(5)?,
        tool: row.try_get(6)?,
        arguments: serde_json::from_str(&arguments)?,
        reason: row.try_get(8)?,
        policies: serde_json::from_str(&policies)?,
        actor: row.try_get(10)?,
        status: row.try_get(11)?,
        created_at: from_millis(row.try_get(12)?),
        expires_at: from_millis(row.try_get(13)?),
        decided_at: row.try_get::<Option<i64>, _>(14)?.map(from_millis),
        decided_by: row.try_get(15)?,
        note: row.try_get(16)?,
    })
}

pub(crate) async fn insert(
    conn: &mut PgConnection,
    tenant: &TenantId,
    run: &str,
    session: &str,
    approvals: &[NewApproval],
    now: i64,
) -> Result<(), StoreError> {
    for a in approvals {
        sqlx::query(
            "INSERT INTO approvals (id, tenant_id, run_id, session_id, step, call_id, agent, tool, arguments, reason, policies, actor, status, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $14)",
        )
        .bind(&a.id)
        .bind(tenant.as_str())
        .bind(run)
        .bind(session)
        .bind(a.step)
        .bind(&a.call_id)
        .bind(&a.agent)
        .bind(&a.tool)
        .bind(serde_json::to_string(&a.arguments)?)
        .bind(&a.reason)
        .bind(serde_json::to_string(&a.policies)?)
        .bind(&a.actor)
        .bind(now)
        .bind(millis(a.expires_at))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Approval>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM approvals WHERE tenant_id = $1 AND id = $2");
    rows::first(
        conn,
        sqlx::query(&sql).bind(tenant.as_str()).bind(id),
        approval,
    )
    .await
}

async fn resume_if_settled(
    conn: &mut PgConnection,
    tenant: &TenantId,
    run: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE runs SET status = 'running'
         WHERE id = $1 AND tenant_id = $2 AND status = 'awaiting_approval'
           AND NOT EXISTS (SELECT 1 FROM approvals WHERE tenant_id = $2 AND run_id = $1 AND status = 'pending')",
    )
    .bind(run)
    .bind(tenant.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// The run's status, its row locked for the transaction.
async fn lock_run(
    conn: &mut PgConnection,
    tenant: &TenantId,
    run: &str,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT status FROM runs WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
            .bind(tenant.as_str())
            .bind(run)
            .fetch_optional(conn)
            .await?,
    )
}

async fn decide(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &str,
    decision: ApprovalDecision,
    by: &str,
    note: Option<&str>,
    audit: &NewAuditEvent,
) -> Result<Approval, StoreError> {
    let found = get(conn, tenant, id)
        .await?
        .ok_or_else(|| StoreError::NotFound("approval".into()))?;
    let run_status = lock_run(conn, tenant, found.run_id.as_str()).await?;
    // Read again under the run's lock: a concurrent decision is seen here.
    let found = get(conn, tenant, id)
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
    sqlx::query(
        "UPDATE approvals SET status = $3, decided_at = $4, decided_by = $5, note = $6
         WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
    )
    .bind(tenant.as_str())
    .bind(id)
    .bind(decision.status())
    .bind(millis(Utc::now()))
    .bind(by)
    .bind(note)
    .execute(&mut *conn)
    .await?;
    resume_if_settled(conn, tenant, found.run_id.as_str()).await?;
    governance::append(conn, tenant, std::slice::from_ref(audit)).await?;
    get(conn, tenant, id)
        .await?
        .ok_or_else(|| StoreError::NotFound("approval".into()))
}

#[async_trait]
impl ApprovalStore for PgStore {
    async fn list_approvals(
        &self,
        tenant: &TenantId,
        status: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<Approval>> {
        let mut c = self.conn().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM approvals WHERE tenant_id = $1 AND ($2::TEXT IS NULL OR status = $2)
             ORDER BY created_at DESC, id DESC LIMIT $3"
        );
        rows::collect(
            &mut c,
            sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(status)
                .bind(limit),
            approval,
        )
        .await
    }

    async fn get_approval(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Approval>> {
        let mut c = self.conn().await?;
        get(&mut c, tenant, id).await
    }

    async fn approval_for_call(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
    ) -> StoreResult<Option<Approval>> {
        let mut c = self.conn().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM approvals WHERE tenant_id = $1 AND run_id = $2 AND call_id = $3"
        );
        rows::first(
            &mut c,
            sqlx::query(&sql)
                .bind(tenant.as_str())
                .bind(run.as_str())
                .bind(call_id),
            approval,
        )
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
        let mut tx = self.begin().await?;
        let out = decide(&mut tx, tenant, id, decision, by, note, &audit).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn expire_approvals(&self, now: DateTime<Utc>) -> StoreResult<Vec<(TenantId, Approval)>> {
        let now = millis(now);
        let mut tx = self.begin().await?;
        let due: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT tenant_id, id, run_id FROM approvals WHERE status = 'pending' AND expires_at <= $1
             ORDER BY expires_at LIMIT 1000",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(due.len());
        for (tenant, id, run) in due {
            let tenant = TenantId::from_stored(tenant);
            lock_run(&mut tx, &tenant, &run).await?;
            let changed = sqlx::query(
                "UPDATE approvals SET status = 'expired', decided_at = $3, decided_by = 'system'
                 WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
            )
            .bind(tenant.as_str())
            .bind(&id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                continue;
            }
            resume_if_settled(&mut tx, &tenant, &run).await?;
            let Some(expired) = get(&mut tx, &tenant, &id).await? else {
                continue;
            };
            governance::append(
                &mut tx,
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
        tx.commit().await?;
        Ok(out)
    }

    async fn cancel_approvals(&self, tenant: &TenantId, run: &RunId) -> StoreResult<usize> {
        let mut tx = self.begin().await?;
        lock_run(&mut tx, tenant, run.as_str()).await?;
        let n = sqlx::query(
            "UPDATE approvals SET status = 'cancelled', decided_at = $3, decided_by = 'system'
             WHERE tenant_id = $1 AND run_id = $2 AND status = 'pending'",
        )
        .bind(tenant.as_str())
        .bind(run.as_str())
        .bind(millis(Utc::now()))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        resume_if_settled(&mut tx, tenant, run.as_str()).await?;
        tx.commit().await?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
