//! The PostgreSQL backend (see `PgStore`).

use crate::StoreError;

pub struct PgStore;

impl PgStore {
    pub async fn connect(_url: &str) -> Result<Self, StoreError> {
        Err(StoreError::Config(
            "PostgreSQL backend not built yet".into(),
        ))
    }
}

pub async fn create_test_database(_url: &str) -> Result<String, StoreError> {
    Err(StoreError::Config(
        "PostgreSQL backend not built yet".into(),
    ))
}
