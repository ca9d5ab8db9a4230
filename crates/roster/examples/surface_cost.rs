//! What one turn costs through each open surface over the native API, with
//! an instant in-process model (`roster_runtime::bench::InstantModel`; an
//! agent without tools: a turn is one model step) on the embedded SQLite
//! store in a temporary directory (every commit fsynced), all routes served
//! together on loopback as `roster serve` serves them.
//!
//! Interleaved in one command, so every surface meets the same machine.
//! A turn in an existing session through:
//! - native: `POST /v1/sessions/{id}/messages` (waits for the run),
//! - Responses: `POST /v1/responses {model, input, conversation}`,
//! - A2A: `SendMessage` with the session as `contextId`,
//! - MCP: `tools/call continue_session`.
//!
//! A first turn (a new session): native `POST /v1/sessions` + `…/messages`
//! against `POST /v1/chat/completions`, a Responses call without a
//! conversation and MCP `tools/call ask_bench`.
//!
//! `cargo run --release -p roster --example surface_cost`

use roster_api::{AppState, ModelCatalogue};
use roster_core::agent::{AgentConfig, NewAgent};
use roster_core::{KeyId, TenantId};
use roster_models::{ProviderRegistry, RetryPolicy, Router};
use roster_runtime::bench::InstantModel;
use roster_runtime::tools::ToolRegistry;
use roster_runtime::{Runtime, RuntimeOptions};
use roster_store::NewApiKey;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const TURNS: usize = 1000;
const WARMUP: usize = 50;
const FIRST_TURNS: usize = 300;
const KEY: &str = "bench-admin-key-0123456789";
/// Each A2A message its own id (an id seen before returns its first task).
static NEXT_MESSAGE: AtomicU64 = AtomicU64::new(0);

struct Bench {
    http: reqwest::Client,
    url: String,
}

impl Bench {
    async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> String {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(KEY)
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("post");
        let status = response.status();
        let text = response.text().await.expect("body");
        assert!(status.is_success(), "{path}: {status} {text}");
        text
    }

    async fn json(&self, path: &str, body: Value) -> Value {
        serde_json::from_str(&self.post(path, body, &[]).await).expect("json")
    }

    /// One turn through `surface`, in `session`; its time in ms.
    async fn turn(&self, surface: &str, session: &str) -> f64 {
        let started = Instant::now();
        match surface {
            "native" => {
                let done = self
                    .json(
                        &format!("/v1/sessions/{session}/messages"),
                        json!({"content": "hello"}),
                    )
                    .await;
                assert_eq!(done["run"]["status"], "completed", "{done}");
            }
            "responses" => {
                let done = self
                    .json(
                        "/v1/responses",
                        json!({"model": "bench", "input": "hello", "conversation": session}),
                    )
                    .await;
                assert_eq!(done["status"], "completed", "{done}");
            }
            "a2a" => {
                let done: Value = serde_json::from_str(
                    &self
                        .post(
                            "/v1/a2a/bench",
                            json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
                                "messageId": format!("m{}", NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed)), "role": "ROLE_USER",
                                "contextId": session, "parts": [{"text": "hello"}]}}}),
                            &[("a2a-version", "1.0")],
                        )
                        .await,
                )
                .expect("json");
                assert_eq!(
                    done["result"]["task"]["status"]["state"], "TASK_STATE_COMPLETED",
                    "{done}"
                );
            }
            "mcp" => {
                let text = self
                    .post(
                        "/mcp",
                        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                            "params": {"name": "continue_session", "arguments": {"session": session, "message": "hello"}}}),
                        &[("accept", "application/json, text/event-stream"), ("mcp-protocol-version", "2025-11-25")],
                    )
                    .await;
                assert!(text.contains("\"isError\":false"), "{text}");
            }
            other => panic!("no surface {other}"),
        }
        started.elapsed().as_secs_f64() * 1e3
    }

    /// A first turn (a new session) through `surface`; its time in ms.
    async fn first(&self, surface: &str) -> f64 {
        let started = Instant::now();
        match surface {
            "native" => {
                let session = self.json("/v1/sessions", json!({"agent": "bench"})).await;
                let id = session["id"].as_str().expect("id");
                let done = self
                    .json(
                        &format!("/v1/sessions/{id}/messages"),
                        json!({"content": "hello"}),
                    )
                    .await;
                assert_eq!(done["run"]["status"], "completed", "{done}");
            }
            "responses" => {
                let done = self
                    .json("/v1/responses", json!({"model": "bench", "input": "hello"}))
                    .await;
                assert_eq!(done["status"], "completed", "{done}");
            }
            "chat" => {
                let done = self
                    .json("/v1/chat/completions", json!({"model": "bench", "messages": [{"role": "user", "content": "hello"}]}))
                    .await;
                assert_eq!(done["choices"][0]["finish_reason"], "stop", "{done}");
            }
            "mcp" => {
                let text = self
                    .post(
                        "/mcp",
                        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                            "params": {"name": "ask_bench", "arguments": {"message": "hello"}}}),
                        &[
                            ("accept", "application/json, text/event-stream"),
                            ("mcp-protocol-version", "2025-11-25"),
                        ],
                    )
                    .await;
                assert!(text.contains("\"isError\":false"), "{text}");
            }
            other => panic!("no surface {other}"),
        }
        started.elapsed().as_secs_f64() * 1e3
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn report(what: &str, names: &[&str], mut samples: Vec<Vec<f64>>) {
    for s in &mut samples {
        s.sort_by(f64::total_cmp);
    }
    let (n50, n99) = (percentile(&samples[0], 0.5), percentile(&samples[0], 0.99));
    println!("{what} ({} each, interleaved)", samples[0].len());
    println!("  {:<10} p50 {n50:.3} ms  p99 {n99:.3} ms", names[0]);
    for (name, s) in names.iter().zip(&samples).skip(1) {
        let (p50, p99) = (percentile(s, 0.5), percentile(s, 0.99));
        println!(
            "  {name:<10} p50 {p50:.3} ms  p99 {p99:.3} ms   added p50 {:+.3} ms ({:.2}x)  p99 {:+.3} ms",
            p50 - n50,
            p50 / n50,
            p99 - n99
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = roster_store_sql::open(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .expect("store");
    let tenant = TenantId::default_tenant();
    store
        .ensure_tenant(&tenant, "default")
        .await
        .expect("tenant");
    store
        .insert_api_key(
            &tenant,
            NewApiKey {
                id: KeyId::generate(),
                name: "bench".into(),
                key_hash: roster_api::hash_key(KEY),
                is_admin: true,
            },
        )
        .await
        .expect("key");
    let config: AgentConfig =
        serde_json::from_value(json!({"instructions": "answer", "model": "instant/m"}))
            .expect("config");
    store
        .create_agent(
            &tenant,
            NewAgent {
                name: "bench".into(),
                config,
                memory_blocks: vec![],
            },
            "bench",
        )
        .await
        .expect("agent");
    let mut providers = ProviderRegistry::new();
    providers.insert(Arc::new(InstantModel));
    let runtime = Runtime::new(RuntimeOptions {
        store: store.clone(),
        router: Arc::new(Router::new(Arc::new(providers), RetryPolicy::default())),
        tools: ToolRegistry::with_builtins(),
        memory: None,
        delegation: Default::default(),
    });
    let state = AppState {
        store,
        runtime,
        max_document_bytes: roster_api::DEFAULT_MAX_DOCUMENT_BYTES,
        integrations: None,
        sandbox: None,
        models: Arc::new(ModelCatalogue::default()),
    };
    // As `roster serve` wires them.
    let app = roster_api::app(state.clone()).merge(roster_mcp_server::router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    // As `roster serve` sets its connections.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let bench = Bench {
        http: reqwest::Client::new(),
        url,
    };

    // One session per surface, so no surface's history grows another's.
    let surfaces = ["native", "responses", "a2a", "mcp"];
    let mut sessions = Vec::new();
    for _ in surfaces {
        let session = bench.json("/v1/sessions", json!({"agent": "bench"})).await;
        sessions.push(session["id"].as_str().expect("id").to_owned());
    }
    for _ in 0..WARMUP {
        for (surface, session) in surfaces.iter().zip(&sessions) {
            bench.turn(surface, session).await;
        }
    }
    let mut samples = vec![Vec::with_capacity(TURNS); surfaces.len()];
    for _ in 0..TURNS {
        for ((surface, session), s) in surfaces.iter().zip(&sessions).zip(&mut samples) {
            s.push(bench.turn(surface, session).await);
        }
    }
    report("a turn in an existing session", &surfaces, samples);

    let firsts = ["native", "responses", "chat", "mcp"];
    let mut samples = vec![Vec::with_capacity(FIRST_TURNS); firsts.len()];
    for _ in 0..FIRST_TURNS {
        for (surface, s) in firsts.iter().zip(&mut samples) {
            s.push(bench.first(surface).await);
        }
    }
    report("a first turn (a new session)", &firsts, samples);
}
