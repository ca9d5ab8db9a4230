//! What limits on runs at once and notifications add to a run, what a
//! limit costs a burst of runs, and how fast the sender drains the outbox,
//! with an instant in-process model on the embedded SQLite store (every
//! commit fsynced), all in one command so the numbers share one machine
//! state:
//!
//! - one-step runs of an agent with no limit in force, of one whose tenant
//!   has limits (so each start reads the occupancy and the queue), and of
//!   one that names a webhook (so each end writes a notification),
//!   interleaved;
//! - 400 runs in 40 sessions submitted at once under a tenant limit of 4
//!   against the same burst with no limit;
//! - the notifications those runs left, sent to a receiver on loopback.
//!
//! `cargo run --release -p roster-runtime --example limits_bench`

use roster_core::agent::{Agent, AgentConfig, NewAgent};
use roster_core::limits::RunLimits;
use roster_core::run::RunStatus;
use roster_core::{RunId, TenantId, WebhookId};
use roster_models::{ProviderRegistry, RetryPolicy, Router};
use roster_runtime::bench::InstantModel;
use roster_runtime::tools::ToolRegistry;
use roster_runtime::{Runtime, RuntimeOptions, Submission};
use roster_secrets::{Secret, SecretBox};
use roster_store::notifications::NewWebhook;
use roster_store::{BusyPolicy, CreatedRun, DynStore, NewAuditEvent};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 300;
const BURST_SESSIONS: usize = 40;
const BURST_EACH: usize = 10;

fn audit() -> NewAuditEvent {
    NewAuditEvent {
        actor: "bench".into(),
        action: "bench".into(),
        resource: String::new(),
        decision: None,
        detail: serde_json::json!({}),
    }
}

async fn tenant(store: &DynStore, limits: Option<RunLimits>) -> TenantId {
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "bench").await.expect("tenant");
    if let Some(limits) = limits {
        store
            .set_tenant_limits(&tenant, limits, audit())
            .await
            .expect("limits");
    }
    tenant
}

async fn agent(store: &DynStore, tenant: &TenantId, name: &str, notify: Vec<String>) -> Agent {
    let mut config: AgentConfig = serde_json::from_value(serde_json::json!({
        "instructions": "answer", "model": "instant/m",
    }))
    .expect("config");
    config.notify = notify;
    store
        .create_agent(
            tenant,
            NewAgent {
                name: name.into(),
                config,
                memory_blocks: vec![],
            },
            "bench",
        )
        .await
        .expect("agent")
}

async fn submit(rt: &Runtime, tenant: &TenantId, session: &roster_core::SessionId) -> RunId {
    let submission = Submission {
        turn: Default::default(),
        input: "go".into(),
        idempotency_key: None,
        if_busy: BusyPolicy::Queue,
        actor: Some("key:bench".into()),
        parent: None,
        notify: Vec::new(),
    };
    match rt
        .submit(tenant, session, submission)
        .await
        .expect("submit")
    {
        CreatedRun::Created(run) | CreatedRun::Existing(run) => run.id,
    }
}

/// Milliseconds from submitting to a finished run, in a new session.
async fn run_once(rt: &Runtime, store: &DynStore, tenant: &TenantId, agent: &Agent) -> f64 {
    let session = store
        .create_session(tenant, &agent.id, agent.version)
        .await
        .expect("session");
    let started = Instant::now();
    let run = submit(rt, tenant, &session.id).await;
    let done = rt
        .wait(tenant, &run, Duration::from_secs(60))
        .await
        .expect("wait");
    assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    started.elapsed().as_secs_f64() * 1e3
}

/// Milliseconds until every run of a burst has finished.
async fn burst(rt: &Runtime, store: &DynStore, tenant: &TenantId, agent: &Agent) -> f64 {
    let mut sessions = Vec::new();
    for _ in 0..BURST_SESSIONS {
        sessions.push(
            store
                .create_session(tenant, &agent.id, agent.version)
                .await
                .expect("session")
                .id,
        );
    }
    let started = Instant::now();
    let mut runs = Vec::new();
    for _ in 0..BURST_EACH {
        for session in &sessions {
            runs.push(submit(rt, tenant, session).await);
        }
    }
    for run in &runs {
        let done = rt
            .wait(tenant, run, Duration::from_secs(300))
            .await
            .expect("wait");
        assert_eq!(done.status, RunStatus::Completed, "{done:?}");
    }
    started.elapsed().as_secs_f64() * 1e3
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
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
    providers.insert(Arc::new(InstantModel));
    let rt = Runtime::new(RuntimeOptions {
        store: store.clone(),
        router: Arc::new(Router::new(Arc::new(providers), RetryPolicy::default())),
        tools: ToolRegistry::with_builtins(),
        memory: None,
        delegation: Default::default(),
    });
    rt.start_queue_sweep(Duration::from_secs(1));

    // A receiver on loopback for the notifications.
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");

    // 1. One-step runs: no limit, limits in force, a webhook named.
    let open = tenant(&store, None).await;
    let plain = agent(&store, &open, "plain", vec![]).await;
    let hook = WebhookId::generate();
    store
        .create_webhook(
            &open,
            NewWebhook {
                id: hook.clone(),
                url: format!("http://{address}/hook"),
                description: String::new(),
                secret_sealed: secrets.seal(
                    &Secret::new("whsec_bench"),
                    &roster_notify::seal_context(&hook),
                ),
                created_by: "bench".into(),
            },
            audit(),
        )
        .await
        .expect("webhook");
    let notified = agent(&store, &open, "notified", vec![hook.to_string()]).await;
    let generous = RunLimits {
        runs: Some(10_000),
        runs_per_agent: Some(10_000),
    };
    let bounded = tenant(&store, Some(generous)).await;
    let limited = agent(&store, &bounded, "limited", vec![]).await;
    for _ in 0..10 {
        run_once(&rt, &store, &open, &plain).await;
        run_once(&rt, &store, &bounded, &limited).await;
        run_once(&rt, &store, &open, &notified).await;
    }
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        a.push(run_once(&rt, &store, &open, &plain).await);
        b.push(run_once(&rt, &store, &bounded, &limited).await);
        c.push(run_once(&rt, &store, &open, &notified).await);
    }
    let (a, b, c) = (median(a), median(b), median(c));
    println!(
        "one-step run p50: no limit {a:.2} ms, limits in force {b:.2} ms ({:.2}x), a webhook named {c:.2} ms ({:.2}x), over {RUNS} runs each",
        b / a,
        c / a
    );

    // 2. A burst under a limit of 4 against the same burst with none.
    let total = BURST_SESSIONS * BURST_EACH;
    let free = tenant(&store, None).await;
    let free_agent = agent(&store, &free, "burst", vec![]).await;
    let four = tenant(
        &store,
        Some(RunLimits {
            runs: Some(4),
            runs_per_agent: None,
        }),
    )
    .await;
    let four_agent = agent(&store, &four, "burst", vec![]).await;
    let unlimited = burst(&rt, &store, &free, &free_agent).await;
    let held = burst(&rt, &store, &four, &four_agent).await;
    println!(
        "burst of {total} runs in {BURST_SESSIONS} sessions: no limit {unlimited:.0} ms, a limit of 4 {held:.0} ms ({:.2}x)",
        held / unlimited
    );

    // 3. The outbox, drained to the receiver.
    let allow = [address.clone()];
    let sender = roster_notify::Sender::new(
        store.clone(),
        secrets,
        Arc::new(roster_egress::EgressPolicy::new(&allow).expect("policy")),
        roster_notify::NotifyOptions::default(),
        rt.outbox_wakeup(),
    );
    let started = Instant::now();
    let mut sent = 0;
    loop {
        let n = sender.drain().await.expect("drain");
        if n == 0 {
            break;
        }
        sent += n;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "sender: {sent} notifications signed, sent and recorded in {:.0} ms ({:.0}/s, 16 at once)",
        secs * 1e3,
        sent as f64 / secs
    );
    rt.shutdown().await;
}
