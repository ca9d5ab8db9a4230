//! Roster's model provider clients.
//!
//! This crate owns the wire protocols of the model providers (OpenAI-compatible
//! chat completions and Anthropic Messages), the mapping of their failures onto
//! one error type, the provider registry built from configuration, and the
//! router that retries and falls back across `provider/model` targets and
//! waits out outages for a call's patience.
//!
//! A provider is a stateless wire client: it must never hold conversation
//! state, touch the store, write the ledger, or log request bodies or API keys.
//! The caller passes the whole conversation on every call and records every
//! attempt the router reports.

mod anthropic;
mod config;
mod error;
mod error_body;
mod local;
mod openai;
mod patience;
mod registry;
mod request;
mod retry;
mod router;
mod sse;
mod transport;

pub use anthropic::AnthropicProvider;
pub use config::{ProviderAttributes, ProviderConfig, ProviderKind, Secret};
pub use error::{ConfigError, ProviderError};
pub use local::LocalProvider;
pub use openai::OpenAiProvider;
pub use patience::{sleep_until, Outage, Pause, Sleep};
pub use registry::{build_provider, ProviderRegistry};
pub use request::{ChatMessage, ChatRequest, ChatResponse, ToolChoice, ToolSpec, Usage};
pub use retry::{RetryPolicy, DEFAULT_PATIENCE};
pub use router::{Attempt, Router};

/// How busy a provider that serves calls in turn is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Calls generating now.
    pub running: usize,
    /// Calls waiting for their turn.
    pub waiting: usize,
}

/// A model provider: one wire client for one configured endpoint.
///
/// Implementations must be stateless between calls (they may hold an HTTP
/// connection pool) so that one instance can serve every session at once.
#[async_trait::async_trait]
pub trait ModelProvider: Send + Sync {
    /// The registry name of this provider (the `provider` part of a route).
    fn name(&self) -> &str;

    /// Sends one request. When `req.stream` is true, calls `on_text` for each
    /// text delta as it arrives; the returned response still holds the whole
    /// text. When streaming is off, `on_text` is not called.
    ///
    /// `on_text` is spelled with an explicit `for<'t>` because
    /// `#[async_trait]` would otherwise pin the `&str` to one caller-chosen
    /// lifetime; implementations must spell it the same way.
    async fn chat(
        &self,
        req: &ChatRequest,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError>;

    /// What routing policies know of this provider (all `unknown` unless
    /// the provider says).
    fn attributes(&self) -> crate::config::ProviderAttributes {
        let unknown = || "unknown".to_owned();
        crate::config::ProviderAttributes {
            vendor: unknown(),
            region: unknown(),
            hosting: unknown(),
        }
    }

    /// The models this provider is known to serve (a local provider's
    /// file); empty when the provider's own endpoint decides.
    fn models(&self) -> Vec<String> {
        Vec::new()
    }

    /// Calls generating and waiting for a provider that runs one call at a
    /// time (the in-process model); `None` for remote providers.
    fn queue(&self) -> Option<QueueDepth> {
        None
    }

    /// How many times the router may retry a retryable error on this provider.
    /// `None` means the router's own policy decides.
    fn max_retries(&self) -> Option<u32> {
        None
    }

    /// How long a call keeps trying through an outage of this provider.
    /// `None` means the router's own policy decides.
    fn patience(&self) -> Option<std::time::Duration> {
        None
    }
}
