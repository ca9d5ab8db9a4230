//! What recall costs a turn: `MemoryService::search` (index search plus
//! hydration from the store) over N records in one namespace, with the
//! benchmark's user message as the query, timed over many calls.
//!
//! `cargo run --release -p roster-memory --example recall_cost -- 10000`

use roster_core::{MemoryId, TenantId};
use roster_memory::{MemoryOptions, MemoryService, SearchRequest};
use roster_store::{MemoryOp, MemoryWrite};
use std::time::Instant;

const WORDS: &[&str] = &[
    "weather",
    "forecast",
    "rain",
    "sunny",
    "Paris",
    "Berlin",
    "Lyon",
    "umbrella",
    "train",
    "ticket",
    "budget",
    "invoice",
    "meeting",
    "Monday",
    "project",
    "deadline",
    "report",
    "customer",
    "order",
    "delivery",
    "warehouse",
    "policy",
    "leave",
    "holiday",
    "office",
    "printer",
    "password",
    "laptop",
    "coffee",
    "tea",
    "lunch",
    "team",
    "manager",
    "review",
];

#[tokio::main]
async fn main() {
    let records: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("dir");
    let store = roster_store_sql::open(&format!("sqlite://{}", dir.path().join("db").display()))
        .await
        .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let memory = MemoryService::open(MemoryOptions {
        store: store.clone(),
        index_dir: dir.path().join("index"),
        embedder: None,
    })
    .await
    .expect("memory");
    memory.start();
    let mut state = 1u64;
    for start in (0..records).step_by(1_000) {
        let batch: Vec<MemoryWrite> = (start..(start + 1_000).min(records))
            .map(|i| {
                let words: Vec<&str> = (0..12)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        WORDS[(state >> 33) as usize % WORDS.len()]
                    })
                    .collect();
                MemoryWrite {
                    op: MemoryOp::Create {
                        id: MemoryId::generate(),
                        namespace: "agents/bench".into(),
                        kind: "fact".into(),
                        key: None,
                        content: format!("Fact {i}: {}.", words.join(" ")),
                        metadata: serde_json::json!({}),
                        source: None,
                        expires_at: None,
                        embedding: None,
                    },
                    principal: "system:bench".into(),
                    run_id: None,
                }
            })
            .collect();
        let written = store.write_memories(&tenant, batch).await.expect("write");
        memory.wait_indexed(written.log_id).await;
    }
    let request = SearchRequest {
        namespaces: vec!["agents/bench".into()],
        query:
            "What's the weather like in Paris today? Please check and summarise it briefly for me."
                .into(),
        limit: 5,
    };
    for _ in 0..50 {
        memory.search(&tenant, &request).await.expect("search");
    }
    let mut times: Vec<f64> = Vec::new();
    for _ in 0..1_000 {
        let started = Instant::now();
        let found = memory.search(&tenant, &request).await.expect("search");
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(found.data.len(), 5);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "records": records,
            "searches": times.len(),
            "p50_ms": times[times.len() / 2],
            "p99_ms": times[times.len() * 99 / 100],
        })
    );
    memory.shutdown().await;
}
