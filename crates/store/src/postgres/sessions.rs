//! Sessions and their items on PostgreSQL.

use super::rows::{self, ITEM_COLUMNS, SESSION_COLUMNS};
use crate::types::{from_millis, millis};
use crate::{Session, SessionQuery, StoreError};
use chrono::Utc;
use roster_core::item::Item;
use roster_core::{AgentId, SessionId, TenantId};
use sqlx::postgres::PgConnection;

pub(crate) async fn create_session(
    conn: &mut PgConnection,
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
        created_at: from_millis(millis(Utc::now())),
    };
    sqlx::query(
        "INSERT INTO sessions (id, tenant_id, agent_id, agent_version, created_at, user_id) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(session.id.as_str())
    .bind(tenant.as_str())
    .bind(agent.as_str())
    .bind(version)
    .bind(millis(session.created_at))
    .bind(user)
    .execute(conn)
    .await?;
    Ok(session)
}

pub(crate) async fn get_session(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &SessionId,
) -> Result<Option<Session>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1 AND id = $2");
    let query = sqlx::query(&sql).bind(tenant.as_str()).bind(id.as_str());
    rows::first(conn, query, rows::session).await
}

pub(crate) async fn list_sessions(
    conn: &mut PgConnection,
    tenant: &TenantId,
    query: &SessionQuery,
) -> Result<Vec<Session>, StoreError> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1 AND ($2::text IS NULL OR agent_id = $2)
           AND ($4::text IS NULL OR user_id = $4)
           AND ($5::text[] IS NULL OR user_id IS NULL OR user_id = ANY($5))
         ORDER BY id DESC LIMIT $3"
    );
    let q = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(query.agent.as_ref().map(|a| a.as_str()))
        .bind(rows::limit(query.limit))
        .bind(query.user.as_deref())
        .bind(query.visible_users.as_deref());
    rows::collect(conn, q, rows::session).await
}

pub(crate) async fn list_items(
    conn: &mut PgConnection,
    tenant: &TenantId,
    session: &SessionId,
    after: i64,
    limit: i64,
) -> Result<Vec<Item>, StoreError> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM items WHERE session_id = $1 AND tenant_id = $2 AND seq > $3 ORDER BY seq LIMIT $4"
    );
    let query = sqlx::query(&sql)
        .bind(session.as_str())
        .bind(tenant.as_str())
        .bind(after)
        .bind(rows::limit(limit));
    rows::collect(conn, query, rows::item).await
}

pub(crate) async fn tail_items(
    conn: &mut PgConnection,
    tenant: &TenantId,
    session: &SessionId,
    limit: i64,
) -> Result<Vec<Item>, StoreError> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM items WHERE session_id = $1 AND tenant_id = $2 ORDER BY seq DESC LIMIT $3"
    );
    let query = sqlx::query(&sql)
        .bind(session.as_str())
        .bind(tenant.as_str())
        .bind(rows::limit(limit));
    let mut items = rows::collect(conn, query, rows::item).await?;
    items.reverse();
    Ok(items)
}

pub(crate) async fn latest_summary(
    conn: &mut PgConnection,
    tenant: &TenantId,
    session: &SessionId,
) -> Result<Option<crate::SessionSummary>, StoreError> {
    let query = sqlx::query(
        "SELECT version, through_seq, text, run_id, created_at FROM session_summaries
         WHERE session_id = $1 AND tenant_id = $2 ORDER BY version DESC LIMIT 1",
    )
    .bind(session.as_str())
    .bind(tenant.as_str());
    rows::first(conn, query, |row| {
        use sqlx::Row;
        let run_id: Option<String> = row.try_get(3)?;
        Ok(crate::SessionSummary {
            version: row.try_get(0)?,
            through_seq: row.try_get(1)?,
            text: row.try_get(2)?,
            run_id: run_id.map(roster_core::RunId::from_stored),
            created_at: from_millis(row.try_get(4)?),
        })
    })
    .await
}

pub(crate) async fn items_by_seq(
    conn: &mut PgConnection,
    tenant: &TenantId,
    session: &SessionId,
    seqs: &[i64],
) -> Result<Vec<Item>, StoreError> {
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM items WHERE session_id = $1 AND tenant_id = $2 AND seq = ANY($3) ORDER BY seq"
    );
    let query = sqlx::query(&sql)
        .bind(session.as_str())
        .bind(tenant.as_str())
        .bind(seqs);
    rows::collect(conn, query, rows::item).await
}
