//! Provider configuration: the `[providers.NAME]` tables of the config file,
//! and the secret wrapper for API keys.
//!
//! Owns defaults and API-key resolution. Must never print a key: `Secret`'s
//! `Debug` shows `***`, and nothing here implements `Serialize` for it.

use crate::error::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// An API key. Its `Debug` never shows the value.
pub use roster_secrets::Secret;

/// What routing policies know of a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderAttributes {
    pub vendor: String,
    pub region: String,
    pub hosting: String,
}

impl ProviderConfig {
    pub fn attributes(&self) -> ProviderAttributes {
        let or_unknown = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .unwrap_or("unknown")
                .to_owned()
        };
        ProviderAttributes {
            vendor: self
                .vendor
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map_or_else(|| self.kind.to_string(), str::to_owned),
            region: or_unknown(&self.region),
            hosting: match self.kind {
                // It runs inside this process.
                ProviderKind::Local if self.hosting.is_none() => "local".to_owned(),
                _ => or_unknown(&self.hosting),
            },
        }
    }
}

/// Which wire protocol a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI-compatible chat completions (OpenAI, Azure, vLLM, Ollama, ...).
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// A GGUF model run inside Roster (`model_file`).
    Local,
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Local => "local",
        })
    }
}

/// One `[providers.NAME]` table. Its `Debug` shows header names but not
/// their values, and the key as `***`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Set from the table key, not from the table.
    #[serde(skip)]
    pub name: String,
    pub kind: ProviderKind,
    /// OpenAI: includes `/v1`. Anthropic: with or without `/v1`. Empty means
    /// the vendor's public endpoint.
    #[serde(default)]
    pub base_url: String,
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Read the key from this environment variable when the provider is built.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Header carrying the key. Default: `Authorization: Bearer KEY` (openai),
    /// `x-api-key: KEY` (anthropic). A configured `Authorization` still gets
    /// the `Bearer ` prefix; any other header gets the bare key.
    #[serde(default)]
    pub auth_header: Option<String>,
    /// Extra query parameters on every request (e.g. Azure's `api-version`).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Extra headers on every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whole-request timeout without streaming; idle timeout between stream
    /// chunks (and until the response headers) with streaming.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// Retries of retryable errors on this provider before the router moves
    /// on; unset, the router's policy decides (2 by default).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Seconds a model call keeps trying through an outage of this provider
    /// (connection refused, 5xx, timeouts, 429), counted from its first
    /// failure; unset, the server's `[retry] patience_secs` decides.
    #[serde(default)]
    pub patience_secs: Option<u64>,
    /// Default `max_tokens` when the request sets none (anthropic: 4096).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// `false` turns streaming off for endpoints that cannot stream.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Who runs the model (default: the kind, `openai` or `anthropic`);
    /// routing policies test it as `resource.vendor`.
    #[serde(default)]
    pub vendor: Option<String>,
    /// Where the model runs, e.g. `eu` (default `unknown`): `resource.region`.
    #[serde(default)]
    pub region: Option<String>,
    /// How it is hosted, e.g. `cloud`, `on_prem` (default `unknown`):
    /// `resource.hosting`.
    #[serde(default)]
    pub hosting: Option<String>,
    /// Local: the GGUF file to run.
    #[serde(default)]
    pub model_file: Option<std::path::PathBuf>,
    /// Local: the model's name in routes (`NAME/MODEL`); default the file's
    /// name without `.gguf`.
    #[serde(default)]
    pub model: Option<String>,
    /// Local: threads that run the model (default: 1 on machines of up to
    /// two cores, half the cores above that).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Local sampling: 0 (the default) always takes the likeliest token.
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Local: text that ends an answer.
    #[serde(default)]
    pub stop: Vec<String>,
}

pub(crate) const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub(crate) const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub(crate) const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 4096;

fn default_timeout_secs() -> u64 {
    120
}

fn default_connect_timeout_secs() -> u64 {
    10
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("api_key_env", &self.api_key_env)
            .field("auth_header", &self.auth_header)
            .field("query", &self.query)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout_secs", &self.timeout_secs)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("max_retries", &self.max_retries)
            .field("patience_secs", &self.patience_secs)
            .field("max_tokens", &self.max_tokens)
            .field("stream", &self.stream)
            .field("model_file", &self.model_file)
            .field("model", &self.model)
            .finish()
    }
}

impl ProviderConfig {
    /// A config with every optional field at its default.
    pub fn new(name: impl Into<String>, kind: ProviderKind, base_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind,
            base_url: base_url.into(),
            api_key: None,
            api_key_env: None,
            auth_header: None,
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            timeout_secs: default_timeout_secs(),
            connect_timeout_secs: default_connect_timeout_secs(),
            max_retries: None,
            patience_secs: None,
            max_tokens: None,
            stream: None,
            vendor: None,
            region: None,
            hosting: None,
            model_file: None,
            model: None,
            threads: None,
            temperature: None,
            top_p: None,
            seed: None,
            stop: Vec::new(),
        }
    }

    /// Sets the API key (builder style).
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(Secret::new(key));
        self
    }

    /// The base URL without a trailing slash, the vendor default if empty.
    pub(crate) fn effective_base_url(&self) -> String {
        let base = self.base_url.trim().trim_end_matches('/');
        if !base.is_empty() {
            return base.to_owned();
        }
        match self.kind {
            ProviderKind::Openai => OPENAI_DEFAULT_BASE_URL.to_owned(),
            ProviderKind::Anthropic => ANTHROPIC_DEFAULT_BASE_URL.to_owned(),
            ProviderKind::Local => String::new(),
        }
    }

    /// The key: `api_key` if set, else the value of `api_key_env` looked up in
    /// `env`, else none (a keyless local server).
    pub(crate) fn resolve_key(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Secret>, ConfigError> {
        if let Some(key) = &self.api_key {
            return Ok(Some(key.clone()));
        }
        let Some(var) = &self.api_key_env else {
            return Ok(None);
        };
        match env(var) {
            Some(value) if !value.trim().is_empty() => Ok(Some(Secret::new(value.trim()))),
            _ => Err(ConfigError::MissingEnv {
                provider: self.name.clone(),
                var: var.clone(),
            }),
        }
    }
}

/// The process environment, for callers that have no other.
pub(crate) fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_default_to_the_kind_and_unknown() {
        let plain = ProviderConfig::new("x", ProviderKind::Anthropic, "");
        assert_eq!(
            plain.attributes(),
            ProviderAttributes {
                vendor: "anthropic".into(),
                region: "unknown".into(),
                hosting: "unknown".into()
            }
        );
        let table: toml::Value = toml::from_str(
            "kind = \"openai\"\nvendor = \"mistral\"\nregion = \"eu\"\nhosting = \" \"",
        )
        .expect("toml");
        let config: ProviderConfig = table.try_into().expect("config");
        assert_eq!(config.attributes().vendor, "mistral");
        assert_eq!(config.attributes().region, "eu");
        assert_eq!(config.attributes().hosting, "unknown");
    }

    #[test]
    fn secret_debug_hides_value() {
        let cfg = ProviderConfig::new("x", ProviderKind::Openai, "").with_api_key("sk-secret");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert!(shown.contains("***"));
        let mut cfg = cfg;
        cfg.headers
            .insert("x-proxy-token".into(), "tok-secret".into());
        let shown = format!("{cfg:?}");
        assert!(
            shown.contains("x-proxy-token") && !shown.contains("tok-secret"),
            "{shown}"
        );
    }

    #[test]
    fn resolves_key_from_env_closure() {
        let mut cfg = ProviderConfig::new("x", ProviderKind::Openai, "");
        cfg.api_key_env = Some("MY_KEY".into());
        let key = cfg
            .resolve_key(&|v| (v == "MY_KEY").then(|| "k1".to_owned()))
            .expect("resolves");
        assert_eq!(key.map(|k| k.expose().to_owned()), Some("k1".to_owned()));
        assert!(matches!(
            cfg.resolve_key(&|_| None),
            Err(ConfigError::MissingEnv { .. })
        ));
    }

    #[test]
    fn base_url_defaults_and_trims() {
        let cfg = ProviderConfig::new("x", ProviderKind::Openai, "http://h/v1/");
        assert_eq!(cfg.effective_base_url(), "http://h/v1");
        let cfg = ProviderConfig::new("x", ProviderKind::Anthropic, "");
        assert_eq!(cfg.effective_base_url(), ANTHROPIC_DEFAULT_BASE_URL);
    }
}
