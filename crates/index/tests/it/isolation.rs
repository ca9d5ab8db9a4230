//! Tenant and scope isolation on every search path: full-text, vector exact,
//! vector ANN, vector auto (small partition → exact), and hybrid with either
//! vector path. Every partition holds identical texts and vectors, the worst
//! case for leaks: only the filter can tell them apart.

use crate::common;

use common::*;
use roster_index::{Hit, SearchIndex, VectorStrategy};

const TENANTS: [&str; 3] = ["t1", "t2", "t1x"];
const SCOPES: [&str; 3] = ["ns:a", "ns:b", "src:c"];
const PER_PARTITION: usize = 40;

fn build(dir: &std::path::Path, options: roster_index::IndexOptions) -> SearchIndex {
    let index = open(dir, Some(DIMS), options);
    let mut r = rng(7);
    let shared: Vec<Vec<f32>> = (0..PER_PARTITION)
        .map(|_| random_unit(&mut r, DIMS))
        .collect();
    let mut changes = Vec::new();
    for tenant in TENANTS {
        for scope in SCOPES {
            for (i, v) in shared.iter().enumerate() {
                changes.push(doc(
                    &format!("{tenant}|{scope}|{i}"),
                    tenant,
                    scope,
                    &format!("common shared words item{i} apple banana"),
                    Some(v.clone()),
                ));
            }
        }
    }
    index.apply(changes, 1).expect("apply");
    index
}

fn assert_confined(hits: &[Hit], tenant: &str, scopes: &[&str], path: &str) {
    assert!(!hits.is_empty(), "{path}: expected hits");
    for hit in hits {
        let mut parts = hit.key.split('|');
        let (t, s) = (parts.next(), parts.next());
        assert_eq!(t, Some(tenant), "{path}: leaked {}", hit.key);
        assert!(
            s.is_some_and(|s| scopes.contains(&s)),
            "{path}: leaked {}",
            hit.key
        );
        assert!(
            scopes.contains(&hit.scope.as_str()),
            "{path}: scope {}",
            hit.scope
        );
    }
}

fn check_all_paths(index: &SearchIndex) {
    let mut r = rng(99);
    let cases: [(&str, &[&str]); 4] = [
        ("t1", &["ns:a"]),
        ("t2", &["ns:b", "src:c"]),
        ("t1x", &["src:c", "src:c"]),
        ("t1", &["ns:a", "ns:b", "src:c"]),
    ];
    for (tenant, scopes) in cases {
        let q = query(
            tenant,
            scopes,
            "apple item3 shared",
            Some(random_unit(&mut r, DIMS)),
            500,
        );
        let expected = PER_PARTITION * {
            let mut s = scopes.to_vec();
            s.sort();
            s.dedup();
            s.len()
        };
        let text = index.text_search(&q).expect("text");
        assert_confined(&text, tenant, scopes, "text");
        assert_eq!(text.len(), expected);
        for strategy in [
            VectorStrategy::Exact,
            VectorStrategy::Ann,
            VectorStrategy::Auto,
        ] {
            let hits = index.vector_search_with(&q, strategy).expect("vector");
            assert_confined(&hits, tenant, scopes, &format!("vector {strategy:?}"));
        }
        let exact = index.exact_vector_search(&q).expect("exact");
        assert_eq!(exact.len(), expected);
        assert_confined(&index.search(&q).expect("hybrid"), tenant, scopes, "hybrid");
        assert_confined(
            &index.search_exact(&q).expect("hybrid exact"),
            tenant,
            scopes,
            "hybrid exact",
        );
        // Vector-only hybrid (no text terms) and text-only hybrid.
        let mut vq = q.clone();
        vq.text = String::new();
        assert_confined(
            &index.search(&vq).expect("hybrid vector-only"),
            tenant,
            scopes,
            "hybrid/v",
        );
        let mut tq = q.clone();
        tq.vector = None;
        assert_confined(
            &index.search(&tq).expect("hybrid text-only"),
            tenant,
            scopes,
            "hybrid/t",
        );
    }
    // Unknown tenant, unknown scope, and a tenant that is a prefix of another.
    let mut r = rng(3);
    for (tenant, scopes) in [
        ("t3", vec!["ns:a"]),
        ("t1", vec!["ns:z"]),
        ("t", vec!["ns:a"]),
    ] {
        let q = query(
            tenant,
            &scopes,
            "apple",
            Some(random_unit(&mut r, DIMS)),
            10,
        );
        assert!(index.text_search(&q).expect("text").is_empty());
        assert!(index.search(&q).expect("hybrid").is_empty());
        for strategy in [
            VectorStrategy::Exact,
            VectorStrategy::Ann,
            VectorStrategy::Auto,
        ] {
            assert!(index
                .vector_search_with(&q, strategy)
                .expect("vector")
                .is_empty());
        }
    }
}

#[test]
fn isolation_with_exact_small_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = build(dir.path(), manual_persist());
    check_all_paths(&index);
}

#[test]
fn isolation_when_auto_takes_the_graph() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = build(dir.path(), always_ann());
    check_all_paths(&index);
    // The ANN path really finds the in-partition nearest neighbour.
    let mut r = rng(7);
    let first = random_unit(&mut r, DIMS);
    let q = query("t2", &["ns:b"], "", Some(first), 1);
    let hits = index
        .vector_search_with(&q, VectorStrategy::Ann)
        .expect("ann");
    assert_eq!(keys(&hits), vec!["t2|ns:b|0".to_string()]);
}

#[test]
fn isolation_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let index = build(dir.path(), manual_persist());
    index.persist().expect("persist");
    drop(index);
    let index = open(dir.path(), Some(DIMS), always_ann());
    check_all_paths(&index);
}
