//! Session deletion and upgrade, agent versions, and agent updates checked
//! against the version they start from. On PostgreSQL the session's (or
//! agent's) row is locked first, so a run being created or an update racing
//! this one waits for it; SQLite's single writer already serialises them.

use super::sessions::get_session;
use super::{Conn, Db};
use chrono::Utc;
use roster_core::agent::{Agent, AgentConfig};
use roster_core::{AgentId, SessionId, TenantId};
use roster_store::millis;
use roster_store::{AgentVersion, DeletedSession, SESSION_DELETED_LOG};
use roster_store::{NewAuditEvent, Session, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Statuses of a run that is not finished.
const UNFINISHED: &str = "('queued', 'running', 'awaiting_approval')";

async fn lock_session(c: &mut Conn<'_>, tenant: &TenantId, session: &SessionId) -> Result<Session> {
    if c.is_postgres() {
        c.exec(
            crate::sql!("SELECT 1 FROM sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE"),
            crate::args![tenant, session],
        )
        .await?;
    }
    get_session(c, tenant, session)
        .await?
        .ok_or_else(|| StoreError::NotFound("session".into()))
}

pub(crate) async fn delete_session(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    session: &SessionId,
    audit: &NewAuditEvent,
) -> Result<DeletedSession> {
    let found = lock_session(c, tenant, session).await?;
    // Its delegate sessions (agents it asked) hold its conversation too:
    // they go first, each with its own audit event, in this transaction.
    let delegates: Vec<String> = c
        .all(
            crate::sql!("SELECT id FROM sessions WHERE tenant_id = $1 AND parent_session_id = $2 ORDER BY id"),
            crate::args![tenant, session],
            |row| row.get(0),
        )
        .await?;
    for delegate in delegates {
        let delegate = SessionId::from_stored(delegate);
        let mut event = audit.clone();
        event.resource = format!("session:{delegate}");
        Box::pin(delete_session(c, tenant, &delegate, &event)).await?;
    }
    let busy: Option<String> = c
        .opt(
            crate::sql!(
                "SELECT id FROM runs WHERE tenant_id = $1 AND session_id = $2 AND status IN {UNFINISHED} LIMIT 1"
            ),
            crate::args![tenant, session],
            |row| row.get(0),
        )
        .await?;
    if let Some(run) = busy {
        return Err(StoreError::Conflict(format!(
            "the session has a run that is not finished ({run}); cancel it first"
        )));
    }
    let (items, last_seq): (i64, i64) = c
        .one(
            crate::sql!(
                "SELECT COUNT(*), COALESCE(MAX(seq), 0) FROM items WHERE tenant_id = $1 AND session_id = $2"
            ),
            crate::args![tenant, session],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .await?;
    for sql in [
        crate::sql!("DELETE FROM steps WHERE tenant_id = $1 AND run_id IN (SELECT id FROM runs WHERE tenant_id = $1 AND session_id = $2)"),
        crate::sql!("DELETE FROM run_events WHERE tenant_id = $1 AND run_id IN (SELECT id FROM runs WHERE tenant_id = $1 AND session_id = $2)"),
        // What its runs' notifications carried (their output) goes too.
        crate::sql!("DELETE FROM notification_attempts WHERE tenant_id = $1 AND notification_id IN
                     (SELECT n.id FROM notifications n JOIN runs r ON r.id = n.run_id AND r.tenant_id = n.tenant_id
                      WHERE n.tenant_id = $1 AND r.session_id = $2)"),
        crate::sql!("DELETE FROM notifications WHERE tenant_id = $1 AND run_id IN (SELECT id FROM runs WHERE tenant_id = $1 AND session_id = $2)"),
        crate::sql!("DELETE FROM approvals WHERE tenant_id = $1 AND session_id = $2"),
        crate::sql!("DELETE FROM memory_jobs WHERE tenant_id = $1 AND session_id = $2"),
        crate::sql!("DELETE FROM session_summaries WHERE tenant_id = $1 AND session_id = $2"),
        crate::sql!("DELETE FROM items WHERE tenant_id = $1 AND session_id = $2"),
        // Its conversations with remote A2A agents.
        crate::sql!("DELETE FROM remote_contexts WHERE tenant_id = $1 AND session_id = $2"),
    ] {
        c.exec(sql, crate::args![tenant, session]).await?;
    }
    // The session's own copies of `session` blocks, with their history.
    let owner = format!("session:{session}");
    for sql in [
        crate::sql!("DELETE FROM memory_blocks WHERE agent_id = $1 AND owner = $2 AND tenant_id = $3"),
        crate::sql!("DELETE FROM memory_block_versions WHERE agent_id = $1 AND owner = $2 AND tenant_id = $3"),
    ] {
        c.exec(sql, crate::args![&found.agent_id, owner.as_str(), tenant])
            .await?;
    }
    let runs = c
        .exec(
            crate::sql!("DELETE FROM runs WHERE tenant_id = $1 AND session_id = $2"),
            crate::args![tenant, session],
        )
        .await?;
    c.exec(
        crate::sql!("DELETE FROM sessions WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, session],
    )
    .await?;
    if last_seq > 0 {
        super::records::log_all(
            c,
            tenant,
            SESSION_DELETED_LOG,
            &[format!("{session}:{last_seq}")],
            millis(Utc::now()),
        )
        .await?;
    }
    super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    Ok(DeletedSession {
        session: found,
        runs: i64::try_from(runs).unwrap_or(i64::MAX),
        items,
    })
}

pub(crate) async fn upgrade_session(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    session: &SessionId,
    audit: &NewAuditEvent,
) -> Result<(Session, i64)> {
    let found = lock_session(c, tenant, session).await?;
    let current: i64 = c
        .opt(
            crate::sql!(
                "SELECT current_version FROM agents WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
            ),
            crate::args![tenant, &found.agent_id],
            |row| row.get(0),
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("agent".into()))?;
    if current == found.agent_version {
        // Already there: nothing changes, so nothing is recorded.
        let from = found.agent_version;
        return Ok((found, from));
    }
    c.exec(
        crate::sql!("UPDATE sessions SET agent_version = $3 WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, session, current],
    )
    .await?;
    let mut audit = audit.clone();
    if let serde_json::Value::Object(detail) = &mut audit.detail {
        detail.insert("from_version".into(), found.agent_version.into());
        detail.insert("to_version".into(), current.into());
    }
    super::audit::append(c, tenant, &[audit]).await?;
    let from = found.agent_version;
    Ok((
        Session {
            agent_version: current,
            ..found
        },
        from,
    ))
}

pub(crate) async fn update_agent_from(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &AgentId,
    base: i64,
    config: &AgentConfig,
    action: &str,
    principal: &str,
) -> Result<Agent> {
    let current: Option<i64> = c
        .opt(
            crate::sql!(
                "SELECT current_version FROM agents WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL FOR UPDATE"
            ),
            crate::args![tenant, agent],
            |row| row.get(0),
        )
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
    let updated = super::agents::update_agent(c, tenant, agent, config).await?;
    super::audit::append(
        c,
        tenant,
        &[crate::agent_event(action, principal, &updated)],
    )
    .await?;
    Ok(updated)
}

/// Empties SQLite's write-ahead log after a delete, so what was deleted is
/// not left readable in its older frames (best effort, see
/// `SqliteStore::scrub_log`); PostgreSQL has nothing to scrub.
async fn scrub_log(db: &Db) {
    let mut db = db;
    while let Db::Faulty(inner, _) = db {
        db = inner;
    }
    if let Db::Sqlite(store) = db {
        store.scrub_log().await;
    }
}

crate::store_impl! {
    impl crate::LifecycleStore {
        write upgrade_session(tenant: &TenantId, session: &SessionId, audit: NewAuditEvent) -> (Session, i64) = |c| upgrade_session(c, &tenant, &session, &audit).await;
        read list_agent_versions(tenant: &TenantId, agent: &AgentId) -> Vec<AgentVersion> = |c| c.all(
            crate::sql!("SELECT version, config, created_at FROM agent_versions WHERE tenant_id = $1 AND agent_id = $2 ORDER BY version DESC"),
            crate::args![&tenant, &agent],
            |row| Ok(AgentVersion { version: row.get(0)?, config: row.json(1)?, created_at: row.time(2)? }),
        ).await;
        write update_agent_from(tenant: &TenantId, agent: &AgentId, base: i64, config: AgentConfig, action: &str, principal: &str) -> Agent =
            |c| update_agent_from(c, &tenant, &agent, base, &config, &action, &principal).await;
    }
    extra {
        async fn delete_session(
            &self,
            tenant: &TenantId,
            session: &SessionId,
            audit: NewAuditEvent,
        ) -> Result<DeletedSession> {
            let deleted = super::store::run!(self.write("delete_session", [tenant, session], |c| {
                delete_session(c, &tenant, &session, &audit).await
            }))?;
            scrub_log(&self.db).await;
            Ok(deleted)
        }
    }
}
