//! Hybrid search for Roster: BM25 full-text (tantivy) plus vector similarity
//! (usearch HNSW with an exact per-partition store), fused with reciprocal
//! rank fusion.
//!
//! The index is derived data. The source of truth is the caller's database;
//! the index is fed its ordered change log through [`SearchIndex::apply`], each
//! batch tagged with the log position it reaches. [`SearchIndex::watermark`]
//! is the durable position to resume from after a crash (the minimum of the
//! full-text commit and the last vector snapshot), and re-applying changes at
//! or below it is harmless (upserts replace, deletes of absent keys are
//! no-ops). Deleting the directory and re-feeding from 0 always rebuilds it.
//!
//! Owns: `SearchIndex`, which orders the two parts (vector inserts staged,
//! full-text commit, vector swap) and validates inputs. Every search path is
//! confined to one tenant and a set of its scopes inside the engines (terms
//! carry their partition; graph walks run a partition predicate).
//! Must never: return a record of another tenant or of a scope not asked
//! for, store document text, or report a watermark that is not durable.
//!
//! Measured choices (`examples/search_bench.rs`, 384-d, this 2-vCPU box):
//! - Graph vectors in f16: half the graph memory of f32 with the same
//!   recall@10 (0.999 vs 1.000 at 100k), and faster inserts and searches
//!   (usearch has AVX-512 FP16 kernels); i8 lost recall (0.91) even with
//!   exact re-scoring. Exact f32 copies are kept per partition anyway.
//! - ef 256 for unfiltered graph searches: at 1M, ef 64/128/256/512 gave
//!   recall@10 0.77/0.91/0.97/0.98 on the clustered benchmark data.
//! - Filtered graph walks keep ef 64: a walk must visit ~1/selectivity more
//!   nodes, so at 1% of 1M vectors it takes ~60 ms at ef 64 (300 ms at 256)
//!   while a scan of those 10k contiguous vectors takes 0.6 ms. The scan
//!   costs ~170 ns/vector from RAM and the walk ~c/selectivity, so the scan
//!   wins up to `sqrt(2500 * total)` vectors (50k at 1M, where both took
//!   ~9 ms) and always below 20k.
//! - Terms carry their partition (see `analyzer.rs`) instead of MUST
//!   tenant/scope clauses: a pure disjunction keeps tantivy's block-max WAND.

mod analyzer;
mod error;
mod fuse;
mod text;
mod types;
mod vector;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

pub use error::IndexError;
pub use fuse::{fuse, RRF_K};
pub use types::{Change, Doc, Hit, IndexOptions, IndexStats, Quantization, Query, VectorStrategy};

use text::TextPart;
use vector::VectorPart;

const TEXT_DIR: &str = "text";

/// Upper bound on `limit` and `candidates`: engines allocate result buffers of
/// that size up front, so an absurd request must not become an absurd allocation.
pub const MAX_RESULTS: usize = 10_000;
const VECTOR_DIR: &str = "vectors";

/// The hybrid index. `Send + Sync`; share it behind an `Arc`. Searches run
/// concurrently with each other and with `apply`; `apply` and `persist` are
/// serialised internally.
pub struct SearchIndex {
    dir: PathBuf,
    text: TextPart,
    vectors: Option<VectorPart>,
    /// Serialises writers: the two parts must see batches in log order.
    apply_lock: Mutex<()>,
}

impl SearchIndex {
    /// Opens or creates the index under `dir` with default options.
    /// `dimensions` = the embedder's vector size (`None` = no vectors). If the
    /// stored dimensions differ from the given ones, the vector part is reset
    /// (empty) and `vector_watermark()` reads 0 — the caller then re-feeds.
    pub fn open(dir: &Path, dimensions: Option<usize>) -> Result<Self, IndexError> {
        Self::open_with(dir, dimensions, IndexOptions::default())
    }

    /// [`SearchIndex::open`] with explicit tuning. A vector snapshot made with
    /// another quantization is also reset.
    pub fn open_with(
        dir: &Path,
        dimensions: Option<usize>,
        options: IndexOptions,
    ) -> Result<Self, IndexError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| IndexError::io(format!("creating {}", dir.display()), e))?;
        // The full-text writer takes the directory lock; open it first so a
        // second process fails before touching the vector snapshots.
        let text = TextPart::open(
            &dir.join(TEXT_DIR),
            options.writer_threads,
            options.writer_memory_bytes,
            options.apply_threads,
        )?;
        let vector_dir = dir.join(VECTOR_DIR);
        let vectors = match dimensions {
            Some(dims) => Some(VectorPart::open(&vector_dir, dims, &options)?),
            None => {
                VectorPart::discard(&vector_dir)?;
                None
            }
        };
        Ok(SearchIndex {
            dir: dir.to_path_buf(),
            text,
            vectors,
            apply_lock: Mutex::new(()),
        })
    }

    /// Deletes an index directory (to rebuild from scratch). The index must not be open.
    pub fn destroy(dir: &Path) -> Result<(), IndexError> {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(IndexError::io(format!("removing {}", dir.display()), e)),
        }
    }

    /// The directory this index lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Applies `changes` (in order) atomically and brings the index to log
    /// position `watermark`. The full-text part is durable when this returns;
    /// the vector part is in memory and becomes durable at the next snapshot
    /// (taken here when `persist_interval` or `persist_max_pending` says so,
    /// or by [`SearchIndex::persist`]). A failed batch leaves nothing of it
    /// visible. The watermark is recorded as given, so re-feeding an older
    /// stretch of the log moves it back until the re-feed catches up.
    pub fn apply(&self, changes: Vec<Change>, watermark: u64) -> Result<(), IndexError> {
        let _serial = self
            .apply_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.validate(&changes)?;
        let prepared = match &self.vectors {
            Some(v) => Some(v.prepare(&changes)?),
            None => None,
        };
        let text_result = self.text.apply(&changes, watermark);
        if let Err(err) = text_result {
            if let (Some(v), Some(p)) = (&self.vectors, prepared) {
                v.abort(p);
            }
            return Err(err);
        }
        if let (Some(v), Some(p)) = (&self.vectors, prepared) {
            v.commit(p, watermark)?;
            // The batch is applied; a failed snapshot only delays durability
            // (the watermark stays at the last good one), so it is logged,
            // not returned.
            if let Err(err) = v.maybe_persist() {
                tracing::error!(error = %err, code = err.code(), "vector snapshot failed");
            }
        }
        Ok(())
    }

    fn validate(&self, changes: &[Change]) -> Result<(), IndexError> {
        for change in changes {
            if change.key().is_empty() {
                return Err(IndexError::InvalidDoc {
                    key: String::new(),
                    reason: "empty key".into(),
                });
            }
            let (Change::Upsert(doc), Some(v)) = (change, &self.vectors) else {
                continue;
            };
            let Some(vector) = &doc.vector else { continue };
            if vector.len() != v.dims() {
                return Err(IndexError::InvalidDoc {
                    key: doc.key.clone(),
                    reason: format!(
                        "vector has {} dimensions, index has {}",
                        vector.len(),
                        v.dims()
                    ),
                });
            }
            if vector.iter().any(|x| !x.is_finite()) || vector.iter().all(|&x| x == 0.0) {
                return Err(IndexError::InvalidDoc {
                    key: doc.key.clone(),
                    reason: "vector is zero or not finite".into(),
                });
            }
        }
        Ok(())
    }

    /// Where to resume feeding after a restart: the minimum of the full-text
    /// and vector parts' durable watermarks.
    pub fn watermark(&self) -> u64 {
        let text = self.text.watermark();
        match &self.vectors {
            Some(v) => text.min(v.durable_watermark()),
            None => text,
        }
    }

    /// Durable watermark of the full-text part (its last commit).
    pub fn text_watermark(&self) -> u64 {
        self.text.watermark()
    }

    /// Durable watermark of the vector part (its last snapshot); 0 after a
    /// reset. Without a vector part there is nothing to catch up, so this is
    /// the full-text watermark.
    pub fn vector_watermark(&self) -> u64 {
        match &self.vectors {
            Some(v) => v.durable_watermark(),
            None => self.text.watermark(),
        }
    }

    /// Snapshots the vector part now (a no-op when nothing changed since the
    /// last one). Call on shutdown; dropping the index does not snapshot.
    pub fn persist(&self) -> Result<(), IndexError> {
        let _serial = self
            .apply_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &self.vectors {
            Some(v) => v.persist(),
            None => Ok(()),
        }
    }

    /// Graceful shutdown: snapshot the vectors and let full-text merges finish.
    pub fn close(self) -> Result<(), IndexError> {
        self.persist()?;
        self.text.close()
    }

    fn check_query(&self, query: &Query) -> Result<(), IndexError> {
        if query.scopes.is_empty() {
            return Err(IndexError::InvalidQuery(
                "at least one scope is required".into(),
            ));
        }
        if let (Some(vector), Some(v)) = (&query.vector, &self.vectors) {
            if vector.len() != v.dims() {
                return Err(IndexError::InvalidQuery(format!(
                    "query vector has {} dimensions, index has {}",
                    vector.len(),
                    v.dims()
                )));
            }
        }
        Ok(())
    }

    fn depth(query: &Query) -> usize {
        query.candidates.max(query.limit).min(MAX_RESULTS)
    }

    fn limit(query: &Query) -> usize {
        query.limit.min(MAX_RESULTS)
    }

    /// Hybrid search: BM25 and vector candidates (`candidates` each), fused
    /// by RRF, `limit` hits. Full-text only when the query has no vector or
    /// the index has no vectors.
    pub fn search(&self, query: &Query) -> Result<Vec<Hit>, IndexError> {
        self.hybrid(query, VectorStrategy::Auto)
    }

    /// [`SearchIndex::search`] with the vector side computed exactly — the
    /// reference for measuring the hybrid's recall.
    pub fn search_exact(&self, query: &Query) -> Result<Vec<Hit>, IndexError> {
        self.hybrid(query, VectorStrategy::Exact)
    }

    fn hybrid(&self, query: &Query, strategy: VectorStrategy) -> Result<Vec<Hit>, IndexError> {
        self.check_query(query)?;
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let depth = Self::depth(query);
        let text = self
            .text
            .search(&query.tenant, &query.scopes, &query.text, depth)?;
        let vector = match (&query.vector, &self.vectors) {
            (Some(q), Some(v)) => v.search(&query.tenant, &query.scopes, q, depth, strategy)?,
            _ => Vec::new(),
        };
        Ok(fuse(&text, &vector, Self::limit(query)))
    }

    /// BM25 only: top `limit` hits, scored by BM25.
    pub fn text_search(&self, query: &Query) -> Result<Vec<Hit>, IndexError> {
        self.check_query(query)?;
        self.text.search(
            &query.tenant,
            &query.scopes,
            &query.text,
            Self::limit(query),
        )
    }

    /// Vector only: top `limit` by cosine, exact on small partitions and ANN otherwise.
    pub fn vector_search(&self, query: &Query) -> Result<Vec<Hit>, IndexError> {
        self.vector_search_with(query, VectorStrategy::Auto)
    }

    /// Vector only, brute force over every allowed vector (recall reference, tests).
    pub fn exact_vector_search(&self, query: &Query) -> Result<Vec<Hit>, IndexError> {
        self.vector_search_with(query, VectorStrategy::Exact)
    }

    /// Vector only, with the strategy forced (benchmarks, diagnostics).
    pub fn vector_search_with(
        &self,
        query: &Query,
        strategy: VectorStrategy,
    ) -> Result<Vec<Hit>, IndexError> {
        self.check_query(query)?;
        match (&query.vector, &self.vectors) {
            (Some(q), Some(v)) => v.search(
                &query.tenant,
                &query.scopes,
                q,
                Self::limit(query),
                strategy,
            ),
            _ => Ok(Vec::new()),
        }
    }

    /// Counters, watermarks and memory.
    pub fn stats(&self) -> IndexStats {
        let v = self.vectors.as_ref();
        IndexStats {
            docs: self.text.num_docs(),
            vectors: v.map_or(0, |v| v.len() as u64),
            vector_partitions: v.map_or(0, |v| v.partitions() as u64),
            text_watermark: self.text.watermark(),
            vector_watermark: v.map(VectorPart::durable_watermark),
            vector_applied_watermark: v.map(VectorPart::applied_watermark),
            dimensions: v.map(VectorPart::dims),
            quantization: v.map_or(
                IndexOptions::default().quantization,
                VectorPart::quantization,
            ),
            ann_memory_bytes: v.map_or(0, |v| v.ann_memory_bytes() as u64),
            exact_store_bytes: v.map_or(0, |v| v.store_bytes() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn index_is_send_and_sync() {
        assert_send_sync::<SearchIndex>();
    }
}
