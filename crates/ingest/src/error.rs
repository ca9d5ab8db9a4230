//! The crate's single error type and its stable machine-readable codes.
//!
//! Owns the wording users see when a document is refused. It must never
//! carry document content in a message (paths only): messages end up in API
//! responses and logs, and a document may be confidential.

use crate::DocumentKind;

/// Human list of what we accept, repeated in messages so a refused upload
/// always tells the user what would have worked.
pub(crate) const SUPPORTED_TYPES: &str =
    "Markdown (.md), plain text (.txt), HTML (.html), PDF (.pdf) or CSV (.csv, .tsv)";

/// Why a document could not be turned into chunks.
///
/// Every variant names the offending file and is worded as one sentence
/// the uploader can act on; [`IngestError::code`] gives the stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("{path} is {}, over the {} limit; split it into smaller files and upload those.", human_bytes(*size), human_bytes(*limit))]
    DocumentTooLarge { path: String, size: u64, limit: u64 },

    #[error("{path} has no text to index; upload a file with some content.")]
    EmptyDocument { path: String },

    #[error(
        "{path} looks like {detected}, not a text document; upload {SUPPORTED_TYPES} instead."
    )]
    BinaryContent { path: String, detected: String },

    #[error(
        "{path} could not be decoded as text ({reason}); save it as UTF-8 and upload it again."
    )]
    GarbledText { path: String, reason: String },

    #[error("{path} is {type_name}, which is not supported; upload {SUPPORTED_TYPES} instead.")]
    UnsupportedType { path: String, type_name: String },

    #[error("{path} has no extractable text (it may be a scanned image); run it through OCR or upload a text version.")]
    NoText { path: String },

    #[error("{path} is not a readable {} file ({reason}); check the file, export it again and re-upload.", kind.label())]
    MalformedDocument {
        path: String,
        kind: DocumentKind,
        reason: String,
    },
}

impl IngestError {
    /// Stable code for API clients; these strings are part of the public
    /// contract and must not change once shipped.
    pub fn code(&self) -> &'static str {
        match self {
            Self::DocumentTooLarge { .. } => "document_too_large",
            Self::EmptyDocument { .. } => "empty_document",
            Self::BinaryContent { .. } => "binary_content",
            Self::GarbledText { .. } => "garbled_text",
            Self::UnsupportedType { .. } => "unsupported_type",
            Self::NoText { .. } => "no_text",
            Self::MalformedDocument { .. } => "malformed_document",
        }
    }

    /// The path the error is about, as given by the caller.
    pub fn path(&self) -> &str {
        match self {
            Self::DocumentTooLarge { path, .. }
            | Self::EmptyDocument { path }
            | Self::BinaryContent { path, .. }
            | Self::GarbledText { path, .. }
            | Self::UnsupportedType { path, .. }
            | Self::NoText { path }
            | Self::MalformedDocument { path, .. } => path,
        }
    }

    pub(crate) fn empty(path: &str) -> Self {
        Self::EmptyDocument {
            path: path.to_owned(),
        }
    }

    pub(crate) fn garbled(path: &str, reason: impl Into<String>) -> Self {
        Self::GarbledText {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn binary(path: &str, detected: impl Into<String>) -> Self {
        Self::BinaryContent {
            path: path.to_owned(),
            detected: detected.into(),
        }
    }

    pub(crate) fn unsupported(path: &str, type_name: impl Into<String>) -> Self {
        Self::UnsupportedType {
            path: path.to_owned(),
            type_name: type_name.into(),
        }
    }

    pub(crate) fn malformed(path: &str, kind: DocumentKind, reason: impl Into<String>) -> Self {
        Self::MalformedDocument {
            path: path.to_owned(),
            kind,
            reason: reason.into(),
        }
    }
}

/// Sizes in messages are for people, so round to a readable unit rather
/// than printing nine-digit byte counts.
fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    // Lossy float conversion is fine: the value is only displayed.
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    if n >= GIB {
        format!("{:.1} GiB", f / GIB as f64)
    } else if n >= MIB {
        format!("{:.1} MiB", f / MIB as f64)
    } else if n >= KIB {
        format!("{:.1} KiB", f / KIB as f64)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        let p = "a.txt".to_owned();
        let cases = [
            (
                IngestError::DocumentTooLarge {
                    path: p.clone(),
                    size: 2,
                    limit: 1,
                },
                "document_too_large",
            ),
            (IngestError::empty(&p), "empty_document"),
            (IngestError::binary(&p, "a PNG image"), "binary_content"),
            (IngestError::garbled(&p, "x"), "garbled_text"),
            (
                IngestError::unsupported(&p, "a Word document"),
                "unsupported_type",
            ),
            (IngestError::NoText { path: p.clone() }, "no_text"),
            (
                IngestError::malformed(&p, DocumentKind::Pdf, "x"),
                "malformed_document",
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code);
            assert_eq!(err.path(), "a.txt");
            let msg = err.to_string();
            assert!(msg.starts_with("a.txt "), "{msg}");
            assert!(msg.ends_with('.'), "{msg}");
        }
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(human_bytes(10), "10 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(100 * 1024 * 1024), "100.0 MiB");
        let err = IngestError::DocumentTooLarge {
            path: "big.pdf".into(),
            size: 150 * 1024 * 1024,
            limit: 100 * 1024 * 1024,
        };
        assert_eq!(
            err.to_string(),
            "big.pdf is 150.0 MiB, over the 100.0 MiB limit; split it into smaller files and upload those."
        );
    }
}
