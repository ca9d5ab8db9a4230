//! The CLI's client commands: `agent`, `block`, `chat`, `session`, `run`, `memory`,
//! `knowledge`, `index`, `mcp`, `source`, `tenant`, `key`, `policy` and
//! `audit` speak HTTP
//! to a running `roster serve`. Each command module owns its clap arguments
//! and its output; [`http`] is the shared request/error plumbing and
//! [`output`] the shared formatting.

mod agent;
mod api_client;
mod approvals;
mod block;
mod budget;
mod chat;
mod keys;
mod knowledge;
mod limits;
mod mcp;
mod memory;
mod models;
mod output;
mod policy;
mod remote;
mod run;
mod schedule;
mod session;
mod source;
mod trigger;
mod webhook;

use std::path::PathBuf;

pub use agent::{run as agent, AgentArgs};
pub use approvals::{approvals, ApprovalArgs};
pub use block::{run as block, BlockArgs};
pub use budget::{budget, ledger, BudgetArgs, LedgerArgs};
pub use chat::{run as chat, ChatArgs};
pub use keys::{key, tenant, KeyArgs, TenantArgs};
pub use knowledge::{run as knowledge, KnowledgeArgs};
pub use limits::{limits, LimitsArgs};
pub use mcp::{run as mcp, McpArgs};
pub use memory::{index, run as memory, IndexArgs, MemoryArgs};
pub use models::{models, ModelsArgs};
pub use policy::{audit, policy, AuditArgs, PolicyArgs};
pub use remote::{remote, RemoteArgs};
pub use run::{run, RunArgs};
pub use schedule::{schedule, ScheduleArgs};
pub use session::{run as session, SessionArgs};
pub use source::{run as source, SourceArgs};
pub use trigger::{trigger, TriggerArgs};
pub use webhook::{webhook, WebhookArgs};

/// Where the CLI finds its server and key. Flattened into every client
/// command; `global` so the flags may also follow a nested subcommand
/// (`roster agent list --url …`).
#[derive(clap::Args, Clone, Debug)]
pub struct Connection {
    /// Server URL (default: the `listen` address of the config file
    /// ROSTER_CONFIG names, else http://127.0.0.1:7700).
    #[arg(long, env = "ROSTER_URL", global = true)]
    pub url: Option<String>,
    /// API key; defaults to the admin key file in --data-dir.
    #[arg(long, env = "ROSTER_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Data directory whose `admin.key` is used when no key is given
    /// (default: the config file's `data_dir` when ROSTER_CONFIG names one,
    /// else `roster-data`).
    #[arg(long, env = "ROSTER_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Work in this tenant (id or name; the admin key may name any).
    #[arg(long, env = "ROSTER_TENANT", global = true)]
    pub as_tenant: Option<String>,
}

/// [`Connection`] for commands whose own `--url` names something else (an
/// MCP server, a database): the Roster server is `--server` there.
#[derive(clap::Args, Clone, Debug)]
pub struct ServerConnection {
    /// Roster server URL (default as for --url).
    #[arg(long, env = "ROSTER_URL", global = true)]
    pub server: Option<String>,
    /// API key; defaults to the admin key file in --data-dir.
    #[arg(long, env = "ROSTER_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
    /// Data directory whose `admin.key` is used when no key is given
    /// (default: the config file's `data_dir` when ROSTER_CONFIG names one,
    /// else `roster-data`).
    #[arg(long, env = "ROSTER_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Work in this tenant (id or name; the admin key may name any).
    #[arg(long, env = "ROSTER_TENANT", global = true)]
    pub as_tenant: Option<String>,
}

impl From<ServerConnection> for Connection {
    fn from(c: ServerConnection) -> Connection {
        Connection {
            url: c.server,
            api_key: c.api_key,
            data_dir: c.data_dir,
            as_tenant: c.as_tenant,
        }
    }
}
