//! The OpenAI-compatible provider (OpenAI, Azure OpenAI, vLLM, Ollama,
//! llama.cpp, ...): `POST {base_url}/chat/completions`.
//!
//! Owns the provider value and the order of one call. Must never keep state
//! between calls, retry on its own (the router does), or log bodies or keys.

mod stream;
#[cfg(test)]
mod tests;
mod wire;

use crate::config::{process_env, ProviderConfig, Secret};
use crate::error::{ConfigError, ProviderError};
use crate::request::{ChatRequest, ChatResponse};
use crate::transport::{whole_body, Answer, Endpoint};
use crate::ModelProvider;

/// A client for one OpenAI-compatible endpoint.
#[derive(Debug)]
pub struct OpenAiProvider {
    name: String,
    endpoint: Endpoint,
    max_tokens: Option<u32>,
    stream: bool,
    max_retries: Option<u32>,
    patience: Option<std::time::Duration>,
    attributes: crate::config::ProviderAttributes,
}

impl OpenAiProvider {
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
        let url = format!("{}/chat/completions", config.effective_base_url());
        let endpoint = Endpoint::build(&config, key.as_ref(), &url, "authorization", &[])?;
        Ok(Self {
            attributes: config.attributes(),
            name: config.name,
            endpoint,
            max_tokens: config.max_tokens,
            stream: config.stream.unwrap_or(true),
            max_retries: config.max_retries,
            patience: config.patience_secs.map(std::time::Duration::from_secs),
        })
    }
}

#[cfg(test)]
impl OpenAiProvider {
    pub(crate) fn url(&self) -> &str {
        self.endpoint.url()
    }
}

#[async_trait::async_trait]
impl ModelProvider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError> {
        let stream = req.stream && self.stream;
        let body = wire::request_body(req, req.max_tokens.or(self.max_tokens), stream);
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
