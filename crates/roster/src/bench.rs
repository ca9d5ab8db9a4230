//! `roster bench`: the runtime's own cost per turn, with an instant
//! in-process model and one external tool call per turn (two model steps and
//! one tool step, each durable before the next starts).
//!
//! Sessions are prefilled to the requested length through the store, then
//! each session runs its turns one after another while all sessions run
//! concurrently. Reported: turns/s across sessions and per-turn latency.

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use roster_core::agent::{AgentConfig, NewAgent};
use roster_core::item::ItemContent;
use roster_core::{SessionId, TenantId};
use roster_models::{ProviderRegistry, RetryPolicy, Router};
use roster_runtime::bench::{EchoTool, InstantModel};
use roster_runtime::tools::ToolRegistry;
use roster_runtime::{Runtime, RuntimeOptions, Submission};
use roster_store::{BusyPolicy, DynStore, JournalWrite, NewRun, RunTransition};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Concurrent sessions.
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Measured turns per session.
    #[arg(long, default_value_t = 200)]
    turns: usize,
    /// Items each session holds before the measured turns start.
    #[arg(long, default_value_t = 10)]
    history: usize,
    /// PostgreSQL URL; without it a fresh SQLite file in a temporary directory is used.
    #[arg(long, env = "ROSTER_BENCH_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Unmeasured turns per session first, to warm caches.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Long-term memory on, with this many records in the agent's
    /// namespace; each turn recalls from them (0: memory off).
    #[arg(long, default_value_t = 0)]
    memories: usize,
    /// Also print the latency percentiles of every block of this many turns
    /// (per session), to show whether cost grows with the session.
    #[arg(long, default_value_t = 0)]
    report_every: usize,
    /// Measure knowledge ingestion instead: this many MB of generated
    /// Markdown through parse, chunk, store and index.
    #[arg(long, default_value_t = 0)]
    ingest_mb: usize,
    /// A local all-MiniLM-L6-v2 directory: embed memories / chunks with it.
    #[arg(long)]
    embedder_dir: Option<std::path::PathBuf>,
}

/// The peer benchmark's user message, so item sizes match.
const USER_TEXT: &str =
    "What's the weather like in Paris today? Please check and summarise it briefly for me.";

pub async fn run(args: BenchArgs) -> Result<()> {
    anyhow::ensure!(
        args.sessions > 0 && args.turns > 0,
        "--sessions and --turns must be positive"
    );
    if args.ingest_mb > 0 {
        return crate::bench_memory::ingest(args.ingest_mb, args.embedder_dir.as_deref()).await;
    }
    let temp = tempdir()?;
    let url = match &args.database_url {
        Some(url) => roster_store_sql::postgres::create_test_database(url)
            .await
            .context("cannot create a benchmark database")?,
        None => format!("sqlite://{}", temp.join("bench.db").display()),
    };
    let store = roster_store_sql::open(&url)
        .await
        .context("cannot open the store")?;
    let mut registry = ProviderRegistry::new();
    registry.insert(Arc::new(InstantModel));
    let router = Arc::new(Router::new(Arc::new(registry), RetryPolicy::default()));
    let mut tools = ToolRegistry::with_builtins();
    tools.register(Arc::new(EchoTool));
    let memory = if args.memories > 0 {
        Some(crate::bench_memory::service(&store, &temp, args.embedder_dir.as_deref()).await?)
    } else {
        None
    };
    let runtime = Runtime::new(RuntimeOptions {
        store: store.clone(),
        router,
        tools,
        memory: memory.clone(),
        delegation: Default::default(),
    });

    let tenant = TenantId::from_stored("ten_bench".into());
    store.ensure_tenant(&tenant, "bench").await?;
    let config = AgentConfig {
        max_running: Default::default(),
        notify: Default::default(),
        description: Default::default(),
        if_busy: Default::default(),
        tool_choice: Default::default(),
        instructions: "You answer questions about the weather.".into(),
        model: "instant/m".into(),
        fallbacks: vec![],
        tools: vec!["echo".into()],
        max_steps: 4,
        context_tokens: roster_core::agent::DEFAULT_CONTEXT_TOKENS,
        memory: Default::default(),
        knowledge: vec![],
        knowledge_recall: 3,
        context: Default::default(),
        memory_blocks: vec![],
    };
    let agent = store
        .create_agent(
            &tenant,
            NewAgent {
                name: "bench".into(),
                config,
                memory_blocks: vec![],
            },
            "bench",
        )
        .await?;
    if let Some(memory) = &memory {
        crate::bench_memory::prefill_memories(memory, &tenant, "agents/bench", args.memories)
            .await?;
    }
    let mut sessions = Vec::with_capacity(args.sessions);
    for _ in 0..args.sessions {
        let session = store
            .create_session(&tenant, &agent.id, agent.version)
            .await?;
        prefill(&store, &tenant, &session.id, args.history).await?;
        sessions.push(session.id);
    }

    let mut tasks = Vec::new();
    for session in &sessions {
        let (runtime, tenant, session) = (runtime.clone(), tenant.clone(), session.clone());
        let warmup = args.warmup;
        tasks.push(tokio::spawn(async move {
            for _ in 0..warmup {
                turn(&runtime, &tenant, &session).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }

    let started = Instant::now();
    let mut tasks = Vec::new();
    for session in &sessions {
        let (runtime, tenant, session) = (runtime.clone(), tenant.clone(), session.clone());
        let turns = args.turns;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(turns);
            for _ in 0..turns {
                latencies.push(turn(&runtime, &tenant, &session).await?);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?;
    let mut blocks: Vec<Histogram<u64>> = Vec::new();
    for task in tasks {
        for (index, latency) in task.await??.into_iter().enumerate() {
            let micros = u64::try_from(latency.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            histogram.record(micros)?;
            if let Some(block) = index.checked_div(args.report_every) {
                while blocks.len() <= block {
                    blocks.push(
                        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).context("histogram")?,
                    );
                }
                blocks[block].record(micros)?;
            }
        }
    }
    for (block, h) in blocks.iter().enumerate() {
        println!(
            "{}",
            serde_json::json!({
                "turns": format!("{}-{}", block * args.report_every + 1, (block + 1) * args.report_every),
                "p50_ms": h.value_at_quantile(0.50) as f64 / 1000.0,
                "p99_ms": h.value_at_quantile(0.99) as f64 / 1000.0,
            })
        );
    }
    let elapsed = started.elapsed();
    let total = args.sessions * args.turns;
    let report = serde_json::json!({
        "backend": store.backend(),
        "sessions": args.sessions,
        "history_items": args.history,
        "memories": args.memories,
        "retrieval": memory.is_some(),
        "turns": total,
        "seconds": elapsed.as_secs_f64(),
        "turns_per_second": total as f64 / elapsed.as_secs_f64(),
        "p50_ms": histogram.value_at_quantile(0.50) as f64 / 1000.0,
        "p99_ms": histogram.value_at_quantile(0.99) as f64 / 1000.0,
        "max_ms": histogram.max() as f64 / 1000.0,
    });
    println!("{report}");
    if let Some(memory) = memory {
        memory.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&temp);
    Ok(())
}

/// One turn: submit the input, wait for the run to finish.
async fn turn(runtime: &Runtime, tenant: &TenantId, session: &SessionId) -> Result<Duration> {
    let started = Instant::now();
    let created = runtime
        .submit(
            tenant,
            session,
            Submission {
                turn: Default::default(),
                notify: Default::default(),
                input: USER_TEXT.into(),
                idempotency_key: None,
                if_busy: BusyPolicy::Queue,
                parent: None,
                actor: None,
            },
        )
        .await?;
    let run = runtime
        .wait(tenant, &created.run().id, Duration::from_secs(60))
        .await?;
    anyhow::ensure!(
        run.status == roster_core::run::RunStatus::Completed,
        "benchmark run ended {:?}: {:?}",
        run.status,
        run.error
    );
    Ok(started.elapsed())
}

/// Appends `items` items of a realistic turn shape through one finished run.
async fn prefill(
    store: &DynStore,
    tenant: &TenantId,
    session: &SessionId,
    items: usize,
) -> Result<()> {
    if items == 0 {
        return Ok(());
    }
    let run = store
        .create_run(
            tenant,
            NewRun {
                turn: Default::default(),
                notify: Default::default(),
                session_id: session.clone(),
                input: USER_TEXT.into(),
                idempotency_key: None,
                if_busy: BusyPolicy::Queue,
                actor: None,
                parent: None,
            },
        )
        .await?;
    let run_id = run.run().id.clone();
    anyhow::ensure!(
        run.run().status == roster_core::run::RunStatus::Running,
        "a new session's first run starts at once"
    );
    let mut remaining = items.saturating_sub(1);
    while remaining > 0 {
        let batch = remaining.min(500);
        let mut write = JournalWrite::new(run_id.clone(), session.clone());
        write.items = (0..batch)
            .map(|i| match i % 2 {
                0 => ItemContent::AssistantMessage {
                    text: "Earlier answer about the weather somewhere.".into(),
                    tool_calls: vec![],
                },
                _ => ItemContent::UserMessage {
                    text: USER_TEXT.into(),
                },
            })
            .collect();
        store.commit(tenant, write).await?;
        remaining -= batch;
    }
    let mut finish = JournalWrite::new(run_id, session.clone());
    // A session this long has folded its history into a summary (steady
    // state); only the recent part is left to the context.
    if items > usize::try_from(roster_runtime::MAX_CONTEXT_ITEMS).unwrap_or(usize::MAX) {
        let recent = i64::try_from(items).unwrap_or(i64::MAX) - 40;
        finish.summary = Some(roster_store::NewSummary {
            through_seq: recent,
            text: "The user keeps asking about the weather in various cities; answers were given."
                .into(),
            step: 0,
        });
    }
    finish.transition = Some(RunTransition::Finish {
        status: roster_core::run::RunStatus::Completed,
        output: None,
        error: None,
    });
    store.commit(tenant, finish).await?;
    Ok(())
}

fn tempdir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "roster-bench-{}",
        hex::encode(rand::random::<[u8; 6]>())
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
