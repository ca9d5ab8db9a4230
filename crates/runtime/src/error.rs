//! Runtime errors: what a caller of [`crate::Runtime`] can get back.

use roster_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("run {0} has already finished")]
    AlreadyFinished(String),
    #[error("the runtime is shutting down")]
    ShuttingDown,
}
