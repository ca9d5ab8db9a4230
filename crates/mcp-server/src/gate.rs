//! Who calls: the API's bearer key, checked before rmcp reads the body.
//!
//! The key is resolved exactly as for `/v1` (`roster_api::auth::
//! authenticate`: unknown, revoked and expired keys, the admin key's
//! `X-Roster-Tenant`), and the principal rides in the request's extensions,
//! which rmcp hands each handler with the HTTP parts. Scopes are checked
//! per tool (`catalogue.rs`): one endpoint serves several API areas.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use roster_api::auth::Principal;
use roster_api::{ApiError, AppState};

/// Refuses a request without a valid key with the API's JSON error (not a
/// JSON-RPC body: clients read a 401 as "authenticate", whatever its
/// body) and `WWW-Authenticate: Bearer`.
pub(crate) async fn require_key(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let presented = req.headers().contains_key(header::AUTHORIZATION);
    match roster_api::auth::authenticate(&state, req.headers()).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => refusal(e, presented),
    }
}

fn refusal(e: ApiError, presented: bool) -> Response {
    let unauthorized = e.status() == StatusCode::UNAUTHORIZED;
    let mut response = e.into_response();
    if unauthorized {
        // RFC 6750: a presented key that is not good is `invalid_token`.
        let challenge = if presented {
            r#"Bearer realm="roster", error="invalid_token""#
        } else {
            r#"Bearer realm="roster""#
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// The principal [`require_key`] put on the request. Missing only if the
/// route were mounted without the gate: refuse rather than serve anyone.
pub(crate) fn principal(context: &RequestContext<RoleServer>) -> Result<Principal, McpError> {
    context
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<Principal>())
        .cloned()
        .ok_or_else(|| {
            tracing::error!("an MCP request reached its handler without a principal");
            McpError::internal_error("internal error; see the server log", None)
        })
}
