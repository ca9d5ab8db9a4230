//! Conversations: pending ones (no agent yet) kept whole in one row, and
//! the items a conversation adds or removes outside runs.

use super::rows::{self, ITEM_COLUMNS, RUN_COLUMNS};
use super::Conn;
use chrono::Utc;
use roster_core::item::{Item, ItemContent};
use roster_core::{AgentId, SessionId, TenantId};
use roster_store::conversations::{ItemPage, PendingConversation};
use roster_store::{from_millis, millis, Session, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

/// Items added outside a run, numbered from `first`, made at `at`.
fn numbered(contents: &[ItemContent], first: i64, at: i64) -> Vec<Item> {
    contents
        .iter()
        .zip(first..)
        .map(|(content, seq)| Item {
            seq,
            run_id: None,
            tokens: content.token_estimate(),
            content: content.clone(),
            created_at: from_millis(at),
        })
        .collect()
}

async fn create(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    user: Option<&str>,
    metadata: Option<&serde_json::Value>,
    items: &[ItemContent],
    created_by: &str,
) -> Result<PendingConversation> {
    let now = millis(Utc::now());
    let items = numbered(items, 1, now);
    let conversation = PendingConversation {
        id: SessionId::generate(),
        user: user.map(str::to_owned),
        metadata: metadata.cloned(),
        items,
        created_at: from_millis(now),
    };
    let metadata = metadata.map(serde_json::to_string).transpose()?;
    let body = serde_json::to_string(&conversation.items)?;
    c.exec(
        crate::sql!(
            "INSERT INTO conversations (id, tenant_id, user_id, metadata, items, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        crate::args![&conversation.id, tenant, user, metadata.as_deref(), body.as_str(), created_by, now],
    )
    .await?;
    Ok(conversation)
}

/// The pending conversation `id`; `lock`: for update (PostgreSQL).
async fn pending(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &SessionId,
    lock: bool,
) -> Result<Option<PendingConversation>> {
    let sql = if lock {
        crate::sql!("SELECT id, user_id, metadata, items, created_at FROM conversations WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
    } else {
        crate::sql!("SELECT id, user_id, metadata, items, created_at FROM conversations WHERE tenant_id = $1 AND id = $2")
    };
    c.opt(sql, crate::args![tenant, id], |row| {
        let items: String = row.get(3)?;
        Ok(PendingConversation {
            id: SessionId::from_stored(row.get(0)?),
            user: row.get(1)?,
            metadata: row.opt_json(2)?,
            items: serde_json::from_str(&items)?,
            created_at: row.time(4)?,
        })
    })
    .await
    .map_err(Into::into)
}

async fn save_items(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &SessionId,
    items: &[Item],
) -> Result<()> {
    let body = serde_json::to_string(items)?;
    c.exec(
        crate::sql!("UPDATE conversations SET items = $3 WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, id, body.as_str()],
    )
    .await?;
    Ok(())
}

async fn start(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &SessionId,
    agent: &AgentId,
) -> Result<Option<Session>> {
    let Some(found) = pending(c, tenant, id, true).await? else {
        return Ok(None);
    };
    let version: i64 = c
        .opt(
            crate::sql!("SELECT current_version FROM agents WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"),
            crate::args![tenant, agent],
            |row| row.get(0),
        )
        .await?
        .ok_or_else(|| StoreError::NotFound("agent".into()))?;
    let now = millis(Utc::now());
    let metadata = found
        .metadata
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    c.exec(
        crate::sql!(
            "INSERT INTO sessions (id, tenant_id, agent_id, agent_version, created_at, user_id, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        crate::args![id, tenant, agent, version, millis(found.created_at), &found.user, metadata.as_deref()],
    )
    .await?;
    for item in &found.items {
        insert_item(
            c,
            tenant,
            id,
            item.seq,
            &item.content,
            millis(item.created_at),
        )
        .await?;
    }
    c.exec(
        crate::sql!("DELETE FROM conversations WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, id],
    )
    .await?;
    log_items(c, tenant, id, &found.items, now).await?;
    Ok(Some(Session {
        id: id.clone(),
        agent_id: agent.clone(),
        agent_version: version,
        user: found.user,
        parent_session_id: None,
        created_at: found.created_at,
        metadata: found.metadata,
    }))
}

async fn insert_item(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    session: &SessionId,
    seq: i64,
    content: &ItemContent,
    at: i64,
) -> Result<()> {
    let body = serde_json::to_string(content)?;
    c.exec(
        crate::sql!("INSERT INTO items (session_id, seq, tenant_id, run_id, kind, content, tokens, created_at) VALUES ($1, $2, $3, NULL, $4, $5, $6, $7)"),
        crate::args![session, seq, tenant, content.kind(), body.as_str(), content.token_estimate(), at],
    )
    .await?;
    Ok(())
}

/// Puts items added outside a run in the search log (last: on PostgreSQL
/// the append takes the lock that orders log ids).
async fn log_items(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    session: &SessionId,
    items: &[Item],
    now: i64,
) -> Result<()> {
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return Ok(());
    };
    let reference = format!("{session}:{}:{}", first.seq, last.seq);
    super::records::log_all(c, tenant, "items", &[reference], now).await?;
    Ok(())
}

async fn set_metadata(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &SessionId,
    metadata: Option<&serde_json::Value>,
) -> Result<bool> {
    let metadata = metadata.map(serde_json::to_string).transpose()?;
    let changed = c
        .exec(
            crate::sql!("UPDATE sessions SET metadata = $3 WHERE tenant_id = $1 AND id = $2"),
            crate::args![tenant, id, metadata.as_deref()],
        )
        .await?;
    if changed > 0 {
        return Ok(true);
    }
    Ok(c.exec(
        crate::sql!("UPDATE conversations SET metadata = $3 WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, id, metadata.as_deref()],
    )
    .await?
        > 0)
}

async fn append(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &SessionId,
    contents: &[ItemContent],
) -> Result<Vec<Item>> {
    let now = millis(Utc::now());
    let session: Option<String> = c
        .opt(
            crate::sql!("SELECT id FROM sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE"),
            crate::args![tenant, id],
            |row| row.get(0),
        )
        .await?;
    if session.is_none() {
        let Some(mut found) = pending(c, tenant, id, true).await? else {
            return Err(StoreError::NotFound("conversation".into()));
        };
        let next = found.items.last().map_or(1, |i| i.seq + 1);
        let added = numbered(contents, next, now);
        found.items.extend(added.iter().cloned());
        save_items(c, tenant, id, &found.items).await?;
        return Ok(added);
    }
    let busy: i64 = c
        .one(
            crate::sql!("SELECT COUNT(*) FROM runs WHERE session_id = $1 AND tenant_id = $2 AND status IN ('queued', 'running', 'awaiting_approval')"),
            crate::args![id, tenant],
            |row| row.get(0),
        )
        .await?;
    if busy > 0 {
        return Err(StoreError::SessionBusy(id.to_string()));
    }
    let last: i64 = c
        .one(
            crate::sql!(
                "SELECT COALESCE(MAX(seq), 0) FROM items WHERE session_id = $1 AND tenant_id = $2"
            ),
            crate::args![id, tenant],
            |row| row.get(0),
        )
        .await?;
    let added = numbered(contents, last + 1, now);
    for item in &added {
        insert_item(c, tenant, id, item.seq, &item.content, now).await?;
    }
    log_items(c, tenant, id, &added, now).await?;
    Ok(added)
}

async fn page(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &SessionId,
    page: ItemPage,
) -> Result<Vec<Item>> {
    if let Some(found) = pending(c, tenant, id, false).await? {
        let mut items = found.items;
        if page.descending {
            items.reverse();
        }
        let limit = usize::try_from(page.limit).unwrap_or(0);
        return Ok(items
            .into_iter()
            .filter(|i| match page.after {
                None => true,
                Some(after) if page.descending => i.seq < after,
                Some(after) => i.seq > after,
            })
            .take(limit)
            .collect());
    }
    let sql = if page.descending {
        crate::sql!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE session_id = $1 AND tenant_id = $2 AND NOT removed
             AND ($3 IS NULL OR seq < $3) ORDER BY seq DESC LIMIT $4"
        )
    } else {
        crate::sql!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE session_id = $1 AND tenant_id = $2 AND NOT removed
             AND ($3 IS NULL OR seq > $3) ORDER BY seq LIMIT $4"
        )
    };
    c.all(
        sql,
        &[
            id.into(),
            tenant.into(),
            page.after.into(),
            super::Arg::Limit(page.limit),
        ],
        rows::item,
    )
    .await
    .map_err(Into::into)
}

async fn remove(c: &mut Conn<'_>, tenant: &TenantId, id: &SessionId, seq: i64) -> Result<bool> {
    let changed = c
        .exec(
            crate::sql!("UPDATE items SET removed = TRUE WHERE session_id = $1 AND tenant_id = $2 AND seq = $3 AND NOT removed"),
            crate::args![id, tenant, seq],
        )
        .await?;
    if changed > 0 {
        return Ok(true);
    }
    let Some(mut found) = pending(c, tenant, id, true).await? else {
        return Ok(false);
    };
    let before = found.items.len();
    found.items.retain(|i| i.seq != seq);
    if found.items.len() == before {
        return Ok(false);
    }
    save_items(c, tenant, id, &found.items).await?;
    Ok(true)
}

async fn set_surface(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    run: &roster_core::RunId,
    surface: &serde_json::Value,
) -> Result<bool> {
    let turn: Option<Option<roster_core::turn::Turn>> = c
        .opt(
            crate::sql!("SELECT turn FROM runs WHERE tenant_id = $1 AND id = $2 FOR UPDATE"),
            crate::args![tenant, run],
            |row| row.opt_json(0),
        )
        .await?;
    let Some(turn) = turn else {
        return Ok(false);
    };
    let turn = roster_core::turn::Turn {
        surface: Some(surface.clone()),
        ..turn.unwrap_or_default()
    };
    let body = serde_json::to_string(&turn)?;
    c.exec(
        crate::sql!("UPDATE runs SET turn = $3 WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, run, body.as_str()],
    )
    .await?;
    Ok(true)
}

crate::store_impl! {
    impl roster_store::conversations::ConversationStore {
        write create_conversation(tenant: &TenantId, user: Option<&str>, metadata: Option<serde_json::Value>,
                                  items: Vec<ItemContent>, created_by: &str) -> PendingConversation =
            |c| create(c, &tenant, user.as_deref(), metadata.as_ref(), &items, &created_by).await;
        read pending_conversation(tenant: &TenantId, id: &SessionId) -> Option<PendingConversation> =
            |c| pending(c, &tenant, &id, false).await;
        write start_conversation(tenant: &TenantId, id: &SessionId, agent: &AgentId) -> Option<Session> =
            |c| start(c, &tenant, &id, &agent).await;
        write set_conversation_metadata(tenant: &TenantId, id: &SessionId, metadata: Option<serde_json::Value>) -> bool =
            |c| set_metadata(c, &tenant, &id, metadata.as_ref()).await;
        write delete_pending_conversation(tenant: &TenantId, id: &SessionId) -> bool =
            |c| c.exec(crate::sql!("DELETE FROM conversations WHERE tenant_id = $1 AND id = $2"), crate::args![&tenant, &id])
                .await.map(|n| n > 0);
        write append_conversation_items(tenant: &TenantId, id: &SessionId, items: Vec<ItemContent>) -> Vec<Item> =
            |c| append(c, &tenant, &id, &items).await;
        read page_conversation_items(tenant: &TenantId, id: &SessionId, page: ItemPage) -> Vec<Item> =
            |c| self::page(c, &tenant, &id, page).await;
        write remove_conversation_item(tenant: &TenantId, id: &SessionId, seq: i64) -> bool =
            |c| remove(c, &tenant, &id, seq).await;
        read list_agent_runs(tenant: &TenantId, agent: &AgentId, session: Option<&SessionId>,
                             visible: Option<Vec<String>>, before: Option<&roster_core::RunId>, limit: i64) -> Vec<roster_core::run::Run> =
            |c| c.all(
                crate::sql!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1
                     AND session_id IN (SELECT id FROM sessions WHERE tenant_id = $1 AND agent_id = $2
                                        AND ($3 IS NULL OR user_id IS NULL OR user_id = ANY($3)))
                     AND ($4 IS NULL OR id < $4) AND ($5 IS NULL OR session_id = $5)
                     ORDER BY id DESC LIMIT $6"
                ),
                &[(&tenant).into(), (&agent).into(), (&visible).into(), before.as_ref().into(),
                  session.as_ref().into(), crate::Arg::Limit(limit)],
                rows::run,
            ).await;
        write set_run_surface(tenant: &TenantId, run: &roster_core::RunId, surface: serde_json::Value) -> bool =
            |c| set_surface(c, &tenant, &run, &surface).await;
    }
}
