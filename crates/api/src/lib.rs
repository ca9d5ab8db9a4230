//! Roster's HTTP API.
//!
//! Owns routes, bearer-key authentication, the JSON error format, SSE
//! streams and the OpenAPI document generated from the handlers. It is the
//! only crate that knows HTTP. It must never touch SQL or call a model: it
//! asks the store for state and the runtime for runs.

pub mod auth;
pub mod error;
mod extract;
mod routes;
mod sse;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use roster_runtime::Runtime;
use roster_store::DynStore;
use utoipa::OpenApi;

pub use auth::hash_key;
pub use error::ApiError;

/// Request bodies above this size are refused with `payload_too_large`.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub runtime: Runtime,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Roster API", description = "Stateful runtime for fleets of AI agents."),
    paths(
        routes::agents::create, routes::agents::list, routes::agents::show, routes::agents::update,
        routes::agents::delete, routes::agents::memory,
        routes::sessions::create, routes::sessions::list, routes::sessions::show, routes::sessions::items,
        routes::sessions::post_message,
        routes::runs::show, routes::runs::cancel, routes::runs::events,
        routes::ledger::list, healthz
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub store: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "system", security(), responses((status = 200, body = Health), (status = 503, body = error::ErrorBody)))]
async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::Json<Health>, ApiError> {
    // A cheap read proves the store answers.
    state.store.find_api_key("healthz").await?;
    Ok(axum::Json(Health {
        status: "ok",
        store: state.store.backend(),
    }))
}

async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// Turns axum's plain-text 405 into our error body.
async fn method_not_allowed(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method",
        )
        .into_response();
    }
    response
}

pub fn app(state: AppState) -> Router {
    use routes::{agents, ledger, runs, sessions};
    let v1 = Router::new()
        .route("/agents", post(agents::create).get(agents::list))
        .route(
            "/agents/{agent}",
            get(agents::show)
                .patch(agents::update)
                .delete(agents::delete),
        )
        .route("/agents/{agent}/memory", get(agents::memory))
        .route("/sessions", post(sessions::create).get(sessions::list))
        .route("/sessions/{id}", get(sessions::show))
        .route("/sessions/{id}/items", get(sessions::items))
        .route("/sessions/{id}/messages", post(sessions::post_message))
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/events", get(runs::events))
        .route("/ledger", get(ledger::list))
        .fallback(not_found)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi_json))
        .nest("/v1", v1)
        .fallback(not_found)
        .layer(axum::middleware::from_fn(method_not_allowed))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
