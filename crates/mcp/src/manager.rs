//! The manager: one supervised connection per (tenant, server), started on
//! first use, restarted after it dies, replaced when its registration
//! changes, and calls bounded by the server's timeout so a hung or dead
//! server never holds up a run.

use crate::connection::{self, Connection, ServerTool};
use crate::spec::{McpSecrets, McpServerConfig};
use crate::{McpError, KIND};
use roster_core::TenantId;
use roster_secrets::SecretBox;
use roster_store::{DynStore, Integration};
use roster_tool::ToolOutput;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Starting a server (npx may fetch a package from its cache) and listing
/// its tools get at least this long, whatever the call timeout.
const MIN_START_TIMEOUT: Duration = Duration::from_secs(30);
/// After a failed start, calls fail fast for this long instead of starting
/// the server again (a crash loop must not fork a process per call).
const RESTART_BACKOFF: Duration = Duration::from_secs(2);

struct Server {
    /// The registration this connection was made from; a new one replaces it.
    id: String,
    updated_at: chrono::DateTime<chrono::Utc>,
    config: McpServerConfig,
    secrets: McpSecrets,
    /// Serialises starts; holds the live connection.
    live: tokio::sync::Mutex<Option<Arc<Connection>>>,
    failed: Mutex<Option<(Instant, String)>>,
}

pub struct McpManager {
    store: DynStore,
    secrets: SecretBox,
    servers: Mutex<HashMap<(TenantId, String), Arc<Server>>>,
    min_start_timeout: Duration,
}

/// The sealing context of a server's credentials: moved to another row,
/// they do not open.
pub fn secret_context(tenant: &TenantId, name: &str) -> String {
    format!("{tenant}/{KIND}/{name}")
}

impl McpManager {
    pub fn new(store: DynStore, secrets: SecretBox) -> Arc<Self> {
        Self::with_start_timeout(store, secrets, MIN_START_TIMEOUT)
    }

    /// [`McpManager::new`] with another floor for start-up (tests use a
    /// short one to see a server that never answers fail quickly).
    pub fn with_start_timeout(
        store: DynStore,
        secrets: SecretBox,
        min_start_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            secrets,
            servers: Mutex::new(HashMap::new()),
            min_start_timeout,
        })
    }

    /// The registered server, as stored, or `NotFound`.
    pub(crate) async fn registration(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Integration, McpError> {
        self.store
            .get_integration(tenant, KIND, name)
            .await?
            .ok_or_else(|| McpError::NotFound(format!("no MCP server `{name}`")))
    }

    async fn server(&self, tenant: &TenantId, name: &str) -> Result<Arc<Server>, McpError> {
        let stored = self.registration(tenant, name).await;
        let key = (tenant.clone(), name.to_owned());
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                // Removed: its process goes with the entry.
                self.servers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                return Err(e);
            }
        };
        if let Some(server) = self
            .servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if server.id == stored.id && server.updated_at == stored.updated_at {
                return Ok(server.clone());
            }
        }
        let config: McpServerConfig = serde_json::from_value(stored.config.clone())
            .map_err(|e| McpError::Invalid(format!("stored config of `{name}`: {e}")))?;
        let secrets = match &stored.sealed {
            Some(sealed) => {
                let opened = self
                    .secrets
                    .open(sealed, &secret_context(tenant, name))
                    .map_err(|e| McpError::Secret(e.to_string()))?;
                serde_json::from_str(opened.expose())
                    .map_err(|_| McpError::Secret("sealed credentials are malformed".into()))?
            }
            None => McpSecrets::default(),
        };
        let server = Arc::new(Server {
            id: stored.id,
            updated_at: stored.updated_at,
            config,
            secrets,
            live: tokio::sync::Mutex::new(None),
            failed: Mutex::new(None),
        });
        self.servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, server.clone());
        Ok(server)
    }

    /// A live connection, starting (or restarting) the server if needed.
    async fn connection(&self, name: &str, server: &Server) -> Result<Arc<Connection>, McpError> {
        let mut live = server.live.lock().await;
        if let Some(connection) = live.as_ref() {
            if !connection.is_closed() {
                return Ok(connection.clone());
            }
            tracing::warn!(server = name, "MCP server stopped; restarting it");
            *live = None;
        }
        if let Some((at, why)) = server
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if at.elapsed() < RESTART_BACKOFF {
                return Err(McpError::Unavailable(why.clone()));
            }
        }
        let timeout = Duration::from_secs(server.config.timeout_secs).max(self.min_start_timeout);
        match connection::connect(name, &server.config, &server.secrets, timeout).await {
            Ok(connection) => {
                let connection = Arc::new(connection);
                *live = Some(connection.clone());
                *server.failed.lock().unwrap_or_else(|p| p.into_inner()) = None;
                Ok(connection)
            }
            Err(e) => {
                *server.failed.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), e.to_string()));
                Err(e)
            }
        }
    }

    /// The server's tools, with whether its allow-list lets each through.
    pub async fn tools(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Vec<(ServerTool, bool)>, McpError> {
        let server = self.server(tenant, name).await?;
        let connection = self.connection(name, &server).await?;
        Ok(connection
            .tools
            .iter()
            .map(|t| (t.clone(), server.config.allows(&t.name)))
            .collect())
    }

    /// The config and the allowed tools, for resolving an agent's entry.
    pub(crate) async fn allowed_tools(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(McpServerConfig, Vec<ServerTool>), McpError> {
        let server = self.server(tenant, name).await?;
        let connection = self.connection(name, &server).await?;
        let tools = connection
            .tools
            .iter()
            .filter(|t| server.config.allows(&t.name))
            .cloned()
            .collect();
        Ok((server.config.clone(), tools))
    }

    /// Calls `tool` on the server within `timeout`. A server that died is
    /// started again first; one that dies or hangs during the call gives an
    /// error result, never a stuck run.
    pub async fn call(
        &self,
        tenant: &TenantId,
        name: &str,
        tool: &str,
        arguments: serde_json::Value,
        timeout: Duration,
    ) -> ToolOutput {
        let server = match self.server(tenant, name).await {
            Ok(server) => server,
            Err(e) => return ToolOutput::error(e.to_string()),
        };
        if !server.config.allows(tool) {
            return ToolOutput::error(format!(
                "tool `{tool}` of MCP server `{name}` is not on its allow-list"
            ));
        }
        let arguments = match arguments {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            _ => return ToolOutput::error("tool arguments must be a JSON object"),
        };
        let connection = match self.connection(name, &server).await {
            Ok(connection) => connection,
            Err(e) => return ToolOutput::error(e.to_string()),
        };
        let params =
            rmcp::model::CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        match tokio::time::timeout(timeout, connection.service.call_tool(params)).await {
            Ok(Ok(result)) => crate::render::result(&result),
            Ok(Err(e)) => {
                let transport = matches!(
                    e,
                    rmcp::ServiceError::TransportClosed | rmcp::ServiceError::TransportSend(_)
                );
                let stopped = transport || connection.is_closed();
                if stopped {
                    // The next call starts the server again rather than
                    // finding this dead connection before its task notices.
                    let mut live = server.live.lock().await;
                    if live.as_ref().is_some_and(|c| Arc::ptr_eq(c, &connection)) {
                        *live = None;
                    }
                }
                let mut message = format!("MCP server `{name}` failed the call to `{tool}`: {e}");
                if stopped {
                    message.push_str("; the server stopped and will be restarted on the next call");
                    let tail = connection.stderr_tail();
                    if !tail.is_empty() {
                        message.push_str(&format!("; its stderr ended with:\n{tail}"));
                    }
                }
                ToolOutput::error(message)
            }
            Err(_) => ToolOutput::error(format!(
                "MCP server `{name}` did not answer `{tool}` within {timeout:?}; the call was cancelled"
            )),
        }
    }

    /// Stops every server process (shutdown).
    pub async fn shutdown(&self) {
        let servers: Vec<Arc<Server>> = self
            .servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        for server in servers {
            if let Some(connection) = server.live.lock().await.take() {
                if let Ok(mut connection) = Arc::try_unwrap(connection) {
                    let _ = connection
                        .service
                        .close_with_timeout(Duration::from_secs(2))
                        .await;
                }
            }
        }
    }

    /// Forgets a server's connection (after it is removed or changed).
    pub fn forget(&self, tenant: &TenantId, name: &str) {
        self.servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant.clone(), name.to_owned()));
    }
}
