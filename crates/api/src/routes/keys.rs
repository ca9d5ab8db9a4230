//! `/v1/keys`: API keys of users and service accounts. A key is shown once,
//! when it is created; the store keeps only its hash. Every change is in
//! the audit log.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use roster_core::{KeyId, TenantId};
use roster_runtime::KeyRequest;
use roster_store::KeyInfo;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// Tenant id or name; default the caller's. Only the admin key may name
    /// another tenant.
    pub tenant: Option<String>,
    /// Who or what holds the key, 1-100 characters.
    #[schema(
        pattern = r"^\s*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        max_length = 100
    )]
    pub name: String,
    /// `user` (default) or `service`.
    pub kind: Option<String>,
    /// `AREA:read` / `AREA:write`; absent: all of the tenant's areas (for a
    /// key created by a scoped key: the creator's scopes), except that a
    /// key bound to a `user` then holds the user default: `agents:read`,
    /// `sessions:write`, `memories:write`, `knowledge:read`, `tools:read`,
    /// `approvals:write`.
    pub scopes: Option<Vec<String>>,
    /// RFC 3339; must be in the future.
    pub expires_at: Option<DateTime<Utc>>,
    /// A `user` key's user: the key acts as this user only (its sessions
    /// are theirs; it reads `users/<user>` memories and no other user's).
    /// Without it, a user key acts for no user. A key may only bind users
    /// it may act for itself, except a tenant's manager key (a `user` key
    /// bound to no user, holding `keys:write`), which issues keys to any
    /// user of its tenant.
    #[schema(pattern = r"^[A-Za-z0-9._@-]{1,100}$")]
    pub user: Option<String>,
    /// A `service` key's users: it may act for these only (default: any
    /// user, or for a key made by a key limited to some users, those).
    pub act_for: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    #[schema(value_type = String)]
    pub id: KeyId,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    pub name: String,
    pub kind: String,
    /// The bootstrap key, which manages every tenant.
    pub admin: bool,
    /// Absent: every scope of the tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// The user a `user` key acts as; absent: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The users a `service` key may act for; absent: any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act_for: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `active`, `revoked` or `expired`.
    pub status: &'static str,
}

impl From<KeyInfo> for KeyView {
    fn from(k: KeyInfo) -> Self {
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expires_at.is_some_and(|at| at <= Utc::now()) {
            "expired"
        } else {
            "active"
        };
        let scopes = crate::scopes::effective(
            k.scopes,
            &k.kind,
            k.user.as_deref(),
            k.is_admin && k.tenant_id == roster_core::TenantId::default_tenant(),
        );
        Self {
            id: k.id,
            tenant: k.tenant_id,
            name: k.name,
            kind: k.kind,
            admin: k.is_admin,
            scopes,
            user: k.user,
            act_for: k.act_for,
            expires_at: k.expires_at,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            status,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key itself: shown this once, never again.
    pub key: String,
    #[serde(flatten)]
    pub info: KeyView,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub data: Vec<KeyView>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KeyListParams {
    /// Another tenant's keys (admin key only), by id or name.
    pub tenant: Option<String>,
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = crate::error::ErrorBody),
    (status = 403, body = crate::error::ErrorBody, description = "insufficient_scope, or user_not_allowed: a user or act_for beyond the caller's own"),
    (status = 404, body = crate::error::ErrorBody, description = "no such tenant")))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, axum::Json<CreatedKey>), ApiError> {
    let tenant = crate::tenancy::target_tenant(&state, &principal, body.tenant.as_deref()).await?;
    let scopes = body
        .scopes
        .as_deref()
        .map(crate::scopes::parse)
        .transpose()
        .map_err(ApiError::invalid)?;
    let issued = state
        .runtime
        .create_key(
            &principal.actor(),
            &tenant,
            KeyRequest {
                name: body.name,
                kind: body.kind,
                scopes,
                user: body.user,
                act_for: body.act_for,
                expires_at: body.expires_at,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedKey {
            key: issued.secret,
            info: issued.info.into(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys", params(KeyListParams),
    responses((status = 200, body = KeyList), (status = 400, body = crate::error::ErrorBody),
    (status = 404, body = crate::error::ErrorBody, description = "no such tenant")))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<KeyListParams>,
) -> Result<axum::Json<KeyList>, ApiError> {
    let tenant =
        crate::tenancy::target_tenant(&state, &principal, params.tenant.as_deref()).await?;
    let keys = state.store.list_keys(&tenant).await?;
    Ok(axum::Json(KeyList {
        data: keys.into_iter().map(Into::into).collect(),
    }))
}

/// A key the caller may see: its own tenant's, or any for the admin key.
async fn visible(state: &AppState, principal: &Principal, raw: &str) -> Result<KeyInfo, ApiError> {
    let id = KeyId::parse(raw).ok_or_else(|| ApiError::not_found("key"))?;
    let found = if principal.is_admin {
        state.store.find_key(&id).await?
    } else {
        state.store.key_info(&principal.tenant, &id).await?
    };
    found.ok_or_else(|| ApiError::not_found("key"))
}

#[utoipa::path(get, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "key id")),
    responses((status = 200, body = KeyView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<KeyView>, ApiError> {
    Ok(axum::Json(visible(&state, &principal, &id).await?.into()))
}

#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "key id")),
    responses((status = 200, body = KeyView, description = "revoked"),
    (status = 404, body = crate::error::ErrorBody),
    (status = 409, body = crate::error::ErrorBody, description = "already revoked, or the admin key")))]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<KeyView>, ApiError> {
    let key = visible(&state, &principal, &id).await?;
    let revoked = state.runtime.revoke_key(&principal.actor(), &key).await?;
    Ok(axum::Json(revoked.into()))
}
