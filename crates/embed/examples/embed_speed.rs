//! Measures the local embedder on this machine: load time, latency of one
//! short query, and throughput on batches of sentence-length texts.
//!
//! Run in release: `cargo run --release -p roster-embed --example
//! embed_speed -- <model dir>` (or set `ROSTER_TEST_MINILM_DIR`). Must never
//! be part of the test suite: its numbers depend on the machine.

use std::time::{Duration, Instant};

use roster_embed::{Embedder, LocalEmbedder, LocalOptions};

const WORDS: &[&str] = &[
    "agent",
    "memory",
    "session",
    "tool",
    "reply",
    "model",
    "journal",
    "commit",
    "queue",
    "tenant",
    "vector",
    "search",
    "document",
    "paragraph",
    "weather",
    "invoice",
    "customer",
    "refund",
    "deploy",
    "cluster",
    "latency",
    "budget",
    "meeting",
    "schedule",
    "report",
];

/// A deterministic sentence of `len` words, different for every `seed`.
fn sentence(seed: usize, len: usize) -> String {
    let mut state = seed as u64 * 6364136223846793005 + 1442695040888963407;
    let mut words = Vec::with_capacity(len);
    for _ in 0..len {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        words.push(WORDS[(state >> 33) as usize % WORDS.len()]);
    }
    words.join(" ")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("ROSTER_TEST_MINILM_DIR").ok())
        .ok_or("pass the model directory, or set ROSTER_TEST_MINILM_DIR")?;
    let started = Instant::now();
    let options = LocalOptions::new(dir);
    let embedder = tokio::task::spawn_blocking(move || LocalEmbedder::load(&options)).await??;
    println!(
        "loaded {} ({} dims) in {:.2?}",
        embedder.id(),
        embedder.dimensions(),
        started.elapsed()
    );

    let query = vec!["how do I reset my password?".to_owned()];
    embedder.embed(&query).await?; // warm-up: first-touch allocations
    let mut single = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        embedder.embed(&query).await?;
        single.push(t.elapsed());
    }
    println!("single short query: median {:.2?} over 50", median(single));

    for (count, words) in [(256, 12), (128, 40), (32, 180)] {
        let texts: Vec<String> = (0..count).map(|i| sentence(i, words)).collect();
        let t = Instant::now();
        let mut done = 0;
        for batch in texts.chunks(embedder.max_batch()) {
            done += embedder.embed(batch).await?.len();
        }
        let elapsed = t.elapsed();
        println!(
            "{done} texts of {words} words in batches of {}: {:.2?}, {:.1} texts/s",
            embedder.max_batch(),
            elapsed,
            done as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}
