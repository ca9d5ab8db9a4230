//! SQL sources against real databases: the machine's PostgreSQL and
//! MariaDB (`ROSTER_TEST_DATABASE_URL`, `ROSTER_TEST_MYSQL_URL`; both must
//! be set in CI) and a SQLite file. Each test makes its own tables, so they
//! run side by side.

use roster_core::TenantId;
use roster_egress::EgressPolicy;
use roster_secrets::SecretBox;
use roster_sql::{Access, SqlError, SqlPolicy, SqlProvider, SqlSourceInput, SqlSources};
use roster_store::DynStore;
use roster_tool::{ToolCallContext, ToolProvider};
use sqlx::Executor;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Fixture {
    _dir: tempfile::TempDir,
    store: DynStore,
    sources: Arc<SqlSources>,
    tenant: TenantId,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("dir");
    let store = roster_store_sql::open(&format!(
        "sqlite://{}",
        dir.path().join("roster.db").display()
    ))
    .await
    .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
    // The test databases listen on this machine's loopback, which the egress
    // policy opens only because the test says so; SQLite files may be read
    // from the temporary directories the tests make, never from the store's.
    let policy = SqlPolicy {
        egress: Arc::new(EgressPolicy::new(&["127.0.0.1"]).expect("policy")),
        sqlite_dirs: vec![std::env::temp_dir()],
        private: vec![dir.path().to_path_buf()],
    };
    Fixture {
        _dir: dir,
        sources: SqlSources::new(store.clone(), secrets, policy),
        store,
        tenant,
    }
}

fn input(name: &str, url: &str, allow: &str) -> SqlSourceInput {
    serde_json::from_value(serde_json::json!({
        "name": name, "url": url, "allow": [allow]
    }))
    .expect("input")
}

fn unique() -> String {
    format!("t{}", hex::encode(rand::random::<[u8; 4]>()))
}

// ---------------------------------------------------------------- PostgreSQL

/// A schema of its own with orders, customers (one secret column) and
/// salaries (not allow-listed).
async fn pg_schema(url: &str) -> (String, sqlx::PgPool) {
    let pool = sqlx::PgPool::connect(url).await.expect("postgres");
    let schema = unique();
    pool.execute(sqlx::raw_sql(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.customers (id int primary key, name text not null, ssn text);
         COMMENT ON TABLE {schema}.customers IS 'One row per paying customer';
         COMMENT ON COLUMN {schema}.customers.name IS 'Legal name';
         CREATE TABLE {schema}.orders (id int primary key, customer_id int, total numeric(10,2), placed date);
         CREATE TABLE {schema}.salaries (name text, amount int);
         INSERT INTO {schema}.customers VALUES (1, 'Acme', '111-22-3333'), (2, 'Globex', '444-55-6666');
         INSERT INTO {schema}.orders SELECT g, 1 + g % 2, g * 1.5, date '2026-01-01' + g FROM generate_series(1, 500) g;
         INSERT INTO {schema}.salaries VALUES ('ceo', 1000000);"
    )))
    .await
    .expect("schema");
    (schema, pool)
}

async fn pg_drop(pool: &sqlx::PgPool, schema: &str) {
    let _ = pool
        .execute(sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE")))
        .await;
}

#[tokio::test]
async fn postgres_source_reads_only_its_allow_list_as_a_restricted_role() {
    let Some(url) = roster_testkit::peers::postgres_url() else {
        return;
    };
    let (schema, pool) = pg_schema(&url).await;
    let f = fixture().await;
    let stored = f
        .sources
        .register(
            &f.tenant,
            input(
                "warehouse",
                &url,
                &format!("{schema}.orders,{schema}.customers(id,name)"),
            ),
            "key:test",
        )
        .await
        .expect("register");
    let (_, config) = f
        .sources
        .registration(&f.tenant, "warehouse")
        .await
        .expect("config");
    let Access::RestrictedRole { role } = &config.access else {
        panic!(
            "a superuser URL gets a restricted role: {:?}",
            config.access
        );
    };
    assert!(stored.sealed.is_some());

    // The schema shows allowed tables and columns only, with comments.
    let (_, tables) = f
        .sources
        .schema(&f.tenant, "warehouse")
        .await
        .expect("schema");
    let customers = tables
        .iter()
        .find(|t| t.name == "customers")
        .expect("customers");
    let columns: Vec<&str> = customers.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["id", "name"]);
    assert_eq!(
        customers.comment.as_deref(),
        Some("One row per paying customer")
    );
    assert_eq!(customers.columns[1].comment.as_deref(), Some("Legal name"));
    assert!(!tables.iter().any(|t| t.name == "salaries"));

    // A join with an aggregate comes back as a table.
    let table = f
        .sources
        .query(
            &f.tenant,
            "warehouse",
            &format!("SELECT c.name, count(*) AS n, sum(o.total) AS revenue FROM {schema}.orders o JOIN {schema}.customers c ON c.id = o.customer_id GROUP BY c.name ORDER BY c.name"),
        )
        .await
        .expect("query");
    assert_eq!(table.columns, ["name", "n", "revenue"]);
    assert_eq!(table.rows.len(), 2);
    assert_eq!(table.rows[0][0].as_deref(), Some("Acme"));
    assert_eq!(table.rows[0][1].as_deref(), Some("250"));
    let text = table.render("warehouse");
    assert!(text.contains("| Acme | 250 |"), "{text}");

    // An empty answer still names its columns.
    let empty = f
        .sources
        .query(
            &f.tenant,
            "warehouse",
            &format!("SELECT id, total FROM {schema}.orders WHERE id < 0"),
        )
        .await
        .expect("empty");
    assert_eq!(empty.columns, ["id", "total"]);
    assert!(empty.rows.is_empty());

    // Roster's own check refuses writes and other tables before sending.
    for sql in [
        format!("DELETE FROM {schema}.orders"),
        format!("SELECT * FROM {schema}.salaries"),
        "SELECT 1; SELECT 2".to_owned(),
    ] {
        let err = f
            .sources
            .query(&f.tenant, "warehouse", &sql)
            .await
            .expect_err(&sql);
        assert!(matches!(err, SqlError::Refused(_)), "{sql}: {err}");
    }

    // The database refuses the same things by itself, had the check missed them.
    for (sql, why) in [
        (format!("DELETE FROM {schema}.orders"), "read-only"),
        (format!("UPDATE {schema}.orders SET total = 0"), "read-only"),
        (format!("CREATE TABLE {schema}.x (a int)"), "read-only"),
        (
            format!("SELECT * FROM {schema}.salaries"),
            "permission denied",
        ),
        (
            format!("SELECT ssn FROM {schema}.customers"),
            "permission denied",
        ),
        (
            "SELECT pg_read_file('/etc/hostname')".to_owned(),
            "permission denied",
        ),
        (
            format!("SELECT query_to_xml('select * from {schema}.salaries', true, true, '')"),
            "permission denied",
        ),
        ("SET ROLE postgres".to_owned(), "permission denied"),
        (
            "SELECT set_config('transaction_read_only', 'off', false)".to_owned(),
            "read-write",
        ),
    ] {
        let err = f
            .sources
            .query_unchecked(&f.tenant, "warehouse", &sql)
            .await
            .expect_err(&sql);
        assert!(err.to_string().contains(why), "{sql}: {err}");
    }
    let (total,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {schema}.orders"))
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(total, 500, "nothing was deleted");

    // Removing the source drops its role.
    f.sources
        .remove(&f.tenant, "warehouse", "key:test")
        .await
        .expect("remove");
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_roles WHERE rolname = $1")
        .bind(role)
        .fetch_one(&pool)
        .await
        .expect("roles");
    assert_eq!(left, 0);
    assert!(f
        .store
        .get_integration(&f.tenant, "sql", "warehouse")
        .await
        .expect("get")
        .is_none());
    pg_drop(&pool, &schema).await;
}

#[tokio::test]
async fn postgres_limits_rows_bytes_and_time() {
    let Some(url) = roster_testkit::peers::postgres_url() else {
        return;
    };
    let (schema, pool) = pg_schema(&url).await;
    let f = fixture().await;
    let mut source = input("wh", &url, &format!("{schema}.orders"));
    source.max_rows = Some(50);
    source.max_bytes = Some(2048);
    source.timeout_secs = Some(1);
    f.sources
        .register(&f.tenant, source, "key:test")
        .await
        .expect("register");

    let rows = f
        .sources
        .query(
            &f.tenant,
            "wh",
            &format!("SELECT id FROM {schema}.orders ORDER BY id"),
        )
        .await
        .expect("rows");
    assert_eq!(rows.rows.len(), 50);
    assert!(rows.more_rows);
    assert_eq!(rows.rows[49][0].as_deref(), Some("50"), "order is kept");

    let wide = f
        .sources
        .query(
            &f.tenant,
            "wh",
            &format!("SELECT id, repeat('x', 200) AS pad FROM {schema}.orders"),
        )
        .await
        .expect("wide");
    assert!(
        wide.cut_for_size && wide.rows.len() < 20,
        "{}",
        wide.rows.len()
    );

    let started = Instant::now();
    let err = f
        .sources
        .query(&f.tenant, "wh", "SELECT pg_sleep(30)")
        .await
        .expect_err("too slow");
    assert!(matches!(err, SqlError::Timeout(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The source still answers afterwards.
    f.sources
        .query(
            &f.tenant,
            "wh",
            &format!("SELECT count(*) FROM {schema}.orders"),
        )
        .await
        .expect("after a timeout");
    f.sources
        .remove(&f.tenant, "wh", "key:test")
        .await
        .expect("remove");
    pg_drop(&pool, &schema).await;
}

#[tokio::test]
async fn postgres_without_createrole_runs_as_a_narrow_connecting_role_only() {
    let Some(url) = roster_testkit::peers::postgres_url() else {
        return;
    };
    let (schema, pool) = pg_schema(&url).await;
    let narrow = format!("{schema}_narrow");
    let broad = format!("{schema}_broad");
    pool.execute(sqlx::raw_sql(&format!(
        "CREATE ROLE {narrow} LOGIN; GRANT USAGE ON SCHEMA {schema} TO {narrow}; GRANT SELECT ON {schema}.orders TO {narrow};
         CREATE ROLE {broad} LOGIN; GRANT USAGE ON SCHEMA {schema} TO {broad}; GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {broad};"
    )))
    .await
    .expect("roles");
    let as_role = |role: &str| {
        let mut parsed = url::Url::parse(&url).expect("url");
        parsed.set_username(role).expect("user");
        parsed.to_string()
    };
    let f = fixture().await;
    f.sources
        .register(
            &f.tenant,
            input("narrow", &as_role(&narrow), &format!("{schema}.orders")),
            "key:test",
        )
        .await
        .expect("a role that reads only the allow-list is accepted");
    let (_, config) = f
        .sources
        .registration(&f.tenant, "narrow")
        .await
        .expect("config");
    assert_eq!(
        config.access,
        Access::ConnectingRole {
            role: narrow.clone()
        }
    );
    let table = f
        .sources
        .query(
            &f.tenant,
            "narrow",
            &format!("SELECT max(id) FROM {schema}.orders"),
        )
        .await
        .expect("query");
    assert_eq!(table.rows[0][0].as_deref(), Some("500"));

    let err = f
        .sources
        .register(
            &f.tenant,
            input("broad", &as_role(&broad), &format!("{schema}.orders")),
            "key:test",
        )
        .await
        .expect_err("a role that reads more is refused");
    assert!(err.to_string().contains("salaries"), "{err}");
    assert!(f
        .store
        .get_integration(&f.tenant, "sql", "broad")
        .await
        .expect("get")
        .is_none());

    f.sources
        .remove(&f.tenant, "narrow", "key:test")
        .await
        .expect("remove");
    pg_drop(&pool, &schema).await;
    let _ = pool
        .execute(sqlx::raw_sql(&format!(
            "DROP ROLE {narrow}; DROP ROLE {broad};"
        )))
        .await;
}

#[tokio::test]
async fn registrations_that_cannot_work_are_refused_and_nothing_is_stored() {
    let Some(url) = roster_testkit::peers::postgres_url() else {
        return;
    };
    let (schema, pool) = pg_schema(&url).await;
    let f = fixture().await;
    for (allow, why) in [
        (format!("{schema}.nope"), "no table or view"),
        (format!("{schema}.customers(id,nope)"), "no column `nope`"),
        ("orders(".to_owned(), "unbalanced"),
    ] {
        let err = f
            .sources
            .register(&f.tenant, input("bad", &url, &allow), "key:test")
            .await
            .expect_err(&allow);
        assert!(err.to_string().contains(why), "{allow}: {err}");
    }
    let err = f
        .sources
        .register(
            &f.tenant,
            input("bad", "postgres://nobody@127.0.0.1:1/none", "orders"),
            "key:test",
        )
        .await
        .expect_err("unreachable");
    assert!(matches!(err, SqlError::Unavailable(_)), "{err}");
    let err = f
        .sources
        .register(
            &f.tenant,
            input("bad", "oracle://x/y", "orders"),
            "key:test",
        )
        .await
        .expect_err("engine");
    assert!(matches!(err, SqlError::Invalid(_)), "{err}");
    assert!(f
        .store
        .list_integrations(&f.tenant, "sql")
        .await
        .expect("list")
        .is_empty());

    // A second registration under a taken name is a conflict, and leaves no role.
    f.sources
        .register(
            &f.tenant,
            input("wh", &url, &format!("{schema}.orders")),
            "key:test",
        )
        .await
        .expect("first");
    let err = f
        .sources
        .register(
            &f.tenant,
            input("wh", &url, &format!("{schema}.orders")),
            "key:test",
        )
        .await
        .expect_err("taken");
    assert_eq!(err.code(), "store_error");
    assert!(err.to_string().contains("exists"), "{err}");
    f.sources
        .remove(&f.tenant, "wh", "key:test")
        .await
        .expect("remove");
    let (roles,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_roles r WHERE r.rolname LIKE 'roster_ro_%' AND EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND has_table_privilege(r.oid, c.oid, 'SELECT'))",
    )
    .bind(&schema)
    .fetch_one(&pool)
    .await
    .expect("roles");
    assert_eq!(roles, 0, "no role is left reading this schema");
    pg_drop(&pool, &schema).await;
}

// ---------------------------------------------------------------- MariaDB

#[tokio::test]
async fn mariadb_source_is_read_only_and_allow_listed_by_the_server() {
    let Some(url) = roster_testkit::peers::mysql_url() else {
        return;
    };
    let pool = sqlx::MySqlPool::connect(&url).await.expect("mariadb");
    let p = unique();
    for statement in [
        format!("CREATE TABLE {p}_orders (id INT PRIMARY KEY, customer VARCHAR(40) COMMENT 'Who bought', total DECIMAL(10,2), note BLOB) COMMENT 'Orders placed'"),
        format!("CREATE TABLE {p}_salaries (name VARCHAR(40), amount INT)"),
        format!("INSERT INTO {p}_orders VALUES (1, 'Acme', 10.50, NULL), (2, 'Globex', 7.25, x'00ff'), (3, 'Acme', 1.00, 'hi')"),
        format!("INSERT INTO {p}_salaries VALUES ('ceo', 1000000)"),
    ] {
        pool.execute(sqlx::raw_sql(&statement)).await.expect("setup");
    }
    let f = fixture().await;
    let mut source = input("shop", &url, &format!("{p}_orders(id,customer,total,note)"));
    source.timeout_secs = Some(1);
    f.sources
        .register(&f.tenant, source, "key:test")
        .await
        .expect("register");
    let (_, config) = f
        .sources
        .registration(&f.tenant, "shop")
        .await
        .expect("config");
    assert!(config.mariadb);
    let Access::RestrictedRole { role } = &config.access else {
        panic!("root gets a restricted user: {:?}", config.access);
    };

    let (_, tables) = f.sources.schema(&f.tenant, "shop").await.expect("schema");
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0].comment.as_deref(), Some("Orders placed"));
    assert_eq!(tables[0].columns[1].comment.as_deref(), Some("Who bought"));

    let table = f
        .sources
        .query(&f.tenant, "shop", &format!("SELECT customer, SUM(total) AS spent FROM {p}_orders GROUP BY customer ORDER BY customer"))
        .await
        .expect("query");
    assert_eq!(table.columns, ["customer", "spent"]);
    assert_eq!(
        table.rows,
        vec![
            vec![Some("Acme".to_owned()), Some("11.50".to_owned())],
            vec![Some("Globex".to_owned()), Some("7.25".to_owned())],
        ]
    );
    let notes = f
        .sources
        .query(
            &f.tenant,
            "shop",
            &format!("SELECT note FROM {p}_orders ORDER BY id"),
        )
        .await
        .expect("blobs");
    assert_eq!(
        notes.rows,
        vec![
            vec![None],
            vec![Some("0x00ff".to_owned())],
            vec![Some("hi".to_owned())]
        ]
    );

    let err = f
        .sources
        .query(&f.tenant, "shop", &format!("DELETE FROM {p}_orders"))
        .await
        .expect_err("write");
    assert!(matches!(err, SqlError::Refused(_)), "{err}");
    for (sql, why) in [
        // The grant stops it first; the READ ONLY transaction stands behind.
        (format!("DELETE FROM {p}_orders"), "DELETE command denied"),
        (format!("SELECT * FROM {p}_salaries"), "refused"),
        ("SELECT LOAD_FILE('/etc/hostname')".to_owned(), ""),
        (
            format!("SELECT * FROM {p}_orders INTO OUTFILE '/tmp/{p}.out'"),
            "refused",
        ),
    ] {
        match f.sources.query_unchecked(&f.tenant, "shop", &sql).await {
            Err(err) => assert!(err.to_string().contains(why), "{sql}: {err}"),
            // LOAD_FILE without the FILE privilege reads nothing: NULL.
            Ok(table) => assert_eq!(table.rows, vec![vec![None]], "{sql}"),
        }
    }
    assert!(!std::path::Path::new(&format!("/tmp/{p}.out")).exists());

    let started = Instant::now();
    let err = f.sources.query(&f.tenant, "shop", "SELECT SLEEP(30)").await;
    // MariaDB ends SLEEP at max_statement_time either with an error or
    // with the interrupted sleep's 1; both come back within the limit.
    if let Err(err) = err {
        assert!(matches!(err, SqlError::Timeout(_)), "{err}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    f.sources
        .remove(&f.tenant, "shop", "key:test")
        .await
        .expect("remove");
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mysql.user WHERE User = ?")
        .bind(role)
        .fetch_one(&pool)
        .await
        .expect("users");
    assert_eq!(left, 0);
    let _ = pool
        .execute(sqlx::raw_sql(&format!(
            "DROP TABLE {p}_orders, {p}_salaries"
        )))
        .await;
}

// ---------------------------------------------------------------- SQLite

fn sqlite_file(dir: &std::path::Path) -> String {
    let path = dir.join("crm.db");
    let conn = rusqlite::Connection::open(&path).expect("sqlite");
    conn.execute_batch(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, owner TEXT, secret TEXT);
         CREATE TABLE notes (account_id INTEGER, body TEXT);
         CREATE VIEW big_accounts AS SELECT id, name FROM accounts WHERE id > 1;
         INSERT INTO accounts VALUES (1, 'Acme', 'ann', 's1'), (2, 'Globex', 'bob', 's2'), (3, 'Initech', 'ann', 's3');
         INSERT INTO notes VALUES (1, 'call back');",
    )
    .expect("schema");
    format!("sqlite:{}", path.display())
}

#[tokio::test]
async fn sqlite_source_reads_only_allowed_tables_and_columns() {
    let dir = tempfile::tempdir().expect("dir");
    let url = sqlite_file(dir.path());
    let f = fixture().await;
    f.sources
        .register(
            &f.tenant,
            input("crm", &url, "accounts(id,name,owner),big_accounts"),
            "key:test",
        )
        .await
        .expect("register");
    let (_, tables) = f.sources.schema(&f.tenant, "crm").await.expect("schema");
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[0].columns.len(), 3);
    assert_eq!(tables[1].kind, "view");

    let table = f
        .sources
        .query(
            &f.tenant,
            "crm",
            "SELECT owner, count(*) AS n FROM accounts GROUP BY owner ORDER BY owner",
        )
        .await
        .expect("query");
    assert_eq!(
        table.rows,
        vec![
            vec![Some("ann".to_owned()), Some("2".to_owned())],
            vec![Some("bob".to_owned()), Some("1".to_owned())],
        ]
    );
    let view = f
        .sources
        .query(
            &f.tenant,
            "crm",
            "SELECT name FROM big_accounts ORDER BY id",
        )
        .await
        .expect("an allowed view reads its table");
    assert_eq!(view.rows.len(), 2);

    for (sql, why) in [
        ("SELECT secret FROM accounts", "prohibited"),
        ("SELECT * FROM accounts", "prohibited"),
        ("SELECT * FROM notes", "prohibited"),
        ("SELECT sql FROM sqlite_schema", "prohibited"),
        ("DELETE FROM accounts", "not authorized"),
        ("PRAGMA table_info(notes)", "not authorized"),
        ("ATTACH DATABASE '/tmp/x.db' AS x", "not authorized"),
        ("SELECT load_extension('x')", "not authorized"),
    ] {
        let err = f
            .sources
            .query_unchecked(&f.tenant, "crm", sql)
            .await
            .expect_err(sql);
        assert!(err.to_string().contains(why), "{sql}: {err}");
    }
    // The file is unchanged.
    let conn = rusqlite::Connection::open(dir.path().join("crm.db")).expect("open");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 3);

    let mut slow = input("slow", &url, "accounts");
    slow.timeout_secs = Some(1);
    f.sources
        .register(&f.tenant, slow, "key:test")
        .await
        .expect("register");
    let started = Instant::now();
    let err = f
        .sources
        .query(
            &f.tenant,
            "slow",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        )
        .await
        .expect_err("endless");
    assert!(matches!(err, SqlError::Timeout(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------- the tool

#[tokio::test]
async fn one_sql_query_tool_serves_all_of_an_agents_sources() {
    let dir = tempfile::tempdir().expect("dir");
    let url = sqlite_file(dir.path());
    let f = fixture().await;
    let mut crm = input("crm", &url, "accounts(id,name)");
    crm.description = Some("Customer accounts from the CRM.".into());
    f.sources
        .register(&f.tenant, crm, "key:test")
        .await
        .expect("crm");
    f.sources
        .register(&f.tenant, input("notes", &url, "notes"), "key:test")
        .await
        .expect("notes");
    let provider = SqlProvider::new(f.sources.clone());
    provider.check(&f.tenant, "crm").await.expect("known");
    assert!(provider.check(&f.tenant, "nope").await.is_err());

    let resolved = provider
        .resolve_all(&f.tenant, &["crm".into(), "notes".into(), "nope".into()])
        .await;
    assert_eq!(resolved.tools.len(), 1);
    assert_eq!(resolved.failed.len(), 1);
    assert_eq!(resolved.failed[0].0, "nope");
    let tool = &resolved.tools[0];
    assert_eq!(tool.name(), "sql_query");
    assert!(tool.idempotent());
    let description = tool.description();
    assert!(description.contains("## crm (SQLite"), "{description}");
    assert!(description.contains("Customer accounts from the CRM."));
    assert!(description.contains("- main.accounts (table)"));
    assert!(!description.contains("secret"), "{description}");
    assert_eq!(
        tool.parameters()["properties"]["source"]["enum"],
        serde_json::json!(["crm", "notes"])
    );

    let ctx = ToolCallContext {
        tenant: f.tenant.clone(),
        agent_id: roster_core::AgentId::generate(),
        session_id: roster_core::SessionId::generate(),
        run_id: roster_core::RunId::generate(),
        call_id: "call_1".into(),
    };
    let out = tool
        .call(
            &ctx,
            serde_json::json!({"source": "crm", "query": "SELECT name FROM accounts ORDER BY id"}),
        )
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert!(
        out.text.contains("3 rows") && out.text.contains("| Globex |"),
        "{}",
        out.text
    );
    let out = tool
        .call(
            &ctx,
            serde_json::json!({"source": "crm", "query": "DROP TABLE accounts"}),
        )
        .await;
    assert!(
        out.is_error && out.text.contains("read-only"),
        "{}",
        out.text
    );
    let out = tool
        .call(
            &ctx,
            serde_json::json!({"source": "hr", "query": "SELECT 1"}),
        )
        .await;
    assert!(
        out.is_error && out.text.contains("crm, notes"),
        "{}",
        out.text
    );
}

#[tokio::test]
async fn mariadb_without_create_user_runs_as_a_narrow_connecting_user_only() {
    let Some(url) = roster_testkit::peers::mysql_url() else {
        return;
    };
    let pool = sqlx::MySqlPool::connect(&url).await.expect("mariadb");
    let p = unique();
    let (narrow, broad) = (format!("{p}_narrow"), format!("{p}_broad"));
    for statement in [
        format!("CREATE TABLE {p}_orders (id INT PRIMARY KEY)"),
        format!("CREATE TABLE {p}_secrets (id INT PRIMARY KEY)"),
        format!("INSERT INTO {p}_orders VALUES (1), (2)"),
        format!("CREATE USER '{narrow}'@'%'"),
        format!("GRANT SELECT ON test.{p}_orders TO '{narrow}'@'%'"),
        format!("CREATE USER '{broad}'@'%'"),
        format!("GRANT SELECT ON test.* TO '{broad}'@'%'"),
    ] {
        pool.execute(sqlx::raw_sql(&statement))
            .await
            .expect("setup");
    }
    let as_user = |user: &str| {
        let mut parsed = url::Url::parse(&url).expect("url");
        parsed.set_username(user).expect("user");
        parsed.to_string()
    };
    let f = fixture().await;
    f.sources
        .register(
            &f.tenant,
            input("narrow", &as_user(&narrow), &format!("{p}_orders")),
            "key:test",
        )
        .await
        .expect("a user that reads only the allow-list is accepted");
    let (_, config) = f
        .sources
        .registration(&f.tenant, "narrow")
        .await
        .expect("config");
    assert!(
        matches!(config.access, Access::ConnectingRole { .. }),
        "{:?}",
        config.access
    );
    let table = f
        .sources
        .query(
            &f.tenant,
            "narrow",
            &format!("SELECT COUNT(*) AS n FROM {p}_orders"),
        )
        .await
        .expect("query");
    assert_eq!(table.rows, vec![vec![Some("2".to_owned())]]);
    let err = f
        .sources
        .register(
            &f.tenant,
            input("broad", &as_user(&broad), &format!("{p}_orders")),
            "key:test",
        )
        .await
        .expect_err("a user that reads more is refused");
    assert!(err.to_string().contains(&format!("{p}_secrets")), "{err}");
    f.sources
        .remove(&f.tenant, "narrow", "key:test")
        .await
        .expect("remove");
    for statement in [
        format!("DROP USER '{narrow}'@'%'"),
        format!("DROP USER '{broad}'@'%'"),
        format!("DROP TABLE {p}_orders, {p}_secrets"),
    ] {
        let _ = pool.execute(sqlx::raw_sql(&statement)).await;
    }
}
