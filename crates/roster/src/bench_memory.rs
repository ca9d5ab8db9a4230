//! The memory side of `roster bench`: a memory service on the benchmark's
//! store (for turns with retrieval on), prefilled records, and the
//! knowledge ingestion benchmark (`--ingest-mb`).

use anyhow::{Context, Result};
use roster_core::knowledge::KnowledgeSource;
use roster_core::{MemoryId, TenantId};
use roster_memory::{ChunkOptions, MemoryOptions, MemoryService};
use roster_store::{DynStore, MemoryOp, MemoryWrite};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Words the generated records and documents are made of.
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
    "contract",
    "supplier",
    "price",
    "discount",
    "quarter",
    "revenue",
];

pub async fn service(
    store: &DynStore,
    dir: &Path,
    embedder_dir: Option<&Path>,
) -> Result<Arc<MemoryService>> {
    let embedder = match embedder_dir {
        Some(path) => Some(
            roster_embed::build(
                &roster_embed::EmbedderConfig::Local {
                    path: path.to_path_buf(),
                    max_batch: None,
                    threads: None,
                },
                &|_| None,
            )
            .await
            .context("cannot load the embedder")?,
        ),
        None => None,
    };
    let memory = MemoryService::open(MemoryOptions {
        store: store.clone(),
        index_dir: dir.join("index"),
        embedder,
    })
    .await
    .context("cannot open the search index")?;
    memory.start();
    Ok(memory)
}

/// A sentence of generated words, different for each `seed`.
fn sentence(seed: usize, words: usize) -> String {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..words)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            WORDS[(state >> 33) % WORDS.len()]
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub async fn prefill_memories(
    memory: &MemoryService,
    tenant: &TenantId,
    namespace: &str,
    count: usize,
) -> Result<()> {
    let mut done = 0;
    while done < count {
        let batch: Vec<MemoryWrite> = (done..count.min(done + 1_000))
            .map(|i| MemoryWrite {
                op: MemoryOp::Create {
                    id: MemoryId::generate(),
                    namespace: namespace.to_owned(),
                    kind: "fact".into(),
                    key: None,
                    content: format!("Fact {i}: {}.", sentence(i, 12)),
                    metadata: serde_json::json!({}),
                    source: None,
                    expires_at: None,
                    embedding: None,
                },
                principal: "system:bench".into(),
                run_id: None,
            })
            .collect();
        done += batch.len();
        let written = memory.store().write_memories(tenant, batch).await?;
        memory.wait_indexed(written.log_id).await;
    }
    // With an embedder, wait for the backfill to embed them all.
    if memory.embedder_id().is_some() {
        loop {
            let status = memory.status().await?;
            if status.vectors as usize >= count && status.applied == status.head {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Ingests `mb` MB of generated Markdown (files of about 200 kB with
/// headings and paragraphs) and prints the throughput as one JSON line.
pub async fn ingest(mb: usize, embedder_dir: Option<&Path>) -> Result<()> {
    let temp = std::env::temp_dir().join(format!("roster-ingest-bench-{}", std::process::id()));
    std::fs::create_dir_all(&temp)?;
    let store = roster_store_sql::open(&format!("sqlite://{}", temp.join("bench.db").display()))
        .await
        .context("cannot open the store")?;
    let memory = service(&store, &temp, embedder_dir).await?;
    let tenant = TenantId::from_stored("ten_bench".into());
    store.ensure_tenant(&tenant, "bench").await?;
    let source: KnowledgeSource = store.create_source(&tenant, "bench", "").await?;
    let target = mb * 1_000_000;
    let mut documents = Vec::new();
    let mut total = 0;
    let mut seed = 0;
    while total < target {
        let mut doc = String::new();
        let mut section = 0;
        while doc.len() < 200_000 {
            doc.push_str(&format!("\n## Section {section}\n\n"));
            for _ in 0..6 {
                doc.push_str(&sentence(seed, 40));
                doc.push_str(".\n\n");
                seed += 1;
            }
            section += 1;
        }
        total += doc.len();
        documents.push(doc);
    }
    // Four uploads at a time, as a client pushing a folder would: the
    // index then takes several documents per commit.
    let started = Instant::now();
    let mut chunks = 0;
    let mut numbered: Vec<(usize, String)> = documents.into_iter().enumerate().collect();
    while !numbered.is_empty() {
        let batch: Vec<(usize, String)> = numbered.drain(..numbered.len().min(4)).collect();
        let uploads = batch.into_iter().map(|(i, doc)| {
            let (memory, tenant, source) = (memory.clone(), tenant.clone(), source.clone());
            async move {
                memory
                    .ingest(
                        &tenant,
                        &source,
                        &format!("docs/{i}.md"),
                        Some("text/markdown"),
                        doc.into_bytes(),
                        ChunkOptions::default(),
                    )
                    .await
            }
        });
        for outcome in futures::future::join_all(uploads).await {
            let outcome = outcome.map_err(|e| anyhow::anyhow!("ingest failed: {e}"))?;
            chunks += outcome.document.chunks;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "ingested_mb": total as f64 / 1e6,
            "chunks": chunks,
            "seconds": elapsed,
            "mb_per_second": total as f64 / 1e6 / elapsed,
            "embedder": memory.embedder_id(),
        })
    );
    memory.shutdown().await;
    let _ = std::fs::remove_dir_all(&temp);
    Ok(())
}
