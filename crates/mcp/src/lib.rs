//! MCP (Model Context Protocol) for Roster, through the `rmcp` crate.
//!
//! Owns: what a tenant registers as an MCP server ([`McpServerInput`],
//! split into a stored [`McpServerConfig`] and sealed credentials), the
//! [`McpManager`] that keeps one supervised connection per (tenant, server)
//! — a child process in its own process group with a clean environment, or
//! a Streamable HTTP session — and [`McpProvider`], which turns an agent's
//! `mcp:NAME` / `mcp:NAME/TOOL` entries into tools named `NAME__TOOL`.
//!
//! Must never: let a slow, hung or dead server block a run or another
//! session (every start and call is bounded by a timeout, and calls to one
//! server run concurrently), pass Roster's own environment to a server, or
//! show a stored credential.

mod connection;
mod manager;
mod render;
mod spec;
mod tool;

pub use connection::ServerTool;
pub use manager::{secret_context, McpManager};
pub use spec::{
    validate_name, McpSecrets, McpServerConfig, McpServerInput, Transport, DEFAULT_TIMEOUT_SECS,
    MAX_TIMEOUT_SECS,
};
pub use tool::{exposed_name, McpProvider, McpTool};

/// The integration kind MCP servers are stored under, and the scheme of
/// agents' `mcp:` tool entries.
pub const KIND: &str = "mcp";

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("stored credentials cannot be opened: {0}")]
    Secret(String),
    #[error(transparent)]
    Store(#[from] roster_store::StoreError),
}

impl McpError {
    /// Stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            McpError::Invalid(_) => "invalid_request",
            McpError::NotFound(_) => "not_found",
            McpError::Unavailable(_) => "mcp_unavailable",
            McpError::Secret(_) => "secret_unreadable",
            McpError::Store(_) => "store_error",
        }
    }
}
