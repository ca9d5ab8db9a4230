//! The data types the crate hands out: document kinds, chunking options,
//! chunks and their citable locations.
//!
//! Plain data plus formatting only; this module must never parse or
//! inspect document bytes.

use serde::{Deserialize, Serialize};

/// The document formats the ingester understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Markdown,
    Text,
    Html,
    Pdf,
    Csv,
}

impl DocumentKind {
    /// The serde name, for storage and APIs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Markdown => "markdown",
            Self::Text => "text",
            Self::Html => "html",
            Self::Pdf => "pdf",
            Self::Csv => "csv",
        }
    }

    /// How the kind reads in a sentence shown to users.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Markdown => "Markdown",
            Self::Text => "plain text",
            Self::Html => "HTML",
            Self::Pdf => "PDF",
            Self::Csv => "CSV",
        }
    }
}

impl std::fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How large chunks should be and how much consecutive chunks share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChunkOptions {
    /// Preferred chunk size in characters; chunks stay under ~1.5x this.
    pub target_chars: usize,
    /// Characters repeated from the end of one chunk at the start of the
    /// next, so a fact split across a boundary is still retrievable.
    pub overlap_chars: usize,
    /// Documents larger than this are refused before any parsing.
    pub max_bytes: u64,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            target_chars: 1200,
            overlap_chars: 200,
            max_bytes: 100 * 1024 * 1024,
        }
    }
}

/// Where a chunk sits in its document.
///
/// Char offsets are always present and count `char`s of the extracted text
/// (half-open: `char_end` is exclusive); the other parts are present only
/// for the kinds where they mean something.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub char_start: u64,
    pub char_end: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_start: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_end: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_start: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_end: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_start: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_end: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
}

impl Location {
    /// A short citation for people, e.g. `pages 3-4` or
    /// `lines 10-24 (§ Leave > Parental leave)`.
    ///
    /// The most specific unit the document kind has wins: pages, then rows,
    /// then lines, then raw character offsets.
    pub fn cite(&self) -> String {
        let base = if let Some(start) = self.page_start {
            span(
                "page",
                "pages",
                u64::from(start),
                self.page_end.map(u64::from),
            )
        } else if let Some(start) = self.row_start {
            span("row", "rows", start, self.row_end)
        } else if let Some(start) = self.line_start {
            span(
                "line",
                "lines",
                u64::from(start),
                self.line_end.map(u64::from),
            )
        } else {
            format!("chars {}-{}", self.char_start, self.char_end)
        };
        match &self.heading {
            Some(h) if !h.is_empty() => format!("{base} (§ {h})"),
            _ => base,
        }
    }
}

fn span(one: &str, many: &str, start: u64, end: Option<u64>) -> String {
    match end {
        Some(end) if end > start => format!("{many} {start}-{end}"),
        _ => format!("{one} {start}"),
    }
}

/// One citable piece of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Position in the document's chunk list, from 0 without gaps.
    pub ordinal: u32,
    pub text: String,
    pub location: Location,
}

/// A parsed document: what it was, a fingerprint of its bytes, and its
/// chunks in reading order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedDocument {
    pub kind: DocumentKind,
    /// Lower-case hex SHA-256 of the raw uploaded bytes.
    pub content_hash: String,
    /// Length of the extracted text in chars; chunk offsets index into it.
    pub text_chars: u64,
    pub chunks: Vec<Chunk>,
    /// Problems that did not stop ingestion but lost some content (for
    /// example a PDF page that could not be read), worded for users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_serde_matches_as_str() {
        for kind in [
            DocumentKind::Markdown,
            DocumentKind::Text,
            DocumentKind::Html,
            DocumentKind::Pdf,
            DocumentKind::Csv,
        ] {
            let json = serde_json::to_string(&kind).expect("serialize");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            let back: DocumentKind = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn cite_picks_the_most_specific_unit() {
        let mut loc = Location {
            char_start: 5,
            char_end: 9,
            ..Location::default()
        };
        assert_eq!(loc.cite(), "chars 5-9");
        loc.line_start = Some(10);
        loc.line_end = Some(24);
        assert_eq!(loc.cite(), "lines 10-24");
        loc.heading = Some("Leave > Parental leave".into());
        assert_eq!(loc.cite(), "lines 10-24 (§ Leave > Parental leave)");
        loc.heading = None;
        loc.line_end = Some(10);
        assert_eq!(loc.cite(), "line 10");
        loc.page_start = Some(3);
        loc.page_end = Some(3);
        assert_eq!(loc.cite(), "page 3");
        loc.page_end = Some(4);
        assert_eq!(loc.cite(), "pages 3-4");
        let rows = Location {
            row_start: Some(1),
            row_end: Some(40),
            ..Location::default()
        };
        assert_eq!(rows.cite(), "rows 1-40");
    }

    #[test]
    fn location_skips_absent_parts() {
        let loc = Location {
            char_start: 0,
            char_end: 3,
            line_start: Some(1),
            line_end: Some(1),
            ..Location::default()
        };
        let json = serde_json::to_string(&loc).expect("serialize");
        assert_eq!(
            json,
            r#"{"char_start":0,"char_end":3,"line_start":1,"line_end":1}"#
        );
        let back: Location = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, loc);
    }

    #[test]
    fn options_default() {
        let o = ChunkOptions::default();
        assert_eq!((o.target_chars, o.overlap_chars), (1200, 200));
        assert_eq!(o.max_bytes, 104_857_600);
    }
}
