//! The vector part: an HNSW graph (usearch, cosine) plus an exact f32 store,
//! both confined by (tenant, scope) partition on every search.
//!
//! Owns: the graph, the bookkeeping (`store.rs`) behind one `RwLock`, the id
//! allocator, snapshots (`snapshot.rs`) and the durable vector watermark.
//! An `apply` runs in two phases so searches are blocked only briefly:
//! `prepare` inserts the new vectors into the graph under fresh ids that the
//! bookkeeping does not know yet (every graph search filters by the
//! bookkeeping, so they are invisible), then — after the full-text commit —
//! `commit` swaps the bookkeeping under the write lock and removes replaced
//! ids from the graph. A failure before `commit` undoes the inserts, so a
//! batch is all-or-nothing; a failure inside `commit` poisons the part.
//! Searches pick an exact scan of the allowed partitions when they are small
//! and the graph's filtered search otherwise; graph candidates are re-scored
//! with the exact f32 vectors, so graph quantization only affects which
//! candidates are found, not their scores.
//! Must never: return an id outside the asked partitions, remove graph ids
//! while a search may be running, or advance the durable watermark past what
//! a complete snapshot holds.

mod meta;
mod slots;
mod snapshot;
pub(crate) mod store;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use crate::error::IndexError;
use crate::text::rank;
use crate::types::{Change, Hit, IndexOptions, Quantization, VectorStrategy};
use meta::Header;
use slots::Slots;
use store::{normalized, VectorState};

/// Below this many inserts a batch is added on the calling thread.
const PARALLEL_ADD_MIN: usize = 256;

fn vector_error(what: &str, e: impl std::fmt::Display) -> IndexError {
    IndexError::Vector(format!("{what}: {e}"))
}

struct Writer {
    next_id: u64,
    free: Vec<u64>,
    pending: usize,
    last_persist: Instant,
    seq: u64,
}

impl Writer {
    fn allocate(&mut self) -> u64 {
        self.free.pop().unwrap_or_else(|| {
            let id = self.next_id;
            self.next_id += 1;
            id
        })
    }
}

struct Add {
    id: u64,
    key: String,
    tenant: String,
    scope: String,
    vector: Vec<f32>,
}

/// A batch whose vectors are in the graph but not yet visible.
pub(crate) struct Prepared {
    adds: Vec<Add>,
    removals: Vec<String>,
    changes: usize,
}

pub(crate) struct VectorPart {
    dir: PathBuf,
    dims: usize,
    opts: IndexOptions,
    threads: usize,
    ann: usearch::Index,
    state: RwLock<VectorState>,
    writer: Mutex<Writer>,
    slots: Slots,
    durable: AtomicU64,
    poisoned: AtomicBool,
}

fn new_ann(dims: usize, opts: &IndexOptions) -> Result<usearch::Index, IndexError> {
    let options = usearch::IndexOptions {
        dimensions: dims,
        metric: usearch::MetricKind::Cos,
        quantization: match opts.quantization {
            Quantization::F32 => usearch::ScalarKind::F32,
            Quantization::F16 => usearch::ScalarKind::F16,
            Quantization::I8 => usearch::ScalarKind::I8,
        },
        connectivity: opts.connectivity,
        expansion_add: opts.expansion_add,
        // The graph's own ef is the floor; searches that want more ask for
        // more results (usearch explores max(ef, count)).
        expansion_search: opts.filtered_expansion_search,
        multi: false,
    };
    usearch::Index::new(&options).map_err(|e| vector_error("creating graph", e))
}

struct LoadedPart {
    ann: usearch::Index,
    state: VectorState,
    next_id: u64,
    seq: u64,
}

impl VectorPart {
    /// Opens the live snapshot under `dir`, or starts empty (watermark 0) when
    /// there is none, when it was made for other dimensions or quantization,
    /// or when it cannot be read: the part is derived data, and watermark 0
    /// makes the caller re-feed it.
    pub(crate) fn open(dir: &Path, dims: usize, opts: &IndexOptions) -> Result<Self, IndexError> {
        if dims == 0 {
            return Err(IndexError::InvalidQuery(
                "dimensions must be positive".into(),
            ));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| IndexError::io(format!("creating {}", dir.display()), e))?;
        let threads = opts.max_concurrent_searches.max(1) + opts.apply_threads.max(1);
        let loaded = match snapshot::current(dir) {
            Ok(Some(name)) => match Self::load(dir, &name, dims, opts, threads) {
                Ok(loaded) => Some(loaded),
                Err(err) => {
                    tracing::warn!(dir = %dir.display(), error = %err, "vector snapshot unusable; starting the vector part empty");
                    None
                }
            },
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "vector snapshot pointer unreadable; starting the vector part empty");
                None
            }
        };
        let loaded = match loaded {
            Some(loaded) => {
                snapshot::cleanup(dir, Some(&snapshot::snapshot_name(loaded.seq)));
                loaded
            }
            None => {
                snapshot::clear(dir)?;
                let ann = new_ann(dims, opts)?;
                ann.reserve_capacity_and_threads(1024, threads)
                    .map_err(|e| vector_error("reserving graph", e))?;
                LoadedPart {
                    ann,
                    state: VectorState::new(dims),
                    next_id: 0,
                    seq: 0,
                }
            }
        };
        let free: Vec<u64> = (0..loaded.next_id)
            .rev()
            .filter(|&id| loaded.state.partition_of(id).is_none())
            .collect();
        let watermark = loaded.state.watermark;
        Ok(VectorPart {
            dir: dir.to_path_buf(),
            dims,
            opts: opts.clone(),
            threads,
            ann: loaded.ann,
            state: RwLock::new(loaded.state),
            writer: Mutex::new(Writer {
                next_id: loaded.next_id,
                free,
                pending: 0,
                last_persist: Instant::now(),
                seq: loaded.seq,
            }),
            slots: Slots::new(threads),
            durable: AtomicU64::new(watermark),
            poisoned: AtomicBool::new(false),
        })
    }

    fn load(
        dir: &Path,
        name: &str,
        dims: usize,
        opts: &IndexOptions,
        threads: usize,
    ) -> Result<LoadedPart, IndexError> {
        let seq = snapshot::seq_of(name)
            .ok_or_else(|| IndexError::Corrupt(format!("bad snapshot name {name}")))?;
        let mut loaded = snapshot::open(dir, name)?;
        if loaded.meta.dims != dims || loaded.meta.quantization != opts.quantization {
            return Err(IndexError::Corrupt(format!(
                "snapshot has {} dimensions ({}), index opened with {dims} ({})",
                loaded.meta.dims,
                loaded.meta.quantization.as_str(),
                opts.quantization.as_str()
            )));
        }
        let ann = new_ann(dims, opts)?;
        ann.load(loaded.ann_path_str()?)
            .map_err(|e| vector_error("loading graph", e))?;
        ann.change_expansion_search(opts.filtered_expansion_search);
        ann.change_expansion_add(opts.expansion_add);
        let state = loaded.read_state()?;
        if ann.size() != state.len() || ann.dimensions() != dims {
            return Err(IndexError::Corrupt(format!(
                "graph holds {} vectors, meta {}",
                ann.size(),
                state.len()
            )));
        }
        for part in state.partitions() {
            if part.ids.iter().any(|&id| !ann.contains(id)) {
                return Err(IndexError::Corrupt("graph lacks ids listed in meta".into()));
            }
        }
        let capacity = (state.len() + 1024).max(ann.capacity());
        ann.reserve_capacity_and_threads(capacity, threads)
            .map_err(|e| vector_error("reserving graph", e))?;
        Ok(LoadedPart {
            ann,
            state,
            next_id: loaded.meta.next_id,
            seq,
        })
    }

    /// Removes every vector snapshot under `dir` (used when the index is opened without vectors).
    pub(crate) fn discard(dir: &Path) -> Result<(), IndexError> {
        if dir.exists() {
            snapshot::clear(dir)?;
        }
        Ok(())
    }

    pub(crate) fn dims(&self) -> usize {
        self.dims
    }

    pub(crate) fn durable_watermark(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn read(&self) -> RwLockReadGuard<'_, VectorState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, VectorState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    /// Phase one of an apply: the batch's new vectors go into the graph under
    /// ids no search can see yet. Vectors must have been validated.
    pub(crate) fn prepare(&self, changes: &[Change]) -> Result<Prepared, IndexError> {
        if self.is_poisoned() {
            return Err(IndexError::Poisoned);
        }
        // Only each key's last change in the batch matters for the final state.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(changes.len());
        for (i, change) in changes.iter().enumerate() {
            last.insert(change.key(), i);
        }
        let mut writer = self.lock_writer();
        let mut adds = Vec::new();
        let mut removals = Vec::new();
        for (i, change) in changes.iter().enumerate() {
            if last.get(change.key()) != Some(&i) {
                continue;
            }
            match change {
                Change::Upsert(doc) => match doc.vector.as_deref().map(normalized) {
                    Some(Some(vector)) => adds.push(Add {
                        id: writer.allocate(),
                        key: doc.key.clone(),
                        tenant: doc.tenant.clone(),
                        scope: doc.scope.clone(),
                        vector,
                    }),
                    Some(None) => {
                        writer.free.extend(adds.iter().map(|a| a.id));
                        return Err(IndexError::InvalidDoc {
                            key: doc.key.clone(),
                            reason: "vector is zero or not finite".into(),
                        });
                    }
                    None => removals.push(doc.key.clone()),
                },
                Change::Delete { key } => removals.push(key.clone()),
            }
        }
        drop(writer);
        let prepared = Prepared {
            adds,
            removals,
            changes: changes.len(),
        };
        if let Err(err) = self.insert_all(&prepared.adds) {
            self.abort(prepared);
            return Err(err);
        }
        Ok(prepared)
    }

    fn insert_all(&self, adds: &[Add]) -> Result<(), IndexError> {
        if adds.is_empty() {
            return Ok(());
        }
        let needed = self.ann.size() + adds.len();
        if needed > self.ann.capacity() {
            // usearch must not be searched while it grows.
            let _exclusive = self.write();
            let target = needed.max(self.ann.capacity() + self.ann.capacity() / 2);
            self.ann
                .reserve_capacity_and_threads(target, self.threads)
                .map_err(|e| vector_error("reserving graph", e))?;
        }
        let insert = |chunk: &[Add]| -> Result<(), IndexError> {
            let _permit = self.slots.acquire();
            for add in chunk {
                self.ann
                    .add(add.id, &add.vector)
                    .map_err(|e| vector_error("inserting into graph", e))?;
            }
            Ok(())
        };
        let threads = self.opts.apply_threads.max(1);
        if adds.len() < PARALLEL_ADD_MIN || threads < 2 {
            return insert(adds);
        }
        // Interleaved chunks keep threads busy evenly; usearch's graph is
        // built for concurrent inserts.
        let chunk_len = adds.len().div_ceil(threads).clamp(1, 4096);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let chunks: Vec<&[Add]> = adds.chunks(chunk_len).collect();
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| -> Result<(), IndexError> {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(chunk) = chunks.get(i) else {
                                return Ok(());
                            };
                            insert(chunk)?;
                        }
                    })
                })
                .collect();
            let mut result = Ok(());
            for worker in workers {
                let outcome = worker.join().unwrap_or_else(|_| {
                    Err(IndexError::Vector("graph insert thread panicked".into()))
                });
                if result.is_ok() {
                    result = outcome;
                }
            }
            result
        })
    }

    /// Undoes `prepare`: the batch's ids leave the graph and return to the allocator.
    pub(crate) fn abort(&self, prepared: Prepared) {
        let mut writer = self.lock_writer();
        let _exclusive = self.write();
        for add in &prepared.adds {
            if self.ann.contains(add.id) {
                if let Err(e) = self.ann.remove(add.id) {
                    tracing::error!(error = %e, "could not undo a graph insert; vector part poisoned");
                    self.poisoned.store(true, Ordering::Release);
                }
            }
            writer.free.push(add.id);
        }
    }

    /// Phase two: the batch becomes visible and the in-memory watermark moves.
    pub(crate) fn commit(&self, prepared: Prepared, watermark: u64) -> Result<(), IndexError> {
        let mut writer = self.lock_writer();
        let mut state = self.write();
        let mut failure = None;
        let mut drop_id = |id: u64, free: &mut Vec<u64>| match self.ann.remove(id) {
            Ok(_) => free.push(id),
            Err(e) => failure = Some(e.to_string()),
        };
        for add in prepared.adds {
            if let Some(old) = state.remove(&add.key) {
                drop_id(old, &mut writer.free);
            }
            state.insert(add.id, &add.key, &add.tenant, &add.scope, &add.vector);
        }
        for key in &prepared.removals {
            if let Some(old) = state.remove(key) {
                drop_id(old, &mut writer.free);
            }
        }
        if let Some(e) = failure {
            self.poisoned.store(true, Ordering::Release);
            return Err(IndexError::Vector(format!("removing from graph: {e}")));
        }
        state.watermark = watermark;
        writer.pending += prepared.changes;
        Ok(())
    }

    /// Snapshots when the policy says so; returns whether it did.
    pub(crate) fn maybe_persist(&self) -> Result<bool, IndexError> {
        let due = {
            let writer = self.lock_writer();
            let dirty = writer.pending > 0 || self.read().watermark != self.durable_watermark();
            dirty
                && (writer.pending >= self.opts.persist_max_pending
                    || writer.last_persist.elapsed() >= self.opts.persist_interval)
        };
        if due {
            self.persist()?;
        }
        Ok(due)
    }

    /// Writes a snapshot of the current state (searches continue meanwhile).
    pub(crate) fn persist(&self) -> Result<(), IndexError> {
        if self.is_poisoned() {
            return Err(IndexError::Poisoned);
        }
        let mut writer = self.lock_writer();
        let state = self.read();
        if writer.pending == 0 && state.watermark == self.durable_watermark() && writer.seq > 0 {
            return Ok(());
        }
        let seq = writer.seq + 1;
        let header = Header {
            dims: self.dims,
            quantization: self.opts.quantization,
            watermark: state.watermark,
            next_id: writer.next_id,
        };
        snapshot::write(&self.dir, seq, &self.ann, &state, &header)?;
        self.durable.store(state.watermark, Ordering::Release);
        drop(state);
        writer.seq = seq;
        writer.pending = 0;
        writer.last_persist = Instant::now();
        snapshot::cleanup(&self.dir, Some(&snapshot::snapshot_name(seq)));
        Ok(())
    }

    /// Top-`k` vectors of the tenant's `scopes` by cosine similarity.
    pub(crate) fn search(
        &self,
        tenant: &str,
        scopes: &[String],
        query: &[f32],
        k: usize,
        strategy: VectorStrategy,
    ) -> Result<Vec<Hit>, IndexError> {
        let query = normalized(query)
            .ok_or_else(|| IndexError::InvalidQuery("query vector is zero or not finite".into()))?;
        let state = self.read();
        let allowed = state.allowed(tenant, scopes);
        let in_scope = state.count_allowed(&allowed);
        if in_scope == 0 || k == 0 {
            return Ok(Vec::new());
        }
        let exact = match strategy {
            VectorStrategy::Exact => true,
            VectorStrategy::Ann => false,
            VectorStrategy::Auto => {
                let allowed = in_scope as f64;
                in_scope <= self.opts.exact_max_vectors
                    || allowed * allowed <= self.opts.exact_cost_ratio * state.len() as f64
            }
        };
        let scored = if exact {
            state.exact_top(&query, &allowed, k)
        } else {
            // Asking for more results than needed is how the candidate list
            // (ef) is set per search; the extra candidates are re-scored
            // exactly and cut to k below.
            let share = in_scope as f64 / state.len().max(1) as f64;
            let wanted = ((self.opts.expansion_search as f64 * share).ceil() as usize).max(k);
            let _permit = self.slots.acquire();
            // The predicate runs inside the graph walk, so only allowed
            // vectors enter the result list (no post-filtering of a global top-k).
            let matches = self
                .ann
                .filtered_search(&query, wanted, |id| {
                    state.partition_of(id).is_some_and(|p| allowed.contains(p))
                })
                .map_err(|e| vector_error("searching graph", e))?;
            state.rescore(&query, &matches.keys, &allowed)
        };
        let mut hits: Vec<Hit> = scored
            .into_iter()
            .filter_map(|(score, id)| {
                Some(Hit {
                    key: state.key_of(id)?.to_owned(),
                    score,
                    text_rank: None,
                    vector_rank: None,
                    scope: state.scope_of(id)?.to_owned(),
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.key.cmp(&b.key)));
        hits.truncate(k);
        for (i, hit) in hits.iter_mut().enumerate() {
            hit.vector_rank = Some(rank(i));
        }
        Ok(hits)
    }

    pub(crate) fn applied_watermark(&self) -> u64 {
        self.read().watermark
    }

    pub(crate) fn partitions(&self) -> usize {
        self.read().partitions().len()
    }

    pub(crate) fn ann_memory_bytes(&self) -> usize {
        self.ann.memory_usage()
    }

    pub(crate) fn store_bytes(&self) -> usize {
        self.read().store_bytes()
    }

    pub(crate) fn quantization(&self) -> Quantization {
        self.opts.quantization
    }
}
