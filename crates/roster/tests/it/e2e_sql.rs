//! End to end: with the real binary, a user registers a PostgreSQL database
//! through the CLI, attaches it and the filesystem MCP server to one agent,
//! and the agent answers a question that needs both; writes are refused,
//! the URL's password never comes back, and removal drops the role.
//!
//! Needs `ROSTER_TEST_DATABASE_URL` and `ROSTER_TEST_MCP_NODE_MODULES`
//! (see `.ci/run`); skipped with a notice without them, except in CI.

use crate::common;

use common::{cli, Server};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::json;
use sqlx::Executor;

const PASSWORD: &str = "pw-must-stay-secret";

#[tokio::test]
async fn an_agent_answers_from_a_database_and_a_file_together() {
    let Some(modules) = roster_testkit::peers::mcp_node_modules() else {
        return;
    };
    let Some(db_url) = common::postgres_url().await else {
        return;
    };
    let pool = sqlx::PgPool::connect(&db_url).await.expect("postgres");
    pool.execute(sqlx::raw_sql(
        "CREATE TABLE orders (id int primary key, region text, total numeric(10,2));
         COMMENT ON TABLE orders IS 'Orders of Q3';
         CREATE TABLE payroll (name text, salary int);
         INSERT INTO orders VALUES (1, 'EU', 100.00), (2, 'EU', 250.50), (3, 'US', 75.25);
         INSERT INTO payroll VALUES ('ceo', 1000000);",
    ))
    .await
    .expect("tables");
    // Trust authentication ignores the password; it stands for a real one.
    let mut source_url = url::Url::parse(&db_url).expect("url");
    source_url.set_password(Some(PASSWORD)).expect("password");
    let source_url = source_url.to_string();

    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).expect("docs");
    std::fs::write(docs.join("targets.txt"), "Q3 target for EU: 300 EUR\n").expect("file");
    let data = dir.path().join("data");
    // The operator opens the test's databases on this machine's loopback.
    let walls = [("ROSTER_EGRESS_ALLOW", "127.0.0.1")];
    let server = Server::start(&data, &model.openai_base_url(), &walls).await;
    let api = server.client();

    let (ok, out, err) = cli(
        &server,
        &[
            "source",
            "add-sql",
            "warehouse",
            "--url",
            &source_url,
            "--allow",
            "orders",
            "--description",
            "Sales data",
            "--timeout",
            "5",
        ],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("added SQL source warehouse") && out.contains("sql:warehouse"),
        "{out}"
    );
    assert!(!out.contains(PASSWORD), "{out}");
    let fs_bin = modules.join(".bin/mcp-server-filesystem");
    let (ok, _, err) = cli(
        &server,
        &[
            "mcp",
            "add",
            "files",
            "--allow",
            "read_text_file",
            "--read-only",
            modules.to_str().expect("path"),
            "--read-only",
            docs.to_str().expect("path"),
            "--",
            fs_bin.to_str().expect("path"),
            docs.to_str().expect("path"),
        ],
    );
    assert!(ok, "{err}");

    // What the user can see: the schema, a query, never the password.
    let (ok, out, err) = cli(&server, &["source", "schema", "warehouse"]);
    assert!(ok, "{err}");
    assert!(out.contains("public.orders (table): Orders of Q3"), "{out}");
    assert!(out.contains("total numeric(10,2)"), "{out}");
    assert!(!out.contains("payroll"), "{out}");
    let (ok, out, err) = cli(
        &server,
        &[
            "source",
            "query",
            "warehouse",
            "SELECT region, sum(total) FROM orders GROUP BY region ORDER BY region",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("350.50"), "{out}");
    let (ok, out, err) = cli(
        &server,
        &["source", "query", "warehouse", "DELETE FROM orders"],
    );
    assert!(!ok, "{out}");
    assert!(
        err.contains("read-only") && err.trim().lines().count() == 1,
        "{err}"
    );
    let (ok, _, err) = cli(
        &server,
        &["source", "query", "warehouse", "SELECT * FROM payroll"],
    );
    assert!(!ok && err.contains("allows: public.orders"), "{err}");
    let (ok, out, _) = cli(&server, &["source", "list"]);
    assert!(
        ok && out.contains("warehouse") && out.contains("postgres"),
        "{out}"
    );
    let (status, shown) = api.get("/v1/sources/sql/warehouse").await;
    assert_eq!(status, 200);
    assert!(!shown.to_string().contains(PASSWORD), "{shown}");
    assert_eq!(shown["access"]["mode"], "restricted_role", "{shown}");
    let role = shown["access"]["role"].as_str().expect("role").to_owned();

    // Bad registrations: clear errors with stable codes, nothing stored.
    for (body, status_code, code) in [
        (
            json!({"name": "x", "url": source_url, "allow": ["nope"]}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "x", "url": "postgres://u@127.0.0.1:1/db", "allow": ["t"]}),
            502,
            "database_unavailable",
        ),
        (
            json!({"name": "x", "url": source_url, "allow": []}),
            400,
            "invalid_request",
        ),
        (
            json!({"name": "warehouse", "url": source_url, "allow": ["orders"]}),
            409,
            "conflict",
        ),
    ] {
        let (status, answer) = api.post("/v1/sources/sql", body.clone()).await;
        assert_eq!(status, status_code, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(!answer.to_string().contains(PASSWORD), "{answer}");
    }
    let (status, _) = api
        .post(
            "/v1/agents",
            json!({"name": "bad", "instructions": "x", "model": "openai/m", "tools": ["sql:nope"]}),
        )
        .await;
    assert_eq!(status, 400);

    let (status, agent) = api
        .post(
            "/v1/agents",
            json!({
                "name": "analyst",
                "instructions": "Compare sales with targets.",
                "model": "openai/gpt-4.1-mini",
                "tools": ["mcp:files", "sql:warehouse"],
            }),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let (_, session) = api.post("/v1/sessions", json!({"agent": "analyst"})).await;
    let sid = session["id"].as_str().expect("session").to_owned();

    let read = json!({"path": docs.join("targets.txt").display().to_string()}).to_string();
    let query = json!({"source": "warehouse", "query": "SELECT sum(total) AS eu_total FROM orders WHERE region = 'EU'"}).to_string();
    model.push(
        Reply::tool_call("c1", "files__read_text_file", &read).and_tool_call(
            "c2",
            "sql_query",
            &query,
        ),
    );
    model.push(Reply::tool_call(
        "c3",
        "sql_query",
        &json!({"source": "warehouse", "query": "UPDATE orders SET total = 0"}).to_string(),
    ));
    model.push(Reply::text("EU sold 350.50 EUR against a 300 EUR target."));
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "Did EU meet its Q3 target?"}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["run"]["status"], "completed", "{result}");
    let results: Vec<String> = result["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["type"] == "tool_result")
        .map(|i| i.to_string())
        .collect();
    assert_eq!(results.len(), 3, "{result}");
    assert!(results.iter().any(|r| r.contains("300 EUR")), "{results:?}");
    assert!(
        results
            .iter()
            .any(|r| r.contains("eu_total") && r.contains("350.50")),
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| r.contains("read-only")),
        "{results:?}"
    );

    // The model saw one sql_query tool describing the allowed schema only.
    let first = &model.requests()[0].body;
    let sql_tool = first["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .find(|t| t["function"]["name"] == "sql_query")
        .expect("sql_query offered")
        .clone();
    let description = sql_tool["function"]["description"]
        .as_str()
        .expect("description");
    assert!(
        description.contains("public.orders") && description.contains("Sales data"),
        "{description}"
    );
    assert!(!description.contains("payroll"), "{description}");
    assert_eq!(
        sql_tool["function"]["parameters"]["properties"]["source"]["enum"],
        json!(["warehouse"])
    );

    let (total,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders WHERE total > 0")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(total, 3, "nothing was written");

    // The password is sealed: not in the database file in clear.
    for file in ["roster.db", "roster.db-wal"] {
        let Ok(bytes) = std::fs::read(data.join(file)) else {
            continue;
        };
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|w| w == PASSWORD.as_bytes()),
            "{file}"
        );
    }

    let (ok, _, err) = cli(&server, &["source", "remove", "warehouse"]);
    assert!(ok, "{err}");
    let (roles,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_roles WHERE rolname = $1")
        .bind(&role)
        .fetch_one(&pool)
        .await
        .expect("roles");
    assert_eq!(roles, 0, "the read-only role is gone");
    let (ok, _, err) = cli(&server, &["source", "show", "warehouse"]);
    assert!(!ok && err.contains("no source `warehouse`"), "{err}");
}
