//! The embedded backend: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! Writes go through the group-commit [`writer`]; reads run on a small pool
//! of read-only connections on the blocking thread pool, and see every
//! committed write (WAL readers never block the writer).

mod migrate;
mod writer;

use crate::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use writer::Writer;

pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    readers: Arc<Mutex<Vec<Connection>>>,
}

/// Prepared statements kept per connection: more than the store has, so
/// none is ever prepared twice.
const STATEMENT_CACHE: usize = 128;

/// Read connections kept for reuse; more may be opened under load.
const IDLE_READERS: usize = 8;

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let open_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            if let Some(dir) = open_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut conn = Connection::open(&open_path).map_err(|e| {
                StoreError::Config(format!("cannot open {}: {e}", open_path.display()))
            })?;
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .map_err(crate::db_error)?;
            let mode: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .map_err(crate::db_error)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Config(format!(
                    "{} cannot use WAL mode (got {mode})",
                    open_path.display()
                )));
            }
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(crate::db_error)?;
            // What a person deletes (a session, a memory) is overwritten,
            // not left readable in free pages of the file.
            conn.pragma_update(None, "secure_delete", "ON")
                .map_err(crate::db_error)?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            migrate::apply(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Database(format!("open task failed: {e}")))??;
        Ok(Self {
            path,
            writer: Writer::spawn(conn)?,
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Copies the write-ahead log into the database and empties it, so
    /// what was just deleted (and overwritten in the database pages, see
    /// `secure_delete`) is no longer in the log's older frames either. Best
    /// effort: readers in the middle of a transaction keep frames alive,
    /// and the next checkpoint takes them.
    pub(crate) async fn scrub_log(&self) {
        let path = self.path.clone();
        let done = tokio::task::spawn_blocking(move || -> Result<(), rusqlite::Error> {
            let conn = Connection::open(&path)?;
            conn.busy_timeout(std::time::Duration::from_secs(2))?;
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not empty the write-ahead log after a delete")
            }
            Err(e) => tracing::warn!(error = %e, "write-ahead log checkpoint task failed"),
        }
    }

    /// Runs `work` inside the next group transaction; see [`writer`].
    pub(crate) async fn write_raw<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.writer.write(work).await
    }

    /// Runs `work` on a pooled read connection, on the calling thread.
    pub(crate) fn read_now<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, StoreError>,
    {
        // Reads run on the calling thread. They are short (indexed lookups
        // of a bounded number of rows from the page cache, tens of
        // microseconds), and handing each to the blocking pool cost more in
        // thread wake-ups than the read itself (`perf` under `roster bench`).
        let pooled = self.readers.lock().map_err(|_| poisoned())?.pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path)?,
        };
        let result = work(&mut conn);
        let mut idle = self.readers.lock().map_err(|_| poisoned())?;
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(crate::db_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(crate::db_error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn poisoned() -> StoreError {
    StoreError::Database("reader pool lock poisoned".into())
}
