//! Integrations on PostgreSQL.

use super::rows;
use crate::types::{from_millis, millis};
use crate::{Integration, NewIntegration, StoreError};
use chrono::Utc;
use roster_core::TenantId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

const COLUMNS: &str = "id, tenant_id, kind, name, config, sealed, created_at, updated_at";

fn integration(row: &PgRow) -> Result<Integration, StoreError> {
    let config: String = row.try_get(4)?;
    Ok(Integration {
        id: row.try_get(0)?,
        tenant: TenantId::from_stored(row.try_get(1)?),
        kind: row.try_get(2)?,
        name: row.try_get(3)?,
        config: serde_json::from_str(&config)?,
        sealed: row.try_get(5)?,
        created_at: from_millis(row.try_get(6)?),
        updated_at: from_millis(row.try_get(7)?),
    })
}

pub(crate) async fn create(
    conn: &mut PgConnection,
    tenant: &TenantId,
    new: &NewIntegration,
) -> Result<Integration, StoreError> {
    let now = millis(Utc::now());
    let config = serde_json::to_string(&new.config)?;
    let inserted = sqlx::query(
        "INSERT INTO integrations (id, tenant_id, kind, name, config, sealed, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (tenant_id, kind, name) DO NOTHING",
    )
    .bind(&new.id)
    .bind(tenant.as_str())
    .bind(&new.kind)
    .bind(&new.name)
    .bind(config)
    .bind(&new.sealed)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "{} `{}` already exists",
            new.kind, new.name
        )));
    }
    get(conn, tenant, &new.kind, &new.name)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("{} `{}`", new.kind, new.name)))
}

pub(crate) async fn list(
    conn: &mut PgConnection,
    tenant: &TenantId,
    kind: &str,
) -> Result<Vec<Integration>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM integrations WHERE tenant_id = $1 AND kind = $2 ORDER BY name"
    );
    let query = sqlx::query(&sql).bind(tenant.as_str()).bind(kind);
    rows::collect(conn, query, integration).await
}

pub(crate) async fn get(
    conn: &mut PgConnection,
    tenant: &TenantId,
    kind: &str,
    name: &str,
) -> Result<Option<Integration>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM integrations WHERE tenant_id = $1 AND kind = $2 AND name = $3"
    );
    let query = sqlx::query(&sql)
        .bind(tenant.as_str())
        .bind(kind)
        .bind(name);
    rows::first(conn, query, integration).await
}

pub(crate) async fn delete(
    conn: &mut PgConnection,
    tenant: &TenantId,
    kind: &str,
    name: &str,
) -> Result<bool, StoreError> {
    let n =
        sqlx::query("DELETE FROM integrations WHERE tenant_id = $1 AND kind = $2 AND name = $3")
            .bind(tenant.as_str())
            .bind(kind)
            .bind(name)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    Ok(n > 0)
}
