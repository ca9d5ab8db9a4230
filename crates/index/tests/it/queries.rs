//! Query behaviour: fusion order on a hand-made example, hostile query text,
//! empty indexes, validation, and searches racing with applies.

use crate::common;

use std::sync::Arc;

use common::*;
use roster_index::{fuse, VectorStrategy};

#[test]
fn fusion_puts_documents_found_by_both_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Some(4), manual_persist());
    let q = vec![1.0, 0.0, 0.0, 0.0];
    let s = std::f32::consts::FRAC_1_SQRT_2;
    index
        .apply(
            vec![
                // Found by text (rank 1 or 2) and by vector (rank 2).
                doc("both", "t", "s", "alpha", Some(vec![s, s, 0.0, 0.0])),
                // Text only (no vector), strongest BM25.
                doc("text-only", "t", "s", "alpha alpha alpha", None),
                // Vector only: identical to the query, no matching word.
                doc("vector-only", "t", "s", "zeta", Some(q.clone())),
                // Far in both.
                doc("neither", "t", "s", "omega", Some(vec![0.0, 0.0, 0.0, 1.0])),
            ],
            1,
        )
        .expect("apply");
    let query = query("t", &["s"], "alpha", Some(q), 3);
    let hits = index.search(&query).expect("search");
    assert_eq!(hits[0].key, "both");
    assert_eq!(hits[0].vector_rank, Some(2));
    assert!(hits[0].text_rank.is_some());
    // The rest: one-sided rank-1 hits, ordered by their RRF score then key.
    assert_eq!(hits.len(), 3);
    let text = index
        .text_search(&roster_index::Query {
            limit: query.candidates,
            ..query.clone()
        })
        .expect("text");
    let vector = index
        .vector_search(&roster_index::Query {
            limit: query.candidates,
            ..query.clone()
        })
        .expect("vector");
    assert_eq!(
        keys(&vector)[..2],
        ["vector-only".to_string(), "both".to_string()]
    );
    assert_eq!(hits, fuse(&text, &vector, 3));
    for pair in hits.windows(2) {
        assert!(
            pair[0].score > pair[1].score
                || (pair[0].score == pair[1].score && pair[0].key < pair[1].key)
        );
    }
    // No vector in the query: full-text order.
    let text_only = index
        .search(&roster_index::Query {
            vector: None,
            ..query.clone()
        })
        .expect("search");
    assert_eq!(keys(&text_only), keys(&text)[..2].to_vec());
    // No matching text: the vector list alone decides.
    let vector_only = index
        .search(&roster_index::Query {
            text: "nothing-matches".into(),
            ..query.clone()
        })
        .expect("search");
    assert_eq!(keys(&vector_only), keys(&vector)[..3].to_vec());
}

#[test]
fn equal_scores_break_ties_by_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Some(4), manual_persist());
    let v = vec![0.5, 0.5, 0.5, 0.5];
    let changes = ["d", "b", "a", "c"]
        .iter()
        .map(|k| doc(k, "t", "s", "same words", Some(v.clone())))
        .collect();
    index.apply(changes, 1).expect("apply");
    let q = query("t", &["s"], "same", Some(v), 10);
    let expected = vec!["a", "b", "c", "d"];
    assert_eq!(keys(&index.text_search(&q).expect("text")), expected);
    assert_eq!(
        keys(&index.exact_vector_search(&q).expect("exact")),
        expected
    );
    assert_eq!(
        keys(
            &index
                .vector_search_with(&q, VectorStrategy::Ann)
                .expect("ann")
        ),
        expected
    );
    assert_eq!(keys(&index.search(&q).expect("hybrid")), expected);
}

#[test]
fn hostile_query_text_is_harmless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Some(DIMS), manual_persist());
    let mut r = rng(1);
    index
        .apply(
            vec![doc(
                "a",
                "t",
                "s",
                "and or not the plain text",
                Some(random_unit(&mut r, DIMS)),
            )],
            1,
        )
        .expect("apply");
    let big: String = (0..2000).map(|i| format!("w{i} ")).collect::<String>() + &"x".repeat(3000);
    assert!(big.len() >= 10_000);
    for text in [
        "\"(:*AND OR -",
        "text:plain AND (or",
        "🦀🔥 👩‍👩‍👧 ",
        "\u{0}\u{1}\u{202e}",
        "a\"b'c:d(e)f[g]h{i}j^k~l*m?n\\o/p",
        "",
        "     ",
        &big,
    ] {
        let q = query("t", &["s"], text, Some(random_unit(&mut r, DIMS)), 10);
        index.text_search(&q).expect("text search");
        index.search(&q).expect("hybrid search");
    }
    let hits = index
        .text_search(&query("t", &["s"], "\"(:*plain AND OR -", None, 10))
        .expect("q");
    assert_eq!(keys(&hits), vec!["a"], "operators are plain words");
}

#[test]
fn empty_index_returns_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    for dims in [Some(DIMS), None] {
        let index = open(
            &dir.path().join(format!("{dims:?}")),
            dims,
            manual_persist(),
        );
        let q = query("t", &["s"], "anything", Some(vec![0.25; DIMS]), 10);
        assert!(index.search(&q).expect("search").is_empty());
        assert!(index.text_search(&q).expect("text").is_empty());
        assert!(index.vector_search(&q).expect("vector").is_empty());
        assert!(index.exact_vector_search(&q).expect("exact").is_empty());
        assert!(index
            .vector_search_with(&q, VectorStrategy::Ann)
            .expect("ann")
            .is_empty());
        index.persist().expect("persist empty");
        let stats = index.stats();
        assert_eq!((stats.docs, stats.vectors, stats.text_watermark), (0, 0, 0));
    }
}

#[test]
fn invalid_queries_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = open(dir.path(), Some(DIMS), manual_persist());
    let no_scope = query("t", &[], "x", None, 10);
    assert_eq!(
        index.search(&no_scope).expect_err("no scope").code(),
        "invalid_query"
    );
    assert_eq!(
        index.vector_search(&no_scope).expect_err("no scope").code(),
        "invalid_query"
    );
    let zero = query("t", &["s"], "x", Some(vec![0.0; DIMS]), 10);
    index
        .apply(vec![doc("a", "t", "s", "x", Some(vec![1.0; DIMS]))], 1)
        .expect("apply");
    assert_eq!(
        index.vector_search(&zero).expect_err("zero").code(),
        "invalid_query"
    );
    assert!(index
        .search(&query("t", &["s"], "x", None, 0))
        .expect("limit 0")
        .is_empty());
}

#[test]
fn searches_run_while_batches_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = Arc::new(open(dir.path(), Some(DIMS), always_ann()));
    let writer = {
        let index = Arc::clone(&index);
        std::thread::spawn(move || {
            let mut r = rng(2);
            for b in 0..20u64 {
                let changes = (0..300)
                    .map(|i| {
                        let tenant = if i % 2 == 0 { "even" } else { "odd" };
                        doc(
                            &format!("{tenant}-{}", (b * 300 + i) % 2000),
                            tenant,
                            "s",
                            "word",
                            Some(random_unit(&mut r, DIMS)),
                        )
                    })
                    .collect();
                index.apply(changes, b + 1).expect("apply");
            }
        })
    };
    let mut r = rng(3);
    while !writer.is_finished() {
        let q = query("even", &["s"], "word", Some(random_unit(&mut r, DIMS)), 20);
        for hits in [
            index.search(&q).expect("search"),
            index.vector_search(&q).expect("vector"),
        ] {
            assert!(
                hits.iter().all(|h| h.key.starts_with("even-")),
                "leak during apply"
            );
        }
    }
    writer.join().expect("writer");
    assert_eq!(index.stats().vectors, 2000);
}
