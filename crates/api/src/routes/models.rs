//! The providers and models this server offers, and how busy the ones
//! that serve calls in turn (the in-process model) are right now.

use crate::auth::Principal;
use crate::{AppState, ModelCatalogue};
use axum::extract::State;

#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, body = ModelCatalogue)))]
pub async fn list(
    State(state): State<AppState>,
    _principal: Principal,
) -> axum::Json<ModelCatalogue> {
    let mut catalogue = state.models.as_ref().clone();
    for entry in &mut catalogue.providers {
        entry.queue = catalogue
            .live
            .0
            .iter()
            .find(|p| p.name() == entry.name)
            .and_then(|p| p.queue())
            .map(|q| crate::ModelQueue {
                running: q.running,
                waiting: q.waiting,
            });
    }
    axum::Json(catalogue)
}
