//! Per-page text out of PDFs via pdf-extract, with its panics contained.
//!
//! pdf-extract (and lopdf under it) panic on some malformed files, so every
//! call into them runs under `catch_unwind`. This module must never let a
//! panic escape, and never install a panic hook: hooks are process-global
//! and would race other threads, so a caught panic may still print its
//! message to stderr.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pdf_extract::{Document, PlainTextOutput};

use crate::{DocumentKind, IngestError};

/// Text of each page that could be read, in page order.
pub(crate) struct Pages {
    /// `(1-based page number, text)`.
    pub pages: Vec<(u32, String)>,
    /// Pages that failed to extract and were left out.
    pub failed: Vec<u32>,
}

pub(crate) fn extract(path: &str, bytes: &[u8]) -> Result<Pages, IngestError> {
    let malformed = |reason: String| IngestError::malformed(path, DocumentKind::Pdf, reason);
    let mut doc = match catch_unwind(|| Document::load_mem(bytes)) {
        Ok(Ok(doc)) => doc,
        Ok(Err(e)) => return Err(malformed(e.to_string())),
        Err(_) => return Err(malformed("the PDF reader could not parse it".into())),
    };
    if doc.is_encrypted() {
        // Many PDFs are "encrypted" only to set permissions, with an empty
        // user password; those read fine once decrypted.
        let decrypted = catch_unwind(AssertUnwindSafe(|| doc.decrypt("")));
        if !matches!(decrypted, Ok(Ok(()))) {
            return Err(malformed("it is password-protected".into()));
        }
    }
    let numbers: Vec<u32> = match catch_unwind(AssertUnwindSafe(|| doc.get_pages())) {
        Ok(pages) => pages.into_keys().collect(),
        Err(_) => return Err(malformed("its page tree is damaged".into())),
    };
    let mut out = Pages {
        pages: Vec::with_capacity(numbers.len()),
        failed: Vec::new(),
    };
    for number in numbers {
        match page_text(&doc, number) {
            Some(text) => out.pages.push((number, text)),
            None => out.failed.push(number),
        }
    }
    if out.pages.is_empty() && !out.failed.is_empty() {
        return Err(malformed(format!(
            "none of its {} pages could be read",
            out.failed.len()
        )));
    }
    Ok(out)
}

/// `None` when the page errors or panics. The document is only read here,
/// so unwinding out of a page leaves nothing half-updated for the next.
fn page_text(doc: &Document, number: u32) -> Option<String> {
    let mut text = String::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut output = PlainTextOutput::new(&mut text);
        pdf_extract::output_doc_page(doc, &mut output, number)
    }));
    matches!(result, Ok(Ok(()))).then_some(text)
}
