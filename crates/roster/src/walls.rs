//! The operator's walls around integrations, from the config file and the
//! environment: the egress allow-list (`[egress]`), the directories SQLite
//! sources may read (`[sql]`), the catalogue of stdio MCP servers tenants
//! may enable and their limits (`[mcp]`) — and the integrations built
//! behind them, with Roster's own listener and database kept closed.

use anyhow::{Context, Result};
use roster_egress::EgressPolicy;
use roster_sandbox::Jail;
use roster_store::DynStore;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `[egress]`: where connections a tenant configures may go besides the
/// public internet.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressSettings {
    /// Addresses, ranges and host names, each with an optional `:PORT`;
    /// `ROSTER_EGRESS_ALLOW` (comma-separated) wins over it.
    pub allow: Vec<String>,
}

/// `[sql]`: what SQL sources may name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlSettings {
    /// Directories SQLite sources may read files in; none: SQLite sources
    /// are refused. `ROSTER_SQLITE_DIRS` (`:`-separated) wins over it.
    pub sqlite_dirs: Vec<PathBuf>,
}

/// `[mcp]`: the catalogue of stdio servers tenants may enable, and the
/// limits of every stdio server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpSettings {
    pub catalogue: BTreeMap<String, roster_mcp::CatalogueEntry>,
    /// CPU seconds over a server's life.
    pub cpu_secs: u64,
    /// Address space in MiB (Node.js reserves far more than it uses).
    pub memory_mb: u64,
    pub processes: u64,
    pub max_file_mb: u64,
    pub open_files: u64,
}

impl Default for McpSettings {
    fn default() -> Self {
        let limits = roster_mcp::DEFAULT_LIMITS;
        Self {
            catalogue: BTreeMap::new(),
            cpu_secs: limits.cpu_secs,
            memory_mb: limits.address_space >> 20,
            processes: limits.processes,
            max_file_mb: limits.file_bytes >> 20,
            open_files: limits.open_files,
        }
    }
}

impl McpSettings {
    fn limits(&self) -> Result<roster_sandbox::RLimits> {
        let in_range = |name: &str, value: u64, max: u64| {
            anyhow::ensure!(
                (1..=max).contains(&value),
                "mcp.{name} must be between 1 and {max}, not {value}"
            );
            Ok(value)
        };
        Ok(roster_sandbox::RLimits {
            cpu_secs: in_range("cpu_secs", self.cpu_secs, 1 << 32)?,
            address_space: in_range("memory_mb", self.memory_mb, 1 << 30)? << 20,
            processes: in_range("processes", self.processes, 100_000)?,
            file_bytes: in_range("max_file_mb", self.max_file_mb, 1 << 30)? << 20,
            open_files: in_range("open_files", self.open_files, 1 << 20)?,
        })
    }
}

/// The integrations, walled in.
pub struct Integrations {
    pub mcp: Arc<roster_mcp::McpManager>,
    pub sql: Arc<roster_sql::SqlSources>,
    pub http: Arc<roster_openapi::HttpServices>,
    /// Remote A2A agents, reached through the same egress policy.
    pub a2a: Arc<roster_a2a::Remotes>,
    pub egress: Arc<EgressPolicy>,
}

/// What [`build`] needs from `serve`.
pub struct Setting<'a> {
    pub data_dir: &'a Path,
    pub listening: SocketAddr,
    pub database_url: Option<&'a str>,
    pub egress: &'a EgressSettings,
    pub sql: &'a SqlSettings,
    pub mcp: &'a McpSettings,
    pub jail: Option<Arc<Jail>>,
}

fn env_list(name: &str, separator: char) -> Option<Vec<String>> {
    let raw = std::env::var(name).ok()?;
    Some(
        raw.split(separator)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// The egress policy: the allow-list, with Roster's own listener and
/// database kept closed.
async fn egress(context: &Setting<'_>) -> Result<EgressPolicy> {
    let allow =
        env_list("ROSTER_EGRESS_ALLOW", ',').unwrap_or_else(|| context.egress.allow.clone());
    let mut policy = EgressPolicy::new(&allow).context("invalid [egress] allow")?;
    policy.protect_listener(context.listening);
    if let Some(url) = context.database_url {
        let parsed = url::Url::parse(url).context("the database URL is not a URL")?;
        if let Some(host) = parsed
            .host_str()
            .filter(|h| !h.starts_with('%') && !h.is_empty())
        {
            let port = parsed.port().unwrap_or(5432);
            policy
                .protect_host("Roster's own database", host.trim_matches(['[', ']']), port)
                .await
                .with_context(|| format!("cannot resolve the database host `{host}`"))?;
        }
    }
    Ok(policy)
}

fn sqlite_dirs(context: &Setting<'_>) -> Result<Vec<PathBuf>> {
    let dirs: Vec<PathBuf> = match env_list("ROSTER_SQLITE_DIRS", ':') {
        Some(dirs) => dirs.into_iter().map(PathBuf::from).collect(),
        None => context.sql.sqlite_dirs.clone(),
    };
    let data = context
        .data_dir
        .canonicalize()
        .unwrap_or_else(|_| context.data_dir.to_path_buf());
    for dir in &dirs {
        let real = dir
            .canonicalize()
            .with_context(|| format!("sql.sqlite_dirs: {} cannot be used", dir.display()))?;
        anyhow::ensure!(
            dir.is_absolute() && real.is_dir(),
            "sql.sqlite_dirs: {} is not an absolute directory",
            dir.display()
        );
        anyhow::ensure!(
            !real.starts_with(&data),
            "sql.sqlite_dirs: {} is inside the data directory, which no source may read",
            dir.display()
        );
    }
    Ok(dirs)
}

/// Checks the walls' settings without building anything, so a server
/// with a bad config refuses to start before it touches its data
/// directory.
pub fn check(
    egress: &EgressSettings,
    sql: &SqlSettings,
    mcp: &McpSettings,
    data_dir: &Path,
) -> Result<()> {
    let allow = env_list("ROSTER_EGRESS_ALLOW", ',').unwrap_or_else(|| egress.allow.clone());
    EgressPolicy::new(&allow).context("invalid [egress] allow")?;
    roster_mcp::Catalogue::new(mcp.catalogue.clone(), &[data_dir.to_path_buf()])
        .context("invalid [mcp.catalogue]")?;
    mcp.limits()?;
    let dirs: Vec<PathBuf> = match env_list("ROSTER_SQLITE_DIRS", ':') {
        Some(dirs) => dirs.into_iter().map(PathBuf::from).collect(),
        None => sql.sqlite_dirs.clone(),
    };
    for dir in &dirs {
        dir.canonicalize()
            .with_context(|| format!("sql.sqlite_dirs: {} cannot be used", dir.display()))?;
    }
    Ok(())
}

/// Builds MCP servers, SQL sources and HTTP services behind the walls.
pub async fn build(
    context: Setting<'_>,
    store: &DynStore,
    secrets: &roster_secrets::SecretBox,
) -> Result<Integrations> {
    let egress = Arc::new(egress(&context).await?);
    let private = vec![context.data_dir.to_path_buf()];
    let catalogue = roster_mcp::Catalogue::new(context.mcp.catalogue.clone(), &private)
        .context("invalid [mcp.catalogue]")?;
    if context.jail.is_none() && !catalogue.is_empty() {
        tracing::warn!(
            "bubblewrap does not work here: the MCP catalogue's stdio servers cannot be enabled"
        );
    }
    let mut mcp = roster_mcp::McpOptions::new(context.data_dir.join("mcp"));
    mcp.egress = egress.clone();
    mcp.catalogue = catalogue;
    mcp.jail = context.jail.clone();
    mcp.private = private.clone();
    mcp.limits = context.mcp.limits()?;
    let sql = roster_sql::SqlPolicy {
        egress: egress.clone(),
        sqlite_dirs: sqlite_dirs(&context)?,
        private,
    };
    Ok(Integrations {
        mcp: roster_mcp::McpManager::new(store.clone(), secrets.clone(), mcp),
        sql: roster_sql::SqlSources::new(store.clone(), secrets.clone(), sql),
        http: roster_openapi::HttpServices::new(store.clone(), secrets.clone(), egress.clone()),
        a2a: roster_a2a::Remotes::new(store.clone(), secrets.clone(), egress.clone()),
        egress,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_from_the_config_file() {
        let text = r#"
            [egress]
            allow = ["10.20.0.0/16", "127.0.0.1:5432", "db.internal"]
            [sql]
            sqlite_dirs = ["/srv/data"]
            [mcp]
            memory_mb = 2048
            [mcp.catalogue.files]
            description = "Shared files"
            command = "sh"
            args = ["{folder}"]
            network = false
            [mcp.catalogue.files.placeholders.folder]
            pattern = "[a-z]+"
        "#;
        #[derive(Deserialize)]
        struct Shape {
            egress: EgressSettings,
            sql: SqlSettings,
            mcp: McpSettings,
        }
        let shape: Shape = toml::from_str(text).expect("valid");
        assert_eq!(shape.egress.allow.len(), 3);
        assert_eq!(shape.sql.sqlite_dirs, [PathBuf::from("/srv/data")]);
        assert_eq!(shape.mcp.memory_mb, 2048);
        assert_eq!(shape.mcp.processes, roster_mcp::DEFAULT_LIMITS.processes);
        assert!(shape.mcp.catalogue["files"]
            .placeholders
            .contains_key("folder"));
        assert!(toml::from_str::<Shape>("[egress]\nallow = [1]\n[sql]\n[mcp]").is_err());
        let bad = McpSettings {
            processes: 0,
            ..McpSettings::default()
        };
        assert!(bad.limits().is_err());
    }
}
