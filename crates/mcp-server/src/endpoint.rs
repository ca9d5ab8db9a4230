//! `/mcp` as an axum router, to merge with the API's on the same listener.
//!
//! rmcp's Streamable HTTP service, configured:
//! - stateless (`legacy_session_mode: false`, no session manager): an
//!   `initialize` is answered without an `Mcp-Session-Id`, so the clients
//!   send none and any node answers any request; 2026-07-28 requests are
//!   stateless anyway. The conversation's state is Roster's session, named
//!   in each call.
//! - answers a call with one JSON body, as the native waiting
//!   `POST …/messages` does (a proxy in front must allow the same long
//!   reads). An SSE answer was measured 38 ms slower per call on loopback
//!   (before `roster serve` set TCP_NODELAY): its chunks are separate writes,
//!   which Nagle's algorithm held back until the client's delayed ACK. rmcp
//!   still streams when a handler sends something before its answer.
//! - no `Host` allow-list (see `origin.rs` for why, and what checks
//!   `Origin` instead); the API's body limit.
//!
//! In front of it, outermost first: the `Origin` check, then the key.

use crate::handler::RosterMcp;
use axum::middleware::{from_fn, from_fn_with_state};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use roster_api::AppState;
use std::sync::Arc;

/// Where the endpoint is served.
pub const PATH: &str = "/mcp";

/// The MCP endpoint, ready to `merge` with `roster_api::app`'s router (it
/// sets no fallback, so the merge keeps the API's).
pub fn router(state: AppState) -> axum::Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .disable_allowed_hosts()
        .with_max_request_body_bytes(roster_api::MAX_BODY_BYTES);
    let handlers = state.clone();
    let service = StreamableHttpService::new(
        move || Ok(RosterMcp::new(handlers.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    axum::Router::new()
        .route_service(PATH, service)
        .route_layer(from_fn_with_state(state, crate::gate::require_key))
        .route_layer(from_fn(crate::origin::check))
}
