//! SQL sources against a tenant trying to get out: SQLite paths into the
//! data directory (directly, through `..`, through a link, and a file
//! swapped for a link after registration), and server URLs aimed at
//! loopback, the metadata service, private ranges, Unix sockets and
//! Roster's own database. Each is refused with a clear error, nothing is
//! stored, and nothing is read or connected to.

use roster_core::TenantId;
use roster_egress::EgressPolicy;
use roster_sql::{SqlPolicy, SqlSourceInput, SqlSources};
use roster_store::DynStore;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct World {
    _root: tempfile::TempDir,
    data: PathBuf,
    shared: PathBuf,
    store: DynStore,
    tenant: TenantId,
}

async fn world() -> World {
    let root = tempfile::tempdir().expect("root");
    let data = root.path().join("data");
    let shared = root.path().join("shared");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::create_dir_all(&shared).expect("shared");
    // The store is Roster's own database in its data directory, with a
    // table worth stealing.
    let store = roster_store_sql::open(&format!("sqlite://{}", data.join("roster.db").display()))
        .await
        .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let crm = rusqlite::Connection::open(shared.join("crm.db")).expect("crm");
    crm.execute_batch(
        "CREATE TABLE accounts (id INTEGER, name TEXT); INSERT INTO accounts VALUES (1, 'Acme');",
    )
    .expect("schema");
    World {
        _root: root,
        data,
        shared,
        store,
        tenant,
    }
}

impl World {
    fn sources(&self, policy: SqlPolicy) -> Arc<SqlSources> {
        let secrets =
            roster_secrets::SecretBox::from_base64(&roster_secrets::SecretBox::generate_key())
                .expect("key");
        SqlSources::new(self.store.clone(), secrets, policy)
    }

    fn walled(&self) -> Arc<SqlSources> {
        self.sources(SqlPolicy {
            egress: Arc::new(EgressPolicy::default()),
            sqlite_dirs: vec![self.shared.clone()],
            private: vec![self.data.clone()],
        })
    }

    async fn nothing_stored(&self) {
        assert!(self
            .store
            .list_integrations(&self.tenant, "sql")
            .await
            .expect("list")
            .is_empty());
    }
}

fn input(name: &str, url: &str, allow: &str) -> SqlSourceInput {
    serde_json::from_value(serde_json::json!({"name": name, "url": url, "allow": [allow]}))
        .expect("input")
}

fn sqlite(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

#[tokio::test]
async fn sqlite_paths_into_the_data_directory_are_refused() {
    let w = world().await;
    let sources = w.walled();
    std::os::unix::fs::symlink(w.data.join("roster.db"), w.shared.join("link.db")).expect("link");
    std::os::unix::fs::symlink(&w.data, w.shared.join("dir")).expect("dir link");
    for path in [
        w.data.join("roster.db"),
        w.shared.join("../data/roster.db"),
        w.shared.join("link.db"),
        w.shared.join("dir/roster.db"),
    ] {
        let err = sources
            .register(
                &w.tenant,
                input("spy", &sqlite(&path), "api_keys"),
                "key:tenant",
            )
            .await
            .expect_err("refused");
        assert_eq!(err.code(), "path_not_allowed", "{}: {err}", path.display());
        assert!(!err.to_string().contains("key_hash"), "{err}");
    }
    w.nothing_stored().await;

    // Without directories listed, SQLite sources are off, and say how to
    // turn them on.
    let off = w.sources(SqlPolicy::default());
    let err = off
        .register(
            &w.tenant,
            input("crm", &sqlite(&w.shared.join("crm.db")), "accounts"),
            "key:tenant",
        )
        .await
        .expect_err("off");
    assert!(err.to_string().contains("sqlite_dirs"), "{err}");
    w.nothing_stored().await;
}

#[tokio::test]
async fn a_file_swapped_for_a_link_after_registration_is_refused_at_open() {
    let w = world().await;
    let sources = w.walled();
    let crm = w.shared.join("crm.db");
    sources
        .register(
            &w.tenant,
            input("crm", &sqlite(&crm), "accounts"),
            "key:tenant",
        )
        .await
        .expect("an allowed file");
    let table = sources
        .query(&w.tenant, "crm", "SELECT name FROM accounts")
        .await
        .expect("query");
    assert!(format!("{table:?}").contains("Acme"));
    // The file becomes a link to Roster's database (same table name there
    // would not help: the link itself is refused).
    std::fs::remove_file(&crm).expect("remove");
    std::os::unix::fs::symlink(w.data.join("roster.db"), &crm).expect("swap");
    let err = sources
        .query(&w.tenant, "crm", "SELECT name FROM accounts")
        .await
        .expect_err("refused at open");
    assert_eq!(err.code(), "path_not_allowed", "{err}");
    // Even past Roster's query check, the file is never opened.
    let err = sources
        .query_unchecked(&w.tenant, "crm", "SELECT key_hash FROM api_keys")
        .await
        .expect_err("refused at open");
    assert_eq!(err.code(), "path_not_allowed", "{err}");
    let err = sources
        .schema(&w.tenant, "crm")
        .await
        .expect_err("schema refused too");
    assert_eq!(err.code(), "path_not_allowed", "{err}");
}

#[tokio::test]
async fn database_servers_are_reached_only_where_the_egress_policy_allows() {
    let w = world().await;
    let sources = w.walled();
    // A listener that would see any connection attempt to this machine.
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    for url in [
        format!("postgres://u:p@127.0.0.1:{port}/db"),
        format!("postgres://u@localhost:{port}/db"),
        format!("postgres://u@[::1]:{port}/db"),
        format!("mysql://u@127.1:{port}/db"),
        format!("postgres://u@0x7f.1:{port}/db"),
        format!("postgres://u@[::ffff:127.0.0.1]:{port}/db"),
        "mysql://u@169.254.169.254/db".to_owned(),
        "postgres://u@10.0.0.7/db".to_owned(),
        "postgres://u@192.168.1.1/db".to_owned(),
    ] {
        let err = sources
            .register(&w.tenant, input("spy", &url, "t"), "key:tenant")
            .await
            .expect_err("refused");
        assert_eq!(err.code(), "egress_denied", "{url}: {err}");
        assert!(err.to_string().contains("[egress] allow"), "{url}: {err}");
    }
    for url in [
        "postgres:///db?host=/var/run/postgresql".to_owned(),
        "postgres://%2Fvar%2Frun%2Fpostgresql/db".to_owned(),
        "postgres://u@db.example/db?sslkey=/etc/shadow".to_owned(),
        "mysql://u@db.example/db?socket=/run/mysqld/mysqld.sock".to_owned(),
    ] {
        let err = sources
            .register(&w.tenant, input("spy", &url, "t"), "key:tenant")
            .await
            .expect_err("refused");
        assert_eq!(err.code(), "invalid_request", "{url}: {err}");
    }
    w.nothing_stored().await;
    assert!(
        listener.accept().is_err(),
        "nothing connected to the host's loopback"
    );

    // Roster's own database stays closed under a broader allow entry.
    let mut egress = EgressPolicy::new(&["127.0.0.0/8"]).expect("policy");
    egress.protect(
        "Roster's own database",
        Some("127.0.0.1".parse().expect("ip")),
        port,
    );
    let own = w.sources(SqlPolicy {
        egress: Arc::new(egress),
        ..SqlPolicy::default()
    });
    let err = own
        .register(
            &w.tenant,
            input(
                "spy",
                &format!("postgres://postgres@localhost:{port}/roster"),
                "api_keys",
            ),
            "key:tenant",
        )
        .await
        .expect_err("own database");
    assert_eq!(err.code(), "egress_denied");
    assert!(err.to_string().contains("Roster's own database"), "{err}");
    w.nothing_stored().await;
    assert!(listener.accept().is_err(), "still nothing connected");
}
