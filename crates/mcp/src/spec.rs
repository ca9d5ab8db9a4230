//! What a tenant registers as an MCP server: the part stored as plain
//! config, and the credentials (environment values, HTTP headers) that are
//! only ever stored sealed and never shown again. Three kinds: an entry of
//! the operator's catalogue (any key), a Streamable HTTP URL (any key),
//! and an arbitrary command (the admin key only).

use crate::McpError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest a single call may be given, whatever the config says.
pub const MAX_TIMEOUT_SECS: u64 = 3_600;
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// A registration request (API body, CLI flags). Holds plaintext secrets.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerInput {
    /// `[a-z0-9_-]`, at most 32 characters, no `__`.
    #[schema(pattern = r"^(?!_)(?!.*__)(?!.*_$)[a-z0-9_-]{1,32}$")]
    pub name: String,
    /// Enable this entry of the operator's catalogue (`GET
    /// /v1/mcp/catalogue`): the way a tenant key runs a stdio server.
    #[serde(default)]
    pub from: Option<String>,
    /// The catalogue entry's placeholder values.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Stdio, admin key only: the program Roster starts, confined (a bare
    /// name from the sandbox's PATH, or an absolute path under `/usr` or
    /// one of `read_only`).
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// Stdio command: host paths shown to the server read-only.
    #[serde(default)]
    pub read_only: Vec<String>,
    /// Stdio command: give the server the host's network (off by default).
    #[serde(default)]
    pub network: bool,
    /// Stdio: extra environment (stored encrypted; shown only by key).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Streamable HTTP: the endpoint URL.
    #[serde(default)]
    #[schema(pattern = r"^https?://[^\s/?#]+[^\s]*$")]
    pub url: Option<String>,
    /// HTTP: extra headers, e.g. `Authorization` (stored encrypted).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Only these tools are offered; all when absent.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Longest one tool call may take, in seconds (default 60).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3600)]
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for McpServerInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServerInput")
            .field("name", &self.name)
            .field("from", &self.from)
            .field("command", &self.command)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// How Roster reaches the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum Transport {
    /// A command the admin registered, run confined.
    Stdio {
        command: String,
        args: Vec<String>,
        /// Host paths shown to it read-only.
        #[serde(default)]
        read_only: Vec<String>,
        /// It has the host's network.
        #[serde(default)]
        network: bool,
        /// Registered with the admin key; registrations from before Roster
        /// required it lack this and do not start.
        #[serde(default)]
        by_admin: bool,
    },
    /// An entry of the operator's catalogue with the tenant's values, run
    /// confined; the command line is built from the catalogue at each start.
    Catalogue {
        entry: String,
        values: BTreeMap<String, String>,
    },
    Http {
        url: String,
    },
}

/// The stored config: no secret values, only the names of the secret keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct McpServerConfig {
    #[serde(flatten)]
    pub transport: Transport,
    /// Names of the environment variables set from sealed values.
    #[serde(default)]
    pub env: Vec<String>,
    /// Names of the headers sent from sealed values.
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    pub timeout_secs: u64,
}

/// The sealed part.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct McpSecrets {
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

pub fn validate_name(name: &str) -> Result<(), McpError> {
    roster_tool::check_integration_name(name).map_err(McpError::Invalid)
}

impl McpServerInput {
    /// Splits the request into the stored config and the sealed secrets.
    pub fn into_parts(self) -> Result<(String, McpServerConfig, McpSecrets), McpError> {
        validate_name(&self.name)?;
        let given = [
            self.command.is_some(),
            self.from.is_some(),
            self.url.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(McpError::Invalid(
                "give exactly one of: from (an entry of the operator's catalogue), command (stdio, admin key only) or url (Streamable HTTP)".into(),
            ));
        }
        let stdio_only = !self.args.is_empty() || !self.read_only.is_empty() || self.network;
        let transport = if let Some(command) = self.command {
            if command.trim().is_empty() {
                return Err(McpError::Invalid("command must not be empty".into()));
            }
            if !self.headers.is_empty() || !self.set.is_empty() {
                return Err(McpError::Invalid(
                    "headers apply to HTTP servers (url) and set to catalogue entries (from), not to a command".into(),
                ));
            }
            Transport::Stdio {
                command,
                args: self.args,
                read_only: self.read_only,
                network: self.network,
                by_admin: false,
            }
        } else if let Some(entry) = self.from {
            if stdio_only || !self.headers.is_empty() {
                return Err(McpError::Invalid(
                    "a catalogue entry fixes its command, arguments, mounts and network: give only set, env, allow and timeout_secs".into(),
                ));
            }
            Transport::Catalogue {
                entry,
                values: self.set,
            }
        } else {
            let url = self.url.unwrap_or_default();
            let parsed = url
                .parse::<url::Url>()
                .map_err(|e| McpError::Invalid(format!("invalid url `{url}`: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(McpError::Invalid("url must be http:// or https://".into()));
            }
            if !self.env.is_empty() || stdio_only || !self.set.is_empty() {
                return Err(McpError::Invalid(
                    "env, args, read_only, network and set apply to stdio servers, not to a url"
                        .into(),
                ));
            }
            Transport::Http { url }
        };
        for key in self.env.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(McpError::Invalid(format!(
                    "invalid environment name `{key}`"
                )));
            }
        }
        for key in self.headers.keys() {
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(McpError::Invalid(format!("invalid header name `{key}`")));
            }
        }
        if let Some(allow) = &self.allow {
            if allow.iter().any(|t| t.trim().is_empty()) {
                return Err(McpError::Invalid(
                    "allow lists tool names, none empty".into(),
                ));
            }
        }
        let timeout_secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(1..=MAX_TIMEOUT_SECS).contains(&timeout_secs) {
            return Err(McpError::Invalid(format!(
                "timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}"
            )));
        }
        let config = McpServerConfig {
            transport,
            env: self.env.keys().cloned().collect(),
            headers: self.headers.keys().cloned().collect(),
            allow: self.allow,
            timeout_secs,
        };
        Ok((
            self.name,
            config,
            McpSecrets {
                env: self.env,
                headers: self.headers,
            },
        ))
    }
}

impl McpServerConfig {
    /// True when the allow-list (if any) lets `tool` through.
    pub fn allows(&self, tool: &str) -> bool {
        self.allow
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|t| t == tool))
    }
}
