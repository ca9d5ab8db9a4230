//! [`LocalEmbedder`]: a BERT sentence encoder (e.g. all-MiniLM-L6-v2) run
//! in-process on the CPU with candle, from a model directory on disk.
//!
//! Owns scheduling: inference runs on tokio's blocking pool, one call at a
//! time per embedder, inside the embedder's own rayon pool of `threads`.
//! Must never run inference on an async worker thread, use a GPU, or fetch
//! a model: the directory must already hold it.

mod bert;
mod load;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use tokenizers::Tokenizer;

use candle_transformers::models::bert::BertModel;

use crate::error::EmbedError;
use crate::Embedder;

/// Where the model is and how to run it. [`LocalOptions::new`] gives
/// defaults.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// Directory holding config.json, tokenizer.json, model.safetensors.
    pub path: PathBuf,
    /// Texts per forward pass.
    pub max_batch: usize,
    /// CPU threads for inference; `None` uses every core.
    pub threads: Option<usize>,
    /// Tokens per text, special tokens included; longer texts are cut.
    /// Also capped by the directory's `max_seq_length` and the model's
    /// positions.
    pub max_tokens: usize,
}

impl LocalOptions {
    /// 32 texts per pass, all cores, 256 tokens.
    pub fn new(path: impl Into<PathBuf>) -> LocalOptions {
        LocalOptions {
            path: path.into(),
            max_batch: 32,
            threads: None,
            max_tokens: 256,
        }
    }
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    pad_id: u32,
    max_batch: usize,
    pool: rayon::ThreadPool,
}

/// A sentence encoder run on this machine's CPU. Deterministic: the same
/// texts give the same vectors, whatever the batching, up to float rounding.
pub struct LocalEmbedder {
    inner: Arc<Inner>,
    id: String,
    dimensions: usize,
    max_tokens: usize,
    /// One inference at a time: they would only compete for the same cores
    /// and each holds a batch's activations in memory.
    running: Arc<tokio::sync::Semaphore>,
}

impl fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("id", &self.id)
            .field("dimensions", &self.dimensions)
            .field("max_batch", &self.inner.max_batch)
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

impl LocalEmbedder {
    /// Reads and prepares the model. Blocking (reads ~90 MB and hashes it):
    /// call it from a blocking thread, as [`crate::build`] does.
    pub fn load(options: &LocalOptions) -> Result<LocalEmbedder, EmbedError> {
        let config = |m: &str| EmbedError::Config(m.to_owned());
        if options.max_batch == 0 || options.max_tokens < 2 || options.threads == Some(0) {
            return Err(config(
                "`max_batch` and `threads` must be greater than zero, `max_tokens` at least 2",
            ));
        }
        let loaded = load::load(&options.path, options.max_tokens)?;
        let threads = options.threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("roster-embed-{i}"))
            .build()
            .map_err(|e| EmbedError::Model(format!("cannot start inference threads: {e}")))?;
        tracing::info!(
            id = %loaded.id,
            dimensions = loaded.dimensions,
            threads,
            max_tokens = loaded.max_tokens,
            "local embedding model loaded"
        );
        Ok(LocalEmbedder {
            id: loaded.id,
            dimensions: loaded.dimensions,
            max_tokens: loaded.max_tokens,
            inner: Arc::new(Inner {
                model: loaded.model,
                tokenizer: loaded.tokenizer,
                pad_id: loaded.pad_id,
                max_batch: options.max_batch,
                pool,
            }),
            running: Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    /// Tokens per text after truncation, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Embeds on the calling thread. Blocking and CPU-heavy: async code
    /// calls [`Embedder::embed`] instead.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.inner.pool.install(|| self.inner.embed(texts))
    }
}

impl Inner {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| EmbedError::Model(format!("tokenizer: {e}")))?;
        // Batching texts of similar length wastes less on padding; the
        // order is restored below.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(self.max_batch) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| encodings[i].get_ids()).collect();
            let pooled = bert::embed_tokens(&self.model, &batch, self.pad_id)?;
            for (&i, v) in chunk.iter().zip(pooled) {
                vectors[i] = v;
            }
        }
        Ok(vectors)
    }
}

#[async_trait::async_trait]
impl Embedder for LocalEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn max_batch(&self) -> usize {
        self.inner.max_batch
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let permit = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| EmbedError::Model("embedder is shut down".to_owned()))?;
        let inner = Arc::clone(&self.inner);
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            inner.pool.install(|| inner.embed(&texts))
        })
        .await
        .map_err(|e| EmbedError::Model(format!("inference task failed: {e}")))?
    }
}
