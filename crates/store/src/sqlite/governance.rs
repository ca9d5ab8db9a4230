//! Tenants, keys, policies and the audit log on SQLite. Each write closure
//! runs inside the writer's savepoint, so a change and its audit event are
//! stored together or not at all.

use super::rows;
use crate::governance::*;
use crate::types::{from_millis, millis};
use crate::StoreError;
use chrono::Utc;
use roster_core::{KeyId, TenantId};
use rusqlite::{params, Connection, Row};

const KEY_COLUMNS: &str =
    "id, tenant_id, name, kind, is_admin, scopes, expires_at, created_at, revoked_at, user_id, act_for";

fn tenant(row: &Row<'_>) -> Result<TenantRecord, StoreError> {
    Ok(TenantRecord {
        id: TenantId::from_stored(row.get(0)?),
        name: row.get(1)?,
        created_at: from_millis(row.get(2)?),
    })
}

fn key(row: &Row<'_>) -> Result<KeyInfo, StoreError> {
    let scopes: Option<String> = row.get(5)?;
    Ok(KeyInfo {
        id: KeyId::from_stored(row.get(0)?),
        tenant_id: TenantId::from_stored(row.get(1)?),
        name: row.get(2)?,
        kind: row.get(3)?,
        is_admin: row.get(4)?,
        scopes: scopes.as_deref().map(rows::json).transpose()?,
        expires_at: row.get::<_, Option<i64>>(6)?.map(from_millis),
        created_at: from_millis(row.get(7)?),
        revoked_at: row.get::<_, Option<i64>>(8)?.map(from_millis),
        user: row.get(9)?,
        act_for: row
            .get::<_, Option<String>>(10)?
            .as_deref()
            .map(rows::json)
            .transpose()?,
    })
}

fn audit_event(row: &Row<'_>) -> Result<AuditEvent, StoreError> {
    let detail: String = row.get(7)?;
    Ok(AuditEvent {
        seq: row.get(0)?,
        id: row.get(1)?,
        at: from_millis(row.get(2)?),
        actor: row.get(3)?,
        action: row.get(4)?,
        resource: row.get(5)?,
        decision: row.get(6)?,
        detail: rows::json(&detail)?,
    })
}

pub(crate) fn append(
    conn: &Connection,
    tenant: &TenantId,
    events: &[NewAuditEvent],
) -> Result<(), StoreError> {
    let now = millis(Utc::now());
    for event in events {
        rows::exec(
            conn,
            "INSERT INTO audit_events (id, tenant_id, at, actor, action, resource, decision, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                audit_id(),
                tenant.as_str(),
                now,
                event.actor,
                event.action,
                event.resource,
                event.decision,
                serde_json::to_string(&event.detail)?
            ],
        )?;
    }
    Ok(())
}

pub(crate) fn create_tenant(
    conn: &Connection,
    id: &TenantId,
    name: &str,
    audit: &NewAuditEvent,
) -> Result<TenantRecord, StoreError> {
    // The single writer makes this check and the insert atomic.
    let inserted = rows::exec(
        conn,
        "INSERT INTO tenants (id, name, created_at)
         SELECT ?1, ?2, ?3 WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE name = ?2)
         ON CONFLICT DO NOTHING",
        params![id.as_str(), name, millis(Utc::now())],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "a tenant named `{name}` already exists"
        )));
    }
    append(conn, id, std::slice::from_ref(audit))?;
    get_tenant(conn, id)?.ok_or_else(|| StoreError::NotFound(format!("tenant {id}")))
}

pub(crate) fn list_tenants(conn: &Connection) -> Result<Vec<TenantRecord>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, name, created_at FROM tenants ORDER BY created_at, id")?;
    rows::collect(&mut stmt, [], tenant)
}

pub(crate) fn get_tenant(
    conn: &Connection,
    id: &TenantId,
) -> Result<Option<TenantRecord>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT id, name, created_at FROM tenants WHERE id = ?1")?;
    rows::first(&mut stmt, params![id.as_str()], tenant)
}

pub(crate) fn tenant_by_name(
    conn: &Connection,
    name: &str,
) -> Result<Option<TenantRecord>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, name, created_at FROM tenants WHERE name = ?1")?;
    rows::first(&mut stmt, params![name], tenant)
}

pub(crate) fn create_key(
    conn: &Connection,
    tenant: &TenantId,
    new: &NewKey,
    audit: &NewAuditEvent,
) -> Result<KeyInfo, StoreError> {
    let scopes = new.scopes.as_ref().map(serde_json::to_string).transpose()?;
    let act_for = new
        .act_for
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    rows::exec(
        conn,
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, is_admin, kind, scopes, expires_at, created_at, user_id, act_for)
         VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            new.id.as_str(),
            tenant.as_str(),
            new.name,
            new.key_hash,
            new.kind,
            scopes,
            new.expires_at.map(millis),
            millis(Utc::now()),
            new.user,
            act_for
        ],
    )?;
    append(conn, tenant, std::slice::from_ref(audit))?;
    key_info(conn, tenant, &new.id)?.ok_or_else(|| StoreError::NotFound(format!("key {}", new.id)))
}

pub(crate) fn list_keys(conn: &Connection, tenant: &TenantId) -> Result<Vec<KeyInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 ORDER BY created_at DESC, id DESC"
    ))?;
    rows::collect(&mut stmt, params![tenant.as_str()], key)
}

pub(crate) fn key_info(
    conn: &Connection,
    tenant: &TenantId,
    id: &KeyId,
) -> Result<Option<KeyInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = ?1 AND id = ?2"
    ))?;
    rows::first(&mut stmt, params![tenant.as_str(), id.as_str()], key)
}

pub(crate) fn find_key(conn: &Connection, id: &KeyId) -> Result<Option<KeyInfo>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1"))?;
    rows::first(&mut stmt, params![id.as_str()], key)
}

pub(crate) fn key_by_hash(conn: &Connection, hash: &str) -> Result<Option<KeyInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"
    ))?;
    rows::first(&mut stmt, params![hash], key)
}

pub(crate) fn revoke_key(
    conn: &Connection,
    tenant: &TenantId,
    id: &KeyId,
    audit: &NewAuditEvent,
) -> Result<KeyInfo, StoreError> {
    let Some(found) = key_info(conn, tenant, id)? else {
        return Err(StoreError::NotFound(format!("key {id}")));
    };
    if found.revoked_at.is_some() {
        return Err(StoreError::Conflict(format!("key {id} is already revoked")));
    }
    rows::exec(
        conn,
        "UPDATE api_keys SET revoked_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
        params![tenant.as_str(), id.as_str(), millis(Utc::now())],
    )?;
    append(conn, tenant, std::slice::from_ref(audit))?;
    key_info(conn, tenant, id)?.ok_or_else(|| StoreError::NotFound(format!("key {id}")))
}

pub(crate) fn policies(conn: &Connection, tenant: &TenantId) -> Result<PolicySnapshot, StoreError> {
    let revision = revision(conn, tenant)?;
    let mut stmt = conn.prepare_cached(
        "SELECT name, text, created_at, updated_at FROM policies WHERE tenant_id = ?1 ORDER BY name",
    )?;
    let documents = rows::collect(&mut stmt, params![tenant.as_str()], |row| {
        Ok(PolicyDocument {
            name: row.get(0)?,
            text: row.get(1)?,
            created_at: from_millis(row.get(2)?),
            updated_at: from_millis(row.get(3)?),
        })
    })?;
    Ok(PolicySnapshot {
        revision,
        documents,
    })
}

pub(crate) fn revision(conn: &Connection, tenant: &TenantId) -> Result<i64, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT policy_revision FROM tenants WHERE id = ?1")?;
    Ok(rows::first(&mut stmt, params![tenant.as_str()], |r| Ok(r.get(0)?))?.unwrap_or(0))
}

fn bump(conn: &Connection, tenant: &TenantId, expected: Option<i64>) -> Result<(), StoreError> {
    let changed = rows::exec(
        conn,
        "UPDATE tenants SET policy_revision = policy_revision + 1
         WHERE id = ?1 AND (?2 IS NULL OR policy_revision = ?2)",
        params![tenant.as_str(), expected],
    )?;
    if changed == 0 {
        return Err(StoreError::Conflict(
            "the tenant's policies changed meanwhile; read them again and retry".into(),
        ));
    }
    Ok(())
}

pub(crate) fn put_policy(
    conn: &Connection,
    tenant: &TenantId,
    name: &str,
    text: &str,
    expected: i64,
    audit: &NewAuditEvent,
) -> Result<PolicyDocument, StoreError> {
    bump(conn, tenant, Some(expected))?;
    let now = millis(Utc::now());
    rows::exec(
        conn,
        "INSERT INTO policies (tenant_id, name, text, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (tenant_id, name) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at",
        params![tenant.as_str(), name, text, now],
    )?;
    append(conn, tenant, std::slice::from_ref(audit))?;
    let mut stmt = conn.prepare_cached(
        "SELECT name, text, created_at, updated_at FROM policies WHERE tenant_id = ?1 AND name = ?2",
    )?;
    rows::first(&mut stmt, params![tenant.as_str(), name], |row| {
        Ok(PolicyDocument {
            name: row.get(0)?,
            text: row.get(1)?,
            created_at: from_millis(row.get(2)?),
            updated_at: from_millis(row.get(3)?),
        })
    })?
    .ok_or_else(|| StoreError::NotFound(format!("policy `{name}`")))
}

pub(crate) fn delete_policy(
    conn: &Connection,
    tenant: &TenantId,
    name: &str,
    audit: &NewAuditEvent,
) -> Result<bool, StoreError> {
    let deleted = rows::exec(
        conn,
        "DELETE FROM policies WHERE tenant_id = ?1 AND name = ?2",
        params![tenant.as_str(), name],
    )?;
    if deleted == 0 {
        return Ok(false);
    }
    bump(conn, tenant, None)?;
    append(conn, tenant, std::slice::from_ref(audit))?;
    Ok(true)
}

pub(crate) fn list_audit(
    conn: &Connection,
    tenant: &TenantId,
    query: &AuditQuery,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, at, actor, action, resource, decision, detail FROM audit_events
         WHERE tenant_id = ?1 AND seq > ?2 AND at >= ?3 AND at <= ?4
           AND (?5 IS NULL OR action = ?5 OR substr(action, 1, length(?5) + 1) = ?5 || '.')
           AND (?6 IS NULL OR instr(actor, ?6) > 0)
         ORDER BY seq LIMIT ?7",
    )?;
    rows::collect(
        &mut stmt,
        params![
            tenant.as_str(),
            query.after.unwrap_or(0),
            query.since.map_or(i64::MIN, millis),
            query.until.map_or(i64::MAX, millis),
            query.action,
            query.actor,
            query.limit
        ],
        audit_event,
    )
}
