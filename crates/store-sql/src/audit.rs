//! Appending audit events, inside the transaction of the change they record.

use super::Conn;
use chrono::Utc;
use roster_core::TenantId;
use roster_store::millis;
use roster_store::{audit_id, NewAuditEvent, StoreError};

pub(crate) async fn append(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    events: &[NewAuditEvent],
) -> Result<(), StoreError> {
    let now = millis(Utc::now());
    for event in events {
        let detail = serde_json::to_string(&event.detail)?;
        c.exec(
            crate::sql!(
                "INSERT INTO audit_events (id, tenant_id, at, actor, action, resource, decision, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            crate::args![
                audit_id().as_str(),
                tenant,
                now,
                &event.actor,
                &event.action,
                &event.resource,
                &event.decision,
                detail.as_str()
            ],
        )
        .await?;
    }
    Ok(())
}
