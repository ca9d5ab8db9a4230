//! What the fleet features cost, with an instant in-process model on the
//! embedded SQLite store (every commit fsynced), all in one command so the
//! numbers share one machine state:
//!
//! - a run that asks another agent (one delegation hop) against a direct
//!   run of the same shape (a tool call, then an answer) with a trivial tool;
//! - 1,000 schedules due at the same instant: time until every firing's
//!   run is stored (and until every run has finished);
//! - appends per second to one shared block from 20 sessions at once;
//! - a trigger delivery to its run's start (the runtime's part: key and
//!   policy checks, the delivery and its run in one transaction, the
//!   worker taking it; the HTTP and HMAC layer is not in it).
//!
//! `cargo run --release -p roster-runtime --example fleet_bench`

use async_trait::async_trait;
use chrono::Utc;
use roster_core::agent::{AgentConfig, NewAgent};
use roster_core::blocks::BlockScope;
use roster_core::item::ToolCall;
use roster_core::memory::MemoryBlockSpec;
use roster_core::run::RunStatus;
use roster_core::schedule::CatchUp;
use roster_core::{KeyId, RunId, SessionId, TenantId, TriggerId};
use roster_models::{
    ChatMessage, ChatRequest, ChatResponse, ModelProvider, ProviderError, ProviderRegistry,
    RetryPolicy, Router, Usage,
};
use roster_runtime::bench::EchoTool;
use roster_runtime::tools::ToolRegistry;
use roster_runtime::{Runtime, RuntimeOptions, Submission};
use roster_store::schedules::NewSchedule;
use roster_store::triggers::{HookTarget, NewTrigger};
use roster_store::{BusyPolicy, CreatedRun, DynStore, NewAuditEvent, NewKey};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 200;
const SCHEDULES: usize = 1_000;
const WRITERS: usize = 20;
const APPENDS_EACH: usize = 10;
const DELIVERIES: usize = 200;

/// Answers at once. The coordinator asks the worker (`ask_worker`), the
/// direct agent calls `echo`, writers append their message to `project`;
/// after a tool result, or for the worker, it answers with text.
struct FleetModel;

#[async_trait]
impl ModelProvider for FleetModel {
    fn name(&self) -> &str {
        "instant"
    }

    async fn chat(
        &self,
        req: &ChatRequest,
        _on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    ) -> Result<ChatResponse, ProviderError> {
        let usage = Usage {
            input_tokens: 1,
            output_tokens: 1,
        };
        let answer = |text: &str| ChatResponse {
            text: text.into(),
            tool_calls: vec![],
            usage,
            stop_reason: Some("stop".into()),
        };
        let call = |name: &str, arguments: serde_json::Value| ChatResponse {
            text: String::new(),
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: name.into(),
                arguments: arguments.to_string(),
            }],
            usage,
            stop_reason: Some("tool_calls".into()),
        };
        let Some(ChatMessage::User { text }) = req.messages.last() else {
            return Ok(answer("done"));
        };
        Ok(if req.system.contains("ROLE=coordinator") {
            call("ask_worker", serde_json::json!({ "input": text }))
        } else if req.system.contains("ROLE=direct") {
            call("echo", serde_json::json!({ "text": text }))
        } else if req.system.contains("ROLE=writer") {
            call(
                "memory_append",
                serde_json::json!({ "label": "project", "content": text }),
            )
        } else {
            answer("done")
        })
    }

    fn max_retries(&self) -> Option<u32> {
        Some(0)
    }
}

fn config(role: &str, tools: &[&str]) -> AgentConfig {
    let mut config: AgentConfig = serde_json::from_value(serde_json::json!({
        "instructions": format!("ROLE={role}"),
        "model": "instant/m",
    }))
    .expect("config");
    config.tools = tools.iter().map(|t| (*t).to_owned()).collect();
    config.max_steps = 8;
    config
}

async fn agent(
    store: &DynStore,
    tenant: &TenantId,
    name: &str,
    config: AgentConfig,
    blocks: Vec<MemoryBlockSpec>,
) -> roster_core::agent::Agent {
    store
        .create_agent(
            tenant,
            NewAgent {
                name: name.into(),
                config,
                memory_blocks: blocks,
            },
            "bench",
        )
        .await
        .expect("agent")
}

fn audit() -> NewAuditEvent {
    NewAuditEvent {
        actor: "bench".into(),
        action: "bench".into(),
        resource: String::new(),
        decision: None,
        detail: serde_json::json!({}),
    }
}

fn percentile(mut xs: Vec<f64>, p: usize) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[(xs.len() * p / 100).min(xs.len() - 1)]
}

/// Submits `input` to `session` as a new run; its id.
async fn submit(rt: &Runtime, tenant: &TenantId, session: &SessionId, input: String) -> RunId {
    match rt
        .submit(
            tenant,
            session,
            Submission {
                turn: Default::default(),
                notify: Default::default(),
                input,
                idempotency_key: None,
                if_busy: BusyPolicy::Queue,
                actor: Some("key:bench".into()),
                parent: None,
            },
        )
        .await
        .expect("submit")
    {
        CreatedRun::Created(run) => run.id,
        CreatedRun::Existing(run) => panic!("run {} existed", run.id),
    }
}

async fn run_once(
    rt: &Runtime,
    store: &DynStore,
    tenant: &TenantId,
    agent: &roster_core::agent::Agent,
) -> f64 {
    let session = store
        .create_session(tenant, &agent.id, agent.version)
        .await
        .expect("session");
    let started = Instant::now();
    let run_id = submit(rt, tenant, &session.id, "go".to_owned()).await;
    let done = rt
        .wait(tenant, &run_id, Duration::from_secs(60))
        .await
        .expect("wait");
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    started.elapsed().as_secs_f64() * 1e3
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
    let mut providers = ProviderRegistry::new();
    providers.insert(Arc::new(FleetModel));
    let mut tools = ToolRegistry::with_builtins();
    tools.register(Arc::new(EchoTool));
    let rt = Runtime::new(RuntimeOptions {
        store: store.clone(),
        router: Arc::new(Router::new(Arc::new(providers), RetryPolicy::default())),
        tools,
        memory: None,
        delegation: Default::default(),
    });
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "bench").await.expect("tenant");
    let key = store
        .create_key(
            &tenant,
            NewKey {
                id: KeyId::generate(),
                name: "bench".into(),
                kind: "service".into(),
                key_hash: format!("bench-{}", KeyId::generate()),
                scopes: None,
                user: None,
                act_for: None,
                expires_at: None,
            },
            audit(),
        )
        .await
        .expect("key")
        .id;

    // 1. A delegation hop against a direct run of the same shape.
    agent(&store, &tenant, "worker", config("worker", &[]), vec![]).await;
    let direct = agent(
        &store,
        &tenant,
        "direct",
        config("direct", &["echo"]),
        vec![],
    )
    .await;
    let coordinator = agent(
        &store,
        &tenant,
        "coordinator",
        config("coordinator", &["agent:worker"]),
        vec![],
    )
    .await;
    for _ in 0..10 {
        run_once(&rt, &store, &tenant, &direct).await;
        run_once(&rt, &store, &tenant, &coordinator).await;
    }
    let (mut plain, mut hop) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        plain.push(run_once(&rt, &store, &tenant, &direct).await);
        hop.push(run_once(&rt, &store, &tenant, &coordinator).await);
    }
    let (p50_plain, p50_hop) = (percentile(plain.clone(), 50), percentile(hop.clone(), 50));
    println!(
        "delegation: direct run (tool call + answer) p50 {p50_plain:.2} ms p99 {:.2} ms; run asking another agent p50 {p50_hop:.2} ms p99 {:.2} ms; one hop adds {:.2} ms ({:.2}x) over {RUNS} runs each",
        percentile(plain, 99),
        percentile(hop, 99),
        p50_hop - p50_plain,
        p50_hop / p50_plain
    );

    // 2. 1,000 schedules due at the same instant.
    let worker = store
        .get_agent(&tenant, &roster_store::AgentRef::Name("worker".into()))
        .await
        .expect("get")
        .expect("worker");
    let due = Utc::now() - chrono::Duration::seconds(1);
    for _ in 0..SCHEDULES {
        store
            .create_schedule(
                &tenant,
                NewSchedule {
                    notify: Default::default(),
                    agent_id: worker.id.clone(),
                    cron: Some("0 9 * * *".into()),
                    at: None,
                    timezone: "UTC".into(),
                    input: "morning".into(),
                    session_id: None,
                    catch_up: CatchUp::Once,
                    paused: false,
                    next_fire_at: Some(due),
                    created_by: format!("key:{key}"),
                    key_id: key.clone(),
                },
                audit(),
            )
            .await
            .expect("schedule");
    }
    let started = Instant::now();
    let fired = rt
        .fire_due(Utc::now(), Duration::from_secs(60))
        .await
        .expect("fire");
    let stored = started.elapsed();
    assert_eq!(fired, SCHEDULES);
    loop {
        let left = store.unfinished_runs().await.expect("runs").len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "schedules: {SCHEDULES} due at once: every run stored after {:.0} ms ({:.0} firings/s), every run finished after {:.0} ms",
        stored.as_secs_f64() * 1e3,
        SCHEDULES as f64 / stored.as_secs_f64(),
        started.elapsed().as_secs_f64() * 1e3
    );

    // 3. Twenty sessions appending to one shared block.
    let project = MemoryBlockSpec {
        label: "project".into(),
        value: String::new(),
        limit: Some(100_000),
        scope: BlockScope::Shared,
    };
    let writer = agent(
        &store,
        &tenant,
        "writer",
        config("writer", &["memory_append"]),
        vec![project],
    )
    .await;
    let mut sessions = Vec::new();
    for _ in 0..WRITERS {
        sessions.push(
            store
                .create_session(&tenant, &writer.id, writer.version)
                .await
                .expect("session")
                .id,
        );
    }
    let started = Instant::now();
    let mut runs = Vec::new();
    for i in 0..APPENDS_EACH {
        for (w, session) in sessions.iter().enumerate() {
            runs.push(submit(&rt, &tenant, session, format!("writer {w} note {i}")).await);
        }
    }
    for run in &runs {
        let done = rt
            .wait(&tenant, run, Duration::from_secs(120))
            .await
            .expect("wait");
        assert_eq!(done.status, RunStatus::Completed);
    }
    let took = started.elapsed().as_secs_f64();
    let block = store
        .memory_blocks_of(
            &tenant,
            &writer.id,
            &[roster_core::blocks::BlockOwner::Shared],
        )
        .await
        .expect("block");
    let lines = block[0].value.lines().count();
    assert_eq!(lines, WRITERS * APPENDS_EACH, "every append landed");
    println!(
        "shared block: {} appends from {WRITERS} sessions at once in {:.2} s: {:.0} appends/s (each a whole run: two model calls, the append committed with its result), none lost",
        lines,
        took,
        lines as f64 / took
    );

    // 4. A trigger delivery to its run's start.
    let trigger = store
        .create_trigger(
            &tenant,
            NewTrigger {
                id: TriggerId::generate(),
                agent_id: worker.id.clone(),
                template: "{{payload}}".into(),
                session_id: None,
                secret_sealed: "unused-here".into(),
                created_by: format!("key:{key}"),
                key_id: key.clone(),
            },
            audit(),
        )
        .await
        .expect("trigger");
    let target = HookTarget {
        tenant: tenant.clone(),
        trigger,
        secret_sealed: String::new(),
        key_id: key.clone(),
    };
    let mut latency = Vec::new();
    for i in 0..DELIVERIES {
        let started = Instant::now();
        let (run, _) = rt
            .deliver_hook(&target, &format!("d{i}"), format!("{{\"n\": {i}}}"))
            .await
            .expect("deliver");
        loop {
            let now = store
                .get_run(&tenant, &run.id)
                .await
                .expect("get")
                .expect("run");
            if now.started_at.is_some() {
                break;
            }
            tokio::task::yield_now().await;
        }
        latency.push(started.elapsed().as_secs_f64() * 1e3);
        rt.wait(&tenant, &run.id, Duration::from_secs(60))
            .await
            .expect("wait");
    }
    println!(
        "trigger: delivery to run start p50 {:.2} ms p99 {:.2} ms over {DELIVERIES} deliveries",
        percentile(latency.clone(), 50),
        percentile(latency, 99)
    );
    rt.shutdown().await;
}
