//! [`LifecycleStore`] on SQLite: session deletion and upgrade, agent
//! versions, and agent updates checked against the version they start from.

use super::{agents, governance, records, rows, sessions, SqliteStore};
use crate::types::{from_millis, millis};
use crate::*;
use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{params, Connection, OptionalExtension};

/// Statuses of a run that is not finished.
const UNFINISHED: &str = "('queued', 'running', 'awaiting_approval')";

fn delete_session(
    conn: &Connection,
    tenant: &TenantId,
    session: &SessionId,
    audit: &NewAuditEvent,
) -> Result<DeletedSession, StoreError> {
    let found = sessions::get_session(conn, tenant, session)?
        .ok_or_else(|| StoreError::NotFound("session".into()))?;
    let busy: Option<String> = rows::row(
        conn,
        &format!(
            "SELECT id FROM runs WHERE tenant_id = ?1 AND session_id = ?2 AND status IN {UNFINISHED} LIMIT 1"
        ),
        params![tenant.as_str(), session.as_str()],
        |r| r.get(0),
    )
    .optional()?;
    if let Some(run) = busy {
        return Err(StoreError::Conflict(format!(
            "the session has a run that is not finished ({run}); cancel it first"
        )));
    }
    let (items, last_seq): (i64, i64) = rows::row(
        conn,
        "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM items WHERE session_id = ?1 AND tenant_id = ?2",
        params![session.as_str(), tenant.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let ids = params![tenant.as_str(), session.as_str()];
    for sql in [
        "DELETE FROM steps WHERE tenant_id = ?1 AND run_id IN (SELECT id FROM runs WHERE tenant_id = ?1 AND session_id = ?2)",
        "DELETE FROM run_events WHERE tenant_id = ?1 AND run_id IN (SELECT id FROM runs WHERE tenant_id = ?1 AND session_id = ?2)",
        "DELETE FROM approvals WHERE tenant_id = ?1 AND session_id = ?2",
        "DELETE FROM memory_jobs WHERE tenant_id = ?1 AND session_id = ?2",
        "DELETE FROM session_summaries WHERE tenant_id = ?1 AND session_id = ?2",
        "DELETE FROM items WHERE tenant_id = ?1 AND session_id = ?2",
    ] {
        rows::exec(conn, sql, ids)?;
    }
    // The session's own copies of `session` blocks, with their history.
    let owner = format!("session:{session}");
    for sql in [
        "DELETE FROM memory_blocks WHERE agent_id = ?1 AND owner = ?2 AND tenant_id = ?3",
        "DELETE FROM memory_block_versions WHERE agent_id = ?1 AND owner = ?2 AND tenant_id = ?3",
    ] {
        rows::exec(
            conn,
            sql,
            params![found.agent_id.as_str(), owner, tenant.as_str()],
        )?;
    }
    let runs = rows::exec(
        conn,
        "DELETE FROM runs WHERE tenant_id = ?1 AND session_id = ?2",
        ids,
    )?;
    rows::exec(
        conn,
        "DELETE FROM sessions WHERE tenant_id = ?1 AND id = ?2",
        ids,
    )?;
    let now = millis(Utc::now());
    if last_seq > 0 {
        records::log(
            conn,
            tenant,
            SESSION_DELETED_LOG,
            &format!("{session}:{last_seq}"),
            now,
        )?;
    }
    governance::append(conn, tenant, std::slice::from_ref(audit))?;
    Ok(DeletedSession {
        session: found,
        runs: i64::try_from(runs).unwrap_or(i64::MAX),
        items,
    })
}

fn upgrade_session(
    conn: &Connection,
    tenant: &TenantId,
    session: &SessionId,
    audit: &NewAuditEvent,
) -> Result<(Session, i64), StoreError> {
    let found = sessions::get_session(conn, tenant, session)?
        .ok_or_else(|| StoreError::NotFound("session".into()))?;
    let current: i64 = rows::row(
        conn,
        "SELECT current_version FROM agents WHERE tenant_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        params![tenant.as_str(), found.agent_id.as_str()],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound("agent".into()))?;
    if current == found.agent_version {
        // Already there: nothing changes, so nothing is recorded.
        let from = found.agent_version;
        return Ok((found, from));
    }
    rows::exec(
        conn,
        "UPDATE sessions SET agent_version = ?3 WHERE tenant_id = ?1 AND id = ?2",
        params![tenant.as_str(), session.as_str(), current],
    )?;
    let mut audit = audit.clone();
    if let serde_json::Value::Object(detail) = &mut audit.detail {
        detail.insert("from_version".into(), found.agent_version.into());
        detail.insert("to_version".into(), current.into());
    }
    governance::append(conn, tenant, &[audit])?;
    let from = found.agent_version;
    Ok((
        Session {
            agent_version: current,
            ..found
        },
        from,
    ))
}

fn list_agent_versions(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
) -> Result<Vec<AgentVersion>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, config, created_at FROM agent_versions WHERE tenant_id = ?1 AND agent_id = ?2 ORDER BY version DESC",
    )?;
    rows::collect(&mut stmt, params![tenant.as_str(), agent.as_str()], |row| {
        let config: String = row.get(1)?;
        Ok(AgentVersion {
            version: row.get(0)?,
            config: rows::json(&config)?,
            created_at: from_millis(row.get(2)?),
        })
    })
}

fn update_agent_from(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
    base: i64,
    config: &AgentConfig,
    action: &str,
    principal: &str,
) -> Result<Agent, StoreError> {
    let current: Option<i64> = rows::row(
        conn,
        "SELECT current_version FROM agents WHERE tenant_id = ?1 AND id = ?2 AND deleted_at IS NULL",
        params![tenant.as_str(), agent.as_str()],
        |r| r.get(0),
    )
    .optional()?;
    match current {
        None => return Err(StoreError::NotFound("agent".into())),
        Some(at) if at != base => {
            return Err(StoreError::Conflict(format!(
                "the agent changed meanwhile (now version {at}, this change was made from {base})"
            )))
        }
        Some(_) => {}
    }
    let updated = agents::update_agent(conn, tenant, agent, config)?;
    governance::append(
        conn,
        tenant,
        &[crate::agent_event(action, principal, &updated)],
    )?;
    Ok(updated)
}

#[async_trait]
impl LifecycleStore for SqliteStore {
    async fn delete_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        audit: NewAuditEvent,
    ) -> StoreResult<DeletedSession> {
        let (tenant, session) = (tenant.clone(), session.clone());
        let deleted = self
            .write(move |c| delete_session(c, &tenant, &session, &audit))
            .await?;
        self.scrub_log().await;
        Ok(deleted)
    }

    async fn upgrade_session(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        audit: NewAuditEvent,
    ) -> StoreResult<(Session, i64)> {
        let (tenant, session) = (tenant.clone(), session.clone());
        self.write(move |c| upgrade_session(c, &tenant, &session, &audit))
            .await
    }

    async fn list_agent_versions(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
    ) -> StoreResult<Vec<AgentVersion>> {
        let (tenant, agent) = (tenant.clone(), agent.clone());
        self.read(move |c| list_agent_versions(c, &tenant, &agent))
            .await
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
        let (tenant, agent) = (tenant.clone(), agent.clone());
        let (action, principal) = (action.to_owned(), principal.to_owned());
        self.write(move |c| {
            update_agent_from(c, &tenant, &agent, base, &config, &action, &principal)
        })
        .await
    }
}
