//! Prints the local embedder's vector of each argument as one JSON array a
//! line, to compare by hand with another implementation (e.g. Python's
//! sentence-transformers) on the same model directory.
//!
//! `cargo run --release -p roster-embed --example embed_text -- <model dir>
//! "first text" "second text"`. Must never be part of the test suite.

use roster_embed::{LocalEmbedder, LocalOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: embed_text <model dir> <text>...")?;
    let texts: Vec<String> = args.collect();
    let embedder = LocalEmbedder::load(&LocalOptions::new(dir))?;
    for v in embedder.embed_blocking(&texts)? {
        println!("{}", serde_json::to_string(&v)?);
    }
    Ok(())
}
