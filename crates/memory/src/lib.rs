//! Roster's long-term memory service.
//!
//! Owns the bridge between the store (the truth: memory records, their
//! vectors, the search log) and the derived search index (tantivy BM25 plus
//! vectors): the indexer that follows the search log so the index catches up
//! after any crash, the embedding backfill, hybrid search with hydration from
//! the store, writes that are searchable when they return, and rebuilding
//! the index from the store.
//!
//! It must never write records except through the store, never treat the
//! index as the truth (a hit the store no longer has is dropped), and never
//! return another tenant's data: every search is filtered by tenant inside
//! the index and again when hydrating from the store.

mod backfill;
mod conversation;
mod error;
mod indexer;
mod knowledge;
mod search;

pub use error::MemoryError;
pub use knowledge::{IngestFailure, IngestOutcome, KnowledgeRequest, KnowledgeResults, PassageHit};
pub use roster_ingest::ChunkOptions;
pub use search::{MemoryHit, SearchMode, SearchRequest, SearchResults, MAX_QUERY_BYTES};

use roster_embed::DynEmbedder;
use roster_index::SearchIndex;
use roster_store::{DynStore, Embedding};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct MemoryOptions {
    pub store: DynStore,
    /// Directory of the derived index (created if missing).
    pub index_dir: PathBuf,
    /// Without one, search is full-text only and says so.
    pub embedder: Option<DynEmbedder>,
}

/// Longest a write waits for the index to show it before answering anyway
/// (the write is durable either way; the index catches up).
pub const INDEX_WAIT: Duration = Duration::from_secs(5);

pub struct MemoryService {
    store: DynStore,
    index_dir: PathBuf,
    index: RwLock<Arc<SearchIndex>>,
    embedder: Option<DynEmbedder>,
    /// Where vectors are searched: the database's own search (pgvector)
    /// when it has one, else the local index's graph.
    vectors: VectorSearch,
    /// The search log position the index has applied.
    applied: watch::Sender<i64>,
    /// One applier at a time: two could read a row at different moments and
    /// apply the older state last.
    apply_lock: tokio::sync::Mutex<()>,
    wake: Notify,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// What `GET /v1/index` shows.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct IndexStatus {
    /// Search log position the index has applied.
    pub applied: i64,
    /// Newest search log position in the store.
    pub head: i64,
    pub documents: u64,
    pub vectors: u64,
    /// The embedder's id, or none (full-text search only).
    pub embedder: Option<String>,
    /// What searches vectors: `pgvector 0.8.2` (in the database, shared by
    /// every node) or `local` (this node's index); none without an embedder.
    pub vector_search: Option<String>,
}

/// Where vector similarity is computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum VectorSearch {
    /// No embedder: full-text only.
    Off,
    /// The derived index's HNSW graph, fed from the search log.
    Local,
    /// The database's own search; its label, e.g. `pgvector 0.8.2`.
    Database(String),
}

impl MemoryService {
    /// Opens the index and brings it up to date with the store before
    /// returning, so the first search already sees every committed record.
    pub async fn open(options: MemoryOptions) -> Result<Arc<Self>, MemoryError> {
        let vectors = choose_vector_search(&options.store, options.embedder.as_ref()).await;
        // Vectors the database searches need no local copy.
        let dims = match vectors {
            VectorSearch::Local => options.embedder.as_ref().map(|e| e.dimensions()),
            VectorSearch::Off | VectorSearch::Database(_) => None,
        };
        let index = open_index(options.index_dir.clone(), dims).await?;
        let applied = i64::try_from(index.watermark()).unwrap_or(i64::MAX);
        let service = Arc::new(Self {
            store: options.store,
            index_dir: options.index_dir,
            index: RwLock::new(Arc::new(index)),
            embedder: options.embedder,
            vectors,
            applied: watch::channel(applied).0,
            apply_lock: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        service.catch_up().await?;
        Ok(service)
    }

    /// Starts the indexer and (with an embedder) the embedding backfill.
    pub fn start(self: &Arc<Self>) {
        let indexer = self.clone();
        self.tasks.spawn(async move { indexer.follow_log().await });
        if self.embedder.is_some() {
            let backfill = self.clone();
            self.tasks.spawn(async move { backfill.backfill().await });
        }
    }

    /// Stops the background work and snapshots the index.
    pub async fn shutdown(&self) {
        self.halt().await;
        let index = self.index();
        if let Err(e) = tokio::task::spawn_blocking(move || index.persist()).await {
            tracing::warn!(error = %e, "could not snapshot the search index");
        }
    }

    /// Stops the background work without a snapshot: the index is left as
    /// a crash would leave it. The next open catches up from the store.
    pub async fn halt(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }

    pub fn embedder_id(&self) -> Option<&str> {
        self.embedder.as_ref().map(|e| e.id())
    }

    /// The local index's vector size: `None` when vectors are searched
    /// elsewhere or there are none.
    pub(crate) fn local_dimensions(&self) -> Option<usize> {
        match self.vectors {
            VectorSearch::Local => self.embedder.as_ref().map(|e| e.dimensions()),
            VectorSearch::Off | VectorSearch::Database(_) => None,
        }
    }

    pub(crate) fn index(&self) -> Arc<SearchIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Tells the indexer a write landed, so it need not wait for its poll.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Waits (at most [`INDEX_WAIT`]) until the index has applied `log_id`,
    /// so a caller that just wrote can search for what it wrote.
    pub async fn wait_indexed(&self, log_id: i64) {
        if log_id <= 0 {
            return;
        }
        self.notify();
        let mut applied = self.applied.subscribe();
        let reached = tokio::time::timeout(INDEX_WAIT, applied.wait_for(|a| *a >= log_id)).await;
        if reached.is_err() {
            tracing::warn!(
                log_id,
                "the search index is behind; the write is stored and will be searchable shortly"
            );
        }
    }

    /// A vector for a record about to be written, when an embedder is
    /// configured and answers; otherwise the backfill embeds it later.
    pub async fn embed_one(&self, text: &str) -> Option<Embedding> {
        let embedder = self.embedder.as_ref()?;
        match embedder.embed(&[text.to_owned()]).await {
            Ok(mut vectors) if vectors.len() == 1 => Some(Embedding {
                model: embedder.id().to_owned(),
                vector: vectors.swap_remove(0),
            }),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "embedding failed; the backfill will retry");
                None
            }
        }
    }

    pub async fn status(&self) -> Result<IndexStatus, MemoryError> {
        let stats = self.index().stats();
        let applied = *self.applied.borrow();
        Ok(IndexStatus {
            applied,
            head: self.store.search_log_head().await?,
            documents: stats.docs,
            vectors: stats.vectors,
            embedder: self.embedder_id().map(str::to_owned),
            vector_search: match &self.vectors {
                VectorSearch::Off => None,
                VectorSearch::Local => Some("local".to_owned()),
                VectorSearch::Database(label) => Some(label.clone()),
            },
        })
    }
}

/// The database's vector search when it has one and it can be readied for
/// this embedder; otherwise the local index.
async fn choose_vector_search(store: &DynStore, embedder: Option<&DynEmbedder>) -> VectorSearch {
    let Some(embedder) = embedder else {
        return VectorSearch::Off;
    };
    let Some(label) = store.native_vectors() else {
        return VectorSearch::Local;
    };
    match store
        .prepare_native_vectors(embedder.id(), embedder.dimensions())
        .await
    {
        Ok(()) => VectorSearch::Database(label),
        Err(e) => {
            tracing::warn!(error = %e, "cannot prepare {label}; searching vectors locally");
            VectorSearch::Local
        }
    }
}

async fn open_index(dir: PathBuf, dims: Option<usize>) -> Result<SearchIndex, MemoryError> {
    tokio::task::spawn_blocking(move || SearchIndex::open(&dir, dims))
        .await
        .map_err(|e| MemoryError::Internal(format!("index open task failed: {e}")))?
        .map_err(MemoryError::from)
}
