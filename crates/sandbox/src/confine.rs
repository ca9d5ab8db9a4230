//! The walls, written once: the `prlimit … bwrap … [setpriv …] PROGRAM
//! ARGS` command line that confines both `run_code` and every stdio MCP
//! server.
//!
//! Limits are set with util-linux's `prlimit`, which `exec`s bubblewrap,
//! and (as root) the uid switch with its `setpriv` inside the sandbox, so
//! the process Roster holds is bubblewrap itself: killing it ends the
//! sandbox's PID namespace and everything in it, and so does Roster's own
//! death (`--die-with-parent`). This keeps the crate free of `unsafe`
//! (`pre_exec` would need it).

use crate::SandboxError;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// util-linux's uid switch, run inside the sandbox (under /usr).
const SETPRIV: &str = "/usr/bin/setpriv";
/// The search path inside every sandbox.
pub const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Resource limits of a confined process tree (setrlimit values).
#[derive(Clone, Copy, Debug)]
pub struct RLimits {
    /// CPU seconds (RLIMIT_CPU).
    pub cpu_secs: u64,
    /// Address space in bytes (RLIMIT_AS).
    pub address_space: u64,
    /// Processes and threads (RLIMIT_NPROC).
    pub processes: u64,
    /// Largest file it may write (RLIMIT_FSIZE).
    pub file_bytes: u64,
    /// Open files (RLIMIT_NOFILE).
    pub open_files: u64,
}

/// What one confined process may see and use.
#[derive(Clone, Debug)]
pub struct Confinement<'a> {
    /// The unprivileged uid it runs as (Roster is root), or `None` to run
    /// in a user namespace under Roster's own uid.
    pub uid: Option<u32>,
    /// Share the host's network; otherwise it has none, not even loopback.
    pub network: bool,
    /// Host paths shown read-only at the same place.
    pub read_only: &'a [PathBuf],
    /// The host directory mounted read-write at `home`: its working
    /// directory and `$HOME`, and the only place it can write that lasts.
    pub home_dir: &'a Path,
    pub home: &'a str,
    /// Its whole environment besides `PATH`, `HOME`, `LANG` and `TMPDIR`.
    pub env: &'a [(String, String)],
    pub limits: RLimits,
}

/// Bubblewrap, checked to work here, and how this process may use it.
#[derive(Debug)]
pub struct Jail {
    bwrap: PathBuf,
    /// Roster runs as root: confined processes get uids of their own.
    as_root: bool,
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

/// The uid this process runs as, from `/proc/self` (no libc call needed).
pub(crate) fn process_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// The extra paths worth mounting: absolute, outside `/usr` (always
/// there), none inside another (it shows already), in a stable order.
fn mountable(read_only: &[PathBuf]) -> Vec<&Path> {
    let mut paths: Vec<&Path> = read_only
        .iter()
        .map(PathBuf::as_path)
        .filter(|p| p.is_absolute() && !p.starts_with("/usr") && p != &Path::new("/"))
        .collect();
    paths.sort();
    paths.dedup();
    let all = paths.clone();
    paths.retain(|p| !all.iter().any(|other| other != p && p.starts_with(other)));
    paths
}

impl Jail {
    /// Checks that bubblewrap starts a sandbox here (a real isolated start
    /// in `scratch`), so a machine without user namespaces fails now, not
    /// at the first use.
    pub async fn open(bwrap: PathBuf, scratch: &Path) -> Result<Self, SandboxError> {
        let jail = Self {
            bwrap,
            as_root: process_uid() == Some(0),
        };
        let uid = jail.uid_for(crate::UID_BASE, 1, &["probe"]);
        jail.own_dir(scratch, uid)?;
        let limits = RLimits {
            cpu_secs: 10,
            address_space: 1 << 30,
            processes: 64,
            file_bytes: 1 << 20,
            open_files: 64,
        };
        let confinement = Confinement {
            uid,
            network: false,
            read_only: &[],
            home_dir: scratch,
            home: "/workspace",
            env: &[],
            limits,
        };
        let output = jail
            .command(
                &confinement,
                Path::new("/bin/sh"),
                &["-c".into(), "true".into()],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|e| {
                SandboxError::Unavailable(format!("cannot start prlimit/bubblewrap: {e}"))
            })?;
        if !output.status.success() {
            return Err(SandboxError::Unavailable(format!(
                "bubblewrap could not start a sandbox: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(jail)
    }

    /// Whether confined processes run as uids of their own.
    pub fn as_root(&self) -> bool {
        self.as_root
    }

    /// A uid of its own for `key` in `[base, base + range)` when Roster is
    /// root (stable across restarts, so its files stay its own).
    pub fn uid_for(&self, base: u32, range: u32, key: &[&str]) -> Option<u32> {
        if !self.as_root {
            return None;
        }
        let mut hash: u32 = 0x811c_9dc5;
        for byte in key.iter().flat_map(|part| part.bytes()) {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        Some(base + hash % range.max(1))
    }

    /// Creates `dir` (and its parents) and gives it to `uid`.
    pub fn own_dir(&self, dir: &Path, uid: Option<u32>) -> Result<(), SandboxError> {
        std::fs::create_dir_all(dir).map_err(|e| SandboxError::io("creating a directory", e))?;
        self.give(dir, uid)
    }

    /// Gives an existing file or directory to `uid`.
    pub fn give(&self, path: &Path, uid: Option<u32>) -> Result<(), SandboxError> {
        if let Some(uid) = uid {
            std::os::unix::fs::chown(path, Some(uid), Some(uid))
                .map_err(|e| SandboxError::io("giving a directory to its uid", e))?;
        }
        Ok(())
    }

    /// The command that runs `program args` confined as `c` says. Its
    /// stdio is left to the caller; it is killed when dropped.
    pub fn command(
        &self,
        c: &Confinement<'_>,
        program: &Path,
        args: &[OsString],
    ) -> tokio::process::Command {
        let limits = c.limits;
        let processes = match c.uid {
            Some(_) => limits.processes,
            None => process_uid().map_or(0, tasks_of_uid) + limits.processes,
        };
        let mut command = tokio::process::Command::new("prlimit");
        command
            .arg(format!("--cpu={}", limits.cpu_secs))
            .arg(format!("--as={}", limits.address_space))
            .arg(format!("--nproc={processes}"))
            .arg(format!("--fsize={}", limits.file_bytes))
            .arg(format!("--nofile={}", limits.open_files))
            .arg("--core=0")
            .arg("--");
        command.arg(&self.bwrap);
        match c.uid {
            // As root: bubblewrap needs no user namespace (and so reaches a
            // private data directory); the program drops to its own uid
            // inside, where RLIMIT_NPROC holds exactly and no capability
            // is left.
            Some(_) => {
                command.args([
                    "--unshare-ipc",
                    "--unshare-pid",
                    "--unshare-uts",
                    "--unshare-cgroup-try",
                ]);
                if !c.network {
                    command.arg("--unshare-net");
                }
                command.args([
                    "--cap-drop",
                    "ALL",
                    "--cap-add",
                    "CAP_SETUID",
                    "--cap-add",
                    "CAP_SETGID",
                ]);
            }
            None => {
                command.args(["--unshare-all", "--cap-drop", "ALL"]);
                if c.network {
                    command.arg("--share-net");
                }
            }
        }
        command.args([
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
        ]);
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
        // Readable by an unprivileged uid (bubblewrap would make it 0700 as root).
        command.args(["--perms", "0755", "--dir", "/etc"]);
        for extra in [
            "/etc/alternatives",
            "/etc/ssl",
            "/etc/ca-certificates",
            "/etc/localtime",
        ] {
            command.args(["--ro-bind-try", extra, extra]);
        }
        if c.network {
            for extra in ["/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf"] {
                command.args(["--ro-bind-try", extra, extra]);
            }
        }
        command.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        // Each extra path's parents, traversable by the program's uid, then
        // the path itself.
        let mut made: Vec<&Path> = Vec::new();
        for path in mountable(c.read_only) {
            let mut parents: Vec<&Path> = path
                .ancestors()
                .skip(1)
                .filter(|a| *a != Path::new("/"))
                .collect();
            parents.reverse();
            for parent in parents {
                if !made.contains(&parent) {
                    command.args(["--perms", "0755", "--dir"]).arg(parent);
                    made.push(parent);
                }
            }
            command.arg("--ro-bind").arg(path).arg(path);
        }
        command
            .arg("--bind")
            .arg(c.home_dir)
            .arg(c.home)
            .arg("--chdir")
            .arg(c.home)
            .args(["--remount-ro", "/", "--"]);
        if let Some(uid) = c.uid {
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
        // bubblewrap passes its own environment on: give it only this.
        command
            .arg(program)
            .args(args)
            .env_clear()
            .env("PATH", SANDBOX_PATH)
            .env("HOME", c.home)
            .env("LANG", "C.UTF-8")
            .env("TMPDIR", "/tmp")
            .envs(c.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_that_add_something_are_mounted() {
        let given: Vec<PathBuf> = [
            "/opt/venv",
            "/opt/venv/lib",
            "/usr/local/share",
            "relative/path",
            "/",
            "/srv/a",
            "/opt/venv",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(
            mountable(&given),
            [Path::new("/opt/venv"), Path::new("/srv/a")]
        );
    }

    #[test]
    fn the_command_line_holds_the_walls() {
        let jail = Jail {
            bwrap: PathBuf::from("bwrap"),
            as_root: true,
        };
        let read_only = [PathBuf::from("/root/.pyenv/versions/3.11.7")];
        let env = [("TOKEN".to_owned(), "secret-value".to_owned())];
        let c = Confinement {
            uid: Some(1_234_567),
            network: false,
            read_only: &read_only,
            home_dir: Path::new("/data/mcp/t/s"),
            home: "/state",
            env: &env,
            limits: RLimits {
                cpu_secs: 5,
                address_space: 1 << 30,
                processes: 32,
                file_bytes: 1 << 20,
                open_files: 128,
            },
        };
        let command = jail.command(&c, Path::new("/usr/bin/python3"), &["-V".into()]);
        let std = command.as_std();
        let line: Vec<String> = std
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = line.join(" ");
        for wall in [
            "--nproc=32",
            "--unshare-pid",
            "--unshare-net",
            "--die-with-parent",
            "--perms 0755 --dir /root --perms 0755 --dir /root/.pyenv",
            "--ro-bind /root/.pyenv/versions/3.11.7 /root/.pyenv/versions/3.11.7",
            "--bind /data/mcp/t/s /state --chdir /state --remount-ro /",
            "--reuid=1234567",
            "-- /usr/bin/python3 -V",
        ] {
            assert!(joined.contains(wall), "{wall}: {joined}");
        }
        // Secrets travel in the environment, never on a command line
        // another local user could read.
        assert!(!joined.contains("secret-value"), "{joined}");
        let envs: Vec<(String, Option<String>)> = std
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert!(envs.contains(&("TOKEN".into(), Some("secret-value".into()))));
        assert!(envs.contains(&("HOME".into(), Some("/state".into()))));
        let with_network = Confinement { network: true, ..c };
        let command = jail.command(&with_network, Path::new("/bin/true"), &[]);
        let joined: Vec<String> = command
            .as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(!joined.contains(&"--unshare-net".to_owned()));
        assert!(joined.contains(&"/etc/resolv.conf".to_owned()));
    }
}
