//! HTTP services described by an OpenAPI 3 document (3.0 or 3.1), offered
//! to agents as one tool per operation.
//!
//! Owns: what a tenant registers ([`HttpServiceInput`], split into a stored
//! [`HttpServiceConfig`] and sealed credentials), the import that turns a
//! document into operations with JSON Schemas ([`import`]), the call that
//! builds a request from a tool's arguments and cuts the answer to size,
//! and the `http:` tool provider.
//!
//! Every connection also passes the egress policy on the address it
//! actually goes to: one client per destination port whose resolver keeps
//! only allowed addresses, IP-literal URLs checked before sending, and
//! redirects followed by Roster itself, each hop checked the same way.
//!
//! Must never: send a request to a host outside the service's allow-list
//! or an address the egress policy refuses (redirects included), show a
//! stored credential, or read a response past its size limit.

mod call;
mod import;
mod manager;
mod spec;
mod tool;

pub use import::{import, Imported, Operation, Parameter, ParameterLocation};
pub use manager::{secret_context, HttpServices};
pub use spec::{
    Auth, AuthInput, HttpServiceConfig, HttpServiceInput, DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT_SECS, MAX_MAX_RESPONSE_BYTES, MAX_TIMEOUT_SECS,
};
pub use tool::{exposed_name, HttpProvider, HttpTool};

/// The integration kind HTTP services are stored under, and the scheme of
/// agents' `http:NAME` / `http:NAME/OPERATION` tool entries.
pub const KIND: &str = "http";

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A registration that cannot be used (bad document, bad URL).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The egress policy refuses the service's address.
    #[error(transparent)]
    Egress(roster_egress::EgressError),
    #[error("stored credentials cannot be opened: {0}")]
    Secret(String),
    #[error(transparent)]
    Store(#[from] roster_store::StoreError),
}

impl HttpError {
    /// Stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::Invalid(_) => "invalid_request",
            HttpError::NotFound(_) => "not_found",
            HttpError::Egress(e) => e.code(),
            HttpError::Secret(_) => "secret_unreadable",
            HttpError::Store(_) => "store_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(HttpError::Invalid(String::new()).code(), "invalid_request");
        assert_eq!(
            HttpError::Egress(roster_egress::EgressError::Denied(String::new())).code(),
            "egress_denied"
        );
    }
}
