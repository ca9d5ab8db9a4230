//! The index's public data types: what goes in (`Doc`, `Change`), what is
//! asked (`Query`), what comes out (`Hit`, `IndexStats`) and how it is tuned
//! (`IndexOptions`).
//!
//! Owns: plain data and defaults only. Must never: do I/O or hold locks — the
//! parts (`text`, `vector`) and `SearchIndex` give these types behaviour.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One searchable record. The index stores neither `text` nor `vector` for
/// retrieval: the caller hydrates hits from its own database by `key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    /// Unique across the whole index (all tenants), e.g. `m:mem_0193…`.
    pub key: String,
    /// The tenant that owns the record; every search is confined to one tenant.
    pub tenant: String,
    /// Partition inside the tenant, e.g. `ns:agents/helper`, `src:handbook`.
    pub scope: String,
    /// The text to index for BM25.
    pub text: String,
    /// L2-normalised embedding; `None` = full-text only.
    pub vector: Option<Vec<f32>>,
}

/// One entry of the ordered change log that feeds the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// Insert or replace the record with this key (in both parts).
    Upsert(Doc),
    /// Remove the record with this key from both parts (absent keys are fine).
    Delete {
        /// The key to remove.
        key: String,
    },
}

impl Change {
    /// The key this change is about.
    pub fn key(&self) -> &str {
        match self {
            Change::Upsert(doc) => &doc.key,
            Change::Delete { key } => key,
        }
    }
}

/// A search request. Tenant and scopes are mandatory filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// Only this tenant's records can match.
    pub tenant: String,
    /// Non-empty; a hit must be in one of these scopes of `tenant`.
    pub scopes: Vec<String>,
    /// Free user text; any content is accepted (no query syntax).
    pub text: String,
    /// Query embedding (same size as the index's); `None` = text only.
    pub vector: Option<Vec<f32>>,
    /// How many hits to return (at most `MAX_RESULTS`).
    pub limit: usize,
    /// How many candidates each side fetches before fusion (raised to `limit`
    /// when smaller, at most `MAX_RESULTS`); see [`Query::default_candidates`].
    pub candidates: usize,
}

impl Query {
    /// The usual candidate depth per side for a given limit: `max(limit*4, 40)`.
    pub fn default_candidates(limit: usize) -> usize {
        limit.saturating_mul(4).max(40)
    }

    /// A query with `candidates` set to [`Query::default_candidates`].
    pub fn new(
        tenant: impl Into<String>,
        scopes: Vec<String>,
        text: impl Into<String>,
        vector: Option<Vec<f32>>,
        limit: usize,
    ) -> Self {
        Query {
            tenant: tenant.into(),
            scopes,
            text: text.into(),
            vector,
            limit,
            candidates: Self::default_candidates(limit),
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The record's key.
    pub key: String,
    /// BM25 for `text_search`, cosine similarity for the vector searches,
    /// reciprocal-rank-fusion score for `search`. Higher is better.
    pub score: f32,
    /// 1-based rank in the full-text list, if the record was found there.
    pub text_rank: Option<u32>,
    /// 1-based rank in the vector list, if the record was found there.
    pub vector_rank: Option<u32>,
    /// The record's scope.
    pub scope: String,
}

/// Counters and watermarks, cheap to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexStats {
    /// Live documents in the full-text part.
    pub docs: u64,
    /// Live vectors in the vector part (0 without one).
    pub vectors: u64,
    /// (tenant, scope) partitions known to the vector part.
    pub vector_partitions: u64,
    /// Log position of the last full-text commit (durable).
    pub text_watermark: u64,
    /// Log position of the last vector snapshot (durable); `None` without a vector part.
    pub vector_watermark: Option<u64>,
    /// Log position the in-memory vector part has applied (ahead of the
    /// snapshot until the next `persist`); `None` without a vector part.
    pub vector_applied_watermark: Option<u64>,
    /// The embedder's vector size; `None` = no vector part.
    pub dimensions: Option<usize>,
    /// How the ANN graph stores vectors.
    pub quantization: Quantization,
    /// Bytes held by the ANN graph (its vectors and links).
    pub ann_memory_bytes: u64,
    /// Bytes held by the per-partition f32 vector store (exact scans, re-ranking).
    pub exact_store_bytes: u64,
}

/// How the ANN graph stores its copy of each vector. The exact f32 vectors
/// are always kept beside it (for small-partition scans and re-ranking), so
/// a smaller graph representation costs little recall.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quantization {
    /// 4 bytes per dimension.
    F32,
    /// 2 bytes per dimension.
    F16,
    /// 1 byte per dimension.
    I8,
}

impl Quantization {
    /// Stable name (used in snapshots and benchmarks).
    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::F32 => "f32",
            Quantization::F16 => "f16",
            Quantization::I8 => "i8",
        }
    }

    /// Parses [`Quantization::as_str`] output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "f32" => Some(Quantization::F32),
            "f16" => Some(Quantization::F16),
            "i8" => Some(Quantization::I8),
            _ => None,
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            Quantization::F32 => 1,
            Quantization::F16 => 2,
            Quantization::I8 => 3,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Quantization::F32),
            2 => Some(Quantization::F16),
            3 => Some(Quantization::I8),
            _ => None,
        }
    }
}

/// How a vector search finds its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VectorStrategy {
    /// Exact scan when the allowed partitions are small, filtered ANN otherwise.
    Auto,
    /// Always scan every allowed vector (exact).
    Exact,
    /// Always use the ANN graph with a partition predicate.
    Ann,
}

/// Tuning knobs. The defaults are the measured choices (see the crate docs).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexOptions {
    /// Representation of vectors inside the ANN graph.
    pub quantization: Quantization,
    /// HNSW links per node (M).
    pub connectivity: usize,
    /// Candidate list size while inserting (efConstruction).
    pub expansion_add: usize,
    /// Candidate list size (ef) of a graph search whose filter lets every
    /// vector through. A filter that lets a fraction `f` through gets
    /// `max(filtered_expansion_search, f * expansion_search)`: the filtered
    /// walk already visits about `1/f` times more nodes to fill its list.
    pub expansion_search: usize,
    /// Floor of the candidate list size for filtered graph searches.
    pub filtered_expansion_search: usize,
    /// Scan exactly when the allowed partitions hold at most this many vectors…
    pub exact_max_vectors: usize,
    /// …or when `allowed² <= exact_cost_ratio * total`. A scan costs
    /// `allowed * c_scan`; a filtered graph search costs about
    /// `c_graph * total / allowed` (the walk must visit `1/selectivity` times
    /// more nodes to fill its list), so the scan wins below
    /// `allowed = sqrt(total * c_graph / c_scan)`; this is `c_graph / c_scan`.
    pub exact_cost_ratio: f64,
    /// `apply` snapshots the vector part when this long has passed since the
    /// last snapshot (and something changed).
    pub persist_interval: Duration,
    /// `apply` snapshots the vector part when this many changes are unsaved,
    /// bounding the re-feed after a crash.
    pub persist_max_pending: usize,
    /// Full-text writer memory budget (bytes, all threads together).
    pub writer_memory_bytes: usize,
    /// Full-text indexing threads.
    pub writer_threads: usize,
    /// Threads that insert into the ANN graph (and tokenise) during a large `apply`.
    pub apply_threads: usize,
    /// ANN searches that may run at once (each needs a graph search context).
    pub max_concurrent_searches: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        IndexOptions {
            quantization: Quantization::F16,
            connectivity: 16,
            expansion_add: 128,
            expansion_search: 256,
            filtered_expansion_search: 64,
            exact_max_vectors: 20_000,
            exact_cost_ratio: 2500.0,
            persist_interval: Duration::from_secs(60),
            persist_max_pending: 100_000,
            writer_memory_bytes: 64 << 20,
            writer_threads: 1,
            apply_threads: cores,
            max_concurrent_searches: 64,
        }
    }
}
