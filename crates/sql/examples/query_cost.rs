//! What `sql_query` adds to a query: Roster's parse-and-rewrite check, the
//! read-only transaction, the limits and the table, against the same query
//! sent straight to the same database (the baseline), interleaved in one
//! command so the machine's noise hits both alike.
//!
//! `cargo run --release -p roster-sql --example query_cost` (SQLite only);
//! with `ROSTER_TEST_DATABASE_URL=postgres://…` set, PostgreSQL as well, and
//! with `ROSTER_TEST_MYSQL_URL=mysql://…` MariaDB/MySQL.

use roster_core::TenantId;
use roster_secrets::SecretBox;
use roster_sql::{check_query, parse_allow_list, Dialect, SqlPolicy, SqlSourceInput, SqlSources};
use sqlx::Executor;
use std::time::Instant;

const QUERIES: usize = 2_000;
const SQL: &str = "SELECT region, count(*) AS n, sum(total) AS revenue FROM orders WHERE total > 10 GROUP BY region ORDER BY region";

fn summary(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)];
    (at(50), at(99))
}

fn report(what: &str, base: Vec<f64>, roster: Vec<f64>) {
    let (b50, b99) = summary(base);
    let (r50, r99) = summary(roster);
    println!(
        "{what}: direct p50 {b50:.3} ms p99 {b99:.3} ms | sql_query p50 {r50:.3} ms p99 {r99:.3} ms | added p50 {:.3} ms ({:.2}x)",
        r50 - b50,
        r50 / b50
    );
}

fn input(name: &str, url: &str) -> SqlSourceInput {
    serde_json::from_value(serde_json::json!({"name": name, "url": url, "allow": ["orders"]}))
        .expect("input")
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("dir");
    let store = roster_store_sql::open(&format!("sqlite://{}", dir.path().join("r.db").display()))
        .await
        .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
    // The databases measured are this machine's: the egress policy opens
    // its loopback, and the SQLite file lives in this temporary directory.
    let policy = SqlPolicy {
        egress: std::sync::Arc::new(
            roster_egress::EgressPolicy::new(&["127.0.0.1", "localhost"]).expect("policy"),
        ),
        sqlite_dirs: vec![dir.path().to_path_buf()],
        private: Vec::new(),
    };
    let sources = SqlSources::new(store, secrets, policy);

    // The check alone.
    let allow = parse_allow_list(&["orders".to_owned()]).expect("allow");
    let mut check = Vec::with_capacity(QUERIES);
    for _ in 0..QUERIES {
        let t = Instant::now();
        check_query(Dialect::Postgres, SQL, &allow, 200).expect("check");
        check.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (c50, c99) = summary(check);
    println!("check_query alone: p50 {c50:.4} ms p99 {c99:.4} ms");

    // SQLite: the baseline opens the file read-only and reads the rows, as
    // Roster does per query.
    let path = dir.path().join("sales.db");
    {
        let conn = rusqlite::Connection::open(&path).expect("sqlite");
        conn.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, region TEXT, total REAL)")
            .expect("table");
        let tx = conn.unchecked_transaction().expect("tx");
        for i in 0..10_000 {
            tx.execute(
                "INSERT INTO orders (region, total) VALUES (?1, ?2)",
                rusqlite::params![["EU", "US", "APAC"][i % 3], (i % 100) as f64],
            )
            .expect("row");
        }
        tx.commit().expect("commit");
    }
    sources
        .register(
            &tenant,
            input("lite", &format!("sqlite:{}", path.display())),
            "key:bench",
        )
        .await
        .expect("register sqlite");
    let (mut base, mut roster) = (Vec::new(), Vec::new());
    for _ in 0..QUERIES / 4 {
        let t = Instant::now();
        let p = path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = rusqlite::Connection::open_with_flags(
                &p,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open");
            let mut statement = conn.prepare(SQL).expect("prepare");
            let mut rows = statement.query([]).expect("query");
            let mut n = 0;
            while let Some(row) = rows.next().expect("row") {
                let _: String = row.get(0).expect("cell");
                n += 1;
            }
            n
        })
        .await
        .expect("join");
        base.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        sources.query(&tenant, "lite", SQL).await.expect("query");
        roster.push(t.elapsed().as_secs_f64() * 1e3);
    }
    report("SQLite, 10k rows, 3 groups", base, roster);

    if let Ok(url) = std::env::var("ROSTER_TEST_DATABASE_URL") {
        let db = roster_store_sql::postgres::create_test_database(&url)
            .await
            .expect("database");
        let pool = sqlx::PgPool::connect(&db).await.expect("postgres");
        pool.execute(sqlx::raw_sql(
            "CREATE TABLE orders (id serial primary key, region text, total numeric);
             INSERT INTO orders (region, total) SELECT (ARRAY['EU','US','APAC'])[1 + g % 3], g % 100 FROM generate_series(1, 10000) g;",
        ))
        .await
        .expect("table");
        sources
            .register(&tenant, input("pg", &db), "key:bench")
            .await
            .expect("register pg");
        let (mut base, mut roster) = (Vec::new(), Vec::new());
        for _ in 0..QUERIES / 4 {
            let t = Instant::now();
            let mut conn = pool.acquire().await.expect("conn");
            let rows = conn.fetch_all(sqlx::raw_sql(SQL)).await.expect("query");
            assert_eq!(rows.len(), 3);
            base.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            sources.query(&tenant, "pg", SQL).await.expect("query");
            roster.push(t.elapsed().as_secs_f64() * 1e3);
        }
        report("PostgreSQL, 10k rows, 3 groups", base, roster);
        sources
            .remove(&tenant, "pg", "key:bench")
            .await
            .expect("remove");
    }

    if let Ok(url) = std::env::var("ROSTER_TEST_MYSQL_URL") {
        let pool = sqlx::MySqlPool::connect(&url).await.expect("mysql");
        let table = format!("bench_orders_{}", std::process::id());
        pool.execute(sqlx::raw_sql(&format!(
            "CREATE TABLE {table} (id INT AUTO_INCREMENT PRIMARY KEY, region VARCHAR(8), total DECIMAL(10,2));
             INSERT INTO {table} (region, total) SELECT ELT(1 + seq % 3, 'EU', 'US', 'APAC'), seq % 100 FROM seq_1_to_10000;"
        )))
        .await
        .expect("table");
        let input: SqlSourceInput = serde_json::from_value(
            serde_json::json!({"name": "maria", "url": url, "allow": [table.clone()]}),
        )
        .expect("input");
        sources
            .register(&tenant, input, "key:bench")
            .await
            .expect("register mysql");
        let sql = SQL.replace("orders", &table);
        let (mut base, mut roster) = (Vec::new(), Vec::new());
        for _ in 0..QUERIES / 4 {
            let t = Instant::now();
            let mut conn = pool.acquire().await.expect("conn");
            let rows = conn.fetch_all(sqlx::raw_sql(&sql)).await.expect("query");
            assert_eq!(rows.len(), 3);
            base.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            sources.query(&tenant, "maria", &sql).await.expect("query");
            roster.push(t.elapsed().as_secs_f64() * 1e3);
        }
        report("MariaDB, 10k rows, 3 groups", base, roster);
        sources
            .remove(&tenant, "maria", "key:bench")
            .await
            .expect("remove");
        pool.execute(sqlx::raw_sql(&format!("DROP TABLE {table}")))
            .await
            .expect("drop");
    }
}
