//! What building or calling an embedder can fail with, and the stable codes
//! those failures are reported under.
//!
//! Owns [`EmbedError`] and its codes. Must never carry an API key, a request
//! body or the text being embedded in a message: errors end up in logs.

use std::path::PathBuf;
use std::time::Duration;

/// Why an embedder could not be built or could not embed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbedError {
    /// The configuration is wrong or incomplete (missing key, zero batch...).
    #[error("embedder configuration: {0}")]
    Config(String),
    /// A local model's files are missing or cannot be read as a model.
    #[error("cannot load embedding model from {}: {message}", path.display())]
    Load { path: PathBuf, message: String },
    /// The endpoint answered with an error status (after any retries).
    #[error("embedding endpoint answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// 429, still so after the retries, or with a `retry-after` too long to
    /// wait for inside one call.
    #[error("embedding endpoint rate limited the request{}", describe_wait(*retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// No complete answer within the configured timeout.
    #[error("embedding request timed out")]
    Timeout,
    /// The endpoint could not be reached, or the connection broke.
    #[error("embedding endpoint unreachable: {0}")]
    Transport(String),
    /// A success status with a body that is not a valid embeddings answer.
    #[error("invalid embeddings response: {0}")]
    InvalidResponse(String),
    /// The local model failed while running.
    #[error("embedding model failed: {0}")]
    Model(String),
}

fn describe_wait(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!(" (retry after {:.1}s)", wait.as_secs_f64()),
        None => String::new(),
    }
}

impl EmbedError {
    /// The stable machine-readable code of this kind of failure.
    pub fn code(&self) -> &'static str {
        match self {
            EmbedError::Config(_) => "embedder_config",
            EmbedError::Load { .. } => "embedder_load",
            EmbedError::Http { .. } => "embedder_http",
            EmbedError::RateLimited { .. } => "embedder_rate_limited",
            EmbedError::Timeout => "embedder_timeout",
            EmbedError::Transport(_) => "embedder_unreachable",
            EmbedError::InvalidResponse(_) => "embedder_invalid_response",
            EmbedError::Model(_) => "embedder_model",
        }
    }

    /// Whether the same call may succeed later unchanged: worth a retry by a
    /// caller that can wait (an indexing job), not by one that cannot.
    pub fn is_transient(&self) -> bool {
        match self {
            EmbedError::RateLimited { .. } | EmbedError::Timeout | EmbedError::Transport(_) => true,
            EmbedError::Http { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let all = [
            (EmbedError::Config(String::new()), "embedder_config"),
            (
                EmbedError::Load {
                    path: PathBuf::from("/m"),
                    message: String::new(),
                },
                "embedder_load",
            ),
            (
                EmbedError::Http {
                    status: 400,
                    message: String::new(),
                },
                "embedder_http",
            ),
            (
                EmbedError::RateLimited { retry_after: None },
                "embedder_rate_limited",
            ),
            (EmbedError::Timeout, "embedder_timeout"),
            (EmbedError::Transport(String::new()), "embedder_unreachable"),
            (
                EmbedError::InvalidResponse(String::new()),
                "embedder_invalid_response",
            ),
            (EmbedError::Model(String::new()), "embedder_model"),
        ];
        for (error, code) in all {
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn messages_mention_the_wait() {
        let e = EmbedError::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
        };
        assert_eq!(
            e.to_string(),
            "embedding endpoint rate limited the request (retry after 1.5s)"
        );
    }
}
