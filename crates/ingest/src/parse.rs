//! The `parse` pipeline: size gate, detection, per-kind extraction into
//! one text with its structure (outline, pages or rows), then chunking and
//! citation metadata.
//!
//! This module wires the others together; it must never contain
//! format-specific parsing itself, and must never do work proportional to
//! the input before the size check has passed.

use sha2::{Digest, Sha256};

use crate::chunk::{self, Span};
use crate::markdown::{self, Outline};
use crate::{
    csv, detect_kind, html, pdf, text, Chunk, ChunkOptions, DocumentKind, IngestError, Location,
    ParsedDocument,
};

/// Lower-case hex SHA-256 of `bytes`; stable across versions, so it can
/// be used to skip re-ingesting unchanged uploads.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Parses an upload into citable chunks; `path` is used for detection and
/// in error messages, `content_type` is only a hint.
pub fn parse(
    path: &str,
    content_type: Option<&str>,
    bytes: &[u8],
    options: &ChunkOptions,
) -> Result<ParsedDocument, IngestError> {
    let size = bytes.len() as u64;
    if size > options.max_bytes {
        return Err(IngestError::DocumentTooLarge {
            path: path.to_owned(),
            size,
            limit: options.max_bytes,
        });
    }
    let kind = detect_kind(path, content_type, bytes)?;
    let extracted = match kind {
        DocumentKind::Text => Extracted::plain(text::decode(path, bytes)?, None),
        DocumentKind::Markdown => {
            let text = text::decode(path, bytes)?;
            let outline = markdown::outline(&text);
            Extracted::plain(text, Some(outline))
        }
        DocumentKind::Html => {
            let source = text::decode(path, bytes)?;
            let page = html::extract(path, &source)?;
            let mut outline = markdown::outline(&page.text);
            if let Some(title) = &page.title {
                outline = outline.with_root(title);
            }
            Extracted::plain(page.text, Some(outline))
        }
        DocumentKind::Pdf => Extracted::pdf(path, bytes)?,
        DocumentKind::Csv => {
            let source = text::decode(path, bytes)?;
            let delimiter = csv::delimiter(path, content_type, &source);
            let table = csv::render(path, &source, delimiter)?;
            Extracted {
                text: table.text,
                outline: None,
                units: Units::Rows {
                    starts: table.row_starts,
                    numbers: table.row_numbers,
                },
                warnings: Vec::new(),
            }
        }
    };
    if extracted.text.trim().is_empty() {
        return Err(match kind {
            DocumentKind::Pdf => IngestError::NoText {
                path: path.to_owned(),
            },
            _ => IngestError::empty(path),
        });
    }
    if kind == DocumentKind::Pdf {
        text::check_garbled(path, &extracted.text)?;
    }
    Ok(ParsedDocument {
        kind,
        content_hash: content_hash(bytes),
        text_chars: extracted.text.chars().count() as u64,
        chunks: extracted.chunks(options),
        warnings: extracted.warnings,
    })
}

/// How locations are expressed beyond char offsets.
enum Units {
    Lines,
    /// Parallel: byte offset where each page's text starts, page number.
    Pages {
        starts: Vec<usize>,
        numbers: Vec<u32>,
    },
    /// Parallel: byte offset where each row's line starts, row number.
    Rows {
        starts: Vec<usize>,
        numbers: Vec<u64>,
    },
}

struct Extracted {
    text: String,
    outline: Option<Outline>,
    units: Units,
    warnings: Vec<String>,
}

impl Extracted {
    fn plain(text: String, outline: Option<Outline>) -> Self {
        Self {
            text,
            outline,
            units: Units::Lines,
            warnings: Vec::new(),
        }
    }

    /// Pages are joined by a blank line so a page break also reads as a
    /// paragraph break in the chunk text.
    fn pdf(path: &str, bytes: &[u8]) -> Result<Self, IngestError> {
        let extracted = pdf::extract(path, bytes)?;
        let mut text = String::new();
        let mut starts = Vec::with_capacity(extracted.pages.len());
        let mut numbers = Vec::with_capacity(extracted.pages.len());
        for (number, page) in &extracted.pages {
            let page = page.trim();
            if page.is_empty() {
                continue;
            }
            if !text.is_empty() {
                text.push_str("\n\n");
            }
            starts.push(text.len());
            numbers.push(*number);
            text.push_str(page);
        }
        let mut warnings = Vec::new();
        if !extracted.failed.is_empty() {
            let list = extracted
                .failed
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            warnings.push(format!(
                "{path}: page(s) {list} could not be read and were left out."
            ));
        }
        Ok(Self {
            text,
            outline: None,
            units: Units::Pages { starts, numbers },
            warnings,
        })
    }

    fn chunks(&self, options: &ChunkOptions) -> Vec<Chunk> {
        let (sections, overlap): (&[usize], usize) = match (&self.units, &self.outline) {
            // Rows stand alone, so repeating the previous rows adds nothing.
            (Units::Rows { starts, .. }, _) => (starts, 0),
            (Units::Pages { starts, .. }, _) => (starts, options.overlap_chars),
            (Units::Lines, Some(outline)) => (&outline.starts, options.overlap_chars),
            (Units::Lines, None) => (&[], options.overlap_chars),
        };
        chunk::split(&self.text, sections, options.target_chars, overlap)
            .into_iter()
            .enumerate()
            .map(|(i, span)| Chunk {
                ordinal: u32::try_from(i).unwrap_or(u32::MAX),
                text: self.text[span.start.byte..span.end.byte].to_owned(),
                location: self.locate(&span),
            })
            .collect()
    }

    fn locate(&self, span: &Span) -> Location {
        let mut loc = Location {
            char_start: span.start.ch,
            char_end: span.end.ch,
            ..Location::default()
        };
        // Spans are never empty, so `end - 1` is inside the last char.
        let last = span.end.byte - 1;
        match &self.units {
            Units::Lines => {
                loc.line_start = Some(span.start.line);
                loc.line_end = Some(span.end.line);
            }
            Units::Pages { starts, numbers } => {
                loc.page_start = unit_at(starts, numbers, span.start.byte);
                loc.page_end = unit_at(starts, numbers, last);
            }
            Units::Rows { starts, numbers } => {
                loc.row_start = unit_at(starts, numbers, span.start.byte);
                loc.row_end = unit_at(starts, numbers, last);
            }
        }
        if let Some(outline) = &self.outline {
            loc.heading = outline
                .dominant_heading(span.start.byte, span.end.byte)
                .map(str::to_owned);
        }
        loc
    }
}

fn unit_at<T: Copy>(starts: &[usize], numbers: &[T], byte: usize) -> Option<T> {
    let i = starts.partition_point(|&s| s <= byte);
    i.checked_sub(1).and_then(|i| numbers.get(i).copied())
}
