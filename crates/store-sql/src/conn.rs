//! One connection of either backend, running a statement with typed
//! arguments. This file and `row.rs` are the only places the store's shared
//! code meets a driver: rusqlite for SQLite, sqlx for PostgreSQL.

use super::row::Row;
use super::text::{Dialect, Sql};
use crate::StoreError;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use sqlx::postgres::{PgArguments, PgConnection};
use sqlx::query::Query;
use sqlx::Postgres;

/// A statement argument. Borrowed, so binding copies nothing on PostgreSQL
/// and only lists are encoded (to JSON) on SQLite.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<&'a str>),
    Bool(bool),
    Bytes(Option<&'a [u8]>),
    /// A list for `= ANY($N)`: an array on PostgreSQL, a JSON array on SQLite.
    Texts(Option<&'a [String]>),
    Ints(Option<&'a [i64]>),
    /// A `LIMIT`: negative means none (SQLite reads it so; PostgreSQL reads NULL so).
    Limit(i64),
}

/// `args![a, b, …]`: a statement's arguments, each converted with `Arg::from`.
#[macro_export]
#[doc(hidden)]
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        &[$($crate::Arg::from($arg)),*]
    };
}

/// What a driver reported, with the one kind the store turns into a domain
/// error (a unique constraint: two writers raced for the same name or id).
#[derive(Debug)]
pub enum DbError {
    Unique(String),
    Other(StoreError),
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unique(message) => StoreError::Database(message),
            DbError::Other(e) => e,
        }
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        DbError::Other(e)
    }
}

impl From<serde_json::Error> for DbError {
    fn from(e: serde_json::Error) -> Self {
        DbError::Other(e.into())
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) if e.to_string().contains("UNIQUE") => {
                DbError::Unique(e.to_string())
            }
            _ => DbError::Other(StoreError::Database(e.to_string())),
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        let unique = matches!(&e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"));
        if unique {
            DbError::Unique(e.to_string())
        } else {
            DbError::Other(StoreError::Database(e.to_string()))
        }
    }
}

/// Turns a unique-constraint violation into the caller's domain error.
pub trait OnUnique<T> {
    fn on_unique(self, conflict: impl FnOnce() -> StoreError) -> Result<T, StoreError>;
}

impl<T> OnUnique<T> for Result<T, DbError> {
    fn on_unique(self, conflict: impl FnOnce() -> StoreError) -> Result<T, StoreError> {
        self.map_err(|e| match e {
            DbError::Unique(_) => conflict(),
            DbError::Other(e) => e,
        })
    }
}

/// A connection (inside a transaction for writes) of either backend.
pub enum Conn<'c> {
    Sqlite(&'c mut rusqlite::Connection),
    Postgres(&'c mut PgConnection),
}

type Mapped<T> = Result<T, DbError>;

impl Conn<'_> {
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Conn::Postgres(_))
    }

    /// Runs a statement; the number of rows it changed.
    pub async fn exec(&mut self, sql: &Sql, args: &[Arg<'_>]) -> Mapped<u64> {
        match self {
            Conn::Sqlite(c) => {
                let changed = c
                    .prepare_cached(sql.text(Dialect::Sqlite))?
                    .execute(rusqlite::params_from_iter(args.iter()))?;
                Ok(changed as u64)
            }
            Conn::Postgres(c) => {
                let query = bind(sqlx::query(sql.text(Dialect::Postgres)), args);
                Ok(query.execute(&mut **c).await?.rows_affected())
            }
        }
    }

    /// Every row, mapped.
    pub async fn all<T>(
        &mut self,
        sql: &Sql,
        args: &[Arg<'_>],
        map: impl Fn(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Mapped<Vec<T>> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql.text(Dialect::Sqlite))?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(map(&Row::Sqlite(row))?);
                }
                Ok(out)
            }
            Conn::Postgres(c) => {
                let query = bind(sqlx::query(sql.text(Dialect::Postgres)), args);
                let rows = query.fetch_all(&mut **c).await?;
                Ok(rows
                    .iter()
                    .map(|row| map(&Row::Postgres(row)))
                    .collect::<Result<_, _>>()?)
            }
        }
    }

    /// The first row, if any, mapped.
    pub async fn opt<T>(
        &mut self,
        sql: &Sql,
        args: &[Arg<'_>],
        map: impl Fn(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Mapped<Option<T>> {
        match self {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql.text(Dialect::Sqlite))?;
                let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
                match rows.next()? {
                    Some(row) => Ok(Some(map(&Row::Sqlite(row))?)),
                    None => Ok(None),
                }
            }
            Conn::Postgres(c) => {
                let query = bind(sqlx::query(sql.text(Dialect::Postgres)), args);
                match query.fetch_optional(&mut **c).await? {
                    Some(row) => Ok(Some(map(&Row::Postgres(&row))?)),
                    None => Ok(None),
                }
            }
        }
    }

    /// The first row, which must exist (an aggregate, `INSERT … RETURNING`).
    pub async fn one<T>(
        &mut self,
        sql: &Sql,
        args: &[Arg<'_>],
        map: impl Fn(&Row<'_>) -> Result<T, StoreError> + Send,
    ) -> Mapped<T> {
        self.opt(sql, args, map).await?.ok_or_else(|| {
            DbError::Other(StoreError::Database(format!(
                "no row from `{}`",
                sql.text(self.dialect())
            )))
        })
    }
}

fn bind<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    args: &[Arg<'q>],
) -> Query<'q, Postgres, PgArguments> {
    for arg in args {
        query = match *arg {
            Arg::Int(v) => query.bind(v),
            Arg::Float(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
            Arg::Bool(v) => query.bind(v),
            Arg::Bytes(v) => query.bind(v),
            Arg::Texts(v) => query.bind(v),
            Arg::Ints(v) => query.bind(v),
            Arg::Limit(n) => query.bind((n >= 0).then_some(n)),
        };
    }
    query
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        fn list<T: serde::Serialize>(list: Option<&[T]>) -> rusqlite::Result<ToSqlOutput<'_>> {
            match list {
                None => Ok(ToSqlOutput::Owned(Value::Null)),
                Some(list) => serde_json::to_string(list)
                    .map(|json| ToSqlOutput::Owned(Value::Text(json)))
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e))),
            }
        }
        fn or_null(value: Option<ValueRef<'_>>) -> ToSqlOutput<'_> {
            ToSqlOutput::Borrowed(value.unwrap_or(ValueRef::Null))
        }
        Ok(match *self {
            Arg::Int(v) => or_null(v.map(ValueRef::Integer)),
            Arg::Float(v) => or_null(v.map(ValueRef::Real)),
            Arg::Text(v) => or_null(v.map(|s| ValueRef::Text(s.as_bytes()))),
            Arg::Bool(v) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(v))),
            Arg::Bytes(v) => or_null(v.map(ValueRef::Blob)),
            Arg::Texts(v) => return list(v),
            Arg::Ints(v) => return list(v),
            Arg::Limit(n) => ToSqlOutput::Borrowed(ValueRef::Integer(n)),
        })
    }
}

macro_rules! arg_from {
    ($($ty:ty => |$v:ident| $make:expr;)*) => {
        $(impl<'a> From<$ty> for Arg<'a> {
            fn from($v: $ty) -> Self {
                $make
            }
        })*
    };
}

arg_from! {
    i64 => |v| Arg::Int(Some(v));
    Option<i64> => |v| Arg::Int(v);
    &'a i64 => |v| Arg::Int(Some(*v));
    &'a Option<i64> => |v| Arg::Int(*v);
    u32 => |v| Arg::Int(Some(i64::from(v)));
    Option<u32> => |v| Arg::Int(v.map(i64::from));
    f64 => |v| Arg::Float(Some(v));
    Option<f64> => |v| Arg::Float(v);
    bool => |v| Arg::Bool(v);
    &'a str => |v| Arg::Text(Some(v));
    Option<&'a str> => |v| Arg::Text(v);
    &'a String => |v| Arg::Text(Some(v.as_str()));
    &'a Option<String> => |v| Arg::Text(v.as_deref());
    &'a [u8] => |v| Arg::Bytes(Some(v));
    Option<&'a [u8]> => |v| Arg::Bytes(v);
    &'a Vec<u8> => |v| Arg::Bytes(Some(v.as_slice()));
    &'a [String] => |v| Arg::Texts(Some(v));
    Option<&'a [String]> => |v| Arg::Texts(v);
    &'a Vec<String> => |v| Arg::Texts(Some(v.as_slice()));
    &'a Option<Vec<String>> => |v| Arg::Texts(v.as_deref());
    &'a [i64] => |v| Arg::Ints(Some(v));
    &'a Vec<i64> => |v| Arg::Ints(Some(v.as_slice()));
}

macro_rules! id_args {
    ($($id:ident),*) => {
        arg_from! {
            $(&'a roster_core::$id => |v| Arg::Text(Some(v.as_str()));
              Option<&'a roster_core::$id> => |v| Arg::Text(v.map(|id| id.as_str()));)*
        }
    };
}

id_args!(
    TenantId,
    AgentId,
    SessionId,
    RunId,
    KeyId,
    MemoryId,
    SourceId,
    DocumentId,
    ScheduleId,
    TriggerId,
    WebhookId,
    NotificationId
);

/// Millisecond timestamps, the store's one time format on both backends.
impl<'a> From<chrono::DateTime<chrono::Utc>> for Arg<'a> {
    fn from(at: chrono::DateTime<chrono::Utc>) -> Self {
        Arg::Int(Some(roster_store::millis(at)))
    }
}

impl<'a> From<Option<chrono::DateTime<chrono::Utc>>> for Arg<'a> {
    fn from(at: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        Arg::Int(at.map(roster_store::millis))
    }
}
