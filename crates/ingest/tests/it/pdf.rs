//! PDF ingestion against PDFs generated in the test: page numbers in
//! locations, text-less pages, and corrupt input that must never panic.

use crate::common;

use common::{pdf, Page};
use roster_ingest::{parse, ChunkOptions, DocumentKind};

#[test]
fn text_pdf_records_pages() {
    let bytes = pdf(&[
        Page::Text(&["Welcome to the handbook.", "Read it all."]),
        Page::Text(&["Parental leave is sixteen weeks."]),
        Page::Blank,
        Page::Text(&["Expenses are paid monthly."]),
    ]);
    let doc = parse("handbook.pdf", None, &bytes, &ChunkOptions::default()).expect("parse");
    assert_eq!(doc.kind, DocumentKind::Pdf);
    assert_eq!(doc.chunks.len(), 1, "{:#?}", doc.chunks);
    let chunk = &doc.chunks[0];
    assert!(chunk.text.contains("Welcome to the handbook."), "{chunk:?}");
    assert!(
        chunk.text.contains("Parental leave is sixteen weeks."),
        "{chunk:?}"
    );
    assert!(
        chunk.text.contains("Expenses are paid monthly."),
        "{chunk:?}"
    );
    assert_eq!(chunk.location.page_start, Some(1));
    assert_eq!(chunk.location.page_end, Some(4));
    assert_eq!(chunk.location.line_start, None);
    assert_eq!(chunk.location.cite(), "pages 1-4");
    assert!(doc.warnings.is_empty());
}

#[test]
fn small_chunks_cite_single_pages() {
    let one: Vec<String> = (0..8).map(|i| format!("Page one sentence {i}.")).collect();
    let two: Vec<String> = (0..8).map(|i| format!("Page two sentence {i}.")).collect();
    let one: Vec<&str> = one.iter().map(String::as_str).collect();
    let two: Vec<&str> = two.iter().map(String::as_str).collect();
    let bytes = pdf(&[Page::Text(&one), Page::Text(&two)]);
    let options = ChunkOptions {
        target_chars: 150,
        overlap_chars: 30,
        ..ChunkOptions::default()
    };
    let doc = parse("p.pdf", Some("application/pdf"), &bytes, &options).expect("parse");
    assert!(doc.chunks.len() >= 2, "{:#?}", doc.chunks);
    for chunk in &doc.chunks {
        let loc = &chunk.location;
        let expected = if chunk.text.contains("Page one") {
            1
        } else {
            2
        };
        assert_eq!(loc.page_start, Some(expected), "{chunk:?}");
        assert_eq!(loc.page_end, Some(expected), "{chunk:?}");
        assert_eq!(loc.cite(), format!("page {expected}"));
        assert!(!(chunk.text.contains("Page one") && chunk.text.contains("Page two")));
    }
    let first_two = doc
        .chunks
        .iter()
        .position(|c| c.text.contains("Page two"))
        .expect("page two chunk");
    assert!(doc.chunks[first_two]
        .text
        .starts_with("Page two sentence 0."));
}

#[test]
fn pdf_without_text_is_no_text() {
    for pages in [
        vec![Page::Drawing],
        vec![Page::Blank, Page::Drawing],
        vec![],
    ] {
        let bytes = pdf(&pages);
        let err = parse("scan.pdf", None, &bytes, &ChunkOptions::default()).expect_err("no text");
        assert_eq!(err.code(), "no_text", "{err}");
        assert!(err.to_string().contains("scan.pdf"), "{err}");
    }
}

#[test]
fn corrupt_pdf_is_malformed() {
    let cases: Vec<Vec<u8>> = vec![
        b"%PDF-1.7\nthis is not a pdf at all".to_vec(),
        b"%PDF-".to_vec(),
        b"not even a header".to_vec(),
        pdf(&[Page::Text(&["cut short"])])[..60].to_vec(),
    ];
    for bytes in cases {
        let err = parse("broken.pdf", None, &bytes, &ChunkOptions::default())
            .expect_err("corrupt pdf must be refused");
        assert_eq!(err.code(), "malformed_document", "{err}");
        assert!(err.to_string().starts_with("broken.pdf "), "{err}");
    }
}

/// Mangles a valid PDF at many positions; whatever the outcome, it must be
/// a value, never a panic escaping `parse`.
#[test]
fn damaged_pdfs_never_panic() {
    let good = pdf(&[
        Page::Text(&["Alpha beta gamma.", "Delta epsilon."]),
        Page::Text(&["Zeta eta theta."]),
    ]);
    let mut seed = 0x2545_F491_u32;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for round in 0..300 {
        let mut bytes = good.clone();
        let edits = 1 + (round % 4);
        for _ in 0..edits {
            let at = next() as usize % bytes.len();
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => bytes.truncate(at.max(8)),
                _ => bytes.insert(at, b"0()<>[]/\\ R obj"[next() as usize % 15]),
            }
        }
        let outcome = std::panic::catch_unwind(|| {
            parse("fuzz.pdf", None, &bytes, &ChunkOptions::default()).map(|d| d.chunks.len())
        });
        assert!(outcome.is_ok(), "parse panicked on round {round}");
    }
}

#[test]
fn pdf_chunks_are_deterministic() {
    let bytes = pdf(&[Page::Text(&["Same input, same output."])]);
    let a = parse("a.pdf", None, &bytes, &ChunkOptions::default()).expect("parse");
    let b = parse("a.pdf", None, &bytes, &ChunkOptions::default()).expect("parse");
    assert_eq!(a, b);
    assert_eq!(a.content_hash, roster_ingest::content_hash(&bytes));
}
