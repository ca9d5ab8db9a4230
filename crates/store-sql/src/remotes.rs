//! Remote A2A agents: a refreshed card replacing a registration's config,
//! each session's conversation with a remote, and a removal that takes the
//! conversations with the registration.

use super::Conn;
use chrono::Utc;
use roster_core::{SessionId, TenantId};
use roster_store::millis;
use roster_store::remotes::RemoteContext;
use roster_store::{Integration, NewAuditEvent, StoreError};

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) async fn update_config(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    kind: &str,
    name: &str,
    config: &serde_json::Value,
    audit: NewAuditEvent,
) -> Result<Option<Integration>> {
    let Some(before) = super::integrations::get(c, tenant, kind, name).await? else {
        return Ok(None);
    };
    // Strictly later than before, so whoever caches a registration by its
    // `updated_at` sees the change even within one millisecond.
    let at = millis(Utc::now()).max(millis(before.updated_at) + 1);
    let config = serde_json::to_string(config)?;
    c.exec(
        crate::sql!(
            "UPDATE integrations SET config = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2"
        ),
        crate::args![tenant, &before.id, config.as_str(), at],
    )
    .await?;
    super::audit::append(c, tenant, &[audit]).await?;
    super::integrations::get(c, tenant, kind, name).await
}

pub(crate) async fn set_context(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    remote: &str,
    session: &SessionId,
    context_id: Option<&str>,
    task_id: Option<&str>,
) -> Result<()> {
    match context_id {
        Some(context_id) => c
            .exec(
                crate::sql!(
                    "INSERT INTO remote_contexts (tenant_id, remote_id, session_id, context_id, task_id, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (tenant_id, remote_id, session_id)
                     DO UPDATE SET context_id = excluded.context_id, task_id = excluded.task_id, updated_at = excluded.updated_at"
                ),
                crate::args![tenant, remote, session, context_id, task_id, Utc::now()],
            )
            .await?,
        None => c
            .exec(
                crate::sql!(
                    "DELETE FROM remote_contexts WHERE tenant_id = $1 AND remote_id = $2 AND session_id = $3"
                ),
                crate::args![tenant, remote, session],
            )
            .await?,
    };
    Ok(())
}

pub(crate) async fn delete(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    kind: &str,
    name: &str,
    audit: NewAuditEvent,
) -> Result<bool> {
    let Some(found) = super::integrations::get(c, tenant, kind, name).await? else {
        return Ok(false);
    };
    c.exec(
        crate::sql!("DELETE FROM remote_contexts WHERE tenant_id = $1 AND remote_id = $2"),
        crate::args![tenant, &found.id],
    )
    .await?;
    c.exec(
        crate::sql!("DELETE FROM integrations WHERE tenant_id = $1 AND id = $2"),
        crate::args![tenant, &found.id],
    )
    .await?;
    super::audit::append(c, tenant, &[audit]).await?;
    Ok(true)
}

fn context(row: &super::Row<'_>) -> Result<RemoteContext> {
    Ok(RemoteContext {
        context_id: row.get(0)?,
        task_id: row.get(1)?,
    })
}

crate::store_impl! {
    impl roster_store::remotes::RemoteStore {
        write update_integration_config(tenant: &TenantId, kind: &str, name: &str, config: serde_json::Value, audit: NewAuditEvent) -> Option<Integration> =
            |c| update_config(c, &tenant, &kind, &name, &config, audit).await;
        read remote_context(tenant: &TenantId, remote: &str, session: &SessionId) -> Option<RemoteContext> = |c| c.opt(
            crate::sql!("SELECT context_id, task_id FROM remote_contexts WHERE tenant_id = $1 AND remote_id = $2 AND session_id = $3"),
            crate::args![&tenant, remote.as_str(), &session], context).await;
        write set_remote_context(tenant: &TenantId, remote: &str, session: &SessionId, context_id: Option<&str>, task_id: Option<&str>) -> () =
            |c| set_context(c, &tenant, &remote, &session, context_id.as_deref(), task_id.as_deref()).await;
        write delete_remote(tenant: &TenantId, kind: &str, name: &str, audit: NewAuditEvent) -> bool = |c| delete(c, &tenant, &kind, &name, audit).await;
    }
}
