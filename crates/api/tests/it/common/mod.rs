//! Test harness: the API built as the binary builds it (SQLite store in a
//! temporary directory, admin key of the default tenant, a second tenant,
//! providers pointed at the fake model server), served on a loopback port,
//! plus a small HTTP client and an SSE parser.
#![allow(dead_code, clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use roster_api::{hash_key, AppState};
use roster_core::{KeyId, TenantId};
use roster_models::{ProviderRegistry, RetryPolicy, Router};
use roster_runtime::tools::{Tool, ToolCallContext, ToolOutput, ToolRegistry};
use roster_runtime::{Runtime, RuntimeOptions};
use roster_store::{DynStore, NewApiKey};
use roster_store_sql::Faults;
use roster_testkit::FakeModelServer;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

#[allow(unused_imports)]
pub use roster_testkit::Reply;

mod client;
mod integrations;
#[allow(unused_imports)]
pub use client::{parse_sse, Client, Resp, Sse};
#[allow(unused_imports)]
pub use integrations::Walls;

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const TENANT_B_KEY: &str = "tenant-b-key-0123456789";
/// A key of the default tenant that is not an admin key.
pub const MEMBER_KEY: &str = "member-key-0123456789";
/// Upper bound for anything a test waits for; reaching it fails the test.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A test-only external tool: sleeps `ms` milliseconds, then answers "slept".
struct SleepTool;

#[async_trait::async_trait]
impl Tool for SleepTool {
    fn name(&self) -> &str {
        "sleep"
    }
    fn description(&self) -> &str {
        "Sleeps for `ms` milliseconds."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {"ms": {"type": "integer"}}})
    }
    async fn call(&self, _ctx: &ToolCallContext, arguments: Value) -> ToolOutput {
        let ms = arguments["ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ToolOutput::ok("slept")
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct TestApp {
    pub url: String,
    pub fake: FakeModelServer,
    pub state: AppState,
    pub tenant_b: TenantId,
    /// Failures of the app's store, injected on demand (none by default).
    pub faults: Arc<Faults>,
    http: reqwest::Client,
    _server: AbortOnDrop,
    _dir: tempfile::TempDir,
}

async fn add_key(store: &DynStore, tenant: &TenantId, key: &str) {
    insert_key(store, tenant, key, true).await;
}

async fn insert_key(store: &DynStore, tenant: &TenantId, key: &str, is_admin: bool) {
    store
        .insert_api_key(
            tenant,
            NewApiKey {
                id: KeyId::generate(),
                name: format!("test key {tenant}"),
                key_hash: hash_key(key),
                is_admin,
            },
        )
        .await
        .unwrap();
}

impl TestApp {
    pub async fn start() -> TestApp {
        Self::start_full(Walls::default(), Duration::ZERO).await
    }

    /// Like [`TestApp::start`], with a store that fails on demand.
    pub async fn start_with_faults() -> (TestApp, Arc<Faults>) {
        let app = Self::start_full(Walls::default(), Duration::ZERO).await;
        let faults = app.faults.clone();
        (app, faults)
    }

    /// Like [`TestApp::start`], with model calls that wait out outages for
    /// `patience` (the other harnesses fail at once).
    pub async fn start_patient(patience: Duration) -> TestApp {
        Self::start_full(Walls::default(), patience).await
    }

    /// Like [`TestApp::start`], with the operator's walls as given.
    pub async fn start_configured(walls: Walls) -> TestApp {
        Self::start_full(walls, Duration::ZERO).await
    }

    async fn start_full(walls: Walls, patience: Duration) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("roster.db").display());
        let (store, faults) = roster_store_sql::open_with_faults(&url).await.unwrap();
        let tenant_a = TenantId::default_tenant();
        store.ensure_tenant(&tenant_a, "default").await.unwrap();
        add_key(&store, &tenant_a, ADMIN_KEY).await;
        insert_key(&store, &tenant_a, MEMBER_KEY, false).await;
        let tenant_b = TenantId::generate();
        store.ensure_tenant(&tenant_b, "tenant b").await.unwrap();
        add_key(&store, &tenant_b, TENANT_B_KEY).await;

        let fake = FakeModelServer::start().await;
        let (openai, anthropic) = (fake.openai_base_url(), fake.anthropic_base_url());
        let env = move |name: &str| match name {
            "OPENAI_API_KEY" => Some("sk".to_owned()),
            "OPENAI_BASE_URL" => Some(openai.clone()),
            "ANTHROPIC_API_KEY" => Some("sk-ant".to_owned()),
            "ANTHROPIC_BASE_URL" => Some(anthropic.clone()),
            _ => None,
        };
        let registry = ProviderRegistry::from_config(vec![], &env).unwrap();
        let router = Router::new(
            Arc::new(registry),
            RetryPolicy {
                max_retries: 1,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(100),
                patience,
            },
        );
        let mut tools = ToolRegistry::with_builtins();
        tools.register(Arc::new(SleepTool));
        // The company-system integrations, as `roster serve` wires them; no
        // process or connection starts until a test registers something.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let integrations = integrations::build(&store, dir.path(), addr, walls).await;
        tools.add_provider(roster_mcp::McpProvider::new(integrations.mcp.clone()));
        tools.add_provider(roster_sql::SqlProvider::new(integrations.sql.clone()));
        tools.add_provider(roster_openapi::HttpProvider::new(integrations.http.clone()));
        tools.add_provider(roster_a2a::RemoteProvider::new(integrations.a2a.clone()));
        // The file API needs only the workspace directories; a machine
        // without bubblewrap serves it all the same.
        let sandbox = roster_sandbox::Sandbox::open(roster_sandbox::SandboxConfig::new(
            dir.path().join("workspaces"),
        ))
        .await
        .ok()
        .map(Arc::new);
        let memory = roster_memory::MemoryService::open(roster_memory::MemoryOptions {
            store: store.clone(),
            index_dir: dir.path().join("index"),
            embedder: None,
        })
        .await
        .unwrap();
        memory.start();
        let runtime = Runtime::new(RuntimeOptions {
            delegation: Default::default(),
            store: store.clone(),
            router: Arc::new(router),
            tools,
            memory: Some(memory),
        });
        let state = AppState {
            store,
            runtime,
            integrations: Some(integrations),
            sandbox,
            max_document_bytes: 4 * 1024 * 1024,
            models: Default::default(),
        };
        let app = roster_api::app(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestApp {
            url: format!("http://{addr}"),
            fake,
            state,
            tenant_b,
            faults,
            http: reqwest::Client::new(),
            _server: AbortOnDrop(server),
            _dir: dir,
        }
    }

    /// The app's data directory (its database, its secret key).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    fn client(&self, key: Option<&str>) -> Client {
        Client::new(self.http.clone(), self.url.clone(), key)
    }

    /// A client using `key`.
    pub fn with_key(&self, key: &str) -> Client {
        self.client(Some(key))
    }

    /// The default tenant's admin.
    pub fn admin(&self) -> Client {
        self.client(Some(ADMIN_KEY))
    }

    /// A key of the default tenant without admin rights.
    pub fn member(&self) -> Client {
        self.client(Some(MEMBER_KEY))
    }

    pub fn tenant_b(&self) -> Client {
        self.client(Some(TENANT_B_KEY))
    }

    pub fn anon(&self) -> Client {
        self.client(None)
    }

    /// One request through `app()` without a socket.
    pub async fn oneshot(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = roster_api::app(self.state.clone())
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        // A feed (Server-Sent Events) does not end: its status is the answer.
        if response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
        {
            return (status, Value::Null);
        }
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The `model` field of every request the fake server received.
    pub fn requested_models(&self) -> Vec<String> {
        self.fake
            .requests()
            .iter()
            .map(|r| r.body["model"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// Polls `check` every 20 ms until it yields a value; panics after [`TIMEOUT`].
pub async fn eventually<T, F, Fut>(mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Item `type`s in order.
pub fn kinds(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|i| i["type"].as_str().unwrap_or_default())
        .collect()
}

/// Every tool call in the items has a matching tool result after it.
#[track_caller]
pub fn assert_calls_answered(items: &[Value]) {
    for (i, item) in items.iter().enumerate() {
        for call in item["tool_calls"].as_array().into_iter().flatten() {
            let id = &call["id"];
            assert!(
                items[i + 1..]
                    .iter()
                    .any(|r| r["type"] == "tool_result" && r["call_id"] == *id),
                "tool call {id} has no result: {items:#?}"
            );
        }
    }
}
