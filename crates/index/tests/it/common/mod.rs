//! Shared helpers for the integration tests: document and query builders,
//! deterministic random vectors, and option presets that force one vector path.
//! Must never: depend on timing or on anything outside the temp dir it is given.

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roster_index::{Change, Doc, IndexOptions, Query, SearchIndex};
use std::path::Path;
use std::time::Duration;

pub const DIMS: usize = 16;

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn random_unit(rng: &mut StdRng, dims: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dims).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

pub fn doc(key: &str, tenant: &str, scope: &str, text: &str, vector: Option<Vec<f32>>) -> Change {
    Change::Upsert(Doc {
        key: key.into(),
        tenant: tenant.into(),
        scope: scope.into(),
        text: text.into(),
        vector,
    })
}

pub fn delete(key: &str) -> Change {
    Change::Delete { key: key.into() }
}

pub fn query(
    tenant: &str,
    scopes: &[&str],
    text: &str,
    vector: Option<Vec<f32>>,
    limit: usize,
) -> Query {
    Query::new(
        tenant,
        scopes.iter().map(|s| s.to_string()).collect(),
        text,
        vector,
        limit,
    )
}

/// Options under which snapshots happen only when `persist()` is called.
pub fn manual_persist() -> IndexOptions {
    IndexOptions {
        persist_interval: Duration::from_secs(3600 * 24),
        persist_max_pending: usize::MAX,
        ..IndexOptions::default()
    }
}

/// Options under which `Auto` always takes the ANN path, even for tiny partitions.
pub fn always_ann() -> IndexOptions {
    IndexOptions {
        exact_max_vectors: 0,
        exact_cost_ratio: 0.0,
        ..manual_persist()
    }
}

pub fn open(dir: &Path, dims: Option<usize>, options: IndexOptions) -> SearchIndex {
    SearchIndex::open_with(dir, dims, options).expect("open index")
}

pub fn keys(hits: &[roster_index::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.key.clone()).collect()
}

pub fn sorted_keys(hits: &[roster_index::Hit]) -> Vec<String> {
    let mut k = keys(hits);
    k.sort();
    k
}
