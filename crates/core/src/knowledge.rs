//! Knowledge sources: company documents an agent may read and cite. A
//! source is a named set of documents; each document is cut into chunks
//! (passages) that remember where in the document they come from.

use crate::{DocumentId, SourceId, ValidationError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MAX_PATH_BYTES: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KnowledgeSource {
    pub id: SourceId,
    pub name: String,
    pub description: String,
    pub documents: i64,
    pub chunks: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why the last ingest of a document failed (its previous version, if any,
/// stays searchable).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentError {
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KnowledgeDocument {
    pub id: DocumentId,
    pub source_id: SourceId,
    /// Path inside the source, with `/` separators.
    pub path: String,
    /// `markdown`, `text`, `html`, `pdf` or `csv`; none before a first
    /// successful ingest.
    pub kind: Option<String>,
    /// Hex SHA-256 of the ingested bytes.
    pub content_hash: Option<String>,
    pub bytes: i64,
    pub chars: i64,
    /// Increases with every successful ingest of new content; 0 = none yet.
    pub version: i64,
    pub chunks: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<DocumentError>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A chunk found by search, with what is needed to cite it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Passage {
    pub source: String,
    pub document_id: DocumentId,
    pub path: String,
    pub ordinal: i64,
    pub text: String,
    /// Where in the document: lines, pages, rows, heading.
    #[schema(value_type = Object)]
    pub location: serde_json::Value,
    /// `source:path (lines 10-24)`, ready to show.
    pub citation: String,
}

pub use crate::names::validate_source_name;

/// A document path: relative, `/`-separated, no `.`/`..` segments, no
/// control characters.
pub fn validate_document_path(path: &str) -> Result<(), ValidationError> {
    let ok = !path.is_empty()
        && path.len() <= MAX_PATH_BYTES
        && !path.starts_with('/')
        && !path.chars().any(char::is_control)
        && !path.contains('\\')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "path",
            format!(
                "must be a relative path like `handbook/leave.md` (no leading '/', no '.' or '..' segments, no control characters, at most {MAX_PATH_BYTES} bytes)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert!(validate_source_name("handbook").is_ok());
        assert!(validate_source_name("src_x").is_err());
        assert!(validate_source_name("a b").is_err());
        for ok in ["a.md", "docs/leave/parental.md", "Q3 report.pdf"] {
            assert!(validate_document_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "./a",
            "a//b",
            "a\u{0}b",
            "a\\b",
        ] {
            assert!(validate_document_path(bad).is_err(), "{bad:?}");
        }
    }
}
