//! Chunking guarantees across kinds: bounded sizes, overlap, no empty
//! chunks, contiguous ordinals, exact offsets, determinism, and linear
//! behaviour on large inputs.

use crate::common;

use common::char_slice;
use roster_ingest::{content_hash, parse, ChunkOptions, ParsedDocument};

/// Deterministic prose with paragraphs, sentences of varying length and
/// some non-ASCII text.
fn prose(paragraphs: usize) -> String {
    let words = [
        "policy", "employee", "leave", "the", "of", "manager", "approval", "résumé", "über",
        "salary", "benefit", "and", "to", "a", "review", "日本",
    ];
    let mut out = String::new();
    let mut state = 7u64;
    for p in 0..paragraphs {
        if p % 5 == 0 {
            out.push_str(&format!("## Section {p}\n\n"));
        }
        let sentences = 2 + (p % 7);
        for _ in 0..sentences {
            let len = 4 + (state % 20) as usize;
            for w in 0..len {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                if w > 0 {
                    out.push(' ');
                }
                out.push_str(words[(state >> 33) as usize % words.len()]);
            }
            out.push_str(". ");
        }
        out.push_str("\n\n");
    }
    out
}

fn check_invariants(source: &str, doc: &ParsedDocument, options: &ChunkOptions) {
    let max = options.target_chars + options.target_chars / 2;
    assert!(!doc.chunks.is_empty());
    for (i, chunk) in doc.chunks.iter().enumerate() {
        assert_eq!(chunk.ordinal as usize, i);
        assert!(!chunk.text.trim().is_empty(), "empty chunk {i}");
        let len = chunk.text.chars().count();
        assert!(len <= max, "chunk {i} has {len} chars, max {max}");
        let loc = &chunk.location;
        assert_eq!(len as u64, loc.char_end - loc.char_start);
        assert_eq!(char_slice(source, loc.char_start, loc.char_end), chunk.text);
        if i > 0 {
            let prev = &doc.chunks[i - 1].location;
            assert!(loc.char_start > prev.char_start, "chunks must advance");
            if loc.char_start > prev.char_end {
                let gap = char_slice(source, prev.char_end, loc.char_start);
                assert!(gap.trim().is_empty(), "text lost between chunks: {gap:?}");
            }
        }
    }
}

#[test]
fn prose_chunks_respect_bounds_and_overlap() {
    let source = prose(200);
    let options = ChunkOptions::default();
    let doc = parse("policy.md", None, source.as_bytes(), &options).expect("parse");
    check_invariants(&source, &doc, &options);
    let mut overlapping = 0;
    for pair in doc.chunks.windows(2) {
        let (a, b) = (&pair[0].location, &pair[1].location);
        let starts_section = pair[1].text.starts_with("## ");
        if starts_section {
            assert!(b.char_start >= a.char_end, "no overlap into a new section");
        } else {
            overlapping += 1;
            let shared = a.char_end.saturating_sub(b.char_start);
            assert!((100..=300).contains(&shared), "overlap {shared}");
        }
    }
    assert!(overlapping > 10, "{overlapping} of {}", doc.chunks.len());
}

#[test]
fn overlap_begins_at_a_word_or_sentence() {
    let source = "Alpha beta gamma delta. ".repeat(500);
    let options = ChunkOptions {
        target_chars: 400,
        overlap_chars: 100,
        ..ChunkOptions::default()
    };
    let doc = parse("a.txt", None, source.as_bytes(), &options).expect("parse");
    check_invariants(&source, &doc, &options);
    for chunk in &doc.chunks {
        assert!(chunk.text.starts_with("Alpha"), "{:?}", chunk.text);
        assert!(chunk.text.ends_with("delta."), "{:?}", chunk.text);
    }
}

#[test]
fn one_giant_line_is_still_bounded() {
    let source = "x".repeat(50_000) + " tail";
    let options = ChunkOptions::default();
    let doc = parse("blob.txt", None, source.as_bytes(), &options).expect("parse");
    check_invariants(&source, &doc, &options);
    assert!(doc.chunks.iter().all(|c| c.location.line_start == Some(1)));
}

#[test]
fn zero_overlap_tiles_the_text() {
    let source = prose(30);
    let options = ChunkOptions {
        target_chars: 300,
        overlap_chars: 0,
        ..ChunkOptions::default()
    };
    let doc = parse("a.md", None, source.as_bytes(), &options).expect("parse");
    check_invariants(&source, &doc, &options);
    for pair in doc.chunks.windows(2) {
        let between = char_slice(
            &source,
            pair[0].location.char_end,
            pair[1].location.char_start,
        );
        assert!(
            between.trim().is_empty(),
            "only whitespace between: {between:?}"
        );
    }
}

#[test]
fn deterministic() {
    let source = prose(80);
    let options = ChunkOptions::default();
    let a = parse("a.md", None, source.as_bytes(), &options).expect("parse");
    let b = parse("a.md", None, source.as_bytes(), &options).expect("parse");
    assert_eq!(a, b);
    assert_eq!(a.content_hash, content_hash(source.as_bytes()));
    assert_eq!(
        content_hash(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let csv = "a,b\n".to_owned() + &"1,2\n".repeat(500);
    let a = parse("t.csv", None, csv.as_bytes(), &options).expect("parse");
    let b = parse("t.csv", None, csv.as_bytes(), &options).expect("parse");
    assert_eq!(a, b);
}

#[test]
fn odd_options_do_not_hang() {
    let source = prose(5);
    for (target, overlap) in [(1, 0), (1, 5), (10, 10), (10, 100), (50, 49)] {
        let options = ChunkOptions {
            target_chars: target,
            overlap_chars: overlap,
            ..ChunkOptions::default()
        };
        let doc = parse("a.txt", None, source.as_bytes(), &options).expect("parse");
        let max = target + target / 2;
        assert!(doc
            .chunks
            .iter()
            .all(|c| c.text.chars().count() <= max.max(1)));
    }
    let zero = ChunkOptions {
        target_chars: 0,
        ..ChunkOptions::default()
    };
    assert!(parse("a.txt", None, b"some words here", &zero).is_ok());
}

/// Linear-time guard: quadratic behaviour would make this take minutes.
#[test]
fn five_megabytes_of_text() {
    let mut source = prose(2_000);
    while source.len() < 5 * 1024 * 1024 {
        source.push_str(&source.clone());
    }
    let options = ChunkOptions::default();
    let doc = parse("big.md", None, source.as_bytes(), &options).expect("parse");
    assert_eq!(doc.text_chars, source.chars().count() as u64);
    assert!(doc.chunks.len() > 4_000);
    let last = doc.chunks.last().expect("chunks");
    let trimmed = source.trim_end().chars().count() as u64;
    assert_eq!(
        last.location.char_end, trimmed,
        "runs to the end of the text"
    );
    for (i, c) in doc.chunks.iter().enumerate() {
        assert_eq!(c.ordinal as usize, i);
        assert!(c.text.chars().count() <= 1800);
    }
}
