//! Code execution for agents.
//!
//! Owns: [`Sandbox`], which runs Python, JavaScript or shell code for one
//! session under bubblewrap, in that session's workspace directory (which
//! persists between calls and across restarts), and safe access to the
//! workspace's files from outside ([`workspace`]).
//!
//! What is isolated (see `docs/ARCHITECTURE.md` for the whole list): new
//! user, PID, network, IPC, UTS and cgroup namespaces (no network at all
//! unless the config allows it); a filesystem of read-only `/usr` (and the
//! `/bin`, `/lib` links), a private `/tmp`, fresh `/proc` and `/dev`, and the
//! workspace read-write at `/workspace` — nothing else of the host; no
//! capabilities; a clean environment; rlimits on CPU time, address space,
//! processes, file size and open files; a wall-clock timeout that kills the
//! whole PID namespace; output read up to a cap, after which the process is
//! stopped. When Roster runs as root, bubblewrap runs without a user
//! namespace and each session's code switches to an unprivileged uid of its
//! own (no capabilities left), which makes the process limit exact; as any
//! other user it runs in a user namespace, and the process limit counts
//! that user's other processes too.
//!
//! The confinement itself — the bubblewrap command line with its mounts,
//! namespaces, uid and rlimits — is [`Jail`] and [`Confinement`], written
//! once and used both here and by the MCP client for stdio servers.
//!
//! Must never: run code outside bubblewrap, follow a link out of a
//! workspace on behalf of the API, or let a run outlive its timeout.

pub mod confine;
mod run;
mod tool;
pub mod workspace;

pub use confine::{Confinement, Jail, RLimits};
pub use run::{Language, RunOutcome};
pub use tool::RunCodeTool;
pub use workspace::FileEntry;

use roster_core::{SessionId, TenantId};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the code sandbox is not available: {0}")]
    Unavailable(String),
    #[error("invalid path {0}")]
    InvalidPath(String),
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl SandboxError {
    pub(crate) fn io(what: &str, source: std::io::Error) -> Self {
        SandboxError::Io {
            what: what.to_owned(),
            source,
        }
    }
}

/// Limits of one run.
#[derive(Clone, Debug)]
pub struct Limits {
    /// CPU seconds (RLIMIT_CPU).
    pub cpu_secs: u64,
    /// Wall-clock time before the run is killed.
    pub wall: Duration,
    /// Address space in bytes (RLIMIT_AS).
    pub memory_bytes: u64,
    /// Processes and threads (RLIMIT_NPROC).
    pub processes: u64,
    /// Largest file the code may write (RLIMIT_FSIZE).
    pub file_bytes: u64,
    /// Output kept per stream; more stops the process.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_secs: 30,
            wall: Duration::from_secs(60),
            memory_bytes: 1 << 30,
            processes: 64,
            file_bytes: 256 << 20,
            output_bytes: 1 << 20,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Where session workspaces live (`ROOT/<tenant>/<session>`).
    pub root: PathBuf,
    pub limits: Limits,
    /// Give code the host's network (off by default).
    pub network: bool,
    pub bwrap: PathBuf,
    pub python: PathBuf,
    pub node: PathBuf,
    pub shell: PathBuf,
    /// Extra host paths mounted read-only at the same place.
    pub read_only: Vec<PathBuf>,
}

impl SandboxConfig {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            limits: Limits::default(),
            network: false,
            bwrap: PathBuf::from("bwrap"),
            python: PathBuf::from("/usr/bin/python3"),
            node: PathBuf::from("/usr/bin/node"),
            shell: PathBuf::from("/bin/sh"),
            read_only: Vec::new(),
        }
    }
}

pub struct Sandbox {
    config: SandboxConfig,
    jail: Arc<Jail>,
}

/// First uid of the range sessions' code runs as when Roster is root
/// (stdio MCP servers have a range of their own above it).
pub const UID_BASE: u32 = 200_000;
pub const UID_RANGE: u32 = 800_000;

impl Sandbox {
    /// Checks that bubblewrap runs here (a real isolated start), so a
    /// machine without user namespaces fails now, not at the first call.
    pub async fn open(config: SandboxConfig) -> Result<Self, SandboxError> {
        std::fs::create_dir_all(&config.root)
            .map_err(|e| SandboxError::io("creating the workspace root", e))?;
        let jail = Jail::open(config.bwrap.clone(), &config.root.join(".probe")).await?;
        Ok(Self::with_jail(config, Arc::new(jail)))
    }

    /// A sandbox confined by a jail already checked to work.
    pub fn with_jail(config: SandboxConfig, jail: Arc<Jail>) -> Self {
        Self { config, jail }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// The uid a session's code runs as (when Roster is root).
    fn session_uid(&self, tenant: &TenantId, session: &SessionId) -> Option<u32> {
        self.jail
            .uid_for(UID_BASE, UID_RANGE, &[tenant.as_str(), session.as_str()])
    }

    /// The session's workspace directory, created if missing.
    pub fn workspace(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> Result<PathBuf, SandboxError> {
        let dir = self
            .config
            .root
            .join(tenant.as_str())
            .join(session.as_str());
        if !dir.exists() {
            self.jail.own_dir(&dir, self.session_uid(tenant, session))?;
        }
        Ok(dir)
    }

    /// Runs `code` in the session's workspace.
    pub async fn run(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        language: Language,
        code: &str,
        limits: &Limits,
    ) -> Result<RunOutcome, SandboxError> {
        let dir = self.workspace(tenant, session)?;
        let uid = self.session_uid(tenant, session);
        run::execute(&self.jail, &self.config, uid, &dir, language, code, limits).await
    }

    /// Removes the session's workspace and everything in it (links are
    /// removed, never followed). `false` when it had none.
    pub fn remove_workspace(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> Result<bool, SandboxError> {
        let dir = self
            .config
            .root
            .join(tenant.as_str())
            .join(session.as_str());
        match std::fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SandboxError::io("reading the workspace", e)),
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&dir)
                .map(|()| true)
                .map_err(|e| SandboxError::io("removing the workspace", e)),
            Ok(_) => std::fs::remove_file(&dir)
                .map(|()| true)
                .map_err(|e| SandboxError::io("removing the workspace", e)),
        }
    }

    pub fn list_files(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> Result<Vec<FileEntry>, SandboxError> {
        workspace::list(&self.workspace(tenant, session)?)
    }

    pub fn read_file(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        path: &str,
    ) -> Result<Vec<u8>, SandboxError> {
        let parts = workspace::clean_path(path)?;
        let full = workspace::resolve(&self.workspace(tenant, session)?, &parts)?;
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.is_file() => {
                std::fs::read(&full).map_err(|e| SandboxError::io("reading the file", e))
            }
            Ok(_) => Err(SandboxError::NotFound(format!("`{path}` is not a file"))),
            Err(_) => Err(SandboxError::NotFound(format!("no file `{path}`"))),
        }
    }

    /// Writes a file (and its directories), atomically.
    pub fn write_file(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        path: &str,
        bytes: &[u8],
    ) -> Result<u64, SandboxError> {
        let parts = workspace::clean_path(path)?;
        let root = self.workspace(tenant, session)?;
        let uid = self.session_uid(tenant, session);
        // Directories one by one, each checked, so none is a planted link.
        for depth in 1..parts.len() {
            let dir = workspace::resolve(&root, &parts[..depth])?;
            match std::fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(SandboxError::InvalidPath(format!(
                        "`{}` is a file",
                        parts[..depth].join("/")
                    )))
                }
                Err(_) => {
                    std::fs::create_dir(&dir)
                        .map_err(|e| SandboxError::io("creating a directory", e))?;
                    self.jail.give(&dir, uid)?;
                }
            }
        }
        let full = workspace::resolve(&root, &parts)?;
        if std::fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
            return Err(SandboxError::InvalidPath(format!(
                "`{path}` is a directory"
            )));
        }
        // Unique per upload, so two uploads of one path never share it.
        static UPLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let temp = full.with_file_name(format!(
            ".{}.upload-{}-{}",
            parts.last().map(String::as_str).unwrap_or("file"),
            std::process::id(),
            UPLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&temp, bytes).map_err(|e| SandboxError::io("writing the file", e))?;
        self.jail.give(&temp, uid)?;
        std::fs::rename(&temp, &full).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            SandboxError::io("writing the file", e)
        })?;
        Ok(bytes.len() as u64)
    }

    pub fn delete_file(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        path: &str,
    ) -> Result<(), SandboxError> {
        let parts = workspace::clean_path(path)?;
        let full = workspace::resolve(&self.workspace(tenant, session)?, &parts)?;
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.is_file() => {
                std::fs::remove_file(&full).map_err(|e| SandboxError::io("deleting the file", e))
            }
            Ok(_) => Err(SandboxError::NotFound(format!("`{path}` is not a file"))),
            Err(_) => Err(SandboxError::NotFound(format!("no file `{path}`"))),
        }
    }
}
