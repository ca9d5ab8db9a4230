//! The errors of this crate: what a provider call can fail with, and what
//! building providers from configuration can fail with.
//!
//! Owns the stable error codes written to the ledger. Must never carry an API
//! key or a request body in a message.

use std::time::Duration;

/// Why a model call failed, as the router and the ledger see it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// 429, or Anthropic 529 "overloaded".
    #[error("rate limited: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The prompt does not fit the model's context window.
    #[error("context overflow: {message}")]
    ContextOverflow { message: String },
    /// 401/403: the key is missing, wrong or not allowed.
    #[error("authentication failed: {message}")]
    Auth { message: String },
    /// Any other 4xx: the request itself is wrong.
    #[error("bad request: {message}")]
    BadRequest { message: String },
    /// 5xx, connection errors, a stream cut before its terminator.
    #[error("transient provider error: {message}")]
    Transient { message: String },
    /// No answer (or no stream chunk) within the configured time.
    #[error("timeout: {message}")]
    Timeout { message: String },
    /// A success status with a body that cannot be understood.
    #[error("invalid response: {message}")]
    InvalidResponse { message: String },
    /// A route names a provider the registry does not have.
    #[error("no provider `{name}` is configured: set OPENAI_API_KEY or ANTHROPIC_API_KEY (for the providers `openai` and `anthropic`), or add [providers.{name}] to the config file (see the README's \"Model providers\")")]
    UnknownProvider { name: String },
    /// 404: the provider does not know the model (or the base URL is
    /// wrong). Another target of the route may well have it.
    #[error("not found: {message}")]
    NotFound { message: String },
    /// The caller stopped waiting (the run was cancelled) while the request
    /// was in flight; the provider may still bill it.
    #[error("cancelled while in flight")]
    Cancelled,
}

impl ProviderError {
    /// The stable code written to the ledger's `outcome`.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::RateLimited { .. } => "provider_rate_limited",
            ProviderError::ContextOverflow { .. } => "provider_context_overflow",
            ProviderError::Auth { .. } => "provider_auth",
            ProviderError::BadRequest { .. } => "provider_bad_request",
            ProviderError::Transient { .. } => "provider_transient",
            ProviderError::Timeout { .. } => "provider_timeout",
            ProviderError::InvalidResponse { .. } => "provider_invalid_response",
            ProviderError::UnknownProvider { .. } => "unknown_provider",
            ProviderError::Cancelled => "cancelled",
            ProviderError::NotFound { .. } => "provider_not_found",
        }
    }

    /// Whether trying the same target again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Transient { .. }
                | ProviderError::Timeout { .. }
        )
    }

    /// The error a stored `code()` and `to_string()` describe, for a caller
    /// that persisted one (a `retry-after` is not kept); `None` for codes
    /// that carry no message (`unknown_provider`, `cancelled`) or that this
    /// version does not know.
    pub fn from_stored(code: &str, text: &str) -> Option<Self> {
        let strip = |prefix: &str| text.strip_prefix(prefix).unwrap_or(text).to_owned();
        Some(match code {
            "provider_rate_limited" => ProviderError::RateLimited {
                retry_after: None,
                message: strip("rate limited: "),
            },
            "provider_context_overflow" => ProviderError::ContextOverflow {
                message: strip("context overflow: "),
            },
            "provider_auth" => ProviderError::Auth {
                message: strip("authentication failed: "),
            },
            "provider_bad_request" => ProviderError::BadRequest {
                message: strip("bad request: "),
            },
            "provider_transient" => ProviderError::Transient {
                message: strip("transient provider error: "),
            },
            "provider_timeout" => ProviderError::Timeout {
                message: strip("timeout: "),
            },
            "provider_invalid_response" => ProviderError::InvalidResponse {
                message: strip("invalid response: "),
            },
            "provider_not_found" => ProviderError::NotFound {
                message: strip("not found: "),
            },
            _ => return None,
        })
    }

    pub(crate) fn transient(message: impl Into<String>) -> Self {
        ProviderError::Transient {
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ProviderError::InvalidResponse {
            message: message.into(),
        }
    }

    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        ProviderError::Timeout {
            message: message.into(),
        }
    }
}

/// Why a provider could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("provider name must not be empty")]
    EmptyName,
    #[error("provider `{name}` is configured twice")]
    Duplicate { name: String },
    #[error("provider `{provider}`: environment variable `{var}` is not set")]
    MissingEnv { provider: String, var: String },
    #[error("provider `{provider}`: invalid base_url `{url}`: {reason}")]
    InvalidBaseUrl {
        provider: String,
        url: String,
        reason: String,
    },
    #[error("provider `{provider}`: invalid header `{header}`")]
    InvalidHeader { provider: String, header: String },
    #[error("provider `{provider}`: cannot build HTTP client: {reason}")]
    Client { provider: String, reason: String },
    #[error("provider `{provider}`: {reason}")]
    LocalModel { provider: String, reason: String },
}

/// A read that got nothing for `after`.
pub(crate) fn timed_out(after: Duration) -> ProviderError {
    ProviderError::timeout(format!("nothing received for {}s", after.as_secs()))
}

/// A transport failure: timeouts are `Timeout`, everything else (refused,
/// reset, cut body) is `Transient`. The URL is dropped from the message.
pub(crate) fn map_transport(e: reqwest::Error) -> ProviderError {
    let e = e.without_url();
    if e.is_timeout() {
        ProviderError::timeout(describe(&e))
    } else {
        ProviderError::transient(describe(&e))
    }
}

/// An error and its sources, joined with `: `.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_retryability() {
        let rl = ProviderError::RateLimited {
            retry_after: None,
            message: String::new(),
        };
        assert_eq!(rl.code(), "provider_rate_limited");
        assert!(rl.is_retryable());
        assert!(ProviderError::timeout("x").is_retryable());
        assert!(ProviderError::transient("x").is_retryable());
        assert!(!ProviderError::invalid("x").is_retryable());
        let auth = ProviderError::Auth {
            message: String::new(),
        };
        assert!(!auth.is_retryable());
        assert_eq!(auth.code(), "provider_auth");
    }

    #[test]
    fn stored_errors_read_back() {
        let errors = [
            ProviderError::RateLimited {
                retry_after: None,
                message: "slow down".into(),
            },
            ProviderError::transient("503 Service Unavailable"),
            ProviderError::timeout("nothing received for 5s"),
            ProviderError::invalid("no choices"),
            ProviderError::Auth {
                message: "bad key".into(),
            },
            ProviderError::BadRequest {
                message: "x".into(),
            },
            ProviderError::ContextOverflow {
                message: "y".into(),
            },
            ProviderError::NotFound {
                message: "z".into(),
            },
        ];
        for error in errors {
            assert_eq!(
                ProviderError::from_stored(error.code(), &error.to_string()),
                Some(error.clone())
            );
        }
        assert_eq!(ProviderError::from_stored("cancelled", "x"), None);
        assert_eq!(ProviderError::from_stored("unknown_provider", "x"), None);
    }
}
