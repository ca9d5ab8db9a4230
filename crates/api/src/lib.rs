//! Roster's HTTP API.
//!
//! Owns routes, bearer-key authentication, the JSON error format, SSE
//! streams and the OpenAPI document generated from the handlers. It is the
//! only crate that knows HTTP. It must never touch SQL or call a model: it
//! asks the store for state and the runtime for runs.

pub mod auth;
pub mod codes;
pub mod error;
mod extract;
mod identity;
mod openapi_rules;
mod routes;
pub mod scopes;
mod sse;
mod tenancy;

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
/// Largest body of an HTTP service registration: real OpenAPI documents
/// (a cloud provider's, a CRM's) run to several megabytes.
pub const MAX_SPEC_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: DynStore,
    pub runtime: Runtime,
    /// Largest document a knowledge upload may carry.
    pub max_document_bytes: usize,
    /// MCP servers and the key sealing their credentials; without them
    /// the integration endpoints answer `503 integrations_unavailable`.
    pub integrations: Option<Integrations>,
    /// The code sandbox whose workspaces `/v1/sessions/{id}/files` serves.
    pub sandbox: Option<std::sync::Arc<roster_sandbox::Sandbox>>,
}

#[derive(Clone)]
pub struct Integrations {
    pub mcp: std::sync::Arc<roster_mcp::McpManager>,
    pub sql: std::sync::Arc<roster_sql::SqlSources>,
    pub http: std::sync::Arc<roster_openapi::HttpServices>,
    pub secrets: roster_secrets::SecretBox,
}

/// Default for [`AppState::max_document_bytes`].
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 100 * 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "Roster API", description = "Stateful runtime for fleets of AI agents."),
    paths(
        routes::agents::create, routes::agents::list, routes::agents::show, routes::agents::update,
        routes::agents::delete, routes::agents::memory, routes::agents::versions, routes::agents::rollback,
        routes::blocks::list, routes::blocks::show, routes::blocks::set, routes::blocks::add,
        routes::blocks::remove,
        routes::sessions::create, routes::sessions::list, routes::sessions::show, routes::sessions::items,
        routes::sessions::delete, routes::sessions::upgrade,
        routes::sessions::post_message,
        routes::runs::show, routes::runs::cancel, routes::runs::retry, routes::runs::events,
        routes::ledger::list,
        routes::memories::create, routes::memories::list, routes::memories::show, routes::memories::update,
        routes::memories::delete, routes::memories::search,
        routes::index::status, routes::index::rebuild,
        routes::knowledge::create_source, routes::knowledge::list_sources, routes::knowledge::show_source,
        routes::knowledge::delete_source, routes::knowledge::list_documents, routes::knowledge::show_document,
        routes::knowledge::put_document, routes::knowledge::delete_document, routes::knowledge::search,
        routes::mcp::create, routes::mcp::list, routes::mcp::show, routes::mcp::delete, routes::mcp::tools,
        routes::mcp::catalogue, routes::mcp::builtins,
        routes::sql::create, routes::sql::list, routes::sql::show, routes::sql::delete, routes::sql::schema,
        routes::sql::query,
        routes::http_services::create, routes::http_services::list, routes::http_services::show, routes::http_services::delete,
        routes::files::list, routes::files::download, routes::files::upload, routes::files::delete,
        routes::tenants::create, routes::tenants::list, routes::tenants::show,
        routes::keys::create, routes::keys::list, routes::keys::show, routes::keys::revoke,
        routes::policies::list, routes::policies::schema, routes::policies::show, routes::policies::put,
        routes::policies::delete,
        routes::audit::list, routes::audit::export,
        routes::approvals::list, routes::approvals::events, routes::approvals::show, routes::approvals::approve, routes::approvals::deny,
        routes::budgets::list, routes::budgets::put_tenant, routes::budgets::delete_tenant,
        routes::budgets::put_agent, routes::budgets::delete_agent, routes::ledger::summary,
        healthz, openapi_json
    ),
    modifiers(&BearerAuth, &CommonErrors, &ErrorCodes),
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

/// Declares `error.code` as the table of [`codes::Code`]: a client generated
/// from the document knows every code the server may answer with.
struct ErrorCodes;

impl utoipa::Modify for ErrorCodes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
        use utoipa::openapi::RefOr;
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let Some(RefOr::T(Schema::Object(detail))) = components.schemas.get_mut("ErrorDetail")
        else {
            return;
        };
        let listed: Vec<String> = codes::Code::ALL
            .iter()
            .map(|c| {
                format!(
                    "`{}` ({}): {}",
                    c.as_str(),
                    c.status().as_u16(),
                    c.meaning()
                )
            })
            .collect();
        let code = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(codes::Code::ALL.iter().map(|c| c.as_str())))
            .description(Some(format!(
                "Stable machine-readable code:\n\n- {}",
                listed.join("\n- ")
            )))
            .build();
        detail
            .properties
            .insert("code".to_owned(), RefOr::T(Schema::Object(code)));
    }
}

/// Lists the errors any operation can answer with, so each handler's
/// annotation need only list its own: `401` on every `/v1` operation, and
/// `400`, `413` and `415` on every operation that takes a JSON body.
struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                let mut add = |code: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert_with(|| error(description).into());
                };
                if path.starts_with("/v1/") {
                    add("401", "unauthorized: missing, malformed or unknown API key");
                }
                if operation.request_body.is_some() {
                    add("400", "malformed_json or invalid_request");
                    add("413", "payload_too_large: the body is over 2 MiB");
                    add(
                        "415",
                        "unsupported_media_type: send `Content-Type: application/json`",
                    );
                }
                for (code, response) in operation.responses.responses.iter_mut() {
                    if let utoipa::openapi::RefOr::T(response) = response {
                        if response.description.is_empty() {
                            response.description = default_description(code).to_owned();
                        }
                    }
                }
            }
        }
    }
}

fn default_description(code: &str) -> &'static str {
    match code {
        "200" => "OK",
        "201" => "created",
        "202" => "accepted",
        "204" => "done; no body",
        "400" => "invalid_request",
        "403" => "forbidden: this key may not do that",
        "404" => "not_found: no such resource in this tenant",
        "422" => "the document cannot be ingested",
        "409" => "conflict",
        "503" => "unavailable",
        _ => "see the error body",
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
    if let Err(e) = state.store.find_api_key("healthz").await {
        tracing::error!(error = %e, "health check: the store does not answer");
        return Err(ApiError::new(
            crate::codes::Code::Unavailable,
            "the store does not answer",
        ));
    }
    Ok(axum::Json(Health {
        status: "ok",
        store: state.store.backend(),
    }))
}

#[utoipa::path(get, path = "/openapi.json", tag = "system", security(),
    responses((status = 200, content_type = "application/json", description = "this OpenAPI document")))]
async fn openapi_json() -> axum::Json<serde_json::Value> {
    axum::Json(openapi_rules::document())
}

async fn not_found() -> ApiError {
    ApiError::new(crate::codes::Code::NotFound, "no such endpoint")
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
            crate::codes::Code::MethodNotAllowed,
            "this endpoint does not take that method",
        )
        .into_response();
    }
    response
}

pub fn app(state: AppState) -> Router {
    use routes::{
        agents, approvals, audit, blocks, budgets, files, http_services, index, keys, knowledge,
        ledger, mcp, memories, policies, runs, sessions, sql, tenants,
    };
    // The upload handler reads and bounds its body itself.
    let document_limit = DefaultBodyLimit::disable();
    let v1 = Router::new()
        .route("/agents", post(agents::create).get(agents::list))
        .route(
            "/agents/{agent}",
            get(agents::show)
                .patch(agents::update)
                .delete(agents::delete),
        )
        .route("/agents/{agent}/memory", get(agents::memory))
        .route("/agents/{agent}/versions", get(agents::versions))
        .route("/agents/{agent}/rollback", post(agents::rollback))
        .route(
            "/agents/{agent}/blocks",
            get(blocks::list).post(blocks::add),
        )
        .route(
            "/agents/{agent}/blocks/{label}",
            get(blocks::show).patch(blocks::set).delete(blocks::remove),
        )
        .route("/sessions", post(sessions::create).get(sessions::list))
        .route(
            "/sessions/{id}",
            get(sessions::show).delete(sessions::delete),
        )
        .route("/sessions/{id}/upgrade", post(sessions::upgrade))
        .route("/sessions/{id}/items", get(sessions::items))
        .route("/sessions/{id}/messages", post(sessions::post_message))
        .route("/sessions/{id}/files", get(files::list))
        .route(
            "/sessions/{id}/files/{*path}",
            get(files::download)
                .put(files::upload)
                .delete(files::delete)
                .layer(DefaultBodyLimit::disable()),
        )
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/cancel", post(runs::cancel))
        .route("/runs/{id}/retry", post(runs::retry))
        .route("/runs/{id}/events", get(runs::events))
        .route("/ledger", get(ledger::list))
        .route("/ledger/summary", get(ledger::summary))
        .route("/budgets", get(budgets::list))
        .route(
            "/budgets/tenant",
            axum::routing::put(budgets::put_tenant).delete(budgets::delete_tenant),
        )
        .route(
            "/budgets/agents/{agent}",
            axum::routing::put(budgets::put_agent).delete(budgets::delete_agent),
        )
        .route("/tenants", post(tenants::create).get(tenants::list))
        .route("/tenants/{tenant}", get(tenants::show))
        .route("/keys", post(keys::create).get(keys::list))
        .route("/keys/{id}", get(keys::show).delete(keys::revoke))
        .route("/policies", get(policies::list))
        .route("/policies/schema", get(policies::schema))
        .route(
            "/policies/{name}",
            get(policies::show)
                .put(policies::put)
                .delete(policies::delete),
        )
        .route("/audit", get(audit::list))
        .route("/audit/export", get(audit::export))
        .route("/approvals", get(approvals::list))
        .route("/approvals/events", get(approvals::events))
        .route("/approvals/{id}", get(approvals::show))
        .route("/approvals/{id}/approve", post(approvals::approve))
        .route("/approvals/{id}/deny", post(approvals::deny))
        .route("/memories", post(memories::create).get(memories::list))
        .route("/memories/search", post(memories::search))
        .route(
            "/memories/{id}",
            get(memories::show)
                .patch(memories::update)
                .delete(memories::delete),
        )
        .route(
            "/knowledge/sources",
            post(knowledge::create_source).get(knowledge::list_sources),
        )
        .route(
            "/knowledge/sources/{name}",
            get(knowledge::show_source).delete(knowledge::delete_source),
        )
        .route(
            "/knowledge/sources/{name}/documents",
            get(knowledge::list_documents),
        )
        .route(
            "/knowledge/sources/{name}/documents/{*path}",
            get(knowledge::show_document)
                .put(knowledge::put_document)
                .delete(knowledge::delete_document)
                .layer(document_limit),
        )
        .route("/knowledge/search", post(knowledge::search))
        .route("/index", get(index::status))
        .route("/index/rebuild", post(index::rebuild))
        .route("/mcp/servers", post(mcp::create).get(mcp::list))
        .route("/mcp/servers/{name}", get(mcp::show).delete(mcp::delete))
        .route("/mcp/servers/{name}/tools", get(mcp::tools))
        .route("/mcp/catalogue", get(mcp::catalogue))
        .route("/tools", get(mcp::builtins))
        .route("/sources/sql", post(sql::create).get(sql::list))
        .route("/sources/sql/{name}", get(sql::show).delete(sql::delete))
        .route("/sources/sql/{name}/schema", get(sql::schema))
        .route("/sources/sql/{name}/query", post(sql::query))
        .route(
            "/sources/http",
            post(http_services::create)
                .get(http_services::list)
                .layer(DefaultBodyLimit::max(MAX_SPEC_BYTES)),
        )
        .route(
            "/sources/http/{name}",
            get(http_services::show).delete(http_services::delete),
        )
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
