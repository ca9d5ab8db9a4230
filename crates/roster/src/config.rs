//! Configuration, layered once: defaults, then the TOML file, then
//! environment variables, then flags (clap merges the last two).

use anyhow::{Context, Result};
use roster_models::ProviderConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The config file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Turns text into vectors for hybrid search; without it search is
    /// full-text only.
    pub embedder: Option<roster_embed::EmbedderConfig>,
    /// Largest document a knowledge upload may carry, in MiB (default 100).
    pub max_document_mb: Option<u64>,
    /// Base64 of the 32-byte key sealing stored credentials (MCP servers'
    /// environment and headers). `ROSTER_SECRET_KEY` wins over it; without
    /// either, `<data-dir>/secret.key` is made on first start.
    pub secret_key: Option<String>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let config: FileConfig = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(config)
    }

    /// Provider tables with their names filled in from the table keys.
    pub fn provider_configs(&self) -> Vec<ProviderConfig> {
        self.providers
            .iter()
            .map(|(name, config)| {
                let mut config = config.clone();
                config.name.clone_from(name);
                config
            })
            .collect()
    }
}
