//! Tenants, policies and the audit log (keys are in `keys.rs`). Writes that
//! change them run in one transaction with their audit event, so the change
//! and its event are stored together or not at all.

use super::audit::append;
use super::keys::{self, key_info_row, KEY_INFO_COLUMNS};
use super::{Arg, Conn, Row};
use chrono::Utc;
use roster_core::{KeyId, TenantId};
use roster_store::{
    AuditEvent, AuditQuery, KeyInfo, NewAuditEvent, NewKey, PolicyDocument, PolicySnapshot,
    StoreError, TenantRecord,
};

type Result<T> = std::result::Result<T, StoreError>;

const TENANT_COLUMNS: &str = "id, name, created_at";
const POLICY_COLUMNS: &str = "name, text, created_at, updated_at";

fn tenant(row: &Row<'_>) -> Result<TenantRecord> {
    Ok(TenantRecord {
        id: TenantId::from_stored(row.get(0)?),
        name: row.get(1)?,
        created_at: row.time(2)?,
    })
}

fn policy(row: &Row<'_>) -> Result<PolicyDocument> {
    Ok(PolicyDocument {
        name: row.get(0)?,
        text: row.get(1)?,
        created_at: row.time(2)?,
        updated_at: row.time(3)?,
    })
}

fn audit_event(row: &Row<'_>) -> Result<AuditEvent> {
    Ok(AuditEvent {
        seq: row.get(0)?,
        id: row.get(1)?,
        at: row.time(2)?,
        actor: row.get(3)?,
        action: row.get(4)?,
        resource: row.get(5)?,
        decision: row.get(6)?,
        detail: row.json(7)?,
    })
}

pub(crate) async fn create_tenant(
    c: &mut Conn<'_>,
    id: &TenantId,
    name: &str,
    audit: &NewAuditEvent,
) -> Result<TenantRecord> {
    // Creations of one name take turns (a lock for the transaction), so the
    // check below cannot pass twice; SQLite's single writer already does that.
    if c.is_postgres() {
        c.exec(
            crate::sql!("SELECT pg_advisory_xact_lock(hashtext('roster.tenant:' || $1))"),
            crate::args![name],
        )
        .await?;
    }
    let inserted = c
        .exec(
            crate::sql!(
                "INSERT INTO tenants (id, name, created_at)
                 SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE name = $2)
                 ON CONFLICT DO NOTHING"
            ),
            crate::args![id, name, Utc::now()],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "a tenant named `{name}` already exists"
        )));
    }
    append(c, id, std::slice::from_ref(audit)).await?;
    get_tenant(c, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("tenant {id}")))
}

pub(crate) async fn get_tenant(c: &mut Conn<'_>, id: &TenantId) -> Result<Option<TenantRecord>> {
    Ok(c.opt(
        crate::sql!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1"),
        crate::args![id],
        tenant,
    )
    .await?)
}

pub(crate) async fn policies(c: &mut Conn<'_>, tenant: &TenantId) -> Result<PolicySnapshot> {
    // The revision is read before the documents: a change landing between
    // the two reads leaves documents newer than their revision, which the
    // next staleness check recompiles, never a revision newer than them.
    let revision = revision(c, tenant).await?;
    let documents = c
        .all(
            crate::sql!("SELECT {POLICY_COLUMNS} FROM policies WHERE tenant_id = $1 ORDER BY name"),
            crate::args![tenant],
            policy,
        )
        .await?;
    Ok(PolicySnapshot {
        revision,
        documents,
    })
}

pub(crate) async fn revision(c: &mut Conn<'_>, tenant: &TenantId) -> Result<i64> {
    let found = c
        .opt(
            crate::sql!("SELECT policy_revision FROM tenants WHERE id = $1"),
            crate::args![tenant],
            |row| row.get::<i64>(0),
        )
        .await?;
    Ok(found.unwrap_or(0))
}

/// Bumps the policy revision, only from `expected` when given: the
/// conditional update is what makes concurrent policy writers take turns.
async fn bump(c: &mut Conn<'_>, tenant: &TenantId, expected: Option<i64>) -> Result<()> {
    let changed = c
        .exec(
            crate::sql!(
                "UPDATE tenants SET policy_revision = policy_revision + 1
                 WHERE id = $1 AND (CAST($2 AS BIGINT) IS NULL OR policy_revision = $2)"
            ),
            crate::args![tenant, expected],
        )
        .await?;
    if changed == 0 {
        return Err(StoreError::Conflict(
            "the tenant's policies changed meanwhile; read them again and retry".into(),
        ));
    }
    Ok(())
}

pub(crate) async fn put_policy(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    name: &str,
    text: &str,
    expected: i64,
    audit: &NewAuditEvent,
) -> Result<PolicyDocument> {
    bump(c, tenant, Some(expected)).await?;
    c.exec(
        crate::sql!(
            "INSERT INTO policies (tenant_id, name, text, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (tenant_id, name) DO UPDATE SET text = EXCLUDED.text, updated_at = EXCLUDED.updated_at"
        ),
        crate::args![tenant, name, text, Utc::now()],
    )
    .await?;
    append(c, tenant, std::slice::from_ref(audit)).await?;
    c.opt(
        crate::sql!("SELECT {POLICY_COLUMNS} FROM policies WHERE tenant_id = $1 AND name = $2"),
        crate::args![tenant, name],
        policy,
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("policy `{name}`")))
}

pub(crate) async fn delete_policy(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    name: &str,
    audit: &NewAuditEvent,
) -> Result<bool> {
    let deleted = c
        .exec(
            crate::sql!("DELETE FROM policies WHERE tenant_id = $1 AND name = $2"),
            crate::args![tenant, name],
        )
        .await?;
    if deleted == 0 {
        return Ok(false);
    }
    bump(c, tenant, None).await?;
    append(c, tenant, std::slice::from_ref(audit)).await?;
    Ok(true)
}

pub(crate) async fn list_audit(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    query: &AuditQuery,
) -> Result<Vec<AuditEvent>> {
    Ok(c.all(
        crate::sql!(
            "SELECT seq, id, at, actor, action, resource, decision, detail FROM audit_events
             WHERE tenant_id = $1 AND seq > $2 AND at >= $3 AND at <= $4
               AND ($5 IS NULL OR action = $5 OR substr(action, 1, length($5) + 1) = $5 || '.')
               AND ($6 IS NULL OR strpos(actor, $6) > 0)
             ORDER BY seq LIMIT $7"
        ),
        &[
            tenant.into(),
            query.after.unwrap_or(0).into(),
            query.since.map_or(i64::MIN, roster_store::millis).into(),
            query.until.map_or(i64::MAX, roster_store::millis).into(),
            query.action.as_deref().into(),
            query.actor.as_deref().into(),
            Arg::Limit(query.limit),
        ],
        audit_event,
    )
    .await?)
}

crate::store_impl! {
    impl crate::GovernanceStore {
        write create_tenant(id: &TenantId, name: &str, audit: NewAuditEvent) -> TenantRecord = |c| create_tenant(c, &id, &name, &audit).await;
        read list_tenants() -> Vec<TenantRecord> = |c| c.all(
            crate::sql!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at, id"), &[], tenant).await;
        read get_tenant(id: &TenantId) -> Option<TenantRecord> = |c| get_tenant(c, &id).await;
        read find_tenant_by_name(name: &str) -> Option<TenantRecord> = |c| c.opt(
            crate::sql!("SELECT {TENANT_COLUMNS} FROM tenants WHERE name = $1"), crate::args![&name], tenant).await;
        write create_key(tenant: &TenantId, key: NewKey, audit: NewAuditEvent) -> KeyInfo = |c| keys::create_key(c, &tenant, &key, &audit).await;
        read list_keys(tenant: &TenantId) -> Vec<KeyInfo> = |c| c.all(
            crate::sql!("SELECT {KEY_INFO_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"),
            crate::args![&tenant], key_info_row).await;
        read key_info(tenant: &TenantId, id: &KeyId) -> Option<KeyInfo> = |c| keys::key_info(c, &tenant, &id).await;
        read find_key(id: &KeyId) -> Option<KeyInfo> = |c| c.opt(
            crate::sql!("SELECT {KEY_INFO_COLUMNS} FROM api_keys WHERE id = $1"), crate::args![&id], key_info_row).await;
        read key_by_hash(key_hash: &str) -> Option<KeyInfo> = |c| c.opt(
            crate::sql!("SELECT {KEY_INFO_COLUMNS} FROM api_keys WHERE key_hash = $1"), crate::args![&key_hash], key_info_row).await;
        write revoke_key(tenant: &TenantId, id: &KeyId, audit: NewAuditEvent) -> KeyInfo = |c| keys::revoke_key(c, &tenant, &id, &audit).await;
        read policies(tenant: &TenantId) -> PolicySnapshot = |c| policies(c, &tenant).await;
        read policy_revision(tenant: &TenantId) -> i64 = |c| revision(c, &tenant).await;
        write put_policy(tenant: &TenantId, name: &str, text: &str, expected: i64, audit: NewAuditEvent) -> PolicyDocument = |c| put_policy(c, &tenant, &name, &text, expected, &audit).await;
        write delete_policy(tenant: &TenantId, name: &str, audit: NewAuditEvent) -> bool = |c| delete_policy(c, &tenant, &name, &audit).await;
        read list_audit(tenant: &TenantId, query: &AuditQuery) -> Vec<AuditEvent> = |c| list_audit(c, &tenant, &query).await;
    }
    extra {
        async fn append_audit(&self, tenant: &TenantId, events: Vec<NewAuditEvent>) -> Result<()> {
            if events.is_empty() {
                return Ok(());
            }
            super::store::run!(self.write("append_audit", [tenant], |c| {
                append(c, &tenant, &events).await
            }))
        }
    }
}
