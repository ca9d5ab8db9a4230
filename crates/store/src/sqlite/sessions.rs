//! Sessions and their items on SQLite.

use super::rows::{self, ITEM_COLUMNS, SESSION_COLUMNS};
use crate::types::millis;
use crate::{Session, SessionQuery, StoreError};
use chrono::Utc;
use roster_core::item::Item;
use roster_core::{AgentId, SessionId, TenantId};
use rusqlite::{params, Connection};

pub(crate) fn create_session(
    conn: &Connection,
    tenant: &TenantId,
    agent: &AgentId,
    version: i64,
    user: Option<&str>,
) -> Result<Session, StoreError> {
    let session = Session {
        id: SessionId::generate(),
        agent_id: agent.clone(),
        agent_version: version,
        user: user.map(str::to_owned),
        created_at: crate::types::from_millis(millis(Utc::now())),
    };
    rows::exec(
        conn,
        "INSERT INTO sessions (id, tenant_id, agent_id, agent_version, created_at, user_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![session.id.as_str(), tenant.as_str(), agent.as_str(), version, millis(session.created_at), user],
    )?;
    Ok(session)
}

pub(crate) fn get_session(
    conn: &Connection,
    tenant: &TenantId,
    id: &SessionId,
) -> Result<Option<Session>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = ?1 AND id = ?2"
    ))?;
    rows::first(
        &mut stmt,
        params![tenant.as_str(), id.as_str()],
        rows::session,
    )
}

pub(crate) fn list_sessions(
    conn: &Connection,
    tenant: &TenantId,
    query: &SessionQuery,
) -> Result<Vec<Session>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = ?1 AND (?2 IS NULL OR agent_id = ?2)
           AND (?4 IS NULL OR user_id = ?4)
           AND (?5 IS NULL OR user_id IS NULL OR user_id IN (SELECT value FROM json_each(?5)))
         ORDER BY id DESC LIMIT ?3"
    ))?;
    let agent = query.agent.as_ref().map(|a| a.as_str().to_owned());
    let visible = query
        .visible_users
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    rows::collect(
        &mut stmt,
        params![tenant.as_str(), agent, query.limit, query.user, visible],
        rows::session,
    )
}

pub(crate) fn list_items(
    conn: &Connection,
    tenant: &TenantId,
    session: &SessionId,
    after: i64,
    limit: i64,
) -> Result<Vec<Item>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} FROM items WHERE session_id = ?1 AND tenant_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4"
    ))?;
    rows::collect(
        &mut stmt,
        params![session.as_str(), tenant.as_str(), after, limit],
        rows::item,
    )
}

pub(crate) fn tail_items(
    conn: &Connection,
    tenant: &TenantId,
    session: &SessionId,
    limit: i64,
) -> Result<Vec<Item>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} FROM items WHERE session_id = ?1 AND tenant_id = ?2 ORDER BY seq DESC LIMIT ?3"
    ))?;
    let mut items = rows::collect(
        &mut stmt,
        params![session.as_str(), tenant.as_str(), limit],
        rows::item,
    )?;
    items.reverse();
    Ok(items)
}

pub(crate) fn latest_summary(
    conn: &Connection,
    tenant: &TenantId,
    session: &SessionId,
) -> Result<Option<crate::SessionSummary>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, through_seq, text, run_id, created_at FROM session_summaries
         WHERE session_id = ?1 AND tenant_id = ?2 ORDER BY version DESC LIMIT 1",
    )?;
    rows::first(
        &mut stmt,
        params![session.as_str(), tenant.as_str()],
        |row| {
            let run_id: Option<String> = row.get(3)?;
            Ok(crate::SessionSummary {
                version: row.get(0)?,
                through_seq: row.get(1)?,
                text: row.get(2)?,
                run_id: run_id.map(roster_core::RunId::from_stored),
                created_at: crate::types::from_millis(row.get(4)?),
            })
        },
    )
}

pub(crate) fn items_by_seq(
    conn: &Connection,
    tenant: &TenantId,
    session: &SessionId,
    seqs: &[i64],
) -> Result<Vec<Item>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ITEM_COLUMNS} FROM items WHERE session_id = ?1 AND tenant_id = ?2
           AND seq IN (SELECT value FROM json_each(?3)) ORDER BY seq"
    ))?;
    rows::collect(
        &mut stmt,
        params![
            session.as_str(),
            tenant.as_str(),
            serde_json::to_string(seqs)?
        ],
        rows::item,
    )
}
