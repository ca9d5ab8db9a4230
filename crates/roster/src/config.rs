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
    /// Route of agents created without a model; with no provider configured
    /// it is the built-in local model's.
    pub default_model: Option<String>,
    /// `false` keeps the built-in local model off even when no provider is
    /// configured.
    pub builtin_model: Option<bool>,
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
    /// Retries of failed model calls and the patience through outages.
    #[serde(default)]
    pub retry: RetrySettings,
    /// How deep and wide agents may delegate to agents.
    #[serde(default)]
    pub delegation: DelegationSettings,
    /// How schedules are fired.
    #[serde(default)]
    pub schedules: ScheduleSettings,
    /// Default limits on runs executing at once.
    #[serde(default)]
    pub limits: LimitSettings,
    /// How notifications (webhooks out) are sent.
    #[serde(default)]
    pub notifications: NotificationSettings,
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

/// `[schedules]`: due schedules are looked for every `tick_ms` (default
/// 1000); a fire time more than `grace_secs` late (default 60) counts as
/// missed and follows its schedule's catch-up policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSettings {
    pub tick_ms: u64,
    pub grace_secs: u64,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            tick_ms: 1000,
            grace_secs: 60,
        }
    }
}

/// `[limits]`: the default most runs executing at once per tenant
/// (`runs`) and per agent (`runs_per_agent`); unset, no limit. An operator
/// overrides them per tenant (`PUT /v1/tenants/{tenant}/limits`), an agent
/// with its `max_running`. Runs past a limit wait in a fair queue, looked at
/// again every `sweep_ms` (default 1000) besides when a run ends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    pub runs: Option<u32>,
    pub runs_per_agent: Option<u32>,
    pub sweep_ms: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            runs: None,
            runs_per_agent: None,
            sweep_ms: 1000,
        }
    }
}

impl LimitSettings {
    pub fn limits(&self) -> Result<roster_core::limits::RunLimits> {
        let limits = roster_core::limits::RunLimits {
            runs: self.runs,
            runs_per_agent: self.runs_per_agent,
        };
        limits
            .validate()
            .map_err(|e| anyhow::anyhow!("[limits] {e}"))?;
        Ok(limits)
    }
}

/// `[notifications]`: a notification is tried up to `max_attempts` times
/// (default 8), each request cut off after `timeout_ms` (default 10000);
/// the wait before the second is `retry_base_ms` (default 10000), each
/// later one three times longer, at most `max_retry_ms` (default an hour);
/// `concurrency` requests at once (default 16).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationSettings {
    pub max_attempts: u32,
    pub timeout_ms: u64,
    pub retry_base_ms: u64,
    pub max_retry_ms: u64,
    pub concurrency: usize,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        let d = roster_notify::NotifyOptions::default();
        Self {
            max_attempts: d.max_attempts,
            timeout_ms: u64::try_from(d.timeout.as_millis()).unwrap_or(10_000),
            retry_base_ms: u64::try_from(d.retry_base.as_millis()).unwrap_or(10_000),
            max_retry_ms: u64::try_from(d.max_retry.as_millis()).unwrap_or(3_600_000),
            concurrency: d.concurrency,
        }
    }
}

impl NotificationSettings {
    pub fn options(&self) -> Result<roster_notify::NotifyOptions> {
        if !(1..=100).contains(&self.max_attempts)
            || !(1..=600_000).contains(&self.timeout_ms)
            || self.retry_base_ms == 0
            || self.max_retry_ms < self.retry_base_ms
            || !(1..=1024).contains(&self.concurrency)
        {
            anyhow::bail!(
                "[notifications]: max_attempts must be 1-100, timeout_ms 1-600000, retry_base_ms at least 1 and at most max_retry_ms, concurrency 1-1024"
            );
        }
        Ok(roster_notify::NotifyOptions {
            max_attempts: self.max_attempts,
            timeout: std::time::Duration::from_millis(self.timeout_ms),
            retry_base: std::time::Duration::from_millis(self.retry_base_ms),
            max_retry: std::time::Duration::from_millis(self.max_retry_ms),
            concurrency: self.concurrency,
            poll: std::time::Duration::from_secs(1),
        })
    }
}

/// `[delegation]`: agents that call agents. `max_depth` counts hops from the
/// run a person or a system started (default 3: A → B → C → D, and no
/// further); `max_children` caps the runs one run may start (default 16).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DelegationSettings {
    pub max_depth: u32,
    pub max_children: u32,
}

impl Default for DelegationSettings {
    fn default() -> Self {
        let limits = roster_core::delegation::DelegationLimits::default();
        Self {
            max_depth: limits.max_depth,
            max_children: limits.max_children,
        }
    }
}

impl DelegationSettings {
    pub fn limits(&self) -> Result<roster_core::delegation::DelegationLimits> {
        if self.max_depth > 32 || self.max_children == 0 || self.max_children > 1_000 {
            anyhow::bail!(
                "[delegation]: max_depth must be 0-32 and max_children 1-1000 (got {} and {})",
                self.max_depth,
                self.max_children
            );
        }
        Ok(roster_core::delegation::DelegationLimits {
            max_depth: self.max_depth,
            max_children: self.max_children,
        })
    }
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

/// `[retry]`: how failed model calls are retried. A pass through a route
/// retries each target `max_retries` times with a backoff from
/// `base_delay_ms`, doubling, jittered, at most `max_delay_ms`; when every
/// target failed in a way that may pass (connection refused, 5xx, timeout,
/// 429), passes repeat on the same backoff, honouring `Retry-After`, until
/// `patience_secs` after the call's first failure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    pub max_retries: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// A provider's `patience_secs` wins when longer.
    pub patience_secs: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        let policy = roster_models::RetryPolicy::default();
        Self {
            max_retries: policy.max_retries,
            base_delay_ms: u64::try_from(policy.base_delay.as_millis()).unwrap_or(u64::MAX),
            max_delay_ms: u64::try_from(policy.max_delay.as_millis()).unwrap_or(u64::MAX),
            patience_secs: policy.patience.as_secs(),
        }
    }
}

impl RetrySettings {
    /// The router's policy, or why these settings are unusable.
    pub fn to_policy(&self) -> Result<roster_models::RetryPolicy> {
        use std::time::Duration;
        if self.max_retries > 20 {
            anyhow::bail!(
                "retry.max_retries must be at most 20, not {}",
                self.max_retries
            );
        }
        if !(1..=3_600_000).contains(&self.base_delay_ms) {
            anyhow::bail!(
                "retry.base_delay_ms must be between 1 and 3600000, not {}",
                self.base_delay_ms
            );
        }
        if !(self.base_delay_ms..=3_600_000).contains(&self.max_delay_ms) {
            anyhow::bail!(
                "retry.max_delay_ms must be between base_delay_ms ({}) and 3600000, not {}",
                self.base_delay_ms,
                self.max_delay_ms
            );
        }
        if self.patience_secs > 7 * 86_400 {
            anyhow::bail!(
                "retry.patience_secs must be at most 604800 (a week), not {}",
                self.patience_secs
            );
        }
        Ok(roster_models::RetryPolicy {
            max_retries: self.max_retries,
            base_delay: Duration::from_millis(self.base_delay_ms),
            max_delay: Duration::from_millis(self.max_delay_ms),
            patience: Duration::from_secs(self.patience_secs),
        })
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
    fn limit_and_notification_settings_are_checked() {
        let read = |text: &str| -> Result<FileConfig> { Ok(toml::from_str(text)?) };
        let limits = read("[limits]\nruns = 8\nruns_per_agent = 2\n")
            .and_then(|c| c.limits.limits())
            .expect("limits");
        assert_eq!((limits.runs, limits.runs_per_agent), (Some(8), Some(2)));
        for bad in [
            "[limits]\nruns = 0\n",
            "[limits]\nruns_per_agent = 100001\n",
            "[limits]\nruns = -1\n",
            "[limits]\nbogus = 1\n",
        ] {
            let err = read(bad).and_then(|c| c.limits.limits());
            assert!(err.is_err(), "{bad} was accepted");
        }
        let options = read("[notifications]\nmax_attempts = 3\ntimeout_ms = 500\n")
            .and_then(|c| c.notifications.options())
            .expect("options");
        assert_eq!(options.max_attempts, 3);
        for bad in [
            "[notifications]\nmax_attempts = 0\n",
            "[notifications]\nconcurrency = 0\n",
            "[notifications]\nretry_base_ms = 10\nmax_retry_ms = 5\n",
            "[notifications]\nbogus = 1\n",
        ] {
            let err = read(bad).and_then(|c| c.notifications.options());
            assert!(err.is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn retry_settings_are_checked() {
        let parse = |text: &str| -> Result<roster_models::RetryPolicy> {
            let config: FileConfig = toml::from_str(text)?;
            config.retry.to_policy()
        };
        let defaults = parse("").expect("defaults");
        assert_eq!(defaults, roster_models::RetryPolicy::default());
        assert_eq!(defaults.patience, std::time::Duration::from_secs(600));
        let fast = parse("[retry]\nbase_delay_ms = 20\nmax_delay_ms = 200\npatience_secs = 90\n")
            .expect("valid");
        assert_eq!(fast.base_delay, std::time::Duration::from_millis(20));
        assert_eq!(fast.patience, std::time::Duration::from_secs(90));
        for bad in [
            "[retry]\nbase_delay_ms = 0",
            "[retry]\nbase_delay_ms = 500\nmax_delay_ms = 100",
            "[retry]\npatience_secs = 99999999",
            "[retry]\nmax_retries = 100",
            "[retry]\nsurprise = 1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
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
