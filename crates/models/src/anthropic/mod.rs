//! The Anthropic Messages provider: `POST {base_url}/v1/messages`.
//!
//! Owns the provider value and the order of one call. Must never keep state
//! between calls, retry on its own (the router does), or log bodies or keys.

mod convert;
mod stream;
mod wire;

use crate::config::{process_env, ProviderConfig, Secret, ANTHROPIC_DEFAULT_MAX_TOKENS};
use crate::error::{ConfigError, ProviderError};
use crate::request::{ChatRequest, ChatResponse};
use crate::transport::{whole_body, Answer, Endpoint};
use crate::ModelProvider;

const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A client for one Anthropic Messages endpoint.
#[derive(Debug)]
pub struct AnthropicProvider {
    name: String,
    endpoint: Endpoint,
    max_tokens: u32,
    stream: bool,
    max_retries: Option<u32>,
    patience: Option<std::time::Duration>,
    attributes: crate::config::ProviderAttributes,
}

impl AnthropicProvider {
    /// Builds the client. A key named by `api_key_env` is read from the
    /// process environment now.
    pub fn new(config: ProviderConfig) -> Result<Self, ConfigError> {
        let key = config.resolve_key(&process_env)?;
        Self::with_key(config, key)
    }

    pub(crate) fn with_key(
        config: ProviderConfig,
        key: Option<Secret>,
    ) -> Result<Self, ConfigError> {
        let base = config.effective_base_url();
        let url = if base.ends_with("/v1") {
            format!("{base}/messages")
        } else {
            format!("{base}/v1/messages")
        };
        let fixed = [("anthropic-version", ANTHROPIC_VERSION)];
        let endpoint = Endpoint::build(&config, key.as_ref(), &url, "x-api-key", &fixed)?;
        Ok(Self {
            attributes: config.attributes(),
            name: config.name,
            endpoint,
            max_tokens: config.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS),
            stream: config.stream.unwrap_or(true),
            max_retries: config.max_retries,
            patience: config.patience_secs.map(std::time::Duration::from_secs),
        })
    }
}

#[cfg(test)]
impl AnthropicProvider {
    pub(crate) fn url(&self) -> &str {
        self.endpoint.url()
    }
}

#[async_trait::async_trait]
impl ModelProvider for AnthropicProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError> {
        let stream = req.stream && self.stream;
        let max_tokens = req.max_tokens.unwrap_or(self.max_tokens);
        let body = wire::request_body(req, max_tokens, stream);
        match self
            .endpoint
            .exchange(&body, stream, wire::classify)
            .await?
        {
            Answer::Stream(reader) => stream::read(reader, on_text).await,
            Answer::Body(text) => whole_body(&text, req.stream, on_text, wire::parse_response),
        }
    }

    fn max_retries(&self) -> Option<u32> {
        self.max_retries
    }

    fn patience(&self) -> Option<std::time::Duration> {
        self.patience
    }

    fn attributes(&self) -> crate::config::ProviderAttributes {
        self.attributes.clone()
    }
}
