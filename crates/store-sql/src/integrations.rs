//! Integrations: each one's config as JSON and its credentials only sealed.

use super::Conn;
use chrono::Utc;
use roster_core::TenantId;
use roster_store::millis;
use roster_store::{Integration, NewAuditEvent, NewIntegration, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

const COLUMNS: &str = "id, tenant_id, kind, name, config, sealed, created_at, updated_at";

fn integration(row: &super::Row<'_>) -> Result<Integration> {
    Ok(Integration {
        id: row.get(0)?,
        tenant: TenantId::from_stored(row.get(1)?),
        kind: row.get(2)?,
        name: row.get(3)?,
        config: row.json(4)?,
        sealed: row.get(5)?,
        created_at: row.time(6)?,
        updated_at: row.time(7)?,
    })
}

pub(crate) async fn create(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    new: &NewIntegration,
    audit: NewAuditEvent,
) -> Result<Integration> {
    let now = millis(Utc::now());
    let config = serde_json::to_string(&new.config)?;
    let inserted = c
        .exec(
            crate::sql!(
                "INSERT INTO integrations (id, tenant_id, kind, name, config, sealed, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (tenant_id, kind, name) DO NOTHING"
            ),
            crate::args![&new.id, tenant, &new.kind, &new.name, config.as_str(), &new.sealed, now],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "{} `{}` already exists",
            new.kind, new.name
        )));
    }
    super::audit::append(c, tenant, &[audit]).await?;
    get(c, tenant, &new.kind, &new.name)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("{} `{}`", new.kind, new.name)))
}

pub(crate) async fn delete(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    kind: &str,
    name: &str,
    audit: NewAuditEvent,
) -> Result<bool> {
    let sql =
        crate::sql!("DELETE FROM integrations WHERE tenant_id = $1 AND kind = $2 AND name = $3");
    let deleted = c.exec(sql, crate::args![tenant, kind, name]).await? > 0;
    if deleted {
        super::audit::append(c, tenant, &[audit]).await?;
    }
    Ok(deleted)
}

pub(crate) async fn get(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    kind: &str,
    name: &str,
) -> Result<Option<Integration>> {
    Ok(c.opt(
        crate::sql!(
            "SELECT {COLUMNS} FROM integrations WHERE tenant_id = $1 AND kind = $2 AND name = $3"
        ),
        crate::args![tenant, kind, name],
        integration,
    )
    .await?)
}

crate::store_impl! {
    impl crate::IntegrationStore {
        write create_integration(tenant: &TenantId, new: NewIntegration, audit: NewAuditEvent) -> Integration = |c| create(c, &tenant, &new, audit).await;
        read list_integrations(tenant: &TenantId, kind: &str) -> Vec<Integration> = |c| c.all(
            crate::sql!("SELECT {COLUMNS} FROM integrations WHERE tenant_id = $1 AND kind = $2 ORDER BY name"),
            crate::args![&tenant, &kind], integration).await;
        read get_integration(tenant: &TenantId, kind: &str, name: &str) -> Option<Integration> = |c| get(c, &tenant, &kind, &name).await;
        write delete_integration(tenant: &TenantId, kind: &str, name: &str, audit: NewAuditEvent) -> bool = |c| delete(c, &tenant, &kind, &name, audit).await;
    }
}
