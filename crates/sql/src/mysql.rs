//! MySQL and MariaDB sources. Queries run as a user Roster creates at
//! registration with SELECT on the allow-list only, inside a READ ONLY
//! transaction with the server's statement time limit. The text protocol
//! brings every value back as the server prints it.

use crate::allow::AllowedTable;
use crate::engine::{
    self, Backend, ColumnSchema, Provisioned, TableSchema, CONNECT_TIMEOUT, POOL_SIZE,
};
use crate::spec::{Access, Limits, SqlSecrets, SqlSourceConfig};
use crate::table::{ResultTable, TableBuilder};
use crate::SqlError;
use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::mysql::{
    MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlPool, MySqlPoolOptions,
};
use sqlx::{Column, ConnectOptions, Executor, Row, Statement};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// The URL's options, connecting to `at` (the address the egress policy
/// checked) rather than resolving the host again.
fn options(url: &str, at: SocketAddr) -> Result<MySqlConnectOptions, SqlError> {
    let url = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_owned(),
    };
    let options = MySqlConnectOptions::from_str(&url)
        .map_err(|e| SqlError::Invalid(format!("invalid MySQL/MariaDB url: {e}")))?;
    if options.get_database().is_none() {
        return Err(SqlError::Invalid(
            "a MySQL/MariaDB url names its database: mysql://USER@HOST/DATABASE".into(),
        ));
    }
    Ok(options
        .disable_statement_logging()
        .host(&at.ip().to_string())
        .port(at.port()))
}

async fn connect(options: &MySqlConnectOptions) -> Result<MySqlConnection, SqlError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(SqlError::Unavailable(format!(
            "cannot connect to MySQL/MariaDB: {e}"
        ))),
        Err(_) => Err(SqlError::Unavailable(format!(
            "MySQL/MariaDB did not answer within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

fn map_error(e: sqlx::Error) -> SqlError {
    match e {
        sqlx::Error::Database(db) => {
            let message = db.message().to_owned();
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|e| e.number())
                .unwrap_or(0);
            match number {
                1792 => SqlError::Database(format!(
                    "the database refused: {message} (this source is read-only)"
                )),
                1142 | 1143 | 1044 | 1227 | 1045 => SqlError::Database(format!(
                    "the database refused: {message} (this source may only read its allow-listed tables and columns)"
                )),
                1969 | 3024 | 1317 => SqlError::Timeout(format!(
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
    conn: &mut MySqlConnection,
    entry: &AllowedTable,
) -> Result<Option<TableSchema>, SqlError> {
    let found: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), CAST(TABLE_TYPE AS CHAR), CAST(TABLE_COMMENT AS CHAR) \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND LOWER(TABLE_NAME) = LOWER(?) \
         ORDER BY TABLE_NAME = ? DESC LIMIT 1",
    )
    .bind(entry.schema.as_deref())
    .bind(&entry.table)
    .bind(&entry.table)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_error)?;
    let Some((schema, table, kind, comment)) = found else {
        return Ok(None);
    };
    let columns: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR), CAST(IS_NULLABLE AS CHAR), CAST(COLUMN_COMMENT AS CHAR) \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(&schema)
    .bind(&table)
    .fetch_all(&mut *conn)
    .await
    .map_err(map_error)?;
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok(Some(TableSchema {
        schema: Some(schema),
        name: table,
        kind: if kind.contains("VIEW") {
            "view"
        } else {
            "table"
        }
        .to_owned(),
        comment: non_empty(comment),
        columns: columns
            .into_iter()
            .map(|(name, data_type, nullable, comment)| ColumnSchema {
                name,
                data_type,
                nullable: nullable == "YES",
                comment: non_empty(comment),
            })
            .collect(),
    }))
}

pub(crate) async fn provision(
    url: &str,
    at: SocketAddr,
    allow: &[AllowedTable],
    _source: &str,
) -> Result<Provisioned, SqlError> {
    let admin_options = options(url, at)?;
    let mut admin = connect(&admin_options).await?;
    let mut exact = Vec::new();
    for entry in allow {
        let mut schema = describe_with(&mut admin, entry).await?.ok_or_else(|| {
            SqlError::Invalid(format!(
                "the database has no table or view `{}`",
                entry.qualified()
            ))
        })?;
        exact.push(schema.restrict(entry)?);
    }
    let (version, user): (String, String) =
        sqlx::query_as("SELECT CAST(VERSION() AS CHAR), CAST(CURRENT_USER() AS CHAR)")
            .fetch_one(&mut admin)
            .await
            .map_err(map_error)?;
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    let role = engine::new_role_name();
    let password = engine::new_password();
    let account = format!("{}@'%'", quote_literal(&role));
    let created = Executor::execute(
        &mut admin,
        sqlx::raw_sql(&format!(
            "CREATE USER {account} IDENTIFIED BY {} WITH MAX_USER_CONNECTIONS {}",
            quote_literal(&password),
            POOL_SIZE * 4
        )),
    )
    .await;
    match created {
        Ok(_) => {}
        Err(sqlx::Error::Database(db))
            if db
                .try_downcast_ref::<MySqlDatabaseError>()
                .is_some_and(|e| matches!(e.number(), 1227 | 1044 | 1045 | 1142)) =>
        {
            check_connecting_user(&mut admin, &user, &exact).await?;
            return Ok(Provisioned {
                allow: exact,
                access: Access::ConnectingRole { role: user },
                role_password: None,
                mariadb,
            });
        }
        Err(e) => return Err(map_error(e)),
    }
    let granted = async {
        for table in &exact {
            let target = format!(
                "{}.{}",
                quote_ident(table.schema.as_deref().unwrap_or_default()),
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
            Executor::execute(
                &mut admin,
                sqlx::raw_sql(&format!("GRANT {what} ON {target} TO {account}")),
            )
            .await
            .map_err(map_error)?;
        }
        let role_options = admin_options.clone().username(&role).password(&password);
        connect(&role_options).await.map(|_| ())
    }
    .await;
    if let Err(e) = granted {
        let _ = Executor::execute(
            &mut admin,
            sqlx::raw_sql(&format!("DROP USER IF EXISTS {account}")),
        )
        .await;
        return Err(SqlError::Invalid(format!(
            "Roster could not set up its read-only user for this source: {e}"
        )));
    }
    Ok(Provisioned {
        allow: exact,
        access: Access::RestrictedRole { role },
        role_password: Some(password),
        mariadb,
    })
}

/// information_schema shows a user only what it has some privilege on, so
/// anything there beyond the allow-list means the user reaches too far.
async fn check_connecting_user(
    conn: &mut MySqlConnection,
    user: &str,
    allow: &[AllowedTable],
) -> Result<(), SqlError> {
    let visible: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA NOT IN ('information_schema','performance_schema','mysql','sys')",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(map_error)?;
    let extra = engine::outside_allow_list(&visible, allow);
    if !extra.is_empty() {
        return Err(engine::refuse_broad_role(user, &extra));
    }
    Ok(())
}

pub(crate) async fn drop_user(url: &str, at: SocketAddr, role: &str) -> Result<(), SqlError> {
    let mut admin = connect(&options(url, at)?).await?;
    Executor::execute(
        &mut admin,
        sqlx::raw_sql(&format!("DROP USER IF EXISTS {}@'%'", quote_literal(role))),
    )
    .await
    .map_err(map_error)?;
    Ok(())
}

pub(crate) struct MySqlBackend {
    pool: MySqlPool,
    mariadb: bool,
}

impl MySqlBackend {
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
        let pool = MySqlPoolOptions::new()
            .max_connections(POOL_SIZE)
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            mariadb: config.mariadb,
        })
    }

    // Statements go through `Executor::execute`/`fetch`: `raw_sql(..)
    // .execute(..)` makes the future fail the `Send` check async-trait needs.
    async fn run(
        &self,
        conn: &mut MySqlConnection,
        sql: &str,
        limits: &Limits,
    ) -> Result<ResultTable, sqlx::Error> {
        let mariadb = self.mariadb;
        let limit = if mariadb {
            format!("SET SESSION max_statement_time = {}", limits.timeout_secs)
        } else {
            format!(
                "SET SESSION max_execution_time = {}",
                limits.timeout().as_millis()
            )
        };
        // One round trip for both (a multi-statement text query).
        Executor::execute(
            &mut *conn,
            sqlx::raw_sql(&format!("{limit}; START TRANSACTION READ ONLY")),
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
                    let bytes = row.try_get_unchecked::<Option<Vec<u8>>, _>(i)?;
                    cells.push(bytes.map(|b| match String::from_utf8(b) {
                        Ok(text) => text,
                        Err(e) => format!("0x{}", hex::encode(e.into_bytes())),
                    }));
                }
                if !table.push(cells) {
                    break;
                }
            }
        }
        if !any {
            let statement = (&mut *conn).prepare(sql).await?;
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
}

#[async_trait]
impl Backend for MySqlBackend {
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
        let backstop = limits.timeout() + Duration::from_secs(2);
        match tokio::time::timeout(backstop, self.run(&mut conn, sql, limits)).await {
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
