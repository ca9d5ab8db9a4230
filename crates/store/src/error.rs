//! Store errors, in kinds the API can map to stable codes.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The session has an active or queued run and the caller asked not to queue.
    #[error("session {0} already has an active run")]
    SessionBusy(String),
    /// A limit on what may be created was reached (the message says which).
    #[error("{0}")]
    LimitReached(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(String),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
