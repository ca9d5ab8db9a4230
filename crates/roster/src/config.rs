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
    /// The code sandbox behind `run_code`.
    #[serde(default)]
    pub sandbox: SandboxSettings,
    /// Human approvals of tool calls.
    #[serde(default)]
    pub approvals: ApprovalSettings,
    /// Model prices for the ledger's costs and cost budgets, by
    /// `provider/model` or `provider/*`, in US dollars per million tokens.
    #[serde(default)]
    pub prices: BTreeMap<String, roster_runtime::governance::Price>,
    /// Where tenant-configured connections may go besides the internet.
    #[serde(default)]
    pub egress: crate::walls::EgressSettings,
    /// What SQL sources may name.
    #[serde(default)]
    pub sql: crate::walls::SqlSettings,
    /// The stdio MCP servers tenants may enable, and their limits.
    #[serde(default)]
    pub mcp: crate::walls::McpSettings,
}

/// `[approvals]`: how long a request waits before it is denied.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalSettings {
    /// Seconds a request waits for a decision (default a day);
    /// `ROSTER_APPROVAL_EXPIRY_SECS` wins over it.
    pub expiry_secs: u64,
    /// How often expired requests are looked for, in milliseconds.
    pub sweep_ms: u64,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        Self {
            expiry_secs: roster_runtime::governance::DEFAULT_APPROVAL_TTL.as_secs(),
            sweep_ms: 1000,
        }
    }
}

/// `[sandbox]`: limits of `run_code` and where its interpreters are.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSettings {
    /// Offer `run_code` (when bubblewrap works here).
    pub enabled: bool,
    /// Give code the network (off by default).
    pub network: bool,
    pub cpu_secs: u64,
    pub timeout_secs: u64,
    pub memory_mb: u64,
    pub processes: u64,
    pub max_file_mb: u64,
    pub max_output_kb: usize,
    pub bwrap: PathBuf,
    pub python: PathBuf,
    pub node: PathBuf,
    pub shell: PathBuf,
    /// Host paths mounted read-only (e.g. a virtualenv with pandas).
    pub read_only: Vec<PathBuf>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        let base = roster_sandbox::SandboxConfig::new(PathBuf::new());
        let limits = base.limits;
        Self {
            enabled: true,
            network: false,
            cpu_secs: limits.cpu_secs,
            timeout_secs: limits.wall.as_secs(),
            memory_mb: limits.memory_bytes >> 20,
            processes: limits.processes,
            max_file_mb: limits.file_bytes >> 20,
            max_output_kb: limits.output_bytes >> 10,
            bwrap: base.bwrap,
            python: base.python,
            node: base.node,
            shell: base.shell,
            read_only: Vec::new(),
        }
    }
}

impl SandboxSettings {
    /// The sandbox's config, or why these settings are unusable.
    pub fn to_config(&self, root: PathBuf) -> Result<roster_sandbox::SandboxConfig> {
        let in_range = |name: &str, value: u64, max: u64| {
            if (1..=max).contains(&value) {
                Ok(value)
            } else {
                Err(anyhow::anyhow!(
                    "sandbox.{name} must be between 1 and {max}, not {value}"
                ))
            }
        };
        let mut config = roster_sandbox::SandboxConfig::new(root);
        config.limits = roster_sandbox::Limits {
            cpu_secs: in_range("cpu_secs", self.cpu_secs, 86_400)?,
            wall: std::time::Duration::from_secs(in_range(
                "timeout_secs",
                self.timeout_secs,
                86_400,
            )?),
            memory_bytes: in_range("memory_mb", self.memory_mb, 1 << 20)? << 20,
            processes: in_range("processes", self.processes, 100_000)?,
            file_bytes: in_range("max_file_mb", self.max_file_mb, 1 << 20)? << 20,
            output_bytes: usize::try_from(in_range(
                "max_output_kb",
                self.max_output_kb as u64,
                1 << 20,
            )?)? << 10,
        };
        config.network = self.network;
        config.bwrap = self.bwrap.clone();
        config.python = self.python.clone();
        config.node = self.node.clone();
        config.shell = self.shell.clone();
        config.read_only = self.read_only.clone();
        Ok(config)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(toml_text: &str) -> Result<roster_sandbox::SandboxConfig> {
        let config: FileConfig = toml::from_str(toml_text)?;
        config.sandbox.to_config(PathBuf::from("/tmp/ws"))
    }

    #[test]
    fn sandbox_settings_are_checked() {
        let config = sandbox("[sandbox]\ntimeout_secs = 5\nmemory_mb = 256\n").expect("valid");
        assert_eq!(config.limits.wall, std::time::Duration::from_secs(5));
        assert_eq!(config.limits.memory_bytes, 256 << 20);
        assert!(!config.network);
        let defaults = sandbox("").expect("defaults");
        assert_eq!(defaults.limits.processes, 64);
        for bad in [
            "[sandbox]\ntimeout_secs = 0",
            "[sandbox]\nmemory_mb = 0",
            "[sandbox]\nprocesses = 1000000",
            "[sandbox]\nsurprise = 1",
            "[sandbox]\ncpu_secs = -1",
        ] {
            assert!(sandbox(bad).is_err(), "{bad}");
        }
    }
}
