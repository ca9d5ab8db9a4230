//! SQLite sources. The file is checked against the operator's directories
//! at every open ([`SqlPolicy::sqlite_file`]) and opened by its canonical
//! path, read-only and refusing links; an authorizer the SQLite library
//! calls while compiling each statement allows reads of the allow-listed
//! tables and columns and nothing else (no other table, no PRAGMA, no
//! ATTACH, no write). A progress handler stops a statement at the time
//! limit.

use crate::allow::AllowedTable;
use crate::engine::{Backend, ColumnSchema, Provisioned, TableSchema};
use crate::spec::{Access, Limits};
use crate::table::{ResultTable, TableBuilder};
use crate::walls::SqlPolicy;
use crate::SqlError;
use async_trait::async_trait;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The file a `sqlite:` URL names.
pub(crate) fn path_of(url: &str) -> Result<PathBuf, SqlError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| SqlError::Invalid("a SQLite url is sqlite:PATH".into()))?;
    if rest.is_empty() || rest.contains('?') || rest == ":memory:" {
        return Err(SqlError::Invalid(
            "a SQLite url names a database file, without options: sqlite:/path/to/file.db".into(),
        ));
    }
    Ok(PathBuf::from(rest))
}

/// Opens the file the URL names, after checking it against the policy;
/// the canonical path is opened refusing links, so a component swapped for
/// a link after the check makes the open fail.
fn open_read_only(policy: &SqlPolicy, url: &str) -> Result<Connection, SqlError> {
    let path = policy.sqlite_file(url)?;
    Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| SqlError::Unavailable(format!("cannot open {}: {e}", path.display())))
}

fn sqlite_error(e: rusqlite::Error) -> SqlError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::OperationInterrupted => {
            SqlError::Timeout("the query ran past this source's time limit and was cancelled".into())
        }
        rusqlite::Error::SqliteFailure(f, message)
            if f.code == rusqlite::ErrorCode::AuthorizationForStatementDenied =>
        {
            SqlError::Database(format!(
                "the database refused: {} (this source may only read its allow-listed tables and columns)",
                message.as_deref().unwrap_or("not authorized")
            ))
        }
        _ => SqlError::Database(format!("the database answered: {e}")),
    }
}

fn describe_with(conn: &Connection, entry: &AllowedTable) -> Result<Option<TableSchema>, SqlError> {
    if entry
        .schema
        .as_deref()
        .is_some_and(|s| !s.eq_ignore_ascii_case("main"))
    {
        return Ok(None);
    }
    let found: Option<(String, String)> = conn
        .query_row(
            "SELECT name, type FROM sqlite_schema WHERE type IN ('table','view') AND name = ?1 COLLATE NOCASE \
             ORDER BY name = ?1 DESC LIMIT 1",
            [&entry.table],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(sqlite_error)?;
    let Some((name, kind)) = found else {
        return Ok(None);
    };
    let mut statement = conn
        .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info(?1)")
        .map_err(sqlite_error)?;
    let columns = statement
        .query_map([&name], |row| {
            Ok(ColumnSchema {
                name: row.get(0)?,
                data_type: row.get(1)?,
                nullable: row.get::<_, i64>(2)? == 0,
                comment: None,
            })
        })
        .map_err(sqlite_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sqlite_error)?;
    Ok(Some(TableSchema {
        schema: Some("main".into()),
        name,
        kind,
        comment: None,
        columns,
    }))
}

pub(crate) async fn provision(
    url: &str,
    allow: &[AllowedTable],
    policy: &SqlPolicy,
) -> Result<Provisioned, SqlError> {
    let (url, policy) = (url.to_owned(), policy.clone());
    let allow = allow.to_vec();
    tokio::task::spawn_blocking(move || {
        let conn = open_read_only(&policy, &url)?;
        let mut exact = Vec::new();
        for entry in &allow {
            let mut schema = describe_with(&conn, entry)?.ok_or_else(|| {
                SqlError::Invalid(format!(
                    "the database has no table or view `{}`",
                    entry.qualified()
                ))
            })?;
            exact.push(schema.restrict(entry)?);
        }
        Ok(Provisioned {
            allow: exact,
            access: Access::ReadOnlyFile,
            role_password: None,
            mariadb: false,
        })
    })
    .await
    .map_err(|e| SqlError::Unavailable(format!("SQLite task failed: {e}")))?
}

/// What the authorizer decides for one action while a query compiles.
fn authorize(allow: &[AllowedTable], ctx: &AuthContext<'_>) -> Authorization {
    let readable = |table: &str, column: &str| {
        allow.iter().any(|t| {
            t.table.eq_ignore_ascii_case(table)
                && (column.is_empty()
                    || t.columns
                        .as_ref()
                        .is_none_or(|cs| cs.iter().any(|c| c.eq_ignore_ascii_case(column))))
        })
    };
    match &ctx.action {
        AuthAction::Select | AuthAction::Recursive => Authorization::Allow,
        AuthAction::Read {
            table_name,
            column_name,
        } => {
            match ctx.database_name {
                // A CTE's or subquery's rows name no database.
                None => return Authorization::Allow,
                Some("main") => {}
                Some(_) => return Authorization::Deny,
            }
            // Reads made on behalf of an allowed view are the view's.
            let via_view = ctx.accessor.is_some_and(|view| readable(view, ""));
            if via_view || readable(table_name, column_name) {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        AuthAction::Function { function_name } => {
            let name = function_name.to_ascii_lowercase();
            if matches!(
                name.as_str(),
                "load_extension" | "readfile" | "writefile" | "edit" | "fts3_tokenizer"
            ) {
                Authorization::Deny
            } else {
                Authorization::Allow
            }
        }
        _ => Authorization::Deny,
    }
}

pub(crate) struct SqliteBackend {
    url: String,
    policy: SqlPolicy,
}

impl SqliteBackend {
    pub fn open(url: &str, policy: &SqlPolicy) -> Result<Self, SqlError> {
        path_of(url)?;
        Ok(Self {
            url: url.to_owned(),
            policy: policy.clone(),
        })
    }
}

fn cell(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Some(format!("0x{}", hex::encode(b))),
    }
}

fn run(
    policy: &SqlPolicy,
    url: &str,
    allow: Vec<AllowedTable>,
    sql: &str,
    limits: Limits,
) -> Result<ResultTable, SqlError> {
    let conn = open_read_only(policy, url)?;
    conn.busy_timeout(limits.timeout()).map_err(sqlite_error)?;
    let deadline = Instant::now() + limits.timeout();
    conn.progress_handler(10_000, Some(move || Instant::now() > deadline));
    conn.authorizer(Some(move |ctx: AuthContext<'_>| authorize(&allow, &ctx)));
    let mut statement = conn.prepare(sql).map_err(sqlite_error)?;
    if !statement.readonly() {
        return Err(SqlError::Refused("sql_query is read-only".into()));
    }
    let columns: Vec<String> = statement
        .column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let width = columns.len();
    let mut table = TableBuilder::new(columns, limits.max_rows, limits.max_bytes);
    let mut rows = statement.query([]).map_err(sqlite_error)?;
    while let Some(row) = rows.next().map_err(sqlite_error)? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            cells.push(cell(row.get_ref(i).map_err(sqlite_error)?));
        }
        if !table.push(cells) {
            break;
        }
    }
    Ok(table.finish())
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn describe(&self, allow: &[AllowedTable]) -> Result<Vec<TableSchema>, SqlError> {
        let (url, policy) = (self.url.clone(), self.policy.clone());
        let allow = allow.to_vec();
        tokio::task::spawn_blocking(move || {
            let conn = open_read_only(&policy, &url)?;
            let mut out = Vec::new();
            for entry in &allow {
                if let Some(mut schema) = describe_with(&conn, entry)? {
                    schema.restrict(entry)?;
                    out.push(schema);
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| SqlError::Unavailable(format!("SQLite task failed: {e}")))?
    }

    async fn query(
        &self,
        allow: &[AllowedTable],
        sql: &str,
        limits: &Limits,
    ) -> Result<ResultTable, SqlError> {
        let (url, policy) = (self.url.clone(), self.policy.clone());
        let allow = allow.to_vec();
        let sql = sql.to_owned();
        let limits = *limits;
        tokio::time::timeout(
            limits.timeout() + Duration::from_secs(2),
            tokio::task::spawn_blocking(move || run(&policy, &url, allow, &sql, limits)),
        )
        .await
        .map_err(|_| SqlError::Timeout("the query did not finish in time".into()))?
        .map_err(|e| SqlError::Unavailable(format!("SQLite task failed: {e}")))?
    }
}
