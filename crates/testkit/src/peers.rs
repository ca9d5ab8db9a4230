//! Real external programs some tests run (MCP servers from npm, bubblewrap):
//! where they are, or a printed notice and `None` — except in CI, where a
//! missing one fails the test instead of skipping it.

use std::path::PathBuf;

fn missing(what: &str, how: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI needs {what} ({how}; see .ci/run)"
    );
    eprintln!("notice: {what} is missing ({how}); skipping a test");
}

/// The `node_modules` directory holding @modelcontextprotocol/server-filesystem
/// and server-everything, from `ROSTER_TEST_MCP_NODE_MODULES`.
pub fn mcp_node_modules() -> Option<PathBuf> {
    match std::env::var_os("ROSTER_TEST_MCP_NODE_MODULES") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("node_modules")),
        _ => {
            missing("the npm MCP servers", "set ROSTER_TEST_MCP_NODE_MODULES");
            None
        }
    }
}

/// The MCP Inspector's command (`node_modules/.bin/mcp-inspector` of
/// @modelcontextprotocol/inspector), from `ROSTER_TEST_MCP_INSPECTOR`.
pub fn mcp_inspector() -> Option<PathBuf> {
    match std::env::var_os("ROSTER_TEST_MCP_INSPECTOR") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            missing("the MCP Inspector", "set ROSTER_TEST_MCP_INSPECTOR");
            None
        }
    }
}

/// True when bubblewrap runs here.
pub fn have_bwrap() -> bool {
    let ok = std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing("bubblewrap", "apt-get install bubblewrap");
    }
    ok
}

fn service_url(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            missing(what, &format!("set {var}"));
            None
        }
    }
}

/// The PostgreSQL server of the tests, from `ROSTER_TEST_DATABASE_URL`.
pub fn postgres_url() -> Option<String> {
    service_url("ROSTER_TEST_DATABASE_URL", "a PostgreSQL server")
}

/// The MariaDB/MySQL server of the tests, from `ROSTER_TEST_MYSQL_URL`.
pub fn mysql_url() -> Option<String> {
    service_url("ROSTER_TEST_MYSQL_URL", "a MariaDB or MySQL server")
}

/// A Python interpreter with the `mcp` package, as a sandboxed server
/// needs it: the real executable (not a shim) and the directories to show
/// read-only (its installation, and wherever `mcp` itself lives — a
/// virtualenv or a user site).
#[derive(Clone, Debug)]
pub struct PythonMcp {
    pub executable: PathBuf,
    pub read_only: Vec<PathBuf>,
}

/// The `python3` on PATH with the `mcp` package, resolved past shims.
pub fn python_mcp() -> Option<PythonMcp> {
    let script = "import os, sys, mcp\n\
                  print(sys.executable)\n\
                  print(sys.base_prefix)\n\
                  print(sys.prefix)\n\
                  print(os.path.dirname(os.path.dirname(mcp.__file__)))";
    let found = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let mut lines = text.lines().map(PathBuf::from);
            let executable = lines.next()?;
            let mut read_only: Vec<PathBuf> = lines.collect();
            read_only.sort();
            read_only.dedup();
            Some(PythonMcp {
                executable,
                read_only,
            })
        })
        .filter(|_| {
            std::process::Command::new("python3")
                .args(["-c", "import mcp.server.mcpserver"])
                .status()
                .is_ok_and(|s| s.success())
        });
    if found.is_none() {
        missing("Python's mcp package", "pip install mcp");
    }
    found
}
