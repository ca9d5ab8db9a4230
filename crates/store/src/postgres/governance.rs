//! Tenants, keys, policies and the audit log on PostgreSQL. Writes that
//! change keys or policies take a transaction the caller opened, so the
//! change and its audit event commit together.

use super::rows;
use crate::governance::*;
use crate::types::{from_millis, millis};
use crate::StoreError;
use chrono::Utc;
use roster_core::{KeyId, TenantId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

const KEY_COLUMNS: &str =
    "id, tenant_id, name, kind, is_admin, scopes, expires_at, created_at, revoked_at, user_id, act_for";
const POLICY_COLUMNS: &str = "name, text, created_at, updated_at";

fn tenant(row: &PgRow) -> Result<TenantRecord, StoreError> {
    Ok(TenantRecord {
        id: TenantId::from_stored(row.try_get(0)?),
        name: row.try_get(1)?,
        created_at: from_millis(row.try_get(2)?),
    })
}

fn key(row: &PgRow) -> Result<KeyInfo, StoreError> {
    let scopes: Option<String> = row.try_get(5)?;
    Ok(KeyInfo {
        id: KeyId::from_stored(row.try_get(0)?),
        tenant_id: TenantId::from_stored(row.try_get(1)?),
        name: row.try_get(2)?,
        kind: row.try_get(3)?,
        is_admin: row.try_get(4)?,
        scopes: scopes.as_deref().map(serde_json::from_str).transpose()?,
        expires_at: row.try_get::<Option<i64>, _>(6)?.map(from_millis),
        created_at: from_millis(row.try_get(7)?),
        revoked_at: row.try_get::<Option<i64>, _>(8)?.map(from_millis),
        user: row.try_get(9)?,
        act_for: row
            .try_get::<Option<String>, _>(10)?
            .as_deref()
            .map(serde_json::from_str)
            .transpose()?,
    })
}

fn policy(row: &PgRow) -> Result<PolicyDocument, StoreError> {
    Ok(PolicyDocument {
        name: row.try_get(0)?,
        text: row.try_get(1)?,
        created_at: from_millis(row.try_get(2)?),
        updated_at: from_millis(row.try_get(3)?),
    })
}

fn audit_event(row: &PgRow) -> Result<AuditEvent, StoreError> {
    let detail: String = row.try_get(7)?;
    Ok(AuditEvent {
        seq: row.try_get(0)?,
        id: row.try_get(1)?,
        at: from_millis(row.try_get(2)?),
        actor: row.try_get(3)?,
        action: row.try_get(4)?,
        resource: row.try_get(5)?,
        decision: row.try_get(6)?,
        detail: serde_json::from_str(&detail)?,
    })
}

pub(crate) async fn append(
    conn: &mut PgConnection,
    tenant: &TenantId,
    events: &[NewAuditEvent],
) -> Result<(), StoreError> {
    let now = millis(Utc::now());
    for event in events {
        sqlx::query(
            "INSERT INTO audit_events (id, tenant_id, at, actor, action, resource, decision, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(audit_id())
        .bind(tenant.as_str())
        .bind(now)
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.resource)
        .bind(&event.decision)
        .bind(serde_json::to_string(&event.detail)?)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(crate) async fn create_tenant(
    conn: &mut PgConnection,
    id: &TenantId,
    name: &str,
    audit: &NewAuditEvent,
) -> Result<TenantRecord, StoreError> {
    // Creations of one name take turns (a lock for the transaction), so the
    // check below cannot pass twice.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('roster.tenant:' || $1))")
        .bind(name)
        .execute(&mut *conn)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO tenants (id, name, created_at)
         SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE name = $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(id.as_str())
    .bind(name)
    .bind(millis(Utc::now()))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "a tenant named `{name}` already exists"
        )));
    }
    append(conn, id, std::slice::from_ref(audit)).await?;
    get_tenant(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("tenant {id}")))
}

pub(crate) async fn list_tenants(conn: &mut PgConnection) -> Result<Vec<TenantRecord>, StoreError> {
    rows::collect(
        conn,
        sqlx::query("SELECT id, name, created_at FROM tenants ORDER BY created_at, id"),
        tenant,
    )
    .await
}

pub(crate) async fn get_tenant(
    conn: &mut PgConnection,
    id: &TenantId,
) -> Result<Option<TenantRecord>, StoreError> {
    rows::first(
        conn,
        sqlx::query("SELECT id, name, created_at FROM tenants WHERE id = $1").bind(id.as_str()),
        tenant,
    )
    .await
}

pub(crate) async fn tenant_by_name(
    conn: &mut PgConnection,
    name: &str,
) -> Result<Option<TenantRecord>, StoreError> {
    rows::first(
        conn,
        sqlx::query("SELECT id, name, created_at FROM tenants WHERE name = $1").bind(name),
        tenant,
    )
    .await
}

pub(crate) async fn create_key(
    conn: &mut PgConnection,
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
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, is_admin, kind, scopes, expires_at, created_at, user_id, act_for)
         VALUES ($1, $2, $3, $4, FALSE, $5, $6, $7, $8, $9, $10)",
    )
    .bind(new.id.as_str())
    .bind(tenant.as_str())
    .bind(&new.name)
    .bind(&new.key_hash)
    .bind(&new.kind)
    .bind(scopes)
    .bind(new.expires_at.map(millis))
    .bind(millis(Utc::now()))
    .bind(&new.user)
    .bind(act_for)
    .execute(&mut *conn)
    .await?;
    append(conn, tenant, std::slice::from_ref(audit)).await?;
    key_info(conn, tenant, &new.id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("key {}", new.id)))
}

pub(crate) async fn list_keys(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<Vec<KeyInfo>, StoreError> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
    );
    rows::collect(conn, sqlx::query(&sql).bind(tenant.as_str()), key).await
}

pub(crate) async fn key_info(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &KeyId,
) -> Result<Option<KeyInfo>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2");
    rows::first(
        conn,
        sqlx::query(&sql).bind(tenant.as_str()).bind(id.as_str()),
        key,
    )
    .await
}

pub(crate) async fn find_key(
    conn: &mut PgConnection,
    id: &KeyId,
) -> Result<Option<KeyInfo>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
    rows::first(conn, sqlx::query(&sql).bind(id.as_str()), key).await
}

pub(crate) async fn key_by_hash(
    conn: &mut PgConnection,
    hash: &str,
) -> Result<Option<KeyInfo>, StoreError> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
    rows::first(conn, sqlx::query(&sql).bind(hash), key).await
}

pub(crate) async fn revoke_key(
    conn: &mut PgConnection,
    tenant: &TenantId,
    id: &KeyId,
    audit: &NewAuditEvent,
) -> Result<KeyInfo, StoreError> {
    let changed = sqlx::query(
        "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant.as_str())
    .bind(id.as_str())
    .bind(millis(Utc::now()))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let found = key_info(conn, tenant, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("key {id}")))?;
    if changed == 0 {
        return Err(StoreError::Conflict(format!("key {id} is already revoked")));
    }
    append(conn, tenant, std::slice::from_ref(audit)).await?;
    Ok(found)
}

pub(crate) async fn policies(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<PolicySnapshot, StoreError> {
    let revision = revision(conn, tenant).await?;
    let sql = format!("SELECT {POLICY_COLUMNS} FROM policies WHERE tenant_id = $1 ORDER BY name");
    let documents = rows::collect(conn, sqlx::query(&sql).bind(tenant.as_str()), policy).await?;
    Ok(PolicySnapshot {
        revision,
        documents,
    })
}

pub(crate) async fn revision(
    conn: &mut PgConnection,
    tenant: &TenantId,
) -> Result<i64, StoreError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT policy_revision FROM tenants WHERE id = $1")
            .bind(tenant.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(found.unwrap_or(0))
}

async fn bump(
    conn: &mut PgConnection,
    tenant: &TenantId,
    expected: Option<i64>,
) -> Result<(), StoreError> {
    let changed = sqlx::query(
        "UPDATE tenants SET policy_revision = policy_revision + 1
         WHERE id = $1 AND ($2::BIGINT IS NULL OR policy_revision = $2)",
    )
    .bind(tenant.as_str())
    .bind(expected)
    .execute(conn)
    .await?
    .rows_affected();
    if changed == 0 {
        return Err(StoreError::Conflict(
            "the tenant's policies changed meanwhile; read them again and retry".into(),
        ));
    }
    Ok(())
}

pub(crate) async fn put_policy(
    conn: &mut PgConnection,
    tenant: &TenantId,
    name: &str,
    text: &str,
    expected: i64,
    audit: &NewAuditEvent,
) -> Result<PolicyDocument, StoreError> {
    bump(conn, tenant, Some(expected)).await?;
    sqlx::query(
        "INSERT INTO policies (tenant_id, name, text, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT (tenant_id, name) DO UPDATE SET text = EXCLUDED.text, updated_at = EXCLUDED.updated_at",
    )
    .bind(tenant.as_str())
    .bind(name)
    .bind(text)
    .bind(millis(Utc::now()))
    .execute(&mut *conn)
    .await?;
    append(conn, tenant, std::slice::from_ref(audit)).await?;
    let sql = format!("SELECT {POLICY_COLUMNS} FROM policies WHERE tenant_id = $1 AND name = $2");
    rows::first(
        conn,
        sqlx::query(&sql).bind(tenant.as_str()).bind(name),
        policy,
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("policy `{name}`")))
}

pub(crate) async fn delete_policy(
    conn: &mut PgConnection,
    tenant: &TenantId,
    name: &str,
    audit: &NewAuditEvent,
) -> Result<bool, StoreError> {
    let deleted = sqlx::query("DELETE FROM policies WHERE tenant_id = $1 AND name = $2")
        .bind(tenant.as_str())
        .bind(name)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    bump(conn, tenant, None).await?;
    append(conn, tenant, std::slice::from_ref(audit)).await?;
    Ok(true)
}

pub(crate) async fn list_audit(
    conn: &mut PgConnection,
    tenant: &TenantId,
    query: &AuditQuery,
) -> Result<Vec<AuditEvent>, StoreError> {
    rows::collect(
        conn,
        sqlx::query(
            "SELECT seq, id, at, actor, action, resource, decision, detail FROM audit_events
             WHERE tenant_id = $1 AND seq > $2 AND at >= $3 AND at <= $4
               AND ($5::TEXT IS NULL OR action = $5 OR starts_with(action, $5 || '.'))
               AND ($6::TEXT IS NULL OR strpos(actor, $6) > 0)
             ORDER BY seq LIMIT $7",
        )
        .bind(tenant.as_str())
        .bind(query.after.unwrap_or(0))
        .bind(query.since.map_or(i64::MIN, millis))
        .bind(query.until.map_or(i64::MAX, millis))
        .bind(&query.action)
        .bind(&query.actor)
        .bind(query.limit),
        audit_event,
    )
    .await
}
