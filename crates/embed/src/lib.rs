//! Text embedders behind one trait: an OpenAI-compatible `/v1/embeddings`
//! client ([`OpenAiEmbedder`]) and a BERT sentence encoder run in-process on
//! the CPU ([`LocalEmbedder`], e.g. all-MiniLM-L6-v2).
//!
//! This file owns the public surface; the pieces live in:
//! - `config`: [`EmbedderConfig`] and [`build`], the only way the rest of
//!   Roster should make an embedder;
//! - `openai/`: the HTTP client, its wire types and its retry policy;
//! - `local/`: loading a model directory and running it;
//! - `error`: [`EmbedError`] and its stable codes;
//! - `vector`: normalisation and similarity.
//!
//! Must never download anything (weights, tokenizers) at build or run time,
//! log a key or a text being embedded, or compare vectors of different ids.

mod config;
mod error;
mod local;
mod openai;
mod vector;

use std::sync::Arc;

pub use config::{build, EmbedderConfig};
pub use error::EmbedError;
pub use local::{LocalEmbedder, LocalOptions};
pub use openai::{OpenAiEmbedder, OpenAiOptions, RetryPolicy};
pub use vector::{cosine, l2_normalize};

/// Turns texts into vectors of one fixed vector space.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// Stable identity of the vector space, stored beside every vector: e.g.
    /// "local/all-MiniLM-L6-v2", "openai/text-embedding-3-small@256".
    /// Vectors from different ids are never compared.
    fn id(&self) -> &str;
    /// Length of every vector this embedder returns.
    fn dimensions(&self) -> usize;
    /// Largest batch one `embed` call should get.
    fn max_batch(&self) -> usize;
    /// One L2-normalised vector per input, in order. Empty input -> empty
    /// output.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// How the rest of Roster holds an embedder.
pub type DynEmbedder = Arc<dyn Embedder>;
