//! `roster serve`: open the store, make sure an admin key exists, build the
//! providers and the runtime, resume unfinished runs, and serve HTTP.

use crate::config::FileConfig;
use anyhow::{Context, Result};
use roster_api::{hash_key, AppState};
use roster_core::{KeyId, TenantId};
use roster_memory::{MemoryOptions, MemoryService};
use roster_models::{ProviderRegistry, Router};
use roster_runtime::tools::ToolRegistry;
use roster_runtime::{Runtime, RuntimeOptions};
use roster_store::{DynStore, NewApiKey};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Directory for the embedded database and the admin key file.
    #[arg(long, env = "ROSTER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "ROSTER_LISTEN")]
    listen: Option<String>,
    /// PostgreSQL URL (postgres://…); without it the embedded SQLite store is used.
    #[arg(long, env = "ROSTER_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// TOML config file (providers, defaults for the flags above).
    #[arg(long, env = "ROSTER_CONFIG")]
    config: Option<PathBuf>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7700";
pub const ADMIN_KEY_FILE: &str = "admin.key";

pub async fn run(args: ServeArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROSTER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let file = FileConfig::load(args.config.as_deref())?;
    let data_dir = args
        .data_dir
        .or(file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from("roster-data"));
    let listen = args
        .listen
        .or(file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let database_url = args.database_url.or(file.database_url.clone());
    // Every setting is checked before anything is created or written: a
    // refused config leaves the data directory as it was.
    check_settings(&file, &data_dir)?;

    create_private_dir(&data_dir)?;
    // Two servers on one data directory would both resume the same runs and
    // both write the same SQLite file: refuse the second.
    let _lock = lock_data_dir(&data_dir)?;
    let url = match &database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", data_dir.join("roster.db").display()),
    };
    // The PostgreSQL counterpart of the data-directory lock.
    let _server_lock = match &database_url {
        Some(url) => Some(
            roster_store_sql::postgres::lock_for_server(url)
                .await
                .context("cannot start")?,
        ),
        None => None,
    };
    let store = roster_store_sql::open(&url)
        .await
        .context("cannot open the store")?;
    bootstrap_admin_key(&store, &data_dir).await?;

    let env = |name: &str| std::env::var(name).ok();
    let mut registry = ProviderRegistry::from_config(file.provider_configs(), &env)
        .context("invalid provider configuration")?;
    let mut default_model = file.default_model.clone();
    if registry.names().is_empty() && file.builtin_model != Some(false) {
        match builtin_provider(&data_dir) {
            Ok(provider) => {
                registry.insert(provider);
                default_model.get_or_insert_with(crate::builtin_model::route);
            }
            // The server still serves: everything but model calls works.
            Err(e) => eprintln!("roster: the built-in model is not available: {e:#}"),
        }
    }
    let providers = registry.names();
    let catalogue = roster_api::ModelCatalogue {
        default: default_model,
        providers: providers
            .iter()
            .filter_map(|name| registry.get(name))
            .map(|p| {
                let attributes = p.attributes();
                roster_api::ProviderEntry {
                    name: p.name().to_owned(),
                    vendor: attributes.vendor,
                    hosting: attributes.hosting,
                    region: attributes.region,
                    models: p.models(),
                    queue: None,
                }
            })
            .collect(),
        live: roster_api::LiveProviders(
            providers
                .iter()
                .filter_map(|name| registry.get(name))
                .collect(),
        ),
    };
    let router = Arc::new(Router::new(Arc::new(registry), file.retry.to_policy()?));
    let embedder = match &file.embedder {
        Some(config) => Some(
            roster_embed::build(config, &env)
                .await
                .context("cannot set up the embedder")?,
        ),
        None => None,
    };
    let memory = MemoryService::open(MemoryOptions {
        store: store.clone(),
        index_dir: data_dir.join("index"),
        embedder,
    })
    .await
    .context("cannot open the search index")?;
    memory.start();
    let given_key = std::env::var(roster_secrets::KEY_ENV)
        .ok()
        .or(file.secret_key.clone());
    let secrets = roster_secrets::SecretBox::load(given_key.as_deref(), &data_dir)
        .context("cannot load the secret key")?;
    // Bound before the integrations, so the egress policy knows the
    // listener to keep tenants off.
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr().context("listener has no address")?;
    // One check that bubblewrap works here, shared by run_code and stdio
    // MCP servers.
    let jail = match roster_sandbox::Jail::open(
        file.sandbox.bwrap.clone(),
        &data_dir.join(".probe"),
    )
    .await
    {
        Ok(jail) => Some(Arc::new(jail)),
        Err(e) => {
            tracing::warn!(error = %e, "the sandbox does not work here (install bubblewrap): run_code is not offered and stdio MCP servers are refused");
            None
        }
    };
    let integrations = crate::walls::build(
        crate::walls::Setting {
            data_dir: &data_dir,
            listening: address,
            database_url: database_url.as_deref(),
            egress: &file.egress,
            sql: &file.sql,
            mcp: &file.mcp,
            jail: jail.clone(),
        },
        &store,
        &secrets,
    )
    .await?;
    let (mcp, sql, http, egress) = (
        integrations.mcp,
        integrations.sql,
        integrations.http,
        integrations.egress,
    );
    let mut tools = ToolRegistry::with_builtins();
    tools.add_provider(roster_mcp::McpProvider::new(mcp.clone()));
    tools.add_provider(roster_sql::SqlProvider::new(sql.clone()));
    tools.add_provider(roster_openapi::HttpProvider::new(http.clone()));
    tools.add_provider(roster_a2a::RemoteProvider::new(integrations.a2a.clone()));
    let sandbox_config = file.sandbox.to_config(data_dir.join("workspaces"))?;
    let sandbox = match (&jail, file.sandbox.enabled) {
        (Some(jail), true) => {
            let sandbox = Arc::new(roster_sandbox::Sandbox::with_jail(
                sandbox_config,
                jail.clone(),
            ));
            tools.register(roster_sandbox::RunCodeTool::new(sandbox.clone()));
            Some(sandbox)
        }
        _ => None,
    };
    let runtime = Runtime::new(RuntimeOptions {
        store: store.clone(),
        router,
        tools,
        memory: Some(memory.clone()),
        delegation: file.delegation.limits()?,
    });

    runtime
        .governance()
        .set_approval_ttl(std::time::Duration::from_secs(approval_expiry_secs(&file)?));
    runtime
        .governance()
        .set_prices(file.prices.clone().into_iter().collect());
    runtime.start_approval_expiry(std::time::Duration::from_millis(file.approvals.sweep_ms));
    store
        .set_default_limits(file.limits.limits()?)
        .await
        .context("cannot store the [limits] defaults")?;
    let resumed = runtime
        .recover()
        .await
        .context("cannot resume unfinished runs")?;
    // After recovery: a firing's run queued before a crash is resumed, not
    // fired again (its fire time is recorded).
    runtime.start_schedules(
        std::time::Duration::from_millis(file.schedules.tick_ms.max(10)),
        std::time::Duration::from_secs(file.schedules.grace_secs),
    );
    runtime.start_queue_sweep(std::time::Duration::from_millis(
        file.limits.sweep_ms.max(10),
    ));
    // Notifications left in the outbox by an earlier process go out now.
    let notifier = roster_notify::Sender::new(
        store.clone(),
        secrets.clone(),
        egress.clone(),
        file.notifications.options()?,
        runtime.outbox_wakeup(),
    )
    .spawn();
    tracing::info!(
        %address, store = store.backend(), providers = ?providers, resumed,
        "roster is listening"
    );
    eprintln!(
        "roster listening on http://{address} (store: {}, providers: {})",
        store.backend(),
        if providers.is_empty() {
            "none configured".to_owned()
        } else {
            providers.join(", ")
        }
    );
    let max_document_bytes = match file.max_document_mb {
        Some(mb) if (1..=4096).contains(&mb) => usize::try_from(mb * 1024 * 1024)
            .context("max_document_mb does not fit this machine")?,
        Some(mb) => anyhow::bail!("max_document_mb must be between 1 and 4096, not {mb}"),
        None => roster_api::DEFAULT_MAX_DOCUMENT_BYTES,
    };
    let state = AppState {
        store,
        runtime: runtime.clone(),
        max_document_bytes,
        sandbox,
        models: Arc::new(catalogue),
        integrations: Some(roster_api::Integrations {
            mcp: mcp.clone(),
            sql: sql.clone(),
            http,
            a2a: integrations.a2a,
            secrets,
            egress,
        }),
    };
    // The MCP endpoint (`/mcp`) shares the listener and the keys.
    let app = roster_api::app(state.clone()).merge(roster_mcp_server::router(state));
    let stopping = Arc::new(tokio::sync::Notify::new());
    let signalled = stopping.clone();
    // Without TCP_NODELAY a streamed answer's first event, written after
    // the headers, waits for the client's delayed ACK (about 40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        signalled.notify_one();
    });
    // Long requests (a waiting POST, an SSE stream) get a grace period, not
    // a veto: runs in flight resume from their journal at the next start.
    let grace = async {
        stopping.notified().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result.context("server failed")?,
        () = grace => tracing::warn!("requests still open after {SHUTDOWN_GRACE:?}; stopping anyway"),
    }
    runtime.shutdown().await;
    notifier.abort();
    mcp.shutdown().await;
    sql.shutdown().await;
    memory.shutdown().await;
    Ok(())
}

/// Creates the data directory readable by its owner only: it holds the
/// database and the admin key file.
fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))
}

/// How long open requests may keep a stopping server alive.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Holds an exclusive lock on `<data-dir>/roster.lock` for the life of the
/// server.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File> {
    let path = data_dir.join("roster.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another roster server is using the data directory {}",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down; unfinished runs resume at the next start");
}

/// `ROSTER_ADMIN_KEY` names the admin key (replacing earlier ones); without
/// it the first start generates one, stores only its hash, prints it once
/// and writes it to `admin.key` (mode 0600) in the data directory.
async fn bootstrap_admin_key(store: &DynStore, data_dir: &Path) -> Result<()> {
    let tenant = TenantId::default_tenant();
    store.ensure_tenant(&tenant, "default").await?;
    if let Ok(key) = std::env::var("ROSTER_ADMIN_KEY") {
        let key = key.trim().to_owned();
        anyhow::ensure!(
            key.len() >= 16,
            "ROSTER_ADMIN_KEY must be at least 16 characters"
        );
        store
            .set_admin_key(
                &tenant,
                NewApiKey {
                    id: KeyId::generate(),
                    name: "admin (ROSTER_ADMIN_KEY)".into(),
                    key_hash: hash_key(&key),
                    is_admin: true,
                },
            )
            .await?;
        // A key file from an earlier generated key no longer works; leaving
        // it would send the CLI to the server with a revoked key.
        let stale = data_dir.join(ADMIN_KEY_FILE);
        if std::fs::read_to_string(&stale).is_ok_and(|k| k.trim() != key) {
            std::fs::remove_file(&stale)
                .with_context(|| format!("cannot remove stale {}", stale.display()))?;
        }
        return Ok(());
    }
    if store.count_admin_keys(&tenant).await? > 0 {
        return Ok(());
    }
    let key = format!("rk_{}", hex::encode(rand::random::<[u8; 24]>()));
    let path = data_dir.join(ADMIN_KEY_FILE);
    write_secret_file(&path, &key)?;
    store
        .insert_api_key(
            &tenant,
            NewApiKey {
                id: KeyId::generate(),
                name: "admin (generated)".into(),
                key_hash: hash_key(&key),
                is_admin: true,
            },
        )
        .await?;
    println!(
        "Generated admin API key (shown once; also saved to {}):\n{key}",
        path.display()
    );
    Ok(())
}

fn write_secret_file(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // `mode` applies only to a new file: tighten one that already existed
    // before the secret goes in.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    file.write_all(format!("{contents}\n").as_bytes())?;
    Ok(())
}

/// How long a request waits for a decision: `ROSTER_APPROVAL_EXPIRY_SECS`,
/// else `[approvals] expiry_secs`.
fn approval_expiry_secs(file: &FileConfig) -> Result<u64> {
    let expiry_secs = match std::env::var("ROSTER_APPROVAL_EXPIRY_SECS") {
        Ok(raw) => raw
            .trim()
            .parse::<u64>()
            .context("ROSTER_APPROVAL_EXPIRY_SECS must be a whole number of seconds")?,
        Err(_) => file.approvals.expiry_secs,
    };
    anyhow::ensure!(
        (1..=365 * 24 * 3600).contains(&expiry_secs),
        "the approval expiry must be between 1 second and a year, not {expiry_secs} s"
    );
    Ok(expiry_secs)
}

/// The local provider running the built-in model, fetched first if needed.
fn builtin_provider(data_dir: &std::path::Path) -> Result<Arc<dyn roster_models::ModelProvider>> {
    let file = crate::builtin_model::obtain(&crate::builtin_model::cache_dir(data_dir))?;
    let mut config = roster_models::ProviderConfig::new(
        crate::builtin_model::PROVIDER,
        roster_models::ProviderKind::Local,
        "",
    );
    config.model_file = Some(file);
    config.model = Some(crate::builtin_model::MODEL.to_owned());
    Ok(roster_models::build_provider(config)?)
}

/// Everything about the settings that can be checked without starting
/// anything: providers, retries, the sandbox's and the walls' settings,
/// approvals and prices.
fn check_settings(file: &FileConfig, data_dir: &std::path::Path) -> Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    ProviderRegistry::from_config(file.provider_configs(), &env)
        .context("invalid provider configuration")?;
    file.retry.to_policy()?;
    file.sandbox.to_config(data_dir.join("workspaces"))?;
    crate::walls::check(&file.egress, &file.sql, &file.mcp, data_dir)?;
    approval_expiry_secs(file)?;
    anyhow::ensure!(
        (10..=60_000).contains(&file.approvals.sweep_ms),
        "approvals.sweep_ms must be between 10 and 60000"
    );
    for (route, price) in &file.prices {
        anyhow::ensure!(
            route
                .split_once('/')
                .is_some_and(|(p, m)| !p.is_empty() && !m.is_empty()),
            "prices: `{route}` is not provider/model (or provider/*)"
        );
        anyhow::ensure!(
            price.input_per_mtok >= 0.0
                && price.output_per_mtok >= 0.0
                && price.input_per_mtok.is_finite()
                && price.output_per_mtok.is_finite(),
            "prices: `{route}` needs non-negative prices"
        );
    }
    Ok(())
}
