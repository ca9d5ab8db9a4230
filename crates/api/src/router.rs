//! Every endpoint, declared once. `routes!` reads each handler's
//! `#[utoipa::path]` (method and path) and registers it with both the axum
//! router and the OpenAPI document, so no route exists undocumented and no
//! documented operation goes unrouted. A group in `routes!` shares one path.

use crate::routes::{
    agents, approvals, audit, blocks, budgets, files, hooks, http_services, index, keys, knowledge,
    ledger, limits, mcp, memories, models, policies, run_tree, runs, schedules, sessions, sql,
    tenants, triggers, webhooks,
};
// Remote A2A agents (`a2a:NAME` tools).
use crate::routes::remotes;
use crate::{auth, codes::Code, openapi_rules, ApiError, AppState, MAX_BODY_BYTES, MAX_SPEC_BYTES};
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// The operations under `/v1`, each behind the API key check.
fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(agents::create, agents::list))
        .routes(routes!(agents::show, agents::update, agents::delete))
        .routes(routes!(agents::memory))
        .routes(routes!(agents::versions))
        .routes(routes!(agents::rollback))
        .routes(routes!(models::list))
        .routes(routes!(blocks::list, blocks::add))
        .routes(routes!(blocks::show, blocks::set, blocks::remove))
        .routes(routes!(sessions::create, sessions::list))
        .routes(routes!(sessions::show, sessions::delete))
        .routes(routes!(sessions::upgrade))
        .routes(routes!(sessions::items))
        .routes(routes!(sessions::post_message))
        .routes(routes!(files::list))
        // Uploads read and bound their bodies themselves.
        .routes(
            routes!(files::download, files::upload, files::delete)
                .layer(DefaultBodyLimit::disable()),
        )
        .routes(routes!(runs::show))
        .routes(routes!(run_tree::tree))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::retry))
        .routes(routes!(runs::events))
        .routes(routes!(webhooks::of_run))
        .routes(routes!(webhooks::create, webhooks::list))
        .routes(routes!(webhooks::show, webhooks::update, webhooks::remove))
        .routes(routes!(webhooks::notifications))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::show_notification))
        .routes(routes!(webhooks::resend))
        .routes(routes!(limits::show))
        .routes(routes!(limits::show_tenant, limits::put_tenant))
        .routes(routes!(ledger::list))
        .routes(routes!(ledger::summary))
        .routes(routes!(triggers::create, triggers::list))
        .routes(routes!(triggers::show, triggers::remove))
        .routes(routes!(schedules::create, schedules::list))
        .routes(routes!(
            schedules::show,
            schedules::update,
            schedules::remove
        ))
        .routes(routes!(schedules::pause))
        .routes(routes!(schedules::resume))
        .routes(routes!(budgets::list))
        .routes(routes!(budgets::put_tenant, budgets::delete_tenant))
        .routes(routes!(budgets::put_agent, budgets::delete_agent))
        .routes(routes!(tenants::create, tenants::list))
        .routes(routes!(tenants::show))
        .routes(routes!(keys::create, keys::list))
        .routes(routes!(keys::show, keys::revoke))
        .routes(routes!(policies::list))
        .routes(routes!(policies::schema))
        .routes(routes!(policies::show, policies::put, policies::delete))
        .routes(routes!(audit::list))
        .routes(routes!(audit::export))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::events))
        .routes(routes!(approvals::show))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::deny))
        .routes(routes!(memories::create, memories::list))
        .routes(routes!(memories::search))
        .routes(routes!(memories::show, memories::update, memories::delete))
        .routes(routes!(knowledge::create_source, knowledge::list_sources))
        .routes(routes!(knowledge::show_source, knowledge::delete_source))
        .routes(routes!(knowledge::list_documents))
        // Document uploads read and bound their bodies themselves.
        .routes(
            routes!(
                knowledge::show_document,
                knowledge::put_document,
                knowledge::delete_document
            )
            .layer(DefaultBodyLimit::disable()),
        )
        .routes(routes!(knowledge::search))
        .routes(routes!(index::status))
        .routes(routes!(index::rebuild))
        .routes(routes!(mcp::create, mcp::list))
        .routes(routes!(mcp::show, mcp::delete))
        .routes(routes!(mcp::tools))
        .routes(routes!(mcp::catalogue))
        .routes(routes!(mcp::builtins))
        .routes(routes!(sql::create, sql::list))
        .routes(routes!(sql::show, sql::delete))
        .routes(routes!(sql::schema))
        .routes(routes!(sql::query))
        .routes(
            routes!(http_services::create, http_services::list)
                .layer(DefaultBodyLimit::max(MAX_SPEC_BYTES)),
        )
        .routes(routes!(http_services::show, http_services::delete))
        .routes(routes!(remotes::create, remotes::list))
        .routes(routes!(remotes::show, remotes::delete))
        .routes(routes!(remotes::refresh))
}

/// The operations anyone may call, without a key.
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(crate::healthz))
        .routes(routes!(crate::openapi_json))
        // Signed deliveries: the signature stands in for a key, and the
        // body is read (and bounded) by the handler.
        .routes(routes!(hooks::deliver).layer(DefaultBodyLimit::disable()))
}

pub fn app(state: AppState) -> Router {
    let v1 = v1().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_key,
    ));
    let (router, _) = public().merge(v1).split_for_parts();
    router
        .merge(crate::openai::routes(state.clone()))
        .merge(crate::a2a::routes(state.clone()))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(method_not_allowed))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// The OpenAPI document of exactly the routes [`app`] serves, before the
/// cross-field rules of `openapi_rules` are added.
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::{Modify, OpenApi};
    let mut doc = crate::ApiDoc::openapi();
    doc.merge(public().merge(v1()).into_openapi());
    // axum's catch-all `{*path}` is OpenAPI's plain `{path}`.
    doc.paths.paths = std::mem::take(&mut doc.paths.paths)
        .into_iter()
        .map(|(path, item)| (path.replace("{*", "{"), item))
        .collect();
    crate::BearerAuth.modify(&mut doc);
    crate::CommonErrors.modify(&mut doc);
    crate::ErrorCodes.modify(&mut doc);
    doc
}

/// The document served at `/openapi.json`, built once.
pub(crate) fn document() -> &'static serde_json::Value {
    static DOCUMENT: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(openapi_rules::document)
}

async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "no such endpoint")
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
            Code::MethodNotAllowed,
            "this endpoint does not take that method",
        )
        .into_response();
    }
    response
}
