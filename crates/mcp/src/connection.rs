//! One live connection to an MCP server: starting it (a supervised child
//! process, or a Streamable HTTP session), its tool list, its stderr tail.

use crate::spec::{McpSecrets, McpServerConfig, Transport};
use crate::McpError;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// Lines of a server's stderr kept to explain its failures.
const STDERR_LINES: usize = 20;
/// How long a failed start waits for the server's stderr to end.
const STDERR_GRACE: Duration = Duration::from_millis(500);
/// Longest stderr line kept.
const STDERR_LINE_BYTES: usize = 500;
/// The environment a stdio server inherits from Roster; everything else
/// (provider keys, the secret key, database URLs) stays out.
const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SHELL",
];

/// A tool as the server describes it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ServerTool {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
    /// The server says calling it twice is harmless (read-only or idempotent).
    pub idempotent: bool,
}

pub(crate) struct Connection {
    pub(crate) service: RunningService<RoleClient, ()>,
    pub(crate) tools: Vec<ServerTool>,
    pub(crate) stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Connection {
    pub(crate) fn is_closed(&self) -> bool {
        self.service.is_closed()
    }

    /// The last lines the server wrote to stderr, for error messages.
    pub(crate) fn stderr_tail(&self) -> String {
        tail(&self.stderr)
    }
}

fn tail(lines: &Mutex<VecDeque<String>>) -> String {
    let lines = lines.lock().unwrap_or_else(|p| p.into_inner());
    lines.iter().cloned().collect::<Vec<_>>().join("\n")
}

/// Starts the server and lists its tools, all within `timeout`.
pub(crate) async fn connect(
    name: &str,
    config: &McpServerConfig,
    secrets: &McpSecrets,
    timeout: Duration,
) -> Result<Connection, McpError> {
    let stderr: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let (closed_tx, mut closed) = tokio::sync::watch::channel(false);
    let started =
        tokio::time::timeout(timeout, start(name, config, secrets, &stderr, closed_tx)).await;
    let service = match started {
        Ok(Ok(service)) => service,
        Ok(Err(e)) => {
            // A server that exits at once is explained by its last words:
            // give the reader a moment to collect them.
            let _ = tokio::time::timeout(STDERR_GRACE, closed.wait_for(|c| *c)).await;
            return Err(with_stderr(e, &stderr));
        }
        Err(_) => {
            return Err(with_stderr(
                McpError::Unavailable(format!(
                    "MCP server `{name}` did not finish starting within {timeout:?}"
                )),
                &stderr,
            ))
        }
    };
    let listed = tokio::time::timeout(timeout, service.list_all_tools()).await;
    let tools = match listed {
        Ok(Ok(tools)) => tools,
        Ok(Err(e)) => {
            return Err(with_stderr(
                McpError::Unavailable(format!("MCP server `{name}` did not list its tools: {e}")),
                &stderr,
            ))
        }
        Err(_) => {
            return Err(McpError::Unavailable(format!(
                "MCP server `{name}` did not list its tools within {timeout:?}"
            )))
        }
    };
    let tools = tools
        .into_iter()
        .map(|tool| {
            let annotations = tool.annotations.as_ref();
            let idempotent = annotations
                .is_some_and(|a| a.read_only_hint == Some(true) || a.idempotent_hint == Some(true));
            ServerTool {
                name: tool.name.to_string(),
                description: tool.description.as_deref().unwrap_or_default().to_owned(),
                input_schema: serde_json::Value::Object((*tool.input_schema).clone()),
                idempotent,
            }
        })
        .collect();
    Ok(Connection {
        service,
        tools,
        stderr,
    })
}

fn with_stderr(error: McpError, stderr: &Mutex<VecDeque<String>>) -> McpError {
    let tail = tail(stderr);
    match error {
        McpError::Unavailable(message) if !tail.is_empty() => {
            McpError::Unavailable(format!("{message}; its stderr ended with:\n{tail}"))
        }
        other => other,
    }
}

async fn start(
    name: &str,
    config: &McpServerConfig,
    secrets: &McpSecrets,
    stderr: &Arc<Mutex<VecDeque<String>>>,
    closed: tokio::sync::watch::Sender<bool>,
) -> Result<RunningService<RoleClient, ()>, McpError> {
    match &config.transport {
        Transport::Stdio { command, args, cwd } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args).env_clear().kill_on_drop(true);
            for key in INHERITED_ENV {
                if let Some(value) = std::env::var_os(key) {
                    cmd.env(key, value);
                }
            }
            cmd.envs(&secrets.env);
            if let Some(cwd) = cwd {
                cmd.current_dir(cwd);
            }
            // Its own process group: a server's children go with it.
            #[cfg(unix)]
            cmd.process_group(0);
            let (transport, err) = TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| {
                    McpError::Unavailable(format!(
                        "cannot start MCP server `{name}` (`{command}`): {e}"
                    ))
                })?;
            if let Some(err) = err {
                let lines = stderr.clone();
                let server = name.to_owned();
                tokio::spawn(async move {
                    let mut reader = tokio::io::BufReader::new(err).lines();
                    while let Ok(Some(mut line)) = reader.next_line().await {
                        if line.len() > STDERR_LINE_BYTES {
                            let mut end = STDERR_LINE_BYTES;
                            while !line.is_char_boundary(end) {
                                end -= 1;
                            }
                            line.truncate(end);
                        }
                        tracing::debug!(server = %server, "mcp stderr: {line}");
                        let mut kept = lines.lock().unwrap_or_else(|p| p.into_inner());
                        if kept.len() == STDERR_LINES {
                            kept.pop_front();
                        }
                        kept.push_back(line);
                    }
                    closed.send_replace(true);
                });
            }
            ().serve(transport).await.map_err(|e| {
                McpError::Unavailable(format!("MCP server `{name}` failed to initialise: {e}"))
            })
        }
        Transport::Http { url } => {
            let mut headers = HashMap::new();
            for (key, value) in &secrets.headers {
                let key = http::HeaderName::try_from(key.as_str())
                    .map_err(|e| McpError::Invalid(format!("header `{key}`: {e}")))?;
                let value = http::HeaderValue::try_from(value.as_str())
                    .map_err(|e| McpError::Invalid(format!("header `{key}`: {e}")))?;
                headers.insert(key, value);
            }
            let transport = StreamableHttpClientTransport::from_config(
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(headers),
            );
            ().serve(transport).await.map_err(|e| {
                McpError::Unavailable(format!(
                    "MCP server `{name}` at {url} failed to initialise: {e}"
                ))
            })
        }
    }
}
