//! Why a tool call did not do what it was asked, in words for the person
//! or model that asked. MCP reports these as tool results with `isError`
//! (so the caller reads them and can correct itself), not as protocol
//! errors, which clients show opaquely; only an unknown tool is a
//! protocol error (`handler.rs`).

use rmcp::model::{CallToolResult, ContentBlock};
use roster_api::ApiError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ToolError {
    /// The arguments do not fit the tool's schema or its rules.
    #[error("invalid arguments: {0}")]
    Arguments(String),
    /// What the native API answers to the same request: a refusal or a
    /// failure with its stable code (internal details are logged where
    /// the `ApiError` was made, never put here).
    #[error("{code}: {message}")]
    Refused { code: &'static str, message: String },
}

impl ToolError {
    /// The tool result a caller sees.
    pub(crate) fn into_result(self) -> CallToolResult {
        let structured = match &self {
            ToolError::Arguments(message) => {
                serde_json::json!({ "error": { "code": "invalid_arguments", "message": message } })
            }
            ToolError::Refused { code, message } => {
                serde_json::json!({ "error": { "code": code, "message": message } })
            }
        };
        let mut result = CallToolResult::error(vec![ContentBlock::text(self.to_string())]);
        result.structured_content = Some(structured);
        result
    }
}

impl From<ApiError> for ToolError {
    fn from(e: ApiError) -> Self {
        ToolError::Refused {
            code: e.code.as_str(),
            message: e.message,
        }
    }
}

impl From<roster_runtime::RuntimeError> for ToolError {
    fn from(e: roster_runtime::RuntimeError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<roster_store::StoreError> for ToolError {
    fn from(e: roster_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<roster_memory::MemoryError> for ToolError {
    fn from(e: roster_memory::MemoryError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<roster_core::ValidationError> for ToolError {
    fn from(e: roster_core::ValidationError) -> Self {
        ApiError::from(e).into()
    }
}
