//! [`OpenAiEmbedder`]: embeddings from any server speaking OpenAI's
//! `POST {base_url}/embeddings` (OpenAI, Azure OpenAI, vLLM, Ollama,
//! llama.cpp, gateways), with batching, retries and timeouts.
//!
//! Owns the HTTP exchange and the mapping of failures to [`EmbedError`]
//! kinds. Must never log or return the API key, a request body or a text;
//! logs carry only codes, counts and waits.

mod retry;
mod wire;

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};

use crate::error::EmbedError;
use crate::Embedder;

pub use retry::RetryPolicy;

/// OpenAI's own endpoint, the default `base_url`.
pub(crate) const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The text sent once at build time to learn an unknown model's dimensions.
const PROBE_TEXT: &str = "dimension probe";

/// Longest server error message kept in an error: enough to read, too short
/// to carry a whole echoed document.
const MAX_MESSAGE_CHARS: usize = 300;

/// Everything an [`OpenAiEmbedder`] needs, already resolved (the key is the
/// key, not the name of a variable). [`OpenAiOptions::new`] gives defaults.
#[derive(Clone)]
pub struct OpenAiOptions {
    pub model: String,
    /// Without the trailing `/embeddings`; a trailing slash is ignored.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Header carrying the bare key; `None` sends `Authorization: Bearer`.
    pub auth_header: Option<String>,
    /// Requested vector length (sent as `dimensions`).
    pub dimensions: Option<usize>,
    /// Per HTTP request, including reading the body.
    pub timeout: Duration,
    /// Inputs per HTTP request.
    pub max_batch: usize,
    pub retry: RetryPolicy,
}

impl OpenAiOptions {
    /// OpenAI's endpoint, no key, a 30 s timeout, 128 inputs per request.
    pub fn new(model: impl Into<String>) -> OpenAiOptions {
        OpenAiOptions {
            model: model.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: None,
            auth_header: None,
            dimensions: None,
            timeout: Duration::from_secs(30),
            max_batch: 128,
            retry: RetryPolicy::default(),
        }
    }
}

impl fmt::Debug for OpenAiOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiOptions")
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("auth_header", &self.auth_header)
            .field("dimensions", &self.dimensions)
            .field("timeout", &self.timeout)
            .field("max_batch", &self.max_batch)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Embeddings over HTTP from an OpenAI-compatible server.
pub struct OpenAiEmbedder {
    client: reqwest::Client,
    url: String,
    model: String,
    auth: Option<(HeaderName, HeaderValue)>,
    /// Kept only to scrub it from server error messages, which sometimes
    /// quote the key they rejected.
    secret: Option<String>,
    requested_dimensions: Option<usize>,
    dimensions: usize,
    id: String,
    max_batch: usize,
    retry: RetryPolicy,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("dimensions", &self.dimensions)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

/// Vector lengths of OpenAI's models, so that the common case needs no
/// network at build time.
fn native_dimensions(model: &str) -> Option<usize> {
    match model {
        "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
        "text-embedding-3-large" => Some(3072),
        _ => None,
    }
}

impl OpenAiEmbedder {
    /// Checks the options and learns the vector length: the requested
    /// `dimensions`, else a known model's, else from one probe request.
    pub async fn connect(options: OpenAiOptions) -> Result<OpenAiEmbedder, EmbedError> {
        let mut embedder = OpenAiEmbedder::unprobed(options)?;
        if embedder.dimensions == 0 {
            let probe = [PROBE_TEXT.to_owned()];
            let vectors = embedder.embed_chunk(&probe, None).await?;
            embedder.dimensions = vectors.first().map_or(0, Vec::len);
            tracing::debug!(
                id = %embedder.id,
                dimensions = embedder.dimensions,
                "learned embedding dimensions from a probe request"
            );
        }
        Ok(embedder)
    }

    /// Everything but the probe; `dimensions` is 0 when it is still unknown.
    fn unprobed(options: OpenAiOptions) -> Result<OpenAiEmbedder, EmbedError> {
        let config = |m: &str| EmbedError::Config(m.to_owned());
        if options.model.trim().is_empty() {
            return Err(config("`model` must not be empty"));
        }
        if options.max_batch == 0 || options.dimensions == Some(0) || options.timeout.is_zero() {
            return Err(config(
                "`max_batch`, `dimensions` and the timeout must be greater than zero",
            ));
        }
        let base = options.base_url.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(config("`base_url` must start with http:// or https://"));
        }
        let auth = match &options.api_key {
            Some(key) => Some(auth_header(options.auth_header.as_deref(), key)?),
            None => None,
        };
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| EmbedError::Config(format!("cannot build the HTTP client: {e}")))?;
        let id = match options.dimensions {
            Some(d) => format!("openai/{}@{d}", options.model),
            None => format!("openai/{}", options.model),
        };
        Ok(OpenAiEmbedder {
            client,
            url: format!("{base}/embeddings"),
            dimensions: options
                .dimensions
                .or_else(|| native_dimensions(&options.model))
                .unwrap_or(0),
            requested_dimensions: options.dimensions,
            model: options.model,
            auth,
            secret: options.api_key.filter(|k| !k.is_empty()),
            id,
            max_batch: options.max_batch,
            retry: options.retry,
        })
    }

    /// One batch, retried per the policy. `dimensions` is `None` only for
    /// the probe.
    async fn embed_chunk(
        &self,
        texts: &[String],
        dimensions: Option<usize>,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = wire::request_body(&self.model, texts, self.requested_dimensions);
        let mut retry = 0;
        loop {
            let error = match self.attempt(&body, texts.len(), dimensions).await {
                Ok(vectors) => return Ok(vectors),
                Err(error) => error,
            };
            let Some(wait) = self.retry.delay_after(&error, retry) else {
                return Err(error);
            };
            tracing::warn!(
                id = %self.id,
                code = error.code(),
                retry = retry + 1,
                wait_ms = wait.as_millis() as u64,
                "embedding request failed; retrying"
            );
            tokio::time::sleep(wait).await;
            retry += 1;
        }
    }

    async fn attempt(
        &self,
        body: &[u8],
        inputs: usize,
        dimensions: Option<usize>,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut request = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some((name, value)) = &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        let response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let wait = retry::retry_after(response.headers());
        let bytes = response.bytes().await.map_err(transport_error)?;
        if status.is_success() {
            return wire::parse_vectors(&bytes, inputs, dimensions);
        }
        if status.as_u16() == 429 {
            return Err(EmbedError::RateLimited { retry_after: wait });
        }
        let message = match wire::error_message(&bytes) {
            Some(m) => self.scrub(&m),
            None => status.canonical_reason().unwrap_or("error").to_owned(),
        };
        Err(EmbedError::Http {
            status: status.as_u16(),
            message,
        })
    }

    /// The server's message without the key and cut to a readable length.
    fn scrub(&self, message: &str) -> String {
        let mut clean = match &self.secret {
            Some(key) => message.replace(key.as_str(), "<redacted>"),
            None => message.to_owned(),
        };
        if let Some((cut, _)) = clean.char_indices().nth(MAX_MESSAGE_CHARS) {
            clean.truncate(cut);
            clean.push('…');
        }
        clean
    }
}

fn auth_header(name: Option<&str>, key: &str) -> Result<(HeaderName, HeaderValue), EmbedError> {
    let (name, value) = match name {
        None => (AUTHORIZATION, format!("Bearer {key}")),
        Some(name) => {
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                EmbedError::Config(format!("`auth_header` {name:?} is not a header name"))
            })?;
            (name, key.to_owned())
        }
    };
    // The error must not echo the value: it is the key.
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        EmbedError::Config("the API key has characters a header cannot carry".to_owned())
    })?;
    value.set_sensitive(true);
    Ok((name, value))
}

/// A failed exchange: timeouts are their own kind; everything else (refused,
/// reset, cut body) is the endpoint being unreachable.
fn transport_error(error: reqwest::Error) -> EmbedError {
    if error.is_timeout() {
        return EmbedError::Timeout;
    }
    // reqwest's own message is terse ("error sending request"); the causes
    // say what happened (refused, reset...).
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    EmbedError::Transport(message)
}

#[async_trait::async_trait]
impl Embedder for OpenAiEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Larger inputs are split into requests of at most `max_batch`, sent one
    /// after the other: concurrency is the caller's choice, not ours.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.max_batch) {
            vectors.extend(self.embed_chunk(chunk, Some(self.dimensions)).await?);
        }
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_model_and_requested_length() {
        let mut o = OpenAiOptions::new("text-embedding-3-small");
        let e = OpenAiEmbedder::unprobed(o.clone()).expect("valid");
        assert_eq!(
            (e.id(), e.dimensions()),
            ("openai/text-embedding-3-small", 1536)
        );
        o.dimensions = Some(256);
        let e = OpenAiEmbedder::unprobed(o).expect("valid");
        assert_eq!(
            (e.id(), e.dimensions()),
            ("openai/text-embedding-3-small@256", 256)
        );
    }

    #[test]
    fn bad_options_are_config_errors() {
        let mut o = OpenAiOptions::new("m");
        o.base_url = "ftp://x".into();
        assert_eq!(
            OpenAiEmbedder::unprobed(o).expect_err("scheme").code(),
            "embedder_config"
        );
        let mut o = OpenAiOptions::new("m");
        o.api_key = Some("bad\nkey".into());
        let err = OpenAiEmbedder::unprobed(o).expect_err("header value");
        assert!(!err.to_string().contains("bad\nkey"));
        let mut o = OpenAiOptions::new("m");
        o.api_key = Some("k".into());
        o.auth_header = Some("not a header".into());
        assert_eq!(
            OpenAiEmbedder::unprobed(o).expect_err("name").code(),
            "embedder_config"
        );
    }

    #[test]
    fn scrubs_the_key_and_long_messages() {
        let mut o = OpenAiOptions::new("m");
        o.api_key = Some("sk-secret".into());
        let e = OpenAiEmbedder::unprobed(o).expect("valid");
        assert_eq!(e.scrub("bad key sk-secret"), "bad key <redacted>");
        assert_eq!(e.scrub(&"x".repeat(1000)).chars().count(), 301);
        assert!(!format!("{e:?}").contains("sk-secret"));
    }
}
