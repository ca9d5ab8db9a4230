//! Stdio MCP servers started from the operator's catalogue, against the
//! same escape probe as `run_code` (roster-testkit): a server must not see
//! the data directory, another tenant's state, the host's network when its
//! entry says `network = false`, the host's processes or environment — and
//! its whole process tree must end when it is removed or replaced. Tenant
//! keys may not register a command of their own, and nothing runs when
//! they try.
//!
//! Needs bubblewrap and Python's `mcp` package; `.ci/run` installs both.

use roster_core::TenantId;
use roster_egress::EgressPolicy;
use roster_mcp::{Catalogue, CatalogueEntry, McpManager, McpOptions, McpServerInput};
use roster_sandbox::Jail;
use roster_secrets::SecretBox;
use roster_store::{DynStore, NewAuditEvent, NewIntegration};
use roster_testkit::escape::{none_left, processes_with, Probe, PROBE_SERVER};
use roster_testkit::peers::PythonMcp;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

struct World {
    _dir: tempfile::TempDir,
    _work_dir: tempfile::TempDir,
    data: PathBuf,
    store: DynStore,
    manager: Arc<McpManager>,
    a: TenantId,
    b: TenantId,
}

fn entry(value: serde_json::Value) -> CatalogueEntry {
    serde_json::from_value(value).expect("entry")
}

async fn world() -> Option<World> {
    if !roster_testkit::peers::have_bwrap() {
        return None;
    }
    let py: PythonMcp = roster_testkit::peers::python_mcp()?;
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("admin.key"), "rk_admin-key-must-not-leak\n").expect("key");
    let work_dir = tempfile::tempdir().expect("work");
    let script = work_dir.path().join("probe_server.py");
    std::fs::write(&script, PROBE_SERVER).expect("script");
    let store = roster_store_sql::open(&format!("sqlite://{}", data.join("roster.db").display()))
        .await
        .expect("store");
    let (a, b) = (TenantId::generate(), TenantId::generate());
    store.ensure_tenant(&a, "a").await.expect("a");
    store.ensure_tenant(&b, "b").await.expect("b");
    let mut shown = py.read_only.clone();
    shown.push(work_dir.path().to_path_buf());
    let shown = json!(shown);
    let mut entries = BTreeMap::new();
    entries.insert(
        "probe".to_owned(),
        entry(json!({
            "description": "runs code (a test probe)",
            "command": py.executable,
            "args": [script, "--label", "{label}"],
            "placeholders": {"label": {"pattern": "[a-z0-9-]+", "default": "none"}},
            "env": ["PROBE_TOKEN"],
            "read_only": shown,
        })),
    );
    entries.insert(
        "netprobe".to_owned(),
        entry(json!({
            "command": py.executable,
            "args": [script],
            "network": true,
            "read_only": shown,
        })),
    );
    let catalogue = Catalogue::new(entries, std::slice::from_ref(&data)).expect("catalogue");
    let jail = Jail::open(PathBuf::from("bwrap"), &data.join(".probe"))
        .await
        .expect("bubblewrap works");
    let options = McpOptions {
        egress: Arc::new(EgressPolicy::default()),
        catalogue,
        jail: Some(Arc::new(jail)),
        state_dir: data.join("mcp"),
        private: vec![data.clone()],
        limits: roster_mcp::DEFAULT_LIMITS,
    };
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
    let manager = McpManager::new(store.clone(), secrets, options);
    Some(World {
        _dir: dir,
        _work_dir: work_dir,
        data,
        store,
        manager,
        a,
        b,
    })
}

fn input(value: serde_json::Value) -> McpServerInput {
    serde_json::from_value(value).expect("input")
}

impl World {
    /// A tenant (not admin) key enables a catalogue entry.
    async fn enable(&self, tenant: &TenantId, body: serde_json::Value) {
        self.manager
            .register(tenant, input(body), "key:tenant", false)
            .await
            .expect("enable");
    }

    async fn run(&self, tenant: &TenantId, server: &str, code: &str) -> String {
        let out = self
            .manager
            .call(
                tenant,
                server,
                "run",
                json!({ "code": code }),
                Duration::from_secs(30),
            )
            .await;
        assert!(!out.is_error, "{}", out.text);
        out.text
    }
}

async fn gone(pid: u32, marker: &str) {
    none_left(marker, Some(pid), Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_catalogue_server_is_walled_in_like_run_code() {
    let Some(w) = world().await else { return };
    w.enable(
        &w.a,
        json!({"name": "pa", "from": "probe", "set": {"label": "tenant-a"}}),
    )
    .await;
    w.enable(
        &w.b,
        json!({"name": "pb", "from": "probe", "env": {"PROBE_TOKEN": "tok-b"}}),
    )
    .await;
    // Each server's home is its own state directory, and writes there last.
    let home = w
        .run(
            &w.a,
            "pa",
            "import os\nopen('secret.txt','w').write(\"A's secret\")\nprint(os.getcwd(), os.environ['HOME'])",
        )
        .await;
    assert_eq!(home.trim(), "/state /state", "{home}");
    let a_state = w.data.join("mcp").join(w.a.as_str()).join("pa");
    assert_eq!(
        std::fs::read_to_string(a_state.join("secret.txt")).expect("written on the host"),
        "A's secret"
    );
    let b_home = w
        .run(&w.b, "pb", "import os\nprint(sorted(os.listdir('/state')))")
        .await;
    assert_eq!(b_home.trim(), "[]", "B's home is not A's: {b_home}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let probe = Probe {
        loopback_port: listener.local_addr().expect("addr").port(),
        secret_files: vec![
            w.data.join("roster.db"),
            w.data.join("admin.key"),
            a_state.join("secret.txt"),
            "/etc/shadow".into(),
        ],
        hidden_dirs: vec![
            w.data.clone(),
            w.data.join("mcp"),
            a_state.clone(),
            "/home".into(),
        ],
        allowed_env: vec!["PROBE_TOKEN".into()],
    };
    let out = w.run(&w.b, "pb", &probe.program()).await;
    probe.assert_walled(&out);
    assert!(!out.contains("admin-key-must-not-leak"), "{out}");
    // Its own sealed variable reached it, and nothing of Roster's.
    let env = w
        .run(
            &w.b,
            "pb",
            "import os\nprint(os.environ.get('PROBE_TOKEN'))",
        )
        .await;
    assert_eq!(env.trim(), "tok-b");

    // What `network = true` changes: that entry reaches the host's loopback.
    w.enable(&w.a, json!({"name": "net", "from": "netprobe"}))
        .await;
    let port = probe.loopback_port;
    let out = w
        .run(
            &w.a,
            "net",
            &format!("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).close()\nprint('connected')"),
        )
        .await;
    assert_eq!(out.trim(), "connected", "{out}");
    w.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_or_replaced_server_leaves_no_process_behind() {
    let Some(w) = world().await else { return };
    let marker = format!("m{}", TenantId::generate().as_str().replace('_', "-"));
    w.enable(
        &w.a,
        json!({"name": "pa", "from": "probe", "set": {"label": marker}}),
    )
    .await;
    // The server leaves a child of its own running in the background.
    let spawn = format!(
        "import subprocess\nsubprocess.Popen(['/bin/sh', '-c', 'sleep 600; echo {marker}'], start_new_session=True)\nprint('spawned')"
    );
    assert_eq!(w.run(&w.a, "pa", &spawn).await.trim(), "spawned");
    let pid = w.manager.process_id(&w.a, "pa").await.expect("running");
    assert!(processes_with(&marker).len() >= 3, "sandbox, server, child");
    w.manager
        .remove(&w.a, "pa", "key:tenant")
        .await
        .expect("remove");
    gone(pid, &marker).await;
    assert!(
        !w.data.join("mcp").join(w.a.as_str()).join("pa").exists(),
        "its state directory went with it"
    );

    // A registration changed behind the manager's back (another node, a
    // direct store write) replaces the running server at the next use.
    let marker = format!("r{}", TenantId::generate().as_str().replace('_', "-"));
    w.enable(
        &w.a,
        json!({"name": "pa", "from": "probe", "set": {"label": marker}}),
    )
    .await;
    assert_eq!(
        w.run(
            &w.a,
            "pa",
            &spawn.replace("sleep 600", &format!("sleep 601; echo {marker}"))
        )
        .await
        .trim(),
        "spawned"
    );
    let pid = w.manager.process_id(&w.a, "pa").await.expect("running");
    let audit = |action: &str| NewAuditEvent {
        actor: "key:elsewhere".into(),
        action: action.into(),
        resource: "mcp:pa".into(),
        decision: None,
        detail: json!({}),
    };
    let stored = w
        .store
        .get_integration(&w.a, "mcp", "pa")
        .await
        .expect("get")
        .expect("stored");
    assert!(w
        .store
        .delete_integration(&w.a, "mcp", "pa", audit("mcp.remove"))
        .await
        .expect("delete"));
    let mut config = stored.config.clone();
    let third = format!("n{}", TenantId::generate().as_str().replace('_', "-"));
    config["values"]["label"] = json!(third);
    w.store
        .create_integration(
            &w.a,
            NewIntegration {
                id: "int_replaced".into(),
                kind: "mcp".into(),
                name: "pa".into(),
                config,
                sealed: None,
            },
            audit("mcp.enable"),
        )
        .await
        .expect("replace");
    assert_eq!(w.run(&w.a, "pa", "print('new')").await.trim(), "new");
    gone(pid, &marker).await;
    let new_pid = w.manager.process_id(&w.a, "pa").await.expect("running");
    assert_ne!(new_pid, pid);
    w.manager.shutdown().await;
    gone(new_pid, &third).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_key_cannot_run_a_command_of_its_own() {
    let Some(w) = world().await else { return };
    let marker = w.data.join("pwned");
    for attempt in [
        json!({"name": "evil", "command": "sh", "args": ["-c", format!("id > {}", marker.display())]}),
        json!({"name": "evil", "command": "/bin/sh", "args": ["-c", "cat /etc/shadow"]}),
    ] {
        let err = w
            .manager
            .register(&w.a, input(attempt.clone()), "key:tenant", false)
            .await
            .expect_err("refused");
        assert_eq!(err.code(), "mcp_command_needs_admin", "{attempt}");
        assert!(err.to_string().contains("catalogue"), "{err}");
    }
    // Catalogue values that try to smuggle in arguments or a shell.
    for (label, why) in [
        ("--evil", "starts with `-`"),
        ("; sh", "does not match"),
        ("a b", "does not match"),
        ("x\nsecond", "control character"),
        ("$(id)", "does not match"),
    ] {
        let err = w
            .manager
            .register(
                &w.a,
                input(json!({"name": "inj", "from": "probe", "set": {"label": label}})),
                "key:tenant",
                false,
            )
            .await
            .expect_err(label);
        assert_eq!(err.code(), "invalid_request", "{label}");
        assert!(err.to_string().contains(why), "{label}: {err}");
    }
    // A catalogue entry's fixed parts are not the tenant's to change.
    for body in [
        json!({"name": "inj", "from": "probe", "args": ["-c", "id"]}),
        json!({"name": "inj", "from": "probe", "set": {"command": "sh"}}),
        json!({"name": "inj", "from": "probe", "env": {"LD_PRELOAD": "/tmp/x.so"}}),
        json!({"name": "inj", "from": "probe", "read_only": ["/"]}),
        json!({"name": "inj", "from": "nope"}),
    ] {
        let err = w
            .manager
            .register(&w.a, input(body.clone()), "key:tenant", false)
            .await
            .expect_err("refused");
        assert_eq!(err.code(), "invalid_request", "{body}");
    }
    // Nothing was stored, started or written.
    assert!(w
        .store
        .list_integrations(&w.a, "mcp")
        .await
        .expect("list")
        .is_empty());
    // A command a tenant registered before Roster required the admin key
    // (a stored row without the admin's mark) does not start either.
    let legacy = json!({"transport": "stdio", "command": "/bin/sh",
        "args": ["-c", format!("id > {}", marker.display())], "env": [], "headers": [], "timeout_secs": 5});
    w.store
        .create_integration(
            &w.a,
            NewIntegration {
                id: "int_legacy".into(),
                kind: "mcp".into(),
                name: "legacy".into(),
                config: legacy,
                sealed: None,
            },
            NewAuditEvent {
                actor: "key:old".into(),
                action: "mcp.add".into(),
                resource: "mcp:legacy".into(),
                decision: None,
                detail: json!({}),
            },
        )
        .await
        .expect("an old row");
    let err = w.manager.tools(&w.a, "legacy").await.expect_err("refused");
    assert_eq!(err.code(), "mcp_command_needs_admin");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists());
    assert!(!w.data.join("mcp").join(w.a.as_str()).exists());
}

#[tokio::test]
async fn without_bubblewrap_stdio_servers_are_refused_and_http_ones_work() {
    let dir = tempfile::tempdir().expect("dir");
    let store = roster_store_sql::open(&format!("sqlite://{}", dir.path().join("r.db").display()))
        .await
        .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let mut entries = BTreeMap::new();
    entries.insert("sh".to_owned(), entry(json!({"command": "sh"})));
    let mut options = McpOptions::new(dir.path().join("mcp"));
    options.catalogue = Catalogue::new(entries, &[]).expect("catalogue");
    options.egress = Arc::new(EgressPolicy::new(&["127.0.0.1"]).expect("policy"));
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
    let manager = McpManager::new(store.clone(), secrets, options);
    for (body, admin) in [
        (json!({"name": "a", "from": "sh"}), false),
        (json!({"name": "b", "command": "sh"}), true),
    ] {
        let err = manager
            .register(&tenant, input(body), "key:test", admin)
            .await
            .expect_err("no sandbox");
        assert_eq!(err.code(), "sandbox_unavailable");
        assert!(err.to_string().contains("bubblewrap"), "{err}");
    }
    manager
        .register(
            &tenant,
            input(json!({"name": "remote", "url": "http://127.0.0.1:9/mcp"})),
            "key:test",
            false,
        )
        .await
        .expect("HTTP servers need no sandbox");
}

/// A Streamable HTTP server registered while its name led somewhere
/// allowed is checked again when Roster connects: the same name resolving
/// to a refused address is refused before a byte is sent.
#[tokio::test]
async fn a_streamable_http_server_is_checked_again_at_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("dir");
    let store = roster_store_sql::open(&format!("sqlite://{}", dir.path().join("r.db").display()))
        .await
        .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
    let manager = |allow: &[String]| {
        let mut options = McpOptions::new(dir.path().join("mcp"));
        options.egress = Arc::new(EgressPolicy::new(allow).expect("policy"));
        McpManager::new(store.clone(), secrets.clone(), options)
    };
    manager(&[format!("127.0.0.1:{port}")])
        .register(
            &tenant,
            input(json!({"name": "remote", "url": format!("http://localhost:{port}/mcp")})),
            "key:tenant",
            false,
        )
        .await
        .expect("allowed then");
    let err = manager(&[])
        .tools(&tenant, "remote")
        .await
        .expect_err("refused now");
    assert_eq!(err.code(), "egress_denied", "{err}");
    assert!(err.to_string().contains("localhost"), "{err}");
    assert!(listener.accept().is_err(), "nothing connected");
}
