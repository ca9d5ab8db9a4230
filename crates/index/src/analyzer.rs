//! Turning text into index terms, identically for documents and queries, and
//! confining every term to one (tenant, scope) partition.
//!
//! Owns: the English analyzer (split on non-alphanumerics, drop absurdly long
//! tokens, lowercase, Snowball English stemmer) and the partition prefix that
//! namespaces each indexed term. Because a term carries its partition, a query
//! can only ever read postings of the partitions it names: tenant/scope
//! filtering happens inside the search, and the query stays a pure
//! disjunction of term queries, which tantivy answers with block-max WAND.
//! Must never: interpret query syntax — user text is only ever tokenised, so
//! quotes, colons, parentheses or operators are just characters.

use std::collections::HashSet;

use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};

/// Function words dropped before stemming: articles, pronouns, auxiliaries
/// and question words. Questions ("how many days do I get?") are mostly
/// made of them, and in a small namespace each one matches nearly every
/// record, so BM25 ranked on them instead of on the words that carry the
/// meaning (measured in `crates/memory/tests/quality.rs`).
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but",
    "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her",
    "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of",
    "on", "or", "our", "she", "should", "so", "such", "than", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "those", "to", "us", "was", "we", "were", "what",
    "when", "where", "which", "who", "whom", "why", "will", "with", "would", "you", "your",
];

/// Tokens longer than this (bytes) are noise (base64, hashes) and are dropped.
const MAX_TOKEN_BYTES: usize = 40;

/// A query is cut to this many distinct terms: more adds latency, not relevance
/// (a pasted 10 KB page would otherwise become thousands of clauses).
pub(crate) const MAX_QUERY_TERMS: usize = 64;

/// The analyzer shared by indexing and querying.
#[derive(Clone)]
pub(crate) struct Analyzer {
    inner: TextAnalyzer,
}

impl Analyzer {
    pub(crate) fn english() -> Self {
        let inner = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
            .filter(LowerCaser)
            .filter(StopWordFilter::remove(
                STOP_WORDS.iter().map(|w| (*w).to_owned()),
            ))
            .filter(Stemmer::new(Language::English))
            .build();
        Analyzer { inner }
    }

    /// Every token of `text`, in order, with repeats (term frequency matters for BM25).
    pub(crate) fn tokens(&mut self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stream = self.inner.token_stream(text);
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    /// Distinct tokens of a query, first occurrence first, at most `MAX_QUERY_TERMS`.
    pub(crate) fn query_terms(&mut self, text: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut stream = self.inner.token_stream(text);
        while stream.advance() && out.len() < MAX_QUERY_TERMS {
            let token = &stream.token().text;
            if seen.insert(token.clone()) {
                out.push(token.clone());
            }
        }
        out
    }
}

/// The prefix that puts a term into one partition. Length-prefixing both parts
/// keeps the encoding injective whatever characters tenant and scope contain
/// (a plain separator could be forged by a scope that contains it).
pub(crate) fn partition_prefix(tenant: &str, scope: &str) -> String {
    format!("{}:{}{}:{}|", tenant.len(), tenant, scope.len(), scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_and_lowercases() {
        let mut a = Analyzer::english();
        assert_eq!(a.tokens("Running DOGS ran"), vec!["run", "dog", "ran"]);
    }

    #[test]
    fn query_terms_dedupe_and_ignore_syntax() {
        let mut a = Analyzer::english();
        assert_eq!(
            a.query_terms("\"(:*AND OR -dogs dog🙂 NOT"),
            vec!["dog"],
            "operators are plain (stop) words"
        );
        assert_eq!(
            a.query_terms("How many days do I get?"),
            vec!["mani", "day", "get"]
        );
        let long = "word ".repeat(5000) + &(0..200).map(|i| format!("w{i} ")).collect::<String>();
        assert_eq!(a.query_terms(&long).len(), MAX_QUERY_TERMS);
    }

    #[test]
    fn prefix_is_injective() {
        assert_ne!(partition_prefix("a:1", "b"), partition_prefix("a", "1:b"));
        assert_ne!(partition_prefix("a|", "b"), partition_prefix("a", "|b"));
    }
}
