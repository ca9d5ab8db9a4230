//! One live connection to an MCP server: starting it (a confined child
//! process, or a Streamable HTTP session through the egress policy), its
//! tool list, its stderr tail.

use crate::launch::Launch;
use crate::spec::McpSecrets;
use crate::McpError;
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use roster_egress::EgressPolicy;
use roster_sandbox::{Confinement, Jail, RLimits};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// Lines of a server's stderr kept to explain its failures.
const STDERR_LINES: usize = 20;
/// How long a failed start waits for the server's stderr to end.
const STDERR_GRACE: Duration = Duration::from_millis(500);
/// Longest stderr line kept.
const STDERR_LINE_BYTES: usize = 500;
/// Redirects a Streamable HTTP client follows (same origin only).
const MAX_REDIRECTS: usize = 5;

/// A stdio server, confined: what runs, where its home is, as which uid.
pub(crate) struct Confined<'a> {
    pub jail: &'a Jail,
    pub launch: Launch,
    /// Its own state directory on the host (its `$HOME` and working directory).
    pub home_dir: PathBuf,
    pub uid: Option<u32>,
    pub limits: RLimits,
}

/// How to reach a server.
pub(crate) enum Target<'a> {
    Stdio(Confined<'a>),
    Http {
        url: &'a str,
        egress: Arc<EgressPolicy>,
    },
}

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
    /// The host pid of a stdio server's sandbox (bubblewrap).
    pub(crate) pid: Option<u32>,
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
    target: Target<'_>,
    secrets: &McpSecrets,
    timeout: Duration,
) -> Result<Connection, McpError> {
    let stderr: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let (closed_tx, mut closed) = tokio::sync::watch::channel(false);
    let pid: Arc<Mutex<Option<u32>>> = Arc::default();
    let started = tokio::time::timeout(
        timeout,
        start(name, target, secrets, &stderr, closed_tx, &pid),
    )
    .await;
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
                McpError::Unavailable(format!(
                    "MCP server `{name}` did not list its tools: {}",
                    plain(&e)
                )),
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
    let pid = *pid.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Connection {
        service,
        tools,
        stderr,
        pid,
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
    target: Target<'_>,
    secrets: &McpSecrets,
    stderr: &Arc<Mutex<VecDeque<String>>>,
    closed: tokio::sync::watch::Sender<bool>,
    pid: &Mutex<Option<u32>>,
) -> Result<RunningService<RoleClient, ()>, McpError> {
    match target {
        Target::Stdio(confined) => {
            let env: Vec<(String, String)> = secrets
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let confinement = Confinement {
                uid: confined.uid,
                network: confined.launch.network,
                read_only: &confined.launch.read_only,
                home_dir: &confined.home_dir,
                home: STATE_MOUNT,
                env: &env,
                limits: confined.limits,
            };
            let mut cmd = confined.jail.command(
                &confinement,
                &confined.launch.program,
                &confined.launch.args,
            );
            // Its own process group, so a signal meant for Roster's group
            // (Ctrl-C in a terminal) does not reach it first.
            cmd.process_group(0);
            let (transport, err) = TokioChildProcess::builder(cmd)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| {
                    McpError::Unavailable(format!(
                        "cannot start MCP server `{name}` (`{}`): {e}",
                        confined.launch.program.display()
                    ))
                })?;
            *pid.lock().unwrap_or_else(|p| p.into_inner()) = transport.id();
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
                McpError::Unavailable(format!(
                    "MCP server `{name}` failed to initialise: {}",
                    plain(&e)
                ))
            })
        }
        Target::Http { url, egress } => {
            let mut headers = HashMap::new();
            for (key, value) in &secrets.headers {
                let key = http::HeaderName::try_from(key.as_str())
                    .map_err(|e| McpError::Invalid(format!("header `{key}`: {e}")))?;
                let value = http::HeaderValue::try_from(value.as_str())
                    .map_err(|e| McpError::Invalid(format!("header `{key}`: {e}")))?;
                headers.insert(key, value);
            }
            // Checked here for a clear refusal; the client's resolver checks
            // again at each connection, so a name that changes in between
            // (DNS rebinding) is refused all the same.
            let parsed = url::Url::parse(url)
                .map_err(|e| McpError::Invalid(format!("invalid url `{url}`: {e}")))?;
            match egress.check_url(&parsed).await {
                Ok(()) => {}
                Err(roster_egress::EgressError::Unresolved(why)) => {
                    return Err(McpError::Unavailable(format!(
                        "MCP server `{name}` at {url} cannot be reached: {why}"
                    )))
                }
                Err(refused) => return Err(McpError::Egress(refused)),
            }
            let client = http_client(&parsed, &egress)?;
            let transport = StreamableHttpClientTransport::with_client(
                client,
                StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers),
            );
            ().serve(transport)
                .await
                .map_err(|e| match roster_egress::find_in(&e) {
                    Some(refused) => McpError::Egress(refused.clone()),
                    None => McpError::Unavailable(format!(
                        "MCP server `{name}` at {url} failed to initialise: {}",
                        plain(&e)
                    )),
                })
        }
    }
}

/// An rmcp error as a person reads it: its text and its causes' (where a
/// refused redirect says why), without the Rust type paths
/// (`[rmcp::transport::…<…>]`) and debug dumps of protocol messages some
/// of its messages carry.
pub(crate) fn plain(error: &(dyn std::error::Error + 'static)) -> String {
    static PATTERNS: std::sync::OnceLock<[regex::Regex; 3]> = std::sync::OnceLock::new();
    let [bracketed, path, dump] = PATTERNS.get_or_init(|| {
        let compile =
            |p: &str| regex::Regex::new(p).unwrap_or_else(|_| unreachable!("a valid pattern"));
        [
            compile(r"\s*\[[a-z_][a-z0-9_]*::[^\]]*?::[A-Z][^\]]*\]"),
            // A path ends in a type's CamelCase name; IPv6 text never does.
            compile(r"\s*\b[a-z_][a-z0-9_]*(::[a-z_][a-z0-9_]*)*::[A-Z][A-Za-z0-9_]*(<[^\s\]]*>)?"),
            compile(r"received: Some\(.*"),
        ]
    });
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    let text = dump.replace_all(&text, "received another message than the answer");
    let text = bracketed.replace_all(&text, "");
    path.replace_all(&text, "").into_owned()
}

/// Where a stdio server's state directory appears inside its sandbox.
pub(crate) const STATE_MOUNT: &str = "/state";

/// A client that connects only where the egress policy allows (checked on
/// the resolved address at each connection), through no proxy, following
/// redirects only within the URL's own origin.
fn http_client(parsed: &url::Url, egress: &Arc<EgressPolicy>) -> Result<reqwest::Client, McpError> {
    let port = parsed.port_or_known_default().unwrap_or(0);
    let origin = parsed.origin();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if attempt.url().origin() == origin {
            attempt.follow()
        } else {
            let to = attempt.url().to_string();
            attempt.error(format!(
                "a redirect to {to} was refused: an MCP server's redirects stay on its own origin"
            ))
        }
    });
    reqwest::Client::builder()
        .dns_resolver(roster_egress::Resolver::new(egress.clone(), port))
        .no_proxy()
        .redirect(policy)
        .build()
        .map_err(|e| McpError::Unavailable(format!("cannot build an HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_without_rust_type_paths() {
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct Raw(String, #[source] Option<Cause>);
        #[derive(Debug, thiserror::Error)]
        #[error("a redirect to http://127.0.0.1/ was refused")]
        struct Cause;

        let raw = Raw("Send message error Transport [rmcp::transport::worker::WorkerTransport<rmcp::transport::streamable_http_client::StreamableHttpClientWorker<reqwest::async_impl::client::Client>>] error: Client error: error sending request for url (http://[::1]:9/mcp)".into(), None);
        let shown = plain(&raw);
        assert!(!shown.contains("::transport"), "{shown}");
        assert!(
            shown.contains("error sending request for url (http://[::1]:9/mcp)"),
            "{shown}"
        );
        let spaced = Raw("Transport [rmcp::transport::async_rw::AsyncRwTransport<rmcp::service::RoleClient, tokio::process::ChildStdout, tokio::process::ChildStdin>] error: closed".into(), None);
        assert_eq!(plain(&spaced), "Transport error: closed");
        let dumped = Raw("expect initialized response, but received: Some(Notification(JsonRpcNotification { jsonrpc: JsonRpcVersion2_0, notification: ServerJsonRpcMessage }))".into(), None);
        let shown = plain(&dumped);
        assert!(
            !shown.contains("JsonRpc") && shown.contains("another message"),
            "{shown}"
        );
        let ipv6 = Raw("cannot reach http://[fd00::abc]:8080/mcp".into(), None);
        assert_eq!(plain(&ipv6), "cannot reach http://[fd00::abc]:8080/mcp");
        let caused = Raw("error following redirect".into(), Some(Cause));
        assert_eq!(
            plain(&caused),
            "error following redirect: a redirect to http://127.0.0.1/ was refused"
        );
    }

    /// The client Roster hands rmcp resolves names through the egress
    /// policy itself, so a name that turned into a refused address after
    /// the check before connecting (DNS rebinding) is refused too.
    #[tokio::test]
    async fn the_client_resolves_only_through_the_egress_policy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let url = url::Url::parse(&format!("http://localhost:{port}/mcp")).expect("url");
        let client = http_client(&url, &Arc::new(EgressPolicy::default())).expect("client");
        let err = client.get(url.as_str()).send().await.expect_err("refused");
        let refused = roster_egress::find_in(&err).expect("the policy's refusal");
        assert_eq!(refused.code(), "egress_denied");
        assert!(listener.accept().is_err(), "nothing connected");
        let allowed = EgressPolicy::new(&[format!("127.0.0.1:{port}")]).expect("policy");
        let client = http_client(&url, &Arc::new(allowed)).expect("client");
        let _ = tokio::time::timeout(Duration::from_secs(1), client.get(url.as_str()).send()).await;
        assert!(listener.accept().is_ok(), "an allowed address is reached");
    }
}
