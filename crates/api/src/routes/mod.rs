//! Route handlers, one module per resource.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod blocks;
pub mod budgets;
pub mod files;
pub(crate) mod governed;
pub mod http;
pub mod index;
pub mod keys;
pub mod knowledge;
pub mod ledger;
pub mod mcp;
pub mod memories;
pub mod policies;
pub mod runs;
pub mod sessions;
pub mod sql;
pub mod tenants;

/// The runtime's memory service, or `503 memory_unavailable`.
pub(crate) fn memory_service(
    state: &crate::AppState,
) -> Result<&std::sync::Arc<roster_memory::MemoryService>, crate::error::ApiError> {
    state.runtime.memory().ok_or_else(|| {
        crate::error::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "memory_unavailable",
            "long-term memory and knowledge search are not enabled on this server",
        )
    })
}
