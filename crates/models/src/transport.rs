//! Shared HTTP plumbing of the wire clients: building the client with its
//! auth and extra headers, posting a JSON body under the configured timeouts,
//! and turning transport failures and error statuses into `ProviderError`s.
//!
//! Owns no protocol: each provider classifies error bodies itself through
//! `ErrorBody`. Must never put the API key, the request URL's query or a
//! request body into an error message or a log line.

use crate::config::{ProviderConfig, Secret};
use crate::error::{describe, map_transport, timed_out};
use crate::error::{ConfigError, ProviderError};
use crate::sse::SseReader;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use std::time::Duration;

/// A successful answer: a stream of events, or a whole body.
pub(crate) enum Answer {
    Stream(SseReader),
    Body(String),
}

/// A configured endpoint: client, URL with query, timeouts. Its `Debug`
/// shows neither headers nor the query (either may hold a key).
pub(crate) struct Endpoint {
    client: reqwest::Client,
    url: reqwest::Url,
    /// Whole-request timeout (non-stream) or idle timeout (stream).
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut url = self.url.clone();
        url.set_query(None);
        f.debug_struct("Endpoint")
            .field("url", &url.as_str())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// `default_auth` is the header carrying the key unless the config names
    /// another; `fixed` are protocol headers the config may override.
    pub(crate) fn build(
        config: &ProviderConfig,
        key: Option<&Secret>,
        url: &str,
        default_auth: &str,
        fixed: &[(&str, &str)],
    ) -> Result<Self, ConfigError> {
        let provider = config.name.clone();
        let bad_url = |reason: String| ConfigError::InvalidBaseUrl {
            provider: provider.clone(),
            url: config.base_url.clone(),
            reason,
        };
        let mut url = reqwest::Url::parse(url).map_err(|e| bad_url(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad_url("scheme must be http or https".into()));
        }
        if !config.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&config.query);
        }

        let mut headers = HeaderMap::new();
        let mut put = |name: &str, value: &str, sensitive: bool| {
            let bad = || ConfigError::InvalidHeader {
                provider: provider.clone(),
                header: name.to_owned(),
            };
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
            let mut value = HeaderValue::from_str(value).map_err(|_| bad())?;
            value.set_sensitive(sensitive);
            headers.insert(name, value);
            Ok::<(), ConfigError>(())
        };
        for (name, value) in fixed {
            put(name, value, false)?;
        }
        if let Some(key) = key {
            let name = config.auth_header.as_deref().unwrap_or(default_auth);
            let value = if name.trim().eq_ignore_ascii_case("authorization") {
                format!("Bearer {}", key.expose())
            } else {
                key.expose().to_owned()
            };
            put(name, &value, true)?;
        }
        for (name, value) in &config.headers {
            put(name, value, true)?;
        }

        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(config.connect_timeout_secs.max(1)))
            .build()
            .map_err(|e| ConfigError::Client {
                provider: provider.clone(),
                reason: describe(&e.without_url()),
            })?;
        Ok(Self {
            client,
            url,
            timeout: Duration::from_secs(config.timeout_secs.max(1)),
        })
    }

    #[cfg(test)]
    pub(crate) fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Posts `body`. Without streaming the whole exchange is bounded by the
    /// timeout (reading the body included); with streaming only the wait for
    /// the response headers is, and the SSE reader bounds each chunk.
    pub(crate) async fn post(
        &self,
        body: &serde_json::Value,
        stream: bool,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut request = self.client.post(self.url.clone()).json(body);
        if !stream {
            request = request.timeout(self.timeout);
        }
        match tokio::time::timeout(self.timeout, request.send()).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(map_transport(e)),
            Err(_) => Err(timed_out(self.timeout)),
        }
    }

    /// Posts `body` and sorts the answer: an error status is classified by
    /// `classify` (status, headers, body text); a success is either an SSE
    /// stream (only when `stream` was asked for) or a whole body.
    pub(crate) async fn exchange(
        &self,
        body: &serde_json::Value,
        stream: bool,
        classify: fn(reqwest::StatusCode, &HeaderMap, &str) -> ProviderError,
    ) -> Result<Answer, ProviderError> {
        let response = self.post(body, stream).await?;
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            // A body that cannot be read still leaves the status to go by.
            let text = self.read_body(response).await.unwrap_or_default();
            let error = classify(status, &headers, &text);
            tracing::debug!(
                status = status.as_u16(),
                code = error.code(),
                "provider error status"
            );
            return Err(error);
        }
        if stream && is_event_stream(&response) {
            return Ok(Answer::Stream(SseReader::new(response, self.timeout)));
        }
        Ok(Answer::Body(self.read_body(response).await?))
    }

    /// Reads a whole (non-stream or error) body under the timeout.
    pub(crate) async fn read_body(
        &self,
        response: reqwest::Response,
    ) -> Result<String, ProviderError> {
        match tokio::time::timeout(self.timeout, response.bytes()).await {
            Ok(Ok(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Ok(Err(e)) => Err(map_transport(e)),
            Err(_) => Err(timed_out(self.timeout)),
        }
    }
}

/// Whether the response is an SSE stream (rather than a JSON body).
fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/event-stream"))
}

/// A whole (non-streamed) body parsed by the provider's `parse`. When the
/// caller asked for streaming but the endpoint answered whole (streaming off
/// in its config), the text is handed to `on_text` at once, so callers see
/// one behaviour either way.
pub(crate) fn whole_body(
    text: &str,
    streaming_asked: bool,
    on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    parse: fn(&str) -> Result<crate::request::ChatResponse, ProviderError>,
) -> Result<crate::request::ChatResponse, ProviderError> {
    let response = parse(text)?;
    if streaming_asked && !response.text.is_empty() {
        on_text(&response.text);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderKind;

    #[test]
    fn query_parameters_are_appended() {
        let mut config = ProviderConfig::new("azure", ProviderKind::Openai, "");
        config
            .query
            .insert("api-version".into(), "2024-06-01".into());
        let endpoint = Endpoint::build(
            &config,
            None,
            "https://h/openai/chat/completions",
            "authorization",
            &[],
        )
        .expect("builds");
        assert_eq!(
            endpoint.url(),
            "https://h/openai/chat/completions?api-version=2024-06-01"
        );
    }
}
