//! The crate's one error type and its stable machine-readable codes.
//!
//! Owns: `IndexError` and `IndexError::code()`. Codes are part of the public
//! contract (callers log and branch on them), so a variant's code never changes
//! once released. Must never: carry document text or query text in a message
//! (messages end up in logs, and the text is tenant data).

use std::path::PathBuf;

/// Everything that can go wrong while opening, feeding or searching the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The query is malformed (no scope, wrong vector size, non-finite values).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A change in a batch is malformed; the whole batch was rejected.
    #[error("invalid document {key:?}: {reason}")]
    InvalidDoc {
        /// The offending document's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another writer (normally another process) holds the index directory.
    #[error("the index at {0} is locked by another writer")]
    Locked(PathBuf),
    /// The full-text engine failed.
    #[error("full-text index: {0}")]
    Text(#[source] tantivy::TantivyError),
    /// The vector engine failed.
    #[error("vector index: {0}")]
    Vector(String),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Stored index data cannot be read back (wrong format, truncated, mismatched).
    #[error("corrupt index data: {0}")]
    Corrupt(String),
    /// A vector update failed half-way; the in-memory vector part no longer
    /// matches any watermark, so it refuses writes and snapshots until the
    /// index is reopened (which goes back to the last snapshot).
    #[error("the vector part failed mid-update; reopen the index and re-feed from watermark()")]
    Poisoned,
}

impl IndexError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            IndexError::InvalidQuery(_) => "invalid_query",
            IndexError::InvalidDoc { .. } => "invalid_document",
            IndexError::Locked(_) => "index_locked",
            IndexError::Text(_) => "text_index_error",
            IndexError::Vector(_) => "vector_index_error",
            IndexError::Io { .. } => "index_io_error",
            IndexError::Corrupt(_) => "index_corrupt",
            IndexError::Poisoned => "vector_index_poisoned",
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        IndexError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn text(err: tantivy::TantivyError) -> Self {
        IndexError::Text(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(IndexError::InvalidQuery("x".into()).code(), "invalid_query");
        assert_eq!(IndexError::Poisoned.code(), "vector_index_poisoned");
        assert_eq!(IndexError::Corrupt("x".into()).code(), "index_corrupt");
    }
}
