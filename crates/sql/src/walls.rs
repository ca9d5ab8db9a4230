//! Where a source may point. A SQLite source names a file under one of
//! the directories the operator lists, never inside Roster's data
//! directory, checked on the canonical path (links and `..` resolved) at
//! registration and again at every open. A PostgreSQL or MySQL source
//! names a server by host: no Unix sockets, no options that read files on
//! Roster's machine, and Roster resolves the host itself, checks every
//! address against the egress policy, and connects to the checked address.

use crate::spec::Engine;
use crate::SqlError;
use roster_egress::{EgressError, EgressPolicy};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The operator's walls around SQL sources.
#[derive(Clone, Debug, Default)]
pub struct SqlPolicy {
    /// Where database servers may be reached.
    pub egress: Arc<EgressPolicy>,
    /// Directories SQLite sources may name files in; none: SQLite sources
    /// are refused.
    pub sqlite_dirs: Vec<PathBuf>,
    /// Never opened, even under an allowed directory (the data directory).
    pub private: Vec<PathBuf>,
}

/// URL options a tenant may give; the others point at files or sockets on
/// Roster's machine (`sslrootcert`, `sslkey`, `host=/path`, `socket`) or
/// around the checked address (`host`, `hostaddr`, `port`).
const POSTGRES_OPTIONS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "statement-cache-capacity",
    "application_name",
    "dbname",
    "user",
    "password",
];
const MYSQL_OPTIONS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "charset",
    "collation",
    "statement-cache-capacity",
    "timezone",
    "time-zone",
];

fn egress_error(e: EgressError) -> SqlError {
    match e {
        EgressError::Unresolved(m) => SqlError::Unavailable(m),
        other => SqlError::Egress(other),
    }
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

impl SqlPolicy {
    /// The file a `sqlite:` URL names, canonical, if the walls allow it.
    /// Call it at every open: a file swapped for a link since the last
    /// check is judged by where the link leads now.
    pub(crate) fn sqlite_file(&self, url: &str) -> Result<PathBuf, SqlError> {
        let given = crate::sqlite::path_of(url)?;
        if self.sqlite_dirs.is_empty() {
            return Err(SqlError::PathRefused(
                "SQLite sources are not enabled on this server: the operator lists the directories they may read with `[sql] sqlite_dirs = [\"/srv/data\"]` in the config file (or ROSTER_SQLITE_DIRS)".into(),
            ));
        }
        if !given.is_absolute() {
            return Err(SqlError::Invalid(format!(
                "`{}` is relative: a SQLite source names its file by absolute path",
                given.display()
            )));
        }
        let real = given.canonicalize().map_err(|_| {
            SqlError::Invalid(format!("no SQLite database file at {}", given.display()))
        })?;
        if !real.is_file() {
            return Err(SqlError::Invalid(format!(
                "{} is not a file",
                given.display()
            )));
        }
        if self
            .private
            .iter()
            .any(|dir| real.starts_with(canonical(dir)))
        {
            return Err(SqlError::PathRefused(format!(
                "{} is inside Roster's data directory, which no source may read",
                given.display()
            )));
        }
        if !self
            .sqlite_dirs
            .iter()
            .any(|dir| real.starts_with(canonical(dir)))
        {
            let dirs: Vec<String> = self
                .sqlite_dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            return Err(SqlError::PathRefused(format!(
                "{} is not under a directory SQLite sources may read ({}){}",
                given.display(),
                dirs.join(", "),
                if real != given {
                    format!("; it leads to {}", real.display())
                } else {
                    String::new()
                }
            )));
        }
        Ok(real)
    }

    /// The checked address of a database server URL: the host resolved by
    /// Roster and every address judged by the egress policy; connections
    /// go to this address, never to a second resolution of the name.
    pub(crate) async fn server_address(
        &self,
        engine: Engine,
        url: &str,
    ) -> Result<SocketAddr, SqlError> {
        let (default_port, accepted) = match engine {
            Engine::Postgres => (5432, POSTGRES_OPTIONS),
            Engine::Mysql => (3306, MYSQL_OPTIONS),
            Engine::Sqlite => {
                return Err(SqlError::Invalid("a SQLite source has no server".into()))
            }
        };
        let parsed =
            url::Url::parse(url).map_err(|e| SqlError::Invalid(format!("invalid url: {e}")))?;
        let host = parsed
            .host_str()
            .map(percent_decode)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                SqlError::Invalid(
                    "the URL names no host: a SQL source names its server, e.g. postgres://USER@HOST/DB (Unix sockets are not accepted)".into(),
                )
            })?;
        if host.starts_with('/') {
            return Err(SqlError::Invalid(
                "the URL names a Unix socket: a SQL source names its server by host name or address".into(),
            ));
        }
        for (key, _) in parsed.query_pairs() {
            if !accepted.contains(&key.as_ref()) {
                return Err(SqlError::Invalid(format!(
                    "the URL option `{key}` is not accepted (it would choose files, sockets or addresses on Roster's machine); accepted: {}",
                    accepted.join(", ")
                )));
            }
        }
        let port = parsed.port().unwrap_or(default_port);
        let found = self
            .egress
            .resolve(&host, port)
            .await
            .map_err(egress_error)?;
        found
            .into_iter()
            .next()
            .ok_or_else(|| SqlError::Unavailable(format!("`{host}` has no address")))
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(dirs: &[&Path], private: &[&Path]) -> SqlPolicy {
        SqlPolicy {
            egress: Arc::new(EgressPolicy::default()),
            sqlite_dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            private: private.iter().map(|d| d.to_path_buf()).collect(),
        }
    }

    #[test]
    fn sqlite_files_only_under_the_listed_directories() {
        let root = tempfile::tempdir().expect("dir");
        let allowed = root.path().join("shared");
        let data = root.path().join("data");
        std::fs::create_dir_all(&allowed).expect("shared");
        std::fs::create_dir_all(&data).expect("data");
        std::fs::write(allowed.join("crm.db"), b"x").expect("crm");
        std::fs::write(data.join("roster.db"), b"secret").expect("roster");
        std::fs::write(root.path().join("other.db"), b"x").expect("other");
        let url = |p: &Path| format!("sqlite:{}", p.display());

        let none = policy(&[], &[]);
        let err = none
            .sqlite_file(&url(&allowed.join("crm.db")))
            .expect_err("off");
        assert!(err.to_string().contains("sqlite_dirs"), "{err}");

        let walls = policy(&[&allowed], &[&data]);
        assert!(walls.sqlite_file(&url(&allowed.join("crm.db"))).is_ok());
        for bad in [
            data.join("roster.db"),
            allowed.join("../data/roster.db"),
            allowed.join("../other.db"),
            root.path().join("other.db"),
        ] {
            let err = walls.sqlite_file(&url(&bad)).expect_err("outside");
            assert_eq!(err.code(), "path_not_allowed", "{}", bad.display());
        }
        // A link inside the allowed directory to the data directory.
        std::os::unix::fs::symlink(data.join("roster.db"), allowed.join("link.db")).expect("link");
        let err = walls
            .sqlite_file(&url(&allowed.join("link.db")))
            .expect_err("link");
        assert!(err.to_string().contains("data directory"), "{err}");
        // Even when the operator lists a directory holding the data directory.
        let broad = policy(&[root.path()], &[&data]);
        assert!(broad.sqlite_file(&url(&data.join("roster.db"))).is_err());
        assert!(broad
            .sqlite_file(&url(&root.path().join("other.db")))
            .is_ok());
        assert!(walls.sqlite_file("sqlite:relative.db").is_err());
    }

    #[tokio::test]
    async fn server_urls_name_a_host_the_egress_policy_allows() {
        let walls = policy(&[], &[]);
        for (url, code) in [
            ("postgres://u@127.0.0.1/db", "egress_denied"),
            ("postgres://u@localhost:5432/db", "egress_denied"),
            ("postgres://u@[::1]/db", "egress_denied"),
            ("mysql://u@169.254.169.254/db", "egress_denied"),
            ("postgres://u@10.1.2.3/db", "egress_denied"),
            ("postgres://u@0x7f.1/db", "egress_denied"),
            ("postgres:///db?host=/var/run/postgresql", "invalid_request"),
            ("postgres://%2Fvar%2Frun%2Fpostgresql/db", "invalid_request"),
            ("postgres://u@h.example/db?host=/tmp", "invalid_request"),
            (
                "postgres://u@h.example/db?sslrootcert=/etc/shadow",
                "invalid_request",
            ),
            (
                "mysql://u@h.example/db?socket=/run/mysqld/mysqld.sock",
                "invalid_request",
            ),
            (
                "postgres://u@h.example/db?hostaddr=127.0.0.1",
                "invalid_request",
            ),
        ] {
            let engine = Engine::of_url(url).expect("engine");
            let err = walls.server_address(engine, url).await.expect_err(url);
            assert_eq!(err.code(), code, "{url}: {err}");
        }
        let open = SqlPolicy {
            egress: Arc::new(EgressPolicy::new(&["127.0.0.1:5432"]).expect("policy")),
            ..Default::default()
        };
        let at = open
            .server_address(
                Engine::Postgres,
                "postgres://u@127.0.0.1/db?sslmode=disable",
            )
            .await
            .expect("allowed");
        assert_eq!(at, "127.0.0.1:5432".parse::<SocketAddr>().expect("addr"));
        assert!(open
            .server_address(Engine::Postgres, "postgres://u@127.0.0.1:5433/db")
            .await
            .is_err());
    }
}
