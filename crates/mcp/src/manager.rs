//! The manager: registration (who may register what), and one supervised
//! connection per (tenant, server), started on first use, restarted after
//! it dies, stopped when its registration is removed or replaced, with
//! starts and calls bounded by the server's timeout so a hung or dead
//! server never holds up a run.

use crate::catalogue::Catalogue;
use crate::connection::{self, Confined, Connection, ServerTool, Target};
use crate::launch::{check_read_only, resolve_program, Launch};
use crate::spec::{McpSecrets, McpServerConfig, McpServerInput, Transport};
use crate::{McpError, KIND};
use roster_core::TenantId;
use roster_egress::EgressPolicy;
use roster_sandbox::{Jail, RLimits};
use roster_secrets::{Secret, SecretBox};
use roster_store::{integration_event, DynStore, Integration, NewIntegration};
use roster_tool::ToolOutput;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// After a failed start, calls fail fast for this long instead of starting
/// the server again (a crash loop must not fork a process per call).
const RESTART_BACKOFF: Duration = Duration::from_secs(2);

/// What the manager needs besides the store: the walls.
#[derive(Clone)]
pub struct McpOptions {
    /// Where Streamable HTTP servers may be reached.
    pub egress: Arc<EgressPolicy>,
    /// The stdio servers tenants may enable.
    pub catalogue: Catalogue,
    /// Bubblewrap, checked to work; without it stdio servers are refused.
    pub jail: Option<Arc<Jail>>,
    /// Servers' state directories live in `STATE_DIR/<tenant>/<server>`.
    pub state_dir: PathBuf,
    /// Host paths no registration may show a server (the data directory).
    pub private: Vec<PathBuf>,
    /// Resource limits of each stdio server's process tree.
    pub limits: RLimits,
}

impl McpOptions {
    /// No catalogue, no sandbox, the default egress policy, and limits
    /// roomy enough for Node.js and Python servers.
    pub fn new(state_dir: PathBuf) -> Self {
        Self {
            egress: Arc::new(EgressPolicy::default()),
            catalogue: Catalogue::default(),
            jail: None,
            state_dir,
            private: Vec::new(),
            limits: DEFAULT_LIMITS,
        }
    }
}

/// A server lives long: its CPU limit is a budget for its whole life, and
/// V8 reserves far more address space than it uses.
pub const DEFAULT_LIMITS: RLimits = RLimits {
    cpu_secs: 3_600,
    address_space: 16 << 30,
    processes: 128,
    file_bytes: 1 << 30,
    open_files: 1024,
};

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

impl Server {
    /// Ends the server's process tree: the connection's service stops, which
    /// closes its stdin, then signals and kills its sandbox.
    async fn stop(&self) {
        if let Some(connection) = self.live.lock().await.take() {
            connection.service.cancellation_token().cancel();
        }
    }
}

pub struct McpManager {
    store: DynStore,
    secrets: SecretBox,
    options: McpOptions,
    servers: Mutex<HashMap<(TenantId, String), Arc<Server>>>,
}

/// The sealing context of a server's credentials: moved to another row,
/// they do not open.
pub fn secret_context(tenant: &TenantId, name: &str) -> String {
    format!("{tenant}/{KIND}/{name}")
}

fn stop_later(server: Arc<Server>) {
    tokio::spawn(async move { server.stop().await });
}

impl McpManager {
    pub fn new(store: DynStore, secrets: SecretBox, options: McpOptions) -> Arc<Self> {
        Arc::new(Self {
            store,
            secrets,
            options,
            servers: Mutex::new(HashMap::new()),
        })
    }

    /// The operator's catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.options.catalogue
    }

    fn jail(&self) -> Result<&Arc<Jail>, McpError> {
        self.options.jail.as_ref().ok_or_else(|| {
            McpError::SandboxUnavailable(
                "stdio MCP servers run only inside the sandbox, and bubblewrap does not work on this server; use a Streamable HTTP server (url), or ask the operator to install bubblewrap".into(),
            )
        })
    }

    /// Registers a server for `tenant`: a catalogue entry (any key), a
    /// Streamable HTTP URL the egress policy allows (any key), or a command
    /// (the admin key only). Everything is checked before anything is
    /// stored; the registration and its audit event are one write.
    pub async fn register(
        &self,
        tenant: &TenantId,
        input: McpServerInput,
        actor: &str,
        is_admin: bool,
    ) -> Result<Integration, McpError> {
        let (name, mut config, secrets) = input.into_parts()?;
        let change = match &mut config.transport {
            Transport::Stdio {
                command,
                read_only,
                by_admin,
                ..
            } => {
                if !is_admin {
                    return Err(McpError::CommandNeedsAdmin(
                        "registering a command needs the admin key; enable one of the operator's catalogue entries instead (`GET /v1/mcp/catalogue`, `roster mcp catalogue`; `roster mcp enable NAME --from ENTRY`)".into(),
                    ));
                }
                self.jail()?;
                let paths: Vec<PathBuf> = read_only.iter().map(PathBuf::from).collect();
                check_read_only(&paths, &self.options.private)?;
                *command = resolve_program(command, &paths)?
                    .to_string_lossy()
                    .into_owned();
                *by_admin = true;
                "add"
            }
            Transport::Catalogue { entry, values } => {
                self.jail()?;
                let env: Vec<String> = secrets.env.keys().cloned().collect();
                *values = self.options.catalogue.settle(entry, values, &env)?;
                "enable"
            }
            Transport::Http { url } => {
                let parsed = url::Url::parse(url)
                    .map_err(|e| McpError::Invalid(format!("invalid url `{url}`: {e}")))?;
                // A name that does not resolve now may later: only a refusal
                // of the policy stops the registration; every connection is
                // checked again.
                match self.options.egress.check_url(&parsed).await {
                    Ok(()) | Err(roster_egress::EgressError::Unresolved(_)) => {}
                    Err(refused) => return Err(McpError::Egress(refused)),
                }
                "add"
            }
        };
        let sealed = if secrets.env.is_empty() && secrets.headers.is_empty() {
            None
        } else {
            let plain = serde_json::to_string(&secrets)
                .map_err(|e| McpError::Invalid(format!("cannot encode credentials: {e}")))?;
            Some(
                self.secrets
                    .seal(&Secret::new(plain), &secret_context(tenant, &name)),
            )
        };
        let config = serde_json::to_value(&config)
            .map_err(|e| McpError::Invalid(format!("cannot encode config: {e}")))?;
        let audit = integration_event(actor, KIND, change, &name, config.clone());
        let stored = self
            .store
            .create_integration(
                tenant,
                NewIntegration::new(KIND, &name, config, sealed),
                audit,
            )
            .await?;
        self.forget(tenant, &name);
        Ok(stored)
    }

    /// Removes a server: the registration and its audit event in one write,
    /// then its process tree and its state directory.
    pub async fn remove(&self, tenant: &TenantId, name: &str, actor: &str) -> Result<(), McpError> {
        let removed = self
            .store
            .remove_integration(tenant, KIND, name, actor)
            .await?;
        let server = self
            .servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant.clone(), name.to_owned()));
        if let Some(server) = server {
            server.stop().await;
        }
        let home = self.home(tenant, name);
        if home.exists() {
            if let Err(e) = std::fs::remove_dir_all(&home) {
                tracing::warn!(server = name, error = %e, dir = %home.display(), "could not remove a removed MCP server's state directory");
            }
        }
        if removed {
            Ok(())
        } else {
            Err(McpError::NotFound(format!("no MCP server `{name}`")))
        }
    }

    /// The server's state directory on the host.
    fn home(&self, tenant: &TenantId, name: &str) -> PathBuf {
        self.options.state_dir.join(tenant.as_str()).join(name)
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
                let gone = self
                    .servers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                if let Some(gone) = gone {
                    stop_later(gone);
                }
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
        let replaced = self
            .servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, server.clone());
        if let Some(replaced) = replaced {
            stop_later(replaced);
        }
        Ok(server)
    }

    /// How to reach a registered server.
    fn target<'a>(
        &'a self,
        tenant: &TenantId,
        name: &str,
        config: &'a McpServerConfig,
    ) -> Result<Target<'a>, McpError> {
        let launch = match &config.transport {
            Transport::Http { url } => {
                return Ok(Target::Http {
                    url,
                    egress: self.options.egress.clone(),
                })
            }
            Transport::Stdio {
                by_admin: false, ..
            } => {
                return Err(McpError::CommandNeedsAdmin(format!(
                    "MCP server `{name}` runs a command registered without the admin key (before Roster required it), so it does not start; remove it and enable an entry of the operator's catalogue, or have the admin register it"
                )))
            }
            Transport::Stdio {
                command,
                args,
                read_only,
                network,
                by_admin: true,
            } => Launch {
                program: PathBuf::from(command),
                args: args.iter().map(Into::into).collect(),
                network: *network,
                read_only: read_only.iter().map(PathBuf::from).collect(),
            },
            Transport::Catalogue { entry, values } => {
                self.options.catalogue.launch(entry, values)?
            }
        };
        let jail = self.jail()?;
        let uid = jail.uid_for(crate::UID_BASE, crate::UID_RANGE, &[tenant.as_str(), name]);
        let home_dir = self.home(tenant, name);
        jail.own_dir(&home_dir, uid).map_err(|e| {
            McpError::Unavailable(format!(
                "cannot prepare the state directory of `{name}`: {e}"
            ))
        })?;
        Ok(Target::Stdio(Confined {
            jail,
            launch,
            home_dir,
            uid,
            limits: self.options.limits,
        }))
    }

    /// A live connection, starting (or restarting) the server if needed.
    async fn connection(
        &self,
        tenant: &TenantId,
        name: &str,
        server: &Server,
    ) -> Result<Arc<Connection>, McpError> {
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
        // The server's own timeout bounds its start too, so a server that
        // never finishes starting fails when its registration says.
        let timeout = Duration::from_secs(server.config.timeout_secs);
        let connected = match self.target(tenant, name, &server.config) {
            Ok(target) => connection::connect(name, target, &server.secrets, timeout).await,
            Err(e) => Err(e),
        };
        match connected {
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
        let connection = self.connection(tenant, name, &server).await?;
        Ok(connection
            .tools
            .iter()
            .map(|t| (t.clone(), server.config.allows(&t.name)))
            .collect())
    }

    /// The host pid of a stdio server's sandbox while it runs.
    pub async fn process_id(&self, tenant: &TenantId, name: &str) -> Option<u32> {
        let server = self
            .servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(tenant.clone(), name.to_owned()))
            .cloned()?;
        let live = server.live.lock().await;
        live.as_ref().filter(|c| !c.is_closed()).and_then(|c| c.pid)
    }

    /// The config and the allowed tools, for resolving an agent's entry.
    pub(crate) async fn allowed_tools(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(McpServerConfig, Vec<ServerTool>), McpError> {
        let server = self.server(tenant, name).await?;
        let connection = self.connection(tenant, name, &server).await?;
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
        let connection = match self.connection(tenant, name, &server).await {
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
                let mut message = format!(
                    "MCP server `{name}` failed the call to `{tool}`: {}",
                    crate::connection::plain(&e)
                );
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
            let taken = server.live.lock().await.take();
            if let Some(connection) = taken {
                match Arc::try_unwrap(connection) {
                    Ok(mut connection) => {
                        let _ = connection
                            .service
                            .close_with_timeout(Duration::from_secs(2))
                            .await;
                    }
                    // Still in use by a call: stopping ends it with an error.
                    Err(shared) => shared.service.cancellation_token().cancel(),
                }
            }
        }
    }

    /// Stops a server's process after its registration changed; the next
    /// use starts it from the new one.
    pub fn forget(&self, tenant: &TenantId, name: &str) {
        let gone = self
            .servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant.clone(), name.to_owned()));
        if let Some(gone) = gone {
            stop_later(gone);
        }
    }
}
