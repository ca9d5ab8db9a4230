//! Roster's HTTP API.
//!
//! Owns routes, bearer-key authentication, the JSON error format, SSE
//! streams and the OpenAPI document generated from the handlers. It is the
//! only crate that knows HTTP. It must never touch SQL or call a model: it
//! asks the store for state and the runtime for runs.

mod a2a;
pub mod auth;
pub mod codes;
pub mod error;
mod extract;
pub mod identity;
mod openai;
mod openapi_rules;
mod router;
mod routes;
pub mod scopes;
mod sse;
mod tenancy;

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
    /// The providers and models this server offers (`GET /v1/models`), and
    /// the route of agents created without one.
    pub models: std::sync::Arc<ModelCatalogue>,
}

/// What `GET /v1/models` answers.
#[derive(Clone, Debug, Default, serde::Serialize, utoipa::ToSchema)]
pub struct ModelCatalogue {
    /// Route (`provider/model`) of agents created without a model; none
    /// means a model must be given.
    pub default: Option<String>,
    pub providers: Vec<ProviderEntry>,
    /// The provider objects, asked for their queues on each request.
    #[serde(skip)]
    pub live: LiveProviders,
}

/// The configured providers themselves (not serialised).
#[derive(Clone, Default)]
pub struct LiveProviders(pub Vec<std::sync::Arc<dyn roster_models::ModelProvider>>);

impl std::fmt::Debug for LiveProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|p| p.name()))
            .finish()
    }
}

/// A provider that serves one call at a time (the in-process model): how
/// many calls it is running and how many wait their turn, in arrival order.
#[derive(Clone, Copy, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ModelQueue {
    pub running: usize,
    pub waiting: usize,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ProviderEntry {
    pub name: String,
    pub vendor: String,
    /// `local` for a model running inside this server.
    pub hosting: String,
    pub region: String,
    /// The models it is known to serve; empty when its endpoint decides
    /// (any model the vendor has).
    pub models: Vec<String>,
    /// Now, for a provider that runs calls in turn; absent for remote ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<ModelQueue>,
}

#[derive(Clone)]
pub struct Integrations {
    pub mcp: std::sync::Arc<roster_mcp::McpManager>,
    pub sql: std::sync::Arc<roster_sql::SqlSources>,
    pub http: std::sync::Arc<roster_openapi::HttpServices>,
    /// Remote A2A agents (`/v1/remotes`, `a2a:NAME` tools).
    pub a2a: std::sync::Arc<roster_a2a::Remotes>,
    pub secrets: roster_secrets::SecretBox,
    /// Where tenant-configured connections may go (webhook URLs are
    /// checked against it when registered).
    pub egress: std::sync::Arc<roster_egress::EgressPolicy>,
}

/// Default for [`AppState::max_document_bytes`].
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 100 * 1024 * 1024;

/// The document's frame; its paths, schemas and error tables are added by
/// [`router::openapi`] from the routes themselves.
#[derive(OpenApi)]
#[openapi(
    info(title = "Roster API", description = "Stateful runtime for fleets of AI agents."),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

pub(crate) struct BearerAuth;

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
pub(crate) struct ErrorCodes;

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
pub(crate) struct CommonErrors;

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
    axum::Json(router::document().clone())
}

pub use router::app;
