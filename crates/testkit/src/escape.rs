//! The escape probe: one Python program that tries every way out of a
//! sandbox a test cares about — the host's loopback and the internet, files
//! and directories it must not see, writes outside its home, the host's
//! processes, the host's environment — and prints one line per attempt,
//! `walled WHAT` or `ESCAPED WHAT: DETAIL`. The `run_code` sandbox and
//! stdio MCP servers run the same program, so the walls are held to one
//! standard.

use std::path::PathBuf;

/// What one probe run must not reach.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    /// A port on the host's loopback with a listener behind it.
    pub loopback_port: u16,
    /// Files whose bytes must not be readable (the data directory's
    /// database and key files, another tenant's files).
    pub secret_files: Vec<PathBuf>,
    /// Directories that must not be listable.
    pub hidden_dirs: Vec<PathBuf>,
    /// Environment variables the sandbox may have besides `PATH`, `HOME`,
    /// `LANG`, `TMPDIR`, `PWD` and `PYTHONDONTWRITEBYTECODE`.
    pub allowed_env: Vec<String>,
}

fn python_list(items: impl IntoIterator<Item = String>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("{:?}", s)).collect();
    format!("[{}]", quoted.join(", "))
}

impl Probe {
    fn attempts(&self) -> usize {
        // network (2) + files + dirs + writes (3) + processes + environment
        2 + self.secret_files.len() + self.hidden_dirs.len() + 3 + 1 + 1
    }

    /// The program (Python 3, standard library only).
    pub fn program(&self) -> String {
        let files = python_list(self.secret_files.iter().map(|p| p.display().to_string()));
        let dirs = python_list(self.hidden_dirs.iter().map(|p| p.display().to_string()));
        let mut env: Vec<String> = [
            "PATH",
            "HOME",
            "LANG",
            "TMPDIR",
            "PWD",
            "PYTHONDONTWRITEBYTECODE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        env.extend(self.allowed_env.iter().cloned());
        let env = python_list(env);
        let port = self.loopback_port;
        format!(
            r#"import os, socket
def attempt(what, fn):
    try:
        detail = fn()
        print('ESCAPED', what + ':', repr(detail)[:120])
    except Exception as e:
        print('walled', what, type(e).__name__)
def connect(host, port):
    s = socket.create_connection((host, port), timeout=2)
    s.close()
    return 'connected'
def processes():
    pids = [p for p in os.listdir('/proc') if p.isdigit()]
    if len(pids) > 12:
        return pids
    raise PermissionError('only its own processes')
def environment():
    extra = [k for k in os.environ if k not in {env}]
    if extra:
        return extra
    raise PermissionError('clean')
attempt('loopback 127.0.0.1:{port}', lambda: connect('127.0.0.1', {port}))
attempt('internet 1.1.1.1:53', lambda: connect('1.1.1.1', 53))
for p in {files}:
    attempt('read ' + p, lambda p=p: open(p, 'rb').read(64))
for d in {dirs}:
    attempt('list ' + d, lambda d=d: os.listdir(d))
for p in ['/usr/pwned', '/etc/pwned', '/pwned']:
    attempt('write ' + p, lambda p=p: open(p, 'w').write('x'))
attempt('host processes', processes)
attempt('host environment', environment)
"#
        )
    }

    /// Fails unless every attempt was walled in.
    #[track_caller]
    pub fn assert_walled(&self, output: &str) {
        assert!(!output.contains("ESCAPED"), "a probe got out:\n{output}");
        assert_eq!(
            output.matches("walled ").count(),
            self.attempts(),
            "every attempt reports:\n{output}"
        );
    }
}

/// A stdio MCP server (Python with the `mcp` package) whose one tool,
/// `run`, executes Python code and returns what it printed: the probe runs
/// inside the server's own sandbox.
pub const PROBE_SERVER: &str = r#"
import contextlib, io
from mcp.server.mcpserver import MCPServer

app = MCPServer("probe")

@app.tool()
def run(code: str) -> str:
    """Runs Python code; returns its output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})
    return out.getvalue()

if __name__ == "__main__":
    app.run()
"#;

/// Host processes whose command line holds `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect()
}

/// Waits until no host process's command line holds `marker` (nor `pid`
/// lives, if given); fails the test after `within`.
pub async fn none_left(marker: &str, pid: Option<u32>, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    let alive = || {
        pid.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
            || !processes_with(marker).is_empty()
    };
    while alive() {
        assert!(
            std::time::Instant::now() < deadline,
            "pid {pid:?} or processes marked {marker} survived: {:?}",
            processes_with(marker)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
