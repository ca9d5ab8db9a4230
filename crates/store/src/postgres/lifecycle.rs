//! [`LifecycleStore`] on PostgreSQL: the same statements as SQLite's, in
//! one transaction each, with the session's (or agent's) row locked first
//! so a run being created or an update racing this one waits for it.

use super::{agents, governance, records, rows, sessions, PgStore};
use crate::types::millis;
use crate::*;
use async_trait::async_trait;
use chrono::Utc;
use sqlx::postgres::PgConnection;
use sqlx::Row;

const UNFINISHED: &str = "('queued', 'running', 'awaiting_approval')";

async fn lock_session(
    conn: &mut PgConnection,
    tenant: &TenantId,
    session: &SessionId,
) -> Result<Session, StoreError> {
    sqlx::query("SELECT 1 FROM sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
        .bind(tenant.as_str())
        .bind(session.as_str())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::NotFound("session".into()))?;
    sessions::get_session(conn, tenant, session)
        .await?
        .ok_or_else(|| StoreError::NotFound("session".into()))
}

async fn delete_session(
    conn: &mut PgConnection,
    tenant: &TenantId,
    session: &SessionId,
    audit: &NewAuditEvent,
) -> Result<DeletedSession, StoreError> {
    let found = lock_session(conn, tenant, session).await?;
    let busy: Option<String> = sqlx::query_scalar(&format!(
        "SELECT id FROM runs WHERE tenant_id = $1 AND session_id = $2 AND status IN {UNFINISHED} LIMIT 1"
    ))
    .bind(tenant.as_str())
    .bind(session.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(run) = busy {
        return Err(StoreError::Conflict(format!(
            "the session has a run that is not finished ({run}); cancel it first"
        )));
    }
    let counted = sqlx::query(
        "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM items WHERE tenant_id = $1 AND session_id = $2",
    )
    .bind(tenant.as_str())
    .bind(session.as_str())
    .fetch_one(&mut *conn)
    .await?;
    let (items, last_seq): (i64, i64) = (counted.try_get(0)?, counted.try_get(1)?);
    for sql in [
        "DELETE FROM steps WHERE tenant_id = $1 AND run_id IN (SELECT id FROM runs WHERE tenant_id = $1 AND session_id = $2)",
        "DELETE FROM run_events WHERE tenant_id = $1 AND run_id IN (SELECT id FROM runs WHERE tenant_id = $1 AND session_id = $2)",
        "DELETE FROM approvals WHERE tenant_id = $1 AND session_id = $2",
        "DELETE FROM memory_jobs WHERE tenant_id = $1 AND session_id = $2",
        "DELETE FROM session_summaries WHERE tenant_id = $1 AND session_id = $2",
        "DELETE FROM items WHERE tenant_id = $1 AND session_id = $2",
    ] {
        sqlx::query(sql)
            .bind(tenant.as_str())
            .bind(session.as_str())
            .execute(&mut *conn)
            .await?;
    }
    // The session's own copies of `session` blocks, with their history.
    let owner = format!("session:{session}");
    for sql in [
        "DELETE FROM memory_blocks WHERE agent_id = $1 AND owner = $2 AND tenant_id = $3",
        "DELETE FROM memory_block_versions WHERE agent_id = $1 AND owner = $2 AND tenant_id = $3",
    ] {
        sqlx::query(sql)
            .bind(found.agent_id.as_str())
            .bind(&owner)
            .bind(tenant.as_str())
            .execute(&mut *conn)
            .await?;
    }
    let runs = sqlx::query("DELETE FROM runs WHERE tenant_id = $1 AND session_id = $2")
        .bind(tenant.as_str())
        .bind(session.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(session.as_str())
        .execute(&mut *conn)
        .await?;
    if last_seq > 0 {
        records::log_all(
            conn,
            tenant,
            SESSION_DELETED_LOG,
            &[format!("{session}:{last_seq}")],
            millis(Utc::now()),
        )
        .await?;
    }
    governance::append(conn, tenant, std::slice::from_ref(audit)).await?;
    Ok(DeletedSession {
        session: found,
        runs: i64::try_from(runs).unwrap_or(i64::MAX),
        items,
    })
}

async fn upgrade_session(
    conn: &mut PgConnection,
    tenant: &TenantId,
    session: &SessionId,
    audit: &NewAuditEvent,
) -> Result<(Session, i64), StoreError> {
    let found = lock_session(conn, tenant, session).await?;
    let current: i64 = sqlx::query_scalar(
        "SELECT current_version FROM agents WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(found.agent_id.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::NotFound("agent".into()))?;
    if current == found.agent_version {
        // Already there: nothing changes, so nothing is recorded.
        let from = found.agent_version;
        return Ok((found, from));
    }
    sqlx::query("UPDATE sessions SET agent_version = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_str())
        .bind(session.as_str())
        .bind(current)
        .execute(&mut *conn)
        .await?;
    let mut audit = audit.clone();
    if let serde_json::Value::Object(detail) = &mut audit.detail {
        detail.insert("from_version".into(), found.agent_version.into());
        detail.insert("to_version".into(), current.into());
    }
    governance::append(conn, tenant, &[audit]).await?;
    let from = found.agent_version;
    Ok((
        Session {
            agent_version: current,
            ..found
        },
        from,
    ))
}

fn agent_version(row: &sqlx::postgres::PgRow) -> Result<AgentVersion, StoreError> {
    let config: String = row.try_get(1)?;
    Ok(AgentVersion {
        version: row.try_get(0)?,
        config: rows::json(&config)?,
        created_at: crate::types::from_millis(row.try_get(2)?),
    })
}

async fn update_agent_from(
    conn: &mut PgConnection,
    tenant: &TenantId,
    agent: &AgentId,
    base: i64,
    config: &AgentConfig,
    action: &str,
    principal: &str,
) -> Result<Agent, StoreError> {
    let current: Option<i64> = sqlx::query_scalar(
        "SELECT current_version FROM agents WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(tenant.as_str())
    .bind(agent.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match current {
        None => return Err(StoreError::NotFound("agent".into())),
        Some(at) if at != base => {
            return Err(StoreError::Conflict(format!(
                "the agent changed meanwhile (now version {at}, this change was made from {base})"
            )))
        }
        Some(_) => {}
    }
    let updated = agents::update_agent(conn, tenant, agent, config).await?;
    governance::append(
        conn,
        tenant,
        &[crate::agent_event(action, principal, &updated)],
    )
    .await?;
    Ok(updated)
}

#[async_trait]
impl LifecycleStore for PgStore {
    async fn delete_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        audit: NewAuditEvent,
    ) -> StoreResult<DeletedSession> {
        let mut tx = self.begin().await?;
        let deleted = delete_session(&mut tx, tenant, session, &audit).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn upgrade_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        audit: NewAuditEvent,
    ) -> StoreResult<(Session, i64)> {
        let mut tx = self.begin().await?;
        let upgraded = upgrade_session(&mut tx, tenant, session, &audit).await?;
        tx.commit().await?;
        Ok(upgraded)
    }

    async fn list_agent_versions(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<AgentVersion>> {
        let mut c = self.conn().await?;
        let query = sqlx::query(
            "SELECT version, config, created_at FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2 ORDER BY version DESC",
        )
        .bind(tenant.as_str())
        .bind(agent.as_str());
        rows::collect(&mut c, query, agent_version).await
    }

    async fn update_agent_from(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        base: i64,
        config: AgentConfig,
        action: &str,
        principal: &str,
    ) -> StoreResult<Agent> {
        let mut tx = self.begin().await?;
        let updated =
            update_agent_from(&mut tx, tenant, agent, base, &config, action, principal).await?;
        tx.commit().await?;
        Ok(updated)
    }
}
