//! Hybrid search cost with vectors searched by the local index or by the
//! database (pgvector), over the same generated records, and the recall@10
//! of the vector side against an exact scan.
//!
//! `cargo run --release -p roster-memory --example vector_search_cost -- \
//!     RECORDS [DATABASE_URL]` (default: a temporary SQLite file). A
//! PostgreSQL URL names a server; the example makes a fresh database on it.
//!
//! The vectors come from a bag-of-words embedder defined here (each of 2,000
//! words is a fixed random direction): it costs microseconds, so the numbers
//! are the search's, and nearby texts get nearby vectors as with a model.

use roster_core::{MemoryId, TenantId};
use roster_embed::{EmbedError, Embedder};
use roster_memory::{MemoryOptions, MemoryService, SearchRequest};
use roster_store::{Embedding, MemoryOp, MemoryWrite, NearestQuery, RowKind};
use std::sync::Arc;
use std::time::Instant;

const DIMS: usize = 384;
const VOCABULARY: u64 = 2_000;
const NAMESPACES: usize = 10;

struct BagOfWords;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn word_vector(word: &str, out: &mut [f32]) {
    let seed = word.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    for (i, x) in out.iter_mut().enumerate() {
        let r = mix(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        *x += (r >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
    }
}

#[async_trait::async_trait]
impl Embedder for BagOfWords {
    fn id(&self) -> &str {
        "bench/bag-of-words"
    }
    fn dimensions(&self) -> usize {
        DIMS
    }
    fn max_batch(&self) -> usize {
        256
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| embed_text(t)).collect())
    }
}

fn embed_text(text: &str) -> Vec<f32> {
    let mut v = vec![0.0; DIMS];
    for word in text.split_whitespace() {
        word_vector(word, &mut v);
    }
    roster_embed::l2_normalize(&mut v);
    v
}

fn sentence(state: &mut u64, words: usize) -> String {
    (0..words)
        .map(|_| {
            *state = mix(state.wrapping_add(1));
            // Zipf-like: low word numbers are common.
            let r = (*state >> 11) as f64 / (1u64 << 53) as f64;
            format!("w{}", (VOCABULARY as f64).powf(r) as u64)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let records: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("dir");
    let url = match std::env::args().nth(2) {
        Some(server) if server.starts_with("postgres") => {
            roster_store_sql::postgres::create_test_database(&server)
                .await
                .expect("database")
        }
        Some(other) => other,
        None => format!("sqlite://{}", dir.path().join("db").display()),
    };
    let store = roster_store_sql::open(&url).await.expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let embedder: roster_embed::DynEmbedder = Arc::new(BagOfWords);
    let memory = MemoryService::open(MemoryOptions {
        store: store.clone(),
        index_dir: dir.path().join("index"),
        embedder: Some(embedder.clone()),
    })
    .await
    .expect("memory");
    memory.start();

    let mut state = 7u64;
    let mut vectors: Vec<(String, usize, Vec<f32>)> = Vec::with_capacity(records);
    let load = Instant::now();
    for start in (0..records).step_by(1_000) {
        let batch: Vec<MemoryWrite> = (start..(start + 1_000).min(records))
            .map(|i| {
                let content = sentence(&mut state, 12);
                let vector = embed_text(&content);
                let id = MemoryId::generate();
                vectors.push((id.to_string(), i % NAMESPACES, vector.clone()));
                MemoryWrite {
                    op: MemoryOp::Create {
                        id,
                        namespace: format!("ns{}", i % NAMESPACES),
                        kind: "fact".into(),
                        key: None,
                        content,
                        metadata: serde_json::json!({}),
                        source: None,
                        expires_at: None,
                        embedding: Some(Embedding {
                            model: embedder.id().to_owned(),
                            vector,
                        }),
                    },
                    principal: "system:bench".into(),
                    run_id: None,
                }
            })
            .collect();
        let written = store.write_memories(&tenant, batch).await.expect("write");
        memory.wait_indexed(written.log_id).await;
    }
    let load_s = load.elapsed().as_secs_f64();
    if url.starts_with("postgres") {
        // What autovacuum does within a minute of a bulk load; without
        // statistics the planner takes the tenant's rows for a handful.
        let pool = sqlx::PgPool::connect(&url).await.expect("pool");
        sqlx::query("ANALYZE memories")
            .execute(&pool)
            .await
            .expect("analyze");
        pool.close().await;
    }
    let status = memory.status().await.expect("status");

    // Queries over three of the ten namespaces, as an agent reading its own,
    // its user's and a shared namespace would.
    let namespaces: Vec<String> = (0..3).map(|n| format!("ns{n}")).collect();
    let queries: Vec<String> = (0..200).map(|_| sentence(&mut state, 8)).collect();
    for query in queries.iter().take(50) {
        let request = SearchRequest {
            namespaces: namespaces.clone(),
            query: query.clone(),
            limit: 5,
        };
        memory.search(&tenant, &request).await.expect("search");
    }
    let mut times = Vec::new();
    for round in 0..5 {
        for query in &queries {
            let request = SearchRequest {
                namespaces: namespaces.clone(),
                query: query.clone(),
                limit: 5,
            };
            let started = Instant::now();
            let found = memory.search(&tenant, &request).await.expect("search");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(!found.data.is_empty() || round > 0);
        }
    }
    times.sort_by(f64::total_cmp);

    // Recall@10 of the database's nearest rows against an exact scan (only
    // where the database searches vectors itself).
    let recall = if store.native_vectors().is_some() {
        let mut found = 0usize;
        let mut wanted = 0usize;
        for query in queries.iter().take(100) {
            let q = embed_text(query);
            let mut exact: Vec<(f32, &str)> = vectors
                .iter()
                .filter(|(_, ns, _)| *ns < 3)
                .map(|(id, _, v)| (roster_embed::cosine(&q, v), id.as_str()))
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            let truth: std::collections::HashSet<&str> =
                exact.iter().take(10).map(|(_, id)| *id).collect();
            let got = store
                .nearest(&NearestQuery {
                    kind: RowKind::Memory,
                    tenant: &tenant,
                    scopes: &namespaces,
                    model: embedder.id(),
                    vector: &q,
                    limit: 10,
                })
                .await
                .expect("nearest");
            wanted += truth.len();
            found += got
                .iter()
                .filter(|(id, _)| truth.contains(id.as_str()))
                .count();
        }
        Some(found as f64 / wanted.max(1) as f64)
    } else {
        None
    };
    println!(
        "{}",
        serde_json::json!({
            "records": records,
            "backend": store.backend(),
            "vector_search": status.vector_search,
            "load_s": (load_s * 10.0).round() / 10.0,
            "searches": times.len(),
            "p50_ms": percentile(&times, 50),
            "p99_ms": percentile(&times, 99),
            "vector_recall_at_10": recall,
        })
    );
    memory.shutdown().await;
}
