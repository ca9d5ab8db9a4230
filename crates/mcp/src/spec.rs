//! What a tenant registers as an MCP server: the part stored as plain
//! config, and the credentials (environment values, HTTP headers) that are
//! only ever stored sealed and never shown again.

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
    pub name: String,
    /// Stdio: the program Roster starts (looked up on PATH).
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    /// Stdio: extra environment (stored encrypted; shown only by key).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Stdio: working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Streamable HTTP: the endpoint URL.
    #[serde(default)]
    pub url: Option<String>,
    /// HTTP: extra headers, e.g. `Authorization` (stored encrypted).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Only these tools are offered; all when absent.
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// Longest one tool call may take, in seconds (default 60).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for McpServerInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServerInput")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// How Roster reaches the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
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
        let transport = match (self.command, self.url) {
            (Some(command), None) => {
                if command.trim().is_empty() {
                    return Err(McpError::Invalid("command must not be empty".into()));
                }
                if !self.headers.is_empty() {
                    return Err(McpError::Invalid(
                        "headers apply to HTTP servers (url), not to a command".into(),
                    ));
                }
                Transport::Stdio {
                    command,
                    args: self.args,
                    cwd: self.cwd,
                }
            }
            (None, Some(url)) => {
                let parsed = url
                    .parse::<url::Url>()
                    .map_err(|e| McpError::Invalid(format!("invalid url `{url}`: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(McpError::Invalid("url must be http:// or https://".into()));
                }
                if !self.env.is_empty() || !self.args.is_empty() || self.cwd.is_some() {
                    return Err(McpError::Invalid(
                        "env, args and cwd apply to a command, not to a url".into(),
                    ));
                }
                Transport::Http { url }
            }
            (Some(_), Some(_)) => {
                return Err(McpError::Invalid(
                    "give either a command (stdio) or a url (HTTP), not both".into(),
                ))
            }
            (None, None) => {
                return Err(McpError::Invalid(
                    "give a command (stdio) or a url (Streamable HTTP)".into(),
                ))
            }
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
