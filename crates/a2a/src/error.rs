//! What can go wrong: [`A2aError`] for registrations (answered by the API
//! with a stable code), [`RemoteError`] for one exchange with a remote
//! (told to the model as an error result, or wrapped in an `A2aError`).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum A2aError {
    /// A registration that cannot be used (bad name, URL or header).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The card could not be fetched: no answer, an HTTP error, not JSON.
    #[error("{0}")]
    Unavailable(String),
    /// The card was fetched but is not a usable A2A card.
    #[error("{0}")]
    InvalidCard(String),
    /// The egress policy refuses the card's or the endpoint's address.
    #[error(transparent)]
    Egress(#[from] roster_egress::EgressError),
    #[error("stored credentials cannot be opened: {0}")]
    Secret(String),
    #[error(transparent)]
    Store(#[from] roster_store::StoreError),
}

impl A2aError {
    /// Stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            A2aError::Invalid(_) => "invalid_request",
            A2aError::NotFound(_) => "not_found",
            A2aError::Unavailable(_) => "remote_unavailable",
            A2aError::InvalidCard(_) => "invalid_agent_card",
            A2aError::Egress(e) => e.code(),
            A2aError::Secret(_) => "secret_unreadable",
            A2aError::Store(_) => "store_error",
        }
    }
}

/// One failed exchange with a remote: what the caller (a person or a
/// model) needs to tell a refusal, a broken remote and a slow one apart.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The egress policy refused the address (at resolution, or an IP
    /// literal before sending).
    #[error("{0}")]
    Egress(roster_egress::EgressError),
    #[error("HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status { status: u16, body: String },
    /// Roster follows no redirect: the registered URL must be the real one.
    #[error("it answered with a redirect to {0}, which Roster does not follow; register that URL instead")]
    Redirect(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the answer is not JSON: {0}")]
    NotJson(String),
    /// A JSON-RPC error object, with A2A's name for its code when it has one.
    #[error("{}", rpc_text(*.code, .message))]
    Rpc { code: i64, message: String },
    /// JSON, but not the answer the protocol describes.
    #[error("the answer is not a valid A2A response: {0}")]
    InvalidResponse(String),
}

impl RemoteError {
    /// The JSON-RPC error code, for an error the remote answered with.
    pub fn rpc_code(&self) -> Option<i64> {
        match self {
            RemoteError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the remote turned Roster's credentials away.
    pub fn unauthorized(&self) -> bool {
        matches!(
            self,
            RemoteError::Status {
                status: 401 | 403,
                ..
            }
        )
    }
}

/// A2A's and JSON-RPC's names for error codes (A2A spec §5.4, JSON-RPC 2.0).
pub fn rpc_error_name(code: i64) -> Option<&'static str> {
    Some(match code {
        -32700 => "parse error",
        -32600 => "invalid request",
        -32601 => "method not found",
        -32602 => "invalid params",
        -32603 => "internal error",
        -32001 => "task not found",
        -32002 => "task not cancelable",
        -32003 => "push notifications not supported",
        -32004 => "unsupported operation",
        -32005 => "content type not supported",
        -32006 => "invalid agent response",
        -32007 => "extended agent card not configured",
        -32008 => "extension support required",
        -32009 => "version not supported",
        _ => return None,
    })
}

fn rpc_text(code: i64, message: &str) -> String {
    match rpc_error_name(code) {
        Some(name) if message.is_empty() => format!("{name} ({code})"),
        Some(name) => format!("{name} ({code}): {message}"),
        None if message.is_empty() => format!("JSON-RPC error {code}"),
        None => format!("JSON-RPC error {code}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(A2aError::Invalid(String::new()).code(), "invalid_request");
        assert_eq!(A2aError::NotFound(String::new()).code(), "not_found");
        assert_eq!(
            A2aError::Unavailable(String::new()).code(),
            "remote_unavailable"
        );
        assert_eq!(
            A2aError::InvalidCard(String::new()).code(),
            "invalid_agent_card"
        );
        assert_eq!(
            A2aError::Egress(roster_egress::EgressError::Denied(String::new())).code(),
            "egress_denied"
        );
        assert_eq!(
            A2aError::Egress(roster_egress::EgressError::Unresolved(String::new())).code(),
            "host_unresolved"
        );
        assert_eq!(A2aError::Secret(String::new()).code(), "secret_unreadable");
    }

    #[test]
    fn remote_errors_read_plainly() {
        let rpc = RemoteError::Rpc {
            code: -32001,
            message: "Task t1 not found".into(),
        };
        assert_eq!(
            rpc.to_string(),
            "task not found (-32001): Task t1 not found"
        );
        assert_eq!(rpc.rpc_code(), Some(-32001));
        let odd = RemoteError::Rpc {
            code: 7,
            message: String::new(),
        };
        assert_eq!(odd.to_string(), "JSON-RPC error 7");
        let status = RemoteError::Status {
            status: 401,
            body: String::new(),
        };
        assert_eq!(status.to_string(), "HTTP 401");
        assert!(status.unauthorized());
        let status = RemoteError::Status {
            status: 500,
            body: "boom".into(),
        };
        assert_eq!(status.to_string(), "HTTP 500: boom");
        assert!(!status.unauthorized());
        assert_eq!(
            RemoteError::Timeout(Duration::from_secs(3)).to_string(),
            "no answer within 3s"
        );
    }
}
