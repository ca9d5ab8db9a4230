//! Feeding, durability and recovery: upserts replace and deletes remove in
//! both parts, watermarks survive a reopen, a crash between snapshots is
//! repaired by re-feeding from `watermark()`, a dimension change resets the
//! vector part, and a rejected batch leaves no trace.

use crate::common;

use common::*;
use roster_index::{Change, SearchIndex, VectorStrategy};

#[test]
fn upsert_replaces_and_delete_removes_in_both_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Some(DIMS), manual_persist());
    let mut r = rng(1);
    let (va, vb) = (random_unit(&mut r, DIMS), random_unit(&mut r, DIMS));
    index
        .apply(
            vec![
                doc("k", "t", "s", "apple orchard", Some(va.clone())),
                doc("other", "t", "s", "pear", Some(vb.clone())),
            ],
            1,
        )
        .expect("apply");
    index
        .apply(vec![doc("k", "t", "s", "banana boat", Some(vb.clone()))], 2)
        .expect("apply");
    let stats = index.stats();
    assert_eq!((stats.docs, stats.vectors), (2, 2));
    assert!(index
        .text_search(&query("t", &["s"], "apple", None, 10))
        .expect("q")
        .is_empty());
    let hits = index
        .text_search(&query("t", &["s"], "banana", None, 10))
        .expect("q");
    assert_eq!(keys(&hits), vec!["k"]);
    // The vector was replaced too: k now scores like vb.
    for strategy in [VectorStrategy::Exact, VectorStrategy::Ann] {
        let hits = index
            .vector_search_with(&query("t", &["s"], "", Some(vb.clone()), 2), strategy)
            .expect("v");
        assert_eq!(hits.len(), 2);
        assert!(
            hits.iter().all(|h| (h.score - 1.0).abs() < 1e-4),
            "{hits:?}"
        );
    }
    // Moving k to another scope removes it from the first.
    index
        .apply(vec![doc("k", "t", "s2", "banana", Some(va.clone()))], 3)
        .expect("apply");
    assert!(index
        .text_search(&query("t", &["s"], "banana", None, 10))
        .expect("q")
        .is_empty());
    let v = index
        .exact_vector_search(&query("t", &["s"], "", Some(va.clone()), 10))
        .expect("v");
    assert_eq!(keys(&v), vec!["other"]);
    // An upsert without a vector drops the vector but keeps the text.
    index
        .apply(vec![doc("k", "t", "s2", "banana", None)], 4)
        .expect("apply");
    assert_eq!(index.stats().vectors, 1);
    assert!(index
        .exact_vector_search(&query("t", &["s2"], "", Some(va.clone()), 10))
        .expect("v")
        .is_empty());
    assert_eq!(
        keys(
            &index
                .text_search(&query("t", &["s2"], "banana", None, 10))
                .expect("q")
        ),
        vec!["k"]
    );
    // Delete removes from both; deleting an absent key is fine.
    index
        .apply(vec![delete("other"), delete("never-existed")], 5)
        .expect("apply");
    assert!(index
        .text_search(&query("t", &["s"], "pear", None, 10))
        .expect("q")
        .is_empty());
    assert!(index
        .exact_vector_search(&query("t", &["s"], "", Some(vb.clone()), 10))
        .expect("v")
        .is_empty());
    assert!(index
        .vector_search_with(&query("t", &["s"], "", Some(vb), 10), VectorStrategy::Ann)
        .expect("v")
        .is_empty());
    let stats = index.stats();
    assert_eq!((stats.docs, stats.vectors), (1, 0));
}

#[test]
fn last_change_of_a_key_in_a_batch_wins() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Some(DIMS), manual_persist());
    let mut r = rng(2);
    let (va, vb) = (random_unit(&mut r, DIMS), random_unit(&mut r, DIMS));
    index
        .apply(
            vec![
                doc("k", "t", "s", "first", Some(va.clone())),
                delete("k"),
                doc("k", "t", "s", "second", Some(vb.clone())),
                doc("gone", "t", "s", "first", Some(va.clone())),
                delete("gone"),
            ],
            1,
        )
        .expect("apply");
    assert_eq!(
        keys(
            &index
                .text_search(&query("t", &["s"], "first second", None, 10))
                .expect("q")
        ),
        vec!["k"]
    );
    let v = index
        .exact_vector_search(&query("t", &["s"], "", Some(vb), 10))
        .expect("v");
    assert_eq!(keys(&v), vec!["k"]);
    assert!((v[0].score - 1.0).abs() < 1e-4);
    assert_eq!(index.stats().vectors, 1);
}

#[test]
fn watermark_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = rng(3);
    let v = random_unit(&mut r, DIMS);
    {
        let index = open(dir.path(), Some(DIMS), manual_persist());
        assert_eq!(index.watermark(), 0);
        index
            .apply(vec![doc("a", "t", "s", "hello world", Some(v.clone()))], 5)
            .expect("apply");
        index.persist().expect("persist");
        index
            .apply(vec![], 9)
            .expect("empty batch still moves the watermark");
        index.persist().expect("persist");
        assert_eq!(index.watermark(), 9);
    }
    let index = open(dir.path(), Some(DIMS), manual_persist());
    assert_eq!(index.watermark(), 9);
    assert_eq!(index.text_watermark(), 9);
    assert_eq!(index.vector_watermark(), 9);
    assert_eq!(
        keys(
            &index
                .search(&query("t", &["s"], "hello", Some(v), 5))
                .expect("q")
        ),
        vec!["a"]
    );
    // Without a vector part the watermark is the full-text one.
    drop(index);
    let index = open(dir.path(), None, manual_persist());
    assert_eq!(index.watermark(), 9);
    assert_eq!(index.stats().dimensions, None);
}

/// Synthetic change log: batches of upserts, re-upserts and deletes.
fn change_log() -> Vec<(Vec<Change>, u64)> {
    let mut r = rng(4);
    let words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa"];
    let mut batches = Vec::new();
    for b in 0..8u64 {
        let mut changes = Vec::new();
        for i in 0..30u64 {
            let n = (b * 17 + i * 7) % 60;
            let key = format!("doc{n}");
            if (b + i) % 9 == 0 {
                changes.push(delete(&key));
                continue;
            }
            let text = format!(
                "{} {} {n}",
                words[(n % 7) as usize],
                words[((b + i) % 7) as usize]
            );
            let vector = ((b + n) % 5 != 0).then(|| random_unit(&mut r, DIMS));
            let scope = if n % 3 == 0 { "s1" } else { "s2" };
            changes.push(doc(&key, "t", scope, &text, vector));
        }
        batches.push((changes, (b + 1) * 10));
    }
    batches
}

fn snapshot_results(index: &SearchIndex) -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
    let mut r = rng(5);
    (0..10)
        .map(|i| {
            let q = query(
                "t",
                &["s1", "s2"],
                ["alpha", "beta gamma", "omega 7", "kappa delta"][i % 4],
                Some(random_unit(&mut r, DIMS)),
                // Deep enough to return every match: BM25 statistics count
                // deleted-but-unmerged documents, so only sets are comparable.
                100,
            );
            (
                keys(&index.exact_vector_search(&q).expect("exact")),
                sorted_keys(&index.text_search(&q).expect("text")),
                sorted_keys(&index.search_exact(&q).expect("hybrid")),
            )
        })
        .collect()
}

#[test]
fn crash_between_snapshots_is_repaired_by_refeeding() {
    let log = change_log();
    let crashed = tempfile::tempdir().expect("tempdir");
    {
        let index = open(crashed.path(), Some(DIMS), manual_persist());
        for (changes, wm) in &log[..3] {
            index.apply(changes.clone(), *wm).expect("apply");
        }
        index.persist().expect("persist");
        for (changes, wm) in &log[3..6] {
            index.apply(changes.clone(), *wm).expect("apply");
        }
        // Dropped without persist: a crash as far as the vector part knows.
    }
    let index = open(crashed.path(), Some(DIMS), manual_persist());
    assert_eq!(index.vector_watermark(), 30);
    assert_eq!(index.text_watermark(), 60);
    assert_eq!(
        index.watermark(),
        30,
        "the caller must re-feed from the vector snapshot"
    );
    // Re-feed everything after the watermark (the full-text part sees some
    // batches twice), then the rest of the log.
    for (changes, wm) in log.iter().filter(|(_, wm)| *wm > index.watermark()) {
        index.apply(changes.clone(), *wm).expect("re-feed");
    }
    assert_eq!(index.watermark(), 30, "not yet persisted");
    index.persist().expect("persist");
    assert_eq!(index.watermark(), 80);

    let fresh_dir = tempfile::tempdir().expect("tempdir");
    let fresh = open(fresh_dir.path(), Some(DIMS), manual_persist());
    for (changes, wm) in &log {
        fresh.apply(changes.clone(), *wm).expect("apply");
    }
    assert_eq!(index.stats().docs, fresh.stats().docs);
    assert_eq!(index.stats().vectors, fresh.stats().vectors);
    assert_eq!(snapshot_results(&index), snapshot_results(&fresh));

    // And the repaired index reopens to the same state.
    drop(index);
    let reopened = open(crashed.path(), Some(DIMS), manual_persist());
    assert_eq!(reopened.watermark(), 80);
    assert_eq!(snapshot_results(&reopened), snapshot_results(&fresh));
}

#[test]
fn reapplying_at_or_below_the_watermark_is_harmless() {
    let log = change_log();
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Some(DIMS), manual_persist());
    for (changes, wm) in &log {
        index.apply(changes.clone(), *wm).expect("apply");
    }
    let before = snapshot_results(&index);
    // Replay the last two batches in order: the final state is unchanged.
    for (changes, wm) in &log[6..] {
        index.apply(changes.clone(), *wm).expect("replay");
    }
    assert_eq!(snapshot_results(&index), before);
}

#[test]
fn automatic_snapshot_after_enough_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = roster_index::IndexOptions {
        persist_max_pending: 5,
        ..manual_persist()
    };
    let index = open(dir.path(), Some(DIMS), options);
    let mut r = rng(6);
    index
        .apply(
            vec![doc("a", "t", "s", "x", Some(random_unit(&mut r, DIMS)))],
            1,
        )
        .expect("apply");
    assert_eq!(index.vector_watermark(), 0);
    let batch: Vec<_> = (0..5)
        .map(|i| {
            doc(
                &format!("b{i}"),
                "t",
                "s",
                "x",
                Some(random_unit(&mut r, DIMS)),
            )
        })
        .collect();
    index.apply(batch, 2).expect("apply");
    assert_eq!(index.vector_watermark(), 2);
    assert_eq!(index.watermark(), 2);
}

#[test]
fn dimension_change_resets_the_vector_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = rng(7);
    {
        let index = open(dir.path(), Some(8), manual_persist());
        index
            .apply(
                vec![doc("a", "t", "s", "hello", Some(random_unit(&mut r, 8)))],
                4,
            )
            .expect("apply");
        index.persist().expect("persist");
        assert_eq!(index.watermark(), 4);
    }
    let index = open(dir.path(), Some(DIMS), manual_persist());
    assert_eq!(index.vector_watermark(), 0);
    assert_eq!(index.watermark(), 0);
    assert_eq!(index.text_watermark(), 4);
    let stats = index.stats();
    assert_eq!(
        (stats.vectors, stats.docs, stats.dimensions),
        (0, 1, Some(DIMS))
    );
    let v = random_unit(&mut r, DIMS);
    assert!(index
        .exact_vector_search(&query("t", &["s"], "", Some(v.clone()), 5))
        .expect("v")
        .is_empty());
    // Re-feed with the new embedder's vectors.
    index
        .apply(vec![doc("a", "t", "s", "hello", Some(v.clone()))], 4)
        .expect("re-feed");
    index.persist().expect("persist");
    assert_eq!(index.watermark(), 4);
    assert_eq!(
        keys(
            &index
                .vector_search(&query("t", &["s"], "", Some(v), 5))
                .expect("v")
        ),
        vec!["a"]
    );
    // A wrong-sized query vector is a query error, not an empty answer.
    let err = index
        .search(&query("t", &["s"], "", Some(vec![1.0; 8]), 5))
        .expect_err("wrong dims");
    assert_eq!(err.code(), "invalid_query");
    drop(index);
    // Opening without vectors discards them; opening with them again starts at 0.
    drop(open(dir.path(), None, manual_persist()));
    let index = open(dir.path(), Some(DIMS), manual_persist());
    assert_eq!(index.vector_watermark(), 0);
}

#[test]
fn rejected_batch_leaves_no_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Some(DIMS), manual_persist());
    let mut r = rng(8);
    index
        .apply(
            vec![doc("a", "t", "s", "keep", Some(random_unit(&mut r, DIMS)))],
            1,
        )
        .expect("apply");
    for bad in [
        doc("b", "t", "s", "new", Some(vec![0.5; DIMS - 1])),
        doc("b", "t", "s", "new", Some(vec![0.0; DIMS])),
        doc("b", "t", "s", "new", Some(vec![f32::NAN; DIMS])),
        doc("", "t", "s", "new", None),
    ] {
        let batch = vec![
            doc("c", "t", "s", "new", Some(random_unit(&mut r, DIMS))),
            delete("a"),
            bad,
        ];
        let err = index.apply(batch, 2).expect_err("invalid batch");
        assert_eq!(err.code(), "invalid_document");
    }
    assert_eq!(index.text_watermark(), 1);
    let stats = index.stats();
    assert_eq!((stats.docs, stats.vectors), (1, 1));
    assert!(index
        .text_search(&query("t", &["s"], "new", None, 5))
        .expect("q")
        .is_empty());
    assert_eq!(
        keys(
            &index
                .text_search(&query("t", &["s"], "keep", None, 5))
                .expect("q")
        ),
        vec!["a"]
    );
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = open(dir.path(), Some(DIMS), manual_persist());
    let err = SearchIndex::open(dir.path(), Some(DIMS))
        .err()
        .expect("locked");
    assert_eq!(err.code(), "index_locked");
}

#[test]
fn corrupt_snapshot_falls_back_to_empty_vectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = rng(9);
    {
        let index = open(dir.path(), Some(DIMS), manual_persist());
        index
            .apply(
                vec![doc("a", "t", "s", "x", Some(random_unit(&mut r, DIMS)))],
                3,
            )
            .expect("apply");
        index.persist().expect("persist");
    }
    let vectors = dir.path().join("vectors");
    let current = std::fs::read_to_string(vectors.join("CURRENT")).expect("CURRENT");
    std::fs::write(vectors.join(current.trim()).join("meta.bin"), b"garbage").expect("damage");
    let index = open(dir.path(), Some(DIMS), manual_persist());
    assert_eq!(index.vector_watermark(), 0);
    assert_eq!(index.watermark(), 0);
    assert_eq!(index.text_watermark(), 3);
}
