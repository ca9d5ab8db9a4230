//! Bearer-key authentication. Keys are stored as SHA-256 hashes; a request's
//! key decides its tenant, and every handler works inside that tenant.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use roster_core::{KeyId, TenantId};
use sha2::{Digest, Sha256};

/// Who is calling: set by [`require_key`] on every `/v1` request.
#[derive(Clone, Debug)]
pub struct Principal {
    pub tenant: TenantId,
    pub key_id: KeyId,
    pub is_admin: bool,
}

impl Principal {
    /// How this principal appears in version histories and audit records.
    pub fn label(&self) -> String {
        format!("key:{}", self.key_id)
    }
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub async fn require_key(
    State(state): State<AppState>,
    mut req: axum::extract::Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req
        .headers()
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
        .find_api_key(&hash_key(key))
        .await?
        .ok_or_else(|| ApiError::unauthorized("unknown or revoked API key"))?;
    req.extensions_mut().insert(Principal {
        tenant: record.tenant_id,
        key_id: record.id,
        is_admin: record.is_admin,
    });
    Ok(next.run(req).await)
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
