//! Route handlers, one module per resource.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod blocks;
pub mod budgets;
pub mod files;
pub mod hooks;
pub mod http_services;
pub mod index;
pub mod keys;
pub mod knowledge;
pub mod ledger;
pub mod limits;
pub mod mcp;
pub mod memories;
pub mod models;
pub mod policies;
pub mod remotes;
pub mod run_tree;
pub mod runs;
pub mod schedules;
pub mod sessions;
pub mod sql;
pub mod tenants;
pub mod triggers;
pub mod webhooks;

/// The runtime's memory service, or `503 memory_unavailable`.
pub(crate) fn memory_service(
    state: &crate::AppState,
) -> Result<&std::sync::Arc<roster_memory::MemoryService>, crate::error::ApiError> {
    state.runtime.memory().ok_or_else(|| {
        crate::error::ApiError::new(
            crate::codes::Code::MemoryUnavailable,
            "long-term memory and knowledge search are not enabled on this server",
        )
    })
}

/// Error codes of the walls: an integration pointed where tenants may not
/// go. Each refusal is on the record, not only each change.
const WALL_CODES: [crate::codes::Code; 3] = [
    crate::codes::Code::McpCommandNeedsAdmin,
    crate::codes::Code::EgressDenied,
    crate::codes::Code::PathNotAllowed,
];

/// Records a refused integration registration (`KIND.add`, decision
/// `deny`, with the error) when `error` is one of the walls', then hands
/// the error back. A failed audit write is logged, not shown: the caller's
/// answer is the refusal either way.
pub(crate) async fn audit_refusal(
    state: &crate::AppState,
    principal: &crate::auth::Principal,
    kind: &str,
    name: &str,
    error: crate::error::ApiError,
) -> crate::error::ApiError {
    if WALL_CODES.contains(&error.code) {
        let mut event = roster_store::integration_event(
            &principal.label(),
            kind,
            "add",
            name,
            serde_json::json!({ "code": error.code.as_str(), "message": error.message }),
        );
        event.decision = Some("deny".into());
        if let Err(e) = state
            .store
            .append_audit(&principal.tenant, vec![event])
            .await
        {
            tracing::error!(error = %e, "cannot record a refused integration");
        }
    }
    error
}
