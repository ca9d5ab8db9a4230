//! One execution of `run_code`: the interpreter's command line inside the
//! confinement ([`crate::confine`]), capped output, and the wall-clock
//! timeout. Roster waits on bubblewrap itself: the timeout kills it, and
//! with it the sandbox's PID namespace.

use crate::confine::{Confinement, Jail, RLimits};
use crate::{Limits, SandboxConfig, SandboxError};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

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

pub(crate) async fn execute(
    jail: &Jail,
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
    let env = [("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned())];
    let confinement = Confinement {
        uid,
        network: config.network,
        read_only: &config.read_only,
        home_dir: workspace,
        home: "/workspace",
        env: &env,
        limits: RLimits {
            cpu_secs: limits.cpu_secs,
            address_space,
            processes: limits.processes,
            file_bytes: limits.file_bytes,
            open_files: 256,
        },
    };
    let mut args: Vec<std::ffi::OsString> = node_heap.into_iter().map(Into::into).collect();
    args.push(flag.into());
    args.push(code.into());
    let mut command = jail.command(&confinement, program, &args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
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
