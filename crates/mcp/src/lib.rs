//! MCP (Model Context Protocol) for Roster, through the `rmcp` crate.
//!
//! Owns: what a tenant registers as an MCP server ([`McpServerInput`],
//! split into a stored [`McpServerConfig`] and sealed credentials), the
//! operator's [`Catalogue`] of stdio servers tenants may enable, the
//! [`McpManager`] that keeps one supervised connection per (tenant, server)
//! — a child process confined like `run_code` (bubblewrap, its own uid,
//! its own state directory, network only if allowed), or a Streamable
//! HTTP session through the egress policy — and [`McpProvider`], which
//! turns an agent's `mcp:NAME` / `mcp:NAME/TOOL` entries into tools named
//! `NAME__TOOL`.
//!
//! Must never: run a host command a tenant key chose (only the operator's
//! catalogue entries, or a command the admin key registered), run a stdio
//! server outside its sandbox, let a slow, hung or dead server block a run
//! or another session (every start and call is bounded by a timeout, and
//! calls to one server run concurrently), pass Roster's own environment to
//! a server, or show a stored credential.

mod catalogue;
mod connection;
mod launch;
mod manager;
mod render;
mod spec;
mod tool;

pub use catalogue::{
    Catalogue, CatalogueEntry, CatalogueEntryView, Placeholder, PlaceholderView, MAX_VALUE_BYTES,
};
pub use connection::ServerTool;
pub use manager::{secret_context, McpManager, McpOptions, DEFAULT_LIMITS};
pub use spec::{
    validate_name, McpSecrets, McpServerConfig, McpServerInput, Transport, DEFAULT_TIMEOUT_SECS,
    MAX_TIMEOUT_SECS,
};
pub use tool::{exposed_name, McpProvider, McpTool};

/// The integration kind MCP servers are stored under, and the scheme of
/// agents' `mcp:` tool entries.
pub const KIND: &str = "mcp";

/// First uid of the range stdio servers run as when Roster is root (above
/// the range `run_code` sessions use).
pub const UID_BASE: u32 = roster_sandbox::UID_BASE + roster_sandbox::UID_RANGE;
pub const UID_RANGE: u32 = 800_000;

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    /// Registering a command of one's own needs the admin key.
    #[error("{0}")]
    CommandNeedsAdmin(String),
    /// Stdio servers need the sandbox, which does not work here.
    #[error("{0}")]
    SandboxUnavailable(String),
    /// The egress policy refuses the server's address.
    #[error(transparent)]
    Egress(#[from] roster_egress::EgressError),
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
            McpError::CommandNeedsAdmin(_) => "mcp_command_needs_admin",
            McpError::SandboxUnavailable(_) => "sandbox_unavailable",
            McpError::Egress(e) => e.code(),
            McpError::Secret(_) => "secret_unreadable",
            McpError::Store(_) => "store_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(McpError::Invalid(String::new()).code(), "invalid_request");
        assert_eq!(
            McpError::CommandNeedsAdmin(String::new()).code(),
            "mcp_command_needs_admin"
        );
        assert_eq!(
            McpError::SandboxUnavailable(String::new()).code(),
            "sandbox_unavailable"
        );
        assert_eq!(
            McpError::Egress(roster_egress::EgressError::Denied(String::new())).code(),
            "egress_denied"
        );
    }
}
