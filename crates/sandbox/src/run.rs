//! One execution: the `prlimit [setpriv] bwrap … interpreter` command line,
//! capped output, and the wall-clock timeout.
//!
//! Limits are set with util-linux's `prlimit`, which `exec`s bubblewrap,
//! and (as root) the uid switch with its `setpriv` inside the sandbox, so
//! the process Roster waits on is bubblewrap itself; killing it ends the sandbox's PID
//! namespace and everything in it (`--die-with-parent`, `--unshare-pid`).
//! This keeps the crate free of `unsafe` (`pre_exec` would need it).

use crate::{Limits, SandboxConfig, SandboxError};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// util-linux's uid switch, run inside the sandbox (under /usr).
const SETPRIV: &str = "/usr/bin/setpriv";
/// Address space Node.js may reserve beyond its heap limit.
const NODE_RESERVE_BYTES: u64 = 4 << 30;

/// Largest program accepted, in bytes (it travels on the command line).
pub const MAX_CODE_BYTES: usize = 100_000;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Python,
    #[serde(alias = "js", alias = "node")]
    Javascript,
    #[serde(alias = "sh", alias = "bash")]
    Shell,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct RunOutcome {
    /// `None` when killed by a signal.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Killed at the wall-clock limit.
    pub timed_out: bool,
    /// More output than the cap: cut, and the process stopped.
    pub output_cut: bool,
    pub duration: Duration,
}

fn interpreter(config: &SandboxConfig, language: Language) -> (&Path, &'static str) {
    match language {
        Language::Python => (&config.python, "-c"),
        Language::Javascript => (&config.node, "-e"),
        Language::Shell => (&config.shell, "-c"),
    }
}

/// Tasks (processes and threads) owned by `uid`: RLIMIT_NPROC counts them
/// all, so a limit for a process of Roster's own uid must add them.
fn tasks_of_uid(uid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .map(|e| std::fs::read_dir(e.path().join("task")).map_or(1, |t| t.count() as u64))
        .sum()
}

pub(crate) async fn execute(
    config: &SandboxConfig,
    uid: Option<u32>,
    workspace: &Path,
    language: Language,
    code: &str,
    limits: &Limits,
) -> Result<RunOutcome, SandboxError> {
    if code.len() > MAX_CODE_BYTES {
        return Err(SandboxError::Invalid(format!(
            "code is longer than {MAX_CODE_BYTES} bytes; write it to a file in the workspace first"
        )));
    }
    if code.contains('\0') {
        return Err(SandboxError::Invalid("code contains a NUL byte".into()));
    }
    let (program, flag) = interpreter(config, language);
    if !program.exists() {
        return Err(SandboxError::Unavailable(format!(
            "{} is not installed here ({})",
            match language {
                Language::Python => "Python",
                Language::Javascript => "Node.js",
                Language::Shell => "a shell",
            },
            program.display()
        )));
    }
    // V8 reserves gigabytes of address space it never touches, so for
    // Node.js the heap is bounded by V8's own flag and the address-space
    // limit only backstops it.
    let (address_space, node_heap) = match language {
        Language::Javascript => (
            limits.memory_bytes.saturating_add(NODE_RESERVE_BYTES),
            Some(format!(
                "--max-old-space-size={}",
                (limits.memory_bytes >> 20).max(16)
            )),
        ),
        _ => (limits.memory_bytes, None),
    };
    let processes = match uid {
        Some(_) => limits.processes,
        None => crate::process_uid().map_or(0, tasks_of_uid) + limits.processes,
    };
    let mut command = tokio::process::Command::new("prlimit");
    command
        .arg(format!("--cpu={}", limits.cpu_secs))
        .arg(format!("--as={address_space}"))
        .arg(format!("--nproc={processes}"))
        .arg(format!("--fsize={}", limits.file_bytes))
        .arg("--nofile=256")
        .arg("--core=0")
        .arg("--");
    command.arg(&config.bwrap);
    match uid {
        // As root: bubblewrap needs no user namespace (and so reaches a
        // private data directory); the code drops to its own uid inside,
        // where RLIMIT_NPROC holds exactly and no capability is left.
        Some(_) => command.args([
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CAP_SETUID",
            "--cap-add",
            "CAP_SETGID",
        ]),
        None => command.args(["--unshare-all", "--cap-drop", "ALL"]),
    };
    command.args([
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/local/bin:/usr/bin:/bin",
        "--setenv",
        "HOME",
        "/workspace",
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--setenv",
        "TMPDIR",
        "/tmp",
        "--setenv",
        "PYTHONDONTWRITEBYTECODE",
        "1",
        "--ro-bind",
        "/usr",
        "/usr",
    ]);
    if config.network {
        command.arg("--share-net");
        command.args(["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]);
    }
    // Merged-/usr systems link these into /usr; others get them read-only.
    for top in ["bin", "lib", "lib64", "sbin"] {
        let host = Path::new("/").join(top);
        match std::fs::read_link(&host) {
            Ok(target) => {
                command.arg("--symlink").arg(target).arg(&host);
            }
            Err(_) if host.is_dir() => {
                command.arg("--ro-bind").arg(&host).arg(&host);
            }
            Err(_) => {}
        }
    }
    // Readable by the code's uid (bubblewrap would make it 0700 as root).
    command.args(["--perms", "0755", "--dir", "/etc"]);
    for extra in [
        "/etc/alternatives",
        "/etc/ssl",
        "/etc/ca-certificates",
        "/etc/localtime",
    ] {
        command.args(["--ro-bind-try", extra, extra]);
    }
    for path in &config.read_only {
        command.arg("--ro-bind").arg(path).arg(path);
    }
    command
        .args([
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind",
        ])
        .arg(workspace)
        .args([
            "/workspace",
            "--chdir",
            "/workspace",
            "--remount-ro",
            "/",
            "--",
        ]);
    if let Some(uid) = uid {
        command.args([
            SETPRIV,
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
        ]);
    }
    command
        .arg(program)
        .args(node_heap)
        .arg(flag)
        .arg(code)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| SandboxError::Unavailable(format!("cannot start prlimit/bubblewrap: {e}")))?;
    let cap = limits.output_bytes;
    let stdout = child
        .stdout
        .take()
        .map(|s| tokio::spawn(read_capped(s, cap)));
    let stderr = child
        .stderr
        .take()
        .map(|s| tokio::spawn(read_capped(s, cap)));
    let (exit_code, timed_out) = match tokio::time::timeout(limits.wall, child.wait()).await {
        Ok(Ok(status)) => (status.code(), false),
        Ok(Err(e)) => return Err(SandboxError::io("waiting for the sandbox", e)),
        Err(_) => {
            let _ = child.kill().await;
            (None, true)
        }
    };
    let collect = |task: Option<tokio::task::JoinHandle<(Vec<u8>, bool)>>| async move {
        match task {
            Some(task) => task.await.unwrap_or_default(),
            None => (Vec::new(), false),
        }
    };
    let (out, out_cut) = collect(stdout).await;
    let (err, err_cut) = collect(stderr).await;
    Ok(RunOutcome {
        exit_code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        timed_out,
        output_cut: out_cut || err_cut,
        duration: started.elapsed(),
    })
}

/// Reads at most `cap` bytes; past that it stops reading and drops the pipe,
/// so a process printing without end gets SIGPIPE instead of filling memory.
async fn read_capped(mut stream: impl tokio::io::AsyncRead + Unpin, cap: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return (out, false),
            Ok(n) => {
                let room = cap.saturating_sub(out.len());
                if n > room {
                    out.extend_from_slice(&buf[..room]);
                    return (out, true);
                }
                out.extend_from_slice(&buf[..n]);
            }
        }
    }
}
