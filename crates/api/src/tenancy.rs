//! Which tenant a request works in: a tenant named by id or name, and the
//! caller's own unless the admin key names another. Shared by the auth
//! middleware (`X-Roster-Tenant`) and the routes that take a `tenant`.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use roster_core::TenantId;
use roster_store::TenantRecord;

/// A tenant by id or name; `not_found` otherwise.
pub(crate) async fn find_tenant(state: &AppState, raw: &str) -> Result<TenantRecord, ApiError> {
    let found = match TenantId::parse(raw) {
        Some(id) => state.store.get_tenant(&id).await?,
        None if raw == TenantId::default_tenant().as_str() => {
            state.store.get_tenant(&TenantId::default_tenant()).await?
        }
        None => state.store.find_tenant_by_name(raw).await?,
    };
    found.ok_or_else(|| ApiError::not_found("tenant"))
}

/// The tenant a request names: the caller's own, or (admin only) another.
/// A non-admin naming another tenant gets `not_found`, as for one that does
/// not exist, so keys cannot probe for tenants.
pub(crate) async fn target_tenant(
    state: &AppState,
    principal: &Principal,
    named: Option<&str>,
) -> Result<TenantId, ApiError> {
    let Some(raw) = named else {
        return Ok(principal.tenant.clone());
    };
    if !principal.is_admin {
        let own = raw == principal.tenant.as_str()
            || state
                .store
                .get_tenant(&principal.tenant)
                .await?
                .is_some_and(|t| t.name == raw);
        return if own {
            Ok(principal.tenant.clone())
        } else {
            Err(ApiError::not_found("tenant"))
        };
    }
    Ok(find_tenant(state, raw).await?.id)
}
