//! What a tenant registers as a SQL source: the part stored as plain
//! config (engine, where it is without the password, the allow-list, the
//! limits, how access is enforced) and the URL, stored only sealed.

use crate::allow::AllowedTable;
use crate::SqlError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const DEFAULT_MAX_ROWS: u32 = 200;
pub const MAX_MAX_ROWS: u32 = 10_000;
pub const DEFAULT_MAX_BYTES: u32 = 64 * 1024;
pub const MAX_MAX_BYTES: u32 = 4 * 1024 * 1024;
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
pub const MAX_TIMEOUT_SECS: u64 = 600;
/// Longest description, which the model reads with the schema.
const MAX_DESCRIPTION_LEN: usize = 2_000;

/// A registration request (API body, CLI flags). The URL may hold a password.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlSourceInput {
    /// `[a-z0-9_-]`, at most 32 characters, no `__`.
    #[schema(pattern = r"^(?!_)(?!.*__)(?!.*_$)[a-z0-9_-]{1,32}$")]
    pub name: String,
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`, `mysql://…` or
    /// `mariadb://…`, or `sqlite:PATH` (stored encrypted).
    #[schema(pattern = r"^((postgres|postgresql|mysql|mariadb)://|sqlite:)")]
    pub url: String,
    /// Tables the agent may read: `TABLE`, `SCHEMA.TABLE`, and
    /// `TABLE(COL,COL)` for only those columns. An entry may hold several,
    /// separated by commas.
    pub allow: Vec<String>,
    /// What the data is, for the model.
    #[serde(default)]
    pub description: Option<String>,
    /// Most rows one query returns (default 200).
    #[serde(default)]
    pub max_rows: Option<u32>,
    /// Most bytes of table one query returns (default 64 KiB).
    #[serde(default)]
    pub max_bytes: Option<u32>,
    /// Longest one query may run, in seconds (default 30).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for SqlSourceInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSourceInput")
            .field("name", &self.name)
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    Sqlite,
}

impl Engine {
    pub fn of_url(url: &str) -> Result<Engine, SqlError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme {
            "postgres" | "postgresql" => Ok(Engine::Postgres),
            "mysql" | "mariadb" => Ok(Engine::Mysql),
            "sqlite" => Ok(Engine::Sqlite),
            _ => Err(SqlError::Invalid(
                "url must start with postgres://, mysql://, mariadb:// or sqlite:".into(),
            )),
        }
    }
}

/// How the database itself keeps queries to the allow-list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Access {
    /// A login role Roster created with SELECT on the allow-list only.
    RestrictedRole { role: String },
    /// The URL's own role, checked at registration to see nothing else.
    ConnectingRole { role: String },
    /// A SQLite file opened read-only, reads checked by an authorizer.
    ReadOnlyFile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Limits {
    pub max_rows: u32,
    pub max_bytes: u32,
    pub timeout_secs: u64,
}

impl Limits {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

/// The stored config: no password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SqlSourceConfig {
    pub engine: Engine,
    /// The URL without its password.
    pub location: String,
    /// MariaDB rather than MySQL (their time-limit settings differ).
    #[serde(default)]
    pub mariadb: bool,
    pub allow: Vec<AllowedTable>,
    #[serde(default)]
    pub description: Option<String>,
    pub access: Access,
    #[serde(flatten)]
    pub limits: Limits,
}

/// The sealed part.
#[derive(Clone, Serialize, Deserialize)]
pub struct SqlSecrets {
    /// The URL as registered.
    pub url: String,
    /// The password of the role Roster created, if it did.
    #[serde(default)]
    pub role_password: Option<String>,
}

impl SqlSourceInput {
    /// Checks the parts that need no database: name, URL form, allow-list
    /// syntax and limits.
    pub fn validate(&self) -> Result<(Engine, Vec<AllowedTable>, Limits), SqlError> {
        roster_tool::check_integration_name(&self.name).map_err(SqlError::Invalid)?;
        let engine = Engine::of_url(&self.url)?;
        let allow = crate::allow::parse_allow_list(&self.allow)?;
        if let Some(description) = &self.description {
            if description.len() > MAX_DESCRIPTION_LEN {
                return Err(SqlError::Invalid(format!(
                    "description is longer than {MAX_DESCRIPTION_LEN} bytes"
                )));
            }
        }
        let limits = Limits {
            max_rows: self.max_rows.unwrap_or(DEFAULT_MAX_ROWS),
            max_bytes: self.max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
            timeout_secs: self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
        };
        if !(1..=MAX_MAX_ROWS).contains(&limits.max_rows) {
            return Err(SqlError::Invalid(format!(
                "max_rows must be between 1 and {MAX_MAX_ROWS}"
            )));
        }
        if !(1024..=MAX_MAX_BYTES).contains(&limits.max_bytes) {
            return Err(SqlError::Invalid(format!(
                "max_bytes must be between 1024 and {MAX_MAX_BYTES}"
            )));
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&limits.timeout_secs) {
            return Err(SqlError::Invalid(format!(
                "timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}"
            )));
        }
        Ok((engine, allow, limits))
    }
}

/// The URL with its password replaced, for showing.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => {
            // Query parameters may carry a password too (`?password=`).
            if parsed.query().is_some() {
                let mut bare = parsed.clone();
                bare.set_query(None);
                bare.to_string()
            } else {
                parsed.to_string()
            }
        }
        Err(_) => url.split('?').next().unwrap_or("").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(url: &str) -> SqlSourceInput {
        SqlSourceInput {
            name: "wh".into(),
            url: url.into(),
            allow: vec!["orders".into()],
            description: None,
            max_rows: None,
            max_bytes: None,
            timeout_secs: None,
        }
    }

    #[test]
    fn engines_come_from_the_url_scheme() {
        assert_eq!(
            Engine::of_url("postgres://x/db").ok(),
            Some(Engine::Postgres)
        );
        assert_eq!(Engine::of_url("mariadb://x/db").ok(), Some(Engine::Mysql));
        assert_eq!(
            Engine::of_url("sqlite:/tmp/a.db").ok(),
            Some(Engine::Sqlite)
        );
        assert!(Engine::of_url("oracle://x").is_err());
        assert!(Engine::of_url("/tmp/a.db").is_err());
    }

    #[test]
    fn passwords_never_show() {
        let shown = redact("postgres://app:s3cret@db.internal:5432/sales");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal:5432/sales"));
        assert!(!redact("mysql://u@h/db?password=s3cret").contains("s3cret"));
    }

    #[test]
    fn limits_are_bounded() {
        assert!(input("postgres://h/db").validate().is_ok());
        let mut bad = input("postgres://h/db");
        bad.max_rows = Some(0);
        assert!(bad.validate().is_err());
        let mut bad = input("postgres://h/db");
        bad.timeout_secs = Some(100_000);
        assert!(bad.validate().is_err());
        let mut bad = input("postgres://h/db");
        bad.name = "Bad Name".into();
        assert!(bad.validate().is_err());
        let mut bad = input("postgres://h/db");
        bad.allow = vec![];
        assert!(bad.validate().is_err());
    }
}
