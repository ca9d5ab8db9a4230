//! `/v1/index`: the derived search index's state, and rebuilding it from
//! the store. The index spans every tenant, so only admin keys may rebuild.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use roster_memory::IndexStatus;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct RebuildReport {
    /// Records indexed from the store.
    pub records: u64,
    pub status: IndexStatus,
}

fn require_admin(principal: &Principal) -> Result<(), ApiError> {
    if principal.is_admin {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::codes::Code::Forbidden,
            "only an admin key may do this",
        ))
    }
}

#[utoipa::path(get, path = "/v1/index", tag = "index",
    responses((status = 200, body = IndexStatus), (status = 403, body = crate::error::ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<IndexStatus>, ApiError> {
    require_admin(&principal)?;
    Ok(axum::Json(super::memory_service(&state)?.status().await?))
}

#[utoipa::path(post, path = "/v1/index/rebuild", tag = "index",
    responses((status = 200, body = RebuildReport), (status = 403, body = crate::error::ErrorBody)))]
pub async fn rebuild(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<RebuildReport>, ApiError> {
    require_admin(&principal)?;
    let service = super::memory_service(&state)?;
    let records = service.rebuild().await?;
    Ok(axum::Json(RebuildReport {
        records,
        status: service.status().await?,
    }))
}
