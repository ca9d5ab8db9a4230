//! After migrating, both backends hold the same tables, columns, indexes
//! and unique constraints. The differences that must exist are listed here
//! with their reason; anything else is drift, and fails. (Migration numbers
//! are the same on both backends from 0011 on; see the SQLite `migrate.rs`
//! for the earlier skew.)

use crate::common;
use std::collections::BTreeSet;

/// `table.column` and `index:name` entries of a schema.
type Shape = BTreeSet<String>;

fn sqlite_shape(path: &std::path::Path) -> Shape {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut shape = Shape::new();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("tables")
        .collect::<Result<_, _>>()
        .expect("names");
    for table in tables {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("columns")
            .collect::<Result<_, _>>()
            .expect("names");
        shape.extend(columns.into_iter().map(|c| format!("{table}.{c}")));
    }
    let unique: Vec<(String, String)> = conn
        .prepare(
            "SELECT m.name, i.name FROM sqlite_master m, pragma_index_list(m.name) i
             WHERE m.type = 'table' AND i.origin = 'u'",
        )
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("unique constraints")
        .collect::<Result<_, _>>()
        .expect("names");
    for (table, index) in unique {
        let columns: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM pragma_index_info('{index}') ORDER BY seqno"
            ))
            .expect("prepare")
            .query_map([], |r| r.get(0))
            .expect("columns")
            .collect::<Result<_, _>>()
            .expect("names");
        shape.insert(format!("unique:{table}({})", columns.join(",")));
    }
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("indexes")
        .collect::<Result<_, _>>()
        .expect("names");
    shape.extend(indexes.into_iter().map(|i| format!("index:{i}")));
    shape
}

async fn postgres_shape(url: &str) -> Shape {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public'",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    let unique: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.conrelid::regclass::text,
                string_agg(a.attname::text, ',' ORDER BY array_position(c.conkey, a.attnum))
         FROM pg_constraint c JOIN pg_attribute a
           ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
         WHERE c.contype = 'u' AND c.connamespace = 'public'::regnamespace
         GROUP BY c.oid, c.conrelid",
    )
    .fetch_all(&pool)
    .await
    .expect("unique constraints");
    // Indexes that back a primary key or a unique constraint are compared
    // as those constraints.
    let indexes: Vec<(String,)> = sqlx::query_as(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public'
           AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u'))",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes");
    pool.close().await;
    columns
        .into_iter()
        .map(|(t, c)| format!("{t}.{c}"))
        .chain(indexes.into_iter().map(|(i,)| format!("index:{i}")))
        .chain(unique.into_iter().map(|(t, c)| format!("unique:{t}({c})")))
        .collect()
}

#[tokio::test]
async fn both_backends_have_the_same_tables_columns_and_indexes() {
    let Some(url) = common::postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    drop(common::sqlite(&dir).await);
    drop(
        roster_store_sql::open(&url)
            .await
            .expect("migrate postgres"),
    );
    let sqlite = sqlite_shape(&dir.path().join("roster.db"));
    let postgres = postgres_shape(&url).await;
    // Differences that must exist, and why.
    let expected_only_postgres = |entry: &str| {
        // sqlx's migrator keeps its ledger in a table; Roster's SQLite
        // migrator counts applied migrations in `PRAGMA user_version`.
        entry.starts_with("_sqlx_migrations.")
        // pgvector search filters by source inside the database; SQLite's
        // vectors live in the local index, which keeps its own scope.
            || entry == "knowledge_chunks.source_id"
    };
    let only_sqlite: Vec<&String> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<&String> = postgres
        .difference(&sqlite)
        .filter(|e| !expected_only_postgres(e))
        .collect();
    assert!(
        sqlite.iter().any(|e| e.starts_with("unique:")),
        "unique constraints are compared: {sqlite:#?}"
    );
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "only SQLite: {only_sqlite:#?}\nonly PostgreSQL: {only_postgres:#?}"
    );
}
