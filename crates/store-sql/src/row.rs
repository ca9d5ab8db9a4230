//! Reading a result row of either backend with one set of typed getters, so
//! each domain type is decoded by one function.

use crate::StoreError;
use chrono::{DateTime, Utc};
use roster_store::from_millis;
use sqlx::postgres::PgRow;

/// A row from either driver.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r PgRow),
}

impl Row<'_> {
    /// Column `index` as `T`. Integers are BIGINT on PostgreSQL and INTEGER
    /// on SQLite; JSON is TEXT on both; booleans are BOOLEAN and 0/1.
    pub fn get<T: Column>(&self, index: usize) -> Result<T, StoreError> {
        match self {
            Row::Sqlite(row) => T::sqlite(row, index)
                .map_err(|e| StoreError::Corrupt(format!("column {index}: {e}"))),
            Row::Postgres(row) => T::postgres(row, index)
                .map_err(|e| StoreError::Corrupt(format!("column {index}: {e}"))),
        }
    }

    /// A millisecond timestamp column.
    pub fn time(&self, index: usize) -> Result<DateTime<Utc>, StoreError> {
        Ok(from_millis(self.get(index)?))
    }

    pub fn opt_time(&self, index: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.get::<Option<i64>>(index)?.map(from_millis))
    }

    /// A JSON text column decoded as `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self, index: usize) -> Result<T, StoreError> {
        let raw: String = self.get(index)?;
        serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub fn opt_json<T: serde::de::DeserializeOwned>(
        &self,
        index: usize,
    ) -> Result<Option<T>, StoreError> {
        self.get::<Option<String>>(index)?
            .map(|raw| serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    }

    /// An integer column holding a `u32` (token counts, character limits).
    pub fn u32(&self, index: usize, what: &str) -> Result<u32, StoreError> {
        let raw: i64 = self.get(index)?;
        u32::try_from(raw).map_err(|_| StoreError::Corrupt(format!("{what} `{raw}`")))
    }
}

/// A type a column decodes into on both drivers.
pub trait Column: Sized {
    fn sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self, rusqlite::Error>;
    fn postgres(row: &PgRow, index: usize) -> Result<Self, sqlx::Error>;
}

macro_rules! column {
    ($($ty:ty),*) => {
        $(impl Column for $ty {
            fn sqlite(row: &rusqlite::Row<'_>, index: usize) -> Result<Self, rusqlite::Error> {
                row.get(index)
            }
            fn postgres(row: &PgRow, index: usize) -> Result<Self, sqlx::Error> {
                sqlx::Row::try_get(row, index)
            }
        })*
    };
}

column!(
    i64,
    Option<i64>,
    f64,
    Option<f64>,
    bool,
    String,
    Option<String>,
    Vec<u8>,
    Option<Vec<u8>>
);
