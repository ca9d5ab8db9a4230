//! PostgreSQL sources. Queries run as a login role Roster creates at
//! registration (SELECT on the allow-list, nothing else, read-only by
//! default) inside a READ ONLY transaction with a statement timeout.
//! Values come back in PostgreSQL's own text form through the simple query
//! protocol, so every type reads the way psql prints it.

use crate::allow::AllowedTable;
use crate::engine::{
    self, Backend, ColumnSchema, Provisioned, TableSchema, CONNECT_TIMEOUT, POOL_SIZE,
};
use crate::spec::{Access, Limits, SqlSecrets, SqlSourceConfig};
use crate::table::{ResultTable, TableBuilder};
use crate::SqlError;
use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Column, ConnectOptions, Connection, Executor, Row, Statement};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// The URL's options, connecting to `at` (the address the egress policy
/// checked) rather than resolving the host again. A URL without a password
/// sends none: neither `PGPASSWORD` nor Roster's `.pgpass` speaks for it.
fn options(url: &str, at: SocketAddr) -> Result<PgConnectOptions, SqlError> {
    let mut options = PgConnectOptions::from_str(url)
        .map_err(|e| SqlError::Invalid(format!("invalid PostgreSQL url: {e}")))?
        .application_name("roster")
        .disable_statement_logging()
        .host(&at.ip().to_string())
        .port(at.port());
    if url::Url::parse(url).is_ok_and(|u| u.password().is_none()) {
        options = options.password("");
    }
    Ok(options)
}

async fn connect(options: &PgConnectOptions) -> Result<PgConnection, SqlError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(SqlError::Unavailable(format!(
            "cannot connect to PostgreSQL: {e}"
        ))),
        Err(_) => Err(SqlError::Unavailable(format!(
            "PostgreSQL did not answer within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

pub(crate) fn map_error(e: sqlx::Error) -> SqlError {
    match e {
        sqlx::Error::Database(db) => {
            let message = db.message().to_owned();
            match db.code().as_deref() {
                Some("25006") => SqlError::Database(format!(
                    "the database refused: {message} (this source is read-only)"
                )),
                Some("42501") => SqlError::Database(format!(
                    "the database refused: {message} (this source may only read its allow-listed tables and columns)"
                )),
                Some("57014") => SqlError::Timeout(format!(
                    "the query ran past this source's time limit and was cancelled: {message}"
                )),
                _ => SqlError::Database(format!("the database answered: {message}")),
            }
        }
        sqlx::Error::PoolTimedOut => {
            SqlError::Unavailable("no connection to the database came free in time".into())
        }
        other => SqlError::Unavailable(format!("database connection failed: {other}")),
    }
}

async fn describe_with(
    conn: &mut PgConnection,
    entry: &AllowedTable,
) -> Result<Option<TableSchema>, SqlError> {
    let name = match &entry.schema {
        Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&entry.table)),
        None => quote_ident(&entry.table),
    };
    let folded = name.to_lowercase();
    let found: Option<(i64, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text, c.relkind::text, obj_description(c.oid, 'pg_class') \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.oid = COALESCE(to_regclass($1), to_regclass($2)) AND c.relkind IN ('r','v','m','f','p')",
    )
    .bind(&name)
    .bind(&folded)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_error)?;
    let Some((oid, schema, table, kind, comment)) = found else {
        return Ok(None);
    };
    let columns: Vec<(String, String, bool, Option<String>)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, col_description(a.attrelid, a.attnum) \
         FROM pg_attribute a WHERE a.attrelid = $1::int8::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_error)?;
    Ok(Some(TableSchema {
        schema: Some(schema),
        name: table,
        kind: if kind == "v" || kind == "m" {
            "view"
        } else {
            "table"
        }
        .to_owned(),
        comment,
        columns: columns
            .into_iter()
            .map(|(name, data_type, nullable, comment)| ColumnSchema {
                name,
                data_type,
                nullable,
                comment,
            })
            .collect(),
    }))
}

async fn describe_all(
    conn: &mut PgConnection,
    allow: &[AllowedTable],
) -> Result<Vec<(AllowedTable, TableSchema)>, SqlError> {
    let mut out = Vec::new();
    for entry in allow {
        let mut schema = describe_with(conn, entry).await?.ok_or_else(|| {
            SqlError::Invalid(format!(
                "the database has no table or view `{}`",
                entry.qualified()
            ))
        })?;
        let exact = schema.restrict(entry)?;
        out.push((exact, schema));
    }
    Ok(out)
}

pub(crate) async fn provision(
    url: &str,
    at: SocketAddr,
    allow: &[AllowedTable],
    source: &str,
) -> Result<Provisioned, SqlError> {
    let admin_options = options(url, at)?;
    let mut admin = connect(&admin_options).await?;
    let described = describe_all(&mut admin, allow).await?;
    let allow: Vec<AllowedTable> = described.iter().map(|(a, _)| a.clone()).collect();
    let (user, may_create): (String, bool) = sqlx::query_as(
        "SELECT current_user::text, rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut admin)
    .await
    .map_err(map_error)?;
    if !may_create {
        check_connecting_role(&mut admin, &user, &allow).await?;
        return Ok(Provisioned {
            allow,
            access: Access::ConnectingRole { role: user },
            role_password: None,
            mariadb: false,
        });
    }
    let role = engine::new_role_name();
    let password = engine::new_password();
    let (database,): (String,) = sqlx::query_as("SELECT current_database()::text")
        .fetch_one(&mut admin)
        .await
        .map_err(map_error)?;
    let mut statements = vec![
        format!(
            "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {}",
            quote_ident(&role),
            quote_literal(&password),
            POOL_SIZE * 4
        ),
        format!("COMMENT ON ROLE {} IS {}", quote_ident(&role), quote_literal(&format!("Roster SQL source `{source}`: read-only, allow-listed tables only"))),
        format!("ALTER ROLE {} SET default_transaction_read_only = on", quote_ident(&role)),
        format!("GRANT CONNECT ON DATABASE {} TO {}", quote_ident(&database), quote_ident(&role)),
    ];
    let mut schemas: Vec<&str> = allow.iter().filter_map(|t| t.schema.as_deref()).collect();
    schemas.sort_unstable();
    schemas.dedup();
    for schema in schemas {
        statements.push(format!(
            "GRANT USAGE ON SCHEMA {} TO {}",
            quote_ident(schema),
            quote_ident(&role)
        ));
    }
    for table in &allow {
        let target = format!(
            "{}.{}",
            quote_ident(table.schema.as_deref().unwrap_or("public")),
            quote_ident(&table.table)
        );
        let what = match &table.columns {
            None => "SELECT".to_owned(),
            Some(columns) => format!(
                "SELECT ({})",
                columns
                    .iter()
                    .map(|c| quote_ident(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        statements.push(format!(
            "GRANT {what} ON {target} TO {}",
            quote_ident(&role)
        ));
    }
    let mut tx = admin.begin().await.map_err(map_error)?;
    for statement in &statements {
        Executor::execute(&mut *tx, sqlx::raw_sql(statement))
            .await
            .map_err(map_error)?;
    }
    tx.commit().await.map_err(map_error)?;
    // The role must be able to log in (pg_hba.conf may say otherwise).
    let role_options = admin_options.clone().username(&role).password(&password);
    if let Err(e) = connect(&role_options).await {
        let _ = drop_role_with(&mut admin, &role).await;
        return Err(SqlError::Invalid(format!(
            "Roster created the read-only role `{role}` but cannot log in as it ({e}); let it connect in pg_hba.conf, or register with a role limited to the allow-list"
        )));
    }
    Ok(Provisioned {
        allow,
        access: Access::RestrictedRole { role },
        role_password: Some(password),
        mariadb: false,
    })
}

/// Without a role of its own, Roster runs as the URL's role only if that
/// role can read nothing outside the allow-list and holds none of the
/// server-file roles.
async fn check_connecting_role(
    conn: &mut PgConnection,
    user: &str,
    allow: &[AllowedTable],
) -> Result<(), SqlError> {
    let (powerful,): (bool,) = sqlx::query_as(
        "SELECT bool_or(pg_has_role(current_user, r.oid, 'USAGE')) FROM pg_roles r \
         WHERE r.rolname IN ('pg_read_server_files','pg_write_server_files','pg_execute_server_program','pg_read_all_data','pg_write_all_data')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(map_error)?;
    if powerful {
        return Err(SqlError::Invalid(format!(
            "role `{user}` may read or write server files or all data; register with a role limited to the allow-list"
        )));
    }
    let visible: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog','information_schema') \
         AND has_table_privilege(format('%I.%I', table_schema, table_name), 'SELECT')",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(map_error)?;
    let extra = engine::outside_allow_list(&visible, allow);
    if !extra.is_empty() {
        return Err(engine::refuse_broad_role(user, &extra));
    }
    for table in allow {
        let Some(columns) = &table.columns else {
            continue;
        };
        let readable: Vec<(String,)> = sqlx::query_as(
            "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 \
             AND has_column_privilege(format('%I.%I', table_schema, table_name), column_name, 'SELECT')",
        )
        .bind(table.schema.as_deref().unwrap_or("public"))
        .bind(&table.table)
        .fetch_all(&mut *conn)
        .await
        .map_err(map_error)?;
        let extra: Vec<String> = readable
            .into_iter()
            .map(|(c,)| c)
            .filter(|c| !columns.contains(c))
            .map(|c| format!("{}.{c}", table.qualified()))
            .collect();
        if !extra.is_empty() {
            return Err(engine::refuse_broad_role(user, &extra));
        }
    }
    Ok(())
}

async fn drop_role_with(conn: &mut PgConnection, role: &str) -> Result<(), SqlError> {
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
        .bind(role)
        .execute(&mut *conn)
        .await
        .map_err(map_error)?;
    for statement in [
        format!("DROP OWNED BY {}", quote_ident(role)),
        format!("DROP ROLE IF EXISTS {}", quote_ident(role)),
    ] {
        Executor::execute(&mut *conn, sqlx::raw_sql(&statement))
            .await
            .map_err(map_error)?;
    }
    Ok(())
}

/// Drops the role, trying a few times: role DDL racing other role DDL on
/// the server (another source being registered) can fail with `tuple
/// concurrently updated`, which passes on a retry.
pub(crate) async fn drop_role(url: &str, at: SocketAddr, role: &str) -> Result<(), SqlError> {
    let mut admin = connect(&options(url, at)?).await?;
    let mut attempt = 0u64;
    loop {
        attempt += 1;
        match drop_role_with(&mut admin, role).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= 5 => return Err(e),
            Err(e) => {
                tracing::debug!(role, error = %e, attempt, "dropping the role failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
        }
    }
}

pub(crate) struct PgBackend {
    pool: PgPool,
}

impl PgBackend {
    pub fn open(
        config: &SqlSourceConfig,
        secrets: &SqlSecrets,
        at: SocketAddr,
    ) -> Result<Self, SqlError> {
        let mut options = options(&secrets.url, at)?;
        if let (Access::RestrictedRole { role }, Some(password)) =
            (&config.access, &secrets.role_password)
        {
            options = options.username(role).password(password);
        }
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy_with(options);
        Ok(Self { pool })
    }
}

// Statements go through `Executor::execute`/`fetch` rather than
// `raw_sql(..).execute(..)`: the latter's generic executor makes the
// future fail the `Send` check async-trait needs.
async fn run(
    conn: &mut PgConnection,
    sql: &str,
    limits: &Limits,
) -> Result<ResultTable, sqlx::Error> {
    // One round trip for both: the simple protocol runs them in order.
    let millis = limits.timeout().as_millis();
    Executor::execute(
        &mut *conn,
        sqlx::raw_sql(&format!(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = {millis}"
        )),
    )
    .await?;
    let mut table = TableBuilder::new(Vec::new(), limits.max_rows, limits.max_bytes);
    let mut any = false;
    {
        let mut rows = Executor::fetch(&mut *conn, sqlx::raw_sql(sql));
        while let Some(row) = rows.try_next().await? {
            if !any {
                table.set_columns(row.columns().iter().map(|c| c.name().to_owned()).collect());
                any = true;
            }
            let mut cells = Vec::with_capacity(row.len());
            for i in 0..row.len() {
                // Simple-protocol values are text whatever their type.
                cells.push(row.try_get_unchecked::<Option<String>, _>(i)?);
            }
            if !table.push(cells) {
                break;
            }
        }
    }
    if !any {
        let statement = Executor::prepare(&mut *conn, sql).await?;
        table.set_columns(
            statement
                .columns()
                .iter()
                .map(|c| c.name().to_owned())
                .collect(),
        );
    }
    Executor::execute(&mut *conn, sqlx::raw_sql("ROLLBACK")).await?;
    Ok(table.finish())
}

#[async_trait]
impl Backend for PgBackend {
    async fn describe(&self, allow: &[AllowedTable]) -> Result<Vec<TableSchema>, SqlError> {
        let mut conn = self.pool.acquire().await.map_err(map_error)?;
        let mut out = Vec::new();
        for entry in allow {
            if let Some(mut schema) = describe_with(&mut conn, entry).await? {
                schema.restrict(entry)?;
                out.push(schema);
            }
        }
        Ok(out)
    }

    async fn query(
        &self,
        _allow: &[AllowedTable],
        sql: &str,
        limits: &Limits,
    ) -> Result<ResultTable, SqlError> {
        let mut conn = self.pool.acquire().await.map_err(map_error)?;
        // The database cancels at the limit; this is the backstop for a
        // server that stops answering altogether.
        let backstop = limits.timeout() + Duration::from_secs(2);
        let outcome = tokio::time::timeout(backstop, run(&mut conn, sql, limits)).await;
        match outcome {
            Ok(Ok(table)) => Ok(table),
            Ok(Err(e)) => {
                if Executor::execute(&mut *conn, sqlx::raw_sql("ROLLBACK"))
                    .await
                    .is_err()
                {
                    conn.close_on_drop();
                }
                Err(map_error(e))
            }
            Err(_) => {
                conn.close_on_drop();
                Err(SqlError::Timeout(format!(
                    "the query did not finish within {}s and was abandoned",
                    limits.timeout_secs
                )))
            }
        }
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
