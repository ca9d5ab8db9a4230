//! API keys as governance sees them: scopes, expiry, revocation. Every
//! change is written with its audit event, in the same transaction.

use super::audit::append;
use super::{rows, Conn, Row};
use chrono::Utc;
use roster_core::{KeyId, TenantId};
use roster_store::{KeyInfo, NewAuditEvent, NewKey, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) const KEY_INFO_COLUMNS: &str =
    "id, tenant_id, name, kind, is_admin, scopes, expires_at, created_at, revoked_at, user_id, act_for";

pub(crate) fn key_info_row(row: &Row<'_>) -> Result<KeyInfo> {
    let scopes: Option<String> = row.get(5)?;
    let act_for: Option<String> = row.get(10)?;
    Ok(KeyInfo {
        id: KeyId::from_stored(row.get(0)?),
        tenant_id: TenantId::from_stored(row.get(1)?),
        name: row.get(2)?,
        kind: row.get(3)?,
        is_admin: row.get(4)?,
        scopes: scopes.as_deref().map(rows::json).transpose()?,
        expires_at: row.opt_time(6)?,
        created_at: row.time(7)?,
        revoked_at: row.opt_time(8)?,
        user: row.get(9)?,
        act_for: act_for.as_deref().map(rows::json).transpose()?,
    })
}

pub(crate) async fn create_key(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    new: &NewKey,
    audit: &NewAuditEvent,
) -> Result<KeyInfo> {
    let scopes = new.scopes.as_ref().map(serde_json::to_string).transpose()?;
    let act_for = new
        .act_for
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    c.exec(
        crate::sql!(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, is_admin, kind, scopes, expires_at, created_at, user_id, act_for)
             VALUES ($1, $2, $3, $4, FALSE, $5, $6, $7, $8, $9, $10)"
        ),
        crate::args![
            &new.id,
            tenant,
            &new.name,
            &new.key_hash,
            &new.kind,
            &scopes,
            new.expires_at,
            Utc::now(),
            &new.user,
            &act_for
        ],
    )
    .await?;
    append(c, tenant, std::slice::from_ref(audit)).await?;
    key_info(c, tenant, &new.id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("key {}", new.id)))
}

pub(crate) async fn key_info(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &KeyId,
) -> Result<Option<KeyInfo>> {
    Ok(c.opt(
        crate::sql!("SELECT {KEY_INFO_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, id],
        key_info_row,
    )
    .await?)
}

pub(crate) async fn revoke_key(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &KeyId,
    audit: &NewAuditEvent,
) -> Result<KeyInfo> {
    // Conditional, so two revocations racing on PostgreSQL cannot both win.
    let changed = c
        .exec(
            crate::sql!(
                "UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL"
            ),
            crate::args![tenant, id, Utc::now()],
        )
        .await?;
    let found = key_info(c, tenant, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("key {id}")))?;
    if changed == 0 {
        return Err(StoreError::Conflict(format!("key {id} is already revoked")));
    }
    append(c, tenant, std::slice::from_ref(audit)).await?;
    Ok(found)
}
