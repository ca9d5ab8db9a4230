//! Shared harness of the runtime's integration tests: backends that can be
//! reopened (a "crash" drops a runtime and starts a new one on the same
//! database), fixtures, and checks of what the store holds.
#![allow(dead_code)] // each test binary uses its own part of the harness

mod checks;
pub mod journal;
pub mod model;
pub mod tools;

#[allow(unused_imports)] // not every test binary uses every check
pub use checks::*;

use roster_core::agent::{Agent, AgentConfig, NewAgent};
use roster_core::item::{Item, ItemContent};
use roster_core::memory::MemoryBlockSpec;
use roster_core::run::{Run, RunStatus, Step};
use roster_core::{RunId, SessionId, TenantId};
use roster_models::{ModelProvider, ProviderRegistry, RetryPolicy, Router};
use roster_runtime::tools::{Tool, ToolRegistry};
use roster_runtime::{Runtime, RuntimeOptions, Submission};
use roster_store::{BusyPolicy, CreatedRun, DynStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long any awaited condition may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Generates `NAME::sqlite` and `NAME::postgres` tests from `async fn NAME(db: Db)`.
/// The PostgreSQL one is skipped with a notice when `ROSTER_TEST_DATABASE_URL`
/// is unset, and fails in CI.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::common::Db::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                if let Some(db) = $crate::common::Db::postgres().await {
                    super::$name(db).await;
                }
            }
        }
    )+};
}

/// A database that outlives the runtimes (and store handles) opened on it.
pub struct Db {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("roster.db").display());
        Db {
            url,
            _dir: Some(dir),
        }
    }

    /// A fresh database, or `None` with a notice when no server is configured.
    pub async fn postgres() -> Option<Db> {
        let Ok(url) = std::env::var("ROSTER_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set ROSTER_TEST_DATABASE_URL"
            );
            eprintln!("notice: ROSTER_TEST_DATABASE_URL is not set; skipping a PostgreSQL test");
            return None;
        };
        let url = roster_store_sql::postgres::create_test_database(&url)
            .await
            .expect("create test database");
        Some(Db { url, _dir: None })
    }

    /// A new store handle: a new SQLite writer, or a new PostgreSQL pool, as
    /// a restarted process would open.
    pub async fn open(&self) -> DynStore {
        roster_store_sql::open(&self.url).await.expect("open store")
    }

    /// A new store handle that fails on demand, as a database hiccup would.
    pub async fn open_with_faults(&self) -> (DynStore, std::sync::Arc<roster_store_sql::Faults>) {
        roster_store_sql::open_with_faults(&self.url)
            .await
            .expect("open store")
    }
}

pub fn config(tools: &[&str]) -> AgentConfig {
    AgentConfig {
        max_running: Default::default(),
        notify: Default::default(),
        description: Default::default(),
        if_busy: Default::default(),
        tool_choice: Default::default(),
        instructions: "Be helpful.".into(),
        model: format!("{}/test-model", model::PROVIDER),
        fallbacks: vec![],
        tools: tools.iter().map(|t| (*t).to_owned()).collect(),
        max_steps: 8,
        context_tokens: 32_000,
        memory: Default::default(),
        knowledge: vec![],
        knowledge_recall: 3,
        context: Default::default(),
        memory_blocks: vec![],
    }
}

/// A tenant, an agent and one session of it.
pub struct Fixture {
    pub tenant: TenantId,
    pub agent: Agent,
    pub session: SessionId,
}

impl Fixture {
    pub async fn new(store: &DynStore, config: AgentConfig) -> Fixture {
        Self::with_blocks(store, config, vec![]).await
    }

    pub async fn with_blocks(
        store: &DynStore,
        config: AgentConfig,
        blocks: Vec<MemoryBlockSpec>,
    ) -> Fixture {
        let tenant = TenantId::generate();
        store.ensure_tenant(&tenant, "Test").await.expect("tenant");
        let agent = store
            .create_agent(
                &tenant,
                NewAgent {
                    name: "helper".into(),
                    config,
                    memory_blocks: blocks,
                },
                "test",
            )
            .await
            .expect("agent");
        let session = store
            .create_session(&tenant, &agent.id, agent.version)
            .await
            .expect("session")
            .id;
        Fixture {
            tenant,
            agent,
            session,
        }
    }

    pub async fn new_session(&self, store: &DynStore) -> SessionId {
        store
            .create_session(&self.tenant, &self.agent.id, self.agent.version)
            .await
            .expect("session")
            .id
    }
}

/// A runtime on `store` with `model` as provider [`model::PROVIDER`], the
/// built-in tools and `tools`. Retries are off so failures show at once.
pub fn runtime(
    store: DynStore,
    model: Arc<dyn ModelProvider>,
    tools: Vec<Arc<dyn Tool>>,
) -> Runtime {
    runtime_with_retry(store, model, tools, no_retries())
}

/// Like [`runtime`], with these delegation limits and no other tools.
pub fn runtime_with_limits(
    store: DynStore,
    model: Arc<dyn ModelProvider>,
    delegation: roster_core::delegation::DelegationLimits,
) -> Runtime {
    let mut registry = ProviderRegistry::new();
    registry.insert(model);
    Runtime::new(RuntimeOptions {
        delegation,
        store,
        router: Arc::new(Router::new(Arc::new(registry), no_retries())),
        tools: ToolRegistry::with_builtins(),
        memory: None,
    })
}

/// No retries and no patience: a failed model call fails its run at once.
pub fn no_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 0,
        patience: Duration::ZERO,
        ..RetryPolicy::default()
    }
}

/// Like [`runtime`], with the router's `retry` policy.
pub fn runtime_with_retry(
    store: DynStore,
    model: Arc<dyn ModelProvider>,
    tools: Vec<Arc<dyn Tool>>,
    retry: RetryPolicy,
) -> Runtime {
    let mut registry = ProviderRegistry::new();
    registry.insert(model);
    let mut tool_registry = ToolRegistry::with_builtins();
    for tool in tools {
        tool_registry.register(tool);
    }
    Runtime::new(RuntimeOptions {
        delegation: Default::default(),
        store,
        router: Arc::new(Router::new(Arc::new(registry), retry)),
        tools: tool_registry,
        memory: None,
    })
}

/// Like [`runtime`], with long-term memory backed by `store` and an index
/// under `index_dir`.
pub async fn runtime_with_memory(
    store: DynStore,
    model: Arc<dyn ModelProvider>,
    index_dir: &std::path::Path,
) -> (Runtime, Arc<roster_memory::MemoryService>) {
    let memory = roster_memory::MemoryService::open(roster_memory::MemoryOptions {
        store: store.clone(),
        index_dir: index_dir.to_path_buf(),
        embedder: None,
    })
    .await
    .expect("memory service");
    memory.start();
    let mut registry = ProviderRegistry::new();
    registry.insert(model);
    let retry = no_retries();
    let runtime = Runtime::new(RuntimeOptions {
        delegation: Default::default(),
        store,
        router: Arc::new(Router::new(Arc::new(registry), retry)),
        tools: ToolRegistry::with_builtins(),
        memory: Some(memory.clone()),
    });
    (runtime, memory)
}

pub fn input(text: &str) -> Submission {
    Submission {
        turn: Default::default(),
        notify: Default::default(),
        parent: Default::default(),
        input: text.into(),
        idempotency_key: None,
        if_busy: BusyPolicy::Queue,
        actor: None,
    }
}

pub async fn submit(rt: &Runtime, fx: &Fixture, text: &str) -> Run {
    submit_to(rt, fx, &fx.session, text).await
}

pub async fn submit_to(rt: &Runtime, fx: &Fixture, session: &SessionId, text: &str) -> Run {
    match rt
        .submit(&fx.tenant, session, input(text))
        .await
        .expect("submit")
    {
        CreatedRun::Created(run) => run,
        CreatedRun::Existing(run) => panic!("run {} already existed", run.id),
    }
}

/// Polls `condition` until it holds; fails the test after [`PATIENCE`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits for the run to finish and checks how it ended.
pub async fn finished(rt: &Runtime, fx: &Fixture, run: &RunId, status: RunStatus) -> Run {
    let run = rt.wait(&fx.tenant, run, PATIENCE).await.expect("wait");
    assert_eq!(run.status, status, "run ended as {run:?}");
    run
}

/// Polls the store until the run has this status.
pub async fn reaches(store: &DynStore, fx: &Fixture, run: &RunId, status: RunStatus) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = store
            .get_run(&fx.tenant, run)
            .await
            .expect("get run")
            .expect("run exists")
            .status;
        if now == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} stayed {now:?}, expected {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn items(store: &DynStore, fx: &Fixture, session: &SessionId) -> Vec<Item> {
    store
        .list_items(&fx.tenant, session, 0, 100_000)
        .await
        .expect("items")
}

pub async fn contents(store: &DynStore, fx: &Fixture) -> Vec<ItemContent> {
    items(store, fx, &fx.session)
        .await
        .into_iter()
        .map(|i| i.content)
        .collect()
}

pub async fn steps(store: &DynStore, fx: &Fixture, run: &RunId) -> Vec<Step> {
    store.list_steps(&fx.tenant, run).await.expect("steps")
}

/// Items that are tool results, as (call id, output, is_error).
pub fn results(items: &[ItemContent]) -> Vec<(String, String, bool)> {
    items
        .iter()
        .filter_map(|i| match i {
            ItemContent::ToolResult {
                call_id,
                output,
                is_error,
                ..
            } => Some((call_id.clone(), output.clone(), *is_error)),
            _ => None,
        })
        .collect()
}

/// Polls an async `condition` until it holds; fails the test after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
