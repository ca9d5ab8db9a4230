//! The providers and models this server offers.

use crate::auth::Principal;
use crate::{AppState, ModelCatalogue};
use axum::extract::State;

#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, body = ModelCatalogue)))]
pub async fn list(
    State(state): State<AppState>,
    _principal: Principal,
) -> axum::Json<ModelCatalogue> {
    axum::Json(state.models.as_ref().clone())
}
