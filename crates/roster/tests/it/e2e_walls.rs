//! End to end, as issue 13's trial went: a new tenant's ordinary key (not
//! the admin's) drives the real binary through the CLI and tries to reach
//! the host — a command of its own, arguments smuggled into the operator's
//! catalogue, SQLite files of the data directory, loopback, the metadata
//! service, Roster's own listener and database. Each is refused in one
//! line and nothing runs or is read. The catalogue server it may enable
//! runs the shared escape probe walled in, dies when removed and when
//! Roster is SIGKILLed, and every change is in its audit log.
//!
//! Needs bubblewrap and Python's `mcp` package (`.ci/run` installs both).

use crate::common;

use common::{cli, cli_with_key, Server};
use roster_testkit::escape::{none_left, processes_with, Probe, PROBE_SERVER};
use roster_testkit::{FakeModelServer, Reply};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const SPEC: &str = r#"
openapi: 3.0.3
info: {title: Spy, version: "1"}
paths:
  /x:
    get: {operationId: x, responses: {"200": {description: ok}}}
"#;

struct Setup {
    _dir: tempfile::TempDir,
    _work: tempfile::TempDir,
    dir: PathBuf,
    data: PathBuf,
    shared: PathBuf,
    config: PathBuf,
}

/// The operator's config: nothing private open to egress, one directory
/// of SQLite files, and a catalogue with one stdio server.
fn setup() -> Option<Setup> {
    if !roster_testkit::peers::have_bwrap() {
        return None;
    }
    let py = roster_testkit::peers::python_mcp()?;
    let dir = tempfile::tempdir().expect("dir");
    let work = tempfile::tempdir().expect("work");
    let script = work.path().join("probe_server.py");
    std::fs::write(&script, PROBE_SERVER).expect("script");
    let data = dir.path().join("data");
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).expect("shared");
    let crm = rusqlite::Connection::open(shared.join("crm.db")).expect("crm");
    crm.execute_batch(
        "CREATE TABLE accounts (id INTEGER, name TEXT); INSERT INTO accounts VALUES (1, 'Acme');",
    )
    .expect("crm schema");
    let config = dir.path().join("roster.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[sql]
sqlite_dirs = [{shared:?}]

[mcp.catalogue.probe]
description = "Runs Python for a test"
command = {exe:?}
args = [{script:?}, "--label", "{{label}}"]
read_only = [{prefix}{work:?}]
env = ["PROBE_TOKEN"]

[mcp.catalogue.probe.placeholders.label]
pattern = "[a-z0-9-]+"
default = "none"
description = "a label"
"#,
            shared = shared.display().to_string(),
            exe = py.executable.display().to_string(),
            script = script.display().to_string(),
            prefix = py
                .read_only
                .iter()
                .map(|p| format!("{:?}, ", p.display().to_string()))
                .collect::<String>(),
            work = work.path().display().to_string(),
        ),
    )
    .expect("config");
    Some(Setup {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        _work: work,
        data,
        shared,
        config,
    })
}

/// A tenant and an ordinary key of it, made by the admin through the CLI.
fn tenant_key(server: &Server) -> String {
    let (ok, out, err) = cli(server, &["tenant", "create", "acme"]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cli(
        server,
        &["key", "create", "ann", "--tenant", "acme", "--json"],
    );
    assert!(ok, "{out}{err}");
    let made: Value = serde_json::from_str(&out).expect("json");
    made["key"].as_str().expect("key").to_owned()
}

/// Asserts a refusal: failure, one line on stderr, naming `code`.
#[track_caller]
fn refused((ok, out, err): (bool, String, String), code: &str) -> String {
    assert!(!ok, "accepted: {out}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(code), "{code}: {err}");
    err
}

#[tokio::test]
async fn a_tenant_key_cannot_reach_the_host_through_any_integration() {
    let Some(s) = setup() else { return };
    let model = FakeModelServer::start().await;
    let config = s.config.display().to_string();
    let server = Server::start(
        &s.data,
        &model.openai_base_url(),
        &[("ROSTER_CONFIG", &config)],
    )
    .await;
    let key = tenant_key(&server);
    let ann = |args: &[&str]| cli_with_key(&server, &key, args);
    let port = server.url.rsplit(':').next().expect("port").to_owned();

    // A host command of its own: refused, and nothing ran.
    let marker = s.dir.join("pwned");
    let shell = format!(
        "id > {m}; cat {d}/roster.db >> {m}",
        m = marker.display(),
        d = s.data.display()
    );
    let err = refused(
        ann(&["mcp", "add", "evil", "--", "sh", "-c", &shell]),
        "mcp_command_needs_admin",
    );
    assert!(err.contains("roster mcp enable"), "{err}");
    refused(ann(&["mcp", "tools", "evil"]), "not_found");
    assert!(!marker.exists());

    // The catalogue, and values that try to become something else.
    let (ok, out, err) = ann(&["mcp", "catalogue"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("probe: Runs Python for a test") && out.contains("--set label="),
        "{out}"
    );
    for value in [
        "label=--evil",
        "label=; sh",
        "label=a b",
        "label=x\nsecond",
        "label=$(id)",
    ] {
        refused(
            ann(&["mcp", "enable", "inj", "--from", "probe", "--set", value]),
            "invalid_request",
        );
    }
    refused(
        ann(&[
            "mcp",
            "enable",
            "inj",
            "--from",
            "probe",
            "--env",
            "LD_PRELOAD=/tmp/x.so",
        ]),
        "invalid_request",
    );

    // SQLite files of the data directory, directly, through `..`, through a link.
    std::os::unix::fs::symlink(s.data.join("roster.db"), s.shared.join("link.db")).expect("link");
    for path in [
        s.data.join("roster.db"),
        s.shared.join("../data/roster.db"),
        s.shared.join("link.db"),
    ] {
        let url = format!("sqlite:{}", path.display());
        let err = refused(
            ann(&[
                "source",
                "add-sql",
                "spy",
                "--url",
                &url,
                "--allow",
                "api_keys,items",
            ]),
            "path_not_allowed",
        );
        assert!(!err.contains("key_hash"), "{err}");
    }

    // Loopback in its spellings, the metadata service, a private range,
    // Roster's own port: for HTTP services, MCP URLs and SQL servers alike.
    let spec = s.dir.join("spy.yaml");
    std::fs::write(&spec, SPEC).expect("spec");
    let spec = spec.display().to_string();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("0x7f.1:{port}"),
        "169.254.169.254".to_owned(),
        "10.1.2.3".to_owned(),
    ] {
        refused(
            ann(&[
                "source",
                "add-openapi",
                "spy",
                "--spec",
                &spec,
                "--base-url",
                &format!("http://{host}/api"),
            ]),
            "egress_denied",
        );
        refused(
            ann(&["mcp", "add", "spy", "--url", &format!("http://{host}/mcp")]),
            "egress_denied",
        );
        refused(
            ann(&[
                "source",
                "add-sql",
                "spy",
                "--url",
                &format!("postgres://postgres@{host}/roster"),
                "--allow",
                "t",
            ]),
            "egress_denied",
        );
    }
    for kind in ["source", "mcp"] {
        let (ok, out, _) = ann(&[kind, "list"]);
        assert!(ok && out.starts_with("no "), "{kind}: {out}");
    }

    // What it may do: enable the catalogue's server, whose sandbox holds.
    let label = format!("ann-{}", std::process::id());
    let set = format!("label={label}");
    let (ok, out, err) = ann(&[
        "mcp",
        "enable",
        "notes",
        "--from",
        "probe",
        "--set",
        &set,
        "--env",
        "PROBE_TOKEN=tok",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("added MCP server notes (catalogue probe label="),
        "{out}"
    );
    let (ok, out, err) = ann(&["mcp", "tools", "notes"]);
    assert!(ok, "{err}");
    assert!(out.contains("notes__run"), "{out}");
    let (ok, _, err) = ann(&[
        "agent",
        "create",
        "prober",
        "--model",
        "openai/m",
        "--instructions",
        "probe",
        "--tool",
        "mcp:notes",
    ]);
    assert!(ok, "{err}");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let probe = Probe {
        loopback_port: listener.local_addr().expect("addr").port(),
        secret_files: vec![
            s.data.join("roster.db"),
            s.data.join("secret.key"),
            s.config.clone(),
        ],
        hidden_dirs: vec![s.data.clone(), s.data.join("mcp"), s.dir.clone()],
        allowed_env: vec!["PROBE_TOKEN".into()],
    };
    model.push(Reply::tool_call(
        "c1",
        "notes__run",
        &json!({"code": probe.program()}).to_string(),
    ));
    model.push(Reply::text("probed"));
    let api = server.client_with_key(&key);
    let (status, session) = api.post("/v1/sessions", json!({"agent": "prober"})).await;
    assert_eq!(status, 201, "{session}");
    let sid = session["id"].as_str().expect("session");
    let (status, result) = api
        .post(
            &format!("/v1/sessions/{sid}/messages"),
            json!({"content": "probe"}),
        )
        .await;
    assert_eq!(status, 200, "{result}");
    let output = result["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["type"] == "tool_result")
        .expect("tool result")
        .to_string();
    probe.assert_walled(&output);

    // Removed, its process tree is gone; enabled again and Roster killed,
    // gone too.
    assert!(!processes_with(&label).is_empty());
    let (ok, _, err) = ann(&["mcp", "remove", "notes"]);
    assert!(ok, "{err}");
    none_left(&label, None, Duration::from_secs(15)).await;
    let (ok, _, err) = ann(&["mcp", "enable", "notes", "--from", "probe", "--set", &set]);
    assert!(ok, "{err}");
    let (ok, _, err) = ann(&["mcp", "tools", "notes"]);
    assert!(ok, "{err}");
    assert!(!processes_with(&label).is_empty());

    // Every change it made is in its tenant's audit log, with its key.
    let (ok, out, err) = ann(&["audit", "list", "--action", "mcp"]);
    assert!(ok, "{err}");
    for action in ["mcp.enable", "mcp.remove"] {
        assert!(out.contains(action), "{action}: {out}");
    }
    let mut server = server;
    server.kill();
    none_left(&label, None, Duration::from_secs(15)).await;
}

/// With PostgreSQL as Roster's store, that database stays closed to
/// tenants even where the allow-list opens this machine's loopback.
#[tokio::test]
async fn rosters_own_database_is_refused_as_a_source() {
    let Some(database) = common::postgres_url().await else {
        return;
    };
    let model = FakeModelServer::start().await;
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(
        &dir.path().join("data"),
        &model.openai_base_url(),
        &[
            ("ROSTER_DATABASE_URL", database.as_str()),
            ("ROSTER_EGRESS_ALLOW", "127.0.0.0/8"),
        ],
    )
    .await;
    let key = tenant_key(&server);
    let own = url::Url::parse(&database).expect("url");
    let target = format!(
        "postgres://postgres@{}:{}/{}",
        own.host_str().expect("host"),
        own.port().unwrap_or(5432),
        own.path().trim_start_matches('/')
    );
    for url in [target.clone(), target.replace("127.0.0.1", "localhost")] {
        let err = refused(
            cli_with_key(
                &server,
                &key,
                &[
                    "source", "add-sql", "spy", "--url", &url, "--allow", "api_keys",
                ],
            ),
            "egress_denied",
        );
        assert!(err.contains("Roster's own database"), "{err}");
    }
    // And its own listener, on the same loopback.
    let err = refused(
        cli_with_key(
            &server,
            &key,
            &[
                "mcp",
                "add",
                "me",
                "--url",
                &format!("{}/v1/keys", server.url),
            ],
        ),
        "egress_denied",
    );
    assert!(err.contains("Roster's own listener"), "{err}");
}
