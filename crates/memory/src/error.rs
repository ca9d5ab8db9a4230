//! Memory service errors.

use roster_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("search index: {0}")]
    Index(#[from] roster_index::IndexError),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Internal(String),
}
