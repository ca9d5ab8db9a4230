//! Bearer-key authentication and scopes. Keys are stored as SHA-256
//! hashes; a request's key decides its tenant, and every handler works
//! inside that tenant. A key with scopes may only use the areas they name
//! (see [`crate::scopes`]).

use crate::error::ApiError;
use crate::scopes::{self, Access};
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use roster_core::{KeyId, TenantId};
use std::sync::Arc;

/// Who is calling: set by [`require_key`] on every `/v1` request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub tenant: TenantId,
    pub key_id: KeyId,
    pub key_name: String,
    /// `user` or `service`.
    pub kind: String,
    /// The bootstrap key: manages every tenant.
    pub is_admin: bool,
    /// `None`: every scope of its tenant.
    pub scopes: Option<Arc<[String]>>,
    /// A `user` key's user (see [`crate::identity`]).
    pub user: Option<String>,
    /// The users a `service` key may act for; `None`: any.
    pub act_for: Option<Arc<[String]>>,
}

impl Principal {
    /// How this principal appears in version histories, runs and audit
    /// records.
    pub fn label(&self) -> String {
        format!("key:{}", self.key_id)
    }

    /// The transport-free principal the runtime's use cases take.
    pub fn actor(&self) -> roster_core::actor::Actor {
        roster_core::actor::Actor {
            tenant: self.tenant.clone(),
            key_id: self.key_id.clone(),
            key_name: self.key_name.clone(),
            kind: self.kind.clone(),
            is_admin: self.is_admin,
            scopes: self.scopes.as_ref().map(|s| s.to_vec()),
            user: self.user.clone(),
            act_for: self.act_for.as_ref().map(|u| u.to_vec()),
        }
    }

    /// Whether this key's scopes cover `scope` (`area:read|write`).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes
            .as_deref()
            .is_none_or(|held| roster_core::actor::scope_covers(held, scope))
    }

    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_admin {
            Ok(())
        } else {
            Err(ApiError::new(
                crate::codes::Code::Forbidden,
                format!("{what} needs the admin key"),
            ))
        }
    }
}

/// The admin key works in another tenant with this header (its id or
/// name); any other key may only name its own.
pub const TENANT_HEADER: &str = "x-roster-tenant";

pub use roster_runtime::hash_key;

pub async fn require_key(
    State(state): State<AppState>,
    mut req: axum::extract::Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = authenticate(&state, req.headers()).await?;
    if let Some(needed) = scopes::needed(req.method(), req.uri().path()) {
        let scope = needed.scope();
        if !principal.has_scope(&scope) {
            return Err(ApiError::new(
                crate::codes::Code::InsufficientScope,
                format!("this key's scopes do not include `{scope}`"),
            ));
        }
    }
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

/// Who presents the request's `Authorization: Bearer` key (in the tenant
/// `X-Roster-Tenant` names, for the admin key), without a scope check:
/// [`require_key`] checks the scope a path needs; a surface whose
/// operations are named inside the body (the MCP endpoint) checks each
/// operation's scope itself.
pub async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <key>` header"))?;
    let key = header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <key>`"))?;
    let record = state
        .store
        .key_by_hash(&hash_key(key))
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown API key"))?;
    if record.revoked_at.is_some() {
        return Err(ApiError::new(
            crate::codes::Code::KeyRevoked,
            "this API key has been revoked",
        ));
    }
    if record.expires_at.is_some_and(|at| at <= chrono::Utc::now()) {
        return Err(ApiError::new(
            crate::codes::Code::KeyExpired,
            "this API key has expired",
        ));
    }
    // Admin rights over every tenant belong to the default tenant's admin
    // key alone; an admin flag elsewhere (from before tenants were managed)
    // gives nothing beyond its tenant.
    let is_admin = record.is_admin && record.tenant_id == TenantId::default_tenant();
    let held = scopes::effective(
        record.scopes,
        &record.kind,
        record.user.as_deref(),
        is_admin,
    );
    let principal = Principal {
        tenant: record.tenant_id,
        key_id: record.id,
        key_name: record.name,
        kind: record.kind,
        is_admin,
        scopes: held.map(Into::into),
        user: record.user,
        act_for: record.act_for.map(Into::into),
    };
    match headers.get(TENANT_HEADER) {
        None => Ok(principal),
        Some(named) => {
            let named = named
                .to_str()
                .map_err(|_| ApiError::invalid("the X-Roster-Tenant header must be text"))?
                .trim()
                .to_owned();
            let tenant = crate::tenancy::target_tenant(state, &principal, Some(&named)).await?;
            Ok(Principal {
                tenant,
                ..principal
            })
        }
    }
}

impl Access {
    fn scope(&self) -> String {
        format!(
            "{}:{}",
            self.area,
            if self.write { "write" } else { "read" }
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("not authenticated"))
    }
}
