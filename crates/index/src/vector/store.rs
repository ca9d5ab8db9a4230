//! The vector part's bookkeeping and exact store: which key has which ANN id,
//! which (tenant, scope) partition each id belongs to, and every vector in f32,
//! contiguous per partition.
//!
//! Owns: key <-> id maps, the partition table, per-partition contiguous vector
//! arrays (so a small partition is scanned as one linear pass), exact top-k,
//! and exact re-scoring of ANN candidates. Lives behind the vector part's
//! `RwLock`; everything here is synchronous and allocation-light.
//! Must never: touch the ANN graph or the disk, or return an id whose
//! partition was not asked for.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

/// Marks a free id in `slots`.
const FREE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot {
    partition: u32,
    position: u32,
}

const FREE_SLOT: Slot = Slot {
    partition: FREE,
    position: FREE,
};

/// One (tenant, scope): its ids and their vectors, `ids[i]` owning
/// `data[i*dims..(i+1)*dims]`.
#[derive(Debug, Default)]
pub(crate) struct Partition {
    pub(crate) tenant: String,
    pub(crate) scope: String,
    pub(crate) ids: Vec<u64>,
    pub(crate) data: Vec<f32>,
}

#[derive(Debug)]
pub(crate) struct VectorState {
    dims: usize,
    partitions: Vec<Partition>,
    /// tenant -> scope -> partition number; nested so lookups need no allocation.
    partition_numbers: HashMap<String, HashMap<String, u32>>,
    slots: Vec<Slot>,
    keys: Vec<Option<Box<str>>>,
    ids: HashMap<Box<str>, u64>,
    /// Log position the in-memory state has applied.
    pub(crate) watermark: u64,
}

/// A set of allowed partitions, small enough that a sorted vector is fastest.
pub(crate) struct Allowed(Vec<u32>);

impl Allowed {
    #[inline]
    pub(crate) fn contains(&self, partition: u32) -> bool {
        if self.0.len() <= 8 {
            self.0.contains(&partition)
        } else {
            self.0.binary_search(&partition).is_ok()
        }
    }
}

/// Candidate in a top-k heap: the heap's top is the worst kept candidate.
#[derive(PartialEq)]
struct Scored(f32, u64);

impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: higher score = "smaller", so the max-heap's top is the
        // lowest score (ties: the larger id is worse, for determinism).
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

impl VectorState {
    pub(crate) fn new(dims: usize) -> Self {
        VectorState {
            dims,
            partitions: Vec::new(),
            partition_numbers: HashMap::new(),
            slots: Vec::new(),
            keys: Vec::new(),
            ids: HashMap::new(),
            watermark: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    pub(crate) fn id_of(&self, key: &str) -> Option<u64> {
        self.ids.get(key).copied()
    }

    /// The partition of a live id; `None` for free or unknown ids (e.g. ids
    /// being inserted into the graph by an `apply` that has not committed yet).
    #[inline]
    pub(crate) fn partition_of(&self, id: u64) -> Option<u32> {
        let slot = self.slots.get(usize::try_from(id).ok()?)?;
        (slot.partition != FREE).then_some(slot.partition)
    }

    pub(crate) fn key_of(&self, id: u64) -> Option<&str> {
        self.keys.get(usize::try_from(id).ok()?)?.as_deref()
    }

    pub(crate) fn scope_of(&self, id: u64) -> Option<&str> {
        let p = self.partition_of(id)?;
        self.partitions.get(p as usize).map(|p| p.scope.as_str())
    }

    pub(crate) fn vector_of(&self, id: u64) -> Option<&[f32]> {
        let slot = self.slots.get(usize::try_from(id).ok()?)?;
        let part = self.partitions.get(slot.partition as usize)?;
        let start = slot.position as usize * self.dims;
        part.data.get(start..start + self.dims)
    }

    /// The partitions of `tenant` named by `scopes` that exist.
    pub(crate) fn allowed(&self, tenant: &str, scopes: &[String]) -> Allowed {
        let mut out = Vec::new();
        if let Some(by_scope) = self.partition_numbers.get(tenant) {
            for scope in scopes {
                if let Some(&p) = by_scope.get(scope.as_str()) {
                    out.push(p);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Allowed(out)
    }

    pub(crate) fn count_allowed(&self, allowed: &Allowed) -> usize {
        allowed
            .0
            .iter()
            .filter_map(|&p| self.partitions.get(p as usize))
            .map(|p| p.ids.len())
            .sum()
    }

    fn partition_number(&mut self, tenant: &str, scope: &str) -> u32 {
        if let Some(&p) = self
            .partition_numbers
            .get(tenant)
            .and_then(|m| m.get(scope))
        {
            return p;
        }
        let p = u32::try_from(self.partitions.len()).unwrap_or(FREE - 1);
        self.partitions.push(Partition {
            tenant: tenant.to_owned(),
            scope: scope.to_owned(),
            ids: Vec::new(),
            data: Vec::new(),
        });
        self.partition_numbers
            .entry(tenant.to_owned())
            .or_default()
            .insert(scope.to_owned(), p);
        p
    }

    /// Records `key` under the free id `id`. The caller removed any previous
    /// id of `key` first and normalised `vector` to `dims` values.
    pub(crate) fn insert(&mut self, id: u64, key: &str, tenant: &str, scope: &str, vector: &[f32]) {
        let p = self.partition_number(tenant, scope);
        let index = id as usize;
        if self.slots.len() <= index {
            self.slots.resize(index + 1, FREE_SLOT);
            self.keys.resize(index + 1, None);
        }
        let part = &mut self.partitions[p as usize];
        let position = u32::try_from(part.ids.len()).unwrap_or(FREE - 1);
        part.ids.push(id);
        part.data.extend_from_slice(vector);
        self.slots[index] = Slot {
            partition: p,
            position,
        };
        let key: Box<str> = key.into();
        self.keys[index] = Some(key.clone());
        self.ids.insert(key, id);
    }

    /// Forgets `key`; returns the id it had so the caller can drop it from the graph.
    pub(crate) fn remove(&mut self, key: &str) -> Option<u64> {
        let id = self.ids.remove(key)?;
        let index = id as usize;
        let slot = self.slots.get(index).copied()?;
        self.slots[index] = FREE_SLOT;
        self.keys[index] = None;
        let dims = self.dims;
        let part = self.partitions.get_mut(slot.partition as usize)?;
        let position = slot.position as usize;
        // Swap-remove keeps the partition contiguous: the last vector moves
        // into the hole and its slot learns its new position.
        let last = part.ids.len().checked_sub(1)?;
        part.ids.swap_remove(position);
        if position != last {
            let (head, tail) = part.data.split_at_mut(last * dims);
            head[position * dims..(position + 1) * dims].copy_from_slice(&tail[..dims]);
            let moved = part.ids[position] as usize;
            if let Some(s) = self.slots.get_mut(moved) {
                s.position = slot.position;
            }
        }
        part.data.truncate(last * dims);
        Some(id)
    }

    /// Exact top-`k` by cosine (dot of normalised vectors) over the allowed partitions.
    pub(crate) fn exact_top(&self, query: &[f32], allowed: &Allowed, k: usize) -> Vec<(f32, u64)> {
        if k == 0 {
            return Vec::new();
        }
        let mut heap: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
        for &p in &allowed.0 {
            let Some(part) = self.partitions.get(p as usize) else {
                continue;
            };
            for (vector, &id) in part.data.chunks_exact(self.dims).zip(&part.ids) {
                let score = dot(query, vector);
                if heap.len() < k {
                    heap.push(Scored(score, id));
                } else if let Some(worst) = heap.peek() {
                    if Scored(score, id) < *worst {
                        heap.pop();
                        heap.push(Scored(score, id));
                    }
                }
            }
        }
        heap.into_sorted_vec()
            .into_iter()
            .map(|Scored(s, id)| (s, id))
            .collect()
    }

    /// Exact scores for ANN candidates, dropping ids that are not (or no
    /// longer) live in an allowed partition.
    pub(crate) fn rescore(&self, query: &[f32], ids: &[u64], allowed: &Allowed) -> Vec<(f32, u64)> {
        ids.iter()
            .filter(|&&id| self.partition_of(id).is_some_and(|p| allowed.contains(p)))
            .filter_map(|&id| self.vector_of(id).map(|v| (dot(query, v), id)))
            .collect()
    }

    /// Bytes held by the f32 store (vectors and ids, by capacity).
    pub(crate) fn store_bytes(&self) -> usize {
        let parts: usize = self
            .partitions
            .iter()
            .map(|p| p.data.capacity() * 4 + p.ids.capacity() * 8)
            .sum();
        parts + self.slots.capacity() * std::mem::size_of::<Slot>()
    }
}

/// Dot product written with 16 independent accumulators so the compiler can
/// vectorise it without `-ffast-math` (summation order is fixed, hence
/// deterministic).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum = 0.0f32;
    for lane in acc {
        sum += lane;
    }
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// Unit-length copy of `v`, or `None` if it has no direction or is not finite.
pub(crate) fn normalized(v: &[f32]) -> Option<Vec<f32>> {
    if v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let norm = dot(v, v).sqrt();
    if !(norm.is_finite() && norm > 0.0) {
        return None;
    }
    Some(v.iter().map(|x| x / norm).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(dims: usize, hot: usize) -> Vec<f32> {
        let mut v = vec![0.0; dims];
        v[hot] = 1.0;
        v
    }

    #[test]
    fn remove_keeps_partitions_contiguous() {
        let mut s = VectorState::new(4);
        for i in 0..4u64 {
            s.insert(i, &format!("k{i}"), "t", "a", &unit(4, i as usize));
        }
        assert_eq!(s.remove("k1"), Some(1));
        assert_eq!(s.len(), 3);
        // k3 moved into k1's hole and is still found with its own vector.
        assert_eq!(s.vector_of(3), Some(&unit(4, 3)[..]));
        assert_eq!(s.partition_of(1), None);
        let allowed = s.allowed("t", &["a".to_string()]);
        let top = s.exact_top(&unit(4, 3), &allowed, 1);
        assert_eq!(top, vec![(1.0, 3)]);
        assert_eq!(s.remove("k1"), None);
    }

    #[test]
    fn allowed_is_per_tenant() {
        let mut s = VectorState::new(2);
        s.insert(0, "a", "t1", "x", &[1.0, 0.0]);
        s.insert(1, "b", "t2", "x", &[1.0, 0.0]);
        let allowed = s.allowed("t1", &["x".to_string(), "x".to_string()]);
        assert_eq!(s.count_allowed(&allowed), 1);
        let top = s.exact_top(&[1.0, 0.0], &allowed, 10);
        assert_eq!(top, vec![(1.0, 0)]);
        assert_eq!(s.rescore(&[1.0, 0.0], &[0, 1, 7], &allowed), vec![(1.0, 0)]);
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.05).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
        assert!(normalized(&[0.0, 0.0]).is_none());
        assert!(normalized(&[f32::NAN, 1.0]).is_none());
    }
}
