//! The provider registry: provider name -> client, built from the config
//! file's `[providers.NAME]` tables plus the conventional environment
//! variables (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, ...).
//!
//! Owns which providers exist. Must never read the process environment in
//! `from_config` (the caller passes a lookup), or show a key.

use crate::anthropic::AnthropicProvider;
use crate::config::{
    process_env, ProviderConfig, ProviderKind, ANTHROPIC_DEFAULT_BASE_URL, OPENAI_DEFAULT_BASE_URL,
};
use crate::error::ConfigError;
use crate::openai::OpenAiProvider;
use crate::ModelProvider;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct ProviderRegistry {
    providers: BTreeMap<String, Arc<dyn ModelProvider>>,
}

impl fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field("providers", &self.names())
            .finish()
    }
}

/// Builds one provider from its config; `api_key_env` is read from the
/// process environment.
pub fn build_provider(config: ProviderConfig) -> Result<Arc<dyn ModelProvider>, ConfigError> {
    build_with_env(config, &process_env)
}

fn build_with_env(
    config: ProviderConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<dyn ModelProvider>, ConfigError> {
    if config.name.trim().is_empty() {
        return Err(ConfigError::EmptyName);
    }
    let key = config.resolve_key(env)?;
    Ok(match config.kind {
        ProviderKind::Openai => Arc::new(OpenAiProvider::with_key(config, key)?),
        ProviderKind::Anthropic => Arc::new(AnthropicProvider::with_key(config, key)?),
        ProviderKind::Local => Arc::new(crate::local::LocalProvider::new(config)?),
    })
}

impl ProviderRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a provider under its own name, replacing one of the same name.
    pub fn insert(&mut self, provider: Arc<dyn ModelProvider>) {
        self.providers.insert(provider.name().to_owned(), provider);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn ModelProvider>> {
        self.providers.get(name).cloned()
    }

    /// Provider names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }

    /// Builds the configured providers, then adds `openai` when
    /// `OPENAI_API_KEY` is set (base URL from `OPENAI_BASE_URL`, default
    /// `https://api.openai.com/v1`) and `anthropic` when `ANTHROPIC_API_KEY`
    /// is set (`ANTHROPIC_BASE_URL`, default `https://api.anthropic.com`),
    /// unless the config already has a provider of that name. `env` looks
    /// variables up (pass `|v| std::env::var(v).ok()` for the process's).
    pub fn from_config(
        configs: Vec<ProviderConfig>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut registry = Self::new();
        for config in configs {
            if registry.providers.contains_key(&config.name) {
                return Err(ConfigError::Duplicate { name: config.name });
            }
            registry.insert(build_with_env(config, env)?);
        }
        for config in conventional(env) {
            if !registry.providers.contains_key(&config.name) {
                registry.insert(build_with_env(config, env)?);
            }
        }
        Ok(registry)
    }
}

/// The providers the conventional environment variables describe.
fn conventional(env: &dyn Fn(&str) -> Option<String>) -> Vec<ProviderConfig> {
    let known = [
        (
            "openai",
            ProviderKind::Openai,
            "OPENAI",
            OPENAI_DEFAULT_BASE_URL,
        ),
        (
            "anthropic",
            ProviderKind::Anthropic,
            "ANTHROPIC",
            ANTHROPIC_DEFAULT_BASE_URL,
        ),
    ];
    let non_empty = |var: String| env(&var).filter(|v| !v.trim().is_empty());
    known
        .into_iter()
        .filter_map(|(name, kind, prefix, default_url)| {
            let key = non_empty(format!("{prefix}_API_KEY"))?;
            let base_url =
                non_empty(format!("{prefix}_BASE_URL")).unwrap_or_else(|| default_url.to_owned());
            Some(ProviderConfig::new(name, kind, base_url).with_api_key(key.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventional_defaults_include_v1_for_openai() {
        let env = |var: &str| {
            matches!(var, "OPENAI_API_KEY" | "ANTHROPIC_API_KEY").then(|| "k".to_owned())
        };
        let configs = conventional(&env);
        assert_eq!(configs.len(), 2);
        assert_eq!(configs[0].base_url, "https://api.openai.com/v1");
        let openai = OpenAiProvider::with_key(configs[0].clone(), None).expect("builds");
        assert_eq!(openai.url(), "https://api.openai.com/v1/chat/completions");
        assert_eq!(configs[1].base_url, "https://api.anthropic.com");
        let anthropic = AnthropicProvider::with_key(configs[1].clone(), None).expect("builds");
        assert_eq!(anthropic.url(), "https://api.anthropic.com/v1/messages");
    }
}
