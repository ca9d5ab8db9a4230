//! In-database vector search with pgvector, where the server has it.
//!
//! Vectors stay in their `BYTEA` columns (the format both backends share);
//! with pgvector each searchable table also gets a stored generated column
//! `embedding_vec`, computed from the bytes by `roster_f32le_vector`, so
//! every write path keeps it in step inside its own transaction and a
//! database that gains pgvector later fills it in one `ALTER TABLE`. An
//! HNSW index per embedder (a partial index on `embedding_model`, since
//! embedders differ in dimensions) serves the searches; tenant and scope
//! filters run inside the index scan, which pgvector's iterative scan
//! continues until enough rows pass them.
//!
//! Why generated and not written by Rust: four statements write vectors
//! today and every future one would have to remember the second column.
//!
//! Must never: create the extension's objects outside the setup lock, or
//! return a row of another tenant, scope or embedder.

use super::PgStore;
use roster_store::{NearestQuery, RowKind, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPool};
use sqlx::Row;
use std::fmt::Write as _;

/// pgvector's HNSW indexes `vector` columns up to this many dimensions.
const HNSW_MAX_DIMENSIONS: usize = 2_000;
/// Advisory lock key serialising the set-up DDL across nodes ("rostervc").
const SETUP_LOCK: i64 = 0x726f_7374_6572_7663;

/// Adds [`SESSION_OPTIONS`] to the connection's startup options, except
/// those the URL sets itself (`?options=-c%20hnsw.ef_search%3D400`).
pub(super) fn with_session_options(options: PgConnectOptions) -> PgConnectOptions {
    let given = options.get_options().unwrap_or_default().to_owned();
    let missing: Vec<(&str, &str)> = SESSION_OPTIONS
        .into_iter()
        .filter(|(key, _)| !given.contains(key))
        .collect();
    options.options(missing)
}

/// Session settings every pooled connection starts with. Unknown to a
/// server without pgvector, where they are inert placeholders.
const SESSION_OPTIONS: [(&str, &str); 2] = [
    // Keep scanning the graph until `LIMIT` rows pass the tenant and scope
    // filters (pgvector >= 0.8); the order is fixed up by the caller.
    ("hnsw.iterative_scan", "relaxed_order"),
    // The graph search width. Measured at 100,000 records, a query over
    // 30 % of them (`docs/PERFORMANCE.md`): recall@10 0.835 / 0.905 / 0.955
    // / 0.988 at 40 / 100 / 200 / 400, at 4 / 5 / 9 / 18 ms.
    ("hnsw.ef_search", "200"),
];

/// Decodes the store's little-endian f32 bytes into a pgvector `vector`.
/// Exact: every f32 is a float8 built from its bits (normal and subnormal).
const DECODE_FUNCTION: &str = r"
CREATE OR REPLACE FUNCTION roster_f32le_vector(b bytea) RETURNS vector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT array_agg(
    CASE WHEN ((bits >> 23) & 255) = 0
         THEN (bits & 8388607)::float8 * 2.0::float8 ^ (-149)
         ELSE (1 + (bits & 8388607)::float8 / 8388608) * 2.0::float8 ^ (((bits >> 23) & 255) - 127)
    END * CASE WHEN ((bits >> 31) & 1) = 1 THEN -1 ELSE 1 END
    ORDER BY i)::real[]::vector
  FROM (SELECT i, (get_byte(b, 4 * i)::bigint
                   | (get_byte(b, 4 * i + 1)::bigint << 8)
                   | (get_byte(b, 4 * i + 2)::bigint << 16)
                   | (get_byte(b, 4 * i + 3)::bigint << 24)) AS bits
        FROM generate_series(0, length(b) / 4 - 1) AS i) AS f
$fn$";

/// The tables holding vectors, with the column naming each row's scope.
fn table(kind: RowKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        RowKind::Memory => ("memories", "namespace", "id"),
        RowKind::Chunk => (
            "knowledge_chunks",
            "source_id",
            "document_id || ':' || ordinal",
        ),
    }
}

/// Installs (where it can) and prepares pgvector; returns its version, or
/// `None` when the server has no pgvector or this role may not create it.
pub(super) async fn setup(pool: &PgPool) -> Result<Option<String>, StoreError> {
    let mut conn = pool.acquire().await.map_err(crate::db_error)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(SETUP_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(crate::db_error)?;
    let result = setup_locked(&mut conn).await;
    let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(SETUP_LOCK)
        .execute(&mut *conn)
        .await;
    let version = result?;
    unlock.map_err(crate::db_error)?;
    Ok(version)
}

async fn setup_locked(conn: &mut sqlx::PgConnection) -> Result<Option<String>, StoreError> {
    let installed: Option<String> =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(crate::db_error)?;
    if installed.is_none() {
        let available: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')",
        )
        .fetch_one(&mut *conn)
        .await
        .map_err(crate::db_error)?;
        if !available {
            return Ok(None);
        }
        if let Err(e) = sqlx::query("CREATE EXTENSION IF NOT EXISTS vector")
            .execute(&mut *conn)
            .await
        {
            tracing::warn!(
                error = %e,
                "pgvector is available but could not be installed (a superuser can run \
                 CREATE EXTENSION vector); vectors are searched by each node's local index"
            );
            return Ok(None);
        }
    }
    sqlx::query(DECODE_FUNCTION)
        .execute(&mut *conn)
        .await
        .map_err(crate::db_error)?;
    for kind in [RowKind::Memory, RowKind::Chunk] {
        let (table, _, _) = table(kind);
        let present: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 \
             AND column_name = 'embedding_vec')",
        )
        .bind(table)
        .fetch_one(&mut *conn)
        .await
        .map_err(crate::db_error)?;
        if present {
            continue;
        }
        // Storage: a row with both copies of a vector passes the 2 kB TOAST
        // threshold; the bytes (read only to rebuild) move out of line and
        // the searched copy stays in the row, so an exact scan reads no
        // TOAST pages (measured: 37,696 buffer reads for 3,000 rows before).
        for statement in [
            format!("ALTER TABLE {table} ALTER COLUMN embedding SET STORAGE EXTERNAL"),
            format!(
                "ALTER TABLE {table} ADD COLUMN embedding_vec vector \
                 GENERATED ALWAYS AS (roster_f32le_vector(embedding)) STORED"
            ),
            format!("ALTER TABLE {table} ALTER COLUMN embedding_vec SET STORAGE MAIN"),
        ] {
            sqlx::query(&statement)
                .execute(&mut *conn)
                .await
                .map_err(crate::db_error)?;
        }
    }
    let version: String =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_one(&mut *conn)
            .await
            .map_err(crate::db_error)?;
    Ok(Some(version))
}

/// `model` as a SQL string literal. Models are inlined, not bound: only a
/// literal lets the planner match the partial index's predicate in every
/// plan, generic ones included.
fn literal(model: &str) -> String {
    format!("'{}'", model.replace('\'', "''"))
}

/// A stable, SQL-safe index name for (table, model, dimensions).
fn index_name(table: &str, model: &str, dims: usize) -> String {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in model.bytes().chain(dims.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{table}_vec_{hash:016x}")
}

async fn build_indexes(
    conn: &mut sqlx::PgConnection,
    model: &str,
    dims: usize,
) -> Result<(), StoreError> {
    for kind in [RowKind::Memory, RowKind::Chunk] {
        let (table, _, _) = table(kind);
        let name = index_name(table, model, dims);
        // A failed CONCURRENTLY build leaves an invalid index behind, which
        // IF NOT EXISTS would keep; drop it and build again.
        let valid: Option<bool> = sqlx::query_scalar(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname = $1",
        )
        .bind(&name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(crate::db_error)?;
        match valid {
            Some(true) => continue,
            Some(false) => {
                let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {name}");
                sqlx::query(&drop)
                    .execute(&mut *conn)
                    .await
                    .map_err(crate::db_error)?;
            }
            None => {}
        }
        // CONCURRENTLY: a node starting with a new embedder must not block
        // writes while the graph of the existing rows is built.
        let ddl = format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} \
             USING hnsw ((embedding_vec::vector({dims})) vector_cosine_ops) \
             WHERE embedding_model = {}",
            literal(model)
        );
        sqlx::query(&ddl)
            .execute(&mut *conn)
            .await
            .map_err(crate::db_error)?;
    }
    Ok(())
}

impl PgStore {
    /// The database's own vector search, when the server has pgvector.
    pub(crate) fn native_vectors(&self) -> Option<String> {
        self.pgvector.as_ref().map(|v| format!("pgvector {v}"))
    }

    pub(crate) async fn prepare_vector_index(
        &self,
        model: &str,
        dims: usize,
    ) -> Result<(), StoreError> {
        if self.pgvector.is_none() {
            return Err(StoreError::Config(
                "this PostgreSQL server has no pgvector".into(),
            ));
        }
        if dims == 0 {
            return Err(StoreError::Config(
                "an embedder has at least one dimension".into(),
            ));
        }
        if dims > HNSW_MAX_DIMENSIONS {
            // Searches still work, as exact scans of the tenant's rows.
            tracing::warn!(
                dims,
                "pgvector's HNSW index takes at most {HNSW_MAX_DIMENSIONS} dimensions; \
                 vector searches scan every row of the embedder"
            );
            return Ok(());
        }
        let mut conn = self.pool.acquire().await.map_err(crate::db_error)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(SETUP_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(crate::db_error)?;
        let result = build_indexes(&mut conn, model, dims).await;
        let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(SETUP_LOCK)
            .execute(&mut *conn)
            .await;
        result?;
        unlock.map_err(crate::db_error)?;
        Ok(())
    }

    pub(crate) async fn nearest_vectors(
        &self,
        query: &NearestQuery<'_>,
    ) -> Result<Vec<(String, f32)>, StoreError> {
        if self.pgvector.is_none() {
            return Err(StoreError::Config(
                "this PostgreSQL server has no pgvector".into(),
            ));
        }
        let dims = query.vector.len();
        if dims == 0 || query.limit == 0 || query.scopes.is_empty() {
            return Ok(Vec::new());
        }
        let (table, scope, id) = table(query.kind);
        // The ORDER BY expression must be the index's expression exactly.
        let sql = format!(
            "SELECT {id}, (embedding_vec::vector({dims}) <=> $1::text::vector({dims}))::float4 \
             FROM {table} \
             WHERE embedding_model = {} AND tenant_id = $2 AND {scope} = ANY($3) \
             ORDER BY embedding_vec::vector({dims}) <=> $1::text::vector({dims}) LIMIT $4",
            literal(query.model)
        );
        let rows = sqlx::query(&sql)
            .bind(vector_text(query.vector))
            .bind(query.tenant.as_str())
            .bind(query.scopes)
            .bind(i64::try_from(query.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(crate::db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key: String = row.try_get(0).map_err(crate::db_error)?;
            let distance: f32 = row.try_get(1).map_err(crate::db_error)?;
            out.push((key, 1.0 - distance));
        }
        // The iterative scan may return rows slightly out of order.
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(out)
    }
}

/// pgvector's text form, `[x,y,…]`. Rust prints the shortest string that
/// reads back as the same f32, so nothing is lost on the way.
fn vector_text(vector: &[f32]) -> String {
    let mut out = String::with_capacity(vector.len() * 12 + 2);
    out.push('[');
    for (i, x) in vector.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{x}");
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_stable_and_distinct() {
        let a = index_name("memories", "minilm", 384);
        assert_eq!(a, index_name("memories", "minilm", 384));
        assert_ne!(a, index_name("memories", "minilm", 768));
        assert_ne!(a, index_name("memories", "openai", 384));
        assert!(a.len() < 63, "PostgreSQL truncates names at 63 bytes");
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    }

    #[test]
    fn the_url_may_set_the_search_width() {
        let url = "postgres://u@h/db?options=-c%20hnsw.ef_search%3D400";
        let options = with_session_options(url.parse().expect("url"));
        let set = options.get_options().unwrap_or_default();
        assert!(set.contains("hnsw.ef_search=400"), "{set}");
        assert!(!set.contains("hnsw.ef_search=200"), "{set}");
        assert!(set.contains("hnsw.iterative_scan"), "{set}");
    }

    #[test]
    fn models_are_quoted_as_literals() {
        assert_eq!(literal("o'brien"), "'o''brien'");
    }

    #[test]
    fn vector_text_round_trips() {
        let v = [0.1_f32, -2.5, 1e-45, f32::MAX];
        let text = vector_text(&v);
        let back: Vec<f32> = text
            .trim_matches(['[', ']'])
            .split(',')
            .map(|x| x.parse().unwrap_or(f32::NAN))
            .collect();
        assert_eq!(back, v);
    }
}
