//! `knowledge_search` and `memory_search`: the memory service's searches,
//! with the checks of `POST /v1/knowledge/search` and
//! `POST /v1/memories/search` — the same limits, sources looked up in the
//! key's tenant, and a user's `users/NAME` namespaces reached only by keys
//! that may act for that user (`roster_api::identity::require_namespace`).

use crate::args;
use crate::error::ToolError;
use rmcp::model::CallToolResult;
use roster_api::auth::Principal;
use roster_api::codes::Code;
use roster_api::{ApiError, AppState};
use roster_memory::{KnowledgeRequest, MemoryService, SearchRequest};
use std::sync::Arc;

/// As many namespaces as one memory search takes (the API's limit).
const MAX_NAMESPACES: usize = 32;

pub(crate) async fn knowledge(
    state: &AppState,
    principal: &Principal,
    request: args::KnowledgeSearch,
) -> Result<CallToolResult, ToolError> {
    let service = service(state)?;
    let limit = limit(request.limit, 5)?;
    check_query(&request.query)?;
    let sources = if request.sources.is_empty() {
        state.store.list_sources(&principal.tenant).await?
    } else {
        let mut found = Vec::with_capacity(request.sources.len());
        for name in &request.sources {
            let source = state
                .store
                .get_source(&principal.tenant, name)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        Code::NotFound,
                        format!("there is no knowledge source `{name}`"),
                    )
                })?;
            found.push(source);
        }
        found
    };
    if sources.is_empty() {
        return Ok(structured(serde_json::json!({
            "mode": "full_text",
            "notice": "this tenant has no knowledge sources",
            "data": [],
        })));
    }
    let results = service
        .search_knowledge(
            &principal.tenant,
            &KnowledgeRequest {
                sources,
                query: request.query,
                limit,
            },
        )
        .await?;
    Ok(structured(to_json(&results)?))
}

pub(crate) async fn memory(
    state: &AppState,
    principal: &Principal,
    request: args::MemorySearch,
) -> Result<CallToolResult, ToolError> {
    let service = service(state)?;
    let mut namespaces = request.namespaces;
    if namespaces.is_empty() {
        // A key bound to a user has one obvious place to look.
        match principal.bound_user() {
            Some(user) => namespaces.push(format!("users/{user}")),
            None => {
                return Err(ToolError::Arguments(
                    "give `namespaces` (e.g. [\"users/ada\"]): this key is bound to no user".into(),
                ))
            }
        }
    }
    if namespaces.len() > MAX_NAMESPACES {
        return Err(ToolError::Arguments(format!(
            "at most {MAX_NAMESPACES} namespaces"
        )));
    }
    for namespace in &namespaces {
        roster_core::record::validate_namespace(namespace)?;
        roster_api::identity::require_namespace(principal, namespace)?;
    }
    let limit = limit(request.limit, 10)?;
    check_query(&request.query)?;
    let results = service
        .search(
            &principal.tenant,
            &SearchRequest {
                namespaces,
                query: request.query,
                limit,
            },
        )
        .await?;
    Ok(structured(to_json(&results)?))
}

/// The runtime's memory service, or the API's `memory_unavailable`.
fn service(state: &AppState) -> Result<&Arc<MemoryService>, ToolError> {
    state.runtime.memory().ok_or_else(|| {
        ApiError::new(
            Code::MemoryUnavailable,
            "long-term memory and knowledge search are not enabled on this server",
        )
        .into()
    })
}

fn limit(given: Option<usize>, default: usize) -> Result<usize, ToolError> {
    let limit = given.unwrap_or(default);
    if (1..=100).contains(&limit) {
        Ok(limit)
    } else {
        Err(ToolError::Arguments(
            "`limit` must be between 1 and 100".into(),
        ))
    }
}

/// Checked before anything is looked up, so the answer does not depend on
/// what the tenant has.
fn check_query(query: &str) -> Result<(), ToolError> {
    if query.trim().is_empty() {
        return Err(ToolError::Arguments("`query` must not be empty".into()));
    }
    if query.len() > roster_memory::MAX_QUERY_BYTES {
        return Err(ToolError::Arguments(format!(
            "`query` is longer than {} bytes",
            roster_memory::MAX_QUERY_BYTES
        )));
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, ToolError> {
    serde_json::to_value(value).map_err(|e| {
        tracing::error!(error = %e, "cannot render search results");
        ApiError::new(Code::InternalError, "internal error; see the server log").into()
    })
}

/// Results as structured content, and as JSON text for clients that read
/// only text (as the spec advises).
fn structured(value: serde_json::Value) -> CallToolResult {
    CallToolResult::structured(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_queries_are_checked_as_the_api_checks_them() {
        assert_eq!(limit(None, 5).ok(), Some(5));
        assert_eq!(limit(Some(100), 5).ok(), Some(100));
        assert!(limit(Some(0), 5).is_err());
        assert!(limit(Some(101), 5).is_err());
        assert!(check_query("pricing").is_ok());
        assert!(check_query("   ").is_err());
        assert!(check_query(&"q".repeat(roster_memory::MAX_QUERY_BYTES + 1)).is_err());
    }
}
