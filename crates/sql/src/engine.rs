//! What the three engines share: the schema shown to agents, the backend
//! trait a source's queries go through, and setting up and tearing down a
//! source's access at registration and removal.

use crate::allow::AllowedTable;
use crate::spec::{Access, Engine, Limits, SqlSecrets, SqlSourceConfig};
use crate::table::ResultTable;
use crate::walls::SqlPolicy;
use crate::SqlError;
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Longest Roster waits to connect to a source's database.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections one source keeps open at most.
pub(crate) const POOL_SIZE: u32 = 4;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ColumnSchema {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// An allow-listed table as agents see it: only its allowed columns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TableSchema {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub columns: Vec<ColumnSchema>,
}

impl TableSchema {
    pub fn qualified(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Keeps only the columns the allow-list entry names, or refuses names
    /// the table does not have. Returns the entry with the database's
    /// spelling of every name.
    pub(crate) fn restrict(&mut self, entry: &AllowedTable) -> Result<AllowedTable, SqlError> {
        let columns = match &entry.columns {
            None => None,
            Some(wanted) => {
                let mut kept = Vec::new();
                for name in wanted {
                    let found = self
                        .columns
                        .iter()
                        .find(|c| c.name == *name)
                        .or_else(|| {
                            self.columns
                                .iter()
                                .find(|c| c.name.eq_ignore_ascii_case(name))
                        })
                        .ok_or_else(|| {
                            SqlError::Invalid(format!(
                                "table `{}` has no column `{name}`",
                                self.qualified()
                            ))
                        })?;
                    kept.push(found.clone());
                }
                let names = kept.iter().map(|c| c.name.clone()).collect();
                self.columns = kept;
                Some(names)
            }
        };
        Ok(AllowedTable {
            schema: self.schema.clone(),
            table: self.name.clone(),
            columns,
        })
    }
}

#[async_trait]
pub(crate) trait Backend: Send + Sync {
    /// The allow-listed tables with their allowed columns.
    async fn describe(&self, allow: &[AllowedTable]) -> Result<Vec<TableSchema>, SqlError>;
    /// Runs a query that passed [`crate::check_query`], read-only, within
    /// the limits. The allow-list is for engines that enforce it in
    /// process (SQLite's authorizer); the others' grants already hold it.
    async fn query(
        &self,
        allow: &[AllowedTable],
        sql: &str,
        limits: &Limits,
    ) -> Result<ResultTable, SqlError>;
    /// Closes pooled connections.
    async fn close(&self) {}
}

/// What registration settled: the allow-list in the database's spelling,
/// how access is enforced, and the created role's password if any.
pub(crate) struct Provisioned {
    pub allow: Vec<AllowedTable>,
    pub access: Access,
    pub role_password: Option<String>,
    pub mariadb: bool,
}

/// Connects with the registered URL (at the address the policy checked),
/// checks the allow-list against the database, and sets up the read-only
/// access queries will use.
pub(crate) async fn provision(
    engine: Engine,
    url: &str,
    allow: &[AllowedTable],
    name: &str,
    policy: &SqlPolicy,
) -> Result<Provisioned, SqlError> {
    match engine {
        Engine::Postgres => {
            let at = policy.server_address(engine, url).await?;
            crate::postgres::provision(url, at, allow, name).await
        }
        Engine::Mysql => {
            let at = policy.server_address(engine, url).await?;
            crate::mysql::provision(url, at, allow, name).await
        }
        Engine::Sqlite => crate::sqlite::provision(url, allow, policy).await,
    }
}

/// Removes what registration created (the restricted role).
pub(crate) async fn deprovision(
    config: &SqlSourceConfig,
    secrets: &SqlSecrets,
    policy: &SqlPolicy,
) -> Result<(), SqlError> {
    let Access::RestrictedRole { role } = &config.access else {
        return Ok(());
    };
    match config.engine {
        Engine::Postgres => {
            let at = policy.server_address(config.engine, &secrets.url).await?;
            crate::postgres::drop_role(&secrets.url, at, role).await
        }
        Engine::Mysql => {
            let at = policy.server_address(config.engine, &secrets.url).await?;
            crate::mysql::drop_user(&secrets.url, at, role).await
        }
        Engine::Sqlite => Ok(()),
    }
}

/// A backend for queries; a server's connections all go to the address the
/// policy checked now.
pub(crate) async fn open(
    config: &SqlSourceConfig,
    secrets: &SqlSecrets,
    policy: &SqlPolicy,
) -> Result<Arc<dyn Backend>, SqlError> {
    match config.engine {
        Engine::Postgres => {
            let at = policy.server_address(config.engine, &secrets.url).await?;
            Ok(Arc::new(crate::postgres::PgBackend::open(
                config, secrets, at,
            )?))
        }
        Engine::Mysql => {
            let at = policy.server_address(config.engine, &secrets.url).await?;
            Ok(Arc::new(crate::mysql::MySqlBackend::open(
                config, secrets, at,
            )?))
        }
        Engine::Sqlite => Ok(Arc::new(crate::sqlite::SqliteBackend::open(
            &secrets.url,
            policy,
        )?)),
    }
}

/// A name for the role Roster creates: recognisable, unique, and safe to
/// write unquoted.
pub(crate) fn new_role_name() -> String {
    let bytes: [u8; 6] = rand::random();
    format!("roster_ro_{}", hex::encode(bytes))
}

pub(crate) fn new_password() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

/// Tables a role can see beyond the allow-list, for the error that refuses it.
pub(crate) fn outside_allow_list(
    visible: &[(String, String)],
    allow: &[AllowedTable],
) -> Vec<String> {
    visible
        .iter()
        .filter(|(schema, table)| {
            !allow
                .iter()
                .any(|t| t.table == *table && t.schema.as_deref() == Some(schema.as_str()))
        })
        .map(|(schema, table)| format!("{schema}.{table}"))
        .collect()
}

pub(crate) fn refuse_broad_role(role: &str, extra: &[String]) -> SqlError {
    let shown: Vec<&str> = extra.iter().take(10).map(String::as_str).collect();
    SqlError::Invalid(format!(
        "role `{role}` can read tables outside the allow-list ({}{}), and may not create a restricted role; \
         register with a role that may create roles (Roster then makes one that reads only the allow-list) \
         or with a role that can read only the allow-listed tables",
        shown.join(", "),
        if extra.len() > shown.len() { ", …" } else { "" }
    ))
}
