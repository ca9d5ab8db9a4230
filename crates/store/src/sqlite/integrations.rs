//! Integrations on SQLite.

use super::rows;
use crate::types::{from_millis, millis};
use crate::{Integration, NewIntegration, StoreError};
use chrono::Utc;
use roster_core::TenantId;
use rusqlite::{params, Connection, Row};

const COLUMNS: &str = "id, tenant_id, kind, name, config, sealed, created_at, updated_at";

fn integration(row: &Row<'_>) -> Result<Integration, StoreError> {
    let config: String = row.get(4)?;
    Ok(Integration {
        id: row.get(0)?,
        tenant: TenantId::from_stored(row.get(1)?),
        kind: row.get(2)?,
        name: row.get(3)?,
        config: rows::json(&config)?,
        sealed: row.get(5)?,
        created_at: from_millis(row.get(6)?),
        updated_at: from_millis(row.get(7)?),
    })
}

pub(crate) fn create(
    conn: &Connection,
    tenant: &TenantId,
    new: &NewIntegration,
) -> Result<Integration, StoreError> {
    let now = millis(Utc::now());
    let config = serde_json::to_string(&new.config)?;
    let inserted = rows::exec(
        conn,
        "INSERT INTO integrations (id, tenant_id, kind, name, config, sealed, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) ON CONFLICT (tenant_id, kind, name) DO NOTHING",
        params![new.id, tenant.as_str(), new.kind, new.name, config, new.sealed, now],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "{} `{}` already exists",
            new.kind, new.name
        )));
    }
    get(conn, tenant, &new.kind, &new.name)?
        .ok_or_else(|| StoreError::NotFound(format!("{} `{}`", new.kind, new.name)))
}

pub(crate) fn list(
    conn: &Connection,
    tenant: &TenantId,
    kind: &str,
) -> Result<Vec<Integration>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM integrations WHERE tenant_id = ?1 AND kind = ?2 ORDER BY name"
    ))?;
    rows::collect(&mut stmt, params![tenant.as_str(), kind], integration)
}

pub(crate) fn get(
    conn: &Connection,
    tenant: &TenantId,
    kind: &str,
    name: &str,
) -> Result<Option<Integration>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM integrations WHERE tenant_id = ?1 AND kind = ?2 AND name = ?3"
    ))?;
    rows::first(&mut stmt, params![tenant.as_str(), kind, name], integration)
}

pub(crate) fn delete(
    conn: &Connection,
    tenant: &TenantId,
    kind: &str,
    name: &str,
) -> Result<bool, StoreError> {
    let n = rows::exec(
        conn,
        "DELETE FROM integrations WHERE tenant_id = ?1 AND kind = ?2 AND name = ?3",
        params![tenant.as_str(), kind, name],
    )?;
    Ok(n > 0)
}
