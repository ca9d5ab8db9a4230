//! Reciprocal rank fusion of the full-text and vector lists.
//!
//! Owns: the fusion formula `score(d) = Σ w_list / (k + rank_list(d))` with
//! k = 60 over the lists a document appears in (ranks 1-based), and the
//! final order: score descending, then key ascending, so equal scores never
//! depend on thread timing or segment layout. Ranks decide, not raw scores —
//! BM25 and cosine live on unrelated scales — with two corrections measured
//! on questions worded unlike the facts they ask about
//! (`crates/memory/tests/quality.rs`): a vector candidate far less similar
//! than the best one is no candidate (in a small namespace every record is
//! in the top 40, and plain RRF rewarded a record that merely shared one
//! word with the question for also being "found" by vectors; without text
//! hits nothing is dropped), and the vector
//! list weighs a little more, so its first answer beats a lone word match.
//! Must never: look at tenants or scopes (inputs are already confined) or
//! reorder within the inputs.

use std::collections::HashMap;

use crate::text::rank;
use crate::types::Hit;

/// The RRF constant from Cormack et al.; dampens the head of each list.
pub const RRF_K: f64 = 60.0;
/// Weight of the vector list (the text list's is 1).
pub const VECTOR_WEIGHT: f64 = 1.25;
/// Vector candidates whose similarity is this much below the best one's
/// are dropped before fusion.
pub const VECTOR_MARGIN: f32 = 0.3;

/// Fuses two ranked lists (best first) into at most `limit` hits. A list may
/// be empty: the other one alone then decides the order.
pub fn fuse(text: &[Hit], vector: &[Hit], limit: usize) -> Vec<Hit> {
    struct Acc {
        hit: Hit,
        parts: [Option<f64>; 2],
    }
    let mut by_key: HashMap<&str, Acc> = HashMap::with_capacity(text.len() + vector.len());
    // Without text hits there is nothing to over-reward: vectors alone decide.
    let floor = match vector.first() {
        Some(best) if !text.is_empty() => best.score - VECTOR_MARGIN,
        _ => f32::MIN,
    };
    let kept = vector.iter().take_while(|h| h.score >= floor).count();
    let vector = &vector[..kept];
    for (list, hits) in [text, vector].into_iter().enumerate() {
        let weight = if list == 0 { 1.0 } else { VECTOR_WEIGHT };
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
                acc.parts[list] = Some(weight / (RRF_K + f64::from(r)));
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
        // b and c are in both lists; a and d in one each at rank 1, and the
        // vector list weighs more.
        let fused = fuse(&list(&["a", "b", "c"]), &list(&["d", "c", "b"]), 10);
        assert_eq!(keys(&fused), vec!["c", "b", "d", "a"]);
        assert_eq!(fused[0].text_rank, Some(3));
        assert_eq!(fused[0].vector_rank, Some(2));
        let expected = 1.0 / 63.0 + VECTOR_WEIGHT / 62.0;
        assert!((f64::from(fused[0].score) - expected).abs() < 1e-6);
        assert_eq!(fused[3].vector_rank, None);
    }

    #[test]
    fn vector_candidates_far_below_the_best_are_dropped() {
        let mut vector = list(&["right", "word_match"]);
        vector[0].score = 0.62;
        vector[1].score = 0.12;
        // The text list's top hit shares one word with the query; vectors
        // find the right record first and the word match far below it.
        let fused = fuse(&list(&["word_match"]), &vector, 10);
        assert_eq!(keys(&fused), vec!["right", "word_match"]);
        assert_eq!(fused[1].vector_rank, None, "dropped from the vector list");
    }

    #[test]
    fn one_sided_and_limit() {
        assert_eq!(keys(&fuse(&[], &list(&["x", "y"]), 10)), vec!["x", "y"]);
        assert_eq!(keys(&fuse(&list(&["x", "y"]), &[], 1)), vec!["x"]);
        assert!(fuse(&[], &[], 5).is_empty());
    }
}
