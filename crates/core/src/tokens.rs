//! Token estimates for context budgeting.
//!
//! Exact counts depend on each model's tokenizer, which Roster does not ship;
//! the budget only needs a conservative estimate that is cheap and stable, so
//! it is computed once when an item is stored and summed afterwards.

/// Roughly four bytes of English per token, rounded up, plus a small per-item
/// overhead for role markers.
pub fn estimate_tokens(text: &str) -> u32 {
    let bytes = u32::try_from(text.len()).unwrap_or(u32::MAX);
    bytes.div_ceil(4).saturating_add(4)
}

#[cfg(test)]
mod tests {
    #[test]
    fn estimate_grows_with_text() {
        assert_eq!(super::estimate_tokens(""), 4);
        assert!(super::estimate_tokens(&"a".repeat(400)) > 100);
    }
}
