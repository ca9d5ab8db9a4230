//! Reciprocal rank fusion of the full-text and vector lists.
//!
//! Owns: the fusion formula `score(d) = Σ 1 / (k + rank_list(d))` with k = 60
//! over the lists a document appears in (ranks 1-based), and the final order:
//! score descending, then key ascending, so equal scores never depend on
//! thread timing or segment layout. Only ranks are used — BM25 and cosine
//! scores live on unrelated scales. Must never: look at tenants or scopes
//! (inputs are already confined) or reorder within the inputs.

use std::collections::HashMap;

use crate::text::rank;
use crate::types::Hit;

/// The RRF constant from Cormack et al.; dampens the head of each list.
pub const RRF_K: f64 = 60.0;

/// Fuses two ranked lists (best first) into at most `limit` hits. A list may
/// be empty: the other one alone then decides the order.
pub fn fuse(text: &[Hit], vector: &[Hit], limit: usize) -> Vec<Hit> {
    struct Acc {
        hit: Hit,
        parts: [Option<f64>; 2],
    }
    let mut by_key: HashMap<&str, Acc> = HashMap::with_capacity(text.len() + vector.len());
    for (list, hits) in [text, vector].into_iter().enumerate() {
        for (position, hit) in hits.iter().enumerate() {
            let r = rank(position);
            let acc = by_key.entry(hit.key.as_str()).or_insert_with(|| Acc {
                hit: Hit {
                    key: hit.key.clone(),
                    score: 0.0,
                    text_rank: None,
                    vector_rank: None,
                    scope: hit.scope.clone(),
                },
                parts: [None, None],
            });
            // A key listed twice in one list keeps its best rank.
            if acc.parts[list].is_none() {
                acc.parts[list] = Some(1.0 / (RRF_K + f64::from(r)));
                if list == 0 {
                    acc.hit.text_rank = Some(r);
                } else {
                    acc.hit.vector_rank = Some(r);
                }
            }
        }
    }
    let mut fused: Vec<(f64, Hit)> = by_key
        .into_values()
        .map(|acc| {
            // Add the larger term first so mirrored rank pairs produce
            // bit-identical sums and fall through to the key tie-break.
            let mut terms: Vec<f64> = acc.parts.iter().flatten().copied().collect();
            terms.sort_by(|a, b| b.total_cmp(a));
            let score: f64 = terms.iter().sum();
            (score, acc.hit)
        })
        .collect();
    fused.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.key.cmp(&b.1.key)));
    fused.truncate(limit);
    fused
        .into_iter()
        .map(|(score, mut hit)| {
            hit.score = score as f32;
            hit
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(keys: &[&str]) -> Vec<Hit> {
        keys.iter()
            .map(|k| Hit {
                key: (*k).to_string(),
                score: 1.0,
                text_rank: None,
                vector_rank: None,
                scope: "s".into(),
            })
            .collect()
    }

    fn keys(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.key.as_str()).collect()
    }

    #[test]
    fn found_by_both_ranks_first() {
        // b and c are in both lists; a and d in one each at rank 1.
        let fused = fuse(&list(&["a", "b", "c"]), &list(&["d", "c", "b"]), 10);
        assert_eq!(keys(&fused), vec!["b", "c", "a", "d"]);
        assert_eq!(fused[0].text_rank, Some(2));
        assert_eq!(fused[0].vector_rank, Some(3));
        let expected = 1.0 / 62.0 + 1.0 / 63.0;
        assert!((f64::from(fused[0].score) - expected).abs() < 1e-6);
        assert_eq!(fused[3].text_rank, None);
    }

    #[test]
    fn one_sided_and_limit() {
        assert_eq!(keys(&fuse(&[], &list(&["x", "y"]), 10)), vec!["x", "y"]);
        assert_eq!(keys(&fuse(&list(&["x", "y"]), &[], 1)), vec!["x"]);
        assert!(fuse(&[], &[], 5).is_empty());
    }
}
