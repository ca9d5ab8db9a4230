//! The MCP client against real servers nobody here wrote: the filesystem
//! and "everything" reference servers from npm, and servers built with the
//! `mcp` package from PyPI (written by these tests into a temporary
//! directory), including ones that hang, crash and speak garbage.
//!
//! Needs `ROSTER_TEST_MCP_NODE_MODULES` (a directory whose `node_modules`
//! holds @modelcontextprotocol/server-filesystem and server-everything) and
//! Python's `mcp` package; `.ci/run` installs both. Without them the tests
//! print a notice and skip, except in CI, where they fail.

use roster_core::TenantId;
use roster_egress::EgressPolicy;
use roster_mcp::{Catalogue, McpManager, McpOptions, McpProvider, McpServerInput};
use roster_sandbox::Jail;
use roster_secrets::SecretBox;
use roster_store::DynStore;
use roster_testkit::peers::PythonMcp;
use roster_tool::{ToolCallContext, ToolProvider};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Fixture {
    _dir: tempfile::TempDir,
    _work_dir: tempfile::TempDir,
    /// Scripts and files servers are shown (read-only), apart from the
    /// data directory.
    work: PathBuf,
    store: DynStore,
    secrets: SecretBox,
    manager: Arc<McpManager>,
    options: McpOptions,
    tenant: TenantId,
}

use roster_testkit::peers::mcp_node_modules as node_modules;

fn python_mcp() -> Option<PythonMcp> {
    roster_testkit::peers::python_mcp()
}

/// A manager as `roster serve` builds it: stdio servers confined, their
/// state under the data directory, HTTP servers on the test's loopback
/// allowed by the egress policy. `None` (with a notice) without bubblewrap.
async fn fixture() -> Option<Fixture> {
    if !roster_testkit::peers::have_bwrap() {
        return None;
    }
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let work_dir = tempfile::tempdir().expect("work dir");
    let work = work_dir.path().to_path_buf();
    let store = roster_store_sql::open(&format!("sqlite://{}", data.join("roster.db").display()))
        .await
        .expect("store");
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "t").await.expect("tenant");
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
    let jail = Jail::open(PathBuf::from("bwrap"), &data.join(".probe"))
        .await
        .expect("bubblewrap works");
    let options = McpOptions {
        egress: Arc::new(EgressPolicy::new(&["127.0.0.1"]).expect("policy")),
        catalogue: Catalogue::default(),
        jail: Some(Arc::new(jail)),
        state_dir: data.join("mcp"),
        private: vec![data.clone()],
        limits: roster_mcp::DEFAULT_LIMITS,
    };
    let manager = McpManager::new(store.clone(), secrets.clone(), options.clone());
    Some(Fixture {
        _dir: dir,
        _work_dir: work_dir,
        work,
        store,
        secrets,
        manager,
        options,
        tenant,
    })
}

impl Fixture {
    /// Registers a server as the admin key does through the API.
    async fn register(&self, input: serde_json::Value) {
        let input: McpServerInput = serde_json::from_value(input).expect("input");
        self.manager
            .register(&self.tenant, input, "key:test", true)
            .await
            .expect("register");
    }

    async fn call(&self, server: &str, tool: &str, args: serde_json::Value) -> (String, bool) {
        let out = self
            .manager
            .call(&self.tenant, server, tool, args, Duration::from_secs(10))
            .await;
        (out.text, out.is_error)
    }

    fn python_server(&self, file: &str, body: &str) -> String {
        let path = self.work.join(file);
        std::fs::write(&path, body).expect("write server");
        path.display().to_string()
    }

    /// A registration running `script` with the real interpreter, shown
    /// its installation and the work directory.
    fn python(&self, py: &PythonMcp, name: &str, script: &str) -> serde_json::Value {
        json!({
            "name": name,
            "command": py.executable,
            "args": [script],
            "read_only": py.read_only.iter().chain([&self.work]).collect::<Vec<_>>(),
        })
    }
}

fn bin(modules: &Path, name: &str) -> String {
    modules.join(".bin").join(name).display().to_string()
}

const PY_SERVER: &str = r#"
import os, sys, time
from mcp.server.mcpserver import MCPServer

app = MCPServer("roster-test")

@app.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b

@app.tool()
def sleep(seconds: float) -> str:
    """Sleeps, then answers."""
    time.sleep(seconds)
    return "slept"

@app.tool()
def crash() -> str:
    """Exits the process in the middle of the call."""
    sys.stderr.write("about to crash\n")
    sys.stderr.flush()
    os._exit(3)

@app.tool()
def env(name: str) -> str:
    """Reads an environment variable."""
    return os.environ.get(name, "<unset>")

@app.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()

if __name__ == "__main__":
    app.run()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filesystem_server_reads_files_and_the_allow_list_holds() {
    let Some(modules) = node_modules() else {
        return;
    };
    let Some(f) = fixture().await else { return };
    std::fs::write(f.work.join("orders.csv"), "id,total\n1,20\n2,35\n").expect("file");
    f.register(json!({
        "name": "files",
        "command": bin(&modules, "mcp-server-filesystem"),
        "args": [f.work.display().to_string()],
        "read_only": [modules, f.work],
        "allow": ["read_text_file", "list_directory"],
    }))
    .await;
    let tools = f.manager.tools(&f.tenant, "files").await.expect("tools");
    let mut allowed: Vec<&str> = tools
        .iter()
        .filter(|(_, allowed)| *allowed)
        .map(|(t, _)| t.name.as_str())
        .collect();
    allowed.sort_unstable();
    assert_eq!(allowed, ["list_directory", "read_text_file"]);
    assert!(tools
        .iter()
        .any(|(t, allowed)| t.name == "write_file" && !allowed));

    // Through the provider, as an agent's `mcp:files` entry resolves.
    let provider = McpProvider::new(f.manager.clone());
    let resolved = provider.resolve(&f.tenant, "files").await.expect("resolve");
    let mut names: Vec<&str> = resolved.iter().map(|t| t.name()).collect();
    names.sort_unstable();
    assert_eq!(names, ["files__list_directory", "files__read_text_file"]);
    let read = resolved
        .iter()
        .find(|t| t.name() == "files__read_text_file")
        .expect("read tool");
    assert!(read.parameters()["properties"]["path"].is_object());
    let ctx = ToolCallContext {
        tenant: f.tenant.clone(),
        agent_id: roster_core::AgentId::generate(),
        session_id: roster_core::SessionId::generate(),
        run_id: roster_core::RunId::generate(),
        call_id: "call_1".into(),
    };
    let out = read
        .call(
            &ctx,
            json!({"path": f.work.join("orders.csv").display().to_string()}),
        )
        .await;
    assert!(!out.is_error, "{}", out.text);
    assert!(out.text.contains("2,35"), "{}", out.text);

    // A tool off the allow-list is refused without reaching the server,
    // and cannot be named in an agent either.
    let (text, is_error) = f
        .call("files", "write_file", json!({"path": "x", "content": "y"}))
        .await;
    assert!(is_error);
    assert!(text.contains("allow-list"), "{text}");
    assert!(!f.work.join("x").exists());
    assert!(provider.check(&f.tenant, "files/write_file").await.is_err());
    assert!(provider
        .check(&f.tenant, "files/read_text_file")
        .await
        .is_ok());
    assert!(provider.check(&f.tenant, "nope").await.is_err());

    // Reading outside the allowed directory is the server's own refusal.
    let (text, is_error) = f
        .call("files", "read_text_file", json!({"path": "/etc/passwd"}))
        .await;
    assert!(is_error, "{text}");
    f.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn everything_server_over_stdio_and_streamable_http() {
    let Some(modules) = node_modules() else {
        return;
    };
    let Some(f) = fixture().await else { return };
    f.register(json!({
        "name": "every",
        "command": bin(&modules, "mcp-server-everything"),
        "read_only": [modules],
        "env": {"ROSTER_TEST_TOKEN": "tok-123"},
    }))
    .await;
    let (text, is_error) = f.call("every", "echo", json!({"message": "hello"})).await;
    assert!(!is_error, "{text}");
    assert!(text.contains("hello"), "{text}");
    let (text, _) = f.call("every", "get-sum", json!({"a": 2, "b": 40})).await;
    assert!(text.contains("42"), "{text}");
    // An image is named, not dumped into the model's context.
    let (text, _) = f.call("every", "get-tiny-image", json!({})).await;
    assert!(text.contains("[image: image/png"), "{text}");
    // The sealed environment reaches the server; Roster's own does not.
    std::env::set_var("ROSTER_SECRET_LEAK_PROBE", "must-not-leak");
    let (text, _) = f.call("every", "get-env", json!({})).await;
    assert!(text.contains("tok-123"), "{text}");
    assert!(!text.contains("must-not-leak"), "{text}");
    // Bad arguments are the server's error, and the session goes on.
    let (text, is_error) = f.call("every", "get-sum", json!({"a": "two"})).await;
    assert!(is_error, "{text}");
    let (text, _) = f
        .call("every", "echo", json!({"message": "still here"}))
        .await;
    assert!(text.contains("still here"), "{text}");

    // The same server over Streamable HTTP, on a loopback port.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        listener.local_addr().expect("addr").port()
    };
    let mut http = tokio::process::Command::new(bin(&modules, "mcp-server-everything"))
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("http server");
    let url = format!("http://127.0.0.1:{port}/mcp");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "HTTP server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    f.register(json!({"name": "every-http", "url": url, "headers": {"X-Probe": "1"}}))
        .await;
    let (text, is_error) = f
        .call("every-http", "get-sum", json!({"a": 1, "b": 2}))
        .await;
    assert!(!is_error, "{text}");
    assert!(text.contains('3'), "{text}");
    f.manager.shutdown().await;
    let _ = http.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_call_times_out_without_holding_up_others_and_a_crash_restarts() {
    let Some(py) = python_mcp() else { return };
    let Some(f) = fixture().await else { return };
    let script = f.python_server("server.py", PY_SERVER);
    f.register(f.python(&py, "py", &script)).await;
    let (text, _) = f.call("py", "add", json!({"a": 2, "b": 3})).await;
    assert_eq!(text, "5");

    // A call that hangs is cut at its timeout, and a call beside it answers
    // at once.
    let hung = f.manager.call(
        &f.tenant,
        "py",
        "sleep",
        json!({"seconds": 30}),
        Duration::from_secs(1),
    );
    let quick = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let out = f.call("py", "add", json!({"a": 1, "b": 1})).await;
        (out, started.elapsed())
    };
    let started = Instant::now();
    let (hung, ((text, _), quick_took)) = tokio::join!(hung, quick);
    assert!(hung.is_error);
    assert!(hung.text.contains("did not answer"), "{}", hung.text);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(text, "2");
    assert!(quick_took < Duration::from_secs(1), "{quick_took:?}");

    // A crash mid-call is an error result naming what happened; the next
    // call starts the server again.
    // (Inside its PID namespace every server is pid 2: tell them apart by
    // the host pid of their sandbox.)
    let before = f
        .manager
        .process_id(&f.tenant, "py")
        .await
        .expect("running");
    let (text, is_error) = f.call("py", "crash", json!({})).await;
    assert!(is_error);
    assert!(text.contains("py"), "{text}");
    let (after, is_error) = f.call("py", "pid", json!({})).await;
    assert!(!is_error, "{after}");
    let after = f
        .manager
        .process_id(&f.tenant, "py")
        .await
        .expect("running again");
    assert_ne!(before, after, "a new process");
    assert!(
        !Path::new(&format!("/proc/{before}")).exists(),
        "the crashed sandbox is gone"
    );
    f.manager.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_that_speak_garbage_never_start_or_exit_fail_cleanly() {
    let Some(py) = python_mcp() else { return };
    let Some(f) = fixture().await else { return };
    let garbage = f.python_server(
        "garbage.py",
        "import sys, time\nfor _ in range(50):\n    print('this is not json-rpc', flush=True)\ntime.sleep(60)\n",
    );
    let silent = f.python_server("silent.py", "import time\ntime.sleep(600)\n");
    let exits = f.python_server(
        "exits.py",
        "import sys\nsys.stderr.write('missing license key\\n')\nsys.exit(2)\n",
    );
    // Each registration's timeout bounds its start: these answer within it.
    for (name, script) in [
        ("garbage", &garbage),
        ("silent", &silent),
        ("exits", &exits),
    ] {
        let mut input = f.python(&py, name, script);
        input["timeout_secs"] = json!(1);
        f.register(input).await;
    }
    // A command that does not exist is refused at registration, in a line.
    let missing: McpServerInput =
        serde_json::from_value(json!({"name": "missing", "command": "/nonexistent/mcp-server"}))
            .expect("input");
    let err = f
        .manager
        .register(&f.tenant, missing, "key:test", true)
        .await
        .expect_err("missing command");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(err.to_string().lines().count(), 1, "{err}");
    let manager = McpManager::new(f.store.clone(), f.secrets.clone(), f.options.clone());
    for (name, expect) in [
        ("garbage", "garbage"),
        ("silent", "silent"),
        ("exits", "missing license key"),
    ] {
        let started = Instant::now();
        let out = manager
            .call(
                &f.tenant,
                name,
                "anything",
                json!({}),
                Duration::from_secs(2),
            )
            .await;
        assert!(out.is_error, "{name}: {}", out.text);
        assert!(out.text.contains(expect), "{name}: {}", out.text);
        // Within the registration's 1 s (plus the moment a dying server's
        // stderr is given), not a 30 s floor.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{name} took {:?}",
            started.elapsed()
        );
    }
    // Unknown servers and tools are plain errors.
    let out = manager
        .call(&f.tenant, "nope", "x", json!({}), Duration::from_secs(1))
        .await;
    assert!(
        out.is_error && out.text.contains("no MCP server"),
        "{}",
        out.text
    );
    // Another tenant does not see this one's servers.
    let other = TenantId::generate();
    let out = manager
        .call(&other, "exits", "x", json!({}), Duration::from_secs(1))
        .await;
    assert!(out.text.contains("no MCP server"), "{}", out.text);
    manager.shutdown().await;
}

#[tokio::test]
async fn stored_configs_hold_no_secret_values() {
    let Some(f) = fixture().await else { return };
    f.register(json!({
        "name": "svc",
        "url": "http://127.0.0.1:9/mcp",
        "headers": {"Authorization": "Bearer very-secret"},
    }))
    .await;
    let stored = f
        .store
        .get_integration(&f.tenant, "mcp", "svc")
        .await
        .expect("get")
        .expect("stored");
    let everything = format!("{stored:?} {}", stored.config);
    assert!(!everything.contains("very-secret"), "{everything}");
    assert_eq!(stored.config["headers"], json!(["Authorization"]));
    // Opening needs the same key and the same tenant and name.
    let sealed = stored.sealed.expect("sealed");
    assert!(f
        .secrets
        .open(
            &sealed,
            &roster_mcp::secret_context(&TenantId::generate(), "svc")
        )
        .is_err());
    let opened = f
        .secrets
        .open(&sealed, &roster_mcp::secret_context(&f.tenant, "svc"))
        .expect("open");
    assert!(opened.expose().contains("very-secret"));
}

#[test]
fn registrations_are_checked() {
    let bad = [
        json!({"name": "Bad Name", "command": "x"}),
        json!({"name": "a__b", "command": "x"}),
        json!({"name": "x"}),
        json!({"name": "x", "command": "c", "url": "http://h/mcp"}),
        json!({"name": "x", "from": "e", "command": "c"}),
        json!({"name": "x", "from": "e", "args": ["--evil"]}),
        json!({"name": "x", "from": "e", "network": true}),
        json!({"name": "x", "from": "e", "read_only": ["/"]}),
        json!({"name": "x", "url": "http://h/mcp", "set": {"a": "b"}}),
        json!({"name": "x", "url": "http://h/mcp", "read_only": ["/srv"]}),
        json!({"name": "x", "url": "ftp://h/mcp"}),
        json!({"name": "x", "url": "not a url"}),
        json!({"name": "x", "command": "c", "headers": {"A": "b"}}),
        json!({"name": "x", "command": "c", "timeout_secs": 0}),
        json!({"name": "x", "command": " "}),
    ];
    for input in bad {
        let parsed: McpServerInput = serde_json::from_value(input.clone()).expect("shape");
        assert!(parsed.into_parts().is_err(), "{input}");
    }
    assert!(serde_json::from_value::<McpServerInput>(
        json!({"name": "x", "command": "c", "bogus": 1})
    )
    .is_err());
}
