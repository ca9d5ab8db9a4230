//! Sessions and their items.

use super::rows::{self, ITEM_COLUMNS, SESSION_COLUMNS};
use super::Conn;
use chrono::Utc;
use roster_core::item::Item;
use roster_core::{AgentId, RunId, SessionId, TenantId};
use roster_store::{from_millis, millis};
use roster_store::{Session, SessionQuery, SessionSummary, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) async fn create_session(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    agent: &AgentId,
    version: i64,
    user: Option<&str>,
) -> Result<Session> {
    let session = Session {
        metadata: Default::default(),
        id: SessionId::generate(),
        agent_id: agent.clone(),
        agent_version: version,
        user: user.map(str::to_owned),
        parent_session_id: None,
        created_at: from_millis(millis(Utc::now())),
    };
    c.exec(
        crate::sql!("INSERT INTO sessions (id, tenant_id, agent_id, agent_version, created_at, user_id) VALUES ($1, $2, $3, $4, $5, $6)"),
        crate::args![&session.id, tenant, agent, version, session.created_at, user],
    )
    .await?;
    Ok(session)
}

/// The callee's session under `parent` (one per caller session and callee
/// agent), made by the first call.
pub(crate) async fn delegate_session(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    parent: &SessionId,
    agent: &AgentId,
    version: i64,
) -> Result<Session> {
    // The caller's session row is locked first (PostgreSQL), so two calls
    // at once make one delegate session, not a unique-index error.
    let user: Option<String> = c
        .opt(
            crate::sql!("SELECT user_id FROM sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE"),
            crate::args![tenant, parent],
            |row| row.get(0),
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("session".into()))?;
    let found = c
        .opt(
            crate::sql!("SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1 AND parent_session_id = $2 AND agent_id = $3"),
            crate::args![tenant, parent, agent],
            rows::session,
        )
        .await?;
    if let Some(found) = found {
        return Ok(found);
    }
    let session = Session {
        metadata: Default::default(),
        id: SessionId::generate(),
        agent_id: agent.clone(),
        agent_version: version,
        user,
        parent_session_id: Some(parent.clone()),
        created_at: from_millis(millis(Utc::now())),
    };
    c.exec(
        crate::sql!(
            "INSERT INTO sessions (id, tenant_id, agent_id, agent_version, created_at, user_id, parent_session_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        crate::args![&session.id, tenant, agent, version, session.created_at, &session.user, parent],
    )
    .await?;
    Ok(session)
}

pub(crate) async fn get_session(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &SessionId,
) -> Result<Option<Session>> {
    Ok(c.opt(
        crate::sql!("SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, id],
        rows::session,
    )
    .await?)
}

pub(crate) async fn list_sessions(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    query: &SessionQuery,
) -> Result<Vec<Session>> {
    Ok(c.all(
        crate::sql!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE tenant_id = $1 AND ($2 IS NULL OR agent_id = $2)
               AND ($4 IS NULL OR user_id = $4)
               AND ($5 IS NULL OR user_id IS NULL OR user_id = ANY($5))
             ORDER BY id DESC LIMIT $3"
        ),
        &[
            tenant.into(),
            query.agent.as_ref().into(),
            super::Arg::Limit(query.limit),
            query.user.as_deref().into(),
            (&query.visible_users).into(),
        ],
        rows::session,
    )
    .await?)
}

/// The newest `limit` items of the history the model sees, ascending: the
/// items of rolled-back runs are left out (few runs per session are, so the
/// subquery is a short list read by the `runs_by_session` index).
pub(crate) async fn tail_items(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    session: &SessionId,
    limit: i64,
) -> Result<Vec<Item>> {
    let mut items = c
        .all(
            crate::sql!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE session_id = $1 AND tenant_id = $2 AND NOT removed
                 AND (run_id IS NULL OR run_id NOT IN (SELECT id FROM runs WHERE session_id = $1 AND rolled_back))
                 ORDER BY seq DESC LIMIT $3"
            ),
            &[session.into(), tenant.into(), super::Arg::Limit(limit)],
            rows::item,
        )
        .await?;
    items.reverse();
    Ok(items)
}

pub(crate) async fn latest_summary(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    session: &SessionId,
) -> Result<Option<SessionSummary>> {
    Ok(c.opt(
        crate::sql!(
            "SELECT version, through_seq, text, run_id, created_at FROM session_summaries
             WHERE session_id = $1 AND tenant_id = $2 ORDER BY version DESC LIMIT 1"
        ),
        crate::args![session, tenant],
        |row| {
            Ok(SessionSummary {
                version: row.get(0)?,
                through_seq: row.get(1)?,
                text: row.get(2)?,
                run_id: row.get::<Option<String>>(3)?.map(RunId::from_stored),
                created_at: row.time(4)?,
            })
        },
    )
    .await?)
}

crate::store_impl! {
    impl crate::ContextStore {
        read latest_summary(tenant: &TenantId, session: &SessionId) -> Option<SessionSummary> = |c| latest_summary(c, &tenant, &session).await;
        read items_by_seq(tenant: &TenantId, session: &SessionId, seqs: &[i64]) -> Vec<Item> = |c| c.all(
            crate::sql!("SELECT {ITEM_COLUMNS} FROM items WHERE session_id = $1 AND tenant_id = $2 AND seq = ANY($3) ORDER BY seq"),
            crate::args![&session, &tenant, &seqs], rows::item).await;
    }
}
